"""FluxPosterior: joint polytope, likelihood terms, DataTree layout, checks against closed forms."""

from __future__ import annotations

import arviz_stats
import jax.numpy as jnp
import numpy as np
import numpyro
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
    Parsimony,
    expression_posterior,
    joint_polytope,
)
from bayesflux.sampling.polytope import LinearConstraint

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
    np.testing.assert_allclose(-(ll - term.log_normaliser(term.noise())), objective, rtol=1e-6)
    d = result["direction"].isel(run=0).values
    open_ = (d == 0) & (np.abs(v) <= 1e-9)  # left open by the iteration, no flux in the answer
    face = {r: int(x) for r, x, o in zip(textbook.reactions, d, open_) if x != 0 or o}
    mode = term.map_estimate(textbook, directions=face)
    w_mode = mode["flux"].values * mode.attrs["k"]
    np.testing.assert_allclose(w_mode, v * k, rtol=0, atol=1e-6 * np.abs(v * k).max())
    np.testing.assert_allclose(mode.attrs["objective"], objective, rtol=1e-6)


@pytest.mark.slow
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


def test_parsimony_prior_matches_closed_form(fork):
    """Under ``exp(-Σ|v|/τ)`` on the fork, ``Σ|v| = 3u`` (EX_A, R1 + R2, EX_B), so with ``τ = 3``
    the uptake has density ``∝ u e^-u`` on [0, 10] (the triangle's width times the prior) and
    R1 given u is uniform on [0, u]."""
    post = FluxPosterior(fork, [], flux_prior=Parsimony(3.0))
    tree = post.sample(num_chains=4, num_draws=2000, seed=5)
    flux = tree["posterior"]["flux"]
    u = -flux.sel(reaction="EX_A").values
    norm = scipy.integrate.quad(lambda x: x * np.exp(-x), 0, 10)[0]
    mean_u = scipy.integrate.quad(lambda x: x * x * np.exp(-x), 0, 10)[0] / norm
    _mcse_check(u, mean_u)
    _mcse_check(flux.sel(reaction="R1").values, mean_u / 2)
    assert tree.attrs["flux_prior"] == "Parsimony(scale=3)"


def test_parsimony_needs_a_positive_scale():
    with pytest.raises(ConfigError, match="scale"):
        Parsimony(0.0)
    with pytest.raises(ConfigError, match="weights"):
        Parsimony(1.0, weights=np.array([1.0, -1.0]))


def test_expression_posterior_mode_is_falcon_or_better(textbook, falcon_case):
    """The mode: objective <= FALCON's (a heuristic), k strictly inside its data-derived prior
    range, a steady state within the bounds (ATP maintenance forces flux, so the parsimony
    prior's scale is clamped where the bounds end)."""
    expression, std, result = falcon_case
    posterior, mode = expression_posterior(textbook, expression, std)
    assert mode.attrs["objective"] <= float(result["objective"][0]) + 1e-6
    low, high = mode.attrs["scale_bounds"]
    assert low * 100 < mode.attrs["k"] < high / 100
    assert mode.attrs["units"] == "abundance"
    v = mode["flux"].values / mode.attrs["k"]  # w = k v
    assert np.abs(textbook.S @ v).max() < 1e-8
    assert np.all(v >= textbook.lb - 1e-9) and np.all(v <= textbook.ub + 1e-9)
    assert isinstance(posterior.flux_prior, Parsimony)
    starts = posterior.starts(mode["start"].values, 3, seed=2)["_flux_and_latents"]
    poly = posterior.polytope
    assert np.all(starts @ poly.A.T < poly.b)  # strictly inside: valid chain starts
    assert len({tuple(np.round(z, 9)) for z in np.asarray(starts)}) == 3
    with pytest.raises(ConfigError, match="not in the posterior's polytope"):
        posterior.starts(mode["start"].values + 1.0, 2)


