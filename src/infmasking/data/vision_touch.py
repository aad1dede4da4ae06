"""Vision&Touch (MultiBench robotics): a folder of episode ``.h5`` files.

Each episode file holds T time steps (50 in the real data) under the keys of :data:`VT_KEYS`:

- ``"image"``: uint8 [T, H, W, 3] (or [T, 3, H, W]) RGB frames, H = W = 128;
- ``"ee_forces_continuous"``: float [T, S, 6], the last S (50) force/torque readings per step;
- ``"proprio"``: float [T, P], P >= 8 proprioception (the first 4 are end-effector position
  and yaw);
- ``"contact"``: [T] or [T, K] contact flags;
- other keys of the real files (``depth_data``, ``optical_flow``, ``action``, ...) are ignored.

One sample per step t = 0 .. T-2 (the targets look one step ahead), as MultiBench's
``MultimodalManipulationDataset`` builds it:

- "image" = image[t] as uint8 [3, H, W] (optionally resized to ``image_size``);
- "force" = tanh(ee_forces_continuous[t, -32:]) as a sequence [32, 6] (MultiBench's
  ``ProcessForce(32, tanh=True)``; no padding);
- "proprio" = proprio[t, :8] as a vector [8];
- task "contact_next" (classification, 2 classes) = any(contact[t + 1] > 0)
  (MultiBench's ``contact_next``: ``contact[t + 1].sum() > 0``);
- task "end_effector_next" (regression, float [4]) = proprio[t + 1, :4]
  (MultiBench's ``ee_yaw_next``).

Split by episode file: the sorted file list is shuffled with ``split_seed``; valid and test are
disjoint sets of whole episodes (default 10 % / 20 %, about CoMM's 117k train / 29k test
samples). Non-finite force / proprio inputs become 0 (counted in ``info``); non-finite targets
are an error.

Memory: the whole dataset is held in memory; 128x128 images take 48 KiB per sample (about
7 GB for the full dataset), so pass ``image_size=64`` (or smaller) on a small machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from .base import MultimodalData, Split, Task
from .errors import (
    DatasetError,
    check_finite_labels,
    check_rows,
    read_array,
    require_path,
)
from .splits import seeded_split

#: Names of the datasets read from each episode file (the MultiBench robotics key names).
#: Pass ``keys={...}`` to :func:`load_vision_touch` to override some of them.
VT_KEYS: dict[str, str] = {
    "image": "image",  # uint8 [T, H, W, 3] or [T, 3, H, W]
    "force": "ee_forces_continuous",  # float [T, S, 6]
    "proprio": "proprio",  # float [T, P]; also the source of the end-effector target
    "contact": "contact",  # [T] or [T, K]
}


def _resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, size, size] (bilinear, antialiased)."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    x = F.interpolate(
        images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _read_arrays(
    file: Path, keys: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image [T, H, W, 3] or [T, 3, H, W], force [T, S, 6], proprio [T, P], contact)."""
    try:
        h5 = h5py.File(file, "r")
    except OSError as err:
        raise DatasetError(f"{file}: not a readable HDF5 episode file ({err}).") from err
    with h5:
        image = read_array(
            h5,
            keys["image"],
            file,
            shape=(None, None, None, None),
            dtype="uint8",
            what="RGB frames [T, H, W, 3] or [T, 3, H, W]",
        )
        force = read_array(
            h5,
            keys["force"],
            file,
            shape=(None, None, None),
            dtype="float",
            what="forces [T, S, 6]",
        )
        proprio = read_array(
            h5,
            keys["proprio"],
            file,
            shape=(None, None),
            dtype="float",
            what="proprioception [T, P]",
        )
        contact = read_array(
            h5, keys["contact"], file, dtype="numeric", what="contact flags [T] or [T, K]"
        )
    return image, force, proprio, contact


