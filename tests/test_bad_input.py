"""Config files get the command line's treatment, options that make a silently wrong run are
refused before training, and names that would break deep inside are caught at the edge."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_ONE_EPOCH

from infmasking.cli import main


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "method:\n  name: comm\noptim:\n  epochs: 1\nmethod:\n  name: cross\n",
            "'method' given twice",
        ),
        ("optim:\n  lr: abc\n", "optim.lr"),
        ("optim:\n  lrr: 1\n", "unknown key 'optim.lrr'"),
        ("nonsense: 1\n", "unknown key 'nonsense'"),
        ("", "the config file is empty"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_bad_config_file_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "my.yaml"
    path.write_text(content)
    with pytest.raises(SystemExit) as e:
        main(["train", *TINY_ONE_EPOCH, "--config", str(path), "--out_dir", str(tmp_path / "r")])
    text = str(e.value.code)
    assert message in text and "my.yaml" in text and "\n" not in text
    assert not (tmp_path / "r").exists()


def test_missing_config_file(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", str(tmp_path / "nope.yaml")])
    assert "nope.yaml: no such file" in str(e.value.code)


def test_hand_edited_config_yaml_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    assert main(["train", *TINY_ONE_EPOCH, "--optim.epochs", "2", "--out_dir", str(out)]) == 0
    (out / "report.json").unlink()  # as if unfinished
    (out / "config.yaml").write_text("optim:\n  epochs: [\n")
    assert main(["train", *TINY_ONE_EPOCH, "--optim.epochs", "2", "--out_dir", str(out)]) == 1
    assert "config.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method.temperature", ".inf"], "--method.temperature must be a finite number > 0"),
        (["--method.temperature", ".nan"], "--method.temperature"),
        (["--method.weights", "[0, 0, 0, 0, 0]"], "--method.weights must be finite numbers >= 0"),
        (["--method.weights", "[1, -1, 1, 1, 1]"], "--method.weights"),
        (["--trainer.log_every_n_steps", "0"], "--trainer.log_every_n_steps must be"),
        (["--seed", "-1"], "--seed must be an integer in [0, 2**32)"),
        (["--seed", "99999999999"], "--seed must be"),
        (["--eval.probe_max_test", "5"], "--eval.probe_max_test must be null (all) or an integer"),
    ],
)
def test_silently_wrong_options_are_refused(tmp_path, capsys, args, message):
    assert main(["train", *TINY_ONE_EPOCH, *args, "--out_dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("--seed") <= 1


def test_reproduce_refuses_duplicate_seeds(tmp_path, capsys):
    code = main(
        ["reproduce", "trifeatures_tokens", "--seeds", "[0, 0]", "--out_dir", str(tmp_path)]
    )
    assert code == 1 and "--seeds: [0] given more than once" in capsys.readouterr().err


def test_npz_names_are_checked_at_the_edge(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = {"x_a": rng.normal(size=(40, 3)), "y": rng.integers(0, 2, 40)}
    np.savez(tmp_path / "dot.npz", **base, **{"x_b.c": rng.normal(size=(40, 3))})
    np.savez(
        tmp_path / "stray.npz", **base, x_b=rng.normal(size=(40, 5, 2)), mask_c=np.ones((40, 5))
    )
    for name, message in (
        ("dot", "does not give a usable modality name"),
        ("stray", "'mask_c' names no modality"),
    ):
        code = main(
            [
                "train",
                "--preset",
                "npz",
                "--data.path",
                str(tmp_path / f"{name}.npz"),
                "--trainer.num_threads",
                "1",
                "--out_dir",
                str(tmp_path / name),
            ]
        )
        assert code == 1, name
        assert message in capsys.readouterr().err


def test_non_finite_inputs_refused_before_training(tmp_path, capsys):
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(40, 3))
    xa[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x_a=xa, x_b=rng.normal(size=(40, 3)), y=rng.integers(0, 2, 40))
    code = main(
        [
            "train",
            "--preset",
            "npz",
            "--data.path",
            str(tmp_path / "nan.npz"),
            "--trainer.num_threads",
            "1",
            "--out_dir",
            str(tmp_path / "r"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "NaN" in err and "x_a" in err


def test_tensorboard_logger_or_a_clear_refusal(tmp_path, capsys):
    import importlib.util

    out = tmp_path / "r"
    code = main(
        ["train", *TINY_ONE_EPOCH, "--trainer.logger", "tensorboard", "--out_dir", str(out)]
    )
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        assert code == 0
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))
        assert (out / "metrics.csv").exists()  # the CSV log is always written
    else:
        assert code == 1
        assert "tensorboard package is not installed" in capsys.readouterr().err


def test_trifeatures_keys_moved_from_data(tmp_path, capsys):
    """The Trifeatures fields moved from ``data`` into ``data.trifeatures``: configs and
    checkpoints written before read through the migration; the old command-line flags are read
    as the new ones with a notice; a --config file with an old key is refused naming the new."""
    from infmasking.training.config import RunConfig
    from infmasking.training.config_files import from_dict, to_dict

    old = to_dict(RunConfig())
    section = old["data"].pop("trifeatures")
    old["data"].update({**section, "biased": False, "image_size": 224, "max_pairs": 7})
    cfg = from_dict(old)
    assert (cfg.data.trifeatures.biased, cfg.data.trifeatures.image_size) == (False, 224)
    assert cfg.data.trifeatures.max_pairs == 7 and not hasattr(cfg.data, "biased")
    with pytest.raises(ValueError, match="data.biased .* data.trifeatures.biased"):
        from_dict(
            {**to_dict(RunConfig()), "data": {**to_dict(RunConfig())["data"], "biased": False}}
        )

    path = tmp_path / "old.yaml"
    path.write_text("data:\n  biased: false\n")
    with pytest.raises(SystemExit) as e:
        main(["train", *TINY_ONE_EPOCH, "--config", str(path), "--out_dir", str(tmp_path / "r")])
    assert "old.yaml: 'data.biased' is now 'data.trifeatures.biased'" in str(e.value.code)
    path.write_text("data:\n  trifeatures: {biasd: false}\n")
    with pytest.raises(SystemExit) as e:
        main(["train", *TINY_ONE_EPOCH, "--config", str(path), "--out_dir", str(tmp_path / "r")])
    assert "unknown key 'data.trifeatures.biasd'" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        main(["train", *TINY_ONE_EPOCH, "--data.trifeatures.biasd", "false"])
    assert "valid keys of 'data.trifeatures': biased," in str(e.value.code)
    assert not (tmp_path / "r").exists()

    from infmasking.cli import _renamed_options

    argv = _renamed_options(
        ["train", "--data.biased", "false", "--data.max_pairs=8", "--seed", "1"]
    )
    assert argv == [
        "train",
        "--data.trifeatures.biased",
        "false",
        "--data.trifeatures.max_pairs=8",
    ] + [
        "--seed",
        "1",
    ]
    err = capsys.readouterr().err
    assert "--data.biased is now --data.trifeatures.biased" in err
    assert "--data.max_pairs is now --data.trifeatures.max_pairs" in err
