"""Partial information decomposition (PID) of a discrete joint distribution p(x1, x2, y).

The decomposition is the one of Bertschinger, Rauh, Olbrich, Jost and Ay (2014, "BROJA"),
which Liang et al. (NeurIPS 2023) estimate for multimodal datasets. Over the set

    Δ_p = {q(x1, x2, y) : q(x1, y) = p(x1, y), q(x2, y) = p(x2, y)}

of distributions with the same modality-label marginals as p, let q* maximise the conditional
entropy H_q(Y | X1, X2) (equivalently: minimise I_q(Y; X1, X2), since H(Y) is fixed on Δ_p).
Then, in bits,

    U1 = I_q*(Y; X1 | X2)            U2 = I_q*(Y; X2 | X1)
    R  = I(Y; X1) − U1               S  = I_p(Y; X1, X2) − I_q*(Y; X1, X2)

and R + U1 + U2 + S = I_p(Y; X1, X2). I(Y; X1) and I(Y; X2) are the same under every q in
Δ_p; only synergy needs the full joint.

Solver. Maximising H_q(Y | X1, X2) = −Σ q log(q / q(x1, x2)) over Δ_p is a convex program:
a sum of relative entropies of each cell against its pair's mass, under linear marginal
constraints. Its optimum usually lies on the boundary of Δ_p (most pairs (x1, x2) get no mass),
where first-order methods crawl, so it is solved as an exponential-cone program,
t ≥ q log(q / s) ⟺ (−t, q, s) ∈ K_exp, by the interior-point solver Clarabel (a 1 MB wheel
needing only numpy and scipy; the CVX estimator of Liang et al. poses the same program through
cvxpy). The solver's primal–dual gap is reported with the result (bits): the synergy and
redundancy are at most that far below their optimum, the uniquenesses at most that far above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PID", "broja_pid", "joint_table", "mutual_information"]

_LOG2 = np.log(2.0)


@dataclass(frozen=True)
class PID:
    """The decomposition of I(Y; X1, X2), in bits.

    Attributes:
        redundancy: R, information about Y both modalities carry.
        unique: (U1, U2), information only X1 (resp. X2) carries.
        synergy: S, information only the pair reveals.
        total: I(Y; X1, X2) = R + U1 + U2 + S.
        gap: the convex solver's primal–dual gap (bits), a bound on how far S and R can be
            below their exact values and U1, U2 above.
    """

    redundancy: float
    unique: tuple[float, float]
    synergy: float
    total: float
    gap: float

    def as_dict(self) -> dict:
        return {
            "redundancy": self.redundancy,
            "unique": list(self.unique),
            "synergy": self.synergy,
            "total": self.total,
            "gap": self.gap,
        }


def joint_table(a: np.ndarray, b: np.ndarray, y: np.ndarray, shape: tuple[int, int, int]):
    """Empirical joint distribution of three integer-coded variables.

    Args:
        a, b, y: [N] integer codes in ``range(shape[i])``.
        shape: (n1, n2, ny).

    Returns:
        p: [n1, n2, ny] float64, summing to 1.
    """
    a, b, y = (np.asarray(v, dtype=np.int64).reshape(-1) for v in (a, b, y))
    if not (len(a) == len(b) == len(y)) or len(a) == 0:
        raise ValueError(
            f"joint_table: need equal, non-zero lengths, got {len(a)}, {len(b)}, {len(y)}"
        )
    for name, v, n in (("a", a, shape[0]), ("b", b, shape[1]), ("y", y, shape[2])):
        if v.min() < 0 or v.max() >= n:
            raise ValueError(
                f"joint_table: codes of {name} must lie in [0, {n}), got {v.min()}..{v.max()}"
            )
    flat = (a * shape[1] + b) * shape[2] + y
    counts = np.bincount(flat, minlength=shape[0] * shape[1] * shape[2]).astype(np.float64)
    return counts.reshape(shape) / len(a)


def _entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of the probabilities in ``p`` (any shape)."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(pxy: np.ndarray) -> float:
    """I(X; Y) in bits of a joint [nx, ny] distribution."""
    return (_entropy(pxy.sum(1)) + _entropy(pxy.sum(0)) - _entropy(pxy)) / _LOG2


def _solve(p: np.ndarray) -> tuple[np.ndarray, float]:
    """q* = argmax_{q in Δ_p} H_q(Y | X1, X2) for p [n1, n2, ny] (normalised), and the
    solver's primal–dual gap in nats."""
    import clarabel
    import scipy.sparse as sp

    n1, n2, ny = p.shape
    m1, m2 = p.sum(1), p.sum(0)
    # cells that can hold mass: q(x1, x2, y) <= min(p(x1, y), p(x2, y))
    idx = np.flatnonzero(((m1[:, None, :] > 0) & (m2[None, :, :] > 0)).reshape(-1))
    n = len(idx)
    a1, a2, y = np.unravel_index(idx, (n1, n2, ny))
    pair = a1 * n2 + a2
    cells = np.arange(n)
    # variables [q (n), t (n)]; marginal rows: q(x1, y) = m1, q(x2, y) = m2 (empty rows dropped)
    rows = np.concatenate([a1 * ny + y, n1 * ny + a2 * ny + y])
    a_eq = sp.csc_matrix((np.ones(2 * n), (rows, np.tile(cells, 2))), shape=((n1 + n2) * ny, 2 * n))
    b_eq = np.concatenate([m1.reshape(-1), m2.reshape(-1)])
    keep = np.flatnonzero(b_eq > 0)
    a_eq, b_eq = a_eq[keep], b_eq[keep]
    # one exponential cone per cell: slack b - A x = (-t_i, q_i, s_pair(i)), s = Σ_y q(x1, x2, y)
    order = np.argsort(pair, kind="stable")
    same = np.split(order, np.flatnonzero(np.diff(pair[order])) + 1)  # cells of each pair
    members = {int(pair[g[0]]): g for g in same}
    r_s = np.concatenate([np.full(len(members[int(pair[i])]), 3 * i + 2) for i in cells])
    c_s = np.concatenate([members[int(pair[i])] for i in cells])
    a_exp = sp.csc_matrix(
        (
            np.concatenate([np.ones(n), -np.ones(n), -np.ones(len(r_s))]),
            (
                np.concatenate([3 * cells, 3 * cells + 1, r_s]),
                np.concatenate([n + cells, cells, c_s]),
            ),
        ),
        shape=(3 * n, 2 * n),
    )
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    solver = clarabel.DefaultSolver(
        sp.csc_matrix((2 * n, 2 * n)),
        np.concatenate([np.zeros(n), np.ones(n)]),
        sp.vstack([a_eq, a_exp]).tocsc(),
        np.concatenate([b_eq, np.zeros(3 * n)]),
        [clarabel.ZeroConeT(len(b_eq))] + [clarabel.ExponentialConeT()] * n,
        settings,
    )
    sol = solver.solve()
    if str(sol.status) not in ("Solved", "AlmostSolved"):
        raise RuntimeError(f"PID: the convex solver stopped with status {sol.status}")
    q = np.zeros(n1 * n2 * ny)
    q[idx] = np.maximum(np.asarray(sol.x[:n]), 0.0)
    return q.reshape(p.shape), abs(float(sol.obj_val) - float(sol.obj_val_dual))


def broja_pid(p: np.ndarray) -> PID:
    """The BROJA decomposition of a discrete joint distribution.

    Args:
        p: [n1, n2, ny] non-negative, summing to 1 (normalised if it does not).

    Returns:
        The :class:`PID` in bits.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 3 or min(p.shape) < 1:
        raise ValueError(f"broja_pid: expected a [n1, n2, ny] table, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError("broja_pid: the table must be finite, non-negative and not all zero")
    p = p / p.sum()
    m1, m2 = p.sum(1), p.sum(0)
    i1, i2 = mutual_information(m1), mutual_information(m2)
    i_p = mutual_information(p.reshape(-1, p.shape[2]))
    q, gap = _solve(p)
    # I_q(Y; X1, X2) = H(Y) - H_q(Y | X1, X2) lies in [max(I1, I2), I_p]; clipping only
    # removes the solver's last digits
    i_q = min(max(mutual_information(q.reshape(-1, q.shape[2])), i1, i2), i_p)
    return PID(
        redundancy=i1 + i2 - i_q,
        unique=(i_q - i2, i_q - i1),
        synergy=i_p - i_q,
        total=i_p,
        gap=gap / _LOG2,
    )
