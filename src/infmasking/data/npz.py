"""Your own multimodal data in one ``.npz`` file.

Keys of the file (``numpy.savez(path, **arrays)``; N samples):

- ``x_<name>``: one array per modality, in the order written (at least 2). The kind follows
  the number of dimensions: [N, d] -> "vector", [N, L, d] -> "sequence",
  [N, C, H, W] -> "image" (uint8 kept as uint8, as base.py stores images; float kept as
  float32). Other ndims are an error. ``kinds={"name": kind}`` reinterprets an array:
  "sequence" for [N, L] (one feature per step, becomes [N, L, 1]), "image" for [N, H, W]
  (one channel, becomes [N, 1, H, W]), "vector" for [N, L, d] (flattened to [N, L * d]).
- ``mask_<name>``: optional [N, L] for a sequence, **True / 1 = real step** (the
  ``attention_mask`` convention of most tokenizers). Alternatively ``pad_<name>``: [N, L],
  True / 1 = padding (base.py's convention). Both are converted to base.py's padding mask
  (True = padded). A sample whose steps are all padded gets its first step unpadded (so
  attention never sees an empty sequence); the count is in ``info["unpadded_empty"]``.
- ``y``: the target of task "y"; ``y_<task>``: more tasks. The kind follows the array:
  [N] integer or bool -> "classification" (classes 0..K-1, K = max + 1); [N] float ->
  "regression" (stored as [N, 1]); [N, k] integer or bool -> "multilabel" (0/1); [N, k] float
  -> "regression". Override with a string array ``task`` (for ``y``) / ``task_<task>`` in the
  file, or the ``tasks={"y": kind}`` argument (which wins).
- ``split``: optional strings [N] among "train", "valid", "test"; without it a seeded
  80 / 10 / 10 split (:func:`splits.seeded_split`). With it, "valid" may be absent
  (``valid`` is then None), but "train" and "test" need samples.

Non-finite inputs or targets are an error (this is your data: better told than silently
zeroed). ``train`` = ``probe_train`` = the train samples, ``probe_test`` = test.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .base import MultimodalData, Split, Task
from .errors import (
    DatasetError,
    check_array,
    check_finite_labels,
    check_nonempty,
    check_rows,
    open_npz,
    require_path,
)
from .splits import seeded_split

_NDIM_KIND = {2: "vector", 3: "sequence", 4: "image"}
_TASK_KINDS = ("classification", "multilabel", "regression")
_SPLIT_NAMES = ("train", "valid", "test")


def _get(npz, key: str, file: Path) -> np.ndarray:
    """``npz[key]``; an object array (which would need pickle) is a DatasetError."""
    try:
        return npz[key]
    except ValueError as err:
        raise DatasetError(
            f"{file}: key '{key}' is not a plain numeric or string array ({err})."
        ) from err


def _modality(name: str, x: np.ndarray, kind: str | None, file: Path) -> tuple[np.ndarray, str]:
    """Apply the ``kinds`` override; return the array in base.py layout and its kind."""
    key = f"x_{name}"
    x = check_array(x, file, key, dtype="numeric", what=f"modality '{name}'")
    natural = _NDIM_KIND.get(x.ndim)
    kind = kind or natural
    if kind is not None and kind == natural:
        pass
    elif kind == "sequence" and x.ndim == 2:
        x = x[:, :, None]
    elif kind == "image" and x.ndim == 3:
        x = x[:, None]
    elif kind == "vector" and x.ndim == 3:
        x = x.reshape(len(x), -1)
    else:
        expected = "[N, d] (vector), [N, L, d] (sequence) or [N, C, H, W] (image)"
        asked = f" as kind '{kind}'" if kind else ""
        raise DatasetError(f"{file}: key '{key}' has shape {x.shape}, expected {expected}{asked}.")
    if kind == "image" and x.dtype == np.uint8:
        return x, kind
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        rows = np.unique(np.nonzero(~np.isfinite(x))[0])
        raise DatasetError(
            f"{file}: key '{key}' holds non-finite (NaN/inf) values, expected "
            f"finite inputs; first bad rows: {rows[:5].tolist()}."
        )
    return x, kind


def _padding(npz, name: str, x: np.ndarray, file: Path) -> tuple[np.ndarray | None, int]:
    """base.py padding mask [N, L] (True = padded) from ``mask_<name>`` / ``pad_<name>``."""
    has_mask, has_pad = f"mask_{name}" in npz, f"pad_{name}" in npz
    if has_mask and has_pad:
        raise DatasetError(
            f"{file}: both 'mask_{name}' and 'pad_{name}' are given; expected at most one of them."
        )
    if not (has_mask or has_pad):
        return None, 0
    key = f"mask_{name}" if has_mask else f"pad_{name}"
    if x.ndim != 3:
        raise DatasetError(
            f"{file}: key '{key}' is given but 'x_{name}' has shape {x.shape}, "
            "not a sequence [N, L, d]."
        )
    m = check_array(
        _get(npz, key, file),
        file,
        key,
        shape=(x.shape[0], x.shape[1]),
        dtype="numeric",
        what="one flag per sequence step [N, L]",
    )
    values = np.unique(m)
    if not np.isin(values, (0, 1)).all():
        raise DatasetError(
            f"{file}: key '{key}' should hold 0/1 (or bool) flags, found values "
            f"{values[:10].tolist()}."
        )
    padding = (m == 0) if has_mask else (m != 0)
    empty = padding.all(axis=1)
    padding[empty, 0] = False
    return padding, int(empty.sum())


def _target(y: np.ndarray, key: str, kind: str | None, file: Path) -> tuple[np.ndarray, Task]:
    """Target array in base.py layout (long [N] or float [N, k]) and its Task."""
    task_name = "y" if key == "y" else key[2:]
    y = check_array(y, file, key, dtype="numeric", what="targets [N] or [N, k]")
    if y.ndim not in (1, 2):
        raise DatasetError(f"{file}: key '{key}' has shape {y.shape}, expected [N] or [N, k].")
    check_finite_labels(y, file, key)
    integer = y.dtype.kind in "biu"
    if kind is None:
        kind = ("classification" if y.ndim == 1 else "multilabel") if integer else "regression"
    if kind not in _TASK_KINDS:
        raise DatasetError(f"{file}: task kind '{kind}' for '{key}' is not one of {_TASK_KINDS}.")
    if kind == "classification":
        yf = y.astype(np.float64)
        if y.ndim != 1 or not np.array_equal(yf, np.round(yf)) or (yf < 0).any():
            raise DatasetError(
                f"{file}: key '{key}' (classification) should hold class ids "
                f"0..K-1 of shape [N], found shape {y.shape}, dtype {y.dtype}, "
                f"values {np.unique(y)[:10].tolist()}."
            )
        k = int(y.max()) + 1 if len(y) else 0
        return y.astype(np.int64), Task(task_name, "classification", k)
    if kind == "multilabel":
        values = np.unique(y)
        if y.ndim != 2 or not np.isin(values, (0, 1)).all():
            raise DatasetError(
                f"{file}: key '{key}' (multilabel) should hold 0/1 of shape "
                f"[N, k], found shape {y.shape}, values {values[:10].tolist()}."
            )
        return y.astype(np.float32), Task(task_name, "multilabel", y.shape[1])
    y = y.astype(np.float32)
    return (y[:, None] if y.ndim == 1 else y), Task(task_name, "regression", 0)


def _task_kind_in_file(npz, key: str, file: Path) -> str | None:
    task_key = "task" if key == "y" else f"task_{key[2:]}"
    if task_key not in npz:
        return None
    value = check_array(
        _get(npz, task_key, file), file, task_key, dtype="string", what=f"the task kind of '{key}'"
    )
    if value.size != 1:
        raise DatasetError(
            f"{file}: key '{task_key}' has shape {value.shape}, expected one "
            f"string among {_TASK_KINDS}."
        )
    return str(value.reshape(()))


def _read_inputs(
    npz, keys: list[str], kinds: Mapping[str, str] | None, file: Path
) -> tuple[list[str], dict, dict, dict, dict]:
    """Every ``x_<name>``: (names, inputs, kinds, padding [N, L], unpadded-empty counts)."""
    mods = [k[2:] for k in keys if k.startswith("x_")]
    if len(mods) < 2:
        raise DatasetError(
            f"{file}: found modality keys {[f'x_{m}' for m in mods]}, expected "
            f"at least 2 arrays named 'x_<name>'; keys are {keys}."
        )
    bad = [m for m in mods if not m.isidentifier()]
    if bad:
        raise DatasetError(
            f"{file}: modality key 'x_{bad[0]}' does not give a usable modality name "
            f"({bad[0]!r}); use letters, digits and underscores, e.g. 'x_audio'."
        )
    unknown = set(kinds or {}) - set(mods)
    if unknown:
        raise ValueError(f"kinds names unknown modalities {sorted(unknown)}; the file has {mods}")
    stray = [k for k in keys if k.startswith(("mask_", "pad_")) and k.split("_", 1)[1] not in mods]
    if stray:
        raise DatasetError(
            f"{file}: padding key {stray[0]!r} names no modality (the modalities are {mods}, "
            f"from the keys {[f'x_{m}' for m in mods]})."
        )
    inputs, kind_of, padding, unpadded = {}, {}, {}, {}
    for m in mods:
        raw = _get(npz, f"x_{m}", file)
        inputs[m], kind_of[m] = _modality(m, raw, (kinds or {}).get(m), file)
        pad, unpadded[m] = _padding(npz, m, inputs[m], file)
        if pad is not None:
            padding[m] = pad
    return mods, inputs, kind_of, padding, unpadded


def _read_targets(
    npz, keys: list[str], tasks: Mapping[str, str] | None, file: Path
) -> tuple[dict[str, np.ndarray], list[Task]]:
    """Read ``y`` and every ``y_<task>``: (target per task name in base.py layout, tasks)."""
    target_keys = [k for k in keys if k == "y" or k.startswith("y_")]
    if not target_keys:
        raise DatasetError(f"{file}: missing key 'y' (targets [N] or [N, k]); keys are {keys}.")
    targets, task_list = {}, []
    for k in target_keys:
        task_name = "y" if k == "y" else k[2:]
        kind = (tasks or {}).get(task_name) or _task_kind_in_file(npz, k, file)
        targets[task_name], task = _target(_get(npz, k, file), k, kind, file)
        task_list.append(task)
    unknown = set(tasks or {}) - {t.name for t in task_list}
    if unknown:
        raise ValueError(
            f"tasks names unknown tasks {sorted(unknown)}; the file has "
            f"{[t.name for t in task_list]}"
        )
    return targets, task_list


def _split_array(npz, file: Path) -> np.ndarray | None:
    """The optional ``split`` strings [N], or None when the file has none."""
    if "split" not in npz:
        return None
    return check_array(
        _get(npz, "split", file),
        file,
        "split",
        shape=(None,),
        dtype="string",
        what='"train" / "valid" / "test" per sample',
    )


def _count_samples(inputs: dict, targets: dict, split_arr: np.ndarray | None, file: Path) -> int:
    """N, checked to be the same for every input, target and the ``split`` array."""
    return check_rows(
        {
            **{f"x_{m}": x for m, x in inputs.items()},
            **{f"y_{t}" if t != "y" else "y": y for t, y in targets.items()},
            **({"split": split_arr} if split_arr is not None else {}),
        },
        file,
    )


def _parts(
    split_arr: np.ndarray | None,
    n: int,
    file: Path,
    split_seed: int,
    valid_fraction: float,
    test_fraction: float,
) -> dict[str, np.ndarray]:
    """Sample indices per split: from ``split`` [N] if given, else the seeded split."""
    if split_arr is None:
        return seeded_split(
            n, split_seed, valid_fraction=valid_fraction, test_fraction=test_fraction, file=file
        )
    bad = sorted(set(np.unique(split_arr).tolist()) - set(_SPLIT_NAMES))
    if bad:
        raise DatasetError(
            f"{file}: key 'split' holds {bad}, expected only values among {list(_SPLIT_NAMES)}."
        )
    parts = {s: np.nonzero(split_arr == s)[0] for s in _SPLIT_NAMES}
    for s in ("train", "test"):
        check_nonempty(len(parts[s]), file, s, "no sample of key 'split' has this value")
    return parts


def _split(inputs: dict, targets: dict, padding: dict, idx: np.ndarray) -> Split:
    """The samples ``idx`` [n] of the inputs, targets and padding masks, as a Split."""
    t = torch.from_numpy(idx)
    return Split(
        {m: torch.from_numpy(x)[t] for m, x in inputs.items()},
        {k: torch.from_numpy(y)[t] for k, y in targets.items()},
        {m: torch.from_numpy(pad)[t] for m, pad in padding.items()},
        rows=t,
    )


def load_npz(
    path: str | Path,
    *,
    kinds: Mapping[str, str] | None = None,
    tasks: Mapping[str, str] | None = None,
    split_seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    name: str | None = None,
) -> MultimodalData:
    """Load your own multimodal data from a ``.npz`` file (format in the module docstring).

    Args:
        path: the ``.npz`` file.
        kinds: modality name (without ``x_``) -> "vector" / "sequence" / "image", overriding
            the kind chosen from the array's shape.
        tasks: task name ("y", or the part after ``y_``) -> "classification" / "multilabel" /
            "regression", overriding the kind chosen from the array.
        split_seed, valid_fraction, test_fraction: the split used when the file has no ``split``.
        name: dataset name (default: the file stem).

    Returns:
        A :class:`MultimodalData`.

    Raises:
        DatasetNotFoundError: the file does not exist.
        DatasetError: fewer than 2 modalities, no ``y``, a wrong shape or dtype, non-finite
            values, an unknown split name, or an empty train / test split.
    """
    p = require_path(path, "npz")
    npz = open_npz(p)  # every member's claimed size checked against the file
    with npz:
        keys = list(npz.files)
        mods, inputs, kind_of, padding, unpadded = _read_inputs(npz, keys, kinds, p)
        targets, task_list = _read_targets(npz, keys, tasks, p)
        split_arr = _split_array(npz, p)
    n = _count_samples(inputs, targets, split_arr, p)
    parts = _parts(split_arr, n, p, split_seed, valid_fraction, test_fraction)
    train = _split(inputs, targets, padding, parts["train"])
    return MultimodalData(
        name=name or p.stem,
        modalities=mods,
        kinds=kind_of,
        tasks=task_list,
        train=train,
        probe_train=train,
        probe_test=_split(inputs, targets, padding, parts["test"]),
        valid=_split(inputs, targets, padding, parts["valid"]) if len(parts["valid"]) else None,
        info={
            "path": str(p),
            "indices": parts,
            "unpadded_empty": unpadded,
            "split": "file" if split_arr is not None else f"seeded({split_seed})",
        },
    )
