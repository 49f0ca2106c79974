"""HitAndRun and HitAndRunSlice: NumPyro kernels on a model's polytope sites.

Statistical checks use fixed seeds and the Monte-Carlo-standard-error bound of
``test_reflective_hmc`` (``|mean - truth| < 4 MCSE``: an exact sampler fails one comparison with
probability about 6e-5).
"""

from __future__ import annotations

import arviz_stats
import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.integrate
import scipy.stats
from numpyro.infer import MCMC

from bayesflux.errors import ConfigError
from bayesflux.infer import HitAndRun, HitAndRunSlice
from bayesflux.infer import sample as infer_sample
from bayesflux.models import blocks
from tests.infer.test_reflective_hmc import _mcse_check

KERNELS = {
    "uniform-coordinate": lambda m: HitAndRun(m),
    "uniform-random": lambda m: HitAndRun(m, direction="random"),
    "gaussian": lambda m: HitAndRun(m, step_size=0.5),
    "slice": lambda m: HitAndRunSlice(m),
}


def _r1_posterior_mean() -> float:
    """R1 with y = 2 +- 1 observed on the fork: density ∝ (10 - r) N(r; 2, 1) on [0, 10]."""
    dens = lambda r: (10 - r) * scipy.stats.norm.pdf(r, 2.0, 1.0)  # noqa: E731
    return (
        scipy.integrate.quad(lambda r: r * dens(r), 0, 10)[0] / scipy.integrate.quad(dens, 0, 10)[0]
    )


@pytest.mark.slow
@pytest.mark.parametrize("which", sorted(KERNELS))
def test_uniform_triangle_and_measured_flux(fork_polytope, which):
    """Under ``numpyro.infer.MCMC`` (vectorized chains): the uniform triangle (E[R1] = 10/3,
    E[u] = 20/3) and the posterior with R1 = 2 +- 1 measured (quadrature); every draw a steady
    state within the bounds; R-hat below 1.01. 3000 draws a chain: at 1500 the Gaussian steps'
    posterior had a bulk ESS of 675 (4 chains) and R-hat 1.012 at seed 2, R-hat's own noise
    at that ESS; at 3000, ESS 1741 and R-hat 1.004."""
    net, poly = fork_polytope

    def prior():
        blocks.flux_polytope("v", poly)

    def posterior():
        v = blocks.flux_polytope("v", poly)
        blocks.measured_fluxes(v, {"R1": (2.0, 1.0)}, network=net)

    for model, r1, u in ((prior, 10 / 3, 20 / 3), (posterior, _r1_posterior_mean(), None)):
        mcmc = MCMC(
            KERNELS[which](model),
            num_warmup=300,
            num_samples=3000,
            num_chains=4,
            chain_method="vectorized",
            progress_bar=False,
        )
        mcmc.run(jax.random.key(2))
        v = np.asarray(mcmc.get_samples(group_by_chain=True)["v"])
        np.testing.assert_allclose(v.reshape(-1, net.n_reactions) @ net.S.T, 0.0, atol=1e-9)
        assert np.all(v >= net.lb - 1e-9) and np.all(v <= net.ub + 1e-9)
        _mcse_check(v[..., 1], r1)
        if u is not None:
            _mcse_check(-v[..., 0], u)
        assert float(arviz_stats.rhat(v[..., 1], method="rank")) < 1.01


def test_latents_off_the_polytope_need_gaussian_steps(fork_polytope):
    """A latent on no polytope has no chord end: the uniform chord and the slice refuse the
    model by the site's name; Gaussian steps move it and keep its Normal(1, 2) prior."""
    net, poly = fork_polytope

    def model():
        v = blocks.flux_polytope("v", poly)
        numpyro.sample("offset", dist.Normal(1.0, 2.0))
        blocks.measured_fluxes(v, {"R1": (2.0, 1.0)}, network=net)

    for kernel in (HitAndRun(model), HitAndRunSlice(model)):
        with pytest.raises(ConfigError, match="'offset'"):
            infer_sample(model, kernel=kernel, num_draws=5, num_warmup=5, num_chains=1)
    tree = infer_sample(
        model, kernel=HitAndRun(model, step_size=0.5), num_draws=2000, num_chains=4, seed=3
    )
    _mcse_check(tree["posterior"]["offset"].values, 1.0)
    _mcse_check(tree["posterior"]["v"].sel(reaction="R1").values, _r1_posterior_mean())
    assert 0.2 < float(tree["sample_stats"]["acceptance_rate"].mean()) < 0.7
    assert tree.attrs["max_rhat"] < 1.01


def test_kernel_options_are_checked(fork_polytope):
    _, poly = fork_polytope

    def model():
        blocks.flux_polytope("v", poly)

    with pytest.raises(ConfigError, match="direction"):
        HitAndRun(model, direction="diagonal")
    with pytest.raises(ConfigError, match="moves"):
        HitAndRunSlice(model, moves=0)
    with pytest.raises(ConfigError, match="step_size"):
        HitAndRun(model, step_size=-1.0)
    with pytest.raises(ConfigError, match="one per unconstrained coordinate"):
        infer_sample(
            model, kernel=HitAndRun(model, step_size=np.ones(7)), num_draws=5, num_chains=1
        )


@pytest.mark.slow
def test_hit_and_run_resumes_from_its_checkpoint(fork_polytope, tmp_path):
    """Interrupted after one block, a checkpointed run with Gaussian steps (whose adaptation is
    part of the state) continues to the draws of an uninterrupted run."""
    net, poly = fork_polytope

    def model():
        v = blocks.flux_polytope("v", poly)
        blocks.measured_fluxes(v, {"R1": (2.0, 1.0)}, network=net)

    options = dict(num_draws=90, num_warmup=60, num_chains=2, seed=4, block_size=30)
    kernel = lambda: HitAndRun(model, step_size=0.3)  # noqa: E731
    first = infer_sample(model, kernel=kernel(), checkpoint=tmp_path, **options)
    (tmp_path / "mcmc_000002.npz").unlink()
    (tmp_path / "mcmc_000001.npz").unlink()
    resumed = infer_sample(model, kernel=kernel(), checkpoint=tmp_path, **options)
    plain = infer_sample(model, kernel=kernel(), **options)
    for tree in (resumed, plain):
        np.testing.assert_array_equal(tree["posterior"]["v"].values, first["posterior"]["v"].values)
    assert set(first["sample_stats"].data_vars) >= {"acceptance_rate", "lp", "step_size"}
