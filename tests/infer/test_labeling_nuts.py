"""NUTS from NumPyro against ReflectiveHMC on the 13C free-flux posterior of influx_si's E. coli.

The model is influx_si's ``test/e_coli.ftbl`` (real LC-MS data, 54 measurements; 12 free
parameters: 5 free net fluxes and 7 free exchange fluxes), with a uniform prior on the feasible
free parameters and the likelihood :func:`bayesflux.models.blocks.labeling_13c`. One NumPyro
model function serves both samplers; only the prior of its one latent site differs:

* NUTS: ``Uniform(lo, hi)`` on a box, mapped to the real line by NumPyro's sigmoid transform;
* ReflectiveHMC: the uniform distribution on the full feasible polytope ``G theta <= h``
  (:func:`bayesflux.labeling.fit.linear_constraints`), a ``FluxPolytope`` site.

The free exchange fluxes are kept in [0, 1] (see ``FREE_XCH_MAX``).

Box analysis (``linear_constraints(problem)``, influx_si's free fluxes Glucupt_U, zwf, gnd, maldh,
out_co2): the feasible set is **not a box**. G has 66 rows, 25 with two to four nonzeros; of its
irredundant facets, two belong to Glucupt_U alone and six to a 4-dimensional polytope in (zwf,
gnd, maldh, out_co2), which no linear change of free fluxes makes a box (a box has 8 facets
there). Two of the non-box facets are active at influx_si's optimum: edd >= 1e-4 (zwf - gnd) and
mae >= 1e-4 (malic enzyme; gnd, maldh, out_co2), so a box prior in influx_si's free fluxes would
put posterior mass outside the model's support. The largest honest alternative used here: free
net fluxes (Glucupt_U, gnd, edd, mae, out_co2) — a valid choice of free fluxes (an invertible map
of influx_si's, constant Jacobian, so the uniform prior is the same) — in which every facet active
at the optimum is a box bound. Of the remaining 26 non-box rows the nearest to the posterior is
pyk >= 1: 8-9 posterior sds below pyk's mean, and the closest of 4000 NUTS draws stays 0.09
(1.7 sd) above it (pyk's lower tail follows mae's upper tail); the test checks that no NUTS
draw (box only) leaves the polytope, so both samplers target the same posterior up to mass the
draws cannot see. (``LabelingProblem(free=("edd", ...))`` cannot express this choice:
``FluxSpace.build`` rejects even ``free=("edd",)`` as "determined by the others", because the
column-pivoted QR may pivot on preferred columns; the map is built here from ``problem.space``.)
"""

from __future__ import annotations

import importlib.resources
import time
from dataclasses import dataclass

import arviz as az
import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.stats
import xarray as xr
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS, init_to_value

from bayesflux.infer import EXTRA_FIELDS, ReflectiveHMC, to_datatree
from bayesflux.labeling import LabelingProblem, read_ftbl
from bayesflux.labeling.fit import linear_constraints
from bayesflux.models.blocks import FluxPolytope, labeling_13c
from bayesflux.sampling.polytope import Polytope

pytest.importorskip("influx_si")
ROOT = importlib.resources.files("influx_si") / "test"

