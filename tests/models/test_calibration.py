"""Simulation-based calibration (Talts et al. 2018) of 13C and joint flux posteriors on the toy
network and of FALCON's Laplace expression term (alone and with a measured flux) on a split
network, negative controls that must fail, the data-as-argument log density and the chi-square
rank test.

SBC settings (all SBC tests): R = 100 replications, L = 19 draws (ranks 0..19, B = 10 bins of
2 ranks, 10 expected per bin), thinning = 100 hit-and-run Metropolis moves, 5 thinned warmup
draws from the rounding centre. With a 2-d joint polytope (free net flux v3, exchange flux of
v2) and MID sds of 0.02, the acceptance rate is about 0.2 and the lag-1 autocorrelation of the
thinned v3 draws about 0.15 (measured at thinning 10: lag 1 0.75, lag 10 0.15), so the bulk
ESS of the 19 draws is about 0.85 L (the same estimator gives 1.0 L on iid draws): draws are
nearly independent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from bayesflux.errors import ConfigError
from bayesflux.labeling import EnrichmentMeasurement, LabelingProblem, MSMeasurement
from bayesflux.models import FluxObservations, FluxPosterior, Labeling13C
from bayesflux.models.calibration import (
    generative_model,
    plot_rank_histograms,
    rank_uniformity,
    simulation_based_calibration,
)
from bayesflux.sampling.polytope import LinearConstraint

SD = 0.02  # MID sd: wide enough posteriors for hit-and-run Metropolis to mix in 100 moves
SBC = dict(num_replications=100, num_draws=19, thinning=100, num_warmup=5)
QUANTITIES = ["v3", "labeling_xch[v2]"]  # the free net flux and the exchange flux
ALPHA = 0.01  # family-wise level of the Bonferroni-corrected chi-square tests
V1 = [LinearConstraint({"v1": 1.0}, 100.0, 100.0)]


def _measurements(scale: str = "normalized"):
    # stored values are placeholders: SBC simulates its own data
    return [
        MSMeasurement("mix", "F", "1-3", [0.25] * 4, SD, scale=scale),
        MSMeasurement("mix", "E", "1", [0.5] * 2, SD),
        MSMeasurement("c2", "F", "1-3", [0.25] * 4, SD),
        MSMeasurement("c2", "D", "2,3", [0.3, 0.4, 0.3], SD),
        EnrichmentMeasurement("mix", "B", 2, 0.5, 2.5 * SD),
    ]


@pytest.fixture(scope="module")
def network(toy):
    return toy.stoichiometry()


# the prior the checks below were derived for (uniform on [0, 200]); under the default
# "uniform-fraction" the labelling SBC rejects at p = 0.001 (issue 18: not yet explained)
XCH_PRIOR = "uniform-absolute"


@pytest.fixture(scope="module")
def problem(toy, toy_experiments):
    return LabelingProblem(
        toy, toy_experiments, _measurements(), fixed={"v1": 100.0}, xch_max=200.0
    )


@pytest.fixture(scope="module")
def labeling_posterior(problem, network):
    return FluxPosterior(
        network, [Labeling13C(problem, network, xch_prior=XCH_PRIOR)], constraints=V1
    )


@pytest.fixture(scope="module")
def joint_posterior(problem, network):
    # v7 = 100 - v3 on this network, so the measured flux sharpens the free net flux
    fluxes = FluxObservations(network, {"v7": (80.0, 3.0)})
    return FluxPosterior(
        network, [Labeling13C(problem, network, xch_prior=XCH_PRIOR), fluxes], constraints=V1
    )


@pytest.fixture(scope="module")
def labeling_sbc(labeling_posterior):
    return simulation_based_calibration(labeling_posterior, quantities=QUANTITIES, seed=1, **SBC)


def test_values_argument_and_generative_model(problem, network, joint_posterior):
    """Data as an argument reproduces the stored-data log density exactly (same formula, through
    ``LabelingProblem.log_likelihood(net, xch, values)`` and the FluxObservations formula), and
    new values change it. Simulated data has the model's mean and sd (measured fluxes, whose
    prediction is ``v_j``): 4000 draws put the sample mean within 4 sd / sqrt(4000) of ``v_j``
    (P(fail) < 1e-4 under the CLT) and the sample sd within 10% of the sd (relative standard
    error 1 / sqrt(2 * 4000) = 1.1%)."""
    model = generative_model(joint_posterior)
    values, sd = problem.observations()
    assert model.observed.size == values.size + 1 and len(model.labels) == values.size + 1
    np.testing.assert_allclose(model.sd, np.concatenate([sd, [3.0]]))
    poly = joint_posterior.polytope
    rng = np.random.default_rng(3)
    z = poly.center + 0.3 * poly.radius * rng.uniform(-1, 1, (3, poly.dim))
    x = jnp.asarray(poly.to_fluxes(z))
    shift = jnp.zeros(values.size + 1).at[0].set(0.01)
    y = jnp.asarray(model.observed)
    ys = jnp.stack([y, y + shift])

    @jax.jit  # one compilation for both code paths (stored data, data as argument)
    def both(x, ys):
        ours = jax.vmap(jax.vmap(model.log_density, in_axes=(0, None)), in_axes=(None, 0))
        return ours(x, ys), jax.vmap(joint_posterior.log_density)(x)

    ours, stored = both(x, ys)
    np.testing.assert_allclose(ours[0], stored, rtol=1e-12)
    assert np.all(np.abs(np.asarray(ours[1] - ours[0])) > 1e-6)

    fluxes = FluxPosterior(
        network, [FluxObservations(network, {"v6": (60.0, 2.0)})], constraints=V1
    )
    sim = generative_model(fluxes).simulate
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = np.asarray(jax.jit(jax.vmap(sim, in_axes=(0, None)))(keys, x[0]))[:, 0]
    assert abs(draws.mean() - float(x[0, 5])) < 4 * 2.0 / np.sqrt(4000)
    assert draws.std() == pytest.approx(2.0, rel=0.1)


@pytest.mark.slow
def test_labeling_posterior_is_calibrated(labeling_sbc):
    """Ranks of v3 and the v2 exchange flux are uniform: chi-square on 10 bins (9 df) per
    quantity at the Bonferroni level 0.01 / 2, so a calibrated sampler with independent draws
    fails with probability <= 1% (the fixed seed makes the outcome reproducible). Measured
    p-values (seed 1): about 0.4 and 0.9."""
    ds = labeling_sbc
    assert ds["rank"].dims == ("replication", "quantity")
    assert list(ds["quantity"].values) == QUANTITIES
    assert ds.attrs["L"] == 19 and ds.attrs["R"] == 100 and ds.attrs["thinning"] == 100
    assert ds["rank"].min() >= 0 and ds["rank"].max() <= 19
    test = rank_uniformity(ds, alpha=ALPHA)
    assert test.attrs["bins"] == 10 and test.attrs["level"] == pytest.approx(ALPHA / 2)
    assert bool(test["uniform"].all()), test["p_value"].values
    # near-independent draws (iid draws give 1.0 with this estimator); acceptance as measured
    assert float(ds["ess"].mean() / 19) > 0.6
    assert 0.05 < float(ds["acceptance_rate"].mean()) < 0.6
    # the prior chain behind x* mixes: without couplings the joint polytope is the rectangle
    # v3 in [0, 100] x v_xch in [0, 200], so both are uniform (KS at 0.001 each)
    for q, hi in (("v3", 100.0), ("labeling_xch[v2]", 200.0)):
        draws = ds["prior_draw"].sel(quantity=q).values
        assert scipy.stats.kstest(draws, scipy.stats.uniform(0, hi).cdf).pvalue > 1e-3


@pytest.mark.slow
def test_joint_posterior_is_calibrated(joint_posterior):
    """13C term plus a measured flux (v7, sd 3) on the same network: ranks uniform by the same
    chi-square test (Bonferroni level 0.01 / 2, false failure rate <= 1%)."""
    ds = simulation_based_calibration(joint_posterior, quantities=QUANTITIES, seed=2, **SBC)
    test = rank_uniformity(ds, alpha=ALPHA)
    assert bool(test["uniform"].all()), test["p_value"].values
    assert float(ds["ess"].mean() / 19) > 0.6


@pytest.mark.slow
def test_overconfident_posterior_fails(labeling_posterior, labeling_sbc):
    """Negative control: data simulated with the true sds, posterior with sds 3x too small. The
    posterior sd is then ~1/3 of the true one, so x* lies outside the range of 19 draws about
    half the time (vs 2/20 when calibrated): ranks pile up at 0 and 19 (U shape). The chi-square
    test must reject for v3 at the Bonferroni level; with ~50 of 100 ranks in the two outer bins
    (20 expected) X² exceeds 100, so the power is essentially 1. Same settings and posterior as
    the calibrated run, so the compiled SBC core is reused."""
    ds = simulation_based_calibration(
        labeling_posterior, quantities=QUANTITIES, likelihood_sd_scale=1 / 3, seed=1, **SBC
    )
    assert ds.attrs["likelihood_sd_scale"] == pytest.approx(1 / 3)
    test = rank_uniformity(ds, alpha=ALPHA)
    assert not bool(test["uniform"].sel(quantity="v3"))
    counts = test["counts"].sel(quantity="v3").values
    assert counts[0] + counts[-1] > 40  # U-shaped: 20 expected under uniformity
    calibrated = rank_uniformity(labeling_sbc, alpha=ALPHA)["counts"].sel(quantity="v3").values
    assert counts[0] + counts[-1] > 2 * (calibrated[0] + calibrated[-1])


def test_rank_uniformity_and_plot():
    """The chi-square test on synthetic ranks: uniform ranks (seeded) pass, ranks squeezed into
    the middle (an underconfident posterior) fail; bad bin counts are rejected."""
    import xarray as xr

    rng = np.random.default_rng(5)
    L, R = 19, 400
    uniform = rng.integers(0, L + 1, R)
    middle = np.clip(np.round(rng.normal(L / 2, 2.5, R)), 0, L).astype(int)
    ds = xr.Dataset(
        {"rank": (("replication", "quantity"), np.stack([uniform, middle], axis=1))},
        coords={"quantity": ["a", "b"]},
        attrs={"L": L},
    )
    test = rank_uniformity(ds, bins=10, alpha=ALPHA)
    assert bool(test["uniform"].sel(quantity="a")) and not bool(test["uniform"].sel(quantity="b"))
    assert int(test["counts"].sel(quantity="a").sum()) == R
    with pytest.raises(ConfigError, match="divide L \\+ 1 = 20"):
        rank_uniformity(ds, bins=3)
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    fig = plot_rank_histograms(ds, bins=10)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    matplotlib.pyplot.close(fig)


def test_configuration_errors(toy, toy_experiments, network, labeling_posterior):
    free = LabelingProblem(
        toy, toy_experiments, _measurements("free"), fixed={"v1": 100.0}, xch_max=200.0
    )
    post = FluxPosterior(network, [Labeling13C(free, network)], constraints=V1)
    with pytest.raises(ConfigError, match="F\\[1-3\\].*scale='free'"):
        simulation_based_calibration(post)
    with pytest.raises(ConfigError, match="'nope'"):
        simulation_based_calibration(labeling_posterior, quantities=["nope"])
    with pytest.raises(ConfigError, match="likelihood_sd_scale"):
        simulation_based_calibration(labeling_posterior, likelihood_sd_scale=0.0)

    class Custom:
        name, latents, couplings = "custom", (), ()

        def log_likelihood(self, v, theta):
            return jnp.zeros(())

        def observed_data(self):
            return {}

    with pytest.raises(ConfigError, match="'custom'.*no generative model"):
        simulation_based_calibration(FluxPosterior(network, [Custom()], constraints=V1))


@pytest.fixture(scope="module")
def split_network():
    """Uptake ``u = -EX_A <= 10`` split over R1 (gene g1) and R2 (gene g2): a 2-d polytope."""
    from bayesflux import Network

    return Network.from_stoichiometry(
        {"EX_A": {"A": -1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "B": 1}, "EX_B": {"B": -1}},
        bounds={"EX_A": (-10.0, 0.0)},
        gpr={"R1": "g1", "R2": "g2"},
        id="split",
    )


@pytest.mark.slow
@pytest.mark.parametrize("joint", [False, True], ids=["expression", "expression+flux"])
def test_expression_posterior_is_calibrated(split_network, joint):
    """FALCON's Laplace term (σ = 1, scale k integrated out on [0.5, 2]) alone and with a
    measured uptake (sd 1): data simulated as ``e = k |v| + Laplace(0, 1)`` with ``k`` from its
    prior; ranks of the uptake and of R1 uniform by the chi-square test (Bonferroni level
    0.01 / 2, false failure rate <= 1%). At ``y = observed`` the generative model's log density
    is the posterior's."""
    from bayesflux.models import ExpressionLaplace

    net = split_network
    terms = [
        ExpressionLaplace(
            net, {"g1": 6.0, "g2": 2.0}, {"g1": 1.0, "g2": 1.0}, scale_bounds=(0.5, 2)
        )
    ]
    if joint:
        terms.append(FluxObservations(net, {"EX_A": (-8.0, 1.0)}))
    post = FluxPosterior(net, terms)
    model = generative_model(post)
    x = jnp.array([-7.0, 5.0, 2.0, 7.0])
    np.testing.assert_allclose(
        float(model.log_density(x, jnp.asarray(model.observed))),
        float(post.log_density(x)),
        rtol=1e-12,
    )
    ds = simulation_based_calibration(post, quantities=["EX_A", "R1"], seed=3, **SBC)
    test = rank_uniformity(ds, alpha=ALPHA)
    assert bool(test["uniform"].all()), test["p_value"].values
    assert float(ds["ess"].mean() / 19) > 0.6, float(ds["ess"].mean())
    if not joint:
        # negative control (same compiled core): Laplace scales 3x too small in the posterior
        # give U-shaped ranks of R1 (measured p ~ 3e-11; 0.78 and 0.28 when calibrated)
        bad = simulation_based_calibration(
            post, quantities=["EX_A", "R1"], seed=3, likelihood_sd_scale=1 / 3, **SBC
        )
        assert not bool(rank_uniformity(bad, alpha=ALPHA)["uniform"].sel(quantity="R1"))
