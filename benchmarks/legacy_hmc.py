"""The windowed reflective HMC driver that preceded :mod:`bayesflux.infer` (bayesflux up to
commit e8e02c1, ``bayesflux.sampling.sample_hmc``), kept here only as the baseline of the
layer-versus-legacy speed ratios of ``bench_joint.py --versus-legacy`` and
``bench_posterior.py --versus-legacy``; not part of the package and not tested.

Reflective HMC of ``p(v)`` on a polytope in rounded coordinates ``z = c + L y`` (identity mass in
``y``): the step ``ε`` of each chain adapted by dual averaging (Hoffman and Gelman 2014,
Algorithm 5) toward ``target_acceptance``, the rounding replaced by the pooled covariance of each
warm-up window's second half; both frozen for the kept draws. Trajectories run for ``τ ~ U(0, 2
T)`` with ``ε`` jittered by ±20 %; the leapfrog steps reflect off the facets
(:func:`bayesflux.infer.reflective_hmc.reflect`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.infer.reflective_hmc import reflect
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding, covariance_rounding, round_polytope

MAX_ENERGY_ERROR = 1000.0


class HMCState(NamedTuple):
    position: jax.Array
    logdensity: jax.Array
    grad: jax.Array


class HMCInfo(NamedTuple):
    acceptance_rate: jax.Array
    n_steps: jax.Array
    n_reflections: jax.Array
    diverging: jax.Array
    step_size: jax.Array


def init(position: jax.Array, logdensity_fn: Callable[[jax.Array], jax.Array]) -> HMCState:
    position = jnp.asarray(position, dtype=jnp.result_type(float))
    lp, grad = jax.value_and_grad(logdensity_fn)(position)
    return HMCState(position, lp, grad)


def build_kernel(
    A: jax.Array,
    b: jax.Array,
    logdensity_fn: Callable[[jax.Array], jax.Array],
    *,
    max_steps: int = 256,
    max_reflections: int = 1000,
) -> Callable[[jax.Array, HMCState, jax.Array, jax.Array], tuple[HMCState, HMCInfo]]:
    """``kernel(rng_key, state, step_size, trajectory_length) -> (state, info)``: one reflective
    HMC draw with identity mass and ``ceil(τ / ε')`` leapfrog steps (at most ``max_steps``) of the
    jittered step ``ε' = ε U(0.8, 1.2)``, the integration time ``τ ~ U(0, 2 T)`` random
    (mean ``T = trajectory_length``): a fixed time near half a period of the target would make
    draws antithetic and keep each chain at its starting distance from the mode."""
    A = jnp.asarray(A, dtype=jnp.result_type(float))
    b = jnp.asarray(b, dtype=A.dtype)
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def kernel(rng_key, state: HMCState, step_size, trajectory_length):
        k_mom, k_jit, k_time, k_acc = jax.random.split(rng_key, 4)
        eps = step_size * jax.random.uniform(k_jit, (), A.dtype, 0.8, 1.2)
        time = trajectory_length * jax.random.uniform(k_time, (), A.dtype, 0.0, 2.0)
        n_steps = jnp.clip(jnp.ceil(time / eps), 1, max_steps).astype(int)
        p0 = jax.random.normal(k_mom, state.position.shape, A.dtype)

        def leapfrog(_, c):
            x, lp, g, p, n, cut = c
            p = p + 0.5 * eps * g
            x, p, m = reflect(x, p, eps, A, b, max_reflections)
            lp, g = value_and_grad(x)
            return x, lp, g, p + 0.5 * eps * g, n + m, cut | (m > max_reflections)

        start = (state.position, state.logdensity, state.grad, p0, jnp.zeros((), int), False)
        x, lp, g, p, n_refl, cut = jax.lax.fori_loop(0, n_steps, leapfrog, start)
        log_ratio = lp - 0.5 * p @ p - state.logdensity + 0.5 * p0 @ p0  # -(energy error)
        ok = jnp.isfinite(log_ratio) & ~cut & jnp.all(A @ x <= b + 1e-9)
        prob = jnp.where(ok, jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)
        accept = jax.random.uniform(k_acc, (), A.dtype) < prob
        new = jax.tree.map(lambda a, o: jnp.where(accept, a, o), HMCState(x, lp, g), state)
        diverging = ~ok | (-log_ratio > MAX_ENERGY_ERROR)
        return new, HMCInfo(prob, n_steps, n_refl, diverging, eps)

    return kernel


class _DualAveraging(NamedTuple):
    log_step: jax.Array
    log_step_avg: jax.Array
    h_avg: jax.Array
    count: jax.Array
    mu: jax.Array


def _da_init(step: jax.Array) -> _DualAveraging:
    log = jnp.log(jnp.asarray(step, dtype=jnp.result_type(float)))  # not weakly typed: one jit
    return _DualAveraging(log, log, jnp.zeros_like(log), jnp.zeros_like(log), log + np.log(10.0))


def _da_update(da: _DualAveraging, acceptance, target, gamma=0.05, t0=10.0, kappa=0.75):
    """Hoffman and Gelman (2014), Algorithm 5."""
    t = da.count + 1.0
    eta = 1.0 / (t + t0)
    h = (1.0 - eta) * da.h_avg + eta * (target - acceptance)
    log_step = da.mu - jnp.sqrt(t) / gamma * h
    w = t**-kappa
    return _DualAveraging(log_step, w * log_step + (1.0 - w) * da.log_step_avg, h, t, da.mu)


def rounded_geometry(poly: Polytope, rounding: Rounding) -> dict[str, jax.Array]:
    """The polytope in rounded coordinates ``y`` (``A y <= b``) and the map ``v = offset + M y``
    to fluxes, as the keyword arguments of the compiled sampler calls."""
    A, b = rounding.rounded(poly)
    return dict(
        A=jnp.asarray(A),
        b=jnp.asarray(b),
        offset=jnp.asarray(poly.v0 + poly.N @ rounding.center),
        M=jnp.asarray(poly.N @ rounding.L),
    )


def _plan(
    num_warmup: int, windows: int, num_draws: int, block_size: int
) -> tuple[list[tuple[str, int]], int]:
    """``([(phase, calls), ...], chunk)``: every compiled call runs ``chunk`` draws (one
    compilation); each warm-up window is ``ceil(num_warmup / windows / chunk)`` calls, the kept
    draws ``ceil(num_draws / chunk)`` calls (the surplus is cut)."""
    windows = windows if num_warmup > 0 else 0
    window = -(-num_warmup // windows) if windows else 0
    first = window or num_draws
    chunk = -(-first // -(-first // block_size))  # the window in near-equal calls <= block_size
    plan = [("warmup", -(-window // chunk))] * windows
    return plan + [("draws", -(-num_draws // chunk))], chunk


def pooled_rounding(poly: Polytope, z: np.ndarray, previous: Rounding) -> Rounding:
    """:func:`covariance_rounding` of draws ``z (chains, draws, d)`` (pooled), centred at their
    mean; a ``1e-9``-relative ridge keeps a direction the draws barely moved in."""
    flat = z.reshape(-1, z.shape[-1])
    cov = np.cov(flat, rowvar=False).reshape(poly.dim, poly.dim)
    cov = cov + 1e-9 * (np.trace(cov) / poly.dim + 1e-300) * np.eye(poly.dim)
    try:
        return covariance_rounding(poly, cov, center=flat.mean(axis=0))
    except ConfigError:  # degenerate draws (e.g. a chain that never moved): keep the rounding
        return previous


@partial(jax.jit, static_argnames=("logdensity_fn",))
def _init_states(y, offset, M, logdensity_fn):
    """:func:`init` of every chain at rounded positions ``y (chains, d)``."""
    return jax.vmap(lambda q: init(q, lambda u: logdensity_fn(offset + M @ u)))(y)


@partial(jax.jit, static_argnames=("logdensity_fn", "n_draws", "max_steps", "target_acceptance"))
def _run(
    keys,
    state,
    da,
    trajectory_length,
    adapt,
    A,
    b,
    offset,
    M,
    *,
    logdensity_fn,
    n_draws,
    max_steps,
    target_acceptance,
):
    """``n_draws`` draws of every chain (``vmap`` chains, ``scan`` draws), adapting ``ε`` if
    ``adapt`` (traced); the geometry is an argument, so every call shares one compilation."""
    kernel = build_kernel(A, b, lambda y: logdensity_fn(offset + M @ y), max_steps=max_steps)

    def one_chain(key, state, da):
        def body(carry, k):
            state, da = carry
            state, info = kernel(k, state, jnp.exp(da.log_step), trajectory_length)
            updated = _da_update(da, info.acceptance_rate, target_acceptance)
            da = jax.tree.map(lambda n, o: jnp.where(adapt, n, o), updated, da)
            return (state, da), (state.position, state.logdensity, *info)

        return jax.lax.scan(body, (state, da), jax.random.split(key, n_draws))

    return jax.vmap(one_chain)(keys, state, da)


_TRACE = ("y", "lp", *HMCInfo._fields)


def sample_hmc(
    poly: Polytope,
    logdensity_fn: Callable[[jax.Array], jax.Array],
    *,
    num_chains: int = 4,
    num_draws: int = 1000,
    num_warmup: int | None = None,
    rounding: Rounding | str = "ep",
    rounding_windows: int = 3,
    trajectory_length: float = 1.5,
    step_size: float = 0.2,
    target_acceptance: float = 0.8,
    max_steps: int = 256,
    seed: int = 0,
    block_size: int = 250,
) -> xr.DataTree:
    """Reflective HMC of ``p(v)`` on ``poly``: ``posterior/flux`` and ``sample_stats`` (ArviZ's
    names) of ``num_chains`` chains (vmapped) of ``num_draws`` kept draws each, after
    ``num_warmup`` draws in ``rounding_windows`` windows (the driver of commit e8e02c1, less its
    checkpoints and progress bar)."""
    num_warmup = max(int(num_draws) // 2, 200) if num_warmup is None else int(num_warmup)
    rnd = rounding if isinstance(rounding, Rounding) else round_polytope(poly, rounding)
    z = np.tile(np.asarray(rnd.center, float), (num_chains, 1))
    chain_keys = jax.random.split(jax.random.key(int(seed)), num_chains)
    plan, chunk = _plan(num_warmup, int(rounding_windows), int(num_draws), int(block_size))
    static = dict(
        logdensity_fn=logdensity_fn,
        max_steps=int(max_steps),
        target_acceptance=float(target_acceptance),
        n_draws=chunk,
    )
    da = _da_init(jnp.full(num_chains, float(step_size)))
    call, kept = 0, {}
    for phase, n_calls in plan:
        geom = rounded_geometry(poly, rnd)
        y = np.linalg.solve(rnd.L, (z - rnd.center).T).T
        state = _init_states(jnp.asarray(y), geom["offset"], geom["M"], logdensity_fn)
        adapt = phase == "warmup"
        if adapt:  # a new rounding changes the scale: adapt afresh from the initial step
            da = _da_init(jnp.full(num_chains, float(step_size)))
        else:
            da = da._replace(log_step=da.log_step_avg)
        out = []
        for _ in range(n_calls):
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(chain_keys, call)
            call += 1
            (state, da), trace = _run(
                keys, state, da, float(trajectory_length), jnp.asarray(adapt), **geom, **static
            )
            out.append([np.asarray(a) for a in trace])
        trace = [np.concatenate(parts, axis=1) for parts in zip(*out)]
        zs = rnd.to_reduced(trace[0])
        z = zs[:, -1]
        if adapt:
            flat = zs[:, zs.shape[1] // 2 :].reshape(-1, poly.dim)
            cov = np.cov(flat, rowvar=False).reshape(poly.dim, poly.dim)
            cov = cov + 1e-9 * (np.trace(cov) / poly.dim + 1e-300) * np.eye(poly.dim)
            try:
                rnd = covariance_rounding(poly, cov, center=flat.mean(axis=0))
            except ConfigError:  # degenerate draws: keep the rounding
                pass
        else:
            names = ("z", *_TRACE[1:])
            kept = {k: a[:, :num_draws] for k, a in zip(names, [zs, *trace[1:]], strict=True)}
    stats = {k: kept[k] for k in (*HMCInfo._fields, "lp")}
    return arviz_base.from_dict(
        {"posterior": {"flux": poly.to_fluxes(kept["z"])}, "sample_stats": stats},
        dims={"flux": ["reaction"]},
        coords={"reaction": list(poly.reactions)},
    )
