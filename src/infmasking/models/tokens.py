"""Adapters: an encoder's output -> tokens [B, L, d] for the fusion transformer
(docs/METHOD.md §1.1).

- :class:`MapTokens`: feature map [B, C, H, W] -> H·W tokens (linear C→d + 2-D sin-cos position).
- :class:`SequenceTokens`: sequence [B, L, c] -> L tokens (linear c→d + 1-D sin-cos position).
- :class:`VectorTokens`: vector [B, c] -> n tokens (linear c→n·d + learned token position).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sincos_1d(length: int, dim: int, device=None) -> Tensor:
    """[length, dim] fixed sin-cos position embedding."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even width, got {dim}")
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    emb = torch.zeros(length, dim, device=device)
    emb[:, 0::2] = torch.sin(pos * freq)
    emb[:, 1::2] = torch.cos(pos * freq)
    return emb


def sincos_2d(h: int, w: int, dim: int, device=None) -> Tensor:
    """[h·w, dim] 2-D sin-cos embedding: half the width encodes the row, half the column."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a width divisible by 4, got {dim}")
    rows = sincos_1d(h, dim // 2, device)[:, None, :].expand(h, w, dim // 2)
    cols = sincos_1d(w, dim // 2, device)[None, :, :].expand(h, w, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(h * w, dim)


class MapTokens(nn.Module):
    """[B, C, H, W] -> [B, H·W, d] (a 1×1 convolution is this linear map per position)."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(channels, dim)
        self.dim = dim
        self._pos: dict[tuple, Tensor] = {}  # (h, w, device, dtype) -> [H·W, d], made once

    def position(self, h: int, w: int, device, dtype) -> Tensor:
        """The [h·w, d] sin-cos embedding, computed once per grid, device and dtype."""
        if torch.compiler.is_compiling():  # a constant of the traced graph
            return sincos_2d(h, w, self.dim, device).to(dtype)
        key = (h, w, torch.device(device), dtype)
        if key not in self._pos:
            self._pos[key] = sincos_2d(h, w, self.dim, device).to(dtype)
        return self._pos[key]

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # [B, H·W, d]
        return tokens + self.position(h, w, x.device, tokens.dtype)


class SequenceTokens(nn.Module):
    """[B, L, c] -> [B, L, d]."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(channels, dim)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.proj(x)
        return tokens + sincos_1d(x.shape[1], self.dim, x.device).to(tokens.dtype)


class VectorTokens(nn.Module):
    """[B, c] -> [B, n_tokens, d]. With one token, any mask_ratio > 0 masks this modality
    entirely in a masked view (``num_kept(1, r) = 0``)."""

    def __init__(self, channels: int, dim: int, n_tokens: int = 1):
        super().__init__()
        self.n_tokens, self.dim = n_tokens, dim
        self.proj = nn.Linear(channels, n_tokens * dim)
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).reshape(x.shape[0], self.n_tokens, self.dim) + self.pos
