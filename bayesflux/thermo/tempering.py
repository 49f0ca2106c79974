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
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.progress import progress_bar
from bayesflux.thermo._space import FluxSpace, direction_factor, flux_signs, random_chords
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.orthants import _feasible, _pick, chord_pieces
from bayesflux.thermo.polytope_b import ConcentrationPolytope, unique_patterns

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

    def _one(self, s: np.ndarray) -> float:
        key = s.tobytes()
        e = self.cache.get(key)
        if e is None:
            viol = self.B.violation(s)  # E = 0 exactly where B(s) is feasible
            e = 0.0 if viol.feasible else 0.5 * float(np.sum((viol.eps / self.sigma) ** 2))
            self.cache[key] = e
        return e

    def __call__(self, signs: np.ndarray) -> np.ndarray:
        """Energies of patterns ``signs (n, k)``: one lookup per distinct pattern."""
        unique, inverse = unique_patterns(signs)
        e = np.fromiter((self._one(row) for row in unique), dtype=float, count=len(unique))
        return e[inverse]


def _beta(temperatures: np.ndarray) -> np.ndarray:
    """``β = 1 / (T² - 1)`` per replica; ``+inf`` for the exact replica (``σ → 0``, T = 1)."""
    out = np.full(temperatures.shape, np.inf)
    out[1:] = 1.0 / (temperatures[1:] ** 2 - 1.0)
    return out


def swap_log_acceptance(e_lo: np.ndarray, e_hi: np.ndarray, b_lo: float, b_hi: float) -> np.ndarray:
    """Eq. 13, ``log α = (E_lo - E_hi)(β_lo - β_hi)``, for a pair of neighbouring replicas.

    With the exact replica (``β_lo = ∞``): 0 if the hotter point is feasible (``E_hi = 0``), else
    ``-∞`` (the exact replica's own point is feasible, ``E_lo = 0``).
    """
    if np.isinf(b_lo):
        return np.where(e_hi == 0.0, 0.0, -np.inf)
    return (e_lo - e_hi) * (b_lo - b_hi)


def parallel_tempering(
    thermo: ThermoModel,
    *,
    num_samples: int = 1000,
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
) -> xr.DataTree:
    """Samples of the thermodynamically feasible flux space by parallel tempering.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_samples, num_warmup
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
        Seeds JAX (proposals) and NumPy (accept / swap decisions, starts).
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope`.

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain, draw, reaction)`` from the exact replicas; ``sample_stats`` with
        ``swap_acceptance (pair)``, ``move_acceptance (replica)``, ``temperature (replica)`` (the
        frozen ladder) and ``violation_scale``.
    """
    if num_replicas < 2:
        raise ValueError(f"parallel tempering needs at least 2 replicas, got {num_replicas}")
    if num_chains < 1 or moves_per_swap < 1:
        raise ValueError(
            f"num_chains and moves_per_swap must be >= 1, got {num_chains}, {moves_per_swap}"
        )
    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    sigma = space.violation_scales(B, seed=seed)
    rng = np.random.default_rng(seed)
    M, K, d = num_chains, num_replicas, space.dim
    temps = np.concatenate(
        [[1.0], 1.0 + np.geomspace(min_temperature - 1, max_temperature - 1, K - 1)]
    )
    log_gaps = np.log(np.diff(temps))
    energies = _Energy(B, sigma)
    # every replica of ladder m starts at its own point strictly inside a feasible orthant piece
    # (FluxSpace.feasible_starts, E = 0); the relaxed replicas then spread over A
    starts = space.feasible_starts(M, B, seed=seed)
    y = np.repeat(starts[:, None], K, axis=1)  # (M, K, d)
    energy = np.zeros((M, K))
    A, b = jnp.asarray(space.A_y), jnp.asarray(space.b_y)
    f0, F = jnp.asarray(space.f0), jnp.asarray(space.F)
    total = num_warmup + num_samples
    keys = jax.random.split(jax.random.key(seed), (total * moves_per_swap, 2))
    kept = np.empty((M, num_samples, d))
    swap_tries = np.zeros(K - 1)
    swap_accepts = np.zeros(K - 1)
    move_accepts = np.zeros(K)
    rows = np.arange(M)
    D = jnp.eye(d)  # directions of the exact replicas, as in sample_orthants
    seen = []
    for t in progress_bar(range(total), desc="parallel tempering", disable=not progress):
        beta = _beta(temps)
        sampling = t >= num_warmup
        if num_warmup // 4 <= t < num_warmup // 2:
            seen.append(y[:, 0].copy())
        elif t == num_warmup // 2 and seen:
            D = jnp.asarray(direction_factor(np.concatenate(seen)))
        for s in range(moves_per_swap):
            k_exact, k_hot = keys[t * moves_per_swap + s]
            # exact replicas: uniform point on the feasible pieces of a random chord
            theta, edges, signs = chord_pieces(k_exact, jnp.asarray(y[:, 0]), A, b, f0, F, D)
            lam, ok = _pick(rng, np.asarray(edges), _feasible(B, np.asarray(signs)))
            y[:, 0] += np.where(ok, lam, 0.0)[:, None] * np.asarray(theta)
            # relaxed replicas: Metropolised hit-and-run, Eq. 12
            y_new, v_new = propose(k_hot, jnp.asarray(y[:, 1:].reshape(-1, d)), A, b, f0, F)
            e_new = energies(flux_signs(np.asarray(v_new))).reshape(M, K - 1)
            accept = np.log(rng.uniform(size=(M, K - 1))) < -(e_new - energy[:, 1:]) * beta[1:]
            y[:, 1:] = np.where(accept[..., None], np.asarray(y_new).reshape(M, K - 1, d), y[:, 1:])
            energy[:, 1:] = np.where(accept, e_new, energy[:, 1:])
            if sampling:
                move_accepts[1:] += accept.mean(axis=0)
        # swap sweep over the even or the odd pairs (k, k + 1), all ladders at once
        pairs = np.arange(t % 2, K - 1, 2)
        alpha = np.zeros((M, len(pairs)))
        for i, k in enumerate(pairs):
            log_acc = swap_log_acceptance(energy[:, k], energy[:, k + 1], beta[k], beta[k + 1])
            alpha[:, i] = np.exp(np.minimum(log_acc, 0.0))
            ok = np.log(rng.uniform(size=M)) < log_acc
            sw = rows[ok]
            y[sw, k], y[sw, k + 1] = y[sw, k + 1], y[sw, k].copy()
            energy[sw, k], energy[sw, k + 1] = energy[sw, k + 1], energy[sw, k].copy()
            if sampling:
                swap_tries[k] += M
                swap_accepts[k] += ok.sum()
        if not sampling:
            # Robbins-Monro on log gaps: widen gap k when pair k swaps more often than the target
            kappa = adapt_rate / (1.0 + t / adapt_decay)
            log_gaps[pairs] += kappa * (alpha.mean(axis=0) - target_acceptance)
            # E is bounded, so far up the ladder every swap succeeds: cap the gaps
            np.minimum(log_gaps, np.log(max_temperature - 1.0), out=log_gaps)
            temps = np.concatenate([[1.0], 1.0 + np.cumsum(np.exp(log_gaps))])
        else:
            kept[:, t - num_warmup] = y[:, 0]
    move_accepts[0] = num_samples * moves_per_swap  # the exact replica always moves
    stats = {
        "swap_acceptance": (("pair",), swap_accepts / np.maximum(swap_tries, 1)),
        "move_acceptance": (("replica",), move_accepts / max(num_samples * moves_per_swap, 1)),
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
