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

    def draw(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor],
        generator: torch.Generator | None = None,
    ) -> list[list[tuple[str, Tensor | dict[str, Tensor]]]]:
        """Every random number of the two views, drawn view by view and modality by modality
        (the order of the generator's stream): per view, per modality, ``("image", draws)``
        (:meth:`ImageAugment.draw`, applied later by :meth:`apply`) or ``("done", x)`` for the
        other kinds, whose augmentation draws and applies in one call."""
        plan = []
        for _ in range(2):
            entries = []
            for m, x in inputs.items():
                kind = self.kinds[m]
                if kind == "image":
                    if self.image is None:
                        entries.append(("image", {}))
                    else:
                        dev = generator.device if generator is not None else x.device
                        entries.append(("image", self.image.draw(x.shape[0], x.shape[1],
                                                                 generator, dev)))  # fmt: skip
                else:
                    aug = self.vector if kind == "vector" else self.sequence
                    y = x.float() if aug is None else aug(x.float(), padding.get(m), generator)
                    entries.append(("done", y))
            plan.append(entries)
        return plan

    def apply(self, inputs: dict[str, Tensor], padding: dict[str, Tensor], plan) -> tuple:
        """The two views ``((x1, p1), (x2, p2))`` from the draws of :meth:`draw`: tensor code
        only (no random number, no host synchronisation). The images are augmented in one
        call per image shape — both views of every image modality of that shape at once (the
        result of one call each, a quarter of the operations with two image modalities)."""
        views = [{}, {}]
        pending: dict[tuple, list] = {}  # image shape -> [(view, modality, draws)]
        for v, entries in enumerate(plan):
            for (m, x), (what, value) in zip(inputs.items(), entries, strict=True):
                if what == "done":
                    views[v][m] = value
                elif self.image is None:
                    views[v][m] = self._normalize(to_float_images(x))
                else:
                    pending.setdefault(tuple(x.shape[1:]), []).append((v, m, value))
        for group in pending.values():
            x = torch.cat([inputs[m] for _, m, _ in group])
            draws = {k: torch.cat([d[k] for *_, d in group]) for k in group[0][2]}
            out = self._normalize(self.image.apply(x, draws)).chunk(len(group))
            for (v, m, _), y in zip(group, out, strict=True):
                views[v][m] = y
        return tuple(({m: x[m] for m in inputs}, dict(padding)) for x in views)

    def forward(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor],
        generator: torch.Generator | None = None,
    ):
        """Two independently augmented views ``((x1, p1), (x2, p2))`` of the batch."""
        return self.apply(inputs, padding, self.draw(inputs, padding, generator))
