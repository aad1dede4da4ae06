"""Shared first-block keys/values (``shared_kv``): every pass of a view through one token bank
equals one fusion call per pass group — embeddings, loss and every parameter gradient, float64."""

import math

import pytest
import torch

from infmasking import losses as L
from infmasking.models import build_model
from infmasking.models.fusion import FusionTransformer

LENGTHS = {"a": 7, "b": 4, "c": 9}  # sequence modalities of different lengths


def _model(m: int, n_layers: int, *, pool="cls", collapse=True, cls_only_last=True, seed=0):
    mods = list(LENGTHS)[:m]
    torch.manual_seed(seed)
    model = build_model(
        mods,
        dict.fromkeys(mods, "sequence"),
        {k: (LENGTHS[k], 5) for k in mods},
        dim=16,
        n_layers=n_layers,
        n_heads=4,
        pool=pool,
        head_hidden=12,
        proj_dim=6,
        encoders={k: {"name": "identity"} for k in mods},
        collapse_masked=collapse,
    )
    model.fusion.cls_only_last = cls_only_last
    return model.double().train()  # train mode: the head's batch norm uses batch statistics


def _batch(m: int, b: int = 6, pad: bool = True, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mods = list(LENGTHS)[:m]
    x = {k: torch.randn(b, LENGTHS[k], 5, generator=g, dtype=torch.float64) for k in mods}
    padding = {}
    if pad:
        for i, k in enumerate(mods):
            p = torch.zeros(b, LENGTHS[k], dtype=torch.bool)
            for s in range(b):
                p[s, : (s + i) % 3] = True  # front padding of 0..2 steps, different per modality
            padding[k] = p
    return x, padding


def _loss_and_grads(model, x, padding, num_masks, shared):
    model.shared_kv = shared
    model.zero_grad()
    kw = dict(num_masks=num_masks, mask_ratio=0.5)
    o1 = model(x, padding, generator=torch.Generator().manual_seed(1), **kw)
    o2 = model(
        {k: v.flip(0) for k, v in x.items()},
        {k: v.flip(0) for k, v in padding.items()},
        generator=torch.Generator().manual_seed(2),
        **kw,
    )
    out = L.infmasking_loss(
        o1.unimodal + [o1.full],
        o2.unimodal + [o2.full],
        o1.masked,
        o2.masked,
        temperature=0.1,
        mask_weight=0.7,
    )
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return o1, out.loss.detach(), grads


def _close(a, b, what):
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), (
        f"{what}: max diff {(a - b).abs().max().item():.3g}"
    )


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("num_masks", [1, 6])
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("collapse", [True, False])
def test_shared_equals_per_group_passes(m, num_masks, n_layers, collapse):
    model = _model(m, n_layers, collapse=collapse)
    x, padding = _batch(m)
    o_ref, loss_ref, g_ref = _loss_and_grads(model, x, padding, num_masks, shared=False)
    o_new, loss_new, g_new = _loss_and_grads(model, x, padding, num_masks, shared=True)
    for u_ref, u_new in zip(o_ref.unimodal, o_new.unimodal, strict=True):
        _close(u_new, u_ref, "unimodal embedding")
    _close(o_new.full, o_ref.full, "full embedding")
    _close(o_new.features, o_ref.features, "features")
    _close(o_new.masked, o_ref.masked, "masked embeddings")
    _close(loss_new, loss_ref, "loss")
    assert g_new.keys() == g_ref.keys()
    for name in g_ref:
        _close(g_new[name], g_ref[name], f"gradient of {name}")
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0


@pytest.mark.parametrize("cls_only_last", [True, False])
def test_shared_without_padding_and_each_method_pass_set(cls_only_last):
    """CoMM (unimodal + full), Cross (unimodal only), full only; no padding at all."""
    model = _model(2, 1, cls_only_last=cls_only_last)
    x, _ = _batch(2, pad=False)
    for flags in (
        {"unimodal": True, "full": True},
        {"unimodal": True, "full": False},
        {"unimodal": False, "full": True},
    ):
        outs = []
        for shared in (False, True):
            model.shared_kv = shared
            outs.append(model(x, **flags))
        for a, b in zip(outs[0], outs[1], strict=True):
            if isinstance(a, list):
                for u, v in zip(a, b, strict=True):
                    _close(v, u, f"unimodal {flags}")
            elif a is not None:
                _close(b, a, f"output {flags}")
            else:
                assert b is None


