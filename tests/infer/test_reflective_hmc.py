"""ReflectiveHMC under numpyro.infer.MCMC: polytope sites, other latents, ArviZ results.

Statistical checks use fixed seeds and a Monte-Carlo-standard-error bound: ``|mean - truth| <
Z_BOUND * sd / sqrt(ESS)``; with ``Z_BOUND = 4`` an exact sampler fails a comparison with
probability about 6e-5 (CLT).
"""

from __future__ import annotations

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
import scipy.integrate
import scipy.stats
from numpyro.infer import MCMC

from bayesflux import Network, datasets
from bayesflux.errors import ConfigError
from bayesflux.expression import enzyme_abundance
from bayesflux.infer import EXTRA_FIELDS, ReflectiveHMC, diagnostics, to_datatree
from bayesflux.infer import sample as infer_sample
from bayesflux.models import ExpressionLaplace, blocks
from bayesflux.sampling import LinearConstraint, polytope

Z_BOUND = 4.0
EXAMPLES = __import__("pathlib").Path(__file__).parents[2] / "examples"


def _run(model, *, warmup=500, draws=1000, chains=4, method="vectorized", seed=0, **kernel):
    mcmc = MCMC(
        ReflectiveHMC(model, **kernel),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method=method,
        progress_bar=False,
    )
    mcmc.run(jax.random.key(seed), extra_fields=EXTRA_FIELDS)
    return mcmc


def _mcse_check(draws: np.ndarray, truth: float) -> None:
    """``draws (chain, draw)``."""
    draws = np.asarray(draws)
    ess = float(arviz_stats.ess(draws, method="mean"))
    mcse = np.std(draws) / np.sqrt(ess)
    assert abs(np.mean(draws) - truth) < Z_BOUND * mcse, (np.mean(draws), truth, mcse, ess)


def test_polytope_distribution_support_and_transform(fork_polytope):
    net, poly = fork_polytope
    d = blocks.FluxPolytope(poly)
    v = d.sample(jax.random.key(1), (50,))
    assert v.shape == (50, net.n_reactions)
    np.testing.assert_allclose(np.asarray(v) @ net.S.T, 0.0, atol=1e-10)
    assert np.all(np.asarray(d.log_prob(v)) == 0.0)
    outside = v.at[:, 1].set(20.0)  # R1 > uptake: off the polytope (and off S v = 0)
    assert np.all(np.isneginf(np.asarray(d.log_prob(outside))))
    t = numpyro.distributions.transforms.biject_to(d.support)
    z = t.inv(v)
    assert z.shape == (50, poly.dim)
    np.testing.assert_allclose(t(z), v, atol=1e-10)


@pytest.mark.parametrize("dense_mass", [True, False], ids=["dense", "diagonal"])
def test_flux_marginal_matches_quadrature_and_free_latent_its_prior(fork_polytope, dense_mass):
    """R1 with y = 2 +- 1 observed: density ∝ (10 - r) N(r; 2, 1) on [0, 10]; a latent that no
    likelihood touches keeps its HalfNormal(1) prior, mean sqrt(2/π); with a dense or a
    diagonal adapted mass matrix."""
    net, poly = fork_polytope

    def model():
        v = blocks.flux_polytope("v", poly)
        numpyro.sample("s", dist.HalfNormal(1.0))
        blocks.measured_fluxes(v, {"R1": (2.0, 1.0)}, network=net)

    mcmc = _run(model, draws=2000, seed=3, dense_mass=dense_mass)
    samples = mcmc.get_samples(group_by_chain=True)
    v = np.asarray(samples["v"])
    np.testing.assert_allclose(v.reshape(-1, net.n_reactions) @ net.S.T, 0.0, atol=1e-9)
    assert np.all(v >= net.lb - 1e-9) and np.all(v <= net.ub + 1e-9)
    dens = lambda r: (10 - r) * scipy.stats.norm.pdf(r, 2.0, 1.0)  # noqa: E731
    z = scipy.integrate.quad(dens, 0, 10)[0]
    truth = scipy.integrate.quad(lambda r: r * dens(r), 0, 10)[0] / z
    _mcse_check(v[..., 1], truth)
    _mcse_check(samples["s"], np.sqrt(2 / np.pi))


