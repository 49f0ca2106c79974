"""Sign-pattern energies as a lookup table for compiled code, so samplers run many steps per call.

A sign pattern ``s`` (int8 in {-1, 0, 1}, one entry per reaction under the second law) is hashed
to 64 bits, ``h(s) = Σ_j (s_j + 1) w_j  mod 2⁶⁴`` with fixed random odd weights ``w_j`` (two
distinct patterns collide with probability at most ``2⁻⁶³``). The table holds the sorted hashes of
the patterns whose energy the host has computed (one LP each,
:class:`~bayesflux.thermo.polytope_b.ConcentrationPolytope`); compiled code looks them up by
binary search. A step that meets a pattern not in the table stops the compiled loop *before* that
step; the host solves the LPs of the step's new patterns and the loop resumes at the same step
with the same random numbers, so a chain is exactly the chain it would be with every pattern
known from the start (:func:`run_blocks`).

The energy of a pattern is seed 002's scaled minimal violation ``E(s) = ½ Σ_i (ε_i / σ_i)²``
(Eq. 11), exactly 0 where B(s) is non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesflux.progress import progress_bar
from bayesflux.sampling.checkpoint import StateStore
from bayesflux.thermo.polytope_b import ConcentrationPolytope, unique_patterns

__all__ = ["PatternTable", "block_noise", "lookup", "pattern_hash", "run_blocks"]

_EMPTY = np.uint64(2**64 - 1)  # padding key; its value is NaN, so it never reads as known


def pattern_hash(signs: jax.Array, weights: jax.Array) -> jax.Array:
    """64-bit hashes ``Σ_j (s_j + 1) w_j mod 2⁶⁴`` of patterns ``signs (..., k)``."""
    return jnp.sum((signs + 1).astype(jnp.uint64) * weights, axis=-1, dtype=jnp.uint64)


def lookup(hashes: jax.Array, keys: jax.Array, values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Energies of ``hashes`` in the table ``(keys, values)`` and whether each is known."""
    idx = jnp.minimum(jnp.searchsorted(keys, hashes, method="scan_unrolled"), keys.shape[0] - 1)
    value = values[idx]
    known = (keys[idx] == hashes) & ~jnp.isnan(value)
    return jnp.where(known, value, jnp.nan), known


