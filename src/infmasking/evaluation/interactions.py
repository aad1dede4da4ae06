"""How much redundancy, uniqueness and synergy a task holds (the library behind
``infmasking interactions``, :mod:`infmasking.commands.interactions`).

The estimator of Liang et al. (NeurIPS 2023, "Quantifying & Modeling Multimodal Interactions")
for datasets: discretise each modality by clustering its features, take the empirical joint
distribution of (cluster of x1, cluster of x2, label) and decompose I(Y; X1, X2) with BROJA
(:func:`infmasking.evaluation.pid.broja_pid`). Three or more modalities are read as pairs.

Readings (``source``):

- ``data``: the raw modalities (images average-pooled to at most 16×16 pixels and flattened,
  sequences as the mean and standard deviation of their unpadded steps, vectors as they are),
  against the task's labels, on probe-train.
- ``representations``: a trained run's unimodal features F({x_m}) in place of the raw
  modalities, against the labels, on probe-train — what the encoders expose.
- ``predictions``: the same clusters (fitted on probe-train, assigned on probe-test) against the
  predictions of the run's fused linear probe (the published probe, trained on probe-train) on
  probe-test — which interactions the model's fused prediction uses.

Clustering: each modality's features are standardised, reduced to at most 32 principal
components and clustered by k-means (k-means++, 4 restarts, seeded). The number of clusters per
modality is ``k = clip(floor(sqrt(N / (20 · n_classes))), 2, 20)`` unless given: about twenty
samples per cell of the k × k × n_classes joint table; at most 20 as in Liang et al.'s
experiments. The plug-in estimate is biased upwards (by about cells / (2 N ln 2) bits of total
information, 0.036 bits at twenty samples per cell), so every reading carries its
``null``: the same decomposition with the labels randomly permuted (mean of 3 permutations),
where every true value is 0 — read a term against its null. The interval is the estimate's
sampling spread: a bootstrap over samples with the clusters held fixed whose draws are
re-centred on the estimate (bias-corrected). Resampling with replacement duplicates samples,
which inflates a plug-in information estimate, so the plain percentiles of the draws sat above
the estimate they were meant to bracket (synergy 0.044 with an interval [0.052, 0.065]); the
inflation removed, each interval holds its estimate. It covers the estimate's noise, neither
the plug-in bias (the null's business) nor the choice of k. Every value is in bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infmasking.evaluation.pid import broja_pid, joint_table

__all__ = [
    "Reading",
    "cluster",
    "cluster_rule",
    "decompose",
    "format_table",
    "modality_pairs",
    "raw_features",
    "read_pairs",
    "sample_subset",
    "task_labels",
]

ESTIMATOR = (
    "BROJA PID (Bertschinger et al. 2014) of the plug-in joint distribution of k-means "
    "clusters per modality (Liang et al. 2023), solved as an exponential-cone program (Clarabel)"
)
MAX_DIMS = 32
POOL = 16


def cluster_rule(n: int, n_classes: int) -> int:
    """Clusters per modality for ``n`` samples and ``n_classes`` labels: about twenty samples
    per cell of the joint table, between 2 and 20."""
    return int(min(20, max(2, math.floor(math.sqrt(n / (20 * n_classes))))))


@dataclass
class Clusters:
    """A fitted discretisation of one modality's features (apply it to other samples)."""

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # [D, r]
    centres: np.ndarray  # [k, r]

    def assign(self, x: np.ndarray) -> np.ndarray:
        """[N, D] features -> [N] cluster codes."""
        z = ((x - self.mean) / self.scale) @ self.components
        d = (z**2).sum(1)[:, None] - 2 * z @ self.centres.T + (self.centres**2).sum(1)[None, :]
        return d.argmin(1)


def cluster(x: np.ndarray, k: int, seed: int, name: str) -> tuple[np.ndarray, Clusters]:
    """k-means codes [N] of features ``x`` [N, D] (standardised, at most 32 principal
    components) and the fitted :class:`Clusters`.

    Raises:
        ValueError: naming the modality, for non-finite features or fewer than ``k`` distinct
            samples (a constant modality cannot be clustered).
    """
    from sklearn.cluster import KMeans

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if not np.isfinite(x).all():
        raise ValueError(f"modality {name!r}: non-finite feature values cannot be clustered")
    distinct = len(np.unique(x, axis=0)) if len(x) <= 50_000 else len(x)
    if distinct < k:
        raise ValueError(
            f"modality {name!r} cannot be clustered into {k} clusters: it has {distinct} distinct "
            "sample(s)"
            + (" (a constant modality carries no information)" if distinct == 1 else "")
            + "; give fewer --clusters or more samples"
        )
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    r = min(MAX_DIMS, z.shape[1], len(z))
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    components = vt[:r].T
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z @ components)
    fitted = Clusters(mean, scale, components, km.cluster_centers_)
    return fitted.assign(x), fitted


