"""Image augmentations (SimCLR), batched: crops, flips, colour, blur; :class:`ImageAugment`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infmasking.data.augment.draws import (
    _EPS,
    _bernoulli,
    _check_images,
    _check_p,
    _check_range,
    _check_strengths,
    _rand,
)
from infmasking.data.base import to_float_images

# --------------------------------------------------------------------------------------------
# Images: geometry
# --------------------------------------------------------------------------------------------


def crop_draws(
    n: int, generator: torch.Generator | None, device, attempts: int = 10
) -> tuple[Tensor, Tensor, Tensor]:
    """The raw U[0, 1) draws of :func:`random_resized_crop` for n images, in its order:
    area [n, attempts], log-ratio [n, attempts], box position [n, 2]."""
    return (
        _rand((n, attempts), generator, device),
        _rand((n, attempts), generator, device),
        _rand((n, 2), generator, device),
    )


def resized_crop(
    x: Tensor,
    draws: tuple[Tensor, Tensor, Tensor],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Tensor:
    """:func:`random_resized_crop` from given draws (:func:`crop_draws`, on ``x``'s device): no
    randomness, no host synchronisation. Shape: float [B, C, H, W] -> same."""
    b, _, h, w = x.shape
    area = scale[0] + (scale[1] - scale[0]) * draws[0]
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    r = torch.exp(lo + (hi - lo) * draws[1])
    # box width / height as fractions of the image: (bw·W)·(bh·H) = area·H·W, bw·W/(bh·H) = r
    bw = torch.sqrt(area * r * h / w)
    bh = torch.sqrt(area / r * w / h)
    fits = (bw <= 1) & (bh <= 1) & (area > 0)
    first = fits.long().argmax(dim=1, keepdim=True)  # first fitting attempt (0 if none fits)
    bw, bh = bw.gather(1, first)[:, 0], bh.gather(1, first)[:, 0]
    # fallback: central crop, the whole image unless its aspect ratio is outside `ratio`
    in_ratio = w / h
    fw = ratio[1] / in_ratio if in_ratio > ratio[1] else 1.0
    fh = in_ratio / ratio[0] if in_ratio < ratio[0] else 1.0
    any_fits = fits.any(dim=1)
    bw = torch.where(any_fits, bw, torch.full_like(bw, fw))
    bh = torch.where(any_fits, bh, torch.full_like(bh, fh))
    u = draws[2]
    cx = bw / 2 + u[:, 0] * (1 - bw)  # box center in [0, 1]
    cy = bh / 2 + u[:, 1] * (1 - bh)
    # normalised coordinates (align_corners=False): x_in = bw · x_out + (2 cx − 1)
    zero = torch.zeros_like(bw)
    theta = torch.stack(
        [torch.stack([bw, zero, 2 * cx - 1], -1), torch.stack([zero, bh, 2 * cy - 1], -1)], -2
    ).to(x.dtype)  # [B, 2, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(
    x: Tensor,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> Tensor:
    """Crop a random box of area fraction ``scale`` and aspect ratio ``ratio`` (log-uniform)
    from every image and resize it to the input size (bilinear).

    As torchvision's ``RandomResizedCrop``: ``attempts`` boxes are drawn per sample and the
    first that fits is used, else a central crop of the clamped aspect ratio. Boxes are
    continuous (sub-pixel) and the whole batch is resampled by one ``grid_sample``; with
    ``scale=(1, 1)`` and ``ratio=(1, 1)`` on square images the output equals the input.

    Shape:
        x: float [B, C, H, W] -> float [B, C, H, W].
    """
    _check_images(x)
    _check_range("scale", scale)
    _check_range("ratio", ratio, low=_EPS)
    if scale[1] > 1:
        raise ValueError(f"scale must be within [0, 1], got {scale!r}")
    return resized_crop(x, crop_draws(x.shape[0], generator, x.device, attempts), scale, ratio)


def random_horizontal_flip(
    x: Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Mirror each image left-right with probability p. Shape: [B, C, H, W] -> same."""
    _check_p("p", p)
    return _flip_where(x, _bernoulli(x.shape[0], p, generator, x.device))


def _flip_where(x: Tensor, flip: Tensor) -> Tensor:
    """Mirror the images where ``flip`` [B] (bool) is True."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


# --------------------------------------------------------------------------------------------
# Images: color
# --------------------------------------------------------------------------------------------


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """ITU-R 601 luma. Shape: float [B, 3, H, W] -> [B, 1, H, W]."""
    r, g, b = x.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def rgb_to_hsv(x: Tensor) -> Tensor:
    """RGB in [0, 1] -> HSV with hue in [0, 1) (fraction of a turn).

    Shape: float [B, 3, H, W] -> [B, 3, H, W] (channels h, s, v)."""
    r, g, b = x.unbind(-3)
    v, minc = x.amax(-3), x.amin(-3)
    delta = v - minc
    s = delta / v.clamp_min(_EPS)  # 0 where v = 0 (then delta = 0)
    dc = delta.clamp_min(_EPS)
    h = torch.where(v == r, (g - b) / dc, torch.where(v == g, 2 + (b - r) / dc, 4 + (r - g) / dc))
    h = torch.remainder(h / 6, 1.0) * (delta > 0)  # hue 0 for grays
    return torch.stack([h, s, v], dim=-3)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`, branch-free: channel c = v − v·s·clamp(min(k, 4 − k),
    0, 1) with k = (n_c + 6h) mod 6 and n = (5, 3, 1) for (r, g, b).

    Shape: float [B, 3, H, W] (h, s, v) -> [B, 3, H, W] (r, g, b)."""
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + 6 * h, 6.0)  # [B, 3, H, W]
    return v - v * s * torch.minimum(k, 4 - k).clamp(0, 1)


