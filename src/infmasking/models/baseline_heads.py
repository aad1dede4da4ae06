"""Trainable modules that belong to an objective rather than to the model: FactorCL's shared /
unique projection heads and its critics, MAE's decoder (docs/BASELINES.md).

An objective that needs such modules names a ``build`` in its registry entry
(:mod:`infmasking.objectives`); the training module owns what ``build`` returns as
``SSLModule.heads``, so its parameters are optimised and checkpointed with the model. The loss
math stays in :mod:`infmasking.losses`: these modules only produce its tensor arguments.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from infmasking.losses import FactorCLScores
from infmasking.models.fusion import Block
from infmasking.models.masking import MaskingOutput
from infmasking.models.model import MaskedFusionModel, Tokens
from infmasking.models.tokens import sincos_1d

# ---------------------------------------------------------------------------- FactorCL


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConcatCritic(nn.Module):
    """f(a, b) = MLP([a; b]) -> a scalar, scored on every pair of a batch (FactorCL's critic:
    two hidden layers of ``hidden`` units, ReLU).

    Args:
        in_a, in_b: widths of a and b.  hidden: hidden width (published: 512).
    """

    def __init__(self, in_a: int, in_b: int, hidden: int = 512):
        super().__init__()
        self.in_a, self.in_b = in_a, in_b
        self.net = _mlp([in_a + in_b, hidden, hidden, 1])

    def forward(self, a: Tensor, b: Tensor, frozen: bool = False) -> Tensor:
        """Scores [N, N], ``[i, j] = f(a_i, b_j)``, of a [N, in_a] and b [N, in_b].
        ``frozen``: the critic's parameters are constants here (no gradient reaches them).

        The first layer is linear, W [a; b] + c = W_a a + (W_b b + c), so it is applied to the
        N rows of a and of b and summed over the N × N pairs: the [N, N, in_a + in_b] pair
        tensor is never formed (the same scores, a third fewer operations at published sizes).
        """
        params = dict(self.net.named_parameters())
        if frozen:
            params = {k: v.detach() for k, v in params.items()}
        w, c = params["0.weight"], params["0.bias"]  # [h, in_a + in_b], [h]
        pre = (a @ w[:, : self.in_a].T)[:, None] + (b @ w[:, self.in_a :].T + c)[None]
        rest = {k: v for k, v in params.items() if not k.startswith("0.")}
        return functional_call(self.net[1:], rest, (pre,)).squeeze(-1)  # row i col j


class FactorCLHeads(nn.Module):
    """FactorCL's heads and critics for two modalities over backbone features of width d
    (here the unimodal fusion outputs F({x_m})).

    Per modality m, the backbone features are first standardised per dimension
    (``BatchNorm1d(d, affine=False)``: the statistics of the step's batch, both views together,
    in training; running averages in eval mode, so probe features do not depend on the batch).
    F({x_m}) is a LayerNorm output whose common component dwarfs its spread across samples
    (norm 8, spread ≈ 0.06 per dimension at initialisation on trifeatures_tokens): the concat
    critics then score every pair alike, every bound starts at 0 and the critics die before
    they learn (measured, docs/BASELINES.md). On them, a shared head S_m and a unique head U_m
    (Linear(d, d), ReLU, Linear(d, d), the reference code's projection heads); five InfoNCE
    critics and two CLUB critics (concat critics, :class:`ConcatCritic`), one per bound of
    :func:`infmasking.losses.factorcl_loss`.

    Args:
        dim: backbone width d.  modalities: the two modality names, in order.
        critic_hidden: the critics' hidden width (published: 512).
    """

    def __init__(self, dim: int, modalities: Sequence[str], critic_hidden: int = 512):
        super().__init__()
        if len(modalities) != 2:
            raise ValueError(f"FactorCL takes 2 modalities, got {list(modalities)}")
        self.dim, self.modalities = dim, list(modalities)
        self.standardize = nn.ModuleList(nn.BatchNorm1d(dim, affine=False) for _ in range(2))
        self.shared = nn.ModuleList(_mlp([dim, dim, dim]) for _ in range(2))
        self.unique = nn.ModuleList(_mlp([dim, dim, dim]) for _ in range(2))
        h = critic_hidden
        self.critic_shared = ConcatCritic(dim, dim, h)
        self.critic_shared_cond = ConcatCritic(2 * dim, 2 * dim, h)  # CLUB
        self.critic_unique_aug = nn.ModuleList(ConcatCritic(dim, dim, h) for _ in range(2))
        self.critic_unique = ConcatCritic(dim, dim, h)  # CLUB
        self.critic_unique_cond = ConcatCritic(2 * dim, 2 * dim, h)

    def _check(self, feats: Sequence[Tensor], name: str) -> None:
        if len(feats) != 2:
            raise ValueError(f"FactorCL takes 2 modalities, {name} has {len(feats)}")
        for i, f in enumerate(feats):
            if f.dim() != 2 or f.shape[1] != self.dim:
                raise ValueError(f"{name}[{i}] must be [B, d={self.dim}], got {list(f.shape)}")

    def standardized(
        self, h1: Sequence[Tensor], h2: Sequence[Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """The two views' features standardised per modality, both views through one
        normalisation (one set of batch statistics per step in training)."""
        out1, out2 = [], []
        for norm, a, b in zip(self.standardize, h1, h2, strict=True):
            z = norm(torch.cat([a, b], 0))
            out1.append(z[: len(a)])
            out2.append(z[len(a) :])
        return out1, out2

    def scores(self, h1: Sequence[Tensor], h2: Sequence[Tensor]) -> FactorCLScores:
        """Critic scores from the backbone features of the two views, h1 (x') and h2 (x''),
        each 2 tensors [B, d] in modality order."""
        self._check(h1, "h1")
        self._check(h2, "h2")
        h1, h2 = self.standardized(h1, h2)
        s1 = [head(h) for head, h in zip(self.shared, h1, strict=True)]  # S_m'  [B, d]
        s2 = [head(h) for head, h in zip(self.shared, h2, strict=True)]  # S_m''
        u1 = [head(h) for head, h in zip(self.unique, h1, strict=True)]  # U_m'
        u2 = [head(h) for head, h in zip(self.unique, h2, strict=True)]  # U_m''
        sc = [torch.cat([s1[m], s2[m]], 1) for m in range(2)]  # [S_m'; S_m'']  [B, 2d]
        uc = [torch.cat([u1[m], u2[m]], 1) for m in range(2)]  # [U_m'; U_m'']
        aug = tuple(c(u1[m], u2[m]) for m, c in enumerate(self.critic_unique_aug))
        return FactorCLScores(
            shared=self.critic_shared(s1[0], s1[1]),
            shared_cond=self.critic_shared_cond(sc[0], sc[1], frozen=True),
            unique_aug=aug,
            unique=self.critic_unique(u1[0], u1[1], frozen=True),
            unique_cond=self.critic_unique_cond(uc[0], uc[1]),
            critic_shared_cond=self.critic_shared_cond(sc[0].detach(), sc[1].detach()),
            critic_unique=self.critic_unique(u1[0].detach(), u1[1].detach()),
        )

    def probe_features(self, feats: Sequence[Tensor], mods: Sequence[str]) -> Tensor:
        """The features FactorCL probes: [S_m, U_m] of each modality m of ``mods``, side by
        side, [B, 2d·|mods|]. ``feats``: F({x_m}) [B, d] of those modalities, in that order."""
        unknown = [m for m in mods if m not in self.modalities]
        if unknown or len(feats) != len(mods):
            raise ValueError(
                f"probe_features: modalities {list(mods)} (features for {len(feats)}); "
                f"these heads are for {self.modalities}"
            )
        out = []
        for m, f in zip(mods, feats, strict=True):
            i = self.modalities.index(m)
            z = self.standardize[i](f)
            out += [self.shared[i](z), self.unique[i](z)]
        return torch.cat(out, 1)

    def feature_dim(self, n_modalities: int) -> int:
        """Width of :meth:`probe_features` for ``n_modalities`` modalities."""
        return 2 * self.dim * n_modalities


def build_factorcl(cfg, modalities, kinds, shapes) -> FactorCLHeads:
    """The registry's ``build`` for ``factorcl``: heads on the fusion width ``model.dim``."""
    return FactorCLHeads(cfg.model.dim, modalities)


# ---------------------------------------------------------------------------- MAE


def image_grid(length: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) token grid of an image of ``height`` × ``width`` turned into ``length``
    tokens by a convolutional encoder (same aspect ratio)."""
    h = max(1, round(math.sqrt(length * height / width)))
    if length % h:
        raise ValueError(
            f"cannot place {length} tokens on a grid of the image's aspect {height}x{width}"
        )
    return h, length // h


def reconstruction_targets(x: Tensor, kind: str, length: int, patch: int = 8) -> Tensor:
    """What MAE reconstructs for each of a modality's ``length`` tokens, from its raw input.

    - image [B, C, H, W] on an h × w token grid: the pixels of the token's cell, resampled to
      ``patch`` × ``patch`` (area average) -> [B, h·w, C·patch²] (channels last), tokens in
      the adapter's row-major order;
    - sequence [B, L, c]: the step itself when the encoder keeps the length (L tokens), else
      the mean of the steps under each token -> [B, length, c];
    - vector [B, c]: a vector has no part that belongs to one token, so every token's target
      is the whole vector -> [B, length, c].
    """
    if kind == "image":
        b, c, hh, ww = x.shape
        gh, gw = image_grid(length, hh, ww)
        cells = F.adaptive_avg_pool2d(x, (gh * patch, gw * patch))  # [B, C, gh·k, gw·k]
        cells = cells.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 3, 5, 1)
        return cells.reshape(b, gh * gw, patch * patch * c)
    if kind == "sequence":
        if x.shape[1] == length:
            return x
        return F.adaptive_avg_pool1d(x.transpose(1, 2), length).transpose(1, 2)
    if kind == "vector":
        return x[:, None].expand(-1, length, -1)
    raise ValueError(f"unknown modality kind {kind!r}; expected image, sequence or vector")


def target_width(kind: str, shape: Sequence[int], patch: int = 8) -> int:
    """Entries per token of :func:`reconstruction_targets` for a sample of ``shape``."""
    return shape[0] * patch * patch if kind == "image" else shape[-1]


class MAEDecoder(nn.Module):
    """A light MAE decoder over the fusion transformer's tokens, and the masked pass.

    The encoder is the model's own: encoders, adapters and the fusion transformer F, which
    sees the CLS token and the *kept* tokens only (MAE's asymmetric design). The decoder embeds
    F's outputs (Linear d -> d), puts its learnable mask token at every masked position, adds
    a position code (1-D sin-cos over the modality's token index + a learned embedding per
    modality), runs one pre-norm block of width d and a LayerNorm, and predicts each token's
    target with a linear layer per modality.

    Args:
        modalities / kinds / shapes: of the data (kinds: image | sequence | vector).
        dim, n_heads, activation: the fusion's width, heads and MLP activation.
        patch: image targets' resolution per token (``patch`` × ``patch`` pixels).
        norm_target: standardise each image token's target (MAE's normalised pixels);
            sequence and vector targets are reconstructed as they are.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        kinds: dict[str, str],
        shapes: dict[str, Sequence[int]],
        dim: int,
        n_heads: int,
        *,
        activation: str = "quick_gelu",
        patch: int = 8,
        norm_target: bool = True,
    ):
        super().__init__()
        self.modalities, self.kinds = list(modalities), dict(kinds)
        self.patch, self.norm_target = patch, norm_target
        self.embed = nn.Linear(dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.modality_pos = nn.Parameter(torch.zeros(len(self.modalities), dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.modality_pos, std=0.02)
        self.block = Block(dim, n_heads, activation=activation)
        self.norm = nn.LayerNorm(dim)
        self.predict = nn.ModuleDict(
            {m: nn.Linear(dim, target_width(kinds[m], shapes[m], patch)) for m in self.modalities}
        )

    def targets(self, inputs: dict[str, Tensor], tokens: dict[str, Tokens]) -> list[Tensor]:
        """Per modality the reconstruction targets [B, L_m, c_m] (see
        :func:`reconstruction_targets`; image targets standardised with ``norm_target``)."""
        from infmasking.losses import normalized_target

        out = []
        for m in self.modalities:
            t = reconstruction_targets(
                inputs[m].float(), self.kinds[m], tokens[m].x.shape[1], self.patch
            )
            out.append(normalized_target(t) if self.norm_target and self.kinds[m] == "image" else t)
        return out

    def reconstruct(
        self, model: MaskedFusionModel, tokens: dict[str, Tokens], masks: dict[str, MaskingOutput]
    ) -> list[Tensor]:
        """Predictions [B, L_m, c_m] for every token of every modality from the kept tokens
        (``masks``: one masking per modality, [1, B, ·])."""
        kept, kept_bias = [], []
        for m in self.modalities:
            x, bias = tokens[m]
            ids = masks[m].ids_keep[0]  # [B, k]
            kept.append(x.gather(1, ids[..., None].expand(-1, -1, x.shape[-1])))  # [B, k, d]
            kept_bias.append(bias.gather(1, ids))
        enc = self.embed(model.fusion.encode(torch.cat(kept, 1), torch.cat(kept_bias, 1)))
        b, d = enc.shape[0], enc.shape[-1]
        rows, biases, start = [enc[:, :1]], [enc.new_zeros(b, 1)], 1
        for i, m in enumerate(self.modalities):
            x, bias = tokens[m]
            ids, mask = masks[m].ids_keep[0], masks[m].mask[0]  # [B, k], [B, L]
            k, length = ids.shape[1], x.shape[1]
            full = enc.new_zeros(b, length, d).scatter(
                1, ids[..., None].expand(-1, -1, d), enc[:, start : start + k]
            )  # kept outputs at their positions, [B, L, d]
            full = torch.where(mask[..., None], self.mask_token.to(enc.dtype), full)
            pos = sincos_1d(length, d, enc.device).to(enc.dtype) + self.modality_pos[i]
            rows.append(full + pos)
            biases.append(bias.to(enc.dtype))
            start += k
        h = self.norm(self.block(torch.cat(rows, 1), torch.cat(biases, 1)))  # [B, 1 + ΣL, d]
        preds, start = [], 1
        for m in self.modalities:
            length = tokens[m].x.shape[1]
            preds.append(self.predict[m](h[:, start : start + length]))
            start += length
        return preds

    def forward(
        self,
        model: MaskedFusionModel,
        tokens: dict[str, Tokens],
        inputs: dict[str, Tensor],
        mask_ratio: float,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """One view: mask each modality's tokens at ``mask_ratio`` (independently per modality
        and sample), reconstruct. Returns per modality (predictions [B, L_m, c_m], targets
        [B, L_m, c_m], reconstructed [B, L_m] bool = masked and not padding)."""
        masks = model.draw_masks(tokens, 1, mask_ratio, generator)
        preds = self.reconstruct(model, tokens, masks)
        rec = [masks[m].mask[0] & (tokens[m].bias == 0) for m in self.modalities]
        return preds, self.targets(inputs, tokens), rec


def build_mae(cfg, modalities, kinds, shapes) -> MAEDecoder:
    """The registry's ``build`` for ``mae`` (needs ``method.mask_ratio > 0``)."""
    if not cfg.method.mask_ratio > 0:
        raise ValueError(
            f"method 'mae' reconstructs masked tokens: method.mask_ratio must be > 0, "
            f"got {cfg.method.mask_ratio}"
        )
    mc = cfg.model
    return MAEDecoder(modalities, kinds, shapes, mc.dim, mc.n_heads, activation=mc.activation)
