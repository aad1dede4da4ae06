"""The probes come from one table (infmasking.probe_registry): the configuration, its checks,
the CLI and fit_probe / probe_all read it, fit_probe fits through the entry, and a probe is
added through the registry alone (docs/CONTRIBUTING.md, "Add a probe"): a toy probe's reading
comes back from fit_probe, probe_all and ``infmasking evaluate --probe toy``. The messages for
an unknown name say the same as before."""

import dataclasses
import json
import typing

import numpy as np
import pytest
from conftest import tiny_run_copy

from infmasking import probe_registry
from infmasking.cli import build_parser, main
from infmasking.data.base import Task
from infmasking.evaluation import probe
from infmasking.probe_registry import ProbeEntry, register
from infmasking.training import config
from infmasking.training.config_files import from_dict, to_dict
from infmasking.training.validate import validate


def fit_toy(
    task, x_train, y_train, x_test, y_test, *, seed, val_fraction, Cs, class_weight, refine
):
    """Nearest class mean on the first feature only: a reading no built-in probe gives."""
    x_train, x_test = np.asarray(x_train)[:, :1], np.asarray(x_test)[:, :1]
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    classes = np.unique(y_train)
    means = np.stack([x_train[y_train == c].mean(0) for c in classes])  # [k, 1]
    pred = classes[np.abs(x_test[:, None, :] - means[None]).sum(-1).argmin(1)]
    return probe.ProbeResult(
        task=task.name,
        kind=task.kind,
        metrics={"balanced_accuracy": float(np.mean(pred == y_test)), "toy": 7.0},
        published_metric="balanced_accuracy",
        hparam_name="C",
        hparam=1.0,
        selection_metric="none",
        val_scores=[],
        n_train=len(x_train),
        n_test=len(x_test),
        probe="toy",
        notes=["the toy probe"],
    )


TOY = ProbeEntry("toy", "nearest class mean on the first feature (a test)", fit_toy)


@pytest.fixture
def toy(monkeypatch):
    """The registry with the toy probe added; restored afterwards."""
    monkeypatch.setattr(probe_registry, "REGISTRY", dict(probe_registry.REGISTRY))
    monkeypatch.setattr(probe_registry, "PROBES", probe_registry.PROBES)
    return register(TOY)


def _features(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] > 0).astype(int)
    return x[:200], y[:200], x[200:], y[200:]


def test_the_table():
    assert probe_registry.PROBES == ("published", "standardised")
    assert probe_registry.ROBUST_PROBES == ("centred", "standardised", "off")
    assert typing.get_args(config.RobustProbeName) == probe_registry.ROBUST_PROBES
    hints = typing.get_type_hints(config.EvalConfig)
    assert typing.get_args(hints["probe"]) == probe_registry.PROBES
    fits = {n: probe_registry.resolve_fit(e) for n, e in probe_registry.REGISTRY.items()}
    assert fits == {"published": probe.fit_published, "standardised": probe.fit_standardised}


def test_builtin_fits_are_what_fit_probe_gives():
    """fit_probe through the table reads as the built-in fits called directly (the published
    probe's numbers: tests/test_probe_published.py)."""
    task = Task("sign", "classification", 2)
    x_train, y_train, x_test, y_test = _features()
    for name, fit in (("published", probe.fit_published), ("standardised", probe.fit_standardised)):
        a = probe.fit_probe(task, x_train, y_train, x_test, y_test, probe=name, robust="off")
        b = fit(
            task,
            x_train,
            y_train,
            x_test,
            y_test,
            seed=0,
            val_fraction=None,
            Cs=None,
            class_weight=None,
            refine=True,
        )
        assert a.to_dict() == b.to_dict() and a.probe == name


def test_cli_choices_are_the_table(capsys):
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


def test_register_refuses_a_name_twice_and_an_entry_without_fit(toy):
    with pytest.raises(ValueError, match="probe 'toy' is already registered"):
        register(TOY)
    with pytest.raises(ValueError, match="probe 'bare': its entry gives no fit"):
        register(ProbeEntry("bare", "no fit"))
    assert probe_registry.PROBES == ("published", "standardised", "toy")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Toy", "expected a lowercase identifier"),
        ("a/b", "expected a lowercase identifier"),
        (3, "expected a lowercase identifier"),
        ("fused", "used by the evaluation files' names"),
        ("robust_mine", "used by the evaluation files' names"),
    ],
)
def test_register_refuses_a_name_that_would_clash_in_file_names(toy, name, message):
    with pytest.raises(ValueError, match=message):
        register(ProbeEntry(name, "a probe", fit_toy))
    assert probe_registry.PROBES == ("published", "standardised", "toy")


