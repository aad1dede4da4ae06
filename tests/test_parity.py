"""Published behaviour by default, each behind a named option (activation, initialisation,
image normalisation, weight-decay groups, probe crops, self pairs, λ horizon, selection)."""

import math

import numpy as np
import pytest
import torch

from infmasking.data.base import Task
from infmasking.data.trifeatures import same_shape_pairs
from infmasking.evaluation.probe import fit_probe
from infmasking.evaluation.selection import mean_ci, paired_difference, select_epoch
from infmasking.models import build_model
from infmasking.models.fusion import FusionTransformer, QuickGELU
from infmasking.training.config import AugmentConfig, RunConfig
from infmasking.training.module import SSLModule
from infmasking.training.views import IMAGENET_MEAN, IMAGENET_STD, ViewMaker


def test_defaults_are_published():
    cfg = RunConfig()
    assert cfg.model.activation == "quick_gelu" and cfg.model.init == "reference"
    assert cfg.augment.normalize == "imagenet" and cfg.optim.decay_groups == "published"
    assert cfg.eval.probe_augment and cfg.data.trifeatures.self_pairs
    assert cfg.method.lambda_epochs is None
    assert cfg.eval.select == "last"


def test_quick_gelu_values_and_option():
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    torch.testing.assert_close(QuickGELU()(x), x / (1 + torch.exp(-1.702 * x)))
    assert isinstance(FusionTransformer(8, 1, 2).blocks[0].mlp[1], QuickGELU)
    gelu = FusionTransformer(8, 1, 2, activation="gelu").blocks[0].mlp[1]
    torch.testing.assert_close(gelu(x), torch.nn.functional.gelu(x))
    # the two differ: the option matters
    assert (QuickGELU()(x) - gelu(x)).abs().max() > 1e-2
    with pytest.raises(ValueError, match="model.activation"):
        FusionTransformer(8, 1, 2, activation="relu")


def _std_close(t, std, rel=0.03):
    assert abs(t.std().item() / std - 1) < rel, (t.std().item(), std)
    assert abs(t.mean().item()) < 4 * std / math.sqrt(t.numel())


def test_reference_init_statistics():
    d, n = 512, 2
    torch.manual_seed(0)
    f = FusionTransformer(d, n, 8, init="reference")
    _std_close(f.cls, 1.0, rel=0.1)  # only d samples
    assert f.cls.abs().max() > 2.0  # not truncated
    for b in f.blocks:
        _std_close(b.qkv.weight, d**-0.5)
        _std_close(b.proj.weight, d**-0.5 * (2 * n) ** -0.5)
        _std_close(b.mlp[0].weight, (2 * d) ** -0.5)
        _std_close(b.mlp[2].weight, d**-0.5 * (2 * n) ** -0.5)
        assert (b.qkv.bias == 0).all() and (b.proj.bias == 0).all()
        # MLP biases: PyTorch's default Linear init, U(±1/sqrt(fan_in))
        assert b.mlp[0].bias.abs().max() <= d**-0.5 and b.mlp[
            0
        ].bias.std() > 0.5 * d**-0.5 / math.sqrt(3)
        assert b.mlp[2].bias.abs().max() <= (4 * d) ** -0.5 and b.mlp[2].bias.std() > 0
        for ln in (b.norm1, b.norm2):
            assert (ln.weight == 1).all() and (ln.bias == 0).all()
    xavier = FusionTransformer(d, n, 8, init="xavier")
    assert xavier.cls.std() < 0.05 and (xavier.blocks[0].mlp[0].bias == 0).all()
    with pytest.raises(ValueError, match="model.init"):
        FusionTransformer(8, 1, 2, init="kaiming")


def test_mask_token_init_cut():
    kinds, shapes = {"a": "vector", "b": "vector"}, {"a": (3,), "b": (3,)}
    torch.manual_seed(0)
    ref = build_model(["a", "b"], kinds, shapes, dim=4096, n_heads=8)
    assert ref.mask_token.abs().max() <= 0.02
    torch.manual_seed(0)
    xav = build_model(["a", "b"], kinds, shapes, dim=4096, n_heads=8, init="xavier")
    assert xav.mask_token.abs().max() > 0.02


def _module(**overrides):
    cfg = RunConfig()
    for section, values in overrides.items():
        for k, v in values.items():
            setattr(getattr(cfg, section), k, v)
    kinds = {"image1": "image", "image2": "image"}
    shapes = {"image1": [3, 16, 16], "image2": [3, 16, 16]}
    return SSLModule(cfg, ["image1", "image2"], kinds, shapes)


def test_decay_groups():
    decay, no_decay = _module().decay_groups()
    assert "model.fusion.cls" in decay and "model.mask_token" in decay
    assert not any(n.endswith(".bias") for n in decay)
    assert not any("norm" in n for n in decay)
    assert "model.fusion.blocks.0.qkv.weight" in decay
    decay_l, no_decay_l = _module(optim={"decay_groups": "library"}).decay_groups()
    assert "model.fusion.cls" in no_decay_l and "model.mask_token" in no_decay_l
    assert set(decay_l) == set(decay) - {"model.fusion.cls", "model.mask_token"}
    opt = _module().configure_optimizers()
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]


def test_imagenet_normalisation_after_augmentation():
    x = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    vm = ViewMaker(AugmentConfig(image="none"), {"i": "image"})
    got = vm.probe_inputs({"i": x})["i"]
    want = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(got[0, :, 0, 0], want)
    (v1, _), _ = vm({"i": x}, {})
    torch.testing.assert_close(v1["i"], got)
    none = ViewMaker(AugmentConfig(image="none", normalize="none"), {"i": "image"})
    torch.testing.assert_close(
        none.probe_inputs({"i": x})["i"], torch.full((2, 3, 8, 8), 128 / 255)
    )
    with pytest.raises(ValueError, match="augment.normalize"):
        ViewMaker(AugmentConfig(normalize="imagenet1k"), {"i": "image"})


