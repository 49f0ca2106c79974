"""Hit-and-run slice sampling on a polytope, with the rounding adapted to the target in warm-up.

One move (hit-and-run with a slice-sampling step along the line; Neal 2003, "Slice sampling",
Ann. Statist. 31, 705-767, sections 4 and 5.2): from ``x`` pick a direction ``θ`` (uniform on the
sphere, or a uniformly chosen axis), find the chord ``[λ_min, λ_max]`` of the polytope on the line
``x + λ θ``, draw the level ``log u = log p(x) - E``, ``E ~ Exp(1)``, and sample ``λ`` uniformly
from ``{λ : log p(x + λ θ) > log u}`` by *shrinkage*: start with the whole chord, propose
``λ ~ U(L, R)``, accept if it is above the level, else move the end on the proposal's side to the
proposal. The chord is the same for every point of the line, so the initial interval satisfies
Neal's reversibility condition and the move leaves ``p`` restricted to the polytope invariant
exactly; there is no step size and no rejection (every move goes to a new point), and a line that
crosses two modes can jump between them. Shrinkage toward ``λ = 0`` needs about
``log(chord / slice width)`` evaluations of ``p`` per move.

The directions are those of rounded coordinates ``z = c + L y``. :func:`sample_slice` starts with
a rounding of the polytope (EP of the uniform distribution) and, after each warm-up window,
replaces it by the covariance of the window's second half pooled over chains
(:func:`~bayesflux.sampling.kernel.covariance_rounding`): the axes of ``y`` become the target's
principal directions, so random lines run along the posterior's ridges instead of across them.
The rounding is frozen for the kept draws, which therefore come from a fixed, exact kernel.

Measured on FALCON's Laplace likelihood of the bundled example (24 dimensions): the chains reach
the posterior's bulk (log density about -160, where uniform-chord Metropolis stays near -210)
but move diffusively (bulk ESS about 6 of 4 x 1000 draws, unchanged by more thinning at equal
moves or more rounding windows): its mass lies along creases of the likelihood that a random line
leaves at once. :mod:`bayesflux.sampling.reflective_hmc` follows them.

Pure pieces: :func:`init` and :func:`build_kernel` (``kernel(rng_key, state) -> (state, info)``,
``thinning`` moves); vmap them over chains. The driver pieces that the windowed samplers share
(this one and reflective HMC): :func:`start_chains`, :func:`rounded_geometry`,
:func:`pooled_rounding` and :func:`flux_tree`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.progress import progress_bar
from bayesflux.sampling.hit_and_run import Direction, chord
from bayesflux.sampling.kernel import covariance_rounding
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding, round_polytope

__all__ = ["SliceInfo", "SliceState", "build_kernel", "init", "sample_slice"]


class SliceState(NamedTuple):
    """Position ``x (d,)``, slacks ``b - A x (m,)`` and ``log p(x)``."""

    position: jax.Array
    slack: jax.Array
    logdensity: jax.Array


class SliceInfo(NamedTuple):
    """Mean evaluations of ``p`` per move and mean chord length over the thinned moves."""

    n_evals: jax.Array
    chord_length: jax.Array


def init(
    position: jax.Array, A: jax.Array, b: jax.Array, logdensity_fn: Callable[[jax.Array], jax.Array]
) -> SliceState:
    """State at ``position`` (which must satisfy ``A x < b`` and have a finite ``log p``)."""
    position = jnp.asarray(position, dtype=jnp.result_type(float))
    A = jnp.asarray(A, dtype=position.dtype)
    return SliceState(position, jnp.asarray(b) - A @ position, jnp.asarray(logdensity_fn(position)))


def build_kernel(
    A: jax.Array,
    b: jax.Array,
    logdensity_fn: Callable[[jax.Array], jax.Array],
    *,
    direction: Direction = "random",
    thinning: int = 1,
    max_shrink: int = 200,
) -> Callable[[jax.Array, SliceState], tuple[SliceState, SliceInfo]]:
    """A hit-and-run slice kernel on ``{x : A x <= b}`` making ``thinning`` moves per call.

    ``max_shrink`` bounds the shrinkage proposals of one move; a move that used them all stays at
    ``x`` (after 200 shrinkages the interval is ``~2^-200`` of the chord in expectation, so this
    never happens for a density that is continuous at ``x``).
    """
    if direction not in ("coordinate", "random"):
        raise ConfigError(f"direction must be 'coordinate' or 'random', got {direction!r}")
    if int(thinning) < 1 or int(max_shrink) < 1:
        raise ConfigError(f"thinning and max_shrink must be >= 1, got {thinning}, {max_shrink}")
    A = jnp.asarray(A, dtype=jnp.result_type(float))
    b = jnp.asarray(b, dtype=A.dtype)
    d = A.shape[1]
    thinning, max_shrink = int(thinning), int(max_shrink)

    def move(state: SliceState, key: jax.Array) -> tuple[SliceState, tuple]:
        k_dir, k_level, k_shrink = jax.random.split(key, 3)
        if direction == "coordinate":
            theta = jax.nn.one_hot(jax.random.randint(k_dir, (), 0, d), d, dtype=A.dtype)
        else:
            theta = jax.random.normal(k_dir, (d,), A.dtype)
            theta = theta / jnp.linalg.norm(theta)
        a_theta = A @ theta
        lo, hi = chord(state.slack, a_theta)
        level = state.logdensity - jax.random.exponential(k_level, (), A.dtype)

        def cond(c):
            return ~c[4] & (c[5] < max_shrink)

        def body(c):
            left, right, _, _, _, i = c
            lam = jax.random.uniform(
                jax.random.fold_in(k_shrink, i), (), A.dtype, minval=left, maxval=right
            )
            lp = logdensity_fn(state.position + lam * theta)
            ok = lp > level
            left = jnp.where(~ok & (lam < 0), lam, left)
            right = jnp.where(~ok & (lam >= 0), lam, right)
            return left, right, lam, lp, ok, i + 1

        zero = jnp.zeros((), A.dtype)
        _, _, lam, lp, ok, n = jax.lax.while_loop(
            cond, body, (lo, hi, zero, state.logdensity, jnp.zeros((), bool), jnp.zeros((), int))
        )
        lam = jnp.where(ok, lam, 0.0)
        new = SliceState(
            state.position + lam * theta,
            state.slack - lam * a_theta,
            jnp.where(ok, lp, state.logdensity),
        )
        return new, (n.astype(A.dtype), hi - lo)

    def kernel(rng_key: jax.Array, state: SliceState) -> tuple[SliceState, SliceInfo]:
        state, (n, length) = jax.lax.scan(move, state, jax.random.split(rng_key, thinning))
        # refresh the slacks once per returned state so round-off cannot accumulate
        state = state._replace(slack=b - A @ state.position)
        return state, SliceInfo(jnp.mean(n), jnp.mean(length))

    return kernel


@partial(jax.jit, static_argnames=("logdensity_fn",))
def _init_states(y, A, b, offset, M, logdensity_fn):
    """:func:`init` of every chain at rounded positions ``y (chains, d)``."""
    return jax.vmap(lambda q: init(q, A, b, lambda u: logdensity_fn(offset + M @ u)))(y)


@partial(jax.jit, static_argnames=("logdensity_fn", "direction", "thinning", "n_draws"))
def _run(keys, state, A, b, offset, M, *, logdensity_fn, direction, thinning, n_draws):
    """``n_draws`` draws of every chain (``vmap`` chains, ``scan`` draws) in rounded coordinates.

    The geometry is an argument, so a new rounding reuses the compiled function.
    """
    kernel = build_kernel(
        A, b, lambda y: logdensity_fn(offset + M @ y), direction=direction, thinning=thinning
    )

    def one_chain(key, state):
        def body(carry, k):
            new, info = kernel(k, carry)
            return new, (new.position, info.n_evals, info.chord_length, new.logdensity)

        return jax.lax.scan(body, state, jax.random.split(key, n_draws))

    return jax.vmap(one_chain)(keys, state)


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
    sampler (:func:`sample_slice`, :func:`~bayesflux.sampling.reflective_hmc.sample_hmc`)."""
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


