"""The token Trifeatures benchmark: deterministic, Trifeatures' pairs and tasks, and a raw-input
linear probe that reads shape but not synergy."""

import json

import numpy as np
import pytest
import torch

from infmasking.cli import main
from infmasking.data.trifeatures_tokens import load_trifeatures_tokens, raw_features
from infmasking.evaluation.probe import probe_all


@pytest.fixture(scope="module")
def data():
    return load_trifeatures_tokens(seed=0, biased=True, max_pairs=2000, probe_pairs=3000)


def test_deterministic_and_shapes(data):
    again = load_trifeatures_tokens(seed=0, biased=True, max_pairs=2000, probe_pairs=3000)
    b1, b2 = data.train[torch.arange(16)], again.train[torch.arange(16)]
    assert b1.inputs["x1"].shape == (16, 12, 32) and data.kinds == {
        "x1": "sequence",
        "x2": "sequence",
    }
    torch.testing.assert_close(b1.inputs["x1"], b2.inputs["x1"])
    other = load_trifeatures_tokens(seed=1, max_pairs=2000, probe_pairs=3000)
    assert not torch.equal(other.train.inputs["x1"], data.train.inputs["x1"])
    assert [t.name for t in data.tasks] == ["share", "unique1", "unique2", "synergy"]
    # biased pairs: (texture1, colour2) always correlated; pairs share the shape
    assert bool((data.train.targets["synergy"] == 1).all())
    i, j = data.info["pairs"]["train"].T
    assert torch.equal(data.info["image_shape"][i], data.info["image_shape"][j])
    # each factor is spread over 6 of the 12 positions
    assert data.info["carries"].sum(1).tolist() == [6, 6, 6]


def test_raw_inputs_read_shape_but_not_synergy(data):
    y = {
        s: {t: v.numpy() for t, v in getattr(data, s).targets.items()}
        for s in ("probe_train", "probe_test")
    }
    res = probe_all(
        data.tasks,
        raw_features(data, "probe_train"),
        y["probe_train"],
        raw_features(data, "probe_test"),
        y["probe_test"],
    )
    assert res["share"].metrics["balanced_accuracy"] > 0.9
    assert res["unique1"].metrics["balanced_accuracy"] > 0.9
    assert 0.42 < res["synergy"].metrics["auroc"] < 0.58  # chance: needs a fusion


def test_bad_options_name_the_option(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--preset",
                "trifeatures_tokens",
                "--data.options",
                "{tokens: 3}",
                "--out_dir",
                str(tmp_path / "r"),
            ]
        )
        == 1
    )
    assert "data.options" in capsys.readouterr().err
    with pytest.raises(ValueError, match="spread"):
        load_trifeatures_tokens(n_tokens=4, spread=6)


