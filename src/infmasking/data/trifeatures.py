"""Bimodal Trifeatures: procedural shape × texture × color images, paired by shape.

The controlled experiment of CoMM / InfMasking (protocol: ``docs/TRIFEATURES.md``; images
after Hermann & Lampinen 2020). Everything is generated here, deterministically from a seed,
with batched tensor code: shape masks are drawn once per kind on a ``base_size`` canvas
(polygons by an even-odd crossing test), textures are evaluated on a 2× canvas per texture
kind, and all rotations / placements / center crops are one affine sampling grid (as
``F.affine_grid``) + ``grid_sample`` (nearest) per chunk of images.

Pipeline (:func:`load_trifeatures`)::

    1000 (shape, texture, color) triples --seeded 80/20 split--> 800 train / 200 test triples
    render 3 images per train triple + 1 per test triple      -> uint8 bank [2600, 3, S, S]
    same-shape pairs (i, j) of train images                   -> train (biased / unbiased),
                                                                 probe_train
    all same-shape pairs (i, j) of test images                -> probe_test

(i = j included, as published; ``self_pairs=False`` excludes it.)

Each :class:`~infmasking.data.base.Split` references the bank through its ``index`` argument
(``inputs = {"image1": bank, "image2": bank}``), so pairs are never materialised.

Resolutions: only the two presets of the protocol are supported (:data:`PRESETS`): 224 px
(``base_size`` 128, texture period 10) and the native small 64 px (``base_size`` 36, texture
period 6, line widths etc. scaled by 0.6 and rounded by hand so every texture stays
distinguishable). Any other ``image_size`` raises ``ValueError``: textures do not scale to
arbitrary sizes without aliasing, so each resolution is a hand-checked preset.

Rendering time on the 2-core CPU of this project (2600 images): see the module's
``__main__`` block (``python -m infmasking.data.trifeatures``), which prints it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from infmasking.data.base import MultimodalData, Split, Task
from infmasking.data.trifeatures_render import (
    _RENDER_VERSION,
    BACKGROUND,
    COLOR_RGB,
    COLORS,
    PRESETS,
    SHAPES,
    TEXTURES,
    Preset,
    draw_textures,
    get_preset,
    render_images,
    shape_masks,
)

_CORRELATION_SEED = 42

__all__ = [
    "BACKGROUND",
    "COLORS",
    "COLOR_RGB",
    "PRESETS",
    "SHAPES",
    "TEXTURES",
    "ImageBank",
    "Preset",
    "correlated_pairs",
    "draw_textures",
    "get_preset",
    "load_trifeatures",
    "make_image_bank",
    "pair_dataset",
    "pair_targets",
    "render_images",
    "same_shape_pairs",
    "shape_masks",
    "split_combinations",
    "synergy_labels",
]

# --------------------------------------------------------------------------------------------
# Labels, splits, pairs
# --------------------------------------------------------------------------------------------


def correlated_pairs() -> Tensor:
    """The 10 correlated (texture, color) pairs ``zip(range(10), permutation(10))``.

    The permutation comes from its own generator, ``np.random.default_rng(42)``, independent
    of the dataset seed.

    Returns:
        int64 [10, 2]: row k is (texture k, its correlated color).
    """
    perm = np.random.default_rng(_CORRELATION_SEED).permutation(len(TEXTURES))
    return torch.stack([torch.arange(len(TEXTURES)), torch.as_tensor(perm)], dim=1)


def synergy_labels(texture1: Tensor, color2: Tensor) -> Tensor:
    """1 where (texture of image 1, color of image 2) is a correlated pair, else 0.

    Args:
        texture1, color2: int64 [P].
    Returns:
        int64 [P].
    """
    color_of_texture = correlated_pairs()[:, 1]
    return (color_of_texture[texture1] == color2).long()


def split_combinations(seed: int) -> tuple[Tensor, Tensor]:
    """Seeded 80/20 split of the 1000 (shape, texture, color) triples.

    Returns:
        (train, test): int64 [800, 3] and [200, 3], columns (shape, texture, color), each
        sorted by triple index ``100·shape + 10·texture + color``.
    """
    rng = np.random.default_rng([seed, 1])  # stream 1: combination split
    perm = rng.permutation(1000)
    train, test = np.sort(perm[:800]), np.sort(perm[800:])

    def triples(k: np.ndarray) -> Tensor:
        k = torch.as_tensor(k, dtype=torch.long)
        return torch.stack([k // 100, (k // 10) % 10, k % 10], dim=1)

    return triples(train), triples(test)


def same_shape_pairs(shape: Tensor, rows: Tensor, self_pairs: bool = True) -> Tensor:
    """All ordered pairs (i, j) of ``rows`` whose images have the same shape.

    Args:
        shape: int64 [N] shape of every image of the bank.
        rows: int64 [M] candidate bank rows.
        self_pairs: include each image paired with itself (i = j), as the published pair set
            does; False keeps only i != j.
    Returns:
        int64 [P, 2] bank rows (i, j), in row-major order of (i, j).
    """
    s = shape[rows]
    same = s[:, None] == s[None, :]  # [M, M]
    if not self_pairs:
        same &= ~torch.eye(len(rows), dtype=torch.bool)
    a, b = torch.nonzero(same, as_tuple=True)
    return torch.stack([rows[a], rows[b]], dim=1)


@dataclass
class TrifeaturesConfig:
    """The Trifeatures pair sets, ``data.trifeatures`` of a run (read by the ``trifeatures``
    and ``trifeatures_tokens`` datasets; the other datasets ignore it)."""

    biased: bool = True
    """Train on the biased (synergy) pairs, whose texture₁ and colour₂ always agree; False =
    unbiased same-shape pairs (redundancy / uniqueness runs)."""
    image_size: int = 64
    """Image resolution: 64 (CPU) or 224 (published); ``trifeatures`` only."""
    self_pairs: bool = True
    """The same-shape pair sets include each image paired with itself (i = j), as published;
    False excludes it."""
    max_pairs: int = 10_000
    """At most this many training pairs (subsampled without replacement)."""
    cache_dir: str | None = None
    """Cache the rendered image bank here (reused by later runs); ``trifeatures`` only."""


class ImageBank(NamedTuple):
    """The rendered images and their labels.

    Attributes:
        images: uint8 [N, 3, S, S]; rows 0..2399 train images, 2400..2599 test images.
        shape, texture, color: int64 [N].
        is_train: bool [N].
    """

    images: Tensor
    shape: Tensor
    texture: Tensor
    color: Tensor
    is_train: Tensor


def _bank_key(image_size: int, seed: int) -> str:
    meta = {"version": _RENDER_VERSION, "preset": asdict(get_preset(image_size)), "seed": seed,
            "renders": [3, 1], "correlation_seed": _CORRELATION_SEED}  # fmt: skip
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def make_image_bank(
    image_size: int = 64, seed: int = 0, cache_dir: str | os.PathLike | None = None
) -> ImageBank:
    """Split the triples (:func:`split_combinations`) and render 3 images per train triple and
    1 per test triple (2600 images). With ``cache_dir``, the bank is stored as
    ``trifeatures_{image_size}px_seed{seed}_{hash}.pt`` (hash of every parameter that affects
    it) and loaded on later calls; a cache hit equals a fresh render byte for byte.
    """
    get_preset(image_size)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    path = None
    if cache_dir is not None:
        key = _bank_key(image_size, seed)
        path = Path(cache_dir) / f"trifeatures_{image_size}px_seed{seed}_{key}.pt"
        if path.exists():
            return ImageBank(**torch.load(path, map_location="cpu", weights_only=True))
    train, test = split_combinations(seed)
    triples = torch.cat([train.repeat_interleave(3, dim=0), test])  # [2600, 3]
    is_train = torch.arange(len(triples)) < 3 * len(train)
    generator = torch.Generator().manual_seed(int(np.random.default_rng([seed, 2]).integers(2**62)))
    images = render_images(triples[:, 0], triples[:, 1], triples[:, 2], image_size, generator)
    bank = ImageBank(images, triples[:, 0].clone(), triples[:, 1].clone(), triples[:, 2].clone(),
                     is_train)  # fmt: skip
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        from infmasking.files import write_atomic

        # atomic: concurrent readers never see a partial file
        write_atomic(path, lambda f: torch.save(bank._asdict(), f))
    return bank


def pair_targets(bank: ImageBank, pairs: Tensor) -> dict[str, Tensor]:
    """Labels of pairs. pairs: int64 [P, 2] bank rows -> task -> int64 [P]."""
    i, j = pairs[:, 0], pairs[:, 1]
    return {
        "share": bank.shape[i].clone(),
        "unique1": bank.texture[i].clone(),
        "unique2": bank.texture[j].clone(),
        "synergy": synergy_labels(bank.texture[i], bank.color[j]),
    }


def _subsample(pairs: Tensor, k: int, rng: np.random.Generator) -> Tensor:
    if len(pairs) <= k:
        return pairs[torch.as_tensor(rng.permutation(len(pairs)), dtype=torch.long)]
    return pairs[torch.as_tensor(rng.choice(len(pairs), size=k, replace=False), dtype=torch.long)]


TASKS = [
    Task("share", "classification", 10, "shape, shared by both images (redundancy)"),
    Task("unique1", "classification", 10, "texture of image 1 (uniqueness)"),
    Task("unique2", "classification", 10, "texture of image 2 (uniqueness)"),
    Task("synergy", "classification", 2, "(texture of image 1, color of image 2) correlated"),
]


def load_trifeatures(
    *,
    image_size: int = 64,
    biased: bool = True,
    seed: int = 0,
    max_pairs: int = 10_000,
    probe_pairs: int = 10_000,
    self_pairs: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> MultimodalData:
    """The bimodal Trifeatures dataset (modalities ``image1``, ``image2``).

    Args:
        image_size: 64 (native small, BASE_SIZE 36) or 224 (BASE_SIZE 128).
        biased: train on the synergy (biased) pairs, whose (texture1, color2) is always
            correlated; else on unbiased same-shape pairs.
        seed: controls rendering, the combination split and pair subsampling. The correlated
            pairs never depend on it (:func:`correlated_pairs`).
        max_pairs: at most this many training pairs, subsampled without replacement.
        probe_pairs: number of unbiased probe-train pairs (10 000 in the protocol).
        self_pairs: the same-shape pair sets include each image paired with itself (as
            published); False excludes i = j.
        cache_dir: cache the rendered image bank there (see :func:`make_image_bank`).

    Returns:
        :class:`MultimodalData` whose splits share one uint8 bank [2600, 3, S, S] through
        their ``index``; ``targets`` has ``share``, ``unique1``, ``unique2``, ``synergy``
        (int64 [P]). ``info`` holds the per-image labels, the correlated pairs and the preset.

    Example:
        >>> data = load_trifeatures(image_size=64)
        >>> batch = data.train[torch.arange(8)]
        >>> batch.inputs["image1"].shape, batch.targets["synergy"].shape
        (torch.Size([8, 3, 64, 64]), torch.Size([8]))
    """
    preset = get_preset(image_size)
    bank = make_image_bank(image_size, seed, cache_dir)
    data = pair_dataset(
        "trifeatures",
        bank,
        bank.images,
        "image",
        biased=biased,
        seed=seed,
        max_pairs=max_pairs,
        probe_pairs=probe_pairs,
        self_pairs=self_pairs,
    )
    data.info["preset"] = preset
    return data


def pair_dataset(
    name: str,
    bank: ImageBank,
    items: Tensor,
    kind: str,
    *,
    biased: bool,
    seed: int,
    max_pairs: int,
    probe_pairs: int,
    self_pairs: bool,
) -> MultimodalData:
    """The Trifeatures pairs and tasks over a bank of items (images or token sequences).

    Args:
        name: dataset name.  bank: labels of each item (``shape`` / ``texture`` / ``color`` /
            ``is_train`` [N]).  items: [N, ...] the item of each bank row (shared by both
            modalities through the splits' ``index``).  kind: the modality kind of an item.
        biased, seed, max_pairs, probe_pairs, self_pairs: as in :func:`load_trifeatures`.

    Pairs: same-shape pairs of train items -> train (biased: only pairs whose
    (texture₁, colour₂) is correlated; else all), probe_train (unbiased, ``probe_pairs``);
    all same-shape pairs of test items -> probe_test.
    """
    for arg, value in (("max_pairs", max_pairs), ("probe_pairs", probe_pairs)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    for arg, value in (("biased", biased), ("self_pairs", self_pairs)):
        if not isinstance(value, bool):
            # bad input of any kind -> ValueError naming the argument (project convention)
            raise ValueError(f"{arg} must be a bool, got {value!r}")  # noqa: TRY004
    train_rows = torch.nonzero(bank.is_train).flatten()
    test_rows = torch.nonzero(~bank.is_train).flatten()
    train_pairs = same_shape_pairs(bank.shape, train_rows, self_pairs)  # ≈ 576k pairs
    if biased:
        keep = synergy_labels(bank.texture[train_pairs[:, 0]], bank.color[train_pairs[:, 1]])
        candidates = train_pairs[keep.bool()]
    else:
        candidates = train_pairs
    train = _subsample(candidates, max_pairs, np.random.default_rng([seed, 3]))
    probe_train = _subsample(train_pairs, probe_pairs, np.random.default_rng([seed, 4]))
    probe_test = same_shape_pairs(bank.shape, test_rows, self_pairs)

    def split(pairs: Tensor) -> Split:
        return Split(
            inputs={"image1": items, "image2": items}
            if kind == "image"
            else {"x1": items, "x2": items},
            targets=pair_targets(bank, pairs),
            index=dict(
                zip(
                    ("image1", "image2") if kind == "image" else ("x1", "x2"),
                    (pairs[:, 0].contiguous(), pairs[:, 1].contiguous()),
                )
            ),
        )

    mods = ["image1", "image2"] if kind == "image" else ["x1", "x2"]
    return MultimodalData(
        name=name,
        modalities=mods,
        kinds={m: kind for m in mods},
        tasks=list(TASKS),
        train=split(train),
        probe_train=split(probe_train),
        probe_test=split(probe_test),
        info={
            "protocol": "trifeatures",  # infmasking.evaluation.trifeatures
            "biased": biased,
            "seed": seed,
            "self_pairs": self_pairs,
            "correlated_pairs": correlated_pairs(),
            "image_shape": bank.shape,
            "image_texture": bank.texture,
            "image_color": bank.color,
            "image_is_train": bank.is_train,
            "pairs": {"train": train, "probe_train": probe_train, "probe_test": probe_test},
        },
    )


if __name__ == "__main__":  # rendering time: python -m infmasking.data.trifeatures
    import time

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for size in (64, 224):
        t0 = time.perf_counter()
        make_image_bank(size, seed=0)
        print(f"{size} px: 2600 images rendered in {time.perf_counter() - t0:.2f} s")
