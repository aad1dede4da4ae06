"""The partial information decomposition (evaluation/pid.py) against closed forms and an
independent solver, its estimator from samples, and ``infmasking interactions``."""

import json

import numpy as np
import pytest
from conftest import tiny_run_copy
from scipy.optimize import minimize

from infmasking.cli import main
from infmasking.evaluation.interactions import cluster, cluster_rule, decompose
from infmasking.evaluation.pid import broja_pid, joint_table, mutual_information


def _table(f, n1=2, n2=2, ny=2):
    p = np.zeros((n1, n2, ny))
    for a in range(n1):
        for b in range(n2):
            p[a, b, f(a, b)] += 1
    return p / p.sum()


def _check(r, redundancy, u1, u2, synergy, tol=1e-6):
    assert r.redundancy == pytest.approx(redundancy, abs=tol)
    assert r.unique[0] == pytest.approx(u1, abs=tol)
    assert r.unique[1] == pytest.approx(u2, abs=tol)
    assert r.synergy == pytest.approx(synergy, abs=tol)
    assert r.redundancy + sum(r.unique) + r.synergy == pytest.approx(r.total, abs=1e-12)


def test_closed_forms():
    _check(broja_pid(_table(lambda a, b: a ^ b)), 0, 0, 0, 1)  # XOR: one bit of synergy
    _check(broja_pid(_table(lambda a, b: a)), 0, 1, 0, 0)  # Y = X1, X2 independent noise
    _check(broja_pid(_table(lambda a, b: b)), 0, 0, 1, 0)
    copy = np.zeros((2, 2, 2))
    copy[0, 0, 0] = copy[1, 1, 1] = 0.5  # X1 = X2 = Y
    _check(broja_pid(copy), 1, 0, 0, 0)
    # AND of two fair bits: I = 0.8113, R = 0.3113 (= I(Y; X1) + I(Y; X2) - ... ), S = 0.5
    r = broja_pid(_table(lambda a, b: a & b))
    h = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    _check(r, h - 0.5, 0, 0, 0.5)
    assert r.total == pytest.approx(h, abs=1e-12) and r.gap < 1e-6
    # two independent bits, Y = (X1, X2): one bit unique to each, nothing shared or synergistic
    _check(broja_pid(_table(lambda a, b: 2 * a + b, ny=4)), 0, 1, 1, 0)


def _reference_synergy(p):
    """Independent check, straight from the definition, for 2 × 2 × ny tables: there Δ_p is a
    box — each label's 2 × 2 slice with fixed row and column sums has one free entry t_y —
    so max H_q(Y | X1, X2) is a bounded search over (t_1, ..., t_ny): a grid, then L-BFGS-B."""
    m1, m2 = p.sum(1), p.sum(0)  # [2, ny]
    lo = np.maximum(0, m2[0] - m1[1])
    hi = np.minimum(m1[0], m2[0])

    def q_of(t):
        q = np.empty(p.shape)
        q[0, 0], q[0, 1] = t, m1[0] - t
        q[1, 0], q[1, 1] = m2[0] - t, m1[1] - m2[0] + t
        return q.clip(0)

    def neg_cond_entropy(t):
        q = q_of(t)
        s = q.sum(2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.where(q > 0, q * np.log(q / s), 0.0).sum())

    n = 201 if len(lo) == 2 else 31  # the grid only seeds L-BFGS-B (the problem is convex)
    grids = np.meshgrid(*[np.linspace(a, b, n) for a, b in zip(lo, hi)], indexing="ij")
    points = np.stack([g.reshape(-1) for g in grids], 1)
    best = min(points, key=neg_cond_entropy)
    res = minimize(neg_cond_entropy, best, method="L-BFGS-B", bounds=list(zip(lo, hi)))
    t = res.x if res.fun <= neg_cond_entropy(best) else best
    q = q_of(t)
    ny = p.shape[2]
    return mutual_information(p.reshape(-1, ny)) - mutual_information(q.reshape(-1, ny))


@pytest.mark.parametrize("seed, ny", [(0, 2), (1, 2), (2, 3)])
def test_matches_an_independent_solver(seed, ny):
    p = np.random.default_rng(seed).dirichlet(np.ones(4 * ny)).reshape(2, 2, ny)
    r = broja_pid(p)
    assert r.synergy == pytest.approx(_reference_synergy(p), abs=1e-6)
    assert min(r.redundancy, *r.unique, r.synergy) > -1e-7  # BROJA terms are non-negative
    swapped = broja_pid(p.transpose(1, 0, 2))  # the roles of the modalities swap
    assert swapped.unique == pytest.approx(r.unique[::-1], abs=1e-6)