@pytest.mark.slow  # about 2 min on 2 cores: reproduce trains 2 methods x 2 seeds x 2 pair sets
def test_reproduce_tokens_with_baselines(tmp_path):
    out = tmp_path / "rep"
    args = [
        "reproduce",
        "trifeatures_tokens",
        "--preset",
        "trifeatures_tokens",
        "--optim.epochs",
        "2",
        "--data.trifeatures.max_pairs",
        "256",
        "--eval.probe_max_train",
        "600",
        "--eval.probe_every",
        "1",
        "--trainer.progress_bar",
        "false",
        "--methods",
        "[infmasking, comm]",
        "--seeds",
        "[0, 1]",
        "--out_dir",
        str(out),
        "--model.head_hidden",
        "32",
        "--model.proj_dim",
        "16",
        "--controls",
        "false",
    ]
    assert main(args) == 0
    comp = json.loads((out / "comparison.json").read_text())
    assert set(comp["baselines"]) == {"randomly initialised network", "raw-input probe"}
    assert set(comp["paired_infmasking_minus_comm"]) == {"last", "best_valid", "test_selected"}
    run = comp["runs"]["infmasking"][0]
    rep = json.loads((out / "infmasking" / "seed0" / "report.json").read_text())
    curve = json.loads((out / "infmasking" / "seed0" / "probe_curve.json").read_text())
    assert [r["epoch"] for r in curve] == [0, 1, 2]
    # best_valid is the epoch with the best mean held-out score, never read from test
    tasks = ["share", "unique1", "unique2", "synergy"]
    best = max(curve[1:], key=lambda r: np.mean([r[f"val_{t}"] for t in tasks]))
    assert rep["selection"]["valid"]["epoch"] == best["epoch"]
    assert run["best_valid"]["synergy_auroc"] == best["synergy_auroc"]
    diff = comp["paired_infmasking_minus_comm"]["last"]["synergy_auroc"]["mean"]
    want = np.mean(
        [
            a["last"]["synergy_auroc"] - b["last"]["synergy_auroc"]
            for a, b in zip(comp["runs"]["infmasking"], comp["runs"]["comm"])
        ]
    )
    assert diff == pytest.approx(want)
    assert "λ ramp: horizon 2 epochs" in (out / "infmasking" / "seed0" / "report.md").read_text()
    # the robust reading beside the published one (issue 34), for the methods and the raw input
    assert run["last"]["robust_synergy_auroc"] == pytest.approx(
        100 * rep["results"]["synergy"]["robust"]["metrics"]["auroc"]
    )
    assert (
        "last_robust" in comp["stats"]["comm"] and "last_robust" in comp["stats"]["raw-input probe"]
    )
    assert "robust reading" in (out / "comparison.md").read_text()


def test_select_best_valid_sets_the_headline(tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--preset",
                "trifeatures_tokens",
                "--optim.epochs",
                "2",
                "--data.trifeatures.max_pairs",
                "256",
                "--eval.probe_max_train",
                "600",
                "--eval.probe_every",
                "1",
                "--eval.select",
                "best_valid",
                "--eval.probe_C",  # epochs are selected, not C: no search of C
                "100",
                "--model.head_hidden",
                "32",
                "--model.proj_dim",
                "16",
                "--trainer.progress_bar",
                "false",
                "--out_dir",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    best = rep["selection"]["valid"]
    assert rep["rus"]["synergy"] == best["synergy"] and rep["rus"]["redundancy"] == best["share"]
    assert (
        rep["rus_last"]["redundancy"]
        == 100 * rep["results"]["share"]["metrics"]["balanced_accuracy"]
    )
    assert "Headline (`eval.select best_valid`)" in (out / "report.md").read_text()


def test_synergy_controls(tmp_path):
    """Control (b), the true factors with the texture₁ × colour₂ cell, is the probe's ceiling
    (synergy read exactly); control (a) trains the fusion network on the synergy label for the
    run's budget and is probed like a method; both cached per seed and probe."""
    from infmasking.commands.controls import factor_control, supervised_control
    from infmasking.training.config import RunConfig

    base = RunConfig()
    base.data.name = "trifeatures_tokens"
    base.data.trifeatures.max_pairs = 256
    # 2 000 probe pairs: with 600, the published search on one-hot shape features lands on the
    # boundary C where the refit is W = 0 (redundancy 10.0), a property of that probe
    base.eval.probe_max_train = 2000
    base.optim.epochs = 1
    base.model.dim = 16
    base.model.head_hidden = 16
    base.model.proj_dim = 8
    base.model.encoders = {"x1": {"name": "identity"}, "x2": {"name": "identity"}}
    b = factor_control(base, 0, tmp_path)
    assert b["synergy"] == 100.0 and b["redundancy"] == 100.0 and b["unique2"] == 100.0
    # the robust reading beside (issue 34): the same ceiling
    assert b["robust_synergy"] == 100.0 and b["robust_synergy_auroc"] == 100.0
    a = supervised_control(base, 0, tmp_path)
    assert a["steps"] == 256 // 64 and 0.0 <= a["synergy"] <= 100.0
    assert (tmp_path / "controls" / "supervised_seed0.json").exists()
    base.eval.probe = "standardised"
    factor_control(base, 0, tmp_path)
    assert (tmp_path / "controls" / "factors_seed0_standardised.json").exists()
