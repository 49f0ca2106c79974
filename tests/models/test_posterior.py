"""FluxPosterior: joint polytope, likelihood terms, DataTree layout, checks against closed forms."""

from __future__ import annotations

import arviz_stats
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from bayesflux import Network
from bayesflux.errors import ConfigError, NetworkError, SolverError
from bayesflux.models import (
    Coupling,
    ExpressionCapacity,
    ExpressionLaplace,
    FluxObservations,
    FluxPosterior,
    Latent,
    joint_polytope,
)

# a normal-quantile bound for MCSE tests: P(|Z| > 4) = 6e-5 per comparison under the CLT
Z_BOUND = 4.0


@pytest.fixture(scope="module")
def fork():
    """Uptake ``u = -EX_A`` in [0, 10] split over R1, R2 (A -> B): the polytope is the triangle
    ``0 <= R1 <= u <= 10`` in ``(u, R1)``, so marginals have closed forms."""
    return Network.from_stoichiometry(
        {
            "EX_A": {"A": -1},
            "R1": {"A": -1, "B": 1},
            "R2": {"A": -1, "B": 1},
            "EX_B": {"B": -1},
        },
        bounds={"EX_A": (-10.0, 0.0)},
        id="fork",
    )


def _mcse_check(draws: np.ndarray, truth: float) -> None:
    ess = float(arviz_stats.ess(draws, method="mean"))
    mcse = draws.std() / np.sqrt(ess)
    assert abs(draws.mean() - truth) < Z_BOUND * mcse, (draws.mean(), truth, mcse, ess)


def test_gaussian_flux_likelihood_matches_quadrature(fork):
    """Posterior of R1 with y = 2 +- 1 observed: density ∝ (10 - r) N(r; 2, 1) on [0, 10]."""
    post = FluxPosterior(fork, [FluxObservations(fork, {"R1": (2.0, 1.0)})])
    tree = post.sample(num_chains=4, num_draws=2000, seed=3)
    r1 = tree["posterior"]["flux"].sel(reaction="R1").values
    dens = lambda r: (10 - r) * scipy.stats.norm.pdf(r, 2.0, 1.0)  # noqa: E731
    z = scipy.integrate.quad(dens, 0, 10)[0]
    truth = scipy.integrate.quad(lambda r: r * dens(r), 0, 10)[0] / z
    _mcse_check(r1, truth)
    v = tree["posterior"]["flux"].values.reshape(-1, 4)
    np.testing.assert_allclose(fork.S @ v.T, 0.0, atol=1e-9)
    assert set(tree.children) >= {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "observed_data",
        "constant_data",
    }
    ll = tree["log_likelihood"]["fluxes"].sel(measured_reaction="R1").values  # pointwise
    expected = scipy.stats.norm.logpdf(r1, 2.0, 1.0)
    np.testing.assert_allclose(ll, expected, rtol=1e-10)
    assert float(tree["observed_data"]["fluxes"].sel(measured_reaction="R1")) == 2.0


def test_latent_capacity_couples_fluxes(fork):
    """E-Flux with latent α: |R1| <= α e_R1 in every draw; with the uniform prior on the joint
    polytope, α's marginal density is ∝ area of the triangle cut at α (closed form below)."""
    expression = {"g1": 1.0, "g2": 0.5}
    net = Network.from_stoichiometry(
        {"EX_A": {"A": -1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "B": 1}, "EX_B": {"B": -1}},
        bounds={"EX_A": (-10.0, 0.0)},
        gpr={"R1": "g1", "R2": "g2"},
        id="fork_gpr",
    )
    term = ExpressionCapacity(net, expression, capacity_bounds=(0.0 + 1e-9, 20.0), prior="uniform")
    post = FluxPosterior(net, [term])
    tree = post.sample(num_chains=4, num_draws=2000, seed=5)
    alpha = tree["posterior"]["capacity_alpha"].values
    v = tree["posterior"]["flux"].values
    e = {"R1": 1.0, "R2": 0.5}
    for r, ej in e.items():
        assert np.all(np.abs(v[..., net.reaction_index[r]]) <= alpha * ej + 1e-9)

    def area(a: float) -> float:
        # {0 <= r1 <= a, 0 <= r2 <= a/2, r1 + r2 <= 10}: box minus the cut corner
        w, h = min(a, 10.0), min(a / 2, 10.0)
        over = max(0.0, w + h - 10.0)
        return w * h - 0.5 * over**2

    z = scipy.integrate.quad(area, 0, 20, points=[10])[0]
    truth = scipy.integrate.quad(lambda a: a * area(a), 0, 20, points=[10])[0] / z
    _mcse_check(alpha, truth)


@pytest.fixture(scope="module")
def falcon_case(textbook):
    """E. coli core with lognormal synthetic expression (sd 20%) and FALCON's answer."""
    from bayesflux.methods import falcon

    rng = np.random.default_rng(11)
    genes = sorted(textbook.genes)
    expression = dict(zip(genes, rng.lognormal(0.0, 1.0, len(genes))))
    std = {g: 0.2 * x for g, x in expression.items()}
    return expression, std, falcon(textbook, expression, std)


