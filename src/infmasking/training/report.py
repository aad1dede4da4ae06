"""The report of a run or an evaluation: built (:func:`build_report`) as a
:class:`~infmasking.training.run_report.RunReport`, rendered (:func:`render_markdown`), written
through :class:`~infmasking.training.folder.RunFolder` with its plots (:func:`write_report`),
and the run's closing lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from infmasking.data.base import MultimodalData
from infmasking.evaluation import plots
from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.probe import COLLAPSE_RATIO, ProbeResult
from infmasking.evaluation.selection import select_epoch
from infmasking.evaluation.tables import write_markdown_table
from infmasking.objectives import get as get_objective
from infmasking.training.config import (
    RunConfig,
    to_dict,
)
from infmasking.training.folder import RunFolder
from infmasking.training.run_report import RunReport

rus_summary = protocol.rus_summary  # re-exported: the report's "rus" entry


def _features_said(cfg: RunConfig) -> str:
    """What the probes of this run read, in words."""
    from infmasking.objectives import feature_kind

    kind = feature_kind(cfg.method.name, cfg.eval.features)
    return {
        "fused": "fused features F(all)",
        "concat": "unimodal features [F({x1}), ..., F({xM})]",
        "heads": "shared and unique features [S_m, U_m] of every modality",
    }.get(kind, f"{kind} features")


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
    rus = rus_summary(results) if protocol.applies(data) else None
    robust = {t: r.robust for t, r in results.items() if r.robust is not None}
    if rus is not None and robust:
        # the robust reading's redundancy / uniqueness / synergy beside the headline
        extra.setdefault("rus_robust", {**rus_summary(robust), **_robust_auroc(robust)})
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


def _pct(value: Any) -> str:
    """A fraction as a percentage with one decimal ("—" for null / nan / absent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.1f}"


