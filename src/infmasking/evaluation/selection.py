"""Which epoch a reported number comes from, and summary statistics over seeds.

A probe curve is a list of rows, one per probed epoch (``probe_curve.json``)::

    {"epoch": e, "step": s, "<task>": test score (%), "<task>_auroc": ...,
     "val_<task>": held-out score (%)}

where the held-out score is measured on the held-out part of probe-train (never the test
split). Three ways to pick an epoch:

- ``last``: the last epoch.
- ``best_valid``: the epoch with the best mean held-out score over the tasks — honest model
  selection (:func:`select_epoch` with ``by="valid"``).
- ``test``: the epoch with the best mean *test* score, stopping after ``patience`` epochs
  without improvement — the published Trifeatures protocol. It reads the test labels to
  choose, so it is optimistic; it is reported only beside the others, to measure by how much.

The random-initialisation row (epoch 0) is never selected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["mean_ci", "paired_difference", "select_epoch"]


def select_epoch(
    rows: Sequence[dict],
    tasks: Sequence[str],
    by: Literal["last", "valid", "test"],
    patience: int = 10,
) -> dict:
    """The row of ``rows`` chosen by ``by`` (see the module docstring); epoch 0 excluded.

    Raises:
        ValueError: if no trained epoch was probed, or a row lacks a held-out score.
    """
    trained = [r for r in rows if r["epoch"] > 0]
    if not trained:
        raise ValueError("the probe curve has no trained epoch (eval.probe_every must be >= 1)")
    if by == "last":
        return trained[-1]
    if by == "valid":
        missing = [t for t in tasks if f"val_{t}" not in trained[0]]
        if missing:
            raise ValueError(f"probe curve rows have no held-out score for tasks {missing}")
        return max(
            trained, key=lambda r: (float(np.mean([r[f"val_{t}"] for t in tasks])), -r["epoch"])
        )
    if by == "test":
        best, best_score = trained[0], -math.inf
        for r in trained:
            if r["epoch"] - best["epoch"] > patience and best_score > -math.inf:
                break  # early stopping on the test score, as published
            score = float(np.mean([r[t] for t in tasks]))
            if score > best_score:
                best, best_score = r, score
        return best
    raise ValueError(f"by must be 'last', 'valid' or 'test', got {by!r}")


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its Student-t confidence interval (nan for one value)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()) if len(v) else math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict:
    """a − b paired by seed: mean, CI half-width, and the two-sided paired t-test p-value."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, half = mean_ci(d, level)
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and d.std() > 0 else math.nan
    return {"mean": mean, "ci": half, "p": p, "n": len(d)}
