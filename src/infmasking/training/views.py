"""The two augmented views of a batch: batched tensor augmentations per modality kind."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infmasking.data.augment import ImageAugment, SequenceAugment, random_resized_crop
from infmasking.data.base import to_float_images
from infmasking.training.config import AugmentConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ViewMaker(nn.Module):
    """modality inputs -> two independently augmented views (inputs, padding) each.

    Images are converted from uint8 to float in [0, 1] first (:meth:`prepare`), augmented,
    then normalised (``augment.normalize``: ``imagenet`` — per-channel ImageNet mean / std, as
    published — or ``none``). :meth:`probe_inputs` gives the probe's view of the same inputs.
    """

    def __init__(self, cfg: AugmentConfig, kinds: dict[str, str]):
        super().__init__()
        self.kinds = dict(kinds)
        if cfg.normalize not in ("imagenet", "none"):
            raise ValueError(
                f"augment.normalize must be 'imagenet' or 'none', got {cfg.normalize!r}"
            )
        self.normalize = cfg.normalize
        if cfg.image == "simclr":
            image = ImageAugment.simclr(
                crop_scale=tuple(cfg.crop_scale), hue=cfg.hue, grayscale_p=cfg.grayscale_p
            )
        elif cfg.image == "crop_flip":
            image = ImageAugment.simclr(
                crop_scale=tuple(cfg.crop_scale), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0
            )
        elif cfg.image == "none":
            image = None
        else:
            raise ValueError(f"augment.image must be simclr, crop_flip or none, got {cfg.image!r}")
        seq = None if cfg.sequence in ("none", "", None) else SequenceAugment(cfg.sequence)
        if cfg.vector is None:
            vec = seq
        else:
            vec = None if cfg.vector in ("none", "") else SequenceAugment(cfg.vector)
        self.image, self.sequence, self.vector = image, seq, vec

    def prepare(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {
            m: to_float_images(x) if self.kinds[m] == "image" else x.float()
            for m, x in inputs.items()
        }

    def _normalize(self, x: Tensor) -> Tensor:
        """[B, C, H, W] in [0, 1] -> normalised (3-channel images only; others unchanged)."""
        if self.normalize == "none" or x.shape[1] != 3:
            return x
        mean = x.new_tensor(IMAGENET_MEAN)[None, :, None, None]
        std = x.new_tensor(IMAGENET_STD)[None, :, None, None]
        return (x - mean) / std

    def probe_inputs(
        self,
        inputs: dict[str, Tensor],
        crop: bool = False,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """What the probe's features are computed from: float inputs, images normalised and,
        with ``crop``, a random resized crop of scale 0.5–1 of each image (as published)."""
        out = self.prepare(inputs)
        for m, x in out.items():
            if self.kinds[m] == "image":
                if crop:
                    x = random_resized_crop(x, scale=(0.5, 1.0), generator=generator)
                out[m] = self._normalize(x)
        return out

    def _view(self, inputs, padding, generator):
        x_out, p_out = {}, dict(padding)
        for m, x in inputs.items():
            kind = self.kinds[m]
            if kind == "image":
                x_out[m] = self._normalize(
                    self.image(x, generator=generator) if self.image is not None else x
                )
            else:
                aug = self.vector if kind == "vector" else self.sequence
                x_out[m] = aug(x, padding.get(m), generator=generator) if aug is not None else x
        return x_out, p_out

    def forward(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor],
        generator: torch.Generator | None = None,
    ):
        inputs = self.prepare(inputs)
        return self._view(inputs, padding, generator), self._view(inputs, padding, generator)
