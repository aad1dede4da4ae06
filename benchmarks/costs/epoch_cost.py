"""One-epoch cost of every benchmark preset on this CPU.

For each benchmark a synthetic file of realistic size is written in the real on-disk format
(infmasking/testing/data_writers.py: MultiBench pickles, Vision&Touch episode .h5 files,
MultiBench's MM-IMDb hdf5, an own .npz), then ONE epoch is trained with the real preset
through the CLI:

    infmasking train --preset NAME --data.path FILE --optim.epochs 1 ...

in a fresh subprocess. Reported per benchmark: the training samples and steps measured, the
data-loading time (timed separately in this process with the same loader), the seconds of the
epoch as the run reports them (``train_seconds`` of report.json: loading + model build + the
epoch's steps + the epoch-end checkpoint; the probe afterwards is not included) and seconds per
step. Where a real-size epoch would take more than ~5 minutes here (MIMIC, V&T, MM-IMDb), a
fraction of the real size is written and the epoch is extrapolated as
``load × N_real / N + s/step × steps_real``; the table says so.

Every run passes ``--eval.probe_max_train 1000`` (the probe after training only; it does not
change the epoch) and ``--trainer.num_threads`` (default 1: on a shared 2-core machine one
thread per process is faster than two, see the load average printed with each row).

Usage:
    python benchmarks/costs/epoch_cost.py --out benchmarks/results/epoch_cost.md
    python benchmarks/costs/epoch_cost.py --only mosi mimic --threads 2
    python benchmarks/costs/epoch_cost.py --scale 0.05        # smoke run on 5 % of every size
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
from infmasking.data.registry import load_dataset
from infmasking.testing import data_writers as W
from infmasking.training.folder import RunFolder


def _affect(n: tuple[int, int, int], dims: tuple[int, int, int]) -> Callable[[Path, float], Path]:
    """A MultiBench affect pickle with splits of sizes ``n`` and real lengths 1..50 steps."""

    def write(folder: Path, scale: float) -> Path:
        rng = np.random.default_rng(0)
        data = {}
        for split, size in zip(("train", "valid", "test"), n):
            data[split], _ = W.affect_split(
                rng, max(40, int(size * scale)), dims, max_len=W.AFFECT_STEPS
            )
        path = folder / "affect.pkl"
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=4)
        return path

    return write


def _mimic(n: int) -> Callable[[Path, float], Path]:
    def write(folder: Path, scale: float) -> Path:
        path = folder / "im.pk"
        W.write_mimic_pickle(path, n=max(160, int(n * scale)))
        return path

    return write


def _vision_touch(episodes: int, steps: int = 50, size: int = 128) -> Callable[[Path, float], Path]:
    def write(folder: Path, scale: float) -> Path:
        path = folder / "vt"
        W.write_vt_episodes(path, episodes=max(10, int(episodes * scale)), steps=steps, size=size)
        return path

    return write


def _mmimdb(rows: int = 25959) -> Callable[[Path, float], Path]:
    def write(folder: Path, scale: float) -> Path:
        path = folder / "multimodal_imdb.hdf5"
        W.write_mmimdb_hdf5(path, bounds=_mmimdb_bounds(scale, rows), d_text=300, d_image=4096)
        return path

    return write


def _mmimdb_bounds(scale: float, rows: int = 25959) -> tuple[int, int, int]:
    """MultiBench's split at full size; the same proportions in a smoke run."""
    if scale == 1.0:
        return (15552, 18160, 25959)
    n = max(80, int(rows * scale))
    return (int(n * 0.6), int(n * 0.7), n)


def _npz(n: int) -> Callable[[Path, float], Path]:
    def write(folder: Path, scale: float) -> Path:
        path = folder / "own.npz"
        W.write_npz(path, n=max(80, int(n * scale)))
        return path

    return write


@dataclass
class Bench:
    name: str
    preset: str
    dataset: str
    write: Callable[[Path, float], Path]
    files: str
    real_train: int | None = None
    """Training samples of the real dataset, when the written file is smaller (extrapolation)."""
    fraction: float = 1.0
    """Write this fraction of the real size (epochs longer than ~5 min here are extrapolated)."""
    extra: list[str] = field(default_factory=list)
    modalities: list[str] | None = None


