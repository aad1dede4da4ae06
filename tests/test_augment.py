"""Batched image and sequence augmentations."""

from __future__ import annotations

import colorsys

import pytest
import torch
import torch.nn.functional as F

from infmasking.data.augment import (
    SEQUENCE_AUGMENTATIONS,
    ImageAugment,
    SequenceAugment,
    color_jitter,
    gaussian_blur,
    hsv_to_rgb,
    parse_augmentations,
    random_gaussian_blur,
    random_grayscale,
    random_horizontal_flip,
    random_resized_crop,
    rgb_to_hsv,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def images():
    return torch.rand(6, 3, 32, 32, generator=_gen(123))


# ------------------------------------------------------------------------------ images


@pytest.mark.parametrize("batch", [1, 6])
def test_simclr_shapes_dtypes_range(batch):
    x = torch.rand(batch, 3, 32, 32, generator=_gen(1))
    aug = ImageAugment.simclr()
    y = aug(x, generator=_gen(2))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    u8 = (x * 255).to(torch.uint8)
    y8 = aug(u8, generator=_gen(2))
    assert y8.shape == x.shape and y8.dtype == torch.float32
    assert float(y8.min()) >= 0.0 and float(y8.max()) <= 1.0
    assert list(aug.parameters()) == []


def test_single_channel_images_skip_color_ops():
    x = torch.rand(4, 1, 32, 32, generator=_gen(1))
    y = ImageAugment.simclr()(x, generator=_gen(0))
    assert y.shape == x.shape


def test_probability_zero_is_identity(images):
    x = images
    assert torch.equal(ImageAugment()(x, generator=_gen()), x)
    off = ImageAugment.simclr(crop_scale=None, flip_p=0, jitter_p=0, grayscale_p=0, blur_p=0)
    assert torch.equal(off(x), x)
    assert torch.equal(random_horizontal_flip(x, 0.0, _gen()), x)
    assert torch.equal(color_jitter(x, p=0.0, generator=_gen()), x)
    assert torch.equal(random_grayscale(x, 0.0, _gen()), x)
    assert torch.equal(random_gaussian_blur(x, 0.0, generator=_gen()), x)


def test_flip(images):
    x = images
    once = random_horizontal_flip(x, 1.0, _gen())
    assert torch.equal(once, x.flip(-1))
    assert torch.equal(random_horizontal_flip(once, 1.0, _gen()), x)
    # p = 0.5: the same generator state flips the same samples, so twice is the identity
    half = random_horizontal_flip(x, 0.5, _gen(7))
    assert torch.equal(random_horizontal_flip(half, 0.5, _gen(7)), x)
    flipped = [(half[i] != x[i]).any().item() for i in range(len(x))]
    for i, f in enumerate(flipped):
        assert torch.equal(half[i], x[i].flip(-1) if f else x[i])


def test_full_crop_is_identity(images):
    y = random_resized_crop(images, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=_gen())
    assert torch.allclose(y, images, atol=1e-5)


def test_crop_geometry():
    """A crop of a quarter of the area magnifies a horizontal ramp 2x (slope halves)."""
    w = 64
    ramp = ((torch.arange(w) + 0.5) / w).expand(5, 3, w, w).contiguous()  # value = x in (0, 1)
    y = random_resized_crop(ramp, scale=(0.25, 0.25), ratio=(1.0, 1.0), generator=_gen(4))
    width = y[:, 0, 10, -1] - y[:, 0, 10, 0]  # ≈ box width − one output pixel's worth
    assert torch.allclose(width, torch.full((5,), 0.5 * (w - 1) / w), atol=1e-4)
    assert bool((y[:, 0, :, :].std(dim=1) < 1e-5).all())  # rows unchanged: no vertical mixing


def test_crop_fallback_when_no_box_fits():
    x = torch.rand(3, 3, 16, 16, generator=_gen(5))
    # an aspect ratio of 4 with area 0.9 never fits: central crop of the whole square image
    y = random_resized_crop(x, scale=(0.9, 0.9), ratio=(4.0, 4.0), generator=_gen())
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_grayscale_has_equal_channels(images):
    y = random_grayscale(images, 1.0, _gen())
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    expected = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    assert torch.allclose(y[:, 0], expected, atol=1e-6)


def test_hsv_matches_colorsys():
    x = torch.rand(2, 3, 5, 7, generator=_gen(9))
    x[0, :, 0, 0] = 0.3  # a gray pixel
    x[0, :, 0, 1] = 0.0  # black
    hsv = rgb_to_hsv(x)
    for b in range(2):
        for i in range(5):
            for j in range(7):
                ref = colorsys.rgb_to_hsv(*x[b, :, i, j].double().tolist())
                assert torch.allclose(
                    hsv[b, :, i, j].double(), torch.tensor(ref, dtype=torch.float64), atol=1e-5
                )
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-5)


