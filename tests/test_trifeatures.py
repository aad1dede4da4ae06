"""Bimodal Trifeatures generator: labels, splits, pair sets, determinism, cache, rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infmasking.data import trifeatures as T
from infmasking.data import trifeatures_render as R
from infmasking.data.trifeatures import (
    COLOR_RGB,
    SHAPES,
    TEXTURES,
    correlated_pairs,
    draw_textures,
    get_preset,
    load_trifeatures,
    make_image_bank,
    render_images,
    shape_masks,
    split_combinations,
)

SPLITS = ("train", "probe_train", "probe_test")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trifeatures_cache")


@pytest.fixture(scope="module")
def biased(cache_dir):
    return load_trifeatures(image_size=64, biased=True, seed=0, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def unbiased(cache_dir, biased):  # after `biased`: the image bank comes from the cache
    return load_trifeatures(image_size=64, biased=False, seed=0, cache_dir=cache_dir)


def _pairs(split):
    return split.index["image1"], split.index["image2"]


def _expected_correlated_color() -> np.ndarray:
    """texture -> correlated color, re-derived from the protocol's own generator."""
    return np.random.default_rng(42).permutation(10)


# ------------------------------------------------------------------------------ structure


def test_dataset_structure(biased):
    d = biased
    assert d.name == "trifeatures"
    assert d.modalities == ["image1", "image2"]
    assert d.kinds == {"image1": "image", "image2": "image"}
    assert [(t.name, t.num_classes) for t in d.tasks] == [
        ("share", 10), ("unique1", 10), ("unique2", 10), ("synergy", 2)
    ]  # fmt: skip
    bank = d.train.inputs["image1"]
    assert bank.dtype == torch.uint8 and tuple(bank.shape) == (2600, 3, 64, 64)
    for name in SPLITS:  # one bank shared by every split and both modalities
        split = getattr(d, name)
        assert split.inputs["image1"] is bank and split.inputs["image2"] is bank
        assert set(split.targets) == {"share", "unique1", "unique2", "synergy"}
        assert all(y.dtype == torch.long for y in split.targets.values())
    assert d.input_shape("image1") == (3, 64, 64)
    batch = d.train[torch.arange(5)]
    assert batch.inputs["image2"].shape == (5, 3, 64, 64)
    i, j = _pairs(d.train)
    assert torch.equal(batch.inputs["image1"], bank[i[:5]])
    assert torch.equal(batch.inputs["image2"], bank[j[:5]])


def test_counts(biased):
    info = biased.info
    is_train = info["image_is_train"]
    assert int(is_train.sum()) == 2400 and int((~is_train).sum()) == 200
    assert len(biased.train) == 10_000 and len(biased.probe_train) == 10_000
    # probe-test: every ordered same-shape pair of the 200 test images, i = j included (published)
    test_shapes = info["image_shape"][~is_train]
    counts = torch.bincount(test_shapes, minlength=10)
    assert len(biased.probe_test) == int((counts * counts).sum())
    assert 3000 < len(biased.probe_test) < 5000  # ≈ 4100 in the protocol
    rate = biased.probe_test.targets["synergy"].float().mean()
    assert 0.05 < rate < 0.15  # ≈ 10 % synergy-positive


# ------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("name", SPLITS)
def test_labels_rederived_from_metadata(biased, name):
    info, split = biased.info, getattr(biased, name)
    shape, texture, color = info["image_shape"], info["image_texture"], info["image_color"]
    i, j = _pairs(split)
    y = split.targets
    if name == "probe_test":
        assert int((i == j).sum()) == 200  # each test image paired with itself, as published
    assert torch.equal(shape[i], shape[j])  # pairs share the shape
    assert torch.equal(y["share"], shape[i])
    assert torch.equal(y["unique1"], texture[i])
    assert torch.equal(y["unique2"], texture[j])
    corr = torch.as_tensor(_expected_correlated_color())
    assert torch.equal(y["synergy"], (corr[texture[i]] == color[j]).long())


def test_correlated_pairs():
    pairs = correlated_pairs()
    assert pairs.shape == (10, 2) and pairs.dtype == torch.long
    assert torch.equal(pairs[:, 0], torch.arange(10))
    assert sorted(pairs[:, 1].tolist()) == list(range(10))  # a permutation
    assert pairs[:, 1].tolist() == _expected_correlated_color().tolist()
    assert torch.equal(correlated_pairs(), pairs)  # independent of any other RNG use


