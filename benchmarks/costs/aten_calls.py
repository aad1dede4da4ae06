"""aten operations dispatched per eager training step (views, both model passes, loss,
backward, AdamW), on the CPU, for this tree and — side by side, in one run — for an earlier
commit (checked out in a temporary git worktree and run with its own sources).

The count is deterministic (no timing): every aten call a TorchDispatchMode sees, views and
in-place ops included, on the second step (the first creates AdamW's state).

    python benchmarks/costs/aten_calls.py --preset trifeatures224 --methods infmasking comm \
        --against 9d8dc29 --out benchmarks/results/aten_calls_trifeatures224.md
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


def count(preset: str, method: str, batch: int) -> dict:
    """Aten calls of one eager step of ``method`` on ``preset`` with this process's sources."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from infmasking.data.registry import load_dataset
    from infmasking.training.config import load_config, presets, to_dict
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
    module = SSLModule(to_dict(cfg), data.modalities, data.kinds, shapes)
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
    return {"aten_calls": sum(c.c.values()), "loss": loss, "top": dict(c.c.most_common(6))}


def run_at(rev: str, args) -> dict:
    """This script's counts with the sources of commit ``rev`` (a temporary worktree)."""
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "wt"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), rev],
                       check=True, capture_output=True)  # fmt: skip
        try:
            env = {**os.environ, "PYTHONPATH": str(wt / "src")}
            cmd = [sys.executable, __file__, "--preset", args.preset, "--batch", str(args.batch),
                   "--methods", *args.methods, "--json"]  # fmt: skip
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            return json.loads(out.stdout.strip().splitlines()[-1])
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
    p.add_argument("--json", action="store_true", help="print one JSON line (used by --against)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    here = {m: count(args.preset, m, args.batch) for m in args.methods}
    if args.json:
        print(json.dumps(here))
        return 0
    before = run_at(args.against, args) if args.against else None
    lines = [
        f"# aten calls per eager training step ({args.preset}, B {args.batch}, CPU)",
        "",
        "Command: `python benchmarks/costs/aten_calls.py " + " ".join(argv or sys.argv[1:]) + "`",
        "",
        "| method | "
        + (f"{args.against} | " if before else "")
        + "this tree | "
        + ("ratio | loss before | " if before else "")
        + "loss |",
        "|---|" + ("---|" if before else "") + "---|" + ("---|---|" if before else "") + "---|",
    ]
    for m, r in here.items():
        cells = [m]
        if before:
            cells.append(str(before[m]["aten_calls"]))
        cells.append(str(r["aten_calls"]))
        if before:
            cells += [
                f"{r['aten_calls'] / before[m]['aten_calls']:.2f}",
                f"{before[m]['loss']:.6f}",
            ]
        cells.append(f"{r['loss']:.6f}")
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
