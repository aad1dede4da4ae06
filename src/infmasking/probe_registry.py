"""The probes, in one table: name -> what the probe is (docs/PROBES.md). The configuration
(``eval.probe``, ``eval.robust_probe``), the CLI (``evaluate --probe / --robust_probe``), the
checks of both and :func:`~infmasking.evaluation.probe.fit_probe` take their choices from
:data:`PROBES` and :data:`ROBUST_PROBES`. Imports nothing heavy: the CLI reads it before any
probe runs. A new probe is its entry here plus its fit (its branch in ``fit_probe`` and, for a
new model, a class in ``evaluation/solvers.py``); the dispatch itself is not read from this
table yet (issue 36)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeEntry:
    """One probe, or one robust reading beside the published probe.

    Attributes:
        name: the value of ``eval.probe`` (or ``eval.robust_probe``).
        summary: what it fits, in one line (docs/PROBES.md has the whole protocol).
    """

    name: str
    summary: str


#: name -> :class:`ProbeEntry`: the probes ``eval.probe`` chooses among.
REGISTRY: dict[str, ProbeEntry] = {
    e.name: e
    for e in (
        ProbeEntry(
            "published",
            "the papers' probe: raw features, the fixed stratified 60 / 40 hold-out, C searched "
            "in two stages by balanced accuracy, torch L-BFGS, refit on all (classification; "
            "multilabel and regression tasks use the standardised probes)",
        ),
        ProbeEntry(
            "standardised",
            "the library's earlier probe: features standardised with probe-train statistics, C "
            "chosen on a seeded hold-out (AUROC for binary tasks, else balanced accuracy), "
            "scikit-learn",
        ),
    )
}

#: name -> :class:`ProbeEntry`: the robust readings ``eval.robust_probe`` chooses among.
ROBUST: dict[str, ProbeEntry] = {
    e.name: e
    for e in (
        ProbeEntry("centred", "the published protocol on centred features, in float64"),
        ProbeEntry("standardised", "the published protocol on standardised features, in float64"),
        ProbeEntry("off", "no robust reading"),
    )
}

PROBES: tuple[str, ...] = tuple(REGISTRY)
ROBUST_PROBES: tuple[str, ...] = tuple(ROBUST)


def choices(names: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the choices as the configuration's messages say them."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
