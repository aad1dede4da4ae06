"""What one linear probe costs at the published probe-train size (10 000 × 512 features,
4 000 test), the published probe beside the standardised one, measured in one process.

    python benchmarks/costs/probe_cost.py [--threads 1] [--out benchmarks/results/probe_cost.md]

Features: Gaussian, with a planted linear signal, for a binary task with 10 % positives (the
Trifeatures synergy task's balance) and a 10-class task (shape / texture). Prints and writes a
Markdown table: seconds per task, the C chosen, the number of fits the search made.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from infmasking.data.base import Task
from infmasking.evaluation.probe import fit_probe


def problem(kind: str, n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, 10)) / np.sqrt(d)
    if kind == "binary":
        z = x @ w[:, 0] + 0.5 * rng.normal(size=n)
        return x, (z > np.quantile(z, 0.9)).astype(np.int64), Task("synergy", "classification", 2)
    y = (x @ w + 0.5 * rng.gumbel(size=(n, 10))).argmax(1)
    return x, y, Task("shape", "classification", 10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n_train", type=int, default=10_000)
    ap.add_argument("--n_test", type=int, default=4_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_cost.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(args.threads):
        for kind in ("binary", "10-class"):
            x, y, task = problem(kind, args.n_train + args.n_test, args.dim)
            parts = (x[: args.n_train], y[: args.n_train], x[args.n_train :], y[args.n_train :])
            for probe in ("published", "standardised"):
                t = time.perf_counter()
                r = fit_probe(task, *parts, probe=probe)
                sec = time.perf_counter() - t
                rows.append((kind, probe, sec, r.hparam, len(r.val_scores) + 1, r))
                print(f"{kind:9s} {probe:13s} {sec:7.1f} s  C {r.hparam:.3g}", flush=True)
    lines = [
        "# Probe cost at the published size",
        "",
        f"`python benchmarks/costs/probe_cost.py --threads {args.threads}` on "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch threads {args.threads}, {time.strftime('%Y-%m-%d')}; "
        f"probe-train {args.n_train} × {args.dim}, probe-test {args.n_test}. Fits = values of C "
        "fitted on the hold-out + the final refit.",
        "",
        "| task | probe | seconds | C chosen | fits | balanced accuracy | AUROC |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, probe, sec, c, fits, r in rows:
        auroc = r.metrics.get("auroc", float("nan"))
        lines.append(
            f"| {kind} | {probe} | {sec:.1f} | {c:.3g} | {fits} | "
            f"{100 * r.metrics['balanced_accuracy']:.1f} | {100 * auroc:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
