"""A run's log holds the run's own lines: Lightning's messages that say nothing a user of
``infmasking`` can act on are dropped here, each by its text, so every other message (a real
warning, an error) still passes.

Dropped always (logging filters, installed on import): the advertising tips, the accelerator
banner, "`weights_only` was not set" (every step checkpoint), "Restoring states from ..." and
"Restored all states ..." (the run says "Resuming from ..." itself), "`Trainer.fit` stopped:
..." (the progress bar and the report say it) and the ``set_float32_matmul_precision`` hint (a
training-speed choice this library makes, not the user). Dropped inside a run
(:func:`quiet_lightning`): the warnings about a resumed folder's checkpoint and log
directories (expected: a resume writes into them and merges ``metrics.csv``), the data-loader
workers hint (the data is in memory; ``--trainer.num_workers`` is the option, not the
``DataLoader`` the hint names) and a torch deprecation raised inside Lightning.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

#: The beginnings of Lightning's log messages that never reach a user.
DROPPED_MESSAGES = (
    "💡",  # tips
    "GPU available",
    "TPU available",
    "HPU available",
    "`weights_only` was not set",
    "Restoring states from the checkpoint",
    "Restored all states from the checkpoint",
    "Loaded model weights from the checkpoint",
    "`Trainer.fit` stopped",
    "You are using a CUDA device",  # the set_float32_matmul_precision hint
)

#: The loggers they come from (a filter applies to the records of its own logger only).
LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.checkpoint_connector",
    "lightning.fabric.utilities.rank_zero",
)

#: Warnings raised inside a run that say nothing to act on (regular expressions).
DROPPED_WARNINGS = (
    r".*Experiment logs directory.*exists and is not empty.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*does not have many workers which may be a bottleneck.*",
    r".*isinstance.treespec, LeafSpec.*",
)


class DropLightningNoise(logging.Filter):
    """Drop the records whose message starts with (or, for the tips, holds) one of
    :data:`DROPPED_MESSAGES`; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.getMessage()).lstrip()
        return not (msg.startswith(DROPPED_MESSAGES) or "💡" in msg)


_FILTER = DropLightningNoise()
for _name in LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


@contextlib.contextmanager
def quiet_lightning():
    """Inside a run only: :data:`DROPPED_WARNINGS` are not shown."""
    with warnings.catch_warnings():
        for pattern in DROPPED_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        yield
