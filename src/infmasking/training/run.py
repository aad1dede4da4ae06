"""A run: train with Lightning, probe the frozen features, write the run folder.

Run folder: ``config.yaml`` (resolved), ``metrics.csv`` (Lightning CSV logger),
``checkpoints/last.ckpt``, ``report.json``, ``report.md``, ``training_curves.png``,
``probe.png`` (and ``probe_curve.json`` / ``probe_curve.png`` with ``eval.probe_every``).
A run folder with a checkpoint but no report is resumed from ``last.ckpt``; one with a
report is finished and is not overwritten unless asked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer

from infmasking.files import write_atomic
from infmasking.probe_registry import PROBES, ROBUST_PROBES, choices
from infmasking.training.callbacks import (
    AtomicCheckpointIO,
    ProbeEveryK,
    ProgressLines,
    RunProgress,
    StepCheckpoint,
    StepSeed,
    StopOnSigterm,
)
from infmasking.training.config import (
    RunConfig,
    load_config,
    save_config,
    to_dict,
    validate,
)
from infmasking.training.errors import RunError, RunStopped, StopNow
from infmasking.training.folder import (  # noqa: F401
    RUN_FILES,
    RUN_MARKER,
    RunFolder,
    RunLock,
    _alive,
    _check_out_dir,
    _checkpoint_config,
    _diff,
    _intact_checkpoint,
    check_checkpoint_belongs,
    check_data_identity,
    data_identity,
    is_run_folder,
    library_files,
    lock_holder,
    refuse_if_locked,
)
from infmasking.training.host import (  # noqa: F401
    _set_threads,
    auto_threads,
    cpu_bf16_native,
    precision_warning,
)
from infmasking.training.loading import (  # noqa: F401
    EpochSampler,
    ResumableLoader,
    check_data,
    load_data,
    mix_seed,
    train_loader,
)
from infmasking.training.logger import RunCSVLogger, read_rows
from infmasking.training.module import SSLModule
from infmasking.training.probing import (  # noqa: F401
    extract_features,
    run_probes,
    seeded_subset,
)
from infmasking.training.quiet import quiet_lightning
from infmasking.training.report import (  # noqa: F401
    evaluation_name,
    run_summary,
    rus_summary,
    write_report,
)
from infmasking.training.run_report import RunReport
from infmasking.version import __version__


def infmasking_version() -> str:
    return __version__


def _loggers(cfg: RunConfig, out: Path, kept: list | None = None) -> list:
    """metrics.csv always (the reports read it; ``kept``: the rows before a resume, kept in the
    file at every instant); TensorBoard beside it."""
    loggers = [RunCSVLogger(out, kept)]
    if cfg.trainer.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(out), name="tensorboard", version=""))
    return loggers


def make_trainer(
    cfg: RunConfig, out: Path, callbacks: list[Callback], kept_metrics: list | None = None
) -> pl.Trainer:
    t = cfg.trainer
    # enable_version_counter=False: this run's checkpoints always replace files of the same name
    # (Lightning would otherwise write last-v1.ckpt beside a stale last.ckpt left by a killed
    # process, and `evaluate RUN` would read the stale one).
    ckpt = ModelCheckpoint(
        dirpath=str(out / "checkpoints"),
        filename="last",
        save_last=False,
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    progress = RunProgress() if t.progress_bar else ProgressLines(t.progress_every_n_steps)
    cbs = [ckpt, StepSeed(cfg.seed), *callbacks, progress]
    if t.checkpoint_every_n_steps:
        cbs.insert(1, StepCheckpoint(out, t.checkpoint_every_n_steps))
    return pl.Trainer(
        max_epochs=cfg.optim.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        logger=_loggers(cfg, out, kept_metrics),
        callbacks=cbs,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=False,  # RunProgress: one bar over the whole run
        enable_model_summary=False,
        sync_batchnorm=t.strategy.startswith("ddp") or t.num_nodes > 1,
        plugins=[AtomicCheckpointIO()],
        deterministic=False,
        num_sanity_val_steps=0,
    )


def train(cfg: RunConfig, *, overwrite: bool = False) -> RunReport | None:
    """Train, probe and write the run folder.

    Everything that can be checked is checked before the first step (the options, the out
    folder, the data). The folder is locked while the run lives (``run.lock``: owner PID and
    host).

    Args:
        cfg: the run config (``out_dir``: the run folder).
        overwrite: clear a finished run in ``out_dir`` (only the library's files) and train
            afresh.

    Returns:
        The report written to ``report.json`` (its ``folder``: the run folder); None on
        ranks > 0.

    Raises:
        RunError: the run cannot start as asked (options, folder, data).
        RunStopped: SIGTERM / SIGINT, after saving a resumable checkpoint.
    """
    validate(cfg)
    from infmasking.data.registry import REGISTRY

    entry = REGISTRY.get(cfg.data.name)
    if entry is not None and not entry.needs_path and cfg.data.path is not None:
        # the run would train on generated data while data.json fingerprints the file named
        raise RunError(
            f"--data.path {cfg.data.path}: data.name {cfg.data.name!r} is generated and reads no "
            "file; for your own file pass --preset npz (or the --data.name of its kind)"
        )
    if cfg.data.path is not None:  # stored absolute: evaluate / embed from anywhere read it
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(
            f"--out_dir {out} is an existing file, not a folder; choose another --out_dir"
        )
    data_dir = Path(cfg.data.path) if cfg.data.path is not None else None
    if data_dir is not None and data_dir.exists() and not (data_dir.is_file() or data_dir.is_dir()):
        raise RunError(  # a FIFO or a device: a read would block or never end
            f"--data.path {data_dir} is a special file (FIFO, device or socket), not a data file "
            "or folder"
        )
    if data_dir is not None and data_dir.is_dir():
        where = out.expanduser().resolve()
        if where == data_dir or data_dir in where.parents:
            # the run's own files would change the folder's fingerprint (data.json): the run
            # could never be resumed or evaluated
            raise RunError(
                f"--out_dir {out} is inside the data folder {data_dir} (--data.path); choose an "
                "--out_dir outside it"
            )
    RunFolder(out).refuse_links("--out_dir")
    with RunLock(out):
        return _train(cfg, out, overwrite)


def generated_data(cfg: RunConfig) -> dict:
    """``data.json`` of a run on generated data (no file to fingerprint): what generated it."""
    d = to_dict(cfg)["data"]
    settings = {k: v for k, v in d.items() if k not in ("path", "unsafe_pickle", "modalities")}
    return {
        "generated": cfg.data.name,
        "seed": cfg.data.seed,
        "settings": settings,
        "note": f"generated on the fly from data.seed {cfg.data.seed} and these settings; no file",
    }


def _finished(cfg: RunConfig, out: Path, overwrite: bool) -> RunReport | None:
    """The report of a finished run in ``out`` trained with this same config (said on stdout
    with how to train again): running the same command twice shows the result, as a resumed
    run does. None where there is no finished run (or ``overwrite``); a finished run of another
    config is an error naming what differs."""
    folder = RunFolder(out)
    if overwrite or not folder.report_json.exists() or not is_run_folder(out):
        return None
    old = to_dict(load_config(folder.config)) if folder.config.exists() else None
    if old is not None and old["data"].get("path"):  # runs that stored a relative path
        old["data"]["path"] = str(Path(old["data"]["path"]).expanduser().resolve())
    # the folder is where it is now: a run folder moved or copied keeps its result
    diff = _diff(old, to_dict(cfg)) if old is not None else ["config.yaml missing"]
    diff = [d for d in diff if not d.startswith("out_dir:")]
    if diff:
        again = (
            f"; re-probe it with `infmasking evaluate {out}` and --probe / --features / "
            "--class_weight / --robust_probe"
            if all(d.startswith("eval.") for d in diff)
            else ""
        )
        raise RunError(
            f"{out} already holds a finished run of another config ({', '.join(diff)}); "
            f"pass --overwrite true to replace it, or choose another --out_dir{again}"
        )
    report = folder.report()
    print(report.markdown)
    print(run_summary(out))
    print(
        f"\n{out} already held this finished run: the report above is its result, nothing was "
        "trained. To train it again: --overwrite true; another run: --out_dir DIR."
    )
    return report


def _train(cfg: RunConfig, out: Path, overwrite: bool) -> RunReport | None:
    if (done := _finished(cfg, out, overwrite)) is not None:
        return done
    resume = _check_out_dir(cfg, out, overwrite)
    folder = RunFolder(out)
    _set_threads(cfg)
    if warning := precision_warning(cfg):
        print(warning, file=sys.stderr)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = load_data(cfg)
    check_data(data, cfg)
    if resume:
        check_data_identity(out, cfg.data.path, "cannot resume")
    identity = data_identity(cfg.data.path) or generated_data(cfg)
    module = SSLModule(
        to_dict(cfg),
        data.modalities,
        data.kinds,
        {m: list(data.input_shape(m)) for m in data.modalities},
    )
    stop = StopOnSigterm(out)
    timer = Timer()  # training time; its state rides in the checkpoint, so resumes add up
    callbacks = [stop, timer] + ([ProbeEveryK(data, cfg, out)] if ProbeEveryK.wanted(cfg) else [])
    # the rows logged before a resume stay in metrics.csv at every instant (RunCSVLogger)
    old_metrics = read_rows(folder.metrics) if resume else []
    trainer = make_trainer(cfg, out, callbacks, old_metrics)
    if cfg.trainer.data_on_device:  # this process's device (each DDP rank its own)
        data.train = data.train.to(trainer.strategy.root_device)
    if trainer.is_global_zero:
        write_atomic(
            folder.marker,
            json.dumps({"infmasking": infmasking_version(), "created_by": "infmasking train"})
            + "\n",
        )
        save_config(cfg, folder.config)
        write_atomic(folder.data_json, json.dumps(identity, indent=1) + "\n")
        if resume:
            print(f"Resuming from {resume}")
    try:
        with stop.installed(), quiet_lightning():
            loader = train_loader(data.train, cfg)
            loader.progress = lambda: (
                trainer.current_epoch,
                trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            )
            trainer.fit(
                module,
                loader,
                ckpt_path=str(resume) if resume else None,
                weights_only=True,
            )
    except (SystemExit, StopNow):  # Lightning raises SIGTERMException (a SystemExit) too
        if not stop.received:
            raise
    if stop.received:
        stop.finish(trainer)
        raise RunStopped(stop.received, folder.checkpoint)
    if not trainer.is_global_zero:
        return None
    train_seconds = timer.time_elapsed("train")  # summed over the processes of a resumed run
    with stop.installed(after_fit=True):  # SIGTERM while probing: the training is saved, stop now
        results = run_probes(module, data, cfg, verbose=True)
        report = write_report(
            out, cfg, data, results, train_seconds=train_seconds, steps=trainer.global_step
        )
    print(report.markdown)
    print(run_summary(out))
    return report


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
        module = SSLModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure becomes one line saying which kind
        raise RunError(_load_failure(ckpt, e)) from None
    cfg = module.cfg
    module.eval()
    return module, cfg, ckpt


def run_folder_of(ckpt: Path) -> Path:
    """The run folder of a checkpoint (``RUN/checkpoints/last.ckpt`` -> ``RUN``)."""
    return RunFolder.of_checkpoint(ckpt).path


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

    ``probe`` ("published" | "standardised"), ``features`` ("auto" | "fused" | "concat") and
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
    if probe is not None and probe not in PROBES:
        raise ValueError(f"probe: expected {choices(PROBES)}, got {probe!r}")
    if robust_probe is not None and robust_probe not in ROBUST_PROBES:
        raise ValueError(f"robust_probe: expected {choices(ROBUST_PROBES)}, got {robust_probe!r}")
    if features not in (None, "auto", "fused", "concat"):
        raise ValueError(f"features: expected 'auto', 'fused' or 'concat', got {features!r}")
    module, cfg, ckpt = load_module(path)  # refuses a run another process holds
    check_data_identity(run_folder_of(ckpt), cfg.data.path, "evaluate")
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
    _set_threads(cfg)
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
