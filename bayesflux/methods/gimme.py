"""GIMME: least use of lowly expressed reactions at a required objective (Becker & Palsson 2008).

1. ``Z* = max c^T v`` over the flux polytope (FBA).
2. ``min sum_j w_j |v_j|`` s.t. ``S v = 0``, bounds, ``c^T v >= f Z*``, with weights
   ``w_j = theta - e_j`` for ``e_j < theta`` and 0 otherwise (reactions without data: 0).

``|v_j|`` is linear on the irreversible split (``v = v_f - v_b``, both ``>= 0``). The problem is
built once in cvxpy with the weights and the objective floor as parameters (DPP).
"""

from __future__ import annotations

from collections.abc import Mapping

import cvxpy as cp
import numpy as np
import xarray as xr

from bayesflux.errors import NetworkError
from bayesflux.expression.abundance import abundance_vector
from bayesflux.methods._lp import FluxLP, check_status
from bayesflux.methods.fba import objective_vector
from bayesflux.network import Network, as_network
from bayesflux.results import flux_dataset

__all__ = ["gimme", "GimmeLP"]


class GimmeLP:
    """``min w^T (v_f + v_b)`` s.t. split steady state, bounds and ``c^T v >= floor``."""

    def __init__(self, network: Network, c: np.ndarray) -> None:
        split = network.split_irreversible()
        m = len(split.reactions)
        self.split = split
        self.y = cp.Variable(m, name="y", bounds=[split.lb.copy(), split.ub.copy()])
        self.weights = cp.Parameter(network.n_reactions, nonneg=True, name="w",
                                    value=np.zeros(network.n_reactions))
        self.floor = cp.Parameter(name="floor", value=0.0)
        c_split = split.to_net.T @ c
        w_split = abs(split.to_net.T) @ self.weights
        self.problem = cp.Problem(
            cp.Minimize(w_split @ self.y),
            [split.S @ self.y == 0, c_split @ self.y >= self.floor],
        )

    def solve(self, weights: np.ndarray, floor: float) -> np.ndarray:
        self.weights.value = weights
        self.floor.value = floor
        self.problem.solve(solver=cp.HIGHS)
        check_status(self.problem.status, "GIMME LP")
        return np.asarray(self.split.to_net @ self.y.value)


def gimme(
    network,
    expression=None,
    *,
    abundance: xr.Dataset | xr.DataArray | None = None,
    threshold: float | None = None,
    quantile: float = 0.25,
    fraction: float = 0.9,
    objective: Mapping[str, float] | None = None,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    """GIMME fluxes and inconsistency score.

    Parameters
    ----------
    threshold
        Expression threshold ``theta``; default the ``quantile`` of the reaction abundances.
    fraction
        Required fraction ``f`` of the optimal objective ``Z*``.

    Returns
    -------
    xarray.Dataset
        ``flux`` and ``weight`` over ``reaction``; attrs ``threshold``, ``objective_value``
        (``c^T v``), ``optimal_objective`` (``Z*``) and ``inconsistency`` (``sum w |v|``).
    """
    network = as_network(network)
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], not {fraction}")
    e = abundance_vector(network, expression, abundance=abundance, method=gpr_method)
    measured = e[~np.isnan(e)]
    if measured.size == 0:
        raise NetworkError(f"no reaction of network {network.id!r} has expression data")
    if threshold is None:
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must lie in [0, 1], not {quantile}")
        threshold = float(np.quantile(measured, quantile))
    c = objective_vector(network, objective)
    z_star = float(c @ FluxLP(network).solve(-c, what=f"GIMME step 1 (FBA) on {network.id!r}"))
    w = np.where(np.isnan(e) | (e >= threshold), 0.0, threshold - np.nan_to_num(e))
    lp = GimmeLP(network, c)
    v = lp.solve(w, fraction * z_star - 1e-9 * max(1.0, abs(z_star)))
    return flux_dataset(
        network, {"flux": v, "weight": w}, method="gimme", threshold=float(threshold),
        fraction=fraction, objective_value=float(c @ v), optimal_objective=z_star,
        inconsistency=float(w @ np.abs(v)), gpr_method=gpr_method,
    )
