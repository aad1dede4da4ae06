"""Peak memory of one forward + backward of the InfMasking loss alone, versus p.

    library    ``infmasking_loss``: v = q^T Σ q from the T centred projections, O(T·B·p)
    reference  the same loss with Σ [B, p, p] built explicitly
               (infmasking/testing/reference_step.py: ``reference_loss``), the structure of
               the published code

Each (variant, p) runs in a fresh subprocess: inputs are made (z1, z2: M+1 = 3 tensors
[B, p]; masked1, masked2: [T, B, p], all requiring grad), one untimed forward + backward,
gradients freed, malloc_trim, the peak-RSS high-water mark reset (/proc/self/clear_refs 5),
then one forward + backward; reported = VmHWM after minus VmRSS before (/proc/self/status; glibc
MALLOC_MMAP_THRESHOLD_=131072 in the child so freed tensors return to the OS). It includes
the input gradients. The reference is skipped where one Σ, B·p²·4 bytes, would exceed
``--max-cov-gb`` (and the bytes it would need are printed).

Usage:
    python benchmarks/costs/loss_memory.py --out benchmarks/results/loss_memory.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from timing import matmul_gflops, reset_peak_rss, rss_kb

from infmasking.losses import infmasking_loss
from infmasking.testing.reference_step import reference_loss

HERE = Path(__file__).resolve().parent
LOSS_MEMORY_METHOD = (
    "peak RSS increase of one forward + backward of the loss in a fresh subprocess: inputs made, "
    "one warmup forward + backward, input gradients freed, malloc_trim, the kernel's peak-RSS "
    "mark reset (/proc/self/clear_refs 5), one forward + backward; reported = VmHWM after minus "
    "VmRSS before (/proc/self/status; VmHWM is what getrusage ru_maxrss reports, read directly "
    "because ru_maxrss also carries the mark inherited across fork/exec from the parent). "
    "glibc MALLOC_MMAP_THRESHOLD_=131072 in the child so freed tensors return to the OS. "
    "Includes the input gradients."
)
TEMPERATURE, MASK_WEIGHT = 0.1, 0.5


def _inputs(b: int, p: int, t: int, m: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z1 = [torch.randn(b, p, generator=g).requires_grad_() for _ in range(m + 1)]
    z2 = [torch.randn(b, p, generator=g).requires_grad_() for _ in range(m + 1)]
    k1 = torch.randn(t, b, p, generator=g).requires_grad_()
    k2 = torch.randn(t, b, p, generator=g).requires_grad_()
    return z1, z2, k1, k2


def loss_fn(variant: str):
    if variant == "library":
        return lambda z1, z2, k1, k2: (
            infmasking_loss(z1, z2, k1, k2, temperature=TEMPERATURE, mask_weight=MASK_WEIGHT).loss
        )
    if variant == "reference":
        return lambda z1, z2, k1, k2: reference_loss(
            z1, z2, k1, k2, temperature=TEMPERATURE, mask_weight=MASK_WEIGHT
        )
    raise ValueError(f"unknown variant {variant!r}")


def _child(payload: dict) -> dict:
    b, p, t, m, variant = payload["b"], payload["p"], payload["t"], payload["m"], payload["variant"]
    if payload.get("threads"):
        torch.set_num_threads(payload["threads"])
    z1, z2, k1, k2 = _inputs(b, p, t, m)
    leaves = z1 + z2 + [k1, k2]
    fn = loss_fn(variant)

    def run() -> float:
        t0 = time.perf_counter()
        fn(z1, z2, k1, k2).backward()
        return time.perf_counter() - t0

    run()  # warmup
    for x in leaves:
        x.grad = None
    if not reset_peak_rss():
        raise RuntimeError("cannot reset the peak-RSS mark (/proc/self/clear_refs not writable)")
    before = rss_kb()
    seconds = run()
    peak = rss_kb("VmHWM")
    return {
        "variant": variant,
        "p": p,
        "peak_increase_bytes": (peak - before) * 1024,
        "seconds": seconds,
        "input_bytes": sum(x.numel() * 4 for x in leaves),
    }


def measure(variant: str, b: int, p: int, t: int, m: int, threads: int | None = None) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    payload = json.dumps({"variant": variant, "b": b, "p": p, "t": t, "m": m, "threads": threads})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_child", payload],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"variant": variant, "p": p, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def fit_growth(ps: list[int], ys: list[float]) -> dict:
    """Least-squares slope of log(y) on log(p) (1 = linear, 2 = quadratic), and the linear fit
    y = a + c·p with its R²."""
    lx, ly = [math.log(x) for x in ps], [math.log(y) for y in ys]
    n = len(ps)
    mx, my = sum(lx) / n, sum(ly) / n
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    mpx, mpy = sum(ps) / n, sum(ys) / n
    c = sum((a - mpx) * (b - mpy) for a, b in zip(ps, ys)) / sum((a - mpx) ** 2 for a in ps)
    a0 = mpy - c * mpx
    ss_res = sum((y - (a0 + c * x)) ** 2 for x, y in zip(ps, ys))
    ss_tot = sum((y - mpy) ** 2 for y in ys)
    top = math.log(ys[-1] / ys[-2]) / math.log(ps[-1] / ps[-2])
    return {
        "loglog_slope": slope,
        "loglog_slope_top_two": top,
        "linear_intercept_bytes": a0,
        "linear_bytes_per_p": c,
        "linear_r2": 1 - ss_res / ss_tot if ss_tot else 1.0,
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for v, style in (("library", "s-"), ("reference", "o-")):
        rows = [r for r in result["rows"] if v in r and "peak_increase_bytes" in r[v]]
        if rows:
            ax.plot(
                [r["p"] for r in rows],
                [r[v]["peak_increase_bytes"] / 2**20 for r in rows],
                style,
                label=f"{v}: infmasking_loss" if v == "library" else f"{v}: explicit Σ [B, p, p]",
            )
    ps = [r["p"] for r in result["rows"]]
    ax.plot(ps, [r["cov_bytes"] / 2**20 for r in result["rows"]], "k:", label="one Σ: B·p²·4 bytes")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("p (projection dim)")
    ax.set_ylabel("peak RSS increase, forward + backward (MiB)")
    ax.set_title(f"InfMasking loss memory, B={result['B']}, T={result['T']}, M={result['M']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: dict) -> str:
    title = (
        f"# Loss memory — InfMasking loss forward + backward, B={result['B']}, "
        f"T={result['T']}, M={result['M']}"
    )
    about = (
        f"torch {result['torch']}, {result['threads']} threads; "
        "load average (1 min) at start / end "
        f"{result['loadavg_at_start'][0]:.2f} / {result['loadavg_at_end'][0]:.2f} "
        "(shared machine); times are one forward + backward, for orientation only."
    )
    lines = [
        title,
        "",
        f"Command: `{result['command']}`",
        "",
        f"Memory: {result['memory_method']}",
        "",
        about,
        "",
        (
            "| p | library peak (MiB) | library time (s) | reference peak (MiB) | "
            "reference time (s) | one Σ B·p²·4 (MiB) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lib, ref = r["library"], r.get("reference", {})
        ref_mem = (
            f"{ref['peak_increase_bytes'] / 2**20:,.0f}"
            if "peak_increase_bytes" in ref
            else ref.get("skipped") or ref.get("error", "—")
        )
        ref_t = f"{ref['seconds']:.2f}" if "seconds" in ref else "—"
        lines.append(
            f"| {r['p']} | {lib['peak_increase_bytes'] / 2**20:,.1f} | {lib['seconds']:.3f} | "
            f"{ref_mem} | {ref_t} | {r['cov_bytes'] / 2**20:,.0f} |"
        )
    lines.append("")
    for v, f in result["fits"].items():
        lines.append(
            f"- {v}: log-log slope of peak vs p = {f['loglog_slope']:.2f} over all p, "
            f"**{f['loglog_slope_top_two']:.2f}** between the two largest; linear fit "
            f"{f['linear_intercept_bytes'] / 2**20:.1f} MiB + "
            f"{f['linear_bytes_per_p'] / 1024:.1f} KiB·p "
            f"(R² = {f['linear_r2']:.4f})"
        )
    if "answer" in result:
        lines += ["", result["answer"]]
    return "\n".join(lines)


def summarize(result: dict) -> None:
    """Growth fits and the one-line answer, from ``result["rows"]`` (in place)."""
    b, t = result["B"], result["T"]
    result["fits"] = {}
    for v in ("library", "reference"):
        pts = [
            (r["p"], r[v]["peak_increase_bytes"])
            for r in result["rows"]
            if "peak_increase_bytes" in r.get(v, {})
        ]
        if len(pts) >= 2:
            result["fits"][v] = fit_growth([x for x, _ in pts], [y for _, y in pts])
    at = next((r for r in result["rows"] if r["p"] == 2048), None)
    if at is not None:
        lib = at["library"]["peak_increase_bytes"]
        ref = at["reference"].get("peak_increase_bytes")
        result["answer"] = (
            f"At B={b}, p=2048, T={t}: one forward + backward of infmasking_loss raised peak RSS "
            f"by {lib / 2**20:,.0f} MiB. A p×p covariance per sample alone, B·p²·4 bytes, is "
            f"{at['cov_bytes'] / 2**20:,.0f} MiB "
            f"({at['cov_bytes'] / lib:,.0f}× that)"
            + (
                f"; the explicit-Σ reference loss raised peak RSS by {ref / 2**20:,.0f} MiB "
                f"({ref / lib:,.0f}×)."
                if ref
                else "."
            )
        )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description="Peak memory of the InfMasking loss vs p (fresh subprocesses)."
    )
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--num-masks", type=int, default=6)
    ap.add_argument("--modalities", type=int, default=2)
    ap.add_argument("--p", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument(
        "--max-cov-gb", type=float, default=8.0, help="skip the reference where B·p²·4 exceeds this"
    )
    ap.add_argument(
        "--threads", type=int, help="torch threads in the subprocesses (default: torch's)"
    )
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "loss_memory.json")
    ap.add_argument(
        "--render", type=Path, help="recompute fits and rewrite the Markdown / PNG of a result JSON"
    )
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.render:
        result = json.loads(args.render.read_text())
        summarize(result)
        args.render.write_text(json.dumps(result, indent=1))
        args.render.with_suffix(".md").write_text(markdown(result))
        plot(result, args.render.with_suffix(".png"))
        return result
    if args._child:
        print(json.dumps(_child(json.loads(args._child))))
        return {}
    b, t, m = args.batch, args.num_masks, args.modalities
    cmd = " ".join(
        ["python", "benchmarks/costs/loss_memory.py"]
        + [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]
    )
    result = {
        "command": cmd,
        "B": b,
        "T": t,
        "M": m,
        "torch": torch.__version__,
        "threads": args.threads or torch.get_num_threads(),
        "loadavg_at_start": list(os.getloadavg()),
        "matmul_gflops_fp32": matmul_gflops(),
        "memory_method": LOSS_MEMORY_METHOD,
        "rows": [],
    }
    for p in args.p:
        cov = b * p * p * 4
        row = {"p": p, "cov_bytes": cov, "library": measure("library", b, p, t, m, args.threads)}
        print(f"p={p}: library {row['library']}", flush=True)
        if cov > args.max_cov_gb * 1e9:
            row["reference"] = {
                "skipped": f"skipped: one Σ needs {cov / 1e9:.1f} GB (> {args.max_cov_gb} GB)"
            }
        elif 3.2 * cov > 0.85 * _mem_available():  # measured: peak ≈ 3 Σ-sized buffers
            row["reference"] = {
                "skipped": (
                    f"skipped: ~3 Σ-sized buffers ({3.2 * cov / 1e9:.1f} GB) exceed free memory"
                )
            }
        else:
            row["reference"] = measure("reference", b, p, t, m, args.threads)
        print(
            f"p={p}: reference {row['reference']}  "
            f"(one Σ = B·p²·4 = {cov:,} bytes = {cov / 1e9:.2f} GB)",
            flush=True,
        )
        result["rows"].append(row)
    result["loadavg_at_end"] = list(os.getloadavg())
    summarize(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result))
    plot(result, args.out.with_suffix(".png"))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
