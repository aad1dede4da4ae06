"""Linear probes on frozen features (docs/METHOD.md §3, docs/PROBES.md).

A probe is fitted on probe-train features and scored on probe-test features, which are never
looked at before the last step. The probes are the entries of :mod:`infmasking.probe_registry`
(:func:`~infmasking.probe_registry.register` adds one), each fitted by its entry's ``fit``; two
are built in, named by ``probe`` (their fits: :func:`fit_published`, :func:`fit_standardised`):

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    roc_auc_score,
)

from infmasking import probe_registry
from infmasking.data.base import Task
from infmasking.evaluation.solvers import (
    _MAX_ITER,
    _PUBLISHED_MAX_ITER,
    _PUBLISHED_TRAIN_SIZE,
    _class_weights,
    _features,
    _holdout_split,
    _LogisticProbe,
    _MultilabelProbe,
    _Probe,
    _quiet,
    _RidgeProbe,
    _standardise,
    _targets,
    feature_geometry,
    prepare,
    published_holdout,
    published_logreg,
    published_search,
)

__all__ = [
    "COLLAPSE_RATIO",
    "DEFAULT_CS",
    "PUBLISHED_CS",
    "PUBLISHED_METRIC",
    "ProbeResult",
    "fit_probe",
    "fit_published",
    "fit_standardised",
    "probe_all",
    "summary_line",
]

#: Inverse regularisation strengths tried (ascending, so warm starts follow the path from
#: strong to weak regularisation). Ridge uses ``alpha = 1 / C``: 1e-2 … 1e4.
DEFAULT_CS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: The published probe's first sweep of C; the second sweep refines around the best.
PUBLISHED_CS: tuple[float, ...] = (1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6)

#: ``offset_ratio`` (‖mean‖ / mean per-dimension std of the probe-train features) from which a
#: probe's diagnostics flag the float32 collapse regime: an offset of ≳ 3 000–10 000 spreads
#: made the published probe stop early and read chance on synthetic features (docs/PROBES.md);
#: the features measured on this CPU had ratios of 60–104.
COLLAPSE_RATIO = 1000.0


#: The metric each task kind is reported with in the papers (see module docstring).
PUBLISHED_METRIC: dict[str, str] = {
    "classification": "balanced_accuracy",
    "multilabel": "f1_weighted",
    "regression": "mse",
}


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
        probe: the probe that ran, "published" or "standardised" (see the module docstring)
            or a registered probe's name, or for a robust reading "robust_centred" /
            "robust_standardised".
        notes: human-readable warnings (non-convergence, constant labels, a constant classifier,
            features in the collapse regime, ...).
        diagnostics: whether the reading is degenerate (docs/PROBES.md): the feature geometry
            of probe-train (``mean_norm``, ``mean_std``, ``offset_ratio``, ``collapse_regime``)
            for every probe; for the published protocol's classifiers also the chosen ``C``,
            ``weight_norm`` (‖W‖_F of the refit), ``zero_weights`` (W = 0),
            ``predicted_classes`` (distinct test predictions) and ``constant_classifier``
            (one predicted class for every test sample).
        robust: the robust reading of the same features (``eval.robust_probe``; its own
            :class:`ProbeResult`), None when off or for multilabel / regression tasks.
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
    diagnostics: dict[str, Any] = field(default_factory=dict)
    robust: ProbeResult | None = None
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def published_value(self) -> float:
        """``metrics[published_metric]``."""
        return self.metrics[self.published_metric]

    @property
    def degenerate(self) -> list[str]:
        """Why this reading says little (empty: nothing found): a constant classifier, features
        in the collapse regime (:data:`COLLAPSE_RATIO`)."""
        d, why = self.diagnostics, []
        if d.get("constant_classifier"):
            why.append(f"constant classifier (C {d.get('C', self.hparam):g})")
        if d.get("collapse_regime"):
            why.append(f"‖mean‖/std {d['offset_ratio']:.0f}: collapse regime")
        return why

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``nan`` / ``inf`` become ``None``, keys become strings);
        the robust reading nested under ``robust`` and ``diagnostics`` (each absent when
        there is none)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.pop("predictions")
        robust = d.pop("robust")
        if not d["diagnostics"]:  # results read back from reports written before them
            d.pop("diagnostics")
        d = _jsonable(d)
        if isinstance(robust, ProbeResult):
            d["robust"] = robust.to_dict()
        elif robust is not None:  # a result rebuilt from its written form
            d["robust"] = _jsonable(robust)
        return d


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
    robust: str = "off",
    refine: bool = True,
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
        probe: a probe of :data:`infmasking.probe_registry.PROBES`, fitted by its entry's
            ``fit``: "published" (default, :func:`fit_published`), "standardised"
            (:func:`fit_standardised`; see the module docstring) or one added with
            :func:`~infmasking.probe_registry.register`; multilabel and regression tasks use
            the standardised probes under either built-in name.
        seed: seeds the standardised probe's held-out split (the published split is fixed).
        val_fraction: fraction of the training samples held out to choose the regularisation
            (default 0.4 for the published probe, 0.2 for the standardised one).
        Cs: inverse regularisation strengths tried (default ``PUBLISHED_CS``, refined, for the
            published probe; ``DEFAULT_CS`` for the standardised one; ridge: ``alpha = 1/C``).
        class_weight: ``None``, ``"balanced"`` or a ``{label: weight}`` dict: the weights of
            each class in the logistic losses (each binary problem for multilabel); ignored
            by ridge.
        robust: the robust reading to add beside a classification probe
            (:data:`~infmasking.probe_registry.ROBUST_PROBES`: "centred", "standardised", or
            "off"): the published protocol on centred or standardised features, solved in
            float64 (``Cs`` and ``class_weight`` as given; the published hold-out), in the
            result's :attr:`~ProbeResult.robust`.
        refine: the published probe's second stage, the bisection around the best of ``Cs``
            (as published). False: the best of ``Cs`` as it is — with one value, one held-out
            fit and the refit (``eval.probe_C``, smoke runs and tests); the robust reading too.

    Returns:
        A :class:`ProbeResult`, with its :attr:`~ProbeResult.diagnostics`.

    Raises:
        ValueError: naming the offending argument, for mismatched lengths, non-finite values,
            a single class in ``y_train``, targets of the wrong shape for ``task.kind``, an
            unknown kind or probe, or a bad ``val_fraction`` / ``Cs`` / ``class_weight``.
    """
    entry = probe_registry.REGISTRY.get(probe)
    if entry is None:
        raise ValueError(f"probe: expected one of {list(probe_registry.PROBES)}, got {probe!r}")
    if robust not in probe_registry.ROBUST_PROBES:
        raise ValueError(
            f"robust: expected one of {list(probe_registry.ROBUST_PROBES)}, got {robust!r}"
        )
    result = probe_registry.resolve_fit(entry)(
        task,
        x_train,
        y_train,
        x_test,
        y_test,
        seed=seed,
        val_fraction=val_fraction,
        Cs=Cs,
        class_weight=class_weight,
        refine=refine,
    )
    # a fit may hand a task to another probe (the published one's multilabel and regression
    # tasks: the standardised probe), named in its result; never an unknown one
    if not (isinstance(result, ProbeResult) and result.probe in probe_registry.PROBES):
        got = result.probe if isinstance(result, ProbeResult) else type(result).__name__
        raise TypeError(
            f"probe {probe!r}: its fit must return a ProbeResult naming a registered probe "
            f"(its own name), got {got!r}"
        )
    if robust != "off" and task.kind == "classification":
        # the published protocol beside the probe: val_fraction as given to the published probe
        fraction = val_fraction if probe == "published" else None
        result.robust = _robust_reading(
            task, x_train, y_train, x_test, y_test, robust, fraction, Cs, class_weight, refine
        )
    return result


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
    robust: str = "off",
    verbose: bool = False,
    refine: bool = True,
) -> dict[str, ProbeResult]:
    """Probe every task on the same features (``verbose``: one line per task as it finishes).

    Args:
        tasks: the tasks to probe.
        train_features: [N, D] features; test_features: [M, D].
        train_targets / test_targets: task name -> targets with N / M rows (layouts as in
            :func:`fit_probe`).
        probe, seed, class_weight, val_fraction, Cs, robust, refine: as in :func:`fit_probe`
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
            robust=robust,
            refine=refine,
        )
        if verbose:
            seconds = time.perf_counter() - start
            print(f"  probe {i + 1}/{len(tasks)} {t.name}: {summary_line(out[t.name], seconds)}")
    return out


def summary_line(r: ProbeResult, seconds: float | None = None) -> str:
    """One line for a probe result: the headline reading (metric, AUROC, chosen value), the
    robust reading beside it, and a note when the headline is degenerate."""

    def reading(x: ProbeResult) -> str:
        text = f"{x.published_metric} {100 * x.published_value:.1f}"
        auroc = x.metrics.get("auroc")
        if auroc is not None and math.isfinite(auroc):
            text += f", AUROC {100 * auroc:.1f}"
        return text + f" ({x.hparam_name} {x.hparam:g})"

    line = reading(r)
    if seconds is not None:
        line = line[:-1] + f", {seconds:.1f} s)"
    if r.robust is not None:
        line += f" | robust ({r.robust.probe.removeprefix('robust_')}): {reading(r.robust)}"
    if r.degenerate:
        line += " | NOTE: " + "; ".join(r.degenerate)
    return line


# --------------------------------------------------------------------------------------------
# the probes of the registry (infmasking.probe_registry): one call for every probe


def fit_published(
    task: Task,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    seed: int = 0,
    val_fraction: float | None = None,
    Cs: Sequence[float] | None = None,
    class_weight: str | Mapping | None = None,
    refine: bool = True,
) -> ProbeResult:
    """The published probe (``probe="published"``, the module docstring): for classification
    the fixed hold-out (``val_fraction`` default 0.4), the search of C from ``Cs`` (default
    :data:`PUBLISHED_CS`, refined unless ``refine`` is False), torch L-BFGS, raw float32
    features; multilabel and regression tasks: :func:`fit_standardised`. Arguments as in
    :func:`fit_probe`; ``seed`` is not read (the published split is fixed)."""
    if task.kind != "classification":
        return fit_standardised(
            task,
            x_train,
            y_train,
            x_test,
            y_test,
            seed=seed,
            val_fraction=val_fraction,
            Cs=Cs,
            class_weight=class_weight,
            refine=refine,
        )
    if val_fraction is None:
        val_fraction = 1.0 - _PUBLISHED_TRAIN_SIZE
    Cs = _check_options(task, val_fraction, PUBLISHED_CS if Cs is None else Cs, class_weight)
    x_train, y_train, x_test, y_test = _check_data(task, x_train, y_train, x_test, y_test)
    return _published_probe(
        task,
        x_train,
        y_train,
        x_test,
        y_test,
        val_fraction,
        Cs,
        class_weight,
        _geometry(x_train),
        refine=refine,
    )


def fit_standardised(
    task: Task,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    seed: int = 0,
    val_fraction: float | None = None,
    Cs: Sequence[float] | None = None,
    class_weight: str | Mapping | None = None,
    refine: bool = True,
) -> ProbeResult:
    """The standardised probes (``probe="standardised"``, the module docstring): features
    standardised with the training statistics, the regularisation chosen among ``Cs`` (default
    :data:`DEFAULT_CS`) on a hold-out of ``val_fraction`` (default 0.2) drawn with ``seed``,
    refit on all, scikit-learn. Arguments as in :func:`fit_probe`; ``refine`` is not read (one
    stage)."""
    if val_fraction is None:
        val_fraction = 0.2
    Cs = _check_options(task, val_fraction, DEFAULT_CS if Cs is None else Cs, class_weight)
    x_train, y_train, x_test, y_test = _check_data(task, x_train, y_train, x_test, y_test)
    geometry = _geometry(x_train)
    probe, fit_idx, val_idx = _probe_and_holdout(task, y_train, val_fraction, seed, class_weight)
    # 1) choose the regularisation on the held-out part of the training features
    val_scores = _validation_scores(probe, x_train, y_train, fit_idx, val_idx, Cs)
    best = max(range(len(Cs)), key=lambda i: tuple(val_scores[i][1:]))
    # 2) refit on all training features, 3) score on the test features
    metrics = _refit_and_score(probe, x_train, y_train, x_test, y_test, Cs[best])
    result = _result(
        task,
        probe,
        metrics,
        val_scores,
        best,
        Cs[best],
        len(x_train),
        len(x_test),
        class_weight,
    )
    result.diagnostics = {result.hparam_name: result.hparam, **geometry}
    return result


def _robust_reading(
    task: Task,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    prep: str,
    val_fraction: float | None,
    Cs: Sequence[float] | None,
    class_weight: str | Mapping | None,
    refine: bool,
) -> ProbeResult:
    """The robust reading ``prep`` ("centred" / "standardised") of a classification task: the
    published protocol (hold-out of ``val_fraction``, default 0.4; ``Cs`` default
    :data:`PUBLISHED_CS`) on prepared features, in float64."""
    published_fraction = 1.0 - _PUBLISHED_TRAIN_SIZE
    Cs = _check_options(task, published_fraction, PUBLISHED_CS if Cs is None else Cs, class_weight)
    x_train, y_train, x_test, y_test = _check_data(task, x_train, y_train, x_test, y_test)
    return _published_probe(
        task,
        x_train,
        y_train,
        x_test,
        y_test,
        published_fraction if val_fraction is None else val_fraction,
        Cs,
        class_weight,
        _geometry(x_train),
        prep=prep,
        refine=refine,
    )


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
    geometry: dict[str, Any],
    prep: str = "raw",
    refine: bool = True,
) -> ProbeResult:
    """The published classification probe (module docstring): raw features in float32, the
    fixed stratified hold-out, the two-stage search of C by balanced accuracy, the refit on
    [fit part; hold-out part] (the published order). With ``prep`` "centred" / "standardised":
    the robust reading, the same protocol on features centred / standardised with the
    statistics of the rows each fit sees (the fit part for the search, all of probe-train for
    the refit), solved in float64. ``refine`` False: the first stage of the search only."""
    import torch

    classes = np.unique(y_train)
    if len(classes) < 2:
        raise ValueError(
            f"y_train: a single class ({classes.tolist()}) in the training labels of task "
            f"{task.name!r}; a classifier needs at least two"
        )
    fit_idx, val_idx = published_holdout(y_train, 1.0 - val_fraction)
    k = len(classes)
    dtype = np.float32 if prep == "raw" else np.float64

    def tensor(a: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))

    codes = np.searchsorted(classes, y_train)  # labels -> 0..k-1
    weight = _class_weights(class_weight, classes, codes)
    x_part = x_train[fit_idx]
    x_fit = tensor(prepare(x_part, x_part, prep))
    x_val = tensor(prepare(x_train[val_idx], x_part, prep))
    y_fit, y_val = torch.from_numpy(codes[fit_idx]), codes[val_idx]

    def score(c: float) -> float:
        w, b = published_logreg(x_fit, y_fit, c, k, weight=weight)
        pred = (x_val @ w.T + b).argmax(1).numpy()
        return float(balanced_accuracy_score(y_val, pred))

    if refine:
        best_c, best_score, scores = published_search(score, Cs)
    else:
        scores = {c: score(c) for c in Cs}
        best_c = max(scores, key=lambda c: scores[c])  # the first of equals
        best_score = scores[best_c]
    # the refit, as published: the fit part then the hold-out part (in float32 with a large
    # common offset, L-BFGS stops early and its result depends on the order of the rows)
    order = np.concatenate([fit_idx, val_idx])
    x_all = tensor(prepare(x_train[order], x_train, prep))
    w, b, converged = published_logreg(
        x_all, torch.from_numpy(codes[order]), best_c, k, weight=weight, report=True
    )
    logits = tensor(prepare(x_test, x_train, prep)) @ w.T + b  # [M, k]
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
    weight_norm = float(torch.linalg.vector_norm(w.double()))
    predicted = np.unique(pred)
    diagnostics = {
        "C": float(best_c),
        "weight_norm": weight_norm,
        "zero_weights": weight_norm == 0.0,
        "predicted_classes": len(predicted),
        "constant_classifier": len(predicted) == 1,
        **geometry,
    }
    if prep != "raw":
        diagnostics["collapse_regime"] = False  # float64 on centred features: not that regime
    if diagnostics["constant_classifier"]:
        notes.append(
            f"constant classifier: the refit with C = {best_c:g} predicts class "
            f"{predicted[0]} for every test sample (‖W‖ = {weight_norm:.3g}); balanced accuracy "
            "reads chance whatever the features hold"
        )
    if diagnostics["collapse_regime"]:
        notes.append(
            f"features in the collapse regime: ‖mean‖ / mean std = {geometry['offset_ratio']:.0f}"
            f" ≥ {COLLAPSE_RATIO:g}; the float32 probe may stop early (see the robust reading)"
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
        probe="published" if prep == "raw" else f"robust_{prep}",
        notes=notes,
        diagnostics=diagnostics,
        predictions=pred,
    )


def _geometry(x_train: np.ndarray) -> dict[str, Any]:
    """:func:`~infmasking.evaluation.solvers.feature_geometry` of probe-train, with
    ``collapse_regime`` (``offset_ratio`` ≥ :data:`COLLAPSE_RATIO`)."""
    g: dict[str, Any] = feature_geometry(x_train)
    g["collapse_regime"] = bool(g["offset_ratio"] >= COLLAPSE_RATIO)
    return g


# --------------------------------------------------------------------------------------------
# helpers


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
