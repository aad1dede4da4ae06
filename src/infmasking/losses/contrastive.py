"""InfMasking and the contrastive baselines: CoMM, Cross (CLIP), Cross+Self, CMC — pure loss
functions of the two views' embeddings, and their thin module forms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infmasking.losses.core import (
    LossOutput,
    _check_temperature,
    _check_views,
    _combine,
    _normalize,
    masked_term,
    nt_xent,
)

# --------------------------------------------------------------------------- objectives


def _comm_terms(z1: list[Tensor], z2: list[Tensor], temperature: float, out: LossOutput) -> None:
    """CoMM terms ½[NCE(z'_S, z''_all) + NCE(z''_S, z'_all)] for S = 1..M, all (normalised)."""
    m = len(z1) - 1
    for s in range(m + 1):
        name = "comm_all" if s == m else f"comm_{s + 1}"
        if s == m:  # NCE is symmetric in its arguments: both halves coincide
            loss, acc = nt_xent(z1[m], z2[m], temperature)
        else:
            l1, a1 = nt_xent(z1[s], z2[m], temperature)
            l2, a2 = nt_xent(z2[s], z1[m], temperature)
            loss, acc = 0.5 * (l1 + l2), 0.5 * (a1 + a2)
        out.terms[name] = loss
        out.accuracies[name] = acc


def comm_loss(
    z1: Sequence[Tensor], z2: Sequence[Tensor], *, temperature: float, weights=None
) -> LossOutput:
    """CoMM (Dufumier et al., ICLR 2025): the mean (or weighted mean) of the M+1 terms
    ½[NCE(z'_S, z''_all) + NCE(z''_S, z'_all)], S = {1}, …, {M}, all.

    Args:
        z1, z2: M+1 tensors [B, p] each, the two views (unimodal in modality order, then the
            all-modality one).
        temperature: τ > 0.
        weights: optional M+1 numbers (total = mean(w · L)).

    Returns:
        :class:`LossOutput` with terms ``comm_1`` … ``comm_M``, ``comm_all``.
    """
    _check_temperature(temperature)
    _check_views(z1, z2, 3, "M unimodal embeddings then the all-modality one, M >= 2")
    out = LossOutput(loss=torch.zeros(()))
    _comm_terms(_normalize(z1), _normalize(z2), temperature, out)
    out.loss = _combine(out.terms, weights)
    return out


def infmasking_loss(
    z1: Sequence[Tensor],
    z2: Sequence[Tensor],
    masked1: Tensor,
    masked2: Tensor,
    *,
    temperature: float,
    mask_weight: float,
    weights=None,
    cross: bool = False,
) -> LossOutput:
    """InfMasking (Wen, Dai et al., NeurIPS 2025): CoMM plus the infinite-masking term.

    total = mean(w · [L_mask', L_mask'', CoMM_1, …, CoMM_M, CoMM_all])   (w = 1 by default)

    L_mask' contrasts q = z'_all with the T masked views of x' (or of x'' if ``cross``) in the
    closed form of E_k[exp(q·k/τ)], k ~ N(μ, Σ) (:func:`masked_term`); L_mask'' likewise.

    Args:
        z1, z2: M+1 tensors [B, p] each (unimodal in modality order, then all-modality).
        masked1, masked2: [T, B, p] masked all-modality embeddings of the two views.
        temperature: τ > 0.
        mask_weight: the scheduled λ_e (see :func:`mask_weight`).
        weights: optional M+3 numbers, one per term above.
        cross: contrast each view's query with the other view's masked embeddings.

    Example:
        >>> z1 = [torch.randn(8, 16) for _ in range(3)]; z2 = [torch.randn(8, 16) for _ in range(3)]
        >>> out = infmasking_loss(z1, z2, torch.randn(6, 8, 16), torch.randn(6, 8, 16),
        ...                       temperature=0.1, mask_weight=0.5)
        >>> out.loss.shape
        torch.Size([])
    """
    _check_temperature(temperature)
    _check_views(z1, z2, 3, "M unimodal embeddings then the all-modality one, M >= 2")
    b, p = z1[0].shape
    for name, k in (("masked1", masked1), ("masked2", masked2)):
        if k.dim() != 3 or k.shape[1] != b or k.shape[2] != p or k.shape[0] < 1:
            raise ValueError(f"{name} must be [T, B={b}, p={p}] with T >= 1, got {list(k.shape)}")
    if masked1.shape != masked2.shape:
        raise ValueError(
            f"masked1 and masked2 must have the same shape, got {list(masked1.shape)} and "
            f"{list(masked2.shape)}"
        )
    z1, z2 = _normalize(z1), _normalize(z2)
    k1, k2 = F.normalize(masked1, dim=-1), F.normalize(masked2, dim=-1)
    if cross:
        k1, k2 = k2, k1
    out = LossOutput(loss=torch.zeros(()))
    for name, q, k in (("mask1", z1[-1], k1), ("mask2", z2[-1], k2)):
        out.terms[name], out.accuracies[name] = masked_term(q, k, temperature, mask_weight)
    _comm_terms(z1, z2, temperature, out)
    out.loss = _combine(out.terms, weights)
    return out


def _pairwise_cross(
    z1: list[Tensor], z2: list[Tensor], temperature: float, out: LossOutput
) -> None:
    """Terms ½[NCE(z'_m, z''_n) + NCE(z''_m, z'_n)] for every modality pair m < n."""
    for i in range(len(z1)):
        for j in range(i + 1, len(z1)):
            l1, a1 = nt_xent(z1[i], z2[j], temperature)
            l2, a2 = nt_xent(z2[i], z1[j], temperature)
            out.terms[f"cross_{i + 1}{j + 1}"] = 0.5 * (l1 + l2)
            out.accuracies[f"cross_{i + 1}{j + 1}"] = 0.5 * (a1 + a2)


def cmc_loss(
    z1: Sequence[Tensor], z2: Sequence[Tensor], *, temperature: float, weights=None
) -> LossOutput:
    """CMC: CLIP-style contrast between every pair of modalities (any M >= 2).

    Args:
        z1, z2: M unimodal embeddings [B, p] each, the two views (no all-modality one).
        temperature: τ > 0.
        weights: optional, one number per term.

    Returns:
        :class:`LossOutput` with terms ``cross_mn`` for m < n.
    """
    _check_temperature(temperature)
    _check_views(z1, z2, 2, "M unimodal embeddings, M >= 2")
    out = LossOutput(loss=torch.zeros(()))
    _pairwise_cross(_normalize(z1), _normalize(z2), temperature, out)
    out.loss = _combine(out.terms, weights)
    return out


def cross_loss(
    z1: Sequence[Tensor], z2: Sequence[Tensor], *, temperature: float, weights=None
) -> LossOutput:
    """Cross (CLIP-style) for two modalities: ½[NCE(z'_1, z''_2) + NCE(z''_1, z'_2)].

    For M > 2 use :func:`cmc_loss` (all pairs), which equals this loss at M = 2.

    Args:
        z1, z2: the 2 unimodal embeddings [B, p] each, the two views (no all-modality one).
        temperature: τ > 0.
        weights: optional, one number per term.

    Returns:
        :class:`LossOutput` with the term ``cross_12``.
    """
    if len(z1) != 2:
        raise ValueError(
            f"cross_loss takes 2 unimodal embeddings per view, got {len(z1)}; "
            "use cmc_loss for M > 2"
        )
    return cmc_loss(z1, z2, temperature=temperature, weights=weights)


def cross_self_loss(
    z1: Sequence[Tensor], z2: Sequence[Tensor], *, temperature: float, weights=None
) -> LossOutput:
    """Cross+Self: the pairwise cross terms plus SimCLR NT-Xent(z'_m, z''_m) per modality;
    total = mean (or weighted mean) over the terms.

    Args:
        z1, z2: M unimodal embeddings [B, p] each, the two views (no all-modality one).
        temperature: τ > 0.
        weights: optional, one number per term.

    Returns:
        :class:`LossOutput` with terms ``cross_mn`` (m < n), then ``self_m``.
    """
    _check_temperature(temperature)
    _check_views(z1, z2, 2, "M unimodal embeddings, M >= 2")
    z1, z2 = _normalize(z1), _normalize(z2)
    out = LossOutput(loss=torch.zeros(()))
    _pairwise_cross(z1, z2, temperature, out)
    for m in range(len(z1)):
        out.terms[f"self_{m + 1}"], out.accuracies[f"self_{m + 1}"] = nt_xent(
            z1[m], z2[m], temperature
        )
    out.loss = _combine(out.terms, weights)
    return out


# --------------------------------------------------------------------------- modules


class InfMaskingLoss(nn.Module):
    """Module form of :func:`infmasking_loss`;
    ``forward(z1, z2, masked1, masked2, mask_weight)``."""

    def __init__(self, temperature: float = 0.1, weights=None, cross: bool = False):
        super().__init__()
        _check_temperature(temperature)
        self.temperature, self.weights, self.cross = temperature, weights, cross

    def forward(self, z1, z2, masked1, masked2, mask_weight: float) -> LossOutput:
        return infmasking_loss(
            z1,
            z2,
            masked1,
            masked2,
            temperature=self.temperature,
            mask_weight=mask_weight,
            weights=self.weights,
            cross=self.cross,
        )


class _PairLoss(nn.Module):
    fn = staticmethod(comm_loss)

    def __init__(self, temperature: float = 0.1, weights=None):
        super().__init__()
        _check_temperature(temperature)
        self.temperature, self.weights = temperature, weights

    def forward(self, z1, z2) -> LossOutput:
        return self.fn(z1, z2, temperature=self.temperature, weights=self.weights)


class CoMMLoss(_PairLoss):
    """Module form of :func:`comm_loss`; ``forward(z1, z2)``."""

    fn = staticmethod(comm_loss)


class CrossLoss(_PairLoss):
    """Module form of :func:`cross_loss`."""

    fn = staticmethod(cross_loss)


class CrossSelfLoss(_PairLoss):
    """Module form of :func:`cross_self_loss`."""

    fn = staticmethod(cross_self_loss)


class CMCLoss(_PairLoss):
    """Module form of :func:`cmc_loss`."""

    fn = staticmethod(cmc_loss)
