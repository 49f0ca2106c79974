"""The 13C likelihood term: posterior against the linearised 13C-MFA fit, flux-force couplings,
exchange-flux priors stated on ``f = xch / (1 + xch)`` (issue 18)."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from numpyro.infer.util import log_density

from bayesflux.errors import ConfigError, NetworkError
from bayesflux.labeling import fit
from bayesflux.models import FluxPosterior, Labeling13C
from bayesflux.models.posterior import JOINT_SITE
from bayesflux.models.terms import ExchangeLatent, exchange_latent
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


# ------------------------------------------------------------------ exchange-flux priors (issue 18)
#: KS tests of prior draws: reject at this level (fixed seeds, so each test is deterministic)
KS_ALPHA = 0.01
XCH_BOX = 99.0  # f_max = 0.99: the truncation is visible in every prior's closed form


def _f(x):
    return x / (1.0 + x)


def _fraction_cdf(prior: str):
    """CDF on ``f = x / (1 + x)`` of each prior, truncated to ``[0, f(XCH_BOX)]``."""
    fmax = _f(XCH_BOX)
    if prior == "uniform-absolute":  # x ~ U(0, X): P(f' <= f) = x(f) / X with x(f) = f / (1 - f)
        return lambda f: np.clip(f / (1.0 - f) / XCH_BOX, 0.0, 1.0)
    beta = scipy.stats.beta(*((1.0, 1.0) if prior == "uniform-fraction" else (2.0, 5.0)))
    return lambda f: np.clip(beta.cdf(f) / beta.cdf(fmax), 0.0, 1.0)


@pytest.mark.parametrize("prior", ["uniform-fraction", "beta(2, 5)", "uniform-absolute"])
def test_exchange_prior_draws_follow_the_stated_density(prior):
    """The prior alone, sampled by NumPyro's NUTS (``x ~ U(0, X)`` times the latent's
    ``exp(log_prior(x))``, the factor a FluxPosterior multiplies in): ``f = x / (1 + x)`` passes a
    KS test (alpha 0.01, 2000 draws thinned 4x from 4 x 2000) against Uniform(0, 1), Beta(2, 5)
    and, for the absolute prior, the change of variables ``P(f) = f / ((1 - f) X)``, each
    truncated to ``f <= X / (1 + X)``; the other priors are rejected (the test has power)."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    latent = exchange_latent("xch", 0.0, XCH_BOX, prior)

    def model():
        x = numpyro.sample("x", dist.Uniform(0.0, XCH_BOX))
        numpyro.factor("prior", latent.log_prior(x))

    mcmc = MCMC(
        NUTS(model), num_warmup=500, num_samples=2000, num_chains=4, progress_bar=False,
        chain_method="vectorized",
    )  # fmt: skip
    mcmc.run(jax.random.key(18))
    f = _f(np.asarray(mcmc.get_samples()["x"]))[::4]
    assert f.size == 2000
    p = scipy.stats.kstest(f, _fraction_cdf(prior)).pvalue
    assert p > KS_ALPHA, f"{prior}: KS p = {p:.3g}"
    for other in {"uniform-fraction", "beta(2, 5)", "uniform-absolute"} - {prior}:
        assert scipy.stats.kstest(f, _fraction_cdf(other)).pvalue < KS_ALPHA, other


@pytest.mark.parametrize("prior", ["uniform-fraction", "beta(2, 5)", "beta(0.5, 3)"])
def test_exchange_prior_change_of_variables(prior):
    """``exp(log_prior(x)) dx/df`` with ``x = f / (1 - f)``, normalised over the box, is the
    Beta density of ``f`` truncated to ``[0, f(X)]``, at every point (to 1e-6)."""
    latent = exchange_latent("xch", 0.0, XCH_BOX, prior)
    a, b = (latent.a, latent.b)
    f = np.linspace(0.01, _f(XCH_BOX) - 1e-3, 50)
    x = f / (1.0 - f)
    log_px = np.asarray(latent.log_prior(jnp.asarray(x)))

    def density(g):  # p_x(x(f)) dx/df, unnormalised
        return float(np.exp(latent.log_prior(jnp.asarray(g / (1 - g))))) / (1 - g) ** 2

    norm = scipy.integrate.quad(density, 0.0, _f(XCH_BOX), epsabs=0, epsrel=1e-10, limit=200)[0]
    log_pf = log_px - 2.0 * np.log1p(-f) - np.log(norm)
    beta = scipy.stats.beta(a, b)
    expected = beta.logpdf(f) - np.log(beta.cdf(_f(XCH_BOX)))
    np.testing.assert_allclose(log_pf, expected, atol=1e-6)


