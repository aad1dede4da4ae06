"""Masking, the fusion transformer and the assembled model."""

import pytest
import torch

from infmasking.models import build_model, num_kept, random_masking


def _model(
    collapse=True, pool="cls", dtype=torch.float64, activation="quick_gelu", init="reference"
):
    torch.manual_seed(0)
    m = build_model(
        ["img", "seq", "vec"],
        {"img": "image", "seq": "sequence", "vec": "vector"},
        {"img": (3, 32, 32), "seq": (7, 5), "vec": (4,)},
        dim=16,
        n_layers=2,
        n_heads=2,
        pool=pool,
        head_hidden=8,
        proj_dim=6,
        vector_tokens=3,
        encoders={"img": {"name": "convnet", "widths": (4, 8, 8)}, "seq": {"name": "identity"}},
        collapse_masked=collapse,
        activation=activation,
        init=init,
    )
    return m.to(dtype).eval()


def _batch(b=5, seed=0, dtype=torch.float64, pad=True):
    g = torch.Generator().manual_seed(seed)
    x = {
        "img": torch.rand(b, 3, 32, 32, generator=g, dtype=dtype),
        "seq": torch.randn(b, 7, 5, generator=g, dtype=dtype),
        "vec": torch.randn(b, 4, generator=g, dtype=dtype),
    }
    padding = {}
    if pad:
        p = torch.zeros(b, 7, dtype=torch.bool)
        for i in range(b):
            p[i, : i % 4] = True  # front padding of 0..3 steps
        padding["seq"] = p
    return x, padding


# ------------------------------------------------------------------ masking


@pytest.mark.parametrize(
    "length,ratio", [(16, 0.7), (36, 0.7), (10, 0.5), (5, 0.8), (1, 0.3), (7, 0.0)]
)
def test_kept_counts_exact(length, ratio):
    out = random_masking(4, length, ratio, num_masks=6, generator=torch.Generator().manual_seed(0))
    k = int(length * (1 - ratio))
    assert out.ids_keep.shape == (6, 4, k)
    assert out.mask.shape == (6, 4, length)
    assert torch.all((~out.mask).sum(-1) == k)
    # ids_keep are exactly the unmasked positions, ascending
    for t in range(6):
        for b in range(4):
            assert out.ids_keep[t, b].tolist() == torch.nonzero(~out.mask[t, b]).flatten().tolist()


def test_one_token_modality_is_masked_entirely():
    assert num_kept(1, 0.01) == 0
    assert num_kept(5, 0.8) == 0  # int(5 * 0.19999999999999996), as published
    assert num_kept(1, 0.0) == 1


def test_views_and_samples_masked_independently():
    out = random_masking(8, 20, 0.5, num_masks=4, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(out.mask[0], out.mask[1])
    assert not torch.equal(out.mask[0, 0], out.mask[0, 1])


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_bad_mask_ratio(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(2, 4, ratio)


# ------------------------------------------------------------------ model passes


def test_padding_positions_never_attended():
    model = _model()
    x, padding = _batch()
    masks = model.draw_masks(model.tokenize(x, padding), 3, 0.5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        base_t = model.tokenize(x, padding)
        ref = (model.fuse(base_t), model.fuse_unimodal(base_t)[1], model.fuse_masked(base_t, masks))
        x2 = dict(x)
        x2["seq"] = x["seq"].masked_fill(padding["seq"][..., None], 1e3)  # garbage in padded steps
        t2 = model.tokenize(x2, padding)
        new = (model.fuse(t2), model.fuse_unimodal(t2)[1], model.fuse_masked(t2, masks))
    for a, b in zip(ref, new):
        torch.testing.assert_close(a, b)
    # and the garbage does change the output when the padding mask is not given
    with torch.no_grad():
        assert not torch.allclose(model.embed(x2, {}), model.embed(x, {}))


def test_unimodal_batched_equals_separate_passes():
    model = _model()
    x, padding = _batch()
    with torch.no_grad():
        t = model.tokenize(x, padding)
        batched = model.fuse_unimodal(t)
        separate = [model.fuse(t, [m]) for m in model.modalities]
    for a, b in zip(batched, separate):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("pad", [False, True])
def test_batched_masked_pass_equals_separate_passes(pad):
    """All T views in one pass == T passes of the plain masked sequence (mask token in place)."""
    model = _model(collapse=False)
    x, padding = _batch(pad=pad)
    with torch.no_grad():
        t = model.tokenize(x, padding)
        masks = model.draw_masks(t, 4, 0.6, torch.Generator().manual_seed(2))
        batched = model.fuse_masked(t, masks)
        for v in range(4):
            toks = torch.cat(
                [
                    torch.where(masks[m].mask[v][..., None], model.mask_token, t[m].x)
                    for m in model.modalities
                ],
                1,
            )
            bias = torch.cat([t[m].bias for m in model.modalities], 1)
            torch.testing.assert_close(batched[v], model.fusion(toks, bias))


@pytest.mark.parametrize("pad", [False, True])
@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("ratio", [0.5, 0.7, 0.0])
@pytest.mark.parametrize("options", [("quick_gelu", "reference"), ("gelu", "xavier")])
def test_collapsed_mask_tokens_equal_full_masked_pass(pad, pool, ratio, options):
    """One log-count token per modality == all its masked positions: forward and gradient,
    under the published and the library's activation / initialisation."""
    act, init = options
    full = _model(collapse=False, pool=pool, activation=act, init=init)
    collapsed = _model(collapse=True, pool=pool, activation=act, init=init)
    collapsed.load_state_dict(full.state_dict())
    x, padding = _batch(pad=pad)
    masks = full.draw_masks(full.tokenize(x, padding), 3, ratio, torch.Generator().manual_seed(3))
    w = torch.randn(3, 5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    outs, grads = [], []
    for model in (full, collapsed):
        model.zero_grad()
        out = model.fuse_masked(model.tokenize(x, padding), masks)
        (out * w).sum().backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1])
    assert grads[0].keys() == grads[1].keys() and "mask_token" in grads[0]
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], msg=n)


