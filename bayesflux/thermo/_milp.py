"""The thermodynamic-stoichiometric model (TSM) as a mixed-integer linear program in HiGHS.

Columns ``x = [v (n), ln c (m), ΔrG (k), ΔrG0 (k), f (k), r (k)]`` (then optional slack, ``y``,
``ρ`` and ``z`` columns) for ``n`` reactions, ``m``
metabolites and ``k`` reactions under the second law; ``f_j``, ``r_j`` are binaries "may run
forwards / backwards" (as pyTFA's forward and backward use variables). Rows (Henry et al. 2007)::

    S v = 0
    ΔrG - ΔrG0 - R T Sₖᵀ ln c = 0
    v_j <= max(ub_j, 0) f_j,   v_j >= min(lb_j, 0) r_j,   f_j + r_j <= 1
    ΔrG_j + M_j f_j <= M_j - δ        (f_j = 1: ΔrG_j <= -δ)
    ΔrG_j - M_j r_j >= δ - M_j        (r_j = 1: ΔrG_j >= δ)

With ``f_j = r_j = 0`` the flux is zero and ``ΔrG_j`` is free, so a reaction whose ``ΔrG`` cannot
leave ``(-δ, δ)`` (water transport with water fixed) is simply inactive, as the second law says.

``M_j`` is the largest ``|ΔrG_j|`` over the box of ``ln c`` and ``ΔrG0`` plus ``δ``, so the big-M
rows never cut a thermodynamically allowed point. The model is loaded into HiGHS once; variability
analysis changes only the cost vector between solves.

With an :class:`Interior`, the model also finds a point deep inside a thermodynamically feasible
orthant piece of the flux polytope, in reduced coordinates ``y`` (``v = t0 + T y``, ``A y <= b``)
with a common margin ``ρ`` (a Chebyshev radius, maximised)::

    v - T y = t0,        A_i y + ρ ||A_i|| <= b_i
    f_j + r_j (+ z_j) >= 1                      (reaction j runs: strictly one way)
    v_j >= ρ w_j - M'_j (1 - f_j),   v_j <= -ρ w_j + M'_j (1 - r_j)

``M'_j = ρ_max w_j + max(ub_j, -lb_j, 0) + 1`` never cuts a point with ``f_j = 0`` (``r_j = 0``).
The optional binaries ``z_j`` let reaction ``j`` stop instead (at a cost that outweighs any ``ρ``),
which finds the fewest reactions that must stop for all others to run strictly.
"""

from __future__ import annotations

from typing import NamedTuple

import highspy
import numpy as np
import scipy.sparse as sp

from bayesflux._highs import highs_model
from bayesflux.errors import InfeasibleError, SolverError
from bayesflux.thermo.data import ThermoDataError, ThermoModel

__all__ = ["TSMMilp", "Columns", "Interior"]


class Columns(NamedTuple):
    """Column slices of the MILP."""

    v: slice
    lnc: slice
    drg: slice
    drg0: slice
    z: slice
    zb: slice
    slack: slice
    y: slice
    rho: slice
    zero: slice


class Interior(NamedTuple):
    """Reduced coordinates and margins of the interior-point rows of :class:`TSMMilp`.

    ``v = t0 + T y`` (``t0 (n,)``, ``T (n, d)``) maps onto the flux polytope ``A y <= b``;
    ``ρ`` lies in ``rho = (lo, hi)`` (``hi``: at most the Chebyshev radius of ``A y <= b``).
    ``w (k,)`` weighs the margin of each reaction under the second law (``||∂v_j/∂y||`` makes
    ``ρ`` a distance in ``y``); reactions with ``strict (k,)`` must carry flux
    ``|v_j| >= ρ w_j`` or, with ``allow_zero``, stop at cost 2 each (the objective of
    :meth:`TSMMilp.interior_cost` is ``2 Σ z_j - ρ / hi``). ``polytope_margin=False`` drops ``ρ``
    from the rows of A (a reaction that stops may then sit on its bound).
    """

    t0: np.ndarray
    T: np.ndarray
    A: np.ndarray
    b: np.ndarray
    rho: tuple[float, float]
    w: np.ndarray
    strict: np.ndarray
    allow_zero: bool = False
    polytope_margin: bool = True


