"""Data for a run: the dataset of a config, the resumable training loader, the checks
before the first step."""

from __future__ import annotations

import torch

from infmasking.data.base import MultimodalData, Split, collate_batch
from infmasking.data.errors import unsafe_pickles
from infmasking.data.registry import load_dataset
from infmasking.seeds import mix_seed
from infmasking.training.config import (
    RunConfig,
)


def load_data(cfg: RunConfig) -> MultimodalData:
    """The run's dataset (its whole ``data`` configuration goes to the registry)."""
    with unsafe_pickles(cfg.data.unsafe_pickle):
        return load_dataset(cfg.data)


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
