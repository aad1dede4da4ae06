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
import json
import math
from pathlib import Path

import numpy as np

from infmasking.commands.train import train
from infmasking.evaluation import plots
from infmasking.evaluation import trifeatures as protocol
from infmasking.evaluation.selection import mean_ci, paired_difference
from infmasking.evaluation.tables import write_markdown_table
from infmasking.files import read_json, write_atomic
from infmasking.training.config import RunConfig, to_dict, validate
from infmasking.training.folder import RunFolder
from infmasking.training.run_report import RunReport

BENCHMARKS = protocol.DATASETS
KEYS = ["redundancy", "uniqueness", "unique2", "synergy", "synergy_auroc"]
#: The robust reading of the same measures (``eval.robust_probe``, docs/PROBES.md), in rows whose
#: runs recorded it.
ROBUST_KEYS = [f"robust_{k}" for k in KEYS]


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
                runs.setdefault(method, []).append(_summary(reports[True], reports.get(False)))
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


SUPERVISED = "control (a): the fusion network trained supervised on synergy"
SUPERVISED_LONG = "control (a), 10× the steps"
LONG_CONTROL_SEEDS = 2  # seeds of the 10x control (each costs ten self-supervised runs' steps)
FACTORS = "control (b): true factors + texture₁ × colour₂ cell"


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
        from infmasking.training.report import evaluation_name

        cfg = dataclasses.replace(base.eval)
        probe_cfg = dataclasses.replace(base, eval=cfg)
        fresh = folder.evaluation(evaluation_name(probe_cfg))
        stale = cfg.robust_probe != "off" and fresh is not None and not _has_robust(fresh)
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


def _has_robust(report: RunReport) -> bool:
    """Does the report carry the robust reading (reports from before it do not)?"""
    return any(isinstance(r.get("robust"), dict) for r in report.results.values())


def _robust_score(report: RunReport, task: str, metric: str = "balanced_accuracy") -> float:
    """The robust reading's test ``metric`` (%) of ``task``; nan where the report has none."""
    value = (report.results.get(task, {}).get("robust") or {}).get("metrics", {}).get(metric)
    return math.nan if value is None else 100 * value


def _robust_row(biased: RunReport, ru: RunReport) -> dict:
    """The robust reading of the measures (:data:`ROBUST_KEYS`), as :func:`_summary` reads the
    published ones; {} when either report lacks it."""
    if not (_has_robust(biased) and _has_robust(ru)):
        return {}
    return {
        "robust_redundancy": _robust_score(ru, "share"),
        "robust_uniqueness": _robust_score(ru, "unique1"),
        "robust_unique2": _robust_score(ru, "unique2"),
        "robust_synergy": _robust_score(biased, "synergy"),
        "robust_synergy_auroc": _robust_score(biased, "synergy", "auroc"),
    }


def _curve(report: RunReport) -> list[dict]:
    """The probe curve of the run a report came from ([] without one)."""
    return RunFolder(report.folder).probe_curve() if report.folder is not None else []


def _from_tasks(ru_scores: dict, synergy_scores: dict) -> dict:
    """Task scores (task -> %) as the protocol's measures (:data:`protocol.RUS`) plus
    ``unique2``: redundancy / uniqueness / unique2 from ``ru_scores``, synergy from
    ``synergy_scores`` (the runs of :data:`protocol.MEASURE_PAIRS`)."""
    out = {}
    for task, measure in protocol.RUS.items():
        from_biased = protocol.MEASURE_PAIRS[measure] == "biased"
        out[measure] = (synergy_scores if from_biased else ru_scores)[task]
    out["unique2"] = ru_scores["unique2"]
    return {k: out[k] for k in ("redundancy", "uniqueness", "unique2", "synergy")}


def _row_from(results_or_row: dict, ru_row: dict) -> dict:
    return {
        "redundancy": ru_row["redundancy"],
        "uniqueness": ru_row["uniqueness"],
        "unique2": ru_row["unique2"],
        "synergy": results_or_row["synergy"],
        "synergy_auroc": results_or_row["synergy_auroc"],
    }


