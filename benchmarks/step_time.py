"""Training-step cost of InfMasking: the published cost structure vs this library vs CoMM.

Variants, all full training steps (two augmented views already made, encoders included,
forward + backward + AdamW step) on the same model, same modules and same numerics:

  reference     the cost structure of the published code, kept here: for each view, one
                unbatched pass per unimodal subset, and for every one of the M+1 modality
                subsets T masked passes, one per view, of full-length sequences (mask token
                written in place with ``torch.where``), each projected by the head; only the
                all-modality masked outputs reach the loss. The loss builds the covariance
                Σ [B, p, p] explicitly (``torch.einsum``) and then q^T Σ q.
  library       ``model.forward(num_masks=T)`` + ``infmasking_loss``: the unimodal, full and
                T masked passes of a view share the first fusion block's keys and values
                (``shared_kv``), collapsed mask tokens, v = q^T Σ q in O(T·B·p).
  library_noshare  the same with ``shared_kv=False``: 3 fusion calls per view (unimodal
                batched, full, all T masked views batched), each projecting its own tokens.
  library_full  the library with the fusion's exact savings off: ``collapse_masked=False``
                (full-length masked sequences), ``cls_only_last=False`` (every row of the
                last block computed) and ``shared_kv=False``. (a) computes every row too, as
                the published code does.
  comm          CoMM: ``model.forward(num_masks=0)`` + ``comm_loss`` (the floor), shared K/V.
  comm_noshare  CoMM with ``shared_kv=False``.

Timing: variants interleaved within each round (reference, library, library_full, comm,
reference, ...), warmup rounds first, medians. Memory: each variant in a fresh subprocess
(see ``MEMORY_METHOD``). Also printed: float32 matmul throughput measured in the same
run, and the FLOPs of each step counted by ``torch.utils.flop_counter``.

Usage (see benchmarks/README.md):
    python benchmarks/step_time.py --preset cpu64 --reps 10 --out benchmarks/results/step_time_cpu64.json
    python benchmarks/step_time.py --preset all --reps 5
    python benchmarks/step_time.py --sweep --out benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from infmasking import losses as L
from infmasking.models import MaskedFusionModel, build_model

VARIANTS = ("reference", "library", "library_noshare", "library_full", "comm", "comm_noshare")
LABELS = {
    "reference": "(a) reference structure",
    "library": "(b) library, collapsed mask tokens, shared first-block K/V",
    "library_noshare": "(b'') library, shared first-block K/V off",
    "library_full": "(b') library, collapse, CLS-only last block and shared K/V off",
    "comm": "(c) CoMM (no masking), shared first-block K/V",
    "comm_noshare": "(c') CoMM, shared first-block K/V off",
}
HERE = Path(__file__).resolve().parent


# =========================================================================== settings


@dataclass
class Modality:
    """One input modality. ``kind``: image | sequence. ``shape``: per-sample shape.
    ``encoder``: a build_model encoder spec. ``min_len``: sequences only; each sample's real
    length is drawn uniformly in [min_len, L], the rest is padding (None = no padding)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    encoder: dict[str, Any]
    min_len: int | None = None


@dataclass
class Setting:
    name: str
    description: str
    modalities: list[Modality]
    batch: int = 64
    dim: int = 128
    n_heads: int = 4
    n_layers: int = 1
    head_hidden: int = 512
    proj_dim: int = 256
    num_masks: int = 6
    mask_ratio: float = 0.7
    temperature: float = 0.1
    mask_weight: float = 0.5  # λ_e mid-schedule (mask_lambda 1, epoch 50 of 100)
    lr: float = 3e-4
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Setting:
        d = dict(d)
        d["modalities"] = [Modality(**{**m, "shape": tuple(m["shape"])}) for m in d["modalities"]]
        return Setting(**d)

    def replace(self, **kw) -> Setting:
        return dataclasses.replace(self, **kw)


def _img(name: str, size: int, encoder: str) -> Modality:
    return Modality(name, "image", (3, size, size), {"name": encoder})


def _seq(name: str, length: int, channels: int, encoder: dict[str, Any], min_len: int | None) -> Modality:
    return Modality(name, "sequence", (length, channels), encoder, min_len)


