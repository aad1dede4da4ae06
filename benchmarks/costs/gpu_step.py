"""One full training step (views, both model passes, loss, backward, AdamW) of a preset and
method, eager vs compiled vs compiled and captured as CUDA graphs, side by side in one process.

Per mode: synchronised ms per step (median over steps, each step timed between two device
synchronisations), ms per step when steps queue (N steps, one synchronisation), CUDA kernel
time and kernels launched per step (torch.profiler), aten calls per step dispatched from Python
(eager only: a dispatch-mode counter), peak memory, and the projected minutes of a 100-epoch
run. On a CPU the same script measures the host side (ms per step, aten calls per step), so a
CPU-only session can check it.

    python benchmarks/costs/gpu_step.py --preset trifeatures224 --methods infmasking comm \
        --modes eager compiled captured --precision bf16-mixed \
        --out benchmarks/results/gpu_step_h200.md
    python benchmarks/costs/gpu_step.py --preset tiny --modes eager --steps 3   # CPU smoke
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import json
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from infmasking.data.registry import load_dataset
from infmasking.training.config_files import load_config, presets
from infmasking.training.module import SSLModule

MODES = {  # mode -> (trainer.compile, trainer.compile_mode)
    "eager": (False, "default"),
    "compiled": (True, "default"),
    "captured": (True, "reduce-overhead"),
}


class AtenCounter(TorchDispatchMode):
    """Counts the aten operations dispatched while active (views and in-place ops included)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def load_batch(preset: str, batch: int):
    """The preset's configuration, its dataset (only ``batch`` pairs generated) and one batch."""
    cfg = load_config(presets()[preset])
    kw = {"max_pairs": max(batch, 16)}
    if cfg.data.name == "trifeatures":
        kw["image_size"] = cfg.data.trifeatures.image_size
    data = load_dataset(cfg.data.name, **kw)
    return cfg, data, data.train[torch.arange(batch)]


def build(cfg, data, method: str, mode: str, device: torch.device):
    """SSLModule + its AdamW on ``device`` for one mode (same initial weights every time)."""
    c = copy.deepcopy(cfg)
    c.method.name = method
    c.trainer.compile, c.trainer.compile_mode = MODES[mode]
    torch.manual_seed(0)
    shapes = {m: list(data.input_shape(m)) for m in data.modalities}
    module = SSLModule(c, data.modalities, data.kinds, shapes).to(device)
    module.mask_weight = lambda: c.method.mask_lambda  # no trainer attached: λ at its end value
    return module, module.configure_optimizers()


def make_step(module, opt, batch, precision: str, device: torch.device):
    seed = [0]
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    rng = device if device.type == "cuda" else torch.device("cpu")

    def step():
        seed[0] += 1
        g = torch.Generator(device=rng).manual_seed(seed[0])
        with amp:
            out = module.compute_loss(batch, g)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        return out.loss.detach()

    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(step, device, steps: int, warmup: int, profile_steps: int, count_aten: bool):
    t0 = time.perf_counter()
    for _ in range(warmup):  # compilation and CUDA-graph recording happen here
        loss = step()
    sync(device)
    warm_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        sync(device)
        t = time.perf_counter()
        loss = step()
        sync(device)
        times.append(time.perf_counter() - t)
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    queued = (time.perf_counter() - t) / steps
    row = {
        "warmup_s": warm_s,
        "ms_per_step_sync": 1000 * statistics.median(times),
        "ms_per_step_min": 1000 * min(times),
        "ms_per_step_queued": 1000 * queued,
        "loss": float(loss),
    }
    acts = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(profile_steps):
            step()
        sync(device)
    if device.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        row["cuda_kernel_ms_per_step"] = sum(e.device_time for e in kernels) / 1000 / profile_steps
        row["kernels_per_step"] = len(kernels) / profile_steps
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        row["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if count_aten:
        with AtenCounter() as c:
            step()
        row["aten_calls_per_step"] = sum(c.counts.values())
        row["top_aten"] = dict(c.counts.most_common(8))
    return row


def table(rows, steps_per_epoch: int) -> list[str]:
    lines = [
        "| method | mode | ms / step (sync, median) | ms / step (queued) | CUDA kernel ms / step "
        "| kernels / step | aten calls / step | peak GiB | min / 100 epochs | warm-up s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mem = r.get("peak_mem_gib", r.get("peak_rss_gib", float("nan")))
        ms = r["ms_per_step_queued"]
        lines.append(
            f"| {r['method']} | {r['mode']} | {r['ms_per_step_sync']:.1f} | {ms:.1f} | "
            f"{r.get('cuda_kernel_ms_per_step', float('nan')):.1f} | "
            f"{r.get('kernels_per_step', float('nan')):.0f} | "
            f"{r.get('aten_calls_per_step', '–')} | {mem:.2f} | "
            f"{ms * steps_per_epoch * 100 / 60000:.1f} | {r['warmup_s']:.0f} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="trifeatures224")
    p.add_argument("--methods", nargs="+", default=["infmasking", "comm"])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--batch", type=int, default=None, help="default: the preset's batch size")
    p.add_argument("--precision", default="bf16-mixed", choices=["bf16-mixed", "32-true"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--profile_steps", type=int, default=5)
    p.add_argument("--steps_per_epoch", type=int, default=156, help="for the projection")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="a .md file; the .json beside it")
    args = p.parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads)


def _run(args, argv) -> int:
    device = torch.device(args.device)
    cfg = load_config(presets()[args.preset])
    batch_size = args.batch or cfg.optim.batch_size
    cfg, data, batch = load_batch(args.preset, batch_size)
    batch = batch.to(device)
    rows = []
    for method in args.methods:
        for mode in args.modes:
            if mode == "captured" and device.type != "cuda":
                print(f"{method} {mode}: skipped (CUDA graphs need a GPU)", flush=True)
                continue
            torch._dynamo.reset()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            module, opt = build(cfg, data, method, mode, device)
            step = make_step(module, opt, batch, args.precision, device)
            row = {"method": method, "mode": mode}
            row |= measure(
                step, device, args.steps, args.warmup, args.profile_steps, mode == "eager"
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
            del module, opt, step
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    cmd = "python benchmarks/costs/gpu_step.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    lines = [
        f"# Training step, eager vs compiled vs captured ({args.preset}, B {batch_size}, "
        f"{args.precision})",
        "",
        f"Command: `{cmd}`",
        "",
        f"Device: {dev_name}; torch {torch.__version__}; {args.steps} timed steps after "
        f"{args.warmup} warm-up steps; projection at {args.steps_per_epoch} steps per epoch.",
        "",
        *table(rows, args.steps_per_epoch),
    ]
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
