"""A run: train with Lightning, probe the frozen features, write the run folder.

Run folder: ``config.yaml`` (resolved), ``metrics.csv`` (Lightning CSV logger),
``checkpoints/last.ckpt``, ``report.json``, ``report.md``, ``training_curves.png``,
``probe.png`` (and ``probe_curve.json`` / ``probe_curve.png`` with ``eval.probe_every``).
A run folder with a checkpoint but no report is resumed from ``last.ckpt``; one with a
report is finished and is not overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from infmasking.data.base import MultimodalData, Split, collate_batch
from infmasking.data.errors import unsafe_pickles
from infmasking.data.registry import load_dataset
from infmasking.data.trifeatures import CHANCE_TRIFEATURES, PUBLISHED_TRIFEATURES, RUS
from infmasking.evaluation import plots
from infmasking.evaluation.probe import probe_all
from infmasking.evaluation.selection import select_epoch
from infmasking.evaluation.tables import write_markdown_table
from infmasking.objectives import get as get_objective
from infmasking.training.config import (
    RunConfig,
    from_dict,
    load_config,
    save_config,
    to_dict,
    validate,
)
from infmasking.training.module import SSLModule

TRIFEATURES_DATA = ("trifeatures", "trifeatures_tokens")  # datasets with the Trifeatures tasks


class _NoTips(logging.Filter):
    """Drop Lightning's advertising tips ("💡 Tip: ..."); every other message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "💡" not in str(record.getMessage())


class _NoBanner(logging.Filter):
    """Drop Lightning's accelerator banner ("GPU available: ...", "TPU available: ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.getMessage())
        return not msg.startswith(("GPU available", "TPU available", "HPU available"))


for _filter in (_NoTips(), _NoBanner()):
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_filter)


class RunProgress(Callback):
    """One progress bar over the whole run (every step of every epoch, with an ETA and the
    loss), instead of Lightning's bar per epoch. A resumed run starts at its step."""

    def __init__(self) -> None:
        self.bar = None

    def on_train_start(self, trainer, module) -> None:
        if not trainer.is_global_zero:
            return
        from tqdm.auto import tqdm

        total = trainer.max_epochs * trainer.num_training_batches
        self.bar = tqdm(
            total=total, initial=trainer.global_step, desc="train", unit="step", dynamic_ncols=True
        )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.bar is None:
            return
        self.bar.update(trainer.global_step - self.bar.n)
        loss = trainer.callback_metrics.get("train/loss")
        post = {"epoch": f"{trainer.current_epoch + 1}/{trainer.max_epochs}"}
        if loss is not None:
            post["loss"] = f"{float(loss):.3f}"
        self.bar.set_postfix(post, refresh=False)

    def on_train_end(self, trainer, module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(self, trainer, module, exception) -> None:
        self.on_train_end(trainer, module)


@contextlib.contextmanager
def _quiet_lightning():
    """Inside a run only: the CSV logger's notice about a resumed folder (expected: we merge
    metrics.csv ourselves) and a torch deprecation raised inside Lightning."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*Experiment logs directory.*exists and is not empty.*"
        )
        warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
        yield


class RunError(RuntimeError):
    """A run cannot start as asked (finished run in the folder, config mismatch, bad checkpoint)."""


# ---------------------------------------------------------------------- data


def load_data(cfg: RunConfig) -> MultimodalData:
    d = cfg.data
    with unsafe_pickles(d.unsafe_pickle):
        return load_dataset(
            d.name,
            d.path,
            modalities=d.modalities,
            seed=d.seed,
            image_size=d.image_size,
            biased=d.biased,
            max_pairs=d.max_pairs,
            cache_dir=d.cache_dir,
            self_pairs=d.self_pairs,
            options=d.options,
        )


class EpochSampler(torch.utils.data.Sampler):
    """A permutation that is a pure function of (seed, epoch): a resumed run sees the same order.
    Lightning calls ``set_epoch`` (and wraps it for DDP). :meth:`resume_at` makes the next
    pass over ``epoch`` start ``k`` samples in (a run resumed mid-epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, k: int) -> None:
        self._resume = (epoch, k)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g).tolist()
        if self._resume is not None:
            epoch, k = self._resume
            self._resume = None
            if epoch == self.epoch:
                order = order[k:]
        return iter(order)


def mix_seed(seed: int, *parts: int) -> int:
    """One integer seed from a run seed and counters (epoch, step, rank, ...), distinct for
    distinct inputs in practice (a polynomial in a large prime, reduced to 63 bits)."""
    out = int(seed)
    for p in parts:
        out = (out * 100_003 + int(p)) % (2**63 - 1)
    return out


class ResumableLoader(torch.utils.data.DataLoader):
    """The training loader, stateful for Lightning: its state (epoch, batches done in it) goes
    into every checkpoint, and a run resumed mid-epoch continues with the next batch of the
    same permutation, as an uninterrupted run would (one process; under DDP Lightning wraps
    the sampler and a mid-epoch resume restarts the epoch's order)."""

    progress = None  # () -> (epoch, batches done): set once the trainer exists

    def state_dict(self) -> dict[str, int]:
        epoch, done = self.progress() if self.progress is not None else (0, 0)
        return {"epoch": int(epoch), "batches": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, EpochSampler):
            self.sampler.resume_at(state["epoch"], state["batches"] * self.batch_size)


