"""The measurement harness of benchmarks/costs/step_time.py: full training steps of the variants of
infmasking/testing/reference_step.py timed interleaved, their FLOPs, their peak memory in a fresh
subprocess, a profile of what is left of the library step, and the scaling sweep.

Timing: variants interleaved within each round (reference, library, library_full, comm,
reference, ...), warmup rounds first, medians. Memory: each variant in a fresh subprocess
(``python benchmarks/costs/step_time.py --_child ...``, see ``MEMORY_METHOD``). Also: float32 matmul
throughput, and the FLOPs of each step counted by ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from infmasking import losses as L
from infmasking.models import MaskedFusionModel

HERE = Path(__file__).resolve().parent
from infmasking.testing.reference_step import VARIANTS, Setting, make_model, make_views, step_loss

STEP_TIME = HERE / "step_time.py"  # the memory subprocesses run its --_child


# =========================================================================== steps


def make_step(
    variant: str,
    model: MaskedFusionModel,
    opt: torch.optim.Optimizer,
    views,
    s: Setting,
    generator: torch.Generator | None = None,
) -> Callable[[], float]:
    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = step_loss(variant, model, views, s, generator)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def setup_step(s: Setting, seed: int = 0):
    """The model, AdamW optimiser and two views of a setting, seeded: what every timed,
    profiled or measured step starts from (also lanes.py)."""
    torch.manual_seed(seed)
    model = make_model(s)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=1e-4)
    views = make_views(s, torch.Generator().manual_seed(seed + 1))
    return model, opt, views


# =========================================================================== measurements


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of a float32 [n, n] @ [n, n] matmul (median of ``reps``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def count_flops(variant: str, s: Setting, seed: int = 0) -> float:
    """FLOPs (matmul, conv, attention) of one forward + backward of ``variant``."""
    from torch.utils.flop_counter import FlopCounterMode

    model, _, views = setup_step(s, seed)
    with FlopCounterMode(display=False) as counter:
        step_loss(variant, model, views, s, torch.Generator().manual_seed(seed)).backward()
    return float(counter.get_total_flops())


def masked_rows_flops(s: Setting, seed: int = 0) -> dict[str, float]:
    """FLOPs (forward + backward, both views) of the per-row work InfMasking adds to CoMM with the
    shared first-block keys/values: the projection head on the T·B masked rows, and (one fusion
    block, CLS pooling) the CLS row's output projection and MLP for those rows."""
    from torch.utils.flop_counter import FlopCounterMode

    model, _, _ = setup_step(s, seed)
    rows = s.num_masks * s.batch
    out = {}
    with FlopCounterMode(display=False) as counter:
        x = torch.randn(s.num_masks, s.batch, s.dim, requires_grad=True)
        model.head.grouped(x).sum().backward()
    out["head_on_masked_rows"] = 2 * float(counter.get_total_flops())
    if s.n_layers == 1:
        with FlopCounterMode(display=False) as counter:
            x, a = (
                torch.randn(rows, s.dim, requires_grad=True),
                torch.randn(rows, s.dim, requires_grad=True),
            )
            model.fusion.norm(model.fusion.blocks[0].finish(x, a)).sum().backward()
        out["cls_row_proj_mlp_on_masked_rows"] = 2 * float(counter.get_total_flops())
    return out


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {
        "median": statistics.median(xs),
        "q1": q[0],
        "q3": q[2],
        "min": xs[0],
        "max": xs[-1],
        "n": len(xs),
    }


