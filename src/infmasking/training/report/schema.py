"""The report of a run or an evaluation as a typed record: what ``report.json`` /
``evaluation*.json`` hold, read and written through one class.

The JSON keys are those the library has always written (files on disk stay readable)::

    {"method", "dataset", "config", "results", "train_seconds", "steps", "checkpoint",
     <extra keys>, "rus", "selection", "rus_by", "rus_last", "lambda", "markdown"}

``train_seconds`` / ``steps`` (training) and ``checkpoint`` (evaluation) and the Trifeatures
entries (``rus``, ``selection``, ``rus_by``, ``rus_last``) and ``lambda`` (masked objectives)
are present only where they apply; keys this module does not know are kept in
:attr:`RunReport.extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infmasking.training.errors import ReportError

__all__ = ["RunReport"]

#: JSON key -> field name, in the order the keys are written before the extra keys.
_HEAD = (
    ("method", "method"),
    ("dataset", "dataset"),
    ("config", "config"),
    ("results", "results"),
    ("train_seconds", "train_seconds"),
    ("steps", "steps"),
    ("checkpoint", "checkpoint"),
)
#: The keys written after the extra keys (the order of the files written so far).
_TAIL = (
    ("rus", "rus"),
    ("selection", "selection"),
    ("rus_by", "rus_by"),
    ("rus_last", "rus_last"),
    ("lambda", "lambda_schedule"),
    ("markdown", "markdown"),
)
#: Always written (the others only when not None).
_ALWAYS = {"method", "dataset", "config", "results", "markdown"}
#: Metrics that are not fractions (no percent scale).
_RAW_METRICS = ("mse", "r2")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the report's ``key`` entry (None: it can)."""
    if key in ("method", "dataset", "markdown", "checkpoint"):
        ok = isinstance(value, str) or (key == "checkpoint" and value is None)
        return None if ok else f"{key!r} should be a string, got {type(value).__name__}"
    if key == "steps":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else f"'steps' should be an integer, got {value!r}"
    if key == "train_seconds":
        ok = value is None or _is_number(value)
        return None if ok else f"'train_seconds' should be a number, got {value!r}"
    if key == "config":
        return None if isinstance(value, dict) else "'config' should be an object"
    if key == "results":
        if not isinstance(value, dict) or not all(isinstance(r, dict) for r in value.values()):
            return "'results' should be an object of task -> probe result objects"
        return None
    if key in ("rus", "rus_last", "lambda"):
        return None if value is None or isinstance(value, dict) else f"{key!r} should be an object"
    if key in ("selection", "rus_by"):
        ok = value is None or (
            isinstance(value, dict) and all(isinstance(r, dict) for r in value.values())
        )
        return None if ok else f"{key!r} should be an object of selection -> row objects"
    return None


