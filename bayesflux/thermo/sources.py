"""Loaders of real thermodynamic data.

* :func:`ecoli_core`: the bundled eQuilibrator (component contribution) ΔrG'0 table for cobra's
  E. coli core model (``bayesflux/thermo/data``, see its README for the citation).
* :func:`niebel_tsm`: the thermodynamic-stoichiometric models of Niebel, Leupold and Heinemann
  (Nature Metabolism 2019; yeast = the model seed 002 extends), read from the long-format CSVs in
  ``shared/data/tsm_niebel2019`` (not shipped: the source carries no licence).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayesflux.datasets import shared_data_dir
from bayesflux.errors import ModelReadError
from bayesflux.network import Network, as_network
from bayesflux.thermo.data import PHYSIOLOGICAL_LNC, R_GAS, ThermoDataError, ThermoModel

__all__ = ["ecoli_core", "niebel_tsm", "MEMBRANE_REACTIONS"]

#: E. coli core reactions whose ΔrG'0 lacks the proton-motive term in the bundled table.
MEMBRANE_REACTIONS = ("ATPS4r", "NADH16", "CYTBD")
#: Metabolites whose activity is absorbed in transformed energies (ln c fixed at 0).
_FIXED_ECOLI = ("h_c", "h_e", "h2o_c", "h2o_e")
_LNC_FLOOR = float(np.log(1e-13))


def _bundled(name: str) -> pd.DataFrame:
    with resources.files("bayesflux.thermo").joinpath("data", name).open("r") as fh:
        return pd.read_csv(fh, index_col=0)


def ecoli_core(
    network: Any = "textbook",
    *,
    bounds: Literal["physiological", "wide"] = "physiological",
    lnc_bounds: tuple[float, float] = PHYSIOLOGICAL_LNC,
    wide_half_width: float = 30.0,
    include_membrane: bool = False,
    include_fixed: bool = True,
    covariance: bool = True,
    margin: float = 0.1,
) -> ThermoModel:
    """ΔrG'0 (eQuilibrator, pH 7.5, I = 0.25 M, 298.15 K) on E. coli core.

    Parameters
    ----------
    network
        cobra's ``textbook`` model by default (any network with the same reaction ids).
    bounds
        ``"physiological"``: ``ln c`` in ``lnc_bounds`` (1 µM..20 mM) with water and protons fixed
        at activity 1 (their terms are in the transformed ΔrG'0); ``"wide"``: every ``ln c`` in
        ``±wide_half_width``, so only the loop law binds (the cobra loopless equivalent).
    include_membrane
        Keep ATPS4r, NADH16 and CYTBD under the second law although their table values lack the
        proton-motive term (off by default, as the data README advises).
    include_fixed
        Keep under the second law the reactions all of whose metabolites have a fixed activity
        (``H2Ot``: water at activity 1 on both sides). Their ``ΔrG`` is the constant ``ΔrG'0``
        (0 for ``H2Ot``), inside ``(-δ, δ)``, so the law stops them, although water follows
        osmotic gradients that fixed activities do not resolve: without ``H2Ot`` the cell
        cannot export the water it makes, and on the bundled example's bounds (glucose <= 10,
        oxygen <= 20 mmol/gDW/h) growth falls from 0.83 to 0.38 1/h. ``False`` leaves them
        free.
    covariance
        Attach the full (rank-deficient) covariance of ΔrG'0.
    """
    network = as_network(network)
    table = _bundled("ecoli_core_drg0prime_equilibrator.csv")
    skip = set() if include_membrane else set(MEMBRANE_REACTIONS)
    if not include_fixed:
        S = network.S.tocsc()
        skip |= {
            r
            for r, j in network.reaction_index.items()
            if all(network.metabolites[i] in _FIXED_ECOLI for i in S[:, [j]].nonzero()[0])
        }
    reactions = [r for r in table.index if r in network.reaction_index and r not in skip]
    missing = [r for r in table.index if r not in network.reaction_index]
    if missing:
        raise ThermoDataError(
            f"network {network.id!r} lacks E. coli core reaction(s) {missing[:5]}"
        )
    cov = _bundled("ecoli_core_drg0prime_cov.csv") if covariance else None
    fixed = {m: (0.0, 0.0) for m in _FIXED_ECOLI if m in network.metabolite_index}
    model = ThermoModel.from_data(
        network,
        table["dG0_prime_kJ_mol"].to_dict(),
        drg0_sd=table["sd_kJ_mol"].to_dict(),
        drg0_cov=cov,
        reactions=reactions,
        lnc_bounds=fixed,
        default_lnc_bounds=lnc_bounds,
        temperature=298.15,
        margin=margin,
    )
    if bounds == "wide":
        return model.with_wide_bounds(wide_half_width)
    if bounds != "physiological":
        raise ValueError(f"bounds must be 'physiological' or 'wide', got {bounds!r}")
    return model


def _read(folder: Path, organism: str, symbol: str) -> pd.DataFrame:
    path = folder / f"{organism}_{symbol}.csv"
    if not path.is_file():
        raise ModelReadError(f"Niebel TSM file not found: {path}")
    return pd.read_csv(path)


def _limits(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    wide = df.pivot_table(index=keys, columns="bndID", values="value", aggfunc="first")
    return wide.reindex(columns=["lo", "up"])


def niebel_tsm(
    organism: Literal["yeast", "ecoli"] = "yeast",
    *,
    folder: str | Path | None = None,
    default_flux_bound: float = 500.0,
    missing_drg0: float | None = 0.0,
) -> tuple[Network, ThermoModel]:
    """The Niebel et al. (2019) TSM as a network and its thermodynamic data.

    Metabolite ids are ``<met>_<compartment>``. Flux bounds come from ``FluxLimits``; a bound the
    file leaves out is ``±default_flux_bound`` (the largest magnitude in the yeast file is 500).
    The second law applies to the set ``sndlaw`` with ``ΔrG0`` from ``drG0``; the yeast model
    lacks ΔrG0 for seven charge-neutral or equal-charge transport reactions (``O2t``,
    ``ETOHt+0``, ...), filled with ``missing_drg0`` (0 kJ/mol: the same species on both sides;
    None raises). ``ln c`` bounds from ``lncLimits``; a side the file leaves open (the upper bound
    of cytosolic and mitochondrial protons) is capped at ``ln 1 M = 0`` (below: ``ln 1e-13``);
    water and the ``charge`` balance rows are fixed at 0. ``T``, ``R`` and the margin ``δ``
    (``epsilon``, kJ/mol) from the files. The Gibbs-energy-dissipation part (``gav``, ``sigma``,
    ``Sg``) is not used.
    """
    folder = Path(folder) if folder is not None else shared_data_dir()
    if folder is None:
        raise ModelReadError("shared/data not found; pass folder= (tsm_niebel2019) explicitly")
    if (folder / "tsm_niebel2019").is_dir():
        folder = folder / "tsm_niebel2019"
    S = _read(folder, organism, "S")
    rxns = _read(folder, organism, "rxns")["rxns"].astype(str).tolist()
    S["met"] = S["mets"].astype(str) + "_" + S["comps"].astype(str)
    mets = list(dict.fromkeys(S["met"]))
    stoich: dict[str, dict[str, float]] = {r: {} for r in rxns}
    for met, rxn, value in zip(S["met"], S["rxns"].astype(str), S["value"]):
        stoich[rxn][met] = stoich[rxn].get(met, 0.0) + float(value)
    flux = _limits(_read(folder, organism, "FluxLimits"), ["rxns"])
    bounds = {}
    for r in rxns:
        lo = flux["lo"].get(r, np.nan) if r in flux.index else np.nan
        hi = flux["up"].get(r, np.nan) if r in flux.index else np.nan
        bounds[r] = (
            -default_flux_bound if np.isnan(lo) else float(lo),
            default_flux_bound if np.isnan(hi) else float(hi),
        )
    objective = {"biomass": 1.0} if "biomass" in stoich else None
    network = Network.from_stoichiometry(
        stoich, metabolites=mets, bounds=bounds, objective=objective, id=f"niebel2019_{organism}"
    )
    constrained = _read(folder, organism, "sndlaw")["rxns"].astype(str).tolist()
    drg0 = _read(folder, organism, "drG0").set_index("rxns")["value"].to_dict()
    absent = [r for r in constrained if r not in drg0]
    if absent and missing_drg0 is None:
        raise ThermoDataError(f"{organism} TSM lacks ΔrG0 for {', '.join(absent)}")
    for r in absent:
        drg0[r] = float(missing_drg0)
    lnc = _limits(_read(folder, organism, "lncLimits"), ["mets", "comps"])
    lnc_bounds = {}
    for met in mets:
        name, comp = met.rsplit("_", 1)
        lo, hi = lnc.loc[(name, comp)] if (name, comp) in lnc.index else (np.nan, np.nan)
        if np.isnan(lo) and np.isnan(hi):
            lnc_bounds[met] = (0.0, 0.0)  # water (activity 1) and charge balance rows
        else:  # GAMS leaves a free side unbounded: cap it at 1 M above, 1e-13 M below
            lo = _LNC_FLOOR if np.isnan(lo) else lo
            hi = 0.0 if np.isnan(hi) else hi
            lnc_bounds[met] = (float(lo), float(hi))
    temperature = float(_read(folder, organism, "Temp")["value"].iloc[0])
    gas = float(_read(folder, organism, "GasCons")["value"].iloc[0])
    margin = float(_read(folder, organism, "epsilon")["value"].iloc[0])
    thermo = ThermoModel.from_data(
        network,
        drg0,
        reactions=constrained,
        lnc_bounds=lnc_bounds,
        temperature=temperature * gas / R_GAS,  # so that R_GAS * T equals the file's R T
        margin=margin,
    )
    return network, thermo