def readings_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """The Markdown lines of both readings of every classification probe, with the published
    reading's diagnostics (docs/PROBES.md), from results as written in report.json; [] when
    no result carries them (reports written before the robust reading)."""
    rows = [
        (t, r)
        for t, r in results.items()
        if r.get("kind") == "classification" and (r.get("robust") or r.get("diagnostics"))
    ]
    if not rows:
        return []
    robust = next((r["robust"]["probe"] for _, r in rows if r.get("robust")), None)
    name = robust.removeprefix("robust_") if robust else "off"
    lines = [
        "## Both readings",
        "",
        "The published probe (the headline: raw float32 features) and the robust reading "
        f"(`eval.robust_probe {name}`: the same protocol on {name} features, solved in float64) "
        "of the same features; balanced accuracy (BA) and AUROC in %, the chosen C, and "
        "whether the published refit is a constant classifier (one predicted class for every "
        "test sample). docs/PROBES.md says what each reads.",
        "",
        "| task | published BA | published AUROC | C | constant | robust BA | robust AUROC "
        "| robust C |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for t, r in rows:
        d = r.get("diagnostics") or {}
        rob = r.get("robust") or {}
        m, rm = r.get("metrics", {}), rob.get("metrics", {})
        constant = d.get("constant_classifier")
        said = "—" if constant is None else ("**yes**" if constant else "no")
        robust_cells = (
            f"{_pct(rm.get('balanced_accuracy'))} | {_pct(rm.get('auroc'))} | {rob['hparam']:.3g}"
            if rob
            else "— | — | —"
        )
        lines.append(
            f"| {t} | {_pct(m.get('balanced_accuracy'))} | {_pct(m.get('auroc'))} | "
            f"{r.get('hparam', math.nan):.3g} | {said} | {robust_cells} |"
        )
        if constant:
            notes.append(f"{t}: the published reading is a constant classifier")
    d = rows[0][1].get("diagnostics") or {}
    if d.get("offset_ratio") is not None:
        ratio = d["offset_ratio"]
        lines += [
            "",
            f"Feature geometry (probe-train): ‖mean‖ = {d['mean_norm']:.3g}, mean per-dimension "
            f"std = {d['mean_std']:.3g}, ratio {ratio:.0f}"
            + (
                f" — **the collapse regime** (≥ {COLLAPSE_RATIO:g}): the float32 published probe "
                "may stop early; read the robust reading."
                if d.get("collapse_regime")
                else "."
            ),
        ]
    if notes:
        lines += [
            "",
            "Note: " + "; ".join(notes) + " (its balanced accuracy reads chance "
            "whatever the features hold).",
        ]
    return lines


def _metric(report: RunReport, task: str, metric: str) -> float:
    """A metric as written (fraction), nan where undefined or absent."""
    value = report.results[task].get("metrics", {}).get(metric)
    return math.nan if value is None else value


def render_markdown(
    report: RunReport,
    cfg: RunConfig,
    data: MultimodalData,
    curve: list[dict[str, Any]] | None = None,
) -> str:
    """The Markdown of ``report`` (``report.md`` / ``evaluation*.md``).

    Args:
        report: the report (its ``markdown`` is not read).
        cfg: the run config.
        data: the dataset probed.
        curve: the probe curve the report's ``selection`` was chosen from (its epochs are
            listed).

    Returns:
        The Markdown, without a trailing newline.
    """
    results = report.results
    rows = []
    for task, r in results.items():
        row = {"task": task, "kind": r["kind"], "published metric": r["published_metric"]}
        row.update(
            {
                k: (v if v is None or k in ("mse", "r2") else 100 * v)
                for k, v in r["metrics"].items()
            }
        )
        rows.append(row)
    columns = (
        ["task", "kind"]
        + sorted({k for r in results.values() for k in r["metrics"]})
        + ["published metric"]
    )
    md = [
        f"# {cfg.method.name} on {data.name}",
        "",
        f"Linear probe on frozen {_features_said(cfg)} (last epoch). Percentages except mse / r2. "
        "The published metric for classification is balanced (macro) accuracy.",
        "",
        write_markdown_table(rows, columns, float_format="{:.2f}"),
    ]
    if protocol.applies(data):
        rus = report.last_rus()  # the tables are the last epoch
        md += [
            "",
            "| | redundancy | uniqueness | synergy | synergy AUROC |",
            "|---|---|---|---|---|",
            f"| measured | {rus['redundancy']:.1f} | {rus['uniqueness']:.1f} | "
            f"{rus['synergy']:.1f} | "
            f"{100 * _metric(report, 'synergy', 'auroc'):.1f} |",
        ]
        pub = protocol.PUBLISHED.get(cfg.method.name)
        if pub:
            md.append(
                f"| published (224 px, 100 epochs) | {pub['redundancy']} | "
                f"{pub['uniqueness']} | {pub['synergy']} | — |"
            )
        rr = report.extra.get("rus_robust")
        if rr:
            md.append(
                f"| robust reading (`eval.robust_probe {cfg.eval.robust_probe}`) | "
                f"{rr.get('redundancy', math.nan):.1f} | {rr.get('uniqueness', math.nan):.1f} | "
                f"{rr.get('synergy', math.nan):.1f} | {rr.get('synergy_auroc', math.nan):.1f} |"
            )
        md += [
            "",
            f"Trained on the {'biased' if cfg.data.trifeatures.biased else 'unbiased'} pairs. "
            "The published protocol reads redundancy and uniqueness from a run on the unbiased "
            "pairs (`--data.trifeatures.biased false`) and synergy from a run on the biased pairs; "
            "on the biased pairs texture₁ is shared with colour₂, so uniqueness is "
            f"overstated there. `infmasking reproduce {data.name}` runs both.",
        ]
    both = readings_table(results)
    if both:
        md += ["", *both]
    if report.selection is not None:
        tasks = [t for t, r in results.items() if r["kind"] != "regression"]
        md += [
            "",
            "## Which epoch",
            "",
            f"Probed at epochs {', '.join(str(r['epoch']) for r in curve or [])}. "
            "`last`: the last epoch; "
            "`best_valid`: the epoch with the best mean score on the held-out part of "
            "probe-train (never the test split); **as published: epoch chosen on test** "
            "(best mean test score, early stopping with patience 10) — optimistic, shown to "
            "measure the inflation. Test scores (%).",
            "",
            "| selection | epoch | " + " | ".join(tasks) + " | synergy AUROC |",
            "|---|---|" + "---|" * (len(tasks) + 1),
        ]
        for by, label in (
            ("last", "last"),
            ("valid", "best_valid"),
            ("test", "as published: epoch chosen on test"),
        ):
            r = report.selection[by]
            md.append(
                f"| {label} | {r['epoch']} | "
                + " | ".join(f"{r[t]:.1f}" for t in tasks)
                + f" | {r.get('synergy_auroc', float('nan')):.1f} |"
            )
        md += ["", "The tables above are the last epoch."]
        if report.rus_last is not None:
            r, rus = report.selection["valid"], report.rus
            md += [
                f"Headline (`eval.select best_valid`): epoch {r['epoch']}, redundancy "
                f"{rus['redundancy']:.1f}, "
                f"uniqueness {rus['uniqueness']:.1f}, "
                f"synergy {rus['synergy']:.1f}."
            ]
    if report.lambda_schedule is not None:
        horizon, final = report.lambda_schedule["horizon"], report.lambda_schedule["final"]
        md.append(
            f"\nλ ramp: horizon {horizon} epochs, final λ = {final:.4g} "
            f"(mask_lambda {cfg.method.mask_lambda})"
        )
    for k in ("train_seconds", "steps"):
        value = getattr(report, k)
        if value is not None:
            md.append(
                f"\n{k.replace('_', ' ')}: {value:.0f}"
                if isinstance(value, float)
                else f"\n{k}: {value}"
            )
    return "\n".join(md)


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
        auroc = _metric(report, "synergy", "auroc")
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


def run_summary(out: Path) -> str:
    """The closing lines of a run: where its folder is and what its main files hold."""
    described = [
        ("report.md", "the probe results (report.json: the same, machine-readable)"),
        ("probe.png", "redundancy / uniqueness / synergy bars"),
        ("probe_curve.png", "the published probe after every probed epoch"),
        ("probe_curve_robust.png", "the robust reading after every probed epoch"),
        ("training_curves.png", "the loss terms per step (metrics.csv: the numbers)"),
        ("checkpoints/last.ckpt", "the trained model (infmasking embed / evaluate / load_run)"),
        ("config.yaml", "every option of the run"),
    ]
    lines = [f"\nRun folder: {out.resolve()}"]
    lines += [f"  {name:22s} {what}" for name, what in described if (out / name).exists()]
    return "\n".join(lines)


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