def train_loader(split: Split, cfg: RunConfig) -> ResumableLoader:
    b = cfg.optim.batch_size  # checked before training: validate() and check_data()
    return ResumableLoader(
        split,
        batch_size=b,
        sampler=EpochSampler(len(split), cfg.seed),
        drop_last=True,
        collate_fn=collate_batch,
        num_workers=cfg.trainer.num_workers,
    )


# ---------------------------------------------------------------------- probing


@torch.no_grad()
def extract_features(
    module: SSLModule, split: Split, batch_size: int = 256, seed: int = 0
) -> np.ndarray:
    """The probe features of every sample of ``split`` in eval mode (:meth:`SSLModule.features`:
    [N, d] fused, or [N, M·d] concatenated unimodal). Probe-time image crops
    (``eval.probe_augment``) are drawn from a generator seeded with ``seed``."""
    was_training = module.training
    module.eval()
    out = []
    g = torch.Generator().manual_seed(seed)
    for start in range(0, len(split), batch_size):
        batch = split[torch.arange(start, min(start + batch_size, len(split)))].to(module.device)
        out.append(module.features(batch, g).float().cpu())
    module.train(was_training)
    return torch.cat(out).numpy()


def probe_train_subset(split: Split, max_train: int, seed: int) -> Split:
    """At most ``max_train`` samples of probe-train, a subset seeded by ``seed`` (in order)."""
    if len(split) <= max_train:
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:max_train]
    return split.subset(idx.sort().values)


def run_probes(
    module: SSLModule, data: MultimodalData, cfg: RunConfig, verbose: bool = False
) -> dict[str, Any]:
    """Linear probes of every task on frozen features -> task -> ProbeResult.

    With ``trainer.num_threads`` set, the BLAS / OpenMP pools of scikit-learn are limited to it
    too (on a busy machine, spinning BLAS threads make the probe many times slower)."""
    if cfg.trainer.num_threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(cfg.trainer.num_threads):
            return _run_probes(module, data, cfg, verbose)
    return _run_probes(module, data, cfg, verbose)


def _run_probes(
    module: SSLModule, data: MultimodalData, cfg: RunConfig, verbose: bool = False
) -> dict[str, Any]:
    train = probe_train_subset(data.probe_train, cfg.eval.probe_max_train, cfg.seed)
    xtr = extract_features(module, train, cfg.eval.batch_size, seed=2 * cfg.seed)
    xte = extract_features(module, data.probe_test, cfg.eval.batch_size, seed=2 * cfg.seed + 1)
    ytr = {t: y.numpy() for t, y in train.targets.items()}
    yte = {t: y.numpy() for t, y in data.probe_test.targets.items()}
    if verbose:
        print(
            f"Linear probes on frozen features: {len(xtr)} probe-train / "
            f"{len(xte)} probe-test samples, "
            f"{len(data.tasks)} task(s)",
            flush=True,
        )
    return probe_all(
        data.tasks,
        xtr,
        ytr,
        xte,
        yte,
        probe=cfg.eval.probe,
        seed=cfg.seed,
        class_weight=cfg.eval.class_weight,
        verbose=verbose,
    )


class ProbeEveryK(Callback):
    """Probe before training (epoch 0: the randomly initialised network, the floor every
    learned number should be read against) and every k epochs after it (rank 0); rows are
    appended to ``probe_curve.json``."""

    def __init__(self, data: MultimodalData, cfg: RunConfig, out: Path):
        self.data, self.cfg, self.path = data, cfg, out / "probe_curve.json"

    def on_train_start(self, trainer, module) -> None:
        if self.cfg.eval.probe_every and trainer.global_step == 0 and trainer.is_global_zero:
            self._probe(trainer, module, epoch=0)

    def on_train_epoch_end(self, trainer, module) -> None:
        k = self.cfg.eval.probe_every
        if not k or (trainer.current_epoch + 1) % k or not trainer.is_global_zero:
            return
        self._probe(trainer, module, epoch=trainer.current_epoch + 1)

    def _probe(self, trainer, module, epoch: int) -> None:
        results = run_probes(module, self.data, self.cfg)
        row = {"epoch": epoch, "step": trainer.global_step}
        row.update({t: 100 * r.published_value for t, r in results.items()})
        row.update(
            {
                f"{t}_auroc": 100 * r.metrics["auroc"]
                for t, r in results.items()
                if "auroc" in r.metrics
            }
        )
        row.update(
            {f"val_{t}": 100 * r.val_score for t, r in results.items() if r.kind != "regression"}
        )
        curve = json.loads(self.path.read_text()) if self.path.exists() else []
        curve = [c for c in curve if c["epoch"] < row["epoch"]] + [row]
        self.path.write_text(json.dumps(curve, indent=1))


