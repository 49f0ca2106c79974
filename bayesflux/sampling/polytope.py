"""The flux polytope in reduced coordinates: ``v = v0 + N z`` with ``A z <= b``.

Sampling works on the null space of the equality constraints so that every draw satisfies
``S v = 0`` exactly (DESIGN.md, "Steady state"). :func:`polytope` builds that representation from a
:class:`~bayesflux.Network` plus optional extra linear constraints:

1. flux ranges by flux variability analysis (one HiGHS model re-solved per reaction end): an empty
   polytope raises :class:`InfeasibleError`, an infinite range :class:`UnboundedError`;
2. reactions whose range is a single value are fixed and join the equalities;
3. ``N = W U`` spans the null space of the equalities, ``U`` orthonormal in the fluxes scaled by
   their FVA widths ``W`` (a preconditioner: widths span decades at genome scale), ``v0`` is a
   particular solution (one SVD gives both);
4. a bound that no point of the polytope attains (its FVA end lies strictly inside) is redundant
   and dropped, as are duplicate rows;
5. the start is the Chebyshev centre ``argmax r  s.t.  a_i z + r ||a_i|| <= b_i`` (one LP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.optimize

from bayesflux.errors import InfeasibleError, NetworkError, SolverError, UnboundedError
from bayesflux.methods.fva import flux_ranges as fva_ranges
from bayesflux.network import Network, as_network

__all__ = ["LinearConstraint", "Polytope", "polytope"]

_FIXED_TOL = 1e-9  # a flux range narrower than this (relative to max(1, |v|)) is a fixed value
_ACTIVE_TOL = 1e-7  # an FVA end this close to a bound (HiGHS feasibility tolerance) attains it


class LinearConstraint(NamedTuple):
    """``lower <= sum_j coefficients[j] * v_j <= upper`` (an equality when ``lower == upper``)."""

    coefficients: Mapping[str, float]
    lower: float = -np.inf
    upper: float = np.inf


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Polytope:
    """A full-dimensional polytope ``{z : A z <= b}`` mapped to fluxes by ``v = v0 + N z``.

    Attributes
    ----------
    reactions
        Reaction ids, the rows of ``N`` (empty for a polytope given directly by half-spaces).
    v0, N
        Offset ``(n,)`` and null-space basis ``(n, d)``; ``S (v0 + N z) = 0`` for every ``z``.
        ``N = W U`` with ``W`` the FVA widths and ``U`` orthonormal (see :func:`polytope`).
    A, b
        ``m`` non-redundant half-spaces in reduced coordinates, rows of unit norm.
    center, radius
        Chebyshev centre (a strictly interior point) and the radius of the inscribed ball.
    flux_min, flux_max
        Flux ranges over the polytope (FVA), ``(n,)``.
    """

    reactions: tuple[str, ...]
    v0: np.ndarray
    N: np.ndarray
    A: np.ndarray
    b: np.ndarray
    center: np.ndarray
    radius: float
    flux_min: np.ndarray
    flux_max: np.ndarray
    id: str = "polytope"

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the polytope (number of free directions)."""
        return self.A.shape[1]

    @property
    def n_constraints(self) -> int:
        return self.A.shape[0]

    def to_fluxes(self, z: np.ndarray) -> np.ndarray:
        """Map reduced points ``z (..., d)`` to fluxes ``v0 + N z`` of shape ``(..., n)``."""
        return self.v0 + np.asarray(z) @ self.N.T

    def contains(self, z: np.ndarray, *, tol: float = 1e-9) -> np.ndarray:
        """Whether each reduced point satisfies ``A z <= b + tol``."""
        return np.all(np.asarray(z) @ self.A.T <= self.b + tol, axis=-1)

    @classmethod
    def from_halfspaces(cls, A: np.ndarray, b: np.ndarray, *, id: str = "polytope") -> Polytope:
        """A polytope ``{x : A x <= b}`` given directly (identity map, ``v = x``).

        Raises :class:`InfeasibleError` if it is empty or flat, :class:`UnboundedError` if it is
        unbounded, :class:`NetworkError` on non-finite or mis-shaped input.
        """
        A = np.atleast_2d(np.asarray(A, dtype=float))
        b = np.asarray(b, dtype=float).ravel()
        if A.shape[0] != b.size:
            raise NetworkError(f"A has {A.shape[0]} rows but b has {b.size} entries")
        bad = np.flatnonzero(~np.isfinite(A).all(axis=1) | np.isnan(b))
        if bad.size:
            raise NetworkError(f"half-space {bad[0]} has a non-finite coefficient or bound")
        d = A.shape[1]
        keep = np.isfinite(b)
        A, b = A[keep], b[keep]
        lo, hi = _box(A, b, what=id)
        A, b = normalise_rows(A, b)
        center, radius = chebyshev_center(A, b, what=id)
        return cls(
            (),
            np.zeros(d),
            np.eye(d),
            _readonly(A),
            _readonly(b),
            _readonly(center),
            radius,
            _readonly(lo),
            _readonly(hi),
            id,
        )