#: free net fluxes: glucose split, oxidative PPP, Entner-Doudoroff, malic enzyme, CO2 release
FREE_NET = ("Glucupt_U", "gnd", "edd", "mae", "out_co2")
#: The problem's exchange bound must hold influx_si's fixed exchange fluxes (pgk's is 64.4), so
#: xch_max = 100; the seven free exchange fluxes get the box [0, 1] (the glucose uptake; 0.5 on
#: influx_si's [0, 1) scale, whose 0.999 is the 999 of bench_posterior). The likelihood shapes
#: them below 1 (ald, ta, tk1, tk2, ppc: posterior sd <= 0.1; fum_b: a bump at 0.3; eno: rising
#: to 1) and is flat above ~10 (SSR changes by < 2.4 from 10 to 999 for eno and fum_b). A wider
#: box adds a prior-shaped plateau beside fum_b's bump: with [0, 10] the largest Hessian
#: eigenvalue in ReflectiveHMC's rounded coordinates is 2 at the median draw and 420 at the 99th
#: percentile (draws with fum_b.xch < 0.1), chains adapted steps 0.04-0.10 (0.23-0.32 with
#: [0, 1]), and its run took 141 s instead of 58 s; with 999 (a 200 + 200 draw trial) its
#: chains stayed on separate plateaus (R-hat 3.4) and NUTS needed 224 leapfrog steps a draw.
#: [0, 1] keeps a lower bound (tk2), an upper bound (eno), a bump and near-Gaussian parameters:
#: the shapes where the two samplers' boundary handling differs.
XCH_MAX, FREE_XCH_MAX = 100.0, 1.0
#: Parameters in percent of the glucose uptake (the FTBL's uptake is 1): a unit change, constant
#: Jacobian. NumPyro's mass-matrix estimate adds 1e-3 * 5/(n+5) to every variance; in units of
#: the uptake out_co2's posterior sd is 2e-4 and the regularised mass was 24x too wide for it,
#: which cut ReflectiveHMC's step to 0.025 (60 leapfrog steps a draw). NUTS's sigmoid coordinates
#: do not depend on the unit.
UNIT = 100.0
#: net fluxes compared besides the free parameters (upper glycolysis, PPP entry, pyruvate kinase,
#: PDH, malate dehydrogenase)
NET_OF_INTEREST = ("zwf", "pgi", "pfk", "pyk", "pdh", "maldh")
CHAINS = 4


@dataclass(frozen=True, eq=False)
class FreeFluxes:
    """``theta = t0 + T y``: influx_si's free parameters ``theta`` from the sampled ``y`` (the
    free net fluxes ``FREE_NET`` and the free exchange fluxes, in percent of glucose uptake), and
    the feasible set in ``y``: the box ``lo <= y <= hi`` and the polytope ``G_y y <= h_y``."""

    problem: LabelingProblem
    T: np.ndarray
    t0: np.ndarray
    G: np.ndarray  # influx_si's constraints on theta (with the free exchange box)
    h: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    polytope: Polytope
    names: tuple[str, ...]

    def theta(self, y):
        return self.t0 + y @ self.T.T

    def net(self, y) -> np.ndarray:
        """Net fluxes of all reactions, percent of glucose uptake."""
        sp = self.problem.space
        return UNIT * np.asarray(sp.net(self.theta(np.asarray(y))[..., : sp.n_free]))


def free_flux_model(prior: dist.Distribution, free: FreeFluxes, problem) -> None:
    """The 13C posterior of the free parameters ``y ~ prior`` (one site, ``theta``)."""
    y = numpyro.sample("theta", prior)
    net, xch = free.problem.split(jnp.asarray(free.t0) + y @ jnp.asarray(free.T).T)
    labeling_13c(net, problem, xch=xch)


def _influx_optimum(problem: LabelingProblem) -> np.ndarray:
    """influx_si's stored fit as ``theta`` (its exchange fluxes on the [0, 1) scale)."""
    rows = (ROOT / "ok" / "mtf" / "e_coli_res" / "e_coli.tvar.sim").read_text().splitlines()[1:]
    val = {(f[2], f[3]): float(f[5]) for f in (line.split("\t") for line in rows)}
    net = np.array([val[(r, "NET")] for r in problem.network.reaction_ids])
    x01 = np.array([val[(r, "XCH")] for r in problem.reversible])
    xch = x01 / (1 - x01)
    return np.concatenate([problem.space.free_values(net), problem.xch_space.free_values(xch)])


def build_free_fluxes() -> FreeFluxes:
    """The problem with ``XCH_MAX``, the map to ``y`` and the feasible set in ``y``."""
    problem = read_ftbl(ROOT / "e_coli.ftbl").problem(xch_max=XCH_MAX)
    sp, p = problem.space, problem.n_params
    nz = sp.n_free
    rows = [sp.reaction_ids.index(r) for r in FREE_NET]
    M = sp.K[rows]  # net[FREE_NET] = v0[rows] + M z
    T = np.zeros((p, p))
    T[:nz, :nz] = np.linalg.inv(M)
    T[nz:, nz:] = np.eye(p - nz)
    T /= UNIT
    t0 = np.zeros(p)
    t0[:nz] = -np.linalg.solve(M, sp.v0[rows])
    G, h = linear_constraints(problem)
    G = np.vstack([G, np.eye(p)[nz:]])
    h = np.concatenate([h, np.full(p - nz, FREE_XCH_MAX)])
    Gy, hy = G @ T, h - G @ t0
    Gy[np.abs(Gy) < 1e-12 * np.abs(Gy).max(axis=1, keepdims=True)] = 0.0
    box = np.count_nonzero(Gy, axis=1) == 1
    lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
    for i in np.flatnonzero(box):
        j = np.flatnonzero(Gy[i])[0]
        bound = hy[i] / Gy[i, j]
        if Gy[i, j] > 0:
            hi[j] = min(hi[j], bound)
        else:
            lo[j] = max(lo[j], bound)
    assert np.all(np.isfinite(lo) & np.isfinite(hi))
    names = tuple(f"{r}.net" for r in FREE_NET) + tuple(f"{r}.xch" for r in problem.xch_space.free)
    poly = Polytope.from_halfspaces(Gy, hy, id="e_coli_free_fluxes")
    return FreeFluxes(problem, T, t0, G, h, lo, hi, poly, names)