def test_least_total_flux_matches_an_lp_on_the_network(textbook, fork):
    """``min Σ|v|`` over the reduced polytope equals cvxpy's on ``S v = 0, lb <= v <= ub``
    (E. coli core: ATP maintenance forces flux); a network whose polytope holds v = 0 gives 0,
    and the default parsimony scale is then the median reach over the dimension."""
    import cvxpy as cp

    from bayesflux.models.priors import least_total_flux
    from bayesflux.sampling import polytope

    v = cp.Variable(textbook.n_reactions)
    problem = cp.Problem(
        cp.Minimize(cp.norm1(v)), [textbook.S @ v == 0, v >= textbook.lb, v <= textbook.ub]
    )
    problem.solve(solver=cp.HIGHS)
    poly = polytope(textbook)
    np.testing.assert_allclose(least_total_flux(poly), problem.value, rtol=1e-7)
    assert Parsimony.for_polytope(poly).scale == pytest.approx(problem.value / poly.dim)
    small = polytope(fork)
    assert least_total_flux(small) == 0.0
    assert Parsimony.for_polytope(small).scale == pytest.approx(10.0 / small.dim)


def test_expression_dispersion_scales_every_sigma(textbook, falcon_case):
    """With the dispersion ``φ`` latent, the likelihood is that of ``Laplace(k g_i, φ σ_i)``
    (scipy), and with ``k`` integrated out it is the quadrature of that over ``k``'s range."""
    expression, std, result = falcon_case
    v = result["flux"].values
    fixed = ExpressionLaplace(textbook, expression, std, marginalize=False, dispersion=(0.1, 10))
    assert [lat.name for lat in fixed.latents] == ["expression_k", "expression_dispersion"]
    k, phi = fixed.best_scale(v), 2.5
    g = np.abs(v) @ fixed.members.T
    ll = float(fixed.log_likelihood(v, {"expression_k": k, "expression_dispersion": phi}))
    expected = scipy.stats.laplace.logpdf(fixed.abundance, k * g, phi * fixed.sigma).sum()
    np.testing.assert_allclose(ll, expected, rtol=1e-10)
    term = ExpressionLaplace(textbook, expression, std, dispersion=(0.1, 10))
    a, b = term.scale_bounds
    peak = scipy.stats.laplace.logpdf(term.abundance, k * g, phi * term.sigma).sum()
    f = lambda x: np.exp(  # noqa: E731
        scipy.stats.laplace.logpdf(term.abundance, x * g, phi * term.sigma).sum() - peak
    )
    breaks = np.sort([r for r in term.abundance[g > 0] / g[g > 0] if a < r < b])
    integral = scipy.integrate.quad(f, a, b, points=breaks, limit=500)[0]
    marginal = float(term.log_likelihood(v, {"expression_dispersion": phi}))
    np.testing.assert_allclose(marginal, np.log(integral) + peak - np.log(b - a), rtol=1e-9)


def test_expression_relative_error_floors_every_sigma(textbook, falcon_case):
    """With the relative error ``ρ`` latent too, the likelihood is that of
    ``Laplace(k g_i, sqrt(φ² σ_i² + ρ² e_i²))`` (scipy), per group and in the NumPyro model's
    pointwise log-likelihood."""
    expression, std, result = falcon_case
    v = result["flux"].values
    term = ExpressionLaplace(
        textbook,
        expression,
        std,
        marginalize=False,
        dispersion=(0.1, 10),
        relative_error=(1e-3, 10),
        name="expr",
    )
    assert [lat.name for lat in term.latents] == [
        "expr_k",
        "expr_dispersion",
        "expr_relative_error",
    ]
    k, phi, rho = term.best_scale(v), 1.5, 0.4
    theta = {"expr_k": k, "expr_dispersion": phi, "expr_relative_error": rho}
    g = np.abs(v) @ term.members.T
    scale = np.sqrt((phi * term.sigma) ** 2 + (rho * term.abundance) ** 2)
    expected = scipy.stats.laplace.logpdf(term.abundance, k * g, scale)
    np.testing.assert_allclose(float(term.log_likelihood(v, theta)), expected.sum(), rtol=1e-10)
    trace = numpyro.handlers.trace(lambda: term.observe(jnp.asarray(v), theta)).get_trace()
    pointwise = trace["expr"]["fn"].log_prob(trace["expr"]["value"])
    np.testing.assert_allclose(np.asarray(pointwise), expected, rtol=1e-10)


