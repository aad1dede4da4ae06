"""The multimodal masked autoencoder baseline: the per-token normalised target, the masked
mean squared error and the objective (docs/BASELINES.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from infmasking.losses.core import (
    LossOutput,
    _combine,
)

# --------------------------------------------------------------------------- MAE


def normalized_target(target: Tensor, eps: float = 1e-6) -> Tensor:
    """Each token's target standardised over its own entries, (t − mean) / sqrt(var + eps)
    with the unbiased variance — the normalised-pixel target of MAE (He et al. 2022,
    ``norm_pix_loss``).

    Args:
        target: reconstruction targets, one row of c entries per token (c >= 2).
        eps: added to the variance.

    Returns:
        The standardised targets, same shape.

    Shape:
        target: [..., c].
    """
    if target.shape[-1] < 2:
        raise ValueError(
            f"a per-token normalised target needs >= 2 entries per token, got {target.shape[-1]}"
        )
    mean = target.mean(-1, keepdim=True)
    var = target.var(-1, keepdim=True)
    return (target - mean) / (var + eps).sqrt()


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared reconstruction error over the masked tokens only (MAE's loss)::

        L = Σ_{n,l} mask_{n,l} · (1/c) Σ_k (pred_{n,l,k} − target_{n,l,k})² / max(1, Σ mask)

    Args:
        pred: predictions.  target: targets.  mask: True where the token was masked (and is
            a real token, not padding): only those count.

    Returns:
        A scalar (0 when nothing is masked).

    Shape:
        pred, target: [N, L, c]; mask: [N, L] bool.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"pred and target must both be [N, L, c], got {list(pred.shape)} and "
            f"{list(target.shape)}"
        )
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must be [N, L] = {list(pred.shape[:2])}, got {list(mask.shape)}")
    err = (pred - target).pow(2).mean(-1)  # [N, L]
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def mae_loss(
    preds: Sequence[Tensor], targets: Sequence[Tensor], masks: Sequence[Tensor], *, weights=None
) -> LossOutput:
    """Multimodal masked autoencoder: one reconstruction term per modality,
    ``rec_m`` = :func:`masked_mse` of modality m (the rows of both views stacked);
    total = mean(w · [rec_1, …, rec_M]) (w = 1 by default).

    Args:
        preds / targets: per modality, the decoder's predictions and the targets.
        masks: per modality, True for the masked real tokens (the ones reconstructed).
        weights: optional M numbers.

    Returns:
        :class:`LossOutput` with terms ``rec_1`` … ``rec_M`` (no accuracies).

    Shape:
        preds[m], targets[m]: [N, L_m, c_m]; masks[m]: [N, L_m].

    Example:
        >>> p = [torch.zeros(2, 3, 4)]; t = [torch.ones(2, 3, 4)]
        >>> mae_loss(p, t, [torch.ones(2, 3, dtype=torch.bool)]).loss
        tensor(1.)
    """
    if not (len(preds) == len(targets) == len(masks)) or not preds:
        raise ValueError(
            f"preds, targets and masks need one entry per modality (>= 1), got "
            f"{len(preds)}, {len(targets)} and {len(masks)}"
        )
    out = LossOutput(loss=torch.zeros(()))
    for i, (p, t, m) in enumerate(zip(preds, targets, masks, strict=True)):
        out.terms[f"rec_{i + 1}"] = masked_mse(p, t, m)
    out.loss = _combine(out.terms, weights)
    return out
