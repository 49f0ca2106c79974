"""Flux balance analysis: ``max cᵀv  s.t.  S v = 0, lb <= v <= ub`` (Orth, Thiele, Palsson 2010)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from bayesflux.errors import NetworkError
from bayesflux.methods._lp import FluxLP
from bayesflux.network import Network, as_network
from bayesflux.results import flux_dataset

__all__ = ["fba", "objective_vector"]


def objective_vector(network: Network, objective: Mapping[str, float] | None) -> np.ndarray:
    """The network's objective, or the one given as ``{reaction: coefficient}``; never all zero."""
    c = network.with_objective(objective).objective if objective else network.objective
    if not np.any(c):
        raise NetworkError(f"network {network.id!r} has no objective; pass objective={{...}}")
    return c


def fba(network, *, objective: Mapping[str, float] | None = None, sense: str = "max") -> xr.Dataset:
    """Optimise a linear objective over the steady-state flux polytope.

    Parameters
    ----------
    network
        A :class:`~bayesflux.Network`, ``cobra.Model``, model file or bundled dataset name.
    objective
        ``{reaction: coefficient}``; defaults to the network's objective.
    sense
        ``"max"`` or ``"min"``.

    Returns
    -------
    xarray.Dataset
        ``flux`` (reaction) with attrs ``objective_value`` and provenance. Raises
        :class:`~bayesflux.errors.InfeasibleError` or :class:`~bayesflux.errors.UnboundedError`.
    """
    network = as_network(network)
    if sense not in ("max", "min"):
        raise ValueError(f"sense must be 'max' or 'min', not {sense!r}")
    c = objective_vector(network, objective)
    sign = -1.0 if sense == "max" else 1.0
    v = FluxLP(network).solve(sign * c, what=f"FBA on {network.id!r}")
    return flux_dataset(
        network,
        {"flux": v},
        method="fba",
        sense=sense,
        objective_value=float(c @ v),
        solver="HiGHS via cvxpy",
    )