class PatternTable:
    """Energies of the sign patterns met so far, on the host and as device arrays.

    Parameters
    ----------
    B
        The concentration polytope whose violation LP defines the energy (and caches it).
    sigma
        Violation scales ``σ_i`` per constrained reaction (ones: ``E = 0`` iff feasible).
    """

    def __init__(self, B: ConcentrationPolytope, sigma: np.ndarray | None = None) -> None:
        k = B.thermo.n_constrained
        self.B = B
        self.sigma = np.ones(k) if sigma is None else np.asarray(sigma, float)
        rng = np.random.default_rng(20191101)
        self.weights = rng.integers(0, 2**63, size=k, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._keys = np.zeros(0, dtype=np.uint64)
        self._values = np.zeros(0)
        self.device = self._padded()

    def __len__(self) -> int:
        return len(self._keys)

    def hashes(self, signs: np.ndarray) -> np.ndarray:
        """:func:`pattern_hash` of patterns ``signs (..., k)`` on the host (same wrapping
        arithmetic)."""
        terms = (np.asarray(signs, np.int8) + 1).astype(np.uint64) * self.weights
        return terms.sum(axis=-1, dtype=np.uint64)

    def energy(self, s: np.ndarray) -> float:
        """``E(s)``: 0 where B(s) is feasible, else ``½ Σ (ε_i / σ_i)²`` (one cached LP)."""
        viol = self.B.violation(s)
        return 0.0 if viol.feasible else 0.5 * float(np.sum((viol.eps / self.sigma) ** 2))

    def add(self, signs: np.ndarray) -> int:
        """Compute and insert the patterns among ``signs (..., k)`` not yet in the table; returns
        how many were new. Device arrays are rebuilt (capacity doubles as needed)."""
        unique, _ = unique_patterns(signs)
        h = self.hashes(unique)
        new = ~np.isin(h, self._keys)
        if not new.any():
            return 0
        h_new, uniq_new = np.unique(h[new], return_index=True)
        e_new = np.array([self.energy(s) for s in unique[new][uniq_new]])
        keys = np.concatenate([self._keys, h_new])
        order = np.argsort(keys)
        self._keys = keys[order]
        self._values = np.concatenate([self._values, e_new])[order]
        self.device = self._padded()
        return len(h_new)

    def _padded(self) -> tuple[jax.Array, jax.Array]:
        """``(keys, values)``, keys padded to a power of two >= 1024 (samplers compile again only
        when the table outgrows it)."""
        capacity = max(1024, 1 << int(np.ceil(np.log2(max(len(self._keys), 1)))))
        keys = np.full(capacity, _EMPTY, dtype=np.uint64)
        values = np.full(capacity, np.nan)
        keys[: len(self._keys)] = self._keys
        values[: len(self._values)] = self._values
        return jnp.asarray(keys), jnp.asarray(values)


def block_noise(
    seed: int, start: int, normals: tuple[int, ...], uniforms: tuple[int, ...]
) -> tuple[jax.Array, jax.Array]:
    """The random numbers of the block that starts at step ``start``: standard normals and
    uniforms on ``[0, 1)`` of the given shapes (leading axis: steps).

    Drawn on the host by numpy's PCG64 seeded with ``(seed, start)`` (about 5x faster than JAX's
    normals on a CPU), so a block depends on nothing but the seed and where it starts.
    """
    rng = np.random.default_rng([int(seed) & (2**64 - 1), int(start)])
    return jnp.asarray(rng.standard_normal(normals)), jnp.asarray(rng.random(uniforms))


def run_blocks(
    advance: Callable[[Any, int, int, int, Any], tuple[Any, jax.Array]],
    state: Any,
    t0: int,
    t1: int,
    *,
    block: int,
    noise: Callable[[int], Any],
    resolve: Callable[[Any, int, int, Any], None],
    record: Callable[[Any, int, int], None] | None = None,
    desc: str = "",
    progress: bool = False,
    store: StateStore | None = None,
) -> Any:
    """Run steps ``t0 .. t1 - 1`` of a compiled sampler in calls of at most ``block`` steps.

    ``noise(t_block)`` gives the random numbers of the block that starts at step ``t_block``
    (``block`` rows, so every call has the same shapes). ``advance(state, t, t_stop, t_block,
    noise)`` runs steps ``t ..`` until ``t_stop`` or until a step meets an unknown pattern,
    returning ``(state, t_reached)``; ``resolve(state, t, t_block, noise)`` then adds the patterns
    of step ``t`` to the table and the call is repeated from ``t``. ``record(state, t_block,
    t_stop)`` reads each finished block's records out of ``state``. With a ``store``, the state
    after each block is saved under the block's first step, and a block already stored is read
    back instead of run (a killed run resumes where it stopped, with the same draws).
    """
    bar = progress_bar(None, total=t1 - t0, desc=desc, disable=not progress)
    t = t0
    while t < t1:
        start, stop = t, min(t1, t + block)
        stored = None if store is None else store.load(start, state)
        if stored is not None:
            state, t = stored, stop
            bar.update(stop - start)
            if record is not None:
                record(state, start, stop)
            continue
        z = noise(start)
        while t < stop:
            state, reached = advance(state, t, stop, start, z)
            reached = int(reached)
            bar.update(reached - t)
            t = reached
            if t < stop:
                resolve(state, t, start, z)
        if store is not None:
            store.save(start, state)
        if record is not None:
            record(state, start, stop)
    bar.close()
    return state
