"""Faults and bad input: SIGTERM, two runs in one folder, corrupt checkpoints, one-line errors,
meaningless options refused before training, vector modalities never masked away silently."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from conftest import TINY_ONE_THREAD
from crashing_cli import run_cli  # tests/ is on sys.path under pytest

from infmasking.cli import main


def test_sigterm_leaves_resumable_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = ["train", *TINY_ONE_THREAD, "--optim.epochs", "40", "--out_dir", str(out)]
    p = subprocess.Popen(
        [sys.executable, "-m", "infmasking.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (out / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 143
    assert "SIGTERM received" in stdout and "same command again to resume" in stdout
    # the run's own lines only: no Lightning notice about the checkpoint it saved, no blank line
    assert "weights_only" not in stdout + stderr and "\n\n" not in stdout
    assert (out / "checkpoints" / "last.ckpt").exists() and not (out / "report.json").exists()
    assert not (out / "run.lock").exists()
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert 0 < state["global_step"] < 40 * 3


def test_second_run_into_a_locked_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    import socket

    (out / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert main(["train", *TINY_ONE_THREAD, "--out_dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"process {os.getpid()}" in err and "in use by another run" in err
    # a lock left by a dead process is taken over, and said
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    assert main(["train", *TINY_ONE_THREAD, "--optim.epochs", "1", "--out_dir", str(out)]) == 0
    assert "Taking over" in capsys.readouterr().out
    assert not (out / "run.lock").exists() and (out / "report.json").exists()


def test_corrupt_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = ["train", *TINY_ONE_THREAD, "--optim.epochs", "3", "--out_dir", str(out)]
    r = run_cli(args, crash_at=1)
    assert r.returncode == 17
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["last.ckpt"]  # one checkpoint per run
    # an intact copy beside it (e.g. kept by the user) is used when last.ckpt is truncated
    import shutil

    shutil.copy(out / "checkpoints" / "last.ckpt", out / "checkpoints" / "epoch1.ckpt")
    (out / "checkpoints" / "last.ckpt").write_bytes(b"")  # truncated by a crash
    r = run_cli(args)
    assert r.returncode == 0, r.stderr
    assert "resuming from the newest intact one" in r.stdout and (out / "report.json").exists()
    # nothing readable: a message naming the files and what to do
    bad = tmp_path / "bad"
    (bad / "checkpoints").mkdir(parents=True)
    (bad / "checkpoints" / "last.ckpt").write_bytes(b"\x00" * 10)
    r = run_cli(["train", *TINY_ONE_THREAD, "--out_dir", str(bad)])
    assert r.returncode == 1 and "last.ckpt" in r.stderr and "--overwrite true" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.dim", "0"], "--model.dim must be an integer >= 1"),
        (["--model.n_layers", "0"], "--model.n_layers must be an integer >= 1"),
        (["--model.proj_dim", "0"], "--model.proj_dim"),
        (["--method.num_masks", "0"], "--method.num_masks"),
        (["--method.mask_lambda", "-1"], "--method.mask_lambda must be >= 0"),
        (["--optim.weight_decay", "-0.1"], "--optim.weight_decay must be >= 0"),
        (["--optim.epochs", "-1"], "--optim.epochs must be an integer >= 1"),
        (["--eval.class_weight", "foo"], "--eval.class_weight"),
        (["--eval.probe_max_train", "0"], "--eval.probe_max_train"),
        (["--eval.select", "best_valid"], "--eval.probe_every must be >= 1"),
        (["--eval.probe_at", "[1, 99]"], "--eval.probe_at must be epochs <= optim.epochs"),
        (["--eval.probe_at", "[1, 1]"], "--eval.probe_at must be a list of distinct epochs"),
        (["--trainer.checkpoint_every_n_steps", "-1"], "--trainer.checkpoint_every_n_steps"),
        (["--trainer.finite_check_every_n_steps", "0"], "--trainer.finite_check_every_n_steps"),
    ],
)
def test_meaningless_options_refused_before_training(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["train", *TINY_ONE_THREAD, *args, "--out_dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "config.yaml").exists()  # nothing started


def test_gpu_without_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert (
        main(
            [
                "train",
                *TINY_ONE_THREAD,
                "--trainer.accelerator",
                "gpu",
                "--out_dir",
                str(tmp_path / "r"),
            ]
        )
        == 1
    )
    assert "--trainer.accelerator" in capsys.readouterr().err


def test_bad_files_get_one_line(tmp_path, capsys):
    bad = tmp_path / "data.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    rc = main(
        ["train", "--preset", "npz", "--data.path", str(bad), "--out_dir", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert rc in (1, 2) and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "npz" in err or "zip" in err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["train", *TINY_ONE_THREAD, "--out_dir", str(afile)]) == 1
    assert "is an existing file" in capsys.readouterr().err
    # --debug shows the traceback instead
    with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises
        main(
            [
                "train",
                "--preset",
                "npz",
                "--data.path",
                str(bad),
                "--out_dir",
                str(tmp_path / "r"),
                "--debug",
            ]
        )


def test_empty_modality_and_single_class(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(
        p,
        x_a=rng.normal(size=(200, 5)).astype("f4"),
        x_b=np.zeros((200, 0), "f4"),
        y=rng.integers(0, 2, 200),
    )
    assert (
        main(["train", "--preset", "npz", "--data.path", str(p), "--out_dir", str(tmp_path / "r")])
        == 1
    )
    err = capsys.readouterr().err
    assert "'b'" in err and "empty" in err
    np.savez(
        p,
        x_a=rng.normal(size=(200, 5)).astype("f4"),
        x_b=rng.normal(size=(200, 3)).astype("f4"),
        y=np.zeros(200, int),
    )
    assert (
        main(["train", "--preset", "npz", "--data.path", str(p), "--out_dir", str(tmp_path / "r2")])
        == 1
    )
    assert "single class" in capsys.readouterr().err


def test_vector_tokens_keep_a_token_in_masked_views():
    from infmasking.models import build_model, num_kept
    from infmasking.training.module import auto_vector_tokens

    for r in (0.0, 0.3, 0.5, 0.7, 0.8, 0.9):
        n = auto_vector_tokens(r)
        assert num_kept(n, r) >= 1 and (n == 1 or num_kept(n - 1, r) == 0)
    assert auto_vector_tokens(0.7) == 4
    model = build_model(
        ["a", "b"],
        {"a": "vector", "b": "vector"},
        {"a": (3,), "b": (3,)},
        dim=8,
        n_heads=2,
        vector_tokens=1,
    )
    x = {"a": torch.randn(4, 3), "b": torch.randn(4, 3)}
    with pytest.warns(UserWarning, match="keeps no token"):
        model(x, num_masks=2, mask_ratio=0.7)
    model4 = build_model(
        ["a", "b"],
        {"a": "vector", "b": "vector"},
        {"a": (3,), "b": (3,)},
        dim=8,
        n_heads=2,
        vector_tokens=4,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model4(x, num_masks=2, mask_ratio=0.7)


def test_auto_threads_follow_the_cores_idle_now(monkeypatch):
    from infmasking.training import host

    monkeypatch.setattr(host, "usable_cores", lambda: 8)
    monkeypatch.setattr(host.os, "getloadavg", lambda: (40.0, 0.0, 0.0))
    # a load average still raised by work that has ended (an install) does not count
    monkeypatch.setattr(host, "busy_cores", lambda window=0.2: 0.3)
    assert host.auto_threads() == 8
    monkeypatch.setattr(host, "busy_cores", lambda window=0.2: 5.6)
    assert host.auto_threads() == 2
    monkeypatch.setattr(host, "busy_cores", lambda window=0.2: 40.0)
    assert host.auto_threads() == 1
    # no /proc/stat: the 1-minute load average
    monkeypatch.setattr(host, "busy_cores", lambda window=0.2: None)
    monkeypatch.setattr(host.os, "getloadavg", lambda: (5.6, 0.0, 0.0))
    assert host.auto_threads() == 2


def test_busy_cores_reads_the_window(monkeypatch):
    """Busy cores = cores x (busy jiffies / all jiffies) between two reads of /proc/stat."""
    from infmasking.training import host

    reads = iter([(100.0, 1000.0), (150.0, 1100.0)])
    monkeypatch.setattr(host, "_cpu_times", lambda cpus: next(reads))
    monkeypatch.setattr(host.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert host.busy_cores(window=0.0) == pytest.approx(1.0)
    monkeypatch.setattr(host, "_cpu_times", lambda cpus: None)
    assert host.busy_cores(window=0.0) is None


@pytest.fixture(scope="module")
def uninterrupted(tiny_reference):
    """The uninterrupted 2-epoch tiny run (loss logged every step) that the stop / kill tests
    compare their resumed runs with: the session's reference run (conftest), read only."""
    return tiny_reference


