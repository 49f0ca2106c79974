"""Hamiltonian Monte Carlo that reflects off the facets of a polytope, with adapted rounding.

The target is ``p(x)`` restricted to ``{x : A x <= b}``. Leapfrog (Neal 2011, "MCMC using
Hamiltonian dynamics", section 5.1; Afshar and Domke 2015, "Reflection, refraction, and
Hamiltonians"): ``p <- p + ε/2 ∇log p(x)``; move ``x`` along ``p`` for time ``ε``, and whenever the
path meets a facet ``a·x = b_i`` reflect the momentum, ``p <- p - 2 (a·p / a·a) a``, and go on for
the time left; ``p <- p + ε/2 ∇log p(x)``. Reflection keeps ``|p|`` and the map stays volume
preserving and reversible, so a Metropolis test on ``H = -log p(x) + |p|²/2`` makes the chain
exact for ``p`` on the polytope. Gradient steps move along ridges of the target that a random
line crosses (the creases ``k g_i(v) = e_i`` of FALCON's Laplace likelihood, where
hit-and-run needs ``O(d²)``-``O(d³)`` moves per independent draw).

The coordinates are rounded, ``z = c + L y``: the kinetic energy ``|p|²/2`` in ``y`` is the mass
matrix ``(L Lᵀ)⁻¹`` in ``z``. :func:`sample_hmc` adapts the step ``ε`` of each chain by dual
averaging (Hoffman and Gelman 2014, Algorithm 5) toward ``target_acceptance`` and replaces the
rounding by the pooled covariance of each warm-up window's second half; both are frozen for the
kept draws. Trajectories run for a random time ``τ ~ U(0, 2 T)``, ``T = trajectory_length`` (in
posterior standard deviations once rounded), with ``ε`` jittered by ``±20 %``, so that no
trajectory is periodic (Neal 2011, section 5.4.1); leapfrog steps are capped at ``max_steps``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.progress import progress_bar
from bayesflux.sampling.checkpoint import fingerprint, open_checkpoint, read_blocks, write_block
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding, covariance_rounding, round_polytope

__all__ = [
    "MAX_ENERGY_ERROR",
    "HMCInfo",
    "HMCState",
    "build_kernel",
    "init",
    "reflect",
    "sample_hmc",
]


class HMCState(NamedTuple):
    """Position ``x (d,)``, ``log p(x)`` and its gradient."""

    position: jax.Array
    logdensity: jax.Array
    grad: jax.Array


#: an energy error ``H(end) - H(start)`` above this marks a divergent trajectory (NumPyro's and
#: Stan's ``max_delta_energy``)
MAX_ENERGY_ERROR = 1000.0


class HMCInfo(NamedTuple):
    """One draw's Metropolis acceptance probability, leapfrog steps, facet reflections, whether
    the trajectory diverged and the (jittered) leapfrog step it used; ArviZ's names.

    ``diverging``: the integrator lost the trajectory, so it was rejected for numerical rather
    than statistical reasons: an energy error above :data:`MAX_ENERGY_ERROR` or not finite, a
    reflection path cut short at ``max_reflections``, or an end point outside the polytope.
    """

    acceptance_rate: jax.Array
    n_steps: jax.Array
    n_reflections: jax.Array
    diverging: jax.Array
    step_size: jax.Array


def init(position: jax.Array, logdensity_fn: Callable[[jax.Array], jax.Array]) -> HMCState:
    """State at an interior ``position``."""
    position = jnp.asarray(position, dtype=jnp.result_type(float))
    lp, grad = jax.value_and_grad(logdensity_fn)(position)
    return HMCState(position, lp, grad)


def reflect(
    x: jax.Array, p: jax.Array, t: jax.Array, A: jax.Array, b: jax.Array, max_reflections: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Move ``x`` with velocity ``p`` for time ``t`` inside ``A x <= b``, reflecting off facets.

    Returns ``(x, p, n)`` with ``n`` the reflections; ``n > max_reflections`` flags a path cut
    short (the caller rejects it).
    """
    norms = jnp.sum(A * A, axis=1)

    def cond(c):
        return (c[2] > 0) & (c[3] <= max_reflections)

    def body(c):
        x, p, left, n = c
        slack = jnp.maximum(b - A @ x, 0.0)
        rate = A @ p
        hit = jnp.where(rate > 0, slack / jnp.where(rate > 0, rate, 1.0), jnp.inf)
        i = jnp.argmin(hit)
        t_hit = hit[i]
        bounce = t_hit < left
        step = jnp.where(bounce, t_hit, left)
        x = x + step * p
        p = jnp.where(bounce, p - 2.0 * rate[i] / norms[i] * A[i], p)
        return x, p, jnp.where(bounce, left - t_hit, 0.0), n + bounce.astype(int)

    x, p, _, n = jax.lax.while_loop(cond, body, (x, p, jnp.asarray(t, x.dtype), jnp.zeros((), int)))
    return x, p, n


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


