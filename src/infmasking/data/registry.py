"""The datasets, in one table (:data:`REGISTRY`): name -> everything about the dataset (how
it loads from the data configuration, whether it reads ``data.path``, the file it reads and
where to obtain it). ``load_dataset(data_config)`` is what a run calls. The CLI's
``--data.name`` help, the check for a missing ``--data.path`` and the missing-file errors
(:func:`~infmasking.data.errors.require_path`) read this table, so a new dataset is its
loader's file plus one :class:`DatasetEntry` here (or one :func:`register` call;
docs/CONTRIBUTING.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infmasking.data.base import MultimodalData, Split

MULTIBENCH_URL = "https://github.com/pliang279/MultiBench"


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the registry.

    Attributes:
        name: the ``data.name`` value.
        load: ``(data_config) -> MultimodalData``; the whole data configuration is passed
            (``name``, ``path``, ``seed``, ``options``; the Trifeatures sets also read
            ``trifeatures``).
        needs_path: the dataset is read from ``data.path`` (False: generated).
        reads_modalities: the loader itself reads only ``data.modalities`` (MultiBench affect
            pickles hold every modality of every sample).
        source: the file it reads and where to obtain it, said when ``data.path`` is missing.
        where_to_get: where the data can be obtained, quoted when the file is missing.
        family: the name the loader passes to :func:`~infmasking.data.errors.require_path`
            when several datasets share one loader (the four affect sets: ``"affect"``);
            None: ``name``.
    """

    name: str
    load: Callable[[Any], MultimodalData]
    needs_path: bool = True
    reads_modalities: bool = False
    source: str = ""
    where_to_get: str = ""
    family: str | None = None

    def missing_path(self) -> str:
        """The one line for a run of this dataset without ``--data.path``."""
        where = f"{self.source}; " if self.source else ""
        return (
            f"--data.path is needed for data.name {self.name!r}: {where}"
            "files and where to obtain them in docs/BENCHMARKS.md (nothing is downloaded)"
        )


def _trifeatures(cfg) -> MultimodalData:
    from infmasking.data.trifeatures import load_trifeatures

    t = cfg.trifeatures
    return load_trifeatures(
        image_size=t.image_size,
        biased=t.biased,
        seed=cfg.seed,
        max_pairs=t.max_pairs,
        cache_dir=t.cache_dir,
        self_pairs=t.self_pairs,
        **dict(cfg.options or {}),
    )


def _trifeatures_tokens(cfg) -> MultimodalData:
    from infmasking.data.trifeatures_tokens import load_trifeatures_tokens

    try:
        t = cfg.trifeatures
        return load_trifeatures_tokens(
            biased=t.biased,
            seed=cfg.seed,
            max_pairs=t.max_pairs,
            self_pairs=t.self_pairs,
            **dict(cfg.options or {}),
        )
    except TypeError as e:
        raise ValueError(
            f"data.options: {e}; valid: n_tokens, width, spread, noise, nuisance, probe_pairs"
        ) from None


def _check_options(fn, options: dict, dataset: str) -> None:
    """``data.options`` the loader does not take: refused before reading (ValueError naming
    the option and the valid ones), not a TypeError from inside the loader."""
    import inspect

    params = inspect.signature(fn).parameters
    valid = [
        n
        for n, p in list(params.items())[1:]
        if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
    ]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise ValueError(
            f"data.options: {dataset} takes no option {unknown[0]!r}; valid: {', '.join(valid)}"
        )


def _from_file(name: str, module: str, function: str, reads_modalities: bool = False):
    """A loader ``infmasking.data.<module>.<function>(Path(data.path), **data.options)``.
    The split of a real benchmark is fixed by the dataset (option split_seed), not by the
    training seed: every seed of a comparison is scored on the same test set."""

    def load(cfg) -> MultimodalData:
        import importlib

        if cfg.path is None:
            raise ValueError(REGISTRY[name].missing_path())
        options = dict(cfg.options or {})
        if reads_modalities and cfg.modalities and "modalities" not in options:
            options["modalities"] = list(cfg.modalities)
        fn = getattr(importlib.import_module(f"infmasking.data.{module}"), function)
        _check_options(fn, options, cfg.name)
        return fn(Path(cfg.path), **options)

    return load


_AFFECT = (
    "The MultiBench affect pickles (mosi_data.pkl, mosei_senti_data.pkl, humor.pkl, "
    f"sarcasm.pkl) are linked from the MultiBench README ({MULTIBENCH_URL}, section "
    "'Affective computing'); download the file and pass its path."
)
_AFFECT_FILES = {
    "mosi": "mosi_data.pkl",
    "mosei": "mosei_senti_data.pkl",
    "ur_funny": "humor.pkl",
    "mustard": "sarcasm.pkl",
}


