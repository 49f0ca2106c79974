"""The concentration polytope B of a flux sign pattern and its minimal L1 violation.

For fluxes ``v`` with signs ``s = sign(v)`` on the reactions under the second law (seed 002,
DESIGN.md)::

    B(s) = {(ln c, ΔrG): ln c in its box, ΔrG = ΔrG0 + R T Sᵀ ln c,
            ΔrG_j <= -δ if s_j = +1,  ΔrG_j >= δ if s_j = -1}

B depends on ``v`` only through ``s``, so its feasibility is cached per sign pattern. The minimal
violation of seed 002, Eq. 11, ``min ||ε||_1  s.t.  A x - b = ε, x in its box`` with
``x = (ΔrG, ln c)``, reduces (each ``ΔrG_j`` appears in one row, with its own interval ``G_j``)
to the LP ``min Σ_j dist(ΔrG0_j + (R T Sᵀ ln c)_j, G_j)`` over the ``ln c`` box. It is written with
epigraph variables ``t_j`` whose row bounds alone carry the sign pattern, so one HiGHS model is
re-solved (dual simplex, warm basis) for each new pattern.
"""

from __future__ import annotations

from typing import NamedTuple

import highspy
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.sparse as sp

from bayesflux._highs import highs_model
from bayesflux.errors import SolverError
from bayesflux.thermo.data import ThermoDataError, ThermoModel

__all__ = [
    "Violation",
    "ConcentrationPolytope",
    "sign_pattern",
    "check_sign_pattern",
    "unique_patterns",
]

FEASIBLE_TOL = 1e-7  # total L1 violation (kJ/mol) at or below this counts as feasible


class Violation(NamedTuple):
    """Minimal L1 violation of B(s): ``total = Σ|ε_j|``, per-reaction ``ε``, a best ``ln c``."""

    total: float
    eps: np.ndarray
    lnc: np.ndarray

    @property
    def feasible(self) -> bool:
        return self.total <= FEASIBLE_TOL


ZERO_FLUX = 1e-9  # |v| at or below this counts as zero flux (no second-law constraint)


def flux_signs(v, tol: float = ZERO_FLUX):
    """int8 signs in {-1, 0, 1} of fluxes, 0 where ``|v| <= tol``: the one flux-sign rule of
    bayesflux (numpy in, numpy out; a jax array or tracer in, jax out)."""
    xp = jnp if isinstance(v, jax.Array) else np
    v = xp.asarray(v)
    return (xp.sign(v) * (xp.abs(v) > tol)).astype(xp.int8)


def sign_pattern(
    fluxes: np.ndarray, thermo: ThermoModel, *, zero_tol: float = ZERO_FLUX
) -> np.ndarray:
    """:func:`flux_signs` of the constrained reactions' fluxes.

    ``fluxes`` is ``(..., n_reactions)``; the result ``(..., n_constrained)``.
    """
    return flux_signs(np.asarray(fluxes)[..., thermo.index], zero_tol)


