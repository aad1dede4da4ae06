"""Probe features of a trained module and the linear probes of every task."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from infmasking.data.base import MultimodalData, Split
from infmasking.evaluation.probe import probe_all
from infmasking.training.config import (
    RunConfig,
)
from infmasking.training.module import SSLModule


@torch.no_grad()
def extract_features(
    module: SSLModule, split: Split, batch_size: int = 256, seed: int = 0
) -> np.ndarray:
    """The probe features of every sample of ``split`` in eval mode (:meth:`SSLModule.features`:
    [N, d] fused, or [N, M·d] concatenated unimodal). Probe-time image crops
    (``eval.probe_augment``) are drawn from a generator seeded with ``seed``."""
    was_training = module.training
    module.eval()
    out = []
    g = torch.Generator().manual_seed(seed)
    for start in range(0, len(split), batch_size):
        batch = split[torch.arange(start, min(start + batch_size, len(split)))].to(module.device)
        out.append(module.features(batch, g).float().cpu())
    module.train(was_training)
    return torch.cat(out).numpy()


def seeded_subset(split: Split, max_n: int, seed: int) -> Split:
    """At most ``max_n`` samples of ``split`` (probe-train, probe-test), a subset seeded by
    ``seed``, in their original order."""
    if len(split) <= max_n:
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:max_n]
    return split.subset(idx.sort().values)


#: The seed of the probe-test subset (``eval.probe_max_test``): one subset for every run.
PROBE_TEST_SEED = 0


def probe_splits(data: MultimodalData, cfg: RunConfig, seed: int) -> tuple[Split, Split]:
    """The probe-train and probe-test splits a probe reads: at most ``eval.probe_max_train``
    probe-train samples (a subset seeded by ``seed``) and at most ``eval.probe_max_test``
    probe-test samples (a subset seeded by :data:`PROBE_TEST_SEED`, whatever the run's seed:
    every run is scored on the same test samples)."""
    train = seeded_subset(data.probe_train, cfg.eval.probe_max_train, seed)
    test = data.probe_test
    if cfg.eval.probe_max_test is not None:
        test = seeded_subset(test, cfg.eval.probe_max_test, PROBE_TEST_SEED)
    return train, test


def run_probes(
    module: SSLModule, data: MultimodalData, cfg: RunConfig, verbose: bool = False
) -> dict[str, Any]:
    """Linear probes of every task on frozen features -> task -> ProbeResult.

    With ``trainer.num_threads`` set, the BLAS / OpenMP pools of scikit-learn are limited to it
    too (on a busy machine, spinning BLAS threads make the probe many times slower)."""
    if cfg.trainer.num_threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(cfg.trainer.num_threads):
            return _run_probes(module, data, cfg, verbose)
    return _run_probes(module, data, cfg, verbose)


def _run_probes(
    module: SSLModule, data: MultimodalData, cfg: RunConfig, verbose: bool = False
) -> dict[str, Any]:
    train, test = probe_splits(data, cfg, cfg.seed)
    xtr = extract_features(module, train, cfg.eval.batch_size, seed=2 * cfg.seed)
    xte = extract_features(module, test, cfg.eval.batch_size, seed=2 * cfg.seed + 1)
    ytr = {t: y.numpy() for t, y in train.targets.items()}
    yte = {t: y.numpy() for t, y in test.targets.items()}
    if verbose:
        print(
            f"Linear probes on frozen features: {len(xtr)} probe-train / "
            f"{len(xte)} probe-test samples, "
            f"{len(data.tasks)} task(s)",
            flush=True,
        )
    return probe_all(
        data.tasks,
        xtr,
        ytr,
        xte,
        yte,
        probe=cfg.eval.probe,
        seed=cfg.seed,
        class_weight=cfg.eval.class_weight,
        robust=cfg.eval.robust_probe,
        verbose=verbose,
        # eval.probe_C: that C only, no search (smoke runs and tests)
        Cs=None if cfg.eval.probe_C is None else [cfg.eval.probe_C],
        refine=cfg.eval.probe_C is None,
    )


def curve_row(results: dict[str, Any]) -> dict[str, Any]:
    """The scores of one probe point as a row of ``probe_curve.json`` (without ``epoch`` /
    ``step``): per task the published reading (``<task>``, ``<task>_auroc``), its held-out
    score (``val_<task>``), the robust reading (``robust_<task>``, ``robust_<task>_auroc``), all
    in %, and the diagnostics of the published reading (``C_<task>``, ``constant_<task>``:
    1 for a constant classifier, 0 otherwise) and the features' ``offset_ratio``."""
    row: dict[str, Any] = {t: 100 * r.published_value for t, r in results.items()}
    row.update(
        {f"{t}_auroc": 100 * r.metrics["auroc"] for t, r in results.items() if "auroc" in r.metrics}
    )
    row.update(
        {f"val_{t}": 100 * r.val_score for t, r in results.items() if r.kind != "regression"}
    )
    for t, r in results.items():
        if r.robust is not None:
            row[f"robust_{t}"] = 100 * r.robust.published_value
            if "auroc" in r.robust.metrics:
                row[f"robust_{t}_auroc"] = 100 * r.robust.metrics["auroc"]
    for t, r in results.items():
        if "constant_classifier" in r.diagnostics:
            row[f"C_{t}"] = r.diagnostics["C"]
            row[f"constant_{t}"] = int(r.diagnostics["constant_classifier"])
    ratios = [
        r.diagnostics["offset_ratio"] for r in results.values() if "offset_ratio" in r.diagnostics
    ]
    if ratios:
        # one feature set for every task; inf (constant features) as null
        row["offset_ratio"] = ratios[0] if math.isfinite(ratios[0]) else None
    return row