def _check_episode(
    file: Path,
    keys: Mapping[str, str],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    force_steps: int,
    proprio_dim: int,
    ee_dim: int,
) -> tuple[int, np.ndarray]:
    """Check sizes and targets of one episode: (T, image as uint8 [T, 3, H, W])."""
    image, force, proprio, contact = arrays
    T = check_rows(
        {
            keys["image"]: image,
            keys["force"]: force,
            keys["proprio"]: proprio,
            keys["contact"]: contact,
        },
        file,
    )
    if T < 2:
        raise DatasetError(
            f"{file}: episode has {T} steps, expected at least 2 (targets are read one step ahead)."
        )
    if image.shape[-1] == 3:
        image = image.transpose(0, 3, 1, 2)
    elif image.shape[1] != 3:
        raise DatasetError(
            f"{file}: key '{keys['image']}' has shape {image.shape}, expected "
            "[T, H, W, 3] or [T, 3, H, W]."
        )
    if force.shape[1] < force_steps:
        raise DatasetError(
            f"{file}: key '{keys['force']}' has shape {force.shape}, expected "
            f"[T, S, d] with S >= {force_steps} readings per step."
        )
    if proprio.shape[1] < max(proprio_dim, ee_dim):
        raise DatasetError(
            f"{file}: key '{keys['proprio']}' has shape {proprio.shape}, "
            f"expected [T, P] with P >= {max(proprio_dim, ee_dim)}."
        )
    check_finite_labels(contact, file, keys["contact"])
    check_finite_labels(proprio[1:, :ee_dim], file, f"{keys['proprio']} (end-effector target)")
    return T, image


def _read_episode(
    file: Path,
    keys: Mapping[str, str],
    *,
    image_size: int | None,
    force_steps: int,
    force_tanh: bool,
    proprio_dim: int,
    ee_dim: int,
) -> dict[str, np.ndarray | torch.Tensor | int]:
    """Samples t = 0..T-2 of one episode file (see the module docstring)."""
    arrays = _read_arrays(file, keys)
    T, image = _check_episode(
        file, keys, arrays, force_steps=force_steps, proprio_dim=proprio_dim, ee_dim=ee_dim
    )
    _, force, proprio, contact = arrays
    force = force[: T - 1, -force_steps:].astype(np.float32)  # [T-1, 32, 6]
    prop = proprio[: T - 1, :proprio_dim].astype(np.float32)  # [T-1, 8]
    nonfinite = int((~np.isfinite(force)).sum() + (~np.isfinite(prop)).sum())
    force = np.nan_to_num(force, nan=0.0, posinf=0.0, neginf=0.0)
    prop = np.nan_to_num(prop, nan=0.0, posinf=0.0, neginf=0.0)
    if force_tanh:
        force = np.tanh(force)
    contact_next = (contact[1:].reshape(T - 1, -1) > 0).any(axis=1).astype(np.int64)
    return {
        "image": _resize(torch.from_numpy(np.ascontiguousarray(image[: T - 1])), image_size),
        "force": force,
        "proprio": prop,
        "contact_next": contact_next,
        "end_effector_next": proprio[1:, :ee_dim].astype(np.float32),
        "nonfinite": nonfinite,
    }


def _episode_split(
    path: str | Path, pattern: str, split_seed: int, valid_fraction: float, test_fraction: float
) -> tuple[Path, list[Path], dict[str, np.ndarray]]:
    """(folder, sorted episode files, seeded split of their indices); no file is an error."""
    root = require_path(path, "vision_touch", kind="dir")
    files = sorted(root.rglob(pattern))
    if not files:
        raise DatasetError(
            f"{root}: no episode files matching '{pattern}' found. "
            "Expected one .h5 file per episode."
        )
    parts = seeded_split(
        len(files),
        split_seed,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        file=root,
        unit="episode files",
    )
    return root, files, parts


