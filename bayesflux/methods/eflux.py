"""E-Flux: expression as flux bounds (Colijn et al. 2009; seed 000).

Each reaction with an abundance ``e_j`` gets ``v_j <= alpha e_j`` and, if it may run backwards,
``v_j >= -alpha e_j``; the objective is then optimised by FBA. Expression is first divided by its
maximum, so ``alpha`` is the capacity of the most expressed reaction. With ``measured`` given, the
solution at ``alpha = 1`` is rescaled so that the named reaction matches its measured flux (the
usual E-Flux calibration, valid because the bounded LP scales linearly with ``alpha``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import xarray as xr

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.expression.abundance import abundance_vector
from bayesflux.methods._lp import FluxLP
from bayesflux.methods.fba import objective_vector
from bayesflux.network import as_network
from bayesflux.results import flux_dataset

__all__ = ["eflux"]


def eflux(
    network,
    expression=None,
    *,
    abundance: xr.Dataset | xr.DataArray | None = None,
    alpha: float = 1.0,
    measured: Mapping[str, float] | None = None,
    objective: Mapping[str, float] | None = None,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    """E-Flux fluxes: FBA with ``-alpha e_j <= v_j <= alpha e_j`` (``e`` scaled to max 1).

    Parameters
    ----------
    network
        Network with GPR rules.
    expression, abundance
        Gene expression (Series / mapping) or a precomputed single-sample abundance.
    alpha
        Capacity of the most expressed reaction (ignored when ``measured`` is given).
    measured
        ``{reaction: flux}`` (one entry): calibrate the scale so this flux is reproduced.
    objective
        ``{reaction: coefficient}`` to maximise; default the network's objective.

    Returns
    -------
    xarray.Dataset
        ``flux``, ``lower``, ``upper`` (bounds used) over ``reaction``; attrs ``alpha``,
        ``objective_value``. Reactions without data keep their bounds.
    """
    network = as_network(network)
    e = abundance_vector(network, expression, abundance=abundance, method=gpr_method)
    if np.all(np.isnan(e)):
        raise NetworkError(f"no reaction of network {network.id!r} has expression data")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, not {alpha}")
    if measured is not None and len(measured) != 1:
        raise ValueError("measured must name exactly one reaction")
    scale = 1.0 if measured is not None else alpha
    cap = np.where(np.isnan(e), np.inf, scale * e / np.nanmax(e))
    lb = np.where(network.lb < 0, np.maximum(network.lb, -cap), network.lb)
    ub = np.minimum(network.ub, cap)
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        j = bad[0]
        raise InfeasibleError(f"E-Flux capacity {cap[j]:.4g} of reaction {network.reactions[j]!r} "
                              f"is below its forced lower bound {network.lb[j]:.4g}")
    bounded = replace(network, lb=lb, ub=ub)
    c = objective_vector(network, objective)
    v = FluxLP(bounded).solve(-c, what=f"E-Flux on {network.id!r}")
    if measured is not None:
        (rxn, value), = measured.items()
        j = network.indices([rxn])[0]
        if abs(v[j]) < 1e-12:
            raise InfeasibleError(f"E-Flux carries no flux through measured reaction {rxn!r}; "
                                  "cannot calibrate alpha")
        factor = value / v[j]
        if factor < 0:
            raise InfeasibleError(f"E-Flux predicts reaction {rxn!r} in the opposite direction "
                                  f"({v[j]:.4g}) to the measurement ({value:.4g})")
        v, lb, ub, alpha = v * factor, lb * factor, ub * factor, factor
    return flux_dataset(
        network, {"flux": v, "lower": lb, "upper": ub}, method="eflux", alpha=float(alpha),
        objective_value=float(c @ v), gpr_method=gpr_method,
    )
