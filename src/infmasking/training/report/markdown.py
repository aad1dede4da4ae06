"""The Markdown of a report (``report.md`` / ``evaluation*.md``: :func:`render_markdown`, with
both probe readings side by side, :func:`readings_table`) and the closing lines of a run
(:func:`run_summary`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from infmasking.data.base import MultimodalData
from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.probe import COLLAPSE_RATIO
from infmasking.evaluation.tables import write_markdown_table
from infmasking.training.config import RunConfig
from infmasking.training.report.schema import RunReport


def _features_said(cfg: RunConfig) -> str:
    """What the probes of this run read, in words."""
    from infmasking.objectives import feature_kind

    kind = feature_kind(cfg.method.name, cfg.eval.features)
    return {
        "fused": "fused features F(all)",
        "concat": "unimodal features [F({x1}), ..., F({xM})]",
        "heads": "shared and unique features [S_m, U_m] of every modality",
    }.get(kind, f"{kind} features")


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


def metric_or_nan(report: RunReport, task: str, metric: str) -> float:
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
            f"{100 * metric_or_nan(report, 'synergy', 'auroc'):.1f} |",
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
