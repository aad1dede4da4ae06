"""Build a :class:`MaskedFusionModel` from the modalities of a dataset and a few sizes."""

from __future__ import annotations

from typing import Any

from torch import nn

from infmasking.models.encoders import ENCODERS, Encoder, IdentityEncoder
from infmasking.models.fusion import FusionTransformer
from infmasking.models.heads import ProjectionHead
from infmasking.models.model import MaskedFusionModel
from infmasking.models.tokens import MapTokens, SequenceTokens, VectorTokens


def default_encoder(kind: str, shape: tuple[int, ...], dim: int) -> dict[str, Any]:
    """The encoder chosen from a modality's kind and per-sample shape."""
    if kind == "image":
        side = min(shape[-2:])
        if side > 96:
            return {"name": "alexnet"}
        # each convnet block halves the side: keep at least a 2×2 map (8 px -> 2 blocks)
        blocks = max(1, min(4, side.bit_length() - 2))
        return {"name": "convnet", "widths": (16, 32, 64, 128)[:blocks]}
    if kind == "sequence":
        heads = next(h for h in (8, 5, 4, 2, 1) if dim % h == 0)
        return {"name": "transformer", "width": dim, "n_heads": heads}
    if kind == "vector":
        return {"name": "mlp", "width": dim}
    raise ValueError(f"unknown modality kind {kind!r}; expected image, sequence or vector")


def make_encoder(spec: dict[str, Any] | str, kind: str, shape: tuple[int, ...]) -> nn.Module:
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", None)
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid: {sorted(ENCODERS)}")
    in_channels = shape[0] if kind == "image" else shape[-1]
    if name == "identity":
        return IdentityEncoder(in_channels, kind if kind != "image" else "map")
    try:
        enc = ENCODERS[name](in_channels, **spec)
    except TypeError as e:
        raise ValueError(f"bad options {spec} for encoder {name!r}: {e}") from None
    if not isinstance(enc, Encoder) or enc.out_kind not in ("map", "sequence", "vector"):
        raise TypeError(
            f"encoder {name!r} does not follow the Encoder contract (out_kind in map / sequence / "
            f"vector, out_channels): got out_kind {getattr(enc, 'out_kind', None)!r}"
        )
    return enc


def build_model(
    modalities: list[str],
    kinds: dict[str, str],
    shapes: dict[str, tuple[int, ...]],
    *,
    dim: int = 128,
    n_layers: int = 1,
    n_heads: int = 4,
    pool: str = "cls",
    head_hidden: int = 512,
    proj_dim: int = 256,
    vector_tokens: int = 1,
    encoders: dict[str, dict[str, Any] | str] | None = None,
    collapse_masked: bool = True,
    shared_kv: bool = True,
    activation: str = "quick_gelu",
    init: str = "reference",
) -> MaskedFusionModel:
    """Encoders chosen from each modality's kind and shape (overridable per modality with
    ``encoders={modality: {"name": ..., **options}}``), adapters to width ``dim``, a fusion
    transformer of ``n_layers`` blocks and a projection head to ``proj_dim``. ``activation``
    (``quick_gelu`` | ``gelu``) and ``init`` (``reference`` | ``xavier``) are the fusion's."""
    encoders = dict(encoders or {})
    unknown = set(encoders) - set(modalities)
    if unknown:
        raise ValueError(
            f"encoders given for unknown modalities {sorted(unknown)}; modalities: {modalities}"
        )
    encs, adapters = {}, {}
    for m in modalities:
        spec = encoders.get(m) or default_encoder(kinds[m], tuple(shapes[m]), dim)
        enc = make_encoder(spec, kinds[m], tuple(shapes[m]))
        kind, c = enc.out_kind, enc.out_channels
        adapters[m] = {"map": MapTokens, "sequence": SequenceTokens}.get(kind, None)
        adapters[m] = adapters[m](c, dim) if adapters[m] else VectorTokens(c, dim, vector_tokens)
        encs[m] = enc
    fusion = FusionTransformer(dim, n_layers, n_heads, pool=pool, activation=activation, init=init)
    return MaskedFusionModel(
        modalities,
        encs,
        adapters,
        fusion,
        ProjectionHead(dim, head_hidden, proj_dim),
        collapse_masked=collapse_masked,
        init=init,
        shared_kv=shared_kv,
    )


def build_model_from(
    model_cfg: Any,
    modalities: list[str],
    kinds: dict[str, str],
    shapes: dict[str, tuple[int, ...]],
    **overrides: Any,
) -> MaskedFusionModel:
    """:func:`build_model` from a whole model configuration (a
    :class:`~infmasking.training.config.ModelConfig`, or anything with its fields): every
    keyword of :func:`build_model` is read from the field of the same name; ``overrides`` win
    (e.g. a resolved ``vector_tokens``)."""
    import inspect

    params = inspect.signature(build_model).parameters.items()
    keys = [k for k, p in params if p.kind is p.KEYWORD_ONLY]
    kwargs = {k: getattr(model_cfg, k) for k in keys if hasattr(model_cfg, k)}
    kwargs.update(overrides)
    return build_model(modalities, kinds, shapes, **kwargs)
