"""benchmarks/campaigns/trifeatures64_curves.py reads the run folders' probe curves (published
protocol: R / U from the unbiased runs, S from the biased runs) and tabulates what they hold."""

import json
from pathlib import Path

import pytest
from bench_scripts import load as load_script


def _write(folder: Path, rows):
    folder.mkdir(parents=True)
    (folder / "probe_curve.json").write_text(json.dumps(rows))


def _rows(base: float, epochs=(0, 2)):
    return [
        {
            "epoch": e,
            "step": 10 * e,
            "share": base + e,
            "unique1": base + 2 * e,
            "synergy": 50.0 + e,
            "synergy_auroc": base + 3 * e,
        }
        for e in epochs
    ]


def test_curves_follow_the_protocol_and_skip_unfinished(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    for seed, shift in ((0, 0.0), (1, 2.0)):
        _write(runs / "infmasking" / f"seed{seed}", _rows(60 + shift))
        _write(runs / "infmasking" / f"seed{seed}_unbiased", _rows(20 + shift))
        _write(runs / "comm" / f"seed{seed}", _rows(58 + shift))
        _write(runs / "comm" / f"seed{seed}_unbiased", _rows(10 + shift))
    _write(runs / "cross" / "seed0", _rows(40, epochs=(0,)))  # unfinished: left out
    (runs / "comm" / "seed1" / "report.json").write_text(json.dumps({"train_seconds": 77.4}))
    mod = load_script("trifeatures64_curves")
    args = ["--runs", str(runs), "--out", str(out), "--epochs", "2", "--title", "Tokens"]
    assert mod.main(args) == 0
    data = json.loads((out / "curves.json").read_text())
    im = data["curves"]["infmasking"]
    # redundancy from the unbiased runs (20 / 22 + epoch), synergy AUROC from the biased ones
    assert [p["mean"] for p in im["share"]] == pytest.approx([21.0, 23.0])
    assert [p["mean"] for p in im["synergy_auroc"]] == pytest.approx([61.0, 67.0])
    assert im["share"][1]["values"] == pytest.approx([22.0, 24.0])
    assert "cross" not in data["curves"]
    diff = data["infmasking_minus_comm"]
    assert diff["share"]["differences"] == pytest.approx([10.0, 10.0])
    assert diff["synergy_auroc"]["mean"] == pytest.approx(2.0)
    md = (out / "curves.md").read_text()
    assert "## synergy AUROC (biased pairs)" in md and "| infmasking | 0, 1 | 61.0 ±" in md
    assert md.startswith("# Tokens: probe curves") and "| comm | biased | 1 | 77 |" in md
    assert data["train_seconds"] == {"comm": {"biased": {"seeds": [1], "seconds": [77.4]}}}
    assert (out / "curves.png").stat().st_size > 0


def test_unfinished_runs_and_all_tasks(tmp_path):
    """--include_unfinished: runs still training count up to the epoch all have reached;
    --all_tasks: every task of the biased runs, with training seconds per probed epoch."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    for method, base in (("infmasking", 60.0), ("comm", 50.0)):
        rows = _rows(base, epochs=(1, 2, 5))
        for r in rows:
            r["unique2"], r["train_seconds"] = base - r["epoch"], 100.0 * r["epoch"]
        _write(runs / method / "seed42", rows if method == "comm" else rows[:2])
    mod = load_script("trifeatures64_curves")
    args = ["--runs", str(runs), "--out", str(out), "--epochs", "10", "--seeds", "42"]
    assert (
        mod.main([*args, "--all_tasks", "--include_unfinished", "--methods", "infmasking", "comm"])
        == 0
    )
    data = json.loads((out / "curves.json").read_text())
    assert [p["epoch"] for p in data["curves"]["infmasking"]["unique2_biased"]] == [1, 2]
    assert [p["epoch"] for p in data["curves"]["comm"]["synergy"]] == [1, 2, 5]
    assert data["curves"]["comm"]["unique2_biased"][2]["mean"] == pytest.approx(45.0)
    # no unbiased-pair runs: the protocol's redundancy / uniqueness panels stay empty (the
    # biased runs' shape and texture scores are their own panels, never shown as unbiased)
    assert "share" not in data["curves"]["comm"] and "share_biased" in data["curves"]["comm"]
    assert data["curves"]["comm"]["synergy"][2]["train_seconds"] == [500.0]
    md = (out / "curves.md").read_text()
    assert "texture 2 (uniqueness task) (biased pairs)" in md and "| comm | epoch 5 | 500 |" in md
    assert mod.main(args) == 0  # without the flags: nothing has reached epoch 10
    assert json.loads((out / "curves.json").read_text())["curves"] == {}


def test_robust_reading_panels_where_the_runs_recorded_them(tmp_path):
    """Rows with the robust reading and the diagnostics (issue 34) get their own panels;
    a run whose rows lack them (written before) leaves those panels to the others."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    for method, base in (("infmasking", 60.0), ("comm", 50.0)):
        rows = _rows(base)
        if method == "comm":
            for r in rows:
                r.update(robust_synergy_auroc=base + 10, constant_synergy=1, offset_ratio=80.0)
        _write(runs / method / "seed0", rows)
    mod = load_script("trifeatures64_curves")
    args = ["--runs", str(runs), "--out", str(out), "--epochs", "2", "--seeds", "0"]
    assert mod.main([*args, "--methods", "infmasking", "comm"]) == 0
    data = json.loads((out / "curves.json").read_text())["curves"]
    key = "robust_synergy_auroc_biased"
    assert [p["mean"] for p in data["comm"][key]] == pytest.approx([60.0, 60.0])
    assert key not in data["infmasking"] and "synergy" in data["infmasking"]
    assert data["comm"]["constant_synergy_biased"][0]["mean"] == 1
    md = (out / "curves.md").read_text()
    assert "## synergy AUROC, robust reading (biased pairs)" in md


@pytest.mark.slow  # two tiny runs through bash, twice
def test_gpu_script_smoke_on_cpu(tmp_path):
    """benchmarks/campaigns/trifeatures224_gpu.sh end to end at tiny size on the CPU: both methods
    train, probe at the epochs asked and the summary names every task; a rerun trains nothing."""
    import os
    import subprocess
    import sys

    root, out = tmp_path / "runs", tmp_path / "out"
    env = {
        **os.environ,
        # the script calls `infmasking` and `python`: this interpreter's, installed or not on PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
        "ROOT": str(root),
        "OUT": str(out),
        "PRESET": "tiny",
        "ACCELERATOR": "cpu",
        "PRECISION": "32-true",
        "EPOCHS": "1",
        "PROBES": "[1]",
        "SEEDS": "3",
        "COMPILE": "false",
    }
    script = (
        Path(__file__).resolve().parents[1] / "benchmarks" / "campaigns" / "trifeatures224_gpu.sh"
    )
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads((out / "curves.json").read_text())
    for method in ("infmasking", "comm"):
        assert [p["epoch"] for p in data["curves"][method]["synergy_auroc"]] == [1]
        # biased runs only (the GPU lease): every task read from them (--all_tasks)
        assert set(data["curves"][method]) >= {
            "share_biased",
            "unique1_biased",
            "unique2_biased",
            "synergy",
        }
    assert len((out / "wall_seconds.txt").read_text().splitlines()) == 2
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "infmasking train" not in r.stdout
    assert len((root / "wall_seconds.txt").read_text().splitlines()) == 2
