"""The machine a run trains on: CPU threads and bf16 support."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from infmasking.training.config import (
    RunConfig,
)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times(cpus: set[int] | None) -> tuple[float, float] | None:
    """(busy, total) jiffies of ``cpus`` (all CPUs if None) from /proc/stat; None elsewhere."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        v = [float(x) for x in values[:8]]
        idle = v[3] + (v[4] if len(v) > 4 else 0.0)  # idle + iowait
        busy, total = busy + sum(v) - idle, total + sum(v)
    return (busy, total) if total > 0 else None


def busy_cores(window: float = 0.2) -> float | None:
    """How many of this process's cores other work keeps busy right now: /proc/stat sampled
    over ``window`` seconds; None where /proc/stat cannot be read."""
    import time

    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    before = _cpu_times(cpus)
    if before is None:
        return None
    time.sleep(window)
    after = _cpu_times(cpus)
    if after is None or after[1] <= before[1]:
        return None
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    return n * (after[0] - before[0]) / (after[1] - before[1])


def auto_threads() -> int:
    """CPU threads for a run that does not name them: the usable cores that are idle now,
    at least 1, so a run beside other jobs does not oversubscribe the machine (spinning
    threads made a 5-minute run take 44 minutes). "Now" is /proc/stat over 0.2 s: the 1-minute
    load average still counts work that has just ended (a pip install made a first run on 2
    cores use 1 thread); it is the fallback where /proc/stat cannot be read."""
    cores = usable_cores()
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (OSError, AttributeError):  # not available on this platform
            busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def cpu_bf16_native() -> bool | None:
    """Whether this CPU multiplies bf16 natively (``avx512_bf16`` or ``amx_bf16`` among the
    flags of /proc/cpuinfo); None where that cannot be read. Without it, torch's CPU bf16
    matrix products take a slow path: bf16-mixed measured 8-10x slower than float32 on an
    AVX2-only CPU (benchmarks/results/bf16_step.md)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def precision_warning(cfg: RunConfig) -> str | None:
    """A one-line warning when a bf16 run will train on a CPU that has no native bf16."""
    t = cfg.trainer
    on_cpu = t.accelerator == "cpu" or (t.accelerator == "auto" and not torch.cuda.is_available())
    if t.precision.startswith("bf16") and on_cpu and cpu_bf16_native() is False:
        return (
            f"warning: --trainer.precision {t.precision} on a CPU without native bf16 "
            "(no avx512_bf16 / amx_bf16): its matrix products take a slow path, "
            "measured 8-10x slower than float32 (benchmarks/results/bf16_step.md); "
            "--trainer.precision 32-true is faster here"
        )
    return None


def set_threads(cfg: RunConfig) -> None:
    """torch's and the probes' CPU threads from ``trainer.num_threads`` (None:
    :func:`auto_threads`)."""
    if not cfg.trainer.num_threads:
        cfg.trainer.num_threads = auto_threads()
        cores = usable_cores()
        busy = "" if cfg.trainer.num_threads == cores else ", the other cores are busy"
        print(
            f"Using {cfg.trainer.num_threads} of {cores} CPU core(s){busy} "
            "(--trainer.num_threads to choose)"
        )
    cores = usable_cores()
    if cfg.trainer.num_threads > cores:
        print(
            f"--trainer.num_threads {cfg.trainer.num_threads} is more than the {cores} CPU "
            f"core(s) here (oversubscribed threads only slow down): using {cores}",
            file=sys.stderr,
        )
        cfg.trainer.num_threads = cores
    torch.set_num_threads(cfg.trainer.num_threads)