PRESETS: dict[str, Setting] = {
    "trifeatures224": Setting(
        "trifeatures224",
        "Published Trifeatures setting: 2 AlexNet trunks at 224 px (36 tokens each), d=512, 8 heads, "
        "1 block, p=256, T=6, mask_ratio 0.7",
        [_img("image1", 224, "alexnet"), _img("image2", 224, "alexnet")],
        batch=64, dim=512, n_heads=8, n_layers=1, num_masks=6, mask_ratio=0.7,
    ),
    "cpu64": Setting(
        "cpu64",
        "CPU Trifeatures setting: 2 ConvNets 16-32-64-128 at 64 px (16 tokens each), d=128, 4 heads, "
        "1 block, p=256, T=6, mask_ratio 0.7",
        [_img("image1", 64, "convnet"), _img("image2", 64, "convnet")],
        batch=64, dim=128, n_heads=4, n_layers=1, num_masks=6, mask_ratio=0.7,
    ),
    "mosi": Setting(
        "mosi",
        "MOSI-like: vision [50, 35] + text [50, 300] sequences, padded (real length 10..50), "
        "Transformer encoders of width 40 (5 heads), d=40, 5 fusion heads, 1 block, p=256, T=5, mask_ratio 0.8",
        [_seq("vision", 50, 35, {"name": "transformer", "width": 40, "n_heads": 5}, 10),
         _seq("text", 50, 300, {"name": "transformer", "width": 40, "n_heads": 5}, 10)],
        batch=64, dim=40, n_heads=5, n_layers=1, num_masks=5, mask_ratio=0.8, lr=1e-3,
    ),
    "three": Setting(
        "three",
        "Three modalities: 2 ConvNets at 64 px (16 tokens each) + a padded sequence [24, 12] "
        "(real length 12..24) through a Transformer encoder of width 128; d=128, 4 heads, 1 block, p=256, "
        "T=6, mask_ratio 0.7",
        [_img("image1", 64, "convnet"), _img("image2", 64, "convnet"),
         _seq("series", 24, 12, {"name": "transformer", "width": 128, "n_heads": 4}, 12)],
        batch=64, dim=128, n_heads=4, n_layers=1, num_masks=6, mask_ratio=0.7,
    ),
    "tokens": Setting(
        "tokens",
        "Token-only: 2 modalities of 16 random tokens of width 128 (identity encoders, linear adapter), "
        "d=128, 4 heads, 1 block, p=256, T=6, mask_ratio 0.7",
        [_seq("tok1", 16, 128, {"name": "identity"}, None), _seq("tok2", 16, 128, {"name": "identity"}, None)],
        batch=64, dim=128, n_heads=4, n_layers=1, num_masks=6, mask_ratio=0.7,
    ),
    "tokens3": Setting(
        "tokens3",
        "Token-only, three modalities of 16 random tokens of width 128 (identity encoders, linear adapter), "
        "d=128, 4 heads, 1 block, p=256, T=6, mask_ratio 0.7",
        [_seq(f"tok{i}", 16, 128, {"name": "identity"}, None) for i in (1, 2, 3)],
        batch=64, dim=128, n_heads=4, n_layers=1, num_masks=6, mask_ratio=0.7,
    ),
    "tiny": Setting(
        "tiny",
        "Tiny smoke-test setting: image 16 px + padded sequence [6, 5], d=16, p=8, T=3",
        [Modality("img", "image", (3, 16, 16), {"name": "convnet", "widths": [4, 8]}),
         _seq("seq", 6, 5, {"name": "identity"}, 3)],
        batch=6, dim=16, n_heads=2, n_layers=1, head_hidden=8, proj_dim=8, num_masks=3, mask_ratio=0.5,
    ),
}
MAIN_PRESETS = ("trifeatures224", "cpu64", "mosi", "three")


def make_model(s: Setting, collapse: bool = True, dtype: torch.dtype = torch.float32) -> MaskedFusionModel:
    mods = [m.name for m in s.modalities]
    model = build_model(
        mods, {m.name: m.kind for m in s.modalities}, {m.name: tuple(m.shape) for m in s.modalities},
        dim=s.dim, n_layers=s.n_layers, n_heads=s.n_heads, head_hidden=s.head_hidden, proj_dim=s.proj_dim,
        encoders={m.name: dict(m.encoder) for m in s.modalities}, collapse_masked=collapse,
    )
    return model.to(dtype).train()


def make_views(s: Setting, generator: torch.Generator, dtype: torch.dtype = torch.float32):
    """Two already-augmented views: [(inputs, padding), (inputs, padding)]."""
    views = []
    for _ in range(2):
        inputs, padding = {}, {}
        for m in s.modalities:
            if m.kind == "image":
                inputs[m.name] = torch.rand(s.batch, *m.shape, generator=generator, dtype=dtype)
            else:
                length = m.shape[0]
                inputs[m.name] = torch.randn(s.batch, *m.shape, generator=generator, dtype=dtype)
                if m.min_len is not None:
                    real = torch.randint(m.min_len, length + 1, (s.batch,), generator=generator)
                    padding[m.name] = torch.arange(length)[None, :] >= real[:, None]  # real steps first
        views.append((inputs, padding))
    return views


# =========================================================================== reference structure


def _masked_pass(model: MaskedFusionModel, tokens, masks, mods: list[str], t: int) -> Tensor:
    """F of view t of the masked subset ``mods``: full-length sequence, mask token written in
    place (``torch.where``), padding bias kept. [B, d]."""
    xs = [torch.where(masks[m].mask[t][..., None], model.mask_token.to(tokens[m].x.dtype), tokens[m].x)
          for m in mods]
    bias = torch.cat([tokens[m].bias for m in mods], 1)
    return model.fusion(torch.cat(xs, 1), bias)


def reference_view(model: MaskedFusionModel, inputs, padding, num_masks: int, mask_ratio: float,
                   generator: torch.Generator | None = None):
    """One view with the published cost structure: for every subset S in {1}, …, {M}, all: one
    unmasked pass F(x_S) and T masked passes of S, one per view, each projected by the head
    (the published module projects every masked output); only the all-modality masked
    outputs reach the loss, the others are computed and thrown away, as published.

    The all-modality masks are drawn by ``model.draw_masks(tokens, T, ratio, generator)``,
    exactly as ``model.forward`` draws them, so both paths see the same masks for the same
    generator state; the discarded subsets' masks come from the global RNG.

    Returns (z: M+1 tensors [B, p], masked: [T, B, p], discarded: list of [B, p]).
    """
    tokens = model.tokenize(inputs, padding)
    z, discarded = [], []
    for m in model.modalities:
        z.append(model.head(model.fuse(tokens, [m])))
        sub_masks = model.draw_masks({m: tokens[m]}, num_masks, mask_ratio)
        discarded += [model.head(_masked_pass(model, tokens, sub_masks, [m], t)) for t in range(num_masks)]
    z.append(model.head(model.fuse(tokens)))
    masks = model.draw_masks(tokens, num_masks, mask_ratio, generator)
    kept = [model.head(_masked_pass(model, tokens, masks, model.modalities, t)) for t in range(num_masks)]
    return z, torch.stack(kept), discarded


