"""Each objective against a naive reference written straight from docs/METHOD.md §2 with Python
loops in float64 — forward and gradient — plus closed-form cases and bad input."""

import math

import pytest
import torch

from infmasking import losses as L

# ----------------------------------------------------------------- naive references (loops)


def _norm(v):
    return v / v.norm()


def naive_nce(a, b, tau):
    """SimCLR over 2N rows; positives (a_i, b_i); negatives every other row; both directions."""
    n = a.shape[0]
    a = [_norm(a[i]) for i in range(n)]
    b = [_norm(b[i]) for i in range(n)]
    rows = a + b
    total = 0.0
    for q in range(2 * n):
        i = q % n
        pos_row = n + i if q < n else i
        num = torch.exp(rows[q] @ rows[pos_row] / tau)
        den = num
        for r in range(2 * n):
            if r != q and r != pos_row:
                den = den + torch.exp(rows[q] @ rows[r] / tau)
        total = total - torch.log(num / den)
    return total / (2 * n)


def naive_mask_term(q, k, tau, lam):
    """q [B, p], k [T, B, p]: explicit μ_i, Σ_i (p×p), v_i = q^T Σ q, then the formula."""
    t, n, p = k.shape
    qs = [_norm(q[i]) for i in range(n)]
    ks = [[_norm(k[s, i]) for i in range(n)] for s in range(t)]
    total = 0.0
    for i in range(n):
        mu = sum(ks[s][i] for s in range(t)) / t
        sigma = torch.zeros(p, p, dtype=q.dtype)
        for s in range(t):
            c = ks[s][i] - mu
            sigma = sigma + torch.outer(c, c) / t
        v = qs[i] @ sigma @ qs[i]
        s_pos = (qs[i] @ mu + 0.5 * (lam / tau) * v) / tau
        den = torch.exp(s_pos)
        for j in range(n):
            if j == i:
                continue
            for s in range(t):
                den = den + torch.exp(qs[i] @ ks[s][j] / tau)
            den = den + torch.exp(qs[i] @ qs[j] / tau)
        total = total + (-(s_pos - torch.log(den)) + 0.5 * (lam / tau) * v / tau)
    return total / n


def naive_comm_terms(z1, z2, tau):
    m = len(z1) - 1
    terms = []
    for s in range(m + 1):
        terms.append(0.5 * (naive_nce(z1[s], z2[m], tau) + naive_nce(z2[s], z1[m], tau)))
    return terms


def naive_infmasking(z1, z2, k1, k2, tau, lam, weights=None, cross=False):
    if cross:
        k1, k2 = k2, k1
    terms = [naive_mask_term(z1[-1], k1, tau, lam), naive_mask_term(z2[-1], k2, tau, lam)]
    terms += naive_comm_terms(z1, z2, tau)
    w = [1.0] * len(terms) if weights is None else weights
    return sum(wi * ti for wi, ti in zip(w, terms)) / len(terms)


def naive_pairs(z1, z2, tau, with_self):
    terms = []
    for i in range(len(z1)):
        for j in range(i + 1, len(z1)):
            terms.append(0.5 * (naive_nce(z1[i], z2[j], tau) + naive_nce(z2[i], z1[j], tau)))
    if with_self:
        terms += [naive_nce(z1[m], z2[m], tau) for m in range(len(z1))]
    return terms


# ----------------------------------------------------------------- helpers


def _leaves(n_tensors, b, p, seed, t=None):
    g = torch.Generator().manual_seed(seed)
    zs = [
        torch.randn(b, p, generator=g, dtype=torch.float64, requires_grad=True)
        for _ in range(n_tensors)
    ]
    ks = None
    if t is not None:
        ks = [
            torch.randn(t, b, p, generator=g, dtype=torch.float64, requires_grad=True)
            for _ in range(2)
        ]
    return zs, ks


def _grads(value, leaves):
    return torch.autograd.grad(value, leaves)


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("b", [1, 2, 5])
def test_nt_xent_matches_naive(b):
    (a, c), _ = _leaves(2, b, 4, seed=b)
    fast, _ = L.nt_xent(
        torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(c, dim=1), 0.3
    )
    slow = naive_nce(a, c, 0.3)
    torch.testing.assert_close(fast, slow)
    for g1, g2 in zip(_grads(fast, [a, c]), _grads(slow, [a, c])):
        torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("b,t", [(1, 1), (3, 1), (4, 6), (1, 6)])
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_infmasking_matches_naive(m, b, t, cross, weighted):
    p, tau, lam = 5, 0.2, 0.7
    zs, ks = _leaves(2 * (m + 1), b, p, seed=10 * m + b + t, t=t)
    z1, z2 = zs[: m + 1], zs[m + 1 :]
    weights = [1.0 + 0.5 * i for i in range(m + 3)] if weighted else None
    out = L.infmasking_loss(
        z1, z2, ks[0], ks[1], temperature=tau, mask_weight=lam, weights=weights, cross=cross
    )
    ref = naive_infmasking(z1, z2, ks[0], ks[1], tau, lam, weights, cross)
    torch.testing.assert_close(out.loss, ref)
    leaves = zs + ks
    for g1, g2 in zip(_grads(out.loss, leaves), _grads(ref, leaves)):
        torch.testing.assert_close(g1, g2)
    assert list(out.terms) == ["mask1", "mask2"] + [f"comm_{i + 1}" for i in range(m)] + [
        "comm_all"
    ]


