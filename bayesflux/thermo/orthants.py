"""Exact hit-and-run on the union of thermodynamically feasible orthant polytopes.

The thermodynamic flux space is the union, over sign patterns ``s`` with a non-empty concentration
polytope B(s), of the pieces of the flux polytope A in orthant ``s`` (DESIGN.md). One step: draw a
uniform direction, take the chord of A through the current point, split it at every point where a
flux under the second law changes sign, and draw the new point uniformly on the union of the
pieces whose sign pattern is feasible (pieces need not touch). The line through two points is the
same from either end, so the kernel is symmetric and the uniform distribution on the union is
stationary; every draw is thermodynamically feasible by construction.

Geometry (chords, sign changes, patterns of all pieces) and the choice of the point are compiled and
vectorised over chains, and many steps run in one compiled loop; the feasibility of each pattern is
one LP the first time it is met (:class:`ConcentrationPolytope`), then a table lookup
(:mod:`bayesflux.thermo.pattern_table`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.sampling.checkpoint import StateStore, fingerprint
from bayesflux.sampling.hit_and_run import pick
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.pattern_table import (
    PatternTable,
    block_noise,
    lookup,
    pattern_hash,
    run_blocks,
)
from bayesflux.thermo.polytope_b import ConcentrationPolytope, flux_signs
from bayesflux.thermo.space import FluxSpace, chords, direction_factor

__all__ = ["Geometry", "chord_pieces", "orthant_move", "sample_orthants"]

BLOCK_DRAWS = 100  # kept draws per compiled call (and per progress update)


class Chords(NamedTuple):
    """Random chords of every chain, split where fluxes under the second law change sign.

    A flux ``v_j + λ w_j`` that crosses zero inside the chord (at ``λ = -v_j / w_j``) has sign
    ``-sign(w_j)`` before the crossing and ``sign(w_j)`` after it; any other flux keeps one sign
    along the chord, that of the chord's midpoint (zero within :data:`ZERO_FLUX`).
    """

    theta: jax.Array  # (c, d) unit directions
    edges: jax.Array  # (c, k + 2) piece ends λ, sorted
    start: jax.Array  # (c, k) int8: the pattern of the first piece
    order: jax.Array  # (c, k) reactions by crossing (those that do not cross last)
    inside: jax.Array  # (c, k) whether reaction j crosses zero inside the chord
    rising: jax.Array  # (c, k) whether it crosses from - to +

    def hashes(self, weights: jax.Array) -> jax.Array:
        """:func:`~bayesflux.thermo.pattern_table.pattern_hash` of every piece ``(c, k + 1)``,
        updated crossing by crossing: each adds ``±2 w_j`` (``O(k)`` per chord, not ``O(k²)``)."""
        flip = 2 * weights
        step = jnp.where(self.rising, flip, jnp.zeros_like(flip) - flip)
        step = jnp.take_along_axis(jnp.where(self.inside, step, 0), self.order, axis=1)
        h0 = pattern_hash(self.start, weights)
        return jnp.concatenate([h0[:, None], h0[:, None] + jnp.cumsum(step, axis=1)], axis=1)

    def patterns(self) -> jax.Array:
        """The sign pattern of every piece ``(c, k + 1, k)`` (int8)."""
        rank = jnp.argsort(self.order, axis=1)  # position of reaction j's crossing
        after = rank[:, None, :] < jnp.arange(self.edges.shape[1] - 1)[None, :, None]
        flipped = jnp.where(self.rising, 1, -1).astype(jnp.int8)[:, None, :]
        return jnp.where(self.inside[:, None, :] & after, flipped, self.start[:, None, :])


def argsort_rows(x: jax.Array) -> jax.Array:
    """``argsort(x, axis=-1)`` for float64 rows, by one integer sort (XLA's CPU sort of floats,
    and any sort of several operands, is several times slower).

    Each float is mapped to an int64 of the same order (negative floats: magnitude bits
    flipped), its lowest ``⌈log2 n⌉`` bits replaced by the column index, and the keys sorted:
    values closer than ``2^-(52 - ⌈log2 n⌉)`` relative fall back to index order (the pieces
    between such crossings have no length).
    """
    n = x.shape[-1]
    bits = max(1, int(np.ceil(np.log2(n))))
    ints = jax.lax.bitcast_convert_type(x, jnp.int64)
    ints = jnp.where(ints < 0, ints ^ jnp.int64(0x7FFFFFFFFFFFFFFF), ints)
    low = jnp.int64((1 << bits) - 1)
    return (jnp.sort((ints & ~low) | jnp.arange(n), axis=-1) & low).astype(jnp.int32)


def chord_pieces(
    z: jax.Array,
    y: jax.Array,
    A: jax.Array,
    b: jax.Array,
    f0: jax.Array,
    F: jax.Array,
    D: jax.Array,
) -> Chords:
    """Split the chords along ``D z`` (:func:`~bayesflux.thermo.space.chords`) of
    ``{A y <= b}`` at sign changes of ``f0 + F y`` (:class:`Chords`)."""
    theta, lo, hi = chords(z, y, A, b, D)
    v = y @ F.T + f0  # (c, k)
    w = theta @ F.T
    safe = jnp.where(w == 0.0, 1.0, w)
    cross = -v / safe
    inside = (w != 0.0) & (cross > lo[:, None]) & (cross < hi[:, None])
    at = jnp.where(inside, cross, hi[:, None])
    order = argsort_rows(at)
    breaks = jnp.take_along_axis(at, order, axis=1)
    edges = jnp.concatenate([lo[:, None], breaks, hi[:, None]], axis=1)
    v_mid = v + 0.5 * (lo + hi)[:, None] * w
    constant = flux_signs(v_mid)
    start = jnp.where(inside, -jnp.sign(w), constant).astype(jnp.int8)
    return Chords(theta, edges, start, order, inside, w > 0)


class Geometry(NamedTuple):
    """What an exact move needs: the rounded polytope ``A y <= b``, the fluxes ``f0 + F y`` of the
    reactions that can change sign inside A (:attr:`FluxSpace.fixed_signs`; the others never
    split a chord), the directions ``D``, the hash weights of those reactions and the hash terms
    of the others' fixed signs (:func:`~bayesflux.thermo.pattern_table.pattern_hash` of a whole
    pattern is ``Σ_free (s_j + 1) w_j + offset``)."""

    A: jax.Array
    b: jax.Array
    f0: jax.Array
    F: jax.Array
    D: jax.Array
    weights: jax.Array
    offset: jax.Array

    @classmethod
    def of(cls, space: FluxSpace, weights: np.ndarray) -> tuple[Geometry, np.ndarray]:
        """The geometry of ``space`` (``D = I``) and the fixed signs (2 where free)."""
        fixed = space.fixed_signs
        free = fixed == 2
        terms = (np.where(free, 0, fixed + 1)).astype(np.uint64) * weights
        geometry = cls(
            *(jnp.asarray(x) for x in (space.A_y, space.b_y, space.f0[free], space.F[free])),
            jnp.eye(space.dim),
            jnp.asarray(weights[free]),
            jnp.asarray(terms.sum(dtype=np.uint64)),
        )
        return geometry, fixed

    def with_directions(self, D: np.ndarray) -> Geometry:
        return self._replace(D=jnp.asarray(D))


def orthant_move(
    z: jax.Array,
    u: jax.Array,
    y: jax.Array,
    geometry: Geometry,
    table: tuple[jax.Array, jax.Array],
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One exact move of every chain ``y (c, d)`` along ``D z`` to quantile ``u`` of the feasible
    pieces; ``table``: the device arrays of a :class:`PatternTable`.

    Returns the new points, whether some chord piece of positive length has a pattern not in the
    table (then the move is void: resolve the patterns and repeat it with the same ``z, u``),
    the number of pieces and the feasible fraction of chord length per chain.
    """
    g = geometry
    pieces = chord_pieces(z, y, g.A, g.b, g.f0, g.F, g.D)
    theta, edges = pieces.theta, pieces.edges
    energy, known = lookup(pieces.hashes(g.weights) + g.offset, *table)
    length = jnp.maximum(jnp.diff(edges, axis=1), 0.0)  # near-ties: argsort_rows
    needed = length > 0
    feasible = needed & (energy == 0.0)
    lam, ok = pick(u, edges, feasible)
    y_new = y + jnp.where(ok, lam, 0.0)[:, None] * theta  # a chain on a face may see no piece
    fraction = (length * feasible).sum(axis=1) / jnp.maximum(length.sum(axis=1), 1e-300)
    return y_new, jnp.any(needed & ~known), needed.sum(axis=1), fraction


