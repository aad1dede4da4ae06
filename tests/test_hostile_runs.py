"""Hostile inputs, third round (issue 35): a run folder handed to us is untrusted (links planted
in it are never written through), the lock means the same to every command and its take-over
is atomic, metrics.csv stays whole across resumes, every output is written atomically and a
full disk is named in one line (docs/SECURITY.md)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ONE_THREAD, tiny_run_copy

from infmasking import files
from infmasking.cli import main
from infmasking.files import NoSpaceError, write_atomic
from infmasking.training.errors import RunError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

VICTIM = b"the user's precious file\n"


@pytest.fixture(scope="module")
def run_dir(tiny_run_once, tmp_path_factory):
    return tiny_run_copy(tiny_run_once, tmp_path_factory, "hostile")  # TINY_ONE_EPOCH, once


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    return victim


def _one_line(err: str) -> str:
    """The error line (progress bars before it aside), checked to be the only one."""
    lines = [x for x in err.strip().splitlines() if "%|" not in x and x.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _cli(args: list[str], capsys) -> tuple[int, str]:
    """Exit status and the one error line of ``infmasking ARGS`` (a refusal before parsing is a
    SystemExit carrying its line: exit status 1)."""
    try:
        code = main(args)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        return 1, _one_line(e.code + "\n" + capsys.readouterr().err)
    return code, _one_line(capsys.readouterr().err)


# 1. a run folder is untrusted --------------------------------------------------------------


def test_write_atomic_replaces_a_link_instead_of_following_it(tmp_path):
    """The root of it: every output goes through write_atomic, and a rename replaces a link."""
    victim = _victim(tmp_path)
    link = tmp_path / "folder" / "evaluation.json"
    link.parent.mkdir()
    link.symlink_to(victim)
    write_atomic(link, "{}")
    assert victim.read_bytes() == VICTIM
    assert not link.is_symlink() and link.read_text() == "{}"
    assert sorted(os.listdir(link.parent)) == ["evaluation.json"]  # no temporary left


@pytest.mark.parametrize(
    "name",
    ["evaluation.json", "report.md", "hparams.yaml", ".infmasking-run", "checkpoints/last.ckpt"],
)
def test_links_planted_in_a_run_folder_are_refused(run_dir, tmp_path, capsys, name):
    """evaluate RUN, resuming train --out_dir RUN, embed RUN: a link planted among the run's
    files refuses the folder in one line (exit 1); the victim stays byte-identical."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "report.json").unlink()  # unfinished: train resumes it
    victim = _victim(tmp_path)
    planted = run / name
    if planted.name == "last.ckpt":
        victim.write_bytes((run_dir / name).read_bytes())  # a readable checkpoint elsewhere
    before = victim.read_bytes()
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    for cmd in (
        ["evaluate", str(run), "--num_threads", "1"],
        ["train", *TINY_ONE_THREAD, "--optim.epochs", "1", "--out_dir", str(run)],
        ["embed", str(run)],
    ):
        assert main(cmd) == 1, cmd
        line = _one_line(capsys.readouterr().err)
        assert name in line and "symbolic link" in line, line
        assert victim.read_bytes() == before
    assert planted.is_symlink() and not (run / "run.lock").exists()