def _box(A: np.ndarray, b: np.ndarray, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Range of each coordinate over ``{x : A x <= b}`` (2 d LPs; for small polytopes)."""
    d = A.shape[1]
    out = np.empty((2, d))
    for k in range(d):
        for i, sign in enumerate((1.0, -1.0)):
            res = scipy.optimize.linprog(
                sign * np.eye(d)[k], A_ub=A, b_ub=b, bounds=[(None, None)] * d, method="highs"
            )
            if res.status == 2:
                raise InfeasibleError(f"{what} is empty: no point satisfies all constraints")
            if res.status == 3:
                raise UnboundedError(f"{what} is unbounded along x[{k}]")
            if res.status != 0:
                raise SolverError(f"range LP of {what} failed: {res.message}")
            out[i, k] = sign * res.fun
    return out[0], out[1]


def normalise_rows(
    A: np.ndarray, b: np.ndarray, tol: float = 1e-12
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm rows; zero rows dropped (an infeasible one raises); duplicates merged."""
    norms = np.linalg.norm(A, axis=1)
    zero = norms <= tol
    if np.any(b[zero] < -1e-9):
        raise InfeasibleError(f"constraint 0 <= {b[zero].min():.3g} cannot hold")
    A, b = A[~zero] / norms[~zero, None], b[~zero] / norms[~zero]
    key = np.round(np.column_stack([A, b]), 10)
    _, first = np.unique(key, axis=0, return_index=True)
    first.sort()
    return A[first], b[first]


def chebyshev_center(
    A: np.ndarray, b: np.ndarray, *, what: str = "polytope"
) -> tuple[np.ndarray, float]:
    """Centre and radius of the largest ball in ``{z : A z <= b}`` (rows of unit norm), by LP."""
    m, d = A.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = scipy.optimize.linprog(
        c,
        A_ub=np.column_stack([A, np.ones(m)]),
        b_ub=b,
        bounds=[(None, None)] * d + [(0, None)],
        method="highs",
    )
    if res.status == 2:
        raise InfeasibleError(f"{what} is empty: no point satisfies all constraints")
    if res.status == 3:
        raise UnboundedError(f"{what} is unbounded")
    if res.status != 0:
        raise SolverError(f"Chebyshev centre LP of {what} failed: {res.message}")
    radius = float(res.x[-1])
    if radius <= 1e-9:
        raise InfeasibleError(
            f"{what} has an empty interior (inscribed radius {radius:.2g}): some inequality "
            "constraints together force an equality; state it as an equality instead"
        )
    return res.x[:d], radius


def nearest_interior(
    A: np.ndarray, b: np.ndarray, z: np.ndarray, *, margin: float = 1e-7
) -> np.ndarray:
    """The point nearest ``z`` (L1) with ``A x <= b - margin (1 + |b|)`` (rows of unit norm), by
    LP in the step ``y = x - z`` (``|y| <= t``, minimise ``Σ t``): makes a solver's vertex,
    which may overstep facets within its tolerance, a valid chain start."""
    z = np.asarray(z, dtype=float)
    slack = b - margin * (1.0 + np.abs(b)) - A @ z
    if np.all(slack >= 0):
        return z
    m, d = A.shape
    eye = np.eye(d)
    res = scipy.optimize.linprog(
        np.concatenate([np.zeros(d), np.ones(d)]),
        A_ub=np.block([[A, np.zeros((m, d))], [eye, -eye], [-eye, -eye]]),
        b_ub=np.concatenate([slack, np.zeros(2 * d)]),
        bounds=[(None, None)] * d + [(0, None)] * d,
        method="highs-ipm",
    )
    if res.status != 0:
        raise InfeasibleError(
            f"no point lies {margin:g} inside the polytope near the given one: {res.message}"
        )
    return z + res.x[:d]


def _constraint_rows(
    network: Network, constraints: Sequence[LinearConstraint | tuple]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = network.n_reactions
    G = np.zeros((len(constraints), n))
    lo = np.empty(len(constraints))
    hi = np.empty(len(constraints))
    for i, con in enumerate(constraints):
        con = LinearConstraint(*con) if not isinstance(con, LinearConstraint) else con
        if not con.coefficients:
            raise NetworkError(f"constraint {i} names no reaction")
        for rxn, coef in con.coefficients.items():
            if not np.isfinite(coef):
                raise NetworkError(f"constraint {i} has a non-finite coefficient for {rxn!r}")
            G[i, network.indices([rxn])[0]] += float(coef)
        lo[i], hi[i] = float(con.lower), float(con.upper)
        if np.isnan(lo[i]) or np.isnan(hi[i]) or lo[i] > hi[i]:
            raise NetworkError(f"constraint {i} has invalid limits [{con.lower}, {con.upper}]")
    return G, lo, hi


def flux_ranges(
    network: Network, G: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of every flux over ``S v = 0``, bounds and ``lo <= G v <= hi``.

    The hot-started FVA of :func:`bayesflux.methods.fva.flux_ranges`. Raises
    :class:`InfeasibleError` if the set is empty and :class:`UnboundedError` naming the reactions
    whose flux can grow without limit.
    """
    extra = []
    for bound, sense in ((lo, 1.0), (hi, -1.0)):
        rows = np.flatnonzero(np.isfinite(bound))
        if rows.size:
            extra.append(lambda v, r=rows, b=bound, s=sense: [s * (G[r] @ v) >= s * b[r]])
    try:
        out = fva_ranges(network, extra=extra)
    except InfeasibleError as exc:
        raise InfeasibleError(
            f"the flux polytope of {network.id!r} is empty: no flux satisfies S v = 0, the "
            "bounds and the extra constraints"
        ) from exc
    unbounded = np.flatnonzero(~np.isfinite(out).all(axis=0))
    if unbounded.size:
        names = ", ".join(network.reactions[j] for j in unbounded[:8])
        more = f" and {unbounded.size - 8} more" if unbounded.size > 8 else ""
        raise UnboundedError(
            f"the flux polytope of {network.id!r} is unbounded: reaction(s) {names}{more} can "
            "carry infinite flux; give them finite bounds"
        )
    return out[0], out[1]


def _reduce(
    E: np.ndarray, f: np.ndarray, width: np.ndarray, free: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``N`` and ``v0`` with ``E (v0 + N z)[free] = f`` for all ``z``, from one SVD.

    The free fluxes are scaled by their FVA widths first (``v_j = w_j u_j``) and ``N = W U`` with
    ``U`` an orthonormal null-space basis in ``u``: every flux then spans a unit range along the
    axes of ``z``, which preconditions genome-scale polytopes whose widths span many decades.
    """
    n = free.size
    w = width[free]
    Ew = E * w
    N = np.zeros((n, 0))
    v0 = np.zeros(n)
    if Ew.shape[0] == 0:
        N = np.zeros((n, w.size))
        N[free] = np.diag(w)
        return N, v0
    U, sv, Vt = scipy.linalg.svd(Ew, full_matrices=True)
    rank = int(np.sum(sv > max(Ew.shape) * np.finfo(float).eps * sv[0])) if sv.size else 0
    basis = Vt[rank:].T
    u0 = Vt[:rank].T @ ((U[:, :rank].T @ f) / sv[:rank])
    N = np.zeros((n, basis.shape[1]))
    N[free] = w[:, None] * basis
    N[np.abs(N) < 1e-13 * max(1.0, np.abs(N).max(initial=0.0))] = 0.0
    v0[free] = w * u0
    return N, v0


def polytope(
    network,
    *,
    constraints: Sequence[LinearConstraint | tuple] = (),
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> Polytope:
    """The flux polytope ``{v : S v = 0, lb <= v <= ub, lower <= G v <= upper}`` reduced.

    Parameters
    ----------
    network
        A :class:`~bayesflux.Network`, ``cobra.Model``, model file or bundled dataset name.
    constraints
        Extra :class:`LinearConstraint` s (or ``(coefficients, lower, upper)`` tuples), e.g. an
        objective floor ``LinearConstraint({"BIOMASS": 1.0}, 0.5)``.
    bounds
        ``{reaction: (lb, ub)}`` overriding the network's bounds.

    Returns
    -------
    Polytope
        ``v = v0 + N z``, ``A z <= b`` with fixed fluxes in ``v0`` and redundant bounds dropped.
    """
    network = as_network(network)
    if bounds:
        network = network.with_bounds(bounds)
    G, lo, hi = _constraint_rows(network, constraints)
    vmin, vmax = flux_ranges(network, G, lo, hi)
    scale = np.maximum(1.0, np.maximum(np.abs(vmin), np.abs(vmax)))
    fixed = (vmax - vmin) <= _FIXED_TOL * scale
    eq_rows = lo == hi
    free = ~fixed
    values = np.where(fixed, 0.5 * (vmin + vmax), 0.0)
    # equalities restricted to the free fluxes: E v_free = f - E_fixed v_fixed
    E_all = np.vstack([network.S.toarray(), G[eq_rows]])
    f = np.concatenate([np.zeros(network.n_metabolites), lo[eq_rows]]) - E_all @ values
    E = E_all[:, free]
    nonzero = np.any(E != 0.0, axis=1)
    E, f = E[nonzero], f[nonzero]
    N, v0 = _reduce(E, f, np.where(free, vmax - vmin, 0.0), free)
    if N.shape[1] == 0:
        raise InfeasibleError(
            f"the flux polytope of {network.id!r} is a single point: every flux is fixed"
        )
    v0[fixed] = values[fixed]

    # inequality rows: only bounds some point of the polytope attains (the others are redundant)
    up = free & np.isfinite(network.ub) & (vmax >= network.ub - _ACTIVE_TOL * scale)
    down = free & np.isfinite(network.lb) & (vmin <= network.lb + _ACTIVE_TOL * scale)
    ineq = ~eq_rows
    rows = [N[up], -N[down]]
    rhs = [network.ub[up] - v0[up], v0[down] - network.lb[down]]
    if ineq.any():
        GN, Gv = G[ineq] @ N, G[ineq] @ v0
        fin_hi, fin_lo = np.isfinite(hi[ineq]), np.isfinite(lo[ineq])
        rows += [GN[fin_hi], -GN[fin_lo]]
        rhs += [hi[ineq][fin_hi] - Gv[fin_hi], Gv[fin_lo] - lo[ineq][fin_lo]]
    A, b = normalise_rows(np.vstack(rows), np.concatenate(rhs))
    center, radius = chebyshev_center(A, b, what=f"the flux polytope of {network.id!r}")
    return Polytope(
        reactions=network.reactions,
        v0=_readonly(v0),
        N=_readonly(N),
        A=_readonly(A),
        b=_readonly(b),
        center=_readonly(center),
        radius=radius,
        flux_min=_readonly(vmin),
        flux_max=_readonly(vmax),
        id=network.id,
    )