def chain_starts(free: FreeFluxes) -> np.ndarray:
    """One start per chain: influx_si's optimum moved 1.5-3 % of the way to a uniform point of
    the polytope (strictly inside; 0-4 posterior sds off the optimum, and 25-250 in the tightly
    measured out_co2, so that R-hat sees dispersed starts)."""
    theta = _influx_optimum(free.problem)
    nz = free.problem.space.n_free
    theta[nz:] = np.minimum(theta[nz:], FREE_XCH_MAX)  # eno's exchange is 999 in influx_si
    y_opt = np.linalg.solve(free.T, theta - free.t0)
    spread = np.asarray(FluxPolytope(free.polytope).sample(jax.random.key(7), (CHAINS,)))
    lam = np.random.default_rng(7).uniform(0.015, 0.03, (CHAINS, 1))
    return (1 - lam) * y_opt + lam * spread


def _run(kernel, prior, free, starts, *, warmup: int, draws: int, seed: int):
    mcmc = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=draws,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
    )
    init = {"theta": biject_to(prior.support).inv(jnp.asarray(starts))}
    t = time.perf_counter()
    mcmc.run(
        jax.random.key(seed),
        prior,
        free,
        free.problem,
        init_params=init,
        extra_fields=EXTRA_FIELDS,
    )
    jax.block_until_ready(mcmc.get_samples())
    mcmc.seconds = time.perf_counter() - t  # compilation, warm-up and draws
    print(f"{type(kernel).__name__}: {mcmc.seconds:.1f} s ({warmup} + {draws} draws x {CHAINS})")
    return mcmc


def run_nuts(free: FreeFluxes, starts: np.ndarray, *, warmup: int = 500, draws: int = 1000):
    """NUTS on the box, dense mass. max_tree_depth=6 (at most 63 leapfrog steps a draw): vectorized
    chains wait each draw for the longest tree of the four, and with the default 10 a run took
    twice as long (4x the sampling after compilation) for a similar ESS, measured with the free
    exchange box [0, 10] (a capped tree is still a valid NUTS transition, only shorter).
    500 + 1000 draws: min bulk ESS ~700 (fum_b.xch), max R-hat 1.005."""
    prior = dist.Uniform(jnp.asarray(free.lo), jnp.asarray(free.hi)).to_event(1)
    kernel = NUTS(
        free_flux_model,
        dense_mass=True,
        max_tree_depth=6,
        init_strategy=init_to_value(values={"theta": jnp.asarray(starts[0])}),
    )
    return _run(kernel, prior, free, starts, warmup=warmup, draws=draws, seed=0)


def run_rhmc(free: FreeFluxes, starts: np.ndarray, *, warmup: int = 1000, draws: int = 1000):
    """ReflectiveHMC on the polytope, defaults; 1000 + 1000 draws (about 12 leapfrog steps each,
    a quarter of NUTS's; min bulk ESS ~900)."""
    prior = FluxPolytope(free.polytope)
    kernel = ReflectiveHMC(free_flux_model)
    return _run(kernel, prior, free, starts, warmup=warmup, draws=draws, seed=1)


@pytest.fixture(scope="module")
def free() -> FreeFluxes:
    return build_free_fluxes()


@pytest.fixture(scope="module")
def starts(free) -> np.ndarray:
    return chain_starts(free)


@pytest.fixture(scope="module")
def nuts_run(free, starts) -> MCMC:
    return run_nuts(free, starts)


