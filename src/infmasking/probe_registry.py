"""The probes, in one table: name -> everything about the probe (what it fits, in a line for
the docs, and how it is fitted). The configuration (``eval.probe``, ``eval.robust_probe``), the
CLI (``evaluate --probe / --robust_probe``), the checks of both and
:func:`~infmasking.evaluation.probe.fit_probe` (which fits through the entry) read
:data:`REGISTRY` / :data:`PROBES` and :data:`ROBUST_PROBES` when they run, so a new probe is
its fit plus its :class:`ProbeEntry` here, or one :func:`register` call from outside the package
(docs/CONTRIBUTING.md, "Add a probe").

Imports nothing heavy: the CLI reads it before any probe runs. The built-in probes therefore
name their fit (``"module:function"``, in ``evaluation/probe.py``), which
:func:`~infmasking.evaluation.probe.fit_probe` imports when a probe runs."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProbeEntry:
    """One probe, or one robust reading beside the published probe.

    Attributes:
        name: the value of ``eval.probe`` (or ``eval.robust_probe``).
        summary: what it fits, in one line (docs/PROBES.md has the whole protocol).
        fit: how it is fitted, the same call for every probe::

                fit(task, x_train, y_train, x_test, y_test, *, seed, val_fraction, Cs,
                    class_weight, refine) -> ProbeResult

            with the arguments of :func:`~infmasking.evaluation.probe.fit_probe` as given to it
            (features [N, D] / [M, D], targets with N / M rows; the options None where not
            set); it returns an :class:`~infmasking.evaluation.probe.ProbeResult` (its
            ``probe`` field: ``name``). Either the function, or ``"module:function"`` naming
            it (imported when the probe runs). None for a robust reading (the published
            protocol with its own preparation of the features).
    """

    name: str
    summary: str
    fit: Callable[..., Any] | str | None = None


#: name -> :class:`ProbeEntry`: the probes ``eval.probe`` chooses among.
REGISTRY: dict[str, ProbeEntry] = {
    e.name: e
    for e in (
        ProbeEntry(
            "published",
            "the papers' probe: raw features, the fixed stratified 60 / 40 hold-out, C searched "
            "in two stages by balanced accuracy, torch L-BFGS, refit on all (classification; "
            "multilabel and regression tasks use the standardised probes)",
            "infmasking.evaluation.probe:fit_published",
        ),
        ProbeEntry(
            "standardised",
            "the library's earlier probe: features standardised with probe-train statistics, C "
            "chosen on a seeded hold-out (AUROC for binary tasks, else balanced accuracy), "
            "scikit-learn",
            "infmasking.evaluation.probe:fit_standardised",
        ),
    )
}

#: name -> :class:`ProbeEntry`: the robust readings ``eval.robust_probe`` chooses among, beside
#: the published probe (docs/PROBES.md): the published protocol (hold-out, search of C, loss,
#: refit) on features centred ("centred") or standardised ("standardised") with probe-train
#: statistics, solved in float64; "off": none. A fixed table (no fit of their own).
ROBUST: dict[str, ProbeEntry] = {
    e.name: e
    for e in (
        ProbeEntry("centred", "the published protocol on centred features, in float64"),
        ProbeEntry("standardised", "the published protocol on standardised features, in float64"),
        ProbeEntry("off", "no robust reading"),
    )
}

#: The names of :data:`REGISTRY`, in order; :func:`register` renews it (read it as
#: ``probe_registry.PROBES`` when it is needed, not as a copy taken at import).
PROBES: tuple[str, ...] = tuple(REGISTRY)
ROBUST_PROBES: tuple[str, ...] = tuple(ROBUST)


#: A probe's name: it becomes part of file names (``evaluation_<name>.json``).
NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Words the evaluation files' names use for other options (``eval.features``,
#: ``eval.class_weight``, the robust reading): a probe named so would share their file names.
RESERVED = ("auto", "fused", "concat", "balanced", "robust")


def register(entry: ProbeEntry) -> ProbeEntry:
    """Add a probe to :data:`REGISTRY`; from then on ``eval.probe``, ``evaluate --probe`` and
    :func:`~infmasking.evaluation.probe.fit_probe` accept its name.

    Raises:
        ValueError: the name is taken, not a lowercase identifier, or one of :data:`RESERVED`
            (or starts with ``robust``); the fit is missing, or a ``"module:function"`` that
            does not import (checked now, not after a run's training).
        TypeError: the fit it names is not a function.
    """
    global PROBES
    name = entry.name
    if not (isinstance(name, str) and NAME.fullmatch(name)):
        raise ValueError(f"probe name {name!r}: expected a lowercase identifier ([a-z][a-z0-9_]*)")
    if name in REGISTRY:
        raise ValueError(f"probe {name!r} is already registered")
    if name in RESERVED or name.startswith("robust"):
        raise ValueError(
            f"probe name {name!r} is used by the evaluation files' names for other options "
            f"({', '.join(RESERVED)}, robust*); choose another"
        )
    if entry.fit is None:
        raise ValueError(f"probe {name!r}: its entry gives no fit")
    if not callable(entry.fit):
        resolve_fit(entry)
    REGISTRY[name] = entry
    PROBES = tuple(REGISTRY)
    return entry


def resolve_fit(entry: ProbeEntry) -> Callable[..., Any]:
    """The entry's fit: the function itself, or the one its ``"module:function"`` names
    (imported now). Raises ValueError naming the probe when it is neither."""
    fit = entry.fit
    if callable(fit):
        return fit
    module, sep, function = fit.partition(":") if isinstance(fit, str) else ("", "", "")
    if not (sep and module and function):
        raise ValueError(
            f"probe {entry.name!r}: fit must be a function or 'module:function', got {fit!r}"
        )
    try:
        found = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"probe {entry.name!r}: fit {fit!r} does not import ({e})") from None
    if not callable(found):
        raise TypeError(f"probe {entry.name!r}: fit {fit!r} is not a function")
    return found


def choices(names: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the choices as the configuration's messages say them."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
