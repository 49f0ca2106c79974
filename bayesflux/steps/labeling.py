"""Pipeline step of 13C-MFA: fit an FTBL model and report fluxes, intervals and chi-square."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesflux.config import InputFile, register_step
from bayesflux.errors import ConfigError
from bayesflux.labeling import fit, read_ftbl
from bayesflux.network import Network


def _mfa_summary(result: xr.Dataset) -> str:
    a = result.attrs
    verdict = "accepted" if a["passed"] else "rejected"
    return (
        f"SSR {a['ssr']:.4g} on {a['dof']} dof, 95% range [{a['chi2_lower']:.4g}, "
        f"{a['chi2_upper']:.4g}]: {verdict}; {result.sizes['reaction']} net fluxes"
        + (
            f"; {a['n_best']} of {a['n_starts']} starts reached the best SSR"
            + ("" if a["converged"] else " (NOT converged)")
            if "n_best" in a
            else ""
        )
    )


@register_step("mfa_fit", summarize=_mfa_summary)
def mfa_fit_step(
    network: Network,
    *,
    previous,
    model: InputFile,
    n_starts: int = 8,
    seed: int = 0,
    xch_max: float = 100.0,
    profile: list[str] | None = None,
) -> xr.Dataset:
    """13C-MFA of the FTBL file ``model`` (the pipeline's stoichiometric network is not used).

    ``net_lower``/``net_upper`` are profile-likelihood 95% intervals (see
    :func:`bayesflux.labeling.fit`); ``profile`` lists reactions whose interval is also
    reported as ``net_profile_lower``/``net_profile_upper`` (NaN elsewhere).
    """
    problem = read_ftbl(model).problem(xch_max=xch_max)
    result = fit(problem, n_starts=n_starts, rng=seed)
    ds = result.to_dataset(problem)
    if profile:
        unknown = sorted(set(profile) - set(problem.network.reaction_ids))
        if unknown:
            raise ConfigError(f"mfa_fit: profile names unknown reactions {unknown}")
        lo = np.full(ds.sizes["reaction"], np.nan)
        hi = lo.copy()
        for r in profile:
            j = problem.network.reaction_ids.index(r)
            lo[j], hi[j] = result.net_ci[j]  # profile likelihood, computed by fit
        ds["net_profile_lower"] = ("reaction", lo)
        ds["net_profile_upper"] = ("reaction", hi)
    ds.attrs["model"] = str(model)
    return ds
