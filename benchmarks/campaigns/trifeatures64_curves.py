"""Probe curves of Trifeatures runs: the 64 px runs of
benchmarks/campaigns/trifeatures64_curves.sh (the default) or the token runs of
benchmarks/campaigns/tokens_curves.sh (``--title``, ``--script``).

Reads ``<runs>/<method>/seed<k>/probe_curve.json`` (biased pairs: synergy) and
``<runs>/<method>/seed<k>_unbiased/probe_curve.json`` (unbiased pairs: redundancy and
uniqueness) — the published protocol — and writes ``curves.{md,json,png}`` in ``--out``: each
probe score against the training step (step 0 = the randomly initialised network), mean over
the seeds with the per-seed values, the per-seed difference InfMasking − CoMM and the runs'
training time (``train_seconds`` of their report.json). Nothing is
typed in by hand; nothing is chosen on test (these are probe-test scores of every probed
epoch, shown as curves, not used to pick one).

    python benchmarks/campaigns/trifeatures64_curves.py --runs runs/trifeatures64_curves \
        --out benchmarks/results/trifeatures64_curves
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.selection import mean_ci
from infmasking.evaluation.selection import paired_difference as paired
from infmasking.evaluation.tables import write_markdown_table
from infmasking.training.folder import RunFolder

# (curve key, label, pair set the published protocol reads it from)
PANELS = (
    ("share", "redundancy (shape)", "unbiased"),
    ("unique1", "uniqueness (texture 1)", "unbiased"),
    ("synergy_auroc", "synergy AUROC", "biased"),
    ("synergy", "synergy (balanced accuracy)", "biased"),
)
# --all_tasks: every task of the biased-pair runs too (their R / U are not the protocol's numbers:
# on biased pairs shape, texture and colour are correlated across the two images)
ALL_TASKS = (
    ("share", "shape (redundancy task)", "biased"),
    ("unique1", "texture 1 (uniqueness task)", "biased"),
    ("unique2", "texture 2 (uniqueness task)", "biased"),
)
# the robust reading beside the published probe and the published probe's diagnostics
# (eval.robust_probe, docs/PROBES.md): shown for the runs whose probe_curve.json has them
ROBUST = (
    ("robust_share", "redundancy (shape), robust reading", "unbiased"),
    ("robust_unique1", "uniqueness (texture 1), robust reading", "unbiased"),
    ("robust_synergy_auroc", "synergy AUROC, robust reading", "biased"),
    ("robust_synergy", "synergy (balanced accuracy), robust reading", "biased"),
    ("constant_synergy", "published synergy probe a constant classifier (1 = yes)", "biased"),
    ("offset_ratio", "‖mean‖ / mean per-dimension std of the probed features", "biased"),
)
ALL_ROBUST = (
    ("robust_share", "shape (redundancy task), robust reading", "biased"),
    ("robust_unique1", "texture 1 (uniqueness task), robust reading", "biased"),
    ("robust_unique2", "texture 2 (uniqueness task), robust reading", "biased"),
    ("constant_share", "published shape probe a constant classifier (1 = yes)", "biased"),
)
CHANCE = protocol.task_chance()
CHANCE.update({f"robust_{k}": v for k, v in list(CHANCE.items())})


def tkey(key: str, pairs: str) -> str:
    """The table key of a panel: the curve key for the protocol's panels, ``<key>_<pairs>``
    for the extra panels of ``--all_tasks`` (the same task read from the other pair set)."""
    return key if (key, pairs) in {(k, p) for k, _, p in PANELS} else f"{key}_{pairs}"


COLOURS = {"infmasking": "C3", "comm": "C0", "cross": "C7", "cross_self": "C2"}


def _run_folders(runs: Path, methods: list[str], seeds: list[int]):
    """(method, pair set, seed, run folder) of every ``<runs>/<method>/seed<k>[_unbiased]``."""
    for method in methods:
        for pairs, suffix in (("biased", ""), ("unbiased", "_unbiased")):
            for seed in seeds:
                yield method, pairs, seed, RunFolder(runs / method / f"seed{seed}{suffix}")


def read_curves(runs: Path, methods: list[str], seeds: list[int]) -> dict:
    """method -> pair set -> seed -> list of probe-curve rows (only runs that have a curve)."""
    out: dict = {}
    for method, pairs, seed, folder in _run_folders(runs, methods, seeds):
        if folder.probe_curve_json.exists():
            out.setdefault(method, {}).setdefault(pairs, {})[seed] = folder.probe_curve()
    return out


def finished(rows: list[dict], epochs: int) -> bool:
    return bool(rows) and rows[-1]["epoch"] == epochs


def summarise(curves: dict, epochs: int, panels=PANELS, unfinished: bool = False) -> dict:
    """method -> key -> list of {epoch, step, mean, ci, values, train_seconds} over the finished
    runs' seeds (``unfinished``: also runs still training, up to the epoch all have reached)."""
    table: dict = {}
    for method, by_pairs in curves.items():
        for key, _, pairs in panels:
            runs = {
                s: r
                for s, r in by_pairs.get(pairs, {}).items()
                if finished(r, epochs) or (unfinished and r)
            }
            # curves written before a key existed (the robust reading) have no such panel
            if not runs or any(row.get(key) is None for r in runs.values() for row in r):
                continue
            points = []
            for i in range(min(len(r) for r in runs.values())):
                row = runs[min(runs)][i]
                values = [runs[s][i][key] for s in sorted(runs)]
                mean, ci = mean_ci(values)
                points.append(
                    {
                        "epoch": row["epoch"],
                        "step": row["step"],
                        "mean": mean,
                        "ci": ci,
                        "seeds": sorted(runs),
                        "values": values,
                        "train_seconds": [runs[s][i].get("train_seconds") for s in sorted(runs)],
                    }
                )
            table.setdefault(method, {})[tkey(key, pairs)] = points
    return table


