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
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import distributions as dist
from numpyro.infer.hmc_util import HMCAdaptState, warmup_adapter
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import initialize_model
from numpyro.util import identity, is_prng_key

from bayesflux.errors import ConfigError
from bayesflux.models.blocks import FluxPolytope, hit_and_run_walks
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.reflective_hmc import reflect
from bayesflux.sampling.rounding import Rounding, round_polytope

__all__ = ["ReflectiveHMC", "ReflectiveHMCState", "init_to_polytope", "polytope_sites"]


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


def _polytope_of(fn) -> Polytope | None:
    while isinstance(fn, dist.MaskedDistribution | dist.ExpandedDistribution):
        fn = fn.base_dist
    if not isinstance(fn, FluxPolytope):
        return None
    return fn.polytope


def polytope_sites(model_trace: dict) -> dict[str, Polytope]:
    """The latent :class:`~bayesflux.models.blocks.FluxPolytope` sites of a model trace."""
    out = {}
    for name, site in model_trace.items():
        if site["type"] == "sample" and not site["is_observed"]:
            poly = _polytope_of(site["fn"])
            if poly is not None:
                if site["fn"].batch_shape:
                    raise ConfigError(
                        f"FluxPolytope site {name!r} is inside a plate (batch shape "
                        f"{site['fn'].batch_shape}); write one flux_polytope site per condition"
                    )
                out[name] = poly
    return out


def init_to_polytope(site=None):
    """NumPyro init strategy: polytope sites at their Chebyshev centre, other sites uniformly in
    ``(-2, 2)`` of the unconstrained space (``init_to_uniform``). :class:`ReflectiveHMC` then
    disperses each chain's polytope start by a hit-and-run walk from the centre."""
    if site is None:
        return partial(init_to_polytope)
    if site["type"] == "sample" and not site["is_observed"]:
        if _polytope_of(site["fn"]) is not None:
            return site["fn"].support.feasible_like(jnp.zeros(site["fn"].event_shape))
    return init_to_uniform(site)


class _Geometry(NamedTuple):
    """Half-spaces of all polytope sites in the flat unconstrained vector, and the initial
    inverse mass matrix (EP covariance on polytope blocks, identity elsewhere)."""

    A: np.ndarray
    b: np.ndarray
    inverse_mass: np.ndarray


def _geometry(z: dict, polytopes: dict[str, Polytope], rounding: str | Rounding) -> _Geometry:
    keys = sorted(z)
    flat, _ = ravel_pytree(z)
    size = flat.size
    labels, _ = ravel_pytree(
        {k: jnp.full(jnp.shape(z[k]), i, dtype=float) for i, k in enumerate(keys)}
    )
    labels = np.asarray(labels)
    rows, rhs, inv_mass = [], [], np.eye(size)
    for name, poly in polytopes.items():
        cols = np.flatnonzero(labels == keys.index(name))
        if cols.size != poly.dim:
            raise ConfigError(
                f"site {name!r}: {cols.size} unconstrained values for a {poly.dim}-dimensional "
                "polytope (is it inside a plate?)"
            )
        block = np.zeros((poly.n_constraints, size))
        block[:, cols] = poly.A
        rows.append(block)
        rhs.append(poly.b)
        if isinstance(rounding, Rounding):
            if len(polytopes) > 1 or rounding.cov.shape != (poly.dim, poly.dim):
                raise ConfigError(
                    "a Rounding object rounds one polytope site of its dimension; give a method "
                    "name ('ep', 'mve', 'none') for several"
                )
            inv_mass[np.ix_(cols, cols)] = rounding.cov
        else:
            inv_mass[np.ix_(cols, cols)] = round_polytope(poly, rounding).cov
    if not rows:  # no polytope: one inactive facet keeps the reflection code uniform
        rows, rhs = [np.zeros((1, size))], [np.ones(1)]
    return _Geometry(np.vstack(rows), np.concatenate(rhs), inv_mass)


