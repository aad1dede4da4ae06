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

Layout: :mod:`~infmasking.losses.core` (the primitive, checks, λ schedule),
:mod:`~infmasking.losses.contrastive` (InfMasking, CoMM, Cross, Cross+Self, CMC),
:mod:`~infmasking.losses.factorcl`, :mod:`~infmasking.losses.mae`.
"""

from infmasking.losses.contrastive import (
    CMCLoss,
    CoMMLoss,
    CrossLoss,
    CrossSelfLoss,
    InfMaskingLoss,
    cmc_loss,
    comm_loss,
    cross_loss,
    cross_self_loss,
    infmasking_loss,
)
from infmasking.losses.core import (
    LossOutput,
    check_finite,
    info_nce,
    mask_weight,
    masked_term,
    masked_variance,
    nt_xent,
)
from infmasking.losses.factorcl import (
    FACTORCL_TERMS,
    FactorCLScores,
    club_upper_bound,
    factorcl_loss,
    nce_lower_bound,
)
from infmasking.losses.mae import mae_loss, masked_mse, normalized_target

__all__ = [
    "FACTORCL_TERMS",
    "CMCLoss",
    "CoMMLoss",
    "CrossLoss",
    "CrossSelfLoss",
    "FactorCLScores",
    "InfMaskingLoss",
    "LossOutput",
    "check_finite",
    "club_upper_bound",
    "cmc_loss",
    "comm_loss",
    "cross_loss",
    "cross_self_loss",
    "factorcl_loss",
    "infmasking_loss",
    "info_nce",
    "mae_loss",
    "mask_weight",
    "masked_mse",
    "masked_term",
    "masked_variance",
    "nce_lower_bound",
    "normalized_target",
    "nt_xent",
]
