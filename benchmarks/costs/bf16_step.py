"""bf16 autocast vs float32 on the CPU: one full training step (both views, forward, backward,
AdamW), measured side by side in one process, rounds interleaved; ratio = median of per-round
ratios (float32 time / bf16 time). Also prints the two losses of the same batch and masks.

    python benchmarks/costs/bf16_step.py [--settings cpu64 tokens] [--methods infmasking comm] \
        [--rounds 6] [--threads 1] [--out benchmarks/results/bf16_step.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from infmasking.data.registry import load_dataset
from infmasking.training.config import RunConfig
from infmasking.training.host import cpu_bf16_native
from infmasking.training.module import SSLModule

SETTINGS = {
    "cpu64": dict(
        data="trifeatures",
        dim=128,
        encoders={"image1": {"name": "convnet"}, "image2": {"name": "convnet"}},
        label="Trifeatures 64 px (2 × ConvNet, 16 + 16 tokens, d 128)",
    ),
    "tokens": dict(
        data="trifeatures_tokens",
        dim=64,
        encoders={"x1": {"name": "identity"}, "x2": {"name": "identity"}},
        label="trifeatures_tokens (identity encoders, 12 + 12 tokens, d 64)",
    ),
}


def make(setting: str, method: str, batch: int):
    s = SETTINGS[setting]
    data = load_dataset(s["data"], max_pairs=batch)
    cfg = RunConfig()
    cfg.method.name, cfg.model.dim, cfg.model.encoders = method, s["dim"], s["encoders"]
    torch.manual_seed(0)
    module = SSLModule(
        cfg,
        data.modalities,
        data.kinds,
        {m: list(data.input_shape(m)) for m in data.modalities},
    )
    module.mask_weight = lambda: 1.0  # no trainer attached
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    return module, opt, data.train[torch.arange(batch)]


def step(module, opt, batch, bf16: bool) -> float:
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    t0 = time.perf_counter()
    with ctx:
        loss = module.compute_loss(batch, torch.Generator().manual_seed(1)).loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def cpu_line() -> str:
    """The CPU this ran on: model, torch's CPU capability and whether bf16 is native."""
    try:
        model = next(
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        )
    except (OSError, StopIteration):
        model = "unknown"
    native = {True: "yes", False: "no", None: "unknown"}[cpu_bf16_native()]
    return (
        f"CPU: {model}; torch CPU capability {torch.backends.cpu.get_cpu_capability()}; "
        f"native bf16 (avx512_bf16 / amx_bf16): {native}."
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--methods", nargs="+", default=["infmasking", "comm"])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for setting in args.settings:
        for method in args.methods:
            module, opt, batch = make(setting, method, args.batch)
            with torch.no_grad():
                l32 = module.compute_loss(batch, torch.Generator().manual_seed(1)).loss.item()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    l16 = module.compute_loss(batch, torch.Generator().manual_seed(1)).loss.item()
            step(module, opt, batch, False), step(module, opt, batch, True)  # warm-up
            t32, t16 = [], []
            for _ in range(args.rounds):
                t32.append(step(module, opt, batch, False))
                t16.append(step(module, opt, batch, True))
            ratio = statistics.median(a / b for a, b in zip(t32, t16))
            row = {
                "setting": SETTINGS[setting]["label"],
                "method": method,
                "float32 s": statistics.median(t32),
                "bf16 s": statistics.median(t16),
                "float32 / bf16": ratio,
                "loss float32": l32,
                "loss bf16": l16,
            }
            rows.append(row)
            print(json.dumps(row))
    if args.out:
        lines = [
            f"# bf16 autocast vs float32, one training step (B {args.batch}, "
            f"{args.threads} thread(s), {args.rounds} interleaved rounds, medians)",
            "",
            "Command: `python benchmarks/costs/bf16_step.py --out " + str(args.out) + "`",
            "",
            cpu_line(),
            "",
            "| setting | method | float32 s | bf16 s | float32 / bf16 | loss float32 | loss bf16 |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['setting']} | {r['method']} | {r['float32 s']:.3f} | {r['bf16 s']:.3f} | "
            f"**{r['float32 / bf16']:.2f}** | {r['loss float32']:.4f} | {r['loss bf16']:.4f} |"
            for r in rows
        ]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
