"""Thermodynamic flux variability analysis (TFVA) and ΔrG0 fitting.

TFVA (Henry et al. 2007; seed 002, step 1): minimise and maximise every flux, ``ln c`` and ``ΔrG``
over the TSM ``{S v = 0, lb <= v <= ub, ΔrG = ΔrG0 + RT Sᵀ ln c, v_j ΔrG_j < 0}``, written as a
MILP with one direction binary per reaction (:mod:`bayesflux.thermo._milp`). With wide ``ln c``
bounds only the loop law binds and TFVA equals loopless FVA (Schellenberger et al. 2011).

ΔrG0 fitting (:func:`fit_drg0`): generalised least squares of the ΔrG0 estimates subject to the
first law around internal cycles, ``Nᵀ ΔrG0 = 0`` (seed 002, first fitting step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import highspy
import numpy as np
import scipy.linalg
import scipy.sparse as sp
import xarray as xr

from bayesflux._highs import highs_model
from bayesflux.methods.fba import objective_vector
from bayesflux.progress import progress_bar
from bayesflux.results import provenance
from bayesflux.thermo._milp import TSMMilp, diagnose_infeasible
from bayesflux.thermo.data import ThermoDataError, ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope, sign_pattern

__all__ = ["thermodynamic_fva", "tfba", "fit_drg0", "box_volume_reduction"]

_AT_BOUND = 1e-9


def tfba(
    thermo: ThermoModel,
    *,
    objective: Mapping[str, float] | None = None,
    drg0_sd_factor: float = 0.0,
) -> tuple[float, np.ndarray]:
    """Thermodynamic FBA: ``max cᵀv`` over the TSM. Returns (optimum, fluxes).

    ``objective`` is ``{reaction: coefficient}``; the network's objective by default.

    Raises :class:`~bayesflux.InfeasibleError` naming the ``ln c`` bounds at fault when the
    metabolome is infeasible.
    """
    milp = TSMMilp(thermo, drg0_sd_factor=drg0_sd_factor)
    c = objective_vector(thermo.network, objective)
    cost = np.zeros(milp.n_col)
    cost[milp.columns.v] = -c
    status, value, x = milp.minimize(cost)
    if status == "infeasible":
        raise diagnose_infeasible(thermo, what="thermodynamic FBA")
    if status == "unbounded":
        from bayesflux.errors import UnboundedError

        raise UnboundedError("thermodynamic FBA is unbounded")
    return -value, x[milp.columns.v]


def thermodynamic_fva(
    thermo: ThermoModel,
    *,
    fraction: float = 0.0,
    objective: Mapping[str, float] | None = None,
    variables: Sequence[str] = ("flux", "lnc", "drg"),
    reactions: Sequence[str] | None = None,
    drg0_sd_factor: float = 0.0,
    time_limit: float = 60.0,
    screen: bool = True,
    progress: bool = False,
) -> xr.Dataset:
    """Ranges of fluxes, ``ln c`` and ``ΔrG`` over the thermodynamic-stoichiometric model.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    fraction
        Keep ``cᵀv >= fraction · Z*`` with ``Z*`` the thermodynamic FBA optimum (0: no floor).
    objective
        ``{reaction: coefficient}`` for the floor; the network's objective by default.
    variables
        Any of ``"flux"``, ``"lnc"``, ``"drg"``.
    reactions
        Reactions whose flux range to compute (all by default).
    drg0_sd_factor
        Let ``ΔrG0`` vary within ``mean ± factor · sd`` (pyTFA uses 2 by default; 0 here).
    time_limit
        Seconds per MILP. A MILP stopped by it contributes HiGHS's dual bound, so that end of the
        range is conservative (too wide); ``attrs["ends_at_time_limit"]`` counts them.
    screen
        First solve each flux end as an LP (no thermodynamics); when the LP optimum's sign pattern
        has a non-empty concentration polytope B, it is also the TFVA end and no MILP is needed.

    Returns
    -------
    xarray.Dataset
        ``minimum``, ``maximum`` (reaction); ``lnc_minimum``, ``lnc_maximum`` (metabolite);
        ``drg_minimum``, ``drg_maximum`` (reaction; NaN where no second law applies).
    """
    net = thermo.network
    unknown = set(variables) - {"flux", "lnc", "drg"}
    if unknown:
        raise ValueError(f"unknown variables {sorted(unknown)}; use flux, lnc, drg")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    floor = None
    optimum = np.nan
    if fraction > 0:
        optimum, _ = tfba(thermo, objective=objective, drg0_sd_factor=drg0_sd_factor)
        floor = (
            objective_vector(net, objective),
            fraction * optimum - 1e-9 * max(1.0, abs(optimum)),
        )
    milp = TSMMilp(
        thermo, drg0_sd_factor=drg0_sd_factor, objective_floor=floor, time_limit=time_limit
    )
    status, _, x0 = milp.minimize(np.zeros(milp.n_col))
    if status == "infeasible":
        raise diagnose_infeasible(thermo, what=f"thermodynamic FVA on {net.id!r}")
    cols = milp.columns
    targets: list[int] = []
    if "flux" in variables:
        r_idx = np.arange(net.n_reactions) if reactions is None else net.indices(reactions)
        targets += [cols.v.start + int(j) for j in r_idx]
    if "lnc" in variables:
        targets += list(range(cols.lnc.start, cols.lnc.stop))
    if "drg" in variables:
        targets += list(range(cols.drg.start, cols.drg.stop))
    targets_arr = np.asarray(targets, dtype=int)
    lower = np.full(milp.n_col, np.nan)
    upper = np.full(milp.n_col, np.nan)
    wanted = np.zeros(milp.n_col, dtype=bool)
    wanted[targets_arr] = True

    def settle(x: np.ndarray) -> None:
        for out, bound in ((lower, milp.col_lower), (upper, milp.col_upper)):
            hit = wanted & np.isnan(out) & (np.abs(x - bound) <= _AT_BOUND)
            out[hit] = bound[hit]

    settle(x0)
    if "flux" in variables and drg0_sd_factor == 0 and screen:
        _screen_with_lp(thermo, floor, targets_arr[targets_arr < cols.v.stop], lower, upper)
    timed_out = 0
    jobs = [(sign, int(col)) for col in targets_arr for sign in (1.0, -1.0)]
    for sign, col in progress_bar(jobs, desc=f"TFVA {net.id}", disable=not progress):
        out = lower if sign > 0 else upper
        if not np.isnan(out[col]):
            continue
        status, value, x = milp.minimize(milp.unit_cost(col, sign))
        if status == "unbounded":
            out[col] = -sign * np.inf
            continue
        if status == "time_limit":  # the dual bound: this end is conservative (range too wide)
            out[col] = sign * value
            timed_out += 1
            continue
        if status != "optimal":  # the feasible set is fixed; only numerical trouble gets here
            raise diagnose_infeasible(thermo, what=f"thermodynamic FVA on {net.id!r}")
        out[col] = sign * value
        settle(x)

    def pick(cols_slice: slice, positions: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        lo, hi = lower[cols_slice], upper[cols_slice]
        if positions is None:
            return lo, hi
        full_lo = np.full(net.n_reactions, np.nan)
        full_hi = np.full(net.n_reactions, np.nan)
        full_lo[positions], full_hi[positions] = lo, hi
        return full_lo, full_hi

    data = {}
    if "flux" in variables:
        lo, hi = pick(cols.v)
        data["minimum"] = ("reaction", lo)
        data["maximum"] = ("reaction", hi)
    if "lnc" in variables:
        lo, hi = pick(cols.lnc)
        data["lnc_minimum"] = ("metabolite", lo)
        data["lnc_maximum"] = ("metabolite", hi)
    if "drg" in variables:
        lo, hi = pick(cols.drg, thermo.index)
        data["drg_minimum"] = ("reaction", lo)
        data["drg_maximum"] = ("reaction", hi)
    ds = xr.Dataset(
        data,
        coords={"reaction": list(net.reactions), "metabolite": list(net.metabolites)},
        attrs=provenance(
            "thermodynamic_fva",
            net,
            fraction=fraction,
            objective_optimum=float(optimum),
            margin_kJ_mol=thermo.margin,
            temperature_K=thermo.temperature,
            drg0_sd_factor=drg0_sd_factor,
            ends_at_time_limit=timed_out,
            solver="HiGHS MILP (direction binaries, big-M)",
        ),
    )
    if "flux" in variables and reactions is not None:
        ds = ds.sel(reaction=list(reactions))
    return ds


def _screen_with_lp(
    thermo: ThermoModel,
    floor: tuple[np.ndarray, float] | None,
    flux_columns: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> None:
    """Fill flux ends whose LP optimum is thermodynamically feasible (TSM ⊆ LP, so they agree)."""
    net = thermo.network
    rows = [sp.csr_array(net.S)]
    row_lo, row_hi = [np.zeros(net.n_metabolites)], [np.zeros(net.n_metabolites)]
    if floor is not None:
        rows.append(sp.csr_array(np.asarray(floor[0], float)[None, :]))
        row_lo.append(np.array([floor[1]]))
        row_hi.append(np.array([np.inf]))
    matrix = sp.vstack(rows).tocsc()
    highs = highs_model(
        matrix,
        col_lower=net.lb,
        col_upper=net.ub,
        row_lower=np.concatenate(row_lo),
        row_upper=np.concatenate(row_hi),
    )
    B = ConcentrationPolytope(thermo)
    all_cols = np.arange(net.n_reactions, dtype=np.int32)
    for col in flux_columns:
        for sign, out in ((1.0, lower), (-1.0, upper)):
            if not np.isnan(out[col]):
                continue
            cost = np.zeros(net.n_reactions)
            cost[col] = sign
            highs.changeColsCost(net.n_reactions, all_cols, cost)
            highs.run()
            if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                continue  # unbounded or numerical trouble: leave this end to the MILP
            x = np.asarray(highs.getSolution().col_value)
            if B.is_feasible(sign_pattern(x, thermo)):
                out[col] = sign * float(highs.getInfo().objective_function_value)


def box_volume_reduction(
    stoichiometric: xr.Dataset, thermodynamic: xr.Dataset, *, exclude: Sequence[str] = ()
) -> dict[str, float]:
    """Compare two flux-range tables (seed 002, Fig. 2d-e).

    Returns ``log10_box_volume_ratio`` = ``Σ_j log10(range_SM_j / range_TSM_j)`` over reactions with
    a non-zero TSM range, the mean relative range reduction ``1 - range_TSM / range_SM`` (excluding
    ``exclude``, e.g. measured exchanges) and the number of reactions compared.
    """
    r_sm = (stoichiometric["maximum"] - stoichiometric["minimum"]).to_series()
    r_tsm = (thermodynamic["maximum"] - thermodynamic["minimum"]).to_series().reindex(r_sm.index)
    keep = (r_tsm > 1e-9) & (r_sm > 1e-9) & ~r_sm.index.isin(list(exclude))
    ratio = np.log10(r_sm[keep].to_numpy() / r_tsm[keep].to_numpy())
    rel = 1.0 - r_tsm[keep].to_numpy() / r_sm[keep].to_numpy()
    return {
        "log10_box_volume_ratio": float(ratio.sum()),
        "mean_relative_range_reduction": float(rel.mean()),
        "n_compared": int(keep.sum()),
        "n_blocked_by_thermodynamics": int(((r_tsm <= 1e-9) & (r_sm > 1e-9)).sum()),
    }


def fit_drg0(thermo: ThermoModel, *, cycles_tol: float = 1e-10) -> tuple[ThermoModel, np.ndarray]:
    """Weighted least squares ΔrG0 consistent with the first law around every internal cycle.

    Minimises ``(x - μ)ᵀ Σ⁺ (x - μ)`` subject to ``Nᵀ x = 0`` (``N``: basis of the cycles of the
    constrained reactions, ``S N = 0``), whose solution is the generalised projection
    ``x = μ - Σ N (Nᵀ Σ N)⁻¹ Nᵀ μ`` (weights: the ΔrG0 covariance, or ``diag(sd²)``; reactions with
    ``sd = 0`` stay fixed). A cycle whose reactions all have zero variance but ``Nᵀμ != 0`` cannot
    be repaired and raises :class:`ThermoDataError` naming its reactions.

    Returns the model with fitted ``ΔrG0`` (covariance conditioned on the constraint) and the
    weighted residuals ``(x - μ) / sd``.
    """
    mu = thermo.drg0
    cov = np.diag(thermo.drg0_sd**2) if thermo.drg0_cov is None else thermo.drg0_cov
    N = scipy.linalg.null_space(thermo.S)
    if N.shape[1] == 0:
        return thermo, np.zeros_like(mu)
    gap = N.T @ mu
    M = N.T @ cov @ N
    w, V = np.linalg.eigh(M)
    keep = w > cycles_tol * max(float(w.max(initial=0.0)), 1.0)
    unfixable = V[:, ~keep].T @ gap
    if np.any(np.abs(unfixable) > 1e-6):
        cyc = N @ V[:, ~keep][:, int(np.argmax(np.abs(unfixable)))]
        names = [thermo.reactions[i] for i in np.flatnonzero(np.abs(cyc) > 1e-8)]
        raise ThermoDataError(
            "ΔrG0 of an internal cycle does not sum to zero and all its reactions have zero "
            f"uncertainty: {', '.join(names[:12])}"
        )
    M_pinv = (V[:, keep] / w[keep]) @ V[:, keep].T
    gain = cov @ N @ M_pinv
    fitted = mu - gain @ gap
    new_cov = cov - gain @ N.T @ cov
    new_cov = 0.5 * (new_cov + new_cov.T)
    sd = thermo.drg0_sd
    resid = np.divide(fitted - mu, sd, out=np.zeros_like(mu), where=sd > 0)
    from dataclasses import replace

    new_sd = np.sqrt(np.clip(np.diag(new_cov), 0.0, None))
    return replace(thermo, drg0=fitted, drg0_sd=new_sd, drg0_cov=new_cov), resid