def test_expression_mode_scale_whitens_the_posterior(textbook, falcon_case):
    """The mode's ``scale`` guess gives a rounding whose implied flux standard deviations never
    exceed the guess (a tight flux stays tight beside loose ones in the same coordinates) and
    stay inside the polytope's own extent; the relative error starts at its maximum likelihood,
    inside its prior range."""
    expression, std, _ = falcon_case
    posterior, mode = expression_posterior(textbook, expression, std, units="flux")
    assert posterior.latent_names == ("expression_relative_error",)
    low, high = posterior.latents[0].lower, posterior.latents[0].upper
    assert low < mode.attrs["relative_error"] < high
    scale = mode["scale"].values
    rounding = posterior.scale_rounding(scale, mode["start"].values)
    poly = posterior.polytope
    implied = np.sqrt(np.einsum("ij,jk,ik->i", poly.N, rounding.cov, poly.N))
    assert np.all(implied <= scale * (1 + 1e-6))
    assert np.all(poly.A @ rounding.center < poly.b)
    with pytest.raises(ConfigError, match="positive finite"):
        posterior.scale_rounding(-scale)
    # the flux scale's spread: the mode's own direction, 1/sqrt(d - 1) of it, added in rank one
    ray = mode["direction"].values
    flux_dim = poly.dim - len(posterior.latents)
    np.testing.assert_allclose(ray[:-1] * np.sqrt(flux_dim - 1), mode["flux"].values)
    wider = posterior.scale_rounding(scale, direction=ray)
    u = np.linalg.pinv(poly.N) @ ray
    np.testing.assert_allclose(wider.cov - rounding.cov, np.outer(u, u), atol=1e-12)


def test_expression_mode_scale_with_falcons_scales_alone(textbook, falcon_case):
    """With ``relative_error=None`` (``ρ = 0``) the guess uses the abundances' median relative
    error ``σ_i / e_i``: positive and finite, and the rounding it gives can be built."""
    expression, std, _ = falcon_case
    posterior, mode = expression_posterior(
        textbook, expression, std, relative_error=None, units="flux"
    )
    assert posterior.latent_names == () and mode.attrs["relative_error"] == 0.0
    scale = mode["scale"].values
    assert np.all(np.isfinite(scale) & (scale > 0))
    term = posterior.terms[0]
    expressed = term.abundance > 0
    relative = float(np.median(term.sigma[expressed] / term.abundance[expressed]))
    v = mode["flux"].values
    moving = np.abs(v)[np.abs(v) > 1e-12 * np.abs(v).max()]
    expected = relative * (np.sqrt(2.0) * np.abs(v) + np.median(moving))
    np.testing.assert_allclose(scale[: v.size], expected, rtol=1e-12)
    posterior.scale_rounding(scale, mode["start"].values)


def test_abundance_units_density_is_laplace_of_w_with_the_prior_on_w(textbook, falcon_case):
    """In abundance units the log density at ``(w, ρ, k)`` is, up to a constant, scipy's
    ``Laplace(e_i; g_i(w), sqrt(σ_i² + ρ² e_i²))`` summed, ``-Σ|w|/τ`` with ``τ = Σ e_i``, and
    the log-uniform priors ``-log ρ - log k`` (differences between two points compared, so the
    constants cancel); a further term in flux units sees ``v = w / k``."""
    expression, std, result = falcon_case
    measured = FluxObservations(textbook, {"EX_glc__D_e": (-9.0, 0.5)})
    posterior, mode = expression_posterior(textbook, expression, std, terms=[measured])
    assert posterior.latent_names == ("expression_relative_error", "flux_scale")
    term = posterior.terms[0]
    tau = float(term.abundance.sum())
    assert mode.attrs["parsimony_scale"] == pytest.approx(tau)
    w = mode["flux"].values

    def expected(rho: float, k: float) -> float:
        g = np.abs(w) @ term.members.T
        scale = np.sqrt(term.sigma**2 + (rho * term.abundance) ** 2)
        glc = w[textbook.reaction_index["EX_glc__D_e"]] / k
        return (
            scipy.stats.laplace.logpdf(term.abundance, g, scale).sum()
            + scipy.stats.norm.logpdf(glc, -9.0, 0.5)
            - np.abs(w).sum() / tau
            - np.log(rho)
            - np.log(k)
        )

    def density(rho: float, k: float) -> float:
        return float(posterior.log_density(jnp.asarray(np.concatenate([w, [rho, k]]))))

    k = mode.attrs["k"]
    np.testing.assert_allclose(
        density(0.3, 2 * k) - density(0.7, k), expected(0.3, 2 * k) - expected(0.7, k), rtol=1e-9
    )
    # the bounds in flux units hold in every start: lb k <= w <= ub k
    z = np.asarray(posterior.starts(mode["start"].values, 4, seed=1)["_flux_and_latents"])
    x = posterior.polytope.v0 + z @ posterior.polytope.N.T  # (w, ρ, k) per chain
    v = x[:, : textbook.n_reactions] / x[:, -1:]
    assert np.all(v >= textbook.lb - 1e-9) and np.all(v <= textbook.ub + 1e-9)


