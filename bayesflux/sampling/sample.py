"""``sample_fluxes``: many vectorised hit-and-run chains on a flux polytope, as an ArviZ DataTree.

Chains run in jit-compiled blocks of ``block_size`` draws (``lax.scan`` over draws; chains by
``vmap`` on accelerators, one after the other on a CPU), one compilation per run. Every block's
random numbers are drawn on the host from ``(seed, block index)`` only, so a run split into pieces
gives the same draws as one uninterrupted run. With ``checkpoint=DIR`` each finished
block (its draws and the chains' last states) is written atomically to ``DIR/block_NNNNNN.npz``;
calling again with the same arguments resumes after the last block on disk.

With a Gaussian ``step_size`` (:mod:`bayesflux.sampling.hit_and_run`) the warm-up blocks adapt
each chain's steps by dual averaging; the averaged steps are then frozen, so the kept draws come
from a fixed, exact Metropolis kernel. The adaptation state is part of every checkpoint block, so
a resumed run freezes the same steps as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.network import as_network
from bayesflux.progress import progress_bar
from bayesflux.results import provenance
from bayesflux.sampling import hit_and_run
from bayesflux.sampling.checkpoint import fingerprint, open_checkpoint, read_blocks, write_block
from bayesflux.sampling.hit_and_run import DualAveragingState, HitAndRunState
from bayesflux.sampling.kernel import HitAndRun
from bayesflux.sampling.polytope import LinearConstraint, Polytope, polytope
from bayesflux.sampling.rounding import Rounding

__all__ = ["sample_fluxes", "sample_polytope"]


def _fingerprint(sampler: HitAndRun, **settings) -> str:
    poly, rnd = sampler.poly, sampler.rounding
    return fingerprint((poly.A, poly.b, rnd.L, rnd.center), **settings)


def _log_target(logdensity_fn, offset, M):
    return None if logdensity_fn is None else (lambda y: logdensity_fn(offset + M @ y))


def _block_draws(
    seed: int,
    block: int,
    shape: tuple[int, int, int],
    dim: int,
    direction: str,
    gaussian: bool,
    metropolis: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The random numbers of one block, ``shape = (chains, draws, moves per draw)``.

    Drawn on the host by numpy's PCG64 seeded with ``(seed, block)``: no random-number generator
    is compiled (one threefry call costs about a second of XLA compilation on a CPU), and a block
    depends on nothing but the seed and its index. Coordinate axes come in random permutations of
    the ``d`` axes, concatenated and cut to the moves per draw, so ``d`` moves update every axis
    once; the order is independent of the state, so every sweep keeps the target invariant.
    Random directions are threefry keys of each draw (a ``(moves, d)`` normal array per draw is
    generated inside the compiled block).
    """
    rng = np.random.default_rng([int(seed) & (2**64 - 1), int(block)])
    chains, draws, moves = shape
    if direction == "coordinate":
        sweeps = -(-moves // dim)
        order = np.argsort(rng.random((chains, draws, sweeps, dim)), axis=-1)
        first = order.reshape(chains, draws, sweeps * dim)[..., :moves].astype(np.int32)
    else:
        first = rng.integers(0, 2**32, (chains, draws, 2), dtype=np.uint32)
    lam = rng.standard_normal(shape) if gaussian else rng.random(shape)
    log_u = np.log(rng.random(shape)) if metropolis else None
    return first, lam, log_u


@partial(jax.jit, static_argnames=("direction", "logdensity_fn", "target_acceptance", "batched"))
def _run_block(
    draws,
    state,
    adaptation,
    adapt,
    A,
    b,
    offset,
    M,
    *,
    direction,
    logdensity_fn,
    target_acceptance,
    batched,
):
    """Draws of every chain from the random numbers ``draws`` (``scan`` over draws).

    One function for the uniform chord (``adaptation`` None) and the Gaussian step, whose warm-up
    and kept blocks differ only in the traced flag ``adapt``; block length and thinning come from
    the shapes of ``draws``, and the polytope enters as arguments, so one compilation serves every
    block of a run and every polytope of the same shape. Chains are ``vmap``-ped (``batched``,
    accelerators) or run one after the other (``lax.map``, CPU: one core gains nothing from a
    batch, and the unbatched loop compiles and runs faster).
    """
    target = _log_target(logdensity_fn, offset, M)
    d = A.shape[1]
    if adaptation is None:
        sweep = hit_and_run.build_sweep(A, b, direction=direction, logdensity_fn=target)
    else:
        sweep = hit_and_run.build_adaptive_sweep(
            A, b, direction=direction, logdensity_fn=target, target_acceptance=target_acceptance
        )

    def one_chain(args):
        def body(carry, draw):
            state, da = carry
            first, lam, log_u = draw
            if direction == "random":
                key = jax.random.wrap_key_data(first)
                first = jax.random.normal(key, (lam.shape[0], d), A.dtype)
            if da is None:
                state, info = sweep(state, (first, lam, log_u))
            else:
                state, da, info = sweep(state, da, (first, lam, log_u), adapt)
            out = (state.position, info.acceptance_rate, info.chord_length, state.logdensity)
            return (state, da), out

        chain_draws, state, da = args
        return jax.lax.scan(body, (state, da), chain_draws)

    args = (draws, state, adaptation)
    (state, adaptation), out = (
        jax.vmap(one_chain)(args) if batched else jax.lax.map(one_chain, args)
    )
    return state, adaptation, out


def sample_polytope(
    sampler: HitAndRun,
    *,
    num_chains: int = 4,
    num_draws: int = 1000,
    num_warmup: int | None = None,
    seed: int = 0,
    block_size: int = 100,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    reactions: Sequence[str] | None = None,
    attrs: dict | None = None,
) -> xr.DataTree:
    """Run ``num_chains`` chains of ``sampler`` and return fluxes as an ArviZ DataTree.

    See :func:`sample_fluxes` for the parameters; ``sampler`` fixes polytope, rounding, direction,
    thinning and the step size (and whether warm-up adapts it).
    """
    for name, value in (
        ("num_chains", num_chains),
        ("num_draws", num_draws),
        ("block_size", block_size),
    ):
        if int(value) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    num_warmup = max(1, num_draws // 10) if num_warmup is None else int(num_warmup)
    if num_warmup < 0:
        raise ConfigError(f"num_warmup must be >= 0, got {num_warmup}")
    warm_blocks = -(-num_warmup // block_size)
    n_blocks = warm_blocks + -(-num_draws // block_size)

    d = sampler.poly.dim
    b = np.asarray(sampler._b)
    if sampler.logdensity_fn is None:
        state = HitAndRunState(
            np.zeros((num_chains, d)), np.tile(b, (num_chains, 1)), np.zeros(num_chains)
        )
    else:
        state = jax.tree.map(
            lambda a: np.repeat(np.asarray(a)[None], num_chains, axis=0), sampler.init_state()
        )
    gaussian = sampler.step_size is not None
    adaptation = None
    if gaussian:
        one = hit_and_run.init_adaptation(sampler.step_size, dim=d, direction=sampler.direction)
        adaptation = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_chains, *a.shape)), one)
    blocks: list[dict[str, np.ndarray]] = []
    directory = None
    if checkpoint is not None:
        directory = Path(checkpoint)
        stamp = _fingerprint(
            sampler,
            seed=int(seed),
            num_chains=int(num_chains),
            block_size=int(block_size),
            warm_blocks=warm_blocks,
            direction=sampler.direction,
            thinning=sampler.thinning,
            target=sampler.logdensity_fn is not None,
            step_size=None if not gaussian else np.asarray(sampler.step_size).tolist(),
            adapt=sampler.adapt_step_size,
            target_acceptance=sampler.target_acceptance,
        )
        open_checkpoint(directory, stamp)
        blocks = read_blocks(directory, n_blocks)
        if blocks:
            last = blocks[-1]
            state = HitAndRunState(last["position"], last["slack"], last["logdensity"])
            if gaussian:
                adaptation = DualAveragingState(
                    *(jnp.asarray(last[f"adapt_{f}"]) for f in DualAveragingState._fields)
                )

    geometry = dict(A=sampler._A, b=sampler._b, offset=sampler._offset, M=sampler._M)
    static = dict(
        direction=sampler.direction,
        logdensity_fn=sampler.logdensity_fn,
        target_acceptance=sampler.target_acceptance if gaussian else None,
        batched=jax.default_backend() != "cpu",
    )
    shape = (num_chains, block_size, sampler.thinning)
    metropolis = sampler.logdensity_fn is not None
    todo = range(len(blocks), n_blocks)
    for i in progress_bar(todo, desc=f"sampling {sampler.poly.id}", disable=not progress):
        draws = _block_draws(seed, i, shape, d, sampler.direction, gaussian, metropolis)
        if gaussian and sampler.adapt_step_size and i == warm_blocks:
            adaptation = hit_and_run.freeze(adaptation)
        adapt = gaussian and sampler.adapt_step_size and i < warm_blocks
        state, adaptation, (y, acc, length, logp) = _run_block(
            draws, state, adaptation, np.asarray(adapt), **geometry, **static
        )
        block = {
            "y": np.asarray(y),
            "acceptance_rate": np.asarray(acc),
            "chord_length": np.asarray(length),
            "lp": np.asarray(logp),
            "position": np.asarray(state.position),
            "slack": np.asarray(state.slack),
            "logdensity": np.asarray(state.logdensity),
        }
        if gaussian:
            block.update(
                {f"adapt_{f}": np.asarray(a) for f, a in zip(adaptation._fields, adaptation)}
            )
        if directory is not None:
            write_block(directory, i, block)
        blocks.append(block)

    kept = blocks[warm_blocks:]
    y = np.concatenate([blk["y"] for blk in kept], axis=1)[:, :num_draws]
    stats = {
        k: np.concatenate([blk[k] for blk in kept], axis=1)[:, :num_draws]
        for k in ("acceptance_rate", "chord_length", "lp")
    }
    flux = np.asarray(sampler._offset) + y @ np.asarray(sampler._M).T
    names = (
        list(reactions)
        if reactions
        else (list(sampler.poly.reactions) or [f"x{k}" for k in range(flux.shape[-1])])
    )
    sample_stats = {
        "acceptance_rate": stats["acceptance_rate"],
        "chord_length": stats["chord_length"],
    }
    if sampler.logdensity_fn is not None:
        sample_stats["lp"] = stats["lp"]
    tree = arviz_base.from_dict(
        {"posterior": {"flux": flux}, "sample_stats": sample_stats},
        dims={"flux": ["reaction"]},
        coords={"reaction": names},
    )
    attrs = dict(attrs or {})
    if gaussian:
        frozen = np.asarray(jnp.exp(adaptation.log_step))
        attrs.update(
            step_size_min=float(frozen.min()),
            step_size_median=float(np.median(frozen)),
            step_size_max=float(frozen.max()),
        )
    tree.attrs.update(attrs)
    tree["posterior"].attrs.update(attrs)
    return tree


def _polytope_of(network, constraints) -> Polytope:
    """``network`` itself if it is a :class:`Polytope` (no extra constraints), else its polytope."""
    if isinstance(network, Polytope):
        if constraints:
            raise ConfigError("constraints apply to a network, not to a ready Polytope")
        return network
    return polytope(as_network(network), constraints=constraints)


def _billiard(
    network,
    *,
    constraints,
    num_warmup: int,
    trajectory_length: float,
    uniform: bool,
    **options,
) -> xr.DataTree:
    """The billiard walk of :func:`sample_fluxes`: reflective HMC with a zero log density, its
    first ``num_warmup`` draws discarded (the rounding stays the given one)."""
    from bayesflux.sampling.reflective_hmc import sample_hmc

    if not uniform:
        raise ConfigError(
            "kernel='billiard' samples the uniform distribution; for a log density use "
            "bayesflux.sampling.sample_hmc or FluxPosterior.sample(method='hmc')"
        )
    if not trajectory_length > 0:
        raise ConfigError(f"trajectory_length must be > 0, got {trajectory_length}")
    poly = _polytope_of(network, constraints)
    num_draws = int(options.pop("num_draws"))
    tree = sample_hmc(
        poly,
        lambda v: jnp.zeros((), v.dtype),
        num_draws=num_warmup + num_draws,
        num_warmup=0,
        rounding_windows=0,
        trajectory_length=float(trajectory_length),
        # a straight path: the step only splits it (at most 1000 reflections per step)
        step_size=float(trajectory_length) / 4,
        **options,
    )
    kept = tree.map_over_datasets(
        lambda ds: ds.isel(draw=slice(num_warmup, None)).assign_coords(draw=np.arange(num_draws))
        if "draw" in ds.dims
        else ds
    )
    attrs = {
        **tree.attrs,
        "method": "billiard walk",
        "kernel": "billiard",
        "num_warmup": num_warmup,
        "trajectory_length": float(trajectory_length),
    }
    if not isinstance(network, Polytope):
        attrs = provenance(
            "billiard walk",
            as_network(network),
            **{k: v for k, v in attrs.items() if k not in ("method", "network")},
        )
    kept.attrs = attrs
    kept["posterior"].attrs.update(attrs)
    return kept


def sample_fluxes(
    network,
    *,
    num_chains: int = 4,
    num_draws: int = 1000,
    thinning: int | None = None,
    num_warmup: int | None = None,
    seed: int = 0,
    kernel: Literal["coordinate", "random", "billiard"] | HitAndRun = "coordinate",
    rounding: Literal["ep", "mve", "none"] | Rounding = "ep",
    trajectory_length: float = 2.0,
    constraints: Sequence[LinearConstraint | tuple] = (),
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
    step_size: float | np.ndarray | None = None,
    adapt_step_size: bool = True,
    target_acceptance: float = 0.4,
    block_size: int = 100,
    progress: bool = False,
    checkpoint: str | Path | None = None,
) -> xr.DataTree:
    """Sample fluxes uniformly (or from ``logdensity_fn``) on the flux polytope of a network.

    Parameters
    ----------
    network
        A :class:`~bayesflux.Network`, ``cobra.Model``, model file, bundled dataset name, or a
        :class:`Polytope`.
    num_chains, num_draws
        Chains (vectorised with ``vmap``) and kept draws per chain.
    thinning
        Hit-and-run moves per kept draw; defaults to the polytope dimension ``d``.
    num_warmup
        Draws discarded at the start of each chain (default ``num_draws // 10``).
    seed
        Seed of all random numbers; equal seeds give identical draws.
    kernel
        ``"coordinate"`` or ``"random"`` hit-and-run, a configured :class:`HitAndRun`, or
        ``"billiard"``: the billiard walk (Polyak and Gryazina 2014, "Billiard walk - a new
        sampling algorithm for control and optimization", IFAC Proc. 47), straight paths of
        random length reflected at the facets, with a Gaussian speed redrawn per draw: reflective
        HMC (:func:`~bayesflux.sampling.reflective_hmc.sample_hmc`) with a constant density,
        exact for the uniform distribution (uniform target only; ``thinning`` not used). It
        mixes where coordinate hit-and-run crawls along long one-sided tails: on iJO1366
        (d = 582) 4 x 500 billiard draws gave a min bulk ESS of 326 (R-hat 1.03) where
        4 x 2000 coordinate hit-and-run draws gave 6 (R-hat 1.79), ``benchmarks/bench_sampling.py``.
    trajectory_length
        Billiard only: the mean path length in rounded coordinates (paths are ``U(0, 2 T)``).
    rounding
        ``"ep"`` (Expectation Propagation, default), ``"mve"`` (inscribed ellipsoid), ``"none"``,
        or a :class:`Rounding` of one's own, e.g. ``covariance_rounding`` (in
        :mod:`bayesflux.sampling.kernel`) of a posterior covariance; chains start at its centre.
    constraints
        Extra :class:`LinearConstraint` s on the fluxes.
    logdensity_fn
        Unnormalised log density of the fluxes ``v`` (hit-and-run Metropolis); None for uniform.
    step_size
        None (default): a uniform point of each chord. Otherwise the (initial) sd of a Gaussian
        step along the chord in rounded coordinates, a scalar or one per coordinate; proposals
        off the chord are rejected. Use it when ``logdensity_fn`` is concentrated.
    adapt_step_size, target_acceptance
        Adapt the Gaussian steps during warm-up by dual averaging toward this acceptance per
        move (default 0.4); the averaged steps are frozen for the kept draws.
    block_size
        Draws per compiled block (and per checkpoint file). A block's random numbers are drawn
        at once: about ``20 * num_chains * block_size * thinning`` bytes.
    progress
        Show a progress bar over blocks.
    checkpoint
        Folder for per-block checkpoints; an interrupted run resumes from it.

    Returns
    -------
    xarray.DataTree
        ``posterior/flux`` (chain, draw, reaction) and ``sample_stats`` (``acceptance_rate``,
        ``chord_length``, ``lp`` for a non-uniform target), ready for ``arviz.summary``.
    """
    if kernel == "billiard":
        return _billiard(
            network,
            constraints=constraints,
            num_chains=num_chains,
            num_draws=num_draws,
            num_warmup=num_draws // 10 if num_warmup is None else int(num_warmup),
            seed=seed,
            rounding=rounding,
            trajectory_length=trajectory_length,
            block_size=block_size,
            progress=progress,
            checkpoint=checkpoint,
            uniform=logdensity_fn is None and step_size is None,
        )
    if isinstance(kernel, HitAndRun):
        sampler = kernel
    else:
        poly = _polytope_of(network, constraints)
        if kernel not in ("coordinate", "random"):
            raise ConfigError(
                f"unknown kernel {kernel!r}; expected 'coordinate', 'random' or 'billiard'"
            )
        sampler = HitAndRun(
            poly,
            rounding=rounding,
            direction=kernel,
            thinning=poly.dim if thinning is None else int(thinning),
            logdensity_fn=logdensity_fn,
            step_size=step_size,
            adapt_step_size=adapt_step_size,
            target_acceptance=target_acceptance,
        )
    poly = sampler.poly
    attrs = {
        "method": "hit-and-run",
        "network": poly.id,
        "kernel": sampler.direction,
        "rounding": sampler.rounding.method,
        "log_volume": sampler.rounding.log_volume,
        "dimension": poly.dim,
        "n_constraints": poly.n_constraints,
        "thinning": sampler.thinning,
        "seed": int(seed),
        "proposal": "uniform chord" if sampler.step_size is None else "gaussian step",
    }
    if not isinstance(network, Polytope):
        attrs = provenance(
            "hit-and-run",
            as_network(network),
            **{k: v for k, v in attrs.items() if k not in ("method", "network")},
        )
    return sample_polytope(
        sampler,
        num_chains=num_chains,
        num_draws=num_draws,
        num_warmup=num_warmup,
        seed=seed,
        block_size=block_size,
        progress=progress,
        checkpoint=checkpoint,
        attrs=attrs,
    )
