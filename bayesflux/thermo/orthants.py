"""Exact hit-and-run on the union of thermodynamically feasible orthant polytopes.

The thermodynamic flux space is the union, over sign patterns ``s`` with a non-empty concentration
polytope B(s), of the pieces of the flux polytope A in orthant ``s`` (DESIGN.md). One step: draw a
uniform direction, take the chord of A through the current point, split it at every point where a
flux under the second law changes sign, and draw the new point uniformly on the union of the
pieces whose sign pattern is feasible (pieces need not touch). The line through two points is the
same from either end, so the kernel is symmetric and the uniform distribution on the union is
stationary; every draw is thermodynamically feasible by construction.

This module holds the geometry (chords, sign changes, the patterns of all pieces) and
:func:`sample_orthants`, which runs the move as a NumPyro kernel
(:class:`bayesflux.infer.OrthantHitAndRun`); the feasibility of each pattern is one LP the first
time it is met (:class:`ConcentrationPolytope`), then a lookup in each chain's table
(:mod:`bayesflux.thermo.pattern_table`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpyro.infer.mcmc import MCMCKernel

from bayesflux.errors import ConfigError
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.pattern_table import PatternTable, pattern_hash
from bayesflux.thermo.polytope_b import ConcentrationPolytope, flux_signs
from bayesflux.thermo.space import FluxSpace, chords

__all__ = ["Chords", "argsort_rows", "chord_pieces", "sample_orthants", "sample_space"]


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
    block_size: int | None = None,
    chain_method: str | None = None,
) -> xr.DataTree:
    """Uniform samples of the thermodynamically feasible flux space by exact hit-and-run.

    The NumPyro model ``flux_polytope`` + :func:`~bayesflux.models.blocks.second_law_signs` run
    by :class:`bayesflux.infer.OrthantHitAndRun` under :func:`bayesflux.infer.sample`, from
    distinct feasible starts (:meth:`FluxSpace.feasible_starts`). Directions follow A's rounding,
    adapted in warm-up to the covariance of the feasible draws and frozen for the kept draws.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_draws, num_warmup, num_chains, thinning
        Draws kept per chain, draws discarded first, independent chains, moves per kept draw.
    bounds
        Sector flux bounds (e.g. :attr:`~bayesflux.thermo.loops.Sector.bounds`).
    seed
        Seeds the starts and the moves.
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope` (and its cache).
    checkpoint, block_size
        Folder for each block of ``block_size`` draws (:func:`bayesflux.infer.sample`): a rerun
        with the same settings resumes after the last finished block and gives the same draws.
    chain_method
        ``"vectorized"`` or ``"sequential"`` (:func:`bayesflux.infer.sample`).

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain, draw, reaction)``; ``sample_stats`` with the feasible fraction
        of chord length; attrs with the LP count and the patterns met.
    """
    from bayesflux.infer import OrthantHitAndRun

    for label, value, low in (
        ("num_draws", num_draws, 1),
        ("num_chains", num_chains, 1),
        ("thinning", thinning, 1),
        ("num_warmup", num_warmup, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ConfigError(f"{label} must be an integer >= {low}, got {value!r}")
    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    tree = sample_space(
        space,
        PatternTable(B),
        lambda model: OrthantHitAndRun(model, moves=int(thinning), rounding=space.rounding),
        num_draws=num_draws,
        num_warmup=num_warmup,
        num_chains=num_chains,
        seed=seed,
        checkpoint=checkpoint,
        block_size=block_size,
        chain_method=chain_method,
        progress=progress,
        attrs={"thinning": int(thinning)},
    )
    tree.attrs.update(
        method="orthant_hit_and_run",
        lp_solves=B.lp_solves,
        sign_patterns=len(B.cache),
        seed=seed,
    )
    return tree


def sample_space(
    space: FluxSpace,
    table: PatternTable,
    kernel: Callable[[Callable], MCMCKernel],
    *,
    num_chains: int,
    seed: int,
    **options,
) -> xr.DataTree:
    """The NumPyro model of ``space`` (``flux_polytope`` of its polytope and
    :func:`~bayesflux.models.blocks.second_law_signs` decided by ``table``) run by
    ``kernel(model)`` under :func:`bayesflux.infer.sample` (``options``), each chain from its own
    feasible start (:meth:`FluxSpace.feasible_starts`)."""
    from bayesflux.infer import sample as infer_sample
    from bayesflux.models.blocks import flux_polytope, second_law_signs

    starts = space.feasible_starts(num_chains, table.B, seed=seed)

    def model() -> None:
        v = flux_polytope("flux", space.poly)
        second_law_signs(v, space.thermo, table=table)

    return infer_sample(
        model,
        kernel=kernel(model),
        init_params={"flux": space.center + starts @ space.L.T},
        num_chains=num_chains,
        seed=seed,
        coords={"reaction": list(space.thermo.network.reactions)},
        **options,
    )
