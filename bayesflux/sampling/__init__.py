"""Polytope sampling: reduced polytopes, rounding, hit-and-run kernels and ``sample_fluxes``;
reflective HMC and hit-and-run slice sampling of a density on a polytope."""

from bayesflux.sampling.hit_and_run import HitAndRunInfo, HitAndRunState, build_kernel, init
from bayesflux.sampling.kernel import HitAndRun, PolytopeState
from bayesflux.sampling.polytope import LinearConstraint, Polytope, polytope
from bayesflux.sampling.reflective_hmc import sample_hmc
from bayesflux.sampling.rounding import (
    Rounding,
    expectation_propagation,
    max_volume_ellipsoid,
    round_polytope,
)
from bayesflux.sampling.sample import sample_fluxes, sample_polytope
from bayesflux.sampling.slice import sample_slice

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
    "sample_hmc",
    "sample_polytope",
    "sample_slice",
]
