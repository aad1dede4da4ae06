"""FactorCL (Liang et al., NeurIPS 2023): the InfoNCE lower bound, the NCE-CLUB upper bound and
the factorised objective built from them (docs/BASELINES.md)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from infmasking.losses.core import (
    LossOutput,
)

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
