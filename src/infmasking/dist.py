"""Distributed helpers: rank / world size (0 / 1 without a process group), the one
autograd-aware gather (PyTorch's), and a cross-rank "any" for errors every rank must see."""

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


def gather(x: Tensor, dim: int = 0) -> Tensor:
    """Concatenate ``x`` from all ranks along ``dim`` (rank order), keeping the gradient:
    ``torch.distributed.nn.functional.all_gather``, whose backward sums the gradients of every
    rank's loss into each rank's slice (a reduce-scatter), so each rank's loss sends gradient
    to every rank's inputs.

    Every rank must pass the same shape. Without a process group, returns ``x``.
    Shape: [..., n, ...] -> [..., world_size * n, ...] along ``dim``.
    """
    if world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather  # only where a process group exists

    return torch.cat(all_gather(x.contiguous()), dim)


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True if ``flag`` is True on any rank (a collective: every rank must call it)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