def reference_masked_term(q: Tensor, k: Tensor, temperature: float, mask_weight: float) -> Tensor:
    """The masked term with the published structure: Σ [B, p, p] built explicitly.

    q: [B, p] normalised queries; k: [T, B, p] normalised masked views.
    """
    t, b, _ = k.shape
    mu = k.mean(0)  # [B, p]
    c = k - mu  # [T, B, p]
    sigma = torch.einsum("tbp,tbq->bpq", c, c) / t  # [B, p, p]
    v = torch.einsum("bp,bpq,bq->b", q, sigma, q)  # [B] = q_i^T Σ_i q_i
    bonus = 0.5 * (mask_weight / temperature) * v
    pos = (torch.einsum("bp,bp->b", q, mu) + bonus) / temperature  # [B]
    eye = torch.eye(b, dtype=torch.bool, device=q.device)
    neg_k = torch.einsum("bp,tnp->btn", q, k).masked_fill(eye[:, None, :], -math.inf) / temperature  # [B, T, B]
    neg_q = (q @ q.T).masked_fill(eye, -math.inf) / temperature  # [B, B]
    logits = torch.cat([pos[:, None], neg_k.reshape(b, t * b), neg_q], 1)  # [B, 1 + (T+1)B]
    labels = torch.zeros(b, dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels) + (bonus / temperature).mean()


def reference_loss(z1, z2, masked1: Tensor, masked2: Tensor, *, temperature: float, mask_weight: float) -> Tensor:
    """mean([L_mask', L_mask'', CoMM_1, …, CoMM_M, CoMM_all]) with the explicit-Σ masked term;
    every CoMM term as ½[NCE(z'_S, z''_all) + NCE(z''_S, z'_all)] (both halves, also for all)."""
    z1 = [F.normalize(z, dim=-1) for z in z1]
    z2 = [F.normalize(z, dim=-1) for z in z2]
    k1, k2 = F.normalize(masked1, dim=-1), F.normalize(masked2, dim=-1)
    terms = [reference_masked_term(z1[-1], k1, temperature, mask_weight),
             reference_masked_term(z2[-1], k2, temperature, mask_weight)]
    for s in range(len(z1)):
        terms.append(0.5 * (L.nt_xent(z1[s], z2[-1], temperature)[0] + L.nt_xent(z2[s], z1[-1], temperature)[0]))
    return torch.stack(terms).mean()


# =========================================================================== steps


def step_loss(variant: str, model: MaskedFusionModel, views, s: Setting,
              generator: torch.Generator | None = None) -> Tensor:
    """The loss of one training step of ``variant`` (forward only)."""
    (x1, p1), (x2, p2) = views
    # all rows in the published structure and with the savings off
    model.fusion.cls_only_last = variant in ("library", "library_noshare", "comm", "comm_noshare")
    model.shared_kv = variant in ("library", "comm")
    if variant == "reference":
        z1, k1, d1 = reference_view(model, x1, p1, s.num_masks, s.mask_ratio, generator)
        z2, k2, d2 = reference_view(model, x2, p2, s.num_masks, s.mask_ratio, generator)
        loss = reference_loss(z1, z2, k1, k2, temperature=s.temperature, mask_weight=s.mask_weight)
        del d1, d2  # the published outputs dict dies with the training step, before backward
        return loss
    if variant in ("library", "library_noshare", "library_full"):
        model.collapse_masked = variant != "library_full"
        kw = {"num_masks": s.num_masks, "mask_ratio": s.mask_ratio, "generator": generator}
        o1, o2 = model(x1, p1, **kw), model(x2, p2, **kw)
        return L.infmasking_loss(o1.unimodal + [o1.full], o2.unimodal + [o2.full], o1.masked, o2.masked,
                                 temperature=s.temperature, mask_weight=s.mask_weight).loss
    if variant in ("comm", "comm_noshare"):
        o1, o2 = model(x1, p1), model(x2, p2)
        return L.comm_loss(o1.unimodal + [o1.full], o2.unimodal + [o2.full], temperature=s.temperature).loss
    raise ValueError(f"unknown variant {variant!r}; valid: {VARIANTS}")


def make_step(variant: str, model: MaskedFusionModel, opt: torch.optim.Optimizer, views, s: Setting,
              generator: torch.Generator | None = None) -> Callable[[], float]:
    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = step_loss(variant, model, views, s, generator)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _setup(s: Setting, seed: int = 0):
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

    model, _, views = _setup(s, seed)
    with FlopCounterMode(display=False) as counter:
        step_loss(variant, model, views, s, torch.Generator().manual_seed(seed)).backward()
    return float(counter.get_total_flops())


def masked_rows_flops(s: Setting, seed: int = 0) -> dict[str, float]:
    """FLOPs (forward + backward, both views) of the per-row work InfMasking adds to CoMM with the
    shared first-block keys/values: the projection head on the T·B masked rows, and (one fusion
    block, CLS pooling) the CLS row's output projection and MLP for those rows."""
    from torch.utils.flop_counter import FlopCounterMode

    model, _, _ = _setup(s, seed)
    rows = s.num_masks * s.batch
    out = {}
    with FlopCounterMode(display=False) as counter:
        x = torch.randn(s.num_masks, s.batch, s.dim, requires_grad=True)
        model.head.grouped(x).sum().backward()
    out["head_on_masked_rows"] = 2 * float(counter.get_total_flops())
    if s.n_layers == 1:
        with FlopCounterMode(display=False) as counter:
            x, a = torch.randn(rows, s.dim, requires_grad=True), torch.randn(rows, s.dim, requires_grad=True)
            model.fusion.norm(model.fusion.blocks[0].finish(x, a)).sum().backward()
        out["cls_row_proj_mlp_on_masked_rows"] = 2 * float(counter.get_total_flops())
    return out


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {"median": statistics.median(xs), "q1": q[0], "q3": q[2], "min": xs[0], "max": xs[-1], "n": len(xs)}