def test_forward_shapes_and_embed():
    model = _model(dtype=torch.float32).train()
    x, padding = _batch(dtype=torch.float32)
    out = model(x, padding, num_masks=4, mask_ratio=0.7)
    assert [u.shape for u in out.unimodal] == [(5, 6)] * 3
    assert (
        out.full.shape == (5, 6) and out.masked.shape == (4, 5, 6) and out.features.shape == (5, 16)
    )
    out = model(x, padding, full=False)
    assert out.full is None and out.masked is None
    assert model.embed(x, padding).shape == (5, 16)


def test_wrong_modalities_rejected():
    model = _model()
    x, padding = _batch()
    del x["vec"]
    with pytest.raises(ValueError, match="built for"):
        model(x, padding)
    x, _ = _batch()
    with pytest.raises(ValueError, match="padding"):
        model(x, {"audio": torch.zeros(5, 7, dtype=torch.bool)})


def test_bad_build_arguments():
    with pytest.raises(ValueError, match="unknown encoder"):
        build_model(
            ["a", "b"],
            {"a": "vector", "b": "vector"},
            {"a": (3,), "b": (3,)},
            encoders={"a": "resnet"},
        )
    with pytest.raises(ValueError, match="unknown modality kind"):
        build_model(["a", "b"], {"a": "audio", "b": "vector"}, {"a": (3,), "b": (3,)})
    with pytest.raises(ValueError, match="divisible"):
        build_model(
            ["a", "b"], {"a": "vector", "b": "vector"}, {"a": (3,), "b": (3,)}, dim=10, n_heads=4
        )


@pytest.mark.parametrize(
    "name,shape",
    [("convnet", (3, 3, 64, 64)), ("resnet18", (2, 3, 64, 64)), ("alexnet", (2, 3, 224, 224))],
)
def test_image_trunks_channels_last_equal_nchw(name, shape):
    """The channels-last image trunks compute what the same weights compute in NCHW, forward
    and gradient (float64), and hand back an ordinary [B, C, H, W] tensor."""
    from infmasking.models.encoders import AlexNetFeatures, ConvNet, ResNet18

    cls = {"convnet": ConvNet, "resnet18": ResNet18, "alexnet": AlexNetFeatures}[name]
    kwargs = {"widths": (8, 8, 16, 16)} if name == "resnet18" else {}
    torch.manual_seed(0)
    trunk = cls(**kwargs).double()
    assert all(
        p.is_contiguous(memory_format=torch.channels_last)
        for p in trunk.parameters()
        if p.dim() == 4
    )
    x = torch.rand(*shape, dtype=torch.float64)
    y = trunk(x)
    y.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in trunk.named_parameters()}
    ref = cls(**kwargs).double()
    ref.load_state_dict(trunk.state_dict())
    ref.net.to(memory_format=torch.contiguous_format)
    assert all(p.is_contiguous() for p in ref.parameters())
    y_ref = ref.net(x)  # plain NCHW computation
    y_ref.pow(2).sum().backward()
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    for n, p in ref.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-9, atol=1e-9, msg=n)


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("options", [("quick_gelu", "reference"), ("gelu", "xavier")])
def test_cls_only_last_block_equals_full_block(n_layers, with_bias, options):
    """With CLS pooling the last block computes the CLS row only: same output and same
    gradients (tokens and every parameter) as the full block, float64, with a key bias
    holding padding (−inf) and collapsed-token (log c) entries."""
    from infmasking.models.fusion import FusionTransformer

    torch.manual_seed(0)
    act, init = options
    fast = FusionTransformer(16, n_layers, 4, pool="cls", activation=act, init=init).double()
    full = FusionTransformer(
        16, n_layers, 4, pool="cls", cls_only_last=False, activation=act, init=init
    ).double()
    full.load_state_dict(fast.state_dict())
    tokens = torch.randn(5, 9, 16, dtype=torch.float64)
    bias = None
    if with_bias:
        bias = torch.zeros(5, 9, dtype=torch.float64)
        bias[:, -1] = torch.log(torch.tensor([1.0, 2.0, 3.0, 7.0, 11.0], dtype=torch.float64))
        bias[1, :2] = float("-inf")
        bias[3, 4] = float("-inf")
    outs, grads = [], []
    for m in (fast, full):
        t = tokens.clone().requires_grad_(True)
        y = m(t, bias)
        (y * torch.linspace(-1, 1, 16, dtype=torch.float64)).square().sum().backward()
        outs.append(y)
        grads.append([t.grad] + [p.grad for p in m.parameters()])
    assert outs[0].shape == (5, 16)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_cls_only_last_block_skips_the_other_rows():
    """The saving is real: the last block's MLP sees B rows, not B·(1 + L)."""
    from infmasking.models.fusion import FusionTransformer

    seen = []
    m = FusionTransformer(16, 1, 4)
    m.blocks[0].mlp.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[:2]))
    m(torch.randn(3, 10, 16))
    assert seen == [torch.Size([3, 1])]