def unique_patterns(signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sign patterns among ``signs (..., k)`` and, per pattern, the index of its row.

    Same sets as ``np.unique(signs, axis=0, return_inverse=True)`` (rows in another order) but
    fast: each row is packed into 64-bit words (bit planes of ``s > 0`` and ``s < 0``), which are
    sorted lexicographically. Returns ``(unique (u, k), inverse (n,))``.
    """
    s = np.asarray(signs)
    s = s.reshape(-1, s.shape[-1])
    n = len(s)
    if n == 0:
        return s, np.zeros(0, dtype=np.intp)
    planes = np.concatenate([np.packbits(s > 0, axis=1), np.packbits(s < 0, axis=1)], axis=1)
    words = np.ascontiguousarray(np.pad(planes, ((0, 0), (0, -planes.shape[1] % 8))))
    words = words.view(np.uint64)
    order = np.lexsort(words.T[::-1])
    ordered = words[order]
    first = np.ones(n, dtype=bool)
    first[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return s[order[first]], inverse


class ConcentrationPolytope:
    """Minimal violation and feasibility of B(s), cached per sign pattern.

    Parameters
    ----------
    thermo
        Thermodynamic data.
    drg_bounds
        Optional extra ``(lo, hi)`` bounds on ``ΔrG`` per constrained reaction (e.g. from TFVA).
    """

    def __init__(
        self, thermo: ThermoModel, *, drg_bounds: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        self.thermo = thermo
        k, m = thermo.n_constrained, thermo.network.n_metabolites
        if k == 0:
            raise ThermoDataError("no reaction is under the second law; B is the whole ln c box")
        lo = np.full(k, -np.inf) if drg_bounds is None else np.asarray(drg_bounds[0], float)
        hi = np.full(k, np.inf) if drg_bounds is None else np.asarray(drg_bounds[1], float)
        self._g_lo, self._g_hi = lo, hi
        A = sp.csr_array(thermo.drg_matrix)
        I_k = sp.identity(k, format="csr")
        # rows 0..k-1:  A lnc - t <= hi - drg0 ;  rows k..2k-1:  A lnc + t >= lo - drg0
        matrix = sp.vstack([sp.hstack([A, -I_k]), sp.hstack([A, I_k])]).tocsc()
        self.highs = highs_model(
            matrix,
            cost=np.concatenate([np.zeros(m), np.ones(k)]),
            col_lower=np.concatenate([thermo.lnc_lb, np.zeros(k)]),
            col_upper=np.concatenate([thermo.lnc_ub, np.full(k, np.inf)]),
        )
        self._rows = np.arange(2 * k, dtype=np.int32)
        self._m, self._k = m, k
        self.cache: dict[bytes, Violation] = {}
        self.lp_solves = 0

    def interval(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The allowed interval ``G_j`` of each ``ΔrG_j`` under the sign pattern."""
        delta = self.thermo.margin
        s = np.asarray(signs)
        lo = np.where(s < 0, np.maximum(self._g_lo, delta), self._g_lo)
        hi = np.where(s > 0, np.minimum(self._g_hi, -delta), self._g_hi)
        return lo, hi

    def violation(self, signs: np.ndarray) -> Violation:
        """Seed 002 Eq. 11 for sign pattern ``signs`` (cached)."""
        s = np.asarray(signs, dtype=np.int8)
        if s.shape != (self._k,):
            raise ValueError(f"sign pattern needs {self._k} entries, got shape {s.shape}")
        key = s.tobytes()
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        lo, hi = self.interval(s)
        drg0 = self.thermo.drg0
        inf = highspy.kHighsInf
        row_lo = np.concatenate(
            [np.full(self._k, -inf), np.where(np.isfinite(lo), lo - drg0, -inf)]
        )
        row_hi = np.concatenate([np.where(np.isfinite(hi), hi - drg0, inf), np.full(self._k, inf)])
        self.highs.changeRowsBounds(2 * self._k, self._rows, row_lo, row_hi)
        self.highs.run()
        self.lp_solves += 1
        status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(
                f"violation LP of B ended with {self.highs.modelStatusToString(status)}"
            )
        x = np.asarray(self.highs.getSolution().col_value)
        lnc = x[: self._m]
        a = drg0 + self.thermo.drg_matrix @ lnc
        eps = a - np.clip(a, lo, hi)
        total = float(np.abs(eps).sum())
        out = Violation(total if total > FEASIBLE_TOL else 0.0, eps, lnc)
        self.cache[key] = out
        return out

    def violation_scales(self, signs: np.ndarray) -> np.ndarray:
        """Seed 002's ``σ_i`` from the sign patterns ``signs (n, k)`` of uniform points of the
        flux polytope: per reaction, the larger magnitude of the 10% / 90% quantiles of the
        minimal violations ``ε_i`` of their distinct patterns (1 kJ/mol where that is 0)."""
        uniq, _ = unique_patterns(signs)
        eps = np.stack([self.violation(s).eps for s in uniq])
        scale = np.max(np.abs(np.quantile(eps, [0.1, 0.9], axis=0)), axis=0)
        return np.where(scale > 1e-9, scale, 1.0)

    def is_feasible(self, signs: np.ndarray) -> bool:
        """Whether B(signs) is non-empty (cached)."""
        return self.violation(signs).feasible

    def feasible_fluxes(self, fluxes: np.ndarray, *, zero_tol: float = 1e-9) -> np.ndarray:
        """Feasibility of each flux vector ``(..., n_reactions)`` (one LP per new sign pattern)."""
        signs = sign_pattern(fluxes, self.thermo, zero_tol=zero_tol)
        unique, inverse = unique_patterns(signs)
        ok = np.fromiter((self.is_feasible(row) for row in unique), dtype=bool, count=len(unique))
        return ok[inverse].reshape(signs.shape[:-1])

    def drg_extremes(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest ``ΔrG_j`` over B(signs), per constrained reaction (2k LPs).

        Used for the least conservative flux-force bound (largest ``|ΔrG|``). Raises
        :class:`~bayesflux.InfeasibleError`-free: an empty B gives NaN.
        """
        s = np.asarray(signs, dtype=np.int8)
        if not self.is_feasible(s):
            nan = np.full(self._k, np.nan)
            return nan, nan.copy()
        lo, hi = self.interval(s)
        A_ub = np.vstack(
            [self.thermo.drg_matrix[np.isfinite(hi)], -self.thermo.drg_matrix[np.isfinite(lo)]]
        )
        b_ub = np.concatenate(
            [(hi - self.thermo.drg0)[np.isfinite(hi)], -(lo - self.thermo.drg0)[np.isfinite(lo)]]
        )
        bounds = list(zip(self.thermo.lnc_lb, self.thermo.lnc_ub))
        out = np.empty((2, self._k))
        for k in range(self._k):
            for side, sign in enumerate((1.0, -1.0)):
                res = scipy.optimize.linprog(
                    sign * self.thermo.drg_matrix[k],
                    A_ub=A_ub,
                    b_ub=b_ub,
                    bounds=bounds,
                    method="highs",
                )
                if res.status != 0:
                    raise SolverError(
                        f"ΔrG range LP for {self.thermo.reactions[k]!r}: {res.message}"
                    )
                out[side, k] = self.thermo.drg0[k] + sign * res.fun
        return out[0], out[1]


def check_sign_pattern(thermo: ThermoModel, signs: np.ndarray, *, tol: float = 1e-9) -> bool:
    """Fresh, uncached feasibility test of B(signs): one ``scipy.optimize.linprog`` call.

    Independent of :class:`ConcentrationPolytope` (different formulation: inequalities on ``ln c``
    only, no epigraph variables), so it can check samplers' output.
    """
    s = np.asarray(signs)
    A = thermo.drg_matrix
    delta = thermo.margin
    fwd, bwd = s > 0, s < 0
    A_ub = np.vstack([A[fwd], -A[bwd]])
    b_ub = np.concatenate([-delta - thermo.drg0[fwd], thermo.drg0[bwd] - delta])
    if A_ub.shape[0] == 0:
        return True
    res = scipy.optimize.linprog(
        np.zeros(A.shape[1]),
        A_ub=A_ub,
        b_ub=b_ub + tol,
        bounds=list(zip(thermo.lnc_lb, thermo.lnc_ub)),
        method="highs",
    )
    if res.status not in (0, 2):
        raise SolverError(f"sign-pattern feasibility LP failed: {res.message}")
    return res.status == 0
