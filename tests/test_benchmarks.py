"""The step-time benchmark compares like with like: its reference-structure path
(infmasking/testing/reference_step.py: published cost structure, explicit Σ) computes the same
loss and
gradients as the library path given the same inputs and masks; and the benchmark scripts run end
to end and write valid JSON."""

import json
import math

import pytest
import torch
from bench_scripts import load as load_script

from infmasking.losses import infmasking_loss
from infmasking.testing import reference_step as R


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Correctness, not speed: one thread (also in the memory subprocesses) keeps these tests
    fast when the shared machine is oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


def _loss_and_grads(variant, model, views, s, seed):
    model.zero_grad(set_to_none=True)
    loss = R.step_loss(variant, model, views, s, torch.Generator().manual_seed(seed))
    loss.backward()
    return loss.detach(), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


@pytest.mark.parametrize(
    "lib,collapse", [("library", True), ("library_noshare", True), ("library_full", False)]
)
def test_reference_structure_equals_library_path(lib, collapse):
    """Same model, inputs (with padding) and masks: same loss and same gradients, float64."""
    s = R.TINY
    torch.manual_seed(0)
    model = R.make_model(s, collapse=collapse, dtype=torch.float64)
    views = R.make_views(s, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert views[0][1], "the tiny setting must exercise padding masks"
    ref_loss, ref_grads = _loss_and_grads("reference", model, views, s, seed=7)
    lib_loss, lib_grads = _loss_and_grads(lib, model, views, s, seed=7)
    assert model.collapse_masked is collapse and model.shared_kv is (lib == "library")
    torch.testing.assert_close(ref_loss, lib_loss, rtol=1e-10, atol=1e-10)
    assert ref_grads.keys() == lib_grads.keys() and "mask_token" in ref_grads
    for n in ref_grads:
        torch.testing.assert_close(ref_grads[n], lib_grads[n], rtol=1e-8, atol=1e-10, msg=n)
    # and the masks matter: another mask draw gives another loss
    other, _ = _loss_and_grads(lib, model, views, s, seed=8)
    assert not torch.allclose(other, lib_loss)


def test_reference_structure_runs_every_subset_and_view():
    """The reference path runs (M+1)·T masked passes per view and keeps T of them."""
    s = R.TINY
    model = R.make_model(s, dtype=torch.float64)
    calls = []
    model.fusion.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape))
    (x, p), _ = R.make_views(s, torch.Generator().manual_seed(0), dtype=torch.float64)
    z, masked, discarded = R.reference_view(model, x, p, s.num_masks, s.mask_ratio)
    m, t = len(s.modalities), s.num_masks
    assert len(calls) == (m + 1) * (1 + t)  # one unmasked + T masked passes per subset
    assert all(c[0] == s.batch for c in calls)  # every pass is B rows: nothing batched
    assert len(z) == m + 1 and masked.shape == (t, s.batch, s.proj_dim) and len(discarded) == m * t


@pytest.mark.parametrize("b,p,t", [(1, 5, 2), (6, 8, 3), (9, 4, 1)])
def test_explicit_covariance_loss_equals_library_loss(b, p, t):
    g = torch.Generator().manual_seed(b * 100 + p)
    z1 = [torch.randn(b, p, generator=g, dtype=torch.float64) for _ in range(3)]
    z2 = [torch.randn(b, p, generator=g, dtype=torch.float64) for _ in range(3)]
    k1, k2 = (torch.randn(t, b, p, generator=g, dtype=torch.float64) for _ in range(2))
    ref = R.reference_loss(z1, z2, k1, k2, temperature=0.2, mask_weight=0.7)
    lib = infmasking_loss(z1, z2, k1, k2, temperature=0.2, mask_weight=0.7).loss
    torch.testing.assert_close(ref, lib, rtol=1e-10, atol=1e-10)


def test_step_time_runs_end_to_end(tmp_path):
    st = load_script("step_time")
    out = tmp_path / "step.json"
    st.main(
        [
            "--preset",
            "tiny",
            "--reps",
            "2",
            "--warmup",
            "1",
            "--no-memory",
            "--matmul-size",
            "256",
            "--out",
            str(out),
        ]
    )
    res = json.loads(out.read_text())
    assert res["command"].startswith("python benchmarks/costs/step_time.py --preset tiny")
    assert res["matmul_gflops_fp32"] > 0
    (r,) = res["settings"]
    assert set(r["times_s"]) == set(R.VARIANTS) and all(len(v) == 2 for v in r["times_s"].values())
    assert all(math.isfinite(x["of_medians"]) and x["of_medians"] > 0 for x in r["ratios"].values())
    assert "reference/library" in r["ratios"] and "library/comm" in r["ratios"]
    assert (
        r["gflop_per_step"]["reference"]
        > r["gflop_per_step"]["library"]
        > r["gflop_per_step"]["comm"]
        > 0
    )
    assert "| (a) reference structure |" in out.with_suffix(".md").read_text()


