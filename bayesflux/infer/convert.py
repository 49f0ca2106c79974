"""Posterior draws of a NumPyro model as an ArviZ DataTree with reaction coordinates.

Groups, in ArviZ's conventions (``arviz_base.from_dict``): ``posterior`` (every latent and
deterministic site), ``sample_stats`` (ArviZ's names: ``lp``, ``acceptance_rate``, ``n_steps``,
``diverging``, ``step_size``, ``energy``), pointwise ``log_likelihood`` of every observed site,
``observed_data``, ``constant_data`` (the polytopes' flux ranges) and, where asked,
``posterior_predictive`` (``numpyro.infer.Predictive`` at the posterior draws). Polytope sites get
the ``reaction`` dimension; the blocks' plates get the coordinates they record in their sites'
``infer["coords"]`` (measured reactions, gene groups, 13C measurements).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import jax
import numpy as np
import numpyro
import xarray as xr
from numpyro import distributions as dist
from numpyro.infer import MCMC, Predictive

from bayesflux import __version__
from bayesflux.infer.sites import polytope_sites, traces_models

__all__ = ["EXTRA_FIELDS", "build_datatree", "diagnostics", "to_datatree"]

log = logging.getLogger(__name__)

DIAGNOSTIC_CHUNK = 256
"""Posterior entries (e.g. reactions) whose R-hat and ESS :func:`diagnostics` computes at once."""

#: Extra fields to collect (``mcmc.run(key, extra_fields=EXTRA_FIELDS)``) for a full
#: ``sample_stats`` group from :class:`~bayesflux.infer.ReflectiveHMC` or NumPyro's HMC/NUTS.
EXTRA_FIELDS = ("potential_energy", "accept_prob", "num_steps", "energy", "adapt_state.step_size")

_STAT_NAMES = {
    "accept_prob": "acceptance_rate",
    "num_steps": "n_steps",
    "num_reflections": "n_reflections",
    "adapt_state.step_size": "step_size",
}
_BATCH = 1024  # draws per vectorised log-likelihood call


def _trace(model, args, kwargs, sample: dict) -> dict:
    substituted = numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=sample)
    return numpyro.handlers.trace(substituted).get_trace(*args, **kwargs)


def _coords_and_dims(trace: dict) -> tuple[dict, dict]:
    """``reaction`` for polytope sites; plate coordinates the blocks record in ``infer``."""
    coords, dims = {}, {}
    polytopes = polytope_sites(trace)
    reaction_sets = {tuple(p.reactions) for k, p in polytopes.items() if not k.startswith("_")}
    for name, poly in polytopes.items():
        if name.startswith("_"):
            continue
        dim = "reaction" if len(reaction_sets) == 1 else f"{name}_reaction"
        coords[dim] = list(poly.reactions) or [f"x{i}" for i in range(poly.N.shape[0])]
        dims[name] = [dim]
    for name, site in trace.items():
        for dim, values in (site.get("infer") or {}).get("coords", {}).items():
            coords[dim] = list(values)
            dims.setdefault(name, [dim])
    return coords, dims


def _pointwise_log_likelihood(model, samples: dict, args, kwargs, names) -> dict[str, np.ndarray]:
    """Each observed site's (of ``names``) log-density per draw, vectorised in batches."""
    if not names:
        return {}
    shape = next(iter(samples.values())).shape[:2]
    flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in samples.items()}
    total = int(np.prod(shape))
    size = min(total, _BATCH)

    @jax.jit
    def pointwise(batch):
        out = numpyro.infer.log_likelihood(model, batch, *args, parallel=True, **kwargs)
        return {k: out[k] for k in names}

    parts: dict[str, list] = {}
    for start in range(0, total, size):
        rows = np.minimum(np.arange(start, start + size), total - 1)  # the last batch padded
        out = pointwise({k: v[rows] for k, v in flat.items()})
        for k in names:
            parts.setdefault(k, []).append(np.asarray(out[k])[: total - start])
    return {k: np.concatenate(v).reshape(*shape, *v[0].shape[1:]) for k, v in parts.items()}


