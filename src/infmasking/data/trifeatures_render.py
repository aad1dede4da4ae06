"""Trifeatures rendering: the shapes, textures and colours of the controlled experiment and
the batched tensor code that draws them (shape masks by an even-odd crossing test, textures
on a 2× canvas, every rotation / placement / centre crop one affine sampling grid +
``grid_sample``). The pairs, splits and tasks built from the images are in
:mod:`infmasking.data.trifeatures`."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

SHAPES = (
    "triangle", "square", "plus", "circle", "tee",
    "rhombus", "pentagon", "star", "fivesquare", "trapezoid",
)  # fmt: skip
TEXTURES = (
    "solid", "stripes", "grid", "hexgrid", "dots",
    "noise", "triangles", "zigzags", "rain", "pluses",
)  # fmt: skip
COLORS = (
    "red", "green", "blue", "yellow", "pink",
    "cyan", "purple", "ocean", "orange", "white",
)  # fmt: skip
#: RGB in [0, 1] of each color, [10, 3].
COLOR_RGB = torch.tensor(
    [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 1.0, 0.0],
        [1.0, 0.4, 1.0],
        [0.0, 1.0, 1.0],
        [0.3, 0.0, 0.5],
        [0.1, 0.4, 0.5],
        [1.0, 0.6, 0.0],
        [1.0, 1.0, 1.0],
    ]
)
BACKGROUND = (0.5, 0.5, 0.5)

#: Bump when the rendering changes: it is part of the cache key.
_RENDER_VERSION = 2
#: Images per chunk are chosen so a chunk's texture canvas has at most this many pixels.
_CHUNK_PIXELS = 1 << 22
_MAX_ANGLE = 45  # rotation angles are integers in [-45, 45)


@dataclass(frozen=True)
class Preset:
    """Geometry of one resolution (all lengths in output pixels).

    Attributes:
        image_size: output side S.
        base_size: side of the canvas the shape is drawn on (pasted at a random offset).
        texture_scale: period P of the periodic textures.
        line_width: stripes / zigzags width.
        thin_width: grid / pluses line width.
        dot_radius: dots radius.
        hex_spacing: distance between neighbouring hexagon centers of the hexgrid.
        hex_width: hexgrid line width (slanted lines need a little more than ``thin_width``
            to stay connected after a nearest-neighbour rotation).
        rain_length: length of one vertical rain streak.
        rain_prob: probability that a streak starts at a pixel.
        noise_prob: probability that a noise pixel is on.
    """

    image_size: int
    base_size: int
    texture_scale: int
    line_width: int
    thin_width: int
    dot_radius: float
    hex_spacing: float
    hex_width: float
    rain_length: int
    rain_prob: float = 0.05
    noise_prob: float = 0.5


#: The supported resolutions: the published 224 px and the native small 64 px (scale 0.6).
PRESETS: dict[int, Preset] = {
    224: Preset(224, 128, 10, line_width=3, thin_width=2, dot_radius=4.0, hex_spacing=12.0,
                hex_width=2.0, rain_length=7),
    64: Preset(64, 36, 6, line_width=2, thin_width=1, dot_radius=2.4, hex_spacing=7.0,
               hex_width=1.6, rain_length=4),
}  # fmt: skip


def get_preset(image_size: int) -> Preset:
    """The :class:`Preset` of ``image_size`` (224 or 64); ``ValueError`` otherwise."""
    if image_size not in PRESETS:
        raise ValueError(
            f"image_size must be one of {sorted(PRESETS)} (hand-checked presets), "
            f"got {image_size!r}"
        )
    return PRESETS[image_size]


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def _polygon(x: Tensor, y: Tensor, vertices: list[tuple[float, float]]) -> Tensor:
    """Even-odd point-in-polygon test. x: [1, W], y: [H, 1] -> bool [H, W]."""
    inside = torch.zeros(y.shape[0], x.shape[1], dtype=torch.bool)
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1]):
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)  # the edge spans the pixel's row
        x_edge = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_edge)
    return inside


def _box(x: Tensor, y: Tensor, x0: float, x1: float, y0: float, y1: float) -> Tensor:
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _regular(n: int, radius: float, inner: float | None = None) -> list[tuple[float, float]]:
    """Vertices of a regular n-gon (or n-pointed star with ``inner`` radius), apex up."""
    k = 2 * n if inner is not None else n
    radii = [radius if (i % 2 == 0 or inner is None) else inner for i in range(k)]
    angles = [-math.pi / 2 + 2 * math.pi * i / k for i in range(k)]
    return [(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles)]


def shape_masks(base_size: int) -> Tensor:
    """The 10 binary shape masks of :data:`SHAPES`, centered, unrotated.

    Coordinates are in half-canvas units (pixel centers in (-1, 1), y pointing down); every
    shape stays within radius 0.95 < 1, so a rotation by up to 45° never clips it.

    Returns:
        bool [10, base_size, base_size].
    """
    c = (torch.arange(base_size, dtype=torch.float64) - (base_size - 1) / 2) / (base_size / 2)
    x, y = c[None, :], c[:, None]
    fivesquare = torch.zeros(base_size, base_size, dtype=torch.bool)
    for cx, cy in [(-0.42, -0.42), (0.42, -0.42), (0.0, 0.0), (-0.42, 0.42), (0.42, 0.42)]:
        fivesquare |= _box(x, y, cx - 0.21, cx + 0.21, cy - 0.21, cy + 0.21)
    masks = {
        "triangle": _polygon(x, y, _regular(3, 0.9)),
        "square": _box(x, y, -0.6, 0.6, -0.6, 0.6),
        "plus": _box(x, y, -0.8, 0.8, -0.26, 0.26) | _box(x, y, -0.26, 0.26, -0.8, 0.8),
        "circle": x**2 + y**2 <= 0.75**2,
        "tee": _box(x, y, -0.65, 0.65, -0.65, -0.25) | _box(x, y, -0.2, 0.2, -0.65, 0.75),
        "rhombus": _polygon(x, y, [(0.0, -0.9), (0.5, 0.0), (0.0, 0.9), (-0.5, 0.0)]),
        "pentagon": _polygon(x, y, _regular(5, 0.85)),
        "star": _polygon(x, y, _regular(5, 0.9, inner=0.38)),
        "fivesquare": fivesquare,
        "trapezoid": _polygon(x, y, [(-0.8, 0.45), (0.8, 0.45), (0.42, -0.45), (-0.42, -0.45)]),
    }
    return torch.stack([masks[name] for name in SHAPES])


# --------------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------------


#: Phases are integers in [0, _PHASE_PERIODS · texture_scale): a multiple of every period.
_PHASE_PERIODS = 8


def _hexgrid(X: Tensor, Y: Tensor, spacing: float, width: float) -> Tensor:
    """Honeycomb lines: pixels within ``width / 2`` of a Voronoi edge of a triangular lattice.

    The nearest and second-nearest lattice points of a point lie on the corners of its
    lattice parallelogram, so 4 candidates suffice. X: [1, W], Y: [H, 1] -> bool [H, W].
    """
    row_h = spacing * math.sqrt(3) / 2
    j = torch.floor(Y / row_h)  # [H, 1]
    i = torch.floor((X - j * spacing / 2) / spacing)  # [H, W]
    d1 = torch.full_like(i, float("inf"))
    d2 = torch.full_like(i, float("inf"))
    for di, dj in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        cy = (j + dj) * row_h
        cx = (i + di) * spacing + (j + dj) * spacing / 2
        d = (X - cx) ** 2 + (Y - cy) ** 2  # squared distances
        d2 = torch.minimum(d2, torch.maximum(d1, d))
        d1 = torch.minimum(d1, d)
    # distance to the bisector of the two nearest centers (which are `spacing` apart)
    return (d2 - d1) / (2 * spacing) < width / 2


@functools.lru_cache(maxsize=32)
def _pattern(texture: int, size: int, preset: Preset) -> Tensor:
    """A deterministic texture at phase 0 (pixel (x, y) at integer coordinates), bool
    [size, size]. Cached: treat the result as read-only."""
    p = preset.texture_scale
    ar = torch.arange(size, dtype=torch.float64)
    X, Y = ar.view(1, size), ar.view(size, 1)
    u, v = torch.remainder(X, p), torch.remainder(Y, p)  # position inside a P x P cell
    name = TEXTURES[texture]
    if name == "solid":
        t = torch.ones(size, size, dtype=torch.bool)
    elif name == "stripes":
        t = u < preset.line_width
    elif name == "grid":
        t = (u < preset.thin_width) | (v < preset.thin_width)
    elif name == "hexgrid":
        t = _hexgrid(X, Y, preset.hex_spacing, preset.hex_width)
    elif name == "dots":
        m = (p - 1) / 2
        t = (u - m) ** 2 + (v - m) ** 2 <= preset.dot_radius**2
    elif name == "triangles":
        # one filled isosceles triangle (apex up) per P x P cell, with gaps between cells
        h = p - 1
        t = (v < h) & ((u - (p - 1) / 2).abs() <= (v + 1) * (p - 2) / (2 * h))
    elif name == "zigzags":
        # horizontal zigzag lines of slope ±1, repeating every P px vertically; a vertical
        # thickness of √2·width gives the lines a perpendicular width of `line_width`
        wave = (torch.remainder(X, 2 * p) - p).abs()  # triangle wave in [0, P], period 2P
        t = torch.remainder(Y - wave, p) < preset.line_width * math.sqrt(2)
    elif name == "pluses":
        c, w, arm = p // 2, preset.thin_width, round(0.3 * p)  # arm: half the plus's length
        lo = c - w // 2
        bar_u, bar_v = (u >= lo) & (u < lo + w), (v >= lo) & (v < lo + w)
        t = (bar_u & ((v - c).abs() <= arm)) | (bar_v & ((u - c).abs() <= arm))
    else:
        raise ValueError(f"texture {name!r} is stochastic, not a fixed pattern")
    return t.expand(size, size).contiguous()


def draw_textures(
    texture: int,
    phases: Tensor,
    size: int,
    preset: Preset,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Unrotated texture canvases of one kind.

    Periodic textures are evaluated once on a canvas larger by the phase range and cropped at
    each image's phase (one gather); ``noise`` (Bernoulli(0.5) per pixel) and ``rain``
    (vertical ``rain_length`` × 1 streaks started at each pixel with probability
    ``rain_prob``) are drawn from ``generator``.

    Args:
        texture: index into :data:`TEXTURES`.
        phases: int64 [n, 2] (x, y) offsets of the pattern in [0, 8 · texture_scale) pixels
            (ignored by the stochastic textures).
        size: canvas side (2 × image size when rendering).
        preset: line widths and periods.
        generator: CPU generator for noise / rain (the global RNG if None).

    Returns:
        float32 [n, size, size] with values in {0, 1}.
    """
    n = phases.shape[0]
    name = TEXTURES[texture]
    if name == "noise":
        t = torch.rand(n, size, size, generator=generator) < preset.noise_prob
    elif name == "rain":
        start = torch.rand(n, size, size, generator=generator) < preset.rain_prob
        t = start.clone()
        for d in range(1, preset.rain_length):  # a streak covers its start and the pixels below
            t[:, d:] |= start[:, :-d]
    else:
        span = _PHASE_PERIODS * preset.texture_scale
        if len(phases) and (phases.min() < 0 or phases.max() >= span):
            raise ValueError(f"phases must be in [0, {span}), got [{phases.min()}, {phases.max()}]")
        big = _pattern(texture, size + span, preset)  # [size + span, size + span]
        ar = torch.arange(size)
        rows = (phases[:, 1, None] + ar)[:, :, None]  # [n, size, 1]
        cols = (phases[:, 0, None] + ar)[:, None, :]  # [n, 1, size]
        t = big[rows, cols]  # [n, size, size]: the pattern shifted by each image's phase
    return t.to(torch.float32)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def affine_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """Sampling grid of ``F.affine_grid(theta, [n, C, height, width], align_corners=False)``
    computed by broadcasting (about twice as fast on CPU). theta: [n, 2, 3] -> [n, H, W, 2]."""
    xo = (torch.arange(width, dtype=theta.dtype) * 2 + 1) / width - 1  # pixel centers in (-1, 1)
    yo = (torch.arange(height, dtype=theta.dtype) * 2 + 1) / height - 1
    t = theta[:, :, None, None, :]  # [n, 2, 1, 1, 3]
    grid = t[..., 0] * xo.view(1, 1, 1, width) + t[..., 1] * yo.view(1, 1, height, 1) + t[..., 2]
    return grid.permute(0, 2, 3, 1)  # [n, H, W, 2]: (x, y) per output pixel


