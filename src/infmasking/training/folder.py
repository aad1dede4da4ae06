"""The run folder's layout: the files a run writes (:data:`RUN_FILES`, :class:`RunFolder`),
which files in a folder are the library's (:func:`library_files`) and whether a folder holds a
run (:func:`is_run_folder`). Whether a run may start or resume in it:
:mod:`~infmasking.training.resume`; its lock: :mod:`~infmasking.training.lock`
(docs/SECURITY.md)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from infmasking import probe_registry
from infmasking.files import TEMPORARY, read_json, write_atomic
from infmasking.training.config_files import load_config
from infmasking.training.errors import ReportError, RunError
from infmasking.training.report.schema import RunReport

#: Written at the start of every run: the folder is one of the library's run folders.
RUN_MARKER = ".infmasking-run"
#: The files a run writes at the top of its folder (evaluations: :func:`_evaluation`).
RUN_FILES = (
    RUN_MARKER,
    "config.yaml",
    "hparams.yaml",
    "metrics.csv",
    "report.json",
    "report.md",
    "probe.png",
    "training_curves.png",
    "probe_curve.json",
    "probe_curve.png",
    "probe_curve_robust.png",
    "data.json",
)


def _other_probes() -> list[str]:
    """The probes an evaluation's name says (all but the default, "published"), as registered
    now (:mod:`infmasking.probe_registry`)."""
    return [p for p in probe_registry.PROBES if p != "published"]


def _evaluation() -> re.Pattern[str]:
    """The files of an evaluation (:func:`~infmasking.training.report.build.evaluation_name`), read
    when asked: a probe registered at run time names its own."""
    parts = [*_other_probes(), "fused", "concat", "balanced", "robust_standardised", "robust_off"]
    alternatives = "|".join(map(re.escape, parts))
    return re.compile(rf"evaluation(_({alternatives}))*(\.json|\.md|_rus\.png)")


_CHECKPOINT = re.compile(r"last\.ckpt(\.tmp-\d+)?")
#: Written into a run folder by other commands (``embed`` by default); never links either.
_OTHER_OUTPUTS = ("features.npz", "model.pt2", "run.lock")


def _temporary_of(name: str, ours) -> bool:
    """``name`` is a temporary file :func:`~infmasking.files.write_atomic` left (a crash) while
    writing a file that ``ours(final_name)`` says is the library's."""
    m = TEMPORARY.fullmatch(name)
    return bool(m and ours(m.group("name")))


