"""The report of a run or an evaluation: report.{json,md}, its plots, its closing lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infmasking.data.base import MultimodalData
from infmasking.evaluation import plots
from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.selection import select_epoch
from infmasking.evaluation.tables import write_markdown_table
from infmasking.objectives import get as get_objective
from infmasking.training.config import (
    RunConfig,
    to_dict,
)

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


def write_report(
    out: Path,
    cfg: RunConfig,
    data: MultimodalData,
    results: dict[str, Any],
    *,
    name: str = "report",
    **extra: Any,
) -> dict[str, Any]:
    rows = []
    for task, r in results.items():
        row = {"task": task, "kind": r.kind, "published metric": r.published_metric}
        row.update({k: (100 * v if k not in ("mse", "r2") else v) for k, v in r.metrics.items()})
        rows.append(row)
    columns = (
        ["task", "kind"]
        + sorted({k for r in results.values() for k in r.metrics})
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
    report: dict[str, Any] = {
        "method": cfg.method.name,
        "dataset": data.name,
        "config": to_dict(cfg),
        "results": {t: r.to_dict() for t, r in results.items()},
        **extra,
    }
    if protocol.applies(data):
        rus = rus_summary(results)
        report["rus"] = rus
        md += [
            "",
            "| | redundancy | uniqueness | synergy | synergy AUROC |",
            "|---|---|---|---|---|",
            f"| measured | {rus['redundancy']:.1f} | {rus['uniqueness']:.1f} | "
            f"{rus['synergy']:.1f} | "
            f"{100 * results['synergy'].metrics.get('auroc', float('nan')):.1f} |",
        ]
        pub = protocol.PUBLISHED.get(cfg.method.name)
        if pub:
            md.append(
                f"| published (224 px, 100 epochs) | {pub['redundancy']} | "
                f"{pub['uniqueness']} | {pub['synergy']} | — |"
            )
        md += [
            "",
            f"Trained on the {'biased' if cfg.data.biased else 'unbiased'} pairs. "
            "The published protocol reads redundancy and uniqueness from a run on the unbiased "
            "pairs (`--data.biased false`) and synergy from a run on the biased pairs; "
            "on the biased pairs texture₁ is shared with colour₂, so uniqueness is "
            f"overstated there. `infmasking reproduce {data.name}` runs both.",
        ]
        # the published point only where this run measures the same thing (protocol: synergy
        # from the biased pairs, redundancy / uniqueness from the unbiased pairs)
        pairs = "biased" if cfg.data.biased else "unbiased"
        measures = [m for m, p in protocol.MEASURE_PAIRS.items() if p == pairs]
        auroc = results["synergy"].metrics.get("auroc", float("nan"))
        plots.plot_rus_bars(
            {cfg.method.name: {**rus, "synergy_auroc": 100 * auroc}},
            out / f"{name}_rus.png" if name != "report" else out / "probe.png",
            published={cfg.method.name: {k: pub[k] for k in measures}} if pub else None,
            chance=protocol.CHANCE,
            title=f"{cfg.method.name} on {data.name} ({pairs} pairs, "
            f"{extra.get('steps', '?')} steps; probe {cfg.eval.probe})",
        )
    curve_path = out / "probe_curve.json"
    if name == "report" and curve_path.exists():
        rows = json.loads(curve_path.read_text())
        tasks = [t for t, r in results.items() if r.kind != "regression"]
        if tasks and any(r["epoch"] > 0 for r in rows):
            report["selection"] = {
                by: select_epoch(rows, tasks, by) for by in ("last", "valid", "test")
            }
            md += [
                "",
                "## Which epoch",
                "",
                f"Probed at epochs {', '.join(str(r['epoch']) for r in rows)}. "
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
                r = report["selection"][by]
                md.append(
                    f"| {label} | {r['epoch']} | "
                    + " | ".join(f"{r[t]:.1f}" for t in tasks)
                    + f" | {r.get('synergy_auroc', float('nan')):.1f} |"
                )
            if protocol.applies(data):
                report["rus_by"] = {
                    by: {
                        name: r[task]
                        for task, name in {
                            **protocol.RUS,
                            "unique2": "unique2",
                            "synergy_auroc": "synergy_auroc",
                        }.items()
                    }
                    for by, r in report["selection"].items()
                }
            md += ["", "The tables above are the last epoch."]
            if cfg.eval.select == "best_valid" and "rus_by" in report:
                # the headline follows eval.select; the last epoch stays under rus_last
                report["rus_last"], report["rus"] = (
                    report["rus"],
                    {k: report["rus_by"]["valid"][k] for k in protocol.MEASURES},
                )
                r = report["selection"]["valid"]
                md += [
                    f"Headline (`eval.select best_valid`): epoch {r['epoch']}, redundancy "
                    f"{report['rus']['redundancy']:.1f}, "
                    f"uniqueness {report['rus']['uniqueness']:.1f}, "
                    f"synergy {report['rus']['synergy']:.1f}."
                ]

    if get_objective(cfg.method.name).masked:
        horizon = cfg.method.lambda_epochs or cfg.optim.epochs
        final = cfg.method.mask_lambda * min(1.0, cfg.optim.epochs / horizon)
        md.append(
            f"\nλ ramp: horizon {horizon} epochs, final λ = {final:.4g} "
            f"(mask_lambda {cfg.method.mask_lambda})"
        )
        report["lambda"] = {"horizon": horizon, "final": final}
    for k in ("train_seconds", "steps"):
        if k in extra:
            md.append(
                f"\n{k.replace('_', ' ')}: {extra[k]:.0f}"
                if isinstance(extra[k], float)
                else f"\n{k}: {extra[k]}"
            )
    report["markdown"] = "\n".join(md)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=float))
    (out / f"{name}.md").write_text(report["markdown"] + "\n")
    if name == "report":
        if (out / "metrics.csv").exists():
            plots.plot_training_curves(
                out / "metrics.csv", out / "training_curves.png", modalities=data.modalities
            )
        curve = out / "probe_curve.json"
        if curve.exists():
            rows = json.loads(curve.read_text())
            keys = [k for k in rows[-1] if k not in ("epoch", "step") and not k.startswith("val_")]
            chance = None
            if protocol.applies(data):
                chance = protocol.task_chance()
            plots.plot_metric_vs_epoch(
                rows,
                out / "probe_curve.png",
                keys=keys,
                chance=chance,
                ylabel="probe-test score (%)",
                title=f"{cfg.method.name}: linear probe vs epoch (epoch 0 = random init)",
            )
    return report


def run_summary(out: Path) -> str:
    """The closing lines of a run: where its folder is and what its main files hold."""
    described = [
        ("report.md", "the probe results (report.json: the same, machine-readable)"),
        ("probe.png", "redundancy / uniqueness / synergy bars"),
        ("probe_curve.png", "the probes after every probed epoch"),
        ("training_curves.png", "the loss terms per step (metrics.csv: the numbers)"),
        ("checkpoints/last.ckpt", "the trained model (infmasking embed / evaluate / load_run)"),
        ("config.yaml", "every option of the run"),
    ]
    lines = [f"\nRun folder: {out.resolve()}"]
    lines += [f"  {name:22s} {what}" for name, what in described if (out / name).exists()]
    return "\n".join(lines)


def evaluation_name(cfg: RunConfig) -> str:
    """``evaluation`` plus what differs from the default probe: ``_standardised``, ``_fused``
    / ``_concat``, ``_balanced``."""
    e = cfg.eval
    parts = ["evaluation"]
    if e.probe != "published":
        parts.append(e.probe)
    if e.features != "auto":
        parts.append(e.features)
    if e.class_weight is not None:
        parts.append(e.class_weight)
    return "_".join(parts)
