"""MultiBench affect datasets: CMU-MOSI, CMU-MOSEI, UR-FUNNY and MUStARD.

File format (the MultiBench pickles ``mosi_data.pkl``, ``mosei_senti_data.pkl``, ``humor.pkl``,
``sarcasm.pkl``): a dict with keys ``"train"``, ``"valid"``, ``"test"``, each a dict holding

- ``"vision"``: float [N, L, d_v], ``"audio"``: float [N, L, d_a], ``"text"``: float [N, L, d_t]
  with L = 50, front-padded with all-zero rows (MultiBench documents d = 20 / 5 / 300 for
  MOSI, 35 / 74 / 300 for MOSEI, 371 / 81 / 300 for UR-FUNNY and MUStARD; the dims are read
  from the file, not enforced);
- ``"labels"``: [N], [N, 1] or [N, 1, 1]: a sentiment score in [-3, 3] (MOSI, MOSEI) or a
  0/1 (or -1/1) class (UR-FUNNY, MUStARD);
- other keys (e.g. ``"id"``) are ignored.

Processing, as in MultiBench / CoMM:

1. ``-inf`` (and any other non-finite) feature values become 0 (MultiBench zeroes ``-inf`` in
   audio; the counts per split are in ``info["nonfinite_zeroed"]``).
2. Samples whose text is all zero are dropped (counted in ``info["dropped_empty_text"]``).
3. Padding. ``align="text"`` (default, MultiBench's aligned setting): a sample's real steps
   start at the first text row that is not all zero, and the same steps are real in every
   modality (a zero row after that start is real data). ``align="each"`` (MultiBench's
   unaligned setting): each modality's real steps start at its own first non-zero row; a
   modality that is all zero for a sample keeps one real (zero) step, so attention never sees
   a fully padded sequence.
4. The real steps are moved to the front (as ``pad_sequence`` after trimming does in the
   reference code), so position 0 is the first real step, and every modality is cut to the
   longest real length over the whole dataset. The padding mask is [N, L] bool, True = padded.

Tasks: ``"label"`` (classification, 2 classes: label > 0); with ``score_task=True`` also
``"score"`` (regression, the raw label as float [N, 1]; meaningful for MOSI / MOSEI).
Splits: ``train`` = ``probe_train`` = the file's train split, ``valid``, ``probe_test`` = test.

Pickles run code when loaded: only load files from a source you trust.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .base import MultimodalData, Split, Task
from .errors import (
    DatasetError,
    check_finite_labels,
    check_nonempty,
    check_rows,
    read_array,
    read_pickle,
    require_key,
    require_mapping,
    require_path,
)

AFFECT_MODALITIES = ("vision", "audio", "text")
SPLITS = ("train", "valid", "test")
# file stem -> dataset name used when ``name`` is not given
_NAMES = {
    "mosi_data": "mosi",
    "mosei_senti_data": "mosei",
    "humor": "ur_funny",
    "sarcasm": "mustard",
}


def _first_real_step(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x [N, L, d] front-padded -> (start [N] index of the first not-all-zero row, empty [N]
    True where every row is zero; there start = L - 1)."""
    nonzero = (x != 0).any(axis=2)  # [N, L]
    empty = ~nonzero.any(axis=1)
    start = np.where(empty, x.shape[1] - 1, nonzero.argmax(axis=1))
    return start, empty