class StepSeed(Callback):
    """Seed every step from (seed, global step, rank): augmentations, masks and dropout of a
    resumed run repeat those of an uninterrupted one."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        torch.manual_seed((self.seed * 1_000_003 + trainer.global_step) * 64 + trainer.global_rank)


# ---------------------------------------------------------------------- run folder


#: Written at the start of every run: the folder is one of the library's run folders.
RUN_MARKER = ".infmasking-run"
#: The files a run writes at the top of its folder (evaluations: :data:`_EVALUATION`).
RUN_FILES = (
    RUN_MARKER,
    "config.yaml",
    "hparams.yaml",
    "metrics.csv",
    "report.json",
    "report.md",
    "probe.png",
    "training_curves.png",
    "probe_curve.json",
    "probe_curve.png",
    "data.json",
)
_EVALUATION = re.compile(
    r"evaluation(_(standardised|fused|concat|balanced))*(\.json|\.md|_rus\.png)"
)
_CHECKPOINT = re.compile(r"last\.ckpt(\.tmp-\d+)?")


def library_files(out: Path) -> list[Path]:
    """The files in ``out`` that a run writes, by exact name (nothing else is ever removed)."""
    found = [out / n for n in RUN_FILES if (out / n).is_file()]
    found += [p for p in out.glob("evaluation*") if p.is_file() and _EVALUATION.fullmatch(p.name)]
    ckpts = out / "checkpoints"
    if ckpts.is_dir():
        found += [p for p in ckpts.iterdir() if p.is_file() and _CHECKPOINT.fullmatch(p.name)]
    board = out / "tensorboard"  # --trainer.logger tensorboard
    if board.is_dir():
        found += [
            p
            for p in board.iterdir()
            if p.is_file()
            and (p.name.startswith("events.out.tfevents.") or p.name == "hparams.yaml")
        ]
    return found


def is_run_folder(out: Path) -> bool:
    """``out`` holds a run of this library: its marker, or (runs from before the marker) a
    ``config.yaml`` that parses as a run config beside ``hparams.yaml`` or a checkpoint."""
    if (out / RUN_MARKER).is_file():
        return True
    if not (out / "config.yaml").is_file():
        return False
    if not ((out / "hparams.yaml").is_file() or (out / "checkpoints" / "last.ckpt").is_file()):
        return False
    try:
        load_config(out / "config.yaml")
    except Exception:  # noqa: BLE001 - a file that does not parse is not ours
        return False
    return True


def _check_out_dir(cfg: RunConfig, out: Path, overwrite: bool) -> Path | None:
    """Returns the checkpoint to resume from, or None for a fresh run.

    Only a folder the library recognises as a run folder (:func:`is_run_folder`) is resumed
    or, with ``overwrite``, cleared — and then only of the files a run writes
    (:func:`library_files`); a folder that is not one is written into only where none of those
    names is taken, so no file of the user's is ever replaced or deleted."""
    report, last, saved = (
        out / "report.json",
        out / "checkpoints" / "last.ckpt",
        out / "config.yaml",
    )
    ours = is_run_folder(out)
    if not ours and not overwrite and (out / "checkpoints").is_dir() and not saved.exists():
        # only checkpoints: a run folder that lost its files, resumed only if a checkpoint in
        # it is readable and holds an infmasking config (read, never deleted)
        if any((out / "checkpoints").glob("*.ckpt")):
            last = _intact_checkpoint(out / "checkpoints")
            if _checkpoint_config(last) is None:
                raise RunError(
                    f"--out_dir {out}: {last} is not an infmasking checkpoint; "
                    "choose another --out_dir"
                )
            return last
    if not ours:
        taken = [str(p.relative_to(out)) for p in library_files(out)]
        ckpts = out / "checkpoints"
        if ckpts.exists() and not ckpts.is_dir():
            taken.append("checkpoints")
        if taken:
            raise RunError(
                f"--out_dir {out} is not an infmasking run folder and holds "
                f"{', '.join(sorted(taken))}, which a run would replace; choose another "
                "--out_dir (--overwrite clears only run folders the library wrote)"
            )
        return None
    if report.exists() and not overwrite:
        raise RunError(
            f"{out} already holds a finished run ({report}); "
            "pass --overwrite true or choose another --out_dir"
        )
    if overwrite:
        # a clean folder: every file a run writes goes (nothing else is touched)
        for p in library_files(out):
            p.unlink(missing_ok=True)
        ckpts = out / "checkpoints"
        if ckpts.is_dir() and not any(ckpts.iterdir()):
            ckpts.rmdir()
        return None
    if last.exists() or any((out / "checkpoints").glob("*.ckpt")):
        last = _intact_checkpoint(out / "checkpoints")
        # the folder's config.yaml, or (a folder that lost it) the config inside the checkpoint
        old = to_dict(load_config(saved)) if saved.exists() else _checkpoint_config(last)
        if old is not None and old["data"].get("path"):  # runs that stored a relative path
            old["data"]["path"] = str(Path(old["data"]["path"]).expanduser().resolve())
        if old is not None:
            new = to_dict(cfg)
            # evaluation settings do not change training: a finished training can be re-probed
            diff = [d for d in _diff(old, new) if not d.startswith("eval.")]
            if diff:
                raise RunError(
                    f"{out} holds an unfinished run with a different config ({', '.join(diff)}); "
                    "resume with the same config, or pass --overwrite true"
                )
        return last
    return None


def _checkpoint_config(ckpt: Path) -> dict[str, Any] | None:
    """The run config saved inside a (readable) checkpoint, in ``to_dict`` form; None if it
    holds none. A config that no longer parses is an error: the run cannot be compared."""
    state = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True)
    hp = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hp, dict) or "config" not in hp:
        return None
    try:
        return to_dict(from_dict(hp["config"]))
    except ValueError as e:
        raise RunError(
            f"{ckpt} holds a run config this version cannot read ({e}); "
            "pass --overwrite true to start afresh"
        ) from None


