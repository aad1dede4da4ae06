"""Distributed helpers: rank / world size (0 / 1 without a process group), one
autograd-aware gather, and a cross-rank "any" for errors every rank must see."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward sums the incoming gradients over ranks and
    returns this rank's slice, so each rank's loss sends gradient to every rank's inputs."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # x: [n, ...] -> [world * n, ...]
        ctx.n = x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = rank() * ctx.n
        return grad[start : start + ctx.n]


def gather(x: Tensor, dim: int = 0) -> Tensor:
    """Concatenate ``x`` from all ranks along ``dim`` (rank order), keeping the gradient.

    Every rank must pass the same shape. Without a process group, returns ``x``.
    Shape: [..., n, ...] -> [..., world_size * n, ...] along ``dim``.
    """
    if world_size() == 1:
        return x
    if dim != 0:
        return _GatherWithGrad.apply(x.movedim(dim, 0)).movedim(0, dim)
    return _GatherWithGrad.apply(x)


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True if ``flag`` is True on any rank (a collective: every rank must call it)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
