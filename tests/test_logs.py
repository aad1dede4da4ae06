"""A run's log holds the run's own lines: Lightning's noise is dropped, everything else passes
(infmasking.training.quiet); Ctrl-C outside a run is one line."""

import logging
import warnings

import pytest

from infmasking import cli
from infmasking.training import quiet


@pytest.mark.parametrize(
    "logger, message",
    [
        ("lightning.pytorch.trainer.connectors.checkpoint_connector", "`weights_only` was not set"),
        ("lightning.pytorch.utilities.rank_zero", "Restoring states from the checkpoint path at x"),
        ("lightning.pytorch.utilities.rank_zero", "Restored all states from the checkpoint at x"),
        ("lightning.pytorch.utilities.rank_zero", "`Trainer.fit` stopped: `max_epochs=6` reached."),
        ("lightning.pytorch.utilities.rank_zero", "GPU available: False, used: False"),
        ("lightning.pytorch.utilities.rank_zero", "💡 Tip: For seamless cloud uploads ..."),
        (
            "lightning.pytorch.utilities.rank_zero",
            "You are using a CUDA device ('NVIDIA H200') that has Tensor Cores. ...",
        ),
    ],
)
def test_lightning_noise_is_dropped_other_messages_pass(caplog, logger, message):
    import infmasking.commands.train  # noqa: F401 - a run's import installs the filters

    caplog.set_level(logging.INFO)
    logging.getLogger(logger).info(message)
    logging.getLogger(logger).info("a message of its own")
    logging.getLogger(logger).warning("a real warning")
    said = [r.getMessage() for r in caplog.records]
    assert said == ["a message of its own", "a real warning"]


def test_quiet_lightning_drops_only_its_warnings():
    noise = [
        "Experiment logs directory /r exists and is not empty. Previous log files in this "
        "directory will be deleted when the new ones are saved!",
        "Checkpoint directory /r/checkpoints exists and is not empty.",
        "The 'train_dataloader' does not have many workers which may be a bottleneck.",
    ]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet.quiet_lightning():
            for text in noise:
                warnings.warn(text, UserWarning, stacklevel=1)
            warnings.warn("something the user must read", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something the user must read"]


def test_ctrl_c_outside_a_run_is_one_line(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_main", interrupted)
    assert cli.main(["evaluate", "runs/x"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "infmasking evaluate: interrupted (Ctrl-C)"
