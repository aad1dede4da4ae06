"""``metrics.csv`` and ``hparams.yaml`` of a run, whole at every instant.

Lightning's CSV logger deletes ``metrics.csv`` when a run starts and appends to it in place: a
resumed run stopped again lost every row logged before the resume, and a crash mid-append left
half a line. :class:`RunCSVLogger` keeps the rows logged before the resumed step and rewrites the
whole file atomically (:func:`~infmasking.files.write_atomic`) at every flush: at any instant
the file on disk is either the previous version or the new one, never a part."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from infmasking.files import write_atomic


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics CSV ([] without the file)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, recursively (Lightning's AttributeDict, tuples;
    as YAML reads them back)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class RunMetricsWriter:
    """What Lightning calls the experiment of a CSV logger: rows in memory, written whole.

    Args:
        log_dir: the run folder.
        kept: the rows of the run before it was resumed; those at or after the first step
            logged now are dropped (the resumed run logs them again).
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str, kept: list[dict[str, Any]] | None = None) -> None:
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self.kept = list(kept or [])
        self.rows: list[dict[str, Any]] = []  # logged by this process, written
        self.metrics: list[dict[str, Any]] = []  # logged, not yet written
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        os.makedirs(log_dir, exist_ok=True)

    def log_metrics(self, metrics_dict: dict[str, Any], step: int | None = None) -> None:
        if step is None:
            step = len(self.rows) + len(self.metrics)
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics_dict.items()}
        row["step"] = step
        self.metrics.append(row)

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        clean = {}
        for k, v in self.hparams.items():
            v = plain(v)
            try:
                yaml.safe_dump(v)
            except yaml.YAMLError:
                continue  # a value YAML cannot hold is left out, as Lightning does
            clean[k] = v
        write_atomic(
            os.path.join(self.log_dir, self.NAME_HPARAMS_FILE),
            yaml.safe_dump(clean, sort_keys=False),
        )

    def save(self) -> None:
        if not self.metrics:
            return
        self.rows += self.metrics
        self.metrics = []
        first = min(
            (int(r["step"]) for r in self.rows if r.get("step") not in (None, "")), default=None
        )
        old = [
            r
            for r in self.kept
            if first is None or (r.get("step") not in (None, "") and int(r["step"]) < first)
        ]
        rows = old + self.rows
        self.metrics_keys = sorted({k for r in rows for k in r})
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.metrics_file_path, text.getvalue())


class RunCSVLogger(CSVLogger):
    """Lightning's CSV logger with :class:`RunMetricsWriter` as its experiment: ``metrics.csv``
    in the run folder, the rows before a resume kept, every write atomic."""

    def __init__(self, out: Path, kept: list[dict[str, Any]] | None = None) -> None:
        super().__init__(str(out), name="", version="")
        self._kept = kept

    @property
    @rank_zero_experiment
    def experiment(self) -> RunMetricsWriter:
        if self._experiment is None:
            self._experiment = RunMetricsWriter(self.log_dir, self._kept)
        return self._experiment
