"""A trained module read back from a run folder or a checkpoint file (weights only)."""

from __future__ import annotations

from pathlib import Path

import torch

from infmasking.training.config import RunConfig
from infmasking.training.errors import RunError
from infmasking.training.folder import RunFolder, is_run_folder
from infmasking.training.lock import refuse_if_locked
from infmasking.training.module import SSLModule
from infmasking.training.resume import check_checkpoint_belongs


def load_module(path: str | Path) -> tuple[SSLModule, RunConfig, Path]:
    """A trained module from a run folder (its last checkpoint) or a checkpoint file.

    Args:
        path: a run folder or a checkpoint file.

    Returns:
        The module (eval mode, on the CPU), its run config and the checkpoint read.

    Raises:
        RunError: no folder / checkpoint there, or a file that does not load (one line).
    """
    path = Path(path)
    folder = RunFolder(path) if path.is_dir() else RunFolder.of_checkpoint(path)
    # the run folder is untrusted (no links), and not read while another process writes it; a
    # checkpoint lying elsewhere (~/model.ckpt) leaves its folder's own files alone
    if path.is_dir() or path.parent.name == "checkpoints" or is_run_folder(folder.path):
        folder.refuse_links()
    refuse_if_locked(folder.path, f"cannot read {path}")
    if path.is_dir():
        ckpt = folder.checkpoint
        if not ckpt.exists():
            raise RunError(f"no checkpoint in run folder {path} (expected {ckpt})")
    elif path.is_file():
        ckpt = path
    elif path.exists():
        raise RunError(f"{path} is not a run folder or a checkpoint file (a special file)")
    else:
        raise RunError(f"no run folder or checkpoint at {path}")
    check_checkpoint_belongs(folder.path, ckpt, f"cannot read {path}")
    try:
        module = SSLModule.from_checkpoint(ckpt)
    except Exception as e:  # noqa: BLE001 - every failure becomes one line saying which kind
        raise RunError(_load_failure(ckpt, e)) from None
    cfg = module.cfg
    module.eval()
    return module, cfg, ckpt


def _load_failure(ckpt: Path, error: Exception) -> str:
    """Why ``ckpt`` did not load: unreadable, not an infmasking checkpoint, or another version."""
    try:
        state = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        return f"cannot read checkpoint {ckpt}: {type(e).__name__}: {e}"
    hp = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hp, dict) or "config" not in hp or "state_dict" not in state:
        return f"{ckpt} is not an infmasking checkpoint (no hyper_parameters.config / state_dict)"
    return (
        f"checkpoint {ckpt} does not match this version of infmasking: "
        f"{type(error).__name__}: {error}"
    )