def time_interleaved(
    s: Setting,
    variants: tuple[str, ...],
    reps: int,
    warmup: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, list[float]]:
    """Per-variant step times (s), variants interleaved within each round, after warmup rounds."""
    model, opt, views = setup_step(s, seed)
    gen = torch.Generator().manual_seed(seed)
    steps = {v: make_step(v, model, opt, views, s, gen) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(warmup + reps):
        last = {}
        for v in variants:
            gc.collect()
            t0 = time.perf_counter()
            loss = steps[v]()
            last[v] = time.perf_counter() - t0
            if not math.isfinite(loss):
                raise FloatingPointError(f"{v}: non-finite loss {loss}")
            if r >= warmup:
                times[v].append(last[v])
        tag = "warmup" if r < warmup else f"rep {r - warmup + 1}/{reps}"
        log(f"  [{s.name}] {tag}: " + "  ".join(f"{v}={t:.3f}s" for v, t in last.items()))
    return times


# ---------------------------------------------------------------- memory (fresh subprocess)

MEMORY_METHOD = (
    "peak RSS increase of one training step in a fresh subprocess: setup (model, inputs, AdamW), "
    "one warmup step (allocates gradients and AdamW state), zero_grad(set_to_none), malloc_trim, "
    "then the kernel's peak-RSS high-water mark is reset (/proc/self/clear_refs 5) and one step "
    "is run; reported = VmHWM after the step minus VmRSS before it (/proc/self/status). VmHWM is "
    "the counter getrusage ru_maxrss reports, read directly because ru_maxrss also carries the "
    "high-water mark inherited across fork/exec from the (large) parent benchmark process. "
    "glibc MALLOC_MMAP_THRESHOLD_=131072 in the child so freed tensors return to the OS. "
    "Includes this step's gradients (= parameter bytes)."
)


def rss_kb(field: str = "VmRSS") -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak since start or the last reset) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> bool:
    """Free what can be freed and reset the kernel's peak-RSS mark (False if not permitted)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child_memory(payload: dict[str, Any]) -> dict[str, Any]:
    s = Setting.from_dict(payload["setting"])
    variant = payload["variant"]
    model, opt, views = setup_step(s)
    step = make_step(variant, model, opt, views, s, torch.Generator().manual_seed(0))
    step()  # warmup: gradients and optimizer state now exist
    opt.zero_grad(set_to_none=True)
    reset = reset_peak_rss()
    before = rss_kb()
    step()
    peak = rss_kb("VmHWM")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return {
        "variant": variant,
        "rss_before_kb": before,
        "peak_kb": peak,
        "hwm_reset": reset,
        "peak_increase_bytes": (peak - before) * 1024 if reset else None,
        "param_bytes": params,
    }


def measure_memory(s: Setting, variant: str, timeout: float = 1800) -> dict[str, Any]:
    """Peak RSS increase of one step of ``variant`` in a fresh subprocess (see MEMORY_METHOD;
    the child runs with torch's default number of threads)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    payload = json.dumps({"setting": s.to_dict(), "variant": variant})
    proc = subprocess.run(
        [sys.executable, str(STEP_TIME), "--_child", payload],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        return {"variant": variant, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# =========================================================================== one setting


def run_setting(
    s: Setting,
    *,
    reps: int,
    warmup: int,
    max_step_seconds: float,
    memory: bool,
    flops: bool,
    variants: tuple[str, ...] = VARIANTS,
    log=print,
) -> dict[str, Any]:
    notes = list(s.notes)
    # budget: reduce B while one reference step exceeds the limit
    while True:
        model, opt, views = setup_step(s)
        probe = make_step("reference", model, opt, views, s, torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        probe()
        dt = time.perf_counter() - t0
        del model, opt, views, probe
        if dt <= max_step_seconds or s.batch <= 8:
            break
        notes.append(
            f"one reference step took {dt:.1f} s at B={s.batch} (> {max_step_seconds:.0f} s): "
            f"B halved to {s.batch // 2}"
        )
        log("  " + notes[-1])
        s = s.replace(batch=s.batch // 2)
    s = s.replace(notes=notes)
    log(f"== {s.name}: B={s.batch}, T={s.num_masks}, d={s.dim}, p={s.proj_dim}")
    times = time_interleaved(s, variants, reps, warmup, log=log)
    result: dict[str, Any] = {
        "setting": s.to_dict(),
        "times_s": times,
        "stats": {v: _stats(t) for v, t in times.items()},
    }
    med = {v: result["stats"][v]["median"] for v in variants}

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    ratios = {}
    for a, b in (
        ("reference", "library"),
        ("library", "comm"),
        ("reference", "library_full"),
        ("library_full", "library"),
        ("reference", "comm"),
        ("library_noshare", "library"),
        ("comm_noshare", "comm"),
        ("library_noshare", "comm_noshare"),
    ):
        if a in med and b in med:
            ratios[f"{a}/{b}"] = {"of_medians": med[a] / med[b], "median_paired": paired(a, b)}
    result["ratios"] = ratios
    result["masking_overhead"] = masking_overhead(result["stats"])
    if flops:
        result["gflop_per_step"] = {v: count_flops(v, s) / 1e9 for v in variants}
        result["gflop_masked_rows"] = {k: f / 1e9 for k, f in masked_rows_flops(s).items()}
    if memory:
        result["memory"] = {}
        for v in variants:
            log(f"  [{s.name}] memory of {v} (fresh subprocess)")
            result["memory"][v] = measure_memory(s, v)
    return result


def masking_overhead(stats: dict[str, Any]) -> dict[str, float]:
    """What masking adds to a CoMM step, (variant − CoMM) in seconds (medians), and the ratio
    of the reference's addition to the library's: the part of the step the masked views cost,
    without the encoders and passes both share with CoMM."""
    if "comm" not in stats:
        return {}
    c = stats["comm"]["median"]
    out = {
        f"{v}_minus_comm_s": stats[v]["median"] - c
        for v in ("reference", "library", "library_full")
        if v in stats
    }
    if "reference" in stats and "library" in stats:
        out["reference_over_library"] = out["reference_minus_comm_s"] / out["library_minus_comm_s"]
    return out


# ========================================================================== profile of what is left


def _time(fn: Callable[[], Any], reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def profile_library(s: Setting, reps: int = 5, log=print) -> dict[str, Any]:
    """Where the library's step time goes: forward phases, fwd+bwd of each component on its
    own, operator categories from ``torch.profiler`` over whole steps, augmentation, data."""
    model, opt, views = setup_step(s)
    gen = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {"setting": s.name, "batch": s.batch}
    x1, p1 = views[0]
    T = s.num_masks

    # ---- components, forward + backward each (one view; a step runs two views)
    tokens_detached = {
        m: t._replace(x=t.x.detach().requires_grad_()) for m, t in model.tokenize(x1, p1).items()
    }
    masks = model.draw_masks(tokens_detached, T, s.mask_ratio, gen)
    feats_masked = torch.randn(T * s.batch, s.dim, requires_grad=True)
    feats = torch.randn(s.batch, s.dim, requires_grad=True)
    zs = [
        torch.randn(s.batch, s.proj_dim, requires_grad=True) for _ in range(len(s.modalities) + 1)
    ]
    ks = torch.randn(T, s.batch, s.proj_dim, requires_grad=True)

    def bwd(y: Tensor) -> None:
        y.float().sum().backward()

    def comp_encoders():
        bwd(sum(t.x.square().mean() for t in model.tokenize(x1, p1).values()))

    def comp_unimodal():
        bwd(torch.stack(model.fuse_unimodal(tokens_detached)).square().mean())

    def comp_full():
        bwd(model.fuse(tokens_detached).square().mean())

    def comp_masked(collapse: bool):
        def f():
            model.collapse_masked = collapse
            bwd(model.fuse_masked(tokens_detached, masks).square().mean())

        return f

    def comp_shared():
        model.collapse_masked = True
        uni, full, masked = model.fuse_shared(tokens_detached, True, True, masks)
        bwd(torch.stack(uni).square().mean() + full.square().mean() + masked.square().mean())

    def comp_head_masked():
        bwd(torch.stack([model.head(h) for h in feats_masked.chunk(T)]).square().mean())

    def comp_head_grouped():
        bwd(model.head.grouped(feats_masked.reshape(T, s.batch, -1)).square().mean())

    def comp_head_one():
        bwd(model.head(feats).square().mean())

    def comp_loss():
        L.infmasking_loss(
            zs,
            [z * 1.01 for z in zs],
            ks,
            ks * 1.01,
            temperature=s.temperature,
            mask_weight=s.mask_weight,
        ).loss.backward()

    def comp_loss_comm():
        L.comm_loss(zs, [z * 1.01 for z in zs], temperature=s.temperature).loss.backward()

    def comp_optimizer():
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()

    comps = {
        "encoders+adapters (tokenize)": comp_encoders,
        "fusion: every pass in one shared-K/V call (the library step)": comp_shared,
        "fusion, shared_kv off: unimodal pass (M·B rows)": comp_unimodal,
        "fusion, shared_kv off: all-modality pass (B rows)": comp_full,
        "fusion, shared_kv off: T masked views, collapsed (T·B rows)": comp_masked(True),
        "fusion, shared_kv off: T masked views, full length (T·B rows)": comp_masked(False),
        "head on T·B masked rows, grouped (the library step)": comp_head_grouped,
        "head on T·B masked rows (T calls of B)": comp_head_masked,
        "head on B rows (one call)": comp_head_one,
    }
    per_view = {k: _time(f, reps) for k, f in comps.items()}
    per_step = {
        "infmasking_loss fwd+bwd": _time(comp_loss, reps),
        "comm_loss fwd+bwd": _time(comp_loss_comm, reps),
        "AdamW step": _time(comp_optimizer, reps),
    }
    out["components_per_view_fwd_bwd_s"] = per_view
    out["components_per_step_s"] = per_step
    model.collapse_masked = True
    for p in model.parameters():
        p.grad = None

    # ---- whole library step under the profiler: operator categories (self CPU time)
    from torch.profiler import ProfilerActivity, profile

    step = make_step("library", model, opt, views, s, gen)
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    cats: dict[str, float] = {}
    rules = [
        ("convolution / pooling (encoders)", ("conv", "pool")),
        ("attention (SDPA)", ("scaled_dot_product", "flash_attention", "_efficient_attention")),
        ("linear layers (matmul)", ("addmm", "aten::mm", "aten::bmm", "aten::matmul", "linear")),
        ("batch norm", ("batch_norm",)),
        ("layer norm", ("layer_norm",)),
        ("GELU / ReLU / softmax", ("gelu", "relu", "threshold", "softmax", "logsumexp")),
        ("optimizer (AdamW)", ("adam", "_foreach", "lerp", "addcdiv", "addcmul")),
        (
            "copies / indexing / cat",
            (
                "copy",
                "cat",
                "gather",
                "scatter",
                "index",
                "where",
                "clone",
                "contiguous",
                "expand",
                "masked_fill",
                "sort",
                "argsort",
                "stack",
            ),
        ),
        (
            "elementwise / reductions",
            (
                "add",
                "mul",
                "div",
                "sub",
                "sum",
                "mean",
                "pow",
                "exp",
                "log",
                "norm",
                "sqrt",
                "rand",
                "fill",
                "zero",
                "ones",
                "max",
            ),
        ),
    ]
    total = 0.0
    for evt in prof.key_averages():
        t = evt.self_cpu_time_total / 1e6 / 3
        total += t
        name = evt.key.lower()
        cat = next((c for c, keys in rules if any(k in name for k in keys)), "other")
        cats[cat] = cats.get(cat, 0.0) + t
    out["profiler_categories_s_per_step"] = dict(sorted(cats.items(), key=lambda kv: -kv[1]))
    out["profiler_total_self_cpu_s_per_step"] = total
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    out["profiler_top_ops"] = [
        {"op": e.key, "self_s_per_step": e.self_cpu_time_total / 1e6 / 3, "calls": e.count // 3}
        for e in top
    ]

    # ---- data augmentation (src/infmasking/data/augment.py, if it exists)
    out["augmentation"] = _profile_augment(s, reps)
    threads = torch.get_num_threads()
    if threads > 1:  # small elementwise ops suffer most when the shared machine is oversubscribed
        torch.set_num_threads(1)
        try:
            out["augmentation_1_thread"] = _profile_augment(s, reps)
        finally:
            torch.set_num_threads(threads)
    # ---- data loading: one batch from an in-memory Split (uint8 image bank + pair index)
    out["data_loading"] = _profile_loading(s, reps)
    log(f"  profile done: {json.dumps(per_view, indent=None)[:200]}...")
    return out


def _profile_augment(s: Setting, reps: int) -> dict[str, Any]:
    """Batched augmentation of one B-batch (src/infmasking/data/augment.py, if it exists): the
    image views of this setting, and MOSI-like sequences [B, 50, 300] with "drop+noise"."""
    try:
        from infmasking.data.augment import ImageAugment, SequenceAugment  # written by someone else
    except Exception as e:  # noqa: BLE001 - report whatever stops the import
        return {"status": f"not available: {type(e).__name__}: {e}"}
    res: dict[str, Any] = {"status": "ok"}
    g = torch.Generator().manual_seed(0)
    images = [m for m in s.modalities if m.kind == "image"]
    if images:
        x = torch.rand(s.batch, *images[0].shape)
        calls = 2 * len(images)  # two views of every image modality per step
        for name, kw in (
            ("simclr", {}),
            ("crop_flip", {"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}),
        ):
            try:
                aug = ImageAugment.simclr(**kw)
                per_call = _time(lambda aug=aug: aug(x, generator=g), reps)
                res[name] = {
                    "what": (
                        f"ImageAugment.simclr({', '.join(f'{k}={v}' for k, v in kw.items())}) "
                        f"on float [{s.batch}, {', '.join(map(str, images[0].shape))}]"
                    ),
                    "per_call_s": per_call,
                    "calls_per_step": calls,
                    "per_step_s": per_call * calls,
                }
            except Exception as e:  # noqa: BLE001
                res[name] = {"status": f"failed: {type(e).__name__}: {e}"}
    try:
        seq = torch.randn(s.batch, 50, 300)
        pad = torch.arange(50)[None, :] >= torch.randint(10, 51, (s.batch, 1), generator=g)
        aug = SequenceAugment("drop+noise")
        per_call = _time(lambda: aug(seq, pad, generator=g), reps)
        res["sequence_drop_noise"] = {
            "what": f'SequenceAugment("drop+noise") on padded [{s.batch}, 50, 300]',
            "per_call_s": per_call,
            "calls_per_step": 4,
            "per_step_s": 4 * per_call,
        }
    except Exception as e:  # noqa: BLE001
        res["sequence_drop_noise"] = {"status": f"failed: {type(e).__name__}: {e}"}
    return res


def _profile_loading(s: Setting, reps: int) -> dict[str, Any]:
    from infmasking.data.base import Split, to_float_images

    images = [m for m in s.modalities if m.kind == "image"]
    if not images:
        return {"status": "no image modality"}
    g = torch.Generator().manual_seed(0)
    bank = torch.randint(0, 256, (2400, *images[0].shape), dtype=torch.uint8, generator=g)
    n = 10_000
    index = {m.name: torch.randint(0, 2400, (n,), generator=g) for m in images}
    split = Split(
        {m.name: bank for m in images}, {"y": torch.zeros(n, dtype=torch.long)}, index=index
    )

    def fetch():
        batch = split[torch.randint(0, n, (s.batch,), generator=g)]
        return {m: to_float_images(x) for m, x in batch.inputs.items()}

    return {
        "status": "ok",
        "what": "Split[64 random indices] from a 2400-image uint8 bank + to_float_images",
        "per_batch_s": _time(fetch, reps),
    }


# =========================================================================== scaling sweep

SWEEP_AXES = {
    "num_masks": [1, 2, 4, 8, 16],
    "batch": [32, 64, 128, 256, 512],
    "proj_dim": [128, 256, 512, 1024, 2048, 4096],
}


def run_sweep(
    base: Setting, *, reps: int, warmup: int, max_cov_gb: float, memory: bool, log=print
) -> dict[str, Any]:
    out: dict[str, Any] = {"base": base.to_dict(), "axes": {}}
    for axis, values in SWEEP_AXES.items():
        rows = []
        for val in values:
            s = base.replace(**{axis: val})
            cov_bytes = 2 * s.batch * s.proj_dim**2 * 4  # Σ of both views, float32
            variants = ("reference", "library")
            row: dict[str, Any] = {"value": val, "reference_cov_bytes": cov_bytes}
            if cov_bytes > max_cov_gb * 1e9:
                variants = ("library",)
                row["reference_skipped"] = (
                    f"Σ of both views would need {cov_bytes / 1e9:.1f} GB "
                    f"(> {max_cov_gb} GB limit), before its gradient"
                )
                log(f"  [sweep {axis}={val}] reference skipped: {row['reference_skipped']}")
            times = time_interleaved(s, variants, reps, warmup, log=log)
            row["stats"] = {v: _stats(t) for v, t in times.items()}
            if memory:
                row["memory"] = {v: measure_memory(s, v) for v in variants}
            rows.append(row)
        out["axes"][axis] = rows
    return out


# =========================================================================== result header


def header(args_cmd: str, gflops: float) -> dict[str, Any]:
    """The run's metadata at the top of a result JSON (command, versions, throughput, methods)."""
    return {
        "command": args_cmd,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "matmul_gflops_fp32": gflops,
        "memory_method": MEMORY_METHOD,
        "loadavg_at_start": list(os.getloadavg()),
        "env": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
        },
        "timing_method": (
            "full training steps (zero_grad, forward of both views, loss, backward, AdamW), "
            "variants interleaved within each round, warmup rounds discarded, medians; "
            "wall clock (time.perf_counter); views are pre-made random tensors "
            "(augmentation timed separately)"
        ),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
