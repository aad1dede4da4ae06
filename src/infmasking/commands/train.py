"""``infmasking train``: train with Lightning, probe the frozen features, write the run folder.

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
from lightning.pytorch.callbacks import Timer

from infmasking.data.registry import REGISTRY
from infmasking.files import write_atomic
from infmasking.training.callbacks import ProbeEveryK, StopOnSigterm
from infmasking.training.config import RunConfig
from infmasking.training.config_files import load_config, save_config, to_dict
from infmasking.training.errors import RunError, RunStopped, StopNow
from infmasking.training.folder import RunFolder, is_run_folder
from infmasking.training.host import precision_warning, set_threads
from infmasking.training.loading import check_data, load_data, train_loader
from infmasking.training.lock import RunLock
from infmasking.training.logger import read_rows
from infmasking.training.module import SSLModule
from infmasking.training.probing import run_probes
from infmasking.training.quiet import quiet_lightning
from infmasking.training.report.build import write_report
from infmasking.training.report.markdown import run_summary
from infmasking.training.report.schema import RunReport
from infmasking.training.resume import (
    check_data_identity,
    check_out_dir,
    config_diff,
    data_identity,
)
from infmasking.training.trainer import make_trainer
from infmasking.training.validate import validate
from infmasking.version import __version__


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
    diff = config_diff(old, to_dict(cfg)) if old is not None else ["config.yaml missing"]
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
    resume = check_out_dir(cfg, out, overwrite)
    folder = RunFolder(out)
    set_threads(cfg)
    if warning := precision_warning(cfg):
        print(warning, file=sys.stderr)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = load_data(cfg)
    check_data(data, cfg)
    if resume:
        check_data_identity(out, cfg.data.path, "cannot resume")
    identity = data_identity(cfg.data.path) or generated_data(cfg)
    module = SSLModule(
        cfg,
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
            json.dumps({"infmasking": __version__, "created_by": "infmasking train"}) + "\n",
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
