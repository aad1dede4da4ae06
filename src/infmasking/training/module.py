"""One LightningModule for every method (infmasking, comm, cross, cross_self, cmc, factorcl, mae).

The engine (DDP over GPUs or nodes, checkpoints, precision, logging) is Lightning's. What is
ours: the two augmented views, the model passes each method needs, the λ schedule read from
the trainer's epoch, AdamW without weight decay on biases / norms / tokens, and randomness
that is a pure function of (seed, step, rank) so that a resumed run repeats the same steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as pl
import torch
from torch import Tensor

from infmasking import losses as L
from infmasking.data.base import Batch
from infmasking.models import MaskedFusionModel, build_model_from
from infmasking.models.model import ModelOutput, features_of
from infmasking.objectives import feature_kind
from infmasking.objectives import get as get_objective
from infmasking.seeds import step_generator_seed
from infmasking.training.config import RunConfig
from infmasking.training.config_files import from_dict, to_dict
from infmasking.training.views import ViewMaker


def auto_vector_tokens(mask_ratio: float) -> int:
    """The fewest tokens n for a vector modality such that a masked view keeps at least one
    (``num_kept(n, mask_ratio) >= 1``); with one token, any mask_ratio > 0 masks the modality
    entirely in every masked view."""
    from infmasking.models import num_kept

    n = 1
    while num_kept(n, mask_ratio) < 1:
        n += 1
    return n


def adamw_kernel(choice: str, device: torch.device) -> dict[str, bool]:
    """AdamW's implementation (``optim.adamw``): ``foreach`` — a few multi-tensor operations
    per step, bit-identical to the per-parameter loop on the CPU; ``fused`` — one kernel per
    step (CUDA; rounding differs in the last bit); ``single`` — the per-parameter loop;
    ``auto`` — fused on CUDA, foreach elsewhere."""
    if choice == "auto":
        choice = "fused" if device.type == "cuda" else "foreach"
    if choice == "fused":
        return {"fused": True}
    if choice in ("foreach", "single"):
        return {"foreach": choice == "foreach"}
    raise ValueError(f"optim.adamw must be auto, foreach, fused or single, got {choice!r}")


def rng_device(choice: str, device: torch.device) -> torch.device:
    """Where a step's random numbers are drawn (``trainer.rng_device``): the CPU, or the
    training device (``accelerator``; ``auto``: the training device when it is a GPU)."""
    if choice == "cpu" or (choice == "auto" and device.type == "cpu"):
        return torch.device("cpu")
    if choice in ("accelerator", "auto"):
        return device
    raise ValueError(f"trainer.rng_device must be auto, cpu or accelerator, got {choice!r}")


def _f32(out: ModelOutput) -> ModelOutput:
    """Embeddings in at least float32 (bfloat16 / float16 under autocast -> float32)."""

    def up(t):
        if t is None:
            return None
        if isinstance(t, list):
            return [up(x) for x in t]
        if isinstance(t, dict):  # modality -> Tokens
            return {m: type(v)(*(up(x) for x in v)) for m, v in t.items()}
        return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t

    return ModelOutput(*(up(t) for t in out))


def _no_autocast(like: Tensor):
    """Autocast switched off on the device of ``like`` (the loss in full precision)."""
    return torch.autocast(like.device.type, enabled=False)


class SSLModule(pl.LightningModule):
    """Self-supervised training of a :class:`MaskedFusionModel` with one objective.

    Args:
        cfg: the run configuration (the module keeps its own copy, each value of the
            schema's type).
        modalities: modality names in order.
        kinds / shapes: per-modality kind (image | sequence | vector) and sample shape.

    Checkpoints hold the arguments as hyper_parameters ``config`` (``to_dict(cfg)``, a plain
    dict), ``modalities``, ``kinds`` and ``shapes``; :meth:`from_checkpoint` builds the module
    back from them (Lightning's ``load_from_checkpoint`` would pass the dict as it is).
    """

    def __init__(
        self,
        cfg: RunConfig,
        modalities: list[str],
        kinds: dict[str, str],
        shapes: dict[str, list[int]],
    ):
        super().__init__()
        config = to_dict(cfg)
        self.save_hyperparameters(
            {"config": config, "modalities": modalities, "kinds": kinds, "shapes": shapes}
        )
        # the checkpoint's "hparams_name", as Lightning writes it for hyperparameters saved
        # from the keyword arguments of __init__ (the checkpoints' content is unchanged)
        self._hparams_name = "kwargs"
        self._nonfinite: Tensor | None = None  # pending flag of periodic finiteness checks
        self._compiled = None  # torch.compile of loss_from_draws (trainer.compile)
        self._lambda: tuple[float, Tensor] | None = None  # λ_e and its tensor
        # its own copy, every value of the schema's type (an int given for a float: a float)
        self.cfg: RunConfig = from_dict(config)
        mc = self.cfg.model
        self.model: MaskedFusionModel = build_model_from(
            mc,
            modalities,
            kinds,
            {m: tuple(s) for m, s in shapes.items()},
            vector_tokens=mc.vector_tokens or auto_vector_tokens(self.cfg.method.mask_ratio),
        )
        self.views = ViewMaker(self.cfg.augment, kinds)
        meth = self.cfg.method
        self.objective = get_objective(meth.name)
        self.objective.check_modalities(len(modalities))
        self.objective.check_weights(meth.weights, len(modalities))
        # the objective's own modules (FactorCL's heads and critics, MAE's decoder): owned
        # here, so they are optimised and checkpointed with the model; None for the others
        build = self.objective.build
        self.heads = build(self.cfg, list(modalities), kinds, shapes) if build else None

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> SSLModule:
        """The module a checkpoint file holds, on the CPU: built from its hyper_parameters
        (the ``config`` dict read by ``from_dict``, older versions migrated; the data's
        modalities, kinds and shapes), then its weights loaded (every key must match).
        Any failure raises (the caller says which kind in one line)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        hp = state["hyper_parameters"]
        module = cls(from_dict(hp["config"]), hp["modalities"], hp["kinds"], hp["shapes"])
        module.load_state_dict(state["state_dict"])
        return module

    # ------------------------------------------------------------------ schedule

    def lambda_horizon(self) -> int:
        """Epochs of the λ ramp: ``method.lambda_epochs``, or the run's ``optim.epochs``."""
        horizon = self.cfg.method.lambda_epochs or self.cfg.optim.epochs
        if horizon < 1:
            raise ValueError(
                "the λ schedule needs optim.epochs >= 1 or method.lambda_epochs >= 1, "
                f"got {horizon}"
            )
        return horizon

    def mask_weight(self) -> float:
        """λ_e from the trainer's progress (0-based epoch e) and the ramp's horizon."""
        return L.mask_weight(self.current_epoch, self.lambda_horizon(), self.cfg.method.mask_lambda)

    def _generator(self) -> torch.Generator:
        """Randomness of this step: a function of (seed, global step, rank) only, drawn on the
        device ``trainer.rng_device`` names."""
        g = torch.Generator(device=rng_device(self.cfg.trainer.rng_device, self.device))
        g.manual_seed(step_generator_seed(self.cfg.seed, self.global_step, self.global_rank))
        return g

    # ------------------------------------------------------------------ step

    def compute_loss(self, batch: Batch, generator: torch.Generator | None = None) -> L.LossOutput:
        """The objective of one batch. Under mixed precision (``bf16-mixed``) the model runs in
        bfloat16 and the loss is computed from float32 copies of the embeddings, autocast off.

        The views' random numbers are drawn first; the rest (:meth:`loss_from_draws`) is
        tensor code, compiled with ``trainer.compile`` (the masks' draws inside it are the
        only graph breaks)."""
        plan = self.views.draw(batch.inputs, batch.padding, generator)
        if not self.cfg.trainer.compile:
            weight = self.mask_weight() if self.objective.masked else 0.0
            return self.loss_from_draws(batch.inputs, batch.padding, plan, generator, weight)
        if self._compiled is None:
            self._compiled = torch.compile(self.loss_from_draws, mode=self.cfg.trainer.compile_mode)
        weight = self._mask_weight_tensor()
        return self._compiled(batch.inputs, batch.padding, plan, generator, weight)

    def _mask_weight_tensor(self) -> Tensor:
        """λ_e as a 0-d float32 tensor on the module's device, made once per epoch (a tensor,
        not a Python float: a compiled step is not recompiled when λ changes)."""
        w = self.mask_weight() if self.objective.masked else 0.0
        if self._lambda is None or self._lambda[0] != w or self._lambda[1].device != self.device:
            self._lambda = (w, torch.tensor(w, dtype=torch.float32, device=self.device))
        return self._lambda[1]

    def loss_from_draws(
        self,
        inputs: dict[str, Tensor],
        padding: dict[str, Tensor],
        plan,
        generator: torch.Generator | None,
        weight: float | Tensor,
    ) -> L.LossOutput:
        """The loss given the views' draws (:meth:`ViewMaker.draw`) and λ_e (a float, or a 0-d
        tensor when compiled)."""
        meth, obj = self.cfg.method, self.objective
        (x1, p1), (x2, p2) = self.views.apply(inputs, padding, plan)
        kw = dict(full=obj.full)
        if not obj.unimodal:
            kw.update(unimodal=False)
        if self.heads is not None:  # the objective's modules may read the tokens (MAE)
            kw.update(return_tokens=True)
        if obj.masked:
            kw.update(num_masks=meth.num_masks, mask_ratio=meth.mask_ratio, generator=generator)
        o1, o2 = (_f32(o) for o in self.model.forward_views([(x1, p1), (x2, p2)], **kw))
        with _no_autocast(next(iter(x1.values()))):
            if self.heads is None:
                return obj.loss(o1, o2, meth, weight)
            return obj.loss(
                o1,
                o2,
                meth,
                weight,
                heads=self.heads,
                model=self.model,
                inputs=(x1, x2),
                generator=generator,
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Never write a checkpoint after a non-finite loss that a periodic check
        (``trainer.finite_check_every_n_steps`` > 1) has not read yet."""
        pending, self._nonfinite = self._nonfinite, None
        if pending is not None and bool(pending.item()):
            raise FloatingPointError(
                "non-finite loss in a step since the last check: the checkpoint is not written "
                "(lower the learning rate, raise the temperature, or check the inputs)"
            )

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        out = self.compute_loss(batch, self._generator())
        k = self.cfg.trainer.finite_check_every_n_steps
        if k <= 1 or (self.global_step + 1) % k == 0:
            L.check_finite(out, self._nonfinite)
            self._nonfinite = None
        else:  # accumulate on the device: no host synchronisation in this step
            bad = ~torch.isfinite(out.loss.detach())
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        logs = out.log_dict("train/")
        if self.objective.masked:
            logs["train/mask_weight"] = torch.tensor(self.mask_weight())
        self.log_dict(
            logs,
            on_step=True,
            on_epoch=False,
            prog_bar=False,
            batch_size=len(next(iter(batch.inputs.values()))),
        )
        self.log("loss", out.loss.detach(), prog_bar=True, logger=False)
        return out.loss

    # ------------------------------------------------------------------ optimizer

    def decay_groups(self) -> tuple[list[str], list[str]]:
        """Names of the parameters with and without weight decay (``optim.decay_groups``)."""
        decay, no_decay = [], []
        published = self.cfg.optim.decay_groups == "published"
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            token = name.endswith((".cls", "mask_token"))
            if published:
                # >= 2-D weights and the CLS / mask tokens; biases and norm parameters not
                keep = p.ndim >= 2 or token
            else:
                # also spare the CLS / mask tokens and learned position parameters
                keep = p.ndim >= 2 and not token and not name.endswith(".pos")
            (decay if keep else no_decay).append(name)
        return decay, no_decay

    def configure_optimizers(self):
        if self.cfg.optim.decay_groups not in ("published", "library"):
            raise ValueError(
                "optim.decay_groups must be 'published' or 'library', "
                f"got {self.cfg.optim.decay_groups!r}"
            )
        params = dict(self.named_parameters())
        decay, no_decay = ([params[n] for n in names] for names in self.decay_groups())
        oc = self.cfg.optim
        return torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": oc.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=oc.lr,
            **adamw_kernel(oc.adamw, next(self.parameters()).device),
        )

    # ------------------------------------------------------------------ features

    @torch.no_grad()
    def features(self, batch: Batch, generator: torch.Generator | None = None) -> Tensor:
        """Frozen features for the probe — F(all) [B, d], or for objectives without a fused term
        the concatenated unimodal F({x_m}) [B, M·d] (``eval.features``) — with inputs
        normalised as in training and, with ``eval.probe_augment``, a random resized crop
        (0.5–1) of each image drawn from ``generator`` (as published); else un-augmented."""
        inputs = self.views.probe_inputs(
            batch.inputs, crop=self.cfg.eval.probe_augment, generator=generator
        )
        kind = feature_kind(self.cfg.method.name, self.cfg.eval.features)
        if kind == "heads":  # the objective's own feature heads (FactorCL)
            tokens = self.model.tokenize(inputs, batch.padding)
            return features_of(self.model, tokens, self.model.modalities, kind, self.heads)
        return self.model.embed(inputs, batch.padding, kind)
