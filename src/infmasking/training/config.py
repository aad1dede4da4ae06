"""The run configuration: typed dataclasses, parsed by jsonargparse (YAML files, presets and
``--section.key value`` overrides all land here). ``RunConfig`` is saved into every run
folder (``config.yaml``) and every checkpoint, so a run can be re-evaluated or resumed."""

from __future__ import annotations

import dataclasses
import functools
import math
from argparse import ArgumentError
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import ArgumentParser

from infmasking.data.trifeatures import TrifeaturesConfig
from infmasking.objectives import OBJECTIVES
from infmasking.objectives import get as get_objective
from infmasking.probe_registry import PROBES, ROBUST_PROBES, choices

METHODS = tuple(OBJECTIVES)
MethodName = Literal[METHODS]  # the registered objectives (infmasking.objectives)
ProbeName = Literal[PROBES]  # the probes (infmasking.probe_registry)
RobustProbeName = Literal[ROBUST_PROBES]
PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


@dataclass
class DataConfig:
    """Which dataset and how to load it."""

    name: str = "trifeatures"
    """A dataset of infmasking.data.registry (the CLI's help lists the registered names)."""
    path: str | None = None
    """Data file or folder; not needed for trifeatures / trifeatures_tokens (generated)."""
    modalities: list[str] | None = None
    """Use only these modalities, in this order (e.g. [vision, text] for affect)."""
    seed: int = 0
    """Seed of generated data (Trifeatures rendering, splits, pair subsampling); the run's own
    seed drives initialisation, augmentation, masks and batch order."""
    trifeatures: TrifeaturesConfig = field(default_factory=TrifeaturesConfig)
    """Trifeatures pair sets: biased, image_size, self_pairs, max_pairs, cache_dir."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword options passed to the dataset's loader."""
    unsafe_pickle: bool = False
    """MultiBench .pkl / .pk files: False (default) reads them with a restricted unpickler
    (numpy arrays, dtypes, builtin containers and scalars only); True uses plain pickle, which
    RUNS CODE FROM THE FILE — only for files you made or trust (docs/SECURITY.md)."""


@dataclass
class ModelConfig:
    """Encoders, fusion transformer and projection head (docs/METHOD.md §1)."""

    dim: int = 128
    """Token width d of the fusion transformer."""
    n_layers: int = 1
    """Fusion transformer blocks."""
    n_heads: int = 4
    """Attention heads per block (must divide dim)."""
    pool: Literal["cls", "mean"] = "cls"
    """Fused feature: the CLS token's output, or the mean over the tokens."""
    head_hidden: int = 512
    """Hidden width of the projection head."""
    proj_dim: int = 256
    """Output width p of the projection head (the space of the contrastive losses)."""
    vector_tokens: int | None = None
    """Tokens a vector modality becomes. None: the fewest that keep at least one token in a
    masked view at ``method.mask_ratio`` (1 when nothing is masked)."""
    encoders: dict[str, Any] = field(default_factory=dict)
    """Per-modality encoder override, e.g. {image1: {name: convnet, widths: [16, 32, 64, 128]}}."""
    collapse_masked: bool = True
    """Represent masked positions by one log-count token (exact, cheaper)."""
    shared_kv: bool = True
    """Compute the first fusion block's keys and values once per view for all its passes
    (unimodal, full, masked; exact, cheaper; CLS pooling)."""
    activation: Literal["quick_gelu", "gelu"] = "quick_gelu"
    """Fusion-MLP activation: quick_gelu = x·sigmoid(1.702x) (published) | gelu."""
    init: Literal["reference", "xavier"] = "reference"
    """Fusion initialisation: reference (published, docs/OPTIONS.md) | xavier."""


@dataclass
class MethodConfig:
    """The objective and its hyperparameters (docs/METHOD.md §2, §5)."""

    name: MethodName = "infmasking"
    """The objective, one of those registered in infmasking.objectives (choices above)."""
    temperature: float = 0.1
    """τ of every InfoNCE term."""
    mask_ratio: float = 0.7
    """Fraction of each modality's tokens masked in a masked view (InfMasking)."""
    num_masks: int = 6
    """T, masked views per sample and step (InfMasking)."""
    mask_lambda: float = 1.0
    """Final weight of the variance term of the masked loss (λ ramps up to it)."""
    lambda_epochs: int | None = None
    """Horizon of the λ ramp: λ_e = mask_lambda·min(1, (e+1)/lambda_epochs). None = the run's
    epochs (published). ``--optim.epochs 3 --method.lambda_epochs 100`` is exactly the first
    3 epochs of a 100-epoch schedule."""
    weights: list[float] | None = None
    """Per-term loss weights (mean of w·L), e.g. [1, 1, 1, 1, 5]; None = equal."""
    cross: bool = False
    """InfMasking variant: contrast each view with the masked views of the other view."""


