"""Enzyme-capacity constraints from mRNA levels (seed 000).

At steady state an enzyme made at rate ``k_trans · e`` from its mRNA ``e`` and removed by dilution
(growth rate ``mu``) and degradation (``delta``) has abundance ``E = rho · e`` with

    rho = k_trans / (mu + delta),

and the reaction it catalyses can carry at most ``|v| <= kcat · E = kcat · rho · e``.
:func:`capacity_bounds` returns a copy of a network with these capacities intersected with its
bounds (the lower bound only for reactions that may run backwards).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import xarray as xr

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.network import Network, as_network

__all__ = ["translation_factor", "enzyme_capacity", "capacity_bounds"]

Param = float | np.ndarray | Mapping[str, float]


def translation_factor(k_trans, mu, delta) -> np.ndarray:
    """``rho = k_trans / (mu + delta)``: protein per mRNA at steady state (broadcasts)."""
    k_trans, mu, delta = (np.asarray(x, dtype=float) for x in (k_trans, mu, delta))
    if np.any(k_trans < 0) or np.any(mu < 0) or np.any(delta < 0):
        raise ValueError("k_trans, mu and delta must be non-negative")
    if np.any(mu + delta <= 0):
        raise ValueError("mu + delta must be positive (no dilution and no degradation)")
    return k_trans / (mu + delta)


def enzyme_capacity(abundance, kcat, k_trans=1.0, mu=0.0, delta=1.0) -> np.ndarray:
    """Flux capacity ``kcat · rho · e`` (seed 000), elementwise; ``NaN`` abundance stays ``NaN``."""
    e = np.asarray(abundance, dtype=float)
    kcat = np.asarray(kcat, dtype=float)
    if np.any(kcat < 0) or np.any(e < 0):
        raise ValueError("kcat and abundance must be non-negative")
    return kcat * translation_factor(k_trans, mu, delta) * e


def _per_reaction(network: Network, value: Param, name: str, default: float) -> np.ndarray:
    if isinstance(value, Mapping):
        out = np.full(network.n_reactions, default)
        out[network.indices(value.keys())] = list(value.values())
        return out
    out = np.broadcast_to(np.asarray(value, dtype=float), (network.n_reactions,)).copy()
    if not np.all(np.isfinite(out) | np.isnan(out)):
        raise ValueError(f"{name} must be finite")
    return out


def capacity_bounds(
    network,
    abundance,
    *,
    kcat: Param,
    k_trans: Param = 1.0,
    mu: float = 0.0,
    delta: Param = 1.0,
) -> Network:
    """A copy of ``network`` with ``-cap_j <= v_j <= cap_j``, ``cap_j = kcat_j rho_j e_j``, added.

    Parameters
    ----------
    abundance
        Per-reaction enzyme abundance: an array, or a DataArray with a ``reaction`` coordinate
        (e.g. ``enzyme_abundance(...)["abundance"]``); ``NaN`` leaves a reaction unconstrained.
    kcat, k_trans, delta
        Scalars, per-reaction arrays or ``{reaction: value}`` (unnamed reactions: ``kcat`` inf,
        ``k_trans`` 1, ``delta`` 1).
    mu
        Growth rate (dilution).

    Raises :class:`~bayesflux.errors.InfeasibleError` naming the reaction whose capacity excludes
    its own bounds (e.g. a forced flux above capacity).
    """
    network = as_network(network)
    if isinstance(abundance, xr.DataArray):
        if "reaction" not in abundance.dims or abundance.ndim != 1:
            raise NetworkError("abundance must be a 1-d DataArray over 'reaction'")
        e = abundance.reindex(reaction=list(network.reactions)).values.astype(float)
    else:
        e = np.asarray(abundance, dtype=float)
        if e.shape != (network.n_reactions,):
            raise NetworkError(f"abundance has shape {e.shape}, expected ({network.n_reactions},)")
    with np.errstate(invalid="ignore"):  # kcat = inf times e = 0 -> NaN -> unconstrained below
        cap = enzyme_capacity(
            np.where(np.isnan(e), 0.0, e),
            _per_reaction(network, kcat, "kcat", np.inf),
            _per_reaction(network, k_trans, "k_trans", 1.0),
            mu,
            _per_reaction(network, delta, "delta", 1.0),
        )
    cap = np.where(np.isnan(e) | np.isnan(cap), np.inf, cap)
    lb = np.maximum(network.lb, -cap)
    ub = np.minimum(network.ub, cap)
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        j = bad[0]
        raise InfeasibleError(
            f"capacity {cap[j]:.4g} of reaction {network.reactions[j]!r} excludes its bounds "
            f"[{network.lb[j]:.4g}, {network.ub[j]:.4g}]"
        )
    return replace(network, lb=lb, ub=ub)
