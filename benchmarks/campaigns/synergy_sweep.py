"""Tabulate the InfMasking sweep of benchmarks/campaigns/synergy_tokens.sh: T, mask_ratio,
mask_lambda.

Reads ``<sweep>/<option>_<value>/seed<k>/report.json`` (biased-pair runs). The published point
(T 6, mask_ratio 0.7, mask_lambda 1) and the CoMM reference come from ``<sweep>/name_infmasking``
and ``<sweep>/name_comm`` (trained like the sweep runs) when those exist, else from the biased
runs of the comparison (``<compare>/<method>/seed<k>``, same seeds). Writes sweep.md /
sweep.json (per-seed values beside mean ± 95 % CI) / sweep.png in ``--out``: synergy AUROC and
balanced accuracy, last epoch.

    python benchmarks/campaigns/synergy_sweep.py --sweep runs/synergy_tokens/sweep \
        --compare runs/synergy_tokens/compare --out benchmarks/results/synergy_tokens
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from infmasking.evaluation.selection import mean_ci
from infmasking.evaluation.tables import write_markdown_table
from infmasking.training.folder import RunFolder
from infmasking.training.report.schema import RunReport

OPTIONS = {
    "num_masks": ("T (masked views)", 6),
    "mask_ratio": ("mask_ratio", 0.7),
    "mask_lambda": ("mask_lambda", 1.0),
}
SEEDS = (0, 1, 2, 3, 4)  # --seeds
KEYS = ["synergy_auroc", "synergy", "redundancy", "uniqueness"]
DELTA = "Δ synergy_auroc vs published (paired)"


def _metrics(report: RunReport) -> dict[str, float]:
    """The sweep's numbers of one run: synergy AUROC and the headline R / U / S (%)."""
    rus = report.headline_rus()
    return {
        "synergy_auroc": report.score("synergy", "auroc"),
        "synergy": rus["synergy"],
        "redundancy": rus["redundancy"],
        "uniqueness": rus["uniqueness"],
    }


def _read(folder: Path, evaluation: str | None = None) -> dict | None:
    """The numbers of the run in ``folder``, None if it has not finished. ``evaluation``: read
    the probes of the run's cached evaluation ``<evaluation>.json`` (``infmasking evaluate``)
    instead of its report; a finished run without it is an error naming the folder."""
    run = RunFolder(folder)
    if not run.finished:
        return None
    report = run.report()
    probed = report
    if evaluation is not None:
        probed = run.evaluation(evaluation)
        if probed is None:
            raise SystemExit(
                f"{folder}: no {evaluation}.json; run `infmasking evaluate {folder} ...` first"
            )
    return {**_metrics(probed), "seed": report.seed, "train_seconds": report.train_seconds}


def _read_seeds(folder: Path, seeds: tuple[int, ...], evaluation: str | None = None) -> list[dict]:
    return [m for s in seeds if (m := _read(folder / f"seed{s}", evaluation))]


def reference_folder(sweep: Path, compare: Path, method: str) -> Path:
    """Where ``method`` at the published point is read: ``<sweep>/name_<method>`` if it exists
    (trained like the sweep runs), else the comparison's biased runs."""
    folder = sweep / f"name_{method}"
    return folder if folder.is_dir() else compare / method


def collect(
    sweep: Path,
    published: list[dict],
    seeds: tuple[int, ...] = SEEDS,
    evaluation: str | None = None,
) -> dict:
    """option -> value -> list of per-seed metric dicts (the default point: ``published``)."""
    table: dict[str, dict[float, list[dict]]] = {}
    for option, (_, default) in OPTIONS.items():
        points: dict[float, list[dict]] = {}
        for folder in sorted(sweep.glob(f"{option}_*")):
            value = float(folder.name[len(option) + 1 :])
            points[value] = _read_seeds(folder, seeds, evaluation)
        points[float(default)] = published
        table[option] = dict(sorted(points.items()))
    return table


def _fmt(mean: float, half: float, signed: bool = False) -> str:
    return (f"{mean:+.1f}" if signed else f"{mean:.1f}") + (
        "" if math.isnan(half) else f" ± {half:.1f}"
    )


def summarise(runs: list[dict], base: dict[int, dict], with_seeds: bool = True) -> dict:
    """n, seeds, paired Δ synergy AUROC vs ``base`` (seed -> run), mean ± CI of KEYS, runs."""
    diff = [
        r["synergy_auroc"] - base[r["seed"]]["synergy_auroc"] for r in runs if r["seed"] in base
    ]
    return {
        "n": len(runs),
        **({"seeds": [r["seed"] for r in runs]} if with_seeds else {}),
        "delta_auroc": list(mean_ci(diff)) if diff else [math.nan, math.nan],
        **{k: list(mean_ci([r[k] for r in runs])) for k in KEYS},
        "per_seed": runs,
    }