class RunFolder:
    """One run folder and the files the library keeps in it.

    ``report.json`` / ``report.md`` (the run's report; present = the run finished),
    ``evaluation*.json`` / ``.md`` (re-probes, :func:`~infmasking.commands.evaluate.evaluate`),
    ``probe_curve.json`` (the probes of every probed epoch), ``checkpoints/last.ckpt``,
    ``config.yaml``, ``metrics.csv``, ``data.json`` and the marker :data:`RUN_MARKER`.

    Args:
        path: the folder (need not exist).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def of_checkpoint(cls, ckpt: str | Path) -> RunFolder:
        """The run folder of a checkpoint (``RUN/checkpoints/last.ckpt`` -> ``RUN``; a
        checkpoint elsewhere: its own folder)."""
        ckpt = Path(ckpt)
        return cls(ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def file(self, name: str) -> Path:
        """``name`` inside the folder."""
        return self.path / name

    # the files -------------------------------------------------------------------------------

    @property
    def report_json(self) -> Path:
        """``report.json``: the run's report (written last: the run finished)."""
        return self.path / "report.json"

    @property
    def report_md(self) -> Path:
        """``report.md``: the report's Markdown."""
        return self.path / "report.md"

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: the folder of the checkpoints."""
        return self.path / "checkpoints"

    @property
    def checkpoint(self) -> Path:
        """``checkpoints/last.ckpt``: the trained (or resumable) model."""
        return self.checkpoints / "last.ckpt"

    @property
    def config(self) -> Path:
        """``config.yaml``: every option of the run, resolved."""
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        """``metrics.csv``: the loss terms per step (Lightning's CSV logger)."""
        return self.path / "metrics.csv"

    @property
    def probe_curve_json(self) -> Path:
        """``probe_curve.json``: the probes of every probed epoch (``eval.probe_every``)."""
        return self.path / "probe_curve.json"

    @property
    def data_json(self) -> Path:
        """``data.json``: the identity of the data the run trained on."""
        return self.path / "data.json"

    @property
    def marker(self) -> Path:
        """:data:`RUN_MARKER`: written at the start of every run."""
        return self.path / RUN_MARKER

    @property
    def lock(self) -> Path:
        """``run.lock``: the process training into the folder."""
        return self.path / "run.lock"

    def report_file(self, name: str = "report") -> Path:
        """``<name>.json``, for ``name`` "report" or an evaluation's name
        (:func:`~infmasking.training.report.build.evaluation_name`).

        Raises:
            ValueError: ``name`` is neither.
        """
        if name != "report" and not _evaluation().fullmatch(f"{name}.json"):
            raise ValueError(
                f"report name {name!r}: expected 'report' or 'evaluation[_"
                + "|_".join(_other_probes())
                + "][_fused|_concat][_balanced][_robust_standardised|_robust_off]'"
            )
        return self.path / f"{name}.json"

    def refuse_links(self, what: str = "run folder", only: list[str] | None = None) -> None:
        """Refuse (RunError, one line) a folder in which a name the library reads or writes is
        a symbolic link or a special file: a run folder handed to us is untrusted, and a link
        planted there (``evaluation.json`` -> a file of yours) must never be written through or
        read as the run's. Called wherever a run folder is opened (train, resume, evaluate,
        embed, load_run). ``only``: just these names (a folder that is not a run folder, into
        which a command writes these files)."""
        if not self.path.is_dir():
            return
        names = [*RUN_FILES, *_OTHER_OUTPUTS, "checkpoints", "tensorboard"]
        evaluation = _evaluation()
        names += [p.name for p in self.path.glob("evaluation*") if evaluation.fullmatch(p.name)]
        paths = [self.file(n) for n in (names if only is None else only)]
        if only is None and self.checkpoints.is_dir() and not self.checkpoints.is_symlink():
            paths += [p for p in self.checkpoints.iterdir() if p.suffix == ".ckpt"]
        board = self.path / "tensorboard"
        if only is None and board.is_dir() and not board.is_symlink():
            paths += [board / "hparams.yaml", *board.glob("events.out.tfevents.*")]
        for p in paths:
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            except OSError as e:  # a name too long, permissions: said as it is
                raise RunError(f"{what} {self.path}: cannot read {p} ({e.strerror})") from None
            folder_ok = p.name in ("checkpoints", "tensorboard") and p.parent == self.path
            if stat.S_ISLNK(st.st_mode):
                raise RunError(
                    f"{what} {self.path}: {p.relative_to(self.path)} is a symbolic link (to "
                    f"{os.readlink(p)}); a run folder's own files must be regular files, never "
                    "written through a link: remove the link or choose another folder"
                )
            if not (stat.S_ISREG(st.st_mode) or (folder_ok and stat.S_ISDIR(st.st_mode))):
                kind = (
                    "a folder"
                    if stat.S_ISDIR(st.st_mode)
                    else "a special file (not a regular file)"
                )
                raise RunError(
                    f"{what} {self.path}: {p.relative_to(self.path)} is {kind}; a run folder's "
                    "own files must be regular files: move it away or choose another folder"
                )

    # reading and writing ---------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The run finished: its ``report.json`` exists."""
        return self.report_json.is_file()

    def report(self) -> RunReport:
        """The run's report (``report.json``), with :attr:`RunReport.folder` this folder.

        Raises:
            ReportError: it is missing or malformed (the message names the file).
        """
        return RunReport.read(self.report_json, folder=self.path)

    def evaluation(self, name: str = "evaluation") -> RunReport | None:
        """The cached evaluation ``<name>.json`` (e.g. ``evaluation_balanced``), None if the
        run has none of that name.

        Raises:
            ValueError: ``name`` is not an evaluation's name.
            ReportError: the file is malformed (the message names it).
        """
        if name == "report":
            raise ValueError("evaluation('report'): the run's own report is report()")
        path = self.report_file(name)
        return RunReport.read(path, folder=self.path) if path.is_file() else None

    def probe_curve(self) -> list[dict[str, Any]]:
        """The rows of ``probe_curve.json``, one per probed epoch ([] without the file).

        Raises:
            ReportError: the file is not a JSON list of rows (the message names it).
        """
        path = self.probe_curve_json
        if not path.is_file():
            return []
        try:
            rows = read_json(path)
        except ValueError as e:
            raise ReportError(str(e)) from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ReportError(f"{path}: not a probe curve (expected a JSON list of rows)")
        return rows

    def write_report(self, report: RunReport, name: str = "report") -> RunReport:
        """Write ``<name>.json`` and ``<name>.md`` (the report's Markdown).

        Args:
            report: what to write.
            name: "report" (the run's) or an evaluation's name.

        Returns:
            ``report`` with :attr:`RunReport.folder` this folder.
        """
        path = self.report_file(name)
        write_atomic(path, json.dumps(report.to_json(), indent=1, default=float))
        write_atomic(path.with_suffix(".md"), report.markdown + "\n")
        return report.replace(folder=self.path)


def library_files(out: Path) -> list[Path]:
    """The files in ``out`` that a run writes, by exact name (nothing else is ever removed)."""
    folder = RunFolder(out)
    evaluation = _evaluation()

    def top(name: str) -> bool:
        return name in RUN_FILES or bool(evaluation.fullmatch(name))

    found = [folder.file(n) for n in RUN_FILES if folder.file(n).is_file()]
    found += [p for p in out.glob("evaluation*") if p.is_file() and evaluation.fullmatch(p.name)]
    found += [p for p in out.glob(".*.tmp") if p.is_file() and _temporary_of(p.name, top)]
    ckpts = folder.checkpoints
    if ckpts.is_dir():
        found += [
            p
            for p in ckpts.iterdir()
            if p.is_file()
            and (_CHECKPOINT.fullmatch(p.name) or _temporary_of(p.name, _CHECKPOINT.fullmatch))
        ]
    board = out / "tensorboard"  # --trainer.logger tensorboard
    if board.is_dir():
        found += [
            p
            for p in board.iterdir()
            if p.is_file()
            and (p.name.startswith("events.out.tfevents.") or p.name == "hparams.yaml")
        ]
    return found


def is_run_folder(out: Path) -> bool:
    """``out`` holds a run of this library: its marker, or (runs from before the marker) a
    ``config.yaml`` that parses as a run config beside ``hparams.yaml`` or a checkpoint."""
    folder = RunFolder(out)
    if folder.marker.is_file():
        return True
    if not folder.config.is_file():
        return False
    if not (folder.file("hparams.yaml").is_file() or folder.checkpoint.is_file()):
        return False
    try:
        load_config(folder.config)
    except Exception:  # noqa: BLE001 - a file that does not parse is not ours
        return False
    return True
