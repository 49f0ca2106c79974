"""Reflective HMC and hit-and-run slice sampling on polytopes; the joint expression posterior.

Statistical tests use fixed seeds. A KS test of draws thinned to about one per integrated
autocorrelation time (``N / ESS``) against the exact marginal CDF (quadrature) has a
false-failure rate of about ``P_MIN = 1e-3`` for an exact sampler.
"""

from __future__ import annotations

from functools import partial

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
import scipy.integrate
import scipy.stats

from bayesflux import Network
from bayesflux.errors import ConfigError
from bayesflux.infer import HitAndRun, HitAndRunSlice, ReflectiveHMC
from bayesflux.infer import sample as infer_sample
from bayesflux.infer.reflective_hmc import reflect
from bayesflux.models import ExpressionLaplace, FluxObservations, FluxPosterior, blocks
from bayesflux.sampling.polytope import Polytope, chebyshev_center

P_MIN = 1e-3


def _triangle() -> Polytope:
    """``{x, y >= 0, x + y <= 1}`` as a :class:`Polytope` with ``v = z``."""
    A = np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]]) / np.array([[1.0], [1.0], [np.sqrt(2)]])
    b = np.array([0.0, 0.0, 1.0 / np.sqrt(2)])
    center, radius = chebyshev_center(A, b, what="triangle")
    return Polytope(
        reactions=("x", "y"),
        v0=np.zeros(2),
        N=np.eye(2),
        A=A,
        b=b,
        center=center,
        radius=radius,
        flux_min=np.zeros(2),
        flux_max=np.ones(2),
        id="triangle",
    )


def _log_p(v: jax.Array) -> jax.Array:
    """A kinked, boundary-hugging density: ``-4 |x - 0.3| - 2 y``."""
    return -4.0 * jnp.abs(v[0] - 0.3) - 2.0 * v[1]


def _x_cdf() -> callable:
    """``p(x) ∝ exp(-4 |x - 0.3|) (1 - exp(-2 (1 - x))) / 2`` on ``[0, 1]`` by quadrature."""
    dens = lambda x: np.exp(-4 * abs(x - 0.3)) * (1 - np.exp(-2 * (1 - x))) / 2  # noqa: E731
    z = scipy.integrate.quad(dens, 0, 1, points=[0.3])[0]
    grid = np.linspace(0, 1, 2001)
    cdf = (
        np.array(
            [scipy.integrate.quad(dens, 0, t, points=[0.3] if t > 0.3 else None)[0] for t in grid]
        )
        / z
    )
    return lambda x: np.interp(x, grid, cdf)


def test_reflection_is_the_unfolded_straight_line():
    """Billiard motion in the box ``[0, 2] x [0, 1]`` equals free motion folded back by the
    triangle wave ``w - |(u mod 2w) - w|``; scaling the rows of ``A`` (rounded coordinates)
    changes nothing."""
    A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([2.0, 0.0, 1.0, 0.0])
    width = np.array([2.0, 1.0])
    rng = np.random.default_rng(0)
    move = jax.jit(reflect, static_argnums=5)
    for scale in (np.ones(4), np.array([3.0, 0.5, 2.0, 7.0])):
        for _ in range(20):
            x0 = rng.uniform(0.05, 0.95, 2) * width
            p = rng.normal(size=2)
            t = rng.uniform(0.1, 6.0)
            x, q, n = move(
                jnp.asarray(x0),
                jnp.asarray(p),
                t,
                jnp.asarray(A * scale[:, None]),
                jnp.asarray(b * scale),
                1000,
            )
            u = np.mod(x0 + p * t, 2 * width)
            expected = width - np.abs(u - width)
            np.testing.assert_allclose(np.asarray(x), expected, atol=1e-10)
            np.testing.assert_allclose(np.abs(np.asarray(q)), np.abs(p), rtol=1e-12)
            crossings = np.abs(np.floor((x0 + p * t) / width)).sum()
            assert int(n) == crossings


