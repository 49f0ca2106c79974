"""Parallel tempering over thermodynamic relaxation temperatures (seed 002) with an adaptive ladder.

Replicas ``k = 1..K`` move in the flux polytope A (or a sector). The energy of a flux point is its
minimal violation of the concentration polytope (seed 002, Eq. 11), per reaction ``ε_i``, scaled by
``σ_i`` (seed 002: the larger of the 10%/90% quantiles of ``|ε_i|`` over uniform points of A)::

    E(v) = ½ Σ_i (ε_i(v) / σ_i)²,       p_T(v) ∝ exp(-E(v) / T²)   (ε_i ~ N(0, T² σ_i²))

The ``T = 1`` replica is the target itself, taken exact (the seed's ``σ → 0`` limit): the uniform
distribution on the feasible set (``E = 0``), so every draw it keeps is feasible. A hit-and-run
proposal ``v → v'`` at ``T > 1`` is accepted with ``min(1, exp(-(E' - E) / T²))`` (Eq. 12; at
``T = 1``: iff ``E' = 0``); neighbours
swap with ``min(1, exp((E_k - E_{k+1}) (1/T_k² - 1/T_{k+1}²)))`` (Eq. 13), alternating even and
odd pairs (Syed et al. 2021). Instead of hand tuning to ~20% swap acceptance, the ladder adapts
during warm-up: ``log(T_{k+1} - T_k)`` moves by ``κ_t (a_k - a_{k+1})`` (``a_k``: swap acceptance of
pair ``k``, ``κ_t = κ / (1 + t / τ)``), equalising the swap rates (Vousden, Farr and Mandel 2016);
the ladder is then frozen so the sampling phase is a valid MCMC.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.progress import progress_bar
from bayesflux.thermo._space import FluxSpace, flux_signs, random_chords
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope

__all__ = ["parallel_tempering", "propose"]


@jax.jit
def propose(
    key: jax.Array, y: jax.Array, A: jax.Array, b: jax.Array, f0: jax.Array, F: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A uniform hit-and-run point for each replica ``y (K, d)``: ``(y', v'_constrained)``."""
    k1, k2 = jax.random.split(key)
    theta, lo, hi = random_chords(k1, y, A, b)
    lam = jax.random.uniform(k2, lo.shape, y.dtype, lo, hi)
    y_new = y + lam[:, None] * theta
    return y_new, y_new @ F.T + f0


class _Energy:
    """``E = ½ Σ (ε/σ)²`` per sign pattern, cached (one LP per pattern never seen before)."""

    def __init__(self, B: ConcentrationPolytope, sigma: np.ndarray) -> None:
        self.B, self.sigma, self.cache = B, sigma, {}

    def __call__(self, signs: np.ndarray) -> np.ndarray:
        out = np.empty(len(signs))
        for i, s in enumerate(signs):
            key = s.tobytes()
            e = self.cache.get(key)
            if e is None:
                e = 0.5 * float(np.sum((self.B.violation(s).eps / self.sigma) ** 2))
                self.cache[key] = e
            out[i] = e
        return out


def _inv_t2(temperatures: np.ndarray) -> np.ndarray:
    """``1 / T²`` per replica; ``+inf`` for the exact replica (seed's ``σ → 0`` limit, T = 1)."""
    out = np.full(temperatures.shape, np.inf)
    out[1:] = 1.0 / temperatures[1:] ** 2
    return out


