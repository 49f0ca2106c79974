"""Priors on the fluxes beyond the uniform one: parsimony as a prior, not a hard rule.

A uniform prior on a genome-scale polytope puts nearly all its mass where internal cycles carry
fluxes up to the bounds (±1000): on Yeast 5.21 the expression posterior then settles there,
thousands of nats below FALCON's fit (issue 15). :class:`Parsimony` is the exponential prior on
total flux,

    p(v) ∝ exp(-Σ_j |v_j| / τ)   on the polytope P,

which charges every unit of flux through a cycle. Where ``P`` is a cone near 0 (no forced flux:
every ``lb <= 0 <= ub``) and the likelihood does not depend on the flux scale (FALCON's with the
abundance per flux integrated out, to within a factor ``1/c`` for a uniform scale prior), ``τ``
is a unit only: ``v = τ u`` gives ``p(u) ∝ exp(-Σ|u_j|) L(u)``, the same posterior of flux
ratios for every ``τ`` small enough that no bound of ``P`` other than 0 is reached. Integrating
the scale ``c`` out of ``v = c u``, the prior on a shape ``u`` (say, normalised to unit glucose
uptake) is ``∝ (Σ_j |u_j|)^-d`` on a ``d``-dimensional polytope: a parameter-free parsimony.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.sparse as sp

from bayesflux.errors import ConfigError, SolverError
from bayesflux.sampling.polytope import Polytope

__all__ = ["Parsimony"]

_MOVING = 1e-9  # a reaction whose FVA range lies within ±this carries no flux
_ORIGIN_TOL = 1e-5  # v = 0 within this of the polytope counts as in it (FVA's LP tolerances)


def least_total_flux(polytope: Polytope) -> float:
    """``min Σ_j |v_j|`` over the polytope (``v = v0 + N z``, ``A z <= b``), by LP with
    ``t_j >= ±v_j``."""
    n, d = polytope.N.shape
    origin = np.linalg.lstsq(polytope.N, -polytope.v0, rcond=None)[0]
    if np.abs(polytope.N @ origin + polytope.v0).max() <= _ORIGIN_TOL and np.all(
        polytope.A @ origin <= polytope.b + _ORIGIN_TOL
    ):
        return 0.0  # no forced flux: v = 0 is in the polytope, to the LP tolerances behind it
    eye = sp.eye_array(n)
    N = sp.csr_array(polytope.N)
    res = scipy.optimize.linprog(
        np.concatenate([np.zeros(d), np.ones(n)]),
        A_ub=sp.vstack(
            [
                sp.hstack([sp.csr_array(polytope.A), sp.csr_array((polytope.A.shape[0], n))]),
                sp.hstack([N, -eye]),
                sp.hstack([-N, -eye]),
            ]
        ),
        b_ub=np.concatenate([polytope.b, -polytope.v0, polytope.v0]),
        bounds=[(None, None)] * d + [(0, None)] * n,
        method="highs",
    )
    if res.status != 0:
        raise SolverError(f"least total flux of {polytope.id!r}: {res.message}")
    return float(res.fun)


class Parsimony:
    """The exponential prior ``p(v) ∝ exp(-Σ_j w_j |v_j| / τ)`` on the flux polytope.

    Parameters
    ----------
    scale
        ``τ``, in flux units: the prior's mean total flux is about ``d τ`` on a ``d``-dimensional
        polytope near 0.
    weights
        ``w_j`` per reaction (default 1): 0 leaves a reaction out of the total (e.g. exchanges).
    """

    def __init__(self, scale: float, weights: np.ndarray | None = None) -> None:
        scale = float(scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ConfigError(f"the parsimony prior's scale must be finite and > 0, got {scale}")
        if weights is not None:
            weights = np.asarray(weights, dtype=float)
            if weights.ndim != 1 or not np.all(np.isfinite(weights) & (weights >= 0)):
                raise ConfigError("parsimony weights must be a vector of finite values >= 0")
        self.scale = scale
        self.weights = weights

    @classmethod
    def for_polytope(cls, polytope: Polytope, typical_total: float | None = None) -> Parsimony:
        """``τ = typical_total / d``: the prior's total flux near ``typical_total``. By default
        the larger of the least total flux the polytope allows (``min Σ|v_j|`` by LP: a forced
        flux such as ATP maintenance makes it positive, and the prior then charges only a few
        times that again) and the median FVA reach ``max(|min v_j|, |max v_j|)`` of the
        reactions that can carry flux (one typical flux spread over the network: small beside
        the bounds, so where the polytope is a cone near 0 the posterior stays there; see the
        module's note)."""
        if typical_total is None:
            reach = np.maximum(np.abs(polytope.flux_min), np.abs(polytope.flux_max))
            moving = reach[reach > _MOVING]
            if moving.size == 0:
                raise ConfigError(f"no reaction of {polytope.id!r} can carry flux")
            typical_total = max(float(np.median(moving)), least_total_flux(polytope))
        return cls(typical_total / max(polytope.dim, 1))

    def log_density(self, v: jax.Array) -> jax.Array:
        """``-Σ_j w_j |v_j| / τ`` (unnormalised) of fluxes ``v (..., n)``."""
        size = jnp.abs(v) if self.weights is None else jnp.abs(v) * self.weights
        return -jnp.sum(size, axis=-1) / self.scale

    def __repr__(self) -> str:
        return f"Parsimony(scale={self.scale:.4g})"