def color_jitter(
    x: Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-sample random brightness, contrast, saturation and hue, applied with probability p.

    Factors are drawn per sample like torchvision's ``ColorJitter``: brightness, contrast and
    saturation factors from U[max(0, 1 − s), 1 + s], the hue shift from U[−hue, hue] (fraction
    of a turn, hue ≤ 0.5). The ops run in the fixed order brightness → contrast → saturation
    → hue (torchvision randomises the order per call). Hue is rotated exactly through an
    RGB → HSV → RGB round trip in tensor code (not the YIQ approximation). Outputs are
    clamped to [0, 1]. Strengths of 0 skip their op.

    Shape:
        x: float [B, 3, H, W] in [0, 1] -> same.
    """
    _check_images(x, color=True)
    _check_p("p", p)
    _check_strengths(brightness, contrast, saturation, hue)
    n, dev = x.shape[0], x.device
    apply = _bernoulli(n, p, generator, dev)
    u = _rand((n, 4), generator, dev)  # drawn whatever the strengths: reproducible streams
    return _jitter(x, apply, u, (brightness, contrast, saturation, hue))


def _jitter(x: Tensor, apply: Tensor, u: Tensor, strengths: tuple[float, ...]) -> Tensor:
    """:func:`color_jitter` from given draws on ``x``'s device: ``apply`` [B] bool, ``u`` [B, 4]
    in [0, 1)."""
    brightness, contrast, saturation, hue = strengths

    def factor(col: int, s: float) -> Tensor:  # -> [B, 1, 1, 1]
        lo = max(0.0, 1 - s)
        return (lo + (1 + s - lo) * u[:, col]).view(-1, 1, 1, 1).to(x.dtype)

    y = x
    if brightness > 0:
        y = (y * factor(0, brightness)).clamp(0, 1)
    if contrast > 0:
        f = factor(1, contrast)
        mean = rgb_to_grayscale(y).mean(dim=(-3, -2, -1), keepdim=True)  # [B, 1, 1, 1]
        y = (f * y + (1 - f) * mean).clamp(0, 1)
    if saturation > 0:
        f = factor(2, saturation)
        y = (f * y + (1 - f) * rgb_to_grayscale(y)).clamp(0, 1)
    if hue > 0:
        shift = ((2 * u[:, 3] - 1) * hue).view(-1, 1, 1, 1).to(x.dtype)
        hsv = rgb_to_hsv(y)
        hsv = torch.cat([torch.remainder(hsv[:, :1] + shift, 1.0), hsv[:, 1:]], dim=1)
        y = hsv_to_rgb(hsv).clamp(0, 1)
    return torch.where(apply.view(-1, 1, 1, 1), y, x)


def random_grayscale(x: Tensor, p: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """Replace each image by its luma (in all 3 channels) with probability p.

    Shape: float [B, 3, H, W] -> same."""
    _check_images(x, color=True)
    _check_p("p", p)
    return _gray_where(x, _bernoulli(x.shape[0], p, generator, x.device))


def _gray_where(x: Tensor, gray: Tensor) -> Tensor:
    """Replace the images where ``gray`` [B] (bool) is True by their luma."""
    return torch.where(gray.view(-1, 1, 1, 1), rgb_to_grayscale(x).expand_as(x), x)


# --------------------------------------------------------------------------------------------
# Images: blur
# --------------------------------------------------------------------------------------------


def default_blur_kernel_size(image_size: int) -> int:
    """SimCLR's kernel: 10 % of the image side, made odd (23 at 224 px, 7 at 64 px)."""
    return max(3, int(0.1 * image_size) // 2 * 2 + 1)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur every image with its own Gaussian (separable, reflect padding).

    The B·C channels are stacked into one image and filtered by a grouped convolution whose
    per-group kernels are the per-sample Gaussians.

    Shape:
        x: float [B, C, H, W]; sigma: [B] (> 0); kernel_size: odd -> float [B, C, H, W].
    """
    _check_images(x)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    b, c, h, w = x.shape
    r = kernel_size // 2
    if r >= min(h, w):
        raise ValueError(f"kernel_size {kernel_size} too large for {h}x{w} images")
    offsets = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    sigma = torch.as_tensor(sigma).to(device=x.device, dtype=x.dtype).clamp_min(_EPS)
    k = torch.exp(-(offsets[None, :] ** 2) / (2 * sigma[:, None] ** 2))  # [B, k]
    k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # [B·C, k]
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def random_gaussian_blur(
    x: Tensor,
    p: float = 0.5,
    sigma: tuple[float, float] = (0.1, 2.0),
    kernel_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Gaussian blur with σ ~ U[sigma] per sample, applied with probability p.

    ``kernel_size`` defaults to :func:`default_blur_kernel_size` of the image height.
    Shape: float [B, C, H, W] -> same."""
    _check_images(x)
    _check_p("p", p)
    _check_range("sigma", sigma, low=_EPS)
    n, dev = x.shape[0], x.device
    apply = _bernoulli(n, p, generator, dev)
    s = _rand((n,), generator, dev)
    return _blur_where(x, apply, s, sigma, kernel_size)


def _blur_where(
    x: Tensor, apply: Tensor, u: Tensor, sigma: tuple[float, float], kernel_size: int | None
) -> Tensor:
    """Blur the images where ``apply`` [B] (bool) is True, σ = sigma[0] + (sigma[1] − sigma[0])·u
    for ``u`` [B] in [0, 1) (both on ``x``'s device). Every image is blurred and the unblurred
    ones are put back (no host synchronisation on the draws)."""
    s = sigma[0] + (sigma[1] - sigma[0]) * u
    k = kernel_size if kernel_size is not None else default_blur_kernel_size(x.shape[-2])
    return torch.where(apply.view(-1, 1, 1, 1), gaussian_blur(x, s, k), x)


# --------------------------------------------------------------------------------------------
# Images: composition
# --------------------------------------------------------------------------------------------


class ImageAugment(nn.Module):
    """A batch of images -> one random view of each (a module without parameters).

    Order (as SimCLR / torchvision): random resized crop → horizontal flip → color jitter →
    grayscale → Gaussian blur. Every part is off by default (``ImageAugment()`` is the
    identity); :meth:`simclr` gives the published setting. Color jitter and grayscale apply to
    3-channel images only (skipped otherwise).

    Args:
        crop_scale: area range of the random resized crop; None = no crop.
        crop_ratio: aspect-ratio range of the crop.
        flip_p: horizontal-flip probability.
        brightness, contrast, saturation, hue: color-jitter strengths (0 = off).
        jitter_p: probability of applying the color jitter to a sample.
        grayscale_p: probability of converting a sample to grayscale.
        blur_p: probability of blurring a sample.
        blur_sigma: σ range of the blur.
        blur_kernel_size: odd kernel side; None = 10 % of the image side.

    Shape:
        x: uint8 or float [B, C, H, W] (float in [0, 1]) -> float32 [B, C, H, W] in [0, 1].

    Example:
        >>> aug = ImageAugment.simclr(hue=0.0, grayscale_p=0.0)  # keeps the colors
        >>> views = aug(torch.rand(8, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    """

    def __init__(
        self,
        *,
        crop_scale: tuple[float, float] | None = None,
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.0,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
        jitter_p: float = 0.0,
        grayscale_p: float = 0.0,
        blur_p: float = 0.0,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        if crop_scale is not None:
            _check_range("crop_scale", crop_scale)
            if crop_scale[1] > 1:
                raise ValueError(f"crop_scale must be within [0, 1], got {crop_scale!r}")
        _check_range("crop_ratio", crop_ratio, low=_EPS)
        for name, p in (("flip_p", flip_p), ("jitter_p", jitter_p),
                        ("grayscale_p", grayscale_p), ("blur_p", blur_p)):  # fmt: skip
            _check_p(name, p)
        _check_strengths(brightness, contrast, saturation, hue)
        _check_range("blur_sigma", blur_sigma, low=_EPS)
        if blur_kernel_size is not None and (blur_kernel_size < 1 or blur_kernel_size % 2 == 0):
            raise ValueError(
                f"blur_kernel_size must be a positive odd int, got {blur_kernel_size!r}"
            )
        self.crop_scale = tuple(crop_scale) if crop_scale is not None else None
        self.crop_ratio = tuple(crop_ratio)
        self.flip_p = flip_p
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.hue = hue
        self.jitter_p = jitter_p
        self.grayscale_p = grayscale_p
        self.blur_p = blur_p
        self.blur_sigma = tuple(blur_sigma)
        self.blur_kernel_size = blur_kernel_size

    @classmethod
    def simclr(
        cls,
        *,
        crop_scale: tuple[float, float] | None = (0.08, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float | bool = 0.1,
        jitter_p: float = 0.8,
        grayscale_p: float | bool = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel_size: int | None = None,
    ) -> ImageAugment:
        """The published SimCLR views — crop scale 0.08–1, flip 0.5, color jitter (0.4, 0.4,
        0.4, 0.1) with p 0.8, grayscale p 0.2, blur p 0.5 (σ 0.1–2, kernel 10 % of the side)
        — with every knob overridable.

        Hue jitter and grayscale destroy color (Trifeatures' synergy label depends on the
        color of image 2): ``simclr(hue=0, grayscale_p=0)`` switches them off (``False``
        works too; ``True`` means the published value). Brightness, contrast and saturation
        jitter keep the hue.
        """
        if isinstance(hue, bool):
            hue = 0.1 if hue else 0.0
        if isinstance(grayscale_p, bool):
            grayscale_p = 0.2 if grayscale_p else 0.0
        return cls(
            crop_scale=crop_scale,
            crop_ratio=crop_ratio,
            flip_p=flip_p,
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            jitter_p=jitter_p,
            grayscale_p=grayscale_p,
            blur_p=blur_p,
            blur_sigma=blur_sigma,
            blur_kernel_size=blur_kernel_size,
        )

    def _jitter_on(self) -> bool:
        jitter = (self.brightness, self.contrast, self.saturation, self.hue)
        return self.jitter_p > 0 and any(s > 0 for s in jitter)

    def draw(
        self, n: int, channels: int, generator: torch.Generator | None = None, device=None
    ) -> dict[str, Tensor]:
        """Every random number one call of :meth:`forward` uses for n images of ``channels``
        channels, as raw U[0, 1) draws in the order :meth:`forward` draws them, on
        ``device`` (default: the generator's device, else the CPU): name -> [n] or [n, k].

        Draws of several batches concatenated along dim 0 apply to their images concatenated
        the same way (:meth:`apply`): one call augments them all."""
        if device is None:
            device = generator.device if generator is not None else torch.device("cpu")
        d: dict[str, Tensor] = {}
        if self.crop_scale is not None:
            d["crop_area"], d["crop_ratio"], d["crop_pos"] = crop_draws(n, generator, device)
        if self.flip_p > 0:
            d["flip"] = _rand((n,), generator, device)
        if channels == 3:
            if self._jitter_on():
                d["jitter"] = _rand((n,), generator, device)
                d["jitter_factors"] = _rand((n, 4), generator, device)
            if self.grayscale_p > 0:
                d["gray"] = _rand((n,), generator, device)
        if self.blur_p > 0:
            d["blur"] = _rand((n,), generator, device)
            d["blur_sigma"] = _rand((n,), generator, device)
        return d

    def apply(self, x: Tensor, draws: dict[str, Tensor]) -> Tensor:
        """The view of ``x`` given by ``draws`` (:meth:`draw`): tensor code only, no random
        number, no host synchronisation. Shape: [B, C, H, W] -> float32 [B, C, H, W]."""
        x = to_float_images(x)
        _check_images(x)
        d = {k: v.to(x.device) for k, v in draws.items()}
        if "crop_area" in d:
            crop = (d["crop_area"], d["crop_ratio"], d["crop_pos"])
            x = resized_crop(x, crop, self.crop_scale, self.crop_ratio)
        if "flip" in d:
            x = _flip_where(x, d["flip"] < self.flip_p)
        if "jitter" in d:
            strengths = (self.brightness, self.contrast, self.saturation, self.hue)
            x = _jitter(x, d["jitter"] < self.jitter_p, d["jitter_factors"], strengths)
        if "gray" in d:
            x = _gray_where(x, d["gray"] < self.grayscale_p)
        if "blur" in d:
            x = _blur_where(x, d["blur"] < self.blur_p, d["blur_sigma"], self.blur_sigma,
                            self.blur_kernel_size)  # fmt: skip
        return x

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = to_float_images(x)
        _check_images(x)
        return self.apply(x, self.draw(x.shape[0], x.shape[1], generator, x.device))

    def extra_repr(self) -> str:
        return (
            f"crop_scale={self.crop_scale}, crop_ratio={self.crop_ratio}, flip_p={self.flip_p}, "
            f"jitter=({self.brightness}, {self.contrast}, {self.saturation}, {self.hue}) "
            f"p={self.jitter_p}, grayscale_p={self.grayscale_p}, blur_p={self.blur_p}, "
            f"blur_sigma={self.blur_sigma}"
        )
