"""Batched data augmentation: images (SimCLR) and sequences / vectors (MultiBench).

Every op works on a whole batch on any device, with per-sample random parameters drawn from
an optional ``torch.Generator`` (else the global RNG): parameters are drawn on the generator's
device and moved to the data's device, so a seeded CPU generator reproduces the same
augmentation for CPU and GPU data. No op loops over samples in Python.

Images (float [B, C, H, W] in [0, 1]; uint8 is converted by :class:`ImageAugment`):
    :func:`random_resized_crop` (one ``affine_grid`` + ``grid_sample`` for the batch),
    :func:`random_horizontal_flip`, :func:`color_jitter` (hue through RGB↔HSV in tensor code),
    :func:`random_grayscale`, :func:`random_gaussian_blur` (separable grouped convolution with
    per-sample kernels); composed by :class:`ImageAugment` (see :meth:`ImageAugment.simclr`).

Sequences (float [B, L, d], padding mask [B, L], True = padding) and vectors (float [B, d]):
    :class:`SequenceAugment` with ``noise``, ``drop``, ``drop_consecutive``, ``crop``,
    ``permute`` (sequences) and ``noise``, ``drop`` (vectors), combined with "+". Padded
    steps are never changed, and neither is the padding mask.
"""

from infmasking.data.augment.images import (
    ImageAugment,
    color_jitter,
    default_blur_kernel_size,
    gaussian_blur,
    hsv_to_rgb,
    random_gaussian_blur,
    random_grayscale,
    random_horizontal_flip,
    random_resized_crop,
    rgb_to_grayscale,
    rgb_to_hsv,
)
from infmasking.data.augment.sequences import (
    SEQUENCE_AUGMENTATIONS,
    VECTOR_AUGMENTATIONS,
    SequenceAugment,
    parse_augmentations,
)

__all__ = [
    "SEQUENCE_AUGMENTATIONS",
    "VECTOR_AUGMENTATIONS",
    "ImageAugment",
    "SequenceAugment",
    "color_jitter",
    "default_blur_kernel_size",
    "gaussian_blur",
    "hsv_to_rgb",
    "parse_augmentations",
    "random_gaussian_blur",
    "random_grayscale",
    "random_horizontal_flip",
    "random_resized_crop",
    "rgb_to_grayscale",
    "rgb_to_hsv",
]
