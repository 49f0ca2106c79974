"""Parallel tempering over thermodynamic relaxation temperatures (seed 002) with an adaptive ladder.

Replicas ``k = 1..K`` move in the flux polytope A (or a sector). The energy of a flux point is its
minimal violation of the concentration polytope (seed 002, Eq. 11), per reaction ``ε_i``, scaled by
``σ_i`` (seed 002: the larger of the 10%/90% quantiles of ``|ε_i|`` over uniform points of A)::

    E(v) = ½ Σ_i (ε_i(v) / σ_i)²,       p_T(v) ∝ exp(-β_T E(v)),   β_T = 1 / (T² - 1)

i.e. ``ε_i ~ N(0, (T² - 1) σ_i²)``: the relaxation vanishes continuously at ``T = 1``, the target
itself, taken exact (the seed's ``σ → 0`` limit): the uniform distribution on the feasible set
(``E = 0``), so every draw it keeps is feasible. (With the seed's ``ε_i ~ N(0, T² σ_i²)`` the
ladder jumps from the exact replica straight to ``σ``-relaxed ones; on E. coli core, where ``E``
of almost all of A is ~2 and the feasible set is < 1e-4 of its volume, every relaxed replica then
lives outside the feasible set and the swaps with the exact one carry no information.)

The exact replica moves by exact hit-and-run on the union of feasible orthant pieces (the kernel of
:mod:`bayesflux.thermo.orthants`); a hit-and-run proposal ``v → v'`` at ``T > 1`` is accepted with
``min(1, exp(-β_T (E' - E)))`` (Eq. 12). Neighbours swap with
``min(1, exp((E_k - E_{k+1}) (β_k - β_{k+1})))`` (Eq. 13; with the exact replica: iff the other
point is feasible), alternating even and odd pairs (Syed et al. 2021). Instead of hand tuning to
~20% swap acceptance, the ladder adapts during warm-up by Robbins-Monro on the log temperature
gaps: ``log(T_{k+1} - T_k) += κ_t (α_k - α*)`` (``α_k``: the swap acceptance probability of
pair ``k`` this round, pooled over ladders, ``α* = target_acceptance``,
``κ_t = κ / (1 + t / τ)``; cf. Vousden, Farr and Mandel 2016, Miasojedow et al. 2013); the
ladder is then frozen so the sampling phase is a valid MCMC. The exact replicas' directions are
adapted once, at half warm-up, to the covariance of their draws (as in
:func:`~bayesflux.thermo.orthants.sample_orthants`). ``num_chains`` independent ladders run side
by side (all replicas of all ladders move in one vectorised call); each contributes one chain.
Moves, swaps and the ladder adaptation run in compiled loops of many rounds; an energy is one LP
the first time its pattern is met, then a table lookup (:mod:`bayesflux.thermo.pattern_table`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.sampling.checkpoint import StateStore, fingerprint
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.orthants import BLOCK_DRAWS, Geometry, move_patterns, orthant_move
from bayesflux.thermo.pattern_table import (
    PatternTable,
    block_noise,
    lookup,
    pattern_hash,
    run_blocks,
)
from bayesflux.thermo.polytope_b import ConcentrationPolytope, flux_signs
from bayesflux.thermo.space import FluxSpace, chords, direction_factor

__all__ = ["parallel_tempering", "propose", "swap_log_acceptance"]


def propose(
    z: jax.Array,
    u: jax.Array,
    y: jax.Array,
    A: jax.Array,
    b: jax.Array,
    f0: jax.Array,
    F: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """A hit-and-run point for each replica ``y (n, d)`` along ``z`` at quantile ``u`` of the
    chord: ``(y', signs of v'_constrained)`` (int8, zero within
    :data:`~bayesflux.thermo.polytope_b.ZERO_FLUX`)."""
    theta, lo, hi = chords(z, y, A, b)
    y_new = y + (lo + u * (hi - lo))[:, None] * theta
    v = y_new @ F.T + f0
    return y_new, flux_signs(v)


_propose = jax.jit(propose)


def swap_log_acceptance(e_lo, e_hi, b_lo, b_hi):
    """Eq. 13, ``log α = (E_lo - E_hi)(β_lo - β_hi)``, for pairs of neighbouring replicas.

    With the exact replica (``β_lo = ∞``): 0 if the hotter point is feasible (``E_hi = 0``), else
    ``-∞`` (the exact replica's own point is feasible, ``E_lo = 0``).
    """
    exact = jnp.where(e_hi == 0.0, 0.0, -jnp.inf)
    finite_lo = jnp.where(jnp.isinf(b_lo), 0.0, b_lo)
    return jnp.where(jnp.isinf(b_lo), exact, (e_lo - e_hi) * (finite_lo - b_hi))


def _temperatures(log_gaps: jax.Array) -> jax.Array:
    """The ladder ``T_1 = 1, T_{k+1} = T_k + exp(log_gap_k)``."""
    return jnp.concatenate([jnp.ones(1), 1.0 + jnp.cumsum(jnp.exp(log_gaps))])


def _beta(temperatures: jax.Array) -> jax.Array:
    """``β = 1 / (T² - 1)`` per replica; ``+inf`` for the exact replica (``σ → 0``, T = 1)."""
    return jnp.concatenate([jnp.full(1, jnp.inf), 1.0 / (temperatures[1:] ** 2 - 1.0)])


def _split(noise, row, M: int, K: int) -> tuple[jax.Array, ...]:
    """A tick's random numbers from row ``row`` of ``noise = (normals (., M K, d), uniforms (.,
    M + 3 M (K - 1)))``: the exact replicas' directions, the relaxed replicas' directions, the
    exact pick quantiles, the proposal quantiles and the acceptance and swap uniforms."""
    z, u = noise[0][row], noise[1][row]
    hot = M * (K - 1)
    cuts = np.cumsum([M, hot, hot])
    u_exact, u_hot, u_accept, u_swap = jnp.split(u, cuts)
    return z[:M], z[M:], u_exact, u_hot, u_accept.reshape(M, K - 1), u_swap.reshape(M, K - 1)


@partial(jax.jit, static_argnames=("moves", "num_warmup", "adapt"))
def _advance(
    state, u, u_stop, u_block, noise, geometry, weights, f0, F, table, *, moves, num_warmup, adapt
):
    """Ticks ``u ..`` until ``u_stop`` or a void move. Tick ``u``: move ``u mod moves`` of round
    ``u // moves`` (every replica), and after the last move of a round the swap sweep, the ladder
    adaptation (warm-up) and the exact replicas' points into slot ``(u - u_block) // moves``.
    Row ``u - u_block`` of ``noise`` holds the tick's random numbers (:func:`_split`)."""
    A, b = geometry.A, geometry.b  # f0, F: all constrained reactions (relaxed replicas)
    adapt_rate, adapt_decay, target, cap = adapt

    def cond(carry):
        u, _, blocked = carry
        return (u < u_stop) & ~blocked

    def body(carry):
        u, before, _ = carry
        y, energy, log_gaps, ys, tries, accepts, moved = before
        M, K, d = y.shape
        z_exact, z_hot, u_exact, u_hot, u_accept, u_swap = _split(noise, u - u_block, M, K)
        beta = _beta(_temperatures(log_gaps))
        y0, void, _, _ = orthant_move(z_exact, u_exact, y[:, 0], geometry, table)
        y_prop, signs = propose(z_hot, u_hot, y[:, 1:].reshape(-1, d), A, b, f0, F)
        e_prop, known = lookup(pattern_hash(signs, weights), *table)
        blocked = void | ~jnp.all(known)
        e_prop = e_prop.reshape(M, K - 1)
        accept = jnp.log(u_accept) < -(e_prop - energy[:, 1:]) * beta[1:]  # Eq. 12
        y_hot = jnp.where(accept[..., None], y_prop.reshape(M, K - 1, d), y[:, 1:])
        y_new = jnp.concatenate([y0[:, None], y_hot], axis=1)
        e_new = jnp.concatenate([energy[:, :1], jnp.where(accept, e_prop, energy[:, 1:])], axis=1)
        round_, step = jnp.divmod(u, moves)
        sampling = round_ >= num_warmup
        moved = moved + jnp.where(sampling, jnp.concatenate([jnp.ones(1), accept.mean(0)]), 0.0)
        # swap sweep over the even or the odd pairs (k, k + 1), all ladders at once
        last = step == moves - 1
        active = (jnp.arange(K - 1) % 2 == round_ % 2) & last
        log_acc = swap_log_acceptance(e_new[:, :-1], e_new[:, 1:], beta[:-1], beta[1:])
        swap = (jnp.log(u_swap) < log_acc) & active
        pad = jnp.zeros((M, 1), dtype=int)
        perm = (
            jnp.arange(K)
            + jnp.concatenate([swap.astype(int), pad], axis=1)
            - jnp.concatenate([pad, swap.astype(int)], axis=1)
        )
        y_new = jnp.take_along_axis(y_new, perm[..., None], axis=1)
        e_new = jnp.take_along_axis(e_new, perm, axis=1)
        tries = tries + jnp.where(sampling & active, M, 0)
        accepts = accepts + jnp.where(sampling, swap.sum(axis=0), 0)
        # Robbins-Monro on log gaps during warm-up: widen gap k when pair k swaps more often than
        # the target; E is bounded, so far up the ladder every swap succeeds: cap the gaps
        alpha = jnp.exp(jnp.minimum(log_acc, 0.0)).mean(axis=0)
        kappa = adapt_rate / (1.0 + round_ / adapt_decay)
        gaps = jnp.minimum(log_gaps + kappa * (alpha - target), cap)
        log_gaps = jnp.where(active & ~sampling, gaps, log_gaps)
        slot = (u - u_block) // moves
        ys = ys.at[slot].set(jnp.where(last & ~blocked, y_new[:, 0], ys[slot]))
        # a void tick changes nothing (the buffer slot above is written only if not blocked)
        after = (y_new, e_new, log_gaps, tries, accepts, moved)
        kept = tuple(jnp.where(blocked, a, b) for a, b in zip(before[:3] + before[4:], after))
        return jnp.where(blocked, u, u + 1), (*kept[:3], ys, *kept[3:]), blocked

    u, state, _ = jax.lax.while_loop(cond, body, (u, state, False))
    return state, u


