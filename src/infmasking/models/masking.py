"""Random token masking as a pure function (docs/METHOD.md §1.4)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class MaskingOutput(NamedTuple):
    """T independent maskings of B sequences of length L.

    ids_keep: [T, B, n_keep] long, the kept positions of each view and sample (ascending).
    mask: [T, B, L] bool, True where the token is replaced by the mask token.
    """

    ids_keep: Tensor
    mask: Tensor


def num_kept(length: int, mask_ratio: float) -> int:
    """Tokens kept per sample: ``int(length * (1 - mask_ratio))``, exactly as published.

    Python float rounding applies as in the reference code (e.g. L = 5 at mask_ratio 0.8 keeps
    int(0.99999…) = 0 tokens), and a one-token modality keeps 0 tokens at any
    mask_ratio > 0: that modality is then masked entirely in the view.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return int(length * (1 - mask_ratio))


def random_masking(
    batch_size: int,
    length: int,
    mask_ratio: float,
    *,
    num_masks: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> MaskingOutput:
    """Draw ``num_masks`` (T) random maskings per sample by sorting uniform noise.

    Each view keeps ``num_kept(length, mask_ratio)`` positions of every sample, chosen
    independently per view and sample. Returns a :class:`MaskingOutput` ([T, B, n_keep],
    [T, B, L]). Padding is not looked at here: a padded position stays padded in every pass.
    """
    if num_masks < 1:
        raise ValueError(f"num_masks must be >= 1, got {num_masks}")
    n_keep = num_kept(length, mask_ratio)
    if (
        generator is not None
        and device is not None
        and torch.device(device).type != generator.device.type
    ):
        noise = torch.rand(num_masks, batch_size, length, generator=generator).to(device)
    else:
        noise = torch.rand(num_masks, batch_size, length, generator=generator, device=device)
    ids_keep = noise.argsort(dim=-1)[..., :n_keep].sort(dim=-1).values  # [T, B, n_keep]
    mask = torch.ones(num_masks, batch_size, length, dtype=torch.bool, device=noise.device)
    mask.scatter_(-1, ids_keep, False)
    return MaskingOutput(ids_keep, mask)
