"""Linear probes: planted signals are recovered, noise reads chance, test data never selects.

These tests are of the standardised probe (``probe="standardised"``) and of what both probes
share; the published probe is tested against its float64 reference in test_probe_published.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from infmasking.data.base import Task
from infmasking.evaluation import probe as probe_mod
from infmasking.evaluation.probe import ProbeResult, _holdout_split
from infmasking.evaluation.probe import fit_probe as _fit_probe
from infmasking.evaluation.probe import probe_all as _probe_all


def fit_probe(*args, probe="standardised", **kwargs):
    return _fit_probe(*args, probe=probe, **kwargs)


def probe_all(*args, probe="standardised", **kwargs):
    return _probe_all(*args, probe=probe, **kwargs)


CLS10 = Task("digit", "classification", 10)
BIN = Task("bin", "classification", 2)
ML = Task("genres", "multilabel", 6)
REG = Task("pos", "regression")


def _split(x, y, n_train):
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def planted_multiclass(seed=0, n=3000, d=32, k=10):
    """Labels = argmax of a linear map of Gaussian features plus small Gumbel noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, k))
    y = (x @ w + 0.1 * rng.gumbel(size=(n, k))).argmax(1)
    return x, y


def imbalanced_weak(seed=0, n=4000, d=16):
    """10 % positives, weakly related to feature 0: a thresholded noisy latent."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    z = 0.4 * x[:, 0] + rng.normal(size=n)
    y = (z > np.quantile(z, 0.9)).astype(np.int64)
    return x, y


def planted_multilabel(seed=0, n=2000, d=20):
    """Labels 0..3 = sign of linear maps; label 4 never positive; label 5 always positive."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, 4))
    y = np.zeros((n, 6), dtype=np.int64)
    y[:, :4] = (x @ w + 0.1 * rng.normal(size=(n, 4)) > 0.3).astype(np.int64)
    y[:, 5] = 1
    return x, y


def planted_regression(seed=0, n=2000, d=24, k=3, noise=0.1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, k))
    y = x @ w + noise * rng.normal(size=(n, k)) + 5.0
    return x, y


# ------------------------------------------------------------------------------- signal/chance


def test_recovers_planted_multiclass_signal():
    x, y = planted_multiclass()
    r = fit_probe(CLS10, *_split(x, y, 2000))
    assert r.metrics["accuracy"] > 0.9
    assert r.metrics["balanced_accuracy"] > 0.9
    assert "auroc" not in r.metrics  # multiclass
    assert r.published_metric == "balanced_accuracy"
    assert r.published_value == r.metrics["balanced_accuracy"]
    assert r.n_train == 2000 and r.n_test == 1000
    assert r.hparam_name == "C" and r.hparam in probe_mod.DEFAULT_CS
    assert r.converged


def test_pure_noise_reads_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 32))
    y = rng.integers(0, 2, size=4000)
    r = fit_probe(BIN, *_split(x, y, 2000))
    assert abs(r.metrics["balanced_accuracy"] - 0.5) < 0.05
    assert abs(r.metrics["auroc"] - 0.5) < 0.05


def test_imbalanced_weak_signal_needs_weighting_or_auroc():
    x, y = imbalanced_weak()
    parts = _split(x, y, 3000)
    plain = fit_probe(BIN, *parts)
    weighted = fit_probe(BIN, *parts, class_weight="balanced")
    # the unweighted probe predicts (almost) only the majority class: balanced accuracy ~ 50 %
    assert abs(plain.metrics["balanced_accuracy"] - 0.5) < 0.03
    assert plain.metrics["accuracy"] > 0.88
    # ... while its AUROC and the class-weighted probe show the signal
    assert plain.metrics["auroc"] > 0.62
    assert weighted.metrics["balanced_accuracy"] > 0.6
    assert weighted.metrics["balanced_accuracy"] - plain.metrics["balanced_accuracy"] > 0.08
    assert weighted.class_weight == "balanced" and plain.class_weight is None


def test_multilabel_planted_signal_and_constant_labels():
    x, y = planted_multilabel()
    r = fit_probe(ML, *_split(x, y, 1500))
    assert r.published_metric == "f1_weighted"
    assert r.metrics["f1_weighted"] > 0.85
    assert r.metrics["f1_micro"] > 0.85
    assert 0.0 <= r.metrics["f1_macro"] <= 1.0
    assert any("label 4" in n for n in r.notes) and any("label 5" in n for n in r.notes)


def test_multilabel_noise_is_worse_than_signal():
    x, y = planted_multilabel()
    rng = np.random.default_rng(3)
    signal = fit_probe(ML, *_split(x, y, 1500))
    noise = fit_probe(ML, *_split(rng.normal(size=x.shape), y, 1500))
    assert noise.metrics["f1_macro"] < signal.metrics["f1_macro"] - 0.3


