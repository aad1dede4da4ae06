"""``trainer.compile``: the compiled training step equals the eager step (loss and gradients),
for every objective; the step's random numbers are drawn before the compiled region.

The compiled step is traced by Dynamo and differentiated by AOTAutograd (the graphs Inductor
receives) with the ``aot_eager`` backend, which runs those graphs without generating kernels:
what the tests check is that compilation changes nothing but speed (the kernels Inductor
generates are PyTorch's to test; on a GPU, benchmarks/costs/gpu_step.py measures them)."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY_REFERENCE

from infmasking.data.registry import load_dataset
from infmasking.training.config_files import load_config, presets
from infmasking.training.module import SSLModule, adamw_kernel, rng_device

# two in CI (the masked objective and the fused-term baseline); the rest with -m slow
METHODS = [
    "infmasking",
    "comm",
    *(
        pytest.param(m, marks=pytest.mark.slow)
        for m in ("cross", "cross_self", "cmc", "factorcl", "mae")
    ),
]


@pytest.fixture(scope="module")
def token_data():
    cfg = load_config(presets()["trifeatures_tokens"])
    return cfg, load_dataset("trifeatures_tokens", max_pairs=64)


def _module(cfg, data, method: str, compiled: bool) -> SSLModule:
    c = copy.deepcopy(cfg)
    c.method.name, c.method.num_masks = method, 3
    c.trainer.compile = compiled
    torch.manual_seed(0)
    shapes = {m: list(data.input_shape(m)) for m in data.modalities}
    module = SSLModule(c, data.modalities, data.kinds, shapes)
    module.mask_weight = lambda: 0.5  # no trainer attached
    if compiled:
        module._compiled = torch.compile(module.loss_from_draws, backend="aot_eager")
    return module


def _step(module: SSLModule, batch, seed: int):
    out = module.compute_loss(batch, torch.Generator().manual_seed(seed))
    module.zero_grad(set_to_none=True)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize("method", METHODS)
def test_compiled_step_equals_eager(token_data, method):
    cfg, data = token_data
    batch = data.train[torch.arange(32)]
    eager, compiled = _module(cfg, data, method, False), _module(cfg, data, method, True)
    for seed in (1, 2):  # the second step reuses the compiled graphs (λ a tensor input)
        (o1, g1), (o2, g2) = _step(eager, batch, seed), _step(compiled, batch, seed)
        torch.testing.assert_close(o2.loss, o1.loss, rtol=1e-6, atol=1e-6)
        assert list(o2.terms) == list(o1.terms)
        assert set(g2) == set(g1) and g1
        for name in g1:
            torch.testing.assert_close(g2[name], g1[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow  # ~30 s of tracing
def test_compiled_image_step_equals_eager():
    """The image path (batched augmentation, CNN encoders, masks) compiled equals eager."""
    cfg = load_config(presets()["tiny"])
    data = load_dataset("trifeatures", max_pairs=16, image_size=cfg.data.trifeatures.image_size)
    batch = data.train[torch.arange(8)]
    cfg.optim.batch_size = 8
    eager, compiled = (
        _module(cfg, data, "infmasking", False),
        _module(cfg, data, "infmasking", True),
    )
    (o1, g1), (o2, g2) = _step(eager, batch, 3), _step(compiled, batch, 3)
    torch.testing.assert_close(o2.loss, o1.loss, rtol=1e-6, atol=1e-6)
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], rtol=1e-5, atol=1e-6, msg=name)


def test_compiled_step_is_not_recompiled_when_lambda_changes(token_data):
    """λ_e enters the compiled step as a tensor: a new epoch's λ reuses the graphs."""
    cfg, data = token_data
    batch = data.train[torch.arange(16)]
    module = _module(cfg, data, "infmasking", True)
    counts = []

    def backend(gm, example_inputs):
        counts.append(1)
        return gm.forward

    module._compiled = torch.compile(module.loss_from_draws, backend=backend)
    module.compute_loss(batch, torch.Generator().manual_seed(0))
    first = len(counts)
    module.mask_weight = lambda: 0.25
    out = module.compute_loss(batch, torch.Generator().manual_seed(0))
    assert len(counts) == first
    module.mask_weight = lambda: 0.5
    again = module.compute_loss(batch, torch.Generator().manual_seed(0))
    assert not torch.equal(out.loss, again.loss)  # λ did reach the loss


def test_rng_device_and_adamw_choices():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert rng_device("auto", cpu) == cpu and rng_device("auto", cuda) == cuda
    assert rng_device("cpu", cuda) == cpu and rng_device("accelerator", cuda) == cuda
    with pytest.raises(ValueError, match="trainer.rng_device"):
        rng_device("gpu", cpu)
    assert adamw_kernel("auto", cpu) == {"foreach": True}
    assert adamw_kernel("auto", cuda) == {"fused": True}
    assert adamw_kernel("single", cpu) == {"foreach": False}
    with pytest.raises(ValueError, match="optim.adamw"):
        adamw_kernel("fast", cpu)


def test_foreach_adamw_is_bit_identical_to_the_loop():
    """The default AdamW on the CPU (foreach) gives the per-parameter loop's numbers exactly."""
    torch.manual_seed(0)
    shapes = [(8, 3, 5, 5), (8,), (16, 16), (3,)]
    results = []
    for kind in ("foreach", "single"):
        params = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in
                  enumerate(shapes)]  # fmt: skip
        params = [p.requires_grad_() for p in params]
        opt = torch.optim.AdamW(
            [{"params": params[:2], "weight_decay": 1e-4}, {"params": params[2:]}],
            lr=3e-4,
            **adamw_kernel(kind, torch.device("cpu")),
        )
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        results.append(params)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


@pytest.mark.slow  # three CLI runs with tracing: ~2.5 min on 2 cores
def test_compiled_run_resumes_bit_for_bit(tmp_path):
    """--trainer.compile true, stopped by SIGTERM after step 2 of 4 and resumed: the final
    weights and the logged losses equal an uninterrupted compiled run's exactly."""
    import csv

    from crashing_cli import run_cli

    env = {"TEST_COMPILE_BACKEND": "aot_eager"}
    args = ["train", *TINY_REFERENCE]
    args += ["--trainer.compile", "true", "--data.trifeatures.max_pairs", "64"]
    ref, out = tmp_path / "ref", tmp_path / "run"
    assert run_cli([*args, "--out_dir", str(ref)], env=env, crash_at="99").returncode == 0
    r = run_cli([*args, "--out_dir", str(out)], env=env, crash_at="SIGTERM:2")
    assert r.returncode == 143, r.stderr[-2000:]
    assert run_cli([*args, "--out_dir", str(out)], env=env, crash_at="99").returncode == 0
    a = torch.load(ref / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] >= 3
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k

    def losses(folder):
        with open(folder / "metrics.csv") as f:
            return [(r["step"], r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]

    assert losses(ref) == losses(out) and len(losses(ref)) == a["global_step"]
