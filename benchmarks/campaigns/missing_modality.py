"""A modality missing at inference: probe scores from F(x1) alone and F(x2) alone beside F(x1, x2).

For finished runs of ``infmasking reproduce trifeatures_tokens`` or ``reproduce trifeatures``
(two modalities; default: the comparison of benchmarks/campaigns/synergy_tokens.sh), every probe is
fitted and scored on features computed from the same subset of modalities (probe-train and
probe-test alike): redundancy / uniqueness from the unbiased-pair runs, synergy AUROC from the
biased-pair runs. Writes missing_modality.{md,json}.

    python benchmarks/campaigns/missing_modality.py --compare runs/synergy_tokens/compare \
        --methods infmasking comm --seeds 0 1 2 --out benchmarks/results/synergy_tokens
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from infmasking.embed import embed_split, load_run
from infmasking.evaluation.probe import probe_all
from infmasking.evaluation.selection import mean_ci
from infmasking.evaluation.tables import write_markdown_table
from infmasking.training.loading import load_data


def subsets(modalities: list[str]) -> dict[str, list[str] | None]:
    """'both' (every modality) and '<m> only' for each of the run's two modalities."""
    return {"both": None, **{f"{m} only": [m] for m in modalities}}


def probe_subsets(run_dir: Path, max_train: int) -> dict[str, dict[str, float]]:
    run = load_run(run_dir)
    data = load_data(run.config)
    train = data.probe_train
    if len(train) > max_train:
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:max_train]
        train = train.subset(idx.sort().values)
    out = {}
    for name, mods in subsets(run.modalities).items():
        xtr = embed_split(run, train, mods, progress=False)
        xte = embed_split(run, data.probe_test, mods, progress=False)
        res = probe_all(
            data.tasks,
            xtr,
            {t: y.numpy() for t, y in train.targets.items()},
            xte,
            {t: y.numpy() for t, y in data.probe_test.targets.items()},
            seed=run.config.seed,
        )
        out[name] = {
            "redundancy": 100 * res["share"].published_value,
            "unique1": 100 * res["unique1"].published_value,
            "unique2": 100 * res["unique2"].published_value,
            "synergy_auroc": 100 * res["synergy"].metrics["auroc"],
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--compare", type=Path, default=Path("runs/synergy_tokens/compare"))
    p.add_argument("--methods", nargs="+", default=["infmasking", "comm"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--max_train", type=int, default=3000, help="probe-train samples (a seeded subset)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/synergy_tokens"))
    p.add_argument("--title", default="trifeatures_tokens", help="benchmark name in the heading")
    args = p.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(args.threads)
    raw: dict = {}
    for m in args.methods:
        for s in args.seeds:
            u = probe_subsets(args.compare / m / f"seed{s}_unbiased", args.max_train)
            b = probe_subsets(args.compare / m / f"seed{s}", args.max_train)
            raw.setdefault(m, []).append(
                {
                    k: {
                        **{t: u[k][t] for t in ("redundancy", "unique1", "unique2")},
                        "synergy_auroc": b[k]["synergy_auroc"],
                    }
                    for k in b
                }
            )
            print(m, s, raw[m][-1], flush=True)
    rows = []
    for m, per_seed in raw.items():
        for k in per_seed[0]:
            row = {"method": m, "features from": k, "seeds": len(per_seed)}
            for t in ("redundancy", "unique1", "unique2", "synergy_auroc"):
                mean, half = mean_ci([r[k][t] for r in per_seed])
                row[t] = f"{mean:.1f}" if math.isnan(half) else f"{mean:.1f} ± {half:.1f}"
            rows.append(row)
    md = [
        f"# {args.title}: a modality missing at inference",
        "",
        "Linear probes fitted and scored on features from the modalities named "
        "(probe-train and probe-test alike), last epoch of the comparison runs; "
        "balanced accuracy (%) and synergy AUROC (%), mean ± 95 % CI "
        f"over seeds {args.seeds}. unique2 is the texture of the second modality (chance 10), "
        "synergy needs both (chance 50). "
        f"Command: `python benchmarks/campaigns/missing_modality.py {' '.join(given)}`.",
        "",
        write_markdown_table(
            rows,
            [
                "method",
                "features from",
                "seeds",
                "redundancy",
                "unique1",
                "unique2",
                "synergy_auroc",
            ],
        ),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "missing_modality.md").write_text("\n".join(md) + "\n")
    (args.out / "missing_modality.json").write_text(json.dumps(raw, indent=1))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
