"""Reflective HMC for NumPyro models with polytope sites: a ``numpyro.infer.mcmc.MCMCKernel``.

The kernel takes a model, as NumPyro's ``NUTS`` does. All latent sites are moved together in
NumPyro's unconstrained space ``x``; a :class:`~bayesflux.models.blocks.FluxPolytope` site's
unconstrained value is its reduced coordinates ``z`` (``v = v0 + N z``), whose inequalities
``A z <= b`` stay. Each draw is one Hamiltonian trajectory in rounded coordinates ``x = x0 + S y``
(``S Sᵀ`` the inverse mass matrix): leapfrog steps whose position updates reflect the momentum
off every facet they meet, ``p <- p - 2 (a·p / a·a) a`` (Neal 2011, "MCMC using Hamiltonian
dynamics", 5.1; Afshar and Domke 2015). Reflection preserves volume and ``|p|``, so the
Metropolis test on ``H = U(x) + |p|²/2`` leaves the posterior restricted to the polytopes exact.
Integration times are random, ``τ ~ U(0, 2 T)``, and steps jittered by ±20 % (Neal 2011, 5.4.1).

Warm-up uses NumPyro's own adaptation (``numpyro.infer.hmc_util.warmup_adapter``): dual averaging
of the step size (Hoffman and Gelman 2014) and a dense mass matrix from Welford covariances of
the windows of Stan's schedule, starting from the Expectation-Propagation covariance of each
polytope (seed 002) and identity elsewhere. Each chain adapts alone, so the kernel runs under
every ``chain_method``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from numpyro.infer.hmc_util import HMCAdaptState, warmup_adapter

from bayesflux.errors import ConfigError
from bayesflux.infer.convert import EXTRA_FIELDS
from bayesflux.infer.sites import PolytopeKernel, Prepared, init_to_polytope
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding

__all__ = ["ReflectiveHMC", "ReflectiveHMCState", "flight", "reflect"]


def reflect(
    x: jax.Array, p: jax.Array, t: jax.Array, A: jax.Array, b: jax.Array, max_reflections: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Move ``x`` with velocity ``p`` for time ``t`` inside ``A x <= b``, reflecting off facets.

    Returns ``(x, p, n)`` with ``n`` the reflections; ``n > max_reflections`` flags a path cut
    short (the caller rejects it). See :func:`flight`.
    """
    x, p, n, _ = flight(x, p, t, A, b - A @ x, max_reflections)
    return x, p, n


