"""``infmasking reproduce trifeatures``: methods × seeds, then one comparison table and plot.

Every run is an ordinary run folder ``<out_dir>/<method>/seed<k>``: a finished one is reused,
an interrupted one resumes, so the whole comparison can be re-launched after a crash.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from infmasking.evaluation import plots
from infmasking.training.config import RunConfig
from infmasking.training.run import CHANCE_TRIFEATURES, PUBLISHED_TRIFEATURES, train

BENCHMARKS = ("trifeatures",)


def reproduce(benchmark: str, base: RunConfig, *, methods: list[str], seeds: list[int],
              only_finished: bool = False) -> dict:
    """Train what is missing (or, with ``only_finished``, only tabulate the finished runs and
    list the missing ones), then write comparison.{md,json,png} in ``base.out_dir``."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; valid: {list(BENCHMARKS)}")
    if base.data.name != "trifeatures":
        raise ValueError(f"reproduce trifeatures needs data.name=trifeatures, got {base.data.name!r}")
    if not seeds or not methods:
        raise ValueError("reproduce needs at least one method and one seed")
    root = Path(base.out_dir)
    runs: dict[str, list[dict]] = {}
    missing: list[str] = []
    for method in methods:
        for seed in seeds:
            out = root / method / f"seed{seed}"
            cfg = dataclasses.replace(base, seed=seed, out_dir=str(out),
                                      method=dataclasses.replace(base.method, name=method))
            if (out / "report.json").exists():
                report = json.loads((out / "report.json").read_text())
                print(f"{method} seed {seed}: finished run reused ({out})")
            elif only_finished:
                missing.append(f"{method} seed {seed}")
                continue
            else:
                print(f"== {method} seed {seed} -> {out}")
                report = train(cfg)
            runs.setdefault(method, []).append(_summary(report))
    if not runs:
        raise ValueError(f"no finished run under {root}")
    return write_comparison(root, runs, seeds, missing)


def _summary(report: dict) -> dict:
    res = report["results"]
    row = dict(report["rus"])
    row["synergy_auroc"] = 100 * res["synergy"]["metrics"]["auroc"]
    row["synergy_acc"] = 100 * res["synergy"]["metrics"]["accuracy"]
    row["unique2"] = 100 * res["unique2"]["metrics"]["balanced_accuracy"]
    row["train_seconds"] = report.get("train_seconds", float("nan"))
    row["steps"] = report.get("steps")
    row["seed"] = report["config"]["seed"]
    return row


def write_comparison(root: Path, runs: dict[str, list[dict]], seeds: list[int], missing: list[str] = ()) -> dict:
    keys = ["redundancy", "uniqueness", "synergy", "synergy_auroc", "unique2"]
    table, stats = [], {}
    for method, rows in runs.items():
        stats[method] = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))) for k in keys}
        pub = PUBLISHED_TRIFEATURES.get(method, {})
        entry = {"method": method, "seeds": ", ".join(str(r["seed"]) for r in rows), "steps": rows[0]["steps"]}
        for k in keys:
            m, s = stats[method][k]
            entry[k] = f"{m:.1f} ± {s:.1f}"
        for k in ("redundancy", "uniqueness", "synergy"):
            entry[f"published {k}"] = pub.get(k, "—")
        table.append(entry)
    columns = ["method", "seeds", "steps", "redundancy", "uniqueness", "synergy", "synergy_auroc", "unique2",
               "published redundancy", "published uniqueness", "published synergy"]
    md = ["# Trifeatures: redundancy / uniqueness / synergy", "",
          "Balanced accuracy (%) of a linear probe on frozen fused features, last epoch, mean ± std over the "
          "seeds listed. synergy_auroc: AUROC of the synergy probe (≈ 10 % positives, so balanced accuracy "
          "reads 50 when the signal is weak). Chance: 10 / 10 / 50. Published numbers: 224 px, 100 epochs, "
          "best epoch.", "",
          plots.write_markdown_table(table, columns)]
    if missing:
        md += ["", f"Not finished (not in the table): {', '.join(missing)}."]
    (root / "comparison.md").write_text("\n".join(md) + "\n")
    (root / "comparison.json").write_text(json.dumps({"seeds": seeds, "runs": runs, "stats": stats}, indent=1))
    plots.plot_rus_bars({m: {k: stats[m][k] for k in ("redundancy", "uniqueness", "synergy")} for m in stats},
                        root / "comparison.png",
                        published={m: PUBLISHED_TRIFEATURES[m] for m in stats if m in PUBLISHED_TRIFEATURES},
                        chance=CHANCE_TRIFEATURES)
    print("\n".join(md))
    return {"stats": stats, "runs": runs}
