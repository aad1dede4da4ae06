"""RunReport and RunFolder: a report round-trips through report.json unchanged, reports written
before the typed record read, a missing / damaged report is an error naming its file, and the
run folder finds its report, evaluations and probe curve.

``tests/fixtures/run_v0``: the report.json / evaluation_balanced.json / probe_curve.json /
report.md of a tiny run written by the code before RunReport existed (``infmasking train
--preset tiny --eval.probe_every 1 --eval.select best_valid``, then ``infmasking evaluate RUN
--class_weight balanced``)."""

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from infmasking.evaluation.probe import ProbeResult
from infmasking.training.config_files import from_dict, to_dict
from infmasking.training.errors import ReportError
from infmasking.training.folder import RunFolder
from infmasking.training.report.build import build_report
from infmasking.training.report.markdown import render_markdown
from infmasking.training.report.schema import RunReport

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A copy of the fixture run folder (reports and curve, no checkpoint)."""
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out)
    return out


@pytest.mark.parametrize("name", ["report.json", "evaluation_balanced.json"])
def test_existing_reports_round_trip_identically(name):
    text = (FIXTURE / name).read_text()
    data = json.loads(text)
    report = RunReport.from_json(data)
    assert report.to_json() == data
    assert list(report.to_json()) == list(data)  # the keys in the order they were written
    assert json.dumps(report.to_json(), indent=1, default=float) == text


def test_existing_report_reads_typed(run_dir):
    folder = RunFolder(run_dir)
    assert folder.finished
    report = folder.report()
    raw = json.loads((run_dir / "report.json").read_text())
    assert report.folder == run_dir
    assert (report.method, report.dataset) == ("infmasking", "trifeatures")
    assert report.steps == raw["steps"] == 6 and report.train_seconds == raw["train_seconds"]
    assert report.seed == raw["config"]["seed"] and report.setting("optim.batch_size") == 32
    assert report.lambda_schedule == raw["lambda"] and report.checkpoint is None
    assert report.markdown == (run_dir / "report.md").read_text().removesuffix("\n")
    # eval.select best_valid: the headline is the best_valid epoch, the last epoch rus_last
    assert report.rus == {k: raw["rus_by"]["valid"][k] for k in raw["rus"]}
    assert report.last_rus() == raw["rus_last"] == report.rus_last
    assert report.headline_rus() == raw["rus"]
    share = raw["results"]["share"]["metrics"]["balanced_accuracy"]
    assert report.score("share") == pytest.approx(100 * share)
    assert report.metric("share", "balanced_accuracy") == share
    assert report.score("synergy", "auroc") == 100 * raw["results"]["synergy"]["metrics"]["auroc"]
    assert report.held_out("share") == 100 * max(
        v[1] for v in raw["results"]["share"]["val_scores"]
    )
    with pytest.raises(KeyError, match="no probe result for task 'nope'"):
        report.score("nope")
    with pytest.raises(ValueError, match="metric()"):
        report.score("share", "mse")
    with pytest.raises(KeyError, match="optim.nope"):
        report.setting("optim.nope")


def test_report_without_rus_says_so():
    report = RunReport.from_json({"method": "comm", "dataset": "npz", "results": {}})
    assert report.rus is None and report.to_json()["markdown"] == ""
    with pytest.raises(ReportError, match="not a Trifeatures run"):
        report.last_rus()
    assert math.isnan(
        RunReport(results={"y": {"metrics": {"auroc": None}}}).score("y", "auroc")
    )  # undefined metrics are written as null


def test_folder_evaluations_and_curve(run_dir):
    folder = RunFolder(run_dir)
    ev = folder.evaluation("evaluation_balanced")
    assert ev is not None and ev.folder == run_dir
    assert ev.results["synergy"]["class_weight"] == "balanced"
    assert ev.checkpoint.endswith("last.ckpt") and ev.steps is None and ev.selection is None
    assert folder.evaluation() is None  # no plain evaluation.json in this run
    assert folder.evaluation("evaluation_standardised_fused") is None
    with pytest.raises(ValueError):
        folder.evaluation("report")
    with pytest.raises(ValueError, match="report name"):
        folder.evaluation("../elsewhere")
    curve = folder.probe_curve()
    assert [r["epoch"] for r in curve] == [0, 1, 2]
    assert RunFolder(run_dir / "nothing").probe_curve() == []
    assert folder.checkpoint == run_dir / "checkpoints" / "last.ckpt"
    assert RunFolder.of_checkpoint(folder.checkpoint) == folder
    assert RunFolder.of_checkpoint(run_dir / "x.ckpt") == folder


def test_missing_or_damaged_reports_name_the_file(tmp_path):
    folder = RunFolder(tmp_path)
    assert not folder.finished
    with pytest.raises(ReportError, match="no such report") as e:
        folder.report()
    assert str(tmp_path / "report.json") in str(e.value)
    for text, why in (
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a run report"),
        ('{"results": [1]}', "malformed run report: 'results'"),
        ('{"steps": "six"}', "malformed run report: 'steps'"),
        ('{"rus_by": {"valid": 3}}', "malformed run report: 'rus_by'"),
    ):
        folder.report_json.write_text(text)
        assert folder.finished  # the file exists; reading it fails
        with pytest.raises(ReportError, match=why) as e:
            folder.report()
        assert str(folder.report_json) in str(e.value)
    (tmp_path / "evaluation_balanced.json").write_text("")
    with pytest.raises(ReportError, match="evaluation_balanced.json"):
        folder.evaluation("evaluation_balanced")
    folder.probe_curve_json.write_text('{"epoch": 0}')
    with pytest.raises(ReportError, match="probe_curve.json: not a probe curve"):
        folder.probe_curve()


def test_write_report_round_trips(tmp_path, run_dir):
    report = RunFolder(run_dir).report().replace(extra={"note": [1, 2]}, folder=None)
    out = RunFolder(tmp_path)
    written = out.write_report(report)
    assert written.folder == tmp_path and written == report
    assert out.report() == report
    assert out.report_md.read_text() == report.markdown + "\n"
    assert json.loads(out.report_json.read_text())["note"] == [1, 2]
    out.write_report(report, "evaluation_fused")
    assert out.evaluation("evaluation_fused") == report


def _probe_results(raw: dict) -> dict[str, ProbeResult]:
    """ProbeResults from their written form (undefined metrics: null -> nan)."""
    out = {}
    for task, r in raw["results"].items():
        metrics = {k: math.nan if v is None else v for k, v in r["metrics"].items()}
        out[task] = ProbeResult(**{**r, "metrics": metrics})
    return out


def test_build_and_render_reproduce_the_reports_written_before():
    """The report built from the same probe results, curve and config is the one the code
    before RunReport wrote (JSON and Markdown)."""
    raw = json.loads((FIXTURE / "report.json").read_text())
    cfg = from_dict(raw["config"])
    data = SimpleNamespace(name=raw["dataset"], info={"protocol": "trifeatures"})
    curve = json.loads((FIXTURE / "probe_curve.json").read_text())
    report = build_report(
        cfg,
        data,
        _probe_results(raw),
        curve=curve,
        train_seconds=raw["train_seconds"],
        steps=raw["steps"],
    )
    # the config as this version writes it (options added since have their defaults; the
    # flat Trifeatures keys of the fixture moved into data.trifeatures)
    assert report.config == to_dict(cfg)
    assert "biased" in raw["config"]["data"] and "biased" not in report.config["data"]
    assert report.config["data"]["trifeatures"]["biased"] == raw["config"]["data"]["biased"]
    # the Markdown names the option by its new name; nothing else changed
    moved = raw["markdown"].replace("`--data.biased false`", "`--data.trifeatures.biased false`")
    assert moved != raw["markdown"]
    assert {**report.to_json(), "config": raw["config"]} == {**raw, "markdown": moved}
    assert render_markdown(report, cfg, data, curve) == moved
    ev = json.loads((FIXTURE / "evaluation_balanced.json").read_text())
    cfg = from_dict(ev["config"])
    report = build_report(cfg, data, _probe_results(ev), checkpoint=ev["checkpoint"])
    assert report.config == to_dict(cfg)
    moved = ev["markdown"].replace("`--data.biased false`", "`--data.trifeatures.biased false`")
    assert {**report.to_json(), "config": ev["config"]} == {**ev, "markdown": moved}


def test_train_and_evaluate_return_the_reports_they_write(tmp_path):
    """A tiny real run: train() and evaluate() return RunReports equal to the files."""
    from infmasking.commands.evaluate import evaluate
    from infmasking.commands.train import train

    raw = json.loads((FIXTURE / "report.json").read_text())
    cfg = from_dict({**raw["config"], "out_dir": str(tmp_path / "run")})
    cfg.trainer.num_threads = 1
    cfg.eval.probe_max_test = 1000  # as the tiny preset now: a third of the probe features
    cfg.eval.probe_C = 100.0  # as the tiny preset now: no search of C (the report is tested)
    report = train(cfg)
    folder = RunFolder(tmp_path / "run")
    assert isinstance(report, RunReport) and report.folder == folder.path
    # the keys written before, plus the robust reading's headline (issue 34)
    assert folder.report() == report and set(report.to_json()) == set(raw) | {"rus_robust"}
    assert set(report.extra["rus_robust"]) == {
        "redundancy",
        "uniqueness",
        "synergy",
        "synergy_auroc",
    }
    share = report.results["share"]
    assert share["robust"]["probe"] == "robust_centred"
    assert {"C", "constant_classifier", "offset_ratio"} <= set(share["diagnostics"])
    assert "## Both readings" in report.markdown and "| robust reading" in report.markdown
    curve = folder.probe_curve()
    assert {"robust_synergy", "robust_synergy_auroc", "constant_synergy"} <= set(curve[-1])
    assert (folder.path / "probe_curve_robust.png").exists()
    assert report.rus_last is not None and report.selection["valid"]["epoch"] >= 1
    ev = evaluate(folder.path, class_weight="balanced", num_threads=1)
    assert isinstance(ev, RunReport) and folder.evaluation("evaluation_balanced") == ev
    assert ev.checkpoint == str(folder.checkpoint)


def test_reproduce_reads_finished_runs_through_their_folders(run_dir):
    """reproduce: a finished run's report (or with reprobe its cached evaluation, carrying the
    run's training time) keeps its folder, whose probe curve gives the random-init row."""
    import dataclasses

    from infmasking.commands.comparison import pair_row
    from infmasking.commands.reproduce import _finished_report

    folder = RunFolder(run_dir)
    base = from_dict(json.loads((run_dir / "report.json").read_text())["config"])
    own = _finished_report(folder, base, reprobe=False)
    assert own == folder.report() and own.folder == run_dir
    base = dataclasses.replace(base, eval=dataclasses.replace(base.eval, class_weight="balanced"))
    cached = _finished_report(folder, base, reprobe=True)  # evaluation_balanced.json: no probe
    assert cached.results == folder.evaluation("evaluation_balanced").results
    assert (cached.train_seconds, cached.steps) == (own.train_seconds, own.steps)
    assert cached.folder == run_dir
    row = pair_row(own)
    assert row["last"]["redundancy"] == own.rus_last["redundancy"]
    assert row["last"]["unique2"] == own.score("unique2")
    assert row["best_valid"]["synergy"] == own.rus_by["valid"]["synergy"]
    epoch0 = folder.probe_curve()[0]
    assert row["random_init"]["redundancy"] == epoch0["share"]
    assert row["random_init"]["uniqueness"] == epoch0["unique1"]
    assert row["random_init"]["unique2"] == epoch0["unique2"]
    assert row["random_init"]["synergy"] == epoch0["synergy"]
    assert row["random_init"]["synergy_auroc"] == epoch0["synergy_auroc"]
    assert row["train_seconds"] == own.train_seconds and row["seed"] == own.seed
    row = pair_row(own, cached)  # no curve rows in an evaluation's selection: last only
    assert "best_valid" not in row and row["ru_from"] == "unbiased"
    assert row["train_seconds"] == 2 * own.train_seconds
