"""Hit-and-run kernels as pure functions over NamedTuple states (blackjax style).

A chain moves inside ``{x : A x <= b}``. One step (Smith 1984; Chen and Schmeiser 1996; seed 002):
pick a direction ``theta`` (uniform on the sphere: *random-direction*; a uniformly chosen axis:
*coordinate*), find the chord ``lam_min <= lam <= lam_max`` with ``A (x + lam theta) <= b``, and
draw ``lam`` uniformly on it. With a log density ``log p`` the uniform chord point is a symmetric
proposal accepted with probability ``min(1, p(x') / p(x))`` (hit-and-run Metropolis). The state
carries the slacks ``b - A x``, so a coordinate step costs ``O(m)``, not ``O(m d)``.

``build_kernel(A, b, ...)`` returns ``kernel(rng_key, state) -> (state, info)`` doing ``thinning``
steps; vmap it over chains (``jax.vmap(kernel)(keys, states)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["HitAndRunState", "HitAndRunInfo", "init", "build_kernel", "chord"]

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
    """``[lam_min, lam_max]``: the largest interval with ``lam * a_theta <= slack`` row-wise."""
    slack = jnp.maximum(slack, 0.0)  # round-off may leave a slack at -1e-16
    ratio = slack / jnp.where(a_theta == 0.0, 1.0, a_theta)
    lam_max = jnp.min(jnp.where(a_theta > 0.0, ratio, jnp.inf))
    lam_min = jnp.max(jnp.where(a_theta < 0.0, ratio, -jnp.inf))
    return lam_min, lam_max


def build_kernel(
    A: jax.Array,
    b: jax.Array,
    *,
    direction: Direction = "coordinate",
    logdensity_fn: Callable[[jax.Array], jax.Array] | None = None,
    thinning: int = 1,
) -> Callable[[jax.Array, HitAndRunState], tuple[HitAndRunState, HitAndRunInfo]]:
    """A hit-and-run kernel on ``{x : A x <= b}`` making ``thinning`` moves per call.

    Parameters
    ----------
    A, b
        Half-spaces of a bounded, full-dimensional polytope (rounded coordinates).
    direction
        ``"coordinate"`` (axis directions, ``O(m)`` per move) or ``"random"`` (uniform on the
        sphere, ``O(m d)`` per move).
    logdensity_fn
        Unnormalised log density of the target; None for the uniform distribution.
    thinning
        Moves per returned state (>= 1).
    """
    if direction not in ("coordinate", "random"):
        raise ValueError(f"direction must be 'coordinate' or 'random', got {direction!r}")
    if int(thinning) < 1:
        raise ValueError(f"thinning must be a positive integer, got {thinning}")
    A = jnp.asarray(A, dtype=jnp.result_type(float))
    b = jnp.asarray(b, dtype=A.dtype)
    d = A.shape[1]
    thinning = int(thinning)

    AT = A.T  # rows of A^T are the columns A e_k a coordinate move needs

    def move(state: HitAndRunState, draw) -> tuple[HitAndRunState, tuple[jax.Array, jax.Array]]:
        direction_draw, u, log_u = draw
        if direction == "coordinate":
            a_theta = AT[direction_draw]
        else:
            theta = direction_draw / jnp.linalg.norm(direction_draw)
            a_theta = A @ theta
        lam_min, lam_max = chord(state.slack, a_theta)
        lam = lam_min + u * (lam_max - lam_min)
        if direction == "coordinate":
            position = state.position.at[direction_draw].add(lam)
        else:
            position = state.position + lam * theta
        slack = state.slack - lam * a_theta
        if logdensity_fn is None:
            new = HitAndRunState(position, slack, state.logdensity)
            return new, (jnp.ones((), A.dtype), lam_max - lam_min)
        logdensity = logdensity_fn(position)
        log_ratio = logdensity - state.logdensity
        accept = log_u < log_ratio
        new = jax.tree.map(
            lambda n, o: jnp.where(accept, n, o), HitAndRunState(position, slack, logdensity), state
        )
        prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
        return new, (jnp.where(jnp.isfinite(prob), prob, 0.0), lam_max - lam_min)

    def kernel(rng_key: jax.Array, state: HitAndRunState) -> tuple[HitAndRunState, HitAndRunInfo]:
        # all random numbers of the ``thinning`` moves at once: cheaper than a key split per move
        key_dir, key_lam, key_acc = jax.random.split(rng_key, 3)
        if direction == "coordinate":
            directions = jax.random.randint(key_dir, (thinning,), 0, d)
        else:
            directions = jax.random.normal(key_dir, (thinning, d), dtype=A.dtype)
        u = jax.random.uniform(key_lam, (thinning,), A.dtype)
        log_u = (
            jnp.zeros(thinning, A.dtype)
            if logdensity_fn is None
            else jnp.log(jax.random.uniform(key_acc, (thinning,), A.dtype))
        )
        state, (acc, length) = jax.lax.scan(move, state, (directions, u, log_u))
        # refresh the slacks once per returned state so round-off cannot accumulate
        state = state._replace(slack=b - A @ state.position)
        return state, HitAndRunInfo(jnp.mean(acc), jnp.mean(length))

    return kernel
