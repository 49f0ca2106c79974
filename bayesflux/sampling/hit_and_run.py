"""Hit-and-run kernels as pure functions over NamedTuple states (blackjax style).

A chain moves inside ``{x : A x <= b}``. One step (Smith 1984; Chen and Schmeiser 1996; seed 002):
pick a direction ``theta`` (uniform on the sphere: *random-direction*; a uniformly chosen axis:
*coordinate*), find the chord ``lam_min <= lam <= lam_max`` with ``A (x + lam theta) <= b``, and
draw ``lam`` on it. The state carries the slacks ``b - A x``, so a coordinate step costs ``O(m)``,
not ``O(m d)``. Two proposals along the chord:

* *uniform chord* (default): ``lam ~ U(lam_min, lam_max)``. With a log density ``log p`` this is a
  symmetric proposal accepted with probability ``min(1, p(x') / p(x))`` (hit-and-run Metropolis).
* *Gaussian step* (``step_size`` given): ``lam ~ N(0, s^2)`` with ``s`` the step of the chosen axis
  (or one scalar for random directions); a ``lam`` off the chord is rejected, otherwise
  ``min(1, p(x') / p(x))``. The proposal density ``N(x' - x; 0, s^2)`` along the line is symmetric
  and the rejection outside the chord is the Metropolis rule for a target that is 0 off the
  polytope, so detailed balance holds for ``p`` restricted to the polytope (random-walk Metropolis
  within Gibbs; Tierney 1994). With a concentrated ``p`` the uniform chord point almost never
  lands where ``p`` lives; a step matched to the posterior's width does.

Step sizes adapt during warm-up by dual averaging (Nesterov 2009; Hoffman and Gelman 2014,
Algorithm 5), one average per axis, toward ``target_acceptance`` of that axis' moves
(:func:`build_warmup_kernel`); :func:`adapted_step_size` gives the averaged step to freeze for
sampling, which makes the sampling phase a time-homogeneous, exact Metropolis chain.

``build_kernel(A, b, ...)`` returns ``kernel(rng_key, state) -> (state, info)`` doing ``thinning``
steps; vmap it over chains (``jax.vmap(kernel)(keys, states)``). ``step_size`` may be a traced
array, so a kernel built inside ``jit`` takes the adapted step as an argument. ``build_sweep`` and
``build_adaptive_sweep`` are the same moves driven by given random numbers instead of a key. The
axes of coordinate moves come in random permutations: a sweep of ``d`` moves updates every axis
once (random-scan Gibbs leaves ``e^-1`` of them untouched), as hopsy's cyclic coordinate
hit-and-run does. :class:`bayesflux.infer.HitAndRun` runs these kernels on a NumPyro model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DualAveragingState",
    "HitAndRunState",
    "HitAndRunInfo",
    "adapted_step_size",
    "build_adaptive_sweep",
    "build_kernel",
    "build_sweep",
    "build_warmup_kernel",
    "chord",
    "freeze",
    "init",
    "init_adaptation",
    "pick",
]

Direction = Literal["coordinate", "random"]


class HitAndRunState(NamedTuple):
    """Position ``x (d,)``, slacks ``b - A x (m,)`` and ``log p(x)`` (0 for the uniform target)."""

    position: jax.Array
    slack: jax.Array
    logdensity: jax.Array


class HitAndRunInfo(NamedTuple):
    """Mean acceptance over the thinned steps (1 for the uniform target) and mean chord length."""

    acceptance_rate: jax.Array
    chord_length: jax.Array


class DualAveragingState(NamedTuple):
    """Dual averaging of the log step of each axis (shape ``(d,)``; ``(1,)`` for random moves).

    ``log_step`` is the step in use, ``log_step_avg`` its weighted average (the step to freeze),
    ``h_avg`` the running mean of ``target - acceptance``, ``count`` the updates of each axis and
    ``mu`` the log step the iterates shrink toward (``log(10 s0)``).
    """

    log_step: jax.Array
    log_step_avg: jax.Array
    h_avg: jax.Array
    count: jax.Array
    mu: jax.Array


def init(
    position: jax.Array,
    A: jax.Array,
    b: jax.Array,
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
) -> HitAndRunState:
    """State at ``position`` (which must satisfy ``A x < b``)."""
    position = jnp.asarray(position, dtype=jnp.result_type(float))
    logdensity = jnp.zeros(()) if logdensity_fn is None else jnp.asarray(logdensity_fn(position))
    return HitAndRunState(position, jnp.asarray(b) - jnp.asarray(A) @ position, logdensity)


def chord(slack: jax.Array, a_theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``[lam_min, lam_max]``: the largest interval with ``lam * a_theta <= slack`` row-wise.

    With ``r = a_theta / slack`` (slacks clamped to a tiny positive number: round-off may leave
    one at -1e-16), ``lam_max = 1 / max r`` and ``lam_min = 1 / min r``: one division pass and
    two reductions, each infinite where no row bounds that side."""
    ratio = a_theta / jnp.maximum(slack, jnp.finfo(a_theta.dtype).tiny)
    hi, lo = jnp.max(ratio), jnp.min(ratio)
    lam_max = jnp.where(hi > 0.0, 1.0 / jnp.where(hi > 0.0, hi, 1.0), jnp.inf)
    lam_min = jnp.where(lo < 0.0, 1.0 / jnp.where(lo < 0.0, lo, 1.0), -jnp.inf)
    return lam_min, lam_max


