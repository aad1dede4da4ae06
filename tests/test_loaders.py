"""Dataset loaders on small files written in each real format
(infmasking/testing/data_writers.py)."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from infmasking.data.affect import load_affect, load_mosi, load_mustard, load_ur_funny
from infmasking.data.base import MultimodalData
from infmasking.data.errors import DatasetError, DatasetNotFoundError
from infmasking.data.mimic import load_mimic
from infmasking.data.mmimdb import (
    MMIMDB_GENRES,
    load_mmimdb,
    load_mmimdb_hdf5,
    load_mmimdb_raw,
)
from infmasking.data.npz import load_npz
from infmasking.data.splits import seeded_split
from infmasking.data.vision_touch import load_vision_touch
from infmasking.testing import data_writers as w

SPLITS = ("train", "valid", "test")
MMIMDB_BOUNDS = (24, 32, 40)


def raises(exc, *fragments: str):
    """pytest.raises that also checks every fragment (file, key, ...) is in the message."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *args):
            out = self.ctx.__exit__(*args)
            msg = str(self.info.value)
            for frag in fragments:
                assert str(frag) in msg, f"{frag!r} not in error message: {msg}"
            return out

    return _Check()


def splits_of(data: MultimodalData) -> dict:
    return {"train": data.train, "valid": data.valid, "test": data.probe_test}


def check_contract(data: MultimodalData) -> None:
    """Shared checks: probe_train is the train split, every split yields consistent batches."""
    assert data.probe_train is data.train
    for split in splits_of(data).values():
        if split is None:
            continue
        batch = split[torch.arange(min(3, len(split)))]
        for m in data.modalities:
            x = batch.inputs[m]
            if data.kinds[m] == "image":
                assert x.dim() == 4
            elif data.kinds[m] == "sequence":
                assert x.dim() == 3 and x.dtype == torch.float32
                if m in batch.padding:
                    assert batch.padding[m].dtype == torch.bool
                    assert batch.padding[m].shape == x.shape[:2]
                    assert (~batch.padding[m]).any(dim=1).all()  # never all padded
            else:
                assert x.dim() == 2 and x.dtype == torch.float32
        for task in data.tasks:
            y = batch.targets[task.name]
            if task.kind == "classification":
                assert y.dtype == torch.long and y.dim() == 1
            else:
                assert y.dtype == torch.float32 and y.dim() == 2


# ----------------------------------------------------------------------------- affect


@pytest.fixture
def affect_file(tmp_path):
    path = tmp_path / "mosi_data.pkl"
    return path, w.write_affect_pickle(path)


def test_affect_three_modalities_trimmed_and_masked(affect_file):
    path, written = affect_file
    data = load_affect(path, modalities=("vision", "audio", "text"))
    check_contract(data)
    assert data.name == "mosi"
    assert data.modalities == ["vision", "audio", "text"]
    assert data.kinds == dict.fromkeys(data.modalities, "sequence")
    assert [t.name for t in data.tasks] == ["label"] and data.tasks[0].num_classes == 2
    longest = max(int(written["meta"][s]["length"].max()) for s in SPLITS)
    for split_name, split in splits_of(data).items():
        raw = written["data"][split_name]
        length = written["meta"][split_name]["length"]
        kept = np.nonzero(length > 0)[0]  # all-zero text samples are dropped
        assert len(split) == len(kept)
        for m, d in zip(data.modalities, (4, 3, 6)):
            x, pad = split.inputs[m], split.padding[m]
            assert x.shape == (len(kept), longest, d)
            expected_pad = np.arange(longest)[None, :] >= length[kept][:, None]
            np.testing.assert_array_equal(pad.numpy(), expected_pad)
            for row, i in enumerate(kept):  # real steps first, in order; zeros after
                real = raw[m][i, 50 - length[i] :].astype(np.float32)
                real[~np.isfinite(real)] = 0.0
                np.testing.assert_array_equal(x[row, : length[i]].numpy(), real)
                assert not x[row, length[i] :].any()


def test_affect_neg_inf_zeroed_and_empty_text_dropped(affect_file):
    path, written = affect_file
    data = load_affect(path, modalities=("vision", "audio", "text"))
    for split_name, split in splits_of(data).items():
        assert torch.isfinite(split.inputs["audio"]).all()
        assert np.isneginf(written["data"][split_name]["audio"]).sum() == 3
        assert data.info["nonfinite_zeroed"][split_name] == 3
        assert data.info["dropped_empty_text"][split_name] == 1
        assert split.inputs["text"].flatten(1).any(dim=1).all()


