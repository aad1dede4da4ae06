"""Two long runs on a 2-core CPU: one after the other with two torch threads, or side by side
with one thread each — which finishes both sooner?

Times full training steps (``benchmarks/costs/timing.py``'s ``make_step``, the library's InfMasking
step) of a ``step_time.py`` preset in fresh subprocesses: (a) one process with ``--cores``
threads, alone; (b) ``--cores`` processes with one thread each, started together. Prints the
throughput of each layout (steps per hour, all processes together) and their ratio, measured in
this one run.

    python benchmarks/costs/lanes.py --preset trifeatures224 --steps 3 \
        --out benchmarks/results/lanes_trifeatures224.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(preset: str, variant: str, steps: int, warmup: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from step_time import PRESETS
    from timing import make_step, setup_step

    s = PRESETS[preset]
    model, opt, views = setup_step(s)
    step = make_step(variant, model, opt, views, s, torch.Generator().manual_seed(0))
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times}))


def _spawn(args, threads: int) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__)), "--_child", str(threads)]
    cmd += ["--preset", args.preset, "--variant", args.variant]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def _collect(procs) -> list[float]:
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a timing subprocess failed (exit {p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1])["times"])
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="trifeatures224")
    ap.add_argument("--variant", default="library", help="a variant of step_time.py")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per process")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        child(args.preset, args.variant, args.steps, args.warmup, args._child)
        return {}
    load0 = os.getloadavg()[0]
    (alone,) = _collect([_spawn(args, args.cores)])
    side = _collect([_spawn(args, 1) for _ in range(args.cores)])
    med = lambda xs: sorted(xs)[len(xs) // 2]
    alone_rate = 3600 / med(alone)
    side_rate = sum(3600 / med(t) for t in side)
    result = {
        "command": "python benchmarks/costs/lanes.py " + " ".join(argv or sys.argv[1:]),
        "preset": args.preset,
        "variant": args.variant,
        "cores": args.cores,
        "load_average_start_end": [load0, os.getloadavg()[0]],
        "alone_threads": args.cores,
        "alone_step_s": alone,
        "side_by_side_step_s": side,
        "alone_steps_per_hour": alone_rate,
        "side_by_side_steps_per_hour": side_rate,
        "side_by_side_over_alone": side_rate / alone_rate,
    }
    print(
        f"{args.preset} {args.variant}: one process x {args.cores} threads "
        f"{med(alone):.2f} s/step ({alone_rate:.0f} steps/h); {args.cores} processes x 1 thread "
        + ", ".join(f"{med(t):.2f}" for t in side)
        + f" s/step ({side_rate:.0f} steps/h together): side by side = "
        f"{side_rate / alone_rate:.2f}x the throughput"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
