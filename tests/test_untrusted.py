"""Files a user hands us run no code: crafted checkpoints and data pickles whose unpickling
would write a marker file are refused, and the marker never appears (docs/SECURITY.md)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ONE_EPOCH, tiny_run_copy

import infmasking
from infmasking.cli import main
from infmasking.data.affect import load_mosi
from infmasking.data.errors import UnsafePickleError, read_pickle, unsafe_pickles
from infmasking.data.mimic import load_mimic
from infmasking.testing.data_writers import write_affect_pickle, write_mimic_pickle
from infmasking.training.checkpoint import load_module
from infmasking.training.errors import RunError


class Payload:
    """Unpickling this calls ``Path(marker).touch()``: code chosen by the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(scope="module")
def run_dir(tiny_run_once, tmp_path_factory):
    return tiny_run_copy(tiny_run_once, tmp_path_factory, "untrusted")  # TINY_ONE_EPOCH, once


def _crafted_checkpoint(good: Path, path: Path, marker: Path) -> Path:
    """A real checkpoint with a payload planted among its hyper-parameters."""
    state = torch.load(good, map_location="cpu", weights_only=True)
    state["hyper_parameters"]["payload"] = Payload(marker)
    torch.save(state, path)
    return path


def test_crafted_checkpoint_runs_no_code(run_dir, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = _crafted_checkpoint(run_dir / "checkpoints" / "last.ckpt", tmp_path / "x.ckpt", marker)
    with pytest.raises(RunError, match="x.ckpt"):
        load_module(ckpt)
    with pytest.raises(RunError):
        infmasking.load_run(ckpt)
    assert main(["evaluate", str(ckpt), "--num_threads", "1"]) == 1
    assert main(["embed", str(ckpt), "--out", str(tmp_path / "f.npz")]) == 1
    assert not marker.exists()
    # the legitimate checkpoint loads with weights_only=True
    module, cfg, _ = load_module(run_dir)
    assert cfg.method.name == "infmasking"


def test_crafted_checkpoint_in_a_run_folder_is_not_resumed(run_dir, tmp_path, capsys):
    """The resume check reads the checkpoint of an interrupted run folder: a crafted one is
    reported, never executed."""
    marker = tmp_path / "pwned"
    out = tmp_path / "interrupted"
    (out / "checkpoints").mkdir(parents=True)
    _crafted_checkpoint(
        run_dir / "checkpoints" / "last.ckpt", out / "checkpoints" / "last.ckpt", marker
    )
    code = main(["train", *TINY_ONE_EPOCH, "--out_dir", str(out)])
    assert code != 0
    assert not marker.exists()


def _planted(path: Path, marker: Path, writer) -> Path:
    def edit(data):
        data["train" if "train" in data else "ep_tdata"] = (
            {**data["train"], "extra": Payload(marker)} if "train" in data else data["ep_tdata"]
        )
        if "train" not in data:
            data["extra"] = Payload(marker)

    writer(path, edit=edit)
    return path


@pytest.mark.parametrize("kind", ["affect", "mimic"])
def test_data_pickle_with_a_payload_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "affect":
        path = _planted(tmp_path / "mosi_data.pkl", marker, write_affect_pickle)
        load = load_mosi
    else:
        path = _planted(tmp_path / "im.pk", marker, write_mimic_pickle)
        load = load_mimic
    with pytest.raises(UnsafePickleError, match=r"refused to unpickle global 'pathlib.*touch'"):
        load(path)
    with pytest.raises(UnsafePickleError, match=str(path.name)):
        read_pickle(path, kind)
    assert not marker.exists()
    # the explicit opt-in reads it with the plain unpickler: the code runs (documented)
    with unsafe_pickles():
        read_pickle(path, kind)
    assert marker.exists()


def test_os_system_and_eval_payloads_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    for payload in (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
        b"cbuiltins\neval\n(S'open(\"" + str(marker).encode() + b'", "w")\'\ntR.',
    ):
        path = tmp_path / "p.pkl"
        path.write_bytes(payload)
        with pytest.raises(UnsafePickleError, match="refused to unpickle global"):
            read_pickle(path, "affect")
    assert not marker.exists()


def test_legitimate_pickles_still_load(tmp_path):
    write_affect_pickle(tmp_path / "mosi_data.pkl")
    assert len(load_mosi(tmp_path / "mosi_data.pkl").train) > 0
    write_mimic_pickle(tmp_path / "im.pk")
    assert len(load_mimic(tmp_path / "im.pk").train) > 0
    # numpy scalars, dtypes, strings and builtin containers of any protocol
    value = {"a": [np.float32(1.5), (np.arange(3), {"b": np.dtype("int16")})], "s": {1, 2}}
    for protocol in (2, 4, 5):
        path = tmp_path / f"v{protocol}.pkl"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        got = read_pickle(path, "affect")
        assert got["a"][0] == np.float32(1.5) and got["s"] == {1, 2}