def test_register_imports_a_named_fit_at_once(toy):
    """A fit named as text is imported when registered, not after a run's training."""
    with pytest.raises(ValueError, match="fit must be a function or 'module:function'"):
        register(ProbeEntry("dotted", "a probe", "infmasking.evaluation.probe.fit_published"))
    with pytest.raises(ValueError, match="fit 'infmasking.nothing:fit' does not import"):
        register(ProbeEntry("missing", "a probe", "infmasking.nothing:fit"))
    with pytest.raises(TypeError, match="is not a function"):
        register(ProbeEntry("constant", "a probe", "infmasking.evaluation.probe:DEFAULT_CS"))
    with pytest.raises(ValueError, match="fit must be a function"):
        register(ProbeEntry("number", "a probe", 42))
    named = register(ProbeEntry("named", "a probe", "infmasking.evaluation.probe:fit_published"))
    assert probe_registry.resolve_fit(named) is probe.fit_published


def test_a_fit_must_return_its_own_result(toy):
    task = Task("sign", "classification", 2)
    x_train, y_train, x_test, y_test = _features()

    def unnamed(*args, **kwargs):
        return dataclasses.replace(fit_toy(*args, **kwargs), probe="nobody")

    register(ProbeEntry("unnamed", "names no registered probe", unnamed))
    register(ProbeEntry("bare", "returns its metrics only", lambda *a, **k: {"toy": 7.0}))
    for name, got in (("unnamed", "'nobody'"), ("bare", "'dict'")):
        with pytest.raises(TypeError, match=f"probe '{name}': its fit must return .*got {got}"):
            probe.fit_probe(task, x_train, y_train, x_test, y_test, probe=name)


def test_a_run_of_an_unregistered_probe_is_refused_naming_it(toy):
    """A config naming a probe registered in another process: one line naming the probe."""
    d = to_dict(config.RunConfig())
    d["eval"]["probe"] = "toy"
    assert from_dict(d).eval.probe == "toy"
    d["eval"]["probe"] = "elsewhere"
    with pytest.raises(ValueError, match="eval.probe 'elsewhere' is not a registered probe"):
        from_dict(d)


def test_toy_probe_through_fit_probe_and_probe_all(toy):
    task = Task("sign", "classification", 2)
    x_train, y_train, x_test, y_test = _features()
    r = probe.fit_probe(task, x_train, y_train, x_test, y_test, probe="toy", robust="centred")
    assert r.probe == "toy" and r.notes == ["the toy probe"] and r.metrics["toy"] == 7.0
    assert r.metrics["balanced_accuracy"] > 0.9
    # the robust reading is added beside it, as beside every probe
    assert r.robust is not None and r.robust.probe == "robust_centred"
    out = probe.probe_all(
        [task], x_train, {"sign": y_train}, x_test, {"sign": y_test}, probe="toy", robust="off"
    )
    assert out["sign"].probe == "toy" and out["sign"].metrics == r.metrics
    assert out["sign"].robust is None
    with pytest.raises(ValueError, match=r"probe: expected one of \['published', 'standardised', "):
        probe.fit_probe(task, x_train, y_train, x_test, y_test, probe="toys")


def test_toy_probe_in_the_configuration(toy, capsys):
    """eval.probe and evaluate --probe take the registered name (the parser is built after
    register); an unknown name is refused in the words of before, the new name among the
    choices."""
    args = build_parser().parse_args(["train", "--eval.probe", "toy"])
    assert args.train.eval.probe == "toy"
    cfg = config.RunConfig()
    cfg.eval.probe = "toy"
    validate(cfg)
    assert from_dict(to_dict(cfg)).eval.probe == "toy"
    assert main(["evaluate", "runs/x", "--probe", "toys"]) == 1
    err = capsys.readouterr().err
    assert "--probe: expected one of published, standardised, toy; got 'toys'" in err
    assert "(did you mean 'toy'?)" in err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "{published,standardised,toy}" in capsys.readouterr().out


def test_toy_probe_from_the_cli(toy, tiny_run_once, tmp_path_factory, capsys):
    """``infmasking evaluate RUN --probe toy`` on the session's tiny run: the toy's reading in
    evaluation_toy_robust_off.json (the files named after the probe)."""
    run = tiny_run_copy(tiny_run_once, tmp_path_factory, "toy_probe")
    assert main(["evaluate", str(run), "--probe", "toy", "--robust_probe", "off"]) == 0
    assert "the toy probe" in capsys.readouterr().out
    written = json.loads((run / "evaluation_toy_robust_off.json").read_text())
    assert written["config"]["eval"]["probe"] == "toy"
    for result in written["results"].values():
        assert result["probe"] == "toy" and result["metrics"]["toy"] == 7.0
        assert result["notes"] == ["the toy probe"]
