"""Hit-and-run on a flux polytope as a :class:`numpyro.infer.mcmc.MCMCKernel`.

A thin class around the pure kernel of :mod:`bayesflux.sampling.hit_and_run`: the RNG key lives in
the state, the position is the rounded coordinate ``y``, and ``postprocess_fn`` maps it to fluxes
``v = v0 + N (center + L y)``. Under ``chain_method="vectorized"`` numpyro hands the kernel a batch
of keys and a batched state; the kernel then vmaps itself (as numpyro's ``SA`` does).

For a concentrated target (a 13C posterior) the kernel takes a Gaussian ``step_size`` along the
chord, adapted during warm-up by :func:`~bayesflux.sampling.sample.sample_polytope`, and a
rounding from the target's covariance (:func:`covariance_rounding`, e.g. from a linearised fit),
so that the axes of ``y`` are the posterior's principal directions and one step size suits all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.mcmc import MCMCKernel
from numpyro.util import is_prng_key

from bayesflux.errors import ConfigError
from bayesflux.sampling import hit_and_run
from bayesflux.sampling.hit_and_run import Direction
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding, round_polytope

__all__ = ["PolytopeState", "HitAndRun", "covariance_rounding"]


def covariance_rounding(
    poly: Polytope,
    cov: np.ndarray,
    *,
    center: np.ndarray | None = None,
    shrink: float = 0.99,
) -> Rounding:
    """A :class:`Rounding` ``z = center + L y`` with ``L = chol(cov)`` for a target's covariance.

    Parameters
    ----------
    poly
        The polytope (reduced coordinates ``z``).
    cov
        ``(d, d)`` covariance of the target in reduced coordinates, e.g. the linearised posterior
        ``(Σ_prior^-1 + Tᵀ JᵀJ T)^-1`` of a least-squares fit, or the covariance of warm-up draws.
    center
        Where chains start (``y = 0``), e.g. the best fit. A point on or outside the boundary is
        moved toward the Chebyshev centre ``c``: ``c + shrink (center - c)``, which is strictly
        inside when ``center`` is in the closed polytope (its slacks are at least
        ``(1 - shrink) r``). Default: the Chebyshev centre.
    shrink
        Fraction of the way from the Chebyshev centre to ``center`` kept, in (0, 1).
    """
    cov = np.asarray(cov, dtype=float)
    d = poly.dim
    if cov.shape != (d, d) or not np.all(np.isfinite(cov)):
        raise ConfigError(
            f"covariance for rounding {poly.id!r} must be a finite {d} x {d} matrix, "
            f"got shape {cov.shape}"
        )
    cov = 0.5 * (cov + cov.T)
    try:
        L = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as exc:
        raise ConfigError(f"covariance for rounding {poly.id!r} is not positive definite") from exc
    cheb = np.asarray(poly.center)
    if center is None:
        c = cheb
    else:
        c = np.asarray(center, dtype=float)
        if not 0.0 < shrink < 1.0:
            raise ConfigError(f"shrink must lie in (0, 1), got {shrink}")
        margin = np.min(poly.b - poly.A @ c)
        if not margin > (1.0 - shrink) * poly.radius:
            c = cheb + shrink * (c - cheb)
        if not np.min(poly.b - poly.A @ c) > 0.0:
            raise ConfigError(f"rounding centre lies outside the polytope {poly.id!r}")
    _, logdet = np.linalg.slogdet(cov)
    return Rounding(
        center=c,
        L=L,
        mean=c,
        cov=cov,
        log_volume=float(0.5 * d * np.log(2 * np.pi * np.e) + 0.5 * logdet),
        method="covariance",
    )


class PolytopeState(NamedTuple):
    """numpyro-facing state: rounded position ``y``, slacks, log density, acceptance, key."""

    y: jax.Array
    slack: jax.Array
    logdensity: jax.Array
    acceptance_rate: jax.Array
    rng_key: jax.Array


class HitAndRun(MCMCKernel):
    """Hit-and-run (coordinate or random direction) on a :class:`Polytope`, optionally Metropolised.

    Parameters
    ----------
    poly
        The polytope to sample.
    rounding
        A :class:`Rounding` or the name of a method (``"ep"``, ``"mve"``, ``"none"``).
    direction
        ``"coordinate"`` or ``"random"``.
    thinning
        Hit-and-run moves per numpyro iteration.
    logdensity_fn
        Log density of the *fluxes* ``v``; None for the uniform distribution.
    step_size
        None (default): a uniform point of the chord. Otherwise the initial sd of a Gaussian step
        along the chord in rounded coordinates (scalar, or one per axis for coordinate moves).
    adapt_step_size
        Adapt the step by dual averaging during warm-up of
        :func:`~bayesflux.sampling.sample.sample_polytope` (frozen for the kept draws). Under
        numpyro's ``MCMC`` the step is not adapted: pass ``adapt_step_size=False`` there.
    target_acceptance
        Acceptance the adaptation aims at per move.
    """

    sample_field = "y"

    def __init__(
        self,
        poly: Polytope,
        *,
        rounding: Rounding | str | None = "ep",
        direction: Direction = "coordinate",
        thinning: int = 1,
        logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
        step_size: float | np.ndarray | None = None,
        adapt_step_size: bool = True,
        target_acceptance: float = 0.4,
    ) -> None:
        self.poly = poly
        self.rounding = (
            rounding if isinstance(rounding, Rounding) else round_polytope(poly, rounding)
        )
        self.direction = direction
        self.thinning = int(thinning)
        self.logdensity_fn = logdensity_fn
        if step_size is not None:
            step = np.asarray(step_size, dtype=float)
            if step.shape not in ((), (poly.dim,)) or not np.all(step > 0):
                raise ConfigError(
                    f"step_size must be positive, a scalar or one per coordinate "
                    f"({poly.dim}), got {step_size!r}"
                )
            if step.ndim and direction == "random":
                raise ConfigError("random-direction moves take a scalar step_size")
            step_size = step
        self.step_size = step_size
        self.adapt_step_size = bool(adapt_step_size) and step_size is not None
        if not 0.0 < float(target_acceptance) < 1.0:
            raise ConfigError(f"target_acceptance must lie in (0, 1), got {target_acceptance}")
        self.target_acceptance = float(target_acceptance)
        A, b = self.rounding.rounded(poly)
        # device_put, not jnp.asarray: no per-shape copy function to compile
        self._A, self._b = jax.device_put(A), jax.device_put(b)
        # v = offset + M y
        self._M = jax.device_put(poly.N @ self.rounding.L)
        self._offset = jax.device_put(poly.v0 + poly.N @ self.rounding.center)
        self._kernel = None

    # ------------------------------------------------------------------ pure pieces
    def to_fluxes(self, y: jax.Array) -> jax.Array:
        """Fluxes of a rounded position (any leading batch shape)."""
        return self._offset + y @ self._M.T

    def _log_target(self) -> Callable[[jax.Array], jax.Array] | None:
        if self.logdensity_fn is None:
            return None
        fn = self.logdensity_fn
        return lambda y: fn(self.to_fluxes(y))

    def build(self) -> Callable:
        """The pure kernel ``(rng_key, HitAndRunState) -> (HitAndRunState, HitAndRunInfo)``."""
        if self._kernel is None:
            self._kernel = hit_and_run.build_kernel(
                self._A,
                self._b,
                direction=self.direction,
                logdensity_fn=self._log_target(),
                thinning=self.thinning,
                step_size=self.step_size,
            )
        return self._kernel

    def init_state(self, y: jax.Array | None = None) -> hit_and_run.HitAndRunState:
        """A pure-kernel state at ``y`` (default: the rounding centre, ``y = 0``)."""
        y = jnp.zeros(self._A.shape[1]) if y is None else jnp.asarray(y)
        return hit_and_run.init(y, self._A, self._b, self._log_target())

    # ------------------------------------------------------------------ numpyro interface
    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs) -> PolytopeState:
        if self.adapt_step_size:
            raise ConfigError(
                "step-size adaptation runs in sample_polytope / sample_fluxes; under numpyro's "
                "MCMC pass adapt_step_size=False (a fixed step) or step_size=None"
            )
        single = is_prng_key(rng_key)
        num_chains = 1 if single else rng_key.shape[0]
        if init_params is None:
            y = jnp.zeros((num_chains, self._A.shape[1]))
        else:
            y = jnp.broadcast_to(jnp.asarray(init_params), (num_chains, self._A.shape[1]))
        inner = jax.vmap(self.init_state)(y)
        keys = rng_key[None] if single else rng_key
        state = PolytopeState(
            inner.position, inner.slack, inner.logdensity, jnp.ones(num_chains), keys
        )
        return jax.tree.map(lambda x: x[0], state) if single else state

    def _sample_one(self, state: PolytopeState) -> PolytopeState:
        key, sub = jax.random.split(state.rng_key)
        inner = hit_and_run.HitAndRunState(state.y, state.slack, state.logdensity)
        inner, info = self.build()(sub, inner)
        return PolytopeState(
            inner.position, inner.slack, inner.logdensity, info.acceptance_rate, key
        )

    def sample(self, state: PolytopeState, model_args, model_kwargs) -> PolytopeState:
        if is_prng_key(state.rng_key):
            return self._sample_one(state)
        return jax.vmap(self._sample_one)(state)

    def postprocess_fn(self, model_args, model_kwargs) -> Callable[[jax.Array], jax.Array]:
        return self.to_fluxes

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("y",)

    def get_diagnostics_str(self, state: PolytopeState) -> str:
        return f"acc. prob={float(np.mean(state.acceptance_rate)):.2f}"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_kernel"] = None  # jitted closures do not pickle
        return state
