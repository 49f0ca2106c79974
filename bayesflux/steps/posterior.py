"""Pipeline step ``posterior``: the Bayesian flux posterior joining the data a config names.

Every data table is optional; with none the posterior is the uniform prior on the polytope::

    [[step]]
    kind = "posterior"
    fluxes = { EX_glc__D_e = [-10.0, 0.5] }      # measured fluxes: value, sd
    expression = "genes.tsv"                     # gene mean [std] table: FALCON's Laplace term
    expression_model = "laplace"                 # or "capacity" (E-Flux with latent alpha)
    prior = "uniform"                            # or "parsimony": exp(-sum|v| / tau)
    start = "mode"                               # laplace + parsimony: around the MILP mode
    units = "abundance"                          # laplace + parsimony: fluxes in abundance units
    scale_bounds = [1e-2, 1e6]                   # laplace: range of k (default: from data)
    labeling = "model.ftbl"                      # 13C data; its reactions named as the network's
    thermo = "ecoli_core"                        # second law on (v, ln c): feasible-chord sampler
    metabolome = { atp_c = [0.005, 0.2] }        # concentration (M), sd of ln c; needs thermo
    sampler = "hmc"                              # or "metropolis" (hit-and-run), "slice"
    tune_rounds = 2                              # hmc: pilot runs that learn the whitening
    num_chains = 4
    num_draws = 1000
    checkpoint = "results/posterior_ckpt"        # resume an interrupted run (hmc, metropolis)

``prior = "parsimony"`` (:class:`bayesflux.models.Parsimony`) keeps genome-scale posteriors
out of the internal cycles that fill a uniform prior's volume; with FALCON's likelihood it builds
the posterior around its mode (:func:`bayesflux.models.expression_posterior`: ``k``'s range
derived from the data, chains started dispersed around the mode unless ``start =
"dispersed"``). There ``units = "abundance"`` (the default where the expression is the only
data) samples the fluxes in abundance units, ``w = k v``, with the prior on ``w`` (see
:mod:`bayesflux.models.expression_posterior`: a prior on ``v`` with ``k`` integrated out weighs
flux shapes by a power of the polytope's dimension); ``units = "flux"`` (the default beside other
data, which are in flux units) keeps ``v``.

``sampler = "hmc"`` (default): Hamiltonian Monte Carlo reflecting off the polytope's facets with
adapted steps and mass matrix (:class:`bayesflux.infer.ReflectiveHMC`); hit-and-run Metropolis
(``"metropolis"``; ``kernel``, ``thinning``, ``block_size`` are its options) does
not converge on the bundled example's expression likelihood (benchmarks/bench_joint.py). With
``thermo`` the feasible-chord sampler of the second law runs instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.labeling import read_ftbl
from bayesflux.models import (
    ExpressionCapacity,
    ExpressionLaplace,
    FluxObservations,
    FluxPosterior,
    Labeling13C,
    Parsimony,
    Thermodynamics,
    expression_posterior,
    sample_thermodynamic,
)
from bayesflux.network import Network
from bayesflux.pipeline import InputFile, OutputDir, register_step
from bayesflux.sampling.polytope import polytope
from bayesflux.steps.expression import gene_table
from bayesflux.steps.sampling import ConstraintTable, linear_constraints
from bayesflux.steps.thermo import thermo_model

log = logging.getLogger(__name__)


def _posterior_summary(result: xr.DataTree) -> str:
    import arviz_stats

    post = result["posterior"]
    flux = post["flux"]
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws: R-hat NaN, by design
        rhat = arviz_stats.rhat(post.to_dataset(), method="rank")
    ess = arviz_stats.ess(post.to_dataset(), method="bulk")
    moving = flux.std(("chain", "draw")) > 1e-9
    worst_rhat = float(rhat["flux"].where(moving).max())
    least_ess = float(ess["flux"].where(moving).min())
    stats = result["sample_stats"]
    moves = (
        f"mean acceptance {float(stats['acceptance_rate'].mean()):.2f}"
        if "acceptance_rate" in stats
        else f"{float(stats['n_evals'].mean()):.1f} density evaluations per move"
    )
    return (
        f"{flux.sizes['chain']} chains x {flux.sizes['draw']} draws; terms: "
        f"{result.attrs.get('terms')}; max R-hat {worst_rhat:.3f}, min bulk ESS {least_ess:.0f}, "
        f"{moves}"
    )


@register_step("posterior", summarize=_posterior_summary)
def posterior_step(
    network: Network,
    *,
    previous,
    fluxes: dict[str, tuple[float, float]] | None = None,
    expression: InputFile | None = None,
    expression_model: Literal["laplace", "capacity"] = "laplace",
    labeling: InputFile | None = None,
    labeling_xch_max: float = 100.0,
    labeling_xch_prior: str = "uniform-fraction",
    thermo: str | None = None,
    metabolome: dict[str, tuple[float, float]] | None = None,
    constraints: list[ConstraintTable] | None = None,
    prior: str = "uniform",
    start: str | None = None,
    units: Literal["abundance", "flux"] | None = None,
    scale_bounds: list[float] | None = None,
    sampler: Literal["hmc", "metropolis", "slice"] = "hmc",
    num_chains: int = 4,
    num_draws: int = 1000,
    num_warmup: int | None = None,
    thinning: int | None = None,
    kernel: Literal["coordinate", "random"] = "coordinate",
    rounding: Literal["ep", "mve", "none"] = "ep",
    tune_rounds: int = 0,
    tune_draws: int = 200,
    seed: int = 0,
    block_size: int = 100,
    checkpoint: OutputDir | None = None,
    progress: bool = True,
) -> xr.DataTree:
    if prior not in ("uniform", "parsimony"):
        raise ConfigError(f"posterior: prior must be 'uniform' or 'parsimony', not {prior!r}")
    if start not in (None, "mode", "dispersed"):
        raise ConfigError(f"posterior: start must be 'mode' or 'dispersed', not {start!r}")
    if scale_bounds is not None and len(scale_bounds) != 2:
        raise ConfigError("posterior: scale_bounds must be [lower, upper]")
    terms = []
    laplace = None
    if fluxes:
        bad = [r for r, pair in fluxes.items() if len(pair) != 2]
        if bad:
            raise ConfigError(f"posterior: fluxes of {bad} must be [value, sd]")
        terms.append(FluxObservations(network, {r: tuple(p) for r, p in fluxes.items()}))
    if expression:
        mean, std = gene_table(expression)
        if expression_model == "laplace":
            laplace = (mean, std)
        elif expression_model == "capacity":
            terms.append(ExpressionCapacity(network, mean))
        else:
            raise ConfigError(
                f"posterior: expression_model must be 'laplace' or 'capacity', not "
                f"{expression_model!r}"
            )
    if labeling:
        if not Path(labeling).is_file():
            raise ConfigError(f"posterior: labelling file {labeling} not found")
        problem = read_ftbl(labeling).problem(xch_max=labeling_xch_max)
        terms.append(Labeling13C(problem, network, xch_prior=labeling_xch_prior))
    if metabolome and not thermo:
        raise ConfigError("posterior: a metabolome needs thermodynamic data ('thermo')")
    second_law = None
    if thermo:
        bad = [m for m, pair in (metabolome or {}).items() if len(pair) != 2]
        if bad:
            raise ConfigError(f"posterior: metabolome entries of {bad} must be [concentration, sd]")
        second_law = Thermodynamics(
            thermo_model(network, thermo, None),
            metabolome={m: (float(c), float(sd)) for m, (c, sd) in (metabolome or {}).items()},
        )
        terms.append(second_law)
    linear = linear_constraints(constraints)
    mode = None
    if units not in (None, "abundance", "flux"):
        raise ConfigError(f"posterior: units must be 'abundance' or 'flux', not {units!r}")
    if units == "abundance" and terms:
        raise ConfigError(
            "posterior: units = 'abundance' needs the expression as the only data (the others "
            "are in flux units); use units = 'flux'"
        )
    if laplace is not None and prior == "parsimony" and scale_bounds is None:
        posterior, mode = expression_posterior(
            network,
            *laplace,
            terms=terms,
            constraints=linear,
            units=units or ("flux" if terms else "abundance"),
        )
    else:
        if laplace is not None:
            bounds = None if scale_bounds is None else tuple(map(float, scale_bounds))
            terms.insert(0, ExpressionLaplace(network, *laplace, scale_bounds=bounds))
        flux_prior = None
        if prior == "parsimony":
            flux_prior = Parsimony.for_polytope(polytope(network, constraints=linear))
        posterior = FluxPosterior(network, terms, constraints=linear, flux_prior=flux_prior)
    if start == "mode" and mode is None:
        raise ConfigError(
            "posterior: start = 'mode' needs the laplace expression model with prior = "
            "'parsimony' and no scale_bounds (the mode sets k's range)"
        )
    first = mode["start"].values if mode is not None and start != "dispersed" else None
    if second_law is not None:  # exact feasible-chord hit-and-run on (v, ln c)
        result = sample_thermodynamic(
            posterior,
            second_law,
            num_chains=num_chains,
            num_draws=num_draws,
            num_warmup=num_warmup,
            thinning=thinning,
            seed=seed,
            checkpoint=None if checkpoint is None else Path(checkpoint),
            progress=progress,
        )
    else:
        if sampler not in ("hmc", "metropolis", "slice"):
            raise ConfigError(
                f"posterior: sampler must be 'hmc', 'metropolis' or 'slice', not {sampler!r}"
            )
        whiten = first is not None and sampler == "hmc"
        if tune_rounds and sampler != "hmc":
            raise ConfigError("posterior: tune_rounds needs sampler = 'hmc'")
        result = posterior.sample(
            method=sampler,
            num_chains=num_chains,
            num_draws=num_draws,
            num_warmup=num_warmup,
            thinning=thinning,
            kernel=kernel,
            rounding=rounding,
            seed=seed,
            block_size=block_size,
            checkpoint=None if checkpoint is None else Path(checkpoint),
            progress=progress,
            start=first,
            # whitened by the mode's guessed scales (see expression_posterior)
            scale=mode["scale"].values if whiten else None,
            scale_direction=mode["direction"].values if whiten else None,
            tune_rounds=tune_rounds,
            tune_draws=tune_draws,
        )
    if fluxes:
        check_measurements(result, fluxes, seed=seed)
    return result


#: posterior predictive p-value of the measurements' chi-square below which the fit rejects them
PPP_THRESHOLD = 0.01


def check_measurements(
    result: xr.DataTree, fluxes: dict[str, tuple[float, float]], *, seed: int = 0
) -> float:
    """Posterior predictive check of measured fluxes (Gelman, Meng & Stern 1996).

    ``T(y, v) = sum_i ((y_i - v_i) / sd_i)^2`` of the data against ``T(y_rep, v)`` of replicated
    data ``y_rep ~ N(v, sd)`` at each draw ``v``; ``p = P(T(y_rep, v) >= T(y, v))`` is stored as
    ``measurement_ppp`` in ``result.attrs`` and returned. Below :data:`PPP_THRESHOLD` the fit
    rejects the data: a warning names the measurements furthest from the posterior mean.
    """
    names = list(fluxes)
    y = np.array([float(fluxes[r][0]) for r in names])
    sd = np.array([float(fluxes[r][1]) for r in names])
    v = result["posterior"]["flux"].sel(reaction=names).values.reshape(-1, len(names))
    replicated = v + sd * np.random.default_rng(seed).standard_normal(v.shape)
    observed = (((y - v) / sd) ** 2).sum(axis=1)
    p = float(np.mean((((replicated - v) / sd) ** 2).sum(axis=1) >= observed))
    result.attrs["measurement_ppp"] = p
    if p < PPP_THRESHOLD:
        mean = v.mean(axis=0)
        z = np.abs(mean - y) / sd
        worst = [i for i in np.argsort(-z) if z[i] > 2][:5] or [int(np.argmax(z))]
        named = "; ".join(
            f"{names[i]} measured {y[i]:.4g} +- {sd[i]:.3g}, posterior mean {mean[i]:.4g} "
            f"({z[i]:.1f} sd away)"
            for i in worst
        )
        log.warning(
            "posterior: the fit rejects the measured fluxes (posterior predictive p = %.3g < "
            "%s for their chi-square): %s; check the measurements and the model's bounds",
            p, PPP_THRESHOLD, named,
        )  # fmt: skip
    return p