def move_patterns(z: np.ndarray, y: jax.Array, geometry: Geometry, fixed: np.ndarray) -> np.ndarray:
    """The whole patterns of the positive-length pieces that :func:`orthant_move` along ``D z``
    meets (``fixed``: :attr:`FluxSpace.fixed_signs`)."""
    g = geometry
    patterns, needed = _piece_patterns(jnp.asarray(z), y, g.A, g.b, g.f0, g.F, g.D)
    free = np.asarray(patterns)[np.asarray(needed)]
    out = np.repeat(fixed[None], len(free), axis=0)
    out[:, fixed == 2] = free
    return out


@jax.jit
def _piece_patterns(z, y, A, b, f0, F, D) -> tuple[jax.Array, jax.Array]:
    pieces = chord_pieces(z, y, A, b, f0, F, D)
    return pieces.patterns(), jnp.diff(pieces.edges, axis=1) > 0  # as in orthant_move


@partial(jax.jit, static_argnames=("thinning",))
def _advance(state, t, t_stop, t_block, noise, geometry, table, *, thinning: int):
    """Steps ``t ..`` until ``t_stop`` or a void move; the point after every ``thinning``-th step
    of the block is written to slot ``(t - t_block) // thinning`` of the state's buffers; row
    ``t - t_block`` of ``noise = (z, u)`` are the step's random numbers."""

    def cond(carry):
        t, _, blocked = carry
        return (t < t_stop) & ~blocked

    def body(carry):
        t, (y, ys, pieces, fraction), _ = carry
        z, u = noise[0][t - t_block], noise[1][t - t_block]
        y_new, blocked, n_pieces, frac = orthant_move(z, u, y, geometry, table)
        slot, rest = jnp.divmod(t - t_block, thinning)
        keep = ~blocked & (rest == thinning - 1)
        ys = ys.at[slot].set(jnp.where(keep, y_new, ys[slot]))
        pieces = pieces.at[slot].set(jnp.where(keep, n_pieces.mean(), pieces[slot]))
        fraction = fraction.at[slot].set(jnp.where(keep, frac.mean(), fraction[slot]))
        y = jnp.where(blocked, y, y_new)
        return jnp.where(blocked, t, t + 1), (y, ys, pieces, fraction), blocked

    t, state, _ = jax.lax.while_loop(cond, body, (t, state, False))
    return state, t


