"""MAE over the fusion transformer's tokens: the loss against naive float64 references
(forward and gradient), the reconstruction targets, that the decoder sees nothing of a masked
token but its position, bad input, an end-to-end CLI run and one step on every preset."""

import pytest
import torch
from baseline_steps import (
    PRESETS,
    one_step,
    preset_module,
    probe_features,
    train_cli,
    trifeatures_tokens_report,
    write_files,
)
from conftest import TINY

from infmasking import losses as L
from infmasking.models.baseline_heads import MAEDecoder, reconstruction_targets
from infmasking.models.masking import random_masking

# ----------------------------------------------------------------- naive references (loops)


def naive_masked_mse(pred, target, mask):
    n, length, c = pred.shape
    total, count = 0.0, 0
    for i in range(n):
        for t in range(length):
            if mask[i, t]:
                total = total + sum((pred[i, t, k] - target[i, t, k]) ** 2 for k in range(c)) / c
                count += 1
    return total / max(count, 1)


def naive_normalized(target, eps=1e-6):
    n, length, c = target.shape
    rows = []
    for i in range(n):
        for t in range(length):
            row = target[i, t]
            mean = sum(row[k] for k in range(c)) / c
            var = sum((row[k] - mean) ** 2 for k in range(c)) / (c - 1)
            rows.append((row - mean) / (var + eps) ** 0.5)
    return torch.stack(rows).reshape(n, length, c)


def _case(seed, n=3, length=4, c=5):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, length, c, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(n, length, c, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(n, length, generator=g) < 0.6
    return pred, target, mask


# ----------------------------------------------------------------- the loss


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 3])
def test_masked_mse_matches_naive(seed, n):
    pred, target, mask = _case(seed, n=n)
    fast, slow = L.masked_mse(pred, target, mask), naive_masked_mse(pred, target, mask)
    torch.testing.assert_close(fast, torch.as_tensor(slow, dtype=fast.dtype), rtol=0, atol=1e-12)
    for gf, gs in zip(
        torch.autograd.grad(fast, (pred, target)),
        torch.autograd.grad(slow, (pred, target)) if mask.any() else (0 * pred, 0 * target),
        strict=True,
    ):
        torch.testing.assert_close(gf, gs, rtol=0, atol=1e-10)
    assert torch.autograd.gradcheck(lambda p, t: L.masked_mse(p, t, mask), (pred, target))


def test_nothing_masked_is_zero_not_nan():
    pred, target, _ = _case(0)
    out = L.masked_mse(pred, target, torch.zeros(3, 4, dtype=torch.bool))
    assert out.item() == 0.0


