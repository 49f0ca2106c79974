"""E-Flux: expression as flux bounds (Colijn et al. 2009, PLoS Comput Biol 5:e1000489; seed 000).

Each reaction with an abundance ``e_j`` gets ``v_j <= alpha ê_j`` and, if it may run backwards,
``v_j >= -alpha ê_j``, with ``ê = e / max(e)``; the objective is then optimised by FBA, so
``alpha`` is the capacity of the most expressed reaction.

The scale matters whenever the network forces flux (E. coli core's ATP maintenance ``ATPM >=
8.39``) or bounds reactions without expression (uptake rates). Which scales are feasible is
decided by one LP: the set ``{(v, alpha): S v = 0, lb <= v <= ub, |v_j| <= alpha ê_j}`` is a
polyhedron, so the smallest feasible scale ``alpha_min`` is ``min alpha`` over it, and every
``alpha >= alpha_min`` is feasible. The default ``alpha="auto"`` gives the most expressed
reaction the network's largest finite flux bound among reactions with data (the usual E-Flux
normalisation: expression relative to its maximum, scaled to the model's bounds), raised to
``alpha_min`` if that is not feasible; it is feasible by construction. A scale below
``alpha_min`` raises :class:`~bayesflux.errors.InfeasibleError` quoting ``alpha_min``.

With ``measured={reaction: flux}``, ``alpha`` is the smallest scale at which the measured flux is
reachable (the same LP with ``v_m`` fixed); the reported solution carries the measured flux.
For the objective reaction this is the scale at which the E-Flux optimum equals the measurement;
on a network whose only finite bounds come from expression it is the classic rescaling of the
``alpha = 1`` solution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

import cvxpy as cp
import numpy as np
import xarray as xr

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.expression.abundance import abundance_vector
from bayesflux.methods._lp import FluxLP, check_status
from bayesflux.methods.fba import objective_vector
from bayesflux.network import Network, as_network
from bayesflux.results import flux_dataset

__all__ = ["eflux", "eflux_min_scale"]

_RELAX = 1e-9  # relative slack on alpha_min so the re-solved LP is feasible at HiGHS tolerances


def _explain_infeasible(network: Network, e: np.ndarray) -> InfeasibleError:
    """Why no scale works: the network itself, or reactions without expression that must run."""
    try:
        FluxLP(network).solve(np.zeros(network.n_reactions), what="")
    except InfeasibleError:
        return InfeasibleError(
            f"network {network.id!r} has no steady state within its own bounds, "
            "whatever the E-Flux scale"
        )
    zero = np.flatnonzero(e == 0)
    v = cp.Variable(network.n_reactions, bounds=[network.lb.copy(), network.ub.copy()])
    problem = cp.Problem(cp.Minimize(cp.sum(cp.abs(v[zero]))), [network.S @ v == 0])
    problem.solve(solver=cp.HIGHS)
    needed = [network.reactions[zero[k]] for k in np.flatnonzero(np.abs(v.value[zero]) > 1e-9)]
    if not needed:  # pragma: no cover - only numerical trouble could get here
        return InfeasibleError(f"E-Flux on {network.id!r} is infeasible at every scale")
    return InfeasibleError(
        "E-Flux is infeasible at every scale: reaction(s) "
        f"{', '.join(repr(r) for r in needed[:10])} have zero expression (capacity 0) "
        "but every steady state within the bounds needs flux through them"
    )


def _min_scale(
    network: Network, e: np.ndarray, fixed: tuple[int, float] | None
) -> tuple[float, list[str]]:
    """``alpha_min`` and the reactions whose capacity limits it (nonzero duals)."""
    ehat = np.asarray(e, dtype=float) / np.nanmax(e)
    data = np.flatnonzero(~np.isnan(ehat))
    back = data[network.lb[data] < 0]
    v = cp.Variable(network.n_reactions, bounds=[network.lb.copy(), network.ub.copy()])
    alpha = cp.Variable(nonneg=True)
    upper = v[data] <= alpha * ehat[data]
    lower = v[back] >= -alpha * ehat[back]
    constraints = [network.S @ v == 0, upper, lower]
    if fixed is not None:
        constraints.append(v[fixed[0]] == fixed[1])
    problem = cp.Problem(cp.Minimize(alpha), constraints)
    problem.solve(solver=cp.HIGHS)
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        if fixed is not None:
            j, value = fixed
            raise InfeasibleError(
                f"no steady state of {network.id!r} has reaction {network.reactions[j]!r} at the "
                f"measured flux {value:.6g} under E-Flux bounds of any scale"
            )
        raise _explain_infeasible(network, ehat)
    check_status(problem.status, f"E-Flux scale LP on {network.id!r}")
    duals = np.zeros(network.n_reactions)
    duals[data] += np.abs(np.asarray(upper.dual_value, dtype=float))
    duals[back] += np.abs(np.asarray(lower.dual_value, dtype=float))
    limiting = [network.reactions[k] for k in np.argsort(-duals) if duals[k] > 1e-9]
    return max(float(alpha.value), 0.0), limiting


def eflux_min_scale(
    network,
    expression=None,
    *,
    abundance: xr.Dataset | xr.DataArray | None = None,
    measured: Mapping[str, float] | None = None,
    gpr_method: str = "min_disjunction",
) -> float:
    """``alpha_min = min alpha  s.t.  S v = 0, lb <= v <= ub, |v_j| <= alpha ê_j`` (one LP).

    Every ``alpha >= alpha_min`` is feasible for :func:`eflux` (the feasible ``(v, alpha)`` form
    a polyhedron, and raising ``alpha`` only loosens bounds). Arguments as for :func:`eflux`;
    with ``measured={reaction: flux}`` the flux is also fixed. Raises :class:`InfeasibleError`
    naming the reactions at fault if no scale is feasible.
    """
    network = as_network(network)
    e = _abundance(network, expression, abundance, gpr_method)
    fixed = None
    if measured is not None:
        ((rxn, value),) = measured.items()
        fixed = (int(network.indices([rxn])[0]), float(value))
    return _min_scale(network, e, fixed)[0]


def _abundance(network: Network, expression, abundance, gpr_method: str) -> np.ndarray:
    """Per-reaction abundance; NetworkError if no reaction has data or all of it is zero."""
    e = abundance_vector(network, expression, abundance=abundance, method=gpr_method)
    if np.all(np.isnan(e)):
        raise NetworkError(f"no reaction of network {network.id!r} has expression data")
    if not np.nanmax(e) > 0:
        raise NetworkError(f"every reaction of network {network.id!r} has zero expression")
    return e


def _reference_scale(network: Network, e: np.ndarray) -> float:
    """The largest finite nonzero ``|bound|`` among reactions with data; 1 if there is none."""
    has = ~np.isnan(e)
    bounds = np.abs(np.concatenate([network.lb[has], network.ub[has]]))
    bounds = bounds[np.isfinite(bounds) & (bounds > 0)]
    return float(bounds.max()) if bounds.size else 1.0


def eflux(
    network,
    expression=None,
    *,
    abundance: xr.Dataset | xr.DataArray | None = None,
    alpha: float | Literal["auto"] = "auto",
    measured: Mapping[str, float] | None = None,
    objective: Mapping[str, float] | None = None,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    """E-Flux fluxes: FBA with ``-alpha ê_j <= v_j <= alpha ê_j`` (``ê = e / max e``).

    Parameters
    ----------
    network
        Network (or cobra.Model / model path) with GPR rules.
    expression, abundance
        Gene expression (Series / mapping) or a precomputed single-sample abundance.
    alpha
        Capacity of the most expressed reaction. ``"auto"`` (default): the network's largest
        finite bound among reactions with data, or the smallest feasible scale if larger.
        Ignored when ``measured`` is given.
    measured
        ``{reaction: flux}`` (one entry): use the smallest scale at which it is reachable.
    objective
        ``{reaction: coefficient}`` to maximise; default the network's objective.

    Returns
    -------
    xarray.Dataset
        ``flux``, ``lower``, ``upper`` (bounds used) over ``reaction``; attrs ``alpha``,
        ``alpha_min`` (smallest feasible scale), ``objective_value``. Reactions without data keep
        their bounds.
    """
    network = as_network(network)
    e = _abundance(network, expression, abundance, gpr_method)
    if isinstance(alpha, str):
        if alpha != "auto":
            raise ValueError(f"alpha must be a positive number or 'auto', not {alpha!r}")
    elif not alpha > 0:
        raise ValueError(f"alpha must be positive, not {alpha}")
    if measured is not None and len(measured) != 1:
        raise ValueError("measured must name exactly one reaction")

    lb0, ub0 = network.lb.copy(), network.ub.copy()
    if measured is not None:
        ((rxn, value),) = measured.items()
        j = int(network.indices([rxn])[0])
        scale = _min_scale(network, e, (j, float(value)))[0]
        alpha_min = _min_scale(network, e, None)[0]
        lb0[j] = ub0[j] = float(value)
    else:
        alpha_min, limiting = _min_scale(network, e, None)
        if alpha == "auto":
            scale = max(_reference_scale(network, e), alpha_min * (1 + _RELAX))
        elif alpha < alpha_min * (1 - _RELAX):
            raise InfeasibleError(
                f"E-Flux on {network.id!r} is infeasible at alpha = {alpha:.6g}: the smallest "
                f"scale with a steady state is alpha = {alpha_min:.6g}, set by the capacity of "
                f"reaction(s) {', '.join(repr(r) for r in limiting[:5])} (forced fluxes or fixed "
                "bounds need it); use alpha='auto' or a larger alpha"
            )
        else:
            scale = float(alpha)
    cap = np.where(np.isnan(e), np.inf, scale * e / np.nanmax(e))
    if measured is not None:
        cap[j] = max(cap[j], abs(float(value)))  # rounding of the scale LP
    lb = np.where(lb0 < 0, np.maximum(lb0, -cap), lb0)
    ub = np.minimum(ub0, cap)
    bad = np.flatnonzero(lb > ub)
    if bad.size:  # only a forced flux on a reaction without expression (capacity 0) gets here
        k = bad[0]
        raise InfeasibleError(
            f"E-Flux capacity {cap[k]:.4g} of reaction {network.reactions[k]!r} "
            f"is below its forced lower bound {lb0[k]:.4g}"
        )
    bounded = replace(network, lb=lb, ub=ub)
    c = objective_vector(network, objective)
    v = FluxLP(bounded).solve(-c, what=f"E-Flux on {network.id!r} at alpha = {scale:.6g}")
    if measured is not None:
        lb[j], ub[j] = np.maximum(network.lb[j], -cap[j]), np.minimum(network.ub[j], cap[j])
    return flux_dataset(
        network,
        {"flux": v, "lower": lb, "upper": ub},
        method="eflux",
        alpha=float(scale),
        alpha_min=float(alpha_min),
        objective_value=float(c @ v),
        gpr_method=gpr_method,
    )
