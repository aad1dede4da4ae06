"""The probes' choices come from one table (infmasking.probe_registry): the
configuration, its checks, the CLI and fit_probe read it; the messages say the same as before."""

import typing

import pytest

from infmasking import probe_registry
from infmasking.evaluation import probe
from infmasking.training import config
from infmasking.training.validate import validate


def test_config_and_probe_read_the_table():
    assert probe_registry.PROBES == ("published", "standardised")
    assert probe_registry.ROBUST_PROBES == ("centred", "standardised", "off")
    assert typing.get_args(config.ProbeName) == probe_registry.PROBES
    assert typing.get_args(config.RobustProbeName) == probe_registry.ROBUST_PROBES
    assert probe.PROBES is probe_registry.PROBES
    assert probe.ROBUST_PROBES is probe_registry.ROBUST_PROBES


def test_cli_choices_are_the_table(capsys):
    from infmasking.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for names in (probe_registry.PROBES, probe_registry.ROBUST_PROBES):
        assert "Optional[Literal[" + ", ".join(map(repr, names)) + "]]" in out


def test_choices_read_as_before():
    assert probe_registry.choices(("published", "standardised")) == "'published' or 'standardised'"
    assert (
        probe_registry.choices(("centred", "standardised", "off"))
        == "'centred', 'standardised' or 'off'"
    )
    assert probe_registry.choices(("one",)) == "'one'"


def test_validate_names_the_choices():
    cfg = config.RunConfig()
    cfg.eval.probe = "nope"
    cfg.eval.robust_probe = "never"
    with pytest.raises(ValueError) as e:
        validate(cfg)
    assert "--eval.probe must be 'published' or 'standardised', got 'nope'" in str(e.value)
    assert "--eval.robust_probe must be 'centred', 'standardised' or 'off', got 'never'" in str(
        e.value
    )
