"""Nothing of the user's is ever lost: --overwrite clears only the library's own files of its own
run folders, a fresh run replaces no user file, embed refuses to replace files (above all the
one it reads) and writes exactly the name it was given, checkpoints are replaced atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import TINY_ONE_EPOCH, tiny_run_copy

from infmasking.cli import main
from infmasking.training.callbacks import AtomicCheckpointIO
from infmasking.training.folder import RUN_MARKER, library_files


@pytest.fixture(scope="module")
def finished(tiny_run_once, tmp_path_factory):
    return tiny_run_copy(tiny_run_once, tmp_path_factory, "safety")  # TINY_ONE_EPOCH, once


def test_overwrite_keeps_the_users_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY_ONE_EPOCH, "--out_dir", str(out)]) == 0
    assert (out / RUN_MARKER).exists()
    mine = {
        out / "notes.txt": b"my notes",
        out / "figure.png": b"my figure",
        out / "report_draft.md": b"my draft",
        out / "checkpoints" / "best_by_me.ckpt": b"my checkpoint",
    }
    for p, content in mine.items():
        p.write_bytes(content)
    assert main(["train", *TINY_ONE_EPOCH, "--out_dir", str(out), "--overwrite", "true"]) == 0
    for p, content in mine.items():
        assert p.read_bytes() == content, p
    assert (out / "report.json").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("my: own config\n")
    (folder / "data.csv").write_text("1,2\n")
    for extra in ([], ["--overwrite", "true"]):
        assert main(["train", *TINY_ONE_EPOCH, "--out_dir", str(folder), *extra]) == 1
        err = capsys.readouterr().err
        assert "not an infmasking run folder" in err and "config.yaml" in err
        assert (folder / "config.yaml").read_text() == "my: own config\n"
        assert (folder / "data.csv").exists()


def test_a_fresh_run_writes_beside_unrelated_user_files(tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "readme.txt").write_text("mine")
    assert main(["train", *TINY_ONE_EPOCH, "--out_dir", str(folder)]) == 0
    assert (folder / "readme.txt").read_text() == "mine"
    assert (folder / "readme.txt") not in library_files(folder)


def test_embed_out_never_replaces_silently(finished, tmp_path, capsys):
    # default: into the run folder
    assert main(["embed", str(finished)]) == 0
    assert np.load(finished / "features.npz")["features"].shape[0] > 0
    # an existing file is refused without --overwrite, replaced with it
    target = tmp_path / "f.npz"
    target.write_bytes(b"precious")
    assert main(["embed", str(finished), "--out", str(target)]) == 1
    assert "exists; pass --overwrite true" in capsys.readouterr().err
    assert target.read_bytes() == b"precious"
    assert main(["embed", str(finished), "--out", str(target), "--overwrite", "true"]) == 0
    assert "features" in np.load(target)
    # a name without .npz is refused (numpy would have written f2.npz instead)
    assert main(["embed", str(finished), "--out", str(tmp_path / "f2")]) == 1
    assert "expected a .npz file name" in capsys.readouterr().err
    assert not (tmp_path / "f2.npz").exists()
    # a folder: written into it
    (tmp_path / "feats").mkdir()
    assert main(["embed", str(finished), "--out", str(tmp_path / "feats")]) == 0
    assert (tmp_path / "feats" / "features.npz").exists()
    # the checkpoint it reads, even with --overwrite
    ckpt = finished / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    code = main(["embed", str(finished), "--export", str(ckpt), "--overwrite", "true"])
    assert code == 1 and ckpt.read_bytes() == before
    assert main(["embed", str(finished), "--modalities", "[]"]) == 1
    assert "--modalities: give at least one modality" in capsys.readouterr().err


def test_embed_refuses_to_overwrite_its_data_file(tmp_path, capsys):
    from infmasking.testing.data_writers import write_npz

    data = tmp_path / "data.npz"
    write_npz(data)
    run = tmp_path / "run"
    args = ["train", "--preset", "npz", "--data.path", str(data), "--optim.epochs", "1"]
    args += ["--eval.probe_C", "100"]  # the files are tested, not the probe: no search
    args += ["--trainer.num_threads", "1", "--out_dir", str(run), "--optim.batch_size", "8"]
    assert main(args) == 0
    before = data.read_bytes()
    assert main(["embed", str(run), "--out", str(data), "--overwrite", "true"]) == 1
    assert "is the file this command reads" in capsys.readouterr().err
    assert data.read_bytes() == before


def test_checkpoint_replaced_atomically(tmp_path, monkeypatch):
    """A crash while writing the new checkpoint leaves the previous one intact and no partial
    file under the checkpoint's name."""
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "v": 1}, path)
    real_save = torch.save

    def crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.truncate(10)  # half written ...
        raise KeyboardInterrupt  # ... when the process dies

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "v": 2}, path)
    monkeypatch.undo()
    state = torch.load(path, weights_only=True)
    assert state["v"] == 1 and torch.equal(state["state_dict"]["w"], torch.ones(3))
    assert sorted(os.listdir(path.parent)) == ["last.ckpt"]