@pytest.mark.parametrize(
    "sig, code",
    [("SIGTERM", 143), pytest.param("SIGINT", 130, marks=pytest.mark.slow)],  # same path
)
def test_mid_epoch_stop_resumes_bit_for_bit(tmp_path, uninterrupted, sig, code):
    """Stopped after step 4 of 6 (the second of three batches of epoch 1), then resumed: the
    final weights and the logged losses equal an uninterrupted run's exactly."""
    args = ["train", *TINY_ONE_THREAD, "--optim.epochs", "2", "--trainer.log_every_n_steps", "1"]
    ref, out = uninterrupted, tmp_path / "run"
    r = run_cli([*args, "--out_dir", str(out)], crash_at=f"{sig}:4")
    assert r.returncode == code, r.stderr
    assert f"{sig} received at step 4" in r.stdout and "same command again" in r.stdout
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 4
    r = run_cli([*args, "--out_dir", str(out)])
    assert r.returncode == 0, r.stderr
    assert "not resumable" not in r.stderr
    a = torch.load(ref / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    import csv

    def losses(folder):
        with open(folder / "metrics.csv") as f:
            return [
                (r["step"], r.get("train/loss")) for r in csv.DictReader(f) if r.get("train/loss")
            ]

    assert losses(ref) == losses(out)


def test_step_checkpoints_survive_a_hard_kill(tmp_path, uninterrupted):
    """--trainer.checkpoint_every_n_steps 2, killed (no cleanup) after step 5 of 6: the run
    resumes from step 4's mid-epoch checkpoint and ends equal to an uninterrupted run, probing
    at the epochs eval.probe_at names."""
    args = ["train", *TINY_ONE_THREAD, "--optim.epochs", "2"]
    ref, out = uninterrupted, tmp_path / "run"
    # probes never touch the training randomness: the reference probes only at the end
    step_args = [*args, "--eval.probe_at", "[0, 1]", "--trainer.checkpoint_every_n_steps", "2"]
    step_args += ["--out_dir", str(out)]
    r = run_cli(step_args, crash_at="KILL:5")
    assert r.returncode == 17, r.stderr
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 4
    assert run_cli(step_args).returncode == 0
    a = torch.load(ref / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    curve = json.loads((out / "probe_curve.json").read_text())
    assert [row["epoch"] for row in curve] == [0, 1] and not (ref / "probe_curve.json").exists()


def test_periodic_finiteness_check(tmp_path):
    """--trainer.finite_check_every_n_steps 4 trains like the default; a non-finite loss the
    check has not read yet stops a checkpoint from being written."""
    from infmasking.training.config_files import load_config, presets
    from infmasking.training.module import SSLModule

    out = tmp_path / "run"
    args = [
        "train",
        *TINY_ONE_THREAD,
        "--trainer.finite_check_every_n_steps",
        "4",
        "--out_dir",
        str(out),
    ]
    assert main(args) == 0 and (out / "checkpoints" / "last.ckpt").exists()
    cfg = load_config(presets()["tiny"])
    module = SSLModule(
        cfg,
        ["image1", "image2"],
        {"image1": "image", "image2": "image"},
        {"image1": [3, 64, 64], "image2": [3, 64, 64]},
    )
    module.on_save_checkpoint({})  # nothing pending
    module._nonfinite = torch.tensor(True)
    with pytest.raises(FloatingPointError, match="checkpoint is not written"):
        module.on_save_checkpoint({})
