"""Linear probes on frozen features (docs/METHOD.md §3, docs/PROBES.md).

A probe is fitted on probe-train features and scored on probe-test features, which are never
looked at before the last step. Two probes, named by ``probe``:

``"published"`` (the default; the probe of the InfMasking and CoMM papers) for classification:

1. raw features (no standardisation), float32;
2. a stratified 60 / 40 split of probe-train (``StratifiedShuffleSplit(train_size=0.6,
   random_state=48)`` in scikit-learn's sense: the same split whatever the run's seed);
3. ``C`` searched over 1e-6, 1e-4, ..., 1e6, then refined by a bisection over 29 log-spaced
   values within two decades of the best, the criterion being the **balanced accuracy at
   argmax** on the 40 % (binary tasks included);
4. the classifier is a zero-initialised linear layer with bias trained on mean cross-entropy
   + (1/C)·½·‖W‖_F (the Frobenius norm, not squared; the bias is not penalised) by L-BFGS
   with a strong-Wolfe line search, 100 iterations;
5. refit on all of probe-train with the chosen ``C``; test balanced accuracy at argmax, with
   accuracy and (binary tasks) AUROC beside.

``"standardised"`` (the library's earlier probe): features standardised with the training
statistics, ``C`` chosen on a seeded ``val_fraction`` hold-out among ``DEFAULT_CS`` by AUROC
for binary tasks and by balanced accuracy otherwise, scikit-learn's L2 logistic regression.

Multilabel and regression tasks use the standardised probes under either name (the result's
``probe`` field says which ran):

==============  ======================================  ============================  ==========
kind            model                                   metrics                       published
==============  ======================================  ============================  ==========
classification  multinomial logistic regression         ``accuracy`` (top-1),         balanced
                (published: torch L-BFGS, ½‖W‖ penalty; ``balanced_accuracy`` (macro  accuracy
                standardised: scikit-learn, L2²)        recall), ``auroc`` (binary)
multilabel      one-vs-rest L2 logistic regression      ``f1_weighted``,              f1_weighted
                                                        ``f1_macro``, ``f1_micro``
                                                        (threshold 0.5)
regression      ridge                                   ``mse``, ``r2``               mse
==============  ======================================  ============================  ==========

Why it matters: with few positives (the Trifeatures synergy task has 10 %), the standardised
probe's AUROC criterion picks the strongest regularisation, whose argmax predicts the majority
class for every pair, so its balanced accuracy reads ≈ 50 whatever the features hold; the
published criterion chooses the ``C`` that makes the argmax useful.

Example::

    >>> import numpy as np
    >>> from infmasking.data.base import Task
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(600, 8)); y = (x[:, 0] > 0).astype(int)
    >>> r = fit_probe(Task("sign", "classification", 2), x[:400], y[:400], x[400:], y[400:])
    >>> r.metrics["balanced_accuracy"] > 0.9
    True
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from infmasking.data.base import Task

__all__ = [
    "DEFAULT_CS",
    "PROBES",
    "PUBLISHED_CS",
    "PUBLISHED_METRIC",
    "ProbeResult",
    "fit_probe",
    "probe_all",
]

#: Inverse regularisation strengths tried (ascending, so warm starts follow the path from
#: strong to weak regularisation). Ridge uses ``alpha = 1 / C``: 1e-2 … 1e4.
DEFAULT_CS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: The probes (see the module docstring).
PROBES: tuple[str, ...] = ("published", "standardised")

#: The published probe's first sweep of C; the second sweep refines around the best.
PUBLISHED_CS: tuple[float, ...] = (1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6)

_PUBLISHED_TRAIN_SIZE = 0.6  # fraction of probe-train the published search fits on
_PUBLISHED_SPLIT_SEED = 48  # the published hold-out's random_state
_PUBLISHED_MAX_ITER = 100  # L-BFGS iterations per published fit

#: The metric each task kind is reported with in the papers (see module docstring).
PUBLISHED_METRIC: dict[str, str] = {
    "classification": "balanced_accuracy",
    "multilabel": "f1_weighted",
    "regression": "mse",
}

_MAX_ITER = 500  # lbfgs iterations per fit; warm starts along the C path make this ample


@dataclass
class ProbeResult:
    """The outcome of one linear probe.

    Attributes:
        task: task name.
        kind: "classification" | "multilabel" | "regression".
        metrics: test metrics (see module docstring); ``nan`` where undefined (e.g. AUROC when
            the test set holds one class only).
        published_metric: the key of ``metrics`` that papers report for this kind.
        hparam_name: "C" (logistic regression) or "alpha" (ridge).
        hparam: the chosen value, selected on the held-out part of the training features.
        selection_metric: the criterion used on the held-out part.
        val_scores: ``[[value, held-out score], ...]`` for every value tried.
        val_score: the held-out score of the chosen value (a validation number that never
            reads the test split; used to choose an epoch, ``eval.select best_valid``).
        n_train, n_test: numbers of training / test samples.
        converged: whether every solver call of the final refit converged.
        class_weight: the class weighting of a logistic probe (``None`` = unweighted).
        probe: the probe that ran, "published" or "standardised" (see the module docstring).
        notes: human-readable warnings (non-convergence, constant labels, ...).
        predictions: the predicted test labels [M] of the published classification probe
            (None for the other probes); not part of :meth:`to_dict`.
    """

    task: str
    kind: str
    metrics: dict[str, float]
    published_metric: str
    hparam_name: str
    hparam: float
    selection_metric: str
    val_scores: list[list[float]]
    n_train: int
    n_test: int
    converged: bool = True
    val_score: float = math.nan
    class_weight: str | dict | None = None
    probe: str = "standardised"
    notes: list[str] = field(default_factory=list)
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def published_value(self) -> float:
        """``metrics[published_metric]``."""
        return self.metrics[self.published_metric]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``nan`` / ``inf`` become ``None``, keys become strings)."""
        d = asdict(self)
        d.pop("predictions")
        return _jsonable(d)


