"""Kernels that keep to the second law: hit-and-run on the thermodynamically feasible set.

The feasible set is a union of orthant pieces (seed 002): a reflecting or gradient kernel cannot
cross between pieces, so both kernels draw a random chord, split it where the second law can
change its verdict, and draw the new point uniformly on the union of the feasible pieces (the
line through two points is the same from either end, so the move is symmetric and leaves the
uniform distribution on the union invariant); the rest of the model is a Metropolis step.

* :class:`FeasibleChord` — for a :func:`~bayesflux.models.blocks.second_law` site on
  ``(v, ln c)``: the chord is split at sign changes of the fluxes and of their ``ΔrG'``; each
  piece is checked directly, and the new point is drawn from a normal truncated to the
  feasible pieces, fitted to the model's log density along the line, with a Metropolis-Hastings
  correction (:func:`~bayesflux.models.thermodynamics.feasible_chord_move`; exact for Gaussian
  measurements, so every move is accepted).
* :class:`OrthantHitAndRun` — for a :func:`~bayesflux.models.blocks.second_law_signs` site on
  fluxes alone (``ln c`` marginalised): the chord is split at sign changes of the fluxes, and a
  piece is feasible where its sign pattern leaves the concentration polytope non-empty. The
  patterns' verdicts live in a table in the chain's state (looked up by binary search); a piece
  with an unknown pattern asks the host, whose LPs and cache are
  :class:`~bayesflux.thermo.pattern_table.PatternTable`'s, through a callback, and the answers
  join the chain's table, so after warm-up the host is rarely asked.
* :class:`ParallelTempering` — for the same site: replicas at relaxation temperatures, the exact
  one moved as by :class:`OrthantHitAndRun`, the others by hit-and-run in the flux polytope with
  an energy (seed 002), swapped along an adaptive ladder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import highspy
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.sparse as sp
from numpyro.infer.hmc_util import HMCAdaptState, warmup_adapter

from bayesflux._highs import highs_model
from bayesflux.errors import ConfigError
from bayesflux.infer.hit_and_run import Frame, _ChordKernel, _Moves
from bayesflux.infer.sites import (
    PolytopeKernel,
    Prepared,
    _is_uniform,
    any_chain,
    init_to_polytope,
)
from bayesflux.models.blocks import SecondLaw, SignPatternLaw
from bayesflux.models.thermodynamics import _FIT_QUANTILES, feasible_chord_move
from bayesflux.sampling.hit_and_run import pick
from bayesflux.sampling.rounding import Rounding
from bayesflux.thermo.orthants import chord_pieces
from bayesflux.thermo.pattern_table import EMPTY, PatternTable, lookup, pattern_hash
from bayesflux.thermo.polytope_b import ZERO_FLUX, flux_signs
from bayesflux.thermo.space import chords, plain_chain

__all__ = [
    "FeasibleChord",
    "OrthantHitAndRun",
    "ParallelTempering",
    "TemperingState",
    "swap_log_acceptance",
    "temperatures",
]


def _law_site(kernel: PolytopeKernel, prepared: Prepared, law: type) -> str:
    """The name of the model's one site of distribution ``law``; a ConfigError otherwise."""
    block = {SecondLaw: "second_law", SignPatternLaw: "second_law_signs"}[law]
    names = [
        name
        for name, site in prepared.trace.items()
        if site["type"] == "sample" and isinstance(site["fn"], law)
    ]
    if len(names) != 1:
        raise ConfigError(
            f"{type(kernel).__name__} needs exactly one {block} site in the model "
            f"(bayesflux.models.blocks.{block}), found {names}"
        )
    return names[0]


