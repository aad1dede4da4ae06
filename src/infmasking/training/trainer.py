"""The Lightning trainer of a run: its checkpointing, seeding, progress and loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from infmasking.training.callbacks import (
    AtomicCheckpointIO,
    ProgressLines,
    RunProgress,
    StepCheckpoint,
    StepSeed,
)
from infmasking.training.config import RunConfig
from infmasking.training.logger import RunCSVLogger


def _loggers(cfg: RunConfig, out: Path, kept: list | None = None) -> list:
    """metrics.csv always (the reports read it; ``kept``: the rows before a resume, kept in the
    file at every instant); TensorBoard beside it."""
    loggers = [RunCSVLogger(out, kept)]
    if cfg.trainer.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(out), name="tensorboard", version=""))
    return loggers


def make_trainer(
    cfg: RunConfig, out: Path, callbacks: list[Callback], kept_metrics: list | None = None
) -> pl.Trainer:
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
    progress = RunProgress() if t.progress_bar else ProgressLines(t.progress_every_n_steps)
    cbs = [ckpt, StepSeed(cfg.seed), *callbacks, progress]
    if t.checkpoint_every_n_steps:
        cbs.insert(1, StepCheckpoint(out, t.checkpoint_every_n_steps))
    return pl.Trainer(
        max_epochs=cfg.optim.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        logger=_loggers(cfg, out, kept_metrics),
        callbacks=cbs,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=False,  # RunProgress: one bar over the whole run
        enable_model_summary=False,
        sync_batchnorm=t.strategy.startswith("ddp") or t.num_nodes > 1,
        plugins=[AtomicCheckpointIO()],
        deterministic=False,
        num_sanity_val_steps=0,
    )
