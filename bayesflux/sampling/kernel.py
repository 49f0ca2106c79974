"""Hit-and-run on a flux polytope as a :class:`numpyro.infer.mcmc.MCMCKernel`.

A thin class around the pure kernel of :mod:`bayesflux.sampling.hit_and_run`: the RNG key lives in
the state, the position is the rounded coordinate ``y``, and ``postprocess_fn`` maps it to fluxes
``v = v0 + N (center + L y)``. Under ``chain_method="vectorized"`` numpyro hands the kernel a batch
of keys and a batched state; the kernel then vmaps itself (as numpyro's ``SA`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.mcmc import MCMCKernel
from numpyro.util import is_prng_key

from bayesflux.sampling import hit_and_run
from bayesflux.sampling.hit_and_run import Direction
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding, round_polytope

__all__ = ["PolytopeState", "HitAndRun"]


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
    ) -> None:
        self.poly = poly
        self.rounding = (
            rounding if isinstance(rounding, Rounding) else round_polytope(poly, rounding)
        )
        self.direction = direction
        self.thinning = int(thinning)
        self.logdensity_fn = logdensity_fn
        A, b = self.rounding.rounded(poly)
        self._A, self._b = jnp.asarray(A), jnp.asarray(b)
        # v = offset + M y
        self._M = jnp.asarray(poly.N @ self.rounding.L)
        self._offset = jnp.asarray(poly.v0 + poly.N @ self.rounding.center)
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
            )
        return self._kernel

    def init_state(self, y: jax.Array | None = None) -> hit_and_run.HitAndRunState:
        """A pure-kernel state at ``y`` (default: the rounding centre, ``y = 0``)."""
        y = jnp.zeros(self._A.shape[1]) if y is None else jnp.asarray(y)
        return hit_and_run.init(y, self._A, self._b, self._log_target())

    # ------------------------------------------------------------------ numpyro interface
    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs) -> PolytopeState:
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