class TSMMilp:
    """The TSM MILP of a :class:`ThermoModel`, loaded into a persistent HiGHS instance.

    Parameters
    ----------
    thermo
        Thermodynamic data (its network gives ``S`` and flux bounds).
    drg0_sd_factor
        ``ΔrG0_j`` may vary within ``mean ± factor · sd`` (0 fixes it at the mean).
    objective_floor
        ``(c, value)``: add the row ``cᵀv >= value``.
    relax_lnc
        Add slack columns ``s >= 0`` with ``lo - s <= ln c <= hi + s`` (ln c then free within
        ``±relax_lnc`` of its box) to locate an infeasible metabolome.
    interior
        Add the columns ``y``, ``ρ`` (and ``z``) and rows of an interior point (module docstring).
    mip_rel_gap, time_limit
        HiGHS options for each solve.
    """

    def __init__(
        self,
        thermo: ThermoModel,
        *,
        drg0_sd_factor: float = 0.0,
        objective_floor: tuple[np.ndarray, float] | None = None,
        relax_lnc: float = 0.0,
        interior: Interior | None = None,
        mip_rel_gap: float = 1e-7,
        time_limit: float = 60.0,
    ) -> None:
        net = thermo.network
        n, m, k = net.n_reactions, net.n_metabolites, thermo.n_constrained
        idx = thermo.index
        lb, ub = net.lb.copy(), net.ub.copy()
        bad = [net.reactions[j] for j in idx if not (np.isfinite(lb[j]) and np.isfinite(ub[j]))]
        if bad:
            raise ThermoDataError(
                f"reactions under the second law need finite flux bounds (big-M): {bad[:10]}"
            )
        lnc_lo = thermo.lnc_lb - relax_lnc
        lnc_hi = thermo.lnc_ub + relax_lnc
        sd = thermo.drg0_sd * drg0_sd_factor
        d_lo, d_hi = thermo.drg0 - sd, thermo.drg0 + sd
        A = thermo.drg_matrix
        g_lo = d_lo + np.minimum(A * lnc_lo, A * lnc_hi).sum(axis=1)
        g_hi = d_hi + np.maximum(A * lnc_lo, A * lnc_hi).sum(axis=1)
        delta = thermo.margin
        big_m = np.maximum(g_hi, -g_lo) + delta + 1.0
        n_s = m if relax_lnc > 0 else 0
        base = n + m + 4 * k + n_s
        d = 0 if interior is None else interior.T.shape[1]
        n_z = k if interior is not None and interior.allow_zero else 0
        cols = Columns(
            slice(0, n),
            slice(n, n + m),
            slice(n + m, n + m + k),
            slice(n + m + k, n + m + 2 * k),
            slice(n + m + 2 * k, n + m + 3 * k),
            slice(n + m + 3 * k, n + m + 4 * k),
            slice(n + m + 4 * k, base),
            slice(base, base + d),
            slice(base + d, base + d + (interior is not None)),
            slice(base + d + (interior is not None), base + d + (interior is not None) + n_z),
        )
        n_col = base
        col_lo = np.concatenate([lb, lnc_lo, g_lo, d_lo, np.zeros(2 * k), np.zeros(n_s)])
        col_hi = np.concatenate([ub, lnc_hi, g_hi, d_hi, np.ones(2 * k), np.full(n_s, np.inf)])

        I_k = sp.identity(k, format="csr")
        E = sp.csr_array((np.ones(k), (np.arange(k), idx)), shape=(k, n))  # picks v_j
        Z = sp.csr_array((k, n))

        def row(*blocks: sp.sparray) -> sp.sparray:
            return sp.hstack(
                list(blocks) + ([sp.csr_array((blocks[0].shape[0], n_s))] if n_s else [])
            )

        zero = {
            "mk": sp.csr_array((m, k)),
            "km": sp.csr_array((k, m)),
            "kk": sp.csr_array((k, k)),
        }
        ub_pos, lb_neg = np.maximum(ub[idx], 0.0), np.minimum(lb[idx], 0.0)
        blocks = [
            row(net.S, sp.csr_array((m, m)), zero["mk"], zero["mk"], zero["mk"], zero["mk"]),
            row(Z, -sp.csr_array(A), I_k, -I_k, zero["kk"], zero["kk"]),
            row(E, zero["km"], zero["kk"], zero["kk"], -sp.diags_array(ub_pos), zero["kk"]),
            row(E, zero["km"], zero["kk"], zero["kk"], zero["kk"], -sp.diags_array(lb_neg)),
            row(Z, zero["km"], zero["kk"], zero["kk"], I_k, I_k),
            row(Z, zero["km"], I_k, zero["kk"], sp.diags_array(big_m), zero["kk"]),
            row(Z, zero["km"], I_k, zero["kk"], zero["kk"], -sp.diags_array(big_m)),
        ]
        inf = np.inf
        r_lo = [
            np.zeros(m),
            np.zeros(k),
            np.full(k, -inf),
            np.zeros(k),
            np.full(k, -inf),
            np.full(k, -inf),
            delta - big_m,
        ]
        r_hi = [
            np.zeros(m),
            np.zeros(k),
            np.zeros(k),
            np.full(k, inf),
            np.ones(k),
            big_m - delta,
            np.full(k, inf),
        ]
        if n_s:
            eye = sp.identity(m, format="csr")
            base = [sp.csr_array((m, n)), eye, sp.csr_array((m, 4 * k))]
            blocks += [sp.hstack(base + [-eye]), sp.hstack(base + [eye])]
            r_lo += [np.full(m, -inf), thermo.lnc_lb]
            r_hi += [thermo.lnc_ub, np.full(m, inf)]
        if objective_floor is not None:
            c, value = objective_floor
            blocks.append(
                sp.hstack(
                    [sp.csr_array(np.asarray(c, float)[None, :]), sp.csr_array((1, base - n))]
                )
            )
            r_lo.append(np.array([value]))
            r_hi.append(np.array([inf]))
        integer = np.zeros(n_col, dtype=bool)
        integer[cols.z.start : cols.zb.stop] = True
        if interior is not None:
            n_col = cols.zero.stop
            blocks = [
                sp.hstack([blk, sp.csr_array((blk.shape[0], n_col - base))]) for blk in blocks
            ]
            rows, lo_hi = _interior_rows(interior, cols, n_col, idx, lb, ub)
            blocks += rows
            r_lo += [lo for lo, _ in lo_hi]
            r_hi += [hi for _, hi in lo_hi]
            col_lo = np.concatenate([col_lo, np.full(d, -inf), [interior.rho[0]], np.zeros(n_z)])
            col_hi = np.concatenate([col_hi, np.full(d, inf), [interior.rho[1]], np.ones(n_z)])
            integer = np.concatenate([integer, np.zeros(d + 1, dtype=bool), np.ones(n_z, bool)])
        matrix = sp.vstack(blocks).tocsc()
        row_lo, row_hi = np.concatenate(r_lo), np.concatenate(r_hi)
        self.highs = highs_model(
            matrix,
            col_lower=col_lo,
            col_upper=col_hi,
            row_lower=row_lo,
            row_upper=row_hi,
            integer=integer,
        )
        self.highs.setOptionValue("mip_rel_gap", mip_rel_gap)
        self.highs.setOptionValue("mip_abs_gap", 1e-9)
        self.highs.setOptionValue("time_limit", float(time_limit))
        self.highs.setOptionValue("random_seed", 0)
        self.thermo = thermo
        self.columns = cols
        self.n_col = n_col
        self.col_lower = col_lo
        self.col_upper = col_hi
        self._all = np.arange(n_col, dtype=np.int32)

    def minimize(self, cost: np.ndarray) -> tuple[str, float, np.ndarray | None]:
        """``min costᵀ x``: (status, objective, x).

        Status is optimal, infeasible, unbounded or time_limit (then objective is HiGHS's dual
        bound, a valid lower bound on the optimum, and x is None).
        """
        self.highs.changeColsCost(self.n_col, self._all, np.asarray(cost, dtype=float))
        self.highs.run()
        status = self.highs.getModelStatus()
        H = highspy.HighsModelStatus
        if status == H.kOptimal:
            x = np.asarray(self.highs.getSolution().col_value)
            return "optimal", float(self.highs.getInfo().objective_function_value), x
        if status == H.kInfeasible:
            return "infeasible", np.inf, None
        if status in (H.kUnbounded, H.kUnboundedOrInfeasible):
            return "unbounded", -np.inf, None
        if status == H.kTimeLimit:
            bound = float(self.highs.getInfo().mip_dual_bound)
            if np.isfinite(bound):  # a valid bound on the optimum: outer (conservative) ranges
                return "time_limit", bound, None
            raise SolverError(
                "HiGHS hit the time limit on the thermodynamic MILP without a bound; "
                "raise time_limit"
            )
        raise SolverError(f"HiGHS ended with status {self.highs.modelStatusToString(status)}")

    def unit_cost(self, column: int, sign: float) -> np.ndarray:
        cost = np.zeros(self.n_col)
        cost[column] = sign
        return cost

    def interior_cost(self, interior: Interior) -> np.ndarray:
        """``2 Σ z_j - ρ / ρ_max``: fewest stopped reactions first (``ρ / ρ_max <= 1``), then the
        largest margin ``ρ``."""
        cost = np.zeros(self.n_col)
        cost[self.columns.rho] = -1.0 / interior.rho[1]
        cost[self.columns.zero] = 2.0
        return cost