# --------------------------------------------------------------------------------------------
# public API


def fit_probe(
    task: Task,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    probe: str = "published",
    seed: int = 0,
    val_fraction: float | None = None,
    Cs: Sequence[float] | None = None,
    class_weight: str | Mapping | None = None,
) -> ProbeResult:
    """Fit a linear probe for ``task`` on training features and score it on test features.

    Args:
        task: the task; ``task.kind`` selects the probe, ``task.num_classes`` (if > 0) is
            checked against the labels.
        x_train: features [N, D] (numpy array, torch tensor or nested sequence).
        y_train: targets, [N] integer labels (classification), [N, k] 0/1 (multilabel),
            [N] or [N, k] float (regression).
        x_test: features [M, D].
        y_test: targets with M rows, same layout as ``y_train``.
        probe: "published" (default) or "standardised" (see the module docstring); multilabel
            and regression tasks use the standardised probes under either name.
        seed: seeds the standardised probe's held-out split (the published split is fixed).
        val_fraction: fraction of the training samples held out to choose the regularisation
            (default 0.4 for the published probe, 0.2 for the standardised one).
        Cs: inverse regularisation strengths tried (default ``PUBLISHED_CS``, refined, for the
            published probe; ``DEFAULT_CS`` for the standardised one; ridge: ``alpha = 1/C``).
        class_weight: ``None``, ``"balanced"`` or a ``{label: weight}`` dict: the weights of
            each class in the logistic losses (each binary problem for multilabel); ignored
            by ridge.

    Returns:
        A :class:`ProbeResult`.

    Raises:
        ValueError: naming the offending argument, for mismatched lengths, non-finite values,
            a single class in ``y_train``, targets of the wrong shape for ``task.kind``, an
            unknown kind or probe, or a bad ``val_fraction`` / ``Cs`` / ``class_weight``.
    """
    if probe not in PROBES:
        raise ValueError(f"probe: expected one of {list(PROBES)}, got {probe!r}")
    published = probe == "published" and task.kind == "classification"
    if val_fraction is None:
        val_fraction = 1.0 - _PUBLISHED_TRAIN_SIZE if published else 0.2
    if Cs is None:
        Cs = PUBLISHED_CS if published else DEFAULT_CS
    Cs = _check_options(task, val_fraction, Cs, class_weight)
    x_train, y_train, x_test, y_test = _check_data(task, x_train, y_train, x_test, y_test)
    if published:
        return _published_probe(
            task, x_train, y_train, x_test, y_test, val_fraction, Cs, class_weight
        )
    probe_, fit_idx, val_idx = _probe_and_holdout(task, y_train, val_fraction, seed, class_weight)
    # 1) choose the regularisation on the held-out part of the training features
    val_scores = _validation_scores(probe_, x_train, y_train, fit_idx, val_idx, Cs)
    best = max(range(len(Cs)), key=lambda i: tuple(val_scores[i][1:]))
    # 2) refit on all training features, 3) score on the test features
    metrics = _refit_and_score(probe_, x_train, y_train, x_test, y_test, Cs[best])
    return _result(
        task, probe_, metrics, val_scores, best, Cs[best], len(x_train), len(x_test), class_weight
    )


