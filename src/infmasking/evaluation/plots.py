"""Figures and tables for run reports.

Every figure is drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas directly,
so nothing here needs a display, touches ``pyplot``'s global state or changes the backend of
the caller (e.g. a notebook).

- :func:`plot_training_curves`: the ``train/*`` and ``val/*`` columns of a Lightning
  CSVLogger ``metrics.csv`` against the step, one subplot per metric group.
- :func:`plot_rus_bars`: grouped bars (tasks × methods) with error bars, published numbers
  as markers and chance lines.
- :func:`plot_metric_vs_epoch`: a few metrics against the epoch (e.g. synergy vs epoch).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "plot_metric_vs_epoch",
    "plot_rus_bars",
    "plot_training_curves",
    "read_metrics_csv",
    "rus_bars_figure",
    "training_curves_figure",
]

Value = float | tuple[float, float] | Sequence[float] | None


# --------------------------------------------------------------------------------------------
# training curves


def read_metrics_csv(metrics_csv: str | Path) -> dict[str, np.ndarray]:
    """Read a Lightning CSVLogger ``metrics.csv`` into column name -> float array [rows].

    Empty cells (a metric not logged on that row) and unparsable cells become ``nan``.
    """
    with open(metrics_csv, newline="") as f:
        reader = csv.DictReader(f)
        names = list(reader.fieldnames or [])
        cols: dict[str, list[float]] = {n: [] for n in names}
        for row in reader:
            for n in names:
                cols[n].append(_to_float(row.get(n)))
    return {n: np.asarray(v, dtype=np.float64) for n, v in cols.items()}


def _metric_group(name: str) -> str:
    """The subplot a ``train/...`` / ``val/...`` column goes on."""
    metric = name.split("/", 1)[1].lower()
    if "loss" in metric:
        return "loss"
    if "acc" in metric:
        return "accuracy"
    return "other"


#: The y label of each subplot of the training curves.
GROUP_YLABEL = {
    "loss": "loss (InfoNCE, nats)",
    "accuracy": "contrastive accuracy (top-1 in the batch)",
}


def term_label(name: str, modalities: Sequence[str] | None = None) -> str:
    """A metric's legend label: its ``metrics.csv`` column, with the modalities its numbers
    stand for after it: ``train/loss_comm_1`` -> ``train/loss_comm_1 (image1)``,
    ``train/acc_cross_12`` -> ``train/acc_cross_12 (image1, image2)``."""
    if not modalities:
        return name
    import re

    def mod(k: str) -> str:
        i = int(k) - 1
        return modalities[i] if 0 <= i < len(modalities) else k

    pair = re.match(r"^.*cross_(\d)(\d)$", name)
    if pair:
        return f"{name} ({mod(pair[1])}, {mod(pair[2])})"
    one = re.match(r"^.*(?:comm|self)_(\d+)$", name)
    if one:
        return f"{name} ({mod(one[1])})"
    return name


def smoothing_window(n: int) -> int:
    """Points averaged by the smoothed training curves: about 1/25 of the logged points
    (1: no smoothing below 50 points)."""
    return max(1, round(n / 25)) if n >= 50 else 1


def moving_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of the last ``window`` values (fewer at the start) [len(y)]."""
    if window <= 1 or len(y) == 0:
        return np.asarray(y, dtype=np.float64)
    c = np.cumsum(np.insert(np.asarray(y, dtype=np.float64), 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def training_curves_figure(
    metrics_csv: str | Path,
    modalities: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """The figure of :func:`plot_training_curves` (not saved)."""
    cols = read_metrics_csv(metrics_csv)
    n_rows = len(next(iter(cols.values()))) if cols else 0
    for x_name in ("step", "epoch"):
        if x_name in cols:
            x = cols[x_name]
            break
    else:
        x_name, x = "row", np.arange(n_rows, dtype=np.float64)

    metrics = [n for n in cols if n.startswith(("train/", "val/"))]
    groups: dict[str, list[str]] = {}
    for n in metrics:
        if np.isfinite(cols[n]).any():
            groups.setdefault(_metric_group(n), []).append(n)
    order = [g for g in ("loss", "accuracy", "other") if g in groups]

    fig = _figure((5.0 * max(len(order), 1), 4.6))
    if not order:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(
            0.5,
            0.5,
            f"no train/ or val/ metrics in\n{Path(metrics_csv).name}",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
    windows = set()
    for i, group in enumerate(order):
        ax = fig.add_subplot(1, len(order), i + 1)
        for n in groups[group]:
            y = cols[n]
            ok = np.isfinite(y) & np.isfinite(x)
            is_val = n.startswith("val/")
            label = term_label(n, modalities)
            if is_val:
                ax.plot(x[ok], y[ok], "--o", markersize=3, linewidth=1.2, label=label)
                continue
            w = smoothing_window(int(ok.sum()))
            windows.add(w)
            (line,) = ax.plot(x[ok], moving_mean(y[ok], w), "-", linewidth=1.4, label=label)
            if w > 1:  # every logged step, faint, under its smoothed line
                ax.plot(x[ok], y[ok], "-", linewidth=0.6, alpha=0.25, color=line.get_color())
        ax.set_xlabel(x_name)
        names = groups[group]
        if group == "other" and len(names) == 1:
            ax.set_title(names[0])
            ax.set_ylabel(names[0].split("/", 1)[1])
        else:
            ax.set_title({"other": "other logged values"}.get(group, group))
            ax.set_ylabel(GROUP_YLABEL.get(group, "value"))
        ax.grid(alpha=0.3)
        # below the axes, never over the curves
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    smooth = max(windows, default=1)
    note = (
        f"solid: trailing mean over {smooth} logged steps; faint: every logged step"
        if smooth > 1
        else ""
    )
    heading = "\n".join(t for t in (title or "training curves (metrics.csv)", note) if t)
    fig.suptitle(heading, fontsize=9)
    return fig


def plot_training_curves(
    metrics_csv: str | Path,
    out_png: str | Path,
    modalities: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Plot every ``train/*`` and ``val/*`` column of a CSVLogger file against the step.

    Losses share one subplot, accuracies (columns containing "acc") another, anything else
    (the λ weight ``mask_weight``, a learning rate, ...) a third, named after its only column
    when it has one; every subplot has a y label and its legend below it, labels are the CSV
    columns (with the modalities a term's numbers stand for). Train curves are a trailing
    mean (:func:`smoothing_window` points) over the faint per-step values; val curves dashed
    with markers. Rows where a metric is NaN/empty are skipped for that metric. The x axis is
    ``step``, else ``epoch``, else the row number. A file without such columns still gives a
    PNG, saying so.

    Args:
        metrics_csv: path of ``metrics.csv``.
        out_png: output path (parent directories are created).
        modalities: the run's modality names, to name the per-modality loss terms.
        title: the figure's title (default "training curves (metrics.csv)").

    Returns:
        ``out_png`` as a :class:`Path`.
    """
    return _save(training_curves_figure(metrics_csv, modalities, title), out_png)


# --------------------------------------------------------------------------------------------
# bars


def plot_rus_bars(
    results: Mapping[str, Mapping[str, Value]],
    out_png: str | Path,
    *,
    published: Mapping[str, Mapping[str, Value]] | None = None,
    published_other: Mapping[str, Mapping[str, Value]] | None = None,
    chance: Mapping[str, float] | None = None,
    ylabel: str = "balanced accuracy (%)",
    title: str = "",
    task_labels: Mapping[str, str] | None = None,
    values: bool = False,
    published_other_label: str = "published (another setting)",
) -> Path:
    """Grouped bars: one group per task (e.g. redundancy / uniqueness / synergy), one bar per
    method.

    Args:
        results: method -> task -> value, where a value is a float or ``(mean, std)`` (drawn
            as an error bar); missing tasks / ``None`` / NaN leave a gap.
        out_png: output path (parent directories are created).
        published: method -> task -> value, drawn as black diamond markers over the method's
            bar (a method present only here gets an outlined, hatched bar).
        published_other: method -> task -> value, published numbers measured under another
            setting (e.g. the other Trifeatures pair set), drawn as hollow diamonds labelled
            ``published_other_label``.
        chance: task -> chance level, drawn as a dotted line across the task's group.
        ylabel, title: axis label and title.
        task_labels: task -> its tick label (default: the task, "_" as a line break), e.g. to
            name the metric of a task whose metric differs from the y label's.
        values: write each bar's value above it.

    Returns:
        ``out_png`` as a :class:`Path`.
    """
    fig = rus_bars_figure(
        results,
        published=published,
        published_other=published_other,
        chance=chance,
        ylabel=ylabel,
        title=title,
        task_labels=task_labels,
        values=values,
        published_other_label=published_other_label,
    )
    return _save(fig, out_png)


def rus_bars_figure(
    results: Mapping[str, Mapping[str, Value]],
    *,
    published: Mapping[str, Mapping[str, Value]] | None = None,
    published_other: Mapping[str, Mapping[str, Value]] | None = None,
    chance: Mapping[str, float] | None = None,
    ylabel: str = "balanced accuracy (%)",
    title: str = "",
    task_labels: Mapping[str, str] | None = None,
    values: bool = False,
    published_other_label: str = "published (another setting)",
) -> Figure:
    """The figure of :func:`plot_rus_bars` (not saved)."""
    published = published or {}
    published_other = published_other or {}
    chance = chance or {}
    task_labels = task_labels or {}
    methods = list(results) + [m for m in published if m not in results]
    tasks: list[str] = []
    for table in (*results.values(), *published.values(), *published_other.values()):
        tasks += [t for t in table if t not in tasks]
    tasks += [t for t in chance if t not in tasks]

    # wide enough that the task names never overlap (the legend sits outside, below)
    fig = _figure((max(6.0, 3.5 + 1.1 * len(tasks) + 0.3 * len(tasks) * max(len(methods), 1)), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(methods), 1)
    centres = np.arange(len(tasks), dtype=np.float64)
    pub_label, other_label = "published", published_other_label
    for j, method in enumerate(methods):
        xs = centres - 0.4 + (j + 0.5) * width
        if method in results:
            mean, std = _columns(results[method], tasks)
            has_err = any(np.isfinite(s) for s in std)
            bars = ax.bar(
                xs,
                mean,
                width * 0.9,
                label=method,
                yerr=np.nan_to_num(std) if has_err else None,
                capsize=3,
            )
            if values:
                ax.bar_label(
                    bars,
                    labels=["" if not np.isfinite(m) else f"{m:.1f}" for m in mean],
                    fontsize=7,
                    padding=2,
                )
        else:  # published only: an outlined bar names the slot
            mean, _ = _columns(published[method], tasks)
            ax.bar(
                xs,
                mean,
                width * 0.9,
                fill=False,
                hatch="//",
                edgecolor="grey",
                label=f"{method} (published)",
            )
        if method in published:
            mean, std = _columns(published[method], tasks)
            ax.errorbar(
                xs,
                mean,
                yerr=np.nan_to_num(std) if any(np.isfinite(std)) else None,
                fmt="D",
                color="black",
                markersize=4,
                capsize=2,
                label=pub_label,
            )
            pub_label = "_nolegend_"
        if method in published_other:
            mean, _ = _columns(published_other[method], tasks)
            ax.plot(
                xs,
                mean,
                "D",
                markerfacecolor="none",
                markeredgecolor="black",
                markersize=4,
                linestyle="none",
                label=other_label,
            )
            other_label = "_nolegend_"
    chance_label = "chance"
    for i, t in enumerate(tasks):
        if t in chance and chance[t] is not None:
            ax.hlines(
                chance[t], i - 0.45, i + 0.45, colors="grey", linestyles=":", label=chance_label
            )
            chance_label = "_nolegend_"
    ax.set_xticks(centres, [task_labels.get(t, t.replace("_", "\n")) for t in tasks], fontsize=8)
    ax.set_ylabel(ylabel)
    if values:
        ax.set_ylim(top=max(ax.get_ylim()[1], 108))  # room for the values over 100 % bars
    if title:  # over the whole figure: the legend beside the axes never covers it
        fig.suptitle(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if methods or chance:
        fig.legend(fontsize=7, loc="outside lower center", ncol=4)
    return fig


# --------------------------------------------------------------------------------------------
# metric vs epoch


def plot_metric_vs_epoch(
    curve: Sequence[Mapping[str, Any]],
    out_png: str | Path,
    *,
    x: str = "epoch",
    keys: Sequence[str] | None = None,
    chance: Mapping[str, float] | None = None,
    ylabel: str = "",
    title: str = "",
) -> Path:
    """Plot metrics recorded at several epochs, e.g. ``[{"epoch": 10, "synergy": 61.2}, ...]``.

    Args:
        curve: one dict per point with the ``x`` key and metric values (floats or
            ``(mean, std)``, drawn as a shaded band); points missing a metric are skipped.
        out_png: output path (parent directories are created).
        x: the key on the x axis.
        keys: the metrics to draw (default: every other numeric key, in first-seen order).
        chance: metric -> chance level, drawn as a dotted line.
        ylabel, title: axis label and title.

    Returns:
        ``out_png`` as a :class:`Path`.
    """
    chance = chance or {}
    if keys is None:
        keys = []
        for point in curve:
            keys += [k for k, v in point.items() if k != x and k not in keys and _is_value(v)]
    fig = _figure((5.5, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for key in keys:
        pts = [(_to_float(p.get(x)), *_mean_std(p.get(key))) for p in curve]
        pts = sorted(p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1]))
        if not pts:
            continue
        xs, mean, std = map(np.asarray, zip(*pts))
        (line,) = ax.plot(xs, mean, "-o", markersize=3, label=key)
        if np.isfinite(std).any():
            s = np.nan_to_num(std)
            ax.fill_between(xs, mean - s, mean + s, color=line.get_color(), alpha=0.2)
        if key in chance:
            ax.axhline(chance[key], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel(x)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize=7)
    return _save(fig, out_png)


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_png: str | Path) -> Path:
    from infmasking.files import write_atomic

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, lambda f: fig.savefig(f, dpi=120, format="png"))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_value(v: Any) -> bool:
    return _is_number(v) or (
        isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_number(u) for u in v)
    )


def _to_float(v: Any) -> float:
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _columns(table: Mapping[str, Value], tasks: Sequence[str]) -> tuple[list[float], list[float]]:
    """Means and stds [len(tasks)] of ``table`` (nan where missing)."""
    pairs = [_mean_std(table.get(t)) for t in tasks]
    return [m for m, _ in pairs], [s for _, s in pairs]


def _mean_std(v: Value) -> tuple[float, float]:
    """A float or a (mean, std) pair -> (mean, std); missing -> (nan, nan)."""
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return _to_float(v[0]), _to_float(v[1])
    return _to_float(v), math.nan
