"""The linear solvers under :mod:`infmasking.evaluation.probe`: the published probe's hold-out,
two-stage search of C and torch L-BFGS logistic regression, and the standardised probe's
scikit-learn logistic / multilabel / ridge probes with their held-out split, and the validation
of probe inputs. Pure fitting code: results and the public API are in
:mod:`~infmasking.evaluation.probe`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
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

_PUBLISHED_TRAIN_SIZE = 0.6  # fraction of probe-train the published search fits on
_PUBLISHED_SPLIT_SEED = 48  # the published hold-out's random_state
_PUBLISHED_MAX_ITER = 100  # L-BFGS iterations per published fit
_MAX_ITER = 500  # lbfgs iterations per fit; warm starts along the C path make this ample


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
        x: features [N, D] (float32 as published; float64 for the robust reading); y: labels
            [N] in 0..k-1 (int64 tensor).
        c: inverse regularisation strength; weight: optional per-class weights [k].
        report: also return whether L-BFGS stopped before ``max_iter`` iterations.
    """
    import torch

    if weight is not None:
        weight = weight.to(x.dtype)
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


def feature_geometry(x: np.ndarray) -> dict[str, float]:
    """How far the features sit from the origin compared with their spread: ``mean_norm`` =
    ‖mean over rows‖₂, ``mean_std`` = the mean over dimensions of the per-dimension standard
    deviation, ``offset_ratio`` = their ratio (inf when every dimension is constant), all in
    float64 from features [N, D]. A large ratio is the regime where the published float32
    probe loses the signal (docs/PROBES.md)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(0)
    mean_std = float(x.std(0).mean())
    mean_norm = float(np.linalg.norm(mean))
    ratio = mean_norm / mean_std if mean_std > 0 else math.inf
    return {"mean_norm": mean_norm, "mean_std": mean_std, "offset_ratio": ratio}


def prepare(x: np.ndarray, stats_of: np.ndarray, how: str) -> np.ndarray:
    """``x`` [n, D] as a probe reads it: ``"raw"`` unchanged, ``"centred"`` minus the mean of
    ``stats_of`` [N, D], ``"standardised"`` also divided by its per-dimension standard deviation
    (constant dimensions: 1). Statistics in float64."""
    if how == "raw":
        return x
    mean = stats_of.mean(0)
    if how == "centred":
        return x - mean
    if how == "standardised":
        std = stats_of.std(0)
        std[std < 1e-12] = 1.0
        return (x - mean) / std
    raise ValueError(f"how: expected 'raw', 'centred' or 'standardised', got {how!r}")