def test_affect_zero_text_row_inside_real_part_is_not_padding(affect_file):
    path, written = affect_file
    data = load_affect(path)
    length = written["meta"]["train"]["length"]
    row = 1  # sample 2 of the file (sample 0 is dropped): a zero text row at step 48
    assert (~data.train.padding["text"][row]).sum() == length[2]
    assert not data.train.inputs["text"][row, length[2] - 2].any()


def test_affect_labels_binary_and_score(affect_file):
    path, written = affect_file
    data = load_affect(path, score_task=True)
    assert [(t.name, t.kind) for t in data.tasks] == [
        ("label", "classification"),
        ("score", "regression"),
    ]
    for split_name, split in splits_of(data).items():
        length = written["meta"][split_name]["length"]
        raw = written["data"][split_name]["labels"].reshape(-1)[length > 0]
        np.testing.assert_array_equal(split.targets["label"].numpy(), (raw > 0).astype(int))
        assert set(split.targets["label"].unique().tolist()) <= {0, 1}
        np.testing.assert_allclose(split.targets["score"][:, 0].numpy(), raw, rtol=1e-6)


def test_affect_two_modalities_default_and_names(tmp_path, affect_file):
    path, _ = affect_file
    data = load_affect(path)
    assert data.modalities == ["vision", "text"] and "audio" not in data.train.inputs
    humor = tmp_path / "humor.pkl"
    humor.write_bytes(path.read_bytes())
    assert load_affect(humor).name == "ur_funny"
    assert load_ur_funny(path).name == "ur_funny"
    assert load_mustard(path).name == "mustard"
    assert load_mosi(path, modalities=("audio", "text")).modalities == ["audio", "text"]
    with pytest.raises(ValueError):
        load_affect(path, modalities=("vision",))
    with pytest.raises(ValueError):
        load_affect(path, modalities=("vision", "smell"))


def test_affect_align_each_keeps_one_step_for_all_zero_modality(affect_file):
    path, written = affect_file
    data = load_affect(path, align="each")
    check_contract(data)
    # file sample 1 has all-zero vision: it keeps exactly one (zero) real step
    pad = data.train.padding["vision"][0]
    assert (~pad).sum() == 1 and not pad[0]
    assert not data.train.inputs["vision"][0].any()
    # text real lengths are still the text's
    length = written["meta"]["train"]["length"]
    assert (~data.train.padding["text"][0]).sum() == length[1]


def test_affect_missing_file_says_where_to_get_it(tmp_path):
    missing = tmp_path / "mosi_data.pkl"
    with raises(DatasetNotFoundError, str(missing), "github.com/pliang279/MultiBench"):
        load_affect(missing)
    with pytest.raises(FileNotFoundError):
        load_affect(missing)


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda d: d["valid"].pop("text"), ["'valid/text'"]),
        (lambda d: d.pop("test"), ["'test'"]),
        (
            lambda d: d["train"].update(text=d["train"]["text"][:, :, 0]),
            ["'train/text'", "shape", "(N, L, *)"],
        ),
        (
            lambda d: d["train"].update(vision=d["train"]["vision"][:-1]),
            ["number of samples", "'train/vision'"],
        ),
        (
            lambda d: d["test"].update(audio=d["test"]["audio"][:, :, :2]),
            ["'test/audio'", "feature size 2", "expected 3"],
        ),
        (
            lambda d: d["train"].update(text=d["train"]["text"].astype(str)),
            ["'train/text'", "dtype", "numeric"],
        ),
        (lambda d: d["valid"]["labels"].__setitem__((3, 0, 0), np.nan), ["'valid/labels'", "NaN"]),
        (lambda d: d["test"].update(labels=np.zeros((8, 2))), ["'test/labels'", "(8, 2)"]),
        (
            lambda d: d["test"]["text"].__setitem__(slice(None), 0.0),
            ["split 'test' has no samples", "all-zero text"],
        ),
    ],
    ids=[
        "missing-modality",
        "missing-split",
        "wrong-ndim",
        "row-mismatch",
        "dim-mismatch",
        "wrong-dtype",
        "nan-label",
        "label-shape",
        "empty-split",
    ],
)
def test_affect_bad_input(tmp_path, edit, fragments):
    path = tmp_path / "mosi_data.pkl"
    w.write_affect_pickle(path, edit=edit)
    with raises(DatasetError, str(path), *fragments):
        load_affect(path, modalities=("vision", "audio", "text"))