@pytest.mark.parametrize("m,b", [(2, 1), (2, 4), (3, 3)])
def test_comm_matches_naive(m, b):
    zs, _ = _leaves(2 * (m + 1), b, 6, seed=m + b)
    z1, z2 = zs[: m + 1], zs[m + 1 :]
    w = [2.0] + [1.0] * m
    out = L.comm_loss(z1, z2, temperature=0.1, weights=w)
    terms = naive_comm_terms(z1, z2, 0.1)
    ref = sum(wi * ti for wi, ti in zip(w, terms)) / len(terms)
    torch.testing.assert_close(out.loss, ref)
    for g1, g2 in zip(_grads(out.loss, zs), _grads(ref, zs)):
        torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("m,b", [(2, 1), (2, 5), (3, 4)])
@pytest.mark.parametrize("fn,with_self", [(L.cmc_loss, False), (L.cross_self_loss, True)])
def test_pairwise_baselines_match_naive(m, b, fn, with_self):
    zs, _ = _leaves(2 * m, b, 3, seed=m * b)
    z1, z2 = zs[:m], zs[m:]
    out = fn(z1, z2, temperature=0.5)
    terms = naive_pairs(z1, z2, 0.5, with_self)
    ref = sum(terms) / len(terms)
    torch.testing.assert_close(out.loss, ref)
    for g1, g2 in zip(_grads(out.loss, zs), _grads(ref, zs)):
        torch.testing.assert_close(g1, g2)


def test_cross_equals_cmc_at_two_modalities():
    zs, _ = _leaves(4, 6, 3, seed=0)
    a = L.cross_loss(zs[:2], zs[2:], temperature=0.1).loss
    b = L.cmc_loss(zs[:2], zs[2:], temperature=0.1).loss
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="cmc_loss"):
        L.cross_loss(zs[:3], zs[1:], temperature=0.1)


