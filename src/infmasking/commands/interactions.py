"""``infmasking interactions``: the redundancy, uniqueness and synergy of a task, read from a
dataset or from a trained run (the estimator: :mod:`infmasking.evaluation.interactions`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from infmasking.evaluation.interactions import (
    ESTIMATOR,
    Reading,
    format_table,
    modality_pairs,
    raw_features,
    read_pairs,
    sample_subset,
    task_labels,
)


def _task(data, name: str | None):
    tasks = {t.name: t for t in data.tasks}
    if name is None:
        usable = [t.name for t in data.tasks if t.kind != "regression"]
        if len(data.tasks) == 1:
            return data.tasks[0]
        raise ValueError(f"--task: choose one of {list(tasks)} (usable: {usable})")
    if name not in tasks:
        raise ValueError(f"--task: unknown task {name!r}; this dataset has {list(tasks)}")
    return tasks[name]


def interactions(
    cfg,
    run: str | None = None,
    *,
    task: str | None = None,
    label: int | None = None,
    clusters: int | None = None,
    bootstrap: int = 200,
    max_samples: int = 10_000,
    out: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Reading]:
    """``infmasking interactions``: decompose a task of a dataset (``cfg``: its RunConfig) or
    of a trained run's data (``run``); print the table, write ``out`` (JSON) if given.

    The JSON file holds the reading's dict (:meth:`Reading.to_dict`) when there is one
    reading, else a list of them (several pairs of modalities, or a run's two readings).
    """
    from tqdm.auto import tqdm

    from infmasking.training.loading import load_data

    if clusters is not None and not (isinstance(clusters, int) and clusters >= 2):
        raise ValueError(f"--clusters: expected an integer >= 2, got {clusters!r}")
    if not (isinstance(bootstrap, int) and bootstrap >= 0):
        raise ValueError(f"--bootstrap: expected an integer >= 0, got {bootstrap!r}")
    if not (isinstance(max_samples, int) and max_samples >= 20):
        raise ValueError(f"--max_samples: expected an integer >= 20, got {max_samples!r}")
    out_path = Path(out) if out else None
    if out_path is not None:
        from infmasking.files import check_output

        if out_path.is_dir():
            raise ValueError(f"--out {out_path} is a folder; give a .json file name")
        check_output(out_path, "--out")  # never a device or a FIFO, even with --overwrite
        if out_path.exists() and not overwrite:
            raise ValueError(f"--out {out_path} exists; give --overwrite true to replace it")
    trained = None
    if run is not None:
        from infmasking.embed import embed_split, load_run

        trained = load_run(run)
        if cfg.data.path and cfg.data.path != trained.config.data.path:
            trained.config.data.path = cfg.data.path
        cfg = trained.config
    data = load_data(cfg)
    t = _task(data, task)
    seed = cfg.seed
    train = data.probe_train.subset(
        sample_subset(len(data.probe_train), max_samples, seed) if len(data.probe_train) else []
    )
    y, n_classes, task_name = task_labels(t, train.targets[t.name].numpy(), label)
    mods = list(data.modalities)
    n_pairs = len(modality_pairs(mods)) * (2 if trained is not None else 1)
    # a bar on a terminal only (disable=None): a redirected log gets no bar fragments
    bar = tqdm(
        total=bootstrap * n_pairs,
        desc="bootstrap",
        unit="resample",
        disable=None if progress else True,
    )
    readings: list[Reading] = []
    try:
        if trained is None:
            feats = {m: raw_features(train, m, data.kinds[m]) for m in mods}
            extra = {"split": "probe_train", "features": "raw"}
            readings += read_pairs(
                "data", task_name, feats, y, n_classes, clusters=clusters,
                bootstrap=bootstrap, seed=seed, extra=extra, bar=bar,
            )  # fmt: skip
        else:
            from infmasking.evaluation.probe import fit_probe

            test = data.probe_test.subset(
                sample_subset(len(data.probe_test), max_samples, seed + 1)
            )
            reps = {m: embed_split(trained, train, [m], progress=False) for m in mods}
            reps_test = {m: embed_split(trained, test, [m], progress=False) for m in mods}
            extra = {"split": "probe_train", "features": "F({m}) of the run", "run": str(run)}
            readings += read_pairs(
                "representations", task_name, reps, y, n_classes, clusters=clusters,
                bootstrap=bootstrap, seed=seed, extra=extra, bar=bar,
            )  # fmt: skip
            fused_tr = embed_split(trained, train, progress=False)
            fused_te = embed_split(trained, test, progress=False)
            y_test = test.targets[t.name].numpy()
            y_tr_task = train.targets[t.name].numpy()
            if t.kind == "multilabel":
                from infmasking.data.base import Task

                probe_task = Task(task_name, "classification", 2)
                y_tr_task, y_test = y_tr_task[:, label], y_test[:, label]
            else:
                probe_task = t
            result = fit_probe(probe_task, fused_tr, y_tr_task, fused_te, y_test, seed=seed)
            extra = {
                "split": "probe_test",
                "features": "F({m}) of the run (clusters fitted on probe_train)",
                "target": "predictions of the fused published linear probe",
                "probe_balanced_accuracy": result.metrics.get("balanced_accuracy"),
                "run": str(run),
            }
            k = clusters or readings[0].clusters[mods[0]]
            if len(np.unique(result.predictions)) < 2:
                # the probe predicts one class everywhere: its predictions carry no information
                note = "the fused probe predicts one class on every sample: every term is 0"
                zero = {"redundancy": 0.0, "synergy": 0.0, "total": 0.0}
                for pair in modality_pairs(mods):
                    values = {**zero, "unique": {m: 0.0 for m in pair}}
                    estimator = {"name": ESTIMATOR, "gap": 0.0, "samples": len(test), **extra}
                    interval = {"level": 0.95, "resamples": 0}
                    readings.append(
                        Reading(
                            "predictions",
                            task_name,
                            pair,
                            values,
                            interval,
                            {"permutations": 0},
                            {m: k for m in pair},
                            {**estimator, "note": note},
                        )
                    )
                bar.update(bootstrap * len(modality_pairs(mods)))
            else:
                pred, n_pred, _ = task_labels(probe_task, result.predictions, None)
                readings += read_pairs(
                    "predictions", task_name, reps, pred, n_pred, clusters=k,
                    bootstrap=bootstrap, seed=seed, extra=extra, assign=reps_test, bar=bar,
                )  # fmt: skip
    finally:
        bar.close()
    print(format_table(readings))
    if bootstrap:
        print(
            f"Bits; [lo, hi]: 95 % interval of the estimate ({bootstrap} bootstrap resamples, "
            "re-centred on the estimate); read each term against its null (labels permuted)."
        )
    if out_path is not None:
        payload = [r.to_dict() for r in readings]
        out_path.parent.mkdir(parents=True, exist_ok=True)
        from infmasking.files import write_atomic

        write_atomic(
            out_path, json.dumps(payload[0] if len(payload) == 1 else payload, indent=1) + "\n"
        )
    return readings
