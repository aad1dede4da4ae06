"""The machine a run trains on: CPU threads and bf16 support."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from infmasking.training.config import (
    RunConfig,
)


def auto_threads() -> int:
    """CPU threads for a run that does not name them: the cores idle at start — the CPU count
    minus the 1-minute load average, at least 1 — so a run beside other jobs does not
    oversubscribe the machine (spinning threads made a 5-minute run take 44 minutes)."""
    cores = os.cpu_count() or 1
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


def _set_threads(cfg: RunConfig) -> None:
    """torch's and the probes' CPU threads from ``trainer.num_threads`` (None:
    :func:`auto_threads`)."""
    if not cfg.trainer.num_threads:
        cfg.trainer.num_threads = auto_threads()
        print(f"Using {cfg.trainer.num_threads} CPU thread(s) (--trainer.num_threads to choose)")
    cores = os.cpu_count() or 1
    if cfg.trainer.num_threads > cores:
        print(
            f"--trainer.num_threads {cfg.trainer.num_threads} is more than the {cores} CPU "
            f"core(s) here (oversubscribed threads only slow down): using {cores}",
            file=sys.stderr,
        )
        cfg.trainer.num_threads = cores
    torch.set_num_threads(cfg.trainer.num_threads)
