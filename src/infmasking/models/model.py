"""The masked fusion model: per-modality encoders and adapters, the fusion transformer F,
a learnable mask token and the projection head g (docs/METHOD.md §1).

One training view needs the M unimodal passes, the all-modality pass and the T masked views
of the all-modality set (no masked pass of a unimodal subset is ever run). With shared
first-block keys/values (``shared_kv=True``, the default with CLS pooling) they are one call:
the first block's LayerNorm and key/value projection run once on the view's tokens, and each
pass is a gather of those keys/values under its own key bias; with one block the CLS query is
shared too, so each pass is one softmax over a subset of the same logits. Without it (or with
mean pooling) a view costs three batched fusion passes: the M unimodal inputs as M·B rows
(shorter modalities padded with −inf key bias), the all-modality pass, and the T masked views
as T·B rows.

Collapsed mask tokens (``collapse_masked=True``, the default): in a masked view every masked
position holds the same mask-token vector, and identical tokens stay identical through every
block (same input → same queries, keys, values, and the same attention row). So the c masked
positions of a modality are represented by one mask token whose key bias is log c: each
query then gives it weight c·exp(s), exactly what the c copies received. The pooled output
is unchanged up to rounding, and a masked pass costs in proportion to the kept tokens (on the
shared path the same count enters as the multiplicity of the mask token in the softmax).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from infmasking.models.fusion import FusionTransformer, padding_bias
from infmasking.models.heads import ProjectionHead
from infmasking.models.masking import MaskingOutput, num_kept, random_masking


class Tokens(NamedTuple):
    """One modality's tokens: ``x`` [B, L, d] and key bias [B, L] (0 real, −inf padded)."""

    x: Tensor
    bias: Tensor


class ModelOutput(NamedTuple):
    """Projected embeddings of one view. ``unimodal``: M tensors [B, p] (modality order);
    ``full``: [B, p]; ``masked``: [T, B, p]; ``features``: F(all) [B, d] before the head;
    ``unimodal_features``: the M F({x_m}) [B, d] before the head; ``tokens``: modality ->
    :class:`Tokens` of the view, with ``forward(..., return_tokens=True)`` (for objectives
    with their own modules, e.g. MAE), else None."""

    unimodal: list[Tensor] | None
    full: Tensor | None
    masked: Tensor | None
    features: Tensor | None
    unimodal_features: list[Tensor] | None = None
    tokens: dict[str, Tokens] | None = None