def raw_features(split, modality: str, kind: str) -> np.ndarray:
    """The raw modality as a feature matrix [N, D] (see the module docstring)."""
    import torch

    x = split.inputs[modality]
    idx = split.index.get(modality)
    x = x if idx is None else x[idx]
    if kind == "image":
        x = x.float()
        h, w = x.shape[-2:]
        if max(h, w) > POOL:
            x = torch.nn.functional.adaptive_avg_pool2d(x, (min(h, POOL), min(w, POOL)))
        return x.reshape(len(x), -1).numpy()
    if kind == "sequence":
        x = x.float()
        pad = split.padding.get(modality)
        keep = (
            torch.ones(x.shape[:2], dtype=torch.bool)
            if pad is None
            else ~(pad if idx is None else pad[idx])
        )
        w = keep.unsqueeze(-1).float()
        n = w.sum(1).clamp_min(1.0)
        mean = (x * w).sum(1) / n
        std = (((x - mean[:, None]) ** 2 * w).sum(1) / n).sqrt()
        return torch.cat([mean, std], 1).numpy()
    return x.float().reshape(len(x), -1).numpy()


def task_labels(task, y, label: int | None) -> tuple[np.ndarray, int, str]:
    """Integer codes [N], their number and the name of what is decomposed, for a
    classification task or one label (``label``) of a multilabel task.

    Raises:
        ValueError: for a regression task, a multilabel task without ``label``, or one class.
    """
    y = np.asarray(y)
    name = task.name
    if task.kind == "regression":
        raise ValueError(
            f"task {task.name!r} is a regression task: the decomposition needs discrete labels "
            "(choose a classification task with --task)"
        )
    if task.kind == "multilabel":
        if label is None or not 0 <= label < y.shape[1]:
            raise ValueError(
                f"task {task.name!r} is multilabel ({y.shape[1]} labels): choose one with "
                f"--label k, 0 <= k < {y.shape[1]} (got {label})"
            )
        y, name = y[:, label], f"{task.name}[{label}]"
    elif label is not None:
        raise ValueError(f"--label is for multilabel tasks; task {task.name!r} is {task.kind}")
    classes, codes = np.unique(y.reshape(-1), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"task {name!r} has a single class ({classes.tolist()}) in these samples: "
            "there is no information to decompose"
        )
    return codes, len(classes), name


@dataclass
class Reading:
    """One decomposition: the JSON of the command (see :meth:`to_dict`)."""

    source: str
    task: str
    modalities: tuple[str, str]
    values: dict[str, Any]
    interval: dict[str, Any]
    null: dict[str, Any]
    clusters: dict[str, int]
    estimator: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "modalities": list(self.modalities),
            "source": self.source,
            "redundancy": self.values["redundancy"],
            "unique": self.values["unique"],
            "synergy": self.values["synergy"],
            "total": self.values["total"],
            "units": "bits",
            "estimator": self.estimator,
            "clusters": self.clusters,
            "interval": self.interval,
            "null": self.null,
        }


def _values(p, pair) -> dict[str, Any]:
    r = broja_pid(p)
    return {
        "redundancy": r.redundancy,
        "unique": {pair[0]: r.unique[0], pair[1]: r.unique[1]},
        "synergy": r.synergy,
        "total": r.total,
        "gap": r.gap,
    }


