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
import scipy.linalg
import scipy.stats

from bayesflux.errors import ConfigError
from bayesflux.sampling import Polytope, build_kernel, init, polytope, sample_fluxes
from bayesflux.sampling.hit_and_run import (
    adapted_step_size,
    build_warmup_kernel,
    chord,
    freeze,
    init_adaptation,
)
from bayesflux.sampling.rounding import covariance_rounding

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


@pytest.mark.parametrize("kernel", ["coordinate", "random", "billiard"])
def test_uniform_on_a_hypercube(make_cube, kernel):
    tree = sample_fluxes(make_cube(3), num_chains=300, num_draws=60, kernel=kernel, seed=11)
    names = ["IN0", "IN1", "IN2"]
    for k, x in enumerate(_last_draws(tree, names).T):
        assert scipy.stats.kstest(x, "uniform").pvalue > KS_LEVEL, names[k]
    assert np.all(_mcse_z(tree, names, 0.5) < Z_MAX)
    # variance 1/12 of U(0, 1)
    var = tree.posterior["flux"].sel(reaction=names).var(("chain", "draw")).values
    np.testing.assert_allclose(var, 1 / 12, rtol=0.05)


@pytest.mark.parametrize("kernel", ["coordinate", "billiard"])
def test_uniform_on_a_simplex(make_simplex, kernel):
    # R_i >= 0, sum R_i = 1 (4 reactions): each R_i ~ Beta(1, 3)
    tree = sample_fluxes(make_simplex(4), num_chains=400, num_draws=40, kernel=kernel, seed=5)
    names = ["R0", "R1", "R2", "R3"]
    for k, x in enumerate(_last_draws(tree, names).T):
        assert scipy.stats.kstest(x, scipy.stats.beta(1, 3).cdf).pvalue > KS_LEVEL, names[k]
    assert np.all(_mcse_z(tree, names, 0.25) < Z_MAX)
    flux = tree.posterior["flux"].values
    np.testing.assert_allclose(flux[..., :1], 1.0, atol=1e-12)  # IN stays fixed


