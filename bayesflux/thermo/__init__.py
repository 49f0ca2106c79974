"""Thermodynamics: the TSM (ΔrG = ΔrG0 + RT Sᵀ ln c), thermodynamic FVA, sign-pattern feasibility
(concentration polytope B), infeasible loops and sectors, and samplers of the thermodynamically
feasible flux space (seed 002; DESIGN.md).

The samplers (:func:`sample_orthants`, :func:`parallel_tempering`) are imported on first use.
"""

from typing import Any

from bayesflux.thermo.data import PHYSIOLOGICAL_LNC, R_GAS, ThermoDataError, ThermoModel
from bayesflux.thermo.flux_force import exchange_lower_bound, least_conservative_bounds
from bayesflux.thermo.loops import (
    Loop,
    Sector,
    SectorPatterns,
    SignFeasibility,
    enumerate_loops,
    find_loop,
    sector_patterns,
    sectors,
)
from bayesflux.thermo.polytope_b import (
    ConcentrationPolytope,
    Violation,
    check_sign_pattern,
    sign_pattern,
)
from bayesflux.thermo.sources import MEMBRANE_REACTIONS, ecoli_core, niebel_tsm
from bayesflux.thermo.space import strata
from bayesflux.thermo.tfva import box_volume_reduction, fit_drg0, tfba, thermodynamic_fva

__all__ = [
    "MEMBRANE_REACTIONS",
    "PHYSIOLOGICAL_LNC",
    "R_GAS",
    "ConcentrationPolytope",
    "Loop",
    "Sector",
    "SectorPatterns",
    "SignFeasibility",
    "ThermoDataError",
    "ThermoModel",
    "Violation",
    "box_volume_reduction",
    "check_sign_pattern",
    "ecoli_core",
    "enumerate_loops",
    "exchange_lower_bound",
    "find_loop",
    "fit_drg0",
    "least_conservative_bounds",
    "niebel_tsm",
    "parallel_tempering",
    "sample_orthants",
    "sector_patterns",
    "sectors",
    "sign_pattern",
    "strata",
    "tfba",
    "thermodynamic_fva",
]


def __getattr__(name: str) -> Any:
    if name == "sample_orthants":
        from bayesflux.thermo.orthants import sample_orthants

        return sample_orthants
    if name == "parallel_tempering":
        from bayesflux.thermo.tempering import parallel_tempering

        return parallel_tempering
    raise AttributeError(f"module 'bayesflux.thermo' has no attribute {name!r}")
