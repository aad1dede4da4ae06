"""SSLModule takes a typed RunConfig; its checkpoint keeps the config as a plain dict (the same
hyper_parameters as before), and SSLModule.from_checkpoint builds the module back from it."""

import pytest
import torch

from infmasking.training.config import RunConfig
from infmasking.training.config_files import to_dict
from infmasking.training.module import SSLModule

MODS = ["x1", "x2"]
KINDS = dict.fromkeys(MODS, "sequence")
SHAPES = {k: [5, 4] for k in MODS}


def _cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.model.dim, cfg.model.n_heads, cfg.model.head_hidden, cfg.model.proj_dim = 16, 2, 16, 8
    cfg.model.encoders = {k: {"name": "identity"} for k in MODS}
    cfg.method.temperature = 0.2
    return cfg


def _checkpoint(module: SSLModule, path):
    """What Lightning writes of a module's own (hparams_name, hyper_parameters, state_dict)."""
    torch.save(
        {
            "hparams_name": module._hparams_name,
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
        },
        path,
    )


def test_hyperparameters_are_the_config_as_a_dict():
    cfg = _cfg()
    module = SSLModule(cfg, MODS, KINDS, SHAPES)
    assert dict(module.hparams) == {
        "config": to_dict(cfg),
        "modalities": MODS,
        "kinds": KINDS,
        "shapes": SHAPES,
    }
    assert list(module.hparams) == ["config", "modalities", "kinds", "shapes"]
    assert module._hparams_name == "kwargs"
    assert module.cfg == cfg and module.cfg is not cfg  # its own copy
    cfg.method.temperature = 9.0
    assert module.cfg.method.temperature == 0.2


def test_the_modules_copy_has_the_schemas_types():
    """A config built in code with an int where the schema says float (mask_lambda = 1) is
    held as a float: λ's tensor and the logs are float, as for a config read from a file."""
    cfg = _cfg()
    cfg.method.mask_lambda, cfg.optim.lr = 1, 1
    module = SSLModule(cfg, MODS, KINDS, SHAPES)
    assert type(module.cfg.method.mask_lambda) is float and type(module.cfg.optim.lr) is float
    assert torch.tensor(module.cfg.method.mask_lambda).dtype == torch.float32


def test_from_checkpoint_builds_the_same_module(tmp_path):
    torch.manual_seed(0)
    module = SSLModule(_cfg(), MODS, KINDS, SHAPES)
    _checkpoint(module, tmp_path / "last.ckpt")
    torch.manual_seed(1)  # other initial weights: the checkpoint's must replace them
    loaded = SSLModule.from_checkpoint(tmp_path / "last.ckpt")
    assert isinstance(loaded.cfg, RunConfig) and loaded.cfg == module.cfg
    assert dict(loaded.hparams) == dict(module.hparams)
    mine, theirs = module.state_dict(), loaded.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_from_checkpoint_migrates_an_older_config(tmp_path):
    module = SSLModule(_cfg(), MODS, KINDS, SHAPES)
    _checkpoint(module, tmp_path / "last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)
    trifeatures = state["hyper_parameters"]["config"]["data"].pop("trifeatures")
    state["hyper_parameters"]["config"]["data"]["image_size"] = trifeatures["image_size"]
    torch.save(state, tmp_path / "old.ckpt")
    assert SSLModule.from_checkpoint(tmp_path / "old.ckpt").cfg == module.cfg


def test_from_checkpoint_refuses_other_weights(tmp_path):
    module = SSLModule(_cfg(), MODS, KINDS, SHAPES)
    _checkpoint(module, tmp_path / "last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)
    state["state_dict"].pop(next(iter(state["state_dict"])))
    torch.save(state, tmp_path / "bad.ckpt")
    with pytest.raises(RuntimeError, match="Missing key"):
        SSLModule.from_checkpoint(tmp_path / "bad.ckpt")