def _affine_map(
    kernel: PolytopeKernel,
    prepared: Prepared,
    name: str,
    values: Callable,
    model_args: tuple,
    model_kwargs: dict,
) -> tuple[jax.Array, jax.Array]:
    """``(f0, F)`` with ``values(fn) = f0 + F x`` for site ``name``'s distribution ``fn`` at the
    latent coordinates ``x`` (by ``jacfwd`` at the first chain's start, checked at a second
    point); a map that is not affine is refused by name."""
    constrain = prepared.postprocess_gen(*model_args, **model_kwargs)

    def of(x):
        fixed = constrain(prepared.unravel(x))
        model = numpyro.handlers.substitute(numpyro.handlers.seed(kernel._model, 0), data=fixed)
        trace = numpyro.handlers.trace(model).get_trace(*model_args, **model_kwargs)
        return values(trace[name]["fn"])

    @jax.jit  # one compilation instead of an eager pass through the model per operation
    def maps(x0, x1):
        F = jax.jacfwd(of)(x0)
        return F, of(x0) - F @ x0, of(x1)

    x0 = jnp.asarray(prepared.x[0] if prepared.batched else prepared.x)
    x1 = x0 + 0.01 * jnp.sqrt(jnp.diag(jnp.asarray(prepared.geometry.inverse_mass)))
    F, f0, at_x1 = maps(x0, x1)
    if not jnp.allclose(at_x1, f0 + F @ x1, rtol=1e-8, atol=1e-8):
        raise ConfigError(
            f"{type(kernel).__name__}: the arguments of {name!r} must be affine in the model's "
            "latent coordinates (a polytope site's fluxes, latent ln c)"
        )
    return f0, F


class FeasibleChord(_ChordKernel):
    """Feasible-chord hit-and-run on a model with one :func:`~bayesflux.models.blocks.second_law`
    site, whose fluxes and ``ln c`` are affine in the model's latent coordinates (fluxes of a
    polytope site, ``ln c`` latent coordinates of a joint polytope, as
    :class:`~bayesflux.models.Thermodynamics` builds them).

    The chains must start where the second law holds: give ``init_params`` to
    :func:`bayesflux.infer.sample` (e.g. from :meth:`Thermodynamics.start
    <bayesflux.models.Thermodynamics.start>`). Parameters as :class:`HitAndRun` (random
    directions).
    """

    stat_fields = ("potential_energy", "accept_prob", "chord_length", "num_evals")
    stat_names = {"chord_length": "feasible_chord_fraction"}
    #: every move costs the same, so batched chains on a CPU share the per-move overhead
    cpu_chain_method = "vectorized"

    def __init__(
        self,
        model: Callable,
        *,
        moves: int | None = None,
        rounding: str | Rounding = "ep",
        adapt_rounding: bool | None = None,
        init_strategy: Callable | None = None,
    ) -> None:
        super().__init__(
            model,
            direction="random",
            moves=moves,
            rounding=rounding,
            adapt_rounding=adapt_rounding,
            init_strategy=init_strategy,
        )

    def _check(self, prepared: Prepared, model_args: tuple, model_kwargs: dict) -> None:
        super()._check(prepared, model_args, model_kwargs)
        name = _law_site(self, prepared, SecondLaw)
        f0, F = _affine_map(
            self,
            prepared,
            name,
            lambda fn: jnp.concatenate([fn.v, fn.lnc]),
            model_args,
            model_kwargs,
        )
        self._maps = (f0, F, prepared.trace[name]["fn"].thermo)

    def _moves(self, key, frame: Frame, target, logp, step, adapting, extra) -> _Moves:
        AS, room, x, S = frame.AS, frame.room, frame.x, frame.S
        f0, F, thermo = self._maps
        k = thermo.index.size
        D = jnp.asarray(thermo.drg_matrix)
        f0v, Fv = f0[:k] + F[:k] @ x, F[:k] @ S
        f0g = jnp.asarray(thermo.drg0) + D @ (f0[k:] + F[k:] @ x)
        Fg = D @ (F[k:] @ S)
        move = feasible_chord_move(AS, room, f0v, Fv, f0g, Fg, float(thermo.margin), target)
        start = (jnp.zeros(AS.shape[1], AS.dtype), room, logp)
        (y, _, logp), (accepted, fraction) = jax.lax.scan(
            move, start, jax.random.split(key, self._n_moves)
        )
        evals = jnp.asarray(float(self._n_moves * (len(_FIT_QUANTILES) + 1)), AS.dtype)
        return _Moves(y, logp, accepted.mean(), fraction.mean(), evals, step)


