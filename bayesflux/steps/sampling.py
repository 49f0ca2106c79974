"""Pipeline step ``sample``: uniform sampling of the flux polytope (billiard walk, hit-and-run)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypedDict

import numpy as np
import xarray as xr

from bayesflux.config import OutputDir, register_step
from bayesflux.network import Network
from bayesflux.sampling import LinearConstraint, sample_fluxes


def _sample_summary(result: xr.DataTree) -> str:
    flux = result["posterior"]["flux"]
    chains, draws = flux.sizes["chain"], flux.sizes["draw"]
    sd = flux.std(("chain", "draw")).to_series()
    widest = ", ".join(f"{r} sd {sd[r]:.3g}" for r in sd.sort_values(ascending=False).index[:3])
    attrs = result.attrs
    return (
        f"{chains} chains x {draws} draws, {attrs.get('method')} ({attrs.get('kernel')}) on a "
        f"{attrs.get('dimension')}-dimensional polytope ({attrs.get('rounding')} rounding, "
        f"log volume proxy {float(attrs.get('log_volume', np.nan)):.4g}); widest: {widest}"
    )


class _Limits(TypedDict, total=False):
    lower: float
    upper: float


class ConstraintTable(_Limits):
    """A config's linear constraint ``lower <= sum(c * v[rxn]) <= upper`` (limits optional)."""

    coefficients: dict[str, float]


def linear_constraints(tables: list[ConstraintTable] | None) -> list[LinearConstraint]:
    """Config tables ``{coefficients = {rxn = c}, lower = .., upper = ..}`` -> constraints."""
    return [
        LinearConstraint(
            dict(c["coefficients"]), float(c.get("lower", -np.inf)), float(c.get("upper", np.inf))
        )
        for c in tables or []
    ]


@register_step("sample", summarize=_sample_summary)
def sample_step(
    network: Network,
    *,
    previous,
    num_chains: int = 4,
    num_draws: int = 1000,
    thinning: int | None = None,
    num_warmup: int | None = None,
    seed: int = 0,
    kernel: Literal["auto", "coordinate", "random", "billiard"] = "auto",
    rounding: Literal["ep", "mve", "none"] = "ep",
    constraints: list[ConstraintTable] | None = None,
    checkpoint: OutputDir | None = None,
    progress: bool = True,
) -> xr.DataTree:
    """``constraints``: a list of ``{coefficients = {rxn = c}, lower = .., upper = ..}`` tables."""
    cons = linear_constraints(constraints)
    return sample_fluxes(
        network,
        num_chains=num_chains,
        num_draws=num_draws,
        thinning=thinning,
        num_warmup=num_warmup,
        seed=seed,
        kernel=kernel,
        rounding=rounding,
        constraints=cons,
        checkpoint=None if checkpoint is None else Path(checkpoint),
        progress=progress,
    )
