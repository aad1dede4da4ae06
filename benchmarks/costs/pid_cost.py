"""Cost and accuracy of the PID solver (``infmasking.evaluation.pid.broja_pid``).

Accuracy: the closed forms (XOR: 1 bit of synergy; AND: R = 0.311, S = 0.5; copy: 1 bit of
redundancy), largest absolute error over the four terms, and the solver's primal-dual gap.
Cost: seconds per decomposition of random joint tables k × k × classes (Dirichlet(0.1), seeded),
the sizes ``infmasking interactions`` builds (k up to 20 clusters per modality), median of 5.

    python benchmarks/costs/pid_cost.py --out benchmarks/results/pid_cost.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from infmasking.evaluation.pid import broja_pid


def _table(f, ny=2):
    p = np.zeros((2, 2, ny))
    for a in range(2):
        for b in range(2):
            p[a, b, f(a, b)] += 1
    return p / p.sum()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    copy = np.zeros((2, 2, 2))
    copy[0, 0, 0] = copy[1, 1, 1] = 0.5
    h_and = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    cases = [
        ("XOR", _table(lambda a, b: a ^ b), (0, 0, 0, 1)),
        ("AND", _table(lambda a, b: a & b), (h_and - 0.5, 0, 0, 0.5)),
        ("copy", copy, (1, 0, 0, 0)),
        ("Y = X1", _table(lambda a, b: a), (0, 1, 0, 0)),
    ]
    lines = [
        "# PID solver: accuracy and cost",
        "",
        f"Command: `python benchmarks/costs/pid_cost.py {' '.join(argv or sys.argv[1:])}`",
        "",
        "| distribution | max abs error (bits) | primal-dual gap (bits) |",
        "|---|---|---|",
    ]
    for name, p, exact in cases:
        r = broja_pid(p)
        got = (r.redundancy, r.unique[0], r.unique[1], r.synergy)
        err = max(abs(g - e) for g, e in zip(got, exact))
        lines.append(f"| {name} | {err:.1e} | {r.gap:.1e} |")
    lines += ["", "| table k × k × classes | seconds (median) | gap (bits) |", "|---|---|---|"]
    rng = np.random.default_rng(0)
    for k, ny in ((7, 10), (15, 2), (20, 2), (20, 10)):
        p = rng.dirichlet(np.full(k * k * ny, 0.1)).reshape(k, k, ny)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            r = broja_pid(p)
            times.append(time.perf_counter() - t0)
        lines.append(f"| {k} × {k} × {ny} | {statistics.median(times):.3f} | {r.gap:.1e} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