@dataclass
class AugmentConfig:
    """Augmentations producing the two views (docs/TRIFEATURES.md, docs/METHOD.md §6)."""

    image: Literal["simclr", "crop_flip", "none"] = "simclr"
    """simclr: crop + jitter + grayscale + blur + flip; crop_flip: geometry only."""
    crop_scale: tuple[float, float] = (0.08, 1.0)
    """Area range of the random resized crop."""
    hue: float = 0.1
    """Hue jitter strength (0 keeps colours)."""
    grayscale_p: float = 0.2
    """Probability of converting a view to grayscale."""
    sequence: str = "drop+noise"
    """Sequence/vector augmentations joined by '+', or 'none'."""
    normalize: Literal["imagenet", "none"] = "imagenet"
    """Images after augmentation (training views and probe features): imagenet = per-channel
    ImageNet mean / std, as published | none."""
    vector: str | None = None
    """Augmentations of vector modalities ('noise', 'drop', 'none', ...); None = ``sequence``.
    MultiBench runs use 'noise' on vectors (static MIMIC features, V&T proprioception)."""


@dataclass
class OptimConfig:
    """AdamW, batch size and length of training."""

    lr: float = 3e-4
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay (on the parameters chosen by decay_groups)."""
    batch_size: int = 64
    """Samples per step (per process under DDP)."""
    epochs: int = 6
    """Passes over the training pairs / samples."""
    decay_groups: Literal["published", "library"] = "published"
    """Which parameters get weight decay. published: every parameter with >= 2 dimensions
    plus the CLS and mask tokens (biases and norm parameters not); library: also spare the
    CLS / mask tokens and learned position parameters."""
    adamw: Literal["auto", "foreach", "fused", "single"] = "auto"
    """AdamW's implementation: foreach (a few multi-tensor operations per step, bit-identical
    to the per-parameter loop on the CPU), fused (one CUDA kernel; the last bit of rounding
    differs), single (the per-parameter loop); auto: fused on CUDA, foreach elsewhere."""


@dataclass
class TrainerConfig:
    """Passed to the Lightning Trainer."""

    accelerator: str = "auto"
    """cpu | gpu | auto (Lightning)."""
    devices: Any = "auto"
    """Devices per node: a count, a list of ids, or auto."""
    strategy: str = "auto"
    """auto | ddp | ... (Lightning); DDP gathers negatives across ranks."""
    num_nodes: int = 1
    """Nodes for multi-node DDP."""
    precision: str = "32-true"
    """32-true | bf16-mixed (bfloat16 autocast, also on CPU; the loss stays float32) | 16-mixed."""
    num_workers: int = 0
    """DataLoader worker processes (batches are gathered in one indexing call: 0 is usually
    best)."""
    log_every_n_steps: int = 10
    """metrics.csv row every k steps."""
    finite_check_every_n_steps: int = 1
    """Check the loss for NaN / inf every k steps (1: every step, one host synchronisation
    per step). On a GPU, k > 1 lets steps queue without waiting; a non-finite loss is still
    caught (the flag accumulates on the device) and no checkpoint is written after one."""
    checkpoint_every_n_steps: int = 0
    """Also write ``checkpoints/last.ckpt`` every k optimizer steps inside an epoch (0: at
    epoch ends only). A killed run resumes from it exactly (the data order carries on from the
    next batch); for long epochs, so that a hard kill loses minutes, not an epoch."""
    data_on_device: bool = False
    """Move the training split (the uint8 image bank, the pairs' index, the other modalities)
    to the accelerator once before the first step, so that batches are gathered there with
    no host-to-device copy per step (a 224 px Trifeatures bank is ~150 MB). On a CPU run it
    changes nothing."""
    compile: bool = False
    """Compile the training step with ``torch.compile`` (the views' augmentation, the model's
    passes and the loss; forward and backward): far fewer kernel launches and host work per
    step on a GPU. The first steps are slow (compilation, ~1 min); on a CPU it rarely pays."""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"] = "default"
    """``torch.compile`` mode with ``compile``: reduce-overhead also captures the compiled
    graphs as CUDA graphs (one launch per graph; GPU only)."""
    rng_device: Literal["auto", "cpu", "accelerator"] = "auto"
    """Where each step's random numbers (augmentations, masks) are drawn: cpu (the same
    numbers on every device), accelerator (on the training device: no host-to-device copy and
    no host synchronisation per draw); auto: accelerator on a GPU, else cpu. Either way they
    are a function of (seed, step, rank): a resumed run repeats the same steps."""
    progress_bar: bool = True
    """One progress bar over the whole run (steps, ETA, loss)."""
    progress_every_n_steps: int = 200
    """With progress_bar false: one line every k steps (step, epoch, loss, steps/s, ETA)."""
    logger: Literal["csv", "tensorboard"] = "csv"
    """csv: metrics.csv (always written: the reports read it); tensorboard: also TensorBoard
    event files in the run folder's ``tensorboard/`` (needs ``pip install tensorboard``, the
    ``[tensorboard]`` extra)."""
    num_threads: int | None = None
    """CPU threads for torch and the probes. None: the cores idle when the run starts (CPU count
    minus the 1-minute load average, at least 1), printed at start."""


@dataclass
class EvalConfig:
    """Linear probes on the frozen fused features (docs/OPTIONS.md)."""

    probe_every: int = 0
    """Probe every k epochs during training (0 = only at the end) for metric-vs-epoch curves."""
    probe_at: list[int] = field(default_factory=list)
    """Also probe after these epochs (e.g. [1, 2, 5, 10]; 0 = the random initialisation), for
    curves whose probes cost too much to run every epoch."""
    probe_max_train: int = 10_000
    """At most this many probe-train samples (a seeded subset)."""
    probe_max_test: int | None = None
    """At most this many probe-test samples (a subset drawn with a fixed seed, so every run and
    every epoch is scored on the same samples); None = the whole probe-test split (the
    protocol). For quick looks and smoke runs: fewer test samples, noisier scores."""
    probe: ProbeName = "published"
    """The linear probe (docs/PROBES.md): 'published' = raw features, C chosen by held-out
    balanced accuracy over the published two-stage search, torch L-BFGS; 'standardised' = the
    library's earlier probe (standardised features, C chosen by AUROC for binary tasks)."""
    features: Literal["auto", "fused", "concat"] = "auto"
    """What the probes read: 'auto' = as published (the fused F(all) for objectives with a
    fused term, the concatenation [F({x1}), ..., F({xM})] for cross / cross_self / cmc);
    'fused' = F(all) for every method; 'concat' = the concatenation for every method."""
    class_weight: str | None = None
    """None or 'balanced' (a class-weighted probe)."""
    robust_probe: RobustProbeName = "centred"
    """The robust reading reported beside every classification probe (docs/PROBES.md): the
    published protocol (hold-out, search of C, loss, refit) on features centred ('centred') or
    standardised ('standardised') with probe-train statistics, solved in float64; 'off' = none.
    The published probe stays the headline number."""
    batch_size: int = 256
    """Samples per batch when computing features."""
    select: Literal["last", "best_valid"] = "last"
    """Which epoch the report's headline numbers come from: the last one, or the one with the
    best mean score on the held-out part of probe-train (needs ``probe_every`` >= 1). Never
    the test split; the published test-selected number is shown beside, labelled."""
    probe_augment: bool = True
    """Images: probe features of a random resized crop (scale 0.5–1) of each image, train and
    test alike, as published; False = clean images."""
    probe_C: float | None = None
    """None (as published): C is searched on the held-out part of probe-train. A number: the
    probes use that C (inverse regularisation strength) and search nothing — for smoke runs
    and tests (the tiny preset), where the search costs most of a run's time."""


