"""Pipeline steps of the optimisation methods (FBA, FVA)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from bayesflux.config import register_step
from bayesflux.methods import fba, fva
from bayesflux.network import Network


def _fba_summary(result: xr.DataTree) -> str:
    flux = result["flux"].to_series()
    top = flux.abs().sort_values(ascending=False).index[:5]
    largest = ", ".join(f"{r} {flux[r]:.4g}" for r in top)
    return f"objective {result.attrs['objective_value']:.6g}; largest fluxes: {largest}"


@register_step("fba", summarize=_fba_summary)
def fba_step(
    network: Network,
    *,
    previous,
    objective: dict[str, float] | None = None,
    sense: Literal["max", "min"] = "max",
) -> xr.Dataset:
    return fba(network, objective=objective, sense=sense)


def _fva_summary(result: xr.DataTree) -> str:
    lo, hi = result["minimum"].values, result["maximum"].values
    blocked = int(np.sum((np.abs(lo) < 1e-9) & (np.abs(hi) < 1e-9)))
    fixed = int(np.sum(np.abs(hi - lo) < 1e-9)) - blocked
    unbounded = int(np.sum(~np.isfinite(lo) | ~np.isfinite(hi)))
    return (
        f"{lo.size} ranges at fraction {result.attrs['fraction']}: {blocked} blocked, "
        f"{fixed} fixed, {lo.size - blocked - fixed} variable ({unbounded} unbounded)"
    )


@register_step("fva", summarize=_fva_summary)
def fva_step(
    network: Network,
    *,
    previous,
    fraction: float = 1.0,
    reactions: list[str] | None = None,
    progress: bool = True,
) -> xr.Dataset:
    return fva(network, fraction=fraction, reactions=reactions, progress=progress)
