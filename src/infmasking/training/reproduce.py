"""``infmasking reproduce trifeatures``: methods × seeds, then one comparison table and plot.

The published protocol trains two models per method and seed: one on the **unbiased** pairs,
whose probes give redundancy (share) and uniqueness (unique1), and one on the **biased**
(synergy) pairs, whose probe gives synergy. On the biased set texture₁ determines colour₂,
so texture₁ is information the two images *share* there: a model trained on it is not a
measure of uniqueness (Cross learns texture₁ from it). ``ru_unbiased=False`` reads all three
from the biased run instead (one run per method and seed, not the published protocol).

Every run is an ordinary run folder — ``<out_dir>/<method>/seed<k>`` (biased) and
``<out_dir>/<method>/seed<k>_unbiased`` — a finished one is reused, an interrupted one
resumes, so the whole comparison can be re-launched after a crash.
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
              only_finished: bool = False, ru_unbiased: bool = True) -> dict:
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
    kinds = [("", True)] + ([("_unbiased", False)] if ru_unbiased else [])
    for method in methods:
        for seed in seeds:
            reports = {}
            for suffix, biased in kinds:
                out = root / method / f"seed{seed}{suffix}"
                cfg = dataclasses.replace(base, seed=seed, out_dir=str(out),
                                          method=dataclasses.replace(base.method, name=method),
                                          data=dataclasses.replace(base.data, biased=biased))
                label = f"{method} seed {seed} ({'biased' if biased else 'unbiased'})"
                if (out / "report.json").exists():
                    reports[biased] = json.loads((out / "report.json").read_text())
                    print(f"{label}: finished run reused ({out})")
                elif only_finished:
                    missing.append(label)
                else:
                    print(f"== {label} -> {out}")
                    reports[biased] = train(cfg)
            if len(reports) == len(kinds):
                runs.setdefault(method, []).append(_summary(reports[True], reports.get(False)))
    if not runs:
        raise ValueError(f"no finished run under {root}")
    return write_comparison(root, runs, seeds, missing, ru_unbiased=ru_unbiased)


def _summary(biased: dict, unbiased: dict | None = None) -> dict:
    """One method × seed: synergy from the biased run; redundancy / uniqueness / unique2 from
    the unbiased run when given, else from the biased run."""
    ru = unbiased or biased
    row = {"redundancy": ru["rus"]["redundancy"], "uniqueness": ru["rus"]["uniqueness"],
           "unique2": 100 * ru["results"]["unique2"]["metrics"]["balanced_accuracy"],
           "synergy": biased["rus"]["synergy"]}
    res = biased["results"]
    row["synergy_auroc"] = 100 * res["synergy"]["metrics"]["auroc"]
    row["synergy_acc"] = 100 * res["synergy"]["metrics"]["accuracy"]
    row["ru_from"] = "unbiased" if unbiased else "biased"
    row["train_seconds"] = biased.get("train_seconds", float("nan")) + (unbiased or {}).get("train_seconds", 0.0)
    row["steps"] = biased.get("steps")
    row["seed"] = biased["config"]["seed"]
    return row


def write_comparison(root: Path, runs: dict[str, list[dict]], seeds: list[int], missing: list[str] = (),
                     *, ru_unbiased: bool = True) -> dict:
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
          "seeds listed. " + ("Redundancy, uniqueness (unique1) and unique2 from runs on the unbiased pairs, "
                              "synergy from runs on the biased pairs (the published protocol). " if ru_unbiased else
                              "All three from runs on the biased pairs (not the published protocol: there texture₁ "
                              "is shared with colour₂, so uniqueness is not unique). ") +
          "synergy_auroc: AUROC of the synergy probe (≈ 10 % positives, so balanced accuracy "
          "reads 50 when the signal is weak). Chance: 10 / 10 / 50. Published numbers: 224 px, 100 epochs, "
          "best epoch.", "",
          plots.write_markdown_table(table, columns)]
    if missing:
        md += ["", f"Not finished (not in the table): {', '.join(missing)}."]
    (root / "comparison.md").write_text("\n".join(md) + "\n")
    (root / "comparison.json").write_text(json.dumps({"seeds": seeds, "ru_unbiased": ru_unbiased, "runs": runs, "stats": stats}, indent=1))
    plots.plot_rus_bars({m: {k: stats[m][k] for k in ("redundancy", "uniqueness", "synergy")} for m in stats},
                        root / "comparison.png",
                        published={m: PUBLISHED_TRIFEATURES[m] for m in stats if m in PUBLISHED_TRIFEATURES},
                        chance=CHANCE_TRIFEATURES)
    print("\n".join(md))
    return {"stats": stats, "runs": runs}