def _row(option: str, value: str, runs: list[dict], summary: dict, delta: bool) -> dict:
    return {
        "option": option,
        "value": value,
        "seeds": ", ".join(str(r["seed"]) for r in runs),
        **{k: _fmt(*summary[k]) for k in KEYS},
        DELTA: _fmt(*summary["delta_auroc"], signed=True) if delta else "—",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sweep", type=Path, required=True)
    p.add_argument("--compare", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument(
        "--evaluation",
        default=None,
        help="read every run's cached evaluation <NAME>.json (e.g. evaluation_standardised, "
        "from `infmasking evaluate RUN --probe standardised`) instead of its report; writes "
        "sweep_<NAME without evaluation_>.{md,json,png}",
    )
    args = p.parse_args(argv)
    seeds, ev = tuple(args.seeds), args.evaluation
    stem = "sweep" if ev is None else f"sweep_{ev.removeprefix('evaluation_')}"
    published_from = reference_folder(args.sweep, args.compare, "infmasking")
    published = _read_seeds(published_from, seeds, ev)
    table = collect(args.sweep, published, seeds, ev)
    comm = _read_seeds(reference_folder(args.sweep, args.compare, "comm"), seeds, ev)
    md = [
        "# InfMasking on trifeatures_tokens: what drives synergy",
        "",
        "InfMasking trained on the biased pairs, one option changed at a time from the published "
        "setting (T 6, mask_ratio 0.7, mask_lambda 1); last epoch (936 steps), linear probes, "
        "mean ± 95 % CI over the seeds listed; Δ: per-seed difference from the published "
        "setting's run of the same seed (for CoMM: CoMM − InfMasking at the published "
        "setting). Redundancy / uniqueness here come from these biased-pair "
        "runs (on them texture₁ is shared with colour₂), so read them as a sanity check only. "
        + (
            "The published point and CoMM are trained exactly like the sweep runs. "
            if published_from.parent == args.sweep
            else "The published point and CoMM are the comparison's biased-pair runs. "
        )
        + (
            "Probes: the runs' own (the published probe). "
            if ev is None
            else f"Probes: each run's `{ev}.json` (`infmasking evaluate`), not its report. "
        )
        + "Command: `bash benchmarks/campaigns/synergy_tokens.sh --only_sweep`.",
        "",
    ]
    rows, out_json = [], {}
    base = {r["seed"]: r for r in published}
    for option, points in table.items():
        for value, runs in points.items():
            if not runs:
                continue
            summary = out_json.setdefault(option, {})[value] = summarise(runs, base)
            default = value == float(OPTIONS[option][1])
            label = f"{value:g}" + (" (published)" if default else "")
            rows.append(_row(option, label, runs, summary, delta=not default))
    if comm:
        out_json["comm"] = summarise(comm, base, with_seeds=False)
        rows.append(_row("*CoMM*", "—", comm, out_json["comm"], delta=True))
    md.append(write_markdown_table(rows, ["option", "value", "seeds", *KEYS, DELTA]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text("\n".join(md) + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps(out_json, indent=1))

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, (option, points) in zip(axes, table.items()):
        xs = [v for v, r in points.items() if r]
        stats = [mean_ci([r["synergy_auroc"] for r in points[v]]) for v in xs]
        ax.errorbar(
            xs,
            [s[0] for s in stats],
            yerr=[0 if math.isnan(s[1]) else s[1] for s in stats],
            marker="o",
            capsize=3,
            label="InfMasking",
        )
        if comm:
            m, h = mean_ci([r["synergy_auroc"] for r in comm])
            ax.axhline(m, color="tab:orange", ls="--", label="CoMM")
            if not math.isnan(h):
                ax.axhspan(m - h, m + h, color="tab:orange", alpha=0.15)
        ax.axhline(50, color="gray", ls=":", label="chance")
        ax.set_xlabel(OPTIONS[option][0])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("synergy AUROC (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "trifeatures_tokens, biased pairs: synergy vs InfMasking's options (mean ± 95 % CI)"
        + ("" if ev is None else f"; probes: {ev}")
    )
    fig.tight_layout()
    fig.savefig(args.out / f"{stem}.png", dpi=120)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
