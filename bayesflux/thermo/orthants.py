"""Exact hit-and-run on the union of thermodynamically feasible orthant polytopes.

The thermodynamic flux space is the union, over sign patterns ``s`` with a non-empty concentration
polytope B(s), of the pieces of the flux polytope A in orthant ``s`` (DESIGN.md). One step: draw a
uniform direction, take the chord of A through the current point, split it at every point where a
flux under the second law changes sign, and draw the new point uniformly on the union of the
pieces whose sign pattern is feasible (pieces need not touch). The line through two points is the
same from either end, so the kernel is symmetric and the uniform distribution on the union is
stationary; every draw is thermodynamically feasible by construction.

Geometry (chords, sign changes, patterns of all pieces) is jitted and vmapped over chains; the
feasibility of each new pattern is one cached LP (:class:`ConcentrationPolytope`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.progress import progress_bar
from bayesflux.thermo._space import ZERO_FLUX, FluxSpace, direction_factor, random_chords
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope, unique_patterns

__all__ = ["sample_orthants", "chord_pieces"]


@jax.jit
def chord_pieces(
    key: jax.Array,
    y: jax.Array,
    A: jax.Array,
    b: jax.Array,
    f0: jax.Array,
    F: jax.Array,
    D: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Split random chords (directions ``∝ D z``, :func:`random_chords`) of ``{A y <= b}`` at
    sign changes of ``f0 + F y``.

    Returns directions ``θ (c, d)``, piece edges ``(c, k + 2)`` (sorted ``λ``) and the sign pattern
    of each piece ``(c, k + 1, k)`` (int8; zero where a flux stays within ``ZERO_FLUX`` of 0).
    """
    theta, lo, hi = random_chords(key, y, A, b, D)
    v = y @ F.T + f0  # (c, k)
    w = theta @ F.T
    safe = jnp.where(w == 0.0, 1.0, w)
    cross = -v / safe
    inside = (w != 0.0) & (cross > lo[:, None]) & (cross < hi[:, None])
    breaks = jnp.sort(jnp.where(inside, cross, hi[:, None]), axis=1)
    edges = jnp.concatenate([lo[:, None], breaks, hi[:, None]], axis=1)
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])  # (c, k + 1)
    vm = v[:, None, :] + mid[:, :, None] * w[:, None, :]
    signs = (jnp.sign(vm) * (jnp.abs(vm) > ZERO_FLUX)).astype(jnp.int8)
    return theta, edges, signs


def _pick(
    rng: np.random.Generator, edges: np.ndarray, feasible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform ``λ`` on the union of feasible pieces, per chain; returns (λ, any piece feasible)."""
    length = np.diff(edges, axis=1) * feasible
    total = length.sum(axis=1)
    u = rng.uniform(size=total.shape) * total
    cum = np.cumsum(length, axis=1)
    piece = np.minimum((cum <= u[:, None]).sum(axis=1), length.shape[1] - 1)
    before = (
        np.take_along_axis(cum, piece[:, None], axis=1)[:, 0] - length[np.arange(len(u)), piece]
    )
    lam = edges[np.arange(len(u)), piece] + (u - before)
    return lam, total > 0


def sample_orthants(
    thermo: ThermoModel,
    *,
    num_samples: int = 1000,
    num_warmup: int = 100,
    num_chains: int = 4,
    thinning: int = 1,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: bool = False,
    space: FluxSpace | None = None,
    B: ConcentrationPolytope | None = None,
) -> xr.DataTree:
    """Uniform samples of the thermodynamically feasible flux space by exact hit-and-run.

    Directions are isotropic in A's rounding for the first half of the warm-up; then they follow
    the covariance of the draws of its second quarter, pooled over chains
    (:func:`~bayesflux.thermo._space.direction_factor`), frozen for the rest, so the kept draws
    come from one fixed, uniform-invariant kernel.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_samples, num_warmup, num_chains, thinning
        Draws kept per chain, draws discarded first, independent chains, steps per kept draw.
    bounds
        Sector flux bounds (e.g. :attr:`~bayesflux.thermo.loops.Sector.bounds`).
    seed
        Seeds the directions (JAX) and the chord points (NumPy).
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope` (and its cache).

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain, draw, reaction)``; ``sample_stats`` with the mean number of
        chord pieces, the feasible fraction of chord length and the LP count.
    """
    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    rng = np.random.default_rng(seed)
    starts = space.feasible_starts(num_chains, B, seed=seed)
    A, b = jnp.asarray(space.A_y), jnp.asarray(space.b_y)
    f0, F = jnp.asarray(space.f0), jnp.asarray(space.F)
    y = starts
    kept = np.empty((num_chains, num_samples, space.dim))
    pieces = np.zeros(num_samples)
    frac = np.zeros(num_samples)
    total_steps = (num_warmup + num_samples) * thinning
    keys = jax.random.split(jax.random.key(seed), total_steps)
    warm = num_warmup * thinning
    D = jnp.eye(space.dim)
    seen = []
    for t in progress_bar(range(total_steps), desc="orthant hit-and-run", disable=not progress):
        if warm // 4 <= t < warm // 2:
            seen.append(y)
        elif t == warm // 2 and seen:
            D = jnp.asarray(direction_factor(np.concatenate(seen)))
        theta, edges, signs = chord_pieces(keys[t], y, A, b, f0, F, D)
        edges_np, signs_np = np.asarray(edges), np.asarray(signs)
        feasible = _feasible(B, signs_np)
        lam, ok = _pick(rng, edges_np, feasible)
        lam = np.where(ok, lam, 0.0)  # a chain exactly on a face may see only zero-length pieces
        y = y + lam[:, None] * np.asarray(theta)
        draw, rest = divmod(t - num_warmup * thinning, thinning)
        if draw >= 0 and rest == thinning - 1:
            kept[:, draw] = y
            lengths = np.diff(edges_np, axis=1)
            pieces[draw] = float(np.mean((lengths > 0).sum(axis=1)))
            frac[draw] = float(
                np.mean((lengths * feasible).sum(1) / np.maximum(lengths.sum(1), 1e-300))
            )
    stats = {
        "chord_pieces": (("draw",), pieces),
        "feasible_chord_fraction": (("draw",), frac),
    }
    tree = space.dataset(kept, stats=stats)
    tree.attrs = {
        "method": "orthant_hit_and_run",
        "lp_solves": B.lp_solves,
        "sign_patterns": len(B.cache),
        "seed": seed,
    }
    return tree


def _feasible(B: ConcentrationPolytope, signs: np.ndarray) -> np.ndarray:
    """Feasibility of every piece's pattern ``signs (c, p, k)``: one dictionary lookup per distinct
    pattern, an LP only for patterns never seen before."""
    unique, inverse = unique_patterns(signs)
    ok = np.fromiter((B.is_feasible(row) for row in unique), dtype=bool, count=len(unique))
    return ok[inverse].reshape(signs.shape[:-1])