def test_affect_not_a_pickle(tmp_path):
    path = tmp_path / "sarcasm.pkl"
    path.write_text("not a pickle")
    with raises(DatasetError, str(path), "pickle"):
        load_affect(path)


# ----------------------------------------------------------------------------- MIMIC


@pytest.fixture
def mimic_file(tmp_path):
    path = tmp_path / "im.pk"
    return path, w.write_mimic_pickle(path)


def test_mimic_shapes_tasks_and_split(mimic_file):
    path, raw = mimic_file
    data = load_mimic(path, mortality=True)
    check_contract(data)
    assert data.modalities == ["static", "timeseries"]
    assert data.kinds == {"static": "vector", "timeseries": "sequence"}
    assert data.input_shape("static") == (5,) and data.input_shape("timeseries") == (24, 12)
    assert [(t.name, t.num_classes) for t in data.tasks] == [("icd9_7", 2), ("mortality", 6)]
    idx = data.info["indices"]
    assert [len(idx[s]) for s in SPLITS] == [48, 6, 6]
    assert len(np.intersect1d(idx["train"], idx["test"])) == 0
    assert len(np.intersect1d(idx["valid"], idx["test"])) == 0
    assert np.array_equal(np.sort(np.concatenate(list(idx.values()))), np.arange(60))
    for s, split in splits_of(data).items():
        np.testing.assert_array_equal(
            split.targets["icd9_7"].numpy(), raw["y_icd9"][idx[s], 7].astype(int)
        )
        np.testing.assert_array_equal(
            split.targets["mortality"].numpy(), raw["adm_labels_all"][idx[s]].argmax(axis=1)
        )
    assert not data.train.padding