@pytest.mark.parametrize("k", [None, 3])
def test_regression_planted_signal(k):
    x, y = planted_regression(k=k or 1)
    if k is None:
        y = y[:, 0]
    r = fit_probe(REG, *_split(x, y, 1500))
    assert r.published_metric == "mse" and r.hparam_name == "alpha"
    assert r.metrics["r2"] > 0.99
    assert r.metrics["mse"] < 0.05  # noise variance is 0.01; target variance ~ 24
    # pure noise features: r2 ~ 0, mse ~ target variance
    rng = np.random.default_rng(5)
    noise = fit_probe(REG, *_split(rng.normal(size=x.shape), y, 1500))
    assert noise.metrics["r2"] < 0.05
    assert noise.metrics["mse"] > 10.0


def test_accepts_torch_tensors():
    x, y = planted_multiclass(n=600, d=8, k=3)
    t = Task("t", "classification", 3)
    r_np = fit_probe(t, *_split(x, y, 400))
    r_pt = fit_probe(t, *_split(torch.from_numpy(x).float(), torch.from_numpy(y), 400))
    assert r_pt.hparam == r_np.hparam
    assert r_pt.metrics["accuracy"] == pytest.approx(r_np.metrics["accuracy"], abs=0.01)


# --------------------------------------------------------------------------- selection hygiene


@pytest.mark.parametrize("which", ["classification", "multilabel", "regression"])
def test_test_set_never_used_for_selection(which):
    """Garbage test labels and test features must not change the selection at all."""
    if which == "classification":
        task, (x, y) = CLS10, planted_multiclass(n=1500, d=16, k=10)
    elif which == "multilabel":
        task, (x, y) = ML, planted_multilabel(n=1500)
    else:
        task, (x, y) = REG, planted_regression(n=1500, noise=3.0)
    x_tr, y_tr, x_te, y_te = _split(x, y, 1000)
    rng = np.random.default_rng(7)
    ref = fit_probe(task, x_tr, y_tr, x_te, y_te, Cs=(1e-3, 1e-1, 10.0))
    shuffled = fit_probe(task, x_tr, y_tr, x_te, rng.permutation(y_te), Cs=(1e-3, 1e-1, 10.0))
    noise_x = fit_probe(
        task, x_tr, y_tr, rng.normal(size=x_te.shape) * 10, y_te, Cs=(1e-3, 1e-1, 10.0)
    )
    for other in (shuffled, noise_x):
        assert other.hparam == ref.hparam
        assert other.val_scores == ref.val_scores
        assert other.metrics != ref.metrics  # the test data did reach the final scoring


def test_selection_sees_held_out_train_rows_only(monkeypatch):
    """Spy on the probe: selection is scored on val_fraction of train; test is scored once."""
    seen = {"selection_rows": [], "metric_rows": []}
    sel, met = probe_mod._LogisticProbe.selection_score, probe_mod._LogisticProbe.metrics

    def spy_sel(self, x, y):
        seen["selection_rows"].append(len(x))
        return sel(self, x, y)

    def spy_met(self, x, y):
        seen["metric_rows"].append(len(x))
        return met(self, x, y)

    monkeypatch.setattr(probe_mod._LogisticProbe, "selection_score", spy_sel)
    monkeypatch.setattr(probe_mod._LogisticProbe, "metrics", spy_met)
    x, y = planted_multiclass(n=1300, d=8, k=4)
    r = fit_probe(Task("t", "classification", 4), *_split(x, y, 1000), Cs=(0.01, 1.0, 100.0))
    assert seen["selection_rows"] == [200, 200, 200]  # 20 % of the 1000 train rows
    assert seen["metric_rows"] == [300]
    assert [v[0] for v in r.val_scores] == [0.01, 1.0, 100.0]


def test_holdout_split_is_stratified_and_seeded():
    y = np.array([0] * 900 + [1] * 100)
    fit, val = _holdout_split(1000, 0.2, np.random.default_rng(0), strata=y)
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == 1000
    assert (y[val] == 1).sum() == 20 and (y[val] == 0).sum() == 180
    _, val_same = _holdout_split(1000, 0.2, np.random.default_rng(0), strata=y)
    _, val_other = _holdout_split(1000, 0.2, np.random.default_rng(1), strata=y)
    assert np.array_equal(val, val_same) and not np.array_equal(val, val_other)
    # a class with one sample stays in the fit part; a class with two gives one to each part
    y_small = np.array([0] * 10 + [1, 2, 2])
    fit, val = _holdout_split(13, 0.2, np.random.default_rng(0), strata=y_small)
    assert 10 in fit and (y_small[val] == 2).sum() == 1 and (y_small[fit] == 2).sum() == 1


def test_seed_changes_the_split_only():
    x, y = planted_multiclass(n=1500, d=16, k=10)
    a = fit_probe(CLS10, *_split(x, y, 1000), seed=0)
    b = fit_probe(CLS10, *_split(x, y, 1000), seed=0)
    c = fit_probe(CLS10, *_split(x, y, 1000), seed=1)
    assert a.to_dict() == b.to_dict()
    assert a.val_scores != c.val_scores


# --------------------------------------------------------------------------------- result, all


