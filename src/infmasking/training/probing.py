"""Probe features of a trained module and the linear probes of every task."""

from __future__ import annotations

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
        verbose=verbose,
        # eval.probe_C: that C only, no search (smoke runs and tests)
        Cs=None if cfg.eval.probe_C is None else [cfg.eval.probe_C],
        refine=cfg.eval.probe_C is None,
    )