def start_chains(
    poly: Polytope,
    num_chains: int,
    num_draws: int,
    num_warmup: int,
    rounding_windows: int,
    block_size: int,
    rounding: Rounding | str,
    init_position: np.ndarray | None,
    seed: int,
) -> tuple[Rounding, np.ndarray, jax.Array, list[tuple[str, int]], int]:
    """Checked options -> ``(rounding, chain starts z, chain keys, plan, chunk)`` of a windowed
    sampler (:func:`sample_hmc`)."""
    for name, value in (("num_chains", num_chains), ("num_draws", num_draws)):
        if int(value) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    if num_warmup < 0 or int(rounding_windows) < 0 or int(block_size) < 1:
        raise ConfigError(
            f"num_warmup and rounding_windows must be >= 0 and block_size >= 1, got "
            f"{num_warmup}, {rounding_windows}, {block_size}"
        )
    rnd = rounding if isinstance(rounding, Rounding) else round_polytope(poly, rounding)
    z = np.tile(
        np.asarray(rnd.center if init_position is None else init_position, float),
        (num_chains, 1),
    )
    if not np.all(poly.A @ z[0] < poly.b):
        raise ConfigError(f"init_position lies outside the interior of the polytope {poly.id!r}")
    chain_keys = jax.random.split(jax.random.key(int(seed)), num_chains)
    plan, chunk = _plan(num_warmup, int(rounding_windows), int(num_draws), int(block_size))
    return rnd, z, chain_keys, plan, chunk


def flux_tree(
    poly: Polytope, z: np.ndarray, stats: dict, reactions: Sequence[str] | None, attrs: dict
) -> xr.DataTree:
    """Draws ``z (chain, draw, d)`` as fluxes over ``reaction`` with ``sample_stats`` and attrs."""
    flux = poly.to_fluxes(z)
    names = (
        list(reactions)
        if reactions
        else (list(poly.reactions) or [f"x{k}" for k in range(flux.shape[-1])])
    )
    tree = arviz_base.from_dict(
        {"posterior": {"flux": flux}, "sample_stats": stats},
        dims={"flux": ["reaction"]},
        coords={"reaction": names},
    )
    tree.attrs.update(attrs)
    tree["posterior"].attrs.update(attrs)
    return tree


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


def _state_arrays(state: HMCState, da: _DualAveraging, trace: list[np.ndarray]) -> dict:
    """A kept call's draws and the exact chain and step states it ended in (checkpoint)."""
    arrays = dict(zip(_TRACE, trace, strict=True))
    arrays.update({f"state_{f}": np.asarray(getattr(state, f)) for f in HMCState._fields})
    arrays.update({f"da_{f}": np.asarray(getattr(da, f)) for f in _DualAveraging._fields})
    return arrays