def _rotation_inverse(angles_deg: Tensor) -> Tensor:
    """R(θ)^-1 = R(-θ) for integer degrees. [n] -> float64 [n, 2, 2] acting on (x, y)."""
    a = torch.deg2rad(angles_deg.double())
    cos, sin = torch.cos(a), torch.sin(a)
    return torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)


class _RenderParams(NamedTuple):
    shape_angle: Tensor  # [N] integer degrees
    offset: Tensor  # [N, 2] (x, y) top-left corner of the shape canvas
    texture_angle: Tensor  # [N]
    phase: Tensor  # [N, 2]
    seed: Tensor  # [N] seeds of the noise / rain draws


def _draw_params(n: int, preset: Preset, generator: torch.Generator) -> _RenderParams:
    g = generator
    return _RenderParams(
        shape_angle=torch.randint(-_MAX_ANGLE, _MAX_ANGLE, (n,), generator=g),
        offset=torch.randint(0, preset.image_size - preset.base_size + 1, (n, 2), generator=g),
        texture_angle=torch.randint(-_MAX_ANGLE, _MAX_ANGLE, (n,), generator=g),
        phase=torch.randint(0, _PHASE_PERIODS * preset.texture_scale, (n, 2), generator=g),
        seed=torch.randint(0, 1 << 62, (n,), generator=g),
    )