def test_a_linked_checkpoints_folder_is_refused(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    elsewhere = tmp_path / "elsewhere"
    (run / "checkpoints").rename(elsewhere)
    (run / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    before = (elsewhere / "last.ckpt").read_bytes()
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--num_threads", "1"]) == 1
    assert "checkpoints is a symbolic link" in _one_line(capsys.readouterr().err)
    assert sorted(os.listdir(elsewhere)) == ["last.ckpt"]
    assert (elsewhere / "last.ckpt").read_bytes() == before


# 2. the lock means the same to every command ----------------------------------------------


def test_every_command_refuses_a_run_being_trained(run_dir, tmp_path, capsys):
    """A live process (a real one) holds run.lock: embed RUN, evaluate RUN/checkpoints/last.ckpt
    and load_run all refuse, and nothing is written into the run folder."""
    from infmasking import load_run

    run = tmp_path / "run"  # a private copy: this test writes into it
    shutil.copytree(run_dir, run)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = run / "run.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        before = sorted(p.name for p in run.rglob("*"))
        for cmd in (
            ["embed", str(run)],
            ["embed", str(run / "checkpoints" / "last.ckpt"), "--out", str(tmp_path / "f.npz")],
            ["evaluate", str(run / "checkpoints" / "last.ckpt"), "--num_threads", "1"],
            ["evaluate", str(run), "--num_threads", "1"],
        ):
            assert main(cmd) == 1, cmd
            line = _one_line(capsys.readouterr().err)
            assert f"being trained by process {holder.pid}" in line, line
        with pytest.raises(RunError, match="being trained"):
            load_run(run)
        assert sorted(p.name for p in run.rglob("*")) == before
        assert not (tmp_path / "f.npz").exists()
    finally:
        holder.kill()
        holder.wait()
    # its process gone, the lock is stale: evaluating the checkpoint writes into the run folder
    # (never into checkpoints/) and takes the lock over
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--num_threads", "1"]) == 0
    assert "Taking over" in capsys.readouterr().out
    assert (run / "evaluation.json").is_file() and not (run / "run.lock").exists()
    assert sorted(os.listdir(run / "checkpoints")) == ["last.ckpt"]


_CONTENDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import infmasking.training.lock as lock

    out, go = Path(sys.argv[1]), Path(sys.argv[2])
    alive = lock._alive

    def slow_alive(pid):  # widen the window between reading the stale lock and replacing it
        time.sleep(0.3)
        return alive(pid)

    lock._alive = slow_alive
    (go.parent / f"ready-{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.005)
    try:
        with lock.RunLock(out):
            print("WON", flush=True)
            time.sleep(3)
    except lock.RunError as e:
        print("REFUSED", e, flush=True)
    """
)


def test_stale_lock_is_taken_over_by_exactly_one_process(tmp_path):
    """Four processes find the same stale lock (its process is dead) at once: one wins, the
    others are refused naming it."""
    out, go = tmp_path / "run", tmp_path / "go"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    script = tmp_path / "contender.py"
    script.write_text(_CONTENDER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.time() < deadline:
        time.sleep(0.05)  # all imported and waiting (they spin on the go file)
    go.touch()
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    won = [o for o in outputs if "WON" in o]
    assert len(won) == 1, outputs
    assert all("in use by another run" in o for o in outputs if "WON" not in o), outputs
    assert not (out / "run.lock").exists()


# 3. nothing lost after a resume ------------------------------------------------------------


def test_metrics_survive_a_resume_stopped_again(tmp_path, monkeypatch):
    """Stopped by SIGTERM at step 2, resumed, stopped again at step 4: metrics.csv holds every
    step's loss from 0, and while the resumed run trains the rows before it are on disk."""
    import csv

    from lightning.pytorch.callbacks import Callback

    from infmasking.commands import train as run_module

    out = tmp_path / "run"
    seen = {}

    def rows():
        with open(out / "metrics.csv", newline="") as f:
            return [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")]

    class StopAt(Callback):
        def __init__(self, step):
            self.step, self.sent = step, False

        def on_train_start(self, trainer, module):
            seen.setdefault("at_start", rows() if (out / "metrics.csv").exists() else [])

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == self.step and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGTERM)

    make_trainer = run_module.make_trainer
    args = ["train", *TINY_ONE_THREAD, "--optim.epochs", "2", "--trainer.log_every_n_steps", "1"]
    args += ["--out_dir", str(out)]
    for step in (2, 4):
        seen.clear()
        monkeypatch.setattr(
            run_module,
            "make_trainer",
            lambda cfg, o, cbs, *rest, s=step: make_trainer(cfg, o, [StopAt(s), *cbs], *rest),
        )
        assert main(args) == 143
        if step == 4:
            assert seen["at_start"] == [0, 1]  # the file was whole when the resumed run began
    assert rows() == [0, 1, 2, 3]


# 4. every write atomic, a full disk named --------------------------------------------------


def _full_disk_after(monkeypatch, n_bytes: int):
    """Every write system call of write_atomic fails with ENOSPC once ``n_bytes`` are written."""
    written = [0]
    real = files._raw_write

    def raw_write(f, data):
        if written[0] + len(data) > n_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written[0] += len(data)
        return real(f, data)

    monkeypatch.setattr(files, "_raw_write", raw_write)


def test_full_disk_during_a_checkpoint_write(tmp_path, monkeypatch):
    """torch's writer (C++) sees the failure first; the error still names the file and says
    'no space left', and the previous checkpoint is intact."""
    from infmasking.training.callbacks import AtomicCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "v": 1}, path)
    _full_disk_after(monkeypatch, 1000)
    with pytest.raises(NoSpaceError) as e:
        io.save_checkpoint({"state_dict": {"w": torch.zeros(100_000)}, "v": 2}, path)
    assert str(e.value) == f"no space left writing {path} (No space left on device)"
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["v"] == 1
    assert sorted(os.listdir(path.parent)) == ["last.ckpt"]


def test_full_disk_while_training_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    """The case left from the earlier rounds: the disk fills while `train` writes its
    checkpoint. One line naming the checkpoint and "no space left", exit 2, no temporary left
    behind, the folder unlocked."""
    real = files._raw_write

    def raw_write(f, data):
        if f.target.name == "last.ckpt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(f, data)

    monkeypatch.setattr(files, "_raw_write", raw_write)
    out = tmp_path / "run"
    code, line = _cli(
        ["train", *TINY_ONE_THREAD, "--optim.epochs", "1", "--out_dir", str(out)], capsys
    )
    assert code == 2, line
    assert f"no space left writing {out / 'checkpoints' / 'last.ckpt'}" in line, line
    assert os.listdir(out / "checkpoints") == [] and not (out / "run.lock").exists()


def test_full_disk_in_embed_is_one_line_exit_2(run_dir, tmp_path, monkeypatch, capsys):
    target = tmp_path / "features.npz"
    _full_disk_after(monkeypatch, 2000)
    assert main(["embed", str(run_dir), "--out", str(target)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"no space left writing {target}" in line, line
    assert os.listdir(tmp_path) == []


def test_export_over_a_file_size_limit_is_one_line(run_dir, tmp_path):
    """A real process whose file size limit (RLIMIT_FSIZE) is 64 KiB: torch.export's program
    does not fit. Before: a C++ abort (exit 134) and a truncated .pt2 under the final name."""
    import resource

    target = tmp_path / "model.pt2"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    r = subprocess.run(
        [sys.executable, "-m", "infmasking.cli", "embed", str(run_dir), "--export", str(target)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"},  # torch.export's own notes
    )
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert f"no space left writing {target}" in line, line
    assert os.listdir(tmp_path) == []


# 6. a checkpoint that does not belong to the run -------------------------------------------


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda hp: hp["config"]["method"].update(name="comm"), "method.name: 'infmasking'"),
        (lambda hp: hp["shapes"].update(image1=[3, 32, 32]), "shapes:"),
    ],
)
def test_a_checkpoint_of_another_run_is_refused(run_dir, tmp_path, capsys, change, named):
    """A CoMM checkpoint (or one built for other input shapes) placed in an InfMasking run
    folder: resume, evaluate and embed refuse it in one line naming the difference."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "report.json").unlink()  # unfinished: train would resume it
    ckpt = run / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    change(state["hyper_parameters"])
    torch.save(state, ckpt)
    for cmd in (
        ["train", *TINY_ONE_THREAD, "--optim.epochs", "1", "--out_dir", str(run)],
        ["evaluate", str(run), "--num_threads", "1"],
        ["evaluate", str(ckpt), "--num_threads", "1"],
        ["embed", str(run)],
    ):
        assert main(cmd) == 1, cmd
        line = _one_line(capsys.readouterr().err)
        assert "does not belong to the run" in line and named in line, line
    assert not (run / "report.json").exists() and not (run / "features.npz").exists()


# 7. options and data that make a silently wrong run ----------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--augment.grayscale_p", "1.5"], "--augment.grayscale_p must be a probability"),
        (["--augment.crop_scale", "[0.9, 0.1]"], "--augment.crop_scale must be [low, high]"),
        (["--data.modalities", "[image1, image1]"], "list of distinct modality names"),
    ],
)
def test_options_that_make_a_silently_wrong_run(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["train", *TINY_ONE_THREAD, *args, "--out_dir", str(out)]) == 1
    assert message in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_every_float_option_is_finite(tmp_path, capsys):
    """From the API (the command line's parser refuses them too), a config file, nested in a
    list or in data.options: each non-finite float is named; a long value keeps one line."""
    import math

    from infmasking.training.config_files import load_config, presets
    from infmasking.training.validate import validate

    cfg = load_config(presets()["tiny"])
    cfg.optim.lr, cfg.method.mask_lambda = math.inf, math.nan
    cfg.data.options["probe_pairs"] = -math.inf
    cfg.method.weights = [1.0] * 300 + [math.nan]
    with pytest.raises(ValueError) as e:
        validate(cfg)
    text = str(e.value)
    for option in ("optim.lr", "method.mask_lambda", "data.options.probe_pairs"):
        assert f"--{option} must be a finite number" in text, text
    assert "--method.weights must be finite numbers" in text, text  # its own check speaks
    assert "\n" not in text and len(text) < 800, text
    config = tmp_path / "run.yaml"
    config.write_text("optim: {lr: .inf}\nmethod: {weights: [" + "1.0, " * 300 + ".nan]}\n")
    out = tmp_path / "run"
    code, line = _cli(
        ["train", *TINY_ONE_THREAD, "--config", str(config), "--out_dir", str(out)], capsys
    )
    assert code == 1 and "--optim.lr must be a finite number" in line, line
    assert "--method.weights must be finite numbers" in line and len(line) < 800, line
    assert not out.exists()


def test_data_the_run_would_not_read(tmp_path, capsys):
    """--data.path with a generated dataset (the default, trifeatures) would train on generated
    data while fingerprinting the file; an --out_dir inside the data folder would change the
    data's fingerprint, so the run could never be resumed or evaluated."""
    from infmasking.testing.data_writers import write_npz

    data = tmp_path / "data"
    data.mkdir()
    write_npz(data / "mine.npz")
    out = tmp_path / "generated"
    assert (
        main(
            [
                "train",
                *TINY_ONE_THREAD,
                "--data.path",
                str(data / "mine.npz"),
                "--out_dir",
                str(out),
            ]
        )
        == 1
    )
    assert "is generated and reads no file" in _one_line(capsys.readouterr().err)
    assert not out.exists()
    out = data / "runs" / "r"
    assert main(["train", "--preset", "npz", "--data.path", str(data), "--out_dir", str(out)]) == 1
    assert "is inside the data folder" in _one_line(capsys.readouterr().err)
    args = ["train", "--preset", "npz", "--data.path", str(data / "mine.npz")]
    args += ["--data.options", "{split_sed: 3}", "--out_dir", str(tmp_path / "r")]
    assert main(args) == 1  # a misspelt option, not a TypeError from inside the loader
    line = _one_line(capsys.readouterr().err)
    assert "takes no option 'split_sed'" in line and "split_seed" in line, line
    assert not (data / "runs").exists()


# 5. files that lie about their size, resource bombs ---------------------------------------


def _lying_npz(path: Path) -> Path:
    """A valid .npz of a few KB, except that the header of 'x_tab' claims 4 TB."""
    import io
    import zipfile

    from infmasking.testing.data_writers import write_npz

    write_npz(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 1000)}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, a in arrays.items():
            if k == "x_tab":
                z.writestr("x_tab.npy", header.getvalue() + b"\0" * 4096)
            else:
                buf = io.BytesIO()
                np.lib.format.write_array(buf, a)
                z.writestr(f"{k}.npy", buf.getvalue())
    return path


def test_a_data_file_that_lies_about_its_size(tmp_path, capsys):
    path = _lying_npz(tmp_path / "lies.npz")
    assert path.stat().st_size < 100_000
    args = ["train", "--preset", "npz", "--data.path", str(path), "--out_dir", str(tmp_path / "r")]
    assert main(args) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(path) in line and "key 'x_tab' claims shape (1000000000, 1000)" in line, line


def test_an_hdf5_dataset_that_lies_about_its_size(tmp_path):
    h5py = pytest.importorskip("h5py")
    from infmasking.data.errors import DatasetError, read_array

    path = tmp_path / "lies.h5"
    with h5py.File(path, "w") as f:  # chunked, nothing written: a few KB claiming 4 TB
        f.create_dataset("x", shape=(10**7, 10**5), dtype="f4", chunks=(16, 16))
        f.create_dataset("ok", data=np.arange(12.0).reshape(3, 4))
    assert path.stat().st_size < 100_000
    with h5py.File(path, "r") as f:
        assert read_array(f, "ok", path).shape == (3, 4)
        with pytest.raises(DatasetError, match="key 'x' claims shape"):
            read_array(f, "x", path)


class _HugeArray:
    """Pickles as numpy's own first step of unpickling an array, with a shape of 10**13."""

    def __reduce__(self):
        return (_reconstruct, (np.ndarray, (10**13,), b"b"))


def test_pickles_that_expand_without_bound(tmp_path):
    import pickle

    from infmasking.data.errors import DatasetError, read_pickle

    laughs = [0]
    for _ in range(40):  # 2**40 items once expanded, 40 lists in the file
        laughs = [laughs, laughs]
    path = tmp_path / "laughs.pkl"
    path.write_bytes(pickle.dumps({"train": laughs}, protocol=2))
    with pytest.raises(DatasetError, match="expands to more than"):
        read_pickle(path, "affect")
    huge = tmp_path / "huge.pkl"  # numpy's _reconstruct asked for 10**13 elements
    huge.write_bytes(pickle.dumps(_HugeArray(), protocol=2))
    with pytest.raises(DatasetError, match="larger than the file could hold"):
        read_pickle(huge, "affect")


_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefghijk", "bcdefghijkl")
)  # 10**12 items once expanded, 110 aliases


