"""Measurement model, weighted least-squares fit, intervals and the log-likelihood."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from bayesflux.errors import NetworkError
from bayesflux.labeling import (
    FluxMeasurement,
    LabelingProblem,
    MSMeasurement,
    fit,
    profile_interval,
)

TRUE_NET = np.array([100.0, 60, 20, 20, 80, 60, 80])
TRUE_XCH = np.array([50.0])
SD = 0.004


@pytest.fixture(scope="module")
def problem(toy_problem):
    return toy_problem(TRUE_NET, TRUE_XCH, SD)


@pytest.fixture(scope="module")
def result(problem):
    return fit(problem, n_starts=3, rng=0)


def test_fit_recovers_fluxes_with_accepted_chi_square(problem, result):
    assert problem.n_params == 2 and problem.n_measurements == 15
    assert result.dof == 13 and result.passed
    assert np.ptp(result.start_ssr) < 1e-6  # every start reaches the same optimum
    assert np.all(np.abs(result.net - TRUE_NET) <= 4 * result.net_sd + 1e-9)
    assert abs(result.xch[0] - TRUE_XCH[0]) <= 4 * result.xch_sd[0]
    ds = result.to_dataset(problem)
    assert list(ds["net"].coords["reaction"].values) == list(problem.network.reaction_ids)
    assert ds.attrs["passed"] == 1


def test_profile_interval_matches_linearised_one(problem, result):
    lo, hi = profile_interval(problem, result, "v3")
    j = problem.network.reaction_ids.index("v3")
    half = 1.959964 * result.net_sd[j]
    assert lo < result.net[j] < hi
    assert (hi - lo) == pytest.approx(2 * half, rel=0.15)  # nearly linear near the optimum


def test_log_likelihood_is_gaussian_and_differentiable(problem, result):
    net, xch = jnp.asarray(result.net), jnp.asarray(result.xch)
    loglik = jax.jit(problem.log_likelihood)
    ll = loglik(net, xch)
    r = problem.compiled["residuals"](jnp.asarray(result.theta))
    sds = [SD] * 13 + [0.01, 1.0]
    expect = np.sum(scipy.stats.norm.logpdf(np.asarray(r) * np.array(sds), scale=sds))
    assert float(ll) == pytest.approx(expect, rel=1e-12)
    g = jax.jit(jax.grad(problem.log_likelihood, argnums=1))(net, xch)
    eps = 1e-5
    fd = (loglik(net, xch + eps) - loglik(net, xch - eps)) / (2 * eps)
    assert float(g[0]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)


def test_scale_free_and_partial_mids(toy, toy_experiments):
    """Raw areas (x 1e4) and M+1..M+3 only: the profiled scale makes the residual vanish."""
    exact = LabelingProblem(
        toy, toy_experiments[:1], [MSMeasurement("mix", "F", "1-3", [0.25] * 4, 0.01)]
    )
    mid = np.asarray(
        jax.jit(exact.predictions)(jnp.asarray(TRUE_NET), jnp.asarray(TRUE_XCH))["ms"][0]
    )
    for scale, values, masses in (
        ("free", 1e4 * mid[1:], (1, 2, 3)),
        ("normalized", mid[1:] / mid[1:].sum(), (1, 2, 3)),
    ):
        m = MSMeasurement("mix", "F", "1-3", values, 0.01, scale=scale, masses=masses)
        p = LabelingProblem(toy, toy_experiments[:1], [m])
        r = jax.jit(p.residuals_from_fluxes)(jnp.asarray(TRUE_NET), jnp.asarray(TRUE_XCH))
        np.testing.assert_allclose(r, 0.0, atol=1e-9)


def test_measurement_errors_name_the_culprit(toy, toy_experiments):
    with pytest.raises(NetworkError, match="unknown experiment 'nope'"):
        LabelingProblem(toy, toy_experiments, [MSMeasurement("nope", "F", "1", [1, 0], 0.1)])
    with pytest.raises(NetworkError, match="'Q' is not traced"):
        LabelingProblem(toy, toy_experiments, [MSMeasurement("mix", "Q", "1", [1, 0], 0.1)])
    with pytest.raises(NetworkError, match="standard deviations"):
        LabelingProblem(toy, toy_experiments, [MSMeasurement("mix", "F", "1", [1, 0], 0.0)])
    with pytest.raises(NetworkError, match="unknown reaction 'vx'"):
        LabelingProblem(toy, toy_experiments, [FluxMeasurement("vx", 1.0, 1.0)])
    for sd in (0.0, -1.0, np.inf, np.nan):  # 1/sd would be inf, negative, 0 or NaN
        with pytest.raises(NetworkError, match="flux of 'v1'.*sd > 0"):
            LabelingProblem(toy, toy_experiments, [FluxMeasurement("v1", 1.0, sd)])
        with pytest.raises(NetworkError, match="standard deviations must be finite"):
            LabelingProblem(toy, toy_experiments, [MSMeasurement("mix", "F", "1", [1, 0], sd)])
    with pytest.raises(NetworkError, match=r"atoms \[4\] of 'F'"):
        LabelingProblem(toy, toy_experiments, [MSMeasurement("mix", "F", "4", [1, 0], 0.1)])