def _interior_rows(
    interior: Interior,
    cols: Columns,
    n_col: int,
    idx: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
) -> tuple[list[sp.sparray], list[tuple[np.ndarray, np.ndarray]]]:
    """Rows (and their bounds) of the interior point: see the module docstring."""
    t0, T, A, b = interior.t0, interior.T, interior.A, interior.b
    n, d = T.shape
    strict = np.flatnonzero(interior.strict)
    s = len(strict)
    j = idx[strict]
    w = np.asarray(interior.w, dtype=float)[strict]
    big = interior.rho[1] * w + np.maximum(np.maximum(ub[j], -lb[j]), 0.0) + 1.0

    def place(n_rows: int, *parts: tuple[slice, object]) -> sp.sparray:
        out = sp.csr_array((n_rows, n_col))
        for sl, blk in parts:
            blk = sp.coo_array(blk)
            out = out + sp.csr_array(
                (blk.data, (blk.row, blk.col + sl.start)), shape=(n_rows, n_col)
            )
        return out

    pick_v = sp.csr_array((np.ones(s), (np.arange(s), j)), shape=(s, n))
    pick_k = sp.csr_array((np.ones(s), (np.arange(s), strict)), shape=(s, len(idx)))
    w_col = w[:, None]
    margin = np.linalg.norm(A, axis=1)[:, None] * float(interior.polytope_margin)
    rows = [
        place(n, (cols.v, sp.identity(n)), (cols.y, -T)),
        place(len(b), (cols.y, A), (cols.rho, margin)),
        place(s, (cols.z, pick_k), (cols.zb, pick_k))
        if not interior.allow_zero
        else place(s, (cols.z, pick_k), (cols.zb, pick_k), (cols.zero, pick_k)),
        place(s, (cols.v, pick_v), (cols.rho, -w_col), (cols.z, -sp.diags_array(big) @ pick_k)),
        place(s, (cols.v, pick_v), (cols.rho, w_col), (cols.zb, sp.diags_array(big) @ pick_k)),
    ]
    inf = np.full(s, np.inf)
    bounds = [
        (t0, t0),
        (np.full(len(b), -np.inf), b),
        (np.ones(s), inf),
        (-big, inf),
        (-inf, big),
    ]
    return rows, bounds


