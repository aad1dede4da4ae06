"""May a run start or resume in a folder: the ``--out_dir`` check (:func:`check_out_dir`: resume,
clear or refuse), whether a checkpoint belongs to its run folder
(:func:`check_checkpoint_belongs`), the newest intact checkpoint, and the identity of the data a
run trained on (:func:`data_identity`, :func:`check_data_identity`; docs/SECURITY.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infmasking.files import read_json
from infmasking.training.config import RunConfig
from infmasking.training.config_files import from_dict, load_config, to_dict
from infmasking.training.errors import RunError
from infmasking.training.folder import RunFolder, is_run_folder, library_files
from infmasking.training.logger import plain


def check_out_dir(cfg: RunConfig, out: Path, overwrite: bool) -> Path | None:
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
            diff = [d for d in config_diff(old, new) if not d.startswith("eval.")]
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
        diff = config_diff(_normalised(to_dict(load_config(run.config))), _normalised(theirs))
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


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The options that differ between two configs in ``to_dict`` form, one
    ``"section.option: old -> new"`` per option (``progress_bar`` / ``num_threads`` ignored:
    they do not change a run)."""
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += config_diff(a[k], b[k], f"{prefix}{k}.")
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
