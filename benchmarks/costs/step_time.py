"""Training-step cost of InfMasking: the published cost structure vs this library vs CoMM.

Variants, all full training steps (two augmented views already made, encoders included,
forward + backward + AdamW step) on the same model, same modules and same numerics:

  reference     the cost structure of the published code, in
                infmasking/testing/reference_step.py: for each view, one unbatched pass per
                unimodal subset, and for every one of the
                M+1 modality subsets T masked passes, one per view, of full-length sequences
                (mask token written in place with ``torch.where``), each projected by the
                head; only the all-modality masked outputs reach the loss. The loss builds the
                covariance Σ [B, p, p] explicitly (``torch.einsum``) and then q^T Σ q.
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


Layout: the variants and the reference structure are in infmasking/testing/reference_step.py
(the tests check the reference against the library with it), the timing / FLOP / memory / profile /
sweep harness in benchmarks/costs/timing.py, the Markdown, the plot and the summary in
benchmarks/costs/step_time_report.py; this file holds the presets and the command line.

Usage (see benchmarks/README.md):
    python benchmarks/costs/step_time.py --preset cpu64 --reps 10 \
        --out benchmarks/results/step_time_cpu64.json
    python benchmarks/costs/step_time.py --preset all --reps 5
    python benchmarks/costs/step_time.py --sweep --out benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
from step_time_report import (
    plot_sweep,
    profile_markdown,
    setting_markdown,
    summary_markdown,
    sweep_markdown,
    write_report,
)
from timing import (
    _child_memory,
    header,
    masking_overhead,
    matmul_gflops,
    profile_library,
    run_setting,
    run_sweep,
)

from infmasking.testing.reference_step import TINY, Modality, Setting
from infmasking.training.config_files import load_config, presets

# =========================================================================== presets


def _img(name: str, size: int, encoder: str) -> Modality:
    return Modality(name, "image", (3, size, size), {"name": encoder})


def _seq(
    name: str, length: int, channels: int, encoder: dict[str, Any], min_len: int | None
) -> Modality:
    return Modality(name, "sequence", (length, channels), encoder, min_len)


def _from_preset(preset: str, name: str, description: str, modalities: list[Modality]) -> Setting:
    """A setting whose model, masking and learning rate are the package preset ``preset``'s
    (src/infmasking/presets/<preset>.yaml), each modality's encoder included; ``modalities``
    give the input shapes (and sequence lengths) that the preset's data would have."""
    cfg = load_config(presets()[preset])
    mc, meth = cfg.model, cfg.method
    enc = mc.encoders or {}
    mods = [dataclasses.replace(m, encoder=dict(enc.get(m.name, m.encoder))) for m in modalities]
    return Setting(
        name,
        f"{description}; preset {preset}: d={mc.dim}, {mc.n_heads} heads, {mc.n_layers} block(s), "
        f"p={mc.proj_dim}, T={meth.num_masks}, mask_ratio {meth.mask_ratio}",
        mods,
        batch=cfg.optim.batch_size,
        dim=mc.dim,
        n_heads=mc.n_heads,
        n_layers=mc.n_layers,
        head_hidden=mc.head_hidden,
        proj_dim=mc.proj_dim,
        num_masks=meth.num_masks,
        mask_ratio=meth.mask_ratio,
        temperature=meth.temperature,
        lr=cfg.optim.lr,
    )


def _token_setting(n_modalities: int) -> Setting:
    """Token-only settings: ``n_modalities`` modalities of 16 random tokens of width 128
    (identity encoders, linear adapter) into the small fusion transformer."""
    return Setting(
        "tokens" if n_modalities == 2 else f"tokens{n_modalities}",
        f"Token-only: {n_modalities} modalities of 16 random tokens of width 128 (identity "
        "encoders, linear adapter), d=128, 4 heads, 1 block, p=256, T=6, mask_ratio 0.7",
        [_seq(f"tok{i}", 16, 128, {"name": "identity"}, None) for i in range(1, n_modalities + 1)],
        batch=64,
        dim=128,
        n_heads=4,
        n_layers=1,
        num_masks=6,
        mask_ratio=0.7,
    )


