"""Every benchmark preset trains and probes through the CLI on a small file in the real format
(infmasking/testing/data_writers.py): `infmasking train --preset NAME --data.path FILE`, one
epoch, with the
preset's own encoders and hyperparameters (only the epochs and batch size are overridden).
Also: three-modality runs (InfMasking and CMC), own .npz data, and bad input."""

import json
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from infmasking.cli import main
from infmasking.testing import data_writers as W
from infmasking.training.config_files import presets

QUICK = [
    "--optim.epochs",
    "1",
    "--optim.batch_size",
    "16",
    "--trainer.progress_bar",
    "false",
    "--trainer.num_threads",
    "1",
    "--trainer.log_every_n_steps",
    "1",
    "--eval.probe_max_train",
    "200",
    "--eval.probe_C",  # these test loading and training: the probe at one C, no search
    "100",
]
# Narrower encoders for the presets whose published widths cost seconds per step on a CPU
# (GRU 512, ResNet-18, d = 512 / 768); the encoder kinds and every method setting stay the preset's.
SMALL = {
    "mimic": [
        "--model.dim",
        "32",
        "--model.encoders",
        "{static: {name: mlp, width: 10, n_layers: 2}, timeseries: {name: gru, hidden: 32}}",
    ],
    "vision_touch_ee": [
        "--model.dim",
        "32",
        "--model.encoders",
        (
            "{image: {name: resnet18, widths: [8, 16, 16, 32]}, "
            "force: {name: conv1d, width: 16, n_layers: 5, stride: 2}}"
        ),
    ],
    "vision_touch_contact": [
        "--model.dim",
        "32",
        "--model.encoders",
        "{image: {name: resnet18, widths: [8, 16, 16, 32]}, proprio: {name: mlp, width: 32}}",
    ],
    "vision_touch_contact3": [
        "--model.dim",
        "32",
        "--model.encoders",
        (
            "{image: {name: resnet18, widths: [8, 16, 16, 32]}, "
            "force: {name: conv1d, width: 16, n_layers: 5, stride: 2},"
            " proprio: {name: mlp, width: 32}}"
        ),
    ],
    "mmimdb": ["--model.dim", "32"],
    "npz": ["--model.dim", "32"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One small file (or folder) per benchmark, in its real on-disk format."""
    root = tmp_path_factory.mktemp("data")
    out = {}
    for name, stem in (("mosi", "mosi_data"), ("ur_funny", "humor"), ("mustard", "sarcasm")):
        out[name] = root / f"{stem}.pkl"
        W.write_affect_pickle(out[name], n=(40, 8, 16), seed=len(name))
    out["mimic"] = root / "im.pk"
    W.write_mimic_pickle(out["mimic"], n=160)
    out["vision_touch"] = root / "vt"
    W.write_vt_episodes(out["vision_touch"], episodes=10, steps=9, size=32)
    out["mmimdb_hdf5"] = root / "multimodal_imdb.hdf5"
    W.write_mmimdb_hdf5(out["mmimdb_hdf5"], bounds=(48, 56, 72))
    out["mmimdb_raw"] = root / "mmimdb"
    W.write_mmimdb_raw(out["mmimdb_raw"], n=(40, 6, 16))
    out["npz"] = root / "own.npz"
    W.write_npz(out["npz"], n=64)
    return out


def _train(tmp_path: Path, preset: str, path: Path, *extra: str) -> dict:
    out = tmp_path / preset
    with threadpool_limits(1):  # the probes' BLAS threads, on a shared 2-core machine
        code = main(
            [
                "train",
                "--preset",
                preset,
                "--data.path",
                str(path),
                "--out_dir",
                str(out),
                *QUICK,
                *SMALL.get(preset, []),
                *extra,
            ]
        )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] >= 1
    return report


def _metrics(report: dict, task: str) -> dict:
    return report["results"][task]["metrics"]


@pytest.mark.parametrize(
    "preset, dataset", [("mosi", "mosi"), ("ur_funny", "ur_funny"), ("mustard", "mustard")]
)
def test_affect_presets(files, tmp_path, preset, dataset):
    report = _train(tmp_path, preset, files[dataset])
    assert report["dataset"] == dataset and report["method"] == "infmasking"
    assert report["results"]["label"]["published_metric"] == "balanced_accuracy"
    assert {"accuracy", "balanced_accuracy"} <= set(_metrics(report, "label"))
    cfg = report["config"]
    assert (
        cfg["data"]["modalities"] == ["vision", "text"]
        and cfg["augment"]["sequence"] == "drop+noise"
    )
    assert cfg["model"]["encoders"]["text"]["name"] == "transformer" and cfg["model"]["dim"] == 40
    assert (
        cfg["optim"]["batch_size"] == 16 and cfg["optim"]["epochs"] == 1
    )  # overridden on the command line


def test_published_hyperparameters_in_presets():
    """docs/METHOD.md §5, as loaded from the preset files."""
    import yaml

    expected = {  # mask_ratio, T, mask_lambda, τ, lr, weights
        "mosi": (0.8, 5, 0.25, 0.1, 1e-3, None),
        "ur_funny": (0.5, 4, 2.0, 0.05, 1e-3, [1, 1, 1, 1, 5]),
        "mustard": (0.5, 5, 1.0, 0.05, 1e-3, None),
        "mimic": (0.8, 6, 1.0, 0.2, 3e-4, [1, 1, 1, 1, 5]),
        "vision_touch_contact": (0.7, 6, 1.0, 0.1, 1e-4, None),
        "vision_touch_ee": (0.5, 4, 1.0, 0.1, 1e-4, [1, 1, 1, 1, 5]),
        "mmimdb": (0.8, 4, 0.5, 0.2, 1e-3, [1, 1, 1, 1, 5]),
    }
    files = presets()
    for name, (ratio, t, lam, tau, lr, weights) in expected.items():
        cfg = yaml.safe_load(files[name].read_text())
        m = cfg["method"]
        assert (
            m["mask_ratio"],
            m["num_masks"],
            m["mask_lambda"],
            m["temperature"],
            cfg["optim"]["lr"],
        ) == (ratio, t, lam, tau, lr), name
        assert m.get("weights") == weights, name
        assert (
            cfg["optim"]["epochs"] == (70 if name == "mmimdb" else 100)
            and cfg["optim"]["batch_size"] == 64
        )
    assert yaml.safe_load(files["mustard"].read_text())["optim"]["weight_decay"] == 0.05


def test_mimic_preset(files, tmp_path):
    report = _train(tmp_path, "mimic", files["mimic"])
    assert "balanced_accuracy" in _metrics(report, "icd9_7")
    enc = report["config"]["model"]["encoders"]
    assert enc["static"]["name"] == "mlp" and enc["timeseries"]["name"] == "gru"
    assert report["config"]["augment"]["vector"] == "noise" and report["config"]["method"][
        "weights"
    ] == [1, 1, 1, 1, 5]


@pytest.mark.parametrize(
    "preset, task, metric",
    [
        ("vision_touch_ee", "end_effector_next", "mse"),
        ("vision_touch_contact", "contact_next", "balanced_accuracy"),
    ],
)
def test_vision_touch_presets(files, tmp_path, preset, task, metric):
    report = _train(tmp_path, preset, files["vision_touch"])
    assert report["results"][task]["published_metric"] == metric
    assert metric in _metrics(report, task)
    assert report["config"]["model"]["encoders"]["image"]["name"] == "resnet18"


@pytest.mark.parametrize("which", ["mmimdb_hdf5", "mmimdb_raw"])
def test_mmimdb_preset(files, tmp_path, which):
    extra = ["--data.options", "{bounds: [48, 56, 72]}"] if which == "mmimdb_hdf5" else []
    report = _train(tmp_path, "mmimdb", files[which], *extra)
    assert report["results"]["genres"]["published_metric"] == "f1_weighted"
    assert {"f1_weighted", "f1_macro"} <= set(_metrics(report, "genres"))
    assert report["config"]["optim"]["epochs"] == 1


@pytest.mark.parametrize("method", ["infmasking", "cmc"])
def test_three_modalities_ur_funny(files, tmp_path, method):
    report = _train(tmp_path, "ur_funny3", files["ur_funny"], "--method.name", method)
    assert report["method"] == method
    assert report["config"]["data"]["modalities"] == ["vision", "audio", "text"]
    assert "balanced_accuracy" in _metrics(report, "label")
    csv = (tmp_path / "ur_funny3" / "metrics.csv").read_text()
    terms = ["mask1", "comm_3"] if method == "infmasking" else ["cross_12", "cross_13", "cross_23"]
    assert all(f"train/loss_{t}" in csv for t in terms), csv.splitlines()[0]


def test_three_modalities_vision_touch_contact(files, tmp_path):
    report = _train(tmp_path, "vision_touch_contact3", files["vision_touch"])
    assert report["config"]["data"]["modalities"] == ["image", "force", "proprio"]
    assert "balanced_accuracy" in _metrics(report, "contact_next")


def test_npz_preset(files, tmp_path):
    """Own data: a vector, a padded sequence with a mask and a small image; three tasks."""
    report = _train(tmp_path, "npz", files["npz"])
    assert set(report["results"]) == {"y", "attrs", "value"}
    assert "balanced_accuracy" in _metrics(report, "y")
    assert "f1_weighted" in _metrics(report, "attrs") and "mse" in _metrics(report, "value")


def test_weights_length_checked_against_method(files, tmp_path, capsys):
    """ur_funny's 5 weights are InfMasking's M + 3 terms; CoMM has M + 1."""
    args = ["train", "--preset", "ur_funny", "--data.path", str(files["ur_funny"]), *QUICK]
    assert main([*args, "--out_dir", str(tmp_path / "a"), "--method.name", "comm"]) == 1
    err = capsys.readouterr().err
    assert "method.weights has 5 entries" in err and "comm on 2 modalities has 3" in err
    assert (
        main(
            [
                *args,
                "--out_dir",
                str(tmp_path / "b"),
                "--method.name",
                "comm",
                "--method.weights",
                "null",
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "preset, what",
    [
        ("mosi", "MultiBench"),
        ("mimic", "PhysioNet"),
        ("vision_touch_ee", "robotics"),
        ("mmimdb", "archive.org/details/mmimdb"),
    ],
)
def test_missing_file_says_where_to_get_it(tmp_path, capsys, preset, what):
    missing = tmp_path / "nowhere" / "data.pkl"
    assert (
        main(
            [
                "train",
                "--preset",
                preset,
                "--data.path",
                str(missing),
                "--out_dir",
                str(tmp_path / "r"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert str(missing) in err and what in err and "Nothing is downloaded" in err


def test_wrong_dataset_name_lists_valid_ones(files, tmp_path, capsys):
    args = [
        "train",
        "--preset",
        "mosi",
        "--data.path",
        str(files["mosi"]),
        "--data.name",
        "mosii",
        "--out_dir",
        str(tmp_path / "r"),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unknown dataset 'mosii'" in err
    for name in ("mosi", "ur_funny", "mustard", "mimic", "vision_touch", "mmimdb", "npz"):
        assert f"'{name}'" in err


def test_unknown_preset_lists_presets():
    with pytest.raises(SystemExit, match="valid presets:.*mosi.*ur_funny3"):
        main(["train", "--preset", "mosii"])


def test_resnet18_image_encoder():
    """The V&T image encoder: a ResNet-18 trunk, 128 px -> 512 × 4 × 4 (16 tokens)."""
    import torch

    from infmasking.models.encoders import ResNet18

    enc = ResNet18()
    assert (
        sum(p.numel() for p in enc.parameters()) == 11_176_512
    )  # ResNet-18 without its classifier
    assert enc(torch.zeros(2, 3, 128, 128)).shape == (2, 512, 4, 4)


def test_vector_augmentations_separate_from_sequences():
    """augment.vector (MultiBench: 'noise' on static vectors) vs augment.sequence."""
    import torch

    from infmasking.training.config import AugmentConfig
    from infmasking.training.views import ViewMaker

    x = {"v": torch.ones(64, 5), "s": torch.ones(64, 7, 3)}
    views = ViewMaker(
        AugmentConfig(sequence="drop", vector="none"), {"v": "vector", "s": "sequence"}
    )
    (a, _), _ = views(x, {}, torch.Generator().manual_seed(0))
    assert torch.equal(a["v"], x["v"]) and not torch.equal(a["s"], x["s"])
    views = ViewMaker(
        AugmentConfig(sequence="drop"), {"v": "vector", "s": "sequence"}
    )  # vector None = sequence
    (a, _), _ = views(x, {}, torch.Generator().manual_seed(0))
    assert not torch.equal(a["v"], x["v"])
