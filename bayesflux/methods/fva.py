"""Flux variability analysis (Mahadevan and Schilling 2003).

For each reaction ``j``: ``min / max v_j  s.t.  S v = 0, lb <= v <= ub, cᵀv >= f · Z*``, where
``Z*`` is the FBA optimum and ``f`` the fraction of it that must be kept. One LP is compiled once;
each range is a hot-started re-solve. Any solution that puts ``v_j`` on its own bound settles that
end of ``j``'s range without a solve of its own, and group LPs (``max Σ_{j∈U} v_j`` over reactions
whose minimum is known, the FASTCC blocked-reaction test generalised) prove many fluxes fixed at
once: at the optimum of iJO1366 ~1000 LPs replace ~3400.
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
# Group LPs that fail (some member moves) before the rest is left to one LP per end. At the
# optimum of iJO1366 a handful of rounds settle ~2000 maxima; below it (fraction 0.9) most rounds
# free only a few members, and each round costs about as much as the LPs it would save.
_GROUP_ROUNDS = 16


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
        solver="HiGHS (primal simplex, hot start, group tests) via cvxpy",
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
    Ends are settled, in this order, by (1) any solution that puts a flux on its own bound,
    (2) group tests that prove many fluxes fixed with one LP (see :class:`_RangeSearch`) and
    (3) one LP per remaining end.
    """
    idx = np.arange(network.n_reactions) if reactions is None else np.asarray(reactions)
    search = _RangeSearch(FluxLP(network, extra).hot_start(), network, idx, progress=progress)
    try:
        search.record(search.highs.minimize(np.zeros(network.n_reactions))[1])  # a first vertex
        for k in (1, 0):  # ends that a group test can already decide
            search.group_test(k)
        search.single(0)
        search.group_test(1)  # every minimum is known now
        search.single(1)
    finally:
        search.bar.close()
    return search.result


class _RangeSearch:
    """The bookkeeping of :func:`flux_ranges`: known ends, the solutions seen, and the tests.

    ``result[0]`` holds the known minima, ``result[1]`` the maxima (NaN while unknown).

    The group test (the blocked-reaction check of FASTCC, Vlassis et al. 2014, applied to any
    known end): if every reaction ``j`` of a set ``U`` has a known minimum ``m_j``, then
    ``v_j - m_j >= 0`` on the whole feasible set, so one LP ``max Σ_{j∈U} (v_j - m_j)`` with
    optimum 0 proves ``max v_j = m_j`` for all of ``U`` at once (and symmetrically for minima).
    A solution with a positive optimum shows which members move; they leave ``U`` for LPs of
    their own and the test is repeated on the rest. At the optimum (fraction 1) most reactions of
    a genome-scale model are fixed, so a few such LPs replace thousands.
    """

    def __init__(self, highs, network: Network, idx: np.ndarray, *, progress: bool) -> None:
        n = network.n_reactions
        self.highs = highs
        self.bounds = (network.lb, network.ub)
        self.result = np.full((2, n), np.nan)
        self.idx = np.asarray(idx)
        self.cost = np.zeros(n)
        self.bar = progress_bar(
            (), desc=f"FVA {network.id}", disable=not progress, total=2 * self.idx.size
        )

    def unknown(self, k: int) -> np.ndarray:
        """Indices of the wanted reactions whose end ``k`` (0 min, 1 max) is still unknown."""
        return self.idx[np.isnan(self.result[k, self.idx])]

    def _settle(self, k: int, where: np.ndarray, values: np.ndarray) -> None:
        new = np.isnan(self.result[k, where])
        self.result[k, where[new]] = values[new]
        self.bar.update(int(new.sum()))

    def record(self, x: np.ndarray | None) -> None:
        """Settle every unknown end that the solution ``x`` puts on its own bound."""
        if x is None:
            return
        for k in (0, 1):
            open_ = self.unknown(k)
            hit = open_[np.abs(x[open_] - self.bounds[k][open_]) <= _AT_BOUND]
            self._settle(k, hit, self.bounds[k][hit])

    def solve(self, k: int, members: np.ndarray) -> tuple[float, np.ndarray | None]:
        """``min Σ v_j`` (``k = 0``) or ``max Σ v_j`` (``k = 1``) over ``members``; records it."""
        sign = 1.0 if k == 0 else -1.0
        self.cost[members] = sign
        value, x = self.highs.minimize(self.cost)
        self.cost[members] = 0.0
        self.record(x)
        return sign * value, x

    def single(self, k: int) -> None:
        """One LP for each end ``k`` still unknown (any solution may settle later ones)."""
        for j in self.unknown(k):
            if np.isnan(self.result[k, j]):
                value, _ = self.solve(k, np.array([j]))
                self._settle(k, np.array([j]), np.array([value]))

    def group_test(self, k: int) -> None:
        """Decide end ``k`` of the reactions whose other end is known by group LPs."""
        sign = 1.0 if k == 0 else -1.0
        unknown = self.unknown(k)
        stack = [unknown[~np.isnan(self.result[1 - k, unknown])]]
        failed = 0
        while stack and failed < _GROUP_ROUNDS:
            group = stack.pop()
            group = group[np.isnan(self.result[k, group])]
            if group.size < 2:
                continue  # a single reaction gets its own LP in `single`
            _, x = self.solve(k, group)
            if x is None:  # unbounded: some member is, find which by halving the group
                stack += [group[: group.size // 2], group[group.size // 2 :]]
                continue
            slack = sign * (self.result[1 - k, group] - x[group])  # >= 0 on the feasible set
            moved = slack > _AT_BOUND
            failed += 1
            if not moved.any():
                if np.maximum(slack, 0.0).sum() <= _AT_BOUND:
                    self._settle(k, group, self.result[1 - k, group])
                    failed -= 1
                    continue
                moved = slack > _AT_BOUND / group.size  # the members that may carry the excess
            stack.append(group[~moved])
