"""The fusion transformer F (docs/METHOD.md §1.2): CLS token + pre-norm self-attention blocks +
final LayerNorm + pooling, over the concatenated tokens of any subset of modalities.

Which keys a token may attend to is given by an additive key bias [B, L]: 0 for a normal
token, −inf for padding, and log(c) for one token that stands for c identical tokens (the
masked positions of a view, see ``MaskedFusionModel``). One mechanism serves padding masks,
unimodal passes of different lengths batched together, and collapsed mask tokens.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Activation = Literal["quick_gelu", "gelu"]
Init = Literal["reference", "xavier"]


class QuickGELU(nn.Module):
    """x · sigmoid(1.702 x): the fusion-MLP activation of the published code."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def make_activation(name: str) -> nn.Module:
    """``quick_gelu`` (published) or ``gelu`` (exact erf GELU)."""
    if name == "quick_gelu":
        return QuickGELU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"model.activation must be 'quick_gelu' or 'gelu', got {name!r}")


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) (MLP ratio 4)."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        activation: Activation = "quick_gelu",
    ):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"fusion width d={dim} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), make_activation(activation), nn.Linear(hidden, dim)
        )
        self.dropout = dropout

    def queries(self, h: Tensor) -> Tensor:
        """Query projection of normed tokens h [..., d] -> [..., d]."""
        d = h.shape[-1]
        return F.linear(h, self.qkv.weight[:d], self.qkv.bias[:d])

    def keys_values(self, h: Tensor) -> Tensor:
        """Key and value projections of normed tokens h [..., d] -> [..., 2d]
        (keys, then values)."""
        d = h.shape[-1]
        return F.linear(h, self.qkv.weight[d:], self.qkv.bias[d:])

    def attend(self, x: Tensor, q: Tensor, kv: Tensor, key_bias: Tensor | None) -> Tensor:
        """The block after its projections. x: [B, n_q, d] the query rows (residual);
        q: [B, n_q, d]; kv: [B, L, 2d]; key_bias: [B, L] or None -> [B, n_q, d]."""
        b, nq, d = x.shape
        hd = d // self.n_heads
        q = q.reshape(b, nq, self.n_heads, hd).transpose(1, 2)  # [B, H, n_q, d_h]
        k, v = kv.reshape(b, kv.shape[1], 2, self.n_heads, hd).permute(
            2, 0, 3, 1, 4
        )  # [B, H, L, d_h]
        mask = None if key_bias is None else key_bias[:, None, None, :].to(q.dtype)  # [B, 1, 1, L]
        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=drop
        )  # [B, H, n_q, d_h]
        return self.finish(x, a.transpose(1, 2).reshape(b, nq, d))

    def finish(self, x: Tensor, a: Tensor) -> Tensor:
        """Residual, output projection and MLP: x, a [..., d] (a = attention output) -> [..., d]."""
        x = x + self.proj(a)
        return x + self.mlp(self.norm2(x))

    def forward(self, x: Tensor, key_bias: Tensor | None, n_queries: int | None = None) -> Tensor:
        """x: [B, L, d]; key_bias: [B, L] additive attention bias on keys (or None).

        ``n_queries``: compute only the first n output rows (every token still serves as key
        and value) -> [B, n, d]; the rows are exactly those of the full block."""
        nq = x.shape[1] if n_queries is None else n_queries
        h = self.norm1(x)
        return self.attend(x[:, :nq], self.queries(h[:, :nq]), self.keys_values(h), key_bias)