@pytest.mark.parametrize("which", ["hmc", "slice", "metropolis"])
def test_samplers_match_a_piecewise_linear_density(which):
    """KS test of the x-marginal of ``exp(-4|x - 0.3| - 2y)`` on the triangle, thinned draws:
    each kernel of bayesflux.infer on a NumPyro model (polytope site plus a factor)."""
    poly = _triangle()

    def model():
        v = blocks.flux_polytope("flux", poly)
        numpyro.factor("density", _log_p(v))

    kernel = {
        "hmc": ReflectiveHMC,
        "slice": HitAndRunSlice,
        "metropolis": partial(HitAndRun, direction="random"),
    }[which](model)
    tree = infer_sample(model, kernel=kernel, num_chains=4, num_draws=2000, seed=5)
    x = tree["posterior"]["flux"].sel(reaction="x").values
    ess = float(arviz_stats.ess(x, method="bulk"))
    step = int(np.ceil(x.size / ess))
    thinned = x[:, ::step].ravel()
    assert thinned.size > 300, (ess, step)
    p = scipy.stats.kstest(thinned, _x_cdf()).pvalue
    assert p > P_MIN, (p, ess)
    v = tree["posterior"]["flux"].values.reshape(-1, 2)
    assert np.all(v >= -1e-12) and np.all(v.sum(1) <= 1 + 1e-12)
    rhat = float(arviz_stats.rhat(x, method="rank"))
    assert rhat < 1.01, rhat


@pytest.fixture(scope="module")
def split():
    """Uptake ``u = -EX_A <= 10`` split over R1 (gene g1) and R2 (gene g2); true state u = 8,
    R1 = 6, R2 = 2. Measured uptake pins ``u``, expression (``e = k |v| + Laplace``, k = 2)
    pins the split ``R1 : R2``; neither pins both."""
    net = Network.from_stoichiometry(
        {"EX_A": {"A": -1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "B": 1}, "EX_B": {"B": -1}},
        bounds={"EX_A": (-10.0, 0.0)},
        gpr={"R1": "g1", "R2": "g2"},
        id="split",
    )
    fluxes = FluxObservations(net, {"EX_A": (-8.2, 0.5)})
    expression = ExpressionLaplace(net, {"g1": 12.3, "g2": 3.8}, {"g1": 0.6, "g2": 0.6})
    return net, fluxes, expression


def _grid_marginal(post: FluxPosterior, n: int = 401) -> tuple[np.ndarray, np.ndarray]:
    """Density of R1 on a grid by quadrature over the triangle ``0 <= R1 <= u <= 10``."""
    u = np.linspace(0.0, 10.0, n)[1:]
    frac = (np.arange(n - 1) + 0.5) / (n - 1)  # midpoint rule in R1 = frac * u
    U, F = np.meshgrid(u, frac, indexing="ij")
    R1 = F * U
    x = np.stack([-U, R1, U - R1, U], axis=-1).reshape(-1, 4)
    logp = np.asarray(jax.vmap(post.log_density)(jnp.asarray(x))).reshape(U.shape)
    w = np.exp(logp - logp.max()) * U  # Jacobian of (u, frac) -> (u, R1)
    grid = np.linspace(0.0, 10.0, 501)
    dens = np.histogram(R1.ravel(), bins=grid, weights=w.ravel(), density=True)[0]
    return grid, dens


def _hdi_width(grid: np.ndarray, dens: np.ndarray, prob: float = 0.94) -> float:
    """Width of the HDI of a binned density: the highest bins holding ``prob`` of the mass."""
    mass = dens * np.diff(grid)
    order = np.argsort(mass)[::-1]
    take = np.searchsorted(np.cumsum(mass[order]), prob) + 1
    return float(np.diff(grid)[order[:take]].sum())


