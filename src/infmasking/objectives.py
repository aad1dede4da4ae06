"""The objectives, in one registry: name -> which model passes it needs, its loss terms and the
loss function (the math lives in :mod:`infmasking.losses`).

Everything that depends on the method reads this registry: the configuration's choices
(``method.name``), the training step, the check of ``method.weights``, the CLI and the
reports. Adding an objective is one loss function in ``losses/`` (a module of its own for a
family of objectives: ``contrastive``, ``factorcl``, ``mae``) plus one entry here (see
docs/CONTRIBUTING.md). The module imports no torch (the losses are imported when called), so
the configuration and the CLI read it at no cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from torch import nn

    from infmasking.losses import LossOutput
    from infmasking.models.model import ModelOutput

LossFn = Callable[["ModelOutput", "ModelOutput", Any, float], "LossOutput"]
BuildFn = Callable[[Any, list[str], dict[str, str], dict[str, tuple[int, ...]]], "nn.Module"]

#: The ``method.*`` options an objective can read: the fields of the configuration's ``method``
#: section besides ``name`` (tests/test_method_keys.py checks that the two agree).
MethodKey = Literal[
    "temperature", "mask_ratio", "num_masks", "mask_lambda", "lambda_epochs", "weights", "cross"
]
#: What the training step reads for every ``masked`` objective: the T masked views
#: (``mask_ratio``, ``num_masks``) and the λ schedule (``mask_lambda``, ``lambda_epochs``).
MASKED_KEYS: tuple[MethodKey, ...] = ("mask_ratio", "num_masks", "mask_lambda", "lambda_epochs")


@dataclass(frozen=True)
class Objective:
    """One self-supervised objective.

    Attributes:
        name: the ``method.name`` value.
        summary: one line for ``--help`` and the docs.
        loss: ``(out1, out2, method_config, mask_weight) -> LossOutput`` from the two views'
            :class:`ModelOutput` (embeddings [B, p], masked [T, B, p]).
        terms: number of modalities M -> the names of the loss terms, in the order of
            ``method.weights``.
        full: the model's all-modality pass is needed.
        masked: the T masked views are needed (and the λ schedule applies).
        modalities: allowed numbers of modalities (min, max; max None = any).
        unimodal: the model's M unimodal passes are needed.
        build: the objective's own trainable modules (critics, heads, a decoder), or None:
            ``build(run_config, modalities, kinds, shapes) -> nn.Module``. The training module
            owns what it returns as ``SSLModule.heads`` (optimised and checkpointed with the
            model), and then calls ``loss(out1, out2, method_config, mask_weight, heads=...,
            model=..., inputs=(view1, view2), generator=...)``.
        probe: the features the probes read under ``eval.features auto`` ("fused", "concat"
            or "heads", see :func:`feature_kind`); None = fused if ``full`` else concat.
        hint: appended to the error for a wrong number of modalities.
        reads: the ``method.*`` options the objective reads, in the ``method`` section's
            order: its loss's and its own modules' and, when ``masked``, :data:`MASKED_KEYS`.
            The others change nothing in its training (``method.mask_ratio`` also sets the
            default ``model.vector_tokens`` of every method). docs/METHOD.md lists them.
    """

    name: str
    summary: str
    loss: LossFn
    terms: Callable[[int], list[str]]
    full: bool = True
    masked: bool = False
    modalities: tuple[int, int | None] = (2, None)
    unimodal: bool = True
    build: BuildFn | None = None
    probe: str | None = None
    hint: str = ""
    reads: tuple[MethodKey, ...] = ("temperature", "weights")

    def check_modalities(self, m: int) -> None:
        lo, hi = self.modalities
        if m < lo or (hi is not None and m > hi):
            allowed = (
                f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}..{hi}"
            )
            hint = f" ({self.hint})" if self.hint else ""
            raise ValueError(f"method {self.name!r} takes {allowed} modalities, got {m}{hint}")

    def check_weights(self, weights, m: int) -> None:
        """``method.weights``: None, or one number per loss term."""
        if weights is None:
            return
        names = self.terms(m)
        if len(weights) != len(names):
            raise ValueError(
                f"method.weights has {len(weights)} entries but {self.name} on {m} modalities has "
                f"{len(names)} loss terms {names}; "
                f"give {len(names)} numbers or --method.weights null"
            )


# ---------------------------------------------------------------------------- term names


def _comm_terms(m: int) -> list[str]:
    return [f"comm_{s + 1}" for s in range(m)] + ["comm_all"]


def _pair_terms(m: int) -> list[str]:
    return [f"cross_{i + 1}{j + 1}" for i in range(m) for j in range(i + 1, m)]


# ---------------------------------------------------------------------- losses from model outputs


def _infmasking(o1: ModelOutput, o2: ModelOutput, meth, mask_weight: float) -> LossOutput:
    from infmasking import losses as L

    return L.infmasking_loss(
        o1.unimodal + [o1.full],
        o2.unimodal + [o2.full],
        o1.masked,
        o2.masked,
        temperature=meth.temperature,
        mask_weight=mask_weight,
        weights=meth.weights,
        cross=meth.cross,
    )


def _comm(o1: ModelOutput, o2: ModelOutput, meth, mask_weight: float) -> LossOutput:
    from infmasking import losses as L

    return L.comm_loss(
        o1.unimodal + [o1.full],
        o2.unimodal + [o2.full],
        temperature=meth.temperature,
        weights=meth.weights,
    )


def _unimodal(fn_name: str) -> LossFn:
    """A loss on the unimodal embeddings only:
    ``losses.<fn_name>(z1, z2, temperature, weights)``."""

    def loss(o1: ModelOutput, o2: ModelOutput, meth, mask_weight: float) -> LossOutput:
        from infmasking import losses as L

        return getattr(L, fn_name)(
            o1.unimodal, o2.unimodal, temperature=meth.temperature, weights=meth.weights
        )

    return loss


def _factorcl(o1: ModelOutput, o2: ModelOutput, meth, mask_weight: float, **ctx) -> LossOutput:
    """FactorCL from the two views' unimodal features F({x_m}) (before the model's head)."""
    from infmasking import losses as L

    scores = ctx["heads"].scores(o1.unimodal_features, o2.unimodal_features)
    return L.factorcl_loss(scores, weights=meth.weights)


def _mae(o1: ModelOutput, o2: ModelOutput, meth, mask_weight: float, **ctx) -> LossOutput:
    """MAE: each view masked at ``method.mask_ratio`` and reconstructed by the decoder."""
    import torch

    from infmasking import losses as L

    decoder, g = ctx["heads"], ctx.get("generator")
    views = [
        decoder(ctx["model"], o.tokens, x, meth.mask_ratio, g)
        for o, x in zip((o1, o2), ctx["inputs"], strict=True)
    ]  # per view: (predictions, targets, reconstructed), each one tensor per modality

    def rows_of_both(part: int) -> list:  # per modality, the rows of view 1 then of view 2
        return [torch.cat(pair, 0) for pair in zip(views[0][part], views[1][part], strict=True)]

    return L.mae_loss(rows_of_both(0), rows_of_both(1), rows_of_both(2), weights=meth.weights)


def _build_factorcl(cfg, modalities, kinds, shapes):
    from infmasking.models.baseline_heads import build_factorcl

    return build_factorcl(cfg, modalities, kinds, shapes)


def _build_mae(cfg, modalities, kinds, shapes):
    from infmasking.models.baseline_heads import build_mae

    return build_mae(cfg, modalities, kinds, shapes)


def _factorcl_terms(m: int) -> list[str]:
    from infmasking.losses.factorcl import FACTORCL_TERMS  # the loss owns its term names

    return list(FACTORCL_TERMS)


OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
    """Add an objective to the registry (its name must be new)."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is already registered")
    unknown = [k for k in objective.reads if k not in get_args(MethodKey)]
    if unknown:
        raise ValueError(
            f"objective {objective.name!r}: reads {unknown[0]!r}, not a method.* option "
            f"({', '.join(get_args(MethodKey))})"
        )
    OBJECTIVES[objective.name] = objective
    return objective


