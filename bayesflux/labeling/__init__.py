"""13C labelling: atom-mapped networks, steady-state simulators, measurements and 13C-MFA fits.

* :mod:`~bayesflux.labeling.network` — reactions written ``"A (abc) -> B (ab) + C (c)"``,
  net/exchange fluxes, free-flux parameterisation;
* :mod:`~bayesflux.labeling.tracers` — tracer mixtures with purities, labelling experiments;
* :mod:`~bayesflux.labeling.emu` — EMU simulator (default; level-wise linear solves);
* :mod:`~bayesflux.labeling.fluxomers` — the isotopomer (fluxomer) balances solved exactly by a
  sparse cascade over cumomer weights, implicit gradients (cross-check of EMU);
* :mod:`~bayesflux.labeling.isotopes` — natural-isotope correction from fragment formulas;
* :mod:`~bayesflux.labeling.measurements` — MS, NMR, flux measurements -> residuals,
  log-likelihood;
* :mod:`~bayesflux.labeling.fit` — weighted least squares, chi-square test, intervals;
* :mod:`~bayesflux.labeling.ftbl` — FTBL reader; :mod:`~bayesflux.labeling.fluxml` — FluxML
  writer and reader;
* :mod:`~bayesflux.labeling.bayflux` — BayFlux's transitions, MID and flux-bounds files, and the
  13C problem and posterior term they pose.
"""

from bayesflux.labeling.bayflux import (
    BayFluxModel,
    GenomeScaleReport,
    bayflux_core,
    bayflux_genome_scale,
    read_bayflux,
    read_flux_bounds,
    read_mass_distribution,
    read_transitions,
)
from bayesflux.labeling.emu import EMUSimulator
from bayesflux.labeling.fit import FitResult, fit, profile_interval
from bayesflux.labeling.fluxml import FluxMLModel, read_fluxml
from bayesflux.labeling.fluxomers import FluxomerSimulator
from bayesflux.labeling.ftbl import FTBLModel, read_ftbl
from bayesflux.labeling.isotopes import correct, correction_matrix, natural_distribution
from bayesflux.labeling.measurements import (
    EnrichmentMeasurement,
    FluxMeasurement,
    LabelingProblem,
    MSMeasurement,
)
from bayesflux.labeling.network import FluxSpace, LabelingNetwork, parse_reaction
from bayesflux.labeling.tracers import Experiment, Species

__all__ = [
    "BayFluxModel",
    "GenomeScaleReport",
    "EMUSimulator",
    "EnrichmentMeasurement",
    "Experiment",
    "FTBLModel",
    "FitResult",
    "FluxMLModel",
    "FluxMeasurement",
    "FluxSpace",
    "FluxomerSimulator",
    "LabelingNetwork",
    "LabelingProblem",
    "MSMeasurement",
    "Species",
    "bayflux_core",
    "bayflux_genome_scale",
    "correct",
    "correction_matrix",
    "fit",
    "natural_distribution",
    "parse_reaction",
    "profile_interval",
    "read_bayflux",
    "read_flux_bounds",
    "read_fluxml",
    "read_ftbl",
    "read_mass_distribution",
    "read_transitions",
]