def probe_all(
    tasks: Sequence[Task],
    train_features: Any,
    train_targets: Mapping[str, Any],
    test_features: Any,
    test_targets: Mapping[str, Any],
    *,
    probe: str = "published",
    seed: int = 0,
    class_weight: str | Mapping | None = None,
    val_fraction: float | None = None,
    Cs: Sequence[float] | None = None,
    verbose: bool = False,
) -> dict[str, ProbeResult]:
    """Probe every task on the same features (``verbose``: one line per task as it finishes).

    Args:
        tasks: the tasks to probe.
        train_features: [N, D] features; test_features: [M, D].
        train_targets / test_targets: task name -> targets with N / M rows (layouts as in
            :func:`fit_probe`).
        probe, seed, class_weight, val_fraction, Cs: as in :func:`fit_probe`
            (``class_weight`` is ignored for regression tasks).

    Returns:
        task name -> :class:`ProbeResult`, in the order of ``tasks``.
    """
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: duplicate task names {names}")
    for arg, targets in (("train_targets", train_targets), ("test_targets", test_targets)):
        missing = [n for n in names if n not in targets]
        if missing:
            raise ValueError(f"{arg}: no targets for tasks {missing} (have {sorted(targets)})")
    x_train = _features(train_features, "train_features")
    x_test = _features(test_features, "test_features")
    out = {}
    for i, t in enumerate(tasks):
        start = time.perf_counter()
        out[t.name] = fit_probe(
            t,
            x_train,
            train_targets[t.name],
            x_test,
            test_targets[t.name],
            probe=probe,
            seed=seed,
            val_fraction=val_fraction,
            Cs=Cs,
            class_weight=class_weight,
        )
        if verbose:
            r = out[t.name]
            print(
                f"  probe {i + 1}/{len(tasks)} {t.name}: "
                f"{r.published_metric} {100 * r.published_value:.1f}"
                f" ({r.hparam_name} {r.hparam:g}, {time.perf_counter() - start:.1f} s)",
                flush=True,
            )
    return out


# --------------------------------------------------------------------------------------------
# the steps of fit_probe


def _check_options(
    task: Task, val_fraction: float, Cs: Sequence[float], class_weight: str | Mapping | None
) -> list[float]:
    """Validate the task kind and the options; returns ``Cs`` sorted ascending, as floats."""
    kind = task.kind
    if kind not in PUBLISHED_METRIC:
        raise ValueError(
            f"task.kind: unknown task kind {kind!r} for task {task.name!r}; "
            f"expected one of {sorted(PUBLISHED_METRIC)}"
        )
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction: must be in (0, 1), got {val_fraction}")
    Cs = sorted(float(c) for c in Cs)
    if not Cs or any(not math.isfinite(c) or c <= 0 for c in Cs):
        raise ValueError(f"Cs: need at least one finite positive value, got {Cs}")
    weighting_ok = class_weight is None or isinstance(class_weight, Mapping)
    if not (weighting_ok or class_weight == "balanced"):
        raise ValueError(f"class_weight: expected None, 'balanced' or a dict, got {class_weight!r}")
    return Cs