def _sample_stats(stats: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in stats.items():
        if key == "potential_energy":
            out["lp"] = -np.asarray(value)
        elif not isinstance(value, dict | tuple):
            out[_STAT_NAMES.get(key, key)] = np.asarray(value)
    return out


@traces_models
def build_datatree(
    model: Callable,
    samples: Mapping[str, np.ndarray],
    stats: Mapping[str, np.ndarray] | None = None,
    *,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    posterior_predictive: bool = False,
    seed: int = 0,
    coords: dict | None = None,
    dims: dict | None = None,
    attrs: dict | None = None,
) -> xr.DataTree:
    """The DataTree of draws ``samples`` (constrained site values, ``(chain, draw, ...)``) of
    ``model``, with the sampler's ``stats`` (NumPyro's field names, renamed to ArviZ's).

    Sites whose name starts with ``_`` serve the log-likelihood but stay out of the posterior
    group (e.g. a joint polytope of fluxes and latents whose parts are deterministic sites);
    factors (``numpyro.factor``) enter no group. ``coords`` and ``dims`` add to (and override)
    the ones found in the model."""
    extra_coords, extra_dims = coords, dims
    from arviz_base import from_dict

    model_kwargs = model_kwargs or {}
    samples = {k: np.asarray(v) for k, v in samples.items()}
    first = {k: v[0, 0] for k, v in samples.items()}
    trace = _trace(model, model_args, model_kwargs, first)
    coords, dims = _coords_and_dims(trace)
    coords.update(extra_coords or {})
    dims.update(extra_dims or {})
    observed = {
        k: np.asarray(s["value"])
        for k, s in trace.items()
        if s["type"] == "sample" and s["is_observed"] and not isinstance(s["fn"], dist.Unit)
    }
    groups = {
        "posterior": {k: v for k, v in samples.items() if not k.startswith("_")},
        "sample_stats": _sample_stats(stats or {}),
        "log_likelihood": _pointwise_log_likelihood(
            model, samples, model_args, model_kwargs, list(observed)
        ),
        "observed_data": observed,
    }
    if posterior_predictive:
        chains, draws = next(iter(samples.values())).shape[:2]
        flat = {k: v.reshape(chains * draws, *v.shape[2:]) for k, v in samples.items()}
        predicted = Predictive(model, posterior_samples=flat, return_sites=list(observed))(
            jax.random.key(seed), *model_args, **model_kwargs
        )
        groups["posterior_predictive"] = {
            k: np.asarray(v).reshape(chains, draws, *np.shape(v)[1:]) for k, v in predicted.items()
        }
    constant = {}
    for name, poly in polytope_sites(trace).items():
        if name.startswith("_"):
            continue
        constant[f"{name}_min"], constant[f"{name}_max"] = poly.flux_min, poly.flux_max
        dims[f"{name}_min"] = dims[f"{name}_max"] = dims[name]
    for name, value in observed.items():  # the sd of Gaussian observations, for plots
        fn = trace[name]["fn"]
        while isinstance(fn, dist.ExpandedDistribution | dist.MaskedDistribution):
            fn = fn.base_dist
        if isinstance(fn, dist.Normal):
            constant[f"{name}_sd"] = np.broadcast_to(np.asarray(fn.scale), np.shape(value))
            if name in dims:
                dims[f"{name}_sd"] = dims[name]
    if constant:
        groups["constant_data"] = constant
    tree = from_dict(groups, coords=coords, dims=dims)
    ids = sorted({p.id for p in polytope_sites(trace).values()})
    tree.attrs.update(
        {
            "network": ",".join(ids) or "none",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "bayesflux_version": __version__,
            **(attrs or {}),
        }
    )
    return tree


def to_datatree(
    mcmc: MCMC,
    *,
    model_args: tuple | None = None,
    model_kwargs: dict | None = None,
    posterior_predictive: bool = False,
    seed: int = 0,
) -> xr.DataTree:
    """``mcmc`` (after ``run``) as a DataTree that ``az.summary``, ``az.loo`` and ArviZ's plots
    read unchanged (:func:`build_datatree`); the model's arguments default to the last run's."""
    return build_datatree(
        mcmc.sampler.model,
        mcmc.get_samples(group_by_chain=True),
        mcmc.get_extra_fields(group_by_chain=True),
        model_args=getattr(mcmc, "_args", ()) if model_args is None else model_args,
        model_kwargs=getattr(mcmc, "_kwargs", {}) if model_kwargs is None else model_kwargs,
        posterior_predictive=posterior_predictive,
        seed=seed,
        attrs={
            "method": f"flux posterior ({type(mcmc.sampler).__name__})",
            "num_warmup": int(mcmc.num_warmup),
            "num_samples": int(mcmc.num_samples),
            "num_chains": int(mcmc.num_chains),
        },
    )


def diagnostics(
    tree: xr.DataTree | Mapping[str, np.ndarray], *, var_names: list[str] | None = None
) -> xr.Dataset:
    """Max R-hat and min bulk / tail ESS over the entries of each posterior variable that move
    (rank-normalised split R-hat, ``arviz_stats``), logged and returned. ``tree`` is a DataTree
    or its posterior's arrays ``{name: (chain, draw, ...)}``. Computed over slices of at most
    :data:`DIAGNOSTIC_CHUNK` entries, so that the ranks' temporary copies stay small beside the
    draws of a genome-scale run."""
    from arviz_stats.base import array_stats
    from arviz_stats.validate import validate_ci_prob

    tail_prob = validate_ci_prob(None)  # ArviZ's default: the tails of its credible interval
    axes = {"chain_axis": 0, "draw_axis": 1}
    if isinstance(tree, xr.DataTree):
        post = tree["posterior"]
        arrays = {k: post[k].transpose("chain", "draw", ...).values for k in post.data_vars}
    else:
        arrays = dict(tree)
    out = {}
    for name in var_names or list(arrays):
        values = np.asarray(arrays[name])
        flat = values.reshape(values.shape[0], values.shape[1], -1)  # a view where contiguous
        worst = {"max_rhat": -np.inf, "min_ess_bulk": np.inf, "min_ess_tail": np.inf}
        for start in range(0, flat.shape[2], DIAGNOSTIC_CHUNK):
            part = np.array(flat[..., start : start + DIAGNOSTIC_CHUNK], dtype=float)
            spread = part.std(axis=(0, 1))
            part[..., spread <= 1e-12 * (1 + np.abs(part.mean(axis=(0, 1))))] = np.nan
            with warnings.catch_warnings():  # slices with nothing moving
                warnings.simplefilter("ignore", RuntimeWarning)
                rhat = np.nanmax(array_stats.rhat(part, **axes), initial=-np.inf)
                worst["max_rhat"] = max(worst["max_rhat"], rhat)
                bulk = array_stats.ess(part, method="bulk", **axes)
                tail = array_stats.ess(part, method="tail", prob=tail_prob, **axes)
                for key, ess in (("min_ess_bulk", bulk), ("min_ess_tail", tail)):
                    worst[key] = min(worst[key], np.nanmin(ess, initial=np.inf))
        for key, value in worst.items():
            out[f"{name}_{key}"] = float(value) if np.isfinite(value) else np.nan
    log.debug("diagnostics: %s", ", ".join(f"{k}={v:.4g}" for k, v in out.items()))
    return xr.Dataset({k: ((), v) for k, v in out.items()})
