"""``validate``: refuse a run configuration that cannot train or would train something
meaningless, before any data is loaded. One small check per part of the configuration
(:data:`_CHECKS`, in the order the refusals are listed); every message names the option
(``--section.key``), what was expected and what came."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from infmasking import probe_registry
from infmasking.objectives import OBJECTIVES
from infmasking.objectives import get as get_objective
from infmasking.probe_registry import ROBUST_PROBES, choices
from infmasking.training.config import RunConfig
from infmasking.training.config_files import to_dict


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` on one line of at most ``limit`` characters: a refusal stays one line
    however long (or multi-line) the bad value is."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def _non_finite(node: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(option, value) of every NaN / infinite float in a ``to_dict`` tree."""
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in _non_finite(v, f"{prefix}{k}.")]
    if isinstance(node, (list, tuple)):
        found = [x for v in node for x in _non_finite(v, prefix)]
        return [(prefix.rstrip("."), node)] if found else []
    if isinstance(node, float) and not math.isfinite(node):
        return [(prefix.rstrip("."), node)]
    return []


def _int_from(value: Any, low: int) -> bool:
    """``value`` is an integer >= ``low``."""
    return isinstance(value, int) and value >= low


class _Problems:
    """The refusals of one configuration, in the order they are found.

    Every float, wherever it sits (a section, a list, ``data.options``, ``model.encoders``),
    must be finite: said by the option's own check where that asks for a finite number, else
    in general terms at the end (:meth:`non_finite_left`)."""

    def __init__(self, cfg: RunConfig) -> None:
        self.found: list[str] = []
        self.non_finite = dict(_non_finite(to_dict(cfg)))
        self.said: set[str] = set()

    def need(self, ok: bool, option: str, expected: str, got: Any) -> None:
        """Refuse ``--option`` unless ``ok``: "must be ``expected``, got ``got``"."""
        if ok or (option in self.non_finite and "finite" not in expected):
            return
        self.said.add(option)
        self.found.append(f"--{option} must be {expected}, got {shown(got)}")

    def non_finite_left(self) -> list[str]:
        """The NaN / infinite floats that no option's own check has named."""
        return [
            f"--{option} must be a finite number, got {shown(value)}"
            for option, value in self.non_finite.items()
            if option not in self.said
        ]


Need = Callable[[bool, str, str, Any], None]


def _check_augment(cfg: RunConfig, need: Need) -> None:
    a = cfg.augment
    scale = list(a.crop_scale) if isinstance(a.crop_scale, (list, tuple)) else None
    need(
        scale is not None
        and len(scale) == 2
        and all(isinstance(v, (int, float)) for v in scale)
        and 0 < scale[0] <= scale[1] <= 1,
        "augment.crop_scale",
        "[low, high] with 0 < low <= high <= 1 (fractions of the image area)",
        a.crop_scale,
    )
    need(isinstance(a.hue, (int, float)) and 0 <= a.hue <= 0.5, "augment.hue", "in [0, 0.5]", a.hue)
    need(
        isinstance(a.grayscale_p, (int, float)) and 0 <= a.grayscale_p <= 1,
        "augment.grayscale_p",
        "a probability in [0, 1]",
        a.grayscale_p,
    )


def _check_modalities(cfg: RunConfig, need: Need) -> None:
    mods = cfg.data.modalities
    need(
        mods is None or (len(mods) >= 1 and len(set(mods)) == len(mods)),
        "data.modalities",
        "null (all) or a list of distinct modality names",
        mods,
    )


def _check_model(cfg: RunConfig, need: Need) -> None:
    m = cfg.model
    for key in ("dim", "n_layers", "n_heads", "head_hidden", "proj_dim"):
        v = getattr(m, key)
        need(_int_from(v, 1), f"model.{key}", "an integer >= 1", v)
    if isinstance(m.dim, int) and isinstance(m.n_heads, int) and m.dim >= 1 and m.n_heads >= 1:
        need(
            m.dim % m.n_heads == 0, "model.dim", f"divisible by --model.n_heads={m.n_heads}", m.dim
        )
    need(
        m.vector_tokens is None or _int_from(m.vector_tokens, 1),
        "model.vector_tokens",
        "null (automatic) or an integer >= 1",
        m.vector_tokens,
    )


