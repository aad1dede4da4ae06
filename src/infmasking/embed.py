"""Use what was trained: load a run, embed new data, with any subset of the modalities.

    >>> run = load_run("runs/trifeatures_tokens")           # a run folder or a .ckpt file
    >>> feats = run.embed({"x1": x1, "x2": x2})              # [B, d], the features the probes use
    >>> only1 = run.embed({"x1": x1}, modalities=["x1"])     # x2 missing: F({x1})

The fusion transformer accepts any subset of the modalities, so a sample with a modality
missing is embedded from the others (what the unimodal training terms teach the model).
Inputs are prepared exactly as for the probes of the run: uint8 images to [0, 1], then the
run's normalisation; no augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from infmasking.files import write_atomic
from infmasking.models.model import MaskedFusionModel, features_of
from infmasking.objectives import feature_kind
from infmasking.training.config import RunConfig
from infmasking.training.views import ViewMaker

__all__ = ["TrainedModel", "embed_split", "export_model", "load_run"]


@dataclass
class TrainedModel:
    """A trained model in eval mode with what it was trained on.

    Attributes:
        model: the :class:`MaskedFusionModel`.  config: the run's :class:`RunConfig`.
        modalities / kinds / shapes: modality names in order, their kind and per-sample shape.
        checkpoint: the file it was loaded from.
        heads: the objective's own modules (FactorCL's feature heads), None for most methods.
    """

    model: MaskedFusionModel
    config: RunConfig
    modalities: list[str]
    kinds: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    checkpoint: Path
    views: ViewMaker
    heads: torch.nn.Module | None = None

    @property
    def dim(self) -> int:
        """Width d of one fused or unimodal embedding."""
        return self.model.fusion.dim

    @property
    def features(self) -> str:
        """What :meth:`embed` returns: "fused" (F(S), [B, d]), "concat" ([F({m}) for m in
        S], [B, |S|·d]) or "heads" (FactorCL: [S_m, U_m] for m in S, [B, |S|·2d]) — the run's
        ``eval.features``, resolved for its method."""
        return feature_kind(self.config.method.name, self.config.eval.features)

    def feature_dim(self, n_modalities: int | None = None) -> int:
        """Width of :meth:`embed`'s output for ``n_modalities`` (default all) modalities."""
        n = len(self.modalities) if n_modalities is None else n_modalities
        if self.features == "heads":
            return self.heads.feature_dim(n)
        return self.dim * (n if self.features == "concat" else 1)

    def _check(self, inputs: dict[str, Tensor], mods: list[str]) -> None:
        unknown = [m for m in list(inputs) + mods if m not in self.modalities]
        if unknown:
            raise ValueError(
                f"unknown modality {unknown[0]!r}; this model was trained on {self.modalities}"
            )
        if not mods:
            raise ValueError("modalities: give at least one modality to embed")
        missing = [m for m in mods if m not in inputs]
        if missing:
            raise ValueError(f"inputs: no data for modality {missing[0]!r} (asked to embed {mods})")
        sizes = {m: len(inputs[m]) for m in mods}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"inputs: different numbers of samples per modality {sizes}")
        for m in mods:
            want, got = tuple(self.shapes[m]), tuple(inputs[m].shape[1:])
            ok = want == got or (
                self.kinds[m] == "sequence" and len(got) == 2 and got[1] == want[1]
            )
            if not ok:
                raise ValueError(
                    f"modality {m!r}: per-sample shape {list(got)} does not match "
                    f"the trained model's {list(want)}"
                    + (
                        " (sequences may differ in length only)"
                        if self.kinds[m] == "sequence"
                        else ""
                    )
                )

    @torch.no_grad()
    def embed(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> Tensor:
        """Features of the modalities S (default: all the model has), before the projection
        head — with all modalities, the features the probes use (without the probe-time image
        crops of ``eval.probe_augment``): the fused F(S) [B, d], or for runs whose features
        are the concatenation (cross / cross_self / cmc, see :attr:`features`) the unimodal
        F({m}) of each m in S side by side, [B, |S|·d].

        Args:
            inputs: modality -> [B, ...] (images uint8 or float in [0, 1]); modalities not in
                S are ignored.  padding: modality -> [B, L] bool (True = padded) for sequences.
            modalities: the subset S to fuse, in any order (embedded in the model's order).
        """
        mods = [m for m in self.modalities if m in (modalities or self.modalities)]
        self._check(inputs, list(modalities or self.modalities))
        return self._embed(inputs, padding, mods)

    def _embed(
        self, inputs: dict[str, Tensor], padding: dict[str, Tensor] | None, mods: list[str]
    ) -> Tensor:
        """:meth:`embed` without the input checks (traceable by ``torch.export``)."""
        device = next(self.model.parameters()).device
        x = self.views.probe_inputs({m: inputs[m].to(device) for m in mods}, crop=False)
        padding = {m: p.to(device) for m, p in (padding or {}).items() if m in mods}
        tokens = self.model.tokenize(x, padding, mods)
        return features_of(self.model, tokens, mods, self.features, self.heads)


def load_run(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The trained model of a run folder (its ``checkpoints/last.ckpt``) or of a checkpoint
    file, in eval mode on ``device``. Raises a one-line error for a missing folder, a folder
    without a checkpoint, or a file that is not an infmasking checkpoint."""
    from infmasking.training.checkpoint import load_module

    module, cfg, ckpt = load_module(path)
    hp = module.hparams
    model = module.model.to(device).eval()
    return TrainedModel(
        model,
        cfg,
        list(hp["modalities"]),
        dict(hp["kinds"]),
        {m: tuple(s) for m, s in hp["shapes"].items()},
        Path(ckpt),
        module.views,
        module.heads.to(device).eval() if module.heads is not None else None,
    )


def embed_split(
    run: TrainedModel,
    split,
    modalities: Sequence[str] | None = None,
    batch_size: int = 256,
    progress: bool = True,
    desc: str = "embed",
) -> np.ndarray:
    """Features [N, d] of every sample of a :class:`~infmasking.data.base.Split`, batched."""
    from tqdm.auto import tqdm

    out = []
    starts = range(0, len(split), batch_size)
    # a bar on a terminal only (disable=None): a redirected log gets no bar fragments
    for start in tqdm(starts, desc=desc, disable=None if progress else True, unit="batch"):
        b = split[torch.arange(start, min(start + batch_size, len(split)))]
        out.append(run.embed(b.inputs, b.padding, modalities).float().cpu())
    n = len(modalities) if modalities else None
    return torch.cat(out).numpy() if out else np.zeros((0, run.feature_dim(n)), np.float32)


class _Exportable(torch.nn.Module):
    """``forward(*inputs, *paddings)``: the modalities in the model's order (float tensors;
    images in [0, 1]), then one bool padding mask [B, L] per sequence modality."""

    def __init__(self, run: TrainedModel):
        super().__init__()
        self.run, self.model, self.heads = run, run.model, run.heads
        self.sequences = [m for m in run.modalities if run.kinds[m] == "sequence"]

    def forward(self, *args: Tensor) -> Tensor:
        n = len(self.run.modalities)
        inputs = dict(zip(self.run.modalities, args[:n]))
        padding = dict(zip(self.sequences, args[n:]))
        return self.run._embed(inputs, padding, self.run.modalities)


def export_model(run: TrainedModel, path: str | Path, example: dict[str, Tensor]) -> Path:
    """Write a ``torch.export`` program of :meth:`TrainedModel.embed` (all modalities) to
    ``path`` (.pt2); it embeds without infmasking installed::

        program = torch.export.load("model.pt2").module()
        features = program(x1, x2)            # + one bool padding [B, L] per sequence modality

    Inputs in the model's modality order, float (images in [0, 1]); the batch size (and a
    sequence's length) are dynamic. ``example``: a small batch of each modality.
    """
    module = _Exportable(run).eval()
    args = [example[m].float() for m in run.modalities]
    args += [torch.zeros(example[m].shape[:2], dtype=torch.bool) for m in module.sequences]
    auto = torch.export.Dim.AUTO
    dynamic = [
        {0: auto} if run.kinds[m] != "sequence" else {0: auto, 1: auto} for m in run.modalities
    ]
    dynamic += [{0: auto, 1: auto} for _ in module.sequences]
    program = torch.export.export(module, tuple(args), dynamic_shapes={"args": tuple(dynamic)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # through Python's file object, never torch's own file writer: a full disk is one line
    # (NoSpaceError) and no truncated program is left under the name
    return write_atomic(path, lambda f: torch.export.save(program, f))
