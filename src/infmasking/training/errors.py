"""The errors of the run layer: what the CLI turns into exit codes."""

from __future__ import annotations

from pathlib import Path


class RunError(RuntimeError):
    """A run cannot start as asked (finished run in the folder, config mismatch, bad checkpoint)."""


class ReportError(RunError):
    """A run's report (``report.json`` / ``evaluation*.json``) is missing, unreadable or not a
    report; the message names the file."""


class StopNow(Exception):
    """Raised inside fit after a signal's checkpoint is saved (caught in :func:`train`)."""


class RunStopped(Exception):
    """Training was stopped by a signal after saving a resumable checkpoint.

    Attributes: ``signal_name`` ("SIGTERM" | "SIGINT"), ``exit_code`` (143 | 130, the shell's
    convention 128 + signal number), ``checkpoint`` (the saved file)."""

    def __init__(self, signal_name: str, checkpoint: Path | None):
        self.signal_name, self.checkpoint = signal_name, checkpoint
        self.exit_code = {"SIGTERM": 143, "SIGINT": 130}.get(signal_name, 1)
        super().__init__(f"{signal_name}: training stopped, checkpoint {checkpoint}")
