"""FactorCL (self-supervised): its bounds against naive float64 references written from the
formulas (forward and gradient), the critics' pair scores, where each gradient goes (CLUB
critics learn only from their own InfoNCE; the encoders only from the estimates), the probe
features, bad input, an end-to-end CLI run and one step on every preset."""

import math

import pytest
import torch
from baseline_steps import (
    PRESETS,
    one_step,
    preset_module,
    probe_features,
    train_cli,
    trifeatures_tokens_report,
    write_files,
)
from conftest import TINY

from infmasking import losses as L
from infmasking.models.baseline_heads import ConcatCritic, FactorCLHeads

# ----------------------------------------------------------------- naive references (loops)


def naive_nce(s):
    """I_NCE = log N + (1/N) Σ_j [f(a_j, b_j) − log Σ_i exp f(a_i, b_j)], s[i, j] = f(a_i, b_j)."""
    n = s.shape[0]
    total = 0.0
    for j in range(n):
        den = sum(torch.exp(s[i, j]) for i in range(n))
        total = total + s[j, j] - torch.log(den)
    return math.log(n) + total / n


def naive_club(s):
    """I_CLUB = (1/N) Σ_i f(a_i, b_i) − (1/N²) Σ_ij f(a_i, b_j)."""
    n = s.shape[0]
    pos = sum(s[i, i] for i in range(n)) / n
    allp = sum(s[i, j] for i in range(n) for j in range(n)) / (n * n)
    return pos - allp


NCE_TERMS = {"shared", "unique_aug_1", "unique_aug_2", "unique_cond"}
CRITIC_TERMS = {"critic_shared_cond", "critic_unique"}


def naive_factorcl(mats, weights=None):
    """Sum of the 8 terms: −I_NCE for the InfoNCE and critic terms, +I_CLUB for the two others."""
    w = [1.0] * 8 if weights is None else weights
    total = 0.0
    for wi, name, s in zip(w, L.FACTORCL_TERMS, mats, strict=True):
        term = -naive_nce(s) if name in NCE_TERMS | CRITIC_TERMS else naive_club(s)
        total = total + wi * term
    return total


def _mats(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, n, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(8)
    ]


def _scores(mats):
    return L.FactorCLScores(
        mats[0], mats[1], (mats[2], mats[3]), mats[4], mats[5], mats[6], mats[7]
    )


# ----------------------------------------------------------------- the bounds


@pytest.mark.parametrize("n", [1, 2, 5])
def test_bounds_match_naive_forward_and_gradient(n):
    (s, *_) = _mats(n, seed=n)
    for fast_fn, slow_fn in ((L.nce_lower_bound, naive_nce), (L.club_upper_bound, naive_club)):
        fast, slow = fast_fn(s), slow_fn(s)
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
        (gf,) = torch.autograd.grad(fast, s)
        (gs,) = torch.autograd.grad(slow, s)
        torch.testing.assert_close(gf, gs, rtol=0, atol=1e-10)
    assert torch.autograd.gradcheck(L.nce_lower_bound, (s,))
    assert torch.autograd.gradcheck(L.club_upper_bound, (s,))


def test_bounds_closed_form():
    n = 4
    # a critic that separates the pairs perfectly: I_NCE -> log N; independent scores: 0
    assert abs(L.nce_lower_bound(50.0 * torch.eye(n, dtype=torch.float64)) - math.log(n)) < 1e-12
    assert abs(L.nce_lower_bound(torch.ones(n, n, dtype=torch.float64))) < 1e-12
    assert abs(L.club_upper_bound(torch.eye(n, dtype=torch.float64)) - (1 - 1 / n)) < 1e-12
    assert abs(L.club_upper_bound(torch.full((n, n), 3.0, dtype=torch.float64))) < 1e-12


@pytest.mark.parametrize("n", [1, 3, 6])
@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5, 0.0, 3.0, 1.0, 0.25, 4.0]])
def test_factorcl_loss_matches_naive(n, weights):
    mats = _mats(n, seed=10 + n)
    out = L.factorcl_loss(_scores(mats), weights=weights)
    slow = naive_factorcl(mats, weights)
    torch.testing.assert_close(out.loss, slow, rtol=0, atol=1e-11)
    assert list(out.terms) == list(L.FACTORCL_TERMS)
    assert set(out.accuracies) == NCE_TERMS | CRITIC_TERMS
    for gf, gs in zip(
        torch.autograd.grad(out.loss, mats), torch.autograd.grad(slow, mats), strict=True
    ):
        torch.testing.assert_close(gf, gs, rtol=0, atol=1e-10)


def test_factorcl_loss_gradcheck():
    mats = _mats(3, seed=3)
    assert torch.autograd.gradcheck(lambda *m: L.factorcl_loss(_scores(list(m))).loss, mats)