def sample_slice(
    poly: Polytope,
    logdensity_fn: Callable[[jax.Array], jax.Array],
    *,
    num_chains: int = 4,
    num_draws: int = 1000,
    num_warmup: int | None = None,
    thinning: int | None = None,
    direction: Direction = "random",
    rounding: Rounding | str = "ep",
    rounding_windows: int = 3,
    init_position: np.ndarray | None = None,
    seed: int = 0,
    block_size: int = 250,
    progress: bool = False,
    reactions: Sequence[str] | None = None,
) -> xr.DataTree:
    """Hit-and-run slice sampling of ``p(v)`` on a polytope; fluxes as an ArviZ DataTree.

    Parameters
    ----------
    poly
        The polytope (reduced coordinates ``z``, fluxes ``v = v0 + N z``).
    logdensity_fn
        Unnormalised log density of the fluxes ``v`` (a pure JAX function).
    num_chains, num_draws
        Chains (vectorised with ``vmap``) and kept draws per chain.
    num_warmup
        Discarded draws per chain (default ``max(num_draws // 2, 100)``, rounded up to whole
        blocks), split into
        ``rounding_windows`` windows after each of which the rounding is re-estimated from the
        draws of the window's second half (0 windows: keep ``rounding``).
    thinning
        Moves per kept draw (default the dimension ``d``).
    direction
        ``"random"`` (default) or ``"coordinate"`` lines in rounded coordinates.
    rounding
        Initial :class:`Rounding` or method name (``"ep"``, ``"mve"``, ``"none"``).
    init_position
        Start of every chain in reduced coordinates (default: the rounding centre).
    seed
        Seed of all random numbers; equal seeds give identical draws.
    block_size
        Draws per compiled call (memory of the kept trace per call).

    Returns
    -------
    xarray.DataTree
        ``posterior/flux`` (chain, draw, reaction), ``sample_stats`` (``n_evals``: evaluations
        of ``p`` per move, ``chord_length``, ``lp``), attrs with the settings.
    """
    num_warmup = max(int(num_draws) // 2, 100) if num_warmup is None else int(num_warmup)
    rnd, z, chain_keys, plan, chunk = start_chains(
        poly, num_chains, num_draws, num_warmup, rounding_windows, block_size, rounding,
        init_position, seed,
    )  # fmt: skip
    thinning = poly.dim if thinning is None else int(thinning)
    static = dict(
        logdensity_fn=logdensity_fn, direction=direction, thinning=thinning, n_draws=chunk
    )
    call, kept = 0, {}
    bar = progress_bar(plan, desc=f"slice sampling {poly.id}", disable=not progress)
    for phase, n_calls in bar:
        geom = rounded_geometry(poly, rnd)
        y = np.linalg.solve(rnd.L, (z - rnd.center).T).T
        state = _init_states(
            jnp.asarray(y), geom["A"], geom["b"], geom["offset"], geom["M"], logdensity_fn
        )
        out = []
        for _ in range(n_calls):
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(chain_keys, call)
            call += 1
            state, trace = _run(keys, state, **geom, **static)
            out.append([np.asarray(a) for a in trace])
        trace = [np.concatenate(parts, axis=1) for parts in zip(*out)]
        zs = rnd.to_reduced(trace[0])
        z = zs[:, -1]
        if phase == "warmup":
            rnd = pooled_rounding(poly, zs[:, zs.shape[1] // 2 :], rnd)
        else:
            names = ("z", "n_evals", "chord_length", "lp")
            kept = {k: a[:, :num_draws] for k, a in zip(names, [zs, *trace[1:]])}
    stats = {k: kept[k] for k in ("n_evals", "chord_length", "lp")}
    attrs = {
        "method": "hit-and-run slice sampling",
        "network": poly.id,
        "kernel": direction,
        "rounding": rnd.method,
        "rounding_windows": sum(phase == "warmup" for phase, _ in plan),
        "dimension": poly.dim,
        "thinning": thinning,
        "num_warmup": sum(n for phase, n in plan if phase == "warmup") * chunk,
        "seed": int(seed),
        "mean_evals_per_move": float(np.mean(kept["n_evals"])),
    }
    return flux_tree(poly, kept["z"], stats, reactions, attrs)
