"""Sequence and vector augmentations (MultiBench), batched: :class:`SequenceAugment`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infmasking.data.augment.draws import (
    _bernoulli,
    _check_p,
    _check_range,
    _rand,
    _randn,
    _uniform,
)

# --------------------------------------------------------------------------------------------
# Sequences and vectors
# --------------------------------------------------------------------------------------------

#: Valid names for sequences [B, L, d] and for vectors [B, d].
SEQUENCE_AUGMENTATIONS = ("noise", "drop", "drop_consecutive", "crop", "permute")
VECTOR_AUGMENTATIONS = ("noise", "drop")


def parse_augmentations(
    names: str, valid: tuple[str, ...] = SEQUENCE_AUGMENTATIONS
) -> tuple[str, ...]:
    """``"drop+noise"`` -> ``("drop", "noise")``; ``""`` or ``"none"`` -> ``()``.
    Unknown names raise ``ValueError`` listing the valid ones."""
    if not isinstance(names, str):
        msg = f"augmentation names must be a str like 'drop+noise', got {names!r}"
        raise ValueError(msg)  # noqa: TRY004 - bad input -> ValueError (project convention)
    parts = tuple(p.strip() for p in names.split("+") if p.strip())
    if parts == ("none",):
        return ()
    unknown = [p for p in parts if p not in valid]
    if unknown:
        raise ValueError(
            f"unknown augmentation(s) {unknown} in {names!r}; valid names: {', '.join(valid)} "
            f"(combine with '+', or 'none')"
        )
    return parts


def _ranks(valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For a bool [B, L] validity mask: the rank of every step among the valid steps of its
    row ([B, L], meaningless at padding), the number of valid steps [B], and ``order``
    [B, L]: the valid positions in time order, then the padded positions in time order."""
    b, n_steps = valid.shape
    rank = valid.long().cumsum(dim=1) - 1
    count = valid.sum(dim=1)
    pos = torch.arange(n_steps, device=valid.device).expand(b, n_steps)
    order = torch.argsort(torch.where(valid, pos, pos + n_steps), dim=1)
    return rank, count, order


