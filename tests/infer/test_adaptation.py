"""Warm-up adaptation in any units (:mod:`bayesflux.infer.adaptation`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC

from bayesflux.infer import EXTRA_FIELDS, ReflectiveHMC
from bayesflux.infer.adaptation import shrunk_covariance

COV = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 2.0]])


def test_shrinkage_commutes_with_rescaling():
    """``shrunk(D C D) = D shrunk(C) D`` for a diagonal rescaling ``D`` (NumPyro's ``+1e-3 I``
    does not), and the shrunk covariance of fewer draws than dimensions is positive definite."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(3, 6))  # 3 draws in 6 dimensions: a singular sample covariance
    centred = draws - draws.mean(axis=0)
    m2 = centred.T @ centred
    scale = np.diag(10.0 ** rng.uniform(-8, 3, size=6))
    one = np.asarray(shrunk_covariance(jnp.asarray(m2), jnp.asarray(3)))
    rescaled = np.asarray(shrunk_covariance(jnp.asarray(scale @ m2 @ scale), jnp.asarray(3)))
    np.testing.assert_allclose(rescaled, scale @ one @ scale, rtol=1e-9)
    assert np.linalg.eigvalsh(one).min() > 0


def _adapted(sd: float):
    """ReflectiveHMC on ``N(0, sd² COV)``: the warm-up's final step size and the draws / sd."""

    def model():
        numpyro.sample("x", dist.MultivariateNormal(jnp.zeros(3), covariance_matrix=sd**2 * COV))

    mcmc = MCMC(
        ReflectiveHMC(model, step_size=0.1 * sd),
        num_warmup=400,
        num_samples=600,
        num_chains=2,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(3), extra_fields=EXTRA_FIELDS)
    step = float(np.asarray(mcmc.get_extra_fields()["adapt_state.step_size"])[-1])
    return step, np.asarray(mcmc.get_samples()["x"]) / sd


def test_step_size_and_draws_do_not_depend_on_units():
    """A Gaussian with standard deviations 1e-6 adapts as one with standard deviations 1: the
    step size (in the adapted metric's units) within 30 % (dual averaging's own noise), and the
    sample covariance in standard units within 0.25 of ``COV`` (1 200 draws, ESS several
    hundred: the sampling error of a covariance entry is about 0.1). Stan's shrinkage toward
    ``1e-3 I`` would set the metric at sd 1e-6 and shrink the step a thousandfold."""
    step_one, draws_one = _adapted(1.0)
    step_tiny, draws_tiny = _adapted(1e-6)
    assert 0.7 < step_tiny / step_one < 1.3, (step_tiny, step_one)
    for draws in (draws_one, draws_tiny):
        np.testing.assert_allclose(np.cov(draws.T), COV, atol=0.25)
