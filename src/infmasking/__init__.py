"""infmasking: multimodal contrastive learning that captures synergistic information.

The package's layout and its floors (which folder may import which; ``tests/test_layers.py``
checks them) are described once, in docs/CONTRIBUTING.md ("Layout").
"""

from infmasking.version import __version__

__all__ = ["__version__", "load_run", "read_report"]


def load_run(path, device="cpu"):
    """A trained run (folder or checkpoint) as a :class:`~infmasking.embed.TrainedModel`
    with ``embed(inputs, padding=None, modalities=None)``; see :mod:`infmasking.embed`."""
    from infmasking.embed import load_run as _load_run

    return _load_run(path, device)


def read_report(path):
    """The report of a run folder (``report.json``) as a typed
    :class:`~infmasking.training.report.schema.RunReport`: ``score(task)``, ``rus``,
    ``steps``, ``train_seconds``, ...; see :class:`~infmasking.training.folder.RunFolder`
    for the folder's other files (evaluations, probe curve, checkpoint)."""
    from infmasking.training.folder import RunFolder

    return RunFolder(path).report()