def flight(
    x: jax.Array,
    p: jax.Array,
    t: jax.Array,
    A: jax.Array,
    slack: jax.Array,
    max_reflections: int,
    gram: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """:func:`reflect` from the slacks ``s = b - A x``, returning them too: ``(x, p, n, s)``.

    The rates ``r = A p`` are formed once; a free flight of time ``τ`` is ``s -= τ r`` and a
    reflection off facet ``i``, ``p -= c aᵢ`` with ``c = 2 rᵢ / |aᵢ|²``, is ``r -= c A aᵢ``: one
    row of the Gram matrix ``gram = A Aᵀ``, ``O(m)`` a reflection instead of the ``O(m d)`` of
    ``A p`` (recomputed where ``gram`` is None). The slacks drift by round-off only.
    """
    norms = jnp.sum(A * A, axis=1) if gram is None else jnp.diagonal(gram)

    def cond(c):
        return (c[2] > 0) & (c[3] <= max_reflections)

    def body(c):
        x, p, left, n, slack, rate = c
        hit = jnp.where(rate > 0, jnp.maximum(slack, 0.0) / jnp.where(rate > 0, rate, 1.0), jnp.inf)
        i = jnp.argmin(hit)
        t_hit = hit[i]
        bounce = t_hit < left
        step = jnp.where(bounce, t_hit, left)
        x = x + step * p
        slack = slack - step * rate
        coef = jnp.where(bounce, 2.0 * rate[i] / norms[i], 0.0)
        p = p - coef * A[i]
        rate = A @ p if gram is None else rate - coef * gram[i]
        return x, p, jnp.where(bounce, left - t_hit, 0.0), n + bounce.astype(int), slack, rate

    start = (x, p, jnp.asarray(t, x.dtype), jnp.zeros((), int), slack, A @ p)
    x, p, _, n, slack, _ = jax.lax.while_loop(cond, body, start)
    return x, p, n, slack


class ReflectiveHMCState(NamedTuple):
    """One chain: ``z`` the unconstrained site values (``x`` flattened), the potential
    ``U = -log p`` and its gradient, and the statistics of the last trajectory."""

    i: jax.Array
    z: dict
    x: jax.Array
    potential_energy: jax.Array
    z_grad: jax.Array
    energy: jax.Array
    num_steps: jax.Array
    num_reflections: jax.Array
    accept_prob: jax.Array
    mean_accept_prob: jax.Array
    diverging: jax.Array
    adapt_state: HMCAdaptState
    rng_key: jax.Array


class ReflectiveHMC(PolytopeKernel):
    """Hamiltonian Monte Carlo that reflects off the facets of a model's polytope sites.

    Parameters
    ----------
    model
        A NumPyro model with :func:`~bayesflux.models.blocks.flux_polytope` sites (any number,
        none also works: plain HMC with random integration times).
    trajectory_length
        Mean integration time ``T`` in rounded units (posterior standard deviations once the
        mass matrix is adapted).
    step_size
        Initial leapfrog step (adapted in warm-up toward ``target_accept_prob``).
    max_steps
        Cap on leapfrog steps per draw.
    rounding
        Initial mass matrix of polytope sites: ``"ep"`` (Expectation Propagation), ``"mve"``,
        ``"none"``, or a :class:`~bayesflux.sampling.Rounding` whose covariance is used (one
        polytope site).
    precondition
        Move in fixed coordinates ``x = x0 + L u`` (``L Lᵀ`` the initial inverse mass) and adapt
        the mass matrix of ``u``. NumPyro's adaptation shrinks each window's covariance toward
        ``1e-3 I``; in ``u`` that is ``1e-3`` of the initial scale, where in ``x`` it would swamp
        posterior variances far below ``1e-3`` (Yeast 5.21's expression posterior: ``1e-7``).
        Give an initial mass on the posterior's scale (``rounding``) with it.
    dense_mass
        Adapt a dense (default) or diagonal mass matrix. On Yeast 5.21's expression posterior,
        whitened by the mode's scale guess, the diagonal one left a step size of 1e-3 (dense:
        0.06).
    init_strategy
        NumPyro init strategy (default :func:`init_to_polytope`).
    """

    stat_fields = EXTRA_FIELDS + ("diverging", "num_reflections")

    def __init__(
        self,
        model: Callable,
        *,
        trajectory_length: float = 3.0,
        step_size: float = 0.2,
        target_accept_prob: float = 0.8,
        max_steps: int = 256,
        max_reflections: int = 1000,
        max_delta_energy: float = 1000.0,
        adapt_mass_matrix: bool = True,
        dense_mass: bool = True,
        rounding: str | Rounding = "ep",
        precondition: bool = False,
        init_strategy: Callable | None = None,
    ) -> None:
        if not (trajectory_length > 0 and step_size > 0 and 0 < target_accept_prob < 1):
            raise ConfigError(
                "trajectory_length and step_size must be > 0 and target_accept_prob in (0, 1), "
                f"got {trajectory_length}, {step_size}, {target_accept_prob}"
            )
        self._model = model
        self.trajectory_length = float(trajectory_length)
        self.step_size = float(step_size)
        self.target_accept_prob = float(target_accept_prob)
        self.max_steps = int(max_steps)
        self.max_reflections = int(max_reflections)
        self.max_delta_energy = float(max_delta_energy)
        self.adapt_mass_matrix = bool(adapt_mass_matrix)
        self.rounding = rounding
        self.precondition = bool(precondition)
        self.dense_mass = bool(dense_mass)
        self._init_strategy = init_strategy or init_to_polytope()
        self._sample_fn = None
        self._postprocess_fn = None
        self.polytopes: dict[str, Polytope] = {}

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "diverging")

    def get_diagnostics_str(self, state: ReflectiveHMCState) -> str:
        return (
            f"{int(state.num_steps)} steps, {int(state.num_reflections)} reflections, "
            f"step size {float(state.adapt_state.step_size):.2e}, "
            f"acc. prob={float(state.mean_accept_prob):.2f}"
        )

    def _build(self, prepared: Prepared, num_warmup: int):
        U, unravel, geom = prepared.potential, prepared.unravel, prepared.geometry
        A, b = jnp.asarray(geom.A), jnp.asarray(geom.b)
        adapt_init, adapt_update = warmup_adapter(
            num_warmup,
            adapt_mass_matrix=self.adapt_mass_matrix,
            dense_mass=self.dense_mass,
            target_accept_prob=self.target_accept_prob,
        )
        T, max_steps, max_refl = self.trajectory_length, self.max_steps, self.max_reflections
        max_delta = self.max_delta_energy
        size = geom.inverse_mass.shape[0]
        if self.precondition:  # x = x0 + L u: the adaptation sees u, whose initial mass is I
            L = jnp.asarray(geom.factor)
            initial_inverse_mass = jnp.eye(size)

            def whiten(x):
                return jax.scipy.linalg.solve_triangular(L, x, lower=True)
        else:
            L, initial_inverse_mass = None, jnp.asarray(geom.inverse_mass)

            def whiten(x):
                return x

        def init_fn(x, key, args, kwargs):
            value_and_grad = jax.value_and_grad(lambda q: U(q, args, kwargs))
            key, key_adapt = jax.random.split(key)
            inside = jnp.all(A @ x <= b)
            pe, grad = value_and_grad(x)
            pe = jnp.where(inside, pe, jnp.inf)
            step = jnp.asarray(self.step_size, dtype=x.dtype)  # not weakly typed: one compilation
            adapt = adapt_init(
                (whiten(x),), key_adapt, step, inverse_mass_matrix=initial_inverse_mass
            )
            zero = jnp.zeros((), int)
            return ReflectiveHMCState(
                zero, unravel(x), x, pe, grad, pe, zero, zero, jnp.ones(()), jnp.ones(()),
                jnp.zeros((), bool), adapt, key,
            )  # fmt: skip

        def transition(state: ReflectiveHMCState, args, kwargs) -> ReflectiveHMCState:
            value_and_grad = jax.value_and_grad(lambda q: U(q, args, kwargs))
            key, k_mom, k_jit, k_time, k_acc = jax.random.split(state.rng_key, 5)
            ad = state.adapt_state
            S = ad.mass_matrix_sqrt_inv  # x = x0 + S y, S Sᵀ the inverse mass (NumPyro: Sᵀ S)
            S = jnp.diag(S) if S.ndim == 1 else S.T
            S = S if L is None else L @ S
            AS, room = A @ S, b - A @ state.x
            eps = ad.step_size * jax.random.uniform(k_jit, (), minval=0.8, maxval=1.2)
            time = T * jax.random.uniform(k_time, (), minval=0.0, maxval=2.0)
            n_steps = jnp.clip(jnp.ceil(time / eps), 1, max_steps).astype(int)
            p0 = jax.random.normal(k_mom, state.x.shape)

            def leapfrog(_, c):
                y, pe, g, p, n, cut = c
                p = p - 0.5 * eps * (S.T @ g)
                y, p, m = reflect(y, p, eps, AS, room, max_refl)
                pe, g = value_and_grad(state.x + S @ y)
                return y, pe, g, p - 0.5 * eps * (S.T @ g), n + m, cut | (m > max_refl)

            start = (
                jnp.zeros_like(state.x), state.potential_energy, state.z_grad, p0,
                jnp.zeros((), int), jnp.zeros((), bool),
            )  # fmt: skip
            y, pe, g, p, n_refl, cut = jax.lax.fori_loop(0, n_steps, leapfrog, start)
            x = state.x + S @ y
            energy0 = state.potential_energy + 0.5 * p0 @ p0
            energy = pe + 0.5 * p @ p
            delta = energy - energy0
            ok = jnp.isfinite(delta) & ~cut & jnp.all(A @ x <= b + 1e-9 * (1.0 + jnp.abs(b)))
            prob = jnp.where(ok, jnp.exp(jnp.minimum(-delta, 0.0)), 0.0)
            accept = jax.random.uniform(k_acc, ()) < prob
            x = jnp.where(accept, x, state.x)
            pe = jnp.where(accept, pe, state.potential_energy)
            g = jnp.where(accept, g, state.z_grad)
            adapt = jax.lax.cond(
                state.i < num_warmup,
                lambda a: adapt_update(state.i, prob, (whiten(x),), a),
                lambda a: a,
                ad,
            )
            n = state.i + 1 - num_warmup  # kept draws so far, this one included
            mean_prob = jnp.where(
                n > 0, state.mean_accept_prob + (prob - state.mean_accept_prob) / jnp.maximum(n, 1),
                prob,
            )  # fmt: skip
            diverging = cut | ~jnp.isfinite(delta) | (delta > max_delta)
            return ReflectiveHMCState(
                state.i + 1, unravel(x), x, pe, g, jnp.where(accept, energy, energy0), n_steps,
                n_refl, prob, mean_prob, diverging, adapt, key,
            )  # fmt: skip

        return init_fn, transition