def _summary(biased: RunReport, unbiased: RunReport | None = None) -> dict:
    """One method × seed: synergy from the biased run; redundancy / uniqueness / unique2 from
    the unbiased run when given, else from the biased run. ``last`` always; ``best_valid``
    and the published test-selected numbers when the runs have probe curves; the epoch-0
    (random initialisation) numbers likewise (read from the reports' run folders).

    Args:
        biased: the report of the run on the biased pairs.
        unbiased: the report of the run on the unbiased pairs, if any.

    Returns:
        The comparison's row: ``last`` (``best_valid``, ``test_selected``, ``random_init``)
        -> measure -> score (%), ``ru_from``, ``train_seconds``, ``steps``, ``seed``.
    """
    ru = unbiased or biased

    def last(rep: RunReport) -> dict:
        rus = rep.last_rus()  # rus_last: the report's headline is best_valid
        return {
            "redundancy": rus["redundancy"],
            "uniqueness": rus["uniqueness"],
            "unique2": rep.score("unique2"),
            "synergy": rus["synergy"],
            "synergy_auroc": rep.score("synergy", "auroc"),
        }

    row = {"last": {**_row_from(last(biased), last(ru)), **_robust_row(biased, ru)}}
    if biased.rus_by is not None and ru.rus_by is not None:
        row["best_valid"] = _row_from(biased.rus_by["valid"], ru.rus_by["valid"])
        row["test_selected"] = _row_from(biased.rus_by["test"], ru.rus_by["test"])
    c_b, c_u = _curve(biased), _curve(ru)
    if c_b and c_u and c_b[0]["epoch"] == 0 and c_u[0]["epoch"] == 0:
        b0, u0 = c_b[0], c_u[0]
        row["random_init"] = {
            **_from_tasks(u0, b0),
            "synergy_auroc": b0["synergy_auroc"],
            "seed": biased.setting("seed"),
        }
        robust = ("robust_synergy", "robust_synergy_auroc")
        if all(f"robust_{t}" in u0 for t in ("share", "unique1", "unique2")) and all(
            k in b0 for k in robust
        ):  # curves recorded with the robust reading beside
            row["random_init"].update(
                robust_redundancy=u0["robust_share"],
                robust_uniqueness=u0["robust_unique1"],
                robust_unique2=u0["robust_unique2"],
                **{k: b0[k] for k in robust},
            )
    row["ru_from"] = "unbiased" if unbiased else "biased"
    seconds = biased.train_seconds if biased.train_seconds is not None else float("nan")
    if unbiased is not None and unbiased.train_seconds is not None:
        seconds += unbiased.train_seconds
    row["train_seconds"] = seconds
    row["steps"] = biased.steps
    row["seed"] = biased.setting("seed")
    return row


def raw_input_probe(base: RunConfig, seed: int, root: Path) -> dict:
    """Linear probes on the raw inputs of ``trifeatures_tokens`` (R / U from the unbiased data's
    probe sets, which are those of the biased data too), cached in ``root/raw_input``."""
    from infmasking.data.trifeatures_tokens import raw_features
    from infmasking.evaluation.probe import probe_all
    from infmasking.training.loading import load_data
    from infmasking.training.probing import probe_splits

    path = root / "raw_input" / f"seed{seed}{_probe_tag(base)}.json"
    if path.exists():
        return read_json(path)
    # the dataset of every run (data.seed); the seed drives the probe's held-out split
    data = load_data(base)
    data.probe_train, data.probe_test = probe_splits(data, base, seed)  # as the runs' probes
    ytr = {t: y.numpy() for t, y in data.probe_train.targets.items()}
    yte = {t: y.numpy() for t, y in data.probe_test.targets.items()}
    res = probe_all(
        data.tasks,
        raw_features(data, "probe_train"),
        ytr,
        raw_features(data, "probe_test"),
        yte,
        probe=base.eval.probe,
        seed=seed,
        class_weight=base.eval.class_weight,
        robust=base.eval.robust_probe,
    )
    return _cache_row(path, _rus_row(res, seed))


