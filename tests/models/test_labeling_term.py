"""The 13C likelihood term: posterior against the linearised 13C-MFA fit, flux-force couplings."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from bayesflux.errors import NetworkError
from bayesflux.labeling import fit
from bayesflux.models import FluxPosterior, Labeling13C
from bayesflux.sampling.polytope import LinearConstraint

TRUE_NET = np.array([100.0, 60, 20, 20, 80, 60, 80])
TRUE_XCH = np.array([50.0])
SD = 0.004


@pytest.fixture(scope="module")
def problem(toy_problem):
    return toy_problem(TRUE_NET, TRUE_XCH, SD, formulas=False, xch_max=200.0)


@pytest.fixture(scope="module")
def network(toy):
    return toy.stoichiometry()


@pytest.mark.slow
def test_posterior_agrees_with_linearised_fit(problem, network):
    """With 15 precise measurements the posterior of the free net flux v3 is close to Gaussian:
    its mean and sd match the weighted-least-squares fit and its linearised sd (J'J)^-1 within
    Monte Carlo error and the curvature of the model (25% on the sd), and it covers the truth.
    The flux-force bound ``v_xch >= |v_net| / (exp(|ΔrG|/RT) - 1)`` (|ΔrG| <= 5 kJ/mol on v2, so
    c = 0.155 and the bound, about 9, stays below the true 50) holds in every draw. Sampled by
    reflective HMC, the posterior step's default: hit-and-run Metropolis mixes too slowly here
    for a test of 4 x 500 draws (chain means 2.7 sd apart)."""
    best = fit(problem, n_starts=3, rng=0)
    term = Labeling13C(problem, network, max_abs_drg={"v2": 5.0})
    post = FluxPosterior(network, [term], constraints=[LinearConstraint({"v1": 1.0}, 100.0, 100.0)])
    tree = post.sample(method="hmc", num_chains=4, num_draws=500, seed=2)
    flux = tree["posterior"]["flux"]
    v3 = flux.sel(reaction="v3").values
    j = problem.network.reaction_ids.index("v3")
    assert float(az.rhat(v3)) < 1.01 and float(az.ess(v3)) > 400  # MCSE < 0.05 sd
    assert abs(v3.mean() - best.net[j]) < 0.5 * best.net_sd[j]
    assert v3.std() == pytest.approx(best.net_sd[j], rel=0.25)
    lo, hi = np.quantile(v3, [0.03, 0.97])
    assert lo < TRUE_NET[j] < hi
    assert float(tree["sample_stats"]["acceptance_rate"].mean()) > 0.01
    assert tree["observed_data"]["labeling"].sizes["measurement"] == problem.n_measurements
    c = 1.0 / np.expm1(5.0 / (8.314462618e-3 * 298.15))
    v2 = flux.sel(reaction="v2").values
    xch = tree["posterior"]["labeling_xch[v2]"].values
    assert np.all(xch >= c * np.abs(v2) - 1e-9)


def test_bad_mapping_and_bounds(problem, network):
    with pytest.raises(NetworkError, match="no counterpart"):
        Labeling13C(problem, network, reaction_map={"v3": "missing"})
    with pytest.raises(NetworkError, match="not a reversible"):
        Labeling13C(problem, network, max_abs_drg={"v3": 1.0})
