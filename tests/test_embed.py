"""Using a trained run: load_run, embed (all or a subset of the modalities), infmasking embed."""

import numpy as np
import pytest
import torch
from conftest import TINY_ONE_EPOCH, tiny_run_copy

import infmasking
from infmasking.cli import main
from infmasking.training.checkpoint import load_module
from infmasking.training.errors import RunError
from infmasking.training.loading import load_data


@pytest.fixture(scope="module")
def run_dir(tiny_run_once, tmp_path_factory):
    return tiny_run_copy(tiny_run_once, tmp_path_factory, "embed")  # TINY_ONE_EPOCH, once


def test_load_run_and_embed(run_dir):
    run = infmasking.load_run(run_dir)
    assert run.modalities == ["image1", "image2"] and run.shapes["image1"] == (3, 64, 64)
    assert not run.model.training
    data = load_data(run.config)
    batch = data.probe_test[torch.arange(6)]
    full = run.embed(batch.inputs)
    assert full.shape == (6, run.dim)
    # the same features as the run's module computes for clean inputs
    module, _, _ = load_module(run_dir)
    want = module.model.embed(module.views.probe_inputs(batch.inputs, crop=False))
    torch.testing.assert_close(full, want)
    one = run.embed({"image1": batch.inputs["image1"]}, modalities=["image1"])
    assert one.shape == (6, run.dim) and (one - full).abs().max() > 1e-4
    # the checkpoint file works as well as the folder
    torch.testing.assert_close(
        infmasking.load_run(run_dir / "checkpoints" / "last.ckpt").embed(batch.inputs), full
    )


def test_embed_errors(run_dir, tmp_path):
    run = infmasking.load_run(run_dir)
    x = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    with pytest.raises(
        ValueError, match=r"'image2': per-sample shape \[3, 32, 32\] does not match .*\[3, 64, 64\]"
    ):
        run.embed({"image1": x, "image2": torch.zeros(2, 3, 32, 32)})
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        run.embed({"image1": x}, modalities=["audio"])
    with pytest.raises(ValueError, match="no data for modality 'image2'"):
        run.embed({"image1": x})
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no checkpoint"):
        infmasking.load_run(tmp_path / "empty")


def test_embed_checks_its_output_before_any_work(run_dir, tmp_path, capsys, monkeypatch):
    """An existing --out / --export is refused at once, before the data is loaded and
    embedded; the file is left as it was."""
    from infmasking.commands import embed as command

    def no_work(cfg):
        raise AssertionError("the data was loaded before the output was checked")

    monkeypatch.setattr(command, "load_data", no_work)
    for option, name in (("--out", "f.npz"), ("--export", "m.pt2")):
        mine = tmp_path / name
        mine.write_bytes(b"mine")
        assert main(["embed", str(run_dir), option, str(mine)]) == 1
        assert f"{option} {mine} exists; pass --overwrite true" in capsys.readouterr().err
        assert mine.read_bytes() == b"mine"


def test_embed_command(run_dir, tmp_path, capsys):
    out = tmp_path / "f.npz"
    capsys.readouterr()
    assert main(["embed", str(run_dir), "--out", str(out), "--batch_size", "512"]) == 0
    said = capsys.readouterr()
    assert said.out.startswith(f"wrote {out}: features [")
    assert "embed train" not in said.err  # not a terminal: no progress bar fragments
    f = np.load(out)
    data = load_data(infmasking.load_run(run_dir).config)
    n_tr, n_te = len(data.probe_train), len(data.probe_test)
    assert f["features"].shape == (n_tr + n_te, 32)
    assert (f["split"] == "train").sum() == n_tr and (f["split"] == "test").sum() == n_te
    np.testing.assert_array_equal(f["y_share"][n_tr:], data.probe_test.targets["share"].numpy())
    assert (
        main(["embed", str(run_dir), "--out", str(tmp_path / "g.npz"), "--modalities", "[image2]"])
        == 0
    )
    g = np.load(tmp_path / "g.npz")
    assert g["features"].shape == f["features"].shape and not np.allclose(
        g["features"], f["features"]
    )
    capsys.readouterr()
    assert (
        main(["embed", str(run_dir), "--out", str(tmp_path / "h.npz"), "--modalities", "[sound]"])
        == 1
    )
    assert "unknown modality 'sound'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["image", "sequence"])
