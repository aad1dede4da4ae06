"""The run folder: its files (:class:`RunFolder`), which files are the library's, resuming or
clearing one, its lock, and the identity of the data it trained on (docs/SECURITY.md)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from infmasking.files import TEMPORARY, read_json, write_atomic
from infmasking.training.config import (
    RunConfig,
    from_dict,
    load_config,
    to_dict,
)
from infmasking.training.errors import ReportError, RunError
from infmasking.training.logger import plain
from infmasking.training.run_report import RunReport

#: Written at the start of every run: the folder is one of the library's run folders.
RUN_MARKER = ".infmasking-run"
#: The files a run writes at the top of its folder (evaluations: :data:`_EVALUATION`).
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
_EVALUATION = re.compile(
    r"evaluation(_(standardised|fused|concat|balanced|robust_standardised|robust_off))*"
    r"(\.json|\.md|_rus\.png)"
)
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
        (:func:`~infmasking.training.report.evaluation_name`).

        Raises:
            ValueError: ``name`` is neither.
        """
        if name != "report" and not _EVALUATION.fullmatch(f"{name}.json"):
            raise ValueError(
                f"report name {name!r}: expected 'report' or 'evaluation[_standardised]"
                "[_fused|_concat][_balanced][_robust_standardised|_robust_off]'"
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
        names += [p.name for p in self.path.glob("evaluation*") if _EVALUATION.fullmatch(p.name)]
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

    def top(name: str) -> bool:
        return name in RUN_FILES or bool(_EVALUATION.fullmatch(name))

    found = [folder.file(n) for n in RUN_FILES if folder.file(n).is_file()]
    found += [p for p in out.glob("evaluation*") if p.is_file() and _EVALUATION.fullmatch(p.name)]
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


def _check_out_dir(cfg: RunConfig, out: Path, overwrite: bool) -> Path | None:
    """Returns the checkpoint to resume from, or None for a fresh run.

    Only a folder the library recognises as a run folder (:func:`is_run_folder`) is resumed
    or, with ``overwrite``, cleared — and then only of the files a run writes
    (:func:`library_files`); a folder that is not one is written into only where none of those
    names is taken, so no file of the user's is ever replaced or deleted."""
    folder = RunFolder(out)
    report, last, saved = folder.report_json, folder.checkpoint, folder.config
    ours = is_run_folder(out)
    ckpts = folder.checkpoints
    if not ours and not overwrite and ckpts.is_dir() and not saved.exists():
        # only checkpoints: a run folder that lost its files, resumed only if a checkpoint in
        # it is readable and holds an infmasking config (read, never deleted)
        if any(ckpts.glob("*.ckpt")):
            last = _intact_checkpoint(ckpts)
            if _checkpoint_config(last) is None:
                raise RunError(
                    f"--out_dir {out}: {last} is not an infmasking checkpoint; "
                    "choose another --out_dir"
                )
            return last
    if not ours:
        taken = [str(p.relative_to(out)) for p in library_files(out)]
        if ckpts.exists() and not ckpts.is_dir():
            taken.append("checkpoints")
        if taken:
            raise RunError(
                f"--out_dir {out} is not an infmasking run folder and holds "
                f"{', '.join(sorted(taken))}, which a run would replace; choose another "
                "--out_dir (--overwrite clears only run folders the library wrote)"
            )
        return None
    if report.exists() and not overwrite:
        raise RunError(
            f"{out} already holds a finished run ({report}); "
            "pass --overwrite true or choose another --out_dir"
        )
    if overwrite:
        # a clean folder: every file a run writes goes (nothing else is touched)
        for p in library_files(out):
            p.unlink(missing_ok=True)
        if ckpts.is_dir() and not any(ckpts.iterdir()):
            ckpts.rmdir()
        return None
    if last.exists() or any(ckpts.glob("*.ckpt")):
        last = _intact_checkpoint(ckpts)
        check_checkpoint_belongs(out, last, "cannot resume")
        # the folder's config.yaml, or (a folder that lost it) the config inside the checkpoint
        old = to_dict(load_config(saved)) if saved.exists() else _checkpoint_config(last)
        if old is not None and old["data"].get("path"):  # runs that stored a relative path
            old["data"]["path"] = str(Path(old["data"]["path"]).expanduser().resolve())
        if old is not None:
            new = to_dict(cfg)
            # evaluation settings do not change training: a finished training can be re-probed
            diff = [d for d in _diff(old, new) if not d.startswith("eval.")]
            if diff:
                raise RunError(
                    f"{out} holds an unfinished run with a different config ({', '.join(diff)}); "
                    "resume with the same config, or pass --overwrite true"
                )
        return last
    return None


def _checkpoint_config(ckpt: Path) -> dict[str, Any] | None:
    """The run config saved inside a (readable) checkpoint, in ``to_dict`` form; None if it
    holds none. A config that no longer parses is an error: the run cannot be compared."""
    import torch

    state = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True)
    hp = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hp, dict) or "config" not in hp:
        return None
    try:
        return to_dict(from_dict(hp["config"]))
    except ValueError as e:
        raise RunError(
            f"{ckpt} holds a run config this version cannot read ({e}); "
            "pass --overwrite true to start afresh"
        ) from None