def test_falcon_is_the_mode_in_its_orthant(textbook, falcon_case):
    """The Laplace likelihood at FALCON's fluxes (best k) is minus FALCON's LP objective up to the
    normaliser, and the posterior mode restricted to the face FALCON's iteration settled on (its
    closed directions; reactions it left open carry no flux, as in its answer) — one MILP in
    cvxpy, built from the model, not from FALCON's LP — is FALCON's flux vector: equal to 1e-6 in
    abundance units ``w = k v`` (only ``w`` is identified; the flux scale is free)."""
    expression, std, result = falcon_case
    term = ExpressionLaplace(textbook, expression, std, marginalize=False)
    v = result["flux"].values
    k = term.best_scale(v)
    ll = float(term.log_likelihood(v, {term.scale_name: k}))
    objective = float(result["objective"][0])
    np.testing.assert_allclose(-(ll - term.log_normaliser()), objective, rtol=1e-6)
    d = result["direction"].isel(run=0).values
    open_ = (d == 0) & (np.abs(v) <= 1e-9)  # left open by the iteration, no flux in the answer
    face = {r: int(x) for r, x, o in zip(textbook.reactions, d, open_) if x != 0 or o}
    mode = term.map_estimate(textbook, directions=face)
    w_mode = mode["flux"].values * mode.attrs["k"]
    np.testing.assert_allclose(w_mode, v * k, rtol=0, atol=1e-6 * np.abs(v * k).max())
    np.testing.assert_allclose(mode.attrs["objective"], objective, rtol=1e-6)


def test_global_mode_bounds_falcon_and_every_draw(textbook, falcon_case):
    """The unrestricted MILP mode is at least as good as FALCON's (a heuristic) and as every
    posterior draw at its best k; the marginal over k equals quadrature."""
    expression, std, result = falcon_case
    term = ExpressionLaplace(textbook, expression, std)
    mode = term.map_estimate(textbook)
    assert mode.attrs["objective"] <= float(result["objective"][0]) + 1e-6
    tree = FluxPosterior(textbook, [term]).sample(num_chains=2, num_draws=100, seed=1)
    v = tree["posterior"]["flux"].values.reshape(-1, textbook.n_reactions)
    g = np.abs(v) @ term.members.T
    ks = np.array([term.best_scale(x) for x in v])
    dev = np.sum(np.abs(ks[:, None] * g - term.abundance) / term.sigma, axis=1)
    assert dev.min() >= mode.attrs["objective"] - 1e-6
    g0 = np.abs(result["flux"].values) @ term.members.T
    a, b = term.scale_bounds
    shift = np.sum(
        np.abs(term.best_scale(result["flux"].values) * g0 - term.abundance) / term.sigma
    )
    f = lambda k: np.exp(shift - np.sum(np.abs(k * g0 - term.abundance) / term.sigma))  # noqa: E731
    breaks = np.sort([r for r in term.abundance[g0 > 0] / g0[g0 > 0] if a < r < b])
    integral = scipy.integrate.quad(f, a, b, points=breaks, limit=500)[0]
    expected = np.log(integral) - shift - np.log(b - a)
    np.testing.assert_allclose(float(term.log_marginal(g0)), expected, rtol=1e-9)


def test_global_mode_out_of_time_is_a_solver_error(textbook, falcon_case):
    """A MILP stopped before it has a flux is a SolverError naming the time limit, not an
    infeasibility (HiGHS hands back its start, k = 0, which is no flux)."""
    expression, std, _ = falcon_case
    term = ExpressionLaplace(textbook, expression, std)
    with pytest.raises(SolverError, match="time_limit"):
        term.map_estimate(textbook, time_limit=1e-9)


def test_joint_polytope_errors(fork):
    with pytest.raises(ConfigError, match="clash"):
        joint_polytope(fork, [Latent("R1", 0.0, 1.0)])
    with pytest.raises(ConfigError, match="unknown latent 'beta'"):
        joint_polytope(fork, [Latent("a", 0.0, 1.0)], [Coupling({"R1": 1.0}, {"beta": 1.0})])
    with pytest.raises(NetworkError, match="unknown reaction 'nope'"):
        FluxObservations(fork, {"nope": (1.0, 1.0)})
    with pytest.raises(ConfigError, match="sd > 0"):
        FluxObservations(fork, {"R1": (1.0, 0.0)})
    with pytest.raises(ConfigError, match="lower < upper"):
        Latent("a", 1.0, 1.0)


@pytest.mark.parametrize("method", ["metropolis", "hmc", "slice"])
def test_arviz_reads_the_datatree_as_returned(method, arviz_reads):
    """ArviZ's summary, R-hat, ESS, HDI and forest plot read what ``sample`` (each sampler) and
    ``to_datatree`` return, with no group picked or renamed: fluxes and the latent α."""
    expression = {"g1": 1.0, "g2": 0.5}
    net = Network.from_stoichiometry(
        {"EX_A": {"A": -1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "B": 1}, "EX_B": {"B": -1}},
        bounds={"EX_A": (-10.0, 0.0)},
        gpr={"R1": "g1", "R2": "g2"},
        id="fork_gpr",
    )
    terms = [
        ExpressionCapacity(net, expression, capacity_bounds=(1e-9, 20.0), prior="uniform"),
        FluxObservations(net, {"R1": (2.0, 1.0)}),
    ]
    post = FluxPosterior(net, terms)
    tree = post.sample(method=method, num_chains=2, num_draws=60, num_warmup=40, seed=1)
    summary = arviz_reads(tree)
    assert "capacity_alpha" in summary.index and "flux[R1]" in summary.index
    x = np.concatenate(
        [tree["posterior"]["flux"].values, tree["posterior"]["capacity_alpha"].values[..., None]],
        axis=-1,
    )
    arviz_reads(post.to_datatree(x))
