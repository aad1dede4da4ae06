"""The run configuration's schema: typed dataclasses, parsed by jsonargparse (YAML files,
presets and ``--section.key value`` overrides all land here). The field docstrings are the
CLI's help. ``RunConfig`` is saved into every run folder (``config.yaml``) and every
checkpoint, so a run can be re-evaluated or resumed: as files and dicts in
:mod:`~infmasking.training.config_files`, checked by :mod:`~infmasking.training.validate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from infmasking import probe_registry
from infmasking.data.trifeatures import TrifeaturesConfig
from infmasking.objectives import OBJECTIVES
from infmasking.probe_registry import ROBUST_PROBES

METHODS = tuple(OBJECTIVES)
MethodName = Literal[METHODS]  # the registered objectives (infmasking.objectives)
RobustProbeName = Literal[ROBUST_PROBES]


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
    probe: Literal[probe_registry.PROBES] = "published"  # read when a parser is built
    """The linear probe (docs/PROBES.md): 'published' = raw features, C chosen by held-out
    balanced accuracy over the published two-stage search, torch L-BFGS; 'standardised' = the
    library's earlier probe (standardised features, C chosen by AUROC for binary tasks); or a
    probe added to infmasking.probe_registry."""
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