class MaskedFusionModel(nn.Module):
    """Encoders + adapters (keyed by modality) -> fusion transformer -> projection head.

    Args:
        modalities: modality names in order (the order of the unimodal embeddings).
        encoders: modality -> encoder (sequence encoders take ``(x, padding)``).
        adapters: modality -> adapter mapping the encoder output to tokens [B, L, d].
        fusion: the :class:`FusionTransformer` of width d.
        head: projection head [N, d] -> [N, p] (applied separately to each group of B rows,
            so batch-norm statistics are those of one view, as published).
        collapse_masked: represent each modality's masked positions by one log-count token.
        init: ``reference`` — mask token ~ N(0, 0.02²) truncated at ±0.02, as published;
            ``xavier`` — truncated at ±2 (the library's earlier choice).
        shared_kv: with CLS pooling, run all passes of a view through
            :meth:`FusionTransformer.forward_shared` (first-block keys and values computed once
            per view; exact). False: one fusion call per pass group.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        encoders: dict[str, nn.Module],
        adapters: dict[str, nn.Module],
        fusion: FusionTransformer,
        head: nn.Module,
        *,
        collapse_masked: bool = True,
        init: str = "reference",
        shared_kv: bool = True,
    ):
        super().__init__()
        self.modalities = list(modalities)
        for name, mods in (("encoders", encoders), ("adapters", adapters)):
            if set(mods) != set(self.modalities):
                raise ValueError(
                    f"{name} must have one entry per modality {self.modalities}, got {sorted(mods)}"
                )
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.adapters = nn.ModuleDict({m: adapters[m] for m in self.modalities})
        self.fusion = fusion
        self.head = head
        self.mask_token = nn.Parameter(torch.zeros(fusion.dim))
        cut = 0.02 if init == "reference" else 2.0
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-cut, b=cut)
        self.collapse_masked = collapse_masked
        self.shared_kv = shared_kv

    # ------------------------------------------------------------------ tokens

    def _check_inputs(
        self, inputs: dict[str, Tensor], padding: dict[str, Tensor], mods: Sequence[str]
    ) -> None:
        if set(inputs) != set(mods):
            raise ValueError(
                f"inputs has modalities {sorted(inputs)}; "
                f"this model was built for {self.modalities}"
                + ("" if list(mods) == self.modalities else f" (asked for {list(mods)})")
            )
        extra = set(padding) - set(mods)
        if extra:
            raise ValueError(
                f"padding has unknown modalities {sorted(extra)}; expected a subset of {list(mods)}"
            )
        if torch.compiler.is_compiling():  # traced (torch.export): sizes are symbolic
            return
        sizes = {m: x.shape[0] for m, x in inputs.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"inputs have different batch sizes {sizes}")

    def tokenize(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> dict[str, Tokens]:
        """Encode and adapt each modality (default all; ``modalities``: a subset, in the
        model's order): modality -> :class:`Tokens` ([B, L_m, d], [B, L_m])."""
        padding = padding or {}
        mods = self.modalities if modalities is None else list(modalities)
        unknown = [m for m in mods if m not in self.modalities]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r}; this model has {self.modalities}")
        self._check_inputs(inputs, padding, mods)
        out = {}
        for m in mods:
            pad = padding.get(m)
            enc = self.encoders[m]
            h = enc(inputs[m], pad) if enc.out_kind == "sequence" else enc(inputs[m])
            x = self.adapters[m](h)
            if pad is not None and pad.shape != x.shape[:2]:
                raise ValueError(
                    f"padding[{m!r}] has shape {list(pad.shape)}, tokens are {list(x.shape[:2])}"
                )
            out[m] = Tokens(x, padding_bias(pad, x.shape[:2], x.device, x.dtype))
        return out

    # ------------------------------------------------------------------ fusion passes

    def fuse(self, tokens: dict[str, Tokens], modalities: Sequence[str] | None = None) -> Tensor:
        """F over a subset of modalities (default all): [B, d]."""
        mods = self.modalities if modalities is None else list(modalities)
        unknown = [m for m in mods if m not in tokens]
        if unknown or not mods:
            raise ValueError(f"cannot fuse modalities {mods}; available: {list(tokens)}")
        x = torch.cat([tokens[m].x for m in mods], 1)
        bias = torch.cat([tokens[m].bias for m in mods], 1)
        return self.fusion(x, bias)

    def fuse_unimodal(self, tokens: dict[str, Tokens]) -> list[Tensor]:
        """The M unimodal embeddings F({x_m}) in one pass of M·B rows: M tensors [B, d]."""
        lmax = max(t.x.shape[1] for t in tokens.values())
        xs, biases = [], []
        for m in self.modalities:
            x, bias = tokens[m]
            extra = lmax - x.shape[1]
            if extra:
                x = torch.cat([x, x.new_zeros(x.shape[0], extra, x.shape[2])], 1)
                bias = torch.cat([bias, bias.new_full((bias.shape[0], extra), -math.inf)], 1)
            xs.append(x)
            biases.append(bias)
        fused = self.fusion(torch.cat(xs, 0), torch.cat(biases, 0))  # [M·B, d]
        return list(fused.chunk(len(self.modalities), 0))

    def draw_masks(
        self,
        tokens: dict[str, Tokens],
        num_masks: int,
        mask_ratio: float,
        generator: torch.Generator | None = None,
    ) -> dict[str, MaskingOutput]:
        """Independent random maskings of each modality: modality -> [T, B, ·] masks.

        Warns (once per model) when a modality keeps no token at this mask_ratio: every masked
        view then masks it entirely."""
        empty = [m for m, t in tokens.items() if num_kept(t.x.shape[1], mask_ratio) == 0]
        if empty and not getattr(self, "_warned_empty", False):
            self._warned_empty = True
            warnings.warn(
                f"mask_ratio {mask_ratio} keeps no token of modalities {empty} "
                f"(lengths {[tokens[m].x.shape[1] for m in empty]}): every masked view masks them "
                "entirely; use more tokens (e.g. --model.vector_tokens) "
                "or a lower --method.mask_ratio",
                stacklevel=2,
            )
        return {
            m: random_masking(
                t.x.shape[0],
                t.x.shape[1],
                mask_ratio,
                num_masks=num_masks,
                generator=generator,
                device=t.x.device,
            )
            for m, t in tokens.items()
        }

    def fuse_masked(self, tokens: dict[str, Tokens], masks: dict[str, MaskingOutput]) -> Tensor:
        """F of the T masked all-modality views, batched in one pass of T·B rows: [T, B, d]."""
        xs, biases = [], []
        for m in self.modalities:
            x, bias = tokens[m]  # [B, L, d], [B, L]
            ids, mask = masks[m]  # [T, B, k], [T, B, L]
            t, b, k = ids.shape
            d = x.shape[-1]
            if self.collapse_masked:
                kept = (
                    x[None].expand(t, -1, -1, -1).gather(2, ids[..., None].expand(-1, -1, -1, d))
                )  # [T, B, k, d]
                kept_bias = bias[None].expand(t, -1, -1).gather(2, ids)  # [T, B, k]
                count = (mask & (bias[None] == 0)).sum(
                    -1, keepdim=True
                )  # [T, B, 1] masked real tokens
                xs += [kept, self.mask_token.to(x.dtype).expand(t, b, 1, d)]
                biases += [kept_bias, count.to(x.dtype).log()]  # log 0 = −inf: no masked token
            else:
                xs.append(
                    torch.where(mask[..., None], self.mask_token.to(x.dtype), x[None])
                )  # [T, B, L, d]
                biases.append(bias[None].expand(t, -1, -1))
        x = torch.cat(xs, 2)
        bias = torch.cat(biases, 2)
        t, b = x.shape[:2]
        return self.fusion(x.reshape(t * b, *x.shape[2:]), bias.reshape(t * b, -1)).reshape(
            t, b, -1
        )

    def fuse_shared(
        self,
        tokens: dict[str, Tokens],
        unimodal: bool,
        full: bool,
        masks: dict[str, MaskingOutput] | None,
    ) -> tuple[list[Tensor] | None, Tensor | None, Tensor | None]:
        """The unimodal, all-modality and masked passes of one view as passes over one token bank
        (:meth:`FusionTransformer.forward_shared`): M unimodal [B, d], full [B, d],
        masked [T, B, d].

        Bank: the tokens of every modality in order, then the mask token. A masked view's kept
        tokens are gathered from the bank; its masked real tokens are the bank's mask token,
        once with key bias log(count) (collapsed) or once per position (not collapsed)."""
        xs = [tokens[m].x for m in self.modalities]
        biases = [tokens[m].bias for m in self.modalities]
        b, d = xs[0].shape[0], xs[0].shape[2]
        lens = [x.shape[1] for x in xs]
        offsets = [sum(lens[:i]) for i in range(len(lens))]
        n_tok, dev = sum(lens), xs[0].device
        bank = torch.cat(
            [*xs, self.mask_token.to(xs[0].dtype).expand(b, 1, d)], 1
        )  # [B, n_tok + 1, d]
        bias_all = torch.cat(biases, 1)  # [B, n_tok]
        passes, groups = [], []
        if unimodal:
            lmax = max(lens)
            idx, kb = [], []
            for off, n, bias in zip(offsets, lens, biases, strict=True):
                pos = torch.arange(off, off + lmax, device=dev).clamp_max(
                    off + n - 1
                )  # pads: any position
                idx.append(pos.expand(b, -1))
                kb.append(torch.cat([bias, bias.new_full((b, lmax - n), -math.inf)], 1))
            passes.append((torch.stack(idx), torch.stack(kb)))
            groups.append("unimodal")
        if full:
            passes.append((torch.arange(n_tok, device=dev).expand(1, b, -1), bias_all[None]))
            groups.append("full")
        if masks is not None:
            passes.append(self._masked_pass(biases, offsets, n_tok, masks))
            groups.append("masked")
        out = dict(zip(groups, self.fusion.forward_shared(bank, passes), strict=True))
        uni = list(out["unimodal"].unbind(0)) if unimodal else None
        return uni, out["full"][0] if full else None, out.get("masked")

    def _masked_pass(
        self, biases: list[Tensor], offsets: list[int], n_tok: int, masks: dict[str, MaskingOutput]
    ) -> tuple[Tensor, Tensor]:
        """Bank positions [T, B, n] and key bias [T, B, n] of the T masked all-modality views."""
        if self.collapse_masked:
            idx, kb, count = [], [], 0
            for m, off, bias in zip(self.modalities, offsets, biases, strict=True):
                ids, mask = masks[m]  # [T, B, k], [T, B, L]
                idx.append(ids + off)
                kb.append(bias[None].expand(ids.shape[0], -1, -1).gather(2, ids))
                count = count + (mask & (bias[None] == 0)).sum(
                    -1, keepdim=True
                )  # masked real tokens
            idx.append(torch.full_like(count, n_tok))  # the mask token, once, weighted by the count
            kb.append(count.to(biases[0].dtype).log())  # log 0 = −inf: nothing masked
            return torch.cat(idx, 2), torch.cat(kb, 2)
        mask = torch.cat([masks[m].mask for m in self.modalities], 2)  # [T, B, n_tok]
        pos = torch.arange(n_tok, device=mask.device).expand_as(mask)
        bias = torch.cat(biases, 1)[None].expand_as(mask)
        return torch.where(mask, torch.full_like(pos, n_tok), pos), bias

    # ------------------------------------------------------------------ public API

    def embed(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor] | None = None,
        kind: str = "fused",
    ) -> Tensor:
        """Frozen-probe features before the head: ``kind="fused"``: F(all) [B, d];
        ``kind="concat"``: the unimodal F({x_m}) side by side in modality order, [B, M·d]."""
        tokens = self.tokenize(inputs, padding)
        return features_of(self, tokens, self.modalities, kind)

    def forward(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor] | None = None,
        *,
        unimodal: bool = True,
        full: bool = True,
        num_masks: int = 0,
        mask_ratio: float = 0.0,
        generator: torch.Generator | None = None,
        return_tokens: bool = False,
    ) -> ModelOutput:
        """Projected embeddings of one view (see :class:`ModelOutput`).

        Args:
            inputs: modality -> [B, ...]; padding: modality -> [B, L] bool (True = padded).
            unimodal / full: compute the M unimodal / the all-modality embeddings.
            num_masks: T masked views of the all-modality set (0 = none); mask_ratio in [0, 1).
            return_tokens: also return the view's tokens (``ModelOutput.tokens``).
        """
        return self.forward_views(
            [(inputs, padding)],
            unimodal=unimodal,
            full=full,
            num_masks=num_masks,
            mask_ratio=mask_ratio,
            generator=generator,
            return_tokens=return_tokens,
        )[0]

    def _per_sample(self, modules: Sequence[nn.Module]) -> bool:
        """True when ``modules`` treat every sample alone in this mode: no batch norm (batch
        statistics) and no active dropout (its random numbers would move between samples)."""
        for module in modules:
            for sub in module.modules():
                if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                    return False
                p = getattr(sub, "dropout", getattr(sub, "p", 0.0))
                if self.training and isinstance(p, float) and p > 0:
                    return False
        return True

    def forward_views(
        self,
        views: Sequence[tuple[dict[str, Tensor], dict[str, Tensor] | None]],
        *,
        unimodal: bool = True,
        full: bool = True,
        num_masks: int = 0,
        mask_ratio: float = 0.0,
        generator: torch.Generator | None = None,
        return_tokens: bool = False,
    ) -> list[ModelOutput]:
        """:meth:`forward` of V views of the same B samples, as one pass of V·B rows where that
        changes nothing: V :class:`ModelOutput`, those of V calls of :meth:`forward`.

        The encoders run on the V views at once unless they hold batch norm or active dropout
        (then view by view: batch statistics stay per view, as published); the masks are drawn
        view by view (the generator's stream of V calls); the fusion passes of all views run
        together, and the head's batch norms take their statistics group by group in the
        order of V calls. Halves the operations dispatched per training step."""
        if num_masks < 0:
            raise ValueError(f"num_masks must be >= 0, got {num_masks}")
        n_views = len(views)
        if n_views > 1 and not self._per_sample([self.fusion]):
            return [self.forward_views([v], unimodal=unimodal, full=full, num_masks=num_masks,
                                       mask_ratio=mask_ratio, generator=generator,
                                       return_tokens=return_tokens)[0]
                    for v in views]  # fmt: skip
        if n_views > 1 and self._per_sample([self.encoders, self.adapters]):
            joined = _cat_views(views)
            per_view = _split_tokens(self.tokenize(*joined), n_views)
        else:
            per_view = [self.tokenize(x, p) for x, p in views]
        masks = None
        if num_masks:
            drawn = [self.draw_masks(t, num_masks, mask_ratio, generator) for t in per_view]
            masks = {
                m: MaskingOutput(*(torch.cat(parts, 1) for parts in zip(*(d[m] for d in drawn))))
                for m in drawn[0]
            }
        tokens = per_view[0] if n_views == 1 else _cat_tokens(per_view)
        if self.shared_kv and self.fusion.pool == "cls" and (unimodal or full or masks is not None):
            uni, feats, h = self.fuse_shared(tokens, unimodal, full, masks)
        else:
            uni = self.fuse_unimodal(tokens) if unimodal else None
            feats = self.fuse(tokens) if full else None
            h = self.fuse_masked(tokens, masks) if masks is not None else None
        # per view, the head on every group of B rows, in the published order (unimodal, full,
        # masked) and view after view: batch-norm statistics are per group, and their running
        # updates follow this order
        split = lambda t, dim=0: t.chunk(n_views, dim) if t is not None else [None] * n_views
        uni_v = [list(x) for x in zip(*(split(u) for u in uni))] if uni else [None] * n_views
        feats_v, h_v = split(feats), split(h, 1)
        groups = []
        for v in range(n_views):
            groups += [*(uni_v[v] or []), *([feats_v[v]] if full else [])]
            groups += list(h_v[v].unbind(0)) if h is not None else []
        if not groups:
            return [ModelOutput(None, None, None, None, None, t if return_tokens else None)
                    for t in per_view]  # fmt: skip
        if isinstance(self.head, ProjectionHead):
            z = self.head.grouped(torch.stack(groups)).unbind(0)  # V·(M + 1 + T) tensors [B, p]
        else:
            z = [self.head(x) for x in groups]
        per = len(groups) // n_views
        outs = []
        for v in range(n_views):
            zv = z[v * per : (v + 1) * per]
            n_uni = len(uni_v[v]) if uni else 0
            outs.append(
                ModelOutput(
                    list(zv[:n_uni]) if uni else None,
                    zv[n_uni] if full else None,
                    torch.stack(zv[n_uni + full :]) if h is not None else None,
                    feats_v[v],
                    uni_v[v],
                    per_view[v] if return_tokens else None,
                )
            )
        return outs


