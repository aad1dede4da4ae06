"""The objective registry: one entry per method, read by the config, the training step, the
weights check and the CLI; a new objective needs one function and one entry."""

import pytest
import torch

from infmasking import losses as L
from infmasking import objectives
from infmasking.training.config import METHODS, RunConfig
from infmasking.training.module import SSLModule
from infmasking.training.validate import validate


def _module(method, m=2, weights=None):
    mods = [f"x{i + 1}" for i in range(m)]
    cfg = RunConfig()
    cfg.method.name, cfg.method.weights, cfg.model.dim = method, weights, 16
    cfg.model.n_heads, cfg.model.head_hidden, cfg.model.proj_dim = 2, 16, 8
    cfg.model.encoders = {k: {"name": "identity"} for k in mods}
    torch.manual_seed(0)
    return SSLModule(cfg, mods, dict.fromkeys(mods, "sequence"), {k: [5, 4] for k in mods})


def _batch(m=2, b=8):
    from infmasking.data.base import Batch

    g = torch.Generator().manual_seed(0)
    return Batch({f"x{i + 1}": torch.randn(b, 5, 4, generator=g) for i in range(m)}, {}, {})


def test_config_and_cli_choices_are_the_registry(capsys):
    assert METHODS == tuple(objectives.OBJECTIVES)
    from infmasking.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "--method.name {" + ",".join(METHODS) + "}" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(objectives.OBJECTIVES))
@pytest.mark.parametrize("m", [2, 3])
def test_term_names_are_the_loss_terms(name, m):
    obj = objectives.get(name)
    if m == 3 and obj.modalities[1] == 2:
        with pytest.raises(ValueError, match="exactly 2 modalities, got 3.*cmc"):
            _module(name, m)
        return
    module = _module(name, m)
    out = module.compute_loss(_batch(m), torch.Generator().manual_seed(1))
    assert list(out.terms) == obj.terms(m)
    assert torch.isfinite(out.loss)


def test_weights_checked_against_the_term_names():
    with pytest.raises(
        ValueError, match=r"has 2 entries but comm on 2 modalities has 3 loss terms \['comm_1'"
    ):
        _module("comm", weights=[1.0, 2.0])
    out = _module("comm", weights=[0.0, 0.0, 3.0]).compute_loss(
        _batch(), torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(out.loss, out.terms["comm_all"])  # mean of (0, 0, 3·comm_all)


def test_unknown_method_named():
    with pytest.raises(ValueError, match=r"unknown method 'simclr'; valid: \['infmasking'"):
        objectives.get("simclr")
    cfg = RunConfig()
    cfg.method.name = "simclr"
    with pytest.raises(ValueError, match="method.name"):
        validate(cfg)


def test_a_new_objective_is_one_function_and_one_entry():
    """A fused-only SimCLR: the training step runs it from the registry alone."""

    def fused_simclr(o1, o2, meth, mask_weight):
        out = L.LossOutput(loss=torch.zeros(()))
        out.terms["fused"], out.accuracies["fused"] = L.nt_xent(
            torch.nn.functional.normalize(o1.full, dim=-1),
            torch.nn.functional.normalize(o2.full, dim=-1),
            meth.temperature,
        )
        out.loss = out.terms["fused"]
        return out

    objectives.register(
        objectives.Objective(
            "fused_simclr", "SimCLR on the fused embedding", fused_simclr, lambda m: ["fused"]
        )
    )
    try:
        with pytest.raises(ValueError, match="already registered"):
            objectives.register(
                objectives.Objective("fused_simclr", "", fused_simclr, lambda m: ["fused"])
            )
        module = _module("fused_simclr")
        out = module.compute_loss(_batch(), torch.Generator().manual_seed(1))
        out.loss.backward()
        assert list(out.terms) == ["fused"]
        assert module.model.fusion.cls.grad is not None
    finally:
        objectives.OBJECTIVES.pop("fused_simclr", None)


def test_only_masked_objectives_run_masked_views(monkeypatch):
    calls = []
    for name in objectives.OBJECTIVES:
        module = _module(name)
        orig = module.model.forward_views

        def spy(views, *a, _orig=orig, _name=name, **kw):
            calls.append((_name, len(views), kw.get("num_masks", 0), kw.get("full", True)))
            return _orig(views, *a, **kw)

        monkeypatch.setattr(module.model, "forward_views", spy)
        module.compute_loss(_batch(), torch.Generator().manual_seed(1))
    for name, n_views, num_masks, full in calls:
        obj = objectives.get(name)
        assert n_views == 2, name  # both views in one call
        assert (num_masks > 0) == obj.masked and full == obj.full, name
    assert len(calls) == len(objectives.OBJECTIVES)  # every call seen
