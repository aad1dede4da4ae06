"""The Lightning callbacks of a run and its atomic checkpoint writer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.plugins.io import TorchCheckpointIO

from infmasking.data.base import MultimodalData
from infmasking.files import write_atomic
from infmasking.seeds import step_seed
from infmasking.training.config import (
    RunConfig,
)
from infmasking.training.errors import RunStopped, StopNow
from infmasking.training.folder import RunFolder
from infmasking.training.probing import curve_row, run_probes


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
        if trainer.global_step % max(1, trainer.log_every_n_steps):
            return  # reading the loss waits for the device: only on logged steps
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


class ProgressLines(Callback):
    """With the progress bar off (logs, batch jobs): one line every ``every`` steps —
    step / total, epoch, loss, steps per second since the last line, and the ETA."""

    def __init__(self, every: int = 200) -> None:
        self.every = max(1, every)
        self.last: tuple[int, float] | None = None

    def on_train_start(self, trainer, module) -> None:
        self.last = (trainer.global_step, time.perf_counter())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or self.last is None or step % self.every:
            return
        now = time.perf_counter()
        rate = (step - self.last[0]) / max(now - self.last[1], 1e-9)
        self.last = (step, now)
        total = trainer.max_epochs * trainer.num_training_batches
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        eta = (total - step) / rate if rate > 0 else float("inf")
        print(
            f"step {step}/{total}  epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  "
            f"loss {float(loss):.4f}  {rate:.1f} steps/s  ETA {eta / 60:.1f} min",
            flush=True,
        )


class ProbeEveryK(Callback):
    """Probe at the epochs ``eval.probe_every`` and ``eval.probe_at`` name (rank 0): epoch 0 is
    the randomly initialised network, before training, the floor every learned number should be
    read against; rows are appended to ``probe_curve.json``."""

    def __init__(self, data: MultimodalData, cfg: RunConfig, out: Path):
        self.data, self.cfg, self.path = data, cfg, RunFolder(out).probe_curve_json

    @staticmethod
    def wanted(cfg: RunConfig) -> bool:
        """Does ``cfg`` ask for any probe during training?"""
        return bool(cfg.eval.probe_every or cfg.eval.probe_at)

    def _due(self, epoch: int) -> bool:
        k = self.cfg.eval.probe_every
        return bool(k and epoch % k == 0) or epoch in self.cfg.eval.probe_at

    def on_train_start(self, trainer, module) -> None:
        if self._due(0) and trainer.global_step == 0 and trainer.is_global_zero:
            self._probe(trainer, module, epoch=0)

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._due(trainer.current_epoch + 1) and trainer.is_global_zero:
            self._probe(trainer, module, epoch=trainer.current_epoch + 1)

    def _probe(self, trainer, module, epoch: int) -> None:
        results = run_probes(module, self.data, self.cfg)
        row = {"epoch": epoch, "step": trainer.global_step}
        timers = [c for c in trainer.callbacks if isinstance(c, Timer)]
        if timers:  # training seconds so far (resumes add up: the Timer rides in checkpoints)
            row["train_seconds"] = round(timers[0].time_elapsed("train"), 1)
        row.update(curve_row(results))  # both readings and the diagnostics (docs/PROBES.md)
        curve = RunFolder(self.path.parent).probe_curve()  # checked: a list of rows
        curve = [c for c in curve if c["epoch"] < row["epoch"]] + [row]
        write_atomic(self.path, json.dumps(curve, indent=1))


class StepSeed(Callback):
    """Seed every step from (seed, global step, rank): augmentations, masks and dropout of a
    resumed run repeat those of an uninterrupted one."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        torch.manual_seed(step_seed(self.seed, trainer.global_step, trainer.global_rank))


class StepCheckpoint(Callback):
    """``checkpoints/last.ckpt`` every k optimizer steps inside an epoch (the epoch-end
    checkpoint covers the last batch): a hard-killed run resumes from the next batch."""

    def __init__(self, out: Path, every: int):
        self.path, self.every = RunFolder(out).checkpoint, every

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0 and batch_idx + 1 < trainer.num_training_batches:
            trainer.save_checkpoint(str(self.path))


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
            f"{name} received while probing: training is complete in "
            f"{RunFolder(self.out).checkpoint}. "
            "Run the same command again to probe and write the report.",
            flush=True,
        )
        raise RunStopped(name, RunFolder(self.out).checkpoint)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.received and not self.saved:
            trainer.save_checkpoint(str(RunFolder(self.out).checkpoint))
            self.saved = True

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        # leave fit before the next step, once this step is logged: stopping the loop cleanly
        # (should_stop) would end the epoch, and the epoch-end checkpoint would claim an epoch
        # that was not finished
        if self.saved:
            raise StopNow()

    def finish(self, trainer) -> None:
        """After fit stopped: make sure the checkpoint exists and say how to resume."""
        path = RunFolder(self.out).checkpoint
        if not self.saved:
            trainer.save_checkpoint(str(path))
            self.saved = True
        if trainer.is_global_zero:
            print(
                f"{self.received} received at step {trainer.global_step}: checkpoint saved to "
                f"{path}. Run the same command again to resume.",
                flush=True,
            )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written so that a crash at any instant leaves an intact one
    (:func:`~infmasking.files.write_atomic`): the new file is written beside the old one (same
    folder, so same filesystem), flushed and fsynced, then renamed over it atomically (a link
    planted under the name is replaced, never written through). Until the rename the previous
    checkpoint is untouched; after it, the new one is complete. A full disk is one line naming
    the checkpoint (:class:`~infmasking.files.NoSpaceError`)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: torch.save(checkpoint, f))