def diagnose_infeasible(thermo: ThermoModel, *, what: str, **options) -> InfeasibleError:
    """An :class:`InfeasibleError` naming the ``ln c`` bounds that must move for feasibility.

    Solves the TSM with slack on every ``ln c`` bound (minimising the total slack): metabolites
    with non-zero slack are an infeasible metabolome. If even that fails, the flux bounds (with
    the loop law) are at fault.
    """
    net = thermo.network
    relaxed = TSMMilp(thermo, relax_lnc=50.0, **options)
    cost = np.zeros(relaxed.n_col)
    cost[relaxed.columns.slack] = 1.0
    status, _, x = relaxed.minimize(cost)
    if status != "optimal":
        return InfeasibleError(
            f"{what} is infeasible: no flux of network {net.id!r} satisfies S v = 0, the flux "
            "bounds and the loop law (check the flux bounds)"
        )
    slack = x[relaxed.columns.slack]
    lnc = x[relaxed.columns.lnc]
    at_fault = np.flatnonzero(slack > 1e-6)
    parts = []
    for i in at_fault[np.argsort(-slack[at_fault])][:8]:
        side = "raise upper" if lnc[i] > thermo.lnc_ub[i] else "lower the lower"
        parts.append(f"{net.metabolites[i]} ({side} ln c bound by {slack[i]:.3g})")
    return InfeasibleError(
        f"{what} is infeasible: infeasible metabolome; the ln c bounds of "
        f"{', '.join(parts)} cannot hold together with the second law, ΔrG0 and the flux bounds"
    )