class ReflectiveHMC(MCMCKernel):
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
    init_strategy
        NumPyro init strategy (default :func:`init_to_polytope`).
    """

    sample_field = "z"

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
        rounding: str | Rounding = "ep",
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
        self._init_strategy = init_strategy or init_to_polytope()
        self._sample_fn = None
        self._postprocess_fn = None
        self.polytopes: dict[str, Polytope] = {}

    @property
    def model(self) -> Callable:
        return self._model

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "diverging")

    def get_diagnostics_str(self, state: ReflectiveHMCState) -> str:
        return (
            f"{int(state.num_steps)} steps, {int(state.num_reflections)} reflections, "
            f"step size {float(state.adapt_state.step_size):.2e}, "
            f"acc. prob={float(state.mean_accept_prob):.2f}"
        )

    def postprocess_fn(self, args, kwargs) -> Callable:
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*args, **(kwargs or {}))

    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs):
        batched = not is_prng_key(rng_key)
        keys = jax.random.split(rng_key) if not batched else jax.vmap(jax.random.split)(rng_key)
        rng_key, key_init = (keys[0], keys[1]) if not batched else (keys[:, 0], keys[:, 1])
        info, potential_gen, postprocess_gen, trace = initialize_model(
            key_init,
            self._model,
            init_strategy=self._init_strategy,
            dynamic_args=True,
            model_args=model_args,
            model_kwargs=model_kwargs,
            validate_grad=False,
        )
        self._postprocess_fn = postprocess_gen
        self.polytopes = polytope_sites(trace)
        z = info.z if init_params is None else init_params
        if init_params is None and self._init_strategy.func is init_to_polytope:
            z = self._dispersed(z, key_init, batched)
        one = jax.tree.map(lambda a: a[0], z) if batched else z
        geom = _geometry(one, self.polytopes, self.rounding)
        _, unravel = ravel_pytree(one)
        potential_fn = potential_gen(*model_args, **(model_kwargs or {}))
        U = lambda x: potential_fn(unravel(x))  # noqa: E731
        init_fn, transition = self._build(U, unravel, geom, int(num_warmup))
        if batched:
            flat = jax.vmap(lambda t: ravel_pytree(t)[0])(z)
            state = jax.jit(jax.vmap(init_fn))(flat, rng_key)
            self._sample_fn = jax.vmap(transition)
        else:
            state = jax.jit(init_fn)(ravel_pytree(z)[0], rng_key)
            self._sample_fn = transition
        return state

    def _dispersed(self, z: dict, key, batched: bool) -> dict:
        """Each chain's polytope sites at the end of its own hit-and-run walk from the centre
        (``FluxPolytope.mixing_steps`` moves): dispersed starts, for R-hat to mean something."""
        z = dict(z)
        for i, (name, poly) in enumerate(sorted(self.polytopes.items())):
            keys = (
                jax.random.fold_in(key, i)
                if not batched
                else jax.vmap(jax.random.fold_in, (0, None))(key, i)
            )
            walks = hit_and_run_walks(
                jnp.atleast_1d(keys), poly.A, poly.b, poly.center, FluxPolytope(poly).mixing_steps
            )
            z[name] = walks if batched else walks[0]
        return z

    def _build(self, U, unravel, geom: _Geometry, num_warmup: int):
        A, b = jnp.asarray(geom.A), jnp.asarray(geom.b)
        value_and_grad = jax.value_and_grad(U)
        adapt_init, adapt_update = warmup_adapter(
            num_warmup,
            adapt_mass_matrix=self.adapt_mass_matrix,
            dense_mass=True,
            target_accept_prob=self.target_accept_prob,
        )
        T, max_steps, max_refl = self.trajectory_length, self.max_steps, self.max_reflections
        max_delta = self.max_delta_energy

        def init_fn(x, key):
            key, key_adapt = jax.random.split(key)
            inside = jnp.all(A @ x <= b)
            pe, grad = value_and_grad(x)
            pe = jnp.where(inside, pe, jnp.inf)
            step = jnp.asarray(self.step_size, dtype=x.dtype)  # not weakly typed: one compilation
            adapt = adapt_init(
                (x,), key_adapt, step, inverse_mass_matrix=jnp.asarray(geom.inverse_mass)
            )
            zero = jnp.zeros((), int)
            return ReflectiveHMCState(
                zero, unravel(x), x, pe, grad, pe, zero, zero, jnp.ones(()), jnp.ones(()),
                jnp.zeros((), bool), adapt, key,
            )  # fmt: skip

        def transition(state: ReflectiveHMCState) -> ReflectiveHMCState:
            key, k_mom, k_jit, k_time, k_acc = jax.random.split(state.rng_key, 5)
            ad = state.adapt_state
            S = ad.mass_matrix_sqrt_inv.T  # x = x0 + S y, S Sᵀ the inverse mass (NumPyro: Sᵀ S)
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
                lambda a: adapt_update(state.i, prob, (x,), a),
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

    def sample(self, state: ReflectiveHMCState, model_args, model_kwargs) -> ReflectiveHMCState:
        return self._sample_fn(state)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sample_fn"] = None
        state["_postprocess_fn"] = None
        return state
