"""Image-encoder cost in the channels-last layout the library uses vs the plain NCHW layout.

For each image trunk (ConvNet at 64 px, ResNet-18 at 128 px, AlexNet at 224 px) with the
same weights: forward + backward (sum of squares of the output) of a batch, the two layouts
interleaved within each round, warmup rounds first, medians. Prints and writes the ratio
NCHW / channels-last (> 1: the library's layout is faster).

Usage:
    python benchmarks/costs/encoder_layout.py --threads 1 --reps 15 \
        --out benchmarks/results/encoder_layout.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from infmasking.models.encoders import AlexNetFeatures, ConvNet, ResNet18

TRUNKS = {  # name -> (class, batch shape): the batch one view of one modality puts through it
    "convnet_64px": (ConvNet, (64, 3, 64, 64)),
    "resnet18_128px": (ResNet18, (16, 3, 128, 128)),
    "alexnet_224px": (AlexNetFeatures, (16, 3, 224, 224)),
}


def _step(trunk: torch.nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    trunk.zero_grad(set_to_none=True)
    trunk(x).pow(2).sum().backward()
    return time.perf_counter() - t


def measure(name: str, reps: int, warmup: int) -> dict[str, float]:
    cls, shape = TRUNKS[name]
    torch.manual_seed(0)
    fast = cls()  # channels-last weights, converts its input
    plain = cls()
    plain.load_state_dict(fast.state_dict())
    plain.net.to(memory_format=torch.contiguous_format)
    plain.forward = plain.net.forward  # NCHW all the way
    x = torch.rand(*shape)
    times: dict[str, list[float]] = {"nchw": [], "channels_last": []}
    for r in range(warmup + reps):
        a, b = _step(plain, x), _step(fast, x)
        if r >= warmup:
            times["nchw"].append(a)
            times["channels_last"].append(b)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "batch": list(shape),
        "nchw_s": med["nchw"],
        "channels_last_s": med["channels_last"],
        "ratio": med["nchw"] / med["channels_last"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--trunks", nargs="+", default=list(TRUNKS), choices=list(TRUNKS))
    p.add_argument(
        "--out", type=Path, default=None, help="JSON file; a Markdown table is written beside it"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python benchmarks/costs/encoder_layout.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    rows = {}
    for name in args.trunks:
        rows[name] = measure(name, args.reps, args.warmup)
        r = rows[name]
        print(
            f"{name:16s} batch {r['batch']}: NCHW {r['nchw_s'] * 1e3:7.1f} ms  channels-last "
            f"{r['channels_last_s'] * 1e3:7.1f} ms  ratio {r['ratio']:.2f}",
            flush=True,
        )
    if args.out:
        result = {
            "command": command,
            "threads": torch.get_num_threads(),
            "reps": args.reps,
            "trunks": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        md = [
            f"`{command}`",
            "",
            f"Forward + backward of one batch, median of {args.reps} interleaved repetitions, "
            f"{torch.get_num_threads()} torch thread(s).",
            "",
            "| trunk | batch | NCHW (ms) | channels-last (ms) | NCHW / channels-last |",
            "|---|---|---|---|---|",
        ]
        md += [
            f"| {n} | {'×'.join(map(str, r['batch']))} | {r['nchw_s'] * 1e3:.1f} | "
            f"{r['channels_last_s'] * 1e3:.1f} | {r['ratio']:.2f} |"
            for n, r in rows.items()
        ]
        args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