def test_data_identity_relative_paths_and_a_live_lock(tmp_path, monkeypatch, capsys):
    """The data file is stored absolute and fingerprinted: evaluate from another directory
    reads the same file; a changed file refuses resume / evaluate / embed; a run being
    trained is not evaluated."""
    import json
    import socket

    from infmasking.testing.data_writers import write_npz

    work = tmp_path / "work"
    work.mkdir()
    write_npz(work / "data.npz")
    monkeypatch.chdir(work)
    args = ["train", "--preset", "npz", "--data.path", "data.npz", "--optim.epochs", "1"]
    args += ["--eval.probe_C", "100"]  # the files are tested, not the probe: no search
    args += ["--trainer.num_threads", "1", "--out_dir", str(tmp_path / "run")]
    args += ["--optim.batch_size", "8"]
    assert main(args) == 0
    run = tmp_path / "run"
    record = json.loads((run / "data.json").read_text())
    assert record["path"] == str(work / "data.npz") and len(record["sha256"]) == 64
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_npz(elsewhere / "data.npz", seed=5)  # a different file of the same name
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(run), "--num_threads", "1"]) == 0
    report = json.loads((run / "evaluation.json").read_text())
    assert report["config"]["data"]["path"] == str(work / "data.npz")
    # the file changes: refused in one line
    write_npz(work / "data.npz", seed=9)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--num_threads", "1"]) == 1
    err = capsys.readouterr().err
    assert "changed since the run trained on it" in err and len(err.strip().splitlines()) == 1
    assert main(["embed", str(run), "--out", str(tmp_path / "e.npz")]) == 1
    # a live training process holds the lock
    (run / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert main(["evaluate", str(run), "--num_threads", "1"]) == 1
    assert "is being trained by process" in capsys.readouterr().err


def test_embed_keeps_the_files_row_order(tmp_path, capsys):
    """Row i of features.npz is sample i of the user's .npz, with its split and index."""
    from infmasking.testing.data_writers import write_npz

    data = tmp_path / "data.npz"
    written = write_npz(data, n=48)
    run = tmp_path / "run"
    args = ["train", "--preset", "npz", "--data.path", str(data), "--optim.epochs", "1"]
    args += ["--eval.probe_C", "100"]  # the files are tested, not the probe: no search
    args += ["--trainer.num_threads", "1", "--out_dir", str(run), "--optim.batch_size", "8"]
    assert main(args) == 0
    assert main(["embed", str(run)]) == 0
    f = np.load(run / "features.npz")
    raw = np.load(data)
    assert f["features"].shape[0] == 48
    np.testing.assert_array_equal(f["index"], np.arange(48))
    np.testing.assert_array_equal(f["split"], raw["split"])
    np.testing.assert_array_equal(f["y_y"], raw["y"])
    assert written is not None