def test_joint_posterior_is_narrower_and_converges(split):
    """By quadrature, the 94 % HDI of R1 is narrower with both data types than with either
    alone; HMC on the joint posterior reaches R-hat < 1.01 over 4 chains and its R1 draws pass a
    KS test against the quadrature (thinned by N / ESS) with an HDI within 10 % of it."""
    net, fluxes, expression = split
    widths = {}
    for name, terms in {
        "fluxes": [fluxes],
        "expression": [expression],
        "joint": [fluxes, expression],
    }.items():
        widths[name] = _hdi_width(*_grid_marginal(FluxPosterior(net, terms)))
    assert widths["joint"] < 0.8 * min(widths["fluxes"], widths["expression"]), widths
    post = FluxPosterior(net, [fluxes, expression])
    tree = post.sample(method="hmc", num_chains=4, num_draws=1000, seed=2)
    rhat = arviz_stats.rhat(tree["posterior"].to_dataset(), method="rank")["flux"]
    assert float(rhat.max()) < 1.01, rhat.values
    r1 = tree["posterior"]["flux"].sel(reaction="R1").values
    grid, dens = _grid_marginal(post)
    cdf = np.concatenate([[0.0], np.cumsum(dens * np.diff(grid))])
    step = int(np.ceil(r1.size / float(arviz_stats.ess(r1, method="bulk"))))
    p = scipy.stats.kstest(r1[:, ::step].ravel(), lambda x: np.interp(x, grid, cdf)).pvalue
    assert p > P_MIN, p
    hdi = arviz_stats.hdi(r1.ravel(), prob=0.94)
    assert abs((hdi[1] - hdi[0]) / widths["joint"] - 1) < 0.1, (hdi, widths["joint"])


def test_laplace_marginal_with_ratios_outside_the_scale_bounds(split):
    """``log (1/(b-a)) ∫_a^b exp(-Σ|k g_i - e_i|/σ_i) dk`` equals quadrature when some
    ``e_i / g_i`` lie outside ``[a, b]`` or ``g_i = 0``, and its gradient is finite."""
    net, _, _ = split
    term = ExpressionLaplace(
        net, {"g1": 3.0, "g2": 1.0}, {"g1": 1.0, "g2": 0.5}, scale_bounds=(0.5, 2.0)
    )
    log_marginal = jax.jit(term.log_marginal)
    grad_fn = jax.jit(jax.grad(term.log_marginal))
    for g in ([10.0, 0.1], [1.0, 4.0], [2.0, 0.0], [0.0, 0.0]):
        g = np.asarray(g)
        f = lambda k, g=g: np.exp(-np.sum(np.abs(k * g - term.abundance) / term.sigma))  # noqa: E731
        expected = np.log(scipy.integrate.quad(f, 0.5, 2.0, limit=200)[0] / 1.5)
        np.testing.assert_allclose(float(log_marginal(jnp.asarray(g))), expected, rtol=1e-9)
        grad = grad_fn(jnp.asarray(g))
        assert np.all(np.isfinite(np.asarray(grad))), grad


def test_sampler_options_are_checked(split, tmp_path):
    net, fluxes, _ = split
    post = FluxPosterior(net, [fluxes])
    with pytest.raises(ConfigError, match="unknown sampling method 'nuts'"):
        post.sample(method="nuts")
    with pytest.raises(ConfigError, match="trajectory_length"):
        post.sample(method="hmc", trajectory_length=0.0)
    with pytest.raises(ConfigError, match="direction must be 'coordinate' or 'random'"):
        post.sample(method="slice", kernel="diagonal")


def test_divergent_trajectories_are_flagged_and_rejected():
    """A step far too long for a narrow Gaussian (sd 1e-3), kept without warm-up, diverges
    (energy error > 1000 or a reflection path cut short); a divergent trajectory is always
    rejected."""
    poly = _triangle()

    def model():
        v = blocks.flux_polytope("flux", poly)
        numpyro.factor("narrow", -0.5 * jnp.sum((v - 0.3) ** 2) / 1e-6)

    tree = infer_sample(
        model,
        kernel=ReflectiveHMC(model, step_size=0.5),
        num_chains=2,
        num_draws=30,
        num_warmup=0,
        seed=2,
    )
    stats = tree["sample_stats"]
    diverging = stats["diverging"].values
    assert diverging.dtype == bool and diverging.mean() > 0.5
    assert np.all(stats["acceptance_rate"].values[diverging] == 0.0)