def test_mimic_zscore_uses_train_statistics(mimic_file):
    path, raw = mimic_file
    data = load_mimic(path)
    idx = data.info["indices"]
    static = np.nan_to_num(raw["adm_features_all"], nan=0.0, posinf=0.0, neginf=0.0)
    series = np.nan_to_num(raw["ep_tdata"], nan=0.0, posinf=0.0, neginf=0.0)
    mean, std = static[idx["train"]].mean(0), static[idx["train"]].std(0)
    np.testing.assert_allclose(
        data.probe_test.inputs["static"].numpy(),
        (static[idx["test"]] - mean) / std,
        rtol=1e-4,
        atol=1e-5,
    )
    smean = series[idx["train"]].mean((0, 1))
    sstd = series[idx["train"]].std((0, 1))
    np.testing.assert_allclose(
        data.valid.inputs["timeseries"].numpy(),
        (series[idx["valid"]] - smean) / sstd,
        rtol=1e-4,
        atol=1e-5,
    )
    train = data.train.inputs["timeseries"].numpy()
    np.testing.assert_allclose(train.mean((0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std((0, 1)), 1.0, atol=1e-4)
    # statistics of the whole file would give a different result on the test samples
    all_mean = static.mean(0)
    assert not np.allclose(
        data.probe_test.inputs["static"].numpy(),
        (static[idx["test"]] - all_mean) / static.std(0),
        atol=1e-3,
    )
    assert all(
        torch.isfinite(s.inputs[m]).all() for s in splits_of(data).values() for m in data.modalities
    )


def test_mimic_split_seeded_and_equal_to_multibench(mimic_file):
    path, _ = mimic_file
    a, b = load_mimic(path), load_mimic(path)
    for s in SPLITS:
        np.testing.assert_array_equal(a.info["indices"][s], b.info["indices"][s])
    c = load_mimic(path, split_seed=3)
    assert not np.array_equal(a.info["indices"]["test"], c.info["indices"]["test"])
    # MultiBench: random.seed(10); random.shuffle(list of samples); valid, test, train
    samples = [(i, "x") for i in range(60)]
    random.seed(10)
    random.shuffle(samples)
    order = [i for i, _ in samples]
    assert set(order[:6]) == set(a.info["indices"]["valid"])
    assert set(order[6:12]) == set(a.info["indices"]["test"])


def test_mimic_missing_file(tmp_path):
    with raises(DatasetNotFoundError, str(tmp_path / "im.pk"), "PhysioNet", "MultiBench"):
        load_mimic(tmp_path / "im.pk")


@pytest.mark.parametrize(
    "edit, fragments, kwargs",
    [
        (lambda d: d.pop("y_icd9"), ["'y_icd9'", "adm_features_all"], {}),
        (lambda d: d.pop("adm_labels_all"), ["'adm_labels_all'"], {"mortality": True}),
        (lambda d: d.update(ep_tdata=d["ep_tdata"][:, :, 0]), ["'ep_tdata'", "shape"], {}),
        (
            lambda d: d.update(adm_features_all=d["adm_features_all"][:-2]),
            ["number of samples", "'adm_features_all': 58"],
            {},
        ),
        (
            lambda d: d.update(adm_features_all=d["adm_features_all"].astype(str)),
            ["'adm_features_all'", "dtype"],
            {},
        ),
        (lambda d: d["y_icd9"].__setitem__((4, 7), np.nan), ["'y_icd9[:, 7]'", "NaN"], {}),
        (lambda d: d["y_icd9"].__setitem__((4, 7), 2.0), ["'y_icd9[:, 7]'", "0/1"], {}),
        (lambda d: d.update(y_icd9=d["y_icd9"][:, :5]), ["'y_icd9'", "icd9_group=7"], {}),
    ],
    ids=[
        "missing-key",
        "missing-mortality",
        "wrong-ndim",
        "row-mismatch",
        "wrong-dtype",
        "nan-label",
        "non-binary",
        "group-out-of-range",
    ],
)
def test_mimic_bad_input(tmp_path, edit, fragments, kwargs):
    path = tmp_path / "im.pk"
    w.write_mimic_pickle(path, edit=edit)
    with raises(DatasetError, str(path), *fragments):
        load_mimic(path, **kwargs)


def test_mimic_too_few_samples_is_an_empty_split(tmp_path):
    path = tmp_path / "im.pk"
    w.write_mimic_pickle(path, n=9)
    with raises(DatasetError, str(path), "split 'valid' has no samples"):
        load_mimic(path)


def test_seeded_split_fractions():
    parts = seeded_split(100, 0, valid_fraction=0.1, test_fraction=0.2)
    assert [len(parts[s]) for s in SPLITS] == [70, 10, 20]
    with pytest.raises(DatasetError):
        seeded_split(10, 0, valid_fraction=0.5, test_fraction=0.5)


# ----------------------------------------------------------------------------- Vision&Touch


@pytest.fixture
def vt_folder(tmp_path):
    folder = tmp_path / "vt"
    return folder, w.write_vt_episodes(folder)


def _episode(path: Path) -> dict:
    with h5py.File(path) as f:
        return {k: f[k][()] for k in f}


def test_vision_touch_samples_and_targets(vt_folder):
    folder, _ = vt_folder
    data = load_vision_touch(folder)
    check_contract(data)
    assert data.modalities == ["image", "force", "proprio"]
    assert data.kinds == {"image": "image", "force": "sequence", "proprio": "vector"}
    assert data.input_shape("image") == (3, 16, 16)
    assert data.train.inputs["image"].dtype == torch.uint8
    assert data.input_shape("force") == (32, 6) and data.input_shape("proprio") == (8,)
    assert [(t.name, t.kind) for t in data.tasks] == [
        ("contact_next", "classification"),
        ("end_effector_next", "regression"),
    ]
    episodes = data.info["episodes"]
    assert [len(episodes[s]) for s in SPLITS] == [7, 1, 2]
    for s, split in splits_of(data).items():
        assert len(split) == 5 * len(episodes[s])  # T - 1 samples per episode
    ep = _episode(folder / episodes["test"][0])
    test = data.probe_test
    np.testing.assert_array_equal(
        test.inputs["image"][:5].numpy(), ep["image"][:5].transpose(0, 3, 1, 2)
    )
    np.testing.assert_allclose(
        test.inputs["force"][:5].numpy(), np.tanh(ep["ee_forces_continuous"][:5, -32:]), rtol=1e-6
    )
    np.testing.assert_allclose(test.inputs["proprio"][:5].numpy(), ep["proprio"][:5], rtol=1e-6)
    np.testing.assert_array_equal(
        test.targets["contact_next"][:5].numpy(), ep["contact"][1:].sum(axis=1) > 0
    )
    # no contact at step 3, contact at step 4: the targets of samples 2 and 3
    assert test.targets["contact_next"][2] == 0 and test.targets["contact_next"][3] == 1
    np.testing.assert_allclose(
        test.targets["end_effector_next"][:5].numpy(), ep["proprio"][1:, :4], rtol=1e-6
    )


def test_vision_touch_episode_split_seeded_and_disjoint(vt_folder):
    folder, _ = vt_folder
    a = load_vision_touch(folder).info["episodes"]
    b = load_vision_touch(folder).info["episodes"]
    c = load_vision_touch(folder, split_seed=1).info["episodes"]
    assert a == b and a != c
    sets = [set(a[s]) for s in SPLITS]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(set.union(*sets)) == 10


def test_vision_touch_resize_layouts_and_keys(tmp_path):
    folder = tmp_path / "vt"
    w.write_vt_episodes(
        folder, channels_first=True, contact_per_reading=False, force_key="force_readings"
    )
    data = load_vision_touch(
        folder, image_size=8, keys={"force": "force_readings"}, force_tanh=False
    )
    assert data.input_shape("image") == (3, 8, 8)
    assert data.train.inputs["image"].dtype == torch.uint8
    ep = _episode(folder / data.info["episodes"]["valid"][0])
    np.testing.assert_array_equal(data.valid.targets["contact_next"].numpy(), ep["contact"][1:] > 0)
    np.testing.assert_allclose(
        data.valid.inputs["force"].numpy(), ep["force_readings"][:5, -32:], rtol=1e-6
    )
    # a uniform image stays uniform after resizing
    img = torch.full((2, 3, 16, 16), 77, dtype=torch.uint8)
    from infmasking.data.vision_touch import _resize

    assert (_resize(img, 4) == 77).all()
    with pytest.raises(ValueError):
        load_vision_touch(folder, keys={"smell": "x"})


def test_vision_touch_missing_folder_and_files(tmp_path):
    with raises(DatasetNotFoundError, str(tmp_path / "nope"), "MultiBench", "robotics"):
        load_vision_touch(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with raises(DatasetError, str(tmp_path / "empty"), "*.h5"):
        load_vision_touch(tmp_path / "empty")


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda e, a: a.pop("proprio") if e == 3 else None, ["'proprio'", "episode_003.h5"]),
        (
            lambda e, a: a.update(image=a["image"].astype(np.float32)) if e == 4 else None,
            ["'image'", "dtype float32", "uint8", "episode_004.h5"],
        ),
        (
            lambda e, a: (
                a.update(ee_forces_continuous=a["ee_forces_continuous"][:, :10]) if e == 5 else None
            ),
            ["'ee_forces_continuous'", "S >= 32", "episode_005.h5"],
        ),
        (
            lambda e, a: a.update(proprio=a["proprio"][:-1]) if e == 6 else None,
            ["number of samples", "'proprio': 5", "episode_006.h5"],
        ),
        (
            lambda e, a: a["contact"].__setitem__((2, 0), np.nan) if e == 7 else None,
            ["'contact'", "NaN", "episode_007.h5"],
        ),
        (
            lambda e, a: a["proprio"].__setitem__((3, 1), np.nan) if e == 8 else None,
            ["'proprio (end-effector target)'", "NaN", "episode_008.h5"],
        ),
    ],
    ids=["missing-key", "wrong-dtype", "wrong-shape", "row-mismatch", "nan-contact", "nan-target"],
)
def test_vision_touch_bad_input(tmp_path, edit, fragments):
    folder = tmp_path / "vt"
    w.write_vt_episodes(folder, edit=edit)
    with raises(DatasetError, *fragments):
        load_vision_touch(folder)


