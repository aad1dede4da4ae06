"""Errors and input checks shared by the dataset loaders.

Every loader reports bad input with a :class:`DatasetError` (a ``ValueError``) whose message
names the file, the key inside it, what was expected and what was found; a missing dataset
file or folder raises :class:`DatasetNotFoundError` (also a ``FileNotFoundError``) whose message
says where the data can be obtained. Nothing is ever downloaded.

The seeded train / valid / test split used where a dataset has none (MIMIC, Vision&Touch
episodes, own ``.npz`` data without a ``split`` array) is
:func:`infmasking.data.splits.seeded_split`.
"""

from __future__ import annotations

import contextlib
import contextvars
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """Malformed dataset input. The message names the file, the key, and what was expected
    versus what was found."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file or folder does not exist. The message says where to obtain it."""


def require_path(path: str | Path, dataset: str, *, kind: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` if it exists (as a file, a folder or either).

    Args:
        path: the path given by the user.
        dataset: the dataset's registry name (or the ``family`` its entry names), whose
            ``where_to_get`` text (:data:`infmasking.data.registry.REGISTRY`) the error quotes.
        kind: "file", "dir" or "any".

    Raises:
        DatasetNotFoundError: if it does not exist or is not of the expected kind.
    """
    p = Path(path).expanduser()
    special = p.exists() and not p.is_file() and not p.is_dir()  # a FIFO would block a read
    ok = {"file": p.is_file, "dir": p.is_dir, "any": p.exists}[kind]() and not special
    if not ok:
        what = {"file": "file", "dir": "folder", "any": "file or folder"}[kind]
        found = (
            "a folder"
            if p.is_dir()
            else "a special file (FIFO, device or socket)"
            if special
            else "a file"
            if p.exists()
            else "nothing"
        )
        if special or p.exists():  # it is there, but not what a dataset is read from
            raise DatasetError(f"{dataset} data: expected a {what} at '{p}', found {found}.")
        from infmasking.data.registry import where_to_get  # the text lives in the entry

        raise DatasetNotFoundError(
            f"{dataset} data: expected a {what} at '{p}', found {found}. "
            f"{where_to_get(dataset)} Nothing is downloaded automatically."
        )
    return p


#: The globals a data pickle may name: numpy arrays, dtypes and scalars, and builtin
#: containers. Anything else (``os.system``, ``builtins.eval``, a class of some package) is
#: refused before it is looked up, so no code of the file's choosing runs.
SAFE_PICKLE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [
        (np_core, name)
        for np_core in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    ]
    + [(np_num, "_frombuffer") for np_num in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [
        ("builtins", name)
        for name in (
            "dict",
            "list",
            "tuple",
            "set",
            "frozenset",
            "bytearray",
            "complex",
            "slice",
            "range",
        )
    ]
    + [("collections", "OrderedDict")]
    + [("_codecs", "encode")]  # bytes in protocol-2 pickles (str -> bytes, no side effects)
)

_unsafe_pickle: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "infmasking_unsafe_pickle", default=False
)


@contextlib.contextmanager
def unsafe_pickles(allowed: bool = True):
    """Within this block, :func:`read_pickle` uses the plain unpickler, which **runs code from
    the file** (``data.unsafe_pickle``): only for files you made or trust."""
    token = _unsafe_pickle.set(bool(allowed))
    try:
        yield
    finally:
        _unsafe_pickle.reset(token)


class UnsafePickleError(DatasetError):
    """A data pickle names a global outside :data:`SAFE_PICKLE_GLOBALS`."""


#: How many times its compressed size a zip member (deflate: at most ~1032) or an HDF5 dataset
#: (gzip, lzf) can expand; a claim beyond it is a file that lies about its size.
MAX_EXPANSION = 1100


def _too_big(path: str | Path, key: str, shape, dtype, claimed: int, holds: int) -> DatasetError:
    return DatasetError(
        f"{path}: key '{key}' claims shape {tuple(shape)} {dtype} ({claimed} bytes) but the "
        f"file holds at most {holds} bytes for it; the file is damaged or crafted (refused "
        "before allocating)"
    )


def open_npz(path: Path):
    """``np.load(path, allow_pickle=False)``, once every member's header (shape and dtype) has
    been checked against the bytes the file really holds for it: a few-KB file whose header
    claims terabytes is refused naming the file and the key, before anything is allocated."""
    import zipfile

    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable .npz file ({err}).") from err
    if not hasattr(npz, "zip"):  # a plain .npy: numpy checks its size against the file
        return npz
    try:
        size = Path(path).stat().st_size
        for info in npz.zip.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            stored = info.compress_type == zipfile.ZIP_STORED
            if info.compress_size > size or (stored and info.file_size > info.compress_size):
                raise _too_big(path, key, (), "data", info.file_size, min(size, info.compress_size))
            holds = info.file_size
            if not stored:
                holds = min(holds, max(info.compress_size, 1) * MAX_EXPANSION)
            with npz.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                header = f.tell()
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if claimed > holds - header:
                raise _too_big(path, key, shape, dtype, claimed, max(holds - header, 0))
    except DatasetError:
        npz.close()
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        npz.close()
        raise DatasetError(f"{path}: not a readable .npz file ({err}).") from err
    return npz


def check_claimed_size(value, file: str | Path, key: str) -> None:
    """An HDF5 dataset's shape against the bytes stored for it (compressed at most
    :data:`MAX_EXPANSION` times, plus 1 MiB of fill values): refused naming the file and the
    key before it is read. Other values pass (they are already in memory)."""
    id_ = getattr(value, "id", None)
    if not (
        hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(id_, "get_storage_size")
    ):
        return
    claimed = int(np.prod(value.shape, dtype=object)) * value.dtype.itemsize
    holds = id_.get_storage_size() * MAX_EXPANSION + (1 << 20)
    if claimed > holds:
        raise _too_big(file, key, value.shape, value.dtype, claimed, id_.get_storage_size())


def _checked_reconstruct(reconstruct, path: Path):
    """numpy's ``_reconstruct`` (how a pickle makes an array before filling it) that refuses a
    shape the file cannot hold: pickles make it with shape (0,), then set the data."""
    budget = Path(path).stat().st_size * MAX_EXPANSION + (1 << 20)

    def checked(subtype, shape, dtype):
        n = int(np.prod(shape, dtype=object)) if isinstance(shape, (tuple, list)) else shape
        if not isinstance(n, int) or n < 0 or n > budget:
            raise DatasetError(
                f"{path}: an array of shape {shape} in the pickle is larger than the file could "
                "hold; the file is damaged or crafted (refused before allocating)"
            )
        return reconstruct(subtype, shape, dtype)

    return checked


#: At most this many containers and items are walked in an unpickled structure: references to
#: one list from many places (a "billion laughs" built from the pickle memo) would otherwise
#: expand without bound when converted to arrays.
MAX_PICKLE_ITEMS = 20_000_000


def _check_expansion(obj, path: Path) -> None:
    seen = 0
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
            seen += len(x)
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
            seen += len(x)
        if seen > MAX_PICKLE_ITEMS:
            raise DatasetError(
                f"{path}: the pickle expands to more than {MAX_PICKLE_ITEMS} items (shared "
                "references); the file is damaged or crafted (refused)"
            )


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`SAFE_PICKLE_GLOBALS` (numpy dtype classes such as
    ``numpy.dtypes.Float32DType`` too: they carry no code)."""

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # Python 2 names in protocol < 3 pickles
            module = "builtins"
        if (module, name) in SAFE_PICKLE_GLOBALS or (
            module == "numpy.dtypes" and name.endswith("DType")
        ):
            found = super().find_class(module, name)
            if name == "_reconstruct":
                return _checked_reconstruct(found, self.path)
            return found
        raise UnsafePickleError(
            f"{self.path}: refused to unpickle global '{module}.{name}' (a data pickle may hold "
            "numpy arrays, dtypes and builtin containers and scalars only). If you made this "
            "file or trust it, --data.unsafe_pickle true reads it with the plain unpickler, "
            "which runs code from the file."
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.path}: refused a persistent id in a data pickle")


def read_pickle(path: Path, dataset: str) -> object:
    """Unpickle ``path`` with the restricted unpickler (:data:`SAFE_PICKLE_GLOBALS`; plain
    pickle inside :func:`unsafe_pickles`). A corrupt or non-pickle file raises a
    :class:`DatasetError`, a file naming any other global an :class:`UnsafePickleError`."""
    try:
        with open(path, "rb") as f:
            if _unsafe_pickle.get():
                return pickle.load(f)
            obj = _SafeUnpickler(f, path).load()
        _check_expansion(obj, path)
        return obj
    except UnsafePickleError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        TypeError,
        ValueError,
        KeyError,
    ) as err:
        raise DatasetError(f"{path}: not a readable {dataset} pickle ({err!r}).") from err


def require_key(container, key: str, file: str | Path, *, where: str = "") -> object:
    """``container[key]``, or a :class:`DatasetError` naming the file, the key and the keys
    that are there. ``where`` prefixes the key in the message (e.g. "train/")."""
    try:
        present = key in container
    except TypeError:
        present = False
    if not present:
        keys = sorted(map(str, container.keys())) if hasattr(container, "keys") else []
        found = f"keys {keys}" if hasattr(container, "keys") else f"a {type(container).__name__}"
        raise DatasetError(f"{file}: missing key '{where}{key}'; found {found}.")
    return container[key]


def require_mapping(value, file: str | Path, key: str) -> dict:
    """``value`` if it is a dict, else a :class:`DatasetError`."""
    if not isinstance(value, dict):
        raise DatasetError(
            f"{file}: key '{key}' should hold a dict of arrays, found {type(value).__name__}."
        )
    return value


def _fmt_shape(shape: Sequence[int | str | None]) -> str:
    parts = ["*" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_array(
    value,
    file: str | Path,
    key: str,
    *,
    shape: Sequence[int | str | None] | None = None,
    dtype: str = "numeric",
    what: str = "",
) -> np.ndarray:
    """Check one array and return it as a numpy array.

    Args:
        value: anything ``np.asarray`` accepts (an h5py dataset is read fully).
        file, key: named in the error message.
        shape: expected shape; an ``int`` entry must match exactly, a ``str`` entry (a
            dimension name such as "N") must be equal wherever the same name occurs, ``None``
            matches anything. The number of entries fixes ``ndim``.
        dtype: "numeric" (bool/int/float), "float" (int/float), "integer" (bool/int),
            "uint8" (exactly uint8) or "string".
        what: a few words on what the array is, quoted in the error.

    Raises:
        DatasetError: on a wrong number of dimensions, a wrong size or a wrong dtype.
    """
    check_claimed_size(value, file, key)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{file}: key '{key}' is not an array ({err}).") from err
    desc = f" ({what})" if what else ""
    kinds = {"numeric": "biuf", "float": "iuf", "integer": "biu", "uint8": "u", "string": "US"}
    expected_dtype = {
        "numeric": "a numeric array",
        "float": "a numeric (float or int) array",
        "integer": "an integer or bool array",
        "uint8": "uint8",
        "string": "strings",
    }[dtype]
    if arr.dtype.kind not in kinds[dtype] or (dtype == "uint8" and arr.dtype != np.uint8):
        raise DatasetError(
            f"{file}: key '{key}' has dtype {arr.dtype}, expected {expected_dtype}{desc}."
        )
    if shape is not None:
        names: dict[str, int] = {}
        fits = [
            s is None or (s == n if isinstance(s, int) else names.setdefault(s, n) == n)
            for s, n in zip(shape, arr.shape)
        ]
        if arr.ndim != len(shape) or not all(fits):
            raise DatasetError(
                f"{file}: key '{key}' has shape {tuple(arr.shape)}, expected "
                f"{_fmt_shape(shape)}{desc}."
            )
    return arr


def read_array(
    container,
    key: str,
    file: str | Path,
    *,
    where: str = "",
    shape: Sequence[int | str | None] | None = None,
    dtype: str = "numeric",
    what: str = "",
) -> np.ndarray:
    """``container[key]`` checked by :func:`check_array` and returned as a numpy array.

    The key must be present (:func:`require_key`), and the array must then have the given
    ``shape`` and ``dtype`` (:func:`check_array`, whose error messages name the key as
    ``f"{where}{key}"``, e.g. "train/labels").

    Raises:
        DatasetError: the key is missing (the message lists the keys that are there), or the
            value is not an array, or it has a wrong number of dimensions, size or dtype.
    """
    value = require_key(container, key, file, where=where)
    return check_array(value, file, f"{where}{key}", shape=shape, dtype=dtype, what=what)


def check_rows(arrays: dict[str, np.ndarray], file: str | Path, *, where: str = "") -> int:
    """Check that all arrays have the same number of rows (samples); return it."""
    rows = {k: len(a) for k, a in arrays.items()}
    if len(set(rows.values())) > 1:
        listed = ", ".join(f"'{where}{k}': {n}" for k, n in rows.items())
        raise DatasetError(f"{file}: arrays disagree on the number of samples ({listed}).")
    return next(iter(rows.values()))


def check_finite_labels(y: np.ndarray, file: str | Path, key: str) -> np.ndarray:
    """Raise a :class:`DatasetError` if the labels ``y`` hold NaN or infinite values."""
    bad = ~np.isfinite(np.asarray(y, dtype=np.float64))
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DatasetError(
            f"{file}: key '{key}' holds {int(bad.sum())} non-finite (NaN/inf) label values, "
            f"expected finite labels; first bad rows: {rows[:5].tolist()}."
        )
    return y


def check_binary(y: np.ndarray, file: str | Path, key: str) -> np.ndarray:
    """Raise a :class:`DatasetError` unless every value of ``y`` is 0 or 1."""
    check_finite_labels(y, file, key)
    values = np.unique(y)
    if not np.isin(values, (0, 1)).all():
        raise DatasetError(
            f"{file}: key '{key}' should hold 0/1 labels, found values {values[:10].tolist()}."
        )
    return y


def check_nonempty(n: int, file: str | Path, split: str, detail: str = "") -> None:
    """Raise a :class:`DatasetError` if the split ``split`` has no samples."""
    if n == 0:
        extra = f" ({detail})" if detail else ""
        raise DatasetError(f"{file}: split '{split}' has no samples{extra}.")


def listed(values: Iterable, limit: int = 5) -> str:
    """A short listing of ``values`` for error messages ("a, b, c, ... (12 in all)")."""
    values = list(values)
    head = ", ".join(map(str, values[:limit]))
    return head + (f", ... ({len(values)} in all)" if len(values) > limit else "")
