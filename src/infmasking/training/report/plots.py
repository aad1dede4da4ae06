"""The plots of a report: the redundancy / uniqueness / synergy bars, the training curves and the
probe curves (:func:`write_plots`)."""

from __future__ import annotations

from infmasking.data.base import MultimodalData
from infmasking.evaluation import plots
from infmasking.evaluation import trifeatures as protocol
from infmasking.training.config import RunConfig
from infmasking.training.folder import RunFolder
from infmasking.training.report.markdown import metric_or_nan
from infmasking.training.report.schema import RunReport


def write_plots(
    folder: RunFolder,
    report: RunReport,
    cfg: RunConfig,
    data: MultimodalData,
    name: str = "report",
) -> None:
    """The report's plots: the redundancy / uniqueness / synergy bars (``probe.png``, or
    ``<name>_rus.png`` for an evaluation) on the Trifeatures protocol; for a run's own report
    also ``training_curves.png`` (from ``metrics.csv``) and ``probe_curve.png``.

    Args:
        folder: where to write.
        report: the report (its ``rus`` are the last epoch's unless ``rus_last`` is set).
        cfg: the run config.
        data: the dataset probed.
        name: "report" or an evaluation's name.
    """
    out = folder.path
    pairs = "biased" if cfg.data.trifeatures.biased else "unbiased"
    steps = f", {report.steps} steps" if report.steps is not None else ""
    if protocol.applies(data):
        # the published point filled where this run measures the same thing (protocol: synergy
        # from the biased pairs, redundancy / uniqueness from the unbiased pairs), hollow where
        # the paper read it from a run on the other pair set
        pub = protocol.PUBLISHED.get(cfg.method.name)
        measures = [m for m, p in protocol.MEASURE_PAIRS.items() if p == pairs]
        others = [m for m in protocol.MEASURES if m not in measures]
        auroc = metric_or_nan(report, "synergy", "auroc")
        plots.plot_rus_bars(
            {cfg.method.name: {**report.last_rus(), "synergy_auroc": 100 * auroc}},
            out / f"{name}_rus.png" if name != "report" else out / "probe.png",
            published={cfg.method.name: {k: pub[k] for k in measures}} if pub else None,
            published_other={cfg.method.name: {k: pub[k] for k in others}} if pub else None,
            chance=protocol.CHANCE,
            ylabel="probe-test score (%)",
            task_labels={
                "redundancy": "redundancy\n(bal. acc.)",
                "uniqueness": "uniqueness\n(bal. acc.)",
                "synergy": "synergy\n(bal. acc.)",
                "synergy_auroc": "synergy\n(AUROC)",
            },
            values=True,
            published_other_label="published, from a run on the "
            f"{'unbiased' if pairs == 'biased' else 'biased'} pairs",
            title=f"{cfg.method.name} on {data.name} ({pairs} pairs{steps}; "
            f"{cfg.eval.probe} probe; published: 224 px, 100 epochs)",
        )
    if name != "report":
        return
    if folder.metrics.exists():
        plots.plot_training_curves(
            folder.metrics,
            out / "training_curves.png",
            modalities=data.modalities,
            title=f"{cfg.method.name} on {data.name} ({pairs} pairs{steps}): training curves"
            if protocol.applies(data)
            else f"{cfg.method.name} on {data.name}{steps}: training curves",
        )
    if folder.probe_curve_json.exists():
        rows = folder.probe_curve()
        tasks = list(report.results)
        keys = [k for k in rows[-1] if k in tasks or k.removesuffix("_auroc") in tasks]
        chance = None
        if protocol.applies(data):
            chance = protocol.task_chance()
            chance.update({f"robust_{k}": v for k, v in list(chance.items())})
        plots.plot_metric_vs_epoch(
            rows,
            out / "probe_curve.png",
            keys=keys,
            chance=chance,
            ylabel="probe-test score (%)",
            title=f"{cfg.method.name}: published probe vs epoch (epoch 0 = random init)",
        )
        robust_keys = [f"robust_{k}" for k in keys if f"robust_{k}" in rows[-1]]
        if robust_keys:
            plots.plot_metric_vs_epoch(
                rows,
                out / "probe_curve_robust.png",
                keys=robust_keys,
                chance=chance,
                ylabel="probe-test score (%)",
                title=f"{cfg.method.name}: robust reading ({cfg.eval.robust_probe}, float64) "
                "vs epoch",
            )