#: What a checkpoint must share with its run folder's ``config.yaml`` to belong to that run:
#: every section that shapes the model or its training (``eval``, ``trainer`` and ``out_dir``
#: may differ: a re-probe, another machine, a moved folder).
_IDENTITY_SECTIONS = ("seed", "data", "model", "method", "augment", "optim")


def _normalised(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg.get(k) for k in _IDENTITY_SECTIONS}
    data = dict(out["data"] or {})
    if data.get("path"):  # runs that stored a relative path
        data["path"] = str(Path(data["path"]).expanduser().resolve())
    out["data"] = data
    return out


def check_checkpoint_belongs(folder: Path, ckpt: Path, what: str) -> None:
    """Refuse (RunError, one line naming the first differences) a checkpoint that does not
    belong to the run in ``folder``: its own configuration (method, model, data with its
    modalities, optimisation, seed) differs from the run's ``config.yaml``, or the modalities
    and input shapes it was built for differ from the run's ``hparams.yaml``. A folder without
    ``config.yaml`` (a loose checkpoint) has nothing to compare. Called wherever a checkpoint of
    a run folder is read (resume, evaluate, embed, load_run)."""
    import torch
    import yaml

    run = RunFolder(folder)
    hparams = run.file("hparams.yaml")
    if not is_run_folder(run.path):  # a loose checkpoint beside files that are not a run's
        return
    if not (run.config.is_file() or hparams.is_file()):  # a run folder that lost both
        return
    try:
        state = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by whoever loads it
        return
    hp = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hp, dict) or "config" not in hp:
        return  # not an infmasking checkpoint: the loader says so
    try:
        theirs = to_dict(from_dict(hp["config"]))
    except ValueError as e:
        raise RunError(
            f"{what}: {ckpt} holds a run config this version cannot read ({e})"
        ) from None
    diff = []
    if run.config.is_file():
        diff = _diff(_normalised(to_dict(load_config(run.config))), _normalised(theirs))
    if not diff and hparams.is_file():
        try:
            recorded = yaml.safe_load(hparams.read_text())
        except (yaml.YAMLError, OSError, ValueError):
            recorded = None
        if isinstance(recorded, dict):
            for key in ("modalities", "shapes"):
                want, got = recorded.get(key), hp.get(key)
                if key == "shapes" and isinstance(got, dict):
                    got = {m: list(s) for m, s in got.items()}
                if want is not None and got is not None and want != plain(got):
                    diff.append(f"{key}: {want!r} -> {plain(got)!r}")
    if diff:
        shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
        raise RunError(
            f"{what}: {ckpt} does not belong to the run in {folder} (run's {run.config.name} "
            f"-> checkpoint's own: {_short(shown)}); put the run's own checkpoint back, or "
            "start a new run"
        )