@pytest.fixture(scope="module")
def rhmc_run(free, starts) -> MCMC:
    return run_rhmc(free, starts)


def _compared(free: FreeFluxes, mcmc: MCMC) -> xr.DataArray:
    """Free parameters and the net fluxes of interest, ``(chain, draw, quantity)``."""
    y = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"])
    ids = free.problem.space.reaction_ids
    net = free.net(y)[..., [ids.index(r) for r in NET_OF_INTEREST]]
    names = list(free.names) + [f"{r}.net" for r in NET_OF_INTEREST]
    return xr.DataArray(
        np.concatenate([y, net], axis=-1),
        dims=("chain", "draw", "quantity"),
        coords={"quantity": names},
    )


@pytest.mark.slow
def test_nuts_on_box_agrees_with_reflective_hmc_on_polytope(free, nuts_run, rhmc_run):
    """Posterior means of all 12 free parameters and 6 derived net fluxes agree within
    ``z_crit`` MCSEs, ``|m_NUTS - m_RHMC| < z_crit sqrt(mcse_NUTS² + mcse_RHMC²)``, and both
    samplers converge (R-hat < 1.01). ``z_crit``: 18 comparisons, Bonferroni at family-wise
    level 0.01 (two-sided normal quantile of 0.01/18, 3.45; a bare 3 would flag an exact pair of
    samplers up to 5% of the time). The box of NUTS and the polytope of ReflectiveHMC give the
    same posterior only if no NUTS draw leaves the polytope: checked first."""
    y_nuts = np.asarray(nuts_run.get_samples()["theta"])
    outside = free.theta(y_nuts) @ free.G.T > free.h + 1e-9 * (1 + np.abs(free.h))
    assert not outside.any(), f"{outside.any(axis=1).sum()} NUTS draws leave the polytope"

    nuts, rhmc = _compared(free, nuts_run), _compared(free, rhmc_run)
    for name, draws in (("NUTS", nuts), ("ReflectiveHMC", rhmc)):
        rhat = arviz_stats.rhat(draws)
        assert float(rhat.max()) < 1.01, (name, rhat.to_series().round(4).to_dict())
    diverging = np.asarray(nuts_run.get_extra_fields()["diverging"])
    assert diverging.mean() < 0.01

    p = nuts.sizes["quantity"]
    z_crit = scipy.stats.norm.ppf(1 - 0.01 / (2 * p))
    mcse = np.hypot(arviz_stats.mcse(nuts).values, arviz_stats.mcse(rhmc).values)
    diff = nuts.mean(("chain", "draw")).values - rhmc.mean(("chain", "draw")).values
    z = diff / mcse
    bad = {n: round(float(v), 2) for n, v in zip(nuts["quantity"].values, z) if abs(v) >= z_crit}
    print(
        f"NUTS {nuts_run.seconds:.1f} s, ReflectiveHMC {rhmc_run.seconds:.1f} s; "
        f"max R-hat NUTS {float(arviz_stats.rhat(nuts).max()):.4f}, "
        f"RHMC {float(arviz_stats.rhat(rhmc).max()):.4f}; max |z| {np.abs(z).max():.2f} "
        f"(bound {z_crit:.2f})"
    )
    assert not bad, f"means differ by >= {z_crit:.2f} MCSE: {bad}"


@pytest.mark.slow
# a few of the 54 measurements are influential (Pareto k > 0.7); only that loo runs is checked
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_reflective_hmc_datatree_has_pointwise_13c_log_likelihood(free, rhmc_run):
    """``to_datatree`` of the ReflectiveHMC run: one log-likelihood value per 13C measurement
    (site ``labeling``), read by ``az.loo``."""
    prior = FluxPolytope(free.polytope)
    tree = to_datatree(rhmc_run, model_args=(prior, free, free.problem))
    ll = tree["log_likelihood"]["labeling"]
    per_draw = {d: n for d, n in ll.sizes.items() if d not in ("chain", "draw")}
    assert list(per_draw.values()) == [free.problem.n_measurements], ll.sizes
    assert ll.sizes["chain"] == CHAINS and np.all(np.isfinite(ll.values))
    loo = az.loo(tree)
    assert np.isfinite(loo.elpd) and loo.n_data_points == free.problem.n_measurements