# ----------------------------------------------------------------- the critics and heads


def test_concat_critic_scores_every_pair():
    torch.manual_seed(0)
    critic = ConcatCritic(3, 2, hidden=8).double()
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    s = critic(a, b)
    for i in range(4):
        for j in range(4):
            torch.testing.assert_close(s[i, j], critic.net(torch.cat([a[i], b[j]]))[0])
    torch.testing.assert_close(critic(a, b, frozen=True), s)


def _heads_and_features(seed=0, b=6, d=8):
    torch.manual_seed(seed)
    heads = FactorCLHeads(d, ["x1", "x2"], critic_hidden=16).double()
    h1 = [torch.randn(b, d, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    h2 = [torch.randn(b, d, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    return heads, h1, h2


def _grads(loss, params):
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [g is not None and bool(g.abs().sum() > 0) for g in gs]


def test_club_critics_learn_only_from_their_own_infonce():
    heads, h1, h2 = _heads_and_features()
    club = list(heads.critic_shared_cond.parameters()) + list(heads.critic_unique.parameters())
    reps = list(heads.shared.parameters()) + list(heads.unique.parameters()) + h1 + h2
    out = L.factorcl_loss(heads.scores(h1, h2))
    # the six objective terms: the CLUB critics are frozen there, the representations learn
    main = sum(out.terms[k] for k in L.FACTORCL_TERMS if not k.startswith("critic_"))
    assert not any(_grads(main, club))
    assert all(_grads(main, reps))
    # the critics' own terms: only the CLUB critics learn, nothing upstream of them
    own = out.terms["critic_shared_cond"] + out.terms["critic_unique"]
    # (I_NCE is invariant to a shift of all scores: the output bias's gradient is 0 exactly)
    assert all(_grads(own, [p for p in club if p.shape != (1,)]))
    assert not any(_grads(own, reps))


def _standardized(a, b, eps=1e-5):
    """Both views' features standardised per dimension with their joint batch statistics."""
    both = torch.cat([a, b], 0)
    mean, var = both.mean(0), both.var(0, unbiased=False)
    z = (both - mean) / torch.sqrt(var + eps)
    return z[: len(a)], z[len(a) :]


def test_scores_are_the_formula_pairs():
    """Each score matrix is the named critic on the named representations of the standardised
    backbone features."""
    heads, h1, h2 = _heads_and_features(seed=1)
    sc = heads.scores(h1, h2)
    z1, z2 = zip(*(_standardized(h1[m], h2[m]) for m in range(2)), strict=True)
    s1 = [heads.shared[m](z1[m]) for m in range(2)]
    u1, u2 = (
        [heads.unique[m](z1[m]) for m in range(2)],
        [heads.unique[m](z2[m]) for m in range(2)],
    )
    s2 = [heads.shared[m](z2[m]) for m in range(2)]
    torch.testing.assert_close(sc.shared, heads.critic_shared(s1[0], s1[1]))
    cond_s = (torch.cat([s1[0], s2[0]], 1), torch.cat([s1[1], s2[1]], 1))
    torch.testing.assert_close(sc.shared_cond, heads.critic_shared_cond(*cond_s))
    torch.testing.assert_close(sc.critic_shared_cond, sc.shared_cond)
    for m in range(2):
        torch.testing.assert_close(sc.unique_aug[m], heads.critic_unique_aug[m](u1[m], u2[m]))
    torch.testing.assert_close(sc.unique, heads.critic_unique(u1[0], u1[1]))
    cond_u = (torch.cat([u1[0], u2[0]], 1), torch.cat([u1[1], u2[1]], 1))
    torch.testing.assert_close(sc.unique_cond, heads.critic_unique_cond(*cond_u))


def test_a_dominant_common_component_does_not_stall_the_bounds():
    """The collapse measured on trifeatures_tokens: backbone features = a large common vector
    plus a small per-sample part (norm 8 against a spread of 0.06). Without the standardisation
    every critic scores all pairs alike and no bound moves at lr 2e-3; with it, 40 Adam steps of
    the heads and critics alone lift the augmentation bounds I_NCE(U_m'; U_m'') well above 0."""
    torch.manual_seed(0)
    d, b = 16, 32
    heads = FactorCLHeads(d, ["x1", "x2"], critic_hidden=64)
    common = torch.randn(d)
    common = 8 * common / common.norm()
    opt = torch.optim.Adam(heads.parameters(), lr=2e-3)
    for _ in range(40):
        z = [torch.randn(b, d) for _ in range(2)]  # the samples' own parts, per modality
        h1 = [common + 0.06 * z[m] for m in range(2)]
        h2 = [common + 0.06 * (z[m] + 0.3 * torch.randn(b, d)) for m in range(2)]  # 2nd view
        out = L.factorcl_loss(heads.scores(h1, h2))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    for m in (1, 2):
        assert -out.terms[f"unique_aug_{m}"].item() > 1.0, out.terms


def test_eval_features_use_running_statistics():
    """In eval mode a sample's probe features do not depend on the batch around it."""
    heads, h1, h2 = _heads_and_features(seed=3)
    for _ in range(3):
        heads.scores(h1, h2)  # training steps update the running statistics
    heads.eval()
    whole = heads.probe_features(h1, ["x1", "x2"])
    alone = heads.probe_features([h[:1] for h in h1], ["x1", "x2"])
    torch.testing.assert_close(alone, whole[:1])


def test_probe_features_are_shared_and_unique_side_by_side():
    heads, h1, _ = _heads_and_features(seed=2)
    heads.eval()  # the running statistics standardise (fresh: mean 0, variance 1)
    f = heads.probe_features(h1, ["x1", "x2"])
    z = [h / math.sqrt(1 + 1e-5) for h in h1]
    want = torch.cat(
        [
            heads.shared[0](z[0]),
            heads.unique[0](z[0]),
            heads.shared[1](z[1]),
            heads.unique[1](z[1]),
        ],
        1,
    )
    torch.testing.assert_close(f, want)
    assert f.shape == (6, heads.feature_dim(2))
    torch.testing.assert_close(heads.probe_features(h1[1:], ["x2"]), want[:, 16:])


# ----------------------------------------------------------------- bad input


def test_bad_input_named():
    with pytest.raises(ValueError, match=r"scores must be a square critic score matrix"):
        L.nce_lower_bound(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"scores.unique is \[2, 2\]; scores.shared is \[3, 3\]"):
        mats = _mats(3, 0)
        mats[4] = torch.zeros(2, 2)
        L.factorcl_loss(_scores(mats))
    with pytest.raises(ValueError, match="weights must have one entry per term"):
        L.factorcl_loss(_scores(_mats(3, 0)), weights=[1.0, 2.0])
    heads, h1, h2 = _heads_and_features()
    with pytest.raises(ValueError, match=r"h2\[1\] must be \[B, d=8\]"):
        heads.scores(h1, [h2[0], h2[1][:, :4]])
    with pytest.raises(ValueError, match="FactorCL takes 2 modalities"):
        FactorCLHeads(8, ["a", "b", "c"])
    with pytest.raises(ValueError, match="these heads are for"):
        heads.probe_features(h1, ["x1", "nope"])


def test_features_heads_need_the_heads():
    from infmasking.models.model import features_of

    with pytest.raises(ValueError, match="features 'heads' need the objective's trained heads"):
        features_of(None, {}, [], "heads")


def test_three_modalities_refused_with_a_hint():
    from infmasking.objectives import get

    with pytest.raises(ValueError, match="exactly 2 modalities, got 3.*'cmc', 'comm'"):
        get("factorcl").check_modalities(3)


# ----------------------------------------------------------------- end to end


def test_tiny_run_trains_probes_and_embeds(tmp_path):
    from infmasking.embed import load_run

    report = train_cli("factorcl", tmp_path / "tiny", *TINY)
    assert report["method"] == "factorcl" and report["steps"] >= 1
    assert {"share", "synergy"} <= set(report["results"])
    run = load_run(tmp_path / "tiny")
    assert run.features == "heads" and isinstance(run.heads, FactorCLHeads)
    x = {m: torch.zeros(3, *run.shapes[m], dtype=torch.uint8) for m in run.modalities}
    feats = run.embed(x)
    assert feats.shape == (3, 4 * run.dim) == (3, run.feature_dim())
    assert run.embed(x, modalities=[run.modalities[0]]).shape == (3, 2 * run.dim)
    # the heads are in the checkpoint: a reload gives the same features
    torch.testing.assert_close(load_run(tmp_path / "tiny").embed(x), feats)


def test_trifeatures_tokens_run(tmp_path):
    report = trifeatures_tokens_report("factorcl", tmp_path / "tok")
    assert report["steps"] >= 1 and "synergy" in report["results"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("preset", PRESETS)
def test_one_step_on_every_preset(files, preset):
    if preset in ("ur_funny3", "vision_touch_contact3"):  # three modalities
        with pytest.raises(ValueError, match="exactly 2 modalities, got 3"):
            preset_module(preset, "factorcl", files)
        return
    module, data = preset_module(preset, "factorcl", files)
    out, moved = one_step(module, data)
    assert torch.isfinite(out.loss) and list(out.terms) == list(L.FACTORCL_TERMS)
    assert moved
    feats = probe_features(module, data)  # [S1, U1, S2, U2]: what its probes read
    assert feats.shape[1] == module.heads.feature_dim(2) and torch.isfinite(feats).all()
