"""The reports of benchmarks/costs/step_time.py: the Markdown beside each result JSON, the scaling
plot, and the summary table over all presets with the targets read off it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from timing import masking_overhead

LABELS = {
    "reference": "(a) reference structure",
    "library": "(b) library, collapsed mask tokens, shared first-block K/V",
    "library_noshare": "(b'') library, shared first-block K/V off",
    "library_full": "(b') library, collapse, CLS-only last block and shared K/V off",
    "comm": "(c) CoMM (no masking), shared first-block K/V",
    "comm_noshare": "(c') CoMM, shared first-block K/V off",
}


# =========================================================================== reports


def _mb(x) -> str:
    return "—" if x is None else f"{x / 2**20:,.0f}"


def setting_markdown(r: dict[str, Any]) -> str:
    s = r["setting"]
    title = (
        f"### {s['name']} — B={s['batch']}, T={s['num_masks']}, d={s['dim']}, p={s['proj_dim']}, "
        f"{len(s['modalities'])} modalities"
    )
    lines = [title, "", s["description"] + ".", ""]
    lines += [f"- note: {n}" for n in s.get("notes", [])]
    hdr = "| variant | median step (s) | IQR (s) | × (b) | GFLOP/step | peak RSS increase (MiB) |"
    lines += ["", hdr, "|---|---|---|---|---|---|"]
    med_b = r["stats"]["library"]["median"]
    for v in r["stats"]:
        st = r["stats"][v]
        gf = r.get("gflop_per_step", {}).get(v)
        mem = r.get("memory", {}).get(v, {})
        lines.append(
            f"| {LABELS[v]} | {st['median']:.3f} | {st['q1']:.3f}–{st['q3']:.3f} | "
            f"{st['median'] / med_b:.2f} | {'—' if gf is None else f'{gf:.1f}'} | "
            f"{_mb(mem.get('peak_increase_bytes')) if 'error' not in mem else mem['error']} |"
        )
    lines.append("")
    for k, v in r["ratios"].items():
        lines.append(
            f"- {k}: {v['of_medians']:.2f} (ratio of medians), "
            f"{v['median_paired']:.2f} (median of per-round ratios)"
        )
    mo = r.get("masking_overhead") or masking_overhead(r["stats"])
    if "reference_over_library" in mo:
        lines.append(
            f"- masking overhead over CoMM: reference +{mo['reference_minus_comm_s']:.3f} s, "
            f"library +{mo['library_minus_comm_s']:.3f} s, "
            f"savings off +{mo.get('library_full_minus_comm_s', math.nan):.3f} s "
            f"per step: the reference adds **{mo['reference_over_library']:.1f}×** "
            "what the library adds"
        )
    gf = r.get("gflop_per_step")
    if gf and "gflops" in r:
        floor = {v: g / r["gflops"] for v, g in gf.items()}
        lines.append(
            "- the counted FLOPs at the matmul rate of this run would take: "
            + ", ".join(
                f"{v} {floor[v]:.3f} s (measured {r['stats'][v]['median'] / floor[v]:.2f}× that)"
                for v in floor
            )
            + " — below 1× where convolutions run faster than the 2048² matmul probe"
        )
    rows = r.get("gflop_masked_rows")
    if gf and rows and "library" in gf and "comm" in gf:
        extra = gf["library"] - gf["comm"]
        parts = ", ".join(
            f"{k.replace('_', ' ')} {g:.2f} GFLOP ({100 * g / extra:.0f} %)"
            for k, g in rows.items()
        )
        lines.append(
            f"- what InfMasking adds to CoMM, (b) − (c) = {extra:.2f} GFLOP per step: {parts}; "
            "the rest is the masked passes' attention and the masked term of the loss"
        )
    return "\n".join(lines)


def write_report(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    about = (
        f"torch {result['torch']}, {result['torch_threads']} threads, {result['cpu_count']} CPUs. "
        "float32 matmul throughput measured in this run: "
        f"**{result['matmul_gflops_fp32']:.0f} GFLOP/s** at "
        f"the start, {result.get('matmul_gflops_fp32_end', float('nan')):.0f} GFLOP/s at the end. "
        f"Load average (1 min) at start / end: {result['loadavg_at_start'][0]:.2f} / "
        f"{result.get('loadavg_at_end', [float('nan')])[0]:.2f} (shared machine: other jobs ran "
        f"concurrently). Run time {result.get('elapsed_s', float('nan')) / 60:.1f} min."
    )
    names = ", ".join(r["setting"]["name"] for r in result.get("settings", []))
    md = [
        f"# Step time — {names}" if names else "# Scaling sweep",
        "",
        f"Command: `{result['command']}`",
        "",
        about,
        "",
        f"Memory: {result['memory_method']}",
        "",
    ]
    for r in result.get("settings", []):
        md += [setting_markdown(r), ""]
    if "profile" in result:
        md += [profile_markdown(result["profile"]), ""]
    if "sweep" in result:
        md += [sweep_markdown(result["sweep"]), ""]
    out.with_suffix(".md").write_text("\n".join(md))


def profile_markdown(p: dict[str, Any]) -> str:
    lines = [
        f"### What is left — library step, {p['setting']} (B={p['batch']})",
        "",
        "| component (forward + backward, one view; a step has two) | s |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4f} |" for k, v in p["components_per_view_fwd_bwd_s"].items()]
    lines += ["", "| per step | s |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in p["components_per_step_s"].items()]
    cat_title = (
        "Operator categories over whole library steps (torch.profiler self CPU time, "
        f"total {p['profiler_total_self_cpu_s_per_step']:.3f} s/step):"
    )
    lines += ["", cat_title, "", "| category | s/step | share |", "|---|---|---|"]
    tot = p["profiler_total_self_cpu_s_per_step"]
    lines += [
        f"| {k} | {v:.3f} | {100 * v / tot:.0f} % |"
        for k, v in p["profiler_categories_s_per_step"].items()
    ]
    lines += [
        "",
        "Top operators: "
        + ", ".join(f"`{e['op']}` {e['self_s_per_step']:.3f} s" for e in p["profiler_top_ops"][:8]),
    ]
    aug = p["augmentation"]
    lines += ["", f"Augmentation (src/infmasking/data/augment.py): {aug.get('status')}"]
    for k in ("simclr", "crop_flip", "sequence_drop_noise"):
        if k in aug:
            a = aug[k]
            lines.append(
                f"- {a.get('what', k)}: "
                + (
                    f"{a['per_call_s'] * 1e3:.1f} ms per call, "
                    f"{a['per_step_s'] * 1e3:.1f} ms per step "
                    f"({a['calls_per_step']} calls: 2 views × modalities)"
                    if "per_call_s" in a
                    else a["status"]
                )
            )
    one = p.get("augmentation_1_thread", {})
    for k in ("simclr", "crop_flip", "sequence_drop_noise"):
        if "per_call_s" in one.get(k, {}):
            lines.append(
                f"- with 1 thread, {one[k]['what']}: {one[k]['per_call_s'] * 1e3:.1f} ms per call"
            )
    dl = p["data_loading"]
    if dl.get("status") == "ok":
        lines.append(f"\nData loading: {dl['what']}: {dl['per_batch_s'] * 1e3:.2f} ms per batch.")
    return "\n".join(lines)


def sweep_markdown(sw: dict[str, Any]) -> str:
    b = sw["base"]
    lines = [
        f"### Scaling sweep — {b['name']} (B={b['batch']}, T={b['num_masks']}, "
        f"p={b['proj_dim']} unless varied)",
        "",
    ]
    for axis, rows in sw["axes"].items():
        lines += [
            f"**{axis}**",
            "",
            "| value | (a) step s | (b) step s | (a)/(b) | (a) peak MiB | (b) peak MiB |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            st = r["stats"]
            a = st.get("reference", {}).get("median")
            bb = st["library"]["median"]
            mem = r.get("memory", {})
            ma = mem.get("reference", {}).get("peak_increase_bytes")
            mb = mem.get("library", {}).get("peak_increase_bytes")
            a_txt = f"{a:.3f}" if a else f"skipped ({r['reference_cov_bytes'] / 1e9:.1f} GB Σ)"
            lines.append(
                f"| {r['value']} | {a_txt} | {bb:.3f} | {f'{a / bb:.2f}' if a else '—'} | "
                f"{_mb(ma)} | {_mb(mb)} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot_sweep(sweep: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = {
        "num_masks": "T (masked views)",
        "batch": "B (batch size)",
        "proj_dim": "p (projection dim)",
    }
    fig, axs = plt.subplots(2, 3, figsize=(14, 8))
    for j, (axis, rows) in enumerate(sweep["axes"].items()):
        for v, style in (("reference", "o-"), ("library", "s-")):
            xs = [r["value"] for r in rows if v in r["stats"]]
            ts = [r["stats"][v]["median"] for r in rows if v in r["stats"]]
            axs[0, j].plot(xs, ts, style, label=LABELS[v])
            if any("memory" in r for r in rows):
                ms = [
                    (r["value"], r["memory"][v].get("peak_increase_bytes"))
                    for r in rows
                    if v in r.get("memory", {})
                ]
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
    fig.suptitle(
        f"Scaling of a training step — {b['name']} setting (B={b['batch']}, T={b['num_masks']}, "
        f"p={b['proj_dim']} unless varied); dotted: reference skipped (Σ too large)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# =========================================================================== summary

TARGETS = {  # preset -> [(ratio, threshold, at most?, target text)]
    "cpu64": [
        ("reference/library", 2.3, False, "two modalities, T = 6: (a)/(b) ≥ 2.3"),
        ("library/comm", 2.0, True, "InfMasking ≤ 2× CoMM at the CPU Trifeatures setting"),
        ("library/comm", 1.1, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.1"),
    ],
    "trifeatures224": [("reference/library", 2.3, False, "two modalities, T = 6: (a)/(b) ≥ 2.3")],
    "tokens": [
        ("reference/library", 2.3, False, "two modalities, T = 6: (a)/(b) ≥ 2.3"),
        ("library/comm", 1.3, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.3"),
    ],
    "three": [("reference/library", 3.0, False, "three modalities: (a)/(b) ≥ 3")],
    "tokens3": [
        ("reference/library", 3.0, False, "three modalities: (a)/(b) ≥ 3"),
        ("library/comm", 1.3, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.3"),
    ],
    "mosi": [("library/comm", 1.15, True, "shared first-block K/V: InfMasking / CoMM ≤ 1.15")],
}
SUMMARY_COLUMNS = (
    "reference",
    "library",
    "library_noshare",
    "library_full",
    "comm",
    "comm_noshare",
)
SUMMARY_RATIOS = (
    ("reference/library", True),
    ("library_full/library", False),
    ("library_noshare/library", False),
    ("library/comm", True),
    ("library_noshare/comm_noshare", False),
    ("reference/comm", False),
)


def summary_markdown(results: list[dict[str, Any]]) -> str:
    """One table over committed step-time results (their JSON), and the targets read off it.
    Results measured before a variant existed show "—" for it."""
    rows, checks = [], []
    for res in results:
        for r in res.get("settings", []):
            name, st, ra = r["setting"]["name"], r["stats"], r["ratios"]
            mem = " / ".join(
                _mb(r["memory"][v]["peak_increase_bytes"]) if r.get("memory", {}).get(v) else "—"
                for v in SUMMARY_COLUMNS
            )
            cells = [f"{st[v]['median']:.3f}" if v in st else "—" for v in SUMMARY_COLUMNS]
            for key, bold in SUMMARY_RATIOS:
                v = ra.get(key, {}).get("median_paired")
                cells.append("—" if v is None else f"**{v:.2f}**" if bold else f"{v:.2f}")
            rows.append(
                f"| `{name}` | {r['setting']['batch']} | " + " | ".join(cells) + f" | {mem}"
                f" | {res['loadavg_at_start'][0]:.1f}–{res['loadavg_at_end'][0]:.1f} |"
            )
            for key, thr, at_most, text in TARGETS.get(name, []):
                v = ra.get(key, {}).get("median_paired")
                if v is None or (text.startswith("shared") and "library_noshare" not in st):
                    continue  # a result measured before the saving existed
                met = v <= thr if at_most else v >= thr
                checks.append(f"| {text} | `{name}` | {v:.2f} | {'**yes**' if met else '**no**'} |")
    cmds = sorted({res["command"] for res in results})
    lines = (
        [
            "# Step time — all presets",
            "",
            "Written by `python benchmarks/costs/step_time.py "
            "--summary benchmarks/results/step_time_*.json` from the "
            "committed results, which were measured by:",
            "",
        ]
        + [f"- `{c}`" for c in cmds]
        + [
            "",
            "Medians of interleaved full training steps in seconds; "
            "ratios are medians of the per-round ratios.",
            "(a) reference structure; (b) library; "
            "(b'') library without the shared first-block keys/values; "
            "(b') library with all its exact fusion savings off; (c) CoMM; "
            "(c') CoMM without the shared keys/values. "
            "— : measured before that variant existed.",
            "",
            "| preset | B | (a) | (b) | (b'') | (b') | (c) | (c') | **(a)/(b)** | (b')/(b) "
            "| (b'')/(b) | **(b)/(c)** | (b'')/(c') | (a)/(c) "
            "| peak RSS increase MiB (a / b / b'' / b' / c / c') | load 1-min (start–end) |",
            "|---" * 16 + "|",
            *rows,
            "",
            "| target | preset | measured | met? |",
            "|---|---|---|---|",
            *checks,
        ]
    )
    return "\n".join(lines) + "\n"