def _left_align(x: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move steps ``start[i]:`` of sample i to the front.

    Shape: x [N, L, d], start [N] -> (x' [N, L, d] with zeros after the real steps,
    padding [N, L] bool, True = padded).
    """
    L = x.shape[1]
    pos = np.arange(L)
    src = np.minimum(start[:, None] + pos[None, :], L - 1)  # [N, L]
    out = np.take_along_axis(x, src[:, :, None], axis=1)  # [N, L, d]
    padding = pos[None, :] >= (L - start)[:, None]  # [N, L]
    out[padding] = 0.0
    return out, padding


def _read_split(raw: dict, path: Path, split: str, needed: Sequence[str]) -> dict:
    """Check one split of the pickle; return float32 arrays and labels [N]."""
    part = require_mapping(require_key(raw, split, path), path, split)
    arrays = {}
    for m in needed:
        arrays[m] = read_array(
            part,
            m,
            path,
            where=f"{split}/",
            shape=("N", "L", None),
            dtype="float",
            what=f"{m} features [N, L, d]",
        )
    labels = read_array(
        part, "labels", path, where=f"{split}/", dtype="numeric", what="one label per sample"
    )
    arrays["labels"] = labels
    n = check_rows(arrays, path, where=f"{split}/")
    if labels.size != n:
        raise DatasetError(
            f"{path}: key '{split}/labels' has shape {labels.shape}, expected one label per "
            f"sample ([{n}], [{n}, 1] or [{n}, 1, 1])."
        )
    arrays["labels"] = check_finite_labels(
        labels.reshape(n).astype(np.float64), path, f"{split}/labels"
    )
    return arrays


def _check_options(modalities: Sequence[str], align: str) -> list[str]:
    """The modalities as a list; a ValueError for unknown or too few names or a bad align."""
    modalities = list(modalities)
    unknown = [m for m in modalities if m not in AFFECT_MODALITIES]
    if unknown or len(set(modalities)) != len(modalities) or len(modalities) < 2:
        raise ValueError(
            f"modalities must be at least 2 distinct names among {AFFECT_MODALITIES}, "
            f"got {modalities}"
        )
    if align not in ("text", "each"):
        raise ValueError(f"align must be 'text' or 'each', got {align!r}")
    return modalities


def _zero_nonfinite(
    arrays: dict[str, np.ndarray],
    path: Path,
    split: str,
    needed: Sequence[str],
    align: str,
    dims: dict[str, int],
    steps: int | None,
) -> tuple[int, int | None]:
    """Arrays [N, L, d] -> float32 copies, non-finite -> 0, d and L checked: (n zeroed, steps)."""
    n_zeroed = 0
    for m in needed:
        x = arrays[m].astype(np.float32)  # copy: the caller's arrays stay untouched
        bad = ~np.isfinite(x)
        n_zeroed += int(bad.sum())
        x[bad] = 0.0
        arrays[m] = x
        if dims.setdefault(m, x.shape[2]) != x.shape[2]:
            raise DatasetError(
                f"{path}: key '{split}/{m}' has feature size {x.shape[2]}, expected "
                f"{dims[m]} as in 'train/{m}'."
            )
        if align == "text":
            if steps is None:
                steps = x.shape[1]
            if x.shape[1] != steps:
                raise DatasetError(
                    f"{path}: key '{split}/{m}' has {x.shape[1]} steps, expected {steps} "
                    "(align='text' needs the same steps in every modality)."
                )
    return n_zeroed, steps


def _drop_and_align(
    arrays: dict[str, np.ndarray],
    labels: np.ndarray,
    path: Path,
    split: str,
    modalities: Sequence[str],
    align: str,
) -> tuple[dict, int]:
    """Drop all-zero-text samples, left-align: ({"inputs", "labels" [n]}, n dropped)."""
    keep = arrays["text"].reshape(len(labels), -1).any(axis=1)
    dropped = int((~keep).sum())
    check_nonempty(
        int(keep.sum()),
        path,
        split,
        f"all {len(labels)} samples have all-zero text and are dropped",
    )
    arrays = {m: x[keep] for m, x in arrays.items()}
    labels = labels[keep]
    text_start, _ = _first_real_step(arrays["text"])
    out = {}
    for m in modalities:
        start = text_start if align == "text" else _first_real_step(arrays[m])[0]
        out[m] = _left_align(arrays[m], start)
    return {"inputs": out, "labels": labels}, dropped


def _to_split(
    processed: dict, modalities: Sequence[str], lengths: dict[str, int], score_task: bool
) -> Split:
    """A Split: inputs [N, lengths[m], d_m], padding [N, lengths[m]], label [N] (score [N, 1])."""
    inputs, padding = {}, {}
    for m in modalities:
        x, pad = processed["inputs"][m]
        inputs[m] = torch.from_numpy(np.ascontiguousarray(x[:, : lengths[m]]))
        padding[m] = torch.from_numpy(np.ascontiguousarray(pad[:, : lengths[m]]))
    labels = processed["labels"]
    targets = {"label": torch.from_numpy((labels > 0).astype(np.int64))}
    if score_task:
        targets["score"] = torch.from_numpy(labels.astype(np.float32)[:, None])
    return Split(inputs, targets, padding)


def _process_splits(
    raw: dict, path: Path, modalities: Sequence[str], align: str
) -> tuple[dict[str, dict], dict[str, int], dict[str, int], dict[str, int]]:
    """Every split read, cleaned, filtered, aligned: (processed, dims, dropped, zeroed)."""
    needed = list(dict.fromkeys([*modalities, "text"]))  # text decides which samples to drop
    dims: dict[str, int] = {}
    steps: int | None = None
    processed: dict[str, dict] = {}
    dropped: dict[str, int] = {}
    zeroed: dict[str, int] = {}
    for split in SPLITS:
        arrays = _read_split(raw, path, split, needed)
        labels = arrays.pop("labels")
        zeroed[split], steps = _zero_nonfinite(arrays, path, split, needed, align, dims, steps)
        processed[split], dropped[split] = _drop_and_align(
            arrays, labels, path, split, modalities, align
        )
    return processed, dims, dropped, zeroed


def _to_splits(
    processed: dict[str, dict], modalities: Sequence[str], score_task: bool
) -> tuple[dict[str, Split], dict[str, int]]:
    """Every split cut to the longest real length L_m of each modality: (splits, L_m)."""
    lengths = {
        m: max(int((~processed[s]["inputs"][m][1]).sum(axis=1).max()) for s in SPLITS)
        for m in modalities
    }
    splits = {s: _to_split(processed[s], modalities, lengths, score_task) for s in SPLITS}
    return splits, lengths


def load_affect(
    path: str | Path,
    *,
    modalities: Sequence[str] = ("vision", "text"),
    align: Literal["text", "each"] = "text",
    score_task: bool = False,
    name: str | None = None,
) -> MultimodalData:
    """Load a MultiBench affect pickle (MOSI, MOSEI, UR-FUNNY, MUStARD).

    Args:
        path: the ``.pkl`` file.
        modalities: which of "vision", "audio", "text", in order (at least 2): the paper's
            two-modality setting is ("vision", "text"), the three-modality one
            ("vision", "audio", "text").
        align: "text" (real steps start at the first non-zero text row, for every modality)
            or "each" (each modality's own first non-zero row); see the module docstring.
        score_task: also add the raw label as a "score" regression task (float [N, 1]).
        name: dataset name; default from the file name (mosi_data.pkl -> "mosi",
            humor.pkl -> "ur_funny", sarcasm.pkl -> "mustard", mosei_senti_data.pkl ->
            "mosei", otherwise the file stem).

    Returns:
        A :class:`MultimodalData` whose modalities are all "sequence": inputs float32
        [N, L_m, d_m] with padding [N, L_m] bool (True = padded), targets "label" long [N]
        (and "score" float [N, 1]).

    Raises:
        DatasetNotFoundError: the file does not exist (the message says where to get it).
        DatasetError: a missing key, a wrong shape or dtype, NaN labels, or a split left
            without samples after dropping empty-text samples.
    """
    modalities = _check_options(modalities, align)
    p = require_path(path, "affect")
    raw = require_mapping(read_pickle(p, "affect"), p, "<top level>")
    processed, dims, dropped, zeroed = _process_splits(raw, p, modalities, align)
    splits, lengths = _to_splits(processed, modalities, score_task)
    tasks = [Task("label", "classification", 2, "binary label: raw label > 0")]
    if score_task:
        tasks.append(Task("score", "regression", 0, "raw label (sentiment score)"))
    return MultimodalData(
        name=name or _NAMES.get(p.stem, p.stem),
        modalities=modalities,
        kinds={m: "sequence" for m in modalities},
        tasks=tasks,
        train=splits["train"],
        probe_train=splits["train"],
        probe_test=splits["test"],
        valid=splits["valid"],
        info={
            "path": str(p),
            "align": align,
            "feature_dims": {m: dims[m] for m in modalities},
            "max_length": lengths,
            "dropped_empty_text": dropped,
            "nonfinite_zeroed": zeroed,
        },
    )


def load_mosi(path: str | Path, **options) -> MultimodalData:
    """CMU-MOSI (``mosi_data.pkl``): :func:`load_affect` with name "mosi"."""
    return load_affect(path, **{"name": "mosi", **options})


def load_mosei(path: str | Path, **options) -> MultimodalData:
    """CMU-MOSEI (``mosei_senti_data.pkl``): :func:`load_affect` with name "mosei"."""
    return load_affect(path, **{"name": "mosei", **options})


def load_ur_funny(path: str | Path, **options) -> MultimodalData:
    """UR-FUNNY (``humor.pkl``): :func:`load_affect` with name "ur_funny"."""
    return load_affect(path, **{"name": "ur_funny", **options})


def load_mustard(path: str | Path, **options) -> MultimodalData:
    """MUStARD (``sarcasm.pkl``): :func:`load_affect` with name "mustard"."""
    return load_affect(path, **{"name": "mustard", **options})