def _window_arrays(rnd: Rounding, z: np.ndarray, da: _DualAveraging) -> dict:
    """The rounding, chain positions and step state after a warm-up window (checkpoint)."""
    arrays = {f"da_{f}": np.asarray(getattr(da, f)) for f in _DualAveraging._fields}
    arrays.update(
        z=z,
        center=rnd.center,
        L=rnd.L,
        mean=rnd.mean,
        cov=rnd.cov,
        log_volume=np.float64(rnd.log_volume),
        method=np.str_(rnd.method),
        iterations=np.int64(rnd.iterations),
        converged=np.bool_(rnd.converged),
    )
    return arrays


def _rounding_from(arrays: dict) -> Rounding:
    return Rounding(
        arrays["center"],
        arrays["L"],
        arrays["mean"],
        arrays["cov"],
        float(arrays["log_volume"]),
        str(arrays["method"]),
        int(arrays["iterations"]),
        bool(arrays["converged"]),
    )


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
    init_position: np.ndarray | None = None,
    seed: int = 0,
    block_size: int = 250,
    progress: bool = False,
    reactions: Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
) -> xr.DataTree:
    """Reflective HMC of ``p(v)`` on a polytope; fluxes as an ArviZ DataTree.

    Parameters
    ----------
    poly
        The polytope (reduced coordinates ``z``, fluxes ``v = v0 + N z``).
    logdensity_fn
        Unnormalised log density of the fluxes ``v``, a pure, differentiable JAX function
        (finite on the polytope).
    num_chains, num_draws
        Chains (vectorised with ``vmap``) and kept draws per chain.
    num_warmup
        Discarded draws per chain (default ``max(num_draws // 2, 200)``, rounded up to whole
        blocks), in ``rounding_windows`` windows: each adapts the steps afresh from
        ``step_size`` and ends by re-rounding with the covariance of its second half.
    rounding
        Initial :class:`Rounding` or method name (``"ep"``, ``"mve"``, ``"none"``).
    trajectory_length, step_size, target_acceptance, max_steps
        Mean integration time per draw in rounded units, initial leapfrog step, the acceptance the
        adaptation aims at and the cap on leapfrog steps per draw.
    init_position
        Start of every chain in reduced coordinates (default: the rounding centre).
    seed
        Seed of all random numbers; equal seeds give identical draws.
    checkpoint
        Folder (:mod:`bayesflux.sampling.checkpoint`): the state after each warm-up window and
        each compiled call of kept draws is written there, and a rerun with the same arguments
        resumes after the last one, with the draws an uninterrupted run gives.

    Returns
    -------
    xarray.DataTree
        ``posterior/flux`` (chain, draw, reaction) and ``sample_stats`` with ArviZ's names
        (``acceptance_rate``, ``n_steps``, ``diverging``, ``step_size``, ``lp``; see
        :class:`HMCInfo`) and ``n_reflections``; attrs with the settings and frozen steps.
    """
    num_warmup = max(int(num_draws) // 2, 200) if num_warmup is None else int(num_warmup)
    if not (trajectory_length > 0 and step_size > 0 and 0 < target_acceptance < 1):
        raise ConfigError(
            "trajectory_length and step_size must be > 0 and target_acceptance in (0, 1), got "
            f"{trajectory_length}, {step_size}, {target_acceptance}"
        )
    rnd, z, chain_keys, plan, chunk = start_chains(
        poly, num_chains, num_draws, num_warmup, rounding_windows, block_size, rounding,
        init_position, seed,
    )  # fmt: skip
    static = dict(
        logdensity_fn=logdensity_fn,
        max_steps=int(max_steps),
        target_acceptance=float(target_acceptance),
        n_draws=chunk,
    )
    da = _da_init(jnp.full(num_chains, float(step_size)))  # used as is when num_warmup = 0
    directory, windows_done, blocks = None, [], []
    if checkpoint is not None:
        directory = Path(checkpoint)
        settings = dict(
            sampler="reflective HMC",
            num_chains=int(num_chains),
            num_draws=int(num_draws),
            num_warmup=int(num_warmup),
            rounding_windows=int(rounding_windows),
            trajectory_length=float(trajectory_length),
            step_size=float(step_size),
            target_acceptance=float(target_acceptance),
            max_steps=int(max_steps),
            seed=int(seed),
            block_size=int(block_size),
            trace=list(_TRACE),  # blocks of another layout (older names) are not resumed
        )
        stamp = fingerprint((poly.A, poly.b, rnd.L, rnd.center, z[0]), **settings)
        open_checkpoint(directory, stamp)
        windows_done = read_blocks(directory, len(plan) - 1, prefix="window")
        if windows_done:
            last = windows_done[-1]
            rnd, z = _rounding_from(last), last["z"]
            da = _DualAveraging(*(jnp.asarray(last[f"da_{f}"]) for f in _DualAveraging._fields))
        blocks = read_blocks(directory, plan[-1][1]) if len(windows_done) == len(plan) - 1 else []
    call, kept = sum(n for _, n in plan[: len(windows_done)]), {}
    phases = list(enumerate(plan))[len(windows_done) :]
    for p, (phase, n_calls) in progress_bar(phases, desc=f"HMC {poly.id}", disable=not progress):
        geom = rounded_geometry(poly, rnd)
        y = np.linalg.solve(rnd.L, (z - rnd.center).T).T
        state = _init_states(jnp.asarray(y), geom["offset"], geom["M"], logdensity_fn)
        adapt = phase == "warmup"
        if adapt:
            # a new rounding changes the scale: adapt afresh from the initial step
            da = _da_init(jnp.full(num_chains, float(step_size)))
        else:
            da = da._replace(log_step=da.log_step_avg)
        out = [[blk[k] for k in _TRACE] for blk in blocks] if not adapt else []
        if out:  # resume after the last kept call on disk, from its exact chain states
            last = blocks[-1]
            state = HMCState(*(jnp.asarray(last[f"state_{f}"]) for f in HMCState._fields))
            da = _DualAveraging(*(jnp.asarray(last[f"da_{f}"]) for f in _DualAveraging._fields))
            call += len(out)
        for _ in range(n_calls - len(out)):
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(chain_keys, call)
            call += 1
            (state, da), trace = _run(
                keys, state, da, float(trajectory_length), jnp.asarray(adapt), **geom, **static
            )
            out.append([np.asarray(a) for a in trace])
            if directory is not None and not adapt:
                write_block(directory, len(out) - 1, _state_arrays(state, da, out[-1]))
        trace = [np.concatenate(parts, axis=1) for parts in zip(*out)]
        zs = rnd.to_reduced(trace[0])
        z = zs[:, -1]
        if adapt:
            rnd = pooled_rounding(poly, zs[:, zs.shape[1] // 2 :], rnd)
            if directory is not None:
                write_block(directory, p, _window_arrays(rnd, z, da), prefix="window")
        else:
            names = ("z", *_TRACE[1:])
            kept = {k: a[:, :num_draws] for k, a in zip(names, [zs, *trace[1:]], strict=True)}
    stats = {k: kept[k] for k in (*HMCInfo._fields, "lp")}
    frozen = np.exp(np.asarray(da.log_step_avg))
    attrs = {
        "method": "reflective HMC",
        "network": poly.id,
        "rounding": rnd.method,
        "rounding_windows": sum(phase == "warmup" for phase, _ in plan),
        "dimension": poly.dim,
        "num_warmup": sum(n for phase, n in plan if phase == "warmup") * chunk,
        "trajectory_length": float(trajectory_length),
        "step_size_min": float(frozen.min()),
        "step_size_max": float(frozen.max()),
        "seed": int(seed),
    }
    return flux_tree(poly, kept["z"], stats, reactions, attrs)
