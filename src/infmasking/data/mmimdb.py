"""MM-IMDb (movie plot + poster -> 23 genres, multilabel), from either of its two releases.

(a) MultiBench's ``multimodal_imdb.hdf5`` (:func:`load_mmimdb_hdf5`):

- ``"features"``: float [N, 300], text features (averaged word2vec of the plot);
- ``"vgg_features"``: float [N, 4096], image features (VGG-16 of the poster), or
  ``"images"``: uint8 [N, 3, 256, 160] posters (pass ``image_key="images"``);
- ``"genres"``: 0/1 [N, 23];
- split by row index, as MultiBench: train [0, 15552), valid [15552, 18160),
  test [18160, 25959).

(b) The raw folder of https://archive.org/details/mmimdb (:func:`load_mmimdb_raw`):
``split.json`` ({"train": [ids], "dev": [ids], "test": [ids]}) and one ``{id}.json`` per movie
(with a "genres" list of names and a "plot") beside ``{id}.jpeg``, in ``<root>/dataset/`` (as
archived) or in ``<root>/`` itself. The paper encodes plot and poster with a frozen CLIP; so
that this runs on a CPU without CLIP, the loader reads PRECOMPUTED features from
``<root>/features.npz`` (see :data:`FEATURES_HELP` for its format and how to produce it).
Genres are matched case-insensitively to :data:`MMIMDB_GENRES`; other genre names (e.g.
"Adult", "News") are ignored and counted in ``info["ignored_genres"]``.

Both give modalities "text" and "image" (vectors; "image" is an image with
``image_key="images"``) and the task "genres" (multilabel, 23 classes, float 0/1 [N, 23]).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from infmasking.files import read_json

from .base import MultimodalData, Split, Task
from .errors import (
    DatasetError,
    DatasetNotFoundError,
    check_array,
    check_binary,
    check_nonempty,
    check_rows,
    listed,
    open_npz,
    read_array,
    require_key,
    require_path,
)

#: MultiBench's row ranges: train [0, 15552), valid [15552, 18160), test [18160, 25959).
MULTIBENCH_BOUNDS = (15552, 18160, 25959)

#: The 23 MM-IMDb genres, most frequent first (the label columns of the raw-folder loader).
MMIMDB_GENRES = (
    "drama",
    "comedy",
    "romance",
    "thriller",
    "crime",
    "action",
    "adventure",
    "horror",
    "documentary",
    "mystery",
    "sci-fi",
    "music",
    "fantasy",
    "family",
    "biography",
    "war",
    "history",
    "animation",
    "musical",
    "western",
    "sport",
    "short",
    "film-noir",
)

FEATURES_HELP = (
    "features.npz must hold 'ids' (str [N], the movie ids of split.json), 'text' (float "
    "[N, d_t], one feature vector per plot) and 'image' (float [N, d_i], one per poster). "
    "Produce it once with any frozen encoder, e.g. CLIP: for each id read dataset/{id}.json "
    "(first entry of 'plot') and dataset/{id}.jpeg, encode them, and save with "
    "numpy.savez(root / 'features.npz', ids=numpy.array(ids), text=T, image=I)."
)


def _split_rows(n: int, bounds: Sequence[int], file: Path) -> dict[str, slice]:
    if len(bounds) != 3 or not 0 < bounds[0] < bounds[1] < bounds[2]:
        raise ValueError(f"bounds must be 3 increasing positive row indices, got {bounds}")
    if n < bounds[2]:
        raise DatasetError(
            f"{file}: the arrays have {n} rows, expected at least {bounds[2]} for the split "
            f"train [0, {bounds[0]}), valid [{bounds[0]}, {bounds[1]}), test [{bounds[1]}, "
            f"{bounds[2]}) (pass bounds=... for a different file)."
        )
    return {
        "train": slice(0, bounds[0]),
        "valid": slice(bounds[0], bounds[1]),
        "test": slice(bounds[1], bounds[2]),
    }


def _dataset(
    inputs: dict[str, np.ndarray], genres: np.ndarray, rows: dict, kinds: dict, info: dict
) -> MultimodalData:
    splits = {
        name: Split(
            {m: torch.from_numpy(np.ascontiguousarray(x[r])) for m, x in inputs.items()},
            {"genres": torch.from_numpy(np.ascontiguousarray(genres[r]))},
        )
        for name, r in rows.items()
    }
    k = genres.shape[1]
    return MultimodalData(
        name="mmimdb",
        modalities=["text", "image"],
        kinds=kinds,
        tasks=[Task("genres", "multilabel", k, f"{k} movie genres (multilabel)")],
        train=splits["train"],
        probe_train=splits["train"],
        probe_test=splits["test"],
        valid=splits.get("valid"),
        info=info,
    )


def load_mmimdb_hdf5(
    path: str | Path,
    *,
    text_key: str = "features",
    image_key: str = "vgg_features",
    bounds: Sequence[int] = MULTIBENCH_BOUNDS,
) -> MultimodalData:
    """Load MultiBench's ``multimodal_imdb.hdf5``.

    Args:
        path: the hdf5 file.
        text_key: the text-feature dataset ([N, d_t]).
        image_key: "vgg_features" (vector [N, d_i]) or "images" (image [N, 3, H, W]).
        bounds: the end rows of train, valid and test (MultiBench's by default).

    Returns:
        A :class:`MultimodalData`: "text" float32 [N, d_t]; "image" float32 [N, d_i]
        (or uint8 [N, 3, H, W]); target "genres" float32 0/1 [N, 23].

    Raises:
        DatasetNotFoundError: the file does not exist (the message says where to get it).
        DatasetError: a missing key, a wrong shape or dtype, NaN or non-0/1 genres, or too
            few rows for ``bounds``.
    """
    p = require_path(path, "mmimdb")
    try:
        h5 = h5py.File(p, "r")
    except OSError as err:
        raise DatasetError(f"{p}: not a readable HDF5 file ({err}).") from err
    with h5:
        text = read_array(
            h5, text_key, p, shape=(None, None), dtype="float", what="text features [N, d_t]"
        )
        image_ds = require_key(h5, image_key, p)
        as_image = len(image_ds.shape) == 4
        image = check_array(
            image_ds,
            p,
            image_key,
            shape=(None, 3, None, None) if as_image else (None, None),
            dtype="numeric" if as_image else "float",
            what="posters [N, 3, H, W]" if as_image else "image features [N, d_i]",
        )
        genres = read_array(
            h5, "genres", p, shape=(None, None), dtype="numeric", what="0/1 genres [N, 23]"
        )
    n = check_rows({text_key: text, image_key: image, "genres": genres}, p)
    rows = _split_rows(n, bounds, p)
    check_binary(genres[: bounds[2]], p, "genres")
    if not (as_image and image.dtype == np.uint8):  # images stay uint8, features float32
        image = image.astype(np.float32)
    return _dataset(
        {"text": text.astype(np.float32), "image": image},
        genres.astype(np.float32),
        rows,
        {"text": "vector", "image": "image" if as_image else "vector"},
        {
            "path": str(p),
            "format": "multibench_hdf5",
            "bounds": tuple(bounds),
            "unused_rows": n - bounds[2],
        },
    )


def _movie_json(root: Path, movie_id: str) -> Path:
    for folder in (root / "dataset", root):
        f = folder / f"{movie_id}.json"
        if f.is_file():
            return f
    raise DatasetNotFoundError(
        f"mmimdb data: no metadata file for movie '{movie_id}' listed in {root / 'split.json'}"
        f": looked for {root / 'dataset' / f'{movie_id}.json'} and {root / f'{movie_id}.json'}."
        " The raw MM-IMDb folder (https://archive.org/details/mmimdb) has one per movie."
    )


def _features_file(root: Path, features: str | Path) -> Path:
    """The features file (relative to ``root`` unless absolute); missing -> how to make it."""
    feat_file = Path(features) if Path(features).is_absolute() else root / features
    if not feat_file.is_file():
        raise DatasetNotFoundError(
            f"mmimdb data: precomputed features not found at '{feat_file}'. {FEATURES_HELP}"
        )
    return feat_file


def _split_ids(split_file: Path) -> dict[str, list[str]]:
    """Movie ids per split from ``split.json`` ("dev" becomes "valid", and may be absent)."""
    try:
        split_ids = read_json(split_file)
    except ValueError as err:
        raise DatasetError(str(err)) from None
    if not isinstance(split_ids, dict):
        raise DatasetError(
            f"{split_file}: expected a dict of id lists, found {type(split_ids).__name__}."
        )
    names = {"train": "train", "valid": "dev", "test": "test"}
    ids = {
        s: [str(i) for i in require_key(split_ids, k, split_file)]
        for s, k in names.items()
        if s != "valid" or k in split_ids
    }
    for s, lst in ids.items():
        check_nonempty(len(lst), split_file, names[s])
    return ids


def _read_features(feat_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids str [N], text float [N, d_t], image float [N, d_i]) from ``features.npz``."""
    npz = open_npz(feat_file)  # every member's claimed size checked against the file
    with npz:
        feat_ids = read_array(
            npz, "ids", feat_file, shape=(None,), dtype="string", what="movie ids [N]"
        )
        text = read_array(
            npz, "text", feat_file, shape=(None, None), dtype="float", what="text features [N, d_t]"
        )
        image = read_array(
            npz,
            "image",
            feat_file,
            shape=(None, None),
            dtype="float",
            what="image features [N, d_i]",
        )
    check_rows({"ids": feat_ids, "text": text, "image": image}, feat_file)
    return feat_ids, text, image


def _genre_labels(
    root: Path, wanted: list[str], genres: Sequence[str]
) -> tuple[np.ndarray, Counter]:
    """(0/1 labels float32 [len(wanted), len(genres)], count of each unknown genre name)."""
    column = {g.lower(): j for j, g in enumerate(genres)}
    ignored: Counter = Counter()
    labels = np.zeros((len(wanted), len(genres)), dtype=np.float32)
    for r, movie in enumerate(wanted):
        f = _movie_json(root, movie)
        try:
            meta = read_json(f)
        except ValueError as err:
            raise DatasetError(str(err)) from None
        names_ = require_key(meta, "genres", f)
        if not isinstance(names_, list):
            raise DatasetError(
                f"{f}: key 'genres' should be a list of genre names, found {type(names_).__name__}."
            )
        for g in names_:
            j = column.get(str(g).lower())
            if j is None:
                ignored[str(g)] += 1
            else:
                labels[r, j] = 1.0
    return labels, ignored


def load_mmimdb_raw(
    path: str | Path,
    *,
    features: str | Path = "features.npz",
    genres: Sequence[str] = MMIMDB_GENRES,
) -> MultimodalData:
    """Load the raw MM-IMDb folder with precomputed text and image features.

    Args:
        path: the folder holding ``split.json``.
        features: the features file, relative to ``path`` unless absolute (see
            :data:`FEATURES_HELP`).
        genres: the label columns (matched case-insensitively).

    Returns:
        A :class:`MultimodalData`: "text" float32 [N, d_t], "image" float32 [N, d_i],
        target "genres" float32 0/1 [N, len(genres)]; splits train / dev (as valid) / test.

    Raises:
        DatasetNotFoundError: the folder, ``split.json``, ``features.npz`` (the message says
            how to produce it) or a movie's json file is missing.
        DatasetError: a missing key, a wrong shape or dtype, ids without features, or an empty
            split.
    """
    root = require_path(path, "mmimdb", kind="dir")
    split_file = require_path(root / "split.json", "mmimdb")
    feat_file = _features_file(root, features)
    ids = _split_ids(split_file)
    feat_ids, text, image = _read_features(feat_file)
    row_of = {str(i): r for r, i in enumerate(feat_ids)}
    wanted = [i for lst in ids.values() for i in lst]
    missing = [i for i in wanted if i not in row_of]
    if missing:
        raise DatasetError(
            f"{feat_file}: key 'ids' lacks {len(missing)} movie ids of {split_file} "
            f"(e.g. {listed(missing)}); expected features for every listed movie. " + FEATURES_HELP
        )
    labels, ignored = _genre_labels(root, wanted, genres)

    order = np.array([row_of[i] for i in wanted], dtype=np.int64)
    starts = np.cumsum([0] + [len(v) for v in ids.values()])
    rows = {s: slice(int(a), int(b)) for s, a, b in zip(ids, starts[:-1], starts[1:])}
    return _dataset(
        {"text": text[order].astype(np.float32), "image": image[order].astype(np.float32)},
        labels,
        rows,
        {"text": "vector", "image": "vector"},
        {
            "path": str(root),
            "format": "raw_folder",
            "features": str(feat_file),
            "genres": list(genres),
            "ignored_genres": dict(ignored),
            "ids": {s: v for s, v in ids.items()},
        },
    )


def load_mmimdb(path: str | Path, **options) -> MultimodalData:
    """MM-IMDb from an hdf5 file, a folder holding ``multimodal_imdb.hdf5``, or the raw
    folder (``split.json``): dispatches to :func:`load_mmimdb_hdf5` or
    :func:`load_mmimdb_raw` with ``options``."""
    p = require_path(path, "mmimdb", kind="any")
    if p.is_file():
        return load_mmimdb_hdf5(p, **options)
    if (p / "split.json").is_file():
        return load_mmimdb_raw(p, **options)
    if (p / "multimodal_imdb.hdf5").is_file():
        return load_mmimdb_hdf5(p / "multimodal_imdb.hdf5", **options)
    raise DatasetNotFoundError(
        f"mmimdb data: '{p}' holds neither split.json (raw MM-IMDb folder) nor "
        "multimodal_imdb.hdf5 (MultiBench). MM-IMDb is at https://archive.org/details/mmimdb."
    )
