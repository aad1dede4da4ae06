"""The Trifeatures redundancy / uniqueness / synergy protocol, in one place (docs/TRIFEATURES.md).

Both Trifeatures datasets (``trifeatures``: images; ``trifeatures_tokens``: token sequences)
carry the same four probe tasks (:data:`infmasking.data.trifeatures.TASKS`) and mark themselves
with ``data.info["protocol"] == "trifeatures"``; everything generic code needs to know about the
protocol is read from here:

- which task measures what (:data:`RUS`): shape shared by both images -> redundancy, texture of
  image 1 -> uniqueness, 1[colour₂ = π(texture₁)] -> synergy;
- which run gives which number (:data:`MEASURE_PAIRS`): redundancy and uniqueness from a run on
  the unbiased pairs, synergy from a run on the biased pairs (on the biased pairs texture₁ is
  shared with colour₂, so uniqueness is overstated there);
- chance levels (:data:`CHANCE`) and the paper's numbers (:data:`PUBLISHED`: 224 px, 100 epochs,
  balanced accuracy %, its Trifeatures table).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CHANCE",
    "DATASETS",
    "MEASURES",
    "MEASURE_PAIRS",
    "PUBLISHED",
    "RUS",
    "applies",
    "rus_summary",
    "task_chance",
]

#: The datasets that follow the protocol (``reproduce`` benchmarks).
DATASETS = ("trifeatures", "trifeatures_tokens")

#: probe task -> the measure it reads.
RUS = {"share": "redundancy", "unique1": "uniqueness", "synergy": "synergy"}

#: The three measures, in table order.
MEASURES = ("redundancy", "uniqueness", "synergy")

#: measure -> the pair set of the run it is read from ("unbiased" / "biased").
MEASURE_PAIRS = {"redundancy": "unbiased", "uniqueness": "unbiased", "synergy": "biased"}

#: Chance level (%) of each measure and of synergy AUROC.
CHANCE = {"redundancy": 10.0, "uniqueness": 10.0, "synergy": 50.0, "synergy_auroc": 50.0}

#: The paper's Trifeatures table (224 px, 100 epochs; balanced accuracy %, mean of seeds).
PUBLISHED: dict[str, dict[str, float]] = {
    "cross": {"redundancy": 100.0, "uniqueness": 11.6, "synergy": 50.0},
    "cross_self": {"redundancy": 99.7, "uniqueness": 86.9, "synergy": 50.0},
    "factorcl": {"redundancy": 99.8, "uniqueness": 62.5, "synergy": 46.5},
    "mae": {"redundancy": 99.8, "uniqueness": 82.4, "synergy": 50.1},
    "comm": {"redundancy": 99.9, "uniqueness": 86.8, "synergy": 71.4},
    "infmasking": {"redundancy": 99.9, "uniqueness": 90.6, "synergy": 77.0},
}


def applies(data) -> bool:
    """Does ``data`` (a :class:`~infmasking.data.base.MultimodalData`) follow the protocol?"""
    return data.info.get("protocol") == "trifeatures"


def task_chance() -> dict[str, float]:
    """Chance (%) per probe task and per curve key (``unique2``, ``synergy_auroc``)."""
    chance = {task: CHANCE[name] for task, name in RUS.items()}
    chance.update(unique2=chance["unique1"], synergy_auroc=CHANCE["synergy_auroc"])
    return chance


def rus_summary(results: dict[str, Any]) -> dict[str, float]:
    """Redundancy / uniqueness / synergy (balanced accuracy, %) of one run's probe results."""
    return {
        name: 100 * results[task].metrics["balanced_accuracy"]
        for task, name in RUS.items()
        if task in results
    }
