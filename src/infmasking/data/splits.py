"""The one seeded train / valid / test split the loaders share (when a dataset has none)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from .errors import DatasetError, check_nonempty


def seeded_split(
    n: int,
    seed: int,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    file: str | Path = "",
    unit: str = "samples",
) -> dict[str, np.ndarray]:
    """A seeded random split of ``range(n)`` into train / valid / test.

    The indices are shuffled by ``random.Random(seed).shuffle``; the first
    ``floor(n * valid_fraction)`` shuffled indices are ``valid``, up to
    ``floor(n * (valid_fraction + test_fraction))`` are ``test`` and the rest are ``train``.
    This is MultiBench's MIMIC layout: with ``seed=10`` and 0.1 / 0.1 it reproduces its split.

    Returns:
        {"train", "valid", "test"} -> sorted int64 index arrays, disjoint, covering range(n).

    Raises:
        DatasetError: if a split would be empty (too few samples for the fractions).
    """
    if not (0 < valid_fraction and 0 < test_fraction and valid_fraction + test_fraction < 1):
        raise DatasetError(
            f"{file}: valid_fraction={valid_fraction} and test_fraction={test_fraction} must be "
            "positive and sum to less than 1."
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    # exact integer arithmetic: floor(n * 0.1) == n // 10 with no float rounding
    scale = 10**6
    n_valid = n * round(valid_fraction * scale) // scale
    n_valid_test = n * round((valid_fraction + test_fraction) * scale) // scale
    parts = {
        "train": order[n_valid_test:],
        "valid": order[:n_valid],
        "test": order[n_valid:n_valid_test],
    }
    for name, idx in parts.items():
        check_nonempty(
            len(idx),
            file,
            name,
            f"{n} {unit} split with valid_fraction={valid_fraction}, "
            f"test_fraction={test_fraction}; more {unit} are needed",
        )
    return {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in parts.items()}
