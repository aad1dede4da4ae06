"""Every file the library writes goes through :func:`write_atomic`: a temporary file created
beside the target (``O_EXCL``: never an existing name, never through a link), written, flushed,
fsynced, then renamed over the target. A rename replaces a link planted under the target's name
instead of following it, and until the rename the previous file is intact; a crash or a full
disk never leaves a truncated file under the final name. A full disk (or a quota, or a file
size limit) is :class:`NoSpaceError`: one line naming the file (docs/SECURITY.md)."""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: errno values that mean "the disk cannot take this file".
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}

#: The names :func:`write_atomic` gives its temporary files (``.<name>.<random>.tmp``); a
#: crash may leave one behind, and ``--overwrite`` clears them with the run's own files.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]{6,}\.tmp")


class NoSpaceError(OSError):
    """A write failed for want of space (``ENOSPC``, ``EDQUOT``, ``EFBIG``); its message is one
    line naming the file. Nothing is left under the file's name: the previous file, if any, is
    intact."""

    def __init__(self, path: Path, cause: OSError):
        super().__init__(cause.errno, f"no space left writing {path} ({cause.strerror})")
        self.filename = str(path)

    def __str__(self) -> str:
        return self.strerror


class _Sink(io.FileIO):
    """The temporary file as the writer sees it: every ``write`` writes all its bytes, and the
    first OS error is kept (a writer in C++, torch's, may hide it behind its own message)."""

    error: OSError | None = None
    target: Path | None = None  # the file this temporary file becomes

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += _raw_write(self, view[done:])
        except OSError as e:
            if self.error is None:
                self.error = e
            raise
        return done


def _raw_write(f: io.FileIO, data: memoryview) -> int:
    """One write system call (tests replace it to simulate a full disk)."""
    return io.FileIO.write(f, data)


def check_output(path: str | Path, option: str) -> None:
    """Refuse (ValueError, one line naming ``option``) an output name that holds a folder or a
    special file (a FIFO, a device such as /dev/null, a socket): :func:`write_atomic` would
    rename a file over it, even with ``--overwrite``."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise ValueError(f"{option} {path} is a folder; give a file name")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise ValueError(
            f"{option} {path} is a special file (FIFO, device or socket), not a regular file; "
            "it is never replaced: give a file name"
        )


#: The largest JSON file the library reads (reports, probe curves, data.json, MM-IMDb's json).
JSON_MAX_BYTES = 64 << 20


def read_json(path: str | Path, max_bytes: int = JSON_MAX_BYTES):
    """A JSON file's content. Raises ValueError, one line naming the file: not a regular file
    (a FIFO would block), larger than ``max_bytes``, not UTF-8, not JSON, or nested too deep
    for the parser (a crafted ``[[[[...`` is a RecursionError deep inside ``json``).
    FileNotFoundError passes through (callers say what a missing file means)."""
    import json
    import stat

    path = Path(path)
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file (a folder or a special file)")
    if st.st_size > max_bytes:
        raise ValueError(f"{path}: {st.st_size} bytes, more than the {max_bytes} read (refused)")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deep to read (refused)") from None
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); the file is damaged") from None


def _mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, content: bytes | str | Callable[[BinaryIO], None]) -> Path:
    """Write ``content`` to ``path`` atomically (see the module's docstring).

    Args:
        path: the file to write (its folder must exist).
        content: bytes, text (UTF-8), or a function that writes into the open binary file
            (``torch.save``, ``np.savez``, ``savefig`` ...).

    Returns:
        ``path``.

    Raises:
        NoSpaceError: the disk, a quota or a file size limit refused the bytes.
        OSError: any other failure to write (the target is untouched).
    """
    path = Path(path)
    sink = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise NoSpaceError(path, e) from None
        raise
    try:
        sink = _Sink(fd, "wb", closefd=True)
        sink.target = path
        with sink:
            if callable(content):
                content(sink)
            else:
                sink.write(content.encode() if isinstance(content, str) else content)
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(tmp, _mode())  # mkstemp makes 0600; a written file gets the usual mode
        os.replace(tmp, path)
        tmp = None
    except BaseException as e:
        cause = sink.error if sink is not None and sink.error is not None else e
        if isinstance(cause, OSError) and cause.errno in _NO_SPACE:
            raise NoSpaceError(path, cause) from None
        raise
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