def paired_difference(curves: dict, epochs: int, a: str = "infmasking", b: str = "comm") -> dict:
    """key -> per-seed a − b at the last epoch, for the seeds where both runs finished."""
    out = {}
    for key, _, pairs in PANELS:
        ra, rb = curves.get(a, {}).get(pairs, {}), curves.get(b, {}).get(pairs, {})
        seeds = sorted(
            s for s in ra if s in rb and finished(ra[s], epochs) and finished(rb[s], epochs)
        )
        if seeds:
            va, vb = [ra[s][-1][key] for s in seeds], [rb[s][-1][key] for s in seeds]
            out[key] = {
                "seeds": seeds,
                "differences": [x - y for x, y in zip(va, vb)],
                **paired(va, vb),
            }
    return out


def train_times(runs: Path, methods: list[str], seeds: list[int]) -> dict:
    """method -> pair set -> {seeds, seconds}: ``train_seconds`` of the finished runs."""
    out: dict = {}
    for method, pairs, seed, folder in _run_folders(runs, methods, seeds):
        if not folder.finished:
            continue
        row = out.setdefault(method, {}).setdefault(pairs, {"seeds": [], "seconds": []})
        row["seeds"].append(seed)
        row["seconds"].append(folder.report().train_seconds)
    return out


def plot(table: dict, path: Path, title: str, panels=PANELS) -> None:
    panels = [p for p in panels if any(tkey(p[0], p[2]) in t for t in table.values())]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    axes = axes[0]
    for ax, (key, label, pairs) in zip(axes, panels):
        for method, by_key in table.items():
            points = by_key.get(tkey(key, pairs))
            if not points:
                continue
            steps = [p["step"] for p in points]
            colour = COLOURS.get(method)
            n = len(points[0]["values"])
            ax.plot(steps, [p["mean"] for p in points], "o-", color=colour, label=f"{method} ({n})")
            for j in range(n):
                ax.plot(steps, [p["values"][j] for p in points], ":", color=colour, alpha=0.5)
        if key in CHANCE:
            ax.axhline(CHANCE[key], color="k", lw=0.8, ls="--")
        ax.set_title(f"{label}\n({pairs} pairs)", fontsize=10)
        ax.set_xlabel("training step (0 = random init)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probe-test score (%)")
    axes[0].legend(fontsize=8, title="method (seeds)")
    fig.suptitle(f"{title}: probe curves (mean of seeds, solid; each seed, dotted; chance, dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(
    table: dict,
    diff: dict,
    epochs: int,
    command: str,
    title: str,
    script: str,
    times: dict,
    panels=PANELS,
    unfinished: bool = False,
) -> str:
    lines = [
        f"# {title}: probe curves",
        "",
        f"Command: `{command}` (runs: `{script}`). "
        "Probe-test scores (%) of every probed epoch, mean ± 95 % CI over the seeds listed "
        "(Student t; ± nan with one seed), per-seed values in curves.json; redundancy and "
        "uniqueness from the unbiased-pair runs, synergy from the biased-pair runs; step 0 is "
        "the randomly initialised network. "
        + (
            f"Runs still training are included up to the epoch every one of them has reached "
            f"(the last column); the runs train for {epochs} epochs."
            if unfinished
            else f"Only runs that reached epoch {epochs} are shown."
        ),
        "",
    ]
    for key, label, pairs in panels:
        key = tkey(key, pairs)
        methods = [m for m in table if key in table[m]]
        if not methods:
            continue
        longest = max((table[m][key] for m in methods), key=len)  # runs still training: shorter
        header = ["method", "seeds", *[f"epoch {p['epoch']} (step {p['step']})" for p in longest]]
        rows = []
        for m in methods:
            pts = table[m][key]
            rows.append(
                [m, ", ".join(map(str, pts[0]["seeds"]))]
                + [f"{p['mean']:.1f} ± {p['ci']:.1f}" for p in pts]
                + ["–"] * (len(longest) - len(pts))
            )
        lines += [f"## {label} ({pairs} pairs)", "", write_markdown_table(rows, header)]
    if unfinished and table:
        lines += ["## Training seconds at each probed epoch (per seed)", ""]
        key = next(tkey(k, p) for k, _, p in panels if any(tkey(k, p) in t for t in table.values()))
        rows = [
            [m, f"epoch {p['epoch']}", ", ".join(f"{x:.0f}" for x in p["train_seconds"] if x)]
            for m in table
            if key in table[m]
            for p in table[m][key]
        ]
        lines.append(write_markdown_table(rows, ["method", "epoch", "train seconds"]))
    if diff:
        lines += ["## InfMasking − CoMM at the last epoch, per seed", ""]
        rows = [
            [
                label,
                ", ".join(map(str, diff[k]["seeds"])),
                ", ".join(f"{d:+.1f}" for d in diff[k]["differences"]),
                f"{diff[k]['mean']:+.1f} ± {diff[k]['ci']:.1f}",
                f"{diff[k]['p']:.2g}",
            ]
            for k, label, _ in PANELS
            if k in diff
        ]
        lines.append(
            write_markdown_table(
                rows, ["score", "seeds", "per seed", "mean ± 95 % CI", "paired t p"]
            )
        )
    if times:
        lines += ["## Training time of the runs (s, train_seconds of report.json)", ""]
        rows = [
            [
                m,
                pairs,
                ", ".join(map(str, t["seeds"])),
                ", ".join(f"{x:.0f}" for x in t["seconds"] if x is not None),
            ]
            for m, by_pairs in times.items()
            for pairs, t in by_pairs.items()
        ]
        lines.append(write_markdown_table(rows, ["method", "pairs", "seeds", "seconds per run"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=Path, default=Path("runs/trifeatures64_curves"))
    p.add_argument("--methods", nargs="+", default=["infmasking", "comm", "cross"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6, help="the runs' optim.epochs")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/trifeatures64_curves"))
    p.add_argument("--title", default="Trifeatures 64 px")
    p.add_argument("--script", default="bash benchmarks/campaigns/trifeatures64_curves.sh")
    p.add_argument(
        "--all_tasks", action="store_true", help="also every task of the biased-pair runs"
    )
    p.add_argument("--include_unfinished", action="store_true", help="also runs still training")
    args = p.parse_args(argv)
    panels = PANELS + ALL_TASKS if args.all_tasks else PANELS
    panels += ROBUST + (ALL_ROBUST if args.all_tasks else ())
    curves = read_curves(args.runs, args.methods, args.seeds)
    table = summarise(curves, args.epochs, panels, args.include_unfinished)
    diff = paired_difference(curves, args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/campaigns/trifeatures64_curves.py " + shlex.join(given)
    times = train_times(args.runs, args.methods, args.seeds)
    md = markdown(
        table,
        diff,
        args.epochs,
        command.strip(),
        args.title,
        args.script,
        times,
        panels,
        args.include_unfinished,
    )
    (args.out / "curves.md").write_text(md)
    (args.out / "curves.json").write_text(
        json.dumps(
            {"curves": table, "infmasking_minus_comm": diff, "train_seconds": times}, indent=1
        )
    )
    if table:
        plot(table, args.out / "curves.png", args.title, panels)
    print((args.out / "curves.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
