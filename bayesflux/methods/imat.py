"""iMAT: maximise agreement between flux activity and expression states (Shlomi et al. 2008).

Reactions with abundance ``e_j >= high`` (set ``R_H``) should be active and those with
``e_j <= low`` (``R_L``) inactive. With binaries ``y+_j, y-_j`` (``j in R_H``) and ``y0_j``
(``j in R_L``) the MILP is

    max  sum_{R_H} (y+_j + y-_j) + sum_{R_L} y0_j
    s.t. S v = 0,  lb <= v <= ub,
         v_j + y+_j (lb_j - eps) >= lb_j        (y+_j = 1  =>  v_j >= eps)
         v_j + y-_j (ub_j + eps) <= ub_j        (y-_j = 1  =>  v_j <= -eps)
         lb_j (1 - y0_j) <= v_j <= ub_j (1 - y0_j)   (y0_j = 1  =>  v_j = 0)

(``y+`` only where ``ub_j >= eps``, ``y-`` only where ``lb_j <= -eps``). Infinite bounds are
replaced by ``big_m`` in these rows. Solved by HiGHS with a time limit and relative MIP gap.

HiGHS's RINS and RENS sub-MIP heuristics are off (``HEURISTICS``): on Yeast 5.21 with Lee et al.
2012's data they took 60 % of the solve (51 sub-MIPs after presolve had shrunk the problem to
about 460 rows), while branch and bound proves the optimum in a few nodes without them. Measured
(``benchmarks/bench_imat.py``, 2-core machine): HC 75 % 2.7 -> 1.8 s, HC 85 % 2.9 -> 1.4 s, MC 75 %
12.9 -> 7.4 s, MC 85 % 10.8 -> 7.8 s, with the same optimum in every case.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import xarray as xr

from bayesflux.errors import InfeasibleError, NetworkError, SolverError
from bayesflux.expression.abundance import abundance_vector
from bayesflux.network import as_network
from bayesflux.results import flux_dataset

__all__ = ["imat"]

HEURISTICS = {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False}


def imat(
    network,
    expression=None,
    *,
    abundance: xr.Dataset | xr.DataArray | None = None,
    low: float | None = None,
    high: float | None = None,
    low_quantile: float = 0.25,
    high_quantile: float = 0.75,
    eps: float = 1.0,
    big_m: float = 1000.0,
    time_limit: float = 60.0,
    mip_rel_gap: float = 1e-4,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    """iMAT fluxes and activity states.

    Parameters
    ----------
    low, high
        Expression thresholds; default the ``low_quantile`` / ``high_quantile`` of the measured
        reaction abundances. ``low <= high`` is required.
    eps
        Minimal flux magnitude of an active reaction.
    big_m
        Stand-in for infinite bounds in the indicator rows.
    time_limit, mip_rel_gap
        HiGHS MILP limits; a run stopped by the time limit returns its best solution with
        ``status`` ``"time_limit"`` in the attrs (no solution at all raises ``SolverError``).

    Returns
    -------
    xarray.Dataset
        ``flux``; ``category`` (+1 high, -1 low, 0 neither) and ``satisfied`` (1 if the reaction
        agrees with its category) over ``reaction``; attrs ``low``, ``high``, ``objective_value``
        (number of satisfied reactions), ``status``, ``mip_gap``.
    """
    network = as_network(network)
    e = abundance_vector(network, expression, abundance=abundance, method=gpr_method)
    measured = e[~np.isnan(e)]
    if measured.size == 0:
        raise NetworkError(f"no reaction of network {network.id!r} has expression data")
    low = float(np.quantile(measured, low_quantile)) if low is None else float(low)
    high = float(np.quantile(measured, high_quantile)) if high is None else float(high)
    if low > high:
        raise ValueError(f"iMAT thresholds overlap: low = {low:.4g} > high = {high:.4g}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, not {eps}")
    lb = np.clip(network.lb, -big_m, big_m)
    ub = np.clip(network.ub, -big_m, big_m)
    category = np.where(e >= high, 1, np.where(e <= low, -1, 0))
    category[np.isnan(e)] = 0
    if low == high:  # a tie belongs to the high set
        category[e == high] = 1
    fwd = np.flatnonzero((category == 1) & (ub >= eps))
    bwd = np.flatnonzero((category == 1) & (lb <= -eps))
    off = np.flatnonzero(category == -1)

    v = cp.Variable(network.n_reactions, name="v", bounds=[lb, ub])
    cons = [network.S @ v == 0]
    binaries = []
    if fwd.size:
        yf = cp.Variable(fwd.size, boolean=True, name="y_forward")
        cons.append(v[fwd] + cp.multiply(lb[fwd] - eps, yf) >= lb[fwd])
        binaries.append(yf)
    if bwd.size:
        yb = cp.Variable(bwd.size, boolean=True, name="y_backward")
        cons.append(v[bwd] + cp.multiply(ub[bwd] + eps, yb) <= ub[bwd])
        binaries.append(yb)
    if off.size:
        y0 = cp.Variable(off.size, boolean=True, name="y_off")
        cons += [v[off] >= cp.multiply(lb[off], 1 - y0), v[off] <= cp.multiply(ub[off], 1 - y0)]
        binaries.append(y0)
    if not binaries:
        raise ValueError(f"iMAT: no reaction is above high = {high:.4g} or below low = {low:.4g}")
    score = sum(cp.sum(y) for y in binaries)
    problem = cp.Problem(cp.Maximize(score), cons)
    try:
        problem.solve(
            solver=cp.HIGHS, time_limit=float(time_limit), mip_rel_gap=mip_rel_gap, **HEURISTICS
        )
    except cp.error.SolverError as exc:
        raise SolverError(f"iMAT MILP on {network.id!r}: HiGHS failed ({exc})") from exc
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise InfeasibleError(f"iMAT on {network.id!r}: the network bounds are infeasible")
    if v.value is None:
        raise SolverError(
            f"iMAT MILP on {network.id!r} found no solution within "
            f"{time_limit} s (status {problem.status!r})"
        )
    flux = np.asarray(v.value, dtype=float)
    tol = 1e-6 * max(1.0, eps)
    satisfied = np.zeros(network.n_reactions)
    satisfied[category == 1] = np.abs(flux[category == 1]) >= eps - tol
    satisfied[category == -1] = np.abs(flux[category == -1]) <= tol
    stats = problem.solver_stats
    status = "optimal" if problem.status == cp.OPTIMAL else "time_limit"
    return flux_dataset(
        network,
        {"flux": flux, "category": category.astype(float), "satisfied": satisfied},
        method="imat",
        low=low,
        high=high,
        eps=eps,
        time_limit=float(time_limit),
        mip_rel_gap=mip_rel_gap,
        objective_value=float(problem.value),
        status=status,
        solve_time=float(stats.solve_time or 0.0),
        gpr_method=gpr_method,
    )