class FusionTransformer(nn.Module):
    """F: [B, L, d] tokens (+ key bias) -> [B, d] pooled embedding.

    Args:
        dim: token width d.  n_layers, n_heads: blocks and heads.
        pool: "cls" (the CLS token's output) or "mean" (mean over the non-CLS tokens,
            each weighted by its multiplicity exp(key_bias): padding 0, a collapsed token c).
        cls_only_last: with CLS pooling, the last block computes the CLS row only (its
            query, attention output, projection and MLP; all tokens stay keys and values).
            Exact — the other rows of the last block are never read — and it removes most
            of the last block's work (with one block, most of the fusion's).
        activation: fusion-MLP activation, ``quick_gelu`` (published) or ``gelu``.
        init: ``reference`` (the published initialisation, :func:`reference_init`) or
            ``xavier`` (Xavier-uniform linear weights, zero biases, CLS ~ N(0, 0.02²)).
    """

    def __init__(
        self,
        dim: int,
        n_layers: int = 1,
        n_heads: int = 8,
        *,
        pool: Literal["cls", "mean"] = "cls",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cls_only_last: bool = True,
        activation: Activation = "quick_gelu",
        init: Init = "reference",
    ):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        self.dim, self.pool, self.cls_only_last = dim, pool, cls_only_last
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(
            Block(dim, n_heads, mlp_ratio, dropout, activation) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        if init == "reference":
            reference_init(self)
        elif init == "xavier":
            nn.init.trunc_normal_(self.cls, std=0.02)
            self.apply(_init_weights)
        else:
            raise ValueError(f"model.init must be 'reference' or 'xavier', got {init!r}")

    def forward(self, tokens: Tensor, key_bias: Tensor | None = None) -> Tensor:
        """tokens: [B, L, d]; key_bias: [B, L] (0 / −inf / log c) or None -> [B, d]."""
        b = tokens.shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1), tokens], dim=1)  # [B, 1 + L, d]
        bias = None
        if key_bias is not None:
            bias = torch.cat([key_bias.new_zeros(b, 1), key_bias], dim=1)  # [B, 1 + L]
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            only_cls = i == last and self.pool == "cls" and self.cls_only_last
            x = block(x, bias, n_queries=1 if only_cls else None)
        x = self.norm(x)
        if self.pool == "cls":
            return x[:, 0]
        w = (
            torch.ones(b, x.shape[1] - 1, device=x.device, dtype=x.dtype)
            if key_bias is None
            else key_bias.exp()
        )
        return (w[..., None] * x[:, 1:]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-12)

    def encode(self, tokens: Tensor, key_bias: Tensor | None = None) -> Tensor:
        """Every output row, not pooled (for token-level objectives such as MAE): tokens
        [B, L, d] (+ key bias [B, L]) -> [B, 1 + L, d], the CLS row first, after the final
        LayerNorm."""
        b = tokens.shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1), tokens], dim=1)  # [B, 1 + L, d]
        bias = None if key_bias is None else torch.cat([key_bias.new_zeros(b, 1), key_bias], 1)
        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x)

    def forward_shared(self, bank: Tensor, passes: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
        """Several passes over subsets of one token bank, sharing the first block's work.

        Every pass of a view (unimodal, all-modality, masked) reads its tokens from the same
        vectors, and LayerNorm and the q/k/v projections act on each token alone: so the
        first block's normed tokens, keys and values are computed once for the bank and
        gathered by each pass; only each pass's key bias differs. With one block and
        ``cls_only_last`` the CLS query is shared too, so each pass is one softmax of the
        same logits under its own key bias (a bank position held c times in the pass gets
        log c, an absent one −inf), then the CLS row's projection and MLP. Equal to
        ``forward`` on each pass's gathered tokens up to rounding.

        Args:
            bank: [B, N, d] the view's distinct token vectors (without CLS).
            passes: per group of passes, ``(idx, key_bias)``: idx [G, B, n] long positions
                into the bank (a position may repeat), key_bias [G, B, n] (0 / −inf / log c).
        Returns:
            per group, the CLS embeddings [G, B, d].
        """
        if self.pool != "cls":
            raise ValueError(
                "forward_shared needs CLS pooling (mean pooling uses forward per pass)"
            )
        b, _, d = bank.shape
        first, rest = self.blocks[0], self.blocks[1:]
        cls = self.cls.to(bank.dtype)  # [1, 1, d]
        x = torch.cat([cls.expand(b, -1, -1), bank], 1)  # [B, 1 + N, d]; CLS at position 0
        h = first.norm1(x)
        kv = first.keys_values(h)  # [B, 1 + N, 2d] once for every pass
        only_cls = not rest and self.cls_only_last
        if only_cls:
            heads, hd = first.n_heads, d // first.n_heads
            q_cls = first.queries(
                h[:1, :1]
            )  # [1, 1, d]: the same CLS query in every pass and sample
            k, v = kv.reshape(b, -1, 2, heads, hd).unbind(2)  # [B, 1 + N, H, d_h]
            logits = (
                torch.einsum("hc,blhc->bhl", q_cls.reshape(heads, hd), k) * hd**-0.5
            )  # [B, H, 1 + N]
        else:
            q = first.queries(h)  # [B, 1 + N, d]
        out = []
        for idx, key_bias in passes:
            g, _, n = idx.shape
            idx = torch.cat([idx.new_zeros(g, b, 1), idx + 1], 2)  # [G, B, 1 + n]: CLS first
            bias = torch.cat([key_bias.new_zeros(g, b, 1), key_bias], 2).to(
                bank.dtype
            )  # [G, B, 1 + n]
            if only_cls:
                # multiplicity of each bank position in each pass (0 = absent, c = c copies),
                # summed in at least float32 so that counts stay exact under bf16 autocast
                acc = torch.promote_types(bias.dtype, torch.float32)
                mult = torch.zeros(g, b, x.shape[1], dtype=acc, device=bias.device).scatter_add_(
                    2, idx, bias.to(acc).exp()
                )  # [G, B, 1 + N]
                log_mult = mult.log().to(logits.dtype)[:, :, None]
                w = torch.softmax(logits[None] + log_mult, -1)  # [G, B, H, 1 + N]
                if first.training and first.dropout:
                    w = F.dropout(w, first.dropout)
                a = torch.einsum("gbhl,blhc->gbhc", w, v).reshape(g, b, d)
                y = first.finish(cls.reshape(1, 1, d), a)  # [G, B, d]
            else:
                rows = g * b
                y = first.attend(
                    _rows(x, idx).reshape(rows, n + 1, d),
                    _rows(q, idx).reshape(rows, n + 1, d),
                    _rows(kv, idx).reshape(rows, n + 1, 2 * d),
                    bias.reshape(rows, -1),
                )
                flat = bias.reshape(rows, -1)
                for i, block in enumerate(rest):
                    last = i == len(rest) - 1
                    y = block(y, flat, n_queries=1 if last and self.cls_only_last else None)
                y = y[:, 0].reshape(g, b, d)
            out.append(self.norm(y))
        return out


def reference_init(fusion: FusionTransformer) -> None:
    """The published initialisation of the fusion transformer (width d, n blocks):
    CLS ~ N(0, 1); per block the attention in-projection ~ N(0, d^-1/2), the attention output
    projection and the MLP's second layer ~ N(0, d^-1/2 · (2n)^-1/2), the MLP's first layer
    ~ N(0, (2d)^-1/2) (all standard deviations); attention biases 0; MLP biases keep PyTorch's
    default Linear init; LayerNorms 1 / 0."""
    d, n = fusion.dim, len(fusion.blocks)
    nn.init.normal_(fusion.cls, std=1.0)
    attn_std, proj_std, fc_std = d**-0.5, d**-0.5 * (2 * n) ** -0.5, (2 * d) ** -0.5
    for block in fusion.blocks:
        nn.init.normal_(block.qkv.weight, std=attn_std)
        nn.init.zeros_(block.qkv.bias)
        nn.init.normal_(block.proj.weight, std=proj_std)
        nn.init.zeros_(block.proj.bias)
        nn.init.normal_(block.mlp[0].weight, std=fc_std)
        nn.init.normal_(block.mlp[2].weight, std=proj_std)
    for m in fusion.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _rows(t: Tensor, idx: Tensor) -> Tensor:
    """Gather rows of a per-sample table: t [B, N, c], idx [G, B, n] -> [G, B, n, c]."""
    g = idx.shape[0]
    return t[None].expand(g, -1, -1, -1).gather(2, idx[..., None].expand(-1, -1, -1, t.shape[-1]))


def padding_bias(
    padding: Tensor | None, shape: tuple[int, int], device, dtype=torch.float32
) -> Tensor:
    """Key bias [B, L] from a padding mask [B, L] (True = padded) or None (no padding)."""
    if padding is None:
        return torch.zeros(shape, device=device, dtype=dtype)
    return torch.zeros(shape, device=device, dtype=dtype).masked_fill(padding, -math.inf)