def _intact_checkpoint(folder: Path) -> Path:
    """``last.ckpt`` if it can be read; else the newest readable checkpoint beside it (said);
    else an error naming the unreadable file(s) and what to do."""
    candidates = sorted(
        folder.glob("*.ckpt"), key=lambda p: (p.name != "last.ckpt", -p.stat().st_mtime)
    )
    bad = []
    for path in candidates:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "state_dict" not in state:
                raise ValueError("no state_dict")
        except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
            bad.append(f"{path.name} ({type(e).__name__})")
            continue
        if bad:
            print(
                f"Checkpoint(s) {', '.join(bad)} in {folder} cannot be read "
                "(truncated by a crash?); "
                f"resuming from the newest intact one, {path.name}"
            )
        return path
    raise RunError(
        f"cannot resume: every checkpoint in {folder} is unreadable ({', '.join(bad)}); "
        "delete it to restart, or pass --overwrite true"
    )


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _diff(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k) and k not in ("progress_bar", "num_threads"):
            out.append(f"{prefix}{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return out


def infmasking_version() -> str:
    from infmasking import __version__

    return __version__


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written so that a crash at any instant leaves an intact one: the new file is
    written beside the old one (``last.ckpt.tmp-<pid>``, same folder, so same filesystem),
    flushed and fsynced, then renamed over it atomically and the folder fsynced. Until the
    rename the previous checkpoint is untouched; after it, the new one is complete."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _loggers(cfg: RunConfig, out: Path) -> list:
    """metrics.csv always (the reports and resume merge read it); TensorBoard beside it."""
    loggers = [CSVLogger(str(out), name="", version="")]
    if cfg.trainer.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(out), name="tensorboard", version=""))
    return loggers