class SequenceAugment(nn.Module):
    """MultiBench / FactorCL augmentations for sequences [B, L, d] and vectors [B, d].

    ``names`` combines ops with "+" (applied in that order); each op is applied to each sample
    independently with probability ``p``:

    - ``noise``: add Gaussian noise of std ``noise_std`` (0.1).
    - ``drop``: zero each time step (each feature, for vectors) with probability
      f ~ U[0, max_drop] drawn per sample, i.e. a random 0–80 % of the steps.
    - ``drop_consecutive``: zero one window of ⌊f·n⌋ consecutive valid steps, f ~ U[0,
      max_drop], at a uniform random start (n = number of valid steps of the sample).
    - ``crop``: keep a window of max(1, round(f·n)) consecutive valid steps, f ~ U[crop_scale],
      and resample it linearly onto the n valid positions — length and padding mask are kept
      (no step becomes padding, no padding becomes data).
    - ``permute``: shuffle the valid time steps.

    Padded steps (``padding`` True) are never modified and are not counted as steps; the mask
    itself is never changed, so the caller keeps using its own. Vectors support ``noise`` and
    ``drop`` (feature dropout) only. MultiBench's ``mixup`` is not implemented.

    Shape:
        x: float [B, L, d] or [B, d]; padding: bool [B, L] or None -> float, same shape as x.

    Example:
        >>> aug = SequenceAugment("drop+noise")
        >>> y = aug(torch.randn(4, 10, 3), padding=torch.arange(10).expand(4, 10) >= 7)
    """

    def __init__(
        self,
        names: str,
        p: float = 0.5,
        *,
        noise_std: float = 0.1,
        max_drop: float = 0.8,
        crop_scale: tuple[float, float] = (0.08, 1.0),
    ) -> None:
        super().__init__()
        self.names = parse_augmentations(names)
        _check_p("p", p)
        _check_p("max_drop", max_drop)
        _check_range("crop_scale", crop_scale)
        if crop_scale[1] > 1:
            raise ValueError(f"crop_scale must be within [0, 1], got {crop_scale!r}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
        self.p, self.noise_std, self.max_drop = p, noise_std, max_drop
        self.crop_scale = tuple(crop_scale)

    def extra_repr(self) -> str:
        return f"names={'+'.join(self.names) or 'none'!r}, p={self.p}"

    def forward(
        self,
        x: Tensor,
        padding: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if not x.is_floating_point() or x.dim() not in (2, 3):
            raise ValueError(f"x must be float [B, L, d] or [B, d], got {x.dtype} {tuple(x.shape)}")
        if x.dim() == 2:
            if padding is not None:
                raise ValueError("padding is only defined for sequences [B, L, d]")
            bad = [n for n in self.names if n not in VECTOR_AUGMENTATIONS]
            if bad:
                raise ValueError(
                    f"augmentation(s) {bad} need sequences [B, L, d]; vectors [B, d] support "
                    f"{', '.join(VECTOR_AUGMENTATIONS)}"
                )
            # a vector is a sequence of d one-dimensional steps: `drop` is feature dropout
            return self.forward(x.unsqueeze(-1), None, generator).squeeze(-1)
        b, n_steps, _ = x.shape
        if padding is None:
            valid = torch.ones(b, n_steps, dtype=torch.bool, device=x.device)
        else:
            if tuple(padding.shape) != (b, n_steps) or padding.dtype != torch.bool:
                raise ValueError(
                    f"padding must be bool [B, L] = {[b, n_steps]}, got {padding.dtype} "
                    f"{tuple(padding.shape)}"
                )
            valid = ~padding.to(x.device)
        for name in self.names:
            apply = _bernoulli(b, self.p, generator, x.device)
            y = getattr(self, f"_{name}")(x, valid, generator)
            x = torch.where((apply[:, None] & valid)[:, :, None], y, x)  # padding kept as is
        return x

    # Each op returns its output for every sample and step; forward keeps it where the op is
    # applied and the step is valid.

    def _noise(self, x: Tensor, valid: Tensor, g) -> Tensor:
        return x + self.noise_std * _randn(tuple(x.shape), g, x.device).to(x.dtype)

    def _drop(self, x: Tensor, valid: Tensor, g) -> Tensor:
        b, n_steps, _ = x.shape
        rate = _uniform((b, 1), 0.0, self.max_drop, g, x.device)
        drop = _rand((b, n_steps), g, x.device) < rate  # [B, L]
        return x.masked_fill(drop[:, :, None], 0.0)

    def _drop_consecutive(self, x: Tensor, valid: Tensor, g) -> Tensor:
        rank, count, _ = _ranks(valid)
        u = _rand((x.shape[0], 2), g, x.device)
        length = torch.floor(u[:, 0] * self.max_drop * count).long()  # [B]
        start = torch.floor(u[:, 1] * (count - length + 1)).long()
        start = torch.minimum(start, count - length)
        drop = (rank >= start[:, None]) & (rank < (start + length)[:, None])
        return x.masked_fill(drop[:, :, None], 0.0)

    def _crop(self, x: Tensor, valid: Tensor, g) -> Tensor:
        b, n_steps, d = x.shape
        rank, count, order = _ranks(valid)
        u = _rand((b, 2), g, x.device)
        lo_s, hi_s = self.crop_scale
        frac = lo_s + (hi_s - lo_s) * u[:, 0]
        length = torch.round(frac * count).long().clamp(min=1)
        length = torch.minimum(length, count.clamp(min=1))  # [B] window length (valid steps)
        start = torch.floor(u[:, 1] * (count - length + 1)).long().clamp(min=0)
        start = torch.minimum(start, (count - length).clamp(min=0))
        # the valid step of rank r reads source rank start + r·(length − 1)/(n − 1)
        step = (length - 1).to(x.dtype) / (count - 1).clamp(min=1).to(x.dtype)  # [B]
        src = start[:, None].to(x.dtype) + rank.clamp(min=0).to(x.dtype) * step[:, None]
        lo = src.floor().long()
        hi = torch.minimum(lo + 1, (start + length - 1)[:, None])
        w = (src - lo.to(x.dtype))[:, :, None]  # [B, L, 1]
        last = (count - 1).clamp(min=0)[:, None]
        # rank -> position of that valid step (clamped: padded rows' indices stay in range)
        pos_lo = order.gather(1, torch.minimum(lo, last).clamp(min=0))
        pos_hi = order.gather(1, torch.minimum(hi, last).clamp(min=0))
        x_lo = x.gather(1, pos_lo[:, :, None].expand(b, n_steps, d))
        x_hi = x.gather(1, pos_hi[:, :, None].expand(b, n_steps, d))
        return (1 - w) * x_lo + w * x_hi

    def _permute(self, x: Tensor, valid: Tensor, g) -> Tensor:
        b, n_steps, d = x.shape
        _, _, order = _ranks(valid)
        pos = torch.arange(n_steps, device=x.device).expand(b, n_steps)
        keys = _rand((b, n_steps), g, x.device)
        # valid steps in random order, then padded steps in time order
        shuffled = torch.argsort(torch.where(valid, keys, 1.0 + pos.to(keys.dtype)), dim=1)
        # the valid step of time-rank r receives the r-th shuffled step; padding maps to itself
        source = torch.empty_like(order).scatter_(1, order, shuffled)  # [B, L]
        return x.gather(1, source[:, :, None].expand(b, n_steps, d))
