"""Pipeline steps of the expression methods (abundance, E-Flux, GIMME, iMAT, FALCON).

Every step reads a gene table (``gene mean [std]``, tab-separated, any line endings, as the
Lee et al. 2012 files) from ``expression``, a path relative to the config file's folder::

    [[step]]
    kind = "falcon"
    expression = "data/genedata_75.txt"
    repeats = 4
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from bayesflux.config import InputFile, register_step
from bayesflux.errors import ConfigError
from bayesflux.expression import enzyme_abundance, read_gene_data
from bayesflux.methods.eflux import eflux
from bayesflux.methods.falcon import falcon
from bayesflux.methods.gimme import gimme
from bayesflux.methods.imat import imat
from bayesflux.network import Network


def gene_table(expression: str | None) -> tuple:
    """``(mean, std or None)`` per gene from the table at ``expression`` (``gene mean [std]``)."""
    if not expression:
        raise ConfigError("expression steps need an 'expression' file (gene mean [std] table)")
    path = Path(expression)
    if not path.is_file():
        raise ConfigError(f"expression file {path} not found")
    table = read_gene_data(path)
    return table["mean"], (table["std"] if "std" in table else None)


def _flux_summary(result: xr.DataTree) -> str:
    flux = result["flux"].to_series()
    top = flux.abs().sort_values(ascending=False).index[:5]
    largest = ", ".join(f"{r} {flux[r]:.4g}" for r in top)
    return f"{int((flux.abs() > 1e-9).sum())} reactions carry flux; largest: {largest}"


def _abundance_summary(result: xr.DataTree) -> str:
    a = result["abundance"].values
    return (
        f"{int(np.isfinite(a).sum())} reactions with an abundance, "
        f"{result.attrs.get('n_missing_genes', 0)} rule genes without data"
    )


@register_step("enzyme_abundance", summarize=_abundance_summary)
def abundance_step(
    network: Network,
    *,
    previous,
    expression: InputFile | None = None,
    method: str = "min_disjunction",
    or_: str = "sum",
) -> xr.Dataset:
    mean, std = gene_table(expression)
    return enzyme_abundance(network, mean, std, method=method, or_=or_)


@register_step("falcon", summarize=_flux_summary)
def falcon_step(
    network: Network,
    *,
    previous,
    expression: InputFile | None = None,
    gpr_method: str = "min_disjunction",
    use_groups: bool = True,
    flux_floor: float | None = None,
    repeats: int = 1,
    seed: int = 0,
) -> xr.Dataset:
    mean, std = gene_table(expression)
    return falcon(
        network,
        mean,
        std,
        gpr_method=gpr_method,
        use_groups=use_groups,
        flux_floor=flux_floor,
        repeats=repeats,
        seed=seed,
    )


@register_step("eflux", summarize=_flux_summary)
def eflux_step(
    network: Network,
    *,
    previous,
    expression: InputFile | None = None,
    alpha: float | Literal["auto"] = "auto",
    measured: dict[str, float] | None = None,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    mean, _ = gene_table(expression)
    return eflux(network, mean, alpha=alpha, measured=measured, gpr_method=gpr_method)


@register_step("gimme", summarize=_flux_summary)
def gimme_step(
    network: Network,
    *,
    previous,
    expression: InputFile | None = None,
    threshold: float | None = None,
    quantile: float = 0.25,
    fraction: float = 0.9,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    mean, _ = gene_table(expression)
    return gimme(
        network,
        mean,
        threshold=threshold,
        quantile=quantile,
        fraction=fraction,
        gpr_method=gpr_method,
    )


@register_step("imat", summarize=_flux_summary)
def imat_step(
    network: Network,
    *,
    previous,
    expression: InputFile | None = None,
    low: float | None = None,
    high: float | None = None,
    low_quantile: float = 0.25,
    high_quantile: float = 0.75,
    eps: float = 1.0,
    time_limit: float = 60.0,
    mip_rel_gap: float = 1e-4,
    gpr_method: str = "min_disjunction",
) -> xr.Dataset:
    mean, _ = gene_table(expression)
    return imat(
        network,
        mean,
        low=low,
        high=high,
        low_quantile=low_quantile,
        high_quantile=high_quantile,
        eps=eps,
        time_limit=time_limit,
        mip_rel_gap=mip_rel_gap,
        gpr_method=gpr_method,
    )