def parallel_tempering(
    thermo: ThermoModel,
    *,
    num_samples: int = 1000,
    num_warmup: int = 500,
    num_replicas: int = 6,
    moves_per_swap: int = 5,
    max_temperature: float = 30.0,
    adapt_rate: float = 0.5,
    adapt_decay: float = 100.0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: bool = False,
    space: FluxSpace | None = None,
    B: ConcentrationPolytope | None = None,
) -> xr.DataTree:
    """Samples of the thermodynamically feasible flux space by parallel tempering.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_samples, num_warmup
        Swap rounds kept / used for ladder adaptation (each round: ``moves_per_swap`` hit-and-run
        moves of every replica, then one swap sweep). One draw of the exact replica per round.
    num_replicas
        ``K`` (>= 2): the exact replica plus ``K - 1`` relaxed ones.
    max_temperature
        Initial top of the geometric ladder ``T_2 .. T_K`` in ``[1.5, max_temperature]``.
    adapt_rate, adapt_decay
        ``κ`` and ``τ`` of the ladder adaptation.
    bounds
        Sector flux bounds.
    seed
        Seeds JAX (proposals) and NumPy (accept / swap decisions).
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope`.

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain=1, draw, reaction)`` from the exact replica; ``sample_stats`` with
        ``swap_acceptance (pair)``, ``move_acceptance (replica)`` and ``temperature (replica)``.
    """
    if num_replicas < 2:
        raise ValueError(f"parallel tempering needs at least 2 replicas, got {num_replicas}")
    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    sigma = space.violation_scales(B, seed=seed)
    rng = np.random.default_rng(seed)
    K = num_replicas
    temps = np.concatenate([[1.0], np.geomspace(1.5, max_temperature, K - 1)])
    log_gaps = np.log(np.diff(temps))
    energies = _Energy(B, sigma)
    y = np.repeat(space.feasible_start(B, seed=seed)[None], K, axis=0)
    energy = np.zeros(K)  # the start is feasible: E = 0
    A, b = jnp.asarray(space.A_y), jnp.asarray(space.b_y)
    f0, F = jnp.asarray(space.f0), jnp.asarray(space.F)
    total = num_warmup + num_samples
    keys = jax.random.split(jax.random.key(seed), total * moves_per_swap)
    kept = np.empty((1, num_samples, space.dim))
    swap_tries = np.zeros(K - 1)
    swap_accepts = np.zeros(K - 1)
    move_accepts = np.zeros(K)
    ema = np.full(K - 1, 0.5)  # running swap acceptance per pair, for the ladder adaptation
    for t in progress_bar(range(total), desc="parallel tempering", disable=not progress):
        inv_t2 = _inv_t2(temps)
        for s in range(moves_per_swap):
            y_new, v_new = propose(keys[t * moves_per_swap + s], y, A, b, f0, F)
            e_new = energies(flux_signs(np.asarray(v_new)))
            with np.errstate(invalid="ignore"):
                log_acc = np.where(
                    np.isinf(inv_t2), np.where(e_new > 0, -np.inf, 0.0), -(e_new - energy) * inv_t2
                )
            accept = np.log(rng.uniform(size=K)) < log_acc
            y = np.where(accept[:, None], np.asarray(y_new), y)
            energy = np.where(accept, e_new, energy)
            if t >= num_warmup:
                move_accepts += accept
        accepted_pairs = np.zeros(K - 1)
        for k in range(t % 2, K - 1, 2):  # deterministic even/odd sweep
            e_lo, e_hi = energy[k], energy[k + 1]
            if k == 0:  # the exact replica accepts only a feasible point
                log_acc = 0.0 if e_hi == 0.0 else -np.inf
            else:
                log_acc = (e_hi - e_lo) * (inv_t2[k + 1] - inv_t2[k])
            ok = np.log(rng.uniform()) < log_acc
            if ok:
                y[[k, k + 1]] = y[[k + 1, k]]
                energy[[k, k + 1]] = energy[[k + 1, k]]
            accepted_pairs[k] = ok
            if t >= num_warmup:
                swap_tries[k] += 1
                swap_accepts[k] += ok
        tried = np.zeros(K - 1, dtype=bool)
        tried[t % 2 :: 2] = True
        ema[tried] = 0.9 * ema[tried] + 0.1 * accepted_pairs[tried]
        if t < num_warmup and K > 2:
            # gap g lies between replicas g and g+1 (pair g): widen it when that pair swaps more
            # often than the next one, narrow it otherwise; the top gap follows the others
            kappa = adapt_rate / (1.0 + t / adapt_decay)
            log_gaps[:-1] += kappa * (ema[:-1] - ema[1:])
            temps = np.concatenate([[1.0], 1.0 + np.cumsum(np.exp(log_gaps))])
        if t >= num_warmup:
            kept[0, t - num_warmup] = y[0]
    n_kept = max(num_samples, 1)
    stats = {
        "swap_acceptance": (("pair",), swap_accepts / np.maximum(swap_tries, 1)),
        "move_acceptance": (("replica",), move_accepts / (n_kept * moves_per_swap)),
        "temperature": (("replica",), temps),
        "violation_scale": (("constrained_reaction",), sigma),
    }
    tree = space.dataset(kept, stats=stats)
    tree.attrs = {
        "method": "parallel_tempering",
        "lp_solves": B.lp_solves,
        "sign_patterns": len(B.cache),
        "seed": seed,
        "replicas": K,
    }
    return tree