def parallel_tempering(
    thermo: ThermoModel,
    *,
    num_draws: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 4,
    num_replicas: int = 6,
    moves_per_swap: int = 10,
    min_temperature: float = 1.001,
    max_temperature: float = 3.0,
    target_acceptance: float = 0.25,
    adapt_rate: float = 1.0,
    adapt_decay: float = 100.0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: bool = False,
    space: FluxSpace | None = None,
    B: ConcentrationPolytope | None = None,
    checkpoint: str | Path | None = None,
) -> xr.DataTree:
    """Samples of the thermodynamically feasible flux space by parallel tempering.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_draws, num_warmup
        Swap rounds kept / used for ladder adaptation (each round: ``moves_per_swap`` hit-and-run
        moves of every replica, then one swap sweep). One draw of each exact replica per round.
    num_chains
        Independent ladders, run side by side (vectorised); their exact replicas are the chains
        of the output (for R-hat and ESS). The ladder adaptation pools their swap rates.
    num_replicas
        ``K`` (>= 2) per ladder: the exact replica plus ``K - 1`` relaxed ones.
    moves_per_swap
        Hit-and-run moves of every replica between swap sweeps.
    min_temperature, max_temperature
        Initial ladder: ``T_2 .. T_K`` with geometric gaps ``T_k - 1`` from ``min_temperature - 1``
        to ``max_temperature - 1`` (``β`` from ~500 to 1/8 by default); each adapted gap is capped
        at ``max_temperature - 1``.
    target_acceptance, adapt_rate, adapt_decay
        ``α*``, ``κ`` and ``τ`` of the Robbins-Monro ladder adaptation.
    bounds
        Sector flux bounds.
    seed
        Seeds the starts and every move, acceptance and swap
        (:func:`~bayesflux.thermo.pattern_table.block_noise`).
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope`.
    checkpoint
        Folder for the sampler's state after each block of draws
        (:class:`~bayesflux.sampling.checkpoint.StateStore`): a rerun with the same settings
        resumes after the last finished block and gives the same draws; other settings are
        refused.

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain, draw, reaction)`` from the exact replicas; ``sample_stats`` with
        ``swap_acceptance (pair)``, ``move_acceptance (replica)``, ``temperature (replica)`` (the
        frozen ladder) and ``violation_scale``.
    """
    if num_replicas < 2:
        raise ValueError(f"parallel tempering needs at least 2 replicas, got {num_replicas}")
    if num_chains < 1 or moves_per_swap < 1 or num_draws < 1 or num_warmup < 0:
        raise ValueError(
            "num_chains, moves_per_swap and num_draws must be >= 1 and num_warmup >= 0, got "
            f"{num_chains}, {moves_per_swap}, {num_draws}, {num_warmup}"
        )
    if not 1.0 < min_temperature < max_temperature:
        raise ValueError(
            f"need 1 < min_temperature < max_temperature, got {min_temperature}, {max_temperature}"
        )
    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    sigma = space.violation_scales(B, seed=seed)
    table = PatternTable(B, sigma)
    M, K, d, moves = num_chains, num_replicas, space.dim, moves_per_swap
    temps = np.concatenate(
        [[1.0], 1.0 + np.geomspace(min_temperature - 1, max_temperature - 1, K - 1)]
    )
    # every replica of ladder m starts at its own point strictly inside a feasible orthant piece
    # (FluxSpace.feasible_starts, E = 0); the relaxed replicas then spread over A
    starts = space.feasible_starts(M, B, seed=seed)
    A, b = jnp.asarray(space.A_y), jnp.asarray(space.b_y)
    f0, F = jnp.asarray(space.f0), jnp.asarray(space.F)
    geometry, fixed = Geometry.of(space, table.weights)  # D: directions of the exact replicas
    weights = jnp.asarray(table.weights)
    slots = BLOCK_DRAWS
    state = (
        jnp.asarray(np.repeat(starts[:, None], K, axis=1)),  # y (M, K, d)
        jnp.zeros((M, K)),  # energies
        jnp.asarray(np.log(np.diff(temps))),
        jnp.zeros((slots, M, d)),  # the exact replicas after each round of the block
        jnp.zeros(K - 1, dtype=int),  # swap tries per pair (sampling)
        jnp.zeros(K - 1, dtype=int),  # swap accepts per pair
        jnp.zeros(K),  # summed move acceptance per replica
    )
    adapt = (adapt_rate, adapt_decay, target_acceptance, float(np.log(max_temperature - 1.0)))
    records: list[np.ndarray] = []
    block = slots * moves

    def noise(start):
        return block_noise(seed, start, (block, M * K, d), (block, M + 3 * M * (K - 1)))

    def advance(state, u, stop, start, z):
        return _advance(
            state,
            u,
            stop,
            start,
            z,
            geometry,
            weights,
            f0,
            F,
            table.device,
            moves=moves,
            num_warmup=num_warmup,
            adapt=adapt,
        )

    def resolve(state, u, start, z):
        z_exact, z_hot, _, u_hot, _, _ = _split(z, u - start, M, K)
        y = state[0]
        _, signs = _propose(z_hot, u_hot, y[:, 1:].reshape(-1, d), A, b, f0, F)
        exact = move_patterns(z_exact, y[:, 0], geometry, fixed)
        table.add(np.concatenate([exact, np.asarray(signs)]))

    def record(state, start, stop):
        records.append(np.asarray(state[3][: (stop - start) // moves]))

    store = None
    if checkpoint is not None:
        stamp = fingerprint(
            (space.A_y, space.b_y, space.f0, space.F, sigma),
            method="parallel_tempering",
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=M,
            num_replicas=K,
            moves_per_swap=moves,
            temperatures=[min_temperature, max_temperature],
            adapt=list(adapt),
            seed=seed,
            block=block,
        )
        store = StateStore(Path(checkpoint), stamp)

    def run(state, r0, r1, keep):
        return run_blocks(
            advance,
            state,
            r0 * moves,
            r1 * moves,
            block=block,
            noise=noise,
            resolve=resolve,
            record=record if keep else None,
            desc="parallel tempering",
            progress=progress,
            store=store,
        )

    state = run(state, 0, num_warmup // 4, False)
    state = run(state, num_warmup // 4, num_warmup // 2, True)
    if records:
        seen = np.concatenate(records).reshape(-1, d)
        geometry = geometry.with_directions(direction_factor(seen))
        records.clear()
    state = run(state, num_warmup // 2, num_warmup, False)
    state = run(state, num_warmup, num_warmup + num_draws, True)
    _, _, log_gaps, _, tries, accepts, moved = (np.asarray(x) for x in state)
    stats = {
        "swap_acceptance": (("pair",), accepts / np.maximum(tries, 1)),
        "move_acceptance": (("replica",), moved / (num_draws * moves)),
        "temperature": (("replica",), np.asarray(_temperatures(jnp.asarray(log_gaps)))),
        "violation_scale": (("constrained_reaction",), sigma),
    }
    tree = space.dataset(np.swapaxes(np.concatenate(records), 0, 1), stats=stats)
    tree.attrs = {
        "method": "parallel_tempering",
        "lp_solves": B.lp_solves,
        "sign_patterns": len(B.cache),
        "seed": seed,
        "replicas": K,
    }
    return tree
