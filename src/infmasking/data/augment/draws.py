"""Random draws and argument checks shared by the image and sequence augmentations."""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-8


# --------------------------------------------------------------------------------------------
# Random parameters and checks
# --------------------------------------------------------------------------------------------


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
    """U[0, 1) of ``shape`` from ``generator`` (on its device), moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


def _uniform(shape, low: float, high: float, generator, device) -> Tensor:
    return low + (high - low) * _rand(shape, generator, device)


def _bernoulli(n: int, p: float, generator, device) -> Tensor:
    """bool [n]: True with probability p. Random numbers are drawn even for p = 0 or 1, so a
    generator advances the same way whatever the probabilities."""
    return _rand((n,), generator, device) < p


def _check_p(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_range(name: str, r, low: float = 0.0) -> None:
    if len(r) != 2 or not (low <= r[0] <= r[1]):
        raise ValueError(f"{name} must be (min, max) with {low} <= min <= max, got {r!r}")


def _check_strengths(brightness: float, contrast: float, saturation: float, hue: float) -> None:
    for name, s in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if s < 0:
            raise ValueError(f"{name} must be >= 0, got {s!r}")
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5], got {hue!r}")


def _check_images(x: Tensor, color: bool = False) -> None:
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"images must be float [B, C, H, W], got {x.dtype} {tuple(x.shape)}")
    if color and x.shape[1] != 3:
        raise ValueError(f"this op needs RGB images (C = 3), got C = {x.shape[1]}")