def render_images(
    shapes: Tensor,
    textures: Tensor,
    colors: Tensor,
    image_size: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Render one image per (shape, texture, color), batched.

    The shape mask m (base canvas, rotated by an integer angle in [-45, 45), pasted at a
    uniformly random integer offset) and the texture t (2× canvas with a random phase, rotated
    by an independent angle, center-cropped) are combined as
    ``pixel = m·t·rgb + (1 − m·t)·gray``. All random parameters are drawn from ``generator``
    up front (5 ``randint`` calls, whatever the data); the noise / rain pixels of a chunk of
    images come from a generator seeded by one of those draws. Same inputs and generator
    state -> identical images.

    Args:
        shapes, textures, colors: int64 [N] indices into :data:`SHAPES`, :data:`TEXTURES`,
            :data:`COLORS`.
        image_size: 64 or 224 (see :data:`PRESETS`).
        generator: CPU generator for the random placement / rotation / phase / noise
            (the global RNG if None).

    Returns:
        uint8 [N, 3, image_size, image_size].
    """
    preset = get_preset(image_size)
    shapes, textures, colors = (
        torch.as_tensor(t, dtype=torch.long) for t in (shapes, textures, colors)
    )
    if not (shapes.shape == textures.shape == colors.shape) or shapes.dim() != 1:
        raise ValueError(
            f"shapes, textures, colors must be 1-D of equal length, got "
            f"{tuple(shapes.shape)}, {tuple(textures.shape)}, {tuple(colors.shape)}"
        )
    for name, t in (("shapes", shapes), ("textures", textures), ("colors", colors)):
        if len(t) and (t.min() < 0 or t.max() > 9):
            raise ValueError(f"{name} must be in [0, 9], got values in [{t.min()}, {t.max()}]")
    n, s, b = len(shapes), preset.image_size, preset.base_size
    params = _draw_params(n, preset, generator)
    out = torch.empty(n, 3, s, s, dtype=torch.uint8)
    if n == 0:
        return out
    base = shape_masks(b).float()[:, None]  # [10, 1, B, B]
    # m·t is 0 or 1, so pixel = m·t·rgb + (1 − m·t)·gray is one of two uint8 values
    gray_u8 = torch.tensor(BACKGROUND).mul(255).round().to(torch.uint8).view(1, 3, 1, 1)
    rgb_u8 = COLOR_RGB.mul(255).round().to(torch.uint8)  # [10, 3]
    chunk = max(1, _CHUNK_PIXELS // (2 * s) ** 2)

    # Shape: output pixel p -> base pixel q = R^-1 (p - center) + base center; in the
    # normalised coordinates of grid_sample (align_corners=False):
    #   x_in = (S/B) R^-1 x_out + (2/B) R^-1 ((S - B)/2 - offset)
    rinv_shape = _rotation_inverse(params.shape_angle)  # [N, 2, 2]
    shift = (s - b) / 2 - params.offset.double()  # [N, 2]
    theta_shape = torch.cat(
        [(s / b) * rinv_shape, (2 / b) * (rinv_shape @ shift[:, :, None])], dim=2
    ).float()  # [N, 2, 3]
    # Texture: rotate the 2S canvas (pattern shifted by the phase φ) about its center and keep
    # the central S x S. A periodic pattern is drawn once on an L = 2S + span canvas and the
    # phase folded into the sampling grid (canvas pixel q = pattern pixel q + φ):
    #   x_in = (S/L) R^-1 x_out + (2φ + 2S - L)/L      (L = 2S, φ = 0: x_in = 0.5 R^-1 x_out)
    rinv_tex = _rotation_inverse(params.texture_angle)  # [N, 2, 2]
    stochastic = {TEXTURES.index("noise"), TEXTURES.index("rain")}
    span = _PHASE_PERIODS * preset.texture_scale

    def theta_texture(rows: Tensor, size: int, phase: Tensor) -> Tensor:  # -> [m, 2, 3]
        t = (2 * phase.double() + 2 * s - size) / size
        return torch.cat([(s / size) * rinv_tex[rows], t[:, :, None]], dim=2).float()

    for k in range(len(TEXTURES)):
        rows_k = torch.nonzero(textures == k).flatten()
        if k not in stochastic and len(rows_k):
            pattern = _pattern(k, 2 * s + span, preset).float()[None, None]  # [1, 1, L, L]
        for start in range(0, len(rows_k), chunk):
            rows = rows_k[start : start + chunk]
            m = len(rows)
            grid = affine_grid(theta_shape[rows], s, s)
            mask = F.grid_sample(base[shapes[rows]], grid, mode="nearest", align_corners=False)
            if k in stochastic:  # one generator per chunk, seeded by its first image's draw
                g = torch.Generator().manual_seed(int(params.seed[rows[0]]))
                canvas = draw_textures(k, params.phase[rows], 2 * s, preset, g)[:, None]
                theta = theta_texture(rows, 2 * s, torch.zeros(m, 2))
            else:  # equals sampling draw_textures(k, phase, 2S, preset) with φ = 0
                canvas = pattern.expand(m, 1, -1, -1)
                theta = theta_texture(rows, 2 * s + span, params.phase[rows])
            grid = affine_grid(theta, s, s)
            tex = F.grid_sample(canvas, grid, mode="nearest", align_corners=False)
            on = (mask * tex) > 0.5  # m·t, [m, 1, S, S]
            out[rows] = torch.where(on, rgb_u8[colors[rows]].view(m, 3, 1, 1), gray_u8)
    return out