def test_memory_child_and_sweep(tmp_path, monkeypatch):
    st, tm = load_script("step_time"), load_script("timing")  # timing: imported by step_time
    mem = tm.measure_memory(R.TINY, "library")
    assert "error" not in mem, mem
    assert mem["peak_increase_bytes"] is None or mem["peak_increase_bytes"] >= 0
    monkeypatch.setattr(tm, "SWEEP_AXES", {"num_masks": [1, 2], "proj_dim": [8, 16]})
    out = tmp_path / "scaling.json"
    st.main(
        [
            "--sweep",
            "--sweep-preset",
            "tiny",
            "--reps",
            "1",
            "--warmup",
            "0",
            "--no-memory",
            "--sweep-max-cov-gb",
            "1e-8",
            "--matmul-size",
            "256",
            "--out",
            str(out),
        ]
    )
    res = json.loads(out.read_text())
    rows = res["sweep"]["axes"]["proj_dim"]
    assert [r["value"] for r in rows] == [8, 16]
    assert all(
        "reference_skipped" in r and "reference" not in r["stats"] for r in rows
    )  # tiny limit: skipped
    assert out.with_suffix(".png").stat().st_size > 0


def test_loss_memory_growth_fit():
    lm = load_script("loss_memory")
    ps = [256, 512, 1024, 2048]
    lin = lm.fit_growth(ps, [1e6 + 3e3 * p for p in ps])
    quad = lm.fit_growth(ps, [5.0 * p * p for p in ps])
    assert lin["linear_r2"] > 0.999 and lin["linear_bytes_per_p"] == pytest.approx(3e3)
    assert quad["loglog_slope"] == pytest.approx(2.0)


def test_summary_reads_targets_off_the_results():
    sr = load_script("step_time_report")

    def result(name, ab, bc):
        stats = {v: {"median": 1.0} for v in R.VARIANTS}
        ratios = {
            k: {"median_paired": 1.0, "of_medians": 1.0}
            for k in ("reference/library", "library/comm", "library_full/library", "reference/comm")
        }
        ratios["reference/library"]["median_paired"] = ab
        ratios["library/comm"]["median_paired"] = bc
        return {
            "command": f"python benchmarks/costs/step_time.py --preset {name}",
            "loadavg_at_start": [1.0],
            "loadavg_at_end": [2.0],
            "settings": [
                {
                    "setting": {"name": name, "batch": 64},
                    "stats": stats,
                    "ratios": ratios,
                    "memory": {},
                }
            ],
        }

    md = sr.summary_markdown([result("cpu64", 2.5, 2.1), result("three", 2.9, 1.2)])
    assert "| two modalities, T = 6: (a)/(b) ≥ 2.3 | `cpu64` | 2.50 | **yes** |" in md
    assert "| InfMasking ≤ 2× CoMM at the CPU Trifeatures setting | `cpu64` | 2.10 | **no** |" in md
    assert "| three modalities: (a)/(b) ≥ 3 | `three` | 2.90 | **no** |" in md
    assert "| shared first-block K/V: InfMasking / CoMM ≤ 1.1 | `cpu64` | 2.10 | **no** |" in md
    old = result("tokens", 7.0, 2.1)  # measured before the shared keys/values: no such target row
    del old["settings"][0]["stats"]["library_noshare"]
    assert "| shared first-block K/V: InfMasking" not in sr.summary_markdown([old])