V_T_REAL_TRAIN = 117_000  # CoMM's V&T split: about 117k training samples (29k test)
BENCHES = [
    Bench(
        "mosi",
        "mosi",
        "mosi",
        _affect((1284, 229, 686), (20, 5, 300)),
        "MOSI pickle: 1284 / 229 / 686 samples, 50 steps, dims 20 / 5 / 300",
        modalities=["vision", "text"],
    ),
    Bench(
        "ur_funny",
        "ur_funny",
        "ur_funny",
        _affect((7614, 980, 994), (371, 81, 300)),
        "UR-FUNNY pickle: 7614 / 980 / 994, 50 steps, dims 371 / 81 / 300",
        modalities=["vision", "text"],
    ),
    Bench(
        "ur_funny3",
        "ur_funny3",
        "ur_funny",
        _affect((7614, 980, 994), (371, 81, 300)),
        "as ur_funny, vision + audio + text",
        modalities=["vision", "audio", "text"],
    ),
    Bench(
        "mustard",
        "mustard",
        "mustard",
        _affect((414, 138, 138), (371, 81, 300)),
        "MUStARD pickle: 414 / 138 / 138, 50 steps, dims 371 / 81 / 300",
        modalities=["vision", "text"],
    ),
    Bench(
        "mimic",
        "mimic",
        "mimic",
        _mimic(36212),
        "MIMIC im.pk: 20 % of the 36 212 patients (80 / 10 / 10 split)",
        real_train=36212 - 2 * 3621,
        fraction=0.2,
    ),
    Bench(
        "vision_touch_ee",
        "vision_touch_ee",
        "vision_touch",
        _vision_touch(30),
        "30 episodes × 50 steps, 128 px (real: ~117 000 train samples)",
        real_train=V_T_REAL_TRAIN,
        modalities=["image", "force"],
    ),
    Bench(
        "vision_touch_contact",
        "vision_touch_contact",
        "vision_touch",
        _vision_touch(30),
        "30 episodes × 50 steps, 128 px",
        real_train=V_T_REAL_TRAIN,
        modalities=["image", "proprio"],
    ),
    Bench(
        "vision_touch_contact3",
        "vision_touch_contact3",
        "vision_touch",
        _vision_touch(30),
        "30 episodes × 50 steps, 128 px",
        real_train=V_T_REAL_TRAIN,
    ),
    Bench(
        "mmimdb",
        "mmimdb",
        "mmimdb",
        _mmimdb(),
        "multimodal_imdb.hdf5 (text 300-d, VGG 4096-d), 20 % of its 25 959 rows",
        real_train=15552,
        fraction=0.2,
    ),
    Bench(
        "npz",
        "npz",
        "npz",
        _npz(10_000),
        "own .npz: 10 000 samples of data_writers.write_npz "
        "(vector 5, sequence 7 × 3, image 3 × 8 × 8)",
    ),
]


def _load_seconds(bench: Bench, path: Path, options: dict) -> float:
    t = time.perf_counter()
    load_dataset(bench.dataset, str(path), modalities=bench.modalities, options=options)
    return time.perf_counter() - t