def test_vision_touch_too_few_episodes(tmp_path):
    folder = tmp_path / "vt"
    w.write_vt_episodes(folder, episodes=4)
    with raises(DatasetError, str(folder), "has no samples", "episode files"):
        load_vision_touch(folder)


# ----------------------------------------------------------------------------- MM-IMDb


def test_mmimdb_hdf5_splits_by_index(tmp_path):
    path = tmp_path / "multimodal_imdb.hdf5"
    arrays = w.write_mmimdb_hdf5(path)
    data = load_mmimdb_hdf5(path, bounds=MMIMDB_BOUNDS)
    check_contract(data)
    assert data.modalities == ["text", "image"]
    assert data.kinds == {"text": "vector", "image": "vector"}
    assert data.tasks[0].name == "genres" and data.tasks[0].kind == "multilabel"
    assert data.tasks[0].num_classes == 23
    assert (len(data.train), len(data.valid), len(data.probe_test)) == (24, 8, 8)
    np.testing.assert_array_equal(data.valid.inputs["text"].numpy(), arrays["features"][24:32])
    np.testing.assert_array_equal(
        data.probe_test.inputs["image"].numpy(), arrays["vgg_features"][32:40]
    )
    np.testing.assert_array_equal(data.train.targets["genres"].numpy(), arrays["genres"][:24])
    # folder holding the file, and the posters as images
    data = load_mmimdb(tmp_path, bounds=MMIMDB_BOUNDS)
    assert len(data.train) == 24
    w.write_mmimdb_hdf5(path, images=True)
    data = load_mmimdb(path, image_key="images", bounds=MMIMDB_BOUNDS)
    check_contract(data)
    assert data.kinds["image"] == "image" and data.input_shape("image") == (3, 16, 10)
    assert data.train.inputs["image"].dtype == torch.uint8


