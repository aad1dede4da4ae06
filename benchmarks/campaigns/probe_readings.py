"""Both probe readings and the feature geometry of kept checkpoints (issue 34, docs/PROBES.md).

For each run folder (or checkpoint) given: the probe features of its probe splits as its
probes read them (``eval.probe_augment`` crops, the same seeds), computed in float32 and, with
``--autocast bf16``, under bfloat16 autocast too; then the published probe and the robust
reading (``--robust``) of every task, the diagnostics of each (chosen C, constant classifier)
and the features' ‖mean‖ / mean per-dimension std. ``--random_init`` adds the randomly
initialised network of each run's config and seed (the floor). ``--max_train`` / ``--max_test``
read seeded subsets of the probe splits (the protocol: 10 000 and all; less on a busy CPU).
Writes ``probe_readings.{md,json}`` in ``--out``.

    python benchmarks/campaigns/probe_readings.py runs/trifeatures224_cpu/comm/seed42 \\
        --max_train 2000 --max_test 1000 --autocast none bf16 --random_init \\
        --out benchmarks/results/probe_readings
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from infmasking.evaluation.probe import probe_all
from infmasking.evaluation.tables import write_markdown_table
from infmasking.training.checkpoint import load_module
from infmasking.training.loading import load_data
from infmasking.training.module import SSLModule
from infmasking.training.probing import extract_features, probe_splits


def _autocast(kind: str):
    if kind == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def read(module, cfg, data, autocast: str, robust: str, threads: int) -> dict:
    """Both readings of ``module``'s probe features (features computed under ``autocast``)."""
    train, test = probe_splits(data, cfg, cfg.seed)
    start = time.perf_counter()
    with _autocast(autocast):
        xtr = extract_features(module, train, cfg.eval.batch_size, seed=2 * cfg.seed)
        xte = extract_features(module, test, cfg.eval.batch_size, seed=2 * cfg.seed + 1)
    seconds = time.perf_counter() - start
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        res = probe_all(
            data.tasks,
            xtr,
            {t: y.numpy() for t, y in train.targets.items()},
            xte,
            {t: y.numpy() for t, y in test.targets.items()},
            probe="published",
            seed=cfg.seed,
            robust=robust,
            verbose=True,
        )
    return {
        "n_train": len(xtr),
        "n_test": len(xte),
        "feature_seconds": round(seconds, 1),
        "results": {t: r.to_dict() for t, r in res.items()},
    }


def row(label: str, steps, autocast: str, reading: dict) -> dict:
    out = {"model": label, "steps": steps, "features": autocast}
    first = next(iter(reading["results"].values()))
    out["‖mean‖/std"] = f"{first['diagnostics']['offset_ratio']:.0f}"
    for t, r in reading["results"].items():
        m, rob = r["metrics"], r.get("robust") or {}
        constant = " (const)" if r["diagnostics"].get("constant_classifier") else ""
        text = f"{100 * m['balanced_accuracy']:.1f}{constant}"
        if m.get("auroc") is not None:
            text += f" / {100 * m['auroc']:.1f}"
        if rob:
            rm = rob["metrics"]
            text += f" ‖ {100 * rm['balanced_accuracy']:.1f}"
            if rm.get("auroc") is not None:
                text += f" / {100 * rm['auroc']:.1f}"
        out[t] = text
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("runs", nargs="+", type=Path, help="run folders or checkpoint files")
    p.add_argument("--max_train", type=int, default=None, help="probe-train subset size")
    p.add_argument("--max_test", type=int, default=None, help="probe-test subset size")
    p.add_argument("--autocast", nargs="+", default=["none"], choices=["none", "bf16"])
    p.add_argument("--robust", default="centred", choices=["centred", "standardised"])
    p.add_argument("--random_init", action="store_true", help="also the untrained network")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_readings"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, readings = [], []
    for run in args.runs:
        module, cfg, ckpt = load_module(run)
        ev = dataclasses.replace(cfg.eval)
        if args.max_train is not None:
            ev.probe_max_train = args.max_train
        if args.max_test is not None:
            ev.probe_max_test = args.max_test
        cfg = dataclasses.replace(cfg, eval=ev)
        data = load_data(cfg)
        steps = torch.load(ckpt, map_location="cpu", weights_only=True).get("global_step")
        models = [(f"{cfg.method.name} seed {cfg.seed}", steps, module)]
        if args.random_init:
            torch.manual_seed(cfg.seed)
            init = SSLModule(
                cfg,
                data.modalities,
                data.kinds,
                {m: list(data.input_shape(m)) for m in data.modalities},
            )
            models.append((f"{cfg.method.name} seed {cfg.seed}, random init", 0, init.eval()))
        for label, n_steps, model in models:
            for autocast in args.autocast:
                print(f"== {label}, step {n_steps}, features {autocast}", flush=True)
                reading = read(model, cfg, data, autocast, args.robust, args.threads)
                readings.append(
                    {"run": str(run), "model": label, "steps": n_steps, "features": autocast}
                    | reading
                )
                rows.append(row(label, n_steps, autocast, reading))
    args.out.mkdir(parents=True, exist_ok=True)
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/campaigns/probe_readings.py " + shlex.join(map(str, given))
    tasks = [k for k in rows[0] if k not in ("model", "steps", "features", "‖mean‖/std")]
    n = readings[0]
    md = [
        "# Both probe readings of kept checkpoints",
        "",
        f"Command: `{command}`. Per task: the published probe's balanced accuracy (`(const)`: "
        "a constant classifier) / AUROC, then after ‖ the robust reading "
        f"(`{args.robust}`, float64) — %, on {n['n_train']} probe-train / {n['n_test']} "
        "probe-test samples. `features`: computed in float32 (`none`) or under bfloat16 "
        "autocast (`bf16`). ‖mean‖/std: the probe-train features' ‖mean‖ over their mean "
        "per-dimension std (the collapse regime of the float32 published probe starts near "
        "1 000, docs/PROBES.md).",
        "",
        write_markdown_table(rows, ["model", "steps", "features", "‖mean‖/std", *tasks]),
    ]
    (args.out / "probe_readings.md").write_text("\n".join(md) + "\n")
    (args.out / "probe_readings.json").write_text(
        json.dumps({"command": command, "readings": readings}, indent=1)
    )
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