def _check_seed(cfg: RunConfig, need: Need) -> None:
    need(
        isinstance(cfg.seed, int) and 0 <= cfg.seed < 2**32,
        "seed",
        "an integer in [0, 2**32)",
        cfg.seed,
    )


def _check_loss_terms(cfg: RunConfig, need: Need) -> None:
    """``method.temperature`` and ``method.weights``: every InfoNCE term's τ and weight."""
    me = cfg.method
    need(
        isinstance(me.temperature, (int, float))
        and math.isfinite(me.temperature)
        and me.temperature > 0,
        "method.temperature",
        "a finite number > 0",
        me.temperature,
    )
    if me.weights is not None:
        ws = list(me.weights)
        finite = all(isinstance(w, (int, float)) and math.isfinite(w) for w in ws)
        need(
            finite and all(w >= 0 for w in ws) and any(w > 0 for w in ws),
            "method.weights",
            "finite numbers >= 0, not all zero (or null for the defaults)",
            me.weights,
        )


def _check_logging(cfg: RunConfig, need: Need) -> None:
    """``trainer.logger`` (and its package) and ``trainer.log_every_n_steps``."""
    t = cfg.trainer
    need(t.logger in ("csv", "tensorboard"), "trainer.logger", "'csv' or 'tensorboard'", t.logger)
    if t.logger == "tensorboard":
        import importlib.util

        need(
            importlib.util.find_spec("tensorboard") is not None
            or importlib.util.find_spec("tensorboardX") is not None,
            "trainer.logger",
            "'csv' here: the tensorboard package is not installed "
            "(pip install tensorboard, or the [tensorboard] extra)",
            t.logger,
        )
    need(
        _int_from(t.log_every_n_steps, 1),
        "trainer.log_every_n_steps",
        "an integer >= 1",
        t.log_every_n_steps,
    )


def _check_method(cfg: RunConfig, need: Need) -> None:
    """The objective (registered) and its masks and λ schedule."""
    me = cfg.method
    need(0 <= me.mask_ratio < 1, "method.mask_ratio", "in [0, 1)", me.mask_ratio)
    need(me.mask_lambda >= 0, "method.mask_lambda", ">= 0", me.mask_lambda)
    need(me.name in OBJECTIVES, "method.name", f"one of {list(OBJECTIVES)}", me.name)
    if me.name in OBJECTIVES and get_objective(me.name).masked:
        need(
            _int_from(me.num_masks, 1),
            "method.num_masks",
            "an integer >= 1 with InfMasking (the masked views)",
            me.num_masks,
        )
    need(
        me.lambda_epochs is None or _int_from(me.lambda_epochs, 1),
        "method.lambda_epochs",
        "null (the run's epochs) or an integer >= 1",
        me.lambda_epochs,
    )


def _check_optim(cfg: RunConfig, need: Need) -> None:
    o = cfg.optim
    need(o.lr > 0, "optim.lr", "> 0", o.lr)
    need(o.weight_decay >= 0, "optim.weight_decay", ">= 0", o.weight_decay)
    need(
        _int_from(o.batch_size, 2),
        "optim.batch_size",
        "an integer >= 2 (contrastive negatives, batch norm)",
        o.batch_size,
    )
    need(_int_from(o.epochs, 1), "optim.epochs", "an integer >= 1", o.epochs)