def test_uniform_triangle_without_likelihood(fork_polytope):
    """No data: the uniform triangle, E[R1] = 10/3, E[u] = 20/3, under sequential chains too
    (the kernel's unbatched path)."""
    net, poly = fork_polytope

    def model():
        blocks.flux_polytope("v", poly)

    mcmc = _run(model, draws=1500, chains=2, method="sequential", seed=5)
    v = np.asarray(mcmc.get_samples(group_by_chain=True)["v"])
    _mcse_check(v[..., 1], 10 / 3)
    _mcse_check(-v[..., 0], 20 / 3)


def test_polytope_site_in_a_plate_is_refused(fork_polytope):
    _, poly = fork_polytope

    def model():
        with numpyro.plate("condition", 2):
            blocks.flux_polytope("v", poly)

    with pytest.raises(ConfigError, match="plate"):
        _run(model, warmup=5, draws=5, chains=1)


def test_blocks_reject_bad_input(fork_polytope):
    net, poly = fork_polytope
    v = jnp.asarray(poly.v0 + poly.N @ poly.center)
    with pytest.raises(ConfigError, match="not in the model"):
        numpyro.handlers.seed(blocks.measured_fluxes, 0)(v, {"nope": (1.0, 1.0)}, network=net)
    with pytest.raises(ConfigError, match="sd"):
        numpyro.handlers.seed(blocks.measured_fluxes, 0)(v, {"R1": (1.0, np.inf)}, network=net)
    with pytest.raises(ConfigError, match="Polytope"):
        numpyro.handlers.seed(blocks.flux_polytope, 0)("v", net)


def _two_conditions():
    """E. coli core in two conditions (aerobic; oxygen-limited) with data simulated from known
    flux states (draws of each condition's polytope) and known scales ``k``: measured exchange
    fluxes and gene-group abundances ``e_i ~ Laplace(k g_i(v), 1)``."""
    net = datasets.load("textbook")
    genes = pd.read_csv(EXAMPLES / "ecoli_core_genes.tsv", sep="\t", index_col=0)["mean"]
    conditions = {"aerobic": (-20.0, 0.75, 2.0), "limited": (-8.0, 0.3, 3.0)}
    rng = np.random.default_rng(1)
    ds = enzyme_abundance(net, genes)
    group = ds["group"].values
    members = ExpressionLaplace(net, abundance=ds).members
    kept = [
        i
        for i in np.unique(group[group >= 0])
        if np.isfinite(ds["abundance"].values[group == i][0])
    ]
    out = {}
    for i, (name, (o2, floor, k)) in enumerate(conditions.items()):
        poly = polytope(
            net.with_bounds({"EX_o2_e": (o2, 1000.0)}),
            constraints=[LinearConstraint({"Biomass_Ecoli_core": 1.0}, floor)],
        )
        truth = np.asarray(blocks.FluxPolytope(poly).sample(jax.random.key(10 + i)))
        e = k * (members @ np.abs(truth)) + rng.laplace(0.0, 1.0, members.shape[0])
        abundance = ds["abundance"].values.copy()
        for gid, value in zip(kept, e, strict=True):
            abundance[group == gid] = value
        expression = ExpressionLaplace(
            net,
            abundance=ds.assign(abundance=("reaction", abundance)),
            polytope=poly,
            name=f"expression_{name}",
        )
        sd = {"EX_glc__D_e": 0.5, "EX_o2_e": 1.0, "EX_co2_e": 1.0, "Biomass_Ecoli_core": 0.05}
        idx = {r: net.reactions.index(r) for r in sd}
        measured = {r: (float(truth[idx[r]] + rng.normal(0, s)), s) for r, s in sd.items()}
        out[name] = (poly, expression, measured, truth)
    return net, out