def pick(u: jax.Array, edges: jax.Array, feasible: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``λ`` at quantile ``u (c,)`` of the union of the feasible pieces of split chords, per row:
    ``edges (c, k + 1)`` the sorted ends of ``k`` pieces, ``feasible (c, k)`` which pieces may be
    used (uniform ``λ`` on the union for uniform ``u``; the one place chord pieces are picked, by
    the thermodynamic samplers). Returns ``(λ, any piece feasible)``."""
    length = jnp.diff(edges, axis=1) * feasible
    total = length.sum(axis=1)
    u = u * total
    cum = jnp.cumsum(length, axis=1)
    before = cum - length
    chosen = (before <= u[:, None]) & (u[:, None] < cum)  # one piece (of positive length)
    lam = jnp.sum(jnp.where(chosen, edges[:, :-1] + (u[:, None] - before), 0.0), axis=1)
    return lam, total > 0


def _step_shape(direction: Direction, d: int) -> tuple[int]:
    return (d,) if direction == "coordinate" else (1,)


def _as_steps(step_size, direction: Direction, d: int, dtype) -> jax.Array:
    """``step_size`` (scalar or per axis) as an array of shape ``(d,)`` or ``(1,)``."""
    step = jnp.asarray(step_size, dtype=dtype)
    shape = _step_shape(direction, d)
    if step.ndim == 0:
        return jnp.broadcast_to(step, shape)
    if step.shape != shape:
        want = "a scalar or shape (d,)" if direction == "coordinate" else "a scalar"
        raise ValueError(
            f"step_size for {direction!r} moves must be {want} (d = {d}), got shape {step.shape}"
        )
    return step


def _check(direction: str, thinning: int) -> None:
    if direction not in ("coordinate", "random"):
        raise ValueError(f"direction must be 'coordinate' or 'random', got {direction!r}")
    if int(thinning) < 1:
        raise ValueError(f"thinning must be a positive integer, got {thinning}")


class Lines(NamedTuple):
    """The half-spaces ``A x <= b`` seen by moves along the columns of a basis ``S`` (the
    rounding; identity if none): ``AS = A S``, its rows for coordinate moves
    (``columns[k] = A S e_k``, stored contiguously) and ``Sᵀ`` (None for the identity)."""

    A: jax.Array
    b: jax.Array
    AS: jax.Array
    columns: jax.Array
    basis_rows: jax.Array | None


def lines(A, b, basis=None) -> Lines:
    """:class:`Lines` of ``A x <= b`` and a basis ``S (d, d)``. Concrete inputs are multiplied
    and transposed here, once, so that a compiled loop reads constants instead of redoing it."""
    concrete = not any(isinstance(a, jax.core.Tracer) for a in (A, b, basis))
    xp = np if concrete else jnp
    A = xp.asarray(A, dtype=float)
    b = xp.asarray(b, dtype=float)
    AS = A if basis is None else A @ xp.asarray(basis, dtype=float)
    columns = xp.ascontiguousarray(AS.T) if concrete else AS.T
    rows = None if basis is None else xp.asarray(basis, dtype=float).T
    if concrete:
        rows = None if rows is None else np.ascontiguousarray(rows)
        return Lines(*(None if a is None else jnp.asarray(a) for a in (A, b, AS, columns, rows)))
    return Lines(A, b, AS, columns, rows)


def _build_move(ln: Lines, direction: Direction, logdensity_fn, gaussian: bool):
    """One move ``(state, (axis or direction, lam draw, log u), step) -> (state, (acc, len))``.

    ``lam draw`` is ``U(0, 1)`` for the uniform chord and ``N(0, 1)`` for the Gaussian step;
    ``log u`` is None for the uniform target (every chord point is accepted). The line is
    ``x + lam S theta`` (``theta`` an axis or a random direction of the rounded coordinates); a
    coordinate move reads one precomputed column ``A S e_k`` and updates the slacks in ``O(m)``
    and the position in ``O(d)``.
    """
    dtype = ln.AS.dtype

    def move(state: HitAndRunState, draw, step):
        direction_draw, u, log_u = draw
        if direction == "coordinate":
            a_theta = ln.columns[direction_draw]
        else:
            theta = direction_draw / jnp.linalg.norm(direction_draw)
            a_theta = ln.AS @ theta
        lam_min, lam_max = chord(state.slack, a_theta)
        if gaussian:
            lam_prop = step * u
            inside = (lam_prop >= lam_min) & (lam_prop <= lam_max)
            # evaluate at a point of the chord: the density is never called outside the polytope
            lam = jnp.clip(lam_prop, lam_min, lam_max)
        else:
            lam = lam_min + u * (lam_max - lam_min)
            inside = jnp.ones((), bool)
        if direction == "coordinate" and ln.basis_rows is None:
            position = jax.lax.dynamic_update_index_in_dim(
                state.position, state.position[direction_draw] + lam, direction_draw, 0
            )
        elif direction == "coordinate":
            position = state.position + lam * ln.basis_rows[direction_draw]
        else:
            shift = theta if ln.basis_rows is None else theta @ ln.basis_rows
            position = state.position + lam * shift
        slack = state.slack - lam * a_theta
        if logdensity_fn is None and not gaussian:  # the uniform chord point is always accepted
            return HitAndRunState(position, slack, state.logdensity), (
                jnp.ones((), dtype),
                lam_max - lam_min,
            )
        if logdensity_fn is None:
            logdensity = state.logdensity
            log_ratio = jnp.zeros((), dtype)
        else:
            logdensity = logdensity_fn(position)
            log_ratio = logdensity - state.logdensity
        accept = inside if log_u is None else inside & (log_u < log_ratio)
        new = jax.tree.map(
            lambda n, o: jnp.where(accept, n, o), HitAndRunState(position, slack, logdensity), state
        )
        prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
        prob = jnp.where(inside & jnp.isfinite(prob), prob, 0.0)
        return new, (prob, lam_max - lam_min)

    return move


def _draws(rng_key, thinning: int, d: int, direction: Direction, gaussian: bool, metropolis, dt):
    """All random numbers of ``thinning`` moves at once: cheaper than a key split per move.
    Coordinate axes come in random permutations, independent of the state, so every move keeps
    the target invariant and ``d`` moves update each axis once."""
    key_dir, key_lam, key_acc = jax.random.split(rng_key, 3)
    if direction == "coordinate":  # random permutations of the axes: a sweep of d moves
        sweeps = -(-thinning // d)  # updates every axis once (random scan leaves e^-1 of them)
        order = jnp.argsort(jax.random.uniform(key_dir, (sweeps, d), dtype=dt), axis=-1)
        directions = order.reshape(-1)[:thinning]
    else:
        directions = jax.random.normal(key_dir, (thinning, d), dtype=dt)
    if gaussian:
        u = jax.random.normal(key_lam, (thinning,), dt)
    else:
        u = jax.random.uniform(key_lam, (thinning,), dt)
    log_u = jnp.log(jax.random.uniform(key_acc, (thinning,), dt)) if metropolis else None
    return directions, u, log_u


def _axis(direction: Direction, draw):
    return draw[0] if direction == "coordinate" else 0


def build_sweep(
    A: jax.Array,
    b: jax.Array,
    *,
    direction: Direction = "coordinate",
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
    step_size: jax.Array | float | None = None,
    basis: jax.Array | None = None,
    refresh: bool = True,
) -> Callable[[HitAndRunState, tuple], tuple[HitAndRunState, HitAndRunInfo]]:
    """``sweep(state, draws) -> (state, info)``: one move per row of given random numbers.

    ``draws = (directions, lam, log_u)`` with a leading axis of length ``T`` (the moves):
    ``directions`` the axes ``(T,)`` of coordinate moves or unnormalised directions ``(T, d)``,
    ``lam`` ``U(0, 1)`` (uniform chord) or ``N(0, 1)`` (Gaussian step) draws ``(T,)``, ``log_u``
    ``log U(0, 1)`` draws ``(T,)`` for the Metropolis test, or None for the uniform target. Moves
    run along the columns of ``basis`` ``S`` (the rounding; axes if None), updating ``x`` itself:
    ``x + lam S theta``. With ``refresh`` the slacks are recomputed as ``b - A x`` once per sweep,
    so round-off cannot accumulate (``O(m d)`` per ``T`` moves); a caller that refreshes them
    itself, less often, passes False. The caller chooses the random numbers, e.g. coordinate axes
    in random permutations; any choice independent of the state keeps the target invariant, since
    every move does.
    """
    _check(direction, 1)
    ln = lines(A, b, basis)
    d = ln.AS.shape[1]
    gaussian = step_size is not None
    dtype = ln.AS.dtype
    steps = _as_steps(step_size, direction, d, dtype) if gaussian else jnp.ones(1, dtype)
    move = _build_move(ln, direction, logdensity_fn, gaussian)

    def one(state, draw):
        return move(state, draw, steps[_axis(direction, draw)])

    def sweep(state: HitAndRunState, draws) -> tuple[HitAndRunState, HitAndRunInfo]:
        state, (acc, length) = jax.lax.scan(one, state, draws)
        if refresh:
            state = state._replace(slack=ln.b - ln.A @ state.position)
        return state, HitAndRunInfo(jnp.mean(acc), jnp.mean(length))

    return sweep


def build_kernel(
    A: jax.Array,
    b: jax.Array,
    *,
    direction: Direction = "coordinate",
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
    thinning: int = 1,
    step_size: jax.Array | float | None = None,
    basis: jax.Array | None = None,
    refresh: bool = True,
) -> Callable[[jax.Array, HitAndRunState], tuple[HitAndRunState, HitAndRunInfo]]:
    """A hit-and-run kernel on ``{x : A x <= b}`` making ``thinning`` moves per call.

    Parameters
    ----------
    A, b
        Half-spaces of a bounded, full-dimensional polytope.
    direction
        ``"coordinate"`` (axis directions, ``O(m)`` per move) or ``"random"`` (uniform on the
        sphere, ``O(m d)`` per move).
    logdensity_fn
        Unnormalised log density of the target; None for the uniform distribution.
    thinning
        Moves per returned state (>= 1).
    step_size
        None: a uniform point of the chord. Otherwise the sd of a Gaussian step along the chord
        (points off the chord rejected): a scalar, or one per axis ``(d,)`` for coordinate moves.
    basis, refresh
        Lines along the columns of ``S`` (rounded coordinates ``x = x0 + S y`` without forming
        ``y``); whether each call ends by recomputing the slacks (see :func:`build_sweep`).
    """
    _check(direction, thinning)
    d = np.shape(A)[1]
    thinning = int(thinning)
    sweep = build_sweep(
        A, b, direction=direction, logdensity_fn=logdensity_fn, step_size=step_size, basis=basis,
        refresh=refresh,
    )  # fmt: skip
    gaussian, metropolis = step_size is not None, logdensity_fn is not None
    dtype = jnp.result_type(float)

    def kernel(rng_key: jax.Array, state: HitAndRunState) -> tuple[HitAndRunState, HitAndRunInfo]:
        draws = _draws(rng_key, thinning, d, direction, gaussian, metropolis, dtype)
        return sweep(state, draws)

    return kernel


def init_adaptation(
    step_size: jax.Array | float, *, dim: int, direction: Direction = "coordinate"
) -> DualAveragingState:
    """Dual-averaging state starting at ``step_size`` (scalar or per axis), ``mu = log(10 s0)``."""
    _check(direction, 1)
    if not np.all(np.asarray(step_size) > 0):
        raise ValueError(f"step_size must be positive, got {np.asarray(step_size)}")
    log_step = jnp.log(_as_steps(step_size, direction, dim, jnp.result_type(float)))
    zeros = jnp.zeros_like(log_step)
    return DualAveragingState(log_step, log_step, zeros, zeros, log_step + np.log(10.0))


def adapted_step_size(adaptation: DualAveragingState) -> jax.Array:
    """The step to freeze after warm-up: ``exp`` of the averaged log step (per axis)."""
    return jnp.exp(adaptation.log_step_avg)


def freeze(adaptation: DualAveragingState) -> DualAveragingState:
    """The state whose ``log_step`` is the averaged step, for ``adapt=False`` after warm-up."""
    return adaptation._replace(log_step=adaptation.log_step_avg)


def _dual_averaging_update(
    da: DualAveragingState, axis, acceptance, target, gamma, t0, kappa
) -> DualAveragingState:
    """Hoffman and Gelman (2014), Algorithm 5, for the one axis a move used."""
    t = da.count[axis] + 1.0
    eta = 1.0 / (t + t0)
    h = (1.0 - eta) * da.h_avg[axis] + eta * (target - acceptance)
    log_step = da.mu[axis] - jnp.sqrt(t) / gamma * h
    w = t**-kappa
    avg = w * log_step + (1.0 - w) * da.log_step_avg[axis]
    return DualAveragingState(
        da.log_step.at[axis].set(log_step),
        da.log_step_avg.at[axis].set(avg),
        da.h_avg.at[axis].set(h),
        da.count.at[axis].set(t),
        da.mu,
    )


def build_adaptive_sweep(
    A: jax.Array,
    b: jax.Array,
    *,
    direction: Direction = "coordinate",
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
    target_acceptance: float = 0.4,
    gamma: float = 0.05,
    t0: float = 10.0,
    kappa: float = 0.75,
    basis: jax.Array | None = None,
    refresh: bool = True,
) -> Callable:
    """``sweep(state, adaptation, draws, adapt) -> (state, adaptation, info)``, Gaussian steps.

    The moves of :func:`build_sweep` (``basis`` and ``refresh`` as there) with the step
    ``exp(adaptation.log_step)`` of each move's axis; with ``adapt`` (may be traced) the
    dual-averaging state is updated after every move (see :func:`build_warmup_kernel`).
    """
    _check(direction, 1)
    if not 0.0 < float(target_acceptance) < 1.0:
        raise ValueError(f"target_acceptance must lie in (0, 1), got {target_acceptance}")
    ln = lines(A, b, basis)
    move = _build_move(ln, direction, logdensity_fn, True)
    target = float(target_acceptance)

    def one(carry, draw):
        state, da = carry
        axis = _axis(direction, draw)
        state, (prob, length) = move(state, draw, jnp.exp(da.log_step[axis]))
        da = _dual_averaging_update(da, axis, prob, target, gamma, t0, kappa)
        return (state, da), (prob, length)

    def one_frozen(carry, draw):
        state, da = carry
        state, out = move(state, draw, jnp.exp(da.log_step[_axis(direction, draw)]))
        return (state, da), out

    def sweep(state, adaptation, draws, adapt=True):
        (state, adaptation), (acc, length) = jax.lax.cond(
            adapt,
            lambda c: jax.lax.scan(one, c, draws),
            lambda c: jax.lax.scan(one_frozen, c, draws),
            (state, adaptation),
        )
        if refresh:
            state = state._replace(slack=ln.b - ln.A @ state.position)
        return state, adaptation, HitAndRunInfo(jnp.mean(acc), jnp.mean(length))

    return sweep


def build_warmup_kernel(
    A: jax.Array,
    b: jax.Array,
    *,
    direction: Direction = "coordinate",
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
    thinning: int = 1,
    target_acceptance: float = 0.4,
    gamma: float = 0.05,
    t0: float = 10.0,
    kappa: float = 0.75,
    basis: jax.Array | None = None,
    refresh: bool = True,
) -> Callable:
    """A Gaussian-step kernel that adapts its steps: ``kernel(key, state, adaptation, adapt)``.

    Returns ``(state, adaptation, info)``. With ``adapt`` False (it may be traced, so one
    compiled function serves warm-up and sampling) the steps ``exp(adaptation.log_step)`` stay
    fixed and the kernel is :func:`build_kernel` with that ``step_size``; freeze with
    :func:`freeze`, which sets ``log_step`` to the averaged step. With ``adapt`` True, after every
    move the dual-averaging state of the axis
    it used (all moves share one for random directions) is updated with that move's acceptance
    probability (0 for a step off the chord), as in Hoffman and Gelman (2014), with their
    defaults ``gamma = 0.05``, ``t0 = 10``, ``kappa = 0.75``. Warm-up draws are not a valid
    Markov chain of the target; freeze :func:`adapted_step_size` and use :func:`build_kernel`
    for the kept draws.

    ``target_acceptance`` (default 0.4) is about the optimal acceptance of a one-dimensional
    random-walk Metropolis move (0.44, Roberts and Rosenthal 2001), reduced a little because a
    step off the chord counts as a rejection. ``basis`` and ``refresh`` as in :func:`build_kernel`.
    """
    _check(direction, thinning)
    sweep = build_adaptive_sweep(
        A, b, direction=direction, logdensity_fn=logdensity_fn,
        target_acceptance=target_acceptance, gamma=gamma, t0=t0, kappa=kappa, basis=basis,
        refresh=refresh,
    )  # fmt: skip
    d = np.shape(A)[1]
    dtype = jnp.result_type(float)
    thinning = int(thinning)
    metropolis = logdensity_fn is not None

    def kernel(
        rng_key: jax.Array,
        state: HitAndRunState,
        adaptation: DualAveragingState,
        adapt: jax.Array | bool = True,
    ) -> tuple[HitAndRunState, DualAveragingState, HitAndRunInfo]:
        draws = _draws(rng_key, thinning, d, direction, True, metropolis, dtype)
        return sweep(state, adaptation, draws, adapt)

    return kernel