register(
    Objective(
        "infmasking",
        "InfMasking: CoMM + the infinite-masking term (T masked views)",
        _infmasking,
        lambda m: ["mask1", "mask2", *_comm_terms(m)],
        masked=True,
        reads=("temperature", *MASKED_KEYS, "weights", "cross"),
    )
)
register(
    Objective(
        "comm",
        "CoMM: each unimodal and the fused embedding against the other view's fused one",
        _comm,
        _comm_terms,
    )
)
register(
    Objective(
        "cross",
        "Cross: CLIP-style contrast of the two modalities",
        _unimodal("cross_loss"),
        _pair_terms,
        full=False,
        modalities=(2, 2),
        hint="use 'cmc' for more than 2",
    )
)
register(
    Objective(
        "cross_self",
        "Cross+Self: pairwise cross terms + SimCLR per modality",
        _unimodal("cross_self_loss"),
        lambda m: _pair_terms(m) + [f"self_{s + 1}" for s in range(m)],
        full=False,
    )
)
register(
    Objective(
        "cmc",
        "CMC: CLIP-style contrast of every pair of modalities",
        _unimodal("cmc_loss"),
        _pair_terms,
        full=False,
    )
)


register(
    Objective(
        "factorcl",
        "FactorCL (self-supervised): shared and unique heads, InfoNCE and NCE-CLUB bounds",
        _factorcl,
        _factorcl_terms,
        full=False,
        modalities=(2, 2),
        build=_build_factorcl,
        probe="heads",
        hint="FactorCL is defined for two modalities; use 'cmc', 'comm' or 'infmasking' for more",
        reads=("weights",),
    )
)
register(
    Objective(
        "mae",
        "MAE: mask the fusion's tokens of every modality, reconstruct them with a light decoder",
        _mae,
        lambda m: [f"rec_{s + 1}" for s in range(m)],
        full=False,
        unimodal=False,
        build=_build_mae,
        probe="fused",
        reads=("mask_ratio", "weights"),
    )
)


def feature_kind(name: str, features: str = "auto") -> str:
    """What the probes of method ``name`` read: "fused" (F(all), [B, d]), "concat"
    ([F({x1}), ..., F({xM})], [B, M·d]) or "heads" (the objective's own heads on the unimodal
    F({x_m}): FactorCL's [S1, U1, S2, U2], [B, 4·d]). ``features="auto"`` is the published
    choice: the objective's ``probe`` where it names one (factorcl: heads; mae: fused, the
    unmasked input), else the fused features where the objective trains a fused embedding,
    else the concatenation (the fusion of all modalities is never trained by cross /
    cross_self / cmc)."""
    if features == "auto":
        obj = get(name)
        return obj.probe or ("fused" if obj.full else "concat")
    if features not in ("fused", "concat"):
        raise ValueError(f"eval.features: expected 'auto', 'fused' or 'concat', got {features!r}")
    return features


def get(name: str) -> Objective:
    """The registered objective ``name``, or a ValueError listing the valid names."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid: {list(OBJECTIVES)}") from None