def _check_data(
    task: Task, x_train: Any, y_train: Any, x_test: Any, y_test: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated arrays: features float64 [N, D] / [M, D], targets with N / M rows."""
    kind = task.kind
    x_train = _features(x_train, "x_train")
    x_test = _features(x_test, "x_test")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"x_test: feature dimension {x_test.shape[1]} differs from x_train's {x_train.shape[1]}"
        )
    y_train = _targets(task, y_train, "y_train", len(x_train), "x_train")
    y_test = _targets(task, y_test, "y_test", len(x_test), "x_test")
    if kind == "multilabel" and y_train.shape[1] != y_test.shape[1]:
        raise ValueError(f"y_test: {y_test.shape[1]} labels but y_train has {y_train.shape[1]}")
    if kind == "regression" and y_train.shape[1:] != y_test.shape[1:]:
        raise ValueError(f"y_test: shape {y_test.shape} does not match y_train's {y_train.shape}")
    return x_train, y_train, x_test, y_test


def _probe_and_holdout(
    task: Task,
    y_train: np.ndarray,
    val_fraction: float,
    seed: int,
    class_weight: str | Mapping | None,
) -> tuple[_Probe, np.ndarray, np.ndarray]:
    """The probe for ``task.kind`` and the seeded (fit, held-out) split of the N training rows."""
    kind = task.kind
    rng = np.random.default_rng(seed)
    if kind == "classification":
        classes = np.unique(y_train)
        if len(classes) < 2:
            raise ValueError(
                f"y_train: a single class ({classes.tolist()}) in the training labels of task "
                f"{task.name!r}; a classifier needs at least two"
            )
        fit_idx, val_idx = _holdout_split(len(y_train), val_fraction, rng, strata=y_train)
        if len(np.unique(y_train[fit_idx])) < 2:
            raise ValueError(
                "y_train: fewer than two classes left after holding out val_fraction of it; "
                "use more training samples"
            )
        probe: _Probe = _LogisticProbe(class_weight)
    elif kind == "multilabel":
        fit_idx, val_idx = _holdout_split(len(y_train), val_fraction, rng)
        probe = _MultilabelProbe(class_weight)
    else:
        fit_idx, val_idx = _holdout_split(len(y_train), val_fraction, rng)
        probe = _RidgeProbe()
    return probe, fit_idx, val_idx


def _validation_scores(
    probe: _Probe,
    x_train: np.ndarray,
    y_train: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    Cs: list[float],
) -> list[list[float]]:
    """``[[hparam, *held-out score], ...]`` per C: fit on ``fit_idx``, scored on ``val_idx``."""
    xs_fit, xs_val = _standardise(x_train[fit_idx], x_train[val_idx])
    val_scores: list[list[float]] = []
    with _quiet():
        for c in Cs:
            probe.fit(xs_fit, y_train[fit_idx], c)
            val_scores.append([probe.hparam(c), *probe.selection_score(xs_val, y_train[val_idx])])
    return val_scores


def _refit_and_score(
    probe: _Probe,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    c: float,
) -> dict[str, float]:
    """Refit on all N training rows (standardised with their statistics), test metrics on M rows."""
    xs_train, xs_test = _standardise(x_train, x_test)
    probe.reset()
    with _quiet():
        probe.fit(xs_train, y_train, c)
        return probe.metrics(xs_test, y_test)


def _result(
    task: Task,
    probe: _Probe,
    metrics: dict[str, float],
    val_scores: list[list[float]],
    best: int,
    best_c: float,
    n_train: int,
    n_test: int,
    class_weight: str | Mapping | None,
) -> ProbeResult:
    """The :class:`ProbeResult` of the final refit (``best``: index of the chosen C)."""
    kind = task.kind
    notes = list(probe.notes)
    if not probe.converged:
        notes.append(f"solver did not converge in {_MAX_ITER} iterations for the final refit")
    return ProbeResult(
        task=task.name,
        kind=kind,
        metrics={k: float(v) for k, v in metrics.items()},
        published_metric=PUBLISHED_METRIC[kind],
        hparam_name=probe.hparam_name,
        hparam=probe.hparam(best_c),
        selection_metric=probe.selection_metric,
        # keep only the primary criterion (the tie-breaker is an implementation detail)
        val_scores=[[v[0], v[1] * probe.score_sign] for v in val_scores],
        val_score=val_scores[best][1] * probe.score_sign,
        n_train=n_train,
        n_test=n_test,
        converged=probe.converged,
        class_weight=None if kind == "regression" else _jsonable(class_weight),
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# the published probe


def _published_probe(
    task: Task,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    val_fraction: float,
    Cs: list[float],
    class_weight: str | Mapping | None,
) -> ProbeResult:
    """The published classification probe (module docstring): raw features, the fixed
    stratified hold-out, the two-stage search of C by balanced accuracy, refit on all."""
    import torch

    classes = np.unique(y_train)
    if len(classes) < 2:
        raise ValueError(
            f"y_train: a single class ({classes.tolist()}) in the training labels of task "
            f"{task.name!r}; a classifier needs at least two"
        )
    fit_idx, val_idx = published_holdout(y_train, 1.0 - val_fraction)
    k = len(classes)
    codes = np.searchsorted(classes, y_train)  # labels -> 0..k-1
    x = torch.from_numpy(x_train.astype(np.float32))
    yc = torch.from_numpy(codes)
    weight = _class_weights(class_weight, classes, codes)
    x_fit, y_fit, x_val = x[fit_idx], yc[fit_idx], x[val_idx]
    y_val = codes[val_idx]

    def score(c: float) -> float:
        w, b = published_logreg(x_fit, y_fit, c, k, weight=weight)
        pred = (x_val @ w.T + b).argmax(1).numpy()
        return float(balanced_accuracy_score(y_val, pred))

    best_c, best_score, scores = published_search(score, Cs)
    w, b, converged = published_logreg(x, yc, best_c, k, weight=weight, report=True)
    logits = torch.from_numpy(x_test.astype(np.float32)) @ w.T + b  # [M, k]
    proba = logits.softmax(1).double().numpy()
    pred = classes[proba.argmax(1)]
    metrics = {
        "accuracy": float(accuracy_score(y_test, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, pred)),
    }
    notes = []
    if k == 2:
        positive = y_test == classes[1]
        both = 0 < positive.sum() < len(positive)
        metrics["auroc"] = float(roc_auc_score(positive, proba[:, 1])) if both else math.nan
    if len(np.unique(y_test)) < 2:
        notes.append(
            f"the test labels hold one class only ({np.unique(y_test).tolist()}): balanced "
            "accuracy (the recall of that one class) and AUROC are not reported"
        )
        metrics["balanced_accuracy"] = math.nan
    if not converged:
        notes.append(
            f"L-BFGS stopped at its {_PUBLISHED_MAX_ITER} iterations for the final refit "
            "(as published; the loss was still decreasing)"
        )
    return ProbeResult(
        task=task.name,
        kind=task.kind,
        metrics=metrics,
        published_metric=PUBLISHED_METRIC[task.kind],
        hparam_name="C",
        hparam=float(best_c),
        selection_metric="balanced_accuracy",
        val_scores=[[c, s] for c, s in sorted(scores.items())],
        val_score=best_score,
        n_train=len(x_train),
        n_test=len(x_test),
        converged=converged,
        class_weight=_jsonable(class_weight),
        probe="published",
        notes=notes,
        predictions=pred,
    )


def published_holdout(y: np.ndarray, train_size: float = _PUBLISHED_TRAIN_SIZE):
    """The published hold-out of the N probe-train rows: scikit-learn's
    ``StratifiedShuffleSplit(train_size=train_size, random_state=48)`` -> (fit, held-out)."""
    from sklearn.model_selection import StratifiedShuffleSplit

    counts = np.unique(y, return_counts=True)[1]
    if counts.min() < 2:
        raise ValueError(
            "y_train: every class needs at least two training samples for the published "
            f"stratified hold-out; the rarest has {counts.min()}"
        )
    split = StratifiedShuffleSplit(
        n_splits=1, train_size=train_size, random_state=_PUBLISHED_SPLIT_SEED
    )
    fit_idx, val_idx = next(split.split(np.zeros((len(y), 1)), y))
    return fit_idx, val_idx


def published_search(score, Cs: Sequence[float]) -> tuple[float, float, dict[float, float]]:
    """The published two-stage search of C: ``score(C)`` (higher is better) on every value of
    ``Cs``, the first best kept; then a bisection over 29 log-spaced values within two decades
    of it (clipped to [1e-6, 1e6]): score the values at a quarter, half and three quarters of
    the remaining list and keep the half (or middle half) whose centre scored best, until one
    value is left. Returns ``(best C, its score, {C: score} of every value scored, first
    sweep included)``; ties go to the value scored first."""
    import torch

    first = [score(c) for c in Cs]
    best = int(np.argmax(first))  # the first maximum
    best_c, scores = Cs[best], {Cs[best]: first[best]}
    grid = torch.logspace(math.log10(best_c) - 2, math.log10(best_c) + 2, 29)
    grid = grid[(grid >= 1e-6) & (grid <= 1e6)].tolist()
    while len(grid) > 1:
        n = len(grid)
        quarter, half, three = grid[n // 4], grid[n // 2], grid[(-n) // 4]
        for c in (quarter, half, three):
            if c not in scores:
                scores[c] = score(c)
        top = max(scores[quarter], scores[half], scores[three])
        if top == scores[quarter]:
            grid = grid[: n // 2]
        elif top == scores[three]:
            grid = grid[n // 2 :]
        else:
            grid = grid[n // 4 : (-n) // 4]
    best_c = max(scores, key=lambda c: scores[c])  # first inserted among equals
    return best_c, scores[best_c], {**dict(zip(Cs, first)), **scores}


def published_logreg(
    x,
    y,
    c: float,
    num_classes: int,
    *,
    weight=None,
    max_iter: int = _PUBLISHED_MAX_ITER,
    report: bool = False,
):
    """The published probe's classifier: ``W`` [k, D] and ``b`` [k] from zero, minimising
    mean cross-entropy + (1/c)·½·‖W‖_F with L-BFGS (strong Wolfe), ``max_iter`` iterations.

    Args:
        x: features [N, D] (float32 tensor); y: labels [N] in 0..k-1 (int64 tensor).
        c: inverse regularisation strength; weight: optional per-class weights [k].
        report: also return whether L-BFGS stopped before ``max_iter`` iterations.
    """
    import torch

    with torch.enable_grad():
        w = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, requires_grad=True)
        b = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(x @ w.T + b, y, weight=weight)
            loss = loss + (1.0 / c) * 0.5 * torch.linalg.vector_norm(w)
            loss.backward()
            return loss

        opt.step(closure)
    n_iter = opt.state[w].get("n_iter", 0)
    w, b = w.detach(), b.detach()
    return (w, b, n_iter < max_iter) if report else (w, b)


def _class_weights(class_weight: str | Mapping | None, classes: np.ndarray, codes: np.ndarray):
    """Per-class loss weights [k] (float32 tensor) or None: "balanced" = n / (k · count)."""
    import torch

    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(codes, minlength=len(classes))
        w = len(codes) / (len(classes) * counts)
    else:
        w = np.array([float(class_weight.get(c, class_weight.get(int(c), 1.0))) for c in classes])
    return torch.tensor(w, dtype=torch.float32)


# --------------------------------------------------------------------------------------------
# the three probes


class _Probe:
    """Interface of the probes: refit for a given C, score on held-out data, test metrics."""

    hparam_name = "C"
    selection_metric = ""
    score_sign = 1.0  # val score as stored = sign * reported score (MSE is negated to maximise)

    def __init__(self) -> None:
        self.converged = True
        self.notes: list[str] = []

    def hparam(self, c: float) -> float:
        return float(c)

    def reset(self) -> None:
        """Forget warm-start state before the final refit."""

    def fit(self, x: np.ndarray, y: np.ndarray, c: float) -> None:
        raise NotImplementedError

    def selection_score(self, x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
        """Higher is better; compared lexicographically."""
        raise NotImplementedError

    def metrics(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        raise NotImplementedError


def _logreg(class_weight: str | Mapping | None) -> LogisticRegression:
    # C is set per fit; lbfgs fits the multinomial (softmax) model for > 2 classes.
    return LogisticRegression(
        solver="lbfgs", max_iter=_MAX_ITER, class_weight=class_weight, warm_start=True
    )


def _did_converge(model: LogisticRegression) -> bool:
    return bool(np.all(np.asarray(model.n_iter_) < _MAX_ITER))


class _LogisticProbe(_Probe):
    """Multinomial L2 logistic regression; labels [N] (any integers)."""

    selection_metric = "balanced_accuracy"

    def __init__(self, class_weight: str | Mapping | None) -> None:
        super().__init__()
        self.class_weight = class_weight
        self.model = _logreg(class_weight)

    def reset(self) -> None:
        self.model = _logreg(self.class_weight)

    def fit(self, x: np.ndarray, y: np.ndarray, c: float) -> None:
        seen = getattr(self.model, "classes_", None)
        if seen is not None and not np.array_equal(np.unique(y), seen):
            self.reset()  # warm start needs the same classes
        self.model.set_params(C=c)
        self.model.fit(x, y)
        self.converged = _did_converge(self.model)

    def selection_score(self, x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
        proba = self.model.predict_proba(x)  # [n, n_classes]
        pred = self.model.classes_[proba.argmax(1)]
        bal = balanced_accuracy_score(y, pred)
        # classes seen only in the held-out part count as wrong predictions for log-loss
        known = np.isin(y, self.model.classes_)
        nll = log_loss(y[known], proba[known], labels=self.model.classes_) if known.any() else 0.0
        if len(self.model.classes_) == 2:
            self.selection_metric = "auroc"
            positive = y == self.model.classes_[1]
            auroc = roc_auc_score(positive, proba[:, 1]) if 0 < positive.sum() < len(y) else 0.5
            return float(auroc), float(bal), -float(nll)
        return float(bal), -float(nll)

    def metrics(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        proba = self.model.predict_proba(x)  # [M, n_classes]
        pred = self.model.classes_[proba.argmax(1)]
        out = {
            "accuracy": accuracy_score(y, pred),
            "balanced_accuracy": balanced_accuracy_score(y, pred),
        }
        if len(self.model.classes_) == 2:
            positive = y == self.model.classes_[1]
            both = 0 < positive.sum() < len(positive)
            out["auroc"] = roc_auc_score(positive, proba[:, 1]) if both else math.nan
        return out


class _MultilabelProbe(_Probe):
    """One binary logistic regression per label (one-vs-rest); labels [N, k] in {0, 1}.

    A label that is constant in the training data (never / always positive) gets a constant
    prediction instead of a model.
    """

    selection_metric = "f1_weighted"

    def __init__(self, class_weight: str | Mapping | None) -> None:
        super().__init__()
        self.class_weight = class_weight
        self.models: dict[int, LogisticRegression] = {}
        self.constant: dict[int, float] = {}

    def reset(self) -> None:
        self.models = {}

    def fit(self, x: np.ndarray, y: np.ndarray, c: float) -> None:
        self.constant = {}
        self.converged = True
        for j in range(y.shape[1]):
            col = y[:, j]
            if col.min() == col.max():
                self.constant[j] = float(col[0])
                self.models.pop(j, None)
                continue
            model = self.models.setdefault(j, _logreg(self.class_weight))
            model.set_params(C=c)
            model.fit(x, col)
            self.converged &= _did_converge(model)
        self.notes = [
            f"label {j} is constant ({int(v)}) in the training labels: predicted constant"
            for j, v in sorted(self.constant.items())
        ]

    def _proba(self, x: np.ndarray, k: int) -> np.ndarray:
        """P(label j = 1 | x): [M, k]."""
        proba = np.empty((len(x), k))
        for j in range(k):
            if j in self.constant:
                proba[:, j] = self.constant[j]
            else:
                proba[:, j] = self.models[j].predict_proba(x)[:, 1]
        return proba

    def _f1(self, x: np.ndarray, y: np.ndarray, average: str) -> float:
        pred = (self._proba(x, y.shape[1]) >= 0.5).astype(int)
        return float(f1_score(y, pred, average=average, zero_division=0))

    def selection_score(self, x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
        return (self._f1(x, y, "weighted"),)

    def metrics(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        pred = (self._proba(x, y.shape[1]) >= 0.5).astype(int)  # [M, k]
        return {
            avg_name: f1_score(y, pred, average=avg, zero_division=0)
            for avg_name, avg in (
                ("f1_weighted", "weighted"),
                ("f1_macro", "macro"),
                ("f1_micro", "micro"),
            )
        }


class _RidgeProbe(_Probe):
    """Ridge regression with ``alpha = 1 / C``; targets [N] or [N, k]."""

    hparam_name = "alpha"
    selection_metric = "mse"
    score_sign = -1.0

    def __init__(self) -> None:
        super().__init__()
        self.model = Ridge()

    def hparam(self, c: float) -> float:
        return 1.0 / float(c)

    def fit(self, x: np.ndarray, y: np.ndarray, c: float) -> None:
        self.model.set_params(alpha=1.0 / c)
        self.model.fit(x, y)

    def selection_score(self, x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
        return (-float(mean_squared_error(y, self.model.predict(x))),)

    def metrics(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        pred = self.model.predict(x)  # same shape as y
        r2 = r2_score(y, pred) if len(y) > 1 else math.nan
        return {"mse": mean_squared_error(y, pred), "r2": r2}


# --------------------------------------------------------------------------------------------
# helpers


def _to_numpy(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch.Tensor without importing torch here
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except Exception as err:  # ragged nested sequences, ...
        raise ValueError(f"{name}: cannot be converted to an array ({err})") from err
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    return arr


def _features(x: Any, name: str) -> np.ndarray:
    """Validated float64 features [N, D]."""
    x = _to_numpy(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name}: features must be 2-D [N, D], got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: empty features of shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf ({int((~np.isfinite(x)).sum())} entries)")
    return x


def _targets(task: Task, y: Any, name: str, n: int, x_name: str) -> np.ndarray:
    """Validated targets: int [N] (classification), int [N, k] (multilabel), float [N(, k)]."""
    y = _to_numpy(y, name)
    if len(y.shape) == 0 or y.shape[0] != n:
        raise ValueError(f"{name}: {y.shape[0] if y.ndim else 'scalar'} rows but {x_name} has {n}")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if task.kind == "classification":
        if y.ndim != 1:
            raise ValueError(
                f"{name}: classification labels must be 1-D [N] integers, got shape {y.shape}"
            )
        if np.issubdtype(y.dtype, np.floating):
            if not np.all(y == np.round(y)):
                raise ValueError(f"{name}: classification labels must be integers")
        y = y.astype(np.int64)
        if task.num_classes > 0 and (y.min() < 0 or y.max() >= task.num_classes):
            raise ValueError(
                f"{name}: labels must lie in [0, {task.num_classes}) for task {task.name!r}, "
                f"got range [{y.min()}, {y.max()}]"
            )
        return y
    if task.kind == "multilabel":
        if y.ndim != 2:
            raise ValueError(f"{name}: multilabel targets must be 2-D [N, k], got shape {y.shape}")
        if task.num_classes > 0 and y.shape[1] != task.num_classes:
            raise ValueError(
                f"{name}: {y.shape[1]} labels but task {task.name!r} has {task.num_classes}"
            )
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name}: multilabel targets must be 0 or 1")
        return y.astype(np.int64)
    # regression
    if y.ndim not in (1, 2):
        raise ValueError(f"{name}: regression targets must be [N] or [N, k], got shape {y.shape}")
    return y.astype(np.float64)


def _holdout_split(
    n: int, fraction: float, rng: np.random.Generator, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (fit, held-out) index arrays.

    With ``strata`` ([n] labels) each class contributes ``round(fraction * count)`` samples to
    the held-out part (at least one if it has two or more, never all of them), so class
    proportions are kept. Both parts are non-empty.
    """
    if n < 2:
        raise ValueError(f"y_train: need at least 2 training samples to hold some out, got {n}")
    if strata is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(strata == c) for c in np.unique(strata)]
    val = []
    for idx in groups:
        k = len(idx)
        n_val = min(max(int(round(fraction * k)), 1 if k >= 2 else 0), k - 1)
        val.append(rng.permutation(idx)[:n_val])
    val_idx = np.sort(np.concatenate(val))
    if len(val_idx) == 0:  # only singleton classes: hold out one sample anyway
        val_idx = np.sort(rng.permutation(n)[:1])
    fit_mask = np.ones(n, dtype=bool)
    fit_mask[val_idx] = False
    return np.flatnonzero(fit_mask), val_idx


def _standardise(x_fit: np.ndarray, x_other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise both with the mean / std of ``x_fit`` [N, D] (constant features: std 1)."""
    mean = x_fit.mean(0)
    std = x_fit.std(0)
    std[std < 1e-12] = 1.0
    return (x_fit - mean) / std, (x_other - mean) / std


class _quiet(warnings.catch_warnings):
    """Silence scikit-learn's solver and metric warnings inside a probe fit: non-convergence
    (recorded from ``n_iter_`` in the result's notes), a class missing from the held-out part,
    and overflow inside the solver. Warnings raised anywhere else still show."""

    def __enter__(self):
        out = super().__enter__()
        warnings.simplefilter("ignore", ConvergenceWarning)
        for category in (UserWarning, RuntimeWarning):
            warnings.filterwarnings("ignore", category=category, module=r"sklearn\.")
        return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