@pytest.mark.slow
def test_two_conditions_share_a_hierarchical_expression_scale():
    """The user-written model of issue 14: two growth conditions, ``flux_polytope`` +
    ``measured_fluxes`` + ``expression_falcon`` each, the abundance-per-flux scales ``k_c``
    partially pooled around a shared ``log k``."""
    import arviz as az

    net, data = _two_conditions()

    def model():
        log_k = numpyro.sample("log_k", dist.Normal(np.log(2.0), 1.0))
        for name, (poly, expression, measured, _) in data.items():
            v = blocks.flux_polytope(f"v_{name}", poly)
            k = numpyro.sample(f"k_{name}", dist.LogNormal(log_k, 0.5))
            blocks.measured_fluxes(v, measured, network=poly, name=f"fluxes_{name}")
            blocks.expression_falcon(v, expression, scale=k)

    mcmc = _run(model, warmup=1000, draws=1500, seed=0)
    tree = to_datatree(mcmc)
    S = net.S
    for name in data:
        v = tree["posterior"][f"v_{name}"].values.reshape(-1, net.n_reactions)
        assert np.max(np.abs(v @ S.T)) < 1e-8
        assert np.all(v >= net.lb - 1e-8) and np.all(v <= net.ub + 1e-8)
        assert list(tree["posterior"][f"v_{name}"].reaction.values) == list(net.reactions)
    summary = az.summary(tree)  # ArviZ reads the tree as returned: no group picked, no renaming
    assert np.nanmax(summary["r_hat"]) < 1.01
    assert set(az.rhat(tree).data_vars) == set(tree["posterior"].data_vars)
    assert az.hdi(tree)["v_aerobic"].sizes["ci_bound"] == 2
    import matplotlib

    matplotlib.use("Agg")
    az.plot_forest(tree, var_names=["k_aerobic", "k_limited", "log_k"])
    matplotlib.pyplot.close("all")
    # the scales are recovered: each k within its 99% interval
    for name, k in (("aerobic", 2.0), ("limited", 3.0)):
        draws = tree["posterior"][f"k_{name}"].values.ravel()
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo < k < hi, (name, lo, hi)
    ll = tree["log_likelihood"]
    for name in ll.data_vars:  # one PSIS-LOO per observed site (ArviZ asks which)
        assert np.isfinite(az.loo(tree, var_name=name).elpd)
    assert ll["expression_aerobic"].shape[-1] == data["aerobic"][1].abundance.size
    assert ll["fluxes_limited"].shape[-1] == 4
    assert {"diverging", "acceptance_rate", "n_steps", "lp", "step_size"} <= set(
        tree["sample_stats"].data_vars
    )
    assert not tree["sample_stats"]["diverging"].values.any()
    diag = diagnostics(tree, var_names=["v_aerobic", "k_aerobic"])
    assert float(diag["v_aerobic_max_rhat"]) < 1.01


def test_marginal_expression_equals_the_term(fork_polytope):
    """``expression_falcon(scale=None)`` is the term's exact marginal over ``k`` (one site)."""
    net = Network.from_stoichiometry(
        {"EX_A": {"A": -1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "B": 1}, "EX_B": {"B": -1}},
        bounds={"EX_A": (-10.0, 0.0)},
        gpr={"R1": "g1", "R2": "g2"},
        id="fork_genes",
    )
    term = ExpressionLaplace(net, {"g1": 4.0, "g2": 1.0})
    v = jnp.array([-5.0, 3.0, 2.0, 5.0])

    def model():
        blocks.expression_falcon(v, term, scale=None)

    trace = numpyro.handlers.trace(model).get_trace()
    lp = trace[term.name]["fn"].log_prob(trace[term.name]["value"])
    np.testing.assert_allclose(float(lp), float(term.log_likelihood(v, {})), rtol=1e-12)


@pytest.mark.slow
def test_sample_resumes_from_its_checkpoint(fork_polytope, tmp_path):
    """``infer.sample`` with a checkpoint: blocks removed after a run are redrawn on the rerun
    from the stored state, equal to an uninterrupted run without a checkpoint; another seed in
    the same folder is refused; diagnostics are stored in the attrs."""
    net, poly = fork_polytope

    def model():
        v = blocks.flux_polytope("v", poly)
        blocks.measured_fluxes(v, {"R1": (2.0, 1.0)}, network=net)

    options = dict(num_draws=120, num_warmup=100, num_chains=2, seed=4, block_size=40)
    first = infer_sample(model, checkpoint=tmp_path, **options)
    assert sorted(p.name for p in tmp_path.glob("mcmc_*.npz")) == [
        f"mcmc_{i:06d}.npz" for i in range(3)
    ]
    (tmp_path / "mcmc_000002.npz").unlink()
    (tmp_path / "mcmc_000001.npz").unlink()
    resumed = infer_sample(model, checkpoint=tmp_path, **options)
    plain = infer_sample(model, **options)
    for tree in (resumed, plain):
        np.testing.assert_array_equal(tree["posterior"]["v"].values, first["posterior"]["v"].values)
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail"} <= set(first.attrs)
    with pytest.raises(ConfigError, match="different run"):
        infer_sample(model, checkpoint=tmp_path, **{**options, "seed": 5})


