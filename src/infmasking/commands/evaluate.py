"""``infmasking evaluate``: the probes of a trained run re-run, with other probe options if
asked; writes ``evaluation*.json`` / ``.md`` beside the run's own report."""

from __future__ import annotations

from pathlib import Path

import torch

from infmasking import probe_registry
from infmasking.probe_registry import ROBUST_PROBES, choices
from infmasking.training.checkpoint import load_module
from infmasking.training.errors import RunError
from infmasking.training.folder import RunFolder, is_run_folder
from infmasking.training.host import set_threads
from infmasking.training.loading import load_data
from infmasking.training.lock import RunLock
from infmasking.training.probing import run_probes
from infmasking.training.report.build import evaluation_name, write_report
from infmasking.training.report.schema import RunReport
from infmasking.training.resume import check_data_identity


def evaluate(
    path: str | Path,
    out_dir: str | Path | None = None,
    *,
    class_weight: str | None = None,
    probe: str | None = None,
    features: str | None = None,
    num_threads: int | None = None,
    robust_probe: str | None = None,
) -> RunReport:
    """Re-run the probes of a trained run; writes ``evaluation.json`` / ``evaluation.md``.

    ``probe`` (a name of ``probe_registry.PROBES``), ``features`` ("auto" | "fused" | "concat") and
    ``class_weight`` ("balanced") override the run's ``eval`` options; with any of them the
    files are named after what differs from the defaults, e.g.
    ``evaluation_standardised_balanced.json``, beside the run's own report.

    Args:
        path: a run folder or a checkpoint file.
        out_dir: where to write (default: the run folder, that of ``RUN/checkpoints/*.ckpt``
            included; a checkpoint outside a run folder: its own folder).
        class_weight: overrides ``eval.class_weight``.
        probe: overrides ``eval.probe``.
        features: overrides ``eval.features``.
        num_threads: overrides ``trainer.num_threads``.
        robust_probe: overrides ``eval.robust_probe`` (the reading beside the published probe;
            runs trained before it existed read "centred").

    Returns:
        The evaluation's report (its ``folder``: where it was written).

    Raises:
        ValueError: an override is not one of its values.
        RunError: the run is being trained, or its checkpoint / data cannot be read.
    """
    if class_weight not in (None, "balanced"):
        raise ValueError(f"class_weight: expected None or 'balanced', got {class_weight!r}")
    if probe is not None and probe not in probe_registry.PROBES:  # the probes registered now
        raise ValueError(f"probe: expected {choices(probe_registry.PROBES)}, got {probe!r}")
    if robust_probe is not None and robust_probe not in ROBUST_PROBES:
        raise ValueError(f"robust_probe: expected {choices(ROBUST_PROBES)}, got {robust_probe!r}")
    if features not in (None, "auto", "fused", "concat"):
        raise ValueError(f"features: expected 'auto', 'fused' or 'concat', got {features!r}")
    module, cfg, ckpt = load_module(path)  # refuses a run another process holds
    check_data_identity(RunFolder.of_checkpoint(ckpt).path, cfg.data.path, "evaluate")
    if class_weight is not None:
        cfg.eval.class_weight = class_weight
    if probe is not None:
        cfg.eval.probe = probe
    if features is not None:
        cfg.eval.features = features
    if num_threads is not None:
        cfg.trainer.num_threads = num_threads
    if robust_probe is not None:
        cfg.eval.robust_probe = robust_probe
    print(
        f"Evaluating {ckpt}: the {cfg.eval.probe} probe (robust reading: "
        f"{cfg.eval.robust_probe}) on {cfg.eval.features} features; "
        f"loading the {cfg.data.name} data and embedding it",
        flush=True,
    )
    set_threads(cfg)
    # default: the run folder (RUN/checkpoints/last.ckpt -> RUN, never into checkpoints/), or
    # a loose checkpoint's own folder
    owner = RunFolder.of_checkpoint(ckpt).path
    out = Path(out_dir) if out_dir else (owner if is_run_folder(owner) else ckpt.parent)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out_dir {out} is an existing file, not a folder")
    name = evaluation_name(cfg)
    # a run folder is checked whole; another folder only for the names written into it
    checked = [f"{name}.json", f"{name}.md", f"{name}_rus.png", "run.lock"]
    RunFolder(out).refuse_links("--out_dir", None if is_run_folder(out) else checked)
    # the folder written into is held while the evaluation runs (no train starts in it)
    with RunLock(out, "infmasking evaluate"):
        data = load_data(cfg)
        results = run_probes(module, data, cfg, verbose=True)
        ckpt_state = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True)
        steps = ckpt_state.get("global_step")
        report = write_report(out, cfg, data, results, name=name, checkpoint=str(ckpt), steps=steps)
    print(report.markdown)
    written = [f"{name}.json", f"{name}.md", f"{name}_rus.png"]
    print(f"\nWrote {', '.join(w for w in written if (out / w).exists())} in {out.resolve()}")
    return report