def _short(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters (a hostile value may be long or hold newlines)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _intact_checkpoint(folder: Path) -> Path:
    """``last.ckpt`` if it can be read; else the newest readable checkpoint beside it (said);
    else an error naming the unreadable file(s) and what to do."""
    import torch

    candidates = sorted(
        folder.glob("*.ckpt"), key=lambda p: (p.name != "last.ckpt", -p.stat().st_mtime)
    )
    bad = []
    for path in candidates:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "state_dict" not in state:
                raise ValueError("no state_dict")
        except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
            bad.append(f"{path.name} ({type(e).__name__})")
            continue
        if bad:
            print(
                f"Checkpoint(s) {', '.join(bad)} in {folder} cannot be read "
                "(truncated by a crash?); "
                f"resuming from the newest intact one, {path.name}"
            )
        return path
    raise RunError(
        f"cannot resume: every checkpoint in {folder} is unreadable ({', '.join(bad)}); "
        "delete it to restart, or pass --overwrite true"
    )


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _diff(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k) and k not in ("progress_bar", "num_threads"):
            out.append(f"{prefix}{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return out


def data_identity(path: str | None) -> dict[str, Any] | None:
    """What a run's data file is: absolute path, size and SHA-256 of the content (a folder:
    the number of files and a SHA-256 over their relative names and sizes). None without a
    data file (generated datasets)."""
    import hashlib

    if path is None:
        return None
    p = Path(path).expanduser().resolve()
    h = hashlib.sha256()
    if p.is_file():
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return {"path": str(p), "size": p.stat().st_size, "sha256": h.hexdigest()}
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        for q in files:
            h.update(f"{q.relative_to(p)}\0{q.stat().st_size}\n".encode())
        size = sum(q.stat().st_size for q in files)
        return {"path": str(p), "size": size, "files": len(files), "sha256_listing": h.hexdigest()}
    return None


def check_data_identity(folder: Path, path: str | None, what: str) -> None:
    """Refuse (RunError, one line) when the data at ``path`` is not what the run in ``folder``
    recorded in ``data.json`` when it trained (runs from before the record are not checked)."""
    record = RunFolder(folder).data_json
    if not record.is_file() or path is None:
        return
    try:
        want = read_json(record)
    except ValueError as e:
        raise RunError(f"{what}: {e}") from None
    if want is None or "generated" in want:  # generated data: no file to compare
        return
    got = data_identity(path)
    if got is None:
        raise RunError(f"{what}: the run's data {want['path']} is gone (recorded in {record})")
    if got["path"] != want["path"]:
        return  # another file, asked for explicitly (--data.path): the user's choice
    if got != want:
        raise RunError(
            f"{what}: the data file {want['path']} changed since the run trained on it (size "
            f"{want['size']} -> {got['size']}, recorded in {record}); restore it, or start a "
            "new run"
        )


def _read_lock(path: Path) -> dict[str, Any]:
    """The holder recorded in a lock file ({} if unreadable)."""
    try:
        holder = read_json(path, max_bytes=4096)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def lock_holder(folder: Path) -> int | None:
    """The PID of a live process on this host that holds ``folder/run.lock``, else None."""
    import socket

    holder = _read_lock(RunFolder(folder).lock)
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and _alive(pid):
        return pid
    return None


def refuse_if_locked(folder: Path, what: str) -> None:
    """Refuse (RunError, one line) to read a run another live process holds (its model is half
    trained, its files change under us): the lock means the same to every command."""
    path = RunFolder(folder).lock
    if (pid := lock_holder(folder)) is not None:
        command = _read_lock(path).get("command", "infmasking train")
        doing = "being trained" if command == "infmasking train" else f"in use ({command})"
        raise RunError(
            f"{what}: {folder} is {doing} by process {pid} ({path}); wait until it has finished"
        )


class _FolderMutex:
    """An exclusive ``flock`` on the folder itself, held only while a stale lock is examined and
    replaced: of several processes taking over the same stale lock at once, one wins. Where the
    file system has no ``flock`` it does nothing."""

    def __init__(self, folder: Path):
        self.folder, self.fd = folder, None

    def __enter__(self):
        try:
            import fcntl

            self.fd = os.open(self.folder, os.O_RDONLY)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            if self.fd is not None:
                os.close(self.fd)
            self.fd = None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock


def _create_lock(path: Path, holder: dict[str, Any]) -> None:
    """Create ``path`` holding ``holder`` (JSON) in one step: written to a temporary file, then
    hard-linked to the name (``link`` fails if the name exists, and never follows a link), so a
    lock is never seen empty or half written. Raises FileExistsError if the lock exists. Where
    hard links are not supported, ``O_EXCL`` creation and a write."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(holder, f)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w") as f:
                json.dump(holder, f)
    finally:
        os.unlink(tmp)


class RunLock:
    """``out/run.lock`` holds the PID, host and command of the process that writes into ``out``:
    ``train`` for the whole run, ``evaluate`` / ``embed`` while they write into a run folder.
    Every command refuses a folder a live process holds (:func:`refuse_if_locked`), naming the
    holder. A lock left by a dead process (same host) is taken over, and said; the take-over is
    atomic (examined and replaced under :class:`_FolderMutex`), so of several processes at once
    exactly one wins. Only the launching process locks (not DDP ranks > 0).

    Args:
        out: the folder.  command: who holds it, for the messages ("infmasking train").
        option: how the user named the folder, for the messages ("--out_dir").
    """

    def __init__(self, out: Path, command: str = "infmasking train", option: str = "--out_dir"):
        self.out, self.path, self.held = out, RunFolder(out).lock, False
        self.command, self.option = command, option

    def __enter__(self) -> RunLock:
        if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0":
            return self
        import socket

        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunError(
                f"{self.option} {self.out} cannot be created: a file is in the way"
            ) from None
        except PermissionError:
            raise RunError(
                f"{self.option} {self.out}: permission denied; choose a writable folder"
            ) from None
        host = socket.gethostname()
        me = {"pid": os.getpid(), "host": host, "command": self.command}
        for _ in range(3):
            try:
                # created only where no lock (nor a link planted as one) exists, whole
                _create_lock(self.path, me)
            except FileExistsError:
                with _FolderMutex(self.out):
                    # examined again under the mutex: another process may have taken it over
                    holder = _read_lock(self.path) if self.path.exists() else None
                    if holder is None:
                        continue  # released meanwhile: try to create it again
                    pid, where = holder.get("pid"), holder.get("host")
                    if where == host and isinstance(pid, int) and not _alive(pid):
                        print(
                            f"Taking over {self.path}: its process {pid} on {host} is no "
                            "longer running"
                        )
                        self.path.unlink(missing_ok=True)
                        try:
                            _create_lock(self.path, me)
                        except FileExistsError:
                            continue
                    else:
                        command = holder.get("command", "infmasking train")
                        raise RunError(
                            f"{self.out} is in use by another run (process {pid} on host "
                            f"{where}, {command}, {self.path}); wait for it, or remove the lock "
                            "if that run is gone"
                        ) from None
            except PermissionError:
                raise RunError(
                    f"{self.option} {self.out}: permission denied; choose a writable folder"
                ) from None
            self.held = True
            return self
        raise RunError(f"could not lock {self.path}: other processes keep taking it; try again")

    def __exit__(self, *exc) -> None:
        if self.held and _read_lock(self.path).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