def test_vectorised_variance_equals_explicit_covariance():
    """q^T Σ q from T centred projections == the explicit B×p×p covariance form, fwd + bwd."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(7, 9, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(6, 7, 9, generator=g, dtype=torch.float64, requires_grad=True)
    _, v_fast = L.masked_variance(q, k)
    mu = k.mean(0)
    c = k - mu  # [T, B, p]
    sigma = torch.einsum("tbp,tbr->bpr", c, c) / k.shape[0]  # [B, p, p]
    v_slow = torch.einsum("bp,bpr,br->b", q, sigma, q)
    torch.testing.assert_close(v_fast, v_slow)
    w = torch.randn(7, generator=g, dtype=torch.float64)
    for g1, g2 in zip(
        torch.autograd.grad(v_fast @ w, [q, k]), torch.autograd.grad(v_slow @ w, [q, k])
    ):
        torch.testing.assert_close(g1, g2)


def test_single_masked_view_has_zero_variance_and_reduces_to_contrast():
    """T = 1: Σ = 0, so the masked term is plain InfoNCE of q against its masked view."""
    g = torch.Generator().manual_seed(1)
    q = torch.nn.functional.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=1)
    k = torch.nn.functional.normalize(torch.randn(1, 5, 8, generator=g, dtype=torch.float64), dim=2)
    _, v = L.masked_variance(q, k)
    assert torch.all(v == 0)
    for lam in (0.0, 3.0):
        term, _ = L.masked_term(q, k, 0.1, lam)
        logits = torch.cat([q @ k[0].T, q @ q.T - torch.eye(5, dtype=q.dtype) * 1e9], 1) / 0.1
        expected = torch.nn.functional.cross_entropy(logits, torch.arange(5))
        torch.testing.assert_close(term, expected)


def test_identical_views_closed_form():
    """All embeddings equal and orthonormal across samples: each NCE term has the closed form
    −log(e^{1/τ} / (e^{1/τ} + 2(B−1))), and the masked term (Σ = 0)
    −log(e^{1/τ}/(e^{1/τ} + (T+1)(B−1)))."""
    b, t, tau = 4, 3, 0.5
    e = torch.eye(b, dtype=torch.float64)
    z = [e.clone() for _ in range(3)]
    k = e.expand(t, b, b).clone()
    out = L.infmasking_loss(z, z, k, k, temperature=tau, mask_weight=1.0)
    nce = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * (b - 1)))
    mask = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + (t + 1) * (b - 1)))
    torch.testing.assert_close(out.terms["comm_1"], torch.tensor(nce, dtype=torch.float64))
    torch.testing.assert_close(out.terms["mask1"], torch.tensor(mask, dtype=torch.float64))
    torch.testing.assert_close(
        out.loss, torch.tensor((2 * mask + 3 * nce) / 5, dtype=torch.float64)
    )
    assert out.accuracies["comm_all"] == 1.0


def test_views_are_symmetric():
    zs, ks = _leaves(6, 4, 5, seed=3, t=2)
    a = L.infmasking_loss(zs[:3], zs[3:], ks[0], ks[1], temperature=0.1, mask_weight=1.0).loss
    b = L.infmasking_loss(zs[3:], zs[:3], ks[1], ks[0], temperature=0.1, mask_weight=1.0).loss
    torch.testing.assert_close(a, b)


def test_mask_weight_schedule():
    assert L.mask_weight(0, 4, 2.0) == 0.5
    assert L.mask_weight(3, 4, 2.0) == 2.0
    # a longer horizon: the first epochs of a 100-epoch ramp; past the horizon λ stays at its cap
    assert L.mask_weight(2, 100, 1.0) == pytest.approx(0.03)
    assert L.mask_weight(7, 4, 2.0) == 2.0
    with pytest.raises(ValueError, match="epoch"):
        L.mask_weight(-1, 4, 1.0)
    with pytest.raises(ValueError, match="max_epochs"):
        L.mask_weight(0, 0, 1.0)


def test_modules_equal_functions():
    zs, ks = _leaves(6, 3, 4, seed=5, t=2)
    mod = L.InfMaskingLoss(temperature=0.2, cross=True)
    torch.testing.assert_close(
        mod(zs[:3], zs[3:], ks[0], ks[1], 0.3).loss,
        L.infmasking_loss(
            zs[:3], zs[3:], ks[0], ks[1], temperature=0.2, mask_weight=0.3, cross=True
        ).loss,
    )
    torch.testing.assert_close(
        L.CoMMLoss(0.2)(zs[:3], zs[3:]).loss, L.comm_loss(zs[:3], zs[3:], temperature=0.2).loss
    )
    torch.testing.assert_close(
        L.CMCLoss(0.2)(zs[:3], zs[3:]).loss, L.cmc_loss(zs[:3], zs[3:], temperature=0.2).loss
    )


# ----------------------------------------------------------------- bad input


def _ok(b=4, p=3, t=2, m=2):
    zs, ks = _leaves(2 * (m + 1), b, p, seed=0, t=t)
    return zs[: m + 1], zs[m + 1 :], ks[0], ks[1]


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda z1, z2, k1, k2: (z1, z2[:-1], k1, k2), "same length"),
        (lambda z1, z2, k1, k2: (z1, [z[:2] for z in z2], k1, k2), r"z2\[0\]"),
        (lambda z1, z2, k1, k2: (z1[1:], z2[1:], k1, k2), "at least 3"),
        (lambda z1, z2, k1, k2: (z1, z2, k1[:, :2], k2), "masked1"),
        (lambda z1, z2, k1, k2: (z1, z2, k1, k2[..., :2]), "masked2"),
    ],
)
def test_bad_input_names_argument(mutate, match):
    z1, z2, k1, k2 = mutate(*_ok())
    with pytest.raises(ValueError, match=match):
        L.infmasking_loss(z1, z2, k1, k2, temperature=0.1, mask_weight=1.0)


def test_bad_weights_and_temperature():
    z1, z2, k1, k2 = _ok()
    with pytest.raises(ValueError, match="weights"):
        L.infmasking_loss(z1, z2, k1, k2, temperature=0.1, mask_weight=1.0, weights=[1, 1, 1])
    with pytest.raises(ValueError, match="temperature"):
        L.infmasking_loss(z1, z2, k1, k2, temperature=0.0, mask_weight=1.0)
    with pytest.raises(ValueError, match="temperature"):
        L.CoMMLoss(temperature=-1.0)


def test_check_finite_raises_with_term_names():
    z1, z2, k1, k2 = _ok()
    z1[0] = z1[0].detach().clone()
    z1[0][0, 0] = float("nan")
    out = L.infmasking_loss(z1, z2, k1, k2, temperature=0.1, mask_weight=1.0)
    with pytest.raises(FloatingPointError, match="comm_1"):
        L.check_finite(out)


def test_check_finite_reads_an_earlier_flag():
    """A periodic check (trainer.finite_check_every_n_steps > 1) raises for a non-finite loss of
    an earlier step, accumulated on the device, even when this step's loss is finite."""
    out = L.LossOutput(loss=torch.tensor(1.0), terms={"a": torch.tensor(1.0)})
    L.check_finite(out, torch.tensor(False))  # nothing pending: passes
    with pytest.raises(FloatingPointError, match="an earlier step since the last check"):
        L.check_finite(out, torch.tensor(True))