class OrthantHitAndRun(_ChordKernel):
    """Exact hit-and-run on the union of thermodynamically feasible orthant pieces, for a model
    with one :func:`~bayesflux.models.blocks.second_law_signs` site whose fluxes are affine in the
    latent coordinates (a polytope site's fluxes).

    A model with nothing else (uniform on the feasible set) needs no density evaluation; other
    sites make each move a Metropolis step on them (each evaluation of the model then asks the
    host for the pattern of the proposed point, a callback).

    Parameters
    ----------
    model
        The NumPyro model.
    moves
        Moves per transition (default: the dimension, one sweep).
    rounding
        Initial rounding of the polytope site (``"ep"`` or a
        :class:`~bayesflux.sampling.Rounding`).
    adapt_rounding
        Adapt the directions to the covariance of the warm-up draws (default True: the feasible
        set can be a thin part of the polytope, where its rounding alone gives chords far longer
        than the pieces).
    table_size
        Patterns each chain's table holds (further patterns are asked of the host each time).
    init_strategy
        NumPyro init strategy; the chains must start where the second law holds, so give
        ``init_params`` to :func:`bayesflux.infer.sample` (e.g.
        :meth:`FluxSpace.feasible_starts <bayesflux.thermo.space.FluxSpace.feasible_starts>`).
    """

    stat_fields = ("potential_energy", "accept_prob", "chord_length", "num_evals")
    stat_names = {"chord_length": "feasible_chord_fraction"}
    #: every move costs the same, so batched chains on a CPU share the per-move overhead
    #: (E. coli core with a metabolome: 1.8 s against 3.0 s one chain after the other)
    cpu_chain_method = "vectorized"

    def __init__(
        self,
        model: Callable,
        *,
        moves: int | None = None,
        rounding: str | Rounding = "ep",
        adapt_rounding: bool = True,
        table_size: int = 4096,
        init_strategy: Callable | None = None,
    ) -> None:
        super().__init__(
            model,
            direction="random",
            moves=moves,
            rounding=rounding,
            adapt_rounding=adapt_rounding,
            init_strategy=init_strategy,
        )
        if isinstance(table_size, bool) or int(table_size) < 1:
            raise ConfigError(f"table_size must be an integer >= 1, got {table_size!r}")
        self.table_size = int(table_size)

    def _check(self, prepared: Prepared, model_args: tuple, model_kwargs: dict) -> None:
        super()._check(prepared, model_args, model_kwargs)
        self._law = _law_site(self, prepared, SignPatternLaw)
        f0, F = _affine_map(self, prepared, self._law, lambda fn: fn.v, model_args, model_kwargs)
        host = prepared.trace[self._law]["fn"].table
        self._maps = (f0, F, host, _Signs.of(f0, F, prepared.geometry, host.weights))

    def _uniform(self, prepared: Prepared) -> bool:
        return _is_uniform({k: v for k, v in prepared.trace.items() if k != self._law})

    def _initial_extra(self) -> tuple[jax.Array, jax.Array]:
        return _chain_table(self._maps[2], self.table_size)

    def _moves(self, key, frame: Frame, target, logp, step, adapting, extra) -> _Moves:
        AS, room, x, S = frame.AS, frame.room, frame.x, frame.S
        f0, F, host, signs = self._maps
        fx, FS = signs.free_rows(f0 + F @ x), signs.free_rows(F @ S)
        d = AS.shape[1]

        def move(carry, key):
            y, logp, table = carry
            k_move, k_accept = jax.random.split(key)
            proposal, ok, fraction, table = _orthant_move(
                k_move, y, AS, room, fx, FS, signs, host, table
            )
            if target is None:
                accept, new_logp = ok, logp
            else:
                new_logp = target(proposal)
                log_u = jnp.log(jax.random.uniform(k_accept, (), AS.dtype))
                accept = ok & (log_u < new_logp - logp)
            carry = (jnp.where(accept, proposal, y), jnp.where(accept, new_logp, logp), table)
            return carry, (accept.astype(AS.dtype), fraction)

        start = (jnp.zeros(d, AS.dtype), logp, extra)
        (y, logp, table), (accepted, fraction) = jax.lax.scan(
            move, start, jax.random.split(key, self._n_moves)
        )
        evals = jnp.asarray(0.0 if target is None else float(self._n_moves), AS.dtype)
        return _Moves(y, logp, accepted.mean(), fraction.mean(), evals, step, table)