def test_abundance_units_scale_with_the_data(textbook, falcon_case):
    """Abundances times ``c`` give the mode's ``w`` and the prior's ``τ`` times ``c`` (the
    units are the data's) and the same relative error; bad options are refused by name."""
    expression, std, _ = falcon_case
    _, mode = expression_posterior(textbook, expression, std)
    c = 37.0
    _, scaled = expression_posterior(
        textbook, {g: c * x for g, x in expression.items()}, {g: c * x for g, x in std.items()}
    )
    np.testing.assert_allclose(scaled["flux"].values, c * mode["flux"].values, rtol=1e-6, atol=1e-9)
    assert scaled.attrs["parsimony_scale"] == pytest.approx(c * mode.attrs["parsimony_scale"])
    assert scaled.attrs["relative_error"] == pytest.approx(mode.attrs["relative_error"], rel=1e-4)
    with pytest.raises(ConfigError, match="units"):
        expression_posterior(textbook, expression, std, units="moles")
    fixed = LinearConstraint({"PGK": 1.0}, -5.0, -5.0)
    with pytest.raises(ConfigError, match="fixes a flux scale"):
        expression_posterior(textbook, expression, std, constraints=[fixed])


@pytest.mark.slow
def test_pooled_tuning_learns_a_posterior_far_narrower_than_the_polytope():
    """60 parallel reactions A -> B, each measured at 5 with sd log-spaced over [0.01, 1]: the
    posterior is a product of normals (the bound at 0 is 5 sd away), 10-1000 times narrower than
    the polytope's EP shape the run starts whitened by, in more dimensions than NumPyro's
    per-chain warm-up windows have draws. Two pooled tuning rounds: means within 4 MCSE,
    standard deviations within 4 of their standard errors (``sd / sqrt(2 ESS)``), R-hat < 1.01,
    and the learned whitening's variances within a factor 2 of the truth."""
    k = 60
    reactions = {"EX_A": {"A": -1}, **{f"R{j}": {"A": -1, "B": 1} for j in range(k)}}
    net = Network.from_stoichiometry(
        {**reactions, "EX_B": {"B": -1}}, bounds={"EX_A": (-1000.0, 0.0)}, id="branches"
    )
    sd = np.geomspace(0.01, 1.0, k)
    post = FluxPosterior(
        net, [FluxObservations(net, {f"R{j}": (5.0, s) for j, s in enumerate(sd)})]
    )
    tree = post.sample(
        num_chains=4, num_draws=500, num_warmup=100, tune_rounds=2, tune_draws=100, seed=2
    )
    flux = tree["posterior"]["flux"]
    for j in (0, k // 2, k - 1):
        draws = flux.sel(reaction=f"R{j}").values
        _mcse_check(draws, 5.0)
        ess = float(arviz_stats.ess(draws, method="sd"))
        assert abs(draws.std() / sd[j] - 1.0) < Z_BOUND / np.sqrt(2 * ess)
    moving = flux.sel(reaction=[f"R{j}" for j in range(k)])
    assert float(arviz_stats.rhat(moving.to_dataset(), method="rank")["flux"].max()) < 1.01
    learned, _ = post.pooled_rounding(tree)
    implied = np.einsum("ij,jk,ik->i", post.polytope.N, learned.cov, post.polytope.N)
    ratio = implied[1 : k + 1] / sd**2
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    with pytest.raises(ConfigError, match="tune_rounds"):
        post.sample(method="metropolis", tune_rounds=1)
