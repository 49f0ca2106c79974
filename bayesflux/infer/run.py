"""Run a NumPyro kernel on a flux model in blocks, checkpointed, and return an ArviZ DataTree.

:func:`sample` drives any ``MCMCKernel`` (:class:`ReflectiveHMC`, NumPyro's ``NUTS``, ...)
through its contract, as ``numpyro.infer.MCMC(chain_method="vectorized")`` does, with
bayesflux's vocabulary (``num_draws``, ``num_warmup``, ``num_chains``, ``thinning``, ``seed``,
``checkpoint``): ``kernel.init`` with one key per chain, then blocks of kept draws, each one
compiled loop of ``kernel.sample`` (the warm-up runs at the start of the first; one compilation
for all blocks, which ``MCMC.run`` per block would not give), constrained by
``kernel.postprocess_fn``. With ``checkpoint`` each block (its draws and end state) is written to
a folder (:class:`~bayesflux.sampling.checkpoint.StateStore`); a rerun with the same settings
resumes after the last block and gives the draws of an uninterrupted run.
Diagnostics (max R-hat, min bulk and tail ESS) are logged, stored in the tree's attrs and warned
about below their thresholds.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import xarray as xr
from numpyro.infer.mcmc import MCMCKernel

from bayesflux.errors import ConfigError, MemoryLimitError
from bayesflux.infer.convert import EXTRA_FIELDS, build_datatree, diagnostics
from bayesflux.infer.reflective_hmc import ReflectiveHMC
from bayesflux.infer.sites import (
    CHAIN_AXIS,
    TRACING,
    PolytopeKernel,
    polytope_sites,
    traces_models,
)
from bayesflux.progress import progress_bar
from bayesflux.sampling.checkpoint import StateStore, fingerprint

__all__ = ["RHAT_THRESHOLD", "ESS_THRESHOLD", "sample"]

log = logging.getLogger(__name__)

RHAT_THRESHOLD = 1.01  # Vehtari et al. (2021): rank-normalised split R-hat
ESS_THRESHOLD = 100  # per chain-set minimum bulk / tail ESS below which estimates are noisy


@traces_models
def _stamp(kernel: MCMCKernel, model, args, kwargs, **settings) -> str:
    """Fingerprint of a run: the model's polytopes and observed data, kernel and settings."""
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(*args, **kwargs)
    arrays = [a for p in polytope_sites(trace).values() for a in (p.A, p.b)]
    arrays += [
        np.asarray(s["value"]) for s in trace.values() if s["type"] == "sample" and s["is_observed"]
    ]
    options = {k: v for k, v in vars(kernel).items() if isinstance(v, int | float | str | bool)}
    return fingerprint(tuple(arrays), kernel=type(kernel).__name__, **options, **settings)


def _field(state, name: str):
    for part in name.split("."):
        state = getattr(state, part)
    return state


def _compiled_block(kernel: MCMCKernel, args, kwargs, size: int, fields, chain_method: str):
    """``block(state, warmup, thinning) -> (state, (z, stats))``: ``warmup`` transitions, then
    ``size`` kept draws each after ``thinning`` transitions, as ``(chain, draw, ...)`` arrays of
    the unconstrained sites and ``fields``. Each chain runs its own loop (``kernel.sample`` on
    one chain's state), mapped over chains by ``vmap`` (``"vectorized"``) or ``lax.map``
    (``"sequential"``: on a CPU a batch gains nothing and a batched chain waits for the slowest
    one). The counts are traced: one compilation serves the warm-up and every block."""

    def observed(state):
        return getattr(state, kernel.sample_field), {f: _field(state, f) for f in fields}

    def one_chain(state, warmup, thinning):
        """One loop over every transition (one copy of the kernel in the compiled code), the
        state after each ``thinning``-th one past ``warmup`` written to the next slot."""
        slots = jax.tree.map(lambda a: jnp.zeros((size, *a.shape), a.dtype), observed(state))

        def body(i, carry):
            state, slots = carry
            state = kernel.sample(state, args, kwargs)
            slot, rest = jnp.divmod(i - warmup, thinning)
            now = observed(state)
            slots = jax.lax.cond(
                (i >= warmup) & (rest == thinning - 1),
                lambda b: jax.tree.map(lambda buf, a: buf.at[slot].set(a), b, now),
                lambda b: b,
                slots,
            )
            return state, slots

        return jax.lax.fori_loop(0, warmup + size * thinning, body, (state, slots))

    @jax.jit
    def block(state, warmup, thinning):
        if not isinstance(kernel, PolytopeKernel):  # NumPyro's own kernels step a whole batch
            state, out = one_chain(state, warmup, thinning)
            return state, jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out)
        if chain_method == "vectorized":
            return jax.vmap(one_chain, in_axes=(0, None, None), axis_name=CHAIN_AXIS)(
                state, warmup, thinning
            )
        return jax.lax.map(lambda s: one_chain(s, warmup, thinning), state)

    return block


