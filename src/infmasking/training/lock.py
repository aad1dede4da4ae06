"""One lock for every command: ``run.lock`` names the process writing into a run folder
(:class:`RunLock`); every command refuses a folder a live process holds
(:func:`refuse_if_locked`, :func:`lock_holder`); a stale lock is taken over under a ``flock`` on
the folder, so of several processes exactly one wins (docs/SECURITY.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from infmasking.files import read_json
from infmasking.training.errors import RunError
from infmasking.training.folder import RunFolder


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