def test_eflux_capacity_block_is_the_capacity_term():
    """``eflux_capacity`` on the joint polytope has the log density of FluxPosterior with the
    ExpressionCapacity term (log-uniform α) at random points of that polytope, and refuses a
    polytope without α as its last coordinate."""
    from numpyro.infer.util import log_density

    from bayesflux.models import ExpressionCapacity, FluxPosterior, joint_polytope

    net = datasets.load("small")
    genes = {g: float(i + 1) for i, g in enumerate(net.genes)}
    capacity = ExpressionCapacity(net, genes, capacity_bounds=(0.5, 50.0))
    poly = joint_polytope(net, capacity.latents, capacity.couplings)

    def model():
        blocks.eflux_capacity("x", poly, capacity)

    post = FluxPosterior(net, [capacity])
    x = np.asarray(blocks.FluxPolytope(poly).sample(jax.random.key(0), (5,)))
    for point in x:
        ours, _ = log_density(model, (), {}, {"x": point})
        np.testing.assert_allclose(float(ours), float(post.log_density(jnp.asarray(point))))
    with pytest.raises(ConfigError, match="last coordinate"):
        numpyro.handlers.seed(blocks.eflux_capacity, 0)("x", polytope(net), capacity)


def test_preconditioned_hmc_on_a_posterior_far_below_numpyros_shrinkage(fork_polytope):
    """R1 = 2 ± 1e-7 and R2 = 3 ± 1e-3 measured: the posterior is N(2, 1e-14) x N(3, 1e-6),
    variances far below the ``1e-3 I`` NumPyro's warm-up adds to each window's covariance (which
    then sets a step size for R1 too small for R2 to move). With ``precondition`` (coordinates
    whitened by guessed scales 10x too wide) the kernel adapts in units where that shrinkage is
    harmless: means within 4 MCSE, standard deviations within 4 of their own standard errors
    (``sd / sqrt(2 ESS)``), R-hat < 1.01."""
    from bayesflux.sampling import covariance_rounding

    net, poly = fork_polytope
    sd = {"R1": 1e-7, "R2": 1e-3}

    def model():
        v = blocks.flux_polytope("v", poly)
        blocks.measured_fluxes(v, {"R1": (2.0, sd["R1"]), "R2": (3.0, sd["R2"])}, network=net)

    guessed = 10 * np.array([1e-3, 1e-7, 1e-3, 1e-3])  # sd of EX_A, R1, R2, EX_B
    guess = covariance_rounding(poly, np.linalg.inv((poly.N.T / guessed**2) @ poly.N))
    z0 = np.linalg.pinv(poly.N) @ (np.array([-5.0, 2.0, 3.0, 5.0]) - poly.v0)
    mcmc = MCMC(
        ReflectiveHMC(model, rounding=guess, precondition=True),
        num_warmup=500,
        num_samples=1000,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    init = {"v": jnp.asarray(z0 + 1e-7 * np.random.default_rng(0).standard_normal((4, poly.dim)))}
    mcmc.run(jax.random.key(2), init_params=init)
    v = np.asarray(mcmc.get_samples(group_by_chain=True)["v"])
    for j, truth in ((1, 2.0), (2, 3.0)):
        _mcse_check(v[..., j], truth)
        ess = float(arviz_stats.ess(v[..., j], method="sd"))
        assert abs(np.std(v[..., j]) / sd[f"R{j}"] - 1.0) < Z_BOUND / np.sqrt(2 * ess)
        assert float(arviz_stats.rhat(v[..., j], method="rank")) < 1.01