def test_hue_jitter_changes_hue_and_color_safe_config_keeps_it():
    x = torch.zeros(8, 3, 8, 8)
    x[:, 0] = 0.6  # orange-ish, far enough from 0 and 1 that no jitter clamps it
    x[:, 1] = 0.45
    x[:, 2] = 0.3
    hue0 = rgb_to_hsv(x)[:, 0]
    shifted = color_jitter(x, 0, 0, 0, hue=0.5, p=1.0, generator=_gen(1))
    assert (rgb_to_hsv(shifted)[:, 0] - hue0).abs().max() > 0.05
    safe = ImageAugment.simclr(hue=0.0, grayscale_p=0.0, crop_scale=None, blur_p=0.0)
    y = safe(x, generator=_gen(2))
    d = (rgb_to_hsv(y)[:, 0] - hue0).abs()
    assert float(torch.minimum(d, 1 - d).max()) < 1e-3  # brightness/contrast/saturation keep hue
    assert ImageAugment.simclr(hue=False, grayscale_p=False).hue == 0.0


def _naive_blur(img: torch.Tensor, sigma: float, k: int) -> torch.Tensor:
    """float64 2-D Gaussian filter with reflect padding, one image [C, H, W]."""
    r = k // 2
    o = torch.arange(-r, r + 1, dtype=torch.float64)
    g1 = torch.exp(-(o**2) / (2 * sigma**2))
    g1 = g1 / g1.sum()
    kernel = (g1[:, None] * g1[None, :]).expand(img.shape[0], 1, k, k)
    pad = F.pad(img.double()[None], (r, r, r, r), mode="reflect")
    return F.conv2d(pad, kernel, groups=img.shape[0])[0]


def test_gaussian_blur_matches_naive_per_sample(images):
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 0.7])
    y = gaussian_blur(images, sigma, 7)
    for i in range(len(images)):
        ref = _naive_blur(images[i], float(sigma[i]), 7)
        assert torch.allclose(y[i].double(), ref, atol=1e-5)
    const = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(const, torch.tensor([1.0, 2.0]), 7), const, atol=1e-6)