def _chain_table(host: PatternTable, size: int) -> tuple[jax.Array, jax.Array]:
    """A chain's pattern table: the host's patterns so far, sorted, in ``size`` slots
    (:data:`~bayesflux.thermo.pattern_table.EMPTY` where free)."""
    keys, values = host.padded(size)
    return jnp.asarray(keys[:size]), jnp.asarray(values[:size])


def _energies(hashes, patterns, needed, table, host):
    """Energies of the patterns with ``hashes (n,)`` that are ``needed``, from the chain's
    ``table``; those it lacks are asked of the ``host`` (``patterns()`` builds them only then,
    one callback) and join the table (the smallest keys are kept when it is full)."""
    energy, known = lookup(hashes, *table)
    size = table[0].shape[0]

    def ask(table):
        signs = jnp.where(needed[:, None], patterns(), 0).astype(jnp.int8)
        answer = jax.pure_callback(
            host.energies,
            jax.ShapeDtypeStruct(needed.shape, energy.dtype),
            signs,
            vmap_method="expand_dims",
        )
        new = needed & ~known
        keys = jnp.concatenate([table[0], jnp.where(new, hashes, EMPTY)])
        values = jnp.concatenate([table[1], jnp.where(new, answer, jnp.nan)])
        order = jnp.argsort(keys)[:size]
        return jnp.where(needed, answer, jnp.nan), (keys[order], values[order])

    return jax.lax.cond(any_chain(jnp.any(needed & ~known)), ask, lambda t: (energy, t), table)


def _orthant_move(key, y, AS, room, fx, FS, signs, host, table):
    """One exact move from ``y`` in ``{AS y <= room}``: a random chord split where the fluxes
    that can change sign, ``fx + FS y`` (:class:`_Signs`), do; a uniform point of its feasible
    pieces. Returns the point, whether some piece was feasible, the feasible fraction of chord
    length and the table."""
    k_dir, k_pick = jax.random.split(key)
    z = jax.random.normal(k_dir, (1, AS.shape[1]), AS.dtype)
    pieces = chord_pieces(z, y[None], AS, room, fx, FS, None)
    hashes = pieces.hashes(signs.weights)[0] + signs.offset
    length = jnp.maximum(jnp.diff(pieces.edges[0]), 0.0)  # near-ties: argsort_rows
    needed = length > 0
    energy, table = _energies(
        hashes, lambda: signs.whole(pieces.patterns()[0]), needed, table, host
    )
    feasible = needed & (energy == 0.0)
    lam, ok = pick(jax.random.uniform(k_pick, (1,), AS.dtype), pieces.edges, feasible[None])
    fraction = (length * feasible).sum() / jnp.maximum(length.sum(), 1e-300)
    return y + jnp.where(ok[0], lam[0], 0.0) * pieces.theta[0], ok[0], fraction, table