def _entries() -> list[DatasetEntry]:
    affect = [
        DatasetEntry(
            name,
            _from_file(name, "affect", f"load_{name}", True),
            reads_modalities=True,
            source=f"{file}, from the MultiBench README (github.com/pliang279/MultiBench, "
            "'Affective computing')",
            where_to_get=_AFFECT,
            family="affect",
        )
        for name, file in _AFFECT_FILES.items()
    ]
    return [
        DatasetEntry("trifeatures", _trifeatures, needs_path=False),
        DatasetEntry("trifeatures_tokens", _trifeatures_tokens, needs_path=False),
        *affect,
        DatasetEntry(
            "mimic",
            _from_file("mimic", "mimic", "load_mimic"),
            source="im.pk, MultiBench's MIMIC-III file (PhysioNet credentialed access, then the "
            "MultiBench README, 'Healthcare')",
            where_to_get=(
                "im.pk is the MultiBench preprocessing of MIMIC-III, a credentialed dataset: "
                "after obtaining PhysioNet access to MIMIC-III, request the file as described "
                f"in the MultiBench README ({MULTIBENCH_URL}, section 'Healthcare') and pass "
                "its path."
            ),
        ),
        DatasetEntry(
            "vision_touch",
            _from_file("vision_touch", "vision_touch", "load_vision_touch"),
            source="a folder of Vision&Touch episode .h5 files (MultiBench datasets/robotics "
            "and its download script)",
            where_to_get=(
                "The Vision&Touch episodes (one .h5 file per episode) are the MultiBench "
                f"robotics dataset: follow the robotics instructions of MultiBench "
                f"({MULTIBENCH_URL}, datasets/robotics and its download script), unpack them "
                "into one folder and pass it."
            ),
        ),
        DatasetEntry(
            "mmimdb",
            _from_file("mmimdb", "mmimdb", "load_mmimdb"),
            source="multimodal_imdb.hdf5 or the raw MM-IMDb folder (archive.org/details/mmimdb)",
            where_to_get=(
                "MM-IMDb is at https://archive.org/details/mmimdb (raw folder with split.json "
                "and per-movie json/jpeg files, and multimodal_imdb.hdf5); MultiBench "
                f"({MULTIBENCH_URL}) uses multimodal_imdb.hdf5."
            ),
        ),
        DatasetEntry(
            "npz",
            _from_file("npz", "npz", "load_npz"),
            source="your own .npz (x_<modality>, y, optional split; docs/BENCHMARKS.md "
            "'Your own data')",
            where_to_get=(
                "This is your own data file; see infmasking.data.npz for the expected format."
            ),
        ),
    ]


#: name -> :class:`DatasetEntry`: the one table of datasets.
REGISTRY: dict[str, DatasetEntry] = {e.name: e for e in _entries()}
#: The registered names, in the table's order (kept current by :func:`register`).
DATASETS = tuple(REGISTRY)


def register(entry: DatasetEntry) -> DatasetEntry:
    """Add a dataset to :data:`REGISTRY`; from then on ``data.name`` accepts its name."""
    global DATASETS
    if entry.name in REGISTRY:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    DATASETS = tuple(REGISTRY)
    return entry


def where_to_get(dataset: str) -> str:
    """The where-to-get text of the entry named ``dataset`` (by name or family); "" if none."""
    for entry in REGISTRY.values():
        if dataset in (entry.name, entry.family):
            return entry.where_to_get
    return ""


@dataclass
class _Options:
    """A data configuration from keywords (for callers without a ``DataConfig``)."""

    name: str
    path: str | None = None
    modalities: list[str] | None = None
    seed: int = 0
    trifeatures: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def load_dataset(cfg=None, path: str | None = None, **keywords) -> MultimodalData:
    """Load the dataset a data configuration names and keep only its ``modalities`` if given.

    Args:
        cfg: a :class:`~infmasking.training.config.DataConfig` (or anything with its fields),
            or a dataset name (see :data:`DATASETS`), then ``path`` and the other fields as
            keywords: ``seed``, ``modalities``, ``options``, and the Trifeatures fields
            (``image_size``, ``biased``, ``max_pairs``, ``cache_dir``, ``self_pairs``: see
            :class:`~infmasking.data.trifeatures.TrifeaturesConfig`).
    """
    if cfg is None or isinstance(cfg, str):
        from infmasking.data.trifeatures import TrifeaturesConfig

        names = {f.name for f in dataclasses.fields(TrifeaturesConfig)}
        given = {k: keywords.pop(k) for k in list(keywords) if k in names}
        unknown = sorted(set(keywords) - {"seed", "modalities", "options"})
        if unknown:
            raise TypeError(
                f"load_dataset: unknown keyword {unknown[0]!r}; valid: seed, modalities, "
                f"options, {', '.join(sorted(names))}"
            )
        cfg = _Options(cfg, path, trifeatures=TrifeaturesConfig(**given), **keywords)
    entry = REGISTRY.get(cfg.name)
    if entry is None:
        raise ValueError(f"unknown dataset {cfg.name!r}; valid: {list(REGISTRY)}")
    data = entry.load(cfg)
    return select_modalities(data, cfg.modalities) if cfg.modalities else data


def select_modalities(data: MultimodalData, modalities: list[str]) -> MultimodalData:
    """The same dataset restricted to ``modalities`` (in that order)."""
    unknown = [m for m in modalities if m not in data.modalities]
    if unknown:
        raise ValueError(
            f"data.modalities {unknown} not in dataset {data.name!r}; it has {data.modalities}"
        )

    def keep(split: Split | None) -> Split | None:
        if split is None:
            return None
        return Split(
            {m: split.inputs[m] for m in modalities},
            split.targets,
            {m: p for m, p in split.padding.items() if m in modalities},
            {m: i for m, i in split.index.items() if m in modalities},
        )

    return MultimodalData(
        data.name,
        list(modalities),
        {m: data.kinds[m] for m in modalities},
        data.tasks,
        keep(data.train),
        keep(data.probe_train),
        keep(data.probe_test),
        keep(data.valid),
        dict(data.info),
    )