def measure(bench: Bench, work: Path, scale: float, threads: int) -> dict:
    folder = work / bench.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    size = scale * bench.fraction
    t = time.perf_counter()
    path = bench.write(folder, size)
    write_seconds = time.perf_counter() - t
    options = (
        {"bounds": list(_mmimdb_bounds(size))} if bench.name == "mmimdb" and size != 1.0 else {}
    )
    load = _load_seconds(bench, path, options)  # also warms the page cache for the run
    out = folder / "run"
    args = [
        "train",
        "--preset",
        bench.preset,
        "--data.path",
        str(path),
        "--optim.epochs",
        "1",
        "--trainer.progress_bar",
        "false",
        "--trainer.num_threads",
        str(threads),
        "--eval.probe_max_train",
        "1000",
        "--out_dir",
        str(out),
        *bench.extra,
    ]
    if scale < 1.0:  # smoke run: small splits
        args += ["--optim.batch_size", "16"]
    if options:
        args += ["--data.options", json.dumps(options)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    load_avg = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "infmasking.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{bench.name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    report = RunFolder(out).report()
    train = float(report.train_seconds)
    steps = int(report.steps)
    batch = int(report.setting("optim.batch_size"))
    n_train = steps * batch  # drop_last: samples seen
    per_step = max(train - load, 0.0) / steps
    row = {
        "name": bench.name,
        "files": bench.files,
        "steps": steps,
        "samples": n_train,
        "load_s": load,
        "train_seconds": train,
        "s_per_step": per_step,
        "wall_s": wall,
        "write_s": write_seconds,
        "load_avg_1min": load_avg,
        "threads": threads,
        "scale": scale,
        "command": "infmasking "
        + shlex.join(a if a != str(path) else "FILE" for a in args).replace(
            str(out), "runs/epoch_cost"
        ),
    }
    if bench.real_train and bench.real_train > n_train:
        real_steps = bench.real_train // batch
        row.update(
            extrapolated=True,
            real_train=bench.real_train,
            real_steps=real_steps,
            epoch_s=load * bench.real_train / n_train + per_step * real_steps,
        )
    else:
        row.update(extrapolated=False, epoch_s=train)
    shutil.rmtree(folder, ignore_errors=True)
    return row


def _fmt_time(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def markdown(rows: list[dict]) -> str:
    lines = [
        "# One-epoch cost on this CPU",
        "",
        (
            "Produced by `python benchmarks/costs/epoch_cost.py "
            "--out benchmarks/results/epoch_cost.md` "
            "(rows re-measured with `--only NAME ...` replace their earlier rows; "
            "each row's time of measurement is in the .json)."
        ),
        "",
        (
            f"torch {torch.__version__}, {os.cpu_count()} CPUs "
            f"({platform.processor() or platform.machine()}), "
            f"one training process at a time, {rows[0]['threads'] if rows else 1} "
            "torch thread(s); the machine was shared with other jobs (1-minute load average at the "
            "start of each run in the last column)."
        ),
        "",
        (
            "Synthetic data of realistic size in the real file formats "
            "(infmasking/testing/data_writers.py), the real preset, `--optim.epochs 1`. "
            "*epoch* = `train_seconds` of the run's "
            "report.json (data loading + model build + all steps + the epoch-end checkpoint, "
            "no probe). *load* = the loader alone. *s/step* = (epoch − load) / steps. "
            "Rows marked † trained a fraction of the real dataset and extrapolate the epoch to the "
            "real size: load × N_real / N + s/step × steps_real."
        ),
        "",
        (
            "| benchmark | data written | train samples × 1 epoch | steps (batch 64) | "
            "load (s) | s/step | epoch | load avg |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["extrapolated"]:
            samples = f"{r['samples']} measured → {r['real_train']:,} real".replace(",", " ")
            steps = f"{r['steps']} → {r['real_steps']}"
            epoch = (
                f"{_fmt_time(r['epoch_s'])} † "
                f"(measured {r['train_seconds']:.0f} s for {r['steps']} steps)"
            )
        else:
            samples, steps, epoch = f"{r['samples']}", f"{r['steps']}", _fmt_time(r["epoch_s"])
        lines.append(
            f"| {r['name']} | {r['files']} | {samples} | {steps} | {r['load_s']:.1f} | "
            f"{r['s_per_step']:.2f} | {epoch} | {r['load_avg_1min']:.1f} |"
        )
    lines += ["", "Commands (FILE = the written file or folder):", ""]
    lines += [f"- {r['name']}: `{r['command']}`" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every written size (smoke runs)"
    )
    parser.add_argument(
        "--work", type=str, default=None, help="folder for the written data (default: a tmp dir)"
    )
    parser.add_argument("--out", type=str, default=None, help="markdown file (a .json beside it)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite --out from its .json, no measuring"
    )
    args = parser.parse_args()
    if args.render:
        if not args.out:
            parser.error("--render needs --out")
        Path(args.out).write_text(
            markdown(json.loads(Path(args.out).with_suffix(".json").read_text()))
        )
        return
    names = [b.name for b in BENCHES]
    bad = sorted(set(args.only or []) - set(names))
    if bad:
        parser.error(f"unknown benchmarks {bad}; valid: {names}")
    work = Path(args.work or tempfile.mkdtemp(prefix="epoch_cost_"))
    kept: dict[str, dict] = {}
    if args.out and Path(args.out).with_suffix(".json").exists():  # rows of earlier runs stay
        kept = {r["name"]: r for r in json.loads(Path(args.out).with_suffix(".json").read_text())}
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        row = measure(bench, work, args.scale, args.threads)
        row["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
        kept[row["name"]] = row
        rows = [kept[n] for n in names if n in kept]
        print(
            f"{row['name']}: {row['steps']} steps, load {row['load_s']:.1f} s, "
            f"epoch {row['train_seconds']:.1f} s"
            f" ({row['s_per_step']:.2f} s/step), estimate {_fmt_time(row['epoch_s'])}"
            f"{' (extrapolated)' if row['extrapolated'] else ''}, "
            f"load avg {row['load_avg_1min']:.1f}",
            flush=True,
        )
        if args.out:  # written after every row: a long run keeps what it measured
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(markdown(rows))
            Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(markdown([kept[n] for n in names if n in kept]))


if __name__ == "__main__":
    main()