def _read_split(
    files: list[Path],
    idx: np.ndarray,
    keys: Mapping[str, str],
    image_shape: tuple[int, ...] | None,
    **episode_options,
) -> tuple[Split, tuple[int, ...] | None, int]:
    """The episodes ``files[idx]`` as one Split: (split, frame shape [3, H, W], n zeroed)."""
    nonfinite = 0
    episodes = []
    for i in idx:
        ep = _read_episode(files[i], keys, **episode_options)
        shape = tuple(ep["image"].shape[1:])
        if image_shape is None:
            image_shape = shape
        elif shape != image_shape:
            raise DatasetError(
                f"{files[i]}: key '{keys['image']}' frames are {shape} (as [3, H, W]), "
                f"expected {image_shape} as in the other episodes (or pass image_size)."
            )
        nonfinite += ep["nonfinite"]
        episodes.append(ep)
    cat = {
        k: torch.from_numpy(np.concatenate([e[k] for e in episodes]))
        for k in ("force", "proprio", "contact_next", "end_effector_next")
    }
    split = Split(
        {
            "image": torch.cat([e["image"] for e in episodes]),
            "force": cat["force"],
            "proprio": cat["proprio"],
        },
        {"contact_next": cat["contact_next"], "end_effector_next": cat["end_effector_next"]},
    )
    return split, image_shape, nonfinite


def _dataset(splits: dict[str, Split], ee_dim: int, info: dict) -> MultimodalData:
    """The MultimodalData of the train / valid / test splits, with the two tasks."""
    return MultimodalData(
        name="vision_touch",
        modalities=["image", "force", "proprio"],
        kinds={"image": "image", "force": "sequence", "proprio": "vector"},
        tasks=[
            Task("contact_next", "classification", 2, "contact at the next step"),
            Task(
                "end_effector_next",
                "regression",
                0,
                f"next step's proprio[:{ee_dim}] (end-effector position and yaw)",
            ),
        ],
        train=splits["train"],
        probe_train=splits["train"],
        probe_test=splits["test"],
        valid=splits["valid"],
        info=info,
    )


def load_vision_touch(
    path: str | Path,
    *,
    image_size: int | None = None,
    force_steps: int = 32,
    force_tanh: bool = True,
    proprio_dim: int = 8,
    ee_dim: int = 4,
    keys: Mapping[str, str] | None = None,
    pattern: str = "*.h5",
    split_seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> MultimodalData:
    """Load the Vision&Touch episodes of a folder.

    Args:
        path: folder holding the episode files (searched recursively for ``pattern``).
        image_size: resize frames to ``image_size`` x ``image_size``; None keeps them.
        force_steps: the last readings kept per step (32).
        force_tanh: squash forces with tanh, as MultiBench does.
        proprio_dim: proprioception entries used as the "proprio" input (8).
        ee_dim: entries of the next step's proprioception used as the end-effector target (4).
        keys: overrides of :data:`VT_KEYS`.
        pattern: glob of the episode files.
        split_seed, valid_fraction, test_fraction: episode-level split (keep the seed fixed
            across training seeds so the test episodes stay the same).

    Returns:
        A :class:`MultimodalData` with modalities "image" (uint8 [3, H, W]), "force"
        (sequence float32 [32, 6]) and "proprio" (vector float32 [8]); tasks "contact_next"
        (long [N]) and "end_effector_next" (float32 [N, 4]).

    Raises:
        DatasetNotFoundError: the folder does not exist (the message says where to get it).
        DatasetError: no episode files, a missing key, a wrong shape or dtype, NaN targets,
            or too few episodes for the split.
    """
    unknown = set(keys or {}) - set(VT_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; the keys are {sorted(VT_KEYS)}")
    keys = {**VT_KEYS, **(keys or {})}
    root, files, parts = _episode_split(path, pattern, split_seed, valid_fraction, test_fraction)
    options = {
        "image_size": image_size,
        "force_steps": force_steps,
        "force_tanh": force_tanh,
        "proprio_dim": proprio_dim,
        "ee_dim": ee_dim,
    }
    image_shape = None
    nonfinite = 0
    splits = {}
    for name, idx in parts.items():
        splits[name], image_shape, n_zeroed = _read_split(files, idx, keys, image_shape, **options)
        nonfinite += n_zeroed
    info = {
        "path": str(root),
        "episodes": {k: [str(files[i].relative_to(root)) for i in v] for k, v in parts.items()},
        "nonfinite_zeroed": nonfinite,
        "keys": keys,
    }
    return _dataset(splits, ee_dim, info)
