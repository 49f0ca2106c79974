"""Bayesian flux models: a uniform prior on the flux polytope, latent variables and likelihoods.

* :mod:`~bayesflux.models.posterior` — :class:`FluxPosterior` (joint polytope of fluxes and
  latents, hit-and-run Metropolis, ArviZ DataTree);
* :mod:`~bayesflux.models.priors` — :class:`Parsimony`, the exponential prior on total flux;
* :mod:`~bayesflux.models.terms` — likelihood terms: measured fluxes, FALCON's Laplace expression
  likelihood, E-Flux capacities, 13C MIDs with flux-force bounds;
* :mod:`~bayesflux.models.thermodynamics` — the second law on ``(v, ln c)`` and the metabolome,
  sampled by feasible-chord hit-and-run;
* :mod:`~bayesflux.models.enzyme_posterior` — fluxes and log-normal kcats given proteomics;
* :mod:`~bayesflux.models.scoring` — seed 002's scoring of net-flux samples by 13C fits;
* :mod:`~bayesflux.models.calibration` — simulation-based calibration of a posterior.
"""

from bayesflux.models.enzyme_posterior import (
    EnzymePosterior,
    SimulatedEnzymeData,
    enzyme_posterior,
    simulate_enzyme_data,
)
from bayesflux.models.expression_posterior import FluxScale, expression_posterior
from bayesflux.models.posterior import Coupling, FluxPosterior, Latent, joint_polytope
from bayesflux.models.priors import Parsimony
from bayesflux.models.terms import (
    XCH_PRIORS,
    ExchangeLatent,
    ExpressionCapacity,
    ExpressionLaplace,
    FluxObservations,
    Labeling13C,
    exchange_latent,
)
from bayesflux.models.thermodynamics import (
    SimulatedThermoData,
    Thermodynamics,
    curvature_rounding,
    sample_thermodynamic,
    simulate_thermodynamic_data,
)

__all__ = [
    "XCH_PRIORS",
    "Coupling",
    "EnzymePosterior",
    "ExchangeLatent",
    "ExpressionCapacity",
    "ExpressionLaplace",
    "FluxObservations",
    "FluxPosterior",
    "FluxScale",
    "Labeling13C",
    "Latent",
    "Parsimony",
    "SimulatedEnzymeData",
    "SimulatedThermoData",
    "Thermodynamics",
    "enzyme_posterior",
    "curvature_rounding",
    "exchange_latent",
    "expression_posterior",
    "joint_polytope",
    "sample_thermodynamic",
    "simulate_enzyme_data",
    "simulate_thermodynamic_data",
]
