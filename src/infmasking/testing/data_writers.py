"""Writers of small files in each real dataset format, for the loader and CLI tests.

Each ``write_*`` function writes a few dozen samples in the on-disk layout users already have
(MultiBench pickles, Vision&Touch episode ``.h5`` files, MultiBench's MM-IMDb hdf5, the raw
MM-IMDb folder, an own-data ``.npz``) and returns what a test needs to check the loader
(the raw arrays, real lengths, ids). Feature sizes are small; formats are the real ones.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np

AFFECT_STEPS = 50


def affect_split(
    rng: np.random.Generator,
    n: int,
    dims: tuple[int, int, int],
    *,
    steps: int = AFFECT_STEPS,
    max_len: int = 20,
    empty_text: int = 1,
    zero_vision: int = 1,
    neg_inf: int = 3,
) -> tuple[dict, dict]:
    """One split of a MultiBench affect pickle: front-padded vision / audio / text [n, 50, d].

    The first ``empty_text`` samples have all-zero text (to be dropped), the next
    ``zero_vision`` samples all-zero vision, sample ``empty_text + zero_vision`` has an all-zero
    text row inside its real part and the label 0.0, and ``neg_inf`` audio values are -inf.
    Returns (the split dict, {"length": real lengths [n] (0 for empty text)}).
    """
    dv, da, dt = dims
    length = rng.integers(1, max_len + 1, size=n)
    length[:empty_text] = 0
    length[empty_text + zero_vision] = max(length[empty_text + zero_vision], 3)
    vision = np.zeros((n, steps, dv), np.float32)
    audio = np.zeros((n, steps, da), np.float32)
    text = np.zeros((n, steps, dt), np.float32)
    for i, L in enumerate(length):
        if L == 0:
            vision[i, -3:] = rng.normal(size=(3, dv))  # vision without text: still dropped
            continue
        vision[i, steps - L :] = rng.normal(size=(L, dv))
        audio[i, steps - L :] = rng.normal(size=(L, da))
        text[i, steps - L :] = rng.uniform(0.5, 1.5, size=(L, dt))
    vision[empty_text : empty_text + zero_vision] = 0.0
    text[empty_text + zero_vision, steps - 2] = 0.0  # a zero row after the start is real data
    real = np.argwhere(audio != 0)
    for i, t, j in real[rng.choice(len(real), size=neg_inf, replace=False)]:
        audio[i, t, j] = -np.inf
    labels = rng.uniform(-3, 3, size=(n, 1, 1))
    labels[empty_text + zero_vision] = 0.0  # a neutral score: class 0 (label > 0 is 1)
    part = {
        "vision": vision,
        "audio": audio,
        "text": text,
        "labels": labels,
        "id": np.array([[f"video_{i}", str(i)] for i in range(n)]),
    }
    return part, {"length": length}


def write_affect_pickle(
    path: str | Path,
    *,
    n: tuple[int, int, int] = (24, 8, 8),
    dims: tuple[int, int, int] = (4, 3, 6),
    seed: int = 0,
    edit=None,
) -> dict:
    """Write a MultiBench affect pickle (``mosi_data.pkl`` layout) with splits of sizes ``n``.

    ``edit(data)`` may modify the dict before it is written (for bad-input tests).
    Returns {"data": the dict written, "meta": {split: {"length": [n]}}}.
    """
    rng = np.random.default_rng(seed)
    data, meta = {}, {}
    for split, size in zip(("train", "valid", "test"), n):
        data[split], meta[split] = affect_split(rng, size, dims)
    if edit is not None:
        edit(data)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return {"data": data, "meta": meta}


def write_mimic_pickle(path: str | Path, *, n: int = 60, seed: int = 0, edit=None) -> dict:
    """Write a MultiBench MIMIC pickle (``im.pk`` layout) with ``n`` patients.

    Keys: adm_features_all [n, 5], ep_tdata [n, 24, 12] (with a few NaN / inf), y_icd9 [n, 20]
    0/1, adm_labels_all [n, 6]. Returns the dict written (before any NaN was zeroed).
    """
    rng = np.random.default_rng(seed)
    static = rng.normal(3.0, 2.0, size=(n, 5))
    series = rng.normal(-1.0, 4.0, size=(n, 24, 12))
    series[0, 0, 0] = np.nan
    series[1, 2, 3] = np.inf
    static[2, 1] = -np.inf
    y_icd9 = (rng.random((n, 20)) < 0.4).astype(np.float64)
    adm = np.zeros((n, 6))
    adm[np.arange(n), rng.integers(0, 6, size=n)] = 1.0
    data = {"adm_features_all": static, "ep_tdata": series, "y_icd9": y_icd9, "adm_labels_all": adm}
    if edit is not None:
        edit(data)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


def write_vt_episodes(
    folder: str | Path,
    *,
    episodes: int = 10,
    steps: int = 6,
    size: int = 16,
    seed: int = 0,
    channels_first: bool = False,
    contact_per_reading: bool = True,
    force_key: str = "ee_forces_continuous",
    edit=None,
) -> list[Path]:
    """Write Vision&Touch episode files ``episode_XXX.h5`` (MultiBench robotics layout).

    Each file: image uint8 [T, size, size, 3] ([T, 3, size, size] if ``channels_first``),
    ``force_key`` float [T, 50, 6], proprio [T, 8], contact [T, 50] (or [T]), plus
    depth_data / action, which the loader ignores. ``edit(index, dict)`` may modify the
    arrays of an episode before it is written. Returns the file paths.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for e in range(episodes):
        image = rng.integers(0, 256, size=(steps, size, size, 3), dtype=np.uint8)
        contact = (rng.random((steps, 50)) < 0.05).astype(np.float64)
        contact[steps // 2] = 0.0
        contact[steps // 2 + 1, 7] = 1.0
        arrays = {
            "image": image.transpose(0, 3, 1, 2).copy() if channels_first else image,
            force_key: rng.normal(0.0, 3.0, size=(steps, 50, 6)),
            "proprio": rng.normal(size=(steps, 8)),
            "contact": contact if contact_per_reading else contact.any(axis=1).astype(float),
            "depth_data": rng.random((steps, size, size, 1)).astype(np.float32),
            "action": rng.normal(size=(steps, 4)),
        }
        if edit is not None:
            edit(e, arrays)
        path = folder / f"episode_{e:03d}.h5"
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
        paths.append(path)
    return paths


GENRE_NAMES = (
    "Drama",
    "Comedy",
    "Romance",
    "Thriller",
    "Crime",
    "Action",
    "Adventure",
    "Horror",
    "Documentary",
    "Mystery",
    "Sci-Fi",
    "Music",
    "Fantasy",
    "Family",
    "Biography",
    "War",
    "History",
    "Animation",
    "Musical",
    "Western",
    "Sport",
    "Short",
    "Film-Noir",
)


def write_mmimdb_hdf5(
    path: str | Path,
    *,
    bounds: tuple[int, int, int] = (24, 32, 40),
    d_text: int = 8,
    d_image: int = 12,
    images: bool = False,
    seed: int = 0,
    edit=None,
) -> dict:
    """Write a MultiBench-layout ``multimodal_imdb.hdf5`` with ``bounds[-1]`` movies.

    Keys: features [N, d_text], vgg_features [N, d_image] (and images uint8 [N, 3, 16, 10]
    if ``images``), genres 0/1 [N, 23], imdb_ids. Returns the arrays written.
    """
    rng = np.random.default_rng(seed)
    n = bounds[-1]
    arrays = {
        "features": rng.normal(size=(n, d_text)).astype(np.float32),
        "vgg_features": rng.random((n, d_image)).astype(np.float32),
        "genres": (rng.random((n, 23)) < 0.2).astype(np.int8),
        "imdb_ids": np.array([f"{i:07d}" for i in range(n)], dtype="S7"),
    }
    if images:
        arrays["images"] = rng.integers(0, 256, size=(n, 3, 16, 10), dtype=np.uint8)
    if edit is not None:
        edit(arrays)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return arrays


def write_mmimdb_raw(
    folder: str | Path,
    *,
    n: tuple[int, int, int] = (20, 6, 8),
    d_text: int = 8,
    d_image: int = 12,
    features: bool = True,
    nested: bool = True,
    seed: int = 0,
) -> dict:
    """Write a raw MM-IMDb folder: split.json (train / dev / test), ``{id}.json`` (genres,
    plot) and an empty ``{id}.jpeg`` per movie under ``dataset/`` (or the folder itself if not
    ``nested``), and ``features.npz`` (ids, text, image; rows shuffled) if ``features``.

    Returns {"ids": {split: [ids]}, "genres": {id: [names]}, "text": {id: row},
    "image": {id: row}}.
    """
    rng = np.random.default_rng(seed)
    root = Path(folder)
    movies = root / "dataset" if nested else root
    movies.mkdir(parents=True, exist_ok=True)
    all_ids = [f"{i:07d}" for i in rng.choice(10**6, size=sum(n), replace=False)]
    ids = {
        "train": all_ids[: n[0]],
        "dev": all_ids[n[0] : n[0] + n[1]],
        "test": all_ids[n[0] + n[1] :],
    }
    (root / "split.json").write_text(json.dumps(ids))
    genres = {}
    for k, movie in enumerate(all_ids):
        names = [str(g) for g in rng.choice(GENRE_NAMES, size=rng.integers(1, 4), replace=False)]
        if k % 5 == 0:
            names.append("Reality-TV")  # not one of the 23: ignored
        if k % 7 == 0:
            names = [g.lower() for g in names]  # matched case-insensitively
        genres[movie] = names
        meta = {"genres": names, "plot": [f"plot of movie {movie}"], "title": movie}
        (movies / f"{movie}.json").write_text(json.dumps(meta))
        (movies / f"{movie}.jpeg").write_bytes(b"")
    text = {m: rng.normal(size=d_text).astype(np.float32) for m in all_ids}
    image = {m: rng.normal(size=d_image).astype(np.float32) for m in all_ids}
    if features:
        order = list(rng.permutation(all_ids)) + ["9999999"]  # an extra id is harmless
        text["9999999"] = np.zeros(d_text, np.float32)
        image["9999999"] = np.zeros(d_image, np.float32)
        np.savez(
            root / "features.npz",
            ids=np.array(order),
            text=np.stack([text[m] for m in order]),
            image=np.stack([image[m] for m in order]),
        )
    return {"ids": ids, "genres": genres, "text": text, "image": image}


def write_npz(
    path: str | Path,
    *,
    n: int = 40,
    seed: int = 0,
    split: bool = True,
    image: bool = True,
    edit=None,
) -> dict:
    """Write an own-data ``.npz``: x_tab [n, 5] (vector), x_seq [n, 7, 3] (sequence) with
    mask_seq [n, 7] (1 = real step; sample 0 has no real step), x_img uint8 [n, 3, 8, 8]
    (if ``image``), y int [n] in 0..2, y_attrs 0/1 [n, 4] (multilabel), y_value float [n]
    (regression) and, if ``split``, split [n] of "train" / "valid" / "test".
    ``edit(arrays)`` may modify the dict before it is written. Returns the arrays written.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 8, size=n)
    lengths[0] = 0
    mask = (np.arange(7)[None, :] < lengths[:, None]).astype(np.int8)
    arrays = {
        "x_tab": rng.normal(size=(n, 5)),
        "x_seq": rng.normal(size=(n, 7, 3)) * mask[:, :, None],
        "mask_seq": mask,
    }
    if image:
        arrays["x_img"] = rng.integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)
    arrays["y"] = rng.integers(0, 3, size=n)
    arrays["y_attrs"] = (rng.random((n, 4)) < 0.5).astype(np.int64)
    arrays["y_value"] = rng.normal(size=n)
    if split:
        names = np.array(["train"] * n, dtype="<U5")
        names[n - 8 : n - 4] = "valid"
        names[n - 4 :] = "test"
        arrays["split"] = names
    if edit is not None:
        edit(arrays)
    np.savez(path, **arrays)
    return arrays
