"""The pieces every objective is built from: :class:`LossOutput`, the one contrastive primitive
:func:`info_nce` (and :func:`nt_xent`, :func:`masked_term` on top of it), the checks shared by
the objectives, the λ schedule and the finiteness check (docs/METHOD.md §2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

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
    """SimCLR NT-Xent between two normalised batches, positives (a_i, b_i).

    Each query row a_i (and b_i) is contrasted with its positive and the 2N − 2 other rows of
    the global batch (gathered across ranks), a and b sides both; the loss is averaged over
    both directions.

    Args:
        a, b: [B, p] L2-normalised embeddings of the two sides.
        temperature: τ > 0.

    Returns:
        (loss, accuracy): scalars.
    """
    n = a.shape[0]
    a_all, off = _global(a)
    b_all, _ = _global(b)
    big_n = a_all.shape[0]
    queries = torch.cat([a, b], 0)  # [2n, p]
    keys = torch.cat([a_all, b_all], 0)  # [2N, p]
    logits = queries @ keys.T / temperature  # [2n, 2N]
    rows, pos_col, valid = _cached(_pair_layout, n, big_n, off, a.device)
    return info_nce(logits[rows, pos_col], logits, valid)


def _pair_layout(n: int, big_n: int, off: int, device) -> tuple[Tensor, Tensor, Tensor]:
    """Index tensors of :func:`nt_xent`: query rows [2n], positive columns [2n] and the valid
    negatives [2n, 2N] (neither the query itself nor its positive)."""
    g = torch.arange(n, device=device) + off  # global index of each local row
    self_col = torch.cat([g, g + big_n])  # [2n]
    pos_col = torch.cat([g + big_n, g])  # [2n]
    rows = torch.arange(2 * n, device=device)
    valid = torch.ones(2 * n, 2 * big_n, dtype=torch.bool, device=device)
    valid[rows, self_col] = False
    valid[rows, pos_col] = False
    return rows, pos_col, valid


def _masked_layout(n: int, big_n: int, t: int, off: int, device) -> Tensor:
    """Valid negatives of :func:`masked_term`, [n, T·N + N]: every column but the query's own
    sample, among the T masked views and among the queries."""
    g = torch.arange(n, device=device) + off
    cols = torch.arange(big_n, device=device)
    not_self = cols[None, :] != g[:, None]  # [n, N]
    return torch.cat([not_self.repeat(1, t), not_self], 1)


_LAYOUTS: dict[tuple, object] = {}


def _cached(make, *key):
    """``make(*key)``, made once per key (index tensors that depend only on sizes, the rank's
    offset and the device); made afresh while being traced by torch.compile."""
    if torch.compiler.is_compiling():
        return make(*key)
    k = (make.__name__, *key)
    if k not in _LAYOUTS:
        if len(_LAYOUTS) > 64:
            _LAYOUTS.clear()
        _LAYOUTS[k] = make(*key)
    return _LAYOUTS[k]


def masked_variance(q: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """q_i·μ_i and v_i = q_i^T Σ_i q_i from T masked views, in O(T·B·p) (Σ is never built).

    Args:
        q: [B, p] queries.  masked: [T, B, p] masked-view embeddings of the same samples.
    Returns:
        (q·μ, v): [B] each, with μ_i = mean_t k_{t,i} and Σ_i the population covariance
        (1/T) of the T views of sample i.
    """
    mu = masked.mean(0)  # [B, p]
    proj = torch.einsum("tbp,bp->tb", masked - mu, q)  # [T, B] = q_i·(k_{t,i} − μ_i)
    return (q * mu).sum(-1), proj.pow(2).mean(0)


def masked_term(
    q: Tensor, masked: Tensor, temperature: float, mask_weight: float
) -> tuple[Tensor, Tensor]:
    """InfMasking's masked term: the closed form of E_k[exp(q·k/τ)] for k ~ N(μ, Σ).

    positive  s⁺_i = (q_i·μ_i + ½ (λ/τ) v_i) / τ
    negatives q_i·k_{t,j}/τ (all t, j ≠ i) and q_i·q_j/τ (j ≠ i), over the global batch
    term_i    = −log softmax(s⁺_i | negatives) + ½ (λ/τ) v_i / τ

    Args:
        q: [B, p] normalised queries (the all-modality embeddings of one view).
        masked: [T, B, p] normalised masked-view embeddings of the same samples.
        temperature: τ > 0.
        mask_weight: λ, the scheduled weight of the variance term.

    Returns:
        (mean_i term_i, accuracy): scalars.
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
    valid = _cached(_masked_layout, n, big_n, t, off, q.device)  # [n, T*N + N]
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


def mask_weight(epoch: int, max_epochs: int, mask_lambda: float) -> float:
    """The λ schedule: λ_e = mask_lambda · min(1, (e + 1) / E).

    Args:
        epoch: e, 0-based.
        max_epochs: E, the ramp's horizon (the run's epochs as published, or a longer one:
            then a short run is exactly the start of the long schedule; past E, λ stays at
            mask_lambda).
        mask_lambda: the final λ.

    Returns:
        λ_e.
    """
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return mask_lambda * min(1.0, (epoch + 1) / max_epochs)


def check_finite(out: LossOutput, earlier: Tensor | None = None) -> None:
    """Stop on a non-finite loss, naming the non-finite terms.

    A collective under DDP: call it on every rank; every rank raises if any rank's loss is
    not finite. Reading the flag waits for the device (one host synchronisation).

    Args:
        out: the step's :class:`LossOutput`.
        earlier: optional bool scalar on the device, True if the loss of an earlier step since
            the last check was not finite (checks every k steps accumulate it).

    Raises:
        FloatingPointError: the loss is NaN or infinite on some rank.
    """
    flag = ~torch.isfinite(out.loss.detach())
    if earlier is not None:
        flag = flag | earlier
    bad = bool(flag.item())
    if dist.any_rank(bad, device=out.loss.device):
        names = [k for k, v in out.terms.items() if not torch.isfinite(v.detach()).all()]
        if not names and earlier is not None and bool(earlier.item()):
            names = ["an earlier step since the last check"]
        raise FloatingPointError(
            f"non-finite loss on rank {dist.rank()} (terms: {names or 'none here; another rank'}); "
            "lower the learning rate, raise the temperature, or check the inputs for NaN/inf"
        )