def decompose(
    codes: tuple[np.ndarray, np.ndarray],
    y: np.ndarray,
    shape: tuple[int, int, int],
    pair: tuple[str, str],
    *,
    bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    permutations: int = 3,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """PID of (codes[0], codes[1]; y) in bits and its bootstrap interval.

    Args:
        codes: cluster codes [N] of the two modalities.  y: label codes [N].
        shape: (k1, k2, n_classes).  pair: the two modality names.
        bootstrap: resamples (0: no interval).  level: the interval's coverage.
        seed: seeds the resampling.  progress: called with 1 after each resample.
        permutations: label permutations averaged for the null (0: none).

    Returns:
        (values, interval, null): values = {redundancy, unique: {m: bits}, synergy, total,
        gap}; interval = {level, resamples, redundancy: [lo, hi], unique: {m: [lo, hi]}, ...};
        null = the mean values with the labels permuted (the plug-in bias floor).
    """
    a, b = codes
    values = _values(joint_table(a, b, y, shape), pair)
    perm_rng = np.random.default_rng([seed, 1])
    nulls = [
        _values(joint_table(a, b, perm_rng.permutation(y), shape), pair)
        for _ in range(permutations)
    ]
    null: dict[str, Any] = {"permutations": permutations}
    if nulls:
        null.update(
            redundancy=float(np.mean([d["redundancy"] for d in nulls])),
            unique={m: float(np.mean([d["unique"][m] for d in nulls])) for m in pair},
            synergy=float(np.mean([d["synergy"] for d in nulls])),
            total=float(np.mean([d["total"] for d in nulls])),
        )
    interval: dict[str, Any] = {"level": level, "resamples": bootstrap}
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            i = rng.integers(0, len(y), len(y))
            draws.append(_values(joint_table(a[i], b[i], y[i], shape), pair))
            if progress:
                progress(1)
        getters = {
            "redundancy": lambda d: d["redundancy"],
            **{f"unique.{m}": (lambda d, m=m: d["unique"][m]) for m in pair},
            "synergy": lambda d: d["synergy"],
            "total": lambda d: d["total"],
        }
        spans, inflation = {}, {}
        for name, get in getters.items():
            spans[name], inflation[name] = recentred_interval(
                get(values), np.array([get(d) for d in draws]), level
            )
        interval.update(
            method="bootstrap percentiles re-centred on the estimate (bias-corrected)",
            redundancy=spans["redundancy"],
            unique={m: spans[f"unique.{m}"] for m in pair},
            synergy=spans["synergy"],
            total=spans["total"],
            resampling_inflation={
                "redundancy": inflation["redundancy"],
                "unique": {m: inflation[f"unique.{m}"] for m in pair},
                "synergy": inflation["synergy"],
                "total": inflation["total"],
            },
        )
    return values, interval, null


def recentred_interval(
    estimate: float, draws: np.ndarray, level: float = 0.95
) -> tuple[list[float], float]:
    """The ``level`` interval of ``estimate`` from bootstrap ``draws`` of it, with the
    bootstrap's bias removed: the draws are shifted by ``estimate - mean(draws)`` before their
    percentiles are read (information is never negative: the lower end is clipped at 0).

    Returns:
        ([lo, hi], inflation): the interval, and ``mean(draws) - estimate``, the resampling's
        inflation that was removed.
    """
    inflation = float(np.mean(draws) - estimate)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    lo, hi = (float(v) for v in np.quantile(draws - inflation, q))
    return [max(lo, min(0.0, estimate)), hi], inflation


def sample_subset(n: int, max_samples: int, seed: int) -> np.ndarray:
    """Indices of at most ``max_samples`` of ``n`` samples, seeded and sorted (all if fewer)."""
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))


def modality_pairs(modalities: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair of modalities, in order: ``[a, b, c]`` -> ab, ac, bc."""
    return [(a, b) for i, a in enumerate(modalities) for b in modalities[i + 1 :]]


def read_pairs(
    source: str,
    task_name: str,
    feats: dict[str, np.ndarray],
    y: np.ndarray,
    n_classes: int,
    *,
    clusters: int | None,
    bootstrap: int,
    seed: int,
    extra: dict[str, Any],
    assign: dict[str, np.ndarray] | None = None,
    bar=None,
) -> list[Reading]:
    """One :class:`Reading` per pair of modalities. ``assign``: features of other samples to
    code with the clusters fitted on ``feats`` (the predictions reading)."""
    k = clusters or cluster_rule(len(y), n_classes)
    codes = {}
    for j, (m, x) in enumerate(feats.items()):
        c, fitted = cluster(x, k, seed + j, m)
        codes[m] = fitted.assign(assign[m]) if assign is not None else c
    out = []
    for pair in modality_pairs(list(feats)):
        values, interval, null = decompose(
            (codes[pair[0]], codes[pair[1]]),
            y,
            (k, k, n_classes),
            pair,
            bootstrap=bootstrap,
            seed=seed,
            progress=bar.update if bar is not None else None,
        )
        estimator = {"name": ESTIMATOR, "gap": values.pop("gap"), "samples": len(y), **extra}
        out.append(
            Reading(
                source, task_name, pair, values, interval, null, {m: k for m in pair}, estimator
            )
        )
    return out


def format_table(readings: Sequence[Reading]) -> str:
    """The readings as a Markdown table (bits, with the bootstrap interval and the synergy
    of the permuted-label null)."""

    def cell(v, span):
        return f"{v:.3f}" + (f" [{span[0]:.3f}, {span[1]:.3f}]" if span else "")

    lines = [
        "| source | task | modalities | redundancy (bits) | unique 1 (bits) | unique 2 (bits) "
        "| synergy (bits) | total (bits) | synergy null (bits) | clusters |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in readings:
        a, b = r.modalities
        iv, v = r.interval, r.values
        lines.append(
            f"| {r.source} | {r.task} | {a}, {b} | {cell(v['redundancy'], iv.get('redundancy'))} "
            f"| {cell(v['unique'][a], iv.get('unique', {}).get(a))} "
            f"| {cell(v['unique'][b], iv.get('unique', {}).get(b))} "
            f"| {cell(v['synergy'], iv.get('synergy'))} | {cell(v['total'], iv.get('total'))} "
            f"| {r.null.get('synergy', float('nan')):.3f} | {r.clusters[a]} × {r.clusters[b]} |"
        )
    return "\n".join(lines)