def test_mmimdb_hdf5_default_bounds_are_multibench(tmp_path):
    path = tmp_path / "multimodal_imdb.hdf5"
    w.write_mmimdb_hdf5(path)
    with raises(DatasetError, str(path), "40 rows", "25959", "15552", "18160"):
        load_mmimdb_hdf5(path)


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda a: a.pop("genres"), ["'genres'", "features"]),
        (lambda a: a.update(features=a["features"][:, 0]), ["'features'", "shape (40,)"]),
        (
            lambda a: a.update(vgg_features=a["vgg_features"][:30]),
            ["number of samples", "'vgg_features': 30"],
        ),
        (
            lambda a: (
                a.update(genres=a["genres"].astype(np.float32))
                or a["genres"].__setitem__((3, 2), np.nan)
            ),
            ["'genres'", "NaN"],
        ),
        (lambda a: a.update(features=np.array([b"x"] * 40)), ["'features'", "dtype"]),
    ],
    ids=["missing-key", "wrong-shape", "row-mismatch", "nan-genres", "wrong-dtype"],
)
def test_mmimdb_hdf5_bad_input(tmp_path, edit, fragments):
    path = tmp_path / "multimodal_imdb.hdf5"
    w.write_mmimdb_hdf5(path, edit=edit)
    with raises(DatasetError, str(path), *fragments):
        load_mmimdb_hdf5(path, bounds=MMIMDB_BOUNDS)


@pytest.mark.parametrize("nested", [True, False])
def test_mmimdb_raw_folder(tmp_path, nested):
    written = w.write_mmimdb_raw(tmp_path, nested=nested)
    data = load_mmimdb(tmp_path)
    check_contract(data)
    assert data.info["format"] == "raw_folder"
    assert data.tasks[0].num_classes == 23 and data.kinds["image"] == "vector"
    for s, key in (("train", "train"), ("valid", "dev"), ("test", "test")):
        split = splits_of(data)[s]
        ids = written["ids"][key]
        assert len(split) == len(ids)
        np.testing.assert_array_equal(
            split.inputs["text"].numpy(), np.stack([written["text"][i] for i in ids])
        )
        np.testing.assert_array_equal(
            split.inputs["image"].numpy(), np.stack([written["image"][i] for i in ids])
        )
        for row, movie in enumerate(ids):
            names = {g.lower() for g in written["genres"][movie]} - {"reality-tv"}
            got = {MMIMDB_GENRES[j] for j in np.nonzero(split.targets["genres"][row].numpy())[0]}
            assert got == names
    assert sum(data.info["ignored_genres"].values()) == 7  # every 5th of 34 movies


def test_mmimdb_raw_missing_features_explains_how_to_make_them(tmp_path):
    w.write_mmimdb_raw(tmp_path, features=False)
    with raises(
        DatasetNotFoundError,
        str(tmp_path / "features.npz"),
        "'ids'",
        "'text'",
        "'image'",
        "numpy.savez",
    ):
        load_mmimdb_raw(tmp_path)