def make_trainer(cfg: RunConfig, out: Path, callbacks: list[Callback]) -> pl.Trainer:
    t = cfg.trainer
    # enable_version_counter=False: this run's checkpoints always replace files of the same name
    # (Lightning would otherwise write last-v1.ckpt beside a stale last.ckpt left by a killed
    # process, and `evaluate RUN` would read the stale one).
    ckpt = ModelCheckpoint(
        dirpath=str(out / "checkpoints"),
        filename="last",
        save_last=False,
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    cbs = [ckpt, StepSeed(cfg.seed), *callbacks] + ([RunProgress()] if t.progress_bar else [])
    return pl.Trainer(
        max_epochs=cfg.optim.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        logger=_loggers(cfg, out),
        callbacks=cbs,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=False,  # RunProgress: one bar over the whole run
        enable_model_summary=False,
        sync_batchnorm=t.strategy.startswith("ddp") or t.num_nodes > 1,
        plugins=[AtomicCheckpointIO()],
        deterministic=False,
        num_sanity_val_steps=0,
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


def train(cfg: RunConfig, *, overwrite: bool = False) -> dict[str, Any] | None:
    """Train, probe and write the run folder. Returns the report (None on ranks > 0).

    Everything that can be checked is checked before the first step (the options, the out
    folder, the data). The folder is locked while the run lives (``run.lock``: owner PID and
    host). SIGTERM / SIGINT save a resumable checkpoint and raise :class:`RunStopped`."""
    validate(cfg)
    if cfg.data.path is not None:  # stored absolute: evaluate / embed from anywhere read it
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(
            f"--out_dir {out} is an existing file, not a folder; choose another --out_dir"
        )
    with RunLock(out):
        return _train(cfg, out, overwrite)


def _train(cfg: RunConfig, out: Path, overwrite: bool) -> dict[str, Any] | None:
    resume = _check_out_dir(cfg, out, overwrite)
    _set_threads(cfg)
    if warning := precision_warning(cfg):
        print(warning, file=sys.stderr)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = load_data(cfg)
    check_data(data, cfg)
    if resume:
        check_data_identity(out, cfg.data.path, "cannot resume")
    identity = data_identity(cfg.data.path)
    module = SSLModule(
        to_dict(cfg),
        data.modalities,
        data.kinds,
        {m: list(data.input_shape(m)) for m in data.modalities},
    )
    stop = StopOnSigterm(out)
    timer = Timer()  # training time; its state rides in the checkpoint, so resumes add up
    callbacks = [stop, timer] + ([ProbeEveryK(data, cfg, out)] if cfg.eval.probe_every else [])
    trainer = make_trainer(cfg, out, callbacks)
    if trainer.is_global_zero:
        (out / RUN_MARKER).write_text(
            json.dumps({"infmasking": infmasking_version(), "created_by": "infmasking train"})
            + "\n"
        )
        save_config(cfg, out / "config.yaml")
        (out / "data.json").write_text(json.dumps(identity, indent=1) + "\n")
        if resume:
            print(f"Resuming from {resume}")
    old_metrics = (
        _read_csv(out / "metrics.csv") if resume else []
    )  # Lightning's CSV logger starts afresh
    try:
        with stop.installed(), _quiet_lightning():
            loader = train_loader(data.train, cfg)
            loader.progress = lambda: (
                trainer.current_epoch,
                trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            )
            trainer.fit(
                module,
                loader,
                ckpt_path=str(resume) if resume else None,
                weights_only=True,
            )
    except (SystemExit, _StopNow):  # Lightning raises SIGTERMException (a SystemExit) too
        if not stop.received:
            raise
    if stop.received:
        stop.finish(trainer)
        raise RunStopped(stop.received, out / "checkpoints" / "last.ckpt")
    if old_metrics and trainer.is_global_zero:
        _merge_metrics(out / "metrics.csv", old_metrics)
    if not trainer.is_global_zero:
        return None
    train_seconds = timer.time_elapsed("train")  # summed over the processes of a resumed run
    with stop.installed(after_fit=True):  # SIGTERM while probing: the training is saved, stop now
        results = run_probes(module, data, cfg, verbose=True)
        report = write_report(
            out, cfg, data, results, train_seconds=train_seconds, steps=trainer.global_step
        )
    print(report["markdown"])
    print(run_summary(out))
    return report


def run_summary(out: Path) -> str:
    """The closing lines of a run: where its folder is and what its main files hold."""
    described = [
        ("report.md", "the probe results (report.json: the same, machine-readable)"),
        ("probe.png", "redundancy / uniqueness / synergy bars"),
        ("probe_curve.png", "the probes after every probed epoch"),
        ("training_curves.png", "the loss terms per step (metrics.csv: the numbers)"),
        ("checkpoints/last.ckpt", "the trained model (infmasking embed / evaluate / load_run)"),
        ("config.yaml", "every option of the run"),
    ]
    lines = [f"\nRun folder: {out.resolve()}"]
    lines += [f"  {name:22s} {what}" for name, what in described if (out / name).exists()]
    return "\n".join(lines)


def check_data(data: MultimodalData, cfg: RunConfig) -> None:
    """Data problems found before the first step: an empty modality, a probe task with a
    single class, a training split smaller than one batch, a modality name that cannot name a
    module, non-finite inputs."""
    for m in data.modalities:
        if not isinstance(m, str) or not m.isidentifier():
            raise ValueError(
                f"modality name {m!r} (data.path {cfg.data.path or cfg.data.name}) cannot name a "
                "module: use letters, digits and underscores"
            )
    for split_name in ("train", "probe_train", "probe_test"):
        split = getattr(data, split_name)
        for m, x in split.inputs.items():
            if x.is_floating_point() and not torch.isfinite(x).all():
                bad = int((~torch.isfinite(x)).sum())
                raise ValueError(
                    f"modality {m!r} of the {split_name} split holds {bad} NaN / inf value(s) "
                    f"(data.path {cfg.data.path or cfg.data.name}); fix or impute them first"
                )
    for m in data.modalities:
        shape = data.input_shape(m)
        if any(s == 0 for s in shape):
            raise ValueError(
                f"modality {m!r} is empty: per-sample shape {list(shape)} (data.path "
                f"{cfg.data.path or cfg.data.name}); drop it with --data.modalities or fix the file"
            )
    for task in data.tasks:
        if task.kind != "classification":
            continue
        y = data.probe_train.targets[task.name]
        if len(torch.unique(y)) < 2:
            raise ValueError(
                f"task {task.name!r}: the probe-train labels hold a single class ({y[0].item()}); "
                "a linear probe needs at least two"
            )
    if len(data.train) < cfg.optim.batch_size:
        raise ValueError(
            f"--optim.batch_size={cfg.optim.batch_size} is larger than the training split "
            f"({len(data.train)} samples)"
        )


def data_identity(path: str | None) -> dict[str, Any] | None:
    """What a run's data file is: absolute path, size and SHA-256 of the content (a folder:
    the number of files and a SHA-256 over their relative names and sizes). None without a
    data file (generated datasets)."""
    import hashlib

    if path is None:
        return None
    p = Path(path).expanduser().resolve()
    h = hashlib.sha256()
    if p.is_file():
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return {"path": str(p), "size": p.stat().st_size, "sha256": h.hexdigest()}
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        for q in files:
            h.update(f"{q.relative_to(p)}\0{q.stat().st_size}\n".encode())
        size = sum(q.stat().st_size for q in files)
        return {"path": str(p), "size": size, "files": len(files), "sha256_listing": h.hexdigest()}
    return None


def check_data_identity(folder: Path, path: str | None, what: str) -> None:
    """Refuse (RunError, one line) when the data at ``path`` is not what the run in ``folder``
    recorded in ``data.json`` when it trained (runs from before the record are not checked)."""
    record = folder / "data.json"
    if not record.is_file() or path is None:
        return
    want = json.loads(record.read_text())
    if want is None:
        return
    got = data_identity(path)
    if got is None:
        raise RunError(f"{what}: the run's data {want['path']} is gone (recorded in {record})")
    if got["path"] != want["path"]:
        return  # another file, asked for explicitly (--data.path): the user's choice
    if got != want:
        raise RunError(
            f"{what}: the data file {want['path']} changed since the run trained on it (size "
            f"{want['size']} -> {got['size']}, recorded in {record}); restore it, or start a "
            "new run"
        )


def lock_holder(folder: Path) -> int | None:
    """The PID of a live process on this host that holds ``folder/run.lock``, else None."""
    import socket

    try:
        holder = json.loads((folder / "run.lock").read_text())
    except (OSError, ValueError):
        return None
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and _alive(pid):
        return pid
    return None


class RunLock:
    """``out/run.lock`` holds the PID and host of the process training into ``out``. A second
    run into the same folder is refused, naming the holder; a lock left by a dead process (same
    host) is taken over, and said. Only the launching process locks (not DDP ranks > 0)."""

    def __init__(self, out: Path):
        self.out, self.path, self.held = out, out / "run.lock", False

    def __enter__(self) -> RunLock:
        if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0":
            return self
        import socket

        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunError(
                f"--out_dir {self.out} cannot be created: a file is in the way"
            ) from None
        except PermissionError:
            raise RunError(
                f"--out_dir {self.out}: permission denied; choose a writable folder"
            ) from None
        host, me = socket.gethostname(), {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    holder = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    holder = {}
                pid, where = holder.get("pid"), holder.get("host")
                if where == host and isinstance(pid, int) and not _alive(pid):
                    print(
                        f"Taking over {self.path}: its process {pid} on {host} is no longer running"
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                raise RunError(
                    f"{self.out} is in use by another run (process {pid} on host {where}, "
                    f"{self.path}); wait for it, or remove the lock if that run is gone"
                ) from None
            except PermissionError:
                raise RunError(
                    f"--out_dir {self.out}: permission denied; choose a writable folder"
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunError(f"could not lock {self.path}")

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _StopNow(Exception):
    """Raised inside fit after a signal's checkpoint is saved (caught in :func:`train`)."""


class RunStopped(Exception):
    """Training was stopped by a signal after saving a resumable checkpoint.

    Attributes: ``signal_name`` ("SIGTERM" | "SIGINT"), ``exit_code`` (143 | 130, the shell's
    convention 128 + signal number), ``checkpoint`` (the saved file)."""

    def __init__(self, signal_name: str, checkpoint: Path | None):
        self.signal_name, self.checkpoint = signal_name, checkpoint
        self.exit_code = {"SIGTERM": 143, "SIGINT": 130}.get(signal_name, 1)
        super().__init__(f"{signal_name}: training stopped, checkpoint {checkpoint}")


class StopOnSigterm(Callback):
    """SIGTERM (SLURM, ``timeout``, docker, Kubernetes) or SIGINT (Ctrl-C) -> finish the
    current step, save ``checkpoints/last.ckpt``, say how to resume; :func:`train` then raises
    :class:`RunStopped` (the CLI exits 143 / 130)."""

    def __init__(self, out: Path):
        self.out, self.received, self.saved = out, None, False

    def installed(self, after_fit: bool = False):
        """Handle SIGTERM and SIGINT inside the block. During fit: stop after the current step.
        After fit (``after_fit``): the checkpoint is complete, so stop at once."""
        import contextlib
        import signal

        handler = self._handler_after_fit if after_fit else self._handler

        @contextlib.contextmanager
        def ctx():
            try:
                previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
            except ValueError:  # not the main thread: leave signals alone
                yield
                return
            try:
                yield
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)

        return ctx()

    @staticmethod
    def _name(signum: int) -> str:
        import signal

        return signal.Signals(signum).name

    def _handler(self, signum, frame) -> None:
        self.received = self._name(signum)

    def _handler_after_fit(self, signum, frame) -> None:
        name = self._name(signum)
        print(
            f"\n{name} received while probing: training is complete in "
            f"{self.out / 'checkpoints' / 'last.ckpt'}. "
            "Run the same command again to probe and write the report.",
            flush=True,
        )
        raise RunStopped(name, self.out / "checkpoints" / "last.ckpt")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.received and not self.saved:
            trainer.save_checkpoint(str(self.out / "checkpoints" / "last.ckpt"))
            self.saved = True

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        # leave fit before the next step, once this step is logged: stopping the loop cleanly
        # (should_stop) would end the epoch, and the epoch-end checkpoint would claim an epoch
        # that was not finished
        if self.saved:
            raise _StopNow()

    def finish(self, trainer) -> None:
        """After fit stopped: make sure the checkpoint exists and say how to resume."""
        path = self.out / "checkpoints" / "last.ckpt"
        if not self.saved:
            trainer.save_checkpoint(str(path))
            self.saved = True
        if trainer.is_global_zero:
            print(
                f"\n{self.received} received at step {trainer.global_step}: checkpoint saved to "
                f"{path}. Run the same command again to resume.",
                flush=True,
            )


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _merge_metrics(path: Path, old: list[dict[str, str]]) -> None:
    """metrics.csv after a resume = the rows logged before the resumed step + the new rows."""
    new = _read_csv(path)
    first = min((int(r["step"]) for r in new if r.get("step")), default=None)
    rows = [r for r in old if first is None or (r.get("step") and int(r["step"]) < first)] + new
    keys = sorted({k for r in rows for k in r})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------------- evaluation of a saved run


def load_module(path: str | Path) -> tuple[SSLModule, RunConfig, Path]:
    """A trained module from a run folder (its last checkpoint) or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        ckpt = path / "checkpoints" / "last.ckpt"
        if not ckpt.exists():
            raise RunError(f"no checkpoint in run folder {path} (expected {ckpt})")
    elif path.exists():
        ckpt = path
    else:
        raise RunError(f"no run folder or checkpoint at {path}")
    try:
        module = SSLModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure becomes one line saying which kind
        raise RunError(_load_failure(ckpt, e)) from None
    cfg = module.cfg
    module.eval()
    return module, cfg, ckpt


def run_folder_of(ckpt: Path) -> Path:
    """The run folder of a checkpoint (``RUN/checkpoints/last.ckpt`` -> ``RUN``)."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def _load_failure(ckpt: Path, error: Exception) -> str:
    """Why ``ckpt`` did not load: unreadable, not an infmasking checkpoint, or another version."""
    try:
        state = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        return f"cannot read checkpoint {ckpt}: {type(e).__name__}: {e}"
    hp = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hp, dict) or "config" not in hp or "state_dict" not in state:
        return f"{ckpt} is not an infmasking checkpoint (no hyper_parameters.config / state_dict)"
    return (
        f"checkpoint {ckpt} does not match this version of infmasking: "
        f"{type(error).__name__}: {error}"
    )


def evaluate(
    path: str | Path,
    out_dir: str | Path | None = None,
    *,
    class_weight: str | None = None,
    probe: str | None = None,
    features: str | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Re-run the probes of a trained run; writes ``evaluation.json`` / ``evaluation.md``.

    ``probe`` ("published" | "standardised"), ``features`` ("auto" | "fused" | "concat") and
    ``class_weight`` ("balanced") override the run's ``eval`` options; with any of them the
    files are named after what differs from the defaults, e.g.
    ``evaluation_standardised_balanced.json``, beside the run's own report.
    """
    if class_weight not in (None, "balanced"):
        raise ValueError(f"class_weight: expected None or 'balanced', got {class_weight!r}")
    if probe not in (None, "published", "standardised"):
        raise ValueError(f"probe: expected 'published' or 'standardised', got {probe!r}")
    if features not in (None, "auto", "fused", "concat"):
        raise ValueError(f"features: expected 'auto', 'fused' or 'concat', got {features!r}")
    folder = Path(path) if Path(path).is_dir() else None
    if folder is not None and (pid := lock_holder(folder)) is not None:
        raise RunError(
            f"{folder} is being trained by process {pid} (run.lock): evaluate it once that run "
            "has finished"
        )
    module, cfg, ckpt = load_module(path)
    check_data_identity(run_folder_of(ckpt), cfg.data.path, "evaluate")
    if class_weight is not None:
        cfg.eval.class_weight = class_weight
    if probe is not None:
        cfg.eval.probe = probe
    if features is not None:
        cfg.eval.features = features
    if num_threads is not None:
        cfg.trainer.num_threads = num_threads
    _set_threads(cfg)
    data = load_data(cfg)
    results = run_probes(module, data, cfg, verbose=True)
    out = Path(out_dir) if out_dir else (Path(path) if Path(path).is_dir() else ckpt.parent)
    out.mkdir(parents=True, exist_ok=True)
    name = evaluation_name(cfg)
    report = write_report(out, cfg, data, results, name=name, checkpoint=str(ckpt))
    print(report["markdown"])
    return report


def evaluation_name(cfg: RunConfig) -> str:
    """``evaluation`` plus what differs from the default probe: ``_standardised``, ``_fused``
    / ``_concat``, ``_balanced``."""
    e = cfg.eval
    parts = ["evaluation"]
    if e.probe != "published":
        parts.append(e.probe)
    if e.features != "auto":
        parts.append(e.features)
    if e.class_weight is not None:
        parts.append(e.class_weight)
    return "_".join(parts)


# ---------------------------------------------------------------------- reports


def rus_summary(results: dict[str, Any]) -> dict[str, float]:
    """Trifeatures: redundancy / uniqueness / synergy (balanced accuracy, %)."""
    return {
        name: 100 * results[task].metrics["balanced_accuracy"]
        for task, name in RUS.items()
        if task in results
    }


def write_report(
    out: Path,
    cfg: RunConfig,
    data: MultimodalData,
    results: dict[str, Any],
    *,
    name: str = "report",
    **extra: Any,
) -> dict[str, Any]:
    rows = []
    for task, r in results.items():
        row = {"task": task, "kind": r.kind, "published metric": r.published_metric}
        row.update({k: (100 * v if k not in ("mse", "r2") else v) for k, v in r.metrics.items()})
        rows.append(row)
    columns = (
        ["task", "kind"]
        + sorted({k for r in results.values() for k in r.metrics})
        + ["published metric"]
    )
    md = [
        f"# {cfg.method.name} on {data.name}",
        "",
        "Linear probe on frozen fused features (last epoch). Percentages except mse / r2. "
        "The published metric for classification is balanced (macro) accuracy.",
        "",
        write_markdown_table(rows, columns, float_format="{:.2f}"),
    ]
    report: dict[str, Any] = {
        "method": cfg.method.name,
        "dataset": data.name,
        "config": to_dict(cfg),
        "results": {t: r.to_dict() for t, r in results.items()},
        **extra,
    }
    if data.name in TRIFEATURES_DATA:
        rus = rus_summary(results)
        report["rus"] = rus
        md += [
            "",
            "| | redundancy | uniqueness | synergy | synergy AUROC |",
            "|---|---|---|---|---|",
            f"| measured | {rus['redundancy']:.1f} | {rus['uniqueness']:.1f} | "
            f"{rus['synergy']:.1f} | "
            f"{100 * results['synergy'].metrics.get('auroc', float('nan')):.1f} |",
        ]
        pub = PUBLISHED_TRIFEATURES.get(cfg.method.name)
        if pub:
            md.append(
                f"| published (224 px, 100 epochs) | {pub['redundancy']} | "
                f"{pub['uniqueness']} | {pub['synergy']} | — |"
            )
        md += [
            "",
            f"Trained on the {'biased' if cfg.data.biased else 'unbiased'} pairs. "
            "The published protocol reads redundancy and uniqueness from a run on the unbiased "
            "pairs (`--data.biased false`) and synergy from a run on the biased pairs; "
            "on the biased pairs texture₁ is shared with colour₂, so uniqueness is "
            f"overstated there. `infmasking reproduce {data.name}` runs both.",
        ]
        # the published point only where this run measures the same thing (protocol: synergy
        # from the biased pairs, redundancy / uniqueness from the unbiased pairs)
        measures = ("synergy",) if cfg.data.biased else ("redundancy", "uniqueness")
        auroc = results["synergy"].metrics.get("auroc", float("nan"))
        pairs = "biased" if cfg.data.biased else "unbiased"
        plots.plot_rus_bars(
            {cfg.method.name: {**rus, "synergy_auroc": 100 * auroc}},
            out / f"{name}_rus.png" if name != "report" else out / "probe.png",
            published={cfg.method.name: {k: pub[k] for k in measures}} if pub else None,
            chance={**CHANCE_TRIFEATURES, "synergy_auroc": 50.0},
            title=f"{cfg.method.name} on {data.name} ({pairs} pairs, "
            f"{extra.get('steps', '?')} steps; probe {cfg.eval.probe})",
        )
    curve_path = out / "probe_curve.json"
    if name == "report" and curve_path.exists():
        rows = json.loads(curve_path.read_text())
        tasks = [t for t, r in results.items() if r.kind != "regression"]
        if tasks and any(r["epoch"] > 0 for r in rows):
            report["selection"] = {
                by: select_epoch(rows, tasks, by) for by in ("last", "valid", "test")
            }
            md += [
                "",
                "## Which epoch",
                "",
                f"Probed every {cfg.eval.probe_every} epoch(s). `last`: the last epoch; "
                "`best_valid`: the epoch with the best mean score on the held-out part of "
                "probe-train (never the test split); **as published: epoch chosen on test** "
                "(best mean test score, early stopping with patience 10) — optimistic, shown to "
                "measure the inflation. Test scores (%).",
                "",
                "| selection | epoch | " + " | ".join(tasks) + " | synergy AUROC |",
                "|---|---|" + "---|" * (len(tasks) + 1),
            ]
            for by, label in (
                ("last", "last"),
                ("valid", "best_valid"),
                ("test", "as published: epoch chosen on test"),
            ):
                r = report["selection"][by]
                md.append(
                    f"| {label} | {r['epoch']} | "
                    + " | ".join(f"{r[t]:.1f}" for t in tasks)
                    + f" | {r.get('synergy_auroc', float('nan')):.1f} |"
                )
            if data.name in TRIFEATURES_DATA:
                report["rus_by"] = {
                    by: {
                        name: r[task]
                        for task, name in {
                            **RUS,
                            "unique2": "unique2",
                            "synergy_auroc": "synergy_auroc",
                        }.items()
                    }
                    for by, r in report["selection"].items()
                }
            md += ["", "The tables above are the last epoch."]
            if cfg.eval.select == "best_valid" and "rus_by" in report:
                # the headline follows eval.select; the last epoch stays under rus_last
                report["rus_last"], report["rus"] = (
                    report["rus"],
                    {
                        k: report["rus_by"]["valid"][k]
                        for k in ("redundancy", "uniqueness", "synergy")
                    },
                )
                r = report["selection"]["valid"]
                md += [
                    f"Headline (`eval.select best_valid`): epoch {r['epoch']}, redundancy "
                    f"{report['rus']['redundancy']:.1f}, "
                    f"uniqueness {report['rus']['uniqueness']:.1f}, "
                    f"synergy {report['rus']['synergy']:.1f}."
                ]

    if get_objective(cfg.method.name).masked:
        horizon = cfg.method.lambda_epochs or cfg.optim.epochs
        final = cfg.method.mask_lambda * min(1.0, cfg.optim.epochs / horizon)
        md.append(
            f"\nλ ramp: horizon {horizon} epochs, final λ = {final:.4g} "
            f"(mask_lambda {cfg.method.mask_lambda})"
        )
        report["lambda"] = {"horizon": horizon, "final": final}
    for k in ("train_seconds", "steps"):
        if k in extra:
            md.append(
                f"\n{k.replace('_', ' ')}: {extra[k]:.0f}"
                if isinstance(extra[k], float)
                else f"\n{k}: {extra[k]}"
            )
    report["markdown"] = "\n".join(md)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=float))
    (out / f"{name}.md").write_text(report["markdown"] + "\n")
    if name == "report":
        if (out / "metrics.csv").exists():
            plots.plot_training_curves(out / "metrics.csv", out / "training_curves.png")
        curve = out / "probe_curve.json"
        if curve.exists():
            rows = json.loads(curve.read_text())
            keys = [k for k in rows[-1] if k not in ("epoch", "step") and not k.startswith("val_")]
            chance = None
            if data.name in TRIFEATURES_DATA:
                chance = {task: CHANCE_TRIFEATURES[name] for task, name in RUS.items()}
                chance.update(unique2=chance["unique1"], synergy_auroc=chance["synergy"])
            plots.plot_metric_vs_epoch(
                rows,
                out / "probe_curve.png",
                keys=keys,
                chance=chance,
                ylabel="probe-test score (%)",
                title=f"{cfg.method.name}: linear probe vs epoch (epoch 0 = random init)",
            )
    return report