def test_trifeatures_investigation_tables(tmp_path):
    inv = load_script("trifeatures_investigation")

    def report(share, syn, auroc, steps=30):
        task = lambda v: {
            "metrics": {"balanced_accuracy": v, "auroc": auroc},
            "val_scores": [[1.0, v + 0.01]],
        }
        return {
            "results": {
                "share": task(share),
                "unique1": task(0.2),
                "unique2": task(0.2),
                "synergy": task(syn),
            },
            "steps": steps,
        }

    runs, rep, out = tmp_path / "runs", tmp_path / "rep", tmp_path / "out"
    (runs / "curve_cross").mkdir(parents=True)
    (runs / "curve_cross" / "probe_curve.json").write_text(
        json.dumps(
            [
                {
                    "epoch": 0,
                    "step": 0,
                    "share": 30.0,
                    "unique1": 27.0,
                    "unique2": 28.0,
                    "synergy": 50.0,
                    "synergy_auroc": 47.0,
                },
                {
                    "epoch": 3,
                    "step": 30,
                    "share": 52.0,
                    "unique1": 46.0,
                    "unique2": 29.0,
                    "synergy": 55.0,
                    "synergy_auroc": 76.0,
                },
            ]
        )
    )
    (runs / "curve_cross" / "report.json").write_text(json.dumps(report(0.52, 0.55, 0.76)))
    (runs / "colour_comm").mkdir()
    (runs / "colour_comm" / "report.json").write_text(json.dumps(report(0.4, 0.6, 0.7)))
    (rep / "comm" / "seed0").mkdir(parents=True)
    (rep / "comm" / "seed0" / "report.json").write_text(json.dumps(report(0.45, 0.5, 0.6)))
    (rep / "comm" / "seed0" / "evaluation_balanced.json").write_text(
        json.dumps(report(0.45, 0.58, 0.61))
    )
    assert inv.main(["--runs", str(runs), "--reproduce", str(rep), "--out", str(out)]) == 0
    md = (out / "investigation.md").read_text()
    assert "| cross | 3 | 30 | 52.0 | 46.0 | 55.0 | 76.0 |" in md
    assert "| comm | colour-preserving | 40.0 | 20.0 | 61.0 / 60.0 | 70.0 |" in md
    assert "| 30 | 50.0 | 59.0 / 58.0 | 60.0 / 61.0 |" in md
    assert (out / "curves.png").exists() and (
        out / "runs" / "curve_cross" / "probe_curve.json"
    ).exists()


def test_step_time_settings_are_the_package_presets():
    """step_time's published-size settings take model, masking and encoders from the package's
    presets (a drifted copy once timed MOSI with 5 fusion heads where the preset has 8)."""
    from infmasking.training.config_files import load_config, presets

    st = load_script("step_time")
    for setting, preset in (
        ("trifeatures224", "trifeatures224"),
        ("cpu64", "trifeatures"),
        ("mosi", "mosi"),
    ):
        s, cfg = st.PRESETS[setting], load_config(presets()[preset])
        got = (s.dim, s.n_heads, s.n_layers, s.proj_dim, s.num_masks, s.mask_ratio, s.lr)
        want = (
            cfg.model.dim,
            cfg.model.n_heads,
            cfg.model.n_layers,
            cfg.model.proj_dim,
            cfg.method.num_masks,
            cfg.method.mask_ratio,
            cfg.optim.lr,
        )
        assert got == want, setting
        for m in s.modalities:
            assert m.encoder == cfg.model.encoders[m.name], (setting, m.name)


def test_gpu_step_runs_on_the_cpu(tmp_path):
    """benchmarks/costs/gpu_step.py on the CPU (the host side): one row per method and mode
    with the aten calls of the eager step, the Markdown and JSON written."""
    gpu_step = load_script("gpu_step")
    out = tmp_path / "gpu_step.md"
    argv = ["--preset", "tiny", "--methods", "infmasking", "--modes", "eager", "captured"]
    argv += ["--steps", "1", "--warmup", "1", "--profile_steps", "1", "--threads", "1"]
    assert gpu_step.main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [(r["method"], r["mode"]) for r in rows] == [("infmasking", "eager")]  # no CUDA graphs
    assert rows[0]["aten_calls_per_step"] > 100 and rows[0]["ms_per_step_sync"] > 0
    assert "| infmasking | eager |" in out.read_text()


def test_eager_step_counts_this_tree(tmp_path, capsys):
    """benchmarks/costs/eager_step.py without --against: the aten calls of this tree's step."""
    eager_step = load_script("eager_step")
    out = tmp_path / "eager.md"
    argv = ["--preset", "trifeatures_tokens", "--methods", "comm", "--out", str(out)]
    assert eager_step.main(argv) == 0
    row = [x for x in out.read_text().splitlines() if x.startswith("| comm |")]
    assert len(row) == 1 and int(row[0].split("|")[2]) > 100
