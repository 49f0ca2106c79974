"""Pipeline steps of the thermodynamics module (thermodynamic FVA, thermodynamic sampling).

Thermodynamic data come from ``thermo``: ``"ecoli_core"`` (the bundled eQuilibrator table, on a
network with E. coli core reaction ids) or ``"ecoli_core_wide"`` (wide ln c bounds: loopless).
``thermodynamic_sampling`` with ``checkpoint = "folder"`` keeps the sampler's state after each
block of draws there, and a rerun resumes after the last finished block.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from bayesflux.config import OutputDir, register_step
from bayesflux.errors import ConfigError
from bayesflux.network import Network
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.sources import ecoli_core

_SOURCES = ("ecoli_core", "ecoli_core_wide")


def thermo_model(
    network: Network, source: str, lnc_bounds: dict[str, tuple[float, float]] | None
) -> ThermoModel:
    """The thermodynamic data ``source`` (``"ecoli_core"`` or ``"ecoli_core_wide"``) on
    ``network``, with the ln c bounds of ``lnc_bounds`` (``{metabolite: [lower, upper]}``)."""
    if source not in _SOURCES:
        raise ConfigError(f"unknown thermodynamic data {source!r}; known: {', '.join(_SOURCES)}")
    model = ecoli_core(network, bounds="wide" if source.endswith("_wide") else "physiological")
    if lnc_bounds:
        model = model.with_lnc_bounds({m: (float(a), float(b)) for m, (a, b) in lnc_bounds.items()})
    return model


def _tfva_summary(result: xr.DataTree) -> str:
    lo, hi = result["minimum"].values, result["maximum"].values
    fwd = int(np.sum(lo > 1e-9))
    bwd = int(np.sum(hi < -1e-9))
    blocked = int(np.sum((np.abs(lo) < 1e-9) & (np.abs(hi) < 1e-9)))
    return (
        f"{lo.size} thermodynamic flux ranges: {fwd} forced forwards, {bwd} backwards, "
        f"{blocked} blocked"
    )


@register_step("thermodynamic_fva", summarize=_tfva_summary)
def thermodynamic_fva_step(
    network: Network,
    *,
    previous,
    thermo: str = "ecoli_core",
    lnc_bounds: dict[str, tuple[float, float]] | None = None,
    fraction: float = 0.0,
    variables: list[Literal["flux", "lnc", "drg"]] | None = None,
    reactions: list[str] | None = None,
    progress: bool = True,
) -> xr.Dataset:
    from bayesflux.thermo.tfva import thermodynamic_fva

    model = thermo_model(network, thermo, lnc_bounds)
    return thermodynamic_fva(
        model,
        fraction=fraction,
        progress=progress,
        reactions=reactions,
        variables=tuple(variables or ("flux", "lnc", "drg")),
    )


def _samples_summary(result: xr.DataTree) -> str:
    flux = result["posterior"]["flux"]
    return (
        f"{flux.sizes['chain']} x {flux.sizes['draw']} thermodynamically feasible draws "
        f"({result.attrs.get('method')}, {result.attrs.get('sign_patterns')} sign patterns)"
    )


@register_step("thermodynamic_sampling", summarize=_samples_summary)
def thermodynamic_sampling_step(
    network: Network,
    *,
    previous,
    thermo: str = "ecoli_core",
    lnc_bounds: dict[str, tuple[float, float]] | None = None,
    method: Literal["orthants", "tempering"] = "orthants",
    bounds: dict[str, tuple[float, float]] | None = None,
    num_draws: int = 1000,
    num_warmup: int = 200,
    num_chains: int = 4,
    seed: int = 0,
    checkpoint: OutputDir | None = None,
    progress: bool = True,
) -> xr.DataTree:
    from bayesflux.thermo.orthants import sample_orthants
    from bayesflux.thermo.tempering import parallel_tempering

    model = thermo_model(network, thermo, lnc_bounds)
    sector = {r: (float(a), float(b)) for r, (a, b) in (bounds or {}).items()}
    if method == "orthants":
        return sample_orthants(
            model,
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=num_chains,
            bounds=sector,
            seed=seed,
            progress=progress,
            checkpoint=checkpoint,
        )
    if method == "tempering":
        return parallel_tempering(
            model,
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=num_chains,
            bounds=sector,
            seed=seed,
            progress=progress,
            checkpoint=checkpoint,
        )
    raise ConfigError(f"method must be 'orthants' or 'tempering', got {method!r}")
