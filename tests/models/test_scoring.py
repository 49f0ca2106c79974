"""Scoring net-flux samples by 13C fits (seed 002): solver checks and subset statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import xarray as xr

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.labeling import (
    Experiment,
    LabelingNetwork,
    LabelingProblem,
    MSMeasurement,
    fit,
)
from bayesflux.models.scoring import best_fraction, ks_shift, score_net_fluxes, subset_shift
from bayesflux.thermo.flux_force import exchange_lower_bound

#: the EMU paper's example network (tests/labeling/conftest.py) with v3 made reversible too, so
#: two exchange fluxes are fitted; one free net flux ``a``:
#: v = (100, 100 - 2a, a, a, 100 - a, 3a, 100 - a)
TOY = {
    "v1": "A (abc) -> B (abc)",
    "v2": "B (abc) <-> D (abc)",
    "v3": "B (abc) <-> C (bc) + E (a)",
    "v4": "B (abc) + C (de) -> D (bcd) + E (a) + E (e)",
    "v5": "D (abc) -> F (abc)",
    "v6": "E (a) -> ",
    "v7": "F (abc) -> ",
}
TRUE_A = 20.0
TRUE_XCH = np.array([50.0, 30.0])
SD = 0.004
SPECS = [
    ("mix", "F", "1-3", "C5H10O2Si", 4),
    ("mix", "E", "1", None, 2),
    ("c2", "F", "1-3", "C5H10O2Si", 4),
    ("c2", "D", "2,3", None, 3),
    ("mix", "B", "1-3", None, 4),
]
#: solver settings shared by the tests, so that one compilation serves them all
SETTINGS = {"num_starts": 4, "num_iterations": 100, "batch_size": 4}
RT = 8.314462618e-3 * 298.15  # kJ/mol


def _net(a) -> np.ndarray:
    a = np.atleast_1d(np.asarray(a, float))
    return np.stack([np.full_like(a, 100.0), 100 - 2 * a, a, a, 100 - a, 3 * a, 100 - a], axis=1)


def _samples(a) -> xr.DataArray:
    return xr.DataArray(
        _net(a), dims=("sample", "reaction"), coords={"reaction": list(TOY)}, name="net"
    )


def _measurements(values=None) -> list[MSMeasurement]:
    return [
        MSMeasurement(e, m, at, values[k] if values else [0.25] * n, SD, formula=f)
        for k, (e, m, at, f, n) in enumerate(SPECS)
    ]


@pytest.fixture(scope="module")
def network() -> LabelingNetwork:
    return LabelingNetwork.from_strings(TOY, bounds={"v2": (-500.0, 500.0)})


@pytest.fixture(scope="module")
def experiments() -> list[Experiment]:
    return [
        Experiment.from_dict("mix", {"A": {"100": 0.25, "010": 0.25, "111": (0.5, 0.99)}}),
        Experiment.from_dict("c2", {"A": {"010": 1.0}}, natural=0.0107),
    ]


@pytest.fixture(scope="module")
def values(network, experiments):
    """MIDs simulated at the true (net, xch), with N(0, SD) noise (fixed seed)."""
    placeholder = LabelingProblem(network, experiments, _measurements())
    p = jax.jit(placeholder.predictions)(jnp.asarray(_net(TRUE_A)[0]), jnp.asarray(TRUE_XCH))
    rng = np.random.default_rng(11)
    return [
        list(np.asarray(p["ms"][k, :n]) + rng.normal(0, SD, n)) for k, (*_, n) in enumerate(SPECS)
    ]


@pytest.fixture(scope="module")
def problem(network, experiments, values) -> LabelingProblem:
    return LabelingProblem(network, experiments, _measurements(values), fixed={"v1": 100.0})


@pytest.fixture(scope="module")
def scored(problem):
    """The true net flux (first) among perturbed ones; 7 samples in batches of 4 (one padded)."""
    return score_net_fluxes(problem, _samples([TRUE_A, 15, 25, 10, 30, 18, 22]), **SETTINGS)


def test_true_net_flux_scores_best_and_passes(scored):
    assert scored.attrs["dof"] == 17 - 2
    assert list(scored["reversible_reaction"].values) == ["v2", "v3"]
    ssr = scored["residual"].values
    assert int(scored["rank"][0]) == 1 and np.all(ssr[1:] > ssr[0])
    assert sorted(scored["rank"].values) == list(range(1, 8))
    assert bool(scored["passed"][0])  # 15 residuals of N(0, 1) noise at the truth
    assert not bool(scored["passed"][3])  # a = 10 is far off: SSR >> chi2_15(0.975) = 27.5
    assert np.all(scored["hits"].values == SETTINGS["num_starts"])  # every start agrees


def test_score_matches_full_fit_with_net_fluxes_fixed(network, experiments, values, scored):
    """The full 13C-MFA fit (multi-start Levenberg-Marquardt) with every net flux fixed to the
    truth fits the same two exchange fluxes: both reach the same smooth minimum, where the SSR is
    quadratic in the parameter error, so the SSRs agree far below 1e-7 (relative); the exchange
    fluxes only to ~sqrt(dSSR / curvature), curvature ~ sigma_min(J)^2 ~ 0.03, hence rtol 1e-4
    for them."""
    full = LabelingProblem(
        network, experiments, _measurements(values), fixed=dict(zip(TOY, _net(TRUE_A)[0]))
    )
    result = fit(full, n_starts=2, rng=0, polish=2)
    assert full.space.n_free == 0 and result.dof == scored.attrs["dof"]
    assert float(scored["residual"][0]) == pytest.approx(result.ssr, rel=1e-7)
    np.testing.assert_allclose(scored["xch"].values[0], result.xch, rtol=1e-4)
    # and the data identify them: within 4 linearised sds of the simulated truth
    assert np.all(np.abs(result.xch - TRUE_XCH) <= 4 * result.xch_sd)


def test_flux_force_bounds_are_respected_and_raise_the_residual(problem, scored):
    """ΔrG = (-1, -2) kJ/mol at the true fluxes bounds v2's exchange flux by
    60 / (exp(1/RT) - 1) = 120.7 (above its free optimum ~50: active) and v3's by
    20 / (exp(2/RT) - 1) = 16.1 (below ~30: inactive); ΔrG = -80 kJ/mol gives bounds < 1e-11 (an
    optimum at xch = 0 then moves by < 1e-11, the SSR by far less than 1e-9 relative)."""
    a = np.array([TRUE_A, 15, 25, 10, 30, 18, 22])
    net = _net(a)
    drg = np.tile([-1.0, -2.0], (len(a), 1))
    drg[1:] = -80.0
    bound = np.asarray(exchange_lower_bound(jnp.asarray(net[:, [1, 2]]), jnp.asarray(drg), RT))
    assert bound[0, 0] == pytest.approx(120.7, abs=0.1) and bound[0, 1] < 30
    lower = xr.DataArray(bound, dims=("sample", "reaction"), coords={"reaction": ["v2", "v3"]})
    ds = score_net_fluxes(problem, _samples(a), xch_lower=lower, **SETTINGS)
    xch = ds["xch"].values
    assert np.all(xch >= bound) and np.all(xch <= problem.xch_max)
    np.testing.assert_array_equal(ds["xch_lower"].values, bound)
    assert xch[0, 0] == pytest.approx(bound[0, 0], rel=1e-12)  # held at the active bound
    free, bounded = scored["residual"].values, ds["residual"].values
    # a bound can only shrink the box: never a lower minimum (up to solver noise, 1e-9)
    assert np.all(bounded >= free * (1 - 1e-9))
    assert bounded[0] > free[0] + 1.0  # the active bound costs a clear misfit
    np.testing.assert_allclose(bounded[1:], free[1:], rtol=1e-9)  # bounds < 1e-11
    # bounds on one reaction only: the other stays unbounded (lower bound 0)
    only = score_net_fluxes(problem, _samples(a), xch_lower=lower[:, :1], **SETTINGS)
    np.testing.assert_array_equal(only["xch_lower"].values[:, 1], 0.0)
    assert only["xch"].values[0, 0] == pytest.approx(bound[0, 0], rel=1e-12)


def test_score_net_fluxes_rejects_bad_input(problem):
    with pytest.raises(NetworkError, match=r"lack the labelling reactions \['v4', 'v6'\]"):
        score_net_fluxes(problem, _samples([TRUE_A]).drop_sel(reaction=["v4", "v6"]))
    with pytest.raises(ValueError, match="dims"):
        score_net_fluxes(problem, _samples([TRUE_A])[0])
    with pytest.raises(ValueError, match="dims"):
        score_net_fluxes(problem, _net([TRUE_A]))
    net = _samples([TRUE_A, 15])
    with pytest.raises(ValueError, match=r"xch_lower has shape \(2, 3\), expected .*\(2, 2\)"):
        score_net_fluxes(problem, net, xch_lower=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="xch_lower has 1 samples, net has 2"):
        lower = xr.DataArray(
            np.zeros((1, 2)), dims=("sample", "reaction"), coords={"reaction": ["v2", "v3"]}
        )
        score_net_fluxes(problem, net, xch_lower=lower)
    with pytest.raises(InfeasibleError, match=r"'v3' in sample 1 is 2000, above xch_max = 1000"):
        score_net_fluxes(problem, net, xch_lower=np.array([[0, 0], [0, 2000.0]]))
    with pytest.raises(ValueError, match="'v2' in sample 0 is NaN"):
        score_net_fluxes(problem, net, xch_lower=np.array([[np.nan, 0], [0, 0]]))
    bad = xr.DataArray(np.zeros((2, 1)), dims=("sample", "reaction"), coords={"reaction": ["v4"]})
    with pytest.raises(NetworkError, match=r"\['v4'\], which are not reversible"):
        score_net_fluxes(problem, net, xch_lower=bad)
    unbalanced = net.copy()
    unbalanced.loc[{"reaction": "v5"}] = 90.0
    with pytest.raises(NetworkError, match="sample 0 is not at steady state.*metabolite 'D'"):
        score_net_fluxes(problem, unbalanced)


def test_fixed_exchange_fluxes_leave_nothing_to_fit(network, experiments, values):
    """With both exchange fluxes fixed the score is the plain SSR at (net, fixed xch), dof = 17."""
    fixed = LabelingProblem(
        network,
        experiments,
        _measurements(values),
        fixed={"v1": 100.0},
        fixed_xch={"v2": 50.0, "v3": 30.0},
    )
    net = _samples([TRUE_A, 15])
    ds = score_net_fluxes(fixed, net, **SETTINGS)
    r = jax.jit(jax.vmap(fixed.residuals_from_fluxes, in_axes=(0, None)))(
        jnp.asarray(net.values), jnp.asarray(TRUE_XCH)
    )
    np.testing.assert_allclose(ds["residual"], np.sum(np.asarray(r) ** 2, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(ds["xch"].values, [[50.0, 30.0]] * 2)
    assert ds.attrs["dof"] == 17 and ds.attrs["n_free_xch"] == 0
    with pytest.raises(InfeasibleError, match="'v3' in sample 1 .* fixed exchange flux 30"):
        score_net_fluxes(fixed, net, xch_lower=np.array([[0, 0], [0, 40.0]]))


# ------------------------------------------------------------------------------------ statistics
@pytest.fixture(scope="module")
def flux_samples() -> xr.DataArray:
    """500 samples of 20 independent 'reactions' (normal, exponential, uniform, discrete)."""
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.normal(size=(500, 8)),
            rng.exponential(size=(500, 6)),
            rng.uniform(-1, 1, size=(500, 4)),
            rng.integers(0, 4, size=(500, 2)).astype(float),  # ties
        ],
        axis=1,
    )
    return xr.DataArray(
        x, dims=("sample", "reaction"), coords={"reaction": [f"R{j}" for j in range(20)]}
    )


def test_subset_shift_random_subsets_flag_at_the_nominal_rate(flux_samples):
    """A random subset is exchangeable with the null subsets, so each of the 2 x 20 tests flags
    with probability ~level (+ the quantile interpolation between order statistics, < 1/n_null).
    10 random subsets x 40 tests at level 0.01: expected 4 flags; the binomial(400, 0.011)
    99.9% quantile is 12 (the tests of one subset are nearly independent: independent columns)."""
    rng = np.random.default_rng(1)
    level, n_null, flags, tests = 0.01, 1000, 0, 0
    for k in range(10):
        sel = rng.permutation(500)[:100]
        ds = subset_shift(flux_samples, sel, n_null=n_null, level=level, seed=k)
        flags += int(ds["median_shift"].sum() + ds["iqr_shift"].sum())
        tests += 2 * ds.sizes["reaction"]
    assert flags <= scipy.stats.binom.ppf(0.999, tests, level + 1 / n_null)
    assert list(ds["reaction"].values) == list(flux_samples["reaction"].values)
    assert ds.attrs["subset_size"] == 100


def test_subset_shift_flags_a_shifted_subset(flux_samples):
    """The 20% largest values of R0 (a normal): median ~1.4 sd above the full median, while the
    null median of 100 of 500 has sd ~0.11: far outside the 99.99% range [-0.31, 0.52]; the IQR
    shrinks from 1.35 to 0.69, below the range [0.85, 1.96]. The other 19 independent
    reactions: expected 19 x 2 x 1e-4 false flags, so none."""
    top = best_fraction(-flux_samples.sel(reaction="R0"), 0.2)
    assert int(top.sum()) == 100
    ds = subset_shift(flux_samples, top.values)  # defaults: 10000 null subsets, level 1e-4
    assert bool(ds["median_shift"].sel(reaction="R0")) and bool(ds["iqr_shift"].sel(reaction="R0"))
    assert int(ds["median_shift"].sum()) == 1 and int(ds["iqr_shift"].sum()) == 1
    assert float(ds["median_pvalue"].sel(reaction="R0")) == pytest.approx(2 / 10001)
    x = flux_samples.values[top.values]
    np.testing.assert_allclose(ds["median"], np.median(x, axis=0))
    np.testing.assert_allclose(
        ds["iqr"], np.percentile(x, 75, axis=0) - np.percentile(x, 25, axis=0)
    )


def test_ks_shift_flags_one_changed_reaction_only(flux_samples):
    """b = the 100 largest values of R3, a = a random 100: KS(R3) = 0.87, while KS between random
    subsets of 100 has a 99.9% quantile of 0.19-0.27; the 19 other reactions (and a random pair) at
    level 1e-3: expected 0.02 false flags, so none."""
    rng = np.random.default_rng(3)
    a = rng.permutation(500)[:100]
    b = np.argsort(-flux_samples.sel(reaction="R3").values)[:100]
    ds = ks_shift(flux_samples, a, b, n_null=2000, level=1e-3)
    assert list(np.flatnonzero(ds["ks_shift"].values)) == [3]
    for j in range(20):  # the vectorised statistic, ties included, equals scipy's
        ks = scipy.stats.ks_2samp(flux_samples.values[a, j], flux_samples.values[b, j]).statistic
        assert float(ds["ks"][j]) == pytest.approx(ks, abs=1e-12)
    random_pair = ks_shift(flux_samples, a, rng.permutation(500)[:150], n_null=2000, level=1e-3)
    assert not random_pair["ks_shift"].any()
    assert random_pair.attrs["size_b"] == 150


def test_statistics_reject_bad_input(flux_samples):
    with pytest.raises(ValueError, match=r"mask of shape \(10,\), expected \(500,\)"):
        subset_shift(flux_samples, np.ones(10, bool))
    with pytest.raises(ValueError, match="repeats"):
        subset_shift(flux_samples, np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="outside"):
        ks_shift(flux_samples, np.arange(10), np.array([3, 600]))
    with pytest.raises(ValueError, match="level"):
        ks_shift(flux_samples, np.arange(10), np.arange(10, 20), level=1.5)
    with pytest.raises(ValueError, match="2-D"):
        subset_shift(np.zeros(5), np.arange(2))
    bad = flux_samples.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="'R4'"):
        subset_shift(bad, np.arange(10))


def test_best_fraction():
    scores = xr.DataArray([5.0, 1.0, np.nan, 3.0, 1.0, 9.0, 2.0, 7.0, 4.0, 8.0], dims="sample")
    mask = best_fraction(scores, 0.3)
    assert mask.dims == ("sample",) and mask.dtype == bool
    np.testing.assert_array_equal(np.flatnonzero(mask), [1, 4, 6])
    np.testing.assert_array_equal(
        np.flatnonzero(best_fraction(scores.values, 1.0)), [0, 1, 3, 4, 5, 6, 7, 8, 9]
    )  # NaN never selected
    with pytest.raises(ValueError, match="fraction"):
        best_fraction(scores, 0.0)