def _probe_tag(base: RunConfig) -> str:
    """The cache-file suffix of a probe other than the default (``_standardised``, ...,
    ``_test<N>`` with ``eval.probe_max_test``)."""
    from infmasking.training.report import evaluation_name

    tag = evaluation_name(base).removeprefix("evaluation")
    return tag + ("" if base.eval.probe_max_test is None else f"_test{base.eval.probe_max_test}")


def _cache_row(path: Path, row: dict) -> dict:
    """Write a control's row to its cache file and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(row, indent=1))
    return row


def _rus_row(res: dict, seed: int) -> dict:
    scores = {task: 100 * r.published_value for task, r in res.items()}
    row = {
        **_from_tasks(scores, scores),
        "synergy_auroc": 100 * res["synergy"].metrics["auroc"],
        "seed": seed,
    }
    if all(r.robust is not None for r in res.values() if r.kind == "classification"):
        robust = {task: 100 * r.robust.published_value for task, r in res.items()}
        row.update({f"robust_{k}": v for k, v in _from_tasks(robust, robust).items()})
        row["robust_synergy_auroc"] = 100 * res["synergy"].robust.metrics["auroc"]
    return row


def factor_control(base: RunConfig, seed: int, root: Path) -> dict:
    """The probe's own ceiling: features = one-hot shape, texture and colour of both items of
    each pair and the texture₁ × colour₂ cell (100 values), probed like the methods (synergy
    is a function of the cell, so a linear probe can read it exactly). Cached in
    ``root/controls``."""
    from infmasking.evaluation.probe import probe_all
    from infmasking.training.loading import load_data
    from infmasking.training.probing import probe_splits

    path = root / "controls" / f"factors_seed{seed}{_probe_tag(base)}.json"
    if path.exists():
        return read_json(path)
    data = load_data(base)
    data.probe_train, data.probe_test = probe_splits(data, base, seed)
    info = data.info
    factors = [info["image_shape"], info["image_texture"], info["image_color"]]

    def feats(split) -> np.ndarray:
        first, second = (split.index[m].numpy() for m in data.modalities)
        eye = np.eye(10)
        parts = [eye[f.numpy()[rows]] for rows in (first, second) for f in factors]
        texture1, colour2 = factors[1].numpy()[first], factors[2].numpy()[second]
        return np.concatenate([*parts, np.eye(100)[10 * texture1 + colour2]], 1)

    res = probe_all(
        data.tasks,
        feats(data.probe_train),
        {t: y.numpy() for t, y in data.probe_train.targets.items()},
        feats(data.probe_test),
        {t: y.numpy() for t, y in data.probe_test.targets.items()},
        probe=base.eval.probe,
        seed=seed,
        class_weight=base.eval.class_weight,
        robust=base.eval.robust_probe,
    )
    return _cache_row(path, _rus_row(res, seed))


def supervised_control(base: RunConfig, seed: int, root: Path, factor: int = 1) -> dict:
    """What this architecture exposes linearly when trained for synergy: the run's fusion
    network (same model options, seed, optimiser) plus a linear head, trained with
    class-balanced cross-entropy on the synergy label of the probe-train pairs (clean inputs)
    for ``factor`` × as many steps as a self-supervised run of ``base`` takes, then its fused
    features probed exactly like the methods. Cached in ``root/controls``."""
    import torch

    from infmasking.training.loading import load_data, train_loader
    from infmasking.training.module import SSLModule
    from infmasking.training.probing import run_probes, seeded_subset

    suffix = "" if factor == 1 else f"_x{factor}"
    path = root / "controls" / f"supervised{suffix}_seed{seed}{_probe_tag(base)}.json"
    if path.exists():
        return read_json(path)
    cfg = dataclasses.replace(base, seed=seed, method=dataclasses.replace(base.method, name="comm"))
    torch.manual_seed(seed)
    data = load_data(cfg)
    module = SSLModule(
        to_dict(cfg),
        data.modalities,
        data.kinds,
        {m: list(data.input_shape(m)) for m in data.modalities},
    )
    train = seeded_subset(data.probe_train, cfg.eval.probe_max_train, seed)
    y = train.targets["synergy"]
    n_steps = factor * cfg.optim.epochs * len(train_loader(data.train, cfg))
    head = torch.nn.Linear(module.model.fusion.dim, 2)
    params = list(module.model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    counts = torch.bincount(y, minlength=2).clamp(min=1).float()
    weight = len(y) / (2 * counts)
    g = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(n_steps):
        idx = torch.randint(0, len(train), (cfg.optim.batch_size,), generator=g)
        batch = train[idx]
        x = module.views.probe_inputs(batch.inputs, crop=False)
        logits = head(module.model.embed(x, batch.padding))
        loss = torch.nn.functional.cross_entropy(logits, y[idx], weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    res = run_probes(module, data, cfg)
    row = {**_rus_row(res, seed), "steps": n_steps, "train_loss": loss.item()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(row, indent=1))
    return row


def _robust_table(runs: dict[str, list[dict]], baselines: dict, stats: dict) -> list[str]:
    """The robust reading of the last epoch (:data:`ROBUST_KEYS`) for the methods and baselines
    whose every row has it (their stats under ``stats[name]["last_robust"]``); [] if none."""
    table = []
    for name, rows in list(runs.items()) + list(baselines.items()):
        rows = [r["last"] if name in runs else r for r in rows]
        if not all(k in r for r in rows for k in ROBUST_KEYS):
            continue
        st = {k: mean_ci([r[k] for r in rows]) for k in ROBUST_KEYS}
        stats.setdefault(name, {})["last_robust"] = st
        label = name if name in runs else f"*{name}*"
        table.append(
            {"method": label, "seeds": len(rows), **{k: _fmt(*st[k]) for k in ROBUST_KEYS}}
        )
    if not table:
        return []
    return [
        "",
        "### the same, robust reading (`eval.robust_probe`: the published protocol on centred or "
        "standardised features, float64; docs/PROBES.md)",
        "",
        write_markdown_table(table, ["method", "seeds", *ROBUST_KEYS]),
    ]


def _fmt(m: float, h: float) -> str:
    return f"{m:.1f}" if math.isnan(h) else f"{m:.1f} ± {h:.1f}"


def write_comparison(
    root: Path,
    runs: dict[str, list[dict]],
    seeds: list[int],
    missing: list[str] = (),
    *,
    ru_unbiased: bool = True,
    baselines: dict[str, list[dict]] | None = None,
    benchmark: str = "trifeatures",
) -> dict:
    baselines = baselines or {}
    selections = [
        s
        for s in ("last", "best_valid", "test_selected")
        if all(s in r for rows in runs.values() for r in rows)
    ]
    stats: dict[str, dict] = {}
    md = [
        f"# {benchmark}: redundancy / uniqueness / synergy",
        "",
        "Balanced accuracy (%) of linear probes on frozen features (the fused features, or "
        "for cross / cross_self / cmc the concatenated unimodal ones, as published; the probe "
        "as published unless the runs say otherwise: C chosen by held-out balanced accuracy); "
        "mean ± half-width of "
        "the 95 % Student-t confidence interval over the seeds listed "
        "(no interval with one seed). "
        + (
            "Redundancy, uniqueness (unique1) and unique2 from runs on the unbiased pairs, "
            "synergy from runs on the biased pairs (the published protocol). "
            if ru_unbiased
            else "All three from runs on the biased pairs (not the published protocol: "
            "there texture₁ is shared with colour₂, so uniqueness is not unique). "
        )
        + "synergy AUROC: the synergy probe's AUROC (≈ 10 % positives). Chance: 10 / 10 / 50.",
    ]
    if benchmark == "trifeatures":
        md[-1] += " Published numbers: 224 px, 100 epochs, epoch chosen on test."
    for sel in selections:
        label = {
            "last": "last epoch",
            "best_valid": "epoch chosen on the held-out part of probe-train (best_valid)",
            "test_selected": (
                "as published: epoch chosen on **test** "
                "(optimistic; shown to measure the inflation)"
            ),
        }[sel]
        table = []
        for method, rows in runs.items():
            st = {k: mean_ci([r[sel][k] for r in rows]) for k in KEYS}
            stats.setdefault(method, {})[sel] = st
            entry = {"method": method, "seeds": len(rows), "steps": rows[0]["steps"]}
            entry.update({k: _fmt(*st[k]) for k in KEYS})
            if benchmark == "trifeatures":
                pub = protocol.PUBLISHED.get(method, {})
                entry["published R / U / S"] = " / ".join(
                    str(pub.get(k, "—")) for k in ("redundancy", "uniqueness", "synergy")
                )
            table.append(entry)
        if sel == "last":
            for name, rows in baselines.items():
                st = {k: mean_ci([r[k] for r in rows]) for k in KEYS}
                stats[name] = {"last": st}
                table.append(
                    {
                        "method": f"*{name}*",
                        "seeds": len(rows),
                        "steps": rows[0].get("steps", 0),
                        **{k: _fmt(*st[k]) for k in KEYS},
                    }
                )
        columns = ["method", "seeds", "steps", *KEYS] + (
            ["published R / U / S"] if benchmark == "trifeatures" else []
        )
        md += ["", f"## {label}", "", write_markdown_table(table, columns)]
        if sel == "last":
            md += _robust_table(runs, baselines, stats)
    diffs = {}
    if "infmasking" in runs and "comm" in runs:
        a = {r["seed"]: r for r in runs["infmasking"]}
        b = {r["seed"]: r for r in runs["comm"]}
        common = sorted(set(a) & set(b))
        if len(common) >= 2:
            md += [
                "",
                "## Paired difference InfMasking − CoMM (same seeds)",
                "",
                f"Per-seed differences over seeds {common}: mean ± 95 % CI half-width, "
                "paired t-test p.",
                "",
                "| selection | " + " | ".join(KEYS) + " |",
                "|---|" + "---|" * len(KEYS),
            ]
            for sel in selections:
                d = {
                    k: paired_difference(
                        [a[s][sel][k] for s in common], [b[s][sel][k] for s in common]
                    )
                    for k in KEYS
                }
                diffs[sel] = d
                md.append(
                    f"| {sel} | "
                    + " | ".join(
                        f"{v['mean']:+.1f} ± {v['ci']:.1f} (p {v['p']:.2g})" for v in d.values()
                    )
                    + " |"
                )
    gaps = {}
    if SUPERVISED in stats:
        ceiling = stats[SUPERVISED]["last"]
        md += [
            "",
            "## Distance to control (a) (last epoch)",
            "",
            "Method mean − the supervised control's mean (points): how much of what this "
            "architecture can expose linearly about synergy each objective reaches.",
            "",
            "| method | synergy | synergy_auroc |",
            "|---|---|---|",
        ]
        for method in runs:
            st = stats[method]["last"]
            gaps[method] = {k: st[k][0] - ceiling[k][0] for k in ("synergy", "synergy_auroc")}
            md.append(
                f"| {method} | {gaps[method]['synergy']:+.1f} | "
                f"{gaps[method]['synergy_auroc']:+.1f} |"
            )
    if missing:
        md += ["", f"Not finished (not in the table): {', '.join(missing)}."]
    write_atomic(root / "comparison.md", "\n".join(md) + "\n")
    write_atomic(
        root / "comparison.json",
        json.dumps(
            {
                "benchmark": benchmark,
                "seeds": seeds,
                "ru_unbiased": ru_unbiased,
                "runs": runs,
                "baselines": baselines,
                "stats": stats,
                "paired_infmasking_minus_comm": diffs,
                "minus_supervised_control": gaps,
            },
            indent=1,
            default=float,
        ),
    )
    plots.plot_rus_bars(
        {
            m: {
                k: stats[m]["last"][k]
                for k in ("redundancy", "uniqueness", "synergy", "synergy_auroc")
            }
            for m in stats
        },
        root / "comparison.png",
        title=f"{benchmark}: last epoch, mean ± 95 % CI",
        published={m: protocol.PUBLISHED[m] for m in stats if m in protocol.PUBLISHED}
        if benchmark == "trifeatures"
        else None,
        chance=protocol.CHANCE,
    )
    print("\n".join(md))
    return {"stats": stats, "runs": runs, "paired": diffs}
