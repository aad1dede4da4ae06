"""Trifeatures without pixels: the same factors, pairs and tasks, as token sequences.

A controlled benchmark that converges in minutes on a CPU. Every item of the bank is a
(shape, texture, colour) triple — 10 values each, the 1000 triples split 80/20 exactly as in
:mod:`infmasking.data.trifeatures` (3 renders per train triple, 1 per test triple) — rendered
as a sequence of ``n_tokens`` tokens of width ``width`` instead of an image:

- each factor f has a fixed codebook ``E_f`` [10, w] of random unit vectors;
- each factor is *spread* over ``spread`` of the token positions (a fixed random choice per
  factor), and every position carrying f holds its own fixed random rotation of ``E_f[v]``,
  so no single token is the factor but any of them reveals part of it;
- positions carrying no factor are *nuisance tokens*; every token also gets a per-render
  nuisance vector (a random direction of norm ``nuisance``) and Gaussian noise of std
  ``noise``; the factor content of a render is scaled by a per-render gain in [0.75, 1.25].

So a masked view (a random 30 % of the tokens at mask_ratio 0.7) keeps part of each factor
most of the time, and the sequence augmentations (drop, noise) perturb what a factor shows.
The codebooks, positions and rotations depend on ``seed`` only through a dedicated stream;
the renders on another. Everything is deterministic from ``seed`` and generated in well
under a second.

Pairs (same shape), biased / unbiased training sets, probe-train / probe-test and the four
tasks (share, unique1, unique2, synergy) are those of Trifeatures
(:func:`~infmasking.data.trifeatures.pair_dataset`); modalities are ``x1`` and ``x2``.
Because each token is linear in the factor codes, a linear probe on the raw inputs reads
shape and texture but not synergy — 1[colour₂ = π(texture₁)] is not a sum of a function of
texture₁ and one of colour₂ — so synergy above chance needs a model that combines the two
sequences (:func:`raw_features` gives the raw-input baseline).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from infmasking.data.base import MultimodalData
from infmasking.data.trifeatures import ImageBank, pair_dataset, split_combinations

__all__ = ["TokenSpec", "load_trifeatures_tokens", "make_token_bank", "raw_features"]


class TokenSpec:
    """Geometry of the token rendering (see the module docstring)."""

    def __init__(
        self,
        n_tokens: int = 12,
        width: int = 32,
        spread: int = 6,
        noise: float = 0.2,
        nuisance: float = 0.5,
    ):
        for arg, v in (("n_tokens", n_tokens), ("width", width), ("spread", spread)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{arg} must be a positive int, got {v!r}")
        if spread > n_tokens:
            raise ValueError(f"spread={spread} must be <= n_tokens={n_tokens}")
        for arg, v in (("noise", noise), ("nuisance", nuisance)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ValueError(f"{arg} must be a number >= 0, got {v!r}")
        self.n_tokens, self.width, self.spread = n_tokens, width, spread
        self.noise, self.nuisance = float(noise), float(nuisance)

    def as_dict(self) -> dict:
        return dict(
            n_tokens=self.n_tokens,
            width=self.width,
            spread=self.spread,
            noise=self.noise,
            nuisance=self.nuisance,
        )


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def make_token_bank(seed: int = 0, spec: TokenSpec | None = None) -> tuple[ImageBank, Tensor, dict]:
    """Render 3 token sequences per train triple and 1 per test triple.

    Returns:
        (labels, tokens, layout): ``labels`` an :class:`ImageBank` whose ``images`` is the
        float [2600, L, w] token bank (rows 0..2399 train, 2400..2599 test); ``tokens`` the
        same tensor; ``layout`` the fixed structure (``carries`` bool [3, L]: which positions
        carry shape / texture / colour).
    """
    spec = spec or TokenSpec()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    L, w = spec.n_tokens, spec.width
    g = torch.Generator().manual_seed(int(np.random.default_rng([seed, 7]).integers(2**62)))
    codebooks = _unit(torch.randn(3, 10, w, generator=g))  # [factor, value, w]
    carries = torch.zeros(3, L, dtype=torch.bool)
    for f in range(3):
        carries[f, torch.randperm(L, generator=g)[: spec.spread]] = True
    rotations = torch.linalg.qr(torch.randn(3, L, w, w, generator=g)).Q  # [factor, position, w, w]

    train, test = split_combinations(seed)
    triples = torch.cat([train.repeat_interleave(3, dim=0), test])  # [2600, 3]
    is_train = torch.arange(len(triples)) < 3 * len(train)
    n = len(triples)
    r = torch.Generator().manual_seed(int(np.random.default_rng([seed, 8]).integers(2**62)))
    tokens = torch.zeros(n, L, w)
    for f in range(3):
        code = codebooks[f][triples[:, f]]  # [n, w]
        per_pos = torch.einsum("lvw,nw->nlv", rotations[f], code)  # [n, L, w]
        tokens += per_pos * carries[f][None, :, None]
    gain = 0.75 + 0.5 * torch.rand(n, 1, 1, generator=r)
    tokens = tokens * gain
    tokens += spec.nuisance * _unit(torch.randn(n, L, w, generator=r))
    tokens += spec.noise * torch.randn(n, L, w, generator=r)
    labels = ImageBank(
        tokens, triples[:, 0].clone(), triples[:, 1].clone(), triples[:, 2].clone(), is_train
    )
    return labels, tokens, {"carries": carries, "spec": spec.as_dict()}


def load_trifeatures_tokens(
    *,
    biased: bool = True,
    seed: int = 0,
    max_pairs: int = 10_000,
    probe_pairs: int = 10_000,
    self_pairs: bool = True,
    n_tokens: int = 12,
    width: int = 32,
    spread: int = 6,
    noise: float = 0.2,
    nuisance: float = 0.5,
) -> MultimodalData:
    """The token Trifeatures dataset: modalities ``x1``, ``x2`` (sequences [L, w]).

    Args:
        biased, seed, max_pairs, probe_pairs, self_pairs: as in
            :func:`~infmasking.data.trifeatures.load_trifeatures`.
        n_tokens, width, spread, noise, nuisance: the rendering (:class:`TokenSpec`).

    Example:
        >>> data = load_trifeatures_tokens(seed=0)
        >>> data.train[torch.arange(4)].inputs["x1"].shape
        torch.Size([4, 12, 32])
    """
    spec = TokenSpec(n_tokens, width, spread, noise, nuisance)
    labels, tokens, layout = make_token_bank(seed, spec)
    data = pair_dataset(
        "trifeatures_tokens",
        labels,
        tokens,
        "sequence",
        biased=biased,
        seed=seed,
        max_pairs=max_pairs,
        probe_pairs=probe_pairs,
        self_pairs=self_pairs,
    )
    data.info.update(layout)
    return data


def raw_features(data: MultimodalData, split: str) -> np.ndarray:
    """The raw-input baseline: both sequences of every pair, flattened and concatenated,
    [P, 2·L·w] (what a linear probe can read without any model)."""
    s = getattr(data, split)
    batch = s[torch.arange(len(s))]
    return torch.cat([batch.inputs[m].flatten(1) for m in data.modalities], 1).numpy()
