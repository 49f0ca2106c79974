"""Hit-and-run kernels against known distributions (seeded; failure rates stated per test).

Independent chains started at the same point give independent draws: the last draw of each of
many vmapped chains is an i.i.d. sample of the chain's law, which Kolmogorov-Smirnov tests against
the target marginal at level 1e-3 (a correct sampler fails one such test with probability 1e-3 for
a fresh seed; the seeds are fixed, so the outcome is deterministic). Means over all draws are
tested blackjax-style: ``|mean - truth| / MCSE < 4`` (two-sided normal tail 6e-5 per marginal).
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from bayesflux.sampling import Polytope, build_kernel, init, polytope, sample_fluxes
from bayesflux.sampling.hit_and_run import chord

KS_LEVEL = 1e-3
pytestmark = pytest.mark.filterwarnings("ignore:Found chain dimension")
Z_MAX = 4.0


def _last_draws(tree, names):
    return tree.posterior["flux"].sel(reaction=names).values[:, -1, :]


def _mcse_z(tree, names, truth):
    flux = tree.posterior["flux"].sel(reaction=names)
    mean = flux.mean(("chain", "draw")).values
    mcse = az.mcse(tree.posterior.to_dataset().sel(reaction=names))["flux"].values
    return np.abs(mean - truth) / mcse


@pytest.mark.parametrize("kernel", ["coordinate", "random"])
def test_uniform_on_a_hypercube(make_cube, kernel):
    tree = sample_fluxes(make_cube(3), num_chains=300, num_draws=60, kernel=kernel, seed=11)
    names = ["IN0", "IN1", "IN2"]
    for k, x in enumerate(_last_draws(tree, names).T):
        assert scipy.stats.kstest(x, "uniform").pvalue > KS_LEVEL, names[k]
    assert np.all(_mcse_z(tree, names, 0.5) < Z_MAX)
    # variance 1/12 of U(0, 1)
    var = tree.posterior["flux"].sel(reaction=names).var(("chain", "draw")).values
    np.testing.assert_allclose(var, 1 / 12, rtol=0.05)


def test_uniform_on_a_simplex(make_simplex):
    # R_i >= 0, sum R_i = 1 (4 reactions): each R_i ~ Beta(1, 3)
    tree = sample_fluxes(make_simplex(4), num_chains=400, num_draws=40, seed=5)
    names = ["R0", "R1", "R2", "R3"]
    for k, x in enumerate(_last_draws(tree, names).T):
        assert scipy.stats.kstest(x, scipy.stats.beta(1, 3).cdf).pvalue > KS_LEVEL, names[k]
    assert np.all(_mcse_z(tree, names, 0.25) < Z_MAX)
    flux = tree.posterior["flux"].values
    np.testing.assert_allclose(flux[..., :1], 1.0, atol=1e-12)  # IN stays fixed


def test_uniform_on_a_diamond():
    # |x| + |y| <= 1: each marginal has the triangular density 1 - |x| on [-1, 1]
    diamond = Polytope.from_halfspaces([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.ones(4))
    tree = sample_fluxes(diamond, num_chains=400, num_draws=40, kernel="random", seed=3)
    triangular = scipy.stats.triang(c=0.5, loc=-1.0, scale=2.0)
    for x in _last_draws(tree, ["x0", "x1"]).T:
        assert scipy.stats.kstest(x, triangular.cdf).pvalue > KS_LEVEL
    assert np.all(_mcse_z(tree, ["x0", "x1"], 0.0) < Z_MAX)


def test_metropolis_truncated_normal(make_cube):
    # density exp(-(v - 0.2)^2 / (2 0.3^2)) on the unit square: truncated-normal marginals
    net = make_cube(2)
    idx = jnp.asarray(net.indices(["IN0", "IN1"]))

    def logdensity(v):
        return -0.5 * jnp.sum(((v[idx] - 0.2) / 0.3) ** 2)

    tree = sample_fluxes(
        net, num_chains=400, num_draws=50, thinning=4, logdensity_fn=logdensity, seed=7
    )
    target = scipy.stats.truncnorm(-0.2 / 0.3, 0.8 / 0.3, loc=0.2, scale=0.3)
    for x in _last_draws(tree, ["IN0", "IN1"]).T:
        assert scipy.stats.kstest(x, target.cdf).pvalue > KS_LEVEL
    assert np.all(_mcse_z(tree, ["IN0", "IN1"], target.mean()) < Z_MAX)
    acc = tree.sample_stats["acceptance_rate"].values
    assert 0.2 < acc.mean() < 1.0
    assert "lp" in tree.sample_stats


def test_pure_kernel_jits_and_vmaps():
    A = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = jnp.array([1.0, 0.0, 2.0, 0.0])
    kernel = jax.jit(jax.vmap(build_kernel(A, b, direction="random", thinning=3)))
    states = jax.vmap(lambda x: init(x, A, b))(jnp.full((8, 2), 0.5))
    keys = jax.random.split(jax.random.key(0), 8)
    new, info = kernel(keys, states)
    assert new.position.shape == (8, 2)
    np.testing.assert_allclose(new.slack, b - new.position @ A.T, atol=1e-12)
    assert np.all(new.slack >= -1e-12)
    np.testing.assert_allclose(info.acceptance_rate, 1.0)
    # chord through (0.5, 0.5) along x of the box [0, 1] x [0, 2]
    lo, hi = chord(b - A @ jnp.array([0.5, 0.5]), A @ jnp.array([1.0, 0.0]))
    assert (float(lo), float(hi)) == (-0.5, 0.5)
    with pytest.raises(ValueError, match="direction"):
        build_kernel(A, b, direction="diagonal")
    with pytest.raises(ValueError, match="thinning"):
        build_kernel(A, b, thinning=0)


def test_draws_satisfy_steady_state_and_bounds(textbook):
    tree = sample_fluxes(textbook, num_chains=4, num_draws=100, seed=2)
    v = tree.posterior["flux"].values.reshape(-1, textbook.n_reactions)
    assert np.abs(v @ textbook.S.toarray().T).max() < 1e-9
    assert np.all(v >= textbook.lb - 1e-9) and np.all(v <= textbook.ub + 1e-9)
    poly = polytope(textbook)
    assert np.all(v >= poly.flux_min - 1e-9) and np.all(v <= poly.flux_max + 1e-9)