def test_mmimdb_raw_bad_input(tmp_path):
    written = w.write_mmimdb_raw(tmp_path)
    missing = written["ids"]["test"][2]
    (tmp_path / "dataset" / f"{missing}.json").unlink()
    with raises(DatasetNotFoundError, missing, "split.json"):
        load_mmimdb_raw(tmp_path)
    (tmp_path / "dataset" / f"{missing}.json").write_text(json.dumps({"plot": ["x"]}))
    with raises(DatasetError, f"{missing}.json", "'genres'"):
        load_mmimdb_raw(tmp_path)
    # ids without features
    feats = dict(np.load(tmp_path / "features.npz"))
    keep = feats["ids"] != written["ids"]["train"][0]
    np.savez(tmp_path / "features.npz", **{k: v[keep] for k, v in feats.items()})
    with raises(DatasetError, "features.npz", "'ids'", written["ids"]["train"][0]):
        load_mmimdb_raw(tmp_path)
    np.savez(
        tmp_path / "features.npz",
        ids=feats["ids"],
        text=feats["text"][:, :, None],
        image=feats["image"],
    )
    with raises(DatasetError, "features.npz", "'text'", "shape"):
        load_mmimdb_raw(tmp_path)
    # empty split / missing split key
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({**written["ids"], "test": []}))
    with raises(DatasetError, str(split_file), "split 'test' has no samples"):
        load_mmimdb_raw(tmp_path)
    split_file.write_text(json.dumps({"train": written["ids"]["train"]}))
    with raises(DatasetError, str(split_file), "'test'"):
        load_mmimdb_raw(tmp_path)


def test_mmimdb_missing_data_says_where_to_get_it(tmp_path):
    with raises(DatasetNotFoundError, str(tmp_path / "x.hdf5"), "archive.org/details/mmimdb"):
        load_mmimdb(tmp_path / "x.hdf5")
    with raises(DatasetNotFoundError, str(tmp_path), "split.json", "multimodal_imdb.hdf5"):
        load_mmimdb(tmp_path)
    with raises(DatasetNotFoundError, str(tmp_path / "split.json")):
        load_mmimdb_raw(tmp_path)


# ----------------------------------------------------------------------------- own .npz


def test_npz_kinds_masks_tasks_and_file_split(tmp_path):
    path = tmp_path / "mine.npz"
    arrays = w.write_npz(path)
    data = load_npz(path)
    check_contract(data)
    assert data.name == "mine"
    assert data.modalities == ["tab", "seq", "img"]
    assert data.kinds == {"tab": "vector", "seq": "sequence", "img": "image"}
    assert data.train.inputs["img"].dtype == torch.uint8
    assert [(t.name, t.kind, t.num_classes) for t in data.tasks] == [
        ("y", "classification", 3),
        ("attrs", "multilabel", 4),
        ("value", "regression", 0),
    ]
    assert (len(data.train), len(data.valid), len(data.probe_test)) == (32, 4, 4)
    # mask_seq: 1 = real step  ->  padding: True = padded
    expected = arrays["mask_seq"][:32] == 0
    expected[0, 0] = False  # sample 0 had no real step: its first step is unpadded
    np.testing.assert_array_equal(data.train.padding["seq"].numpy(), expected)
    assert data.info["unpadded_empty"]["seq"] == 1
    np.testing.assert_array_equal(data.probe_test.targets["y"].numpy(), arrays["y"][36:])
    np.testing.assert_allclose(
        data.probe_test.targets["value"][:, 0].numpy(), arrays["y_value"][36:], rtol=1e-6
    )
    assert data.train.targets["attrs"].shape == (32, 4)


