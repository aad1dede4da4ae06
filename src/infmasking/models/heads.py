"""Projection head g (docs/METHOD.md §1.3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ProjectionHead(nn.Sequential):
    """g: Linear(d, h) → BN → ReLU → Linear(h, h) → BN → ReLU → Linear(h, p).  [N, d] -> [N, p].

    Convert to SyncBatchNorm under DDP (the Lightning trainer does with ``sync_batchnorm``).
    """

    def __init__(self, dim: int, hidden: int = 512, out: int = 256):
        super().__init__(
            nn.Linear(dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
        )

    def grouped(self, x: Tensor) -> Tensor:
        """g on G groups of B rows at once: [G, B, d] -> [G, B, p]. Each batch norm takes its
        statistics (and updates its running statistics) group by group, in group order, so
        the result is that of G separate calls; the linear layers run once on all G·B rows."""
        g, b, _ = x.shape
        h = x.reshape(g * b, -1)
        for layer in self:
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                h = torch.cat([layer(chunk) for chunk in h.split(b)])
            else:
                h = layer(h)
        return h.reshape(g, b, -1)