def test_bad_tables():
    with pytest.raises(ValueError, match="shape"):
        broja_pid(np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        broja_pid(-np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="codes of y"):
        joint_table(np.zeros(3), np.zeros(3), np.array([0, 1, 2]), (1, 1, 2))


def test_estimate_converges_as_samples_grow():
    """XOR from samples: the plug-in decomposition approaches the exact one (1 bit of synergy,
    nothing else) as N grows; the permuted-label null falls to 0 and the interval covers."""
    rng = np.random.default_rng(0)
    errors = []
    for n in (100, 1_000, 20_000):
        a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
        values, interval, null = decompose((a, b), a ^ b, (2, 2, 2), ("x1", "x2"), bootstrap=30)
        errors.append(abs(values["synergy"] - 1) + values["redundancy"])
        assert values["total"] == pytest.approx(1.0, abs=0.05)
    assert errors[2] < errors[0] and errors[2] < 2e-3
    assert null["synergy"] < 1e-3 and interval["synergy"][0] <= 1.0 + 1e-9
    assert interval["level"] == 0.95 and interval["resamples"] == 30


def _terms(d, pair):
    return {
        "redundancy": d["redundancy"],
        **{f"unique {m}": d["unique"][m] for m in pair},
        "synergy": d["synergy"],
        "total": d["total"],
    }


def test_estimates_sit_inside_their_intervals():
    """A plug-in estimate with many cells per sample (where resampling with replacement
    inflates it most): every term's interval holds the estimate, though the plain percentiles
    of the draws do not (the failure the re-centring removes)."""
    rng = np.random.default_rng(3)
    n, k = 300, 6
    a, b = rng.integers(0, k, n), rng.integers(0, k, n)
    y = ((a + b) % 2 ^ (rng.random(n) < 0.3)).astype(int)
    pair = ("x1", "x2")
    values, interval, _ = decompose((a, b), y, (k, k, 2), pair, bootstrap=60, seed=1)
    got = _terms(values, pair)
    spans = _terms(interval, pair)
    for term, v in got.items():
        lo, hi = spans[term]
        assert lo <= v <= hi, (term, v, spans[term])
    # the plain percentiles (the re-centred ones shifted back) miss the estimate
    inflation = interval["resampling_inflation"]
    assert interval["synergy"][0] + inflation["synergy"] > values["synergy"]
    assert interval["total"][0] + inflation["total"] > values["total"]
    assert "re-centred" in interval["method"]


def test_recentred_interval_removes_the_inflation():
    from infmasking.evaluation.interactions import recentred_interval

    draws = np.array([0.30, 0.32, 0.34, 0.36, 0.38])  # all above the estimate
    (lo, hi), inflation = recentred_interval(0.2, draws, level=0.5)
    assert inflation == pytest.approx(0.14)
    assert lo == pytest.approx(0.2 - 0.02) and hi == pytest.approx(0.2 + 0.02)
    (lo, _), _ = recentred_interval(0.01, np.array([0.0, 0.2, 0.4]), level=0.9)
    assert lo == 0.0  # information is never negative


def test_cluster_rule_and_clustering_errors():
    assert cluster_rule(10_000, 2) == 15 and cluster_rule(100, 10) == 2
    assert cluster_rule(10**7, 2) == 20
    x = np.repeat([[0.0], [5.0], [10.0]], 30, axis=0)
    codes, fitted = cluster(x + 0.01 * np.random.default_rng(0).normal(size=x.shape), 3, 0, "m")
    assert len(set(codes[:30])) == len(set(codes[30:60])) == 1 and len(set(codes)) == 3
    assert (fitted.assign(x) == codes).all()
    with pytest.raises(ValueError, match="modality 'flat'.*constant"):
        cluster(np.ones((50, 4)), 3, 0, "flat")


def _xor_npz(path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    split = np.array(["train"] * n, dtype="<U5")
    split[-100:] = "test"
    np.savez(
        path,
        x_a=(a[:, None] * 4.0 + rng.normal(0, 0.1, (n, 3))),
        x_b=(b[:, None] * 4.0 + rng.normal(0, 0.1, (n, 3))),
        y=a ^ b,
        y_value=rng.normal(size=n),
        split=split,
    )


def test_command_on_data(tmp_path, capsys):
    f, out = tmp_path / "xor.npz", tmp_path / "pid.json"
    _xor_npz(f)
    args = ["interactions", "--preset", "npz", "--data.path", str(f), "--task", "y"]
    assert main([*args, "--clusters", "2", "--bootstrap", "10", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert set(d) >= {"task", "modalities", "redundancy", "unique", "synergy", "total", "units"}
    assert set(d) >= {"estimator", "clusters", "interval", "null"}
    assert d["task"] == "y" and d["modalities"] == ["a", "b"] and d["units"] == "bits"
    assert d["synergy"] > 0.95 and d["redundancy"] < 0.02 and d["clusters"] == {"a": 2, "b": 2}
    assert set(d["unique"]) == {"a", "b"} and len(d["interval"]["synergy"]) == 2
    said = capsys.readouterr()
    assert "| data | y | a, b |" in said.out and "| synergy (bits) |" in said.out
    assert "Bits; [lo, hi]: 95 % interval of the estimate (10 bootstrap resamples" in said.out
    assert "bootstrap:" not in said.err  # not a terminal: no progress bar fragments
    # refusals: an existing --out, a regression task, a single class
    assert main([*args, "--bootstrap", "0", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main([*args[:-1], "value", "--bootstrap", "0"]) == 1
    assert "regression" in capsys.readouterr().err
    one = tmp_path / "one.npz"
    np.savez(one, x_a=np.random.rand(60, 2), x_b=np.random.rand(60, 2), y=np.zeros(60, int))
    assert main(["interactions", "--preset", "npz", "--data.path", str(one), "--task", "y"]) == 1
    assert "task 'y' has a single class" in capsys.readouterr().err


def test_command_on_a_run(tmp_path, tmp_path_factory, tiny_run_once, capsys, monkeypatch):
    """A trained run: the decomposition of its unimodal representations against the labels
    and against its fused probe's predictions (all zero when the probe predicts one class)."""
    run = tiny_run_copy(tiny_run_once, tmp_path_factory, "interactions")  # 1-epoch tiny run
    out = tmp_path / "pid.json"
    capsys.readouterr()
    args = ["interactions", str(run), "--task", "share", "--bootstrap", "3", "--out", str(out)]
    assert main(args) == 0
    readings = json.loads(out.read_text())
    assert [r["source"] for r in readings] == ["representations", "predictions"]
    for r in readings:
        assert r["modalities"] == ["image1", "image2"] and r["task"] == "share"
        assert 0 <= r["total"] <= np.log2(10) + 1e-9
    assert readings[1]["estimator"]["split"] == "probe_test"
    assert main(["interactions", str(run), "--task", "nope"]) == 1
    assert "unknown task 'nope'" in capsys.readouterr().err
    from infmasking.evaluation import probe

    fit = probe.fit_probe

    def constant(*a, **k):
        r = fit(*a, **k)
        r.predictions = np.zeros_like(r.predictions)
        return r

    monkeypatch.setattr(probe, "fit_probe", constant)
    out2 = tmp_path / "pid_constant.json"
    assert main([*args[:-1], str(out2)]) == 0
    flat = json.loads(out2.read_text())[1]
    assert flat["source"] == "predictions" and flat["total"] == 0 and flat["synergy"] == 0
    assert "one class" in flat["estimator"]["note"]


@pytest.fixture(scope="module")
def preset_files(tmp_path_factory):
    from baseline_steps import write_files

    return write_files(tmp_path_factory.mktemp("interaction_files"))


def _preset_params():
    from infmasking.training.config_files import presets

    return [
        pytest.param(p, marks=pytest.mark.slow) if p == "trifeatures224" else p
        for p in sorted(presets())
    ]


@pytest.mark.parametrize("preset", _preset_params())
def test_every_preset(preset, preset_files, tmp_path, capsys):
    """The command on every preset (small files in the real formats): a classification task
    decomposes (a multilabel one with --label), a regression-only preset is refused by name."""
    from baseline_steps import FILE_OF

    from infmasking.training.config_files import load_config, presets
    from infmasking.training.loading import load_data

    args = ["interactions", "--preset", preset, "--bootstrap", "0", "--clusters", "2"]
    cfg = load_config(presets()[preset])
    if preset in FILE_OF:
        cfg.data.path = str(preset_files[FILE_OF[preset]])
        args += ["--data.path", cfg.data.path]
    if preset == "mmimdb":
        cfg.data.options = {**(cfg.data.options or {}), "bounds": [48, 56, 72]}
        args += ["--data.options", json.dumps(cfg.data.options)]
    if preset.startswith("trifeatures"):
        args += ["--data.trifeatures.max_pairs", "64", "--max_samples", "400"]
    tasks = load_data(cfg).tasks
    usable = [t for t in tasks if t.kind != "regression"]
    out = tmp_path / "pid.json"
    if not usable:
        assert main([*args, "--task", tasks[0].name]) == 1
        assert "regression task" in capsys.readouterr().err
        return
    task = usable[0]
    extra = ["--label", "0"] if task.kind == "multilabel" else []
    assert main([*args, "--task", task.name, *extra, "--out", str(out)]) == 0, capsys.readouterr()
    d = json.loads(out.read_text())
    readings = d if isinstance(d, list) else [d]
    m = len(load_data(cfg).modalities)
    assert len(readings) == m * (m - 1) // 2  # every pair of modalities
    for r in readings:
        parts = r["redundancy"] + sum(r["unique"].values()) + r["synergy"]
        assert parts == pytest.approx(r["total"], abs=1e-6) and r["units"] == "bits"