def test_normalized_target_matches_naive():
    _, target, _ = _case(4)
    fast = L.normalized_target(target)
    torch.testing.assert_close(fast, naive_normalized(target), rtol=0, atol=1e-12)
    (gf,) = torch.autograd.grad(fast.sum(), target)
    (gs,) = torch.autograd.grad(naive_normalized(target).sum(), target)
    torch.testing.assert_close(gf, gs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("weights", [None, [2.0, 0.5]])
def test_mae_loss_is_the_mean_of_the_modality_terms(weights):
    a, b = _case(5), _case(6, length=2, c=3)
    out = L.mae_loss([a[0], b[0]], [a[1], b[1]], [a[2], b[2]], weights=weights)
    terms = [naive_masked_mse(*a), naive_masked_mse(*b)]
    w = weights or [1.0, 1.0]
    slow = (w[0] * terms[0] + w[1] * terms[1]) / 2
    assert list(out.terms) == ["rec_1", "rec_2"]
    torch.testing.assert_close(out.loss, slow, rtol=0, atol=1e-12)
    leaves = (a[0], a[1], b[0], b[1])
    for gf, gs in zip(
        torch.autograd.grad(out.loss, leaves), torch.autograd.grad(slow, leaves), strict=True
    ):
        torch.testing.assert_close(gf, gs, rtol=0, atol=1e-10)


def test_bad_input_named():
    pred, target, mask = _case(0)
    with pytest.raises(ValueError, match=r"pred and target must both be \[N, L, c\]"):
        L.masked_mse(pred, target[:, :2], mask)
    with pytest.raises(ValueError, match=r"mask must be \[N, L\] = \[3, 4\], got \[3, 3\]"):
        L.masked_mse(pred, target, mask[:, :3])
    with pytest.raises(ValueError, match="one entry per modality"):
        L.mae_loss([pred], [target], [])
    with pytest.raises(ValueError, match="needs >= 2 entries per token"):
        L.normalized_target(torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="unknown modality kind 'audio'"):
        reconstruction_targets(torch.zeros(2, 3), "audio", 1)
    with pytest.raises(ValueError, match="cannot place 5 tokens on a grid"):
        reconstruction_targets(torch.zeros(1, 3, 8, 8), "image", 5)


def test_zero_mask_ratio_refused():

    from infmasking.training.config import RunConfig
    from infmasking.training.module import SSLModule

    cfg = RunConfig()
    cfg.method.name, cfg.method.mask_ratio = "mae", 0.0
    cfg.model.dim, cfg.model.n_heads = 16, 2
    cfg.model.encoders = {"x1": {"name": "identity"}, "x2": {"name": "identity"}}
    with pytest.raises(ValueError, match="method.mask_ratio must be > 0, got 0.0"):
        SSLModule(
            cfg,
            ["x1", "x2"],
            dict.fromkeys(["x1", "x2"], "vector"),
            {"x1": [5], "x2": [5]},
        )


# ----------------------------------------------------------------- targets and the decoder


def test_image_targets_are_the_cells_of_the_token_grid():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float64).reshape(2, 3, 8, 8)
    t = reconstruction_targets(x, "image", 4, patch=4)  # a 2 × 2 grid of 4 × 4 cells
    assert t.shape == (2, 4, 3 * 16)
    for b in range(2):
        for r in range(2):
            for c in range(2):
                cell = x[b, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4]  # [C, 4, 4]
                torch.testing.assert_close(t[b, 2 * r + c], cell.permute(1, 2, 0).reshape(-1))
    # a coarser target resolution is the area average of the cell
    t2 = reconstruction_targets(x, "image", 4, patch=2)
    torch.testing.assert_close(t2[0, 0, :3], x[0, :, :2, :2].mean((1, 2)))


def test_sequence_and_vector_targets():
    s = torch.randn(2, 6, 3, dtype=torch.float64)
    torch.testing.assert_close(reconstruction_targets(s, "sequence", 6), s)
    pooled = reconstruction_targets(s, "sequence", 2)  # a strided encoder: 3 steps a token
    torch.testing.assert_close(pooled[:, 1], s[:, 3:].mean(1))
    v = torch.randn(2, 5, dtype=torch.float64)
    torch.testing.assert_close(reconstruction_targets(v, "vector", 3), v[:, None].expand(2, 3, 5))


def _model_and_decoder(seed=0):
    from infmasking.models import build_model

    torch.manual_seed(seed)
    mods = ["x1", "x2"]
    kinds = {"x1": "sequence", "x2": "vector"}
    shapes = {"x1": (6, 4), "x2": (5,)}
    model = build_model(
        mods,
        kinds,
        shapes,
        dim=16,
        n_heads=2,
        head_hidden=8,
        proj_dim=8,
        vector_tokens=3,
        encoders={"x1": {"name": "identity"}, "x2": {"name": "identity"}},
    ).double()
    dec = MAEDecoder(mods, kinds, shapes, 16, 2).double()
    g = torch.Generator().manual_seed(1)
    x = {
        "x1": torch.randn(4, 6, 4, generator=g).double(),
        "x2": torch.randn(4, 5, generator=g).double(),
    }
    return model, dec, x