@dataclass
class RunConfig:
    out_dir: str = "runs/default"
    """Run folder (config, metrics, checkpoints, reports)."""
    seed: int = 0
    """Seed of initialisation, augmentations, masks and batch order."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain YAML-safe dict of ``cfg`` (tuples as lists); ``from_dict`` reads it back."""
    d = dataclasses.asdict(cfg)
    d["augment"]["crop_scale"] = list(d["augment"]["crop_scale"])
    return d


@functools.cache
def _dict_parser() -> ArgumentParser:
    """jsonargparse parser of one ``RunConfig`` under the key ``cfg`` (types, nesting, unknown
    keys)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(RunConfig, "cfg")
    return parser


#: Keys of ``data`` that moved into ``data.trifeatures``: configs and checkpoints written
#: before keep loading (:func:`migrate`); the command line says the new name (cli.py).
MOVED_TO_TRIFEATURES = ("image_size", "biased", "self_pairs", "max_pairs", "cache_dir")


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A ``to_dict``-form config of an older version in today's form: the flat Trifeatures
    keys of ``data`` (:data:`MOVED_TO_TRIFEATURES`) move into ``data.trifeatures``. ``d`` is
    not modified. Raises ValueError when an old key and its new one disagree."""
    data = d.get("data")
    if not isinstance(data, dict) or not any(k in data for k in MOVED_TO_TRIFEATURES):
        return d
    data = dict(data)
    section = data.get("trifeatures")
    section = dict(section) if isinstance(section, dict) else {}
    for key in MOVED_TO_TRIFEATURES:
        if key not in data:
            continue
        value = data.pop(key)
        if key in section and section[key] != value:
            raise ValueError(
                f"data.{key} ({value!r}) and data.trifeatures.{key} ({section[key]!r}) disagree; "
                f"data.{key} is the old name of data.trifeatures.{key}: give only the new one"
            )
        section[key] = value
    data["trifeatures"] = section
    return {**d, "data": data}


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (jsonargparse checks every key and type);
    an unknown key or a wrongly typed value raises ValueError naming it. Configs of older
    versions are read through :func:`migrate`."""
    d = migrate(d)
    # method.name is checked against the objective registry as it is now (get_objective), not
    # against the Literal of the names registered at import: an objective registered later loads.
    method = dict(d.get("method") or {})
    name = method.pop("name", None)
    parser = _dict_parser()
    try:
        cfg = parser.instantiate(parser.parse_object({"cfg": {**d, "method": method}})).cfg
    except ArgumentError as e:
        raise ValueError(f"invalid config: {' '.join(str(e).split())}") from None
    if name is not None:
        get_objective(name)  # ValueError naming the unknown method and the valid ones
        cfg.method.name = name
    return cfg


def save_config(cfg: RunConfig, path: Path) -> None:
    from infmasking.files import write_atomic

    write_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the
    last one silently: a second ``method:`` block would train another method)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} given twice (lines {seen[key] + 1} and "
                f"{key_node.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


#: Bounds on a YAML file we read (a config is a few KB, flat and without aliases): what an
#: untrusted file can make us build (a billion-laughs alias bomb, nesting without end).
YAML_MAX_BYTES = 1 << 20
YAML_MAX_ALIASES = 100
YAML_MAX_DEPTH = 32


def describe_path(path: Path) -> str | None:
    """Why ``path`` cannot be read as a regular file, in words (None if it can): missing, a
    folder, a special file (FIFO, device, socket) — each named as what it is."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file (a part of the path is a file, not a folder)"
    except PermissionError:
        return "permission denied"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if not stat.S_ISREG(mode):
        return "a special file (FIFO, device or socket), not a regular file"
    return None


