"""Report figures and tables: files are written without a display, tables are exact."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from infmasking.evaluation.plots import (
    plot_metric_vs_epoch,
    plot_rus_bars,
    plot_training_curves,
    read_metrics_csv,
)
from infmasking.evaluation.tables import write_markdown_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Lightning CSVLogger style: metrics logged on different rows leave the other cells empty.
METRICS_CSV = """epoch,step,train/loss,train/loss_mask,train/acc_top1,lr-AdamW,val/loss,val/acc_top1
0,9,2.30,1.10,0.10,0.001,,
0,19,2.10,1.00,0.15,0.001,,
0,19,,,,,2.20,0.12
1,29,1.90,0.90,0.25,0.0009,,
1,39,1.70,nan,0.35,0.0008,,
1,39,,,,,1.80,0.30
"""


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_read_metrics_csv_fills_nan(tmp_path):
    f = tmp_path / "metrics.csv"
    f.write_text(METRICS_CSV)
    cols = read_metrics_csv(f)
    assert cols["step"].tolist() == [9, 19, 19, 29, 39, 39]
    assert np.isnan(cols["val/loss"][0]) and cols["val/loss"][2] == pytest.approx(2.2)
    assert np.isnan(cols["train/loss_mask"][4])


def test_plot_training_curves_with_nan_rows(tmp_path):
    f = tmp_path / "metrics.csv"
    f.write_text(METRICS_CSV)
    out = plot_training_curves(f, tmp_path / "figs" / "curves.png")
    assert out == tmp_path / "figs" / "curves.png"
    assert _is_png(out)


@pytest.mark.parametrize(
    "text",
    [
        "epoch,step,train/loss\n0,0,1.0\n0,1,\n",  # one metric, an empty row
        "step,other\n0,1\n1,2\n",  # no train/ or val/ columns at all
        "train/loss,val/acc\n1.0,\n0.5,0.7\n",  # no step or epoch column
        "epoch,step,train/loss\n",  # header only
    ],
)
def test_plot_training_curves_is_robust_to_missing_columns(tmp_path, text):
    f = tmp_path / "metrics.csv"
    f.write_text(text)
    assert _is_png(plot_training_curves(f, tmp_path / "curves.png"))


def test_plot_rus_bars(tmp_path):
    results = {
        "InfMasking": {
            "redundancy": (99.9, 0.1),
            "uniqueness": (90.6, 2.3),
            "synergy": (77.0, 4.2),
        },
        "CoMM": {"redundancy": 99.9, "uniqueness": 86.8, "synergy": math.nan},
    }
    published = {
        "InfMasking": {"redundancy": 99.9, "uniqueness": 90.6, "synergy": 77.0},
        "Cross": {"redundancy": 100.0, "uniqueness": 11.6, "synergy": 50.0},
    }
    chance = {"redundancy": 10.0, "uniqueness": 10.0, "synergy": 50.0}
    out = plot_rus_bars(
        results, tmp_path / "rus.png", published=published, chance=chance, title="Trifeatures"
    )
    assert _is_png(out)
    assert _is_png(plot_rus_bars({"MAE": {"synergy": 50.1}}, tmp_path / "one.png"))


def test_plot_metric_vs_epoch(tmp_path):
    curve = [
        {"epoch": 10, "synergy": 55.0, "synergy_auroc": (0.6, 0.02)},
        {"epoch": 50, "synergy": 68.0, "synergy_auroc": (0.7, 0.03)},
        {"epoch": 30, "synergy": 61.0},  # unsorted, a metric missing
        {"epoch": 100, "synergy": None, "note": "text is ignored"},
    ]
    out = plot_metric_vs_epoch(curve, tmp_path / "syn.png", chance={"synergy": 50.0})
    assert _is_png(out)
    assert _is_png(plot_metric_vs_epoch([], tmp_path / "empty.png"))


def test_write_markdown_table():
    rows = [
        {"model": "InfMasking", "redundancy": (99.94, 0.1), "synergy": 77.0, "runs": 5},
        {"model": "a|b", "redundancy": None, "synergy": math.nan},
        ["MAE", 99.8, 50.1, 5],
    ]
    table = write_markdown_table(rows, ["model", "redundancy", "synergy", "runs"])
    assert table == (
        "| model | redundancy | synergy | runs |\n"
        "|---|---|---|---|\n"
        "| InfMasking | 99.9 ± 0.1 | 77.0 | 5 |\n"
        "| a\\|b | – | – |  |\n"
        "| MAE | 99.8 | 50.1 | 5 |\n"
    )
    assert write_markdown_table([[0.12345]], ["x"], float_format="{:.3f}").endswith("| 0.123 |\n")
    with pytest.raises(ValueError, match="rows"):
        write_markdown_table([["too", "many"]], ["one"])


def test_loss_terms_are_named_by_their_column_and_modality():
    from infmasking.evaluation.plots import term_label

    mods = ["image1", "image2"]
    assert term_label("train/loss_comm_1", mods) == "train/loss_comm_1 (image1)"
    assert term_label("train/acc_cross_12", mods) == "train/acc_cross_12 (image1, image2)"
    assert term_label("train/loss_self_2", mods) == "train/loss_self_2 (image2)"
    assert term_label("train/loss_comm_all", mods) == "train/loss_comm_all"
    assert term_label("train/loss_comm_1") == "train/loss_comm_1"


def test_moving_mean_is_the_trailing_mean():
    from infmasking.evaluation.plots import moving_mean, smoothing_window

    y = np.array([1.0, 3.0, 2.0, 6.0, 4.0])
    want = [np.mean(y[max(0, i - 2) : i + 1]) for i in range(len(y))]
    np.testing.assert_allclose(moving_mean(y, 3), want)
    np.testing.assert_array_equal(moving_mean(y, 1), y)
    assert smoothing_window(49) == 1 and smoothing_window(100) == 4 and smoothing_window(936) == 37


def _inside(inner, outer) -> bool:
    """Do two boxes overlap?"""
    across = inner.x0 < outer.x1 and inner.x1 > outer.x0
    return across and inner.y0 < outer.y1 and inner.y1 > outer.y0


def test_training_curves_layout(tmp_path):
    """A title, a y label on every panel, labels that are the CSV columns, the lone
    mask_weight panel named after it, legends below the curves (never over them), smoothing
    said in the title."""
    from infmasking.evaluation.plots import training_curves_figure

    rng = np.random.default_rng(0)
    rows = ["epoch,step,train/loss,train/loss_comm_1,train/acc_comm_1,train/mask_weight"]
    for step in range(100):
        loss = 5 - step / 50 + rng.normal(0, 0.3)
        rows.append(f"0,{step},{loss},{loss + 1},{step / 200},{min(1, step / 80)}")
    f = tmp_path / "metrics.csv"
    f.write_text("\n".join(rows) + "\n")
    fig = training_curves_figure(f, ["image1", "image2"], title="infmasking on trifeatures")
    fig.canvas.draw()
    assert fig._suptitle.get_text().startswith("infmasking on trifeatures\n")
    assert "trailing mean over 4 logged steps" in fig._suptitle.get_text()
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["loss", "accuracy", "train/mask_weight"]
    assert all(a.get_ylabel() for a in axes)
    labels = [t.get_text() for a in axes for t in a.get_legend().get_texts()]
    assert labels == [
        "train/loss",
        "train/loss_comm_1 (image1)",
        "train/acc_comm_1 (image1)",
        "train/mask_weight",
    ]
    renderer = fig.canvas.get_renderer()
    for a in axes:
        assert not _inside(a.get_legend().get_window_extent(renderer), a.get_window_extent())


def test_rus_bars_say_metric_values_and_every_published_number(tmp_path):
    from infmasking.evaluation.plots import rus_bars_figure

    fig = rus_bars_figure(
        {"infmasking": {"redundancy": 37.9, "synergy": 50.0, "synergy_auroc": 55.2}},
        published={"infmasking": {"synergy": 77.0}},
        published_other={"infmasking": {"redundancy": 99.9}},
        chance={"redundancy": 10.0, "synergy": 50.0, "synergy_auroc": 50.0},
        task_labels={"synergy_auroc": "synergy\n(AUROC)"},
        values=True,
        published_other_label="published, unbiased pairs",
        title="a title",
    )
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["redundancy", "synergy", "synergy\n(AUROC)"]
    texts = [t.get_text() for t in ax.texts]
    assert {"37.9", "50.0", "55.2"} <= set(texts)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "published" in legend and "published, unbiased pairs" in legend
    renderer = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert not _inside(box, ax.get_window_extent())
    assert not _inside(box, fig._suptitle.get_window_extent(renderer))
