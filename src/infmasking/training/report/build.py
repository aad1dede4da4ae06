"""The report of a run or an evaluation built from its probe results (:func:`build_report`),
written with its plots (:func:`write_report`), and the name of an evaluation's files
(:func:`evaluation_name`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infmasking.data.base import MultimodalData
from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.probe import ProbeResult
from infmasking.evaluation.selection import select_epoch
from infmasking.objectives import get as get_objective
from infmasking.training.config import RunConfig
from infmasking.training.config_files import to_dict
from infmasking.training.folder import RunFolder
from infmasking.training.report.markdown import render_markdown
from infmasking.training.report.plots import write_plots
from infmasking.training.report.schema import RunReport


def build_report(
    cfg: RunConfig,
    data: MultimodalData,
    results: dict[str, ProbeResult],
    *,
    curve: list[dict[str, Any]] | None = None,
    steps: int | None = None,
    train_seconds: float | None = None,
    checkpoint: str | None = None,
    **extra: Any,
) -> RunReport:
    """The report of a run (or an evaluation) from its probe results.

    On the Trifeatures protocol: the headline ``rus``; with a probe curve of trained epochs,
    the ``last`` / ``best_valid`` / test-selected rows (``selection``, ``rus_by``) and, with
    ``eval.select best_valid``, the ``best_valid`` headline (the last epoch under
    ``rus_last``). The λ ramp for masked objectives; the Markdown (:func:`render_markdown`).

    Args:
        cfg: the run config (its ``eval`` options as probed).
        data: the dataset probed.
        results: probe task -> result.
        curve: the rows of ``probe_curve.json`` (a run's own report), None for an evaluation.
        steps: optimizer steps of the training (a run's own report).
        train_seconds: training time (a run's own report).
        checkpoint: the checkpoint probed (an evaluation).
        **extra: more JSON entries, written as they are.

    Returns:
        The report (not yet written: :meth:`RunFolder.write_report`).
    """
    rus = protocol.rus_summary(results) if protocol.applies(data) else None
    robust = {t: r.robust for t, r in results.items() if r.robust is not None}
    if rus is not None and robust:
        # the robust reading's redundancy / uniqueness / synergy beside the headline
        extra.setdefault("rus_robust", {**protocol.rus_summary(robust), **_robust_auroc(robust)})
    selection = rus_by = rus_last = None
    tasks = [t for t, r in results.items() if r.kind != "regression"]
    if curve and tasks and any(r["epoch"] > 0 for r in curve):
        selection = {by: select_epoch(curve, tasks, by) for by in ("last", "valid", "test")}
        if rus is not None:
            names = {**protocol.RUS, "unique2": "unique2", "synergy_auroc": "synergy_auroc"}
            rus_by = {
                by: {name: row[task] for task, name in names.items()}
                for by, row in selection.items()
            }
            if cfg.eval.select == "best_valid":
                # the headline follows eval.select; the last epoch stays under rus_last
                rus_last = rus
                rus = {k: rus_by["valid"][k] for k in protocol.MEASURES}
    lambda_schedule = None
    if get_objective(cfg.method.name).masked:
        horizon = cfg.method.lambda_epochs or cfg.optim.epochs
        final = cfg.method.mask_lambda * min(1.0, cfg.optim.epochs / horizon)
        lambda_schedule = {"horizon": horizon, "final": final}
    report = RunReport(
        method=cfg.method.name,
        dataset=data.name,
        config=to_dict(cfg),
        results={t: r.to_dict() for t, r in results.items()},
        rus=rus,
        rus_last=rus_last,
        rus_by=rus_by,
        selection=selection,
        lambda_schedule=lambda_schedule,
        steps=steps,
        train_seconds=train_seconds,
        checkpoint=checkpoint,
        extra=extra,
    )
    return report.replace(markdown=render_markdown(report, cfg, data, curve))


def _robust_auroc(robust: dict[str, ProbeResult]) -> dict[str, float]:
    r = robust.get("synergy")
    auroc = r.metrics.get("auroc") if r is not None else None
    return {} if auroc is None else {"synergy_auroc": 100 * auroc}


def write_report(
    out: Path,
    cfg: RunConfig,
    data: MultimodalData,
    results: dict[str, ProbeResult],
    *,
    name: str = "report",
    **extra: Any,
) -> RunReport:
    """Build, write and plot the report of a run (``name`` "report": ``report.json`` /
    ``report.md``, reading the folder's ``probe_curve.json``) or of an evaluation (``name``
    an evaluation's name, :func:`evaluation_name`).

    Args:
        out: the folder to write into.
        cfg: the run config.
        data: the dataset probed.
        results: probe task -> result.
        name: "report" or an evaluation's name.
        **extra: ``steps`` / ``train_seconds`` / ``checkpoint`` and any other JSON entries
            (:func:`build_report`).

    Returns:
        The report as written, with its ``folder`` set to ``out``.
    """
    folder = RunFolder(out)
    curve = folder.probe_curve() if name == "report" else None
    report = build_report(cfg, data, results, curve=curve, **extra)
    write_plots(folder, report, cfg, data, name)
    return folder.write_report(report, name)


def evaluation_name(cfg: RunConfig) -> str:
    """``evaluation`` plus what differs from the default probe: ``_standardised``, ``_fused``
    / ``_concat``, ``_balanced``, ``_robust_standardised`` / ``_robust_off``."""
    e = cfg.eval
    parts = ["evaluation"]
    if e.probe != "published":
        parts.append(e.probe)
    if e.features != "auto":
        parts.append(e.features)
    if e.class_weight is not None:
        parts.append(e.class_weight)
    if e.robust_probe != "centred":
        parts.append(f"robust_{e.robust_probe}")
    return "_".join(parts)
