"""Warm-up adaptation of the step size and a dense mass matrix that holds in any units.

Stan's windowed scheme, as in NumPyro's ``warmup_adapter``: dual averaging of the step size
(Hoffman and Gelman 2014, NumPyro's ``dual_averaging``) and Welford covariances of the draws
of doubling windows (NumPyro's ``welford_covariance`` and ``build_adaptation_schedule``), each
window's covariance becoming the next window's inverse mass matrix. The one change is the
shrinkage: Stan and NumPyro add ``1e-3 · 5/(n + 5)`` to the variances, which presumes posterior
standard deviations near 1. A flux posterior can have standard deviations of 1e-6 (Yeast 5.21's
expression posterior at its mode's scale, issue 15); the shrinkage then sets the metric, not the
draws, and the step size collapses (there: to 1e-8). Here Stan's rule is applied in standard
units, each coordinate divided by its sample standard deviation: the ``n``-draw covariance ``C``
becomes

    Σ = n/(n+5) C + 1e-3 · 5/(n+5) diag(C),

the same as Stan's where the variances are near 1, positive definite for ``n < d``, and
unchanged by rescaling any coordinate. A window in which no coordinate moved keeps the previous
metric.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from numpyro.infer.hmc_util import (
    HMCAdaptState,
    build_adaptation_schedule,
    dual_averaging,
    welford_covariance,
)

__all__ = ["shrunk_covariance", "warmup_adapter"]


def shrunk_covariance(m2: jax.Array, n: jax.Array) -> jax.Array:
    """``n/(n+5) C + 1e-3 · 5/(n+5) diag(C)`` of the Welford sums ``m2`` of ``n`` draws (``C``
    the sample covariance); coordinates that never moved get ``1e-12`` of the largest variance."""
    cov = m2 / jnp.maximum(n - 1, 1)
    var = jnp.diag(cov)
    weight = n / (n + 5.0)
    still = jnp.where(var > 0, 0.0, 1e-12 * jnp.max(var))
    return weight * cov + jnp.diag(1e-3 * (1.0 - weight) * var + still)


def _metric(cov: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """NumPyro's triple ``(M⁻¹, M^½, M^-½)`` for ``M⁻¹ = cov``: ``S = (M^-½)ᵀ``, ``S Sᵀ = cov``."""
    S = jnp.linalg.cholesky(cov)
    return cov, solve_triangular(S, jnp.eye(cov.shape[0]), lower=True).T, S.T


def warmup_adapter(
    num_warmup: int,
    *,
    adapt_step_size: bool = True,
    adapt_mass_matrix: bool = True,
    target_accept_prob: float = 0.8,
) -> tuple[Callable, Callable]:
    """``(init_fn(x, step_size, inverse_mass), update_fn(t, accept_prob, x, state))`` over
    NumPyro's ``HMCAdaptState``; ``state.mass_matrix_sqrt_inv.T`` is the ``S`` with ``S Sᵀ``
    the current inverse mass matrix."""
    ss_init, ss_update = dual_averaging()
    mm_init, mm_update, _ = welford_covariance(diagonal=False)
    windows = jnp.asarray(build_adaptation_schedule(num_warmup) if num_warmup > 0 else [(0, 0)])
    num_windows = windows.shape[0]

    def init_fn(x: jax.Array, step_size: jax.Array, inverse_mass: jax.Array) -> HMCAdaptState:
        return HMCAdaptState(
            step_size, *_metric(inverse_mass), ss_init(jnp.log(10.0 * step_size)),
            mm_init(x.shape[0]), jnp.zeros((), int), None,
        )  # fmt: skip

    def window_end(state: HMCAdaptState) -> HMCAdaptState:
        metric = (state.inverse_mass_matrix, state.mass_matrix_sqrt, state.mass_matrix_sqrt_inv)
        if adapt_mass_matrix:
            _, m2, n = state.mm_state
            cov = shrunk_covariance(m2, n)
            moved = jnp.all(jnp.isfinite(cov)) & (jnp.max(jnp.diag(cov)) > 0)
            fresh = _metric(jnp.where(moved, cov, state.inverse_mass_matrix))
            metric = tuple(jnp.where(moved, new, old) for new, old in zip(fresh, metric))
        return state._replace(
            inverse_mass_matrix=metric[0], mass_matrix_sqrt=metric[1],
            mass_matrix_sqrt_inv=metric[2], ss_state=ss_init(jnp.log(10.0 * state.step_size)),
            mm_state=mm_init(state.mm_state[0].shape[0]),
        )  # fmt: skip

    def update_fn(t, accept_prob, x: jax.Array, state: HMCAdaptState) -> HMCAdaptState:
        if adapt_step_size:
            ss_state = ss_update(target_accept_prob - accept_prob, state.ss_state)
            log_step, log_step_avg = ss_state[0], ss_state[1]
            step = jnp.exp(jnp.where(t == num_warmup - 1, log_step_avg, log_step))
            finfo = jnp.finfo(jnp.result_type(step))
            state = state._replace(
                step_size=jnp.clip(step, finfo.tiny, finfo.max), ss_state=ss_state
            )
        middle = (state.window_idx > 0) & (state.window_idx < num_windows - 1)
        if adapt_mass_matrix:
            mm = jax.lax.cond(middle, lambda m: mm_update(x, m), lambda m: m, state.mm_state)
            state = state._replace(mm_state=mm)
        at_end = t == windows[state.window_idx, 1]
        state = state._replace(window_idx=jnp.where(at_end, state.window_idx + 1, state.window_idx))
        return jax.lax.cond(at_end & middle, window_end, lambda s: s, state)

    return init_fn, update_fn