def _check_yaml_bounds(path: Path, text: str) -> None:
    """Refuse, before anything is built, YAML that expands (aliases) or nests beyond bounds."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise ValueError(f"{path}: nested deeper than {YAML_MAX_DEPTH} levels; refused")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > YAML_MAX_ALIASES:
                raise ValueError(
                    f"{path}: more than {YAML_MAX_ALIASES} aliases (*name); refused (a file "
                    "built to expand without bound)"
                )


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, duplicate keys refused; errors name the file (ValueError). Not a
    regular file, over :data:`YAML_MAX_BYTES`, more aliases than :data:`YAML_MAX_ALIASES` or
    deeper than :data:`YAML_MAX_DEPTH`: refused in one line before anything is built."""
    path = Path(path)
    if (why := describe_path(path)) is not None:
        raise ValueError(f"{path}: {why}")
    size = path.stat().st_size
    if size > YAML_MAX_BYTES:
        raise ValueError(
            f"{path}: {size} bytes; a config file holds at most {YAML_MAX_BYTES} (refused)"
        )
    try:
        text = path.read_text()
        _check_yaml_bounds(path, text)
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.constructor.ConstructorError as e:
        raise ValueError(f"{path}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None


def check_config_file(path: str | Path, extra_keys: Sequence[str] = ()) -> dict[str, Any]:
    """A ``--config`` file's options, checked as the command line's are: a non-empty mapping,
    no key twice, every key and type known (``extra_keys``: the command's own options).
    Raises ValueError naming the file, the key and what was expected."""
    data = read_yaml(path)
    if data is None:
        raise ValueError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options, got {type(data).__name__}")  # noqa: TRY004
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    run_part = {}
    for key, value in data.items():
        if key in extra_keys:
            continue
        if key not in fields:
            raise ValueError(
                f"{path}: unknown key {key!r}; valid: {', '.join([*fields, *extra_keys])}"
            )
        if isinstance(value, dict) and fields[key].default_factory is not dataclasses.MISSING:
            section = fields[key].default_factory()
            unknown = [k for k in value if not hasattr(section, k)]
            if key == "data" and unknown and unknown[0] in MOVED_TO_TRIFEATURES:
                raise ValueError(
                    f"{path}: 'data.{unknown[0]}' is now 'data.trifeatures.{unknown[0]}' "
                    f"(write data: {{trifeatures: {{{unknown[0]}: ...}}}})"
                )
            _check_section_keys(path, key, section, value)
        run_part[key] = value
    try:
        from_dict(run_part)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return data


def _check_section_keys(path: str | Path, name: str, section: Any, value: dict) -> None:
    """Every key of ``value`` is a field of the dataclass ``section`` (``name`` in messages);
    nested sections (``data.trifeatures``) are checked the same way."""
    valid = [f.name for f in dataclasses.fields(section)]
    for k, v in value.items():
        if k not in valid:
            raise ValueError(
                f"{path}: unknown key '{name}.{k}'; valid keys of {name!r}: " + ", ".join(valid)
            )
        sub = getattr(section, k)
        if isinstance(v, dict) and dataclasses.is_dataclass(sub):
            _check_section_keys(path, f"{name}.{k}", sub, v)


def load_config(path: Path) -> RunConfig:
    """The RunConfig of a YAML file (a run folder's ``config.yaml``); errors name the file."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options, got {type(data).__name__}")  # noqa: TRY004
    try:
        return from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def presets() -> dict[str, Path]:
    """Name -> YAML file of the presets shipped in the package."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


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


def validate(cfg: RunConfig) -> None:
    """Refuse a configuration that cannot train or would train something meaningless, before
    any data is loaded; every message names the option (``--section.key``), what was expected
    and what came."""
    problems: list[str] = []
    # every float, wherever it sits (a section, a list, data.options, model.encoders): finite;
    # said by the option's own check where it asks for a finite number, else in general terms
    non_finite = dict(_non_finite(to_dict(cfg)))
    said: set[str] = set()

    def need(ok: bool, option: str, expected: str, got: Any) -> None:
        if ok or (option in non_finite and "finite" not in expected):
            return
        said.add(option)
        problems.append(f"--{option} must be {expected}, got {shown(got)}")

    m, me, o, e, t = cfg.model, cfg.method, cfg.optim, cfg.eval, cfg.trainer
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
    mods = cfg.data.modalities
    need(
        mods is None or (len(mods) >= 1 and len(set(mods)) == len(mods)),
        "data.modalities",
        "null (all) or a list of distinct modality names",
        mods,
    )
    for key in ("dim", "n_layers", "n_heads", "head_hidden", "proj_dim"):
        v = getattr(m, key)
        need(isinstance(v, int) and v >= 1, f"model.{key}", "an integer >= 1", v)
    if isinstance(m.dim, int) and isinstance(m.n_heads, int) and m.dim >= 1 and m.n_heads >= 1:
        need(
            m.dim % m.n_heads == 0, "model.dim", f"divisible by --model.n_heads={m.n_heads}", m.dim
        )
    need(
        m.vector_tokens is None or (isinstance(m.vector_tokens, int) and m.vector_tokens >= 1),
        "model.vector_tokens",
        "null (automatic) or an integer >= 1",
        m.vector_tokens,
    )
    need(
        isinstance(cfg.seed, int) and 0 <= cfg.seed < 2**32,
        "seed",
        "an integer in [0, 2**32)",
        cfg.seed,
    )
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
        isinstance(t.log_every_n_steps, int) and t.log_every_n_steps >= 1,
        "trainer.log_every_n_steps",
        "an integer >= 1",
        t.log_every_n_steps,
    )
    need(0 <= me.mask_ratio < 1, "method.mask_ratio", "in [0, 1)", me.mask_ratio)
    need(me.mask_lambda >= 0, "method.mask_lambda", ">= 0", me.mask_lambda)
    need(me.name in OBJECTIVES, "method.name", f"one of {list(OBJECTIVES)}", me.name)
    if me.name in OBJECTIVES and get_objective(me.name).masked:
        need(
            isinstance(me.num_masks, int) and me.num_masks >= 1,
            "method.num_masks",
            "an integer >= 1 with InfMasking (the masked views)",
            me.num_masks,
        )
    need(
        me.lambda_epochs is None or (isinstance(me.lambda_epochs, int) and me.lambda_epochs >= 1),
        "method.lambda_epochs",
        "null (the run's epochs) or an integer >= 1",
        me.lambda_epochs,
    )
    need(o.lr > 0, "optim.lr", "> 0", o.lr)
    need(o.weight_decay >= 0, "optim.weight_decay", ">= 0", o.weight_decay)
    need(
        isinstance(o.batch_size, int) and o.batch_size >= 2,
        "optim.batch_size",
        "an integer >= 2 (contrastive negatives, batch norm)",
        o.batch_size,
    )
    need(isinstance(o.epochs, int) and o.epochs >= 1, "optim.epochs", "an integer >= 1", o.epochs)
    need(
        e.class_weight in (None, "balanced"),
        "eval.class_weight",
        "null or 'balanced'",
        e.class_weight,
    )
    need(
        e.probe in PROBES,
        "eval.probe",
        choices(PROBES),
        e.probe,
    )
    need(
        e.robust_probe in ROBUST_PROBES,
        "eval.robust_probe",
        choices(ROBUST_PROBES),
        e.robust_probe,
    )
    need(
        e.features in ("auto", "fused", "concat"),
        "eval.features",
        "'auto', 'fused' or 'concat'",
        e.features,
    )
    need(
        isinstance(e.probe_max_train, int) and e.probe_max_train >= 10,
        "eval.probe_max_train",
        "an integer >= 10 (probe-train samples)",
        e.probe_max_train,
    )
    need(
        e.probe_max_test is None or (isinstance(e.probe_max_test, int) and e.probe_max_test >= 10),
        "eval.probe_max_test",
        "null (all) or an integer >= 10 (probe-test samples)",
        e.probe_max_test,
    )
    need(
        isinstance(e.probe_every, int) and e.probe_every >= 0,
        "eval.probe_every",
        "an integer >= 0",
        e.probe_every,
    )
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
    need(
        isinstance(t.finite_check_every_n_steps, int) and t.finite_check_every_n_steps >= 1,
        "trainer.finite_check_every_n_steps",
        "an integer >= 1",
        t.finite_check_every_n_steps,
    )
    need(
        isinstance(t.progress_every_n_steps, int) and t.progress_every_n_steps >= 1,
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
        isinstance(t.checkpoint_every_n_steps, int) and t.checkpoint_every_n_steps >= 0,
        "trainer.checkpoint_every_n_steps",
        "an integer >= 0 (0: checkpoints at epoch ends only)",
        t.checkpoint_every_n_steps,
    )
    need(
        isinstance(e.batch_size, int) and e.batch_size >= 1,
        "eval.batch_size",
        "an integer >= 1",
        e.batch_size,
    )
    need(
        t.num_threads is None or (isinstance(t.num_threads, int) and t.num_threads >= 1),
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
    from infmasking.data.registry import REGISTRY

    entry = REGISTRY.get(cfg.data.name)
    if entry is not None and entry.needs_path and cfg.data.path is None:
        problems.append(entry.missing_path())
    problems += [
        f"--{option} must be a finite number, got {shown(value)}"
        for option, value in non_finite.items()
        if option not in said
    ]
    if problems:
        raise ValueError("; ".join(problems))