def test_encoders_follow_the_contract():
    from infmasking.models.build import make_encoder
    from infmasking.models.encoders import ENCODERS, Encoder

    for name, kind, shape in (
        ("convnet", "image", (3, 32, 32)),
        ("transformer", "sequence", (7, 5)),
        ("gru", "sequence", (7, 5)),
        ("conv1d", "sequence", (7, 5)),
        ("mlp", "vector", (4,)),
        ("identity", "sequence", (7, 5)),
    ):
        enc = make_encoder(name, kind, shape)
        assert isinstance(enc, Encoder) and enc.out_kind in ("map", "sequence", "vector"), name

    class NoKind(torch.nn.Module):
        def __init__(self, in_channels):
            super().__init__()
            self.out_channels = in_channels

    ENCODERS["nokind"] = NoKind
    try:
        with pytest.raises(TypeError, match="'nokind' does not follow the Encoder contract"):
            make_encoder("nokind", "vector", (4,))
    finally:
        del ENCODERS["nokind"]


# ------------------------------------------------------------------ two views in one pass


@pytest.mark.parametrize("encoder", ["convnet", "alexnet_like_no_bn"])
def test_forward_views_equals_one_forward_per_view(encoder):
    """Both views in one call (training mode, float64): the outputs of two calls, the masks
    drawn from the same stream in the same order, and the head's batch-norm running
    statistics updated as by two calls. With batch norm in the encoder (convnet) the encoders
    run view by view; without (identity image encoder) on both views at once."""
    kw = dict(unimodal=True, full=True, num_masks=3, mask_ratio=0.5)
    results = []
    for joined in (False, True):
        m = _model().train()
        if encoder != "convnet":
            m.encoders["img"] = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 8, 8)).double()
            m.encoders["img"].out_kind = "map"
            m.adapters["img"].proj = torch.nn.Linear(8, 16).double()
        views = [_batch(seed=1), _batch(seed=2)]
        g = torch.Generator().manual_seed(5)
        if joined:
            outs = m.forward_views(views, generator=g, **kw)
        else:
            outs = [m(x, p, generator=g, **kw) for x, p in views]
        results.append((outs, {k: v.clone() for k, v in m.head.state_dict().items()}))
    (sep, state_sep), (one, state_one) = results
    for a, b in zip(sep, one, strict=True):
        for name in ("full", "masked", "features"):
            torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-9)
        for u, v in zip(a.unimodal, b.unimodal, strict=True):
            torch.testing.assert_close(v, u, rtol=1e-9, atol=1e-9)
    for k in state_sep:
        torch.testing.assert_close(state_one[k], state_sep[k], rtol=1e-9, atol=1e-9, msg=k)


def test_batch_norm_per_group_equals_group_by_group_calls():
    from infmasking.models.heads import batch_norm_per_group

    torch.manual_seed(0)
    h = torch.randn(4 * 6, 5, dtype=torch.float64) * 3 + 1
    bn1 = torch.nn.BatchNorm1d(5).double().train()
    bn1.weight.data.uniform_(0.5, 2)
    bn1.bias.data.normal_()
    bn2 = torch.nn.BatchNorm1d(5).double().train()
    bn2.load_state_dict(bn1.state_dict())
    want = torch.cat([bn1(c) for c in h.split(6)])
    got = batch_norm_per_group(bn2, h, 4)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for k, v in bn1.state_dict().items():
        torch.testing.assert_close(bn2.state_dict()[k], v, rtol=1e-6, atol=1e-12, msg=k)
