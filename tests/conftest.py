"""Fixtures shared across test files: tiny trained runs, each trained once per session (per
pytest-xdist worker) and copied for each module that writes into it (training one per module
cost seconds each)."""

import shutil

import pytest

from infmasking.cli import main

#: The tiny run's arguments of ``infmasking train``, defined here once for every test file
#: (tuples: shared, never changed): the tiny preset; on one thread (bit-identical math in every
#: process); for one epoch.
TINY = ("--preset", "tiny")
TINY_ONE_THREAD = (*TINY, "--trainer.num_threads", "1")
TINY_ONE_EPOCH = (*TINY_ONE_THREAD, "--optim.epochs", "1")


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


#: The uninterrupted reference run of the resume / stop / kill tests: the tiny preset's 2 epochs,
#: one thread (bit-identical math in every process), the loss logged every step.
TINY_REFERENCE = (*TINY_ONE_THREAD, "--optim.epochs", "2", "--trainer.log_every_n_steps", "1")


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    """``infmasking train`` of :data:`TINY_REFERENCE` in a subprocess (as the interrupted runs
    it is compared with), once per session; do not write into it (use :func:`tiny_run_copy`)."""
    from crashing_cli import run_cli

    out = tmp_path_factory.mktemp("reference") / "ref"
    r = run_cli(["train", *TINY_REFERENCE, "--out_dir", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    return out
