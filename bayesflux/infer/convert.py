"""A NumPyro MCMC run as an ArviZ DataTree with reaction coordinates.

ArviZ's own converter (``arviz_base.from_numpyro``) does the work: ``posterior``,
``sample_stats`` (ArviZ's names: ``lp``, ``acceptance_rate``, ``n_steps``, ``diverging``,
``step_size``, ``energy``), pointwise ``log_likelihood`` of every observed site,
``observed_data`` and, where asked, ``posterior_predictive``. bayesflux adds what it knows: the
``reaction`` coordinate of polytope sites, the coordinates of the blocks' plates (measured
reactions, gene groups, 13C measurements), the polytopes' flux ranges as ``constant_data``, and
provenance in the attrs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import jax
import numpy as np
import numpyro
import xarray as xr
from numpyro.infer import MCMC, Predictive

from bayesflux import __version__
from bayesflux.infer.reflective_hmc import polytope_sites

__all__ = ["EXTRA_FIELDS", "diagnostics", "to_datatree"]

log = logging.getLogger(__name__)

#: Extra fields to collect (``mcmc.run(key, extra_fields=EXTRA_FIELDS)``) for a full
#: ``sample_stats`` group from :class:`~bayesflux.infer.ReflectiveHMC` or NumPyro's HMC/NUTS.
EXTRA_FIELDS = ("potential_energy", "accept_prob", "num_steps", "energy", "adapt_state.step_size")


def _trace(model, args, kwargs, sample: dict) -> dict:
    substituted = numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=sample)
    return numpyro.handlers.trace(substituted).get_trace(*args, **kwargs)


def _coords_and_dims(trace: dict) -> tuple[dict, dict]:
    """``reaction`` for polytope sites; plate coordinates the blocks record in ``infer``."""
    coords, dims = {}, {}
    polytopes = polytope_sites(trace)
    reaction_sets = {tuple(p.reactions) for p in polytopes.values()}
    for name, poly in polytopes.items():
        dim = "reaction" if len(reaction_sets) == 1 else f"{name}_reaction"
        names = tuple(poly.reactions) or tuple(f"x{i}" for i in range(poly.N.shape[0]))
        coords[dim] = list(names)
        dims[name] = [dim]
    for name, site in trace.items():
        for dim, values in site.get("infer", {}).get("coords", {}).items():
            coords[dim] = list(values)
            dims.setdefault(name, [dim])
    return coords, dims


def to_datatree(
    mcmc: MCMC,
    *,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    posterior_predictive: bool = False,
    seed: int = 0,
) -> xr.DataTree:
    """``mcmc`` (after ``run``) as a DataTree that ``az.summary``, ``az.loo`` and ArviZ's plots
    read unchanged; ``posterior_predictive=True`` adds draws of every observed site
    (``numpyro.infer.Predictive`` at the posterior draws)."""
    from arviz_base import from_numpyro

    model_kwargs = model_kwargs or {}
    model = mcmc.sampler.model
    samples = mcmc.get_samples(group_by_chain=True)
    first = {k: np.asarray(v)[0, 0] for k, v in samples.items()}
    trace = _trace(model, model_args, model_kwargs, first)
    coords, dims = _coords_and_dims(trace)
    predictive = None
    if posterior_predictive:
        flat = mcmc.get_samples()
        predictive = Predictive(model, posterior_samples=flat)(
            jax.random.key(seed), *model_args, **model_kwargs
        )
        chains = next(iter(samples.values())).shape[0]
        observed = [k for k, s in trace.items() if s["type"] == "sample" and s["is_observed"]]
        predictive = {
            k: np.asarray(v).reshape(chains, -1, *np.shape(v)[1:])
            for k, v in predictive.items()
            if k in observed
        }
    tree = from_numpyro(
        mcmc,
        log_likelihood=True,
        posterior_predictive=predictive,
        coords=coords,
        dims=dims,
    )
    constant = {}
    for name, poly in polytope_sites(trace).items():
        dim = dims[name][0]
        constant[f"{name}_min"] = xr.DataArray(poly.flux_min, dims=dim, coords={dim: coords[dim]})
        constant[f"{name}_max"] = xr.DataArray(poly.flux_max, dims=dim, coords={dim: coords[dim]})
    if constant:
        tree["constant_data"] = xr.DataTree(xr.Dataset(constant))
    sampler = type(mcmc.sampler).__name__
    ids = sorted({p.id for p in polytope_sites(trace).values()})
    tree.attrs.update(
        method=f"flux posterior ({sampler})",
        network=",".join(ids) or "none",
        num_warmup=int(mcmc.num_warmup),
        num_samples=int(mcmc.num_samples),
        num_chains=int(mcmc.num_chains),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        bayesflux_version=__version__,
    )
    return tree


def diagnostics(tree: xr.DataTree, *, var_names: list[str] | None = None) -> xr.Dataset:
    """Max R-hat and min bulk / tail ESS over the posterior variables that move, per variable
    (rank-normalised split R-hat, ``arviz_stats``), logged and returned."""
    import arviz_stats

    post = tree["posterior"].to_dataset()
    out = {}
    for name in var_names or list(post.data_vars):
        x = post[name]
        spread = x.std(("chain", "draw"))
        moving = x.where(spread > 1e-12 * (1 + abs(x.mean(("chain", "draw")))))
        rhat = arviz_stats.rhat(moving)
        bulk = arviz_stats.ess(moving, method="bulk")
        tail = arviz_stats.ess(moving, method="tail")
        out[f"{name}_max_rhat"] = float(np.nanmax(np.asarray(rhat)))
        out[f"{name}_min_ess_bulk"] = float(np.nanmin(np.asarray(bulk)))
        out[f"{name}_min_ess_tail"] = float(np.nanmin(np.asarray(tail)))
    ds = xr.Dataset({k: ((), v) for k, v in out.items()})
    log.info("diagnostics: %s", ", ".join(f"{k}={v:.4g}" for k, v in out.items()))
    return ds