def test_a_masked_token_reaches_the_decoder_only_as_a_position():
    """Changing the input under a masked token changes no prediction; under a kept one it does."""
    model, dec, x = _model_and_decoder()
    tokens = model.tokenize(x)
    masks = model.draw_masks(tokens, 1, 0.5, torch.Generator().manual_seed(3))
    base = dec.reconstruct(model, tokens, masks)
    mask = masks["x1"].mask[0]  # [B, L]
    b, t_masked = 0, int(mask[0].nonzero()[0])
    t_kept = int((~mask[0]).nonzero()[0])
    for t, changes in ((t_masked, False), (t_kept, True)):
        x2 = {k: v.clone() for k, v in x.items()}
        x2["x1"][b, t] += 10.0
        preds = dec.reconstruct(model, model.tokenize(x2), masks)
        same = all(torch.allclose(p, q, rtol=0, atol=1e-12) for p, q in zip(base, preds))
        assert same != changes


def test_padding_is_never_reconstructed_nor_attended():
    model, dec, x = _model_and_decoder(seed=2)
    pad = torch.zeros(4, 6, dtype=torch.bool)
    pad[:, 4:] = True
    tokens = model.tokenize(x, {"x1": pad})
    preds, targets, rec = dec(model, tokens, x, 0.5, torch.Generator().manual_seed(0))
    assert not rec[0][:, 4:].any() and rec[0].any()
    assert [p.shape for p in preds] == [t.shape for t in targets] == [(4, 6, 4), (4, 3, 5)]
    # padded steps' values change nothing
    x2 = {k: v.clone() for k, v in x.items()}
    x2["x1"][:, 4:] = 99.0
    preds2, _, _ = dec(
        model, model.tokenize(x2, {"x1": pad}), x2, 0.5, torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(preds2[1], preds[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(preds2[0][:, :4], preds[0][:, :4], rtol=0, atol=1e-12)


def test_masking_is_per_modality_at_the_ratio():
    model, _, x = _model_and_decoder()
    masks = model.draw_masks(model.tokenize(x), 1, 0.5, torch.Generator().manual_seed(0))
    assert masks["x1"].mask.sum(-1).eq(3).all() and masks["x2"].mask.sum(-1).eq(2).all()
    ref = random_masking(4, 6, 0.5, generator=torch.Generator().manual_seed(0))
    assert ref.mask.shape == masks["x1"].mask.shape


# ----------------------------------------------------------------- end to end


def test_tiny_run_trains_probes_and_embeds(tmp_path):
    from infmasking.embed import load_run

    report = train_cli("mae", tmp_path / "tiny", *TINY)
    assert report["method"] == "mae" and report["steps"] >= 1
    assert {"share", "synergy"} <= set(report["results"])
    csv = (tmp_path / "tiny" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss_rec_1" in csv and "train/loss_rec_2" in csv
    run = load_run(tmp_path / "tiny")
    assert run.features == "fused" and isinstance(run.heads, MAEDecoder)
    x = {m: torch.zeros(3, *run.shapes[m], dtype=torch.uint8) for m in run.modalities}
    assert run.embed(x).shape == (3, run.dim)


def test_trifeatures_tokens_run(tmp_path):
    report = trifeatures_tokens_report("mae", tmp_path / "tok")
    assert report["steps"] >= 1 and "synergy" in report["results"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("preset", PRESETS)
def test_one_step_on_every_preset(files, preset):
    module, data = preset_module(preset, "mae", files)
    out, moved = one_step(module, data)
    assert torch.isfinite(out.loss) and list(out.terms) == [
        f"rec_{i + 1}" for i in range(len(data.modalities))
    ]
    assert moved
    feats = probe_features(module, data)  # the fused F(all): what its probes read
    assert feats.shape[1] == module.cfg.model.dim and torch.isfinite(feats).all()
