"""Measurement model, weighted least-squares fit, intervals and the log-likelihood.

The fit is checked against independent references: a generic constrained optimiser for the
solver's step, ``inv(R) inv(R)'`` from a QR of J for the covariance, and influx_si's stored fit
of its ``test/e_coli.ftbl`` (SSR, fluxes, linearised sds, p-value; read from the installed
package, skipped without it).
"""

from __future__ import annotations

import importlib.resources
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.stats

from bayesflux.errors import NetworkError
from bayesflux.labeling import (
    FluxMeasurement,
    LabelingProblem,
    MSMeasurement,
    fit,
    profile_interval,
    read_ftbl,
)
from bayesflux.labeling.fit import (
    _constrained_fit,
    _coordinates,
    _lsi_step,
    _profile_row,
    _residuals_and_jacobian,
    _vertex_mixtures,
    linearised_covariance,
    profile_intervals,
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
    assert result.converged and result.n_best == result.n_starts == 3
    assert result.p_value == pytest.approx(scipy.stats.chi2.sf(result.ssr, 13), rel=1e-12)
    assert np.all(np.abs(result.net - TRUE_NET) <= 4 * result.net_sd + 1e-9)
    assert abs(result.xch[0] - TRUE_XCH[0]) <= 4 * result.xch_sd[0]
    ds = result.to_dataset(problem)
    assert list(ds["net"].coords["reaction"].values) == list(problem.network.reaction_ids)
    assert ds.attrs["passed"] == 1 and ds.attrs["ci_method"] == "profile"
    j = problem.network.reaction_ids.index("v3")
    assert (ds["net_lower"][j], ds["net_upper"][j]) == profile_interval(problem, result, "v3")
    assert ds["net_lower"][0] == ds["net_upper"][0] == 100.0  # v1 is fixed


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


def test_fit_reports_a_run_that_did_not_converge(problem, caplog):
    with caplog.at_level(logging.WARNING, logger="bayesflux.labeling.fit"):
        short = fit(problem, n_starts=2, rng=1, maxiter=1, polish=0)
    assert not short.converged and short.status.startswith("NOT converged")
    assert "did not converge" in caplog.text
    if short.n_best < 2:  # one iteration leaves the two starts apart
        assert "only 1 of 2 starts reached the best SSR" in caplog.text


def test_lsi_step_matches_a_generic_constrained_solver():
    """min |J d + r|^2 + lam |D d|^2 s.t. G d <= s, against SLSQP on the same QP."""
    rng = np.random.default_rng(3)
    J, r = rng.normal(size=(20, 5)), rng.normal(size=20)
    G = rng.normal(size=(8, 5))
    s = np.abs(rng.normal(size=8)) * 0.1
    s[:2] = 0.0  # two constraints active at d = 0
    D, lam = np.abs(rng.normal(size=5)) + 0.5, 0.3

    def q(d):
        return np.sum((J @ d + r) ** 2) + lam * np.sum((D * d) ** 2)

    ref = scipy.optimize.minimize(
        q,
        np.zeros(5),
        jac=lambda d: 2 * J.T @ (J @ d + r) + 2 * lam * D**2 * d,
        constraints=[{"type": "ineq", "fun": lambda d: s - G @ d, "jac": lambda d: -G}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    d = _lsi_step(J, r, G, s, D, lam)
    assert np.all(G @ d <= s + 1e-10)
    assert np.any(np.abs(G @ d - s) < 1e-9)  # the constraints bind
    np.testing.assert_allclose(d, ref.x, atol=1e-6)
    assert q(d) <= q(ref.x) + 1e-10


def test_linearised_covariance_is_the_full_inverse(caplog):
    """No truncation: an ill-conditioned J'J is inverted (compared with inv(R) inv(R)' from a
    QR of J), its parameters named in a warning; a zero column gets infinite variance."""
    rng = np.random.default_rng(4)
    J = rng.normal(size=(30, 4)) * np.array([1.0, 1e3, 1e-5, 1.0])  # very different units
    cov, cond, ill = linearised_covariance(J, ["a", "b", "c", "d"])
    np.testing.assert_allclose(cov, np.linalg.inv(J.T @ J), rtol=1e-9)
    assert ill == () and cond < 10
    J[:, 3] = J[:, 0] + 1e-7 * rng.normal(size=30)  # d nearly equals a
    with caplog.at_level(logging.WARNING, logger="bayesflux.labeling.fit"):
        cov, cond, ill = linearised_covariance(J, ["a", "b", "c", "d"])
    Rinv = np.linalg.inv(np.linalg.qr(J)[1])
    np.testing.assert_allclose(cov, Rinv @ Rinv.T, rtol=1e-5)
    assert ill == ("a", "d") and cond > 1e13 and "poorly determined: a, d" in caplog.text
    assert np.sqrt(cov[3, 3]) > 1e5  # huge, as it should be, not truncated to ~1
    J[:, 2] = 0.0
    cov, _, ill = linearised_covariance(J, ["a", "b", "c", "d"])
    assert np.isinf(cov[2, 2]) and "c" in ill


# ------------------------------------------------------------------ influx_si's E. coli
#: influx_si's e_coli.stat: chi2 value and p-value (its p-value is P(chi2(33) <= SSR))
INFLUX_SSR, INFLUX_P = 61.5142106358407, 0.998130309433769


def _influx_root():
    pytest.importorskip("influx_si")
    return importlib.resources.files("influx_si") / "test"


@pytest.fixture(scope="module")
def ecoli():
    return read_ftbl(_influx_root() / "e_coli.ftbl").problem(xch_max=999.0)


@pytest.fixture(scope="module")
def influx_si():
    """influx_si's fit: ``{(reaction, NET|XCH): (value, sd, type)}``; XCH on its [0, 1) scale."""
    path = _influx_root() / "ok" / "mtf" / "e_coli_res" / "e_coli.tvar.sim"
    rows = (f.split("\t") for f in path.read_text().splitlines()[1:])
    return {(f[2], f[3]): (float(f[5]), float(f[6]), f[4]) for f in rows}


@pytest.fixture(scope="module")
def ecoli_fit(ecoli):
    """The polytope's centre and 20 random starts (about 5 s after a ~30 s compilation)."""
    return fit(ecoli, n_starts=21, rng=2024)


def _ours(problem, result, reaction, kind):
    if kind == "NET":
        j = problem.network.reaction_ids.index(reaction)
        return result.net[j], result.net_sd[j]
    j = problem.reversible.index(reaction)
    return result.xch_fraction[j], result.xch_fraction_sd[j]


def test_ecoli_fit_equals_influx_si(ecoli, ecoli_fit, influx_si):
    """SSR, dof, p-value, every flux to 1e-3 and every linearised sd within 2% of influx_si's,
    including eno's exchange at its bound 0.999 (sd 0.30; a pseudo-inverse gave 3e-8)."""
    res = ecoli_fit
    assert res.converged and res.n_best >= 20
    assert res.ssr == pytest.approx(INFLUX_SSR, abs=1e-4)
    assert res.dof == 33 and not res.passed  # influx_si: "the model does not fit ... enough"
    assert 1 - res.p_value == pytest.approx(INFLUX_P, abs=1e-5)
    compared = 0
    for (reaction, kind), (value, sd, _) in influx_si.items():
        if kind == "XCH" and reaction not in ecoli.reversible:
            continue
        mine, mine_sd = _ours(ecoli, res, reaction, kind)
        assert mine == pytest.approx(value, abs=1e-3), (reaction, kind)
        if sd > 0:
            assert mine_sd == pytest.approx(sd, rel=0.02), (reaction, kind)
            compared += 1
    assert compared >= 30
    free = [k for k, v in influx_si.items() if v[2] == "F"]
    assert len(free) == 12 and ("eno", "XCH") in free
    eno = ecoli.reversible.index("eno")
    assert res.xch_fraction[eno] == pytest.approx(0.999, abs=1e-12)  # at its bound
    assert res.xch_fraction_sd[eno] == pytest.approx(influx_si[("eno", "XCH")][1], rel=0.02)
    assert res.ci_method == "profile" and res.xch_ci[eno, 1] == 999.0  # no upper limit


def test_ecoli_profile_interval_is_the_multistart_profile(ecoli, ecoli_fit):
    """pgi's profile interval [0.814, 0.877] is half its linearised one (the bounds edd, mae >=
    1e-4 are active at the optimum): at 0.80 and 0.89 the SSR re-optimised from 6 dispersed
    starts each exceeds the minimum by more than 3.84, just inside it does not."""
    j = ecoli.network.reaction_ids.index("pgi")
    lo, hi = ecoli_fit.net_ci[j]
    assert ecoli_fit.net[j] - 1.96 * ecoli_fit.net_sd[j] < lo - 0.02
    assert hi + 0.02 < ecoli_fit.net[j] + 1.96 * ecoli_fit.net_sd[j]
    coords = _coordinates(ecoli)
    fun = _residuals_and_jacobian(ecoli, coords)
    a, target, _, _ = _profile_row(ecoli, coords, "pgi", False)
    starts = _vertex_mixtures(coords.G, coords.h, 6, np.random.default_rng(0), subset=True)
    for c, outside in (
        (lo - 0.01, True),
        (lo + 0.002, False),
        (hi - 0.002, False),
        (hi + 0.01, True),
    ):
        best = min(_constrained_fit(fun, coords, a, target(c), u).ssr for u in starts)
        assert (best - ecoli_fit.ssr > 3.841) == outside, c


def test_ecoli_twenty_random_starts_reach_influx_si_optimum(ecoli_fit):
    """>= 95% of 20 random starts reach influx_si's SSR 61.514 (+- 1e-4), converged."""
    res = ecoli_fit
    assert res.n_starts == 21  # start 0 is the centre
    reached = np.abs(res.start_ssr[1:] - INFLUX_SSR) <= 1e-4
    assert reached.sum() >= 19
    assert np.all(res.start_converged[1:][reached])


def test_ecoli_profile_intervals(ecoli, ecoli_fit):
    """eno's exchange (at its bound) has no upper limit from the data; pyk's profile interval
    holds the fit and is inside its feasible range [1, 1.5916]."""
    res = ecoli_fit
    ds = profile_intervals(ecoli, res, net=["pyk"], xch=["eno"])
    eno = ds.sel(reversible_reaction="eno")
    assert eno["xch_profile_upper"].item() == 999.0
    assert 1.0 < eno["xch_profile_lower"].item() < res.xch[ecoli.reversible.index("eno")]
    pyk = ds.sel(reaction="pyk")
    j = ecoli.network.reaction_ids.index("pyk")
    lo, hi = pyk["net_profile_lower"].item(), pyk["net_profile_upper"].item()
    assert 1.0 <= lo < res.net[j] < hi <= 1.5917
    assert np.isnan(ds["net_profile_lower"].sel(reaction="zwf").item())  # not profiled


def test_fit_without_free_parameters_is_the_ssr_at_the_fixed_fluxes(toy_problem, problem):
    fixed = toy_problem(
        TRUE_NET,
        TRUE_XCH,
        SD,
        free=None,
        equalities=[({"v3": 1.0}, 20.0)],
        fixed_xch={problem.reversible[0]: 50.0},
    )
    assert fixed.n_params == 0
    res = fit(fixed)
    r = np.asarray(fixed.residuals_from_fluxes(jnp.asarray(res.net), jnp.asarray(res.xch)))
    assert res.converged and res.ssr == pytest.approx(float(r @ r), rel=1e-12)
    assert res.net[2] == pytest.approx(20.0) and res.xch[0] == 50.0 and res.cov.shape == (0, 0)
