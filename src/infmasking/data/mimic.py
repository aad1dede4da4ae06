"""MIMIC-III as preprocessed by MultiBench (``im.pk``).

File format: a pickle dict with

- ``"adm_features_all"``: float [N, 5], static admission features;
- ``"ep_tdata"``: float [N, 24, 12], 24 hourly steps of 12 measurements;
- ``"y_icd9"``: [N, 20] 0/1, one column per ICD-9 code group;
- ``"adm_labels_all"``: [N, >= 6], mortality indicators (needed only with ``mortality=True``).

These are the keys MultiBench's ``datasets/mimic/get_data.py`` reads: its task k in 0..19 is
``y_icd9[:, k]`` and its task -1 (mortality) is 6-class, the class being the first column
c in 1..5 of ``adm_labels_all`` with a positive value, else 0. (Note: ICD-9 labels are in
``y_icd9``, not in ``adm_labels_all``.)

Processing: non-finite inputs become 0; both modalities are z-scored per feature with the
mean and (population) std of the TRAIN samples only (MultiBench uses the whole file); a
feature with zero train std is only centred. Split: :func:`splits.seeded_split`, 80 / 10 / 10;
with the default ``split_seed=10`` it is exactly MultiBench's split (``random.seed(10)`` shuffle,
first tenth valid, second tenth test, rest train).

Modalities: "static" (vector [5]) and "timeseries" (sequence [24, 12], no padding).
Tasks: ``"icd9_<k>"`` (classification, 2 classes; the paper's MIMIC accuracy is group 7) and,
with ``mortality=True``, ``"mortality"`` (classification, 6 classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import MultimodalData, Split, Task
from .errors import (
    DatasetError,
    check_binary,
    check_finite_labels,
    check_rows,
    read_array,
    read_pickle,
    require_mapping,
    require_path,
)
from .splits import seeded_split

KEYS = {
    "static": "adm_features_all",
    "timeseries": "ep_tdata",
    "icd9": "y_icd9",
    "mortality": "adm_labels_all",
}


def _zscore(x: np.ndarray, train: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """(x - mean) / std per last-axis feature, statistics over ``axes`` of ``x[train]``."""
    mean = x[train].mean(axis=axes, keepdims=True)
    std = x[train].std(axis=axes, keepdims=True)
    std[std == 0] = 1.0
    return ((x - mean) / std).astype(np.float32)


def _read_inputs(raw: dict, p: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check the two modalities: (static [N, 5], series [N, 24, 12]), as in the file."""
    static = read_array(
        raw, KEYS["static"], p, shape=(None, None), dtype="float", what="static features [N, 5]"
    )
    series = read_array(
        raw,
        KEYS["timeseries"],
        p,
        shape=(None, None, None),
        dtype="float",
        what="time series [N, 24, 12]",
    )
    return static, series


def _icd9_target(raw: dict, p: Path, icd9_group: int) -> tuple[np.ndarray, np.ndarray, Task]:
    """(y_icd9 [N, 20], target long [N] = its 0/1 column ``icd9_group``, the task)."""
    y = read_array(
        raw, KEYS["icd9"], p, shape=(None, None), dtype="numeric", what="ICD-9 groups [N, 20]"
    )
    if not 0 <= icd9_group < y.shape[1]:
        raise DatasetError(
            f"{p}: key '{KEYS['icd9']}' has {y.shape[1]} ICD-9 group columns, "
            f"icd9_group={icd9_group} is out of range."
        )
    col = check_binary(y[:, icd9_group], p, f"{KEYS['icd9']}[:, {icd9_group}]")
    task = Task(
        f"icd9_{icd9_group}",
        "classification",
        2,
        f"ICD-9 code group {icd9_group} (column of {KEYS['icd9']})",
    )
    return y, col.astype(np.int64), task