def time_interleaved(s: Setting, variants: tuple[str, ...], reps: int, warmup: int, seed: int = 0,
                     log: Callable[[str], None] = print) -> dict[str, list[float]]:
    """Per-variant step times (s), variants interleaved within each round, after warmup rounds."""
    model, opt, views = _setup(s, seed)
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
    "peak RSS increase of one training step in a fresh subprocess: setup (model, inputs, AdamW), one warmup "
    "step (allocates gradients and AdamW state), zero_grad(set_to_none), malloc_trim, then the kernel's peak-RSS "
    "high-water mark is reset (/proc/self/clear_refs 5) and one step is run; reported = VmHWM after the step "
    "minus VmRSS before it (/proc/self/status). VmHWM is the counter getrusage ru_maxrss reports, read directly "
    "because ru_maxrss also carries the high-water mark inherited across fork/exec from the (large) parent "
    "benchmark process. glibc MALLOC_MMAP_THRESHOLD_=131072 in the child so freed tensors return to the OS. "
    "Includes this step's gradients (= parameter bytes)."
)


def _rss_kb(field: str = "VmRSS") -> int:
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
    model, opt, views = _setup(s)
    step = make_step(variant, model, opt, views, s, torch.Generator().manual_seed(0))
    step()  # warmup: gradients and optimizer state now exist
    opt.zero_grad(set_to_none=True)
    reset = reset_peak_rss()
    before = _rss_kb()
    step()
    peak = _rss_kb("VmHWM")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"variant": variant, "rss_before_kb": before, "peak_kb": peak, "hwm_reset": reset,
            "peak_increase_bytes": (peak - before) * 1024 if reset else None, "param_bytes": params}


