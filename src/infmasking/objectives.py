"""The objectives, in one registry: name -> which model passes it needs, its loss terms and the
loss function (the math lives in :mod:`infmasking.losses`).

Everything that depends on the method reads this registry: the configuration's choices
(``method.name``), the training step, the check of ``method.weights``, the CLI and the
reports. Adding an objective is one loss function in ``losses.py`` plus one entry here (see
docs/CONTRIBUTING.md). The module imports no torch (the losses are imported when called), so
the configuration and the CLI read it at no cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infmasking.losses import LossOutput
    from infmasking.models.model import ModelOutput

LossFn = Callable[["ModelOutput", "ModelOutput", Any, float], "LossOutput"]


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
    """

    name: str
    summary: str
    loss: LossFn
    terms: Callable[[int], list[str]]
    full: bool = True
    masked: bool = False
    modalities: tuple[int, int | None] = (2, None)

    def check_modalities(self, m: int) -> None:
        lo, hi = self.modalities
        if m < lo or (hi is not None and m > hi):
            allowed = (
                f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}..{hi}"
            )
            hint = " (use 'cmc' for more than 2)" if self.name == "cross" else ""
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


OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
    """Add an objective to the registry (its name must be new)."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is already registered")
    OBJECTIVES[objective.name] = objective
    return objective


register(
    Objective(
        "infmasking",
        "InfMasking: CoMM + the infinite-masking term (T masked views)",
        _infmasking,
        lambda m: ["mask1", "mask2", *_comm_terms(m)],
        masked=True,
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


def feature_kind(name: str, features: str = "auto") -> str:
    """What the probes of method ``name`` read: "fused" (F(all), [B, d]) or "concat"
    ([F({x1}), ..., F({xM})], [B, M·d]). ``features="auto"`` is the published choice: the
    fused features where the objective trains a fused embedding, else the concatenation (the
    fusion of all modalities is never trained by cross / cross_self / cmc)."""
    if features == "auto":
        return "fused" if get(name).full else "concat"
    if features not in ("fused", "concat"):
        raise ValueError(f"eval.features: expected 'auto', 'fused' or 'concat', got {features!r}")
    return features


def get(name: str) -> Objective:
    """The registered objective ``name``, or a ValueError listing the valid names."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid: {list(OBJECTIVES)}") from None