@pytest.mark.parametrize(
    "content, message",
    [
        (_LAUGHS + "seed: 0\n", "aliases"),
        ("seed: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than"),
    ],
)
def test_config_files_built_to_expand(tmp_path, capsys, content, message):
    config = tmp_path / "bomb.yaml"
    config.write_text(content)
    code, line = _cli(["train", "--config", str(config), "--out_dir", str(tmp_path / "r")], capsys)
    assert code == 1
    assert str(config) in line and message in line, line


# 8. messages that mislead ------------------------------------------------------------------


def test_a_special_file_is_named_as_one(run_dir, tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out_fifo = tmp_path / "model.pt2"  # an output name holding a FIFO: never replaced
    os.mkfifo(out_fifo)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    out = ["--out_dir", str(tmp_path / "r")]
    cases = [
        (["train", "--config", str(fifo), *out], "a special file"),
        (["train", "--config", str(folder), *out], "a folder, not a file"),
        (["train", "--preset", "npz", "--data.path", str(fifo), *out], "a special file"),
        (["evaluate", str(fifo)], "a special file"),
        (["embed", str(fifo)], "a special file"),
        (["embed", str(run_dir), "--export", str(out_fifo), "--overwrite", "true"], "special file"),
    ]
    for args, message in cases:
        code, line = _cli(args, capsys)
        assert code == 1, args
        assert message in line and "no such file" not in line, line
    assert not (tmp_path / "r").exists() and out_fifo.is_fifo()


def test_json_that_nests_without_end_or_is_not_a_file(tmp_path):
    """Every JSON file the library reads (reports, probe curves, data.json, MM-IMDb's) goes
    through one reader: nested without end, or a FIFO that would block, is one line naming it."""
    from infmasking.training.errors import ReportError
    from infmasking.training.report.schema import RunReport

    deep = tmp_path / "report.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ReportError, match="report.json: JSON nested too deep"):
        RunReport.read(deep)
    fifo = tmp_path / "evaluation.json"
    os.mkfifo(fifo)
    with pytest.raises(ReportError, match="evaluation.json: not a regular file"):
        RunReport.read(fifo)


def test_a_checkpoint_that_lies_about_a_record_size(run_dir, tmp_path, capsys):
    """A checkpoint whose zip directory claims a 4 GB tensor record in a small file: refused by
    torch's reader before allocating, and said in one line naming the file (exit 1)."""
    import struct

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ckpt = run / "checkpoints" / "last.ckpt"
    b = bytearray(ckpt.read_bytes())
    at = b.find(b"PK\x01\x02")  # the first central directory entry
    patched = 0
    while at >= 0:
        n = struct.unpack("<H", b[at + 28 : at + 30])[0]
        if b"/data/" in bytes(b[at + 46 : at + 46 + n]):
            b[at + 24 : at + 28] = struct.pack("<I", 0xFFFFFFF0)
            patched += 1
        at = b.find(b"PK\x01\x02", at + 4)
    assert patched
    ckpt.write_bytes(bytes(b))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, line = _cli(["evaluate", str(run), "--num_threads", "1"], capsys)
    assert code == 1 and f"cannot read checkpoint {ckpt}" in line, line
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_loose_checkpoint_leaves_its_folders_links_alone(run_dir, tmp_path, capsys):
    """A checkpoint outside a run folder (~/model.ckpt beside a dotfile link named config.yaml)
    is evaluated; only the names evaluate writes there must not be links."""
    loose = tmp_path / "home"
    loose.mkdir()
    shutil.copy(run_dir / "checkpoints" / "last.ckpt", loose / "model.ckpt")
    victim = _victim(tmp_path)
    (loose / "config.yaml").symlink_to(victim)  # the user's own, not ours
    assert main(["evaluate", str(loose / "model.ckpt"), "--num_threads", "1"]) == 0
    assert (loose / "evaluation.json").is_file() and victim.read_bytes() == VICTIM
    (loose / "evaluation.json").unlink()
    (loose / "evaluation.md").unlink()
    (loose / "evaluation.md").symlink_to(victim)  # a name evaluate writes: refused
    code, line = _cli(["evaluate", str(loose / "model.ckpt"), "--num_threads", "1"], capsys)
    assert code == 1 and "evaluation.md is a symbolic link" in line, line
    assert victim.read_bytes() == VICTIM
