"""The data contract every dataset of the library follows.

A dataset is a :class:`MultimodalData`: the ordered modality names with their kind
("image", "sequence", "vector"), the downstream tasks, and three :class:`Split` objects
(``train`` for self-supervised training, ``probe_train`` / ``probe_test`` for the linear probe;
``valid`` optional). A split is indexed in batches (``split[idx] -> Batch``), so a data loader
never runs per-sample Python code: one ``index_select`` per modality per batch.

Images are stored as ``uint8`` [N, C, H, W] (converted to float in [0, 1] by
:func:`to_float_images` on the device); sequences as float [N, L, d] with a padding mask
[N, L] (True = padding, the ``key_padding_mask`` convention); vectors as float [N, d].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
from torch import Tensor

ModalityKind = Literal["image", "sequence", "vector"]
TaskKind = Literal["classification", "multilabel", "regression"]


class Batch(NamedTuple):
    """One batch. ``inputs[m]``: [B, ...]; ``padding[m]``: [B, L] bool (sequence modalities
    that have padding only); ``targets[task]``: [B] long (classification) or [B, k] float."""

    inputs: dict[str, Tensor]
    padding: dict[str, Tensor]
    targets: dict[str, Tensor]

    def to(self, device: torch.device | str) -> Batch:
        move = lambda d: {k: v.to(device, non_blocking=True) for k, v in d.items()}
        return Batch(move(self.inputs), move(self.padding), move(self.targets))


@dataclass(frozen=True)
class Task:
    """A downstream task probed on frozen features. ``num_classes`` is 0 for regression."""

    name: str
    kind: TaskKind
    num_classes: int = 0
    description: str = ""


class Split(torch.utils.data.Dataset):
    """N multimodal samples, fetched in batches.

    Args:
        inputs: modality -> tensor. Row ``index[m][i]`` (or row ``i`` without ``index``) is
            sample i's input of modality m.
        targets: task -> tensor with N rows.
        padding: modality -> bool [rows, L] padding mask (True = padded), for sequences.
        index: optional modality -> long [N] row index into ``inputs[m]`` and ``padding[m]``;
            lets many samples share stored rows (e.g. pairs of images from one image bank).
        rows: optional long [N]: each sample's row in the user's data file (set by loaders
            whose samples are rows of one file, e.g. ``.npz``); ``infmasking embed`` writes its
            output in this order.
    """

    def __init__(
        self,
        inputs: dict[str, Tensor],
        targets: dict[str, Tensor],
        padding: dict[str, Tensor] | None = None,
        index: dict[str, Tensor] | None = None,
        rows: Tensor | None = None,
    ) -> None:
        self.inputs = dict(inputs)
        self.rows = rows
        self.targets = dict(targets)
        self.padding = dict(padding or {})
        self.index = dict(index or {})
        n = {m: (len(self.index[m]) if m in self.index else len(x)) for m, x in self.inputs.items()}
        n.update({f"target {t}": len(y) for t, y in self.targets.items()})
        if rows is not None:
            n["rows"] = len(rows)
        if len(set(n.values())) > 1:
            raise ValueError(f"Split: inconsistent numbers of samples {n}")
        if not n:
            raise ValueError("Split: no inputs")
        self._n = next(iter(n.values()))

    def __len__(self) -> int:
        return self._n

    def _rows(self, m: str, idx: Tensor) -> Tensor:
        return self.index[m][idx] if m in self.index else idx

    def __getitem__(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        first = next(iter(self.inputs.values()))
        if idx.device != first.device:  # a split moved to an accelerator (Split.to)
            idx = idx.to(first.device)
        single = idx.dim() == 0
        idx = idx.reshape(-1)
        inputs = {m: x[self._rows(m, idx)] for m, x in self.inputs.items()}
        padding = {m: p[self._rows(m, idx)] for m, p in self.padding.items()}
        targets = {t: y[idx] for t, y in self.targets.items()}
        batch = Batch(inputs, padding, targets)
        if single:
            batch = Batch(*({k: v[0] for k, v in d.items()} for d in batch))
        return batch

    def __getitems__(self, indices: list[int]) -> Batch:
        # torch's DataLoader calls this with the whole batch of indices: one gather per tensor.
        return self[torch.as_tensor(indices, dtype=torch.long)]

    def to(self, device: torch.device | str) -> Split:
        """The same samples with every stored tensor on ``device`` (the image bank stays
        uint8 and shared: a Trifeatures bank of 224 px images is ~150 MB however many pairs
        index it). Batches are then gathered on that device, with no host-to-device copy per
        step (``trainer.data_on_device``)."""
        move = lambda d: {k: v.to(device) for k, v in d.items()}
        rows = self.rows  # the user's row numbers stay on the host (embed writes by them)
        return Split(
            move(self.inputs), move(self.targets), move(self.padding), move(self.index), rows
        )

    def subset(self, idx: Tensor) -> Split:
        """The samples ``idx`` as a new split (shares storage where an index is used)."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        index = {m: self._rows(m, idx) for m in self.inputs}
        rows = self.rows[idx] if self.rows is not None else None
        targets = {t: y[idx] for t, y in self.targets.items()}
        return Split(self.inputs, targets, self.padding, index, rows)


def collate_batch(batch: Batch) -> Batch:
    """``collate_fn`` for a DataLoader over a :class:`Split`: the batch is already formed."""
    return batch


@dataclass
class MultimodalData:
    """A dataset: modality names and kinds (in order), tasks, and its splits."""

    name: str
    modalities: list[str]
    kinds: dict[str, ModalityKind]
    tasks: list[Task]
    train: Split
    probe_train: Split
    probe_test: Split
    valid: Split | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.modalities) < 2:
            raise ValueError(f"{self.name}: need at least 2 modalities, got {self.modalities}")
        missing = [m for m in self.modalities if m not in self.kinds]
        if missing:
            raise ValueError(f"{self.name}: no kind given for modalities {missing}")

    def input_shape(self, modality: str) -> tuple[int, ...]:
        """Shape of one sample of ``modality`` (without the batch dimension)."""
        return tuple(self.train.inputs[modality].shape[1:])


def to_float_images(x: Tensor) -> Tensor:
    """uint8 [B, C, H, W] -> float32 in [0, 1]; float input is returned as float32."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
