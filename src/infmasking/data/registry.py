"""Dataset names -> loaders. ``load_dataset(name, path, ...)`` is what the CLI calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from infmasking.data.base import MultimodalData, Split


def _trifeatures(path, *, image_size, biased, max_pairs, cache_dir, seed, self_pairs, **options):
    from infmasking.data.trifeatures import load_trifeatures

    return load_trifeatures(
        image_size=image_size,
        biased=biased,
        seed=seed,
        max_pairs=max_pairs,
        cache_dir=cache_dir,
        self_pairs=self_pairs,
        **options,
    )


def _trifeatures_tokens(path, *, biased, max_pairs, seed, self_pairs, **options):
    from infmasking.data.trifeatures_tokens import load_trifeatures_tokens

    try:
        return load_trifeatures_tokens(
            biased=biased, seed=seed, max_pairs=max_pairs, self_pairs=self_pairs, **options
        )
    except TypeError as e:
        raise ValueError(
            f"data.options: {e}; valid: n_tokens, width, spread, noise, nuisance, probe_pairs"
        ) from None


def _loaders() -> dict[str, Callable[..., MultimodalData]]:
    from infmasking.data import affect, mimic, mmimdb, npz, vision_touch

    def path_loader(fn):
        # The split of a real benchmark is fixed by the dataset (option split_seed), not by the
        # training seed: every seed of a comparison is scored on the same test set.
        def load(path, **options):
            if path is None:
                raise ValueError("this dataset needs data.path (--data.path FILE_OR_DIR)")
            return fn(Path(path), **options)

        return load

    return {
        "mosi": path_loader(affect.load_mosi),
        "mosei": path_loader(affect.load_mosei),
        "ur_funny": path_loader(affect.load_ur_funny),
        "mustard": path_loader(affect.load_mustard),
        "mimic": path_loader(mimic.load_mimic),
        "vision_touch": path_loader(vision_touch.load_vision_touch),
        "mmimdb": path_loader(mmimdb.load_mmimdb),
        "npz": path_loader(npz.load_npz),
    }


DATASETS = (
    "trifeatures",
    "trifeatures_tokens",
    "mosi",
    "mosei",
    "ur_funny",
    "mustard",
    "mimic",
    "vision_touch",
    "mmimdb",
    "npz",
)
AFFECT = ("mosi", "mosei", "ur_funny", "mustard")


def load_dataset(
    name: str,
    path: str | None = None,
    *,
    modalities: list[str] | None = None,
    seed: int = 0,
    image_size: int = 64,
    biased: bool = True,
    max_pairs: int = 10_000,
    cache_dir: str | None = None,
    self_pairs: bool = True,
    options: dict[str, Any] | None = None,
) -> MultimodalData:
    """Load dataset ``name`` (see :data:`DATASETS`) and keep only ``modalities`` if given."""
    options = dict(options or {})
    if name == "trifeatures":
        data = _trifeatures(
            path,
            image_size=image_size,
            biased=biased,
            max_pairs=max_pairs,
            cache_dir=cache_dir,
            seed=seed,
            self_pairs=self_pairs,
            **options,
        )
    elif name == "trifeatures_tokens":
        data = _trifeatures_tokens(
            path, biased=biased, max_pairs=max_pairs, seed=seed, self_pairs=self_pairs, **options
        )
    else:
        loaders = _loaders()
        if name not in loaders:
            raise ValueError(f"unknown dataset {name!r}; valid: {list(DATASETS)}")
        if name in AFFECT and modalities and "modalities" not in options:
            options["modalities"] = list(modalities)  # the affect loader reads only what is asked
        data = loaders[name](path, **options)
    return select_modalities(data, modalities) if modalities else data


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