@dataclass(frozen=True)
class RunReport:
    """One run's (``report.json``) or one evaluation's (``evaluation*.json``) report.

    Attributes:
        method: the objective's name (``method.name``).
        dataset: the dataset's name.
        config: the run config in ``to_dict`` form (sections -> options).
        results: probe task -> the probe result as written
            (:meth:`~infmasking.evaluation.probe.ProbeResult.to_dict`: ``metrics`` as
            fractions, ``None`` where undefined, ``val_scores``, ``published_metric``, ...).
        rus: Trifeatures headline, measure -> balanced accuracy (%): the last epoch, or the
            ``best_valid`` epoch with ``eval.select best_valid`` (then the last epoch is
            :attr:`rus_last`). None off the protocol.
        rus_last: the last epoch's ``rus`` when the headline is another epoch, else None.
        rus_by: selection ("last" | "valid" | "test") -> measure -> score (%), with
            ``unique2`` and ``synergy_auroc``; None without a probe curve.
        selection: selection -> the chosen row of ``probe_curve.json``; None without one.
        lambda_schedule: the masked objectives' λ ramp, ``{"horizon", "final"}`` (JSON key
            ``lambda``); None for the others.
        steps: optimizer steps of the training (None in an evaluation).
        train_seconds: training time (None in an evaluation).
        checkpoint: the checkpoint an evaluation read (None in a run's own report).
        markdown: the report as Markdown (``report.md``).
        extra: any other JSON keys, written back as they are.
        folder: the run folder the report was read from or written to; not serialised.
    """

    method: str = ""
    dataset: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    rus: dict[str, float] | None = None
    rus_last: dict[str, float] | None = None
    rus_by: dict[str, dict[str, float]] | None = None
    selection: dict[str, dict[str, Any]] | None = None
    lambda_schedule: dict[str, float] | None = None
    steps: int | None = None
    train_seconds: float | None = None
    checkpoint: str | None = None
    markdown: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = field(default=None, compare=False, repr=False)

    # ---------------------------------------------------------------------------------------
    # JSON

    def to_json(self) -> dict[str, Any]:
        """The report as report.json holds it (keys as always written; see the module doc).

        Returns:
            A JSON-serialisable dict (numbers may be numpy scalars: dump with
            ``default=float``).
        """
        out: dict[str, Any] = {}
        for key, name in _HEAD:
            value = getattr(self, name)
            if key in _ALWAYS or value is not None:
                out[key] = value
        out.update(self.extra)
        for key, name in _TAIL:
            value = getattr(self, name)
            if key in _ALWAYS or value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(
        cls, data: Any, *, source: str | Path | None = None, folder: Path | None = None
    ) -> RunReport:
        """A report from the dict of a report.json (any written so far; missing entries
        take their defaults).

        Args:
            data: the parsed JSON.
            source: where ``data`` came from, named in errors.
            folder: the run folder to carry along (:attr:`folder`).

        Returns:
            The report; ``to_json()`` of it equals ``data``.

        Raises:
            ReportError: ``data`` is not an object, or an entry has the wrong type.
        """
        where = f"{source}: " if source is not None else ""
        if not isinstance(data, dict):
            raise ReportError(
                f"{where}not a run report (expected a JSON object, got {type(data).__name__})"
            )
        known = {key: name for key, name in _HEAD + _TAIL}
        for key in known:
            if key in data and (why := _check(key, data[key])) is not None:
                raise ReportError(f"{where}malformed run report: {why}")
        fields = {name: data[key] for key, name in known.items() if key in data}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**fields, extra=extra, folder=Path(folder) if folder is not None else None)

    @classmethod
    def read(cls, path: str | Path, *, folder: Path | None = None) -> RunReport:
        """The report in the JSON file ``path``.

        Args:
            path: a report.json / evaluation*.json.
            folder: the run folder to carry along (default: the file's folder).

        Returns:
            The report, with :attr:`folder` set.

        Raises:
            ReportError: the file is missing, unreadable, not JSON or not a report (the
                message names the file).
        """
        from infmasking.files import read_json

        path = Path(path)
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise ReportError(f"{path}: no such report (has the run finished?)") from None
        except OSError as e:
            raise ReportError(f"{path}: cannot read the report ({e.strerror or e})") from None
        except ValueError as e:  # not JSON, too large, too deep, not a regular file
            raise ReportError(str(e)) from None
        return cls.from_json(data, source=path, folder=folder or path.parent)

    def replace(self, **changes: Any) -> RunReport:
        """A copy with ``changes`` (field name -> value)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------------------------------
    # accessors

    @property
    def seed(self) -> int | None:
        """The run's seed (``config.seed``), None if the config does not say."""
        return self.config.get("seed")

    def setting(self, dotted: str) -> Any:
        """One option of the run config, e.g. ``setting("optim.batch_size")``.

        Raises:
            KeyError: the config has no such option (the message names it).
        """
        value: Any = self.config
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"the report's config has no option {dotted!r}")
            value = value[part]
        return value

    def _result(self, task: str) -> dict[str, Any]:
        if task not in self.results:
            raise KeyError(f"no probe result for task {task!r} (tasks: {sorted(self.results)})")
        return self.results[task]

    def metric(self, task: str, metric: str) -> float:
        """The raw test metric ``metric`` of the probe of ``task`` (a fraction for the
        scores, as written); nan where it is undefined (written as null).

        Raises:
            KeyError: no such task or metric.
        """
        metrics = self._result(task).get("metrics", {})
        if metric not in metrics:
            raise KeyError(f"task {task!r} has no metric {metric!r} (metrics: {sorted(metrics)})")
        value = metrics[metric]
        return math.nan if value is None else float(value)

    def score(self, task: str, metric: str = "balanced_accuracy") -> float:
        """The test score ``metric`` of the probe of ``task``, in percent (nan: undefined).

        Raises:
            KeyError: no such task or metric.
            ValueError: ``metric`` is mse / r2 (not a fraction: read :meth:`metric`).
        """
        if metric in _RAW_METRICS:
            raise ValueError(f"{metric} is not a percentage; read it with metric()")
        return 100 * self.metric(task, metric)

    def held_out(self, task: str) -> float:
        """The best held-out score (%) of the probe of ``task`` over the regularisation
        values it tried (``val_scores``; part of probe-train, never the test split).

        Raises:
            KeyError: no such task, or no ``val_scores`` in its result.
        """
        scores = self._result(task).get("val_scores")
        if not scores:
            raise KeyError(f"task {task!r} has no held-out scores (val_scores)")
        return 100 * max(v[1] for v in scores)

    def _no_rus(self) -> ReportError:
        where = f" ({self.folder})" if self.folder is not None else ""
        return ReportError(
            f"the report of {self.method or '?'} on {self.dataset or '?'}{where} has no "
            "redundancy / uniqueness / synergy (rus): not a Trifeatures run"
        )

    def headline_rus(self) -> dict[str, float]:
        """Redundancy / uniqueness / synergy (%) of the headline (:attr:`rus`: the epoch
        ``eval.select`` chose).

        Raises:
            ReportError: the report has none (not a Trifeatures run).
        """
        if self.rus is None:
            raise self._no_rus()
        return dict(self.rus)

    def last_rus(self) -> dict[str, float]:
        """Redundancy / uniqueness / synergy (%) at the last epoch: :attr:`rus_last` when the
        headline is another epoch, else :attr:`rus`.

        Raises:
            ReportError: the report has neither (not a Trifeatures run).
        """
        rus = self.rus_last if self.rus_last is not None else self.rus
        if rus is None:
            raise self._no_rus()
        return dict(rus)
