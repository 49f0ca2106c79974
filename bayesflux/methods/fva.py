"""Flux variability analysis (Mahadevan and Schilling 2003).

For each reaction ``j``: ``min / max v_j  s.t.  S v = 0, lb <= v <= ub, cᵀv >= f · Z*``, where
``Z*`` is the FBA optimum and ``f`` the fraction of it that must be kept. One LP is compiled once;
each range is a hot-started re-solve. Any solution that puts ``v_j`` on its own bound settles that
end of ``j``'s range without a solve of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cvxpy as cp
import numpy as np
import xarray as xr

from bayesflux.errors import UnboundedError
from bayesflux.methods._lp import FluxLP
from bayesflux.methods.fba import objective_vector
from bayesflux.network import Network, as_network
from bayesflux.progress import progress_bar
from bayesflux.results import flux_dataset

__all__ = ["fva", "flux_ranges"]

_AT_BOUND = 1e-9  # a solution this close to a bound attains it (the LP's feasibility tolerance)


def fva(
    network,
    *,
    fraction: float = 1.0,
    reactions: Sequence[str] | None = None,
    objective: Mapping[str, float] | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Minimum and maximum of each flux over the optimal (or near-optimal) flux space.

    Parameters
    ----------
    network
        A :class:`~bayesflux.Network`, ``cobra.Model``, model file or bundled dataset name.
    fraction
        Fraction of the optimal objective to keep, in [0, 1]; 0 gives the plain flux ranges.
    reactions
        Reactions to analyse; all by default.
    objective
        ``{reaction: coefficient}`` (maximised); defaults to the network's objective.
    progress
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        ``minimum`` and ``maximum`` (reaction), ``±inf`` where a flux is unbounded.
    """
    network = as_network(network)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    idx = np.arange(network.n_reactions) if reactions is None else network.indices(reactions)

    optimum = 0.0
    extra = []
    if fraction > 0:
        c = objective_vector(network, objective)
        value, _ = FluxLP(network).hot_start().minimize(-c)
        if not np.isfinite(value):
            raise UnboundedError(f"FBA on {network.id!r} is unbounded; FVA needs a finite optimum")
        optimum = -value
        floor = fraction * optimum
        extra.append(lambda v: [c @ v >= floor])
    result = flux_ranges(network, extra=extra, reactions=idx, progress=progress)

    out = flux_dataset(
        network,
        {"minimum": result[0], "maximum": result[1]},
        method="fva",
        fraction=fraction,
        objective_optimum=optimum,
        solver="HiGHS (primal simplex, hot start) via cvxpy",
    )
    return out if reactions is None else out.sel(reaction=list(reactions))


def flux_ranges(
    network: Network,
    *,
    extra: Sequence[Callable[[cp.Variable], list[cp.Constraint]]] = (),
    reactions: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """``[min, max]`` of each flux (rows 0 and 1) over ``S v = 0``, the bounds and ``extra``.

    One hot-started HiGHS model; reactions not in ``reactions`` (indices) stay NaN; unbounded ends
    are ``±inf``. Raises :class:`~bayesflux.errors.InfeasibleError` if the set is empty.
    """
    highs = FluxLP(network, extra).hot_start()
    idx = np.arange(network.n_reactions) if reactions is None else np.asarray(reactions)
    bounds = (network.lb, network.ub)
    result = np.full((2, network.n_reactions), np.nan)
    wanted = np.zeros((2, network.n_reactions), dtype=bool)
    wanted[:, idx] = True
    cost = np.zeros(network.n_reactions)
    jobs = [(k, j) for k in (0, 1) for j in idx]
    for k, j in progress_bar(jobs, desc=f"FVA {network.id}", disable=not progress):
        if not np.isnan(result[k, j]):
            continue
        sign = 1.0 if k == 0 else -1.0
        cost[j] = sign
        value, x = highs.minimize(cost)
        cost[j] = 0.0
        result[k, j] = sign * value
        if x is None:
            continue
        for kk in (0, 1):  # every solution may already settle other reactions' ranges
            hit = wanted[kk] & np.isnan(result[kk]) & (np.abs(x - bounds[kk]) <= _AT_BOUND)
            result[kk, hit] = bounds[kk][hit]
    return result