def test_exported_model_embeds_without_infmasking(tmp_path, run_dir, kind):
    """``infmasking embed RUN --export model.pt2``: a fresh process that cannot import
    infmasking loads it and gives the same features to 1e-5 (dynamic batch size)."""
    import subprocess
    import sys

    if kind == "image":
        src = run_dir
    else:
        src = tmp_path / "tok"
        assert (
            main(
                [
                    "train",
                    "--preset",
                    "trifeatures_tokens",
                    "--optim.epochs",
                    "1",
                    "--data.trifeatures.max_pairs",
                    "128",
                    "--eval.probe_max_train",
                    "300",
                    "--eval.probe_every",
                    "0",
                    "--trainer.progress_bar",
                    "false",
                    "--model.head_hidden",
                    "32",
                    "--model.proj_dim",
                    "16",
                    "--out_dir",
                    str(src),
                ]
            )
            == 0
        )
    pt2 = tmp_path / "model.pt2"
    assert main(["embed", str(src), "--export", str(pt2)]) == 0
    run = infmasking.load_run(src)
    data = load_data(run.config)
    batch = data.probe_test[torch.arange(7)]
    x = {m: v.float() / 255 if run.kinds[m] == "image" else v for m, v in batch.inputs.items()}
    want = run.embed(x)
    args = [x[m] for m in run.modalities] + [
        torch.zeros(7, x[m].shape[1], dtype=torch.bool)
        for m in run.modalities
        if run.kinds[m] == "sequence"
    ]
    torch.save(args, tmp_path / "args.pt")
    code = (
        "import sys, torch; sys.modules['infmasking'] = None; "
        f"p = torch.export.load({str(pt2)!r}).module(); "
        f"a = torch.load({str(tmp_path / 'args.pt')!r}); "
        f"torch.save(p(*a), {str(tmp_path / 'out.pt')!r})"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), want, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def cross_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("embed_cross") / "run"
    assert main(["train", *TINY_ONE_EPOCH, "--method.name", "cross", "--out_dir", str(out)]) == 0
    return out


def test_objectives_without_a_fused_term_are_probed_on_the_concatenation(cross_run, tmp_path):
    """Cross trains no fused embedding: its features are [F({x1}), F({x2})], width 2·d, in the
    probes, load_run(...).embed, infmasking embed and the export; eval.features fused keeps the
    untrained F(all) reading as a named option."""
    import json

    run = infmasking.load_run(cross_run)
    assert run.features == "concat" and run.feature_dim() == 2 * run.dim
    data = load_data(run.config)
    batch = data.probe_test[torch.arange(5)]
    feats = run.embed(batch.inputs)
    assert feats.shape == (5, 2 * run.dim)
    x = run.views.probe_inputs(batch.inputs, crop=False)
    tokens = run.model.tokenize(x)
    want = torch.cat([run.model.fuse(tokens, ["image1"]), run.model.fuse(tokens, ["image2"])], 1)
    torch.testing.assert_close(feats, want)
    assert run.embed(batch.inputs, modalities=["image2"]).shape == (5, run.dim)
    # the module's probe features are the same concatenation
    module, cfg, _ = load_module(cross_run)
    torch.testing.assert_close(module.model.embed(x, kind="concat"), want)
    report = json.loads((cross_run / "report.json").read_text())
    assert report["config"]["eval"]["features"] == "auto"
    # the fused reading, named, re-probed by evaluate into its own file
    out = tmp_path / "ev"
    assert main(["evaluate", str(cross_run), "--features", "fused", "--out_dir", str(out)]) == 0
    assert (out / "evaluation_fused.json").exists()
    assert main(["embed", str(cross_run), "--out", str(tmp_path / "f.npz")]) == 0
    assert np.load(tmp_path / "f.npz")["features"].shape[1] == 2 * run.dim
