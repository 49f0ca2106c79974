"""Flux-force lower bounds on exchange (labelling) fluxes from ΔrG (seed 002, Eq. 7).

For a simple mechanism ``v+ / v- = exp(-ΔrG / RT)``; in general the ratio is at least as extreme
as far as a lower bound on the exchange flux ``v_xch = min(v+, v-)`` goes. With ``v_net = v+ - v-``
this gives (DESIGN.md, flux-force relationship)::

    v_xch >= |v_net| / (exp(|ΔrG| / RT) - 1)

The bound is loosest (smallest) for the largest ``|ΔrG|`` compatible with the fluxes' sign pattern,
which :func:`least_conservative_bounds` finds over the concentration polytope B (seed 002 used the
sampled ΔrG giving the lowest bound).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope, sign_pattern, unique_patterns

__all__ = ["exchange_lower_bound", "least_conservative_bounds"]


@jax.jit
def exchange_lower_bound(v_net: jax.Array, drg: jax.Array, rt: float) -> jax.Array:
    """``|v_net| / (exp(|ΔrG| / RT) - 1)`` elementwise (inf at ``ΔrG = 0`` with flux, 0 without).

    Batches over any leading axes (samples); ``expm1`` keeps it accurate for small ``|ΔrG|``.
    """
    v = jnp.abs(v_net)
    denom = jnp.expm1(jnp.abs(drg) / rt)
    return jnp.where(v == 0.0, 0.0, v / denom)


def least_conservative_bounds(
    thermo: ThermoModel, fluxes: np.ndarray, *, B: ConcentrationPolytope | None = None
) -> xr.DataArray:
    """Smallest flux-force lower bound on each constrained reaction's exchange flux, per sample.

    For each flux sample ``(sample, reaction)``, the largest ``|ΔrG_j|`` over B(sign(v)) (one LP per
    reaction and distinct sign pattern) enters :func:`exchange_lower_bound`. Returns a DataArray
    ``(sample, reaction)`` over the constrained reactions (NaN for an infeasible pattern).
    """
    B = B if B is not None else ConcentrationPolytope(thermo)
    v = np.atleast_2d(np.asarray(fluxes, dtype=float))
    signs = sign_pattern(v, thermo)
    unique, inverse = unique_patterns(signs)
    largest = np.empty((len(unique), thermo.n_constrained))
    for u, s in enumerate(unique):
        lo, hi = B.drg_extremes(s)
        largest[u] = np.maximum(np.abs(lo), np.abs(hi))
    drg = largest[inverse]
    bound = np.asarray(
        exchange_lower_bound(jnp.asarray(v[:, thermo.index]), jnp.asarray(drg), thermo.rt)
    )
    return xr.DataArray(
        bound,
        dims=("sample", "reaction"),
        coords={"reaction": list(thermo.reactions)},
        name="exchange_flux_lower_bound",
        attrs={"formula": "|v_net| / (exp(max|ΔrG| / RT) - 1)", "units": "flux units"},
    )
