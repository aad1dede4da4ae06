"""``infmasking embed``: the features of a trained run's data written to a ``.npz`` file, or
its embedding exported as a ``torch.export`` program (the library: :mod:`infmasking.embed`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from infmasking.data.base import to_float_images
from infmasking.embed import embed_split, export_model, load_run
from infmasking.files import check_output, write_atomic
from infmasking.training.folder import RunFolder
from infmasking.training.loading import load_data
from infmasking.training.lock import RunLock
from infmasking.training.resume import check_data_identity


def output_file(
    given: str | None, default: Path, suffix: str, option: str, overwrite: bool, protected
) -> Path:
    """Where ``infmasking embed`` writes: ``given`` (a file, or a folder to write
    ``default.name`` into) or ``default``. Refused, naming ``option``: another suffix than
    ``suffix`` (numpy would silently write another name), an existing file without
    ``overwrite``, and ever one of the ``protected`` files (the data read, the checkpoint)."""
    path = Path(given) if given is not None else default
    if path.is_dir():
        path = path / default.name
    check_output(path, option)  # never a device or a FIFO, even with --overwrite
    if path.suffix != suffix:
        raise ValueError(f"{option} {path}: expected a {suffix} file name (or a folder)")
    for p in protected:
        if p is not None and path.exists() and os.path.samefile(path, p):
            raise ValueError(f"{option} {path} is the file this command reads; choose another")
    if path.exists() and not overwrite:
        raise ValueError(f"{option} {path} exists; pass --overwrite true to replace it")
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {path}: the folder {parent} is not writable")
    return path


def _lock_if_inside(path: Path, folder: Path):
    """The run folder's lock while ``path`` is written into it (a null context elsewhere)."""
    if path.resolve().parent == folder.resolve():
        return RunLock(folder, "infmasking embed", "RUN")
    return contextlib.nullcontext()


def embed(
    run_path: str,
    out: str | None = None,
    *,
    data_path: str | None = None,
    modalities: list[str] | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    export: str | None = None,
    overwrite: bool = False,
) -> None:
    """``infmasking embed``: features of every probe-train / probe-test (/ valid) sample, or
    with ``export`` a torch.export program of the model's embedding."""
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
    if modalities is not None and not modalities:
        raise ValueError("--modalities: give at least one modality (or leave it out for all)")
    run = load_run(run_path, device=device)
    folder = RunFolder.of_checkpoint(run.checkpoint).path
    protected = [run.checkpoint, data_path or run.config.data.path]
    protected = [p for p in protected if p is not None and Path(p).exists()]
    unknown = [m for m in modalities or [] if m not in run.modalities]
    if unknown:
        raise ValueError(
            f"--modalities: unknown modality {unknown[0]!r}; "
            f"this model was trained on {run.modalities}"
        )
    # where it writes is checked before any work: an existing file is refused at once
    if export:
        output_file(export, folder / "model.pt2", ".pt2", "--export", overwrite, protected)
    else:
        output_file(out, folder / "features.npz", ".npz", "--out", overwrite, protected)
    cfg = run.config
    if data_path is None:
        check_data_identity(folder, cfg.data.path, "embed")
    if data_path is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=data_path))
    data = load_data(cfg)
    if export:
        target = output_file(export, folder / "model.pt2", ".pt2", "--export", overwrite, protected)
        batch = data.probe_test[torch.arange(min(4, len(data.probe_test)))]
        example = {
            m: to_float_images(x) if run.kinds[m] == "image" else x for m, x in batch.inputs.items()
        }
        with _lock_if_inside(target, folder):
            path = export_model(run, target, example)
        print(
            f"wrote {path}: torch.export.load({str(path)!r}).module()("
            + ", ".join(run.modalities)
            + (
                ", "
                + ", ".join(f"padding_{m}" for m in run.modalities if run.kinds[m] == "sequence")
                if any(run.kinds[m] == "sequence" for m in run.modalities)
                else ""
            )
            + f") -> [B, {run.feature_dim()}]"
        )
        return
    missing = [
        m
        for m in run.modalities
        if m not in data.modalities and (modalities is None or m in modalities)
    ]
    if missing:
        raise ValueError(
            f"the data has modalities {data.modalities}; the model needs {missing[0]!r}"
            + ("" if modalities else " (or pass --modalities to embed a subset)")
        )
    feats, splits, rows, targets = [], [], [], {}
    for name, split in (
        ("train", data.probe_train),
        ("valid", data.valid),
        ("test", data.probe_test),
    ):
        if split is None:
            continue
        feats.append(embed_split(run, split, modalities, batch_size, desc=f"embed {name}"))
        splits += [name] * len(split)
        rows.append(split.rows.numpy() if split.rows is not None else None)
        for t, y in split.targets.items():
            targets.setdefault(f"y_{t}", []).append(y.numpy())
    if all(r is not None for r in rows):
        # every sample is a row of the user's file: write them in the file's order
        index = np.concatenate(rows)
        order = np.argsort(index, kind="stable")
    else:  # generated or multi-file data: split by split, index = position in its split
        index = np.concatenate([np.arange(len(f)) for f in feats])
        order = np.arange(len(index))
    arrays = {
        "features": np.concatenate(feats)[order],
        "split": np.array(splits)[order],
        "index": index[order],
        **{k: np.concatenate(v)[order] for k, v in targets.items()},
    }
    out_path = output_file(out, folder / "features.npz", ".npz", "--out", overwrite, protected)
    # a file handle: numpy writes exactly this name; atomically, never through a link; into a
    # run folder only while holding its lock, as every command that writes there
    with _lock_if_inside(out_path, folder):
        write_atomic(out_path, lambda f: np.savez(f, **arrays))
    n = sum(len(f) for f in feats)
    width = run.feature_dim(len(modalities) if modalities else None)
    print(
        f"wrote {out_path}: features [{n}, {width}] from {modalities or run.modalities}, split, "
        + (
            "index (row in the data file; rows in its order), "
            if all(r is not None for r in rows)
            else "index (position in its split), "
        )
        + ", ".join(targets)
    )
