"""Projection head g (docs/METHOD.md §1.3)."""

from __future__ import annotations

from torch import nn


class ProjectionHead(nn.Sequential):
    """g: Linear(d, h) → BN → ReLU → Linear(h, h) → BN → ReLU → Linear(h, p).  [N, d] -> [N, p].

    Convert to SyncBatchNorm under DDP (the Lightning trainer does with ``sync_batchnorm``).
    """

    def __init__(self, dim: int, hidden: int = 512, out: int = 256):
        super().__init__(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
        )
