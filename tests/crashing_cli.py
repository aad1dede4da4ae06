"""Test aid: the ``infmasking`` CLI in a process that hard-kills itself (exit 17, no cleanup)
at the start of epoch N, once epoch N-1's checkpoint is on disk — as a killed job dies; or,
with ``SIGTERM:K`` / ``SIGINT:K``, that sends itself the signal after global step K (mid-epoch);
or, with ``KILL:K``, that hard-kills itself after global step K.

    python tests/crashing_cli.py N train --preset tiny --out_dir ...
    python tests/crashing_cli.py SIGTERM:4 train --preset tiny --out_dir ...

With ``TEST_COMPILE_BACKEND=aot_eager``, ``--trainer.compile true`` compiles through that
backend (traced and differentiated as for Inductor, no kernels generated: fast on a CPU).
"""

import os
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from infmasking import cli
from infmasking.commands import train as run


class CrashAtEpochStart(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == self.epoch:
            os._exit(17)


class KillAtStep(Callback):
    """Hard kill (exit 17, no cleanup) before step K+1, after step K's callbacks ran."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os._exit(17)


class SignalAtStep(Callback):
    def __init__(self, name: str, step: int):
        self.name, self.step, self.sent = name, step, False

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        import signal

        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), getattr(signal, self.name))


def run_cli(args, env=None, crash_at=None, **kw):
    """The CLI in a subprocess (for the tests); ``crash_at=N``: the process kills itself at
    the start of epoch N."""
    cmd = ["-m", "infmasking.cli"] if crash_at is None else [str(Path(__file__)), str(crash_at)]
    return subprocess.run(
        [sys.executable, *cmd, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        **kw,
    )


def main() -> int:
    when, args = sys.argv[1], sys.argv[2:]
    backend = os.environ.get("TEST_COMPILE_BACKEND")
    if backend:  # --trainer.compile through this backend (aot_eager: no kernel generation)
        import functools

        import torch

        torch.compile = functools.partial(torch.compile, backend=backend)
    make_trainer = run.make_trainer
    if when.startswith("KILL:"):
        extra = KillAtStep(int(when.split(":")[1]))
    elif ":" in when:
        name, step = when.split(":")
        extra = SignalAtStep(name, int(step))
    else:
        extra = CrashAtEpochStart(int(when))

    def crashing(cfg, out, callbacks, *rest):
        # first, so that the signal lands before StopOnSigterm looks at this step
        return make_trainer(cfg, out, [extra, *callbacks], *rest)

    run.make_trainer = crashing
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