@pytest.mark.parametrize("kernel", ["random", "billiard"])
def test_uniform_on_a_diamond(kernel):
    # |x| + |y| <= 1: each marginal has the triangular density 1 - |x| on [-1, 1]
    diamond = Polytope.from_halfspaces([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.ones(4))
    tree = sample_fluxes(diamond, num_chains=400, num_draws=40, kernel=kernel, seed=3)
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


@pytest.mark.parametrize("kernel", ["coordinate", "billiard"])
def test_draws_satisfy_steady_state_and_bounds(textbook, kernel):
    tree = sample_fluxes(textbook, num_chains=4, num_draws=100, kernel=kernel, seed=2)
    v = tree.posterior["flux"].values.reshape(-1, textbook.n_reactions)
    assert np.abs(v @ textbook.S.toarray().T).max() < 1e-9
    assert np.all(v >= textbook.lb - 1e-9) and np.all(v <= textbook.ub + 1e-9)
    poly = polytope(textbook)
    assert np.all(v >= poly.flux_min - 1e-9) and np.all(v <= poly.flux_max + 1e-9)


# ---------------------------------------------------------------- Gaussian step along the chord
def _box_gaussian(net):
    """N((0.2, 0.7), diag(0.3, 0.15)^2) restricted to the unit square of ``make_cube(2)``."""
    idx = jnp.asarray(net.indices(["IN0", "IN1"]))
    mean, sd = jnp.array([0.2, 0.7]), jnp.array([0.3, 0.15])

    def logdensity(v):
        return -0.5 * jnp.sum(((v[idx] - mean) / sd) ** 2)

    targets = [
        scipy.stats.truncnorm(-0.2 / 0.3, 0.8 / 0.3, loc=0.2, scale=0.3),
        scipy.stats.truncnorm(-0.7 / 0.15, 0.3 / 0.15, loc=0.7, scale=0.15),
    ]
    return logdensity, targets


@pytest.mark.parametrize("kernel", ["coordinate", "random"])
def test_gaussian_step_samples_a_gaussian_in_a_box(make_cube, kernel):
    """Fixed Gaussian steps (no adaptation): the marginals are the truncated normals.

    KS on the last draw of 400 independent chains at level 1e-3 per marginal; means by MCSE
    (|z| < 4, two-sided 6e-5 per marginal); variances within 10% (400 x 50 draws, ESS > 2000
    each, so the relative sd of the variance estimate is about sqrt(2 / 2000) = 3%).
    """
    net = make_cube(2)
    logdensity, targets = _box_gaussian(net)
    tree = sample_fluxes(
        net,
        num_chains=400,
        num_draws=50,
        thinning=6,
        kernel=kernel,
        logdensity_fn=logdensity,
        step_size=0.7,
        adapt_step_size=False,
        seed=21,
    )
    names = ["IN0", "IN1"]
    for x, target in zip(_last_draws(tree, names).T, targets, strict=True):
        assert scipy.stats.kstest(x, target.cdf).pvalue > KS_LEVEL
    assert np.all(_mcse_z(tree, names, [t.mean() for t in targets]) < Z_MAX)
    var = tree.posterior["flux"].sel(reaction=names).var(("chain", "draw")).values
    np.testing.assert_allclose(var, [t.var() for t in targets], rtol=0.1)
    assert tree.attrs["proposal"] == "gaussian step"
    assert 0.05 < float(tree.sample_stats["acceptance_rate"].mean()) < 0.95


def test_gaussian_step_wider_than_the_chord_is_exact(make_cube):
    """A step 20x the interval: most proposals leave the chord and are rejected, which is the
    Metropolis rule for a target that is 0 outside, so the uniform law on [0, 1] is still the
    stationary one (KS at 1e-3; MCSE |z| < 4)."""
    net = make_cube(1)
    tree = sample_fluxes(
        net,
        num_chains=300,
        num_draws=60,
        thinning=20,
        step_size=20.0,
        adapt_step_size=False,
        seed=4,
    )
    x = _last_draws(tree, ["IN0"])[:, 0]
    assert scipy.stats.kstest(x, "uniform").pvalue > KS_LEVEL
    assert np.all(_mcse_z(tree, ["IN0"], 0.5) < Z_MAX)
    assert float(tree.sample_stats["acceptance_rate"].mean()) < 0.2


def test_adaptation_reaches_the_target_and_leaves_the_kept_draws_exact(make_cube):
    """Start with a step 30x too large; warm-up dual averaging brings the acceptance of the kept
    (frozen) moves to about the target 0.4 (0.25-0.55: per-chain averages of 100 x 8 moves over
    200 chains), and the kept draws have the truncated-normal marginals (KS at 1e-3, MCSE)."""
    net = make_cube(2)
    logdensity, targets = _box_gaussian(net)
    tree = sample_fluxes(
        net,
        num_chains=200,
        num_draws=100,
        num_warmup=100,
        thinning=8,
        logdensity_fn=logdensity,
        step_size=30.0,
        seed=8,
    )
    acc = float(tree.sample_stats["acceptance_rate"].mean())
    assert 0.25 < acc < 0.55
    assert float(tree.sample_stats["step_size"].max()) < 10.0  # the frozen steps
    names = ["IN0", "IN1"]
    for x, target in zip(_last_draws(tree, names).T, targets, strict=True):
        assert scipy.stats.kstest(x, target.cdf).pvalue > KS_LEVEL
    assert np.all(_mcse_z(tree, names, [t.mean() for t in targets]) < Z_MAX)


def test_frozen_warmup_kernel_is_the_fixed_step_kernel():
    """With ``adapt=False`` the warm-up kernel leaves its adaptation state alone and makes the
    very moves of ``build_kernel(step_size=exp(log_step))`` (same key, same draws), so the kept
    phase is a fixed Metropolis kernel; with ``adapt=True`` the step changes."""
    A = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = jnp.array([1.0, 1.0, 2.0, 2.0])

    def logdensity(x):
        return -0.5 * jnp.sum((x / jnp.array([0.3, 0.5])) ** 2)

    da = freeze(init_adaptation(jnp.array([0.4, 0.9]), dim=2))
    warm = jax.jit(build_warmup_kernel(A, b, logdensity_fn=logdensity, thinning=7))
    fixed = jax.jit(
        build_kernel(A, b, logdensity_fn=logdensity, thinning=7, step_size=adapted_step_size(da))
    )
    state = init(jnp.array([0.1, -0.2]), A, b, logdensity)
    key = jax.random.key(3)
    s1, da1, i1 = warm(key, state, da, False)
    s2, i2 = fixed(key, state)
    np.testing.assert_array_equal(s1.position, s2.position)
    np.testing.assert_array_equal(i1.acceptance_rate, i2.acceptance_rate)
    for a, b_ in zip(da1, da, strict=True):
        np.testing.assert_array_equal(a, b_)
    _, da3, _ = warm(key, state, da, True)
    assert not np.allclose(da3.log_step, da.log_step)
    assert float(da3.count.sum()) == 7.0


def test_step_size_validation(make_cube):
    A = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = jnp.ones(4)
    with pytest.raises(ValueError, match="step_size"):
        build_kernel(A, b, step_size=jnp.ones(3))
    with pytest.raises(ValueError, match="step_size"):
        build_kernel(A, b, direction="random", step_size=jnp.ones(2))
    with pytest.raises(ValueError, match="positive"):
        init_adaptation(-1.0, dim=2)
    with pytest.raises(ValueError, match="target_acceptance"):
        build_warmup_kernel(A, b, target_acceptance=1.5)
    poly = polytope(make_cube(2))
    with pytest.raises(ConfigError, match="step_size"):
        sample_fluxes(poly, step_size=[1.0, -1.0], num_draws=5)
    with pytest.raises(ConfigError, match="scalar"):
        sample_fluxes(poly, kernel="random", step_size=[1.0, 1.0], num_draws=5)


def test_covariance_rounding(make_cube):
    """A boundary centre is pulled inside; the transform is chol(cov); bad covariances raise."""
    poly = polytope(make_cube(2))
    cov = np.array([[0.04, 0.01], [0.01, 0.09]])
    corner = np.linalg.lstsq(poly.N, np.zeros(poly.N.shape[0]) - poly.v0, rcond=None)[0]
    r = covariance_rounding(poly, cov, center=corner)
    assert np.min(poly.b - poly.A @ r.center) > 0
    np.testing.assert_allclose(r.L @ r.L.T, cov)
    tree = sample_fluxes(poly, rounding=r, thinning=2, num_draws=20)
    assert tree.attrs["rounding"] == "covariance"
    with pytest.raises(ConfigError, match="positive definite"):
        covariance_rounding(poly, -cov)
    with pytest.raises(ConfigError, match="2 x 2"):
        covariance_rounding(poly, np.eye(3))


def test_covariance_rounding_from_a_factor_keeps_scales_cholesky_loses(make_cube):
    """A factor ``F`` whose scales span 1e-8..1e2 under a rotation: ``F Fᵀ`` is too ill-conditioned
    for a Cholesky factorisation in float64 (condition 1e20 > 1/eps), yet the factor-based rounding
    maps unit vectors back to ``F``'s columns up to an orthogonal transform: ``L⁻¹ F`` is
    orthogonal to within ``d κ(F) eps`` (6 x 1e10 x 2.2e-16 ≈ 1.3e-5; backward-stable QR and
    triangular solves), where going through ``F Fᵀ`` costs ``κ(F)² eps > 1``."""
    poly = polytope(make_cube(6))
    rng = np.random.default_rng(3)
    rotation, _ = np.linalg.qr(rng.normal(size=(poly.dim, poly.dim)))
    F = rotation * np.geomspace(1e-8, 1e2, poly.dim)
    with pytest.raises(ConfigError, match="positive definite"):
        covariance_rounding(poly, F @ F.T)
    r = covariance_rounding(poly, factor=F)
    assert np.array_equal(r.L, np.tril(r.L)) and np.all(np.diag(r.L) > 0)
    W = scipy.linalg.solve_triangular(r.L, F, lower=True)
    np.testing.assert_allclose(W @ W.T, np.eye(poly.dim), atol=1.3e-5)
    np.testing.assert_allclose(
        r.log_volume - 0.5 * poly.dim * np.log(2 * np.pi * np.e),
        np.sum(np.log(np.geomspace(1e-8, 1e2, poly.dim))),
        atol=1.3e-5,  # the same d κ(F) eps bound
    )
    with pytest.raises(ConfigError, match="exactly one"):
        covariance_rounding(poly, F @ F.T, factor=F)
    with pytest.raises(ConfigError, match="singular"):
        covariance_rounding(poly, factor=np.zeros((poly.dim, poly.dim)))