def test_to_dict_is_strict_json():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y_tr = rng.integers(0, 2, size=200)
    y_te = np.zeros(100, dtype=np.int64)  # one class in test: AUROC undefined
    r = fit_probe(BIN, x[:200], y_tr, x[200:], y_te)
    assert np.isnan(r.metrics["auroc"])
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["metrics"]["auroc"] is None
    assert d["task"] == "bin" and d["kind"] == "classification"
    assert set(d) >= {"metrics", "published_metric", "hparam", "n_train", "n_test", "converged"}


def test_probe_all_runs_every_task():
    x, y = planted_multiclass(n=900, d=12, k=10)
    _, yml = planted_multilabel(n=900, d=12)
    _, yreg = planted_regression(n=900, d=12)
    tasks = [CLS10, ML, REG]
    res = probe_all(
        tasks,
        x[:600],
        {"digit": y[:600], "genres": yml[:600], "pos": yreg[:600]},
        x[600:],
        {"digit": y[600:], "genres": yml[600:], "pos": yreg[600:]},
        class_weight="balanced",
    )
    assert list(res) == ["digit", "genres", "pos"]
    assert all(isinstance(r, ProbeResult) for r in res.values())
    assert res["digit"].metrics["accuracy"] > 0.5
    assert res["pos"].class_weight is None
    with pytest.raises(ValueError, match="test_targets"):
        probe_all(
            tasks,
            x[:600],
            {"digit": y[:600], "genres": yml[:600], "pos": yreg[:600]},
            x[600:],
            {"digit": y[600:]},
        )


# ---------------------------------------------------------------------------------- bad input


def _bad_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5))
    y = rng.integers(0, 2, size=100)
    x_nan = x.copy()
    x_nan[3, 2] = np.nan
    x_inf = x.copy()
    x_inf[1, 1] = np.inf
    y_reg = rng.normal(size=100)
    y_reg_nan = y_reg.copy()
    y_reg_nan[5] = np.nan
    yml = rng.integers(0, 2, size=(100, 6))
    return [
        ("len", BIN, (x, y[:90], x, y), {}, "y_train"),
        ("len-test", BIN, (x, y, x, y[:50]), {}, "y_test"),
        ("nan-x", BIN, (x_nan, y, x, y), {}, "x_train"),
        ("inf-x-test", BIN, (x, y, x_inf, y), {}, "x_test"),
        ("nan-y", REG, (x, y_reg_nan, x, y_reg), {}, "y_train"),
        ("single-class", BIN, (x, np.ones(100, dtype=int), x, y), {}, "y_train"),
        ("cls-2d", BIN, (x, np.stack([y, y], 1), x, y), {}, "y_train"),
        ("cls-non-int", BIN, (x, y + 0.5, x, y), {}, "y_train"),
        ("cls-range", BIN, (x, y * 3, x, y), {}, "y_train"),
        ("ml-1d", ML, (x, y, x, y), {}, "y_train"),
        ("ml-non-binary", ML, (x, yml * 2, x, yml), {}, "y_train"),
        ("ml-k", ML, (x, yml[:, :4], x, yml[:, :4]), {}, "y_train"),
        ("reg-3d", REG, (x, y_reg[:, None, None], x, y_reg), {}, "y_train"),
        ("kind", Task("t", "ranking"), (x, y, x, y), {}, "task.kind"),
        ("x-1d", BIN, (x[:, 0], y, x, y), {}, "x_train"),
        ("dims", BIN, (x, y, x[:, :3], y), {}, "x_test"),
        ("val-fraction", BIN, (x, y, x, y), {"val_fraction": 1.0}, "val_fraction"),
        ("Cs", BIN, (x, y, x, y), {"Cs": (0.1, -1.0)}, "Cs"),
        ("class-weight", BIN, (x, y, x, y), {"class_weight": "auto"}, "class_weight"),
    ]


@pytest.mark.parametrize(
    "task,args,kwargs,arg_name",
    [case[1:] for case in _bad_inputs()],
    ids=[case[0] for case in _bad_inputs()],
)
def test_bad_input_raises_naming_the_argument(task, args, kwargs, arg_name):
    with pytest.raises(ValueError, match=arg_name.replace(".", r"\.")):
        fit_probe(task, *args, **kwargs)


def test_probe_splits_subsample_test_with_one_seed_for_every_run():
    """eval.probe_max_test: at most N probe-test samples, the same N for every run seed (a
    paired comparison scores every method and seed on the same pairs); None keeps them all."""
    from infmasking.data.registry import load_dataset
    from infmasking.training.config import RunConfig
    from infmasking.training.probing import probe_splits

    data = load_dataset("trifeatures_tokens", max_pairs=64, options={"probe_pairs": 400})
    cfg = RunConfig()
    cfg.eval.probe_max_train = 100
    train0, test0 = probe_splits(data, cfg, seed=0)
    assert len(train0) == 100 and test0 is data.probe_test
    cfg.eval.probe_max_test = 250
    train0, test0 = probe_splits(data, cfg, seed=0)
    train1, test1 = probe_splits(data, cfg, seed=1)
    assert len(test0) == len(test1) == 250 < len(data.probe_test)
    for m in data.modalities:
        assert torch.equal(test0.index[m], test1.index[m])  # the same test pairs
    assert not torch.equal(train0.index[data.modalities[0]], train1.index[data.modalities[0]])
