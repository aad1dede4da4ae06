"""End-to-end CLI runs on the tiny preset (seconds): train, report files, resume after a kill,
evaluate, bad input."""

import json
import sys

import pytest
import torch
from conftest import TINY, TINY_REFERENCE, tiny_run_copy
from crashing_cli import run_cli  # tests/ is on sys.path under pytest

from infmasking.cli import main


@pytest.fixture(scope="module")
def tiny_run(tiny_reference, tmp_path_factory):
    """A copy of the session's 2-epoch tiny run (conftest: TINY_REFERENCE, trained once)."""
    return tiny_run_copy(tiny_reference, tmp_path_factory, "cli")


def test_train_writes_run_folder(tiny_run):
    for name in [
        "config.yaml",
        "metrics.csv",
        "checkpoints/last.ckpt",
        "report.json",
        "report.md",
        "training_curves.png",
        "probe.png",
    ]:
        assert (tiny_run / name).exists(), name
    report = json.loads((tiny_run / "report.json").read_text())
    assert set(report["rus"]) == {"redundancy", "uniqueness", "synergy"}
    assert report["results"]["synergy"]["published_metric"] == "balanced_accuracy"
    assert "auroc" in report["results"]["synergy"]["metrics"]
    assert report["steps"] == 2 * (96 // 32)
    csv = (tiny_run / "metrics.csv").read_text()
    assert "train/loss_mask1" in csv and "train/mask_weight" in csv
    # generated data: data.json says what generated it
    data = json.loads((tiny_run / "data.json").read_text())
    assert data["generated"] == "trifeatures" and data["seed"] == 0
    assert data["settings"]["trifeatures"]["max_pairs"] == 96


def test_data_on_device_trains_the_same_steps(tiny_run, tmp_path):
    """``trainer.data_on_device`` moves the training split before the first step; on this CPU
    it must leave every logged loss exactly as it was (the same batches, the same order)."""
    import csv

    out = tmp_path / "on_device"
    on_device = [*TINY_REFERENCE, "--trainer.data_on_device", "true"]
    assert main(["train", *on_device, "--out_dir", str(out)]) == 0

    def losses(folder):
        with (folder / "metrics.csv").open() as f:
            return [(r["step"], r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]

    assert losses(out) and losses(out) == losses(tiny_run)


def test_probe_curve_starts_at_random_init(tmp_path):
    out = tmp_path / "curve"
    one_epoch = ["--optim.epochs", "1", "--eval.probe_every", "1"]
    assert main(["train", *TINY, *one_epoch, "--out_dir", str(out)]) == 0
    curve = json.loads((out / "probe_curve.json").read_text())
    assert [row["epoch"] for row in curve] == [0, 1]
    assert [row["step"] for row in curve] == [0, 3]
    assert set(curve[0]) >= {"share", "unique1", "unique2", "synergy", "synergy_auroc"}
    assert (out / "probe_curve.png").exists()
    # both readings and the published reading's diagnostics at every probe point (issue 34)
    for row in curve:
        assert set(row) >= {"robust_share", "robust_synergy", "robust_synergy_auroc"}
        assert row["constant_synergy"] in (0, 1) and row["offset_ratio"] > 0
    assert (out / "probe_curve_robust.png").exists()


def test_finished_run_not_overwritten(tiny_run, capsys):
    """The same command again shows the finished result (exit 0, nothing trained or written);
    another config is refused in one line naming what differs."""
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.is_file()}
    assert main(["train", *TINY, "--out_dir", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "# infmasking on trifeatures" in out and "already held this finished run" in out
    assert "--overwrite true" in out
    assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.is_file()} == before
    assert main(["train", *TINY, "--out_dir", str(tiny_run), "--optim.lr", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "already holds a finished run of another config (optim.lr: 0.0003 -> 0.1)" in err
    assert main(["train", *TINY, "--out_dir", str(tiny_run), "--eval.probe", "standardised"]) == 1
    assert f"infmasking evaluate {tiny_run}" in capsys.readouterr().err


def test_evaluate_reproduces_report(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    # says what it does before the work, and what it wrote after
    assert out[0].startswith("Evaluating ") and "the published probe" in out[0]
    assert out[-1] == (
        f"Wrote evaluation.json, evaluation.md, evaluation_rus.png in {tiny_run.resolve()}"
    )
    # the steps of the checkpoint evaluated (its plot's title names them)
    assert json.loads((tiny_run / "evaluation.json").read_text())["steps"] == 2 * (96 // 32)
    a = json.loads((tiny_run / "report.json").read_text())["results"]
    b = json.loads((tiny_run / "evaluation.json").read_text())["results"]
    for task in a:
        assert a[task]["metrics"] == pytest.approx(b[task]["metrics"], abs=1e-9)
        robust = a[task]["robust"]["metrics"]
        assert robust == pytest.approx(b[task]["robust"]["metrics"], abs=1e-9)
        assert a[task]["diagnostics"] == pytest.approx(b[task]["diagnostics"])


def test_evaluate_robust_probe_option(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--robust_probe", "standardised"]) == 0
    b = json.loads((tiny_run / "evaluation_robust_standardised.json").read_text())
    assert b["config"]["eval"]["robust_probe"] == "standardised"
    assert b["results"]["synergy"]["robust"]["probe"] == "robust_standardised"
    assert "## Both readings" in b["markdown"]
    assert main(["evaluate", str(tiny_run), "--robust_probe", "off"]) == 0
    off = json.loads((tiny_run / "evaluation_robust_off.json").read_text())
    assert "robust" not in off["results"]["synergy"] and "rus_robust" not in off
    assert main(["evaluate", str(tiny_run), "--robust_probe", "whitened"]) == 1
    assert "--robust_probe: expected one of centred, standardised, off" in capsys.readouterr().err


def test_evaluate_class_weighted(tiny_run):
    assert (
        main(["evaluate", str(tiny_run), "--class_weight", "balanced", "--num_threads", "1"]) == 0
    )
    b = json.loads((tiny_run / "evaluation_balanced.json").read_text())
    assert b["config"]["eval"]["class_weight"] == "balanced"
    assert b["results"]["synergy"]["class_weight"] == "balanced"
    assert (
        json.loads((tiny_run / "report.json").read_text())["config"]["eval"]["class_weight"] is None
    )


def test_evaluate_rejects_unknown_class_weight(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--class_weight", "heavy"]) == 1
    assert "--class_weight: expected one of balanced; got 'heavy'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A run of :data:`TINY_REFERENCE` hard-killed after epoch 1 (its checkpoint's training time
    then set to 1000 s, as if the first process had trained long) and re-launched: the folder
    and the resumed process's result, shared by the two tests below."""
    killed = tmp_path_factory.mktemp("killed") / "run"
    args = ["train", *TINY_REFERENCE, "--out_dir", str(killed)]  # one thread: bit-identical math
    r = run_cli(args, crash_at=1)
    assert r.returncode == 17, r.stderr[-2000:]
    assert (killed / "checkpoints" / "last.ckpt").exists() and not (killed / "report.json").exists()
    ckpt_path = killed / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=False)
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("Timer")]
    assert 0 < ckpt["callbacks"][key]["time_elapsed"]["train"] < 1000
    ckpt["callbacks"][key]["time_elapsed"]["train"] = 1000.0
    torch.save(ckpt, ckpt_path)
    return killed, run_cli(args)


def test_resume_after_kill_ends_with_same_result(killed_and_resumed, tiny_reference):
    """A run hard-killed after epoch 1 and re-launched ends bit-identical to an uninterrupted
    one (the session's reference run, trained with the same options)."""
    (killed, r), straight = killed_and_resumed, tiny_reference
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Resuming from" in r.stdout
    for noise in ("Restor", "exists and is not empty", "Trainer.fit", "weights_only"):
        assert noise not in r.stdout + r.stderr, noise
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra = json.loads((straight / "report.json").read_text())["rus"]
    rb = json.loads((killed / "report.json").read_text())["rus"]
    assert ra == rb
    steps = [line.split(",") for line in (killed / "metrics.csv").read_text().splitlines()]
    assert len(steps) > 4  # rows of both attempts kept


def test_resume_with_different_config_refused(tmp_path, capsys):
    out = tmp_path / "run"
    r = run_cli(["train", *TINY, "--out_dir", str(out)], crash_at=1)
    assert r.returncode == 17
    assert main(["train", *TINY, "--out_dir", str(out), "--optim.lr", "0.1"]) == 1
    assert "optim.lr" in capsys.readouterr().err
    # a folder that lost its config.yaml: the checkpoint's own config is compared
    (out / "config.yaml").unlink()
    assert main(["train", *TINY, "--out_dir", str(out), "--trainer.precision", "bf16-mixed"]) == 1
    assert "trainer.precision" in capsys.readouterr().err


def test_unknown_preset_method_and_key():
    r = run_cli(["train", "--preset", "nope"])
    assert r.returncode != 0 and "valid presets" in r.stderr and "tiny" in r.stderr
    r = run_cli(["train", "--method.name", "simclr"])
    assert r.returncode != 0 and "infmasking" in r.stderr and "cross_self" in r.stderr
    r = run_cli(["train", "--optim.lrr", "0.1"])
    assert r.returncode != 0 and "optim.lrr" in r.stderr and "weight_decay" in r.stderr


@pytest.mark.parametrize(
    "argv, said",
    [
        (
            ["train", "--method.name", "infmask"],
            "infmasking train: error: --method.name: expected one of infmasking, comm, cross, "
            "cross_self, cmc, factorcl, mae; got 'infmask' (did you mean 'infmasking'?)",
        ),
        (["train", "--optim.lr", "abc"], "--optim.lr: expected a number; got 'abc'"),
        (["train", "--optim.epochs", "1.5"], "--optim.epochs: expected an integer; got '1.5'"),
        (["train", "--data.trifeatures.biased", "maybe"], "expected true or false; got 'maybe'"),
        (
            ["evaluate", "runs/x", "--probe", "standardized"],
            "infmasking evaluate: error: --probe: expected one of published, standardised; "
            "got 'standardized' (did you mean 'standardised'?)",
        ),
        (
            ["trian"],
            "infmasking: error: unknown command 'trian' (did you mean 'train'?); commands: train,",
        ),
        (["train", "--seeed", "3"], "unknown argument(s) --seeed 3 (did you mean '--seed'?)"),
        (
            ["train", "--optim.epoch", "3"],
            "unknown option --optim.epoch (did you mean '--optim.epochs'?)",
        ),
        (["evaluate"], "infmasking evaluate: error: missing run; usage: infmasking evaluate RUN"),
        (["interactions", "--bootstrap", "x"], "--bootstrap: expected an integer; got 'x'"),
    ],
)
def test_type_and_choice_errors_are_one_line(argv, said, capsys):
    """A wrong type, a misspelt choice, command or option: one line naming the option, what was
    expected and what came (the closest valid name), exit 1 — no usage dump."""
    try:
        code = main(argv)
    except SystemExit as e:  # unknown --section.key is caught before parsing
        print(e.code, file=sys.stderr)
        code = 1
    err = capsys.readouterr().err
    assert code == 1 and said in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_missing_data_path_says_where_to_get_the_file(tmp_path, capsys):
    assert main(["train", "--preset", "mosi", "--out_dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "--data.path is needed for data.name 'mosi': mosi_data.pkl" in err
    assert "MultiBench" in err and "docs/BENCHMARKS.md" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_help_starts_with_the_description(capsys):
    """``--help``: a one-line usage, then the description; no reStructuredText markup."""
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    lines = out.splitlines()
    assert lines[0] == "usage: infmasking train [options]" and lines[2].startswith("Train a method")
    assert "``" not in out and "--data-dir" not in out and ":class:" not in out


def test_help_lists_presets():
    r = run_cli(["train", "--help"])
    assert r.returncode == 0 and "tiny" in r.stdout and "trifeatures" in r.stdout


def test_corrupt_checkpoint_names_file(tmp_path, capsys):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    assert main(["evaluate", str(other)]) == 1
    assert "not an infmasking checkpoint" in capsys.readouterr().err


def test_checkpoint_of_another_version_is_named_so(tiny_run, tmp_path, capsys):
    ckpt = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt["state_dict"].pop(next(iter(ckpt["state_dict"])))  # a parameter this version expects
    torch.save(ckpt, tmp_path / "old.ckpt")
    assert main(["evaluate", str(tmp_path / "old.ckpt")]) == 1
    err = capsys.readouterr().err
    assert "does not match this version of infmasking" in err and "old.ckpt" in err


def test_reproduce_published_protocol(tmp_path, capsys):
    """reproduce trains a biased and an unbiased run per method × seed, reads R/U from the
    unbiased one and S from the biased one, reuses finished runs, and lists missing ones."""
    out = tmp_path / "rep"
    args = [
        "reproduce",
        "trifeatures",
        *TINY,
        "--optim.epochs",
        "1",
        "--out_dir",
        str(out),
        "--seeds",
        "[0]",
    ]
    assert main([*args, "--methods", "[comm, cross]"]) == 0
    for m in ("comm", "cross"):
        assert (out / m / "seed0" / "report.json").exists() and (
            out / m / "seed0_unbiased" / "report.json"
        ).exists()
        assert (
            json.loads(
                (out / m / "seed0_unbiased" / "config.yaml")
                .read_text()
                .split("biased: ")[1]
                .split("\n")[0]
            )
            is False
        )
    comp = json.loads((out / "comparison.json").read_text())
    assert comp["ru_unbiased"] is True and set(comp["runs"]) == {"comm", "cross"}
    for m in ("comm", "cross"):
        row = comp["runs"][m][0]["last"]
        unb = json.loads((out / m / "seed0_unbiased" / "report.json").read_text())
        bia = json.loads((out / m / "seed0" / "report.json").read_text())
        assert (
            row["redundancy"] == unb["rus"]["redundancy"]
            and row["uniqueness"] == unb["rus"]["uniqueness"]
        )
        assert row["synergy"] == bia["rus"]["synergy"]
    assert (out / "comparison.md").exists() and (out / "comparison.png").exists()
    capsys.readouterr()
    # a second call trains nothing; a method without runs is listed as missing
    assert main([*args, "--methods", "[comm, cmc]", "--only_finished", "true"]) == 0
    text = capsys.readouterr().out
    assert (
        "finished run reused" in text
        and "cmc seed 0 (biased)" in (out / "comparison.md").read_text()
    )


def test_reproduce_reads_the_benchmark_preset_by_default(tmp_path, capsys):
    """``infmasking reproduce trifeatures_tokens`` alone runs the benchmark's preset (said on
    stderr): the data check passes and --only_finished stops at the missing runs instead."""
    out = tmp_path / "rep"
    args = ["reproduce", "trifeatures_tokens", "--methods", "[comm]", "--seeds", "[3]"]
    assert main([*args, "--out_dir", str(out), "--only_finished", "true"]) == 1
    err = capsys.readouterr().err
    assert "--preset trifeatures_tokens" in err and "no finished run under" in err
    # an explicit preset of another benchmark is not replaced: the mismatch is an error
    assert main([*args, "--preset", "trifeatures", "--out_dir", str(out)]) == 1
    assert "needs data.name=trifeatures_tokens" in capsys.readouterr().err


def test_reproduce_rejects_unknown_method(tmp_path, capsys):
    assert (
        main(
            [
                "reproduce",
                "trifeatures",
                *TINY,
                "--out_dir",
                str(tmp_path),
                "--methods",
                "[infmask]",
            ]
        )
        == 1
    )
    assert "unknown method 'infmask'" in capsys.readouterr().err


def test_train_seconds_survive_a_resume(killed_and_resumed):
    """The training time in a checkpoint (Lightning's Timer state) is added to the resumed
    process's time in the report."""
    killed, r = killed_and_resumed
    assert r.returncode == 0, r.stderr[-2000:]
    assert 1000.0 < json.loads((killed / "report.json").read_text())["train_seconds"] < 1300.0


def test_checkpoints_replace_stale_files(tmp_path):
    """A stale last.ckpt in the folder (e.g. written late by a killed process) is replaced by
    the run's own, never kept beside a last-v1.ckpt that `evaluate` would not read."""
    from infmasking.training.config import RunConfig
    from infmasking.training.trainer import make_trainer

    trainer = make_trainer(RunConfig(), tmp_path, [])
    ckpt = trainer.checkpoint_callback
    # one file, checkpoints/last.ckpt, replaced every epoch (no version counter, no second copy)
    assert ckpt.filename == "last" and ckpt.save_top_k == 1 and not ckpt.save_last
    assert not ckpt._enable_version_counter


def test_train_bf16_mixed(tmp_path):
    """``--trainer.precision bf16-mixed`` trains on the CPU with the exact savings and reports."""
    out = tmp_path / "bf16"
    assert (
        main(
            [
                "train",
                *TINY,
                "--optim.epochs",
                "1",
                "--trainer.precision",
                "bf16-mixed",
                "--out_dir",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["config"]["trainer"]["precision"] == "bf16-mixed" and rep["steps"] == 3


@pytest.mark.parametrize(
    "native,precision,expected",
    [
        (False, "bf16-mixed", True),
        (True, "bf16-mixed", False),
        (None, "bf16-mixed", False),
        (False, "32-true", False),
    ],
)
def test_bf16_on_a_cpu_without_native_bf16_is_warned(monkeypatch, native, precision, expected):
    """bf16-mixed where the CPU has no native bf16 (its GEMMs take a slow path) gets one warning
    line."""
    from infmasking.training import host as run  # the host checks live in training/host.py
    from infmasking.training.config import RunConfig

    monkeypatch.setattr(run, "cpu_bf16_native", lambda: native)
    cfg = RunConfig()
    cfg.trainer.accelerator, cfg.trainer.precision = "cpu", precision
    warning = run.precision_warning(cfg)
    assert (warning is not None) == expected
    if expected:
        assert "bf16-mixed" in warning and "32-true" in warning and "\n" not in warning


def test_cpu_bf16_native_reads_the_cpu_flags(monkeypatch, tmp_path):
    from infmasking.training import host as run

    info = tmp_path / "cpuinfo"
    real = run.Path

    def fake(p, *a):
        return info if str(p) == "/proc/cpuinfo" else real(p, *a)

    monkeypatch.setattr(run, "Path", fake)
    info.write_text("flags\t\t: fpu sse avx2 fma\n")
    assert run.cpu_bf16_native() is False
    info.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert run.cpu_bf16_native() is True
    info.unlink()
    assert run.cpu_bf16_native() is None


def test_progress_bar_reads_the_loss_only_on_logged_steps():
    """The whole-run bar advances every step but reads the loss (a device synchronisation on a
    GPU) only every trainer.log_every_n_steps."""
    from types import SimpleNamespace

    from infmasking.training.callbacks import RunProgress

    class Bar:
        n, posts = 0, []

        def update(self, k):
            self.n += k

        def set_postfix(self, post, refresh=False):
            self.posts.append(post)

    class Loss:
        reads = 0

        def __float__(self):
            Loss.reads += 1
            return 1.0

    cb = RunProgress()
    cb.bar = Bar()
    for step in range(1, 11):
        trainer = SimpleNamespace(
            global_step=step,
            log_every_n_steps=5,
            callback_metrics={"train/loss": Loss()},
            current_epoch=0,
            max_epochs=1,
        )
        cb.on_train_batch_end(trainer, None, None, None, step - 1)
    assert cb.bar.n == 10 and Loss.reads == 2 and len(cb.bar.posts) == 2
