"""The published InfMasking training step's cost structure, re-implemented naively, and the
variants of one step (forward only) that ``tests/test_benchmarks.py`` checks against each other
and that ``benchmarks/costs/step_time.py`` times.

  reference     the cost structure of the published code: for each view, one unbatched pass
                per unimodal subset, and for every one of the M+1 modality subsets T masked
                passes, one per view, of full-length sequences (mask token written in place
                with ``torch.where``), each projected by the head; only the all-modality masked
                outputs reach the loss. The loss builds the covariance Σ [B, p, p] explicitly
                (``torch.einsum``) and then q^T Σ q.
  library, library_noshare, library_full, comm, comm_noshare
                the library's ``model.forward`` + ``infmasking_loss`` / ``comm_loss`` with its
                exact savings on or off (see ``step_loss`` and benchmarks/costs/step_time.py).

The parity tests check the library against this reference; the benchmarks time it
(``from infmasking.testing import reference_step``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from infmasking import losses as L
from infmasking.models import MaskedFusionModel, build_model

VARIANTS = ("reference", "library", "library_noshare", "library_full", "comm", "comm_noshare")


# =========================================================================== settings


@dataclass
class Modality:
    """One input modality. ``kind``: image | sequence. ``shape``: per-sample shape.
    ``encoder``: a build_model encoder spec. ``min_len``: sequences only; each sample's real
    length is drawn uniformly in [min_len, L], the rest is padding (None = no padding)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    encoder: dict[str, Any]
    min_len: int | None = None


@dataclass
class Setting:
    name: str
    description: str
    modalities: list[Modality]
    batch: int = 64
    dim: int = 128
    n_heads: int = 4
    n_layers: int = 1
    head_hidden: int = 512
    proj_dim: int = 256
    num_masks: int = 6
    mask_ratio: float = 0.7
    temperature: float = 0.1
    mask_weight: float = 0.5  # λ_e mid-schedule (mask_lambda 1, epoch 50 of 100)
    lr: float = 3e-4
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Setting:
        d = dict(d)
        d["modalities"] = [Modality(**{**m, "shape": tuple(m["shape"])}) for m in d["modalities"]]
        return Setting(**d)

    def replace(self, **kw) -> Setting:
        return dataclasses.replace(self, **kw)


#: The smoke-test setting of the tests (also ``step_time.py --preset tiny``): an image and a
#: padded sequence, so the padding masks are exercised.
TINY = Setting(
    "tiny",
    "Tiny smoke-test setting: image 16 px + padded sequence [6, 5], d=16, p=8, T=3",
    [
        Modality("img", "image", (3, 16, 16), {"name": "convnet", "widths": [4, 8]}),
        Modality("seq", "sequence", (6, 5), {"name": "identity"}, 3),
    ],
    batch=6,
    dim=16,
    n_heads=2,
    n_layers=1,
    head_hidden=8,
    proj_dim=8,
    num_masks=3,
    mask_ratio=0.5,
)


def make_model(
    s: Setting, collapse: bool = True, dtype: torch.dtype = torch.float32
) -> MaskedFusionModel:
    mods = [m.name for m in s.modalities]
    model = build_model(
        mods,
        {m.name: m.kind for m in s.modalities},
        {m.name: tuple(m.shape) for m in s.modalities},
        dim=s.dim,
        n_layers=s.n_layers,
        n_heads=s.n_heads,
        head_hidden=s.head_hidden,
        proj_dim=s.proj_dim,
        encoders={m.name: dict(m.encoder) for m in s.modalities},
        collapse_masked=collapse,
    )
    return model.to(dtype).train()


def make_views(s: Setting, generator: torch.Generator, dtype: torch.dtype = torch.float32):
    """Two already-augmented views: [(inputs, padding), (inputs, padding)]."""
    views = []
    for _ in range(2):
        inputs, padding = {}, {}
        for m in s.modalities:
            if m.kind == "image":
                inputs[m.name] = torch.rand(s.batch, *m.shape, generator=generator, dtype=dtype)
            else:
                length = m.shape[0]
                inputs[m.name] = torch.randn(s.batch, *m.shape, generator=generator, dtype=dtype)
                if m.min_len is not None:
                    real = torch.randint(m.min_len, length + 1, (s.batch,), generator=generator)
                    padding[m.name] = (
                        torch.arange(length)[None, :] >= real[:, None]
                    )  # real steps first
        views.append((inputs, padding))
    return views


# =========================================================================== reference structure


def _masked_pass(model: MaskedFusionModel, tokens, masks, mods: list[str], t: int) -> Tensor:
    """F of view t of the masked subset ``mods``: full-length sequence, mask token written in
    place (``torch.where``), padding bias kept. [B, d]."""
    xs = [
        torch.where(
            masks[m].mask[t][..., None], model.mask_token.to(tokens[m].x.dtype), tokens[m].x
        )
        for m in mods
    ]
    bias = torch.cat([tokens[m].bias for m in mods], 1)
    return model.fusion(torch.cat(xs, 1), bias)