def test_exchange_prior_in_the_posterior_and_its_attrs(problem, network):
    """The default prior is uniform in ``f``: the posterior's log density at two exchange fluxes
    differs by the likelihood's difference plus ``-2 log((1 + x1) / (1 + x0))``; the absolute
    prior adds nothing; so does the NumPyro model's joint density (``post.model()``).
    ``term.attrs`` and the latent's ``prior`` name the prior."""
    for prior, expected in (("uniform-fraction", -2.0), ("uniform-absolute", 0.0)):
        term = Labeling13C(problem, network, xch_prior=prior)
        assert term.attrs == {
            "labeling_xch_prior": f"{prior} (f = xch / (1 + xch); xch_latents=reversible)"
        }
        post = FluxPosterior(
            network, [term], constraints=[LinearConstraint({"v1": 1.0}, 100.0, 100.0)]
        )
        x0 = np.zeros(network.n_reactions + 1)
        x0[np.asarray(term.index)], x0[-1] = TRUE_NET, TRUE_XCH[0]
        x1 = x0.copy()
        x1[-1] = x0[-1] + 3.0
        dens = [float(post.log_density(jnp.asarray(x))) for x in (x0, x1)]
        like = [float(post.term_log_likelihoods(jnp.asarray(x))["labeling"]) for x in (x0, x1)]
        prior_diff = expected * np.log((1.0 + x1[-1]) / (1.0 + x0[-1]))
        assert dens[1] - dens[0] == pytest.approx(like[1] - like[0] + prior_diff, abs=1e-8)
        model = [  # the NumPyro model's joint density: the polytope site carries the prior
            float(log_density(post.model(), (), {}, {JOINT_SITE: jnp.asarray(x)})[0])
            for x in (x0, x1)
        ]
        assert np.isfinite(model).all()
        assert model[1] - model[0] == pytest.approx(dens[1] - dens[0], abs=1e-8)
    assert Labeling13C(problem, network).xch_prior == "uniform-fraction"  # the default
    beta = Labeling13C(problem, network, xch_prior="Beta(2,5)")
    assert beta.xch_prior == "beta(2, 5)" and beta.latents[0].prior == "beta(2, 5)"


def test_free_exchange_latents_keep_fixed_exchange_fluxes(problem, toy_problem, network):
    """``xch_latents="free"``: a fixed exchange flux is no latent and stays at its value; a free
    one is its latent."""
    fixed = toy_problem(
        TRUE_NET, TRUE_XCH, SD, formulas=False, xch_max=200.0, fixed_xch={"v2": 7.0}
    )
    term = Labeling13C(fixed, network, xch_latents="free")
    assert term.latents == () and term.xch_names == ()
    np.testing.assert_allclose(np.asarray(term.exchange_fluxes({})), [7.0])
    free = Labeling13C(problem, network, xch_latents="free")
    assert free.xch_names == ("labeling_xch[v2]",)
    assert isinstance(free.latents[0], ExchangeLatent) and free.latents[0].upper == 200.0
    assert float(free.exchange_fluxes({"labeling_xch[v2]": jnp.asarray(5.0)})[0]) == 5.0


def test_bad_exchange_prior(problem, network):
    with pytest.raises(ConfigError, match="unknown exchange-flux prior 'jeffreys'"):
        Labeling13C(problem, network, xch_prior="jeffreys")
    with pytest.raises(ConfigError, match="a, b > 0"):
        Labeling13C(problem, network, xch_prior="beta(0, 2)")
    with pytest.raises(ConfigError, match="must be numbers"):
        exchange_latent("x", 0.0, 1.0, "beta(a, b)")
    with pytest.raises(ConfigError, match="xch_latents must be"):
        Labeling13C(problem, network, xch_latents="all")
    with pytest.raises(ConfigError, match="lower >= 0"):
        ExchangeLatent("x", -1.0, 1.0)
