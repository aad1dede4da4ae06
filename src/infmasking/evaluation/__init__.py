"""Evaluation of frozen representations: linear probes, report figures and tables."""

from infmasking.evaluation.plots import (
    plot_metric_vs_epoch,
    plot_rus_bars,
    plot_training_curves,
    read_metrics_csv,
)
from infmasking.evaluation.probe import (
    DEFAULT_CS,
    PUBLISHED_METRIC,
    ProbeResult,
    fit_probe,
    probe_all,
)
from infmasking.evaluation.tables import write_markdown_table

__all__ = [
    "DEFAULT_CS",
    "PUBLISHED_METRIC",
    "ProbeResult",
    "fit_probe",
    "plot_metric_vs_epoch",
    "plot_rus_bars",
    "plot_training_curves",
    "probe_all",
    "read_metrics_csv",
    "write_markdown_table",
]
