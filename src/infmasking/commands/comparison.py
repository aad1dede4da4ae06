"""Methods × seeds -> one comparison: each pair of runs summarised as a row, the rows' means
and 95 % intervals, the paired difference InfMasking − CoMM, written as comparison.md / .json /
.png (``infmasking reproduce``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from infmasking.evaluation import plots
from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.selection import mean_ci, paired_difference
from infmasking.evaluation.tables import write_markdown_table
from infmasking.files import write_atomic
from infmasking.training.folder import RunFolder
from infmasking.training.report.schema import RunReport

SUPERVISED = "control (a): the fusion network trained supervised on synergy"
SUPERVISED_LONG = "control (a), 10× the steps"
LONG_CONTROL_SEEDS = 2  # seeds of the 10x control (each costs ten self-supervised runs' steps)
FACTORS = "control (b): true factors + texture₁ × colour₂ cell"

KEYS = ["redundancy", "uniqueness", "unique2", "synergy", "synergy_auroc"]
#: The robust reading of the same measures (``eval.robust_probe``, docs/PROBES.md), in rows whose
#: runs recorded it.
ROBUST_KEYS = [f"robust_{k}" for k in KEYS]


def has_robust(report: RunReport) -> bool:
    """Does the report carry the robust reading (reports from before it do not)?"""
    return any(isinstance(r.get("robust"), dict) for r in report.results.values())


def _robust_score(report: RunReport, task: str, metric: str = "balanced_accuracy") -> float:
    """The robust reading's test ``metric`` (%) of ``task``; nan where the report has none."""
    value = (report.results.get(task, {}).get("robust") or {}).get("metrics", {}).get(metric)
    return math.nan if value is None else 100 * value


def _robust_row(biased: RunReport, ru: RunReport) -> dict:
    """The robust reading of the measures (:data:`ROBUST_KEYS`), as :func:`_summary` reads the
    published ones; {} when either report lacks it."""
    if not (has_robust(biased) and has_robust(ru)):
        return {}
    return {
        "robust_redundancy": _robust_score(ru, "share"),
        "robust_uniqueness": _robust_score(ru, "unique1"),
        "robust_unique2": _robust_score(ru, "unique2"),
        "robust_synergy": _robust_score(biased, "synergy"),
        "robust_synergy_auroc": _robust_score(biased, "synergy", "auroc"),
    }


def _curve(report: RunReport) -> list[dict]:
    """The probe curve of the run a report came from ([] without one)."""
    return RunFolder(report.folder).probe_curve() if report.folder is not None else []


def from_tasks(ru_scores: dict, synergy_scores: dict) -> dict:
    """Task scores (task -> %) as the protocol's measures (:data:`protocol.RUS`) plus
    ``unique2``: redundancy / uniqueness / unique2 from ``ru_scores``, synergy from
    ``synergy_scores`` (the runs of :data:`protocol.MEASURE_PAIRS`)."""
    out = {}
    for task, measure in protocol.RUS.items():
        from_biased = protocol.MEASURE_PAIRS[measure] == "biased"
        out[measure] = (synergy_scores if from_biased else ru_scores)[task]
    out["unique2"] = ru_scores["unique2"]
    return {k: out[k] for k in ("redundancy", "uniqueness", "unique2", "synergy")}


def _row_from(results_or_row: dict, ru_row: dict) -> dict:
    return {
        "redundancy": ru_row["redundancy"],
        "uniqueness": ru_row["uniqueness"],
        "unique2": ru_row["unique2"],
        "synergy": results_or_row["synergy"],
        "synergy_auroc": results_or_row["synergy_auroc"],
    }