def test_labels_match_the_rendered_pixels(biased):
    """Every image shows only gray and its own color, and its colored area is non-empty."""
    bank, color = biased.train.inputs["image1"], biased.info["image_color"]
    rgb = COLOR_RGB.mul(255).round().to(torch.uint8)  # [10, 3]
    idx = torch.arange(0, 2600, 7)
    img = bank[idx]  # [n, 3, H, W]
    gray = (img == 128).all(dim=1)  # [n, H, W]
    own = (img == rgb[color[idx]][:, :, None, None]).all(dim=1)
    assert bool((gray | own).all())
    assert bool((own & ~gray).flatten(1).any(1).all())


# ------------------------------------------------------------------------------ splits


def test_split_by_combination(biased):
    info = biased.info
    triple = info["image_shape"] * 100 + info["image_texture"] * 10 + info["image_color"]
    is_train = info["image_is_train"]
    train_triples, test_triples = set(triple[is_train].tolist()), set(triple[~is_train].tolist())
    assert len(train_triples) == 800 and len(test_triples) == 200
    assert not train_triples & test_triples  # no test combination is seen in training
    assert torch.equal(torch.bincount(triple[is_train]).unique(), torch.tensor([0, 3]))
    assert len(triple[~is_train].unique()) == 200
    for name in ("train", "probe_train"):
        i, j = _pairs(getattr(biased, name))
        assert bool(is_train[i].all() and is_train[j].all())
    i, j = _pairs(biased.probe_test)
    assert not bool(is_train[i].any() or is_train[j].any())


def test_split_combinations_is_seeded():
    a_train, a_test = split_combinations(0)
    b_train, _ = split_combinations(0)
    c_train, _ = split_combinations(1)
    assert a_train.shape == (800, 3) and a_test.shape == (200, 3)
    assert torch.equal(a_train, b_train) and not torch.equal(a_train, c_train)
    all_triples = torch.cat([a_train, a_test])
    assert len((all_triples * torch.tensor([100, 10, 1])).sum(1).unique()) == 1000


# ------------------------------------------------------------------------------ pair sets


def test_biased_training_set(biased):
    i, j = _pairs(biased.train)
    t1, c2 = biased.info["image_texture"][i], biased.info["image_color"][j]
    assert bool((biased.train.targets["synergy"] == 1).all())
    for t in range(10):  # texture of image 1 determines color of image 2
        colors = c2[t1 == t].unique()
        assert colors.tolist() == [int(_expected_correlated_color()[t])]
    pairs = torch.stack([i, j], 1)
    assert len(pairs.unique(dim=0)) == len(pairs)  # without replacement


def test_unbiased_training_set(unbiased):
    y = unbiased.train.targets["synergy"]
    assert len(unbiased.train) == 10_000
    assert 0.05 < y.float().mean() < 0.15  # both labels, ≈ 10 % positive
    i, j = _pairs(unbiased.train)
    assert len(torch.stack([i, j], 1).unique(dim=0)) == 10_000


def test_max_pairs(cache_dir, biased):
    small = load_trifeatures(image_size=64, seed=0, max_pairs=123, probe_pairs=77,
                             cache_dir=cache_dir)  # fmt: skip
    assert len(small.train) == 123 and len(small.probe_train) == 77
    assert len(small.probe_test) == len(biased.probe_test)


# ------------------------------------------------------------------------------ determinism


