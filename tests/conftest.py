"""Fixtures shared across test files: one tiny trained run, copied for each module that
reads it (training it once per module cost seconds each)."""

import shutil

import pytest

from infmasking.cli import main

TINY_ONE_EPOCH = ["--preset", "tiny", "--trainer.num_threads", "1", "--optim.epochs", "1"]


@pytest.fixture(scope="session")
def tiny_run_once(tmp_path_factory):
    """``infmasking train`` of the tiny preset for one epoch, once per session; do not write
    into it (use :func:`tiny_run_copy`)."""
    out = tmp_path_factory.mktemp("tiny_once") / "run"
    assert main(["train", *TINY_ONE_EPOCH, "--out_dir", str(out)]) == 0
    return out


def tiny_run_copy(tiny_run_once, tmp_path_factory, name: str):
    """A private copy of the session's tiny run (a module may write into it)."""
    out = tmp_path_factory.mktemp(name) / "run"
    shutil.copytree(tiny_run_once, out)
    return out