def sample_orthants(
    thermo: ThermoModel,
    *,
    num_draws: int = 1000,
    num_warmup: int = 100,
    num_chains: int = 4,
    thinning: int = 1,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: bool = False,
    space: FluxSpace | None = None,
    B: ConcentrationPolytope | None = None,
    checkpoint: str | Path | None = None,
) -> xr.DataTree:
    """Uniform samples of the thermodynamically feasible flux space by exact hit-and-run.

    Directions are isotropic in A's rounding for the first half of the warm-up; then they follow
    the covariance of the (thinned) draws of its second quarter, pooled over chains
    (:func:`~bayesflux.thermo.space.direction_factor`), frozen for the rest, so the kept draws
    come from one fixed, uniform-invariant kernel.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_draws, num_warmup, num_chains, thinning
        Draws kept per chain, draws discarded first, independent chains, steps per kept draw.
    bounds
        Sector flux bounds (e.g. :attr:`~bayesflux.thermo.loops.Sector.bounds`).
    seed
        Seeds the starts and the moves (:func:`~bayesflux.thermo.pattern_table.block_noise`).
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope` (and its cache).
    checkpoint
        Folder for the sampler's state after each block of draws
        (:class:`~bayesflux.sampling.checkpoint.StateStore`): a rerun with the same settings
        resumes after the last finished block and gives the same draws; other settings are
        refused.

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain, draw, reaction)``; ``sample_stats`` with the mean number of
        chord pieces, the feasible fraction of chord length and the LP count.
    """
    if num_draws < 1 or num_warmup < 0 or num_chains < 1 or thinning < 1:
        raise ValueError(
            "num_draws, num_chains and thinning must be >= 1 and num_warmup >= 0, got "
            f"{num_draws}, {num_chains}, {thinning}, {num_warmup}"
        )
    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    table = PatternTable(B)
    geometry, fixed = Geometry.of(space, table.weights)
    y = jnp.asarray(space.feasible_starts(num_chains, B, seed=seed))
    slots = BLOCK_DRAWS
    state = (y, jnp.zeros((slots, num_chains, space.dim)), jnp.zeros(slots), jnp.zeros(slots))
    records: list[tuple[np.ndarray, ...]] = []

    c, d, block = num_chains, space.dim, slots * thinning

    def noise(start):
        return block_noise(seed, start, (block, c, d), (block, c))

    def advance(state, t, stop, start, z):
        return _advance(state, t, stop, start, z, geometry, table.device, thinning=thinning)

    def resolve(state, t, start, z):
        table.add(move_patterns(z[0][t - start], state[0], geometry, fixed))

    def record(state, start, stop):
        n = (stop - start) // thinning
        records.append(tuple(np.asarray(x[:n]) for x in state[1:]))

    store = None
    if checkpoint is not None:
        stamp = fingerprint(
            (space.A_y, space.b_y, space.f0, space.F),
            method="orthant_hit_and_run",
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=num_chains,
            thinning=thinning,
            seed=seed,
            block=block,
        )
        store = StateStore(Path(checkpoint), stamp)

    def run(state, t0, t1, keep, desc):
        return run_blocks(
            advance,
            state,
            t0,
            t1,
            block=block,
            noise=noise,
            resolve=resolve,
            record=record if keep else None,
            desc=desc,
            progress=progress,
            store=store,
        )

    warm = num_warmup * thinning
    state = run(state, 0, warm // 4, False, "orthant hit-and-run warm-up")
    state = run(state, warm // 4, warm // 2, True, "orthant hit-and-run warm-up")
    if records:
        seen = np.concatenate([r[0] for r in records])  # (draws, chains, d)
        geometry = geometry.with_directions(direction_factor(seen.reshape(-1, space.dim)))
        records.clear()
    state = run(state, warm // 2, warm, False, "orthant hit-and-run warm-up")
    run(state, warm, warm + num_draws * thinning, True, "orthant hit-and-run")
    kept, pieces, frac = (np.concatenate(x) for x in zip(*records))
    stats = {
        "chord_pieces": (("draw",), pieces),
        "feasible_chord_fraction": (("draw",), frac),
    }
    tree = space.dataset(np.swapaxes(kept, 0, 1), stats=stats)
    tree.attrs = {
        "method": "orthant_hit_and_run",
        "lp_solves": B.lp_solves,
        "sign_patterns": len(B.cache),
        "seed": seed,
    }
    return tree