def test_probe_crops_are_seeded_and_optional():
    x = {"image1": torch.randint(0, 255, (4, 3, 16, 16), dtype=torch.uint8)}
    vm = ViewMaker(AugmentConfig(), {"image1": "image"})
    a = vm.probe_inputs(x, crop=True, generator=torch.Generator().manual_seed(1))["image1"]
    b = vm.probe_inputs(x, crop=True, generator=torch.Generator().manual_seed(1))["image1"]
    clean = vm.probe_inputs(x, crop=False)["image1"]
    torch.testing.assert_close(a, b)
    assert (a - clean).abs().max() > 0.1


def test_self_pairs():
    shape = torch.tensor([0, 0, 1, 1, 1])
    rows = torch.arange(5)
    with_self = same_shape_pairs(shape, rows)
    assert len(with_self) == 2 * 2 + 3 * 3 and (with_self[:, 0] == with_self[:, 1]).sum() == 5
    without = same_shape_pairs(shape, rows, self_pairs=False)
    assert len(without) == 2 * 1 + 3 * 2 and (without[:, 0] != without[:, 1]).all()


def test_lambda_horizon_in_module():
    m = _module(method={"lambda_epochs": 100}, optim={"epochs": 3})
    assert m.lambda_horizon() == 100
    m = _module(optim={"epochs": 3})
    assert m.lambda_horizon() == 3


def test_binary_probe_chooses_c_by_auroc_and_never_reads_test():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 6))
    y = ((x[:, 0] + 0.8 * rng.normal(size=1200)) > 1.6).astype(int)  # ≈ 10 % positives
    task = Task("s", "classification", 2)
    r = fit_probe(task, x[:800], y[:800], x[800:], y[800:], probe="standardised")
    assert r.selection_metric == "auroc"
    scores = [v[1] for v in r.val_scores]
    assert len(set(np.round(scores, 6))) > 1  # the candidates are told apart
    # shuffling the test labels changes the test metrics but not the choice nor the held-out score
    r2 = fit_probe(task, x[:800], y[:800], x[800:], rng.permutation(y[800:]), probe="standardised")
    assert r2.hparam == r.hparam and r2.val_score == r.val_score
    assert r2.metrics["auroc"] != r.metrics["auroc"]
    y3 = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    multi = fit_probe(
        Task("m", "classification", 3), x[:800], y3[:800], x[800:], y3[800:], probe="standardised"
    )
    assert multi.selection_metric == "balanced_accuracy"


def test_select_epoch():
    rows = [
        {"epoch": 0, "a": 90.0, "val_a": 90.0},  # random init: never selected
        {"epoch": 1, "a": 50.0, "val_a": 80.0},
        {"epoch": 2, "a": 70.0, "val_a": 60.0},
        {"epoch": 3, "a": 60.0, "val_a": 70.0},
    ]
    assert select_epoch(rows, ["a"], "last")["epoch"] == 3
    assert select_epoch(rows, ["a"], "valid")["epoch"] == 1  # reads only held-out scores
    assert select_epoch(rows, ["a"], "test")["epoch"] == 2
    # early stopping (patience): an improvement after more than `patience` epochs is not seen
    late = rows[:3] + [{"epoch": 20, "a": 99.0, "val_a": 0.0}]
    assert select_epoch(late, ["a"], "test", patience=10)["epoch"] == 2
    with pytest.raises(ValueError, match="probe_every"):
        select_epoch(rows[:1], ["a"], "valid")


def test_mean_ci_and_paired_difference():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.302653 * 1 / math.sqrt(3), rel=1e-5)
    assert math.isnan(mean_ci([1.0])[1])
    d = paired_difference([3.0, 4.0, 5.0, 6.5], [1.0, 2.0, 3.0, 4.0])
    assert d["mean"] == pytest.approx(2.125) and d["p"] < 0.01 and d["n"] == 4


@pytest.mark.parametrize("method", ["infmasking", "comm", "cross", "cross_self", "cmc"])
def test_bf16_autocast_loss_agrees_with_float32(method):
    """bf16 autocast on the CPU (``--trainer.precision bf16-mixed``) with the exact savings:
    the loss (computed in float32 from the bf16 model's embeddings) agrees with float32 within
    bf16 tolerance, and the gradients flow to every parameter."""
    from infmasking.data.trifeatures_tokens import load_trifeatures_tokens

    data = load_trifeatures_tokens(max_pairs=64, probe_pairs=64)
    cfg = RunConfig()
    cfg.method.name, cfg.model.dim = method, 32
    cfg.model.encoders = {"x1": {"name": "identity"}, "x2": {"name": "identity"}}
    torch.manual_seed(0)
    m = SSLModule(
        cfg,
        data.modalities,
        data.kinds,
        {k: list(data.input_shape(k)) for k in data.modalities},
    )
    m.mask_weight = lambda: 1.0
    batch = data.train[torch.arange(32)]
    l32 = m.compute_loss(batch, torch.Generator().manual_seed(1)).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m.compute_loss(batch, torch.Generator().manual_seed(1))
    assert out.loss.dtype == torch.float32
    assert abs(out.loss.item() - l32.item()) < 2e-2 * abs(l32.item())
    out.loss.backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in m.model.fusion.parameters()
    )
