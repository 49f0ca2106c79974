"""Polytope sampling: reduced polytopes, rounding, hit-and-run kernels and ``sample_fluxes``."""

from bayesflux.sampling.hit_and_run import HitAndRunInfo, HitAndRunState, build_kernel, init
from bayesflux.sampling.kernel import HitAndRun, PolytopeState
from bayesflux.sampling.polytope import LinearConstraint, Polytope, polytope
from bayesflux.sampling.rounding import (
    Rounding,
    expectation_propagation,
    max_volume_ellipsoid,
    round_polytope,
)
from bayesflux.sampling.sample import sample_fluxes, sample_polytope

__all__ = [
    "HitAndRun",
    "HitAndRunInfo",
    "HitAndRunState",
    "LinearConstraint",
    "Polytope",
    "PolytopeState",
    "Rounding",
    "build_kernel",
    "expectation_propagation",
    "init",
    "max_volume_ellipsoid",
    "polytope",
    "round_polytope",
    "sample_fluxes",
    "sample_polytope",
]