def pair_row(biased: RunReport, unbiased: RunReport | None = None) -> dict:
    """One method × seed: synergy from the biased run; redundancy / uniqueness / unique2 from
    the unbiased run when given, else from the biased run. ``last`` always; ``best_valid``
    and the published test-selected numbers when the runs have probe curves; the epoch-0
    (random initialisation) numbers likewise (read from the reports' run folders).

    Args:
        biased: the report of the run on the biased pairs.
        unbiased: the report of the run on the unbiased pairs, if any.

    Returns:
        The comparison's row: ``last`` (``best_valid``, ``test_selected``, ``random_init``)
        -> measure -> score (%), ``ru_from``, ``train_seconds``, ``steps``, ``seed``.
    """
    ru = unbiased or biased

    def last(rep: RunReport) -> dict:
        rus = rep.last_rus()  # rus_last: the report's headline is best_valid
        return {
            "redundancy": rus["redundancy"],
            "uniqueness": rus["uniqueness"],
            "unique2": rep.score("unique2"),
            "synergy": rus["synergy"],
            "synergy_auroc": rep.score("synergy", "auroc"),
        }

    row = {"last": {**_row_from(last(biased), last(ru)), **_robust_row(biased, ru)}}
    if biased.rus_by is not None and ru.rus_by is not None:
        row["best_valid"] = _row_from(biased.rus_by["valid"], ru.rus_by["valid"])
        row["test_selected"] = _row_from(biased.rus_by["test"], ru.rus_by["test"])
    c_b, c_u = _curve(biased), _curve(ru)
    if c_b and c_u and c_b[0]["epoch"] == 0 and c_u[0]["epoch"] == 0:
        b0, u0 = c_b[0], c_u[0]
        row["random_init"] = {
            **from_tasks(u0, b0),
            "synergy_auroc": b0["synergy_auroc"],
            "seed": biased.setting("seed"),
        }
        robust = ("robust_synergy", "robust_synergy_auroc")
        if all(f"robust_{t}" in u0 for t in ("share", "unique1", "unique2")) and all(
            k in b0 for k in robust
        ):  # curves recorded with the robust reading beside
            row["random_init"].update(
                robust_redundancy=u0["robust_share"],
                robust_uniqueness=u0["robust_unique1"],
                robust_unique2=u0["robust_unique2"],
                **{k: b0[k] for k in robust},
            )
    row["ru_from"] = "unbiased" if unbiased else "biased"
    seconds = biased.train_seconds if biased.train_seconds is not None else float("nan")
    if unbiased is not None and unbiased.train_seconds is not None:
        seconds += unbiased.train_seconds
    row["train_seconds"] = seconds
    row["steps"] = biased.steps
    row["seed"] = biased.setting("seed")
    return row


def _robust_table(runs: dict[str, list[dict]], baselines: dict, stats: dict) -> list[str]:
    """The robust reading of the last epoch (:data:`ROBUST_KEYS`) for the methods and baselines
    whose every row has it (their stats under ``stats[name]["last_robust"]``); [] if none."""
    table = []
    for name, rows in list(runs.items()) + list(baselines.items()):
        rows = [r["last"] if name in runs else r for r in rows]
        if not all(k in r for r in rows for k in ROBUST_KEYS):
            continue
        st = {k: mean_ci([r[k] for r in rows]) for k in ROBUST_KEYS}
        stats.setdefault(name, {})["last_robust"] = st
        label = name if name in runs else f"*{name}*"
        table.append(
            {"method": label, "seeds": len(rows), **{k: _fmt(*st[k]) for k in ROBUST_KEYS}}
        )
    if not table:
        return []
    return [
        "",
        "### the same, robust reading (`eval.robust_probe`: the published protocol on centred or "
        "standardised features, float64; docs/PROBES.md)",
        "",
        write_markdown_table(table, ["method", "seeds", *ROBUST_KEYS]),
    ]


def _fmt(m: float, h: float) -> str:
    return f"{m:.1f}" if math.isnan(h) else f"{m:.1f} ± {h:.1f}"