def test_npz_seeded_split_pad_key_and_overrides(tmp_path):
    path = tmp_path / "mine.npz"

    def edit(a):
        a["pad_seq"] = a.pop("mask_seq") == 0  # True = padded
        a["x_tab"] = a["x_tab"][:, :4]  # [N, 4] read as a sequence of 4 steps
        a["task"] = np.array("regression")
        a.pop("x_img")

    arrays = w.write_npz(path, split=False, n=50, edit=edit)
    data = load_npz(path, kinds={"tab": "sequence"}, tasks={"attrs": "regression"})
    check_contract(data)
    assert data.kinds == {"tab": "sequence", "seq": "sequence"}
    assert data.input_shape("tab") == (4, 1) and "tab" not in data.train.padding
    assert [(t.name, t.kind) for t in data.tasks] == [
        ("y", "regression"),
        ("attrs", "regression"),
        ("value", "regression"),
    ]
    idx = data.info["indices"]
    assert [len(idx[s]) for s in SPLITS] == [40, 5, 5]
    expected = arrays["pad_seq"].copy()
    expected[0, 0] = False  # sample 0 was all padding
    for s in SPLITS:
        np.testing.assert_array_equal(splits_of(data)[s].padding["seq"].numpy(), expected[idx[s]])
    again = load_npz(path, kinds={"tab": "sequence"})
    other = load_npz(path, kinds={"tab": "sequence"}, split_seed=1)
    assert all(np.array_equal(idx[s], again.info["indices"][s]) for s in SPLITS)
    assert not np.array_equal(idx["test"], other.info["indices"]["test"])


def test_npz_missing_file(tmp_path):
    with raises(DatasetNotFoundError, str(tmp_path / "mine.npz")):
        load_npz(tmp_path / "mine.npz")


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda a: [a.pop("x_seq"), a.pop("x_img"), a.pop("mask_seq")], ["x_<name>", "['x_tab']"]),
        (lambda a: [a.pop("y"), a.pop("y_attrs"), a.pop("y_value")], ["missing key 'y'"]),
        (lambda a: a.update(mask_seq=a["mask_seq"][:, :5]), ["'mask_seq'", "(40, 7)"]),
        (lambda a: a.update(mask_seq=a["mask_seq"] * 3), ["'mask_seq'", "0/1"]),
        (lambda a: a.update(pad_seq=a["mask_seq"] == 0), ["'mask_seq'", "'pad_seq'"]),
        (lambda a: a.update(x_tab=np.zeros((40, 2, 2, 2, 2))), ["'x_tab'", "shape"]),
        (lambda a: a.update(x_tab=a["x_tab"].astype(str)), ["'x_tab'", "dtype"]),
        (lambda a: a["x_tab"].__setitem__((5, 1), np.inf), ["'x_tab'", "non-finite"]),
        (
            lambda a: a.update(y_value=np.where(np.arange(40) == 3, np.nan, a["y_value"])),
            ["'y_value'", "NaN"],
        ),
        (lambda a: a.update(y=a["y"][:39]), ["number of samples", "'y': 39"]),
        (lambda a: a.update(y_attrs=a["y_attrs"] * 2), ["'y_attrs'", "multilabel", "0/1"]),
        (
            lambda a: a["split"].__setitem__(slice(36, 40), "valid"),
            ["split 'test' has no samples", "'split'"],
        ),
        (lambda a: a["split"].__setitem__(0, "dev"), ["'split'", "'dev'"]),
        (lambda a: a.update(task=np.array("clustering")), ["'clustering'", "'y'"]),
    ],
    ids=[
        "one-modality",
        "no-target",
        "mask-shape",
        "mask-values",
        "mask-and-pad",
        "bad-ndim",
        "wrong-dtype",
        "nonfinite-input",
        "nan-target",
        "row-mismatch",
        "bad-multilabel",
        "empty-split",
        "unknown-split",
        "unknown-task-kind",
    ],
)
def test_npz_bad_input(tmp_path, edit, fragments):
    path = tmp_path / "mine.npz"
    w.write_npz(path, edit=edit)
    with raises(DatasetError, str(path), *fragments):
        load_npz(path)


def test_npz_too_few_samples_for_seeded_split(tmp_path):
    path = tmp_path / "mine.npz"
    w.write_npz(path, n=8, split=False)
    with raises(DatasetError, str(path), "has no samples"):
        load_npz(path)


def test_errors_are_value_errors():
    assert issubclass(DatasetError, ValueError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    assert issubclass(DatasetNotFoundError, DatasetError)


def test_pickle_helper_roundtrip(tmp_path):
    """A file written by the writer is a plain dict of numpy arrays (the real format)."""
    path = tmp_path / "humor.pkl"
    w.write_affect_pickle(path)
    with open(path, "rb") as f:
        raw = pickle.load(f)
    assert set(raw) == set(SPLITS)
    assert raw["train"]["text"].shape == (24, 50, 6)
