"""benchmarks/campaigns/synergy_sweep.py tabulates the InfMasking sweep: each option's values,
the paired difference from the published point of the same seed, and the per-seed values it read."""

import json
from pathlib import Path

import pytest
from bench_scripts import load as load_script


def _report(folder: Path, seed: int, auroc: float) -> None:
    folder.mkdir(parents=True)
    report = {
        "config": {"seed": seed},
        "results": {"synergy": {"metrics": {"auroc": auroc / 100}}},
        "rus": {"synergy": 50.0 + seed, "redundancy": 99.0, "uniqueness": 90.0},
    }
    (folder / "report.json").write_text(json.dumps(report))


@pytest.mark.parametrize("reference_in_sweep", [True, False])
def test_sweep_table_pairs_seeds_with_the_published_point(tmp_path, reference_in_sweep):
    sweep, compare, out = tmp_path / "sweep", tmp_path / "compare", tmp_path / "out"
    ref = sweep if reference_in_sweep else compare
    prefix = "name_" if reference_in_sweep else ""
    for seed in (0, 1, 2):
        _report(ref / f"{prefix}infmasking" / f"seed{seed}", seed, 60.0 + seed)
        _report(ref / f"{prefix}comm" / f"seed{seed}", seed, 55.0)
        _report(sweep / "num_masks_1" / f"seed{seed}", seed, 62.0 + 2 * seed)
    _report(sweep / "mask_ratio_0.9" / "seed1", 1, 70.0)  # one seed only
    if reference_in_sweep:  # a comparison run that must not be read when the sweep has its own
        _report(compare / "infmasking" / "seed0", 0, 10.0)
    mod = load_script("synergy_sweep")
    args = ["--sweep", str(sweep), "--compare", str(compare), "--out", str(out)]
    assert mod.main([*args, "--seeds", "0", "1", "2"]) == 0
    data = json.loads((out / "sweep.json").read_text())
    t1 = data["num_masks"]["1.0"]
    assert t1["seeds"] == [0, 1, 2]
    assert t1["synergy_auroc"][0] == pytest.approx(64.0)
    # paired: (62 - 60, 64 - 61, 66 - 62) -> mean 3
    assert t1["delta_auroc"][0] == pytest.approx(3.0)
    assert [r["synergy_auroc"] for r in t1["per_seed"]] == pytest.approx([62.0, 64.0, 66.0])
    assert data["num_masks"]["6.0"]["synergy_auroc"][0] == pytest.approx(61.0)
    r9 = data["mask_ratio"]["0.9"]
    assert r9["seeds"] == [1] and r9["delta_auroc"][0] == pytest.approx(9.0)
    assert data["comm"]["n"] == 3 and data["comm"]["synergy_auroc"][0] == pytest.approx(55.0)
    assert data["comm"]["delta_auroc"][0] == pytest.approx(-6.0)  # 55 - (60, 61, 62)
    md = (out / "sweep.md").read_text()
    assert "| num_masks | 1 | 0, 1, 2 | 64.0 ±" in md
    assert ("trained exactly like the sweep runs" in md) == reference_in_sweep


def test_sweep_table_from_cached_evaluations(tmp_path):
    """--evaluation NAME reads each run's NAME.json (infmasking evaluate) instead of its report
    and writes sweep_<probe>.*; a finished run without that file is an error naming it."""
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    for seed in (0, 1):
        for name, auroc in (("name_infmasking", 60.0), ("name_comm", 55.0), ("num_masks_1", 70.0)):
            folder = sweep / name / f"seed{seed}"
            _report(folder, seed, auroc)
            report = json.loads((folder / "report.json").read_text())
            report["results"]["synergy"]["metrics"]["auroc"] = (auroc + 10 + seed) / 100
            (folder / "evaluation_standardised.json").write_text(json.dumps(report))
    mod = load_script("synergy_sweep")
    args = ["--sweep", str(sweep), "--compare", str(tmp_path / "none"), "--out", str(out)]
    assert mod.main([*args, "--seeds", "0", "1", "--evaluation", "evaluation_standardised"]) == 0
    data = json.loads((out / "sweep_standardised.json").read_text())
    assert data["num_masks"]["1.0"]["synergy_auroc"][0] == pytest.approx(80.5)
    assert data["num_masks"]["6.0"]["synergy_auroc"][0] == pytest.approx(70.5)
    assert data["comm"]["synergy_auroc"][0] == pytest.approx(65.5)
    assert "evaluation_standardised.json" in (out / "sweep_standardised.md").read_text()
    assert (out / "sweep_standardised.png").is_file() and not (out / "sweep.json").exists()
    (sweep / "num_masks_1" / "seed1" / "evaluation_standardised.json").unlink()
    with pytest.raises(SystemExit, match="num_masks_1/seed1: no evaluation_standardised.json"):
        mod.main([*args, "--seeds", "0", "1", "--evaluation", "evaluation_standardised"])