def _check_eval(cfg: RunConfig, need: Need) -> None:
    """The probes: which, on what, on how many samples, when, and C
    (``eval.batch_size``: :func:`_check_resources`)."""
    e = cfg.eval
    need(
        e.class_weight in (None, "balanced"),
        "eval.class_weight",
        "null or 'balanced'",
        e.class_weight,
    )
    probes = probe_registry.PROBES  # the probes registered now
    need(e.probe in probes, "eval.probe", choices(probes), e.probe)
    need(
        e.robust_probe in ROBUST_PROBES, "eval.robust_probe", choices(ROBUST_PROBES), e.robust_probe
    )
    need(
        e.features in ("auto", "fused", "concat"),
        "eval.features",
        "'auto', 'fused' or 'concat'",
        e.features,
    )
    need(
        _int_from(e.probe_max_train, 10),
        "eval.probe_max_train",
        "an integer >= 10 (probe-train samples)",
        e.probe_max_train,
    )
    need(
        e.probe_max_test is None or _int_from(e.probe_max_test, 10),
        "eval.probe_max_test",
        "null (all) or an integer >= 10 (probe-test samples)",
        e.probe_max_test,
    )
    need(_int_from(e.probe_every, 0), "eval.probe_every", "an integer >= 0", e.probe_every)
    need(
        isinstance(e.probe_at, list)
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in e.probe_at)
        and len(set(e.probe_at)) == len(e.probe_at),
        "eval.probe_at",
        "a list of distinct epochs >= 0",
        e.probe_at,
    )
    need(
        all(k <= cfg.optim.epochs for k in e.probe_at),
        "eval.probe_at",
        f"epochs <= optim.epochs ({cfg.optim.epochs}): a later epoch is never reached",
        e.probe_at,
    )
    need(e.select in ("last", "best_valid"), "eval.select", "'last' or 'best_valid'", e.select)
    need(
        e.probe_C is None
        or (
            isinstance(e.probe_C, (int, float))
            and not isinstance(e.probe_C, bool)
            and math.isfinite(e.probe_C)
            and e.probe_C > 0
        ),
        "eval.probe_C",
        "null (searched, as published) or a finite number > 0",
        e.probe_C,
    )
    if e.select == "best_valid":
        need(
            e.probe_every >= 1 or any(k >= 1 for k in e.probe_at),
            "eval.probe_every",
            ">= 1 (or eval.probe_at with a trained epoch) with --eval.select best_valid "
            "(it chooses among probed epochs)",
            e.probe_every,
        )


def _check_steps(cfg: RunConfig, need: Need) -> None:
    """What the trainer does every k steps, and the compiled step's mode."""
    t = cfg.trainer
    need(
        _int_from(t.finite_check_every_n_steps, 1),
        "trainer.finite_check_every_n_steps",
        "an integer >= 1",
        t.finite_check_every_n_steps,
    )
    need(
        _int_from(t.progress_every_n_steps, 1),
        "trainer.progress_every_n_steps",
        "an integer >= 1",
        t.progress_every_n_steps,
    )
    need(
        not (t.compile and t.compile_mode == "reduce-overhead" and t.accelerator == "cpu"),
        "trainer.compile_mode",
        "default or max-autotune-no-cudagraphs on a CPU (reduce-overhead captures CUDA graphs)",
        t.compile_mode,
    )
    need(
        _int_from(t.checkpoint_every_n_steps, 0),
        "trainer.checkpoint_every_n_steps",
        "an integer >= 0 (0: checkpoints at epoch ends only)",
        t.checkpoint_every_n_steps,
    )


def _check_resources(cfg: RunConfig, need: Need) -> None:
    """What the machine is asked for: the features' batch, CPU threads, a GPU."""
    e, t = cfg.eval, cfg.trainer
    need(_int_from(e.batch_size, 1), "eval.batch_size", "an integer >= 1", e.batch_size)
    need(
        t.num_threads is None or _int_from(t.num_threads, 1),
        "trainer.num_threads",
        "null or an integer >= 1",
        t.num_threads,
    )
    if str(t.accelerator).lower() in ("gpu", "cuda"):
        import torch

        need(
            torch.cuda.is_available(),
            "trainer.accelerator",
            "'cpu' or 'auto' on this machine (no CUDA GPU is visible to torch)",
            t.accelerator,
        )


def _missing_data_path(cfg: RunConfig) -> str | None:
    """The dataset's own message when it needs ``data.path`` and none is given."""
    from infmasking.data.registry import REGISTRY

    entry = REGISTRY.get(cfg.data.name)
    if entry is not None and entry.needs_path and cfg.data.path is None:
        return entry.missing_path()
    return None


#: The checks, in the order their refusals are listed (one message, joined by "; ").
_CHECKS = (
    _check_augment,
    _check_modalities,
    _check_model,
    _check_seed,
    _check_loss_terms,
    _check_logging,
    _check_method,
    _check_optim,
    _check_eval,
    _check_steps,
    _check_resources,
)


def validate(cfg: RunConfig) -> None:
    """Refuse a configuration that cannot train or would train something meaningless, before
    any data is loaded; every message names the option (``--section.key``), what was expected
    and what came. All refusals are raised at once (one ValueError, joined by "; ")."""
    problems = _Problems(cfg)
    for check in _CHECKS:
        check(cfg, problems.need)
    if (missing := _missing_data_path(cfg)) is not None:
        problems.found.append(missing)
    found = problems.found + problems.non_finite_left()
    if found:
        raise ValueError("; ".join(found))