PRESETS: dict[str, Setting] = {
    "trifeatures224": _from_preset(
        "trifeatures224",
        "trifeatures224",
        "Published Trifeatures setting: 2 AlexNet trunks at 224 px (36 tokens each)",
        [_img("image1", 224, "alexnet"), _img("image2", 224, "alexnet")],
    ),
    "cpu64": _from_preset(
        "trifeatures",
        "cpu64",
        "CPU Trifeatures setting: 2 ConvNets 16-32-64-128 at 64 px (16 tokens each)",
        [_img("image1", 64, "convnet"), _img("image2", 64, "convnet")],
    ),
    "mosi": _from_preset(
        "mosi",
        "mosi",
        "MOSI-like: vision [50, 35] + text [50, 300] sequences, padded (real length 10..50), "
        "the preset's Transformer encoders",
        [
            _seq("vision", 50, 35, {"name": "transformer"}, 10),
            _seq("text", 50, 300, {"name": "transformer"}, 10),
        ],
    ),
    "three": Setting(
        "three",
        "Three modalities: 2 ConvNets at 64 px (16 tokens each) + a padded sequence [24, 12] "
        "(real length 12..24) through a Transformer encoder of width 128; d=128, 4 heads, "
        "1 block, p=256, T=6, mask_ratio 0.7",
        [
            _img("image1", 64, "convnet"),
            _img("image2", 64, "convnet"),
            _seq("series", 24, 12, {"name": "transformer", "width": 128, "n_heads": 4}, 12),
        ],
        batch=64,
        dim=128,
        n_heads=4,
        n_layers=1,
        num_masks=6,
        mask_ratio=0.7,
    ),
    "tokens": _token_setting(2),
    "tokens3": _token_setting(3),
    "tiny": TINY,
}
MAIN_PRESETS = ("trifeatures224", "cpu64", "mosi", "three")


# =========================================================================== CLI


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--preset",
        default="cpu64",
        help=f"one of {sorted(PRESETS)} or 'all' ({', '.join(MAIN_PRESETS)})",
    )
    ap.add_argument("--batch", type=int, help="override B")
    ap.add_argument("--num-masks", type=int, help="override T")
    ap.add_argument(
        "--reps", type=int, default=10, help="timed rounds (each runs every variant once)"
    )
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument(
        "--max-step-seconds",
        type=float,
        default=60.0,
        help="halve B while one reference step takes longer than this",
    )
    ap.add_argument(
        "--no-memory", action="store_true", help="skip the per-variant memory subprocesses"
    )
    ap.add_argument("--no-flops", action="store_true", help="skip FLOP counting")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="profile what is left of the library step (cpu64 with 'all')",
    )
    ap.add_argument(
        "--sweep", action="store_true", help="scaling sweep over T, B, p for (a) and (b) instead"
    )
    ap.add_argument("--sweep-preset", default="tokens", help="base setting of the sweep")
    ap.add_argument(
        "--sweep-max-cov-gb",
        type=float,
        default=3.0,
        help="skip (a) where Σ of both views exceeds this",
    )
    ap.add_argument(
        "--out", type=Path, help="JSON output (Markdown beside it, .md; PNG for --sweep)"
    )
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument(
        "--matmul-size", type=int, default=2048, help="n of the n×n float32 matmul throughput probe"
    )
    ap.add_argument(
        "--render", type=Path, help="rewrite the Markdown (and derived numbers) of a result JSON"
    )
    ap.add_argument(
        "--summary",
        type=Path,
        nargs="+",
        help="tabulate result JSONs into step_time_summary.md beside them",
    )
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
    cmd = " ".join(
        ["python", "benchmarks/costs/step_time.py"]
        + [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]
    )
    started = time.perf_counter()
    gflops = matmul_gflops(args.matmul_size)
    print(f"float32 matmul throughput: {gflops:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    result = header(cmd, gflops)

    if args.sweep:
        base = PRESETS[args.sweep_preset]
        if args.batch:
            base = base.replace(batch=args.batch)
        sweep = run_sweep(
            base,
            reps=args.reps,
            warmup=args.warmup,
            max_cov_gb=args.sweep_max_cov_gb,
            memory=not args.no_memory,
        )
        result["sweep"] = sweep
        result["matmul_gflops_fp32_end"] = matmul_gflops(args.matmul_size)
        result["loadavg_at_end"] = list(os.getloadavg())
        result["elapsed_s"] = time.perf_counter() - started
        out = args.out or HERE.parent / "results" / "scaling.json"
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
        r = run_setting(
            s,
            reps=args.reps,
            warmup=args.warmup,
            max_step_seconds=args.max_step_seconds,
            memory=not args.no_memory,
            flops=not args.no_flops,
        )
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
    out = args.out or HERE.parent / "results" / (f"step_time_{args.preset}.json")
    write_report(result, out)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return result


if __name__ == "__main__":
    main()