def sample(
    model: Callable,
    *,
    kernel: MCMCKernel | None = None,
    num_draws: int = 1000,
    num_warmup: int | None = None,
    num_chains: int = 4,
    thinning: int = 1,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    block_size: int | None = None,
    progress: bool = False,
    posterior_predictive: bool = False,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    coords: dict | None = None,
    dims: dict | None = None,
    attrs: dict | None = None,
    chain_method: str | None = None,
    init_params: dict | None = None,
) -> xr.DataTree:
    """Posterior draws of ``model`` by ``kernel`` (default :class:`ReflectiveHMC` ``(model)``).

    Parameters
    ----------
    num_draws, num_warmup, num_chains, thinning
        Kept draws per chain, warm-up iterations (default ``max(num_draws // 2, 500)``), chains,
        and iterations per kept draw.
    seed
        Seed of every random number: equal seeds give equal draws.
    checkpoint, block_size
        Folder for each block of ``block_size`` kept draws (default 250
        with a checkpoint, else all draws in one block).
    posterior_predictive
        Add draws of every observed site at the posterior draws.
    coords, dims, attrs
        Passed to :func:`~bayesflux.infer.build_datatree` (dims of deterministic sites).
    init_params
        Where the chains start: unconstrained site values with a leading chain axis (default:
        the kernel's init strategy; polytope sites at dispersed points).
    chain_method
        ``"vectorized"`` (chains batched by ``vmap``) or ``"sequential"`` (one after the other
        in one compiled loop); default vectorized on an accelerator, and on a CPU the kernel's
        ``cpu_chain_method`` (sequential where it has none: a batched chain waits for the
        slowest one).

    Returns
    -------
    xarray.DataTree
        :func:`~bayesflux.infer.build_datatree`'s groups; attrs ``max_rhat``, ``min_ess_bulk``,
        ``min_ess_tail`` over every moving posterior entry, ``setup_seconds`` (tracing the model,
        starting the chains, compiling) and ``sampling_seconds`` (the compiled blocks run in
        this call; blocks read from a checkpoint take none), wall time; ``setup_cpu_seconds``
        and ``sampling_cpu_seconds`` the same in CPU time of the process (all its threads).
    """
    for label, value, low in (
        ("num_draws", num_draws, 1),
        ("num_chains", num_chains, 1),
        ("thinning", thinning, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ConfigError(f"{label} must be an integer >= {low}, got {value!r}")
    num_warmup = max(num_draws // 2, 500) if num_warmup is None else num_warmup
    if (
        isinstance(num_warmup, bool)
        or not isinstance(num_warmup, int | np.integer)
        or num_warmup < 0
    ):
        raise ConfigError(f"num_warmup must be an integer >= 0, got {num_warmup!r}")
    model_kwargs = model_kwargs or {}
    kernel = kernel or ReflectiveHMC(model)
    block = int(block_size or (250 if checkpoint is not None else num_draws))
    if block < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size!r}")
    block = min(block, num_draws)
    fields = getattr(kernel, "stat_fields", EXTRA_FIELDS + ("diverging",))
    if chain_method is None:
        on_cpu = getattr(kernel, "cpu_chain_method", "sequential")
        chain_method = on_cpu if jax.default_backend() == "cpu" else "vectorized"
    if chain_method not in ("vectorized", "sequential"):
        raise ConfigError(
            f"chain_method must be 'vectorized' or 'sequential', got {chain_method!r}"
        )
    key = jax.random.key(int(seed))
    keys = jax.random.split(key, num_chains)
    start, start_cpu = time.perf_counter(), time.process_time()
    n_blocks = -(-num_draws // block)
    counts = (jnp.asarray(int(num_warmup)), jnp.asarray(int(thinning)))
    state = kernel.init(keys, int(num_warmup), init_params, model_args, model_kwargs)
    _check_memory(kernel, state, model_args, model_kwargs, num_chains, num_draws)
    store = None
    if checkpoint is not None:
        stamp = _stamp(
            kernel, model, model_args, model_kwargs, num_draws=int(num_draws),
            num_warmup=int(num_warmup), num_chains=int(num_chains), thinning=int(thinning),
            seed=int(seed), block_size=block,
        )  # fmt: skip
        store = StateStore(Path(checkpoint), stamp, prefix="mcmc")
    collect = _compiled_block(kernel, model_args, model_kwargs, block, fields, chain_method)
    with TRACING:
        collect = collect.lower(state, *counts).compile()  # compiled here: set-up timed apart
    setup_seconds, sampling_seconds = time.perf_counter() - start, 0.0
    setup_cpu, sampling_cpu = time.process_time() - start_cpu, 0.0
    constrain = jax.jit(jax.vmap(jax.vmap(kernel.postprocess_fn(model_args, model_kwargs))))
    samples: dict[str, np.ndarray] = {}
    stats: dict[str, np.ndarray] = {}

    def keep(into: dict, new: dict, b: int) -> None:
        """Block ``b``'s draws into the run's arrays: the arrays of a one-block run as they
        are, else written into arrays for all draws made at the first block (no list of
        blocks and no concatenated copy: memory holds the draws once, plus one block)."""
        for k, v in new.items():
            if n_blocks == 1:
                into[k] = v[:, :num_draws]
                continue
            if k not in into:
                into[k] = np.empty((v.shape[0], num_draws, *v.shape[2:]), v.dtype)
            part = into[k][:, b * block : (b + 1) * block]
            part[...] = v[:, : part.shape[1]]

    for b in progress_bar(range(n_blocks), desc="sampling", disable=not progress):
        stored = store.load(b, state) if store is not None else None
        if stored is not None:
            arrays = store.arrays(b)
            new_samples = {k[2:]: v for k, v in arrays.items() if k.startswith("s:")}
            new_stats = {k[2:]: v for k, v in arrays.items() if k.startswith("x:")}
            state = stored
        else:
            warmup = int(num_warmup) if b == 0 else 0  # the warm-up runs with the first block
            tick, tick_cpu = time.perf_counter(), time.process_time()
            state, (z, collected) = collect(state, jnp.asarray(warmup), counts[1])
            jax.block_until_ready(z)
            sampling_seconds += time.perf_counter() - tick
            sampling_cpu += time.process_time() - tick_cpu
            with TRACING:  # traces the model on its first call
                new_samples = _constrained(constrain, z)
            del z
            new_stats = {k: np.asarray(v) for k, v in collected.items()}
            if store is not None:
                store.save(
                    b,
                    state,
                    **{f"s:{k}": v for k, v in new_samples.items()},
                    **{f"x:{k}": v for k, v in new_stats.items()},
                )
        keep(samples, new_samples, b)
        keep(stats, new_stats, b)
        del new_samples, new_stats
    renamed = getattr(kernel, "stat_names", {})
    joined, joined_stats = samples, {renamed.get(k, k): v for k, v in stats.items()}
    tree = build_datatree(
        model,
        joined,
        joined_stats,
        model_args=model_args,
        model_kwargs=model_kwargs,
        posterior_predictive=posterior_predictive,
        seed=seed,
        coords=coords,
        dims=dims,
        attrs={
            "method": f"flux posterior ({type(kernel).__name__})",
            "num_warmup": int(num_warmup),
            "num_draws": int(num_draws),
            "num_chains": int(num_chains),
            "thinning": int(thinning),
            "seed": int(seed),
            "setup_seconds": setup_seconds,
            "sampling_seconds": sampling_seconds,
            "setup_cpu_seconds": setup_cpu,
            "sampling_cpu_seconds": sampling_cpu,
            **(attrs or {}),
        },
    )
    _check_convergence(tree, {k: v for k, v in joined.items() if not k.startswith("_")})
    return tree


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(kernel, state, model_args, model_kwargs, num_chains: int, num_draws: int):
    """Refuse up front a run whose kept draws would not fit: the values of every site per draw
    (from the shapes of the constrained start, nothing computed) times chains and draws, twice
    (the draws, and as much again for the unconstrained draws, statistics and the chunks that
    diagnostics and constraining work on), against the memory available now."""
    available = available_memory()
    if available is None:
        return
    shapes = jax.eval_shape(jax.vmap(kernel.postprocess_fn(model_args, model_kwargs)), state.z)
    per_draw = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(shapes)) / num_chains
    draws = per_draw * num_chains * num_draws
    if 2 * draws > available:
        gib = 2.0**30
        raise MemoryLimitError(
            f"{num_chains} chains x {num_draws} draws of {per_draw / 8:.0f} values each would "
            f"keep {draws / gib:.2f} GiB of draws and need about {2 * draws / gib:.2f} GiB in "
            f"all, but {available / gib:.2f} GiB is available: keep fewer draws (num_draws, "
            "with more thinning for the same ESS) or fewer chains"
        )


CONSTRAIN_CHUNK = 256
"""Draws per chain that :func:`_constrained` maps to the sites' values at once."""


def _constrained(constrain: Callable, z) -> dict[str, np.ndarray]:
    """``constrain(z)`` (``z`` with axes chain, draw, ...) as NumPy arrays, computed
    :data:`CONSTRAIN_CHUNK` draws at a time (the last chunk padded: one compiled shape) into
    arrays for all draws: the values are held once, not beside a compiled function's temporaries
    of their full size."""
    draws = jax.tree.leaves(z)[0].shape[1]
    chunk = min(draws, CONSTRAIN_CHUNK)
    out: dict[str, np.ndarray] = {}
    for start in range(0, draws, chunk):
        rows = np.minimum(np.arange(start, start + chunk), draws - 1)
        n = min(chunk, draws - start)
        for k, v in constrain(jax.tree.map(lambda a, rows=rows: a[:, rows], z)).items():
            v = np.asarray(v)
            if k not in out:
                out[k] = np.empty((v.shape[0], draws, *v.shape[2:]), v.dtype)
            out[k][:, start : start + n] = v[:, :n]
    return out


def _check_convergence(tree: xr.DataTree, posterior: dict[str, np.ndarray]) -> None:
    """Store the worst R-hat and ESS over all posterior variables (``posterior``: the tree's
    draws as arrays) in the attrs; warn."""
    diag = diagnostics(posterior)
    values = {k: float(v) for k, v in diag.data_vars.items()}
    worst = {
        "max_rhat": max((v for k, v in values.items() if k.endswith("max_rhat")), default=np.nan),
        "min_ess_bulk": min(
            (v for k, v in values.items() if k.endswith("ess_bulk")), default=np.nan
        ),
        "min_ess_tail": min(
            (v for k, v in values.items() if k.endswith("ess_tail")), default=np.nan
        ),
    }
    tree.attrs.update(worst)
    log.debug(
        "max R-hat %.4f, min bulk ESS %.0f, min tail ESS %.0f",
        worst["max_rhat"], worst["min_ess_bulk"], worst["min_ess_tail"],
    )  # fmt: skip
    if worst["max_rhat"] > RHAT_THRESHOLD or min(worst["min_ess_bulk"], worst["min_ess_tail"]) < (
        ESS_THRESHOLD
    ):
        warnings.warn(
            f"the chains have not converged: max R-hat {worst['max_rhat']:.3f} (want < "
            f"{RHAT_THRESHOLD}), min bulk / tail ESS {worst['min_ess_bulk']:.0f} / "
            f"{worst['min_ess_tail']:.0f} (want >= {ESS_THRESHOLD}); draw longer chains",
            stacklevel=3,
        )