class _Signs(NamedTuple):
    """Which fluxes under the second law can change sign inside the polytopes (``free``), the
    sign the others keep (``fixed``: the whole pattern, free entries 0), the hash weights of the
    free ones and the hash terms of the fixed ones (``offset``): a chord is split at the free
    fluxes only (E. coli core with a metabolome: 37 of 71)."""

    free: jax.Array
    fixed: jax.Array
    weights: jax.Array
    offset: jax.Array

    @classmethod
    def of(cls, f0, F, geometry, weights: np.ndarray) -> _Signs:
        """The range of each flux ``f0_j + F_j x`` over ``{A x <= b}`` (two HiGHS LPs where it
        moves): free where it spans ``±ZERO_FLUX`` (or where an LP does not solve)."""
        f0, F, A = np.asarray(f0), np.asarray(F), np.asarray(geometry.A)
        lp = highs_model(sp.csr_array(A), row_upper=np.asarray(geometry.b))
        lo, hi = f0.copy(), f0.copy()
        cols = np.arange(A.shape[1], dtype=np.int32)
        for j in np.flatnonzero(np.abs(F).max(axis=1, initial=0.0) > 1e-12):
            for sign, out in ((1.0, lo), (-1.0, hi)):
                lp.changeColsCost(len(cols), cols, sign * F[j])
                lp.run()
                solved = lp.getModelStatus() == highspy.HighsModelStatus.kOptimal
                out[j] += sign * lp.getInfo().objective_function_value if solved else -sign * np.inf
        sign = np.where(hi > ZERO_FLUX, 1, np.where(lo < -ZERO_FLUX, -1, 0))
        free = (lo < -ZERO_FLUX) & (hi > ZERO_FLUX)
        free[np.argmax(free)] = True  # at least one (a flux that never crosses splits nothing)
        fixed = np.where(free, 0, sign).astype(np.int8)
        offset = ((fixed + 1).astype(np.uint64) * weights)[~free].sum(dtype=np.uint64)
        idx = np.flatnonzero(free)
        return cls(jnp.asarray(idx), jnp.asarray(fixed), jnp.asarray(weights[idx]), offset)

    def free_rows(self, a: jax.Array) -> jax.Array:
        return a[self.free]

    def whole(self, patterns: jax.Array) -> jax.Array:
        """Whole patterns ``(n, k)`` from the free fluxes' signs ``(n, len(free))``."""
        full = jnp.broadcast_to(self.fixed, (patterns.shape[0], self.fixed.shape[0]))
        return full.at[:, self.free].set(patterns.astype(jnp.int8))


def swap_log_acceptance(e_lo, e_hi, b_lo, b_hi):
    """Seed 002 Eq. 13, ``log α = (E_lo - E_hi)(β_lo - β_hi)``, for neighbouring replicas.

    With the exact replica (``β_lo = ∞``): 0 if the hotter point is feasible (``E_hi = 0``), else
    ``-∞`` (the exact replica's own point is feasible, ``E_lo = 0``).
    """
    exact = jnp.where(e_hi == 0.0, 0.0, -jnp.inf)
    finite_lo = jnp.where(jnp.isinf(b_lo), 0.0, b_lo)
    return jnp.where(jnp.isinf(b_lo), exact, (e_lo - e_hi) * (finite_lo - b_hi))


def temperatures(log_gaps: jax.Array) -> jax.Array:
    """The ladder ``T_1 = 1, T_{k+1} = T_k + exp(log_gap_k)``."""
    return jnp.concatenate([jnp.ones(1), 1.0 + jnp.cumsum(jnp.exp(log_gaps))])


def _beta(temps: jax.Array) -> jax.Array:
    """``β = 1 / (T² - 1)`` per replica; ``+inf`` for the exact replica (``σ → 0``, T = 1)."""
    return jnp.concatenate([jnp.full(1, jnp.inf), 1.0 / (temps[1:] ** 2 - 1.0)])


class TemperingState(NamedTuple):
    """One ladder: replicas ``x (K, size)`` in the model's latent coordinates (row 0 the exact
    one, whose sites are ``z``), their energies, the ladder's log temperature gaps, the
    statistics of the last round, the exact replica's rounding adaptation (NumPyro's) and the
    pattern table."""

    i: jax.Array
    z: dict
    x: jax.Array
    energy: jax.Array
    log_gaps: jax.Array
    potential_energy: jax.Array
    accept_prob: jax.Array
    move_accept_prob: jax.Array
    swap_accept_prob: jax.Array
    temperature: jax.Array
    chord_length: jax.Array
    adapt_state: HMCAdaptState
    table: tuple[jax.Array, jax.Array]
    rng_key: jax.Array


