"""Encoders, token adapters, the fusion transformer, masking and the assembled model."""

from infmasking.models.build import build_model, build_model_from
from infmasking.models.fusion import FusionTransformer
from infmasking.models.heads import ProjectionHead
from infmasking.models.masking import MaskingOutput, num_kept, random_masking
from infmasking.models.model import MaskedFusionModel, ModelOutput, Tokens

__all__ = [
    "FusionTransformer",
    "MaskedFusionModel",
    "MaskingOutput",
    "ModelOutput",
    "ProjectionHead",
    "Tokens",
    "build_model",
    "build_model_from",
    "num_kept",
    "random_masking",
]