def _render(seed: int, n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(n)
    return render_images(k % 10, (k // 10) % 10, (k * 3) % 10, 64, g)


def test_render_determinism():
    a, b, c = _render(0), _render(0), _render(1)
    assert a.dtype == torch.uint8 and a.shape == (40, 3, 64, 64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_cache_hit_is_identical_to_fresh_render(cache_dir, biased):
    files = sorted(cache_dir.glob("trifeatures_64px_seed0_*.pt"))
    assert len(files) == 1
    cached = make_image_bank(64, 0, cache_dir)  # hit
    fresh = make_image_bank(64, 0, None)  # render again
    for a, b in zip(cached, fresh):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert torch.equal(biased.train.inputs["image1"], fresh.images)
    assert T._bank_key(64, 0) != T._bank_key(64, 1) != T._bank_key(224, 0)


def test_different_seed_gives_different_data(biased):
    other = load_trifeatures(image_size=64, seed=1)
    assert not torch.equal(other.train.inputs["image1"], biased.train.inputs["image1"])
    assert not torch.equal(other.info["image_texture"], biased.info["image_texture"])


# ------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize("base_size", [36, 128])
def test_shapes_are_distinct(base_size):
    masks = shape_masks(base_size)
    assert masks.shape == (10, base_size, base_size) and masks.dtype == torch.bool
    area = masks.flatten(1).float().mean(1)
    assert bool((area > 0.1).all())
    for a in range(10):
        for b in range(a + 1, 10):
            union = (masks[a] | masks[b]).sum()
            diff = (masks[a] ^ masks[b]).sum()
            assert diff > 0.05 * union, (SHAPES[a], SHAPES[b])  # circle~pentagon ≈ 10 %
    # every shape fits in the inscribed circle: a rotation by up to 45° never clips it
    c = (torch.arange(base_size) - (base_size - 1) / 2) / (base_size / 2)
    r2 = c[None, :] ** 2 + c[:, None] ** 2
    assert bool((r2[masks.any(0)] <= 1.0).all())


@pytest.mark.parametrize("image_size", [64, 224])
def test_textures_are_distinct(image_size):
    preset = get_preset(image_size)
    size = 2 * image_size
    g = torch.Generator().manual_seed(0)
    t = torch.stack(
        [draw_textures(k, torch.zeros(1, 2, dtype=torch.long), size, preset, g)[0]
         for k in range(10)]
    )  # fmt: skip
    assert t.shape == (10, size, size)
    assert set(t.unique().tolist()) <= {0.0, 1.0}
    cover = t.flatten(1).mean(1)
    assert cover[TEXTURES.index("solid")] == 1.0
    assert abs(cover[TEXTURES.index("noise")] - 0.5) < 0.02
    assert bool((cover[1:] > 0.05).all() and (cover[1:] < 0.8).all())
    for a in range(10):
        for b in range(a + 1, 10):
            assert (t[a] - t[b]).abs().mean() > 0.1, (TEXTURES[a], TEXTURES[b])


def test_texture_phase_shifts_the_pattern():
    preset = get_preset(64)
    k = TEXTURES.index("dots")
    phases = torch.tensor([[0, 0], [2, 3]])
    t = draw_textures(k, phases, 40, preset)
    assert torch.equal(t[1, :-3, :-2], t[0, 3:, 2:])  # canvas(x, y) = pattern(x + φx, y + φy)


def test_solid_area_matches_the_shape_mask():
    """Rotation + placement keep the whole shape inside the image (no clipping)."""
    n = 60
    shapes = torch.arange(n) % 10
    g = torch.Generator().manual_seed(3)
    img = render_images(
        shapes, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long), 64, g
    )  # fmt: skip  (solid red)
    colored = (img != 128).any(1).flatten(1).sum(1).float()
    area = shape_masks(36).flatten(1).sum(1).float()[shapes]
    assert bool(((colored / area - 1).abs() < 0.08).all())


def test_phase_folded_into_the_grid_equals_the_explicit_canvas():
    """render_images samples a periodic pattern with the phase in the grid; that must equal
    rotating + center-cropping the explicit 2S canvas of draw_textures (up to float ties)."""
    s, preset = 64, get_preset(64)
    span, n = 8 * preset.texture_scale, 20
    g = torch.Generator().manual_seed(0)
    angle = torch.randint(-45, 45, (n,), generator=g)
    phase = torch.randint(0, span, (n, 2), generator=g)
    rinv = R._rotation_inverse(angle)
    for k in [i for i, name in enumerate(TEXTURES) if name not in ("noise", "rain")]:
        canvas = draw_textures(k, phase, 2 * s, preset)[:, None]
        theta = torch.cat([0.5 * rinv, torch.zeros(n, 2, 1, dtype=torch.double)], 2).float()
        explicit = F.grid_sample(canvas, R.affine_grid(theta, s, s), "nearest", align_corners=False)
        size = 2 * s + span
        pattern = R._pattern(k, size, preset).float()[None, None].expand(n, 1, -1, -1)
        shift = (2 * phase.double() + 2 * s - size) / size
        theta = torch.cat([(s / size) * rinv, shift[:, :, None]], 2).float()
        folded = F.grid_sample(pattern, R.affine_grid(theta, s, s), "nearest", align_corners=False)
        assert (explicit != folded).float().mean() < 1e-3, TEXTURES[k]


def test_affine_grid_matches_torch():
    theta = torch.randn(3, 2, 3)
    ours = R.affine_grid(theta, 9, 7)
    ref = F.affine_grid(theta, [3, 1, 9, 7], align_corners=False)
    assert torch.allclose(ours, ref, atol=1e-6)


# ------------------------------------------------------------------------------ errors


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        load_trifeatures(image_size=100)
    with pytest.raises(ValueError, match="max_pairs"):
        load_trifeatures(max_pairs=0)
    with pytest.raises(ValueError, match="probe_pairs"):
        load_trifeatures(probe_pairs=-5)
    with pytest.raises(ValueError, match="biased"):
        load_trifeatures(biased="yes")
    with pytest.raises(ValueError, match="seed"):
        make_image_bank(64, seed=-1)
    with pytest.raises(ValueError, match="textures"):
        render_images(torch.tensor([0]), torch.tensor([10]), torch.tensor([0]), 64)
    with pytest.raises(ValueError, match="equal length"):
        render_images(torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([0]), 64)