class ParallelTempering(PolytopeKernel):
    """Parallel tempering over thermodynamic relaxation temperatures (seed 002) with an adaptive
    ladder, for a model that is uniform on the feasible set of its
    :func:`~bayesflux.models.blocks.second_law_signs` site (a polytope site and that site).

    Replicas ``k = 1..K`` of each chain move in the flux polytope A. The energy of a point is its
    minimal violation of the concentration polytope (seed 002, Eq. 11), per reaction ``ε_i``,
    scaled by ``σ_i``::

        E(v) = ½ Σ_i (ε_i(v) / σ_i)²,       p_T(v) ∝ exp(-β_T E(v)),   β_T = 1 / (T² - 1)

    i.e. ``ε_i ~ N(0, (T² - 1) σ_i²)``: the relaxation vanishes continuously at ``T = 1``, the
    target itself, taken exact (the seed's ``σ → 0`` limit), so every draw is feasible. (With the
    seed's ``ε_i ~ N(0, T² σ_i²)`` the ladder jumps from the exact replica straight to
    ``σ``-relaxed ones; on E. coli core, where ``E`` of almost all of A is ~2 and the feasible set
    is < 1e-4 of its volume, every relaxed replica then lives outside the feasible set and the
    swaps with the exact one carry no information.)

    One transition is one round: ``moves_per_swap`` moves of every replica (the exact one by
    :class:`OrthantHitAndRun`'s exact move; the others by hit-and-run in A accepted with
    ``min(1, exp(-β_T (E' - E)))``, Eq. 12), then neighbours swap with
    ``min(1, exp((E_k - E_{k+1}) (β_k - β_{k+1})))`` (Eq. 13), alternating even and odd pairs
    (Syed et al. 2021). During warm-up the ladder adapts by Robbins-Monro on the log temperature
    gaps, ``log(T_{k+1} - T_k) += κ_t (α_k - α*)`` (``κ_t = κ / (1 + t / τ)``; Vousden, Farr and
    Mandel 2016; Miasojedow et al. 2013), each gap capped at ``max_temperature - 1``; it is
    frozen for the kept draws, as are the exact replica's directions, adapted in warm-up to the
    covariance of its draws (NumPyro's Welford windows; the feasible set can be a thin part of A).
    Each chain is one ladder.

    Parameters
    ----------
    model
        The NumPyro model (chains start where the second law holds: ``init_params``).
    num_replicas
        ``K >= 2`` per ladder: the exact replica plus ``K - 1`` relaxed ones.
    moves_per_swap
        Moves of every replica between swap sweeps.
    min_temperature, max_temperature
        Initial ladder: ``T_2 .. T_K`` with geometric gaps ``T_k - 1`` from
        ``min_temperature - 1`` to ``max_temperature - 1``.
    target_acceptance, adapt_rate, adapt_decay
        ``α*``, ``κ`` and ``τ`` of the ladder adaptation.
    violation_scale
        ``σ`` per reaction under the second law (default: seed 002's quantiles over 2000
        hit-and-run points of A, :meth:`ConcentrationPolytope.violation_scales
        <bayesflux.thermo.polytope_b.ConcentrationPolytope.violation_scales>`).
    rounding
        Rounding of the polytope site (``"ep"`` or a :class:`~bayesflux.sampling.Rounding`).
    table_size, init_strategy
        As in :class:`OrthantHitAndRun`.
    """

    stat_fields = (
        "potential_energy",
        "accept_prob",
        "chord_length",
        "move_accept_prob",
        "swap_accept_prob",
        "temperature",
    )
    stat_names = {"chord_length": "feasible_chord_fraction"}
    cpu_chain_method = "vectorized"  # as OrthantHitAndRun

    def __init__(
        self,
        model: Callable,
        *,
        num_replicas: int = 6,
        moves_per_swap: int = 10,
        min_temperature: float = 1.001,
        max_temperature: float = 3.0,
        target_acceptance: float = 0.25,
        adapt_rate: float = 1.0,
        adapt_decay: float = 100.0,
        violation_scale: np.ndarray | None = None,
        rounding: str | Rounding = "ep",
        table_size: int = 4096,
        init_strategy: Callable | None = None,
    ) -> None:
        if isinstance(num_replicas, bool) or int(num_replicas) < 2:
            raise ConfigError(f"parallel tempering needs >= 2 replicas, got {num_replicas!r}")
        if isinstance(moves_per_swap, bool) or int(moves_per_swap) < 1:
            raise ConfigError(f"moves_per_swap must be an integer >= 1, got {moves_per_swap!r}")
        if not 1.0 < min_temperature < max_temperature:
            raise ConfigError(
                "need 1 < min_temperature < max_temperature, got "
                f"{min_temperature}, {max_temperature}"
            )
        if not 0.0 < target_acceptance < 1.0 or adapt_rate < 0 or adapt_decay <= 0:
            raise ConfigError(
                "need 0 < target_acceptance < 1, adapt_rate >= 0 and adapt_decay > 0, got "
                f"{target_acceptance}, {adapt_rate}, {adapt_decay}"
            )
        if isinstance(table_size, bool) or int(table_size) < 1:
            raise ConfigError(f"table_size must be an integer >= 1, got {table_size!r}")
        self._model = model
        self._init_strategy = init_strategy or init_to_polytope()
        self.rounding = rounding
        self.num_replicas, self.moves_per_swap = int(num_replicas), int(moves_per_swap)
        self.temperatures = (float(min_temperature), float(max_temperature))
        self.adaptation = (float(target_acceptance), float(adapt_rate), float(adapt_decay))
        self.violation_scale = violation_scale
        self.table_size = int(table_size)
        self.polytopes = {}

    def get_diagnostics_str(self, state: TemperingState) -> str:
        swaps = np.asarray(state.swap_accept_prob).mean()
        return f"swap acc. prob={swaps:.2f}, T_K={float(state.temperature[-1]):.3g}"

    def _check(self, prepared: Prepared, model_args: tuple, model_kwargs: dict) -> None:
        if prepared.free_sites:
            raise ConfigError(
                f"ParallelTempering needs every latent site on a polytope, but "
                f"{list(prepared.free_sites)} are not"
            )
        law = _law_site(self, prepared, SignPatternLaw)
        if not _is_uniform({k: v for k, v in prepared.trace.items() if k != law}):
            raise ConfigError(
                "ParallelTempering samples the uniform distribution on the thermodynamically "
                f"feasible set; the model has sites besides its polytope and {law!r}: use "
                "OrthantHitAndRun, which adds them by Metropolis"
            )
        f0, F = _affine_map(self, prepared, law, lambda fn: fn.v, model_args, model_kwargs)
        shared = prepared.trace[law]["fn"].table
        sigma = self.violation_scale
        if sigma is None:
            geom = prepared.geometry
            S = geom.factor
            x0 = np.asarray(prepared.x[0] if prepared.batched else prepared.x)
            keys = jax.random.split(jax.random.key(0), 1)
            A, room = jnp.asarray(geom.A @ S), jnp.asarray(geom.b - geom.A @ x0)
            ys = np.asarray(plain_chain(keys, jnp.zeros((1, S.shape[0])), A, room, 2000))[0]
            v = (x0 + ys @ S.T) @ np.asarray(F).T + np.asarray(f0)
            sigma = shared.B.violation_scales(flux_signs(v))
        sigma = np.asarray(sigma, dtype=float)
        if sigma.shape != (F.shape[0],) or not np.all(sigma > 0):
            raise ConfigError(
                f"violation_scale needs {F.shape[0]} positive entries (one per reaction under "
                f"the second law), got shape {sigma.shape}"
            )
        split = _Signs.of(f0, F, prepared.geometry, shared.weights)
        self._maps = (f0, F, PatternTable(shared.B, sigma), split)

    def _build(self, prepared: Prepared, num_warmup: int):
        f0, F, host, split = self._maps
        geom, unravel = prepared.geometry, prepared.unravel
        K, M = self.num_replicas, self.moves_per_swap
        S0 = jnp.asarray(geom.factor)
        A, b = jnp.asarray(geom.A), jnp.asarray(geom.b)
        weights = jnp.asarray(host.weights)
        t_min, t_max = self.temperatures
        target, rate, decay = self.adaptation
        ladder = np.concatenate([[1.0], 1.0 + np.geomspace(t_min - 1, t_max - 1, K - 1)])
        gaps0 = np.log(np.diff(ladder))
        cap = float(np.log(t_max - 1.0))
        U = prepared.potential
        adapt_init, adapt_update = warmup_adapter(
            num_warmup, adapt_step_size=False, adapt_mass_matrix=True, dense_mass=True
        )

        def init_fn(x, key, args, kwargs):
            key, key_adapt = jax.random.split(key)
            adapt = adapt_init(
                (x,), key_adapt, jnp.ones((), x.dtype), inverse_mass_matrix=S0 @ S0.T
            )
            zero, log_gaps = jnp.zeros((), x.dtype), jnp.asarray(gaps0)
            return TemperingState(
                jnp.zeros((), int), unravel(x), jnp.tile(x, (K, 1)), jnp.zeros(K, x.dtype),
                log_gaps, U(x, args, kwargs), zero + 1.0, jnp.ones(K, x.dtype),
                jnp.zeros(K - 1, x.dtype), temperatures(log_gaps), zero, adapt,
                _chain_table(host, self.table_size), key,
            )  # fmt: skip

        def transition(state: TemperingState, args, kwargs) -> TemperingState:
            key, k_moves, k_swap = jax.random.split(state.rng_key, 3)
            temps = temperatures(state.log_gaps)
            beta = _beta(temps)
            S = state.adapt_state.mass_matrix_sqrt_inv.T  # the exact replica's rounding
            AS, FS = A @ S, F @ S

            def move(carry, key):
                x, energy, table = carry
                k_exact, k_dir, k_pos, k_accept = jax.random.split(key, 4)
                y0, ok, fraction, table = _orthant_move(
                    k_exact, jnp.zeros(S.shape[1], x.dtype), AS, b - A @ x[0],
                    split.free_rows(f0 + F @ x[0]), split.free_rows(FS), split, host, table,
                )  # fmt: skip
                z = jax.random.normal(k_dir, x[1:].shape, x.dtype)
                theta, lo, hi = chords(z, x[1:], A, b, S0)
                u = jax.random.uniform(k_pos, (K - 1,), x.dtype)
                proposal = x[1:] + (lo + u * (hi - lo))[:, None] * theta
                signs = flux_signs(proposal @ F.T + f0)
                e_new, table = _energies(
                    pattern_hash(signs, weights), lambda: signs, jnp.ones(K - 1, bool), table, host
                )
                log_u = jnp.log(jax.random.uniform(k_accept, (K - 1,), x.dtype))
                accept = log_u < -(e_new - energy[1:]) * beta[1:]  # Eq. 12
                hot = jnp.where(accept[:, None], proposal, x[1:])
                x = jnp.concatenate([(x[0] + S @ y0)[None], hot])
                energy = energy.at[1:].set(jnp.where(accept, e_new, energy[1:]))
                accepted = jnp.concatenate([ok[None], accept]).astype(x.dtype)
                return (x, energy, table), (accepted, fraction)

            (x, energy, table), (accepted, fraction) = jax.lax.scan(
                move, (state.x, state.energy, state.table), jax.random.split(k_moves, M)
            )
            # swap sweep over the even or the odd pairs (k, k + 1)
            active = jnp.arange(K - 1) % 2 == state.i % 2
            log_acc = swap_log_acceptance(energy[:-1], energy[1:], beta[:-1], beta[1:])
            log_u = jnp.log(jax.random.uniform(k_swap, (K - 1,), x.dtype))
            swap = (log_u < log_acc) & active
            shift = swap.astype(int)
            perm = jnp.arange(K) + jnp.append(shift, 0) - jnp.insert(shift, 0, 0)
            x, energy = x[perm], energy[perm]
            warming = state.i < num_warmup
            alpha = jnp.exp(jnp.minimum(log_acc, 0.0))
            kappa = rate / (1.0 + state.i / decay)
            gaps = jnp.minimum(state.log_gaps + kappa * (alpha - target), cap)
            log_gaps = jnp.where(active & warming, gaps, state.log_gaps)
            adapt = jax.lax.cond(
                warming,
                lambda a: adapt_update(state.i, jnp.ones((), x.dtype), (x[0],), a),
                lambda a: a,
                state.adapt_state,
            )
            return TemperingState(
                state.i + 1, unravel(x[0]), x, energy, log_gaps, state.potential_energy,
                accepted[:, 0].mean(), accepted.mean(axis=0), alpha, temps, fraction.mean(),
                adapt, table, key,
            )  # fmt: skip

        return init_fn, transition