def write_comparison(
    root: Path,
    runs: dict[str, list[dict]],
    seeds: list[int],
    missing: list[str] = (),
    *,
    ru_unbiased: bool = True,
    baselines: dict[str, list[dict]] | None = None,
    benchmark: str = "trifeatures",
) -> dict:
    baselines = baselines or {}
    selections = [
        s
        for s in ("last", "best_valid", "test_selected")
        if all(s in r for rows in runs.values() for r in rows)
    ]
    stats: dict[str, dict] = {}
    md = [
        f"# {benchmark}: redundancy / uniqueness / synergy",
        "",
        "Balanced accuracy (%) of linear probes on frozen features (the fused features, or "
        "for cross / cross_self / cmc the concatenated unimodal ones, as published; the probe "
        "as published unless the runs say otherwise: C chosen by held-out balanced accuracy); "
        "mean ± half-width of "
        "the 95 % Student-t confidence interval over the seeds listed "
        "(no interval with one seed). "
        + (
            "Redundancy, uniqueness (unique1) and unique2 from runs on the unbiased pairs, "
            "synergy from runs on the biased pairs (the published protocol). "
            if ru_unbiased
            else "All three from runs on the biased pairs (not the published protocol: "
            "there texture₁ is shared with colour₂, so uniqueness is not unique). "
        )
        + "synergy AUROC: the synergy probe's AUROC (≈ 10 % positives). Chance: 10 / 10 / 50.",
    ]
    if benchmark == "trifeatures":
        md[-1] += " Published numbers: 224 px, 100 epochs, epoch chosen on test."
    for sel in selections:
        label = {
            "last": "last epoch",
            "best_valid": "epoch chosen on the held-out part of probe-train (best_valid)",
            "test_selected": (
                "as published: epoch chosen on **test** "
                "(optimistic; shown to measure the inflation)"
            ),
        }[sel]
        table = []
        for method, rows in runs.items():
            st = {k: mean_ci([r[sel][k] for r in rows]) for k in KEYS}
            stats.setdefault(method, {})[sel] = st
            entry = {"method": method, "seeds": len(rows), "steps": rows[0]["steps"]}
            entry.update({k: _fmt(*st[k]) for k in KEYS})
            if benchmark == "trifeatures":
                pub = protocol.PUBLISHED.get(method, {})
                entry["published R / U / S"] = " / ".join(
                    str(pub.get(k, "—")) for k in ("redundancy", "uniqueness", "synergy")
                )
            table.append(entry)
        if sel == "last":
            for name, rows in baselines.items():
                st = {k: mean_ci([r[k] for r in rows]) for k in KEYS}
                stats[name] = {"last": st}
                table.append(
                    {
                        "method": f"*{name}*",
                        "seeds": len(rows),
                        "steps": rows[0].get("steps", 0),
                        **{k: _fmt(*st[k]) for k in KEYS},
                    }
                )
        columns = ["method", "seeds", "steps", *KEYS] + (
            ["published R / U / S"] if benchmark == "trifeatures" else []
        )
        md += ["", f"## {label}", "", write_markdown_table(table, columns)]
        if sel == "last":
            md += _robust_table(runs, baselines, stats)
    diffs = {}
    if "infmasking" in runs and "comm" in runs:
        a = {r["seed"]: r for r in runs["infmasking"]}
        b = {r["seed"]: r for r in runs["comm"]}
        common = sorted(set(a) & set(b))
        if len(common) >= 2:
            md += [
                "",
                "## Paired difference InfMasking − CoMM (same seeds)",
                "",
                f"Per-seed differences over seeds {common}: mean ± 95 % CI half-width, "
                "paired t-test p.",
                "",
                "| selection | " + " | ".join(KEYS) + " |",
                "|---|" + "---|" * len(KEYS),
            ]
            for sel in selections:
                d = {
                    k: paired_difference(
                        [a[s][sel][k] for s in common], [b[s][sel][k] for s in common]
                    )
                    for k in KEYS
                }
                diffs[sel] = d
                md.append(
                    f"| {sel} | "
                    + " | ".join(
                        f"{v['mean']:+.1f} ± {v['ci']:.1f} (p {v['p']:.2g})" for v in d.values()
                    )
                    + " |"
                )
    gaps = {}
    if SUPERVISED in stats:
        ceiling = stats[SUPERVISED]["last"]
        md += [
            "",
            "## Distance to control (a) (last epoch)",
            "",
            "Method mean − the supervised control's mean (points): how much of what this "
            "architecture can expose linearly about synergy each objective reaches.",
            "",
            "| method | synergy | synergy_auroc |",
            "|---|---|---|",
        ]
        for method in runs:
            st = stats[method]["last"]
            gaps[method] = {k: st[k][0] - ceiling[k][0] for k in ("synergy", "synergy_auroc")}
            md.append(
                f"| {method} | {gaps[method]['synergy']:+.1f} | "
                f"{gaps[method]['synergy_auroc']:+.1f} |"
            )
    if missing:
        md += ["", f"Not finished (not in the table): {', '.join(missing)}."]
    write_atomic(root / "comparison.md", "\n".join(md) + "\n")
    write_atomic(
        root / "comparison.json",
        json.dumps(
            {
                "benchmark": benchmark,
                "seeds": seeds,
                "ru_unbiased": ru_unbiased,
                "runs": runs,
                "baselines": baselines,
                "stats": stats,
                "paired_infmasking_minus_comm": diffs,
                "minus_supervised_control": gaps,
            },
            indent=1,
            default=float,
        ),
    )
    plots.plot_rus_bars(
        {
            m: {
                k: stats[m]["last"][k]
                for k in ("redundancy", "uniqueness", "synergy", "synergy_auroc")
            }
            for m in stats
        },
        root / "comparison.png",
        title=f"{benchmark}: last epoch, mean ± 95 % CI",
        published={m: protocol.PUBLISHED[m] for m in stats if m in protocol.PUBLISHED}
        if benchmark == "trifeatures"
        else None,
        chance=protocol.CHANCE,
    )
    print("\n".join(md))
    return {"stats": stats, "runs": runs, "paired": diffs}