def reference_view(
    model: MaskedFusionModel,
    inputs,
    padding,
    num_masks: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
):
    """One view with the published cost structure: for every subset S in {1}, …, {M}, all: one
    unmasked pass F(x_S) and T masked passes of S, one per view, each projected by the head
    (the published module projects every masked output); only the all-modality masked
    outputs reach the loss, the others are computed and thrown away, as published.

    The all-modality masks are drawn by ``model.draw_masks(tokens, T, ratio, generator)``,
    exactly as ``model.forward`` draws them, so both paths see the same masks for the same
    generator state; the discarded subsets' masks come from the global RNG.

    Returns (z: M+1 tensors [B, p], masked: [T, B, p], discarded: list of [B, p]).
    """
    tokens = model.tokenize(inputs, padding)
    z, discarded = [], []
    for m in model.modalities:
        z.append(model.head(model.fuse(tokens, [m])))
        sub_masks = model.draw_masks({m: tokens[m]}, num_masks, mask_ratio)
        discarded += [
            model.head(_masked_pass(model, tokens, sub_masks, [m], t)) for t in range(num_masks)
        ]
    z.append(model.head(model.fuse(tokens)))
    masks = model.draw_masks(tokens, num_masks, mask_ratio, generator)
    kept = [
        model.head(_masked_pass(model, tokens, masks, model.modalities, t))
        for t in range(num_masks)
    ]
    return z, torch.stack(kept), discarded


def reference_masked_term(q: Tensor, k: Tensor, temperature: float, mask_weight: float) -> Tensor:
    """The masked term with the published structure: Σ [B, p, p] built explicitly.

    q: [B, p] normalised queries; k: [T, B, p] normalised masked views.
    """
    t, b, _ = k.shape
    mu = k.mean(0)  # [B, p]
    c = k - mu  # [T, B, p]
    sigma = torch.einsum("tbp,tbq->bpq", c, c) / t  # [B, p, p]
    v = torch.einsum("bp,bpq,bq->b", q, sigma, q)  # [B] = q_i^T Σ_i q_i
    bonus = 0.5 * (mask_weight / temperature) * v
    pos = (torch.einsum("bp,bp->b", q, mu) + bonus) / temperature  # [B]
    eye = torch.eye(b, dtype=torch.bool, device=q.device)
    neg_k = (
        torch.einsum("bp,tnp->btn", q, k).masked_fill(eye[:, None, :], -math.inf) / temperature
    )  # [B, T, B]
    neg_q = (q @ q.T).masked_fill(eye, -math.inf) / temperature  # [B, B]
    logits = torch.cat([pos[:, None], neg_k.reshape(b, t * b), neg_q], 1)  # [B, 1 + (T+1)B]
    labels = torch.zeros(b, dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels) + (bonus / temperature).mean()


def reference_loss(
    z1, z2, masked1: Tensor, masked2: Tensor, *, temperature: float, mask_weight: float
) -> Tensor:
    """mean([L_mask', L_mask'', CoMM_1, …, CoMM_M, CoMM_all]) with the explicit-Σ masked term;
    every CoMM term as ½[NCE(z'_S, z''_all) + NCE(z''_S, z'_all)] (both halves, also for all)."""
    z1 = [F.normalize(z, dim=-1) for z in z1]
    z2 = [F.normalize(z, dim=-1) for z in z2]
    k1, k2 = F.normalize(masked1, dim=-1), F.normalize(masked2, dim=-1)
    terms = [
        reference_masked_term(z1[-1], k1, temperature, mask_weight),
        reference_masked_term(z2[-1], k2, temperature, mask_weight),
    ]
    for s in range(len(z1)):
        terms.append(
            0.5
            * (L.nt_xent(z1[s], z2[-1], temperature)[0] + L.nt_xent(z2[s], z1[-1], temperature)[0])
        )
    return torch.stack(terms).mean()


# =========================================================================== steps


def step_loss(
    variant: str,
    model: MaskedFusionModel,
    views,
    s: Setting,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The loss of one training step of ``variant`` (forward only)."""
    (x1, p1), (x2, p2) = views
    # all rows in the published structure and with the savings off
    model.fusion.cls_only_last = variant in ("library", "library_noshare", "comm", "comm_noshare")
    model.shared_kv = variant in ("library", "comm")
    if variant == "reference":
        z1, k1, d1 = reference_view(model, x1, p1, s.num_masks, s.mask_ratio, generator)
        z2, k2, d2 = reference_view(model, x2, p2, s.num_masks, s.mask_ratio, generator)
        loss = reference_loss(z1, z2, k1, k2, temperature=s.temperature, mask_weight=s.mask_weight)
        del d1, d2  # the published outputs dict dies with the training step, before backward
        return loss
    if variant in ("library", "library_noshare", "library_full"):
        model.collapse_masked = variant != "library_full"
        kw = {"num_masks": s.num_masks, "mask_ratio": s.mask_ratio, "generator": generator}
        o1, o2 = model(x1, p1, **kw), model(x2, p2, **kw)
        return L.infmasking_loss(
            o1.unimodal + [o1.full],
            o2.unimodal + [o2.full],
            o1.masked,
            o2.masked,
            temperature=s.temperature,
            mask_weight=s.mask_weight,
        ).loss
    if variant in ("comm", "comm_noshare"):
        o1, o2 = model(x1, p1), model(x2, p2)
        return L.comm_loss(
            o1.unimodal + [o1.full], o2.unimodal + [o2.full], temperature=s.temperature
        ).loss
    raise ValueError(f"unknown variant {variant!r}; valid: {VARIANTS}")
