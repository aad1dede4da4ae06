"""Two gloo processes on CPU: losses and gradients with the global-batch gather equal the
single-process full-batch result; a non-finite loss on one rank raises on every rank."""

import os
import socket
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from infmasking import dist as idist
from infmasking import losses as L

pytestmark = pytest.mark.ddp

WORLD = 2
B, P, T, M = 6, 5, 3, 2  # global batch B, split in halves


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    z = [torch.randn(B, P, generator=g, dtype=torch.float64) for _ in range(2 * (M + 1))]
    k = [torch.randn(T, B, P, generator=g, dtype=torch.float64) for _ in range(2)]
    return z, k


def _objectives():
    return {
        "infmasking": lambda z, k: L.infmasking_loss(
            z[: M + 1], z[M + 1 :], k[0], k[1], temperature=0.2, mask_weight=0.6
        ),
        "infmasking_cross_weighted": lambda z, k: L.infmasking_loss(
            z[: M + 1],
            z[M + 1 :],
            k[0],
            k[1],
            temperature=0.2,
            mask_weight=0.6,
            cross=True,
            weights=[1, 2, 1, 1, 5],
        ),
        "comm": lambda z, k: L.comm_loss(z[: M + 1], z[M + 1 :], temperature=0.1),
        "cross_self": lambda z, k: L.cross_self_loss(z[:M], z[M + 1 : 2 * M + 1], temperature=0.1),
        "cmc": lambda z, k: L.cmc_loss(z[:M], z[M + 1 : 2 * M + 1], temperature=0.1),
    }


def _full_batch(name):
    z, k = _data()
    leaves = [t.clone().requires_grad_() for t in z + k]
    loss = _objectives()[name](leaves[: len(z)], leaves[len(z) :]).loss
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return loss.detach(), [torch.zeros_like(l) if g is None else g for l, g in zip(leaves, grads)]


def _worker(rank, port, queue):
    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=WORLD)
        assert idist.rank() == rank and idist.world_size() == WORLD
        n = B // WORLD
        sl = slice(rank * n, (rank + 1) * n)
        results = {}
        for name, fn in _objectives().items():
            z, k = _data()
            zl = [t[sl].clone().requires_grad_() for t in z]
            kl = [t[:, sl].clone().requires_grad_() for t in k]
            loss = fn(zl, kl).loss
            grads = torch.autograd.grad(loss, zl + kl, allow_unused=True)
            grads = [torch.zeros_like(l) if g is None else g for l, g in zip(zl + kl, grads)]
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            # numpy: tensors sent through a queue would be shared memory that dies with this process
            results[name] = ((mean_loss / WORLD).numpy(), [g.numpy() for g in grads])
        # a NaN on rank 1 only must raise on both ranks
        z, k = _data()
        if rank == 1:
            z[0][n, 0] = float("nan")  # a row of rank 1's half
        out = L.infmasking_loss(
            [t[sl] for t in z[: M + 1]],
            [t[sl] for t in z[M + 1 :]],
            k[0][:, sl],
            k[1][:, sl],
            temperature=0.1,
            mask_weight=1.0,
        )
        try:
            L.check_finite(out)
            results["nan_raised"] = False
        except FloatingPointError:
            results["nan_raised"] = True
        # a loss that is NaN on rank 1 only (no gather involved) still raises on rank 0
        local = torch.tensor(float("nan") if rank == 1 else 1.0)
        try:
            L.check_finite(L.LossOutput(loss=local, terms={"x": local}))
            results["local_nan_raised"] = False
        except FloatingPointError:
            results["local_nan_raised"] = True
        results["any_rank"] = idist.any_rank(rank == 1)
        queue.put((rank, results, None))
    except Exception:  # noqa: BLE001 - report any failure to the parent instead of hanging
        queue.put((rank, None, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_gathered_losses_and_gradients_equal_full_batch():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(WORLD)]
    for p in procs:
        p.start()
    out = {}
    for _ in range(WORLD):
        rank, res, err = queue.get(timeout=120)
        assert err is None, f"rank {rank} failed:\n{err}"
        out[rank] = res
    for p in procs:
        p.join(timeout=30)
    n = B // WORLD
    for name in _objectives():
        ref_loss, ref_grads = _full_batch(name)
        for rank in range(WORLD):
            loss, grads = out[rank][name]
            loss, grads = torch.from_numpy(loss), [torch.from_numpy(g) for g in grads]
            torch.testing.assert_close(loss, ref_loss, msg=f"{name} loss, rank {rank}")
            for i, (g, rg) in enumerate(zip(grads, ref_grads)):
                # local gradient = sum over ranks' losses = WORLD × d(mean loss);
                # DDP divides by WORLD
                expected = (
                    rg[rank * n : (rank + 1) * n]
                    if rg.dim() == 2
                    else rg[:, rank * n : (rank + 1) * n]
                )
                torch.testing.assert_close(g / WORLD, expected, msg=f"{name} grad {i}, rank {rank}")
    for rank in range(WORLD):
        assert out[rank]["nan_raised"] and out[rank]["local_nan_raised"] and out[rank]["any_rank"]


def test_single_process_fallbacks():
    assert idist.rank() == 0 and idist.world_size() == 1
    x = torch.randn(3, 2)
    assert idist.gather(x) is x
    assert idist.any_rank(True) and not idist.any_rank(False)