def test_mean_pooling_keeps_the_per_group_path():
    model = _model(2, 1, pool="mean")
    x, padding = _batch(2)
    o_ref, loss_ref, g_ref = _loss_and_grads(model, x, padding, 6, shared=False)
    o_new, loss_new, g_new = _loss_and_grads(model, x, padding, 6, shared=True)
    assert torch.equal(loss_new, loss_ref)
    with pytest.raises(ValueError, match="CLS pooling"):
        model.fusion.forward_shared(torch.zeros(2, 3, 16, dtype=torch.float64), [])


def test_forward_shared_equals_forward_on_gathered_tokens():
    """The fusion alone: arbitrary positions (repeats included) and log-count key biases."""
    torch.manual_seed(0)
    for n_layers in (1, 2):
        f = FusionTransformer(8, n_layers, 2).double()
        bank = torch.randn(3, 5, 8, dtype=torch.float64)
        idx = torch.tensor([[[0, 2, 4, 4], [1, 1, 3, 0], [4, 3, 2, 1]]])  # [1, B, 4]
        bias = torch.tensor(
            [[[0, 0, math.log(3), -math.inf], [0, -math.inf, 0, 0], [0, 0, 0, math.log(2)]]],
            dtype=torch.float64,
        )
        (shared,) = f.forward_shared(bank, [(idx, bias)])
        gathered = bank.gather(1, idx[0, :, :, None].expand(-1, -1, 8))
        _close(shared[0], f(gathered, bias[0]), f"forward_shared, {n_layers} blocks")


def test_shared_step_is_cheaper_in_flops():
    """The saving is real: fewer FLOPs for the InfMasking forward of one view."""
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(2, 1).float()
    x, padding = _batch(2, b=16)
    x = {k: v.float() for k, v in x.items()}
    flops = {}
    for shared in (False, True):
        model.shared_kv = shared
        with FlopCounterMode(display=False) as counter:
            model(
                x, padding, num_masks=6, mask_ratio=0.5, generator=torch.Generator().manual_seed(0)
            )
        flops[shared] = counter.get_total_flops()
    assert flops[True] < 0.8 * flops[False], flops


def _ddp_worker(rank, port, queue):
    import os
    import traceback

    import torch.distributed as dist

    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=2)
        model = _model(2, 1)
        x, padding = _batch(2, b=8)
        half = slice(4 * rank, 4 * rank + 4)  # this rank's half of the global batch
        x, padding = {k: v[half] for k, v in x.items()}, {k: v[half] for k, v in padding.items()}
        res = {}
        for shared in (False, True):
            _, loss, grads = _loss_and_grads(
                model, x, padding, 6, shared
            )  # negatives gathered across ranks
            for g in grads.values():
                dist.all_reduce(g)  # what DDP does (up to the division by the world size)
            res[shared] = (loss.numpy(), {n: g.numpy() for n, g in grads.items()})
        queue.put((rank, res, None))
    except Exception:  # noqa: BLE001 - report any failure to the parent instead of hanging
        queue.put((rank, None, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.ddp
def test_shared_equals_per_group_passes_under_ddp():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    for _ in range(2):
        rank, res, err = queue.get(timeout=120)
        assert err is None, f"rank {rank} failed:\n{err}"
        (loss_ref, g_ref), (loss_new, g_new) = res[False], res[True]
        _close(torch.from_numpy(loss_new), torch.from_numpy(loss_ref), f"loss, rank {rank}")
        assert g_new.keys() == g_ref.keys()
        for name in g_ref:
            _close(
                torch.from_numpy(g_new[name]),
                torch.from_numpy(g_ref[name]),
                f"rank {rank} gradient of {name}",
            )
    for p in procs:
        p.join(timeout=30)


def test_grouped_head_equals_one_call_per_group():
    """Outputs, gradients and the batch norms' running statistics (updated group by group)."""
    from infmasking.models.heads import ProjectionHead

    torch.manual_seed(0)
    heads = [ProjectionHead(8, 12, 5).double().train() for _ in range(2)]
    heads[1].load_state_dict(heads[0].state_dict())
    x = torch.randn(4, 6, 8, dtype=torch.float64)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    separate = torch.stack([heads[0](xs[0][g]) for g in range(4)])
    grouped = heads[1].grouped(xs[1])
    _close(grouped, separate, "grouped head output")
    (separate.square().sum()).backward()
    (grouped.square().sum()).backward()
    _close(xs[1].grad, xs[0].grad, "input gradient")
    for (name, a), b in zip(
        heads[0].state_dict().items(), heads[1].state_dict().values(), strict=True
    ):
        if a.is_floating_point():
            _close(b, a, f"state {name}")
    for (name, pa), pb in zip(heads[0].named_parameters(), heads[1].parameters(), strict=True):
        _close(pb.grad, pa.grad, f"gradient of {name}")