def measure_memory(s: Setting, variant: str, timeout: float = 1800) -> dict[str, Any]:
    """Peak RSS increase of one step of ``variant`` in a fresh subprocess (see MEMORY_METHOD;
    the child runs with torch's default number of threads)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    payload = json.dumps({"setting": s.to_dict(), "variant": variant})
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_child", payload],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"variant": variant, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# =========================================================================== one setting


def run_setting(s: Setting, *, reps: int, warmup: int, max_step_seconds: float, memory: bool,
                flops: bool, variants: tuple[str, ...] = VARIANTS, log=print) -> dict[str, Any]:
    notes = list(s.notes)
    # budget: reduce B while one reference step exceeds the limit
    while True:
        model, opt, views = _setup(s)
        probe = make_step("reference", model, opt, views, s, torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        probe()
        dt = time.perf_counter() - t0
        del model, opt, views, probe
        if dt <= max_step_seconds or s.batch <= 8:
            break
        notes.append(f"one reference step took {dt:.1f} s at B={s.batch} (> {max_step_seconds:.0f} s): "
                     f"B halved to {s.batch // 2}")
        log("  " + notes[-1])
        s = s.replace(batch=s.batch // 2)
    s = s.replace(notes=notes)
    log(f"== {s.name}: B={s.batch}, T={s.num_masks}, d={s.dim}, p={s.proj_dim}")
    times = time_interleaved(s, variants, reps, warmup, log=log)
    result: dict[str, Any] = {"setting": s.to_dict(), "times_s": times,
                              "stats": {v: _stats(t) for v, t in times.items()}}
    med = {v: result["stats"][v]["median"] for v in variants}

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    ratios = {}
    for a, b in (("reference", "library"), ("library", "comm"), ("reference", "library_full"),
                 ("library_full", "library"), ("reference", "comm"), ("library_noshare", "library"),
                 ("comm_noshare", "comm"), ("library_noshare", "comm_noshare")):
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
    out = {f"{v}_minus_comm_s": stats[v]["median"] - c for v in ("reference", "library", "library_full") if v in stats}
    if "reference" in stats and "library" in stats:
        out["reference_over_library"] = out["reference_minus_comm_s"] / out["library_minus_comm_s"]
    return out


# =========================================================================== profile of what is left


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
    model, opt, views = _setup(s)
    gen = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {"setting": s.name, "batch": s.batch}
    x1, p1 = views[0]
    T = s.num_masks

    # ---- components, forward + backward each (one view; a step runs two views)
    tokens_detached = {m: t._replace(x=t.x.detach().requires_grad_()) for m, t in model.tokenize(x1, p1).items()}
    masks = model.draw_masks(tokens_detached, T, s.mask_ratio, gen)
    feats_masked = torch.randn(T * s.batch, s.dim, requires_grad=True)
    feats = torch.randn(s.batch, s.dim, requires_grad=True)
    zs = [torch.randn(s.batch, s.proj_dim, requires_grad=True) for _ in range(len(s.modalities) + 1)]
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

    def comp_head_masked():
        bwd(torch.stack([model.head(h) for h in feats_masked.chunk(T)]).square().mean())

    def comp_head_one():
        bwd(model.head(feats).square().mean())

    def comp_loss():
        L.infmasking_loss(zs, [z * 1.01 for z in zs], ks, ks * 1.01, temperature=s.temperature,
                          mask_weight=s.mask_weight).loss.backward()

    def comp_loss_comm():
        L.comm_loss(zs, [z * 1.01 for z in zs], temperature=s.temperature).loss.backward()

    def comp_optimizer():
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()

    comps = {
        "encoders+adapters (tokenize)": comp_encoders,
        "fusion: unimodal pass (M·B rows)": comp_unimodal,
        "fusion: all-modality pass (B rows)": comp_full,
        "fusion: T masked views, collapsed (T·B rows)": comp_masked(True),
        "fusion: T masked views, full length (T·B rows)": comp_masked(False),
        "head on T·B masked rows (T calls of B)": comp_head_masked,
        "head on B rows (one call)": comp_head_one,
    }
    per_view = {k: _time(f, reps) for k, f in comps.items()}
    per_step = {"infmasking_loss fwd+bwd": _time(comp_loss, reps), "comm_loss fwd+bwd": _time(comp_loss_comm, reps),
                "AdamW step": _time(comp_optimizer, reps)}
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
        ("copies / indexing / cat", ("copy", "cat", "gather", "scatter", "index", "where", "clone", "contiguous",
                                     "expand", "masked_fill", "sort", "argsort", "stack")),
        ("elementwise / reductions", ("add", "mul", "div", "sub", "sum", "mean", "pow", "exp", "log", "norm", "sqrt",
                                      "rand", "fill", "zero", "ones", "max")),
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
    out["profiler_top_ops"] = [{"op": e.key, "self_s_per_step": e.self_cpu_time_total / 1e6 / 3, "calls": e.count // 3}
                               for e in top]

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
        for name, kw in (("simclr", {}), ("crop_flip", {"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0})):
            try:
                aug = ImageAugment.simclr(**kw)
                per_call = _time(lambda aug=aug: aug(x, generator=g), reps)
                res[name] = {"what": f"ImageAugment.simclr({', '.join(f'{k}={v}' for k, v in kw.items())}) on "
                                     f"float [{s.batch}, {', '.join(map(str, images[0].shape))}]",
                             "per_call_s": per_call, "calls_per_step": calls, "per_step_s": per_call * calls}
            except Exception as e:  # noqa: BLE001
                res[name] = {"status": f"failed: {type(e).__name__}: {e}"}
    try:
        seq = torch.randn(s.batch, 50, 300)
        pad = torch.arange(50)[None, :] >= torch.randint(10, 51, (s.batch, 1), generator=g)
        aug = SequenceAugment("drop+noise")
        per_call = _time(lambda: aug(seq, pad, generator=g), reps)
        res["sequence_drop_noise"] = {"what": f'SequenceAugment("drop+noise") on padded [{s.batch}, 50, 300]',
                                      "per_call_s": per_call, "calls_per_step": 4, "per_step_s": 4 * per_call}
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
    split = Split({m.name: bank for m in images}, {"y": torch.zeros(n, dtype=torch.long)}, index=index)

    def fetch():
        batch = split[torch.randint(0, n, (s.batch,), generator=g)]
        return {m: to_float_images(x) for m, x in batch.inputs.items()}

    return {"status": "ok", "what": "Split[64 random indices] from a 2400-image uint8 bank + to_float_images",
            "per_batch_s": _time(fetch, reps)}


# =========================================================================== scaling sweep

SWEEP_AXES = {"num_masks": [1, 2, 4, 8, 16], "batch": [32, 64, 128, 256, 512], "proj_dim": [128, 256, 512, 1024, 2048, 4096]}


def run_sweep(base: Setting, *, reps: int, warmup: int, max_cov_gb: float, memory: bool, log=print) -> dict[str, Any]:
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
                row["reference_skipped"] = (f"Σ of both views would need {cov_bytes / 1e9:.1f} GB "
                                            f"(> {max_cov_gb} GB limit), before its gradient")
                log(f"  [sweep {axis}={val}] reference skipped: {row['reference_skipped']}")
            times = time_interleaved(s, variants, reps, warmup, log=log)
            row["stats"] = {v: _stats(t) for v, t in times.items()}
            if memory:
                row["memory"] = {v: measure_memory(s, v) for v in variants}
            rows.append(row)
        out["axes"][axis] = rows
    return out


def plot_sweep(sweep: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = {"num_masks": "T (masked views)", "batch": "B (batch size)", "proj_dim": "p (projection dim)"}
    fig, axs = plt.subplots(2, 3, figsize=(14, 8))
    for j, (axis, rows) in enumerate(sweep["axes"].items()):
        for v, style in (("reference", "o-"), ("library", "s-")):
            xs = [r["value"] for r in rows if v in r["stats"]]
            ts = [r["stats"][v]["median"] for r in rows if v in r["stats"]]
            axs[0, j].plot(xs, ts, style, label=LABELS[v])
            if any("memory" in r for r in rows):
                ms = [(r["value"], r["memory"][v].get("peak_increase_bytes")) for r in rows if v in r.get("memory", {})]
                ms = [(x, m / 2**20) for x, m in ms if m]
                if ms:
                    axs[1, j].plot(*zip(*ms), style, label=LABELS[v])
        skipped = [r["value"] for r in rows if "reference_skipped" in r]
        for ax in axs[:, j]:
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(axes_names[axis])
            ax.grid(True, which="both", alpha=0.3)
            for x in skipped:
                ax.axvline(x, color="gray", ls=":", lw=1)
        axs[0, j].set_ylabel("step time (s), median")
        axs[1, j].set_ylabel("peak RSS increase of a step (MiB)")
        axs[0, j].legend(fontsize=8)
    b = sweep["base"]
    fig.suptitle(f"Scaling of a training step — {b['name']} setting (B={b['batch']}, T={b['num_masks']}, "
                 f"p={b['proj_dim']} unless varied); dotted: reference skipped (Σ too large)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# =========================================================================== reports


def _mb(x) -> str:
    return "—" if x is None else f"{x / 2**20:,.0f}"


def setting_markdown(r: dict[str, Any]) -> str:
    s = r["setting"]
    title = (f"### {s['name']} — B={s['batch']}, T={s['num_masks']}, d={s['dim']}, p={s['proj_dim']}, "
             f"{len(s['modalities'])} modalities")
    lines = [title, "", s["description"] + ".", ""]
    lines += [f"- note: {n}" for n in s.get("notes", [])]
    hdr = "| variant | median step (s) | IQR (s) | × (b) | GFLOP/step | peak RSS increase (MiB) |"
    lines += ["", hdr, "|---|---|---|---|---|---|"]
    med_b = r["stats"]["library"]["median"]
    for v in r["stats"]:
        st = r["stats"][v]
        gf = r.get("gflop_per_step", {}).get(v)
        mem = r.get("memory", {}).get(v, {})
        lines.append(f"| {LABELS[v]} | {st['median']:.3f} | {st['q1']:.3f}–{st['q3']:.3f} | "
                     f"{st['median'] / med_b:.2f} | {'—' if gf is None else f'{gf:.1f}'} | "
                     f"{_mb(mem.get('peak_increase_bytes')) if 'error' not in mem else mem['error']} |")
    lines.append("")
    for k, v in r["ratios"].items():
        lines.append(f"- {k}: {v['of_medians']:.2f} (ratio of medians), {v['median_paired']:.2f} (median of per-round ratios)")
    mo = r.get("masking_overhead") or masking_overhead(r["stats"])
    if "reference_over_library" in mo:
        lines.append(f"- masking overhead over CoMM: reference +{mo['reference_minus_comm_s']:.3f} s, library "
                     f"+{mo['library_minus_comm_s']:.3f} s, savings off +{mo.get('library_full_minus_comm_s', math.nan):.3f} s "
                     f"per step: the reference adds **{mo['reference_over_library']:.1f}×** what the library adds")
    gf = r.get("gflop_per_step")
    if gf and "gflops" in r:
        floor = {v: g / r["gflops"] for v, g in gf.items()}
        lines.append("- the counted FLOPs at the matmul rate of this run would take: " + ", ".join(
            f"{v} {floor[v]:.3f} s (measured {r['stats'][v]['median'] / floor[v]:.2f}× that)" for v in floor)
            + " — below 1× where convolutions run faster than the 2048² matmul probe")
    rows = r.get("gflop_masked_rows")
    if gf and rows and "library" in gf and "comm" in gf:
        extra = gf["library"] - gf["comm"]
        parts = ", ".join(f"{k.replace('_', ' ')} {g:.2f} GFLOP ({100 * g / extra:.0f} %)" for k, g in rows.items())
        lines.append(f"- what InfMasking adds to CoMM, (b) − (c) = {extra:.2f} GFLOP per step: {parts}; the rest is "
                     "the masked passes' attention and the masked term of the loss")
    return "\n".join(lines)


def header(args_cmd: str, gflops: float) -> dict[str, Any]:
    return {
        "command": args_cmd,
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "matmul_gflops_fp32": gflops,
        "memory_method": MEMORY_METHOD,
        "loadavg_at_start": list(os.getloadavg()),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")},
        "timing_method": "full training steps (zero_grad, forward of both views, loss, backward, AdamW), variants "
                         "interleaved within each round, warmup rounds discarded, medians; wall clock "
                         "(time.perf_counter); views are pre-made random tensors (augmentation timed separately)",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_report(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    about = (f"torch {result['torch']}, {result['torch_threads']} threads, {result['cpu_count']} CPUs. "
             f"float32 matmul throughput measured in this run: **{result['matmul_gflops_fp32']:.0f} GFLOP/s** at "
             f"the start, {result.get('matmul_gflops_fp32_end', float('nan')):.0f} GFLOP/s at the end. Load "
             f"average (1 min) at start / end: {result['loadavg_at_start'][0]:.2f} / "
             f"{result.get('loadavg_at_end', [float('nan')])[0]:.2f} (shared machine: other jobs ran "
             f"concurrently). Run time {result.get('elapsed_s', float('nan')) / 60:.1f} min.")
    names = ", ".join(r["setting"]["name"] for r in result.get("settings", []))
    md = [f"# Step time — {names}" if names else "# Scaling sweep", "",
          f"Command: `{result['command']}`", "",
          about, "",
          f"Memory: {result['memory_method']}", ""]
    for r in result.get("settings", []):
        md += [setting_markdown(r), ""]
    if "profile" in result:
        md += [profile_markdown(result["profile"]), ""]
    if "sweep" in result:
        md += [sweep_markdown(result["sweep"]), ""]
    out.with_suffix(".md").write_text("\n".join(md))


def profile_markdown(p: dict[str, Any]) -> str:
    lines = [f"### What is left — library step, {p['setting']} (B={p['batch']})", "",
             "| component (forward + backward, one view; a step has two) | s |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in p["components_per_view_fwd_bwd_s"].items()]
    lines += ["", "| per step | s |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in p["components_per_step_s"].items()]
    cat_title = ("Operator categories over whole library steps (torch.profiler self CPU time, "
                 f"total {p['profiler_total_self_cpu_s_per_step']:.3f} s/step):")
    lines += ["", cat_title, "", "| category | s/step | share |", "|---|---|---|"]
    tot = p["profiler_total_self_cpu_s_per_step"]
    lines += [f"| {k} | {v:.3f} | {100 * v / tot:.0f} % |" for k, v in p["profiler_categories_s_per_step"].items()]
    lines += ["", "Top operators: " + ", ".join(f"`{e['op']}` {e['self_s_per_step']:.3f} s" for e in p["profiler_top_ops"][:8])]
    aug = p["augmentation"]
    lines += ["", f"Augmentation (src/infmasking/data/augment.py): {aug.get('status')}"]
    for k in ("simclr", "crop_flip", "sequence_drop_noise"):
        if k in aug:
            a = aug[k]
            lines.append(f"- {a.get('what', k)}: " + (
                f"{a['per_call_s'] * 1e3:.1f} ms per call, {a['per_step_s'] * 1e3:.1f} ms per step "
                f"({a['calls_per_step']} calls: 2 views × modalities)" if "per_call_s" in a else a["status"]))
    one = p.get("augmentation_1_thread", {})
    for k in ("simclr", "crop_flip", "sequence_drop_noise"):
        if "per_call_s" in one.get(k, {}):
            lines.append(f"- with 1 thread, {one[k]['what']}: {one[k]['per_call_s'] * 1e3:.1f} ms per call")
    dl = p["data_loading"]
    if dl.get("status") == "ok":
        lines.append(f"\nData loading: {dl['what']}: {dl['per_batch_s'] * 1e3:.2f} ms per batch.")
    return "\n".join(lines)


def sweep_markdown(sw: dict[str, Any]) -> str:
    b = sw["base"]
    lines = [f"### Scaling sweep — {b['name']} (B={b['batch']}, T={b['num_masks']}, p={b['proj_dim']} unless varied)", ""]
    for axis, rows in sw["axes"].items():
        lines += [f"**{axis}**", "", "| value | (a) step s | (b) step s | (a)/(b) | (a) peak MiB | (b) peak MiB |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            st = r["stats"]
            a = st.get("reference", {}).get("median")
            bb = st["library"]["median"]
            mem = r.get("memory", {})
            ma = mem.get("reference", {}).get("peak_increase_bytes")
            mb = mem.get("library", {}).get("peak_increase_bytes")
            a_txt = f"{a:.3f}" if a else f"skipped ({r['reference_cov_bytes'] / 1e9:.1f} GB Σ)"
            lines.append(f"| {r['value']} | {a_txt} | {bb:.3f} | {f'{a / bb:.2f}' if a else '—'} | {_mb(ma)} | {_mb(mb)} |")
        lines.append("")
    return "\n".join(lines)


# =========================================================================== summary

TARGETS = {  # preset -> [(ratio, threshold, at most?, target text)]
    "cpu64": [("reference/library", 2.3, False, "two modalities, T = 6: (a)/(b) ≥ 2.3"),
              ("library/comm", 2.0, True, "InfMasking ≤ 2× CoMM at the CPU Trifeatures setting"),
              ("library/comm", 1.1, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.1")],
    "trifeatures224": [("reference/library", 2.3, False, "two modalities, T = 6: (a)/(b) ≥ 2.3")],
    "tokens": [("reference/library", 2.3, False, "two modalities, T = 6: (a)/(b) ≥ 2.3"),
               ("library/comm", 1.3, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.3")],
    "three": [("reference/library", 3.0, False, "three modalities: (a)/(b) ≥ 3")],
    "tokens3": [("reference/library", 3.0, False, "three modalities: (a)/(b) ≥ 3"),
                ("library/comm", 1.3, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.3")],
    "mosi": [("library/comm", 1.15, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.15")],
}
SUMMARY_COLUMNS = ("reference", "library", "library_noshare", "library_full", "comm", "comm_noshare")
SUMMARY_RATIOS = (("reference/library", True), ("library_full/library", False), ("library_noshare/library", False),
                  ("library/comm", True), ("library_noshare/comm_noshare", False), ("reference/comm", False))


def summary_markdown(results: list[dict[str, Any]]) -> str:
    """One table over committed step-time results (their JSON), and the targets read off it.
    Results measured before a variant existed show "—" for it."""
    rows, checks = [], []
    for res in results:
        for r in res.get("settings", []):
            name, st, ra = r["setting"]["name"], r["stats"], r["ratios"]
            mem = " / ".join(_mb(r["memory"][v]["peak_increase_bytes"]) if r.get("memory", {}).get(v) else "—"
                             for v in SUMMARY_COLUMNS)
            cells = [f"{st[v]['median']:.3f}" if v in st else "—" for v in SUMMARY_COLUMNS]
            for key, bold in SUMMARY_RATIOS:
                v = ra.get(key, {}).get("median_paired")
                cells.append("—" if v is None else f"**{v:.2f}**" if bold else f"{v:.2f}")
            rows.append(f"| `{name}` | {r['setting']['batch']} | " + " | ".join(cells) + f" | {mem}"
                        f" | {res['loadavg_at_start'][0]:.1f}–{res['loadavg_at_end'][0]:.1f} |")
            for key, thr, at_most, text in TARGETS.get(name, []):
                v = ra.get(key, {}).get("median_paired")
                if v is None or (text.startswith("shared") and "library_noshare" not in st):
                    continue  # a result measured before the saving existed
                met = v <= thr if at_most else v >= thr
                checks.append(f"| {text} | `{name}` | {v:.2f} | {'**yes**' if met else '**no**'} |")
    cmds = sorted({res["command"] for res in results})
    lines = ["# Step time — all presets", "",
             "Written by `python benchmarks/step_time.py --summary benchmarks/results/step_time_*.json` from the "
             "committed results, which were measured by:", ""] + [f"- `{c}`" for c in cmds] + [
             "", "Medians of interleaved full training steps in seconds; ratios are medians of the per-round ratios.",
             "(a) reference structure; (b) library; (b'') library without the shared first-block keys/values; "
             "(b') library with all its exact fusion savings off; (c) CoMM; (c') CoMM without the shared keys/values. "
             "— : measured before that variant existed.", "",
             "| preset | B | (a) | (b) | (b'') | (b') | (c) | (c') | **(a)/(b)** | (b')/(b) | (b'')/(b) | **(b)/(c)** "
             "| (b'')/(c') | (a)/(c) | peak RSS increase MiB (a / b / b'' / b' / c / c') | load 1-min (start–end) |",
             "|---" * 16 + "|", *rows, "",
             "| target | preset | measured | met? |", "|---|---|---|---|", *checks]
    return "\n".join(lines) + "\n"


# =========================================================================== CLI


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu64", help=f"one of {sorted(PRESETS)} or 'all' ({', '.join(MAIN_PRESETS)})")
    ap.add_argument("--batch", type=int, help="override B")
    ap.add_argument("--num-masks", type=int, help="override T")
    ap.add_argument("--reps", type=int, default=10, help="timed rounds (each runs every variant once)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument("--max-step-seconds", type=float, default=60.0,
                    help="halve B while one reference step takes longer than this")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-variant memory subprocesses")
    ap.add_argument("--no-flops", action="store_true", help="skip FLOP counting")
    ap.add_argument("--profile", action="store_true", help="profile what is left of the library step (cpu64 with 'all')")
    ap.add_argument("--sweep", action="store_true", help="scaling sweep over T, B, p for (a) and (b) instead")
    ap.add_argument("--sweep-preset", default="tokens", help="base setting of the sweep")
    ap.add_argument("--sweep-max-cov-gb", type=float, default=3.0, help="skip (a) where Σ of both views exceeds this")
    ap.add_argument("--out", type=Path, help="JSON output (Markdown beside it, .md; PNG for --sweep)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument("--matmul-size", type=int, default=2048, help="n of the n×n float32 matmul throughput probe")
    ap.add_argument("--render", type=Path, help="rewrite the Markdown (and derived numbers) of a result JSON")
    ap.add_argument("--summary", type=Path, nargs="+", help="tabulate result JSONs into step_time_summary.md beside them")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.summary:
        results = [json.loads(p.read_text()) for p in args.summary]
        out = args.summary[0].parent / "step_time_summary.md"
        out.write_text(summary_markdown(results))
        print(out.read_text())
        return {"summary": str(out)}
    if args.render:
        result = json.loads(args.render.read_text())
        for r in result.get("settings", []):
            r["masking_overhead"] = masking_overhead(r["stats"])
            r.setdefault("gflops", result["matmul_gflops_fp32"])
        write_report(result, args.render)
        if "sweep" in result:
            plot_sweep(result["sweep"], args.render.with_suffix(".png"))
        return result

    if args._child:
        print(json.dumps(_child_memory(json.loads(args._child))))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    cmd = " ".join(["python", "benchmarks/step_time.py"] + [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    gflops = matmul_gflops(args.matmul_size)
    print(f"float32 matmul throughput: {gflops:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    result = header(cmd, gflops)

    if args.sweep:
        base = PRESETS[args.sweep_preset]
        if args.batch:
            base = base.replace(batch=args.batch)
        sweep = run_sweep(base, reps=args.reps, warmup=args.warmup, max_cov_gb=args.sweep_max_cov_gb,
                          memory=not args.no_memory)
        result["sweep"] = sweep
        result["matmul_gflops_fp32_end"] = matmul_gflops(args.matmul_size)
        result["loadavg_at_end"] = list(os.getloadavg())
        result["elapsed_s"] = time.perf_counter() - started
        out = args.out or HERE / "results" / "scaling.json"
        write_report(result, out)
        plot_sweep(sweep, out.with_suffix(".png"))
        print(sweep_markdown(sweep))
        return result

    names = list(MAIN_PRESETS) if args.preset == "all" else [args.preset]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        ap.error(f"unknown preset {unknown[0]!r}; valid: {sorted(PRESETS)} or 'all'")
    result["settings"] = []
    for name in names:
        s = PRESETS[name]
        if args.batch:
            s = s.replace(batch=args.batch)
        if args.num_masks:
            s = s.replace(num_masks=args.num_masks)
        r = run_setting(s, reps=args.reps, warmup=args.warmup, max_step_seconds=args.max_step_seconds,
                        memory=not args.no_memory, flops=not args.no_flops)
        r["gflops"] = gflops
        result["settings"].append(r)
        print(setting_markdown(r))
    if args.profile:
        pname = "cpu64" if args.preset == "all" else names[0]
        s = next(PRESETS[n] for n in [pname])
        if args.batch:
            s = s.replace(batch=args.batch)
        result["profile"] = profile_library(s, reps=max(3, min(args.reps, 10)))
        print(profile_markdown(result["profile"]))
    result["matmul_gflops_fp32_end"] = matmul_gflops(args.matmul_size)
    result["loadavg_at_end"] = list(os.getloadavg())
    result["elapsed_s"] = time.perf_counter() - started
    out = args.out or HERE / "results" / (f"step_time_{args.preset}.json")
    write_report(result, out)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return result


if __name__ == "__main__":
    main()
