"""Objectives: InfMasking and the baselines it is measured against (CoMM, Cross, Cross+Self, CMC,
FactorCL, MAE).

Every objective is a pure function returning a :class:`LossOutput` (the scalar ``loss``, each
term, and contrastive accuracies for logging), plus a thin ``nn.Module`` holding the
hyperparameters. All embeddings are L2-normalised inside. With a process group, embeddings
are gathered across ranks (with gradient) so negatives come from the global batch; each rank
computes the loss of its own queries, so the DDP-averaged gradient equals the full-batch one.

There is one contrastive primitive, :func:`info_nce`; every objective builds its logits and
calls it. Notation (docs/METHOD.md §2): ``z1``/``z2`` are the embeddings of the two augmented
views x' and x''; for InfMasking a sequence of M+1 tensors [B, p] (the M unimodal ones in
modality order, then the all-modality one); ``masked1``/``masked2`` are [T, B, p].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infmasking import dist


@dataclass
class LossOutput:
    """``loss``: scalar total. ``terms``: name -> scalar term (in the order they are averaged).
    ``accuracies``: name -> fraction of queries whose positive has the largest logit."""

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    accuracies: dict[str, Tensor] = field(default_factory=dict)

    def log_dict(self, prefix: str = "") -> dict[str, Tensor]:
        out = {f"{prefix}loss": self.loss.detach()}
        out.update({f"{prefix}loss_{k}": v.detach() for k, v in self.terms.items()})
        out.update({f"{prefix}acc_{k}": v.detach() for k, v in self.accuracies.items()})
        return out


# --------------------------------------------------------------------------- primitives


def info_nce(pos: Tensor, neg: Tensor, neg_valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mean of −log softmax of the positive logit among itself and the valid negatives.

    Args:
        pos: [N] positive logits (already divided by the temperature).
        neg: [N, K] negative logits.
        neg_valid: [N, K] bool, False where a column is not a negative for that row
            (the query itself, its positive); None = all valid.
    Returns:
        (loss, accuracy): scalar mean loss; scalar fraction of rows with pos > every valid neg.
    """
    if neg_valid is not None:
        neg = neg.masked_fill(~neg_valid, float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # [N, 1 + K]
    loss = (torch.logsumexp(logits, dim=1) - pos).mean()
    with torch.no_grad():
        acc = (pos > neg.max(dim=1).values).float().mean() if neg.shape[1] else pos.new_ones(())
    return loss, acc


def _global(x: Tensor) -> tuple[Tensor, int]:
    """Gathered ``x`` [N, p] (all ranks) and the global row offset of this rank's rows."""
    return dist.gather(x), dist.rank() * x.shape[0]


def nt_xent(a: Tensor, b: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """SimCLR NT-Xent between normalised batches a, b [B, p] (positives (a_i, b_i)).

    Each query row a_i (and b_i) is contrasted with its positive and the 2N − 2 other rows
    of the global batch, a and b sides both; the loss is averaged over both directions.
    Returns (loss, accuracy) as scalars.
    """
    n = a.shape[0]
    a_all, off = _global(a)
    b_all, _ = _global(b)
    big_n = a_all.shape[0]
    queries = torch.cat([a, b], 0)  # [2n, p]
    keys = torch.cat([a_all, b_all], 0)  # [2N, p]
    logits = queries @ keys.T / temperature  # [2n, 2N]
    g = torch.arange(n, device=a.device) + off  # global index of each local row
    self_col = torch.cat([g, g + big_n])  # [2n]
    pos_col = torch.cat([g + big_n, g])  # [2n]
    rows = torch.arange(2 * n, device=a.device)
    pos = logits[rows, pos_col]
    valid = torch.ones_like(logits, dtype=torch.bool)
    valid[rows, self_col] = False
    valid[rows, pos_col] = False
    return info_nce(pos, logits, valid)


def masked_variance(q: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """q_i·μ_i and v_i = q_i^T Σ_i q_i from T masked views, in O(T·B·p) (Σ is never built).

    Args:
        q: [B, p] queries.  masked: [T, B, p] masked-view embeddings of the same samples.
    Returns:
        (q·μ [B], v [B]) with μ_i = mean_t k_{t,i} and Σ_i the population covariance (1/T).
    """
    mu = masked.mean(0)  # [B, p]
    proj = torch.einsum("tbp,bp->tb", masked - mu, q)  # [T, B] = q_i·(k_{t,i} − μ_i)
    return (q * mu).sum(-1), proj.pow(2).mean(0)


def masked_term(
    q: Tensor, masked: Tensor, temperature: float, mask_weight: float
) -> tuple[Tensor, Tensor]:
    """InfMasking's masked term for normalised queries q [B, p] and masked views [T, B, p].

    positive  s⁺_i = (q_i·μ_i + ½ (λ/τ) v_i) / τ
    negatives q_i·k_{t,j}/τ (all t, j ≠ i) and q_i·q_j/τ (j ≠ i), over the global batch
    term_i    = −log softmax(s⁺_i | negatives) + ½ (λ/τ) v_i / τ;   returns (mean_i term_i, acc)
    """
    t, n, p = masked.shape
    q_all, off = _global(q)  # [N, p]
    k_all = dist.gather(masked, dim=1)  # [T, N, p]
    big_n = q_all.shape[0]
    q_mu, v = masked_variance(q, masked)
    bonus = 0.5 * (mask_weight / temperature) * v  # [n]
    pos = (q_mu + bonus) / temperature
    neg_k = (q @ k_all.reshape(t * big_n, p).T) / temperature  # [n, T*N], column t*N + j
    neg_q = (q @ q_all.T) / temperature  # [n, N]
    g = torch.arange(n, device=q.device) + off
    cols = torch.arange(big_n, device=q.device)
    not_self = cols[None, :] != g[:, None]  # [n, N]
    valid = torch.cat([not_self.repeat(1, t), not_self], 1)  # [n, T*N + N]
    nce, acc = info_nce(pos, torch.cat([neg_k, neg_q], 1), valid)
    return nce + (bonus / temperature).mean(), acc


# --------------------------------------------------------------------------- checks


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _check_views(z1: Sequence[Tensor], z2: Sequence[Tensor], min_len: int, what: str) -> None:
    if len(z1) != len(z2):
        raise ValueError(
            f"z1 and z2 must have the same length ({what}), got {len(z1)} and {len(z2)}"
        )
    if len(z1) < min_len:
        raise ValueError(f"z1/z2 must hold at least {min_len} tensors ({what}), got {len(z1)}")
    shape = tuple(z1[0].shape)
    for name, zs in (("z1", z1), ("z2", z2)):
        for i, z in enumerate(zs):
            if z.dim() != 2 or tuple(z.shape) != shape:
                raise ValueError(
                    f"{name}[{i}] must be [B, p] = {list(shape)} like z1[0], got {list(z.shape)}"
                )


def _combine(terms: dict[str, Tensor], weights: Sequence[float] | Tensor | None) -> Tensor:
    stacked = torch.stack(list(terms.values()))
    if weights is None:
        return stacked.mean()
    w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
    if w.shape != stacked.shape:
        raise ValueError(
            f"weights must have one entry per term {list(terms)} ({len(terms)}), "
            f"got {list(w.shape)}"
        )
    return (w * stacked).mean()


def _normalize(zs: Sequence[Tensor]) -> list[Tensor]:
    return [F.normalize(z, dim=-1) for z in zs]


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
    """CoMM (Dufumier et al., ICLR 2025): mean (or weighted mean) of the M+1 terms
    ½[NCE(z'_S, z''_all) + NCE(z''_S, z'_all)], S = {1}, …, {M}, all.

    Shape: z1, z2: M+1 tensors [B, p] each (unimodal in modality order, then all-modality).
    ``weights``: M+1 numbers (total = mean(w · L)).
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

    Shape: z1, z2: M unimodal embeddings [B, p] of the two views (no all-modality one).
    Terms ``cross_mn`` for m < n; ``weights``: one per pair.
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

    Shape: z1, z2: the 2 unimodal embeddings [B, p] of the two views. For M > 2 use
    :func:`cmc_loss` (all pairs), which equals this loss at M = 2.
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
    """Cross+Self: the pairwise cross terms plus SimCLR NT-Xent(z'_m, z''_m) per modality.

    Shape: z1, z2: M unimodal embeddings [B, p] of the two views. Terms: ``cross_mn``
    (m < n), then ``self_m``; total = mean (or weighted mean) over them.
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


# --------------------------------------------------------------------------- FactorCL


def _check_scores(scores: Tensor, name: str) -> int:
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 1:
        raise ValueError(
            f"{name} must be a square critic score matrix [N, N] with N >= 1, "
            f"got {list(scores.shape)}"
        )
    return scores.shape[0]


def nce_lower_bound(scores: Tensor) -> Tensor:
    """InfoNCE lower bound of the mutual information I(A; B) from a critic's scores
    (van den Oord et al. 2018; the I_NCE of FactorCL, Liang et al. 2023)::

        I_NCE = log N + (1/N) Σ_j [ f(a_j, b_j) − log Σ_i exp f(a_i, b_j) ]

    Each b_j is scored against every a_i of the batch; its own a_j is the positive.

    Args:
        scores: critic values, ``scores[i, j] = f(a_i, b_j)``; the diagonal holds the pairs
            drawn together (the positives).

    Returns:
        The estimate, a scalar (at most log N).

    Shape:
        scores: [N, N].

    Example:
        >>> nce_lower_bound(10.0 * torch.eye(4))  # a critic that separates the pairs
        tensor(1.3862)
    """
    n = _check_scores(scores, "scores")
    return math.log(n) + (scores.diagonal() - scores.logsumexp(dim=0)).mean()


def club_upper_bound(scores: Tensor) -> Tensor:
    """The NCE-CLUB estimate of I(A; B) (FactorCL, Liang et al. 2023): the CLUB upper bound
    (Cheng et al. 2020) with the log-likelihood replaced by an InfoNCE-trained critic::

        I_CLUB = (1/N) Σ_i f(a_i, b_i) − (1/N²) Σ_i Σ_j f(a_i, b_j)

    The critic f is trained by :func:`nce_lower_bound` (maximised), never by this estimate.

    Args:
        scores: critic values, ``scores[i, j] = f(a_i, b_j)``; the diagonal the positives.

    Returns:
        The estimate, a scalar.

    Shape:
        scores: [N, N].

    Example:
        >>> club_upper_bound(torch.eye(4))  # 1 − 4/16
        tensor(0.7500)
    """
    _check_scores(scores, "scores")
    return scores.diagonal().mean() - scores.mean()


def _column_accuracy(scores: Tensor) -> Tensor:
    """Fraction of columns j whose positive f(a_j, b_j) beats every other f(a_i, b_j)."""
    with torch.no_grad():
        n = scores.shape[0]
        if n == 1:
            return scores.new_ones(())
        off = scores.masked_fill(torch.eye(n, dtype=torch.bool, device=scores.device), -math.inf)
        return (scores.diagonal() > off.max(dim=0).values).float().mean()


class FactorCLScores(NamedTuple):
    """The critic score matrices of one FactorCL step (two modalities; ``'`` the first view x',
    ``''`` the second view x'', which stands in for the label, as in FactorCL's
    self-supervised variant). ``S_m`` / ``U_m``: shared / unique representation of modality m;
    ``[a; b]``: concatenation, how the conditional bounds condition on the other view.
    Every field is [N, N] with ``[i, j] = f(a_i, b_j)``.

    Attributes:
        shared: InfoNCE critic on (S1', S2') — I(X1; X2).
        shared_cond: the CLUB critic, frozen, on ([S1'; S1''], [S2'; S2'']) — I(X1; X2 | X'').
        unique_aug: for m = 1, 2, the InfoNCE critic on (U_m', U_m'') — I(X_m; X_m'').
        unique: the CLUB critic, frozen, on (U1', U2') — I(X1; X2).
        unique_cond: InfoNCE critic on ([U1'; U1''], [U2'; U2'']) — I(X1; X2 | X'').
        critic_shared_cond / critic_unique: the two CLUB critics on the same pairs with the
            representations detached: their own InfoNCE training signal.
    """

    shared: Tensor
    shared_cond: Tensor
    unique_aug: tuple[Tensor, Tensor]
    unique: Tensor
    unique_cond: Tensor
    critic_shared_cond: Tensor
    critic_unique: Tensor


FACTORCL_TERMS = (
    "shared",
    "shared_cond",
    "unique_aug_1",
    "unique_aug_2",
    "unique",
    "unique_cond",
    "critic_shared_cond",
    "critic_unique",
)


def factorcl_loss(scores: FactorCLScores, *, weights=None) -> LossOutput:
    """FactorCL, self-supervised (Liang et al., NeurIPS 2023, "Factorized Contrastive Learning:
    Going Beyond Multi-view Redundancy"), the second view x'' in place of the label y.

    The shared representations maximise the task-relevant shared information, the unique ones
    the task-relevant unique information (FactorCL's objectives with y := x'')::

        L_S = −I_NCE(S1; S2) + I_CLUB(S1; S2 | X'')
        L_U = −I_NCE(U1; U1'') − I_NCE(U2; U2'') + I_CLUB(U1; U2) − I_NCE(U1; U2 | X'')

    (the two unique objectives of the paper share their I_CLUB(U1; U2) and conditional
    I_NCE terms, counted once, as in the reference code). The CLUB critics are trained by
    maximising their own InfoNCE bound on detached representations (``critic_*`` terms),
    which reach no encoder, while the I_CLUB estimates reach the encoders only (their critic
    frozen): one backward pass does both of the reference code's alternating updates.

    total = Σ_k w_k · term_k over the terms in ``FACTORCL_TERMS`` order (a sum, as published;
    w = 1 by default).

    Args:
        scores: the critic score matrices, :class:`FactorCLScores`.
        weights: optional 8 numbers, one per term.

    Returns:
        :class:`LossOutput` with the 8 terms and, for the InfoNCE terms, the fraction of b_j
        whose own a_j scores highest.

    Shape:
        every score matrix [N, N], N the batch size.
    """
    mats = [
        scores.shared,
        scores.shared_cond,
        *scores.unique_aug,
        scores.unique,
        scores.unique_cond,
        scores.critic_shared_cond,
        scores.critic_unique,
    ]
    if len(scores.unique_aug) != 2:
        raise ValueError(f"unique_aug must hold 2 score matrices, got {len(scores.unique_aug)}")
    n = _check_scores(mats[0], "scores.shared")
    for name, s in zip(FACTORCL_TERMS, mats, strict=True):
        if _check_scores(s, f"scores.{name}") != n:
            raise ValueError(f"scores.{name} is {list(s.shape)}; scores.shared is [{n}, {n}]")
    out = LossOutput(loss=torch.zeros(()))
    club = {"shared_cond", "unique"}
    for name, s in zip(FACTORCL_TERMS, mats, strict=True):
        if name in club:
            out.terms[name] = club_upper_bound(s)
        else:
            out.terms[name] = -nce_lower_bound(s)
            out.accuracies[name] = _column_accuracy(s)
    stacked = torch.stack(list(out.terms.values()))
    if weights is None:
        out.loss = stacked.sum()
    else:
        w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
        if w.shape != stacked.shape:
            raise ValueError(
                f"weights must have one entry per term {list(out.terms)} ({len(out.terms)}), "
                f"got {list(w.shape)}"
            )
        out.loss = (w * stacked).sum()
    return out


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


def mask_weight(epoch: int, max_epochs: int, mask_lambda: float) -> float:
    """The λ schedule: λ_e = mask_lambda · min(1, (e + 1) / E) for 0-based epoch e and a ramp
    of E epochs (the run's epochs as published, or a longer horizon: then a short run is
    exactly the start of the long schedule; past E, λ stays at mask_lambda)."""
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return mask_lambda * min(1.0, (epoch + 1) / max_epochs)


def check_finite(out: LossOutput) -> None:
    """Raise ``FloatingPointError`` on every rank if the loss is not finite on any rank,
    naming the non-finite terms (a collective under DDP: call it on every rank)."""
    bad = not bool(torch.isfinite(out.loss.detach()).item())
    if dist.any_rank(bad, device=out.loss.device):
        names = [k for k, v in out.terms.items() if not torch.isfinite(v.detach()).all()]
        raise FloatingPointError(
            f"non-finite loss on rank {dist.rank()} (terms: {names or 'none here; another rank'}); "
            "lower the learning rate, raise the temperature, or check the inputs for NaN/inf"
        )


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