def _mortality_target(raw: dict, p: Path) -> tuple[np.ndarray, np.ndarray, Task]:
    """(adm_labels_all [N, >=6], target long [N] = MultiBench's 6-class mortality, the task)."""
    adm = read_array(
        raw,
        KEYS["mortality"],
        p,
        shape=(None, None),
        dtype="numeric",
        what="mortality indicators [N, >=6]",
    )
    if adm.shape[1] < 6:
        raise DatasetError(
            f"{p}: key '{KEYS['mortality']}' has shape {adm.shape}, expected at least 6 "
            "columns (classes 1..5 are read from columns 1..5)."
        )
    check_finite_labels(adm[:, 1:6], p, KEYS["mortality"])
    positive = adm[:, 1:6] > 0  # [N, 5]
    target = np.where(positive.any(axis=1), positive.argmax(axis=1) + 1, 0).astype(np.int64)
    task = Task(
        "mortality",
        "classification",
        6,
        "MultiBench mortality classes 0..5 from adm_labels_all",
    )
    return adm, target, task


def _normalise(
    static: np.ndarray, series: np.ndarray, train: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Non-finite -> 0, then z-score with train statistics: float32 [N, 5], [N, 24, 12]."""
    static = np.nan_to_num(static.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    series = np.nan_to_num(series.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return _zscore(static, train, (0,)), _zscore(series, train, (0, 1))


def _split(
    static: np.ndarray, series: np.ndarray, targets: dict[str, np.ndarray], idx: np.ndarray
) -> Split:
    """The samples ``idx`` [n] of the normalised inputs and the targets, as a Split."""
    t = torch.from_numpy(idx)
    return Split(
        {"static": torch.from_numpy(static)[t], "timeseries": torch.from_numpy(series)[t]},
        {k: torch.from_numpy(v)[t] for k, v in targets.items()},
    )


def load_mimic(
    path: str | Path,
    *,
    icd9_group: int | None = 7,
    mortality: bool = False,
    split_seed: int = 10,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> MultimodalData:
    """Load MultiBench's MIMIC pickle ``im.pk``.

    Args:
        path: the pickle file.
        icd9_group: ICD-9 group column of ``y_icd9`` used as task ``"icd9_<group>"``
            (0..19; default 7, the paper's task); None for no ICD-9 task.
        mortality: also add the 6-class ``"mortality"`` task from ``adm_labels_all``.
        split_seed: seed of the split (10 reproduces MultiBench's split). It is not a
            training seed: keep it fixed across training seeds so the test set stays the same.
        valid_fraction, test_fraction: split sizes (the rest is train).

    Returns:
        A :class:`MultimodalData` with inputs "static" float32 [N, 5] and "timeseries" float32
        [N, 24, 12] (z-scored with train statistics), targets long [N].

    Raises:
        DatasetNotFoundError: the file does not exist (the message says where to get it).
        DatasetError: a missing key, a wrong shape or dtype, NaN labels, or too few samples.
    """
    if icd9_group is None and not mortality:
        raise ValueError("no task: give icd9_group and/or mortality=True")
    p = require_path(path, "mimic")
    raw = require_mapping(read_pickle(p, "mimic"), p, "<top level>")
    static, series = _read_inputs(raw, p)
    arrays = {KEYS["static"]: static, KEYS["timeseries"]: series}
    targets_np: dict[str, np.ndarray] = {}
    tasks: list[Task] = []
    if icd9_group is not None:
        arrays[KEYS["icd9"]], targets_np[f"icd9_{icd9_group}"], task = _icd9_target(
            raw, p, icd9_group
        )
        tasks.append(task)
    if mortality:
        arrays[KEYS["mortality"]], targets_np["mortality"], task = _mortality_target(raw, p)
        tasks.append(task)
    n = check_rows(arrays, p)

    parts = seeded_split(
        n, split_seed, valid_fraction=valid_fraction, test_fraction=test_fraction, file=p
    )
    static, series = _normalise(static, series, parts["train"])
    train = _split(static, series, targets_np, parts["train"])
    return MultimodalData(
        name="mimic",
        modalities=["static", "timeseries"],
        kinds={"static": "vector", "timeseries": "sequence"},
        tasks=tasks,
        train=train,
        probe_train=train,
        probe_test=_split(static, series, targets_np, parts["test"]),
        valid=_split(static, series, targets_np, parts["valid"]),
        info={"path": str(p), "split_seed": split_seed, "indices": parts},
    )
