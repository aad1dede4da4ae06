"""``infmasking reproduce trifeatures | trifeatures_tokens``: methods × seeds -> one comparison.

The published protocol trains two models per method and seed: one on the **unbiased** pairs,
whose probes give redundancy (share) and uniqueness (unique1, unique2), and one on the
**biased** (synergy) pairs, whose probe gives synergy. On the biased set texture₁ determines
colour₂, so texture₁ is information the two items *share* there: a model trained on it is not
a measure of uniqueness. ``ru_unbiased=False`` reads all three from the biased run instead
(one run per method and seed, not the published protocol).

Every run is an ordinary run folder — ``<out_dir>/<method>/seed<k>`` (biased) and
``<out_dir>/<method>/seed<k>_unbiased`` — a finished one is reused, an interrupted one
resumes, so the whole comparison can be re-launched after a crash.

Baselines beside the methods: with probe curves (``eval.probe_every`` >= 1) the *randomly
initialised network* (the epoch-0 probe of the first method's runs, same seed); on
``trifeatures_tokens`` the *raw-input probe* (a linear probe on the two flattened token
sequences, per seed). Statistics: mean and 95 % Student-t confidence interval over seeds,
and the paired per-seed difference InfMasking − CoMM with its interval and paired t-test.
Numbers at the ``last`` epoch and at the ``best_valid`` epoch (chosen on the held-out part of
probe-train); never chosen on test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from infmasking.commands.comparison import (
    FACTORS,
    LONG_CONTROL_SEEDS,
    SUPERVISED,
    SUPERVISED_LONG,
    has_robust,
    pair_row,
    write_comparison,
)
from infmasking.commands.controls import (
    factor_control,
    raw_input_probe,
    supervised_control,
)
from infmasking.commands.train import train
from infmasking.evaluation import trifeatures as protocol
from infmasking.training.config import RunConfig
from infmasking.training.folder import RunFolder
from infmasking.training.report.schema import RunReport
from infmasking.training.validate import validate

BENCHMARKS = protocol.DATASETS


def reproduce(
    benchmark: str,
    base: RunConfig,
    *,
    methods: list[str],
    seeds: list[int],
    only_finished: bool = False,
    ru_unbiased: bool = True,
    reprobe: bool = False,
    controls: bool = True,
) -> dict:
    """Train what is missing (or, with ``only_finished``, only tabulate the finished runs and
    list the missing ones), then write comparison.{md,json,png} in ``base.out_dir``.

    ``reprobe``: read finished runs through a fresh probe of their checkpoint with ``base``'s
    ``eval.probe`` / ``eval.features`` / ``eval.class_weight`` (``infmasking evaluate``; the
    result is cached beside the run's report) instead of their training-time report, so an
    evaluation change costs minutes, not a retraining. ``controls`` (trifeatures_tokens): the
    two ceilings beside the methods (:func:`supervised_control`, :func:`factor_control`)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; valid: {list(BENCHMARKS)}")
    if base.data.name != benchmark:
        raise ValueError(
            f"reproduce {benchmark} needs data.name={benchmark} (e.g. --preset {benchmark}), "
            f"got {base.data.name!r}"
        )
    if not seeds or not methods:
        raise ValueError("reproduce needs at least one method and one seed")
    for option, values in (("--seeds", seeds), ("--methods", methods)):
        repeated = sorted({v for v in values if list(values).count(v) > 1}, key=str)
        if repeated:
            raise ValueError(f"{option}: {repeated} given more than once ({list(values)})")
    validate(base)
    root = Path(base.out_dir)
    runs: dict[str, list[dict]] = {}
    missing: list[str] = []
    kinds = [("", True)] + ([("_unbiased", False)] if ru_unbiased else [])
    for method in methods:
        for seed in seeds:
            reports: dict[bool, RunReport] = {}
            for suffix, biased in kinds:
                out = root / method / f"seed{seed}{suffix}"
                folder = RunFolder(out)
                cfg = dataclasses.replace(
                    base,
                    seed=seed,
                    out_dir=str(out),
                    method=dataclasses.replace(base.method, name=method),
                    data=dataclasses.replace(
                        base.data,
                        trifeatures=dataclasses.replace(base.data.trifeatures, biased=biased),
                    ),
                )
                label = f"{method} seed {seed} ({'biased' if biased else 'unbiased'})"
                if folder.finished:
                    reports[biased] = _finished_report(folder, base, reprobe)
                    print(f"{label}: finished run reused ({out})")
                elif only_finished:
                    missing.append(label)
                else:
                    print(f"== {label} -> {out}")
                    reports[biased] = train(cfg)  # its folder: out
            if len(reports) == len(kinds):
                runs.setdefault(method, []).append(pair_row(reports[True], reports.get(False)))
    if not runs:
        raise ValueError(f"no finished run under {root}")
    baselines = {}
    first = runs[methods[0]] if methods[0] in runs else next(iter(runs.values()))
    random_rows = [r["random_init"] for r in first if r.get("random_init")]
    if random_rows:
        baselines["randomly initialised network"] = random_rows
    if benchmark == "trifeatures_tokens":
        done = sorted({r["seed"] for r in first})
        baselines["raw-input probe"] = [raw_input_probe(base, s, root) for s in done]
        if controls:
            baselines[SUPERVISED] = [supervised_control(base, s, root) for s in done]
            # 10x the steps costs 10 runs' worth of CPU: the first LONG_CONTROL_SEEDS seeds
            baselines[SUPERVISED_LONG] = [
                supervised_control(base, s, root, factor=10) for s in done[:LONG_CONTROL_SEEDS]
            ]
            baselines[FACTORS] = [factor_control(base, s, root) for s in done]
    return write_comparison(
        root,
        runs,
        seeds,
        missing,
        ru_unbiased=ru_unbiased,
        baselines=baselines,
        benchmark=benchmark,
    )


def _finished_report(folder: RunFolder, base: RunConfig, reprobe: bool) -> RunReport:
    """The report of a finished run: its own, or with ``reprobe`` a probe of its checkpoint
    with ``base``'s evaluation options (cached as ``evaluation*.json``) carrying the run's
    ``train_seconds`` / ``steps``.

    Args:
        folder: the run folder (finished).
        base: the comparison's config (its ``eval`` options and ``trainer.num_threads``).
        reprobe: probe the checkpoint afresh (or read the cached evaluation).

    Returns:
        The report, its ``folder`` the run folder.
    """
    report = folder.report()
    if reprobe:
        from infmasking.commands.evaluate import evaluate
        from infmasking.training.report.build import evaluation_name

        cfg = dataclasses.replace(base.eval)
        probe_cfg = dataclasses.replace(base, eval=cfg)
        fresh = folder.evaluation(evaluation_name(probe_cfg))
        stale = cfg.robust_probe != "off" and fresh is not None and not has_robust(fresh)
        if fresh is None or (stale and folder.checkpoint.exists()):
            # an evaluation cached before the robust reading existed is probed again where
            # the run kept its checkpoint
            fresh = evaluate(
                folder.path,
                probe=cfg.probe,
                features=cfg.features,
                class_weight=cfg.class_weight,
                num_threads=base.trainer.num_threads,
                robust_probe=cfg.robust_probe,
            )
        report = fresh.replace(
            train_seconds=report.train_seconds
            if report.train_seconds is not None
            else fresh.train_seconds,
            steps=report.steps if report.steps is not None else fresh.steps,
        )
    return report.replace(folder=folder.path)
