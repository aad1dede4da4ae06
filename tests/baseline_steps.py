"""One training step of a method on every preset (tests/test_factorcl.py, tests/test_mae.py):
the preset's configuration with the method swapped in, its data from a small file in the real
format (infmasking/testing/data_writers.py), narrower encoders where the published widths cost
seconds; and the end-to-end CLI runs both files make (:func:`train_cli`,
:func:`trifeatures_tokens_report`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from infmasking.cli import main
from infmasking.testing import data_writers as W
from infmasking.training.config_files import load_config, presets
from infmasking.training.loading import load_data
from infmasking.training.module import SSLModule

# Presets that read a file, and the file each reads (written by :func:`write_files`).
FILE_OF = {
    "mosi": "mosi",
    "mustard": "mustard",
    "ur_funny": "ur_funny",
    "ur_funny3": "ur_funny",
    "mimic": "mimic",
    "vision_touch_contact": "vision_touch",
    "vision_touch_contact3": "vision_touch",
    "vision_touch_ee": "vision_touch",
    "mmimdb": "mmimdb",
    "npz": "npz",
}
_RESNET = {"name": "resnet18", "widths": [8, 16, 16, 32]}
_FORCE = {"name": "conv1d", "width": 16, "n_layers": 5, "stride": 2}
# model.dim and encoders of the presets whose published sizes are slow on a CPU
SMALL = {
    "mimic": (
        32,
        {"static": {"name": "mlp", "width": 10}, "timeseries": {"name": "gru", "hidden": 32}},
    ),
    "vision_touch_ee": (32, {"image": _RESNET, "force": _FORCE}),
    "vision_touch_contact": (32, {"image": _RESNET, "proprio": {"name": "mlp", "width": 32}}),
    "vision_touch_contact3": (
        32,
        {"image": _RESNET, "force": _FORCE, "proprio": {"name": "mlp", "width": 32}},
    ),
    "mmimdb": (32, None),
    "npz": (32, None),
    "trifeatures224": (64, {"image1": {"name": "alexnet"}, "image2": {"name": "alexnet"}}),
}
PRESETS = sorted(presets())


def write_files(root: Path) -> dict[str, Path]:
    out = {}
    for name, stem in (("mosi", "mosi_data"), ("ur_funny", "humor"), ("mustard", "sarcasm")):
        out[name] = root / f"{stem}.pkl"
        W.write_affect_pickle(out[name], n=(40, 8, 16), seed=len(name))
    out["mimic"] = root / "im.pk"
    W.write_mimic_pickle(out["mimic"], n=60)
    out["vision_touch"] = root / "vt"
    W.write_vt_episodes(out["vision_touch"], episodes=10, steps=9, size=32)
    out["mmimdb"] = root / "multimodal_imdb.hdf5"
    W.write_mmimdb_hdf5(out["mmimdb"], bounds=(48, 56, 72))
    out["npz"] = root / "own.npz"
    W.write_npz(out["npz"], n=64)
    out["npz2"] = root / "own2.npz"  # two modalities (vector, sequence)
    W.write_npz(out["npz2"], n=64, image=False)
    return out


def preset_module(preset: str, method: str, files: dict[str, Path]):
    """(SSLModule, data) of ``preset`` with ``method.name = method`` and no preset weights
    (they are InfMasking's, one per InfMasking term)."""
    cfg = load_config(presets()[preset])
    cfg.method.name, cfg.method.weights = method, None
    if preset in FILE_OF:
        two = preset == "npz" and method == "factorcl"
        cfg.data.path = str(files["npz2" if two else FILE_OF[preset]])
    if preset == "mmimdb":
        cfg.data.options = {**(cfg.data.options or {}), "bounds": [48, 56, 72]}
    if preset.startswith("trifeatures"):
        cfg.data.trifeatures.max_pairs = 32
        cfg.data.options = {**(cfg.data.options or {}), "probe_pairs": 40}
    if preset in SMALL:
        dim, encoders = SMALL[preset]
        cfg.model.dim = dim
        if encoders is not None:
            cfg.model.encoders = copy.deepcopy(encoders)
    data = load_data(cfg)
    torch.manual_seed(0)
    shapes = {m: list(data.input_shape(m)) for m in data.modalities}
    module = SSLModule(cfg, data.modalities, data.kinds, shapes)
    return module, data


def one_step(module: SSLModule, data, batch_size: int = 8):
    """One optimiser step on the first ``batch_size`` training samples; the loss output."""
    batch = data.train[torch.arange(min(batch_size, len(data.train)))]
    opt = module.configure_optimizers()
    before = [p.detach().clone() for p in module.heads.parameters()]
    out = module.compute_loss(batch, torch.Generator().manual_seed(0))
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    moved = any(not torch.equal(a, p.detach()) for a, p in zip(before, module.heads.parameters()))
    return out, moved


def probe_features(module: SSLModule, data, batch_size: int = 8):
    """The probe's features of the first ``batch_size`` probe-test samples, in eval mode (what
    the linear probes and ``embed`` read)."""
    batch = data.probe_test[torch.arange(min(batch_size, len(data.probe_test)))]
    module.eval()
    try:
        return module.features(batch)
    finally:
        module.train()


def train_cli(method: str, out: Path, *args: str) -> dict:
    """``infmasking train`` of ``method`` into ``out`` (one thread, no progress bar); its
    ``report.json``. ``args`` come first: the preset sets every option later ones override."""
    code = main(
        [
            "train",
            *args,
            "--method.name",
            method,
            "--trainer.num_threads",
            "1",
            "--trainer.progress_bar",
            "false",
            "--eval.probe_C",  # the probe at one C, no search: the method is what is tested
            "100",
            "--out_dir",
            str(out),
        ]
    )
    assert code == 0
    return json.loads((out / "report.json").read_text())


def trifeatures_tokens_report(method: str, out: Path) -> dict:
    """One epoch of ``method`` on a small trifeatures_tokens set, no probe curve: the report."""
    return train_cli(
        method,
        out,
        "--preset",
        "trifeatures_tokens",
        "--data.trifeatures.max_pairs",
        "256",
        "--data.options",
        "{probe_pairs: 300}",
        "--optim.epochs",
        "1",
        "--eval.probe_every",
        "0",
    )
