"""The ceilings and floors beside the methods of a Trifeatures comparison
(``infmasking reproduce``, docs/TRIFEATURES.md): the raw-input probe, control (a) — the fusion
network trained supervised on synergy — and control (b) — a probe on the true factors with the
texture₁ × colour₂ cell. Each is computed once per seed and cached under the comparison's
folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from infmasking.commands.comparison import from_tasks
from infmasking.data.trifeatures_tokens import raw_features
from infmasking.evaluation.probe import probe_all
from infmasking.files import read_json, write_atomic
from infmasking.training.config import RunConfig
from infmasking.training.loading import load_data, train_loader
from infmasking.training.module import SSLModule
from infmasking.training.probing import probe_splits, run_probes, seeded_subset
from infmasking.training.report.build import evaluation_name


def raw_input_probe(base: RunConfig, seed: int, root: Path) -> dict:
    """Linear probes on the raw inputs of ``trifeatures_tokens`` (R / U from the unbiased data's
    probe sets, which are those of the biased data too), cached in ``root/raw_input``."""
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
        **from_tasks(scores, scores),
        "synergy_auroc": 100 * res["synergy"].metrics["auroc"],
        "seed": seed,
    }
    if all(r.robust is not None for r in res.values() if r.kind == "classification"):
        robust = {task: 100 * r.robust.published_value for task, r in res.items()}
        row.update({f"robust_{k}": v for k, v in from_tasks(robust, robust).items()})
        row["robust_synergy_auroc"] = 100 * res["synergy"].robust.metrics["auroc"]
    return row


def factor_control(base: RunConfig, seed: int, root: Path) -> dict:
    """The probe's own ceiling: features = one-hot shape, texture and colour of both items of
    each pair and the texture₁ × colour₂ cell (100 values), probed like the methods (synergy
    is a function of the cell, so a linear probe can read it exactly). Cached in
    ``root/controls``."""
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
    suffix = "" if factor == 1 else f"_x{factor}"
    path = root / "controls" / f"supervised{suffix}_seed{seed}{_probe_tag(base)}.json"
    if path.exists():
        return read_json(path)
    cfg = dataclasses.replace(base, seed=seed, method=dataclasses.replace(base.method, name="comm"))
    torch.manual_seed(seed)
    data = load_data(cfg)
    module = SSLModule(
        cfg,
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
