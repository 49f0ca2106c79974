"""Sign-pattern energies as a lookup table for compiled code, so samplers run many steps per call.

A sign pattern ``s`` (int8 in {-1, 0, 1}, one entry per reaction under the second law) is hashed
to 64 bits, ``h(s) = Σ_j (s_j + 1) w_j  mod 2⁶⁴`` with fixed random odd weights ``w_j`` (two
distinct patterns collide with probability at most ``2⁻⁶³``). The table holds the sorted hashes of
the patterns whose energy the host has computed (one LP each,
:class:`~bayesflux.thermo.polytope_b.ConcentrationPolytope`); compiled code looks them up by
binary search. Each chain of :class:`bayesflux.infer.OrthantHitAndRun` and
:class:`bayesflux.infer.ParallelTempering` carries such a table in its state; a pattern it lacks
is asked of the host (:meth:`PatternTable.energies`, through a callback) and joins it, so a chain
is exactly the chain it would be with every pattern known from the start.

The energy of a pattern is seed 002's scaled minimal violation ``E(s) = ½ Σ_i (ε_i / σ_i)²``
(Eq. 11), exactly 0 where B(s) is non-empty.
"""

from __future__ import annotations

import threading
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope, unique_patterns

__all__ = ["EMPTY", "PatternTable", "lookup", "pattern_hash"]

EMPTY = np.uint64(2**64 - 1)  # padding key; its value is NaN, so it never reads as known
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
        self._device: tuple[jax.Array, jax.Array] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, thermo: ThermoModel) -> PatternTable:
        """The table of ``thermo``'s feasibility (``σ = 1``), one per model, shared by every
        sampler and model that uses it (its LPs are solved once)."""
        if thermo not in _SHARED:
            _SHARED[thermo] = cls(ConcentrationPolytope(thermo))
        return _SHARED[thermo]

    @property
    def device(self) -> tuple[jax.Array, jax.Array]:
        """``(keys, values)`` as device arrays, keys padded with :data:`EMPTY` to a power of two
        >= 1024 (samplers compile again only when the table outgrows it)."""
        if self._device is None:
            self._device = tuple(jnp.asarray(a) for a in self.padded(len(self._keys)))
        return self._device

    def padded(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, values)`` on the host in ``max(1024, 2^⌈log2 size⌉)`` slots (the smallest
        keys where the table holds more)."""
        capacity = max(1024, 1 << int(np.ceil(np.log2(max(size, 1)))))
        keys = np.full(capacity, EMPTY, dtype=np.uint64)
        values = np.full(capacity, np.nan)
        n = min(capacity, len(self._keys))
        keys[:n], values[:n] = self._keys[:n], self._values[:n]
        return keys, values

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
        with self._lock:
            return self._add(signs)

    def energies(self, signs: np.ndarray) -> np.ndarray:
        """``E(s)`` of patterns ``signs (..., k)``, solving the LPs of those not yet in the table
        (thread-safe: the host side of compiled samplers' callbacks)."""
        signs = np.asarray(signs, np.int8)
        with self._lock:
            self._add(signs.reshape(-1, signs.shape[-1]))
            idx = np.searchsorted(self._keys, self.hashes(signs))
            return self._values[idx]

    def _add(self, signs: np.ndarray) -> int:
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
        self._device = None
        return len(h_new)
