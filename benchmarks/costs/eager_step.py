"""One eager training step (views, both model passes, loss, backward, AdamW) on the CPU:
aten operations dispatched and wall seconds per step, for this tree and — side by side, in one
run — for an earlier commit (checked out in a temporary git worktree, run with its own
sources in its own processes).

The count is deterministic: every aten call a TorchDispatchMode sees, views and in-place ops
included, on the second step (the first creates AdamW's state). The times (with ``--rounds``)
come from processes of the two trees run alternately, round after round, so that both see the
same machine load; the ratio is the median of the per-round ratios.

    python benchmarks/costs/eager_step.py --preset trifeatures224 --methods infmasking comm \
        --against 9d8dc29 --out benchmarks/results/aten_calls_trifeatures224.md
    python benchmarks/costs/eager_step.py --preset trifeatures --methods infmasking \
        --batch 64 --against 9d8dc29 --rounds 3 --out benchmarks/results/eager_step_cpu64.md
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def count(preset: str, method: str, batch: int, time_steps: int = 0) -> dict:
    """Aten calls of one eager step of ``method`` on ``preset`` with this process's sources,
    and the median wall seconds of ``time_steps`` more steps."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from infmasking.data.registry import load_dataset
    from infmasking.training.config_files import load_config, presets
    from infmasking.training.module import SSLModule

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.c = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.c[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    cfg = load_config(presets()[preset])
    cfg.method.name = method
    kw = {"max_pairs": max(batch, 16)}
    if cfg.data.name == "trifeatures":
        kw["image_size"] = cfg.data.trifeatures.image_size
    data = load_dataset(cfg.data.name, **kw)
    torch.manual_seed(0)
    shapes = {m: list(data.input_shape(m)) for m in data.modalities}
    module = SSLModule(cfg, data.modalities, data.kinds, shapes)
    module.mask_weight = lambda: cfg.method.mask_lambda
    opt = module.configure_optimizers()
    b = data.train[torch.arange(batch)]

    def step():
        loss = module.compute_loss(b, torch.Generator().manual_seed(1)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    step()
    with Counter() as c:
        loss = step()
    out = {"aten_calls": sum(c.c.values()), "loss": loss, "top": dict(c.c.most_common(6))}
    if time_steps:
        import statistics
        import time

        times = []
        for _ in range(time_steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        out["seconds"] = statistics.median(times)
    return out


def _child(src: Path | None, args, time_steps: int) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, __file__, "--preset", args.preset, "--batch", str(args.batch),
           "--methods", *args.methods, "--time_steps", str(time_steps), "--json"]  # fmt: skip
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def side_by_side(rev: str, args) -> tuple[dict, dict, list[dict]]:
    """Counts of commit ``rev`` and of this tree, and per round the times of both (processes
    of the two trees alternating)."""
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "wt"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), rev],
                       check=True, capture_output=True)  # fmt: skip
        try:
            before = _child(wt / "src", args, 0)
            here = _child(None, args, 0)
            rounds = []
            for _ in range(args.rounds):
                b = _child(wt / "src", args, args.time_steps)
                h = _child(None, args, args.time_steps)
                rounds.append({m: (b[m]["seconds"], h[m]["seconds"]) for m in args.methods})
            return before, here, rounds
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                           capture_output=True)  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="trifeatures224")
    p.add_argument("--methods", nargs="+", default=["infmasking", "comm"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--against", default=None, help="an earlier commit to count side by side")
    p.add_argument("--rounds", type=int, default=0, help="timed rounds (with --against)")
    p.add_argument("--time_steps", type=int, default=3, help="timed steps per process")
    p.add_argument("--json", action="store_true", help="print one JSON line (used by --against)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads)


def _run(args, argv) -> int:
    import statistics

    if args.json:
        t = args.time_steps
        print(json.dumps({m: count(args.preset, m, args.batch, t) for m in args.methods}))
        return 0
    if args.against:
        before, here, rounds = side_by_side(args.against, args)
    else:
        before, rounds = None, []
        here = {m: count(args.preset, m, args.batch) for m in args.methods}
    cols = ["method"]
    if before:
        cols += [f"aten calls {args.against}", "aten calls now", "ratio"]
        cols += [f"loss {args.against}", "loss now"]
    else:
        cols += ["aten calls", "loss"]
    if rounds:
        cols += [f"s / step {args.against}", "s / step now", "speed-up (median of rounds)"]
    lines = [
        f"# One eager training step on the CPU ({args.preset}, B {args.batch}, 1 thread)",
        "",
        "Command: `python benchmarks/costs/eager_step.py " + " ".join(argv or sys.argv[1:]) + "`",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for m, r in here.items():
        cells = [m]
        if before:
            b = before[m]
            cells += [str(b["aten_calls"]), str(r["aten_calls"])]
            cells += [f"{r['aten_calls'] / b['aten_calls']:.2f}", f"{b['loss']:.6f}"]
        else:
            cells.append(str(r["aten_calls"]))
        cells.append(f"{r['loss']:.6f}")
        if rounds:
            tb = statistics.median(x[m][0] for x in rounds)
            th = statistics.median(x[m][1] for x in rounds)
            speed = statistics.median(x[m][0] / x[m][1] for x in rounds)
            cells += [f"{tb:.3f}", f"{th:.3f}", f"**{speed:.2f}**"]
        lines.append("| " + " | ".join(cells) + " |")
    if rounds:
        lines += ["", f"{len(rounds)} rounds of {args.time_steps} timed steps per process."]
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
