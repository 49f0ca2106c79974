"""Polytope sampling: reduced polytopes, rounding, the pure hit-and-run and slice moves that the
kernels of :mod:`bayesflux.infer` run, and ``sample_fluxes``."""

from bayesflux.sampling.hit_and_run import HitAndRunInfo, HitAndRunState, build_kernel, init
from bayesflux.sampling.polytope import LinearConstraint, Polytope, polytope
from bayesflux.sampling.rounding import (
    Rounding,
    covariance_rounding,
    expectation_propagation,
    max_volume_ellipsoid,
    round_polytope,
)
from bayesflux.sampling.sample import sample_fluxes

__all__ = [
    "HitAndRunInfo",
    "HitAndRunState",
    "LinearConstraint",
    "Polytope",
    "Rounding",
    "build_kernel",
    "covariance_rounding",
    "expectation_propagation",
    "init",
    "max_volume_ellipsoid",
    "polytope",
    "round_polytope",
    "sample_fluxes",
]
