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

import pytest
import torch
from conftest import tiny_run_copy

from infmasking import files
from infmasking.cli import main
from infmasking.files import NoSpaceError, write_atomic
from infmasking.training.errors import RunError

TINY = ["--preset", "tiny", "--trainer.num_threads", "1"]
VICTIM = b"the user's precious file\n"


@pytest.fixture(scope="module")
def run_dir(tiny_run_once, tmp_path_factory):
    return tiny_run_copy(tiny_run_once, tmp_path_factory, "hostile")  # TINY, trained once


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    return victim


def _one_line(err: str) -> str:
    """The error line (progress bars before it aside), checked to be the only one."""
    lines = [x for x in err.strip().splitlines() if "%|" not in x and x.strip()]
    assert len(lines) == 1, err
    return lines[0]


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
        ["train", *TINY, "--optim.epochs", "1", "--out_dir", str(run)],
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

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = run_dir / "run.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        before = sorted(p.name for p in run_dir.rglob("*"))
        for cmd in (
            ["embed", str(run_dir)],
            ["embed", str(run_dir / "checkpoints" / "last.ckpt"), "--out", str(tmp_path / "f.npz")],
            ["evaluate", str(run_dir / "checkpoints" / "last.ckpt"), "--num_threads", "1"],
            ["evaluate", str(run_dir), "--num_threads", "1"],
        ):
            assert main(cmd) == 1, cmd
            line = _one_line(capsys.readouterr().err)
            assert f"being trained by process {holder.pid}" in line, line
        with pytest.raises(RunError, match="being trained"):
            load_run(run_dir)
        assert sorted(p.name for p in run_dir.rglob("*")) == before
        assert not (tmp_path / "f.npz").exists()
    finally:
        holder.kill()
        holder.wait()
        (run_dir / "run.lock").unlink(missing_ok=True)


_CONTENDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import infmasking.training.folder as folder

    out, go = Path(sys.argv[1]), Path(sys.argv[2])
    alive = folder._alive

    def slow_alive(pid):  # widen the window between reading the stale lock and replacing it
        time.sleep(0.3)
        return alive(pid)

    folder._alive = slow_alive
    while not go.exists():
        time.sleep(0.005)
    try:
        with folder.RunLock(out):
            print("WON", flush=True)
            time.sleep(3)
    except folder.RunError as e:
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
    time.sleep(4)  # all imported and waiting (they spin on the go file)
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

    from infmasking.training import run as run_module

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
    args = ["train", *TINY, "--optim.epochs", "2", "--trainer.log_every_n_steps", "1"]
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
