"""Projection head g (docs/METHOD.md §1.3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
                h = batch_norm_per_group(layer, h, g)
            else:
                h = layer(h)
        return h.reshape(g, b, -1)


def batch_norm_per_group(bn: nn.modules.batchnorm._BatchNorm, h: Tensor, g: int) -> Tensor:
    """``bn`` on each of g groups of rows of ``h`` [g·B, C] in turn, in one call: in training
    the g·C (group, channel) columns of [B, g·C] are normalised by their own batch statistics
    (those of g separate calls), and the running statistics receive the g updates of g calls
    in group order, in closed form: r ← (1 − m)^g r + Σ_k m (1 − m)^(g−1−k) s_k.

    Falls back to g calls where one call cannot stand for them: evaluation mode, a cumulative
    (momentum None) average, no running statistics, or SyncBatchNorm (statistics across ranks).
    """
    b = h.shape[0] // g
    if (
        g == 1
        or not bn.training
        or bn.momentum is None
        or not bn.track_running_stats
        or isinstance(bn, nn.SyncBatchNorm)
    ):
        return torch.cat([bn(chunk) for chunk in h.split(b)])
    c = h.shape[1]
    x = h.reshape(g, b, c).transpose(0, 1).reshape(b, g * c)  # column k·C + j: group k, channel j
    weight = bn.weight.repeat(g) if bn.weight is not None else None
    bias = bn.bias.repeat(g) if bn.bias is not None else None
    y = F.batch_norm(x, None, None, weight, bias, training=True, eps=bn.eps)
    with torch.no_grad():
        dt = bn.running_mean.dtype
        xs = x.detach().to(dt)
        mean, var = xs.mean(0).view(g, c), xs.var(0, unbiased=True).view(g, c)
        m = bn.momentum
        decay = (1 - m) ** torch.arange(g - 1, -1, -1, device=x.device, dtype=dt)
        w = (m * decay)[:, None]  # [g, 1]: weight of group k's statistics after the g updates
        keep = (1 - m) ** g
        bn.running_mean.copy_(keep * bn.running_mean + (w * mean).sum(0))
        bn.running_var.copy_(keep * bn.running_var + (w * var).sum(0))
        bn.num_batches_tracked.add_(g)
    return y.reshape(b, g, c).transpose(0, 1).reshape(g * b, c)