def test_seeded_generator_reproduces(images):
    aug = ImageAugment.simclr()
    a = aug(images, generator=_gen(11))
    b = aug(images, generator=_gen(11))
    c = aug(images, generator=_gen(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(0)
    d = aug(images)
    torch.manual_seed(0)
    assert torch.equal(d, aug(images))  # the global RNG works too


def test_bad_image_arguments(images):
    with pytest.raises(ValueError, match="grayscale_p"):
        ImageAugment(grayscale_p=1.5)
    with pytest.raises(ValueError, match="hue"):
        ImageAugment.simclr(hue=0.7)
    with pytest.raises(ValueError, match="RGB"):
        color_jitter(images[:, :1])
    with pytest.raises(ValueError, match="kernel_size"):
        gaussian_blur(images, torch.ones(6), 4)


# ------------------------------------------------------------------------------ sequences


def _sequences(b: int = 6, length: int = 12, d: int = 4):
    x = torch.randn(b, length, d, generator=_gen(3))
    lengths = torch.tensor([12, 1, 5, 9, 0, 7])[:b]
    padding = torch.arange(length)[None, :] >= lengths[:, None]  # suffix padding
    padding[3, 2] = True  # and one interior padded step
    x = x.masked_fill(padding[:, :, None], 0.0)
    return x, padding


@pytest.mark.parametrize("name", list(SEQUENCE_AUGMENTATIONS) + ["+".join(SEQUENCE_AUGMENTATIONS)])
def test_sequence_ops_keep_padding_and_shape(name):
    x, padding = _sequences()
    pad_before = padding.clone()
    y = SequenceAugment(name, p=1.0)(x, padding, generator=_gen(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(padding, pad_before)  # the mask is not modified
    assert torch.equal(y[padding], x[padding])  # padded steps untouched (still zero)
    assert torch.isfinite(y).all()


def test_sequence_p_zero_is_identity():
    x, padding = _sequences()
    aug = SequenceAugment("+".join(SEQUENCE_AUGMENTATIONS), p=0.0)
    assert torch.equal(aug(x, padding, generator=_gen()), x)
    assert torch.equal(SequenceAugment("none")(x, padding), x)


def test_sequence_ops_semantics():
    x, padding = _sequences()
    valid = ~padding
    g = _gen(5)
    # noise changes only valid steps
    y = SequenceAugment("noise", p=1.0)(x, padding, generator=g)
    assert bool(((y != x).any(-1) == valid).all())
    # drop zeroes whole valid steps and leaves the others as they were
    y = SequenceAugment("drop", p=1.0)(x, padding, generator=g)
    zeroed = (y == 0).all(-1) & valid
    assert torch.equal(y[~zeroed], x[~zeroed])
    # drop_consecutive zeroes one contiguous run of valid steps
    y = SequenceAugment("drop_consecutive", p=1.0, max_drop=0.8)(x, padding, generator=g)
    for i in range(len(x)):
        steps = torch.nonzero(valid[i]).flatten()
        dropped = ((y[i, steps] == 0).all(-1) & (x[i, steps] != 0).any(-1)).long()
        runs = (torch.diff(torch.cat([torch.zeros(1, dtype=torch.long), dropped])) == 1).sum()
        assert runs <= 1
    # permute keeps the set of valid steps of every sample
    y = SequenceAugment("permute", p=1.0)(x, padding, generator=g)
    for i in range(len(x)):
        a, b = x[i][valid[i]], y[i][valid[i]]
        assert torch.equal(a[torch.argsort(a[:, 0])], b[torch.argsort(b[:, 0])])
    # crop with the full window is the identity; a short window stays inside the data's range
    y = SequenceAugment("crop", p=1.0, crop_scale=(1.0, 1.0))(x, padding, generator=g)
    assert torch.allclose(y, x, atol=1e-6)
    y = SequenceAugment("crop", p=1.0, crop_scale=(0.3, 0.3))(x, padding, generator=g)
    for i in range(len(x)):
        if valid[i].any():
            lo, hi = x[i][valid[i]].min(0).values, x[i][valid[i]].max(0).values
            assert bool((y[i][valid[i]] >= lo - 1e-6).all() and (y[i][valid[i]] <= hi + 1e-6).all())


def test_sequence_crop_resamples_a_window():
    """On a ramp, a window crop resampled to the full length is again a (flatter) ramp."""
    length = 50
    x = torch.arange(length, dtype=torch.float32).view(1, length, 1).repeat(4, 1, 1)
    y = SequenceAugment("crop", p=1.0, crop_scale=(0.5, 0.5))(x, generator=_gen(2))
    diffs = torch.diff(y[..., 0], dim=1)
    assert torch.allclose(diffs, torch.full_like(diffs, 24 / 49), atol=1e-4)  # window of 25


def test_vectors():
    x = torch.randn(5, 16, generator=_gen(1))
    y = SequenceAugment("noise+drop", p=1.0)(x, generator=_gen(2))
    assert y.shape == x.shape
    with pytest.raises(ValueError, match="sequences"):
        SequenceAugment("crop")(x)
    with pytest.raises(ValueError, match="padding"):
        SequenceAugment("noise")(x, torch.zeros(5, 16, dtype=torch.bool))


def test_sequence_reproducible_and_errors():
    x, padding = _sequences()
    aug = SequenceAugment("drop+noise+permute")
    assert torch.equal(aug(x, padding, generator=_gen(4)), aug(x, padding, generator=_gen(4)))
    assert not torch.equal(aug(x, padding, generator=_gen(4)), aug(x, padding, generator=_gen(5)))
    with pytest.raises(ValueError, match="drop_consecutive"):  # lists the valid names
        SequenceAugment("drop+blur")
    with pytest.raises(ValueError, match="p must be"):
        SequenceAugment("noise", p=2.0)
    assert parse_augmentations(" drop + noise ") == ("drop", "noise")
    with pytest.raises(ValueError, match="padding"):
        aug(x, padding.long())


@pytest.mark.parametrize("threads", [1, 2])
def test_view_maker_batches_images_as_one_call_per_modality_and_view(threads):
    """The two views of two image modalities come from one augmentation call over all four
    batches, with the generator's stream read in the order of one call each (view 1: image1,
    image2; view 2: image1, image2): the same views as four separate calls."""
    from infmasking.training.config import AugmentConfig
    from infmasking.training.views import ViewMaker

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(7)
        x = {
            "a": torch.randint(0, 256, (5, 3, 40, 40), dtype=torch.uint8, generator=g),
            "b": torch.randint(0, 256, (5, 3, 40, 40), dtype=torch.uint8, generator=g),
        }
        vm = ViewMaker(AugmentConfig(), {"a": "image", "b": "image"})
        (v1, _), (v2, _) = vm(x, {}, _gen(3))
        g = _gen(3)
        ref = [{m: vm._normalize(vm.image(x[m], generator=g)) for m in x} for _ in range(2)]
    finally:
        torch.set_num_threads(old)
    for got, want in ((v1, ref[0]), (v2, ref[1])):
        assert list(got) == ["a", "b"]
        for m in x:
            torch.testing.assert_close(got[m], want[m], rtol=0, atol=1e-6)
    assert not torch.equal(v1["a"], v2["a"])  # two different views


def test_image_augment_draws_then_applies_like_one_call(images):
    """``apply(x, draw(...))`` is the one-call augmentation, and draws of two batches
    concatenated augment the two batches concatenated."""
    aug = ImageAugment.simclr()
    want = aug(images, generator=_gen(5))
    g = _gen(5)
    d = aug.draw(images.shape[0], 3, g)
    assert torch.equal(aug.apply(images, d), want)
    half = images.shape[0] // 2
    g = _gen(5)
    want = torch.cat([aug(images[:half], generator=g), aug(images[half:], generator=g)])
    g = _gen(5)
    d1, d2 = aug.draw(half, 3, g), aug.draw(images.shape[0] - half, 3, g)
    both = aug.apply(images, {k: torch.cat([d1[k], d2[k]]) for k in d1})
    torch.testing.assert_close(both, want, rtol=0, atol=1e-6)
