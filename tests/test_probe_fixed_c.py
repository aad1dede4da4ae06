"""eval.probe_C: the published probe with one C and no search (smoke runs and the tests' tiny
preset); the default still searches, as published."""

import numpy as np
import torch
from conftest import TINY

from infmasking.cli import main
from infmasking.data.base import Task
from infmasking.evaluation.probe import PUBLISHED_CS, fit_probe
from infmasking.evaluation.solvers import published_logreg


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5).astype(int)
    return x[:300], y[:300], x[300:], y[300:]


def test_fixed_c_fits_that_c_only():
    task = Task("t", "classification", 3)
    x, y, xt, yt = _data()
    fixed = fit_probe(task, x, y, xt, yt, Cs=[10.0], refine=False)
    assert fixed.hparam == 10.0 and [c for c, _ in fixed.val_scores] == [10.0]
    # the refit is the published classifier at that C on all of probe-train
    w, b = published_logreg(torch.from_numpy(x), torch.from_numpy(y), 10.0, 3)
    pred = (torch.from_numpy(xt) @ w.T + b).argmax(1).numpy()
    assert fixed.metrics["accuracy"] == float((pred == yt).mean())
    # the default searches: the first sweep, then the bisection around its best
    searched = fit_probe(task, x, y, xt, yt)
    assert len(searched.val_scores) > len(PUBLISHED_CS)


def test_probe_c_option_is_checked(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--eval.probe_C", "0", "--out_dir", str(out)]) == 1
    assert "--eval.probe_C must be null (searched, as published) or a finite number > 0, got 0" in (
        capsys.readouterr().err
    )
    assert not out.exists()
