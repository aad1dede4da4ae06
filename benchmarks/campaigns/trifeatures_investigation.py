"""Tabulate and plot the Trifeatures investigation (runs of
benchmarks/campaigns/trifeatures_investigation.sh).

Reads the run folders — nothing is typed in by hand — and writes
``benchmarks/results/trifeatures_investigation/investigation.{md,json}``, ``curves.png`` and a
copy of every run's report / probe curve:

1. probe-vs-step curves (epoch 0 = the randomly initialised network) of each method;
2. the published SimCLR augmentation vs colour-preserving views (no hue jitter, no grayscale),
   same seed and steps;
3. the unweighted probe vs a class-weighted probe on the same features.

Every row shows the held-out score the probe's regularisation was chosen on (part of
probe-train, whose image combinations are the training ones) beside the probe-test score.

Usage:
    python benchmarks/campaigns/trifeatures_investigation.py [--runs runs/trifeatures_investigation]
        [--reproduce runs/reproduce_trifeatures_cpu]
        [--out benchmarks/results/trifeatures_investigation]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from infmasking.training.folder import RunFolder
from infmasking.training.report.schema import RunReport

METHODS = ("infmasking", "comm", "cross", "cross_self")
TASKS = (("share", "redundancy"), ("unique1", "uniqueness"), ("synergy", "synergy"))


def _report_row(report: RunReport) -> dict[str, float]:
    """The scores (%) of one report: test, held-out (balanced accuracy) and synergy AUROC."""
    row = {name: report.score(t) for t, name in TASKS}
    row["synergy_auroc"] = report.score("synergy", "auroc")
    row["synergy_val"] = report.held_out("synergy")
    row["share_val"] = report.held_out("share")
    row["steps"] = report.steps
    return row


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))


def curves_section(runs: Path, out: Path) -> tuple[list[str], dict]:
    curves = {}
    for m in METHODS:
        folder = RunFolder(runs / f"curve_{m}")
        if folder.probe_curve_json.exists():
            curves[m] = folder.probe_curve()
    lines = [
        "## 1. Longer training: linear probe every 3 epochs (156 steps per epoch)",
        "",
        "One run per method on the **biased** pairs, 12 epochs, seed 0. Probe-test balanced "
        "accuracy (%) of share (redundancy), unique1 (uniqueness — overstated on the biased pairs, "
        "where texture₁ is shared with colour₂), synergy, and the synergy AUROC; epoch 0 is the "
        "randomly initialised network.",
        "",
        "| method | epoch | step | redundancy | uniqueness | synergy | synergy AUROC |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, rows in curves.items():
        for r in rows:
            lines.append(
                f"| {m} | {r['epoch']} | {r['step']} | {r['share']:.1f} | {r['unique1']:.1f} | "
                f"{r['synergy']:.1f} | {_fmt(r.get('synergy_auroc'))} |"
            )
    finals = {}
    for m in curves:
        folder = RunFolder(runs / f"curve_{m}")
        if folder.finished:
            finals[m] = _report_row(folder.report())
    if finals:
        lines += [
            "",
            "Held-out (probe-train) vs probe-test at the last epoch:",
            "",
            "| method | steps | redundancy held-out / test | synergy held-out / test "
            "| synergy AUROC (test) |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {m} | {r['steps']} | {r['share_val']:.1f} / {r['redundancy']:.1f} | "
            f"{r['synergy_val']:.1f} / {r['synergy']:.1f} | {r['synergy_auroc']:.1f} |"
            for m, r in finals.items()
        ]
    if curves:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, (key, title, chance) in zip(
            axes,
            [
                ("share", "redundancy (share), bal. acc. %", 10),
                ("unique1", "uniqueness (unique1), bal. acc. %", 10),
                ("synergy_auroc", "synergy AUROC %", 50),
            ],
        ):
            for m, rows in curves.items():
                pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), "-o", markersize=3, label=m)
            ax.axhline(chance, color="gray", linestyle=":", linewidth=1)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("training step")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(
            "Trifeatures 64 px, biased training set: linear probes on frozen fused features "
            "(step 0 = random init)",
            fontsize=10,
        )
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=120)
        plt.close(fig)
        lines += ["", "![curves](curves.png)"]
    return lines, {"curves": curves, "curve_finals": finals}


def colour_section(runs: Path, reproduce: Path) -> tuple[list[str], dict]:
    rows = {}
    for m in METHODS:
        a, b = RunFolder(reproduce / m / "seed0"), RunFolder(runs / f"colour_{m}")
        if a.finished and b.finished:
            rows[m] = {
                "published": _report_row(a.report()),
                "colour": _report_row(b.report()),
            }
    lines = [
        "## 2. Augmentation: published SimCLR views vs colour-preserving views "
        "(hue 0, grayscale p 0)",
        "",
        "Seed 0, 468 steps each. Synergy depends on the colour of image 2, which hue jitter and "
        "grayscale alter.",
        "",
        "| method | views | redundancy | uniqueness | synergy held-out / test | synergy AUROC |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in rows.items():
        for k, label in (("published", "SimCLR (published)"), ("colour", "colour-preserving")):
            x = r[k]
            lines.append(
                f"| {m} | {label} | {x['redundancy']:.1f} | {x['uniqueness']:.1f} | "
                f"{x['synergy_val']:.1f} / {x['synergy']:.1f} | {x['synergy_auroc']:.1f} |"
            )
    return lines, {"colour": rows}


def weighting_section(runs: Path, reproduce: Path) -> tuple[list[str], dict]:
    folders = [reproduce / m / "seed0" for m in METHODS] + [runs / f"curve_{m}" for m in METHODS]
    rows = {}
    for f in folders:
        folder = RunFolder(f)
        balanced = folder.evaluation("evaluation_balanced") if folder.finished else None
        if balanced is not None:
            rows[str(f)] = {
                "unweighted": _report_row(folder.report()),
                "balanced": _report_row(balanced),
            }
    lines = [
        "## 3. Probe imbalance: unweighted vs class-weighted (`class_weight=balanced`) "
        "synergy probe",
        "",
        "Same frozen features; ≈ 11 % of probe-test pairs are synergy-positive.",
        "",
        "| run | steps | synergy bal. acc. unweighted | class-weighted (held-out / test) "
        "| AUROC unweighted / weighted |",
        "|---|---|---|---|---|",
    ]
    for f, r in rows.items():
        u, w = r["unweighted"], r["balanced"]
        lines.append(
            f"| `{f}` | {u['steps']} | {u['synergy']:.1f} | "
            f"{w['synergy_val']:.1f} / {w['synergy']:.1f} | "
            f"{u['synergy_auroc']:.1f} / {w['synergy_auroc']:.1f} |"
        )
    return lines, {"weighting": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs/trifeatures_investigation"))
    p.add_argument("--reproduce", type=Path, default=Path("runs/reproduce_trifeatures_cpu"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/trifeatures_investigation"))
    args = p.parse_args(argv)
    if not args.runs.is_dir():
        p.error(
            f"--runs: no folder {args.runs} "
            "(run benchmarks/campaigns/trifeatures_investigation.sh first)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    md = [
        "# Trifeatures at CPU scale: why the published ordering does not appear",
        "",
        "Runs: `bash benchmarks/campaigns/trifeatures_investigation.sh`; tables: "
        "`python benchmarks/campaigns/trifeatures_investigation.py`. 64 px, biased training set, "
        "batch 64, "
        "published hyper-parameters otherwise; last-epoch numbers; per-run reports under `runs/`.",
        "",
    ]
    data = {}
    for section in (
        curves_section(args.runs, args.out),
        colour_section(args.runs, args.reproduce),
        weighting_section(args.runs, args.reproduce),
    ):
        md += section[0] + [""]
        data.update(section[1])
    (args.out / "investigation.md").write_text("\n".join(md))
    (args.out / "investigation.json").write_text(json.dumps(data, indent=1))
    for run in sorted(args.runs.glob("*/")):  # per-run reports and curves, small files only
        dst = args.out / "runs" / run.name
        folder = RunFolder(run)
        for path in (
            folder.report_md,
            folder.report_json,
            folder.probe_curve_json,
            folder.file("probe_curve.png"),
            folder.report_file("evaluation_balanced"),
            folder.config,
            folder.file("training_curves.png"),
        ):
            if path.exists():
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dst / path.name)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
