"""Every seed the library derives from a run's seed, in one place.

A run is a pure function of ``seed``: each random stream is seeded from (seed, counters) here,
so that a resumed run repeats an uninterrupted one and no two streams share a seed. The
formulas are fixed (changing one changes every result made with it).
"""

from __future__ import annotations

__all__ = ["mix_seed", "step_generator_seed", "step_seed"]

_MASK_63 = 0x7FFF_FFFF_FFFF_FFFF


def mix_seed(seed: int, *parts: int) -> int:
    """One integer seed from a run seed and counters (epoch, step, rank, ...), distinct for
    distinct inputs in practice (a polynomial in a large prime, reduced to 63 bits). Seeds the
    batch order of each epoch."""
    out = int(seed)
    for p in parts:
        out = (out * 100_003 + int(p)) % (2**63 - 1)
    return out


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global torch seed at the start of training step ``step`` on ``rank`` (dropout and
    anything else drawn from the global generator)."""
    return (int(seed) * 1_000_003 + int(step)) * 64 + int(rank)


def step_generator_seed(seed: int, step: int, rank: int) -> int:
    """The seed of a training step's own generator (augmentations and masks): Python's hash of
    the integer tuple (deterministic for integers), reduced to 63 bits."""
    return hash((int(seed), int(step), int(rank))) & _MASK_63