def _cat_views(views) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """V views' inputs and padding concatenated along the batch: [V·B, ...]."""
    inputs = {m: torch.cat([x[m] for x, _ in views]) for m in views[0][0]}
    pads = [p or {} for _, p in views]
    padding = {m: torch.cat([p[m] for p in pads]) for m in pads[0]}
    return inputs, padding


def _split_tokens(tokens: dict[str, Tokens], n: int) -> list[dict[str, Tokens]]:
    """Tokens of V·B rows -> V dicts of B rows."""
    parts = {m: (t.x.chunk(n), t.bias.chunk(n)) for m, t in tokens.items()}
    return [{m: Tokens(x[v], b[v]) for m, (x, b) in parts.items()} for v in range(n)]


def _cat_tokens(per_view: list[dict[str, Tokens]]) -> dict[str, Tokens]:
    """V dicts of B-row tokens -> one dict of V·B rows."""
    return {
        m: Tokens(torch.cat([t[m].x for t in per_view]), torch.cat([t[m].bias for t in per_view]))
        for m in per_view[0]
    }


def features_of(
    model: MaskedFusionModel,
    tokens: dict[str, Tokens],
    mods: Sequence[str],
    kind: str,
    heads: nn.Module | None = None,
) -> Tensor:
    """Features of the modalities ``mods`` from their tokens: "fused" = F(mods) [B, d];
    "concat" = [F({m}) for m in mods] concatenated, [B, |mods|·d]; "heads" = the objective's
    own feature heads on the unimodal F({m}) (``heads.probe_features(feats, mods)``, e.g.
    FactorCL's shared and unique representations), which needs the objective's ``heads``."""
    if kind == "fused":
        return model.fuse(tokens, mods)
    if kind == "concat":
        if list(mods) == list(model.modalities):
            return torch.cat(model.fuse_unimodal(tokens), 1)
        return torch.cat([model.fuse(tokens, [m]) for m in mods], 1)
    if kind == "heads":
        if heads is None or not hasattr(heads, "probe_features"):
            raise ValueError(
                "features 'heads' need the objective's trained heads (load the run with "
                "infmasking.embed.load_run, or use eval.features fused / concat)"
            )
        uni = model.fuse_unimodal(tokens) if list(mods) == list(model.modalities) else None
        feats = uni or [model.fuse(tokens, [m]) for m in mods]
        return heads.probe_features(feats, list(mods))
    raise ValueError(f"features: expected 'fused', 'concat' or 'heads', got {kind!r}")
