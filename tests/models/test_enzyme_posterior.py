"""The enzyme posterior (issue 21): fluxes and log-normal turnover numbers given proteomics.

Calibration checks simulate the truth from the prior (:func:`simulate_enzyme_data`: kcats from
their log-normal prior, a flux uniform on the directed polytope) and proteomics from the
likelihood, then ask that 94 % HDIs cover the truth and that the chains converged (max R-hat
< 1.01), with fixed seeds. For a calibrated posterior each HDI covers its true value with
probability 0.94; over ``n`` independent quantities the count covered is Binomial(n, 0.94).
The quantities of one data set are not independent (fluxes are tied by ``S v = 0``, a gene
shared by reactions ties their kcats), which widens the spread of the count; the thresholds
below are set from the binomial at an *effective* number of independent quantities (the
polytope's dimension plus the kcats), far fewer than the entries, with a false-failure rate
about 1e-3 (see each test).
"""

from __future__ import annotations

import time

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
import scipy.stats

from bayesflux import Network
from bayesflux.errors import ConfigError, NetworkError
from bayesflux.methods.ecmodel import ecoli_core_enzyme_table
from bayesflux.models import blocks
from bayesflux.models.enzyme_posterior import (
    KCAT_SD,
    enzyme_posterior,
    simulate_enzyme_data,
)
from bayesflux.sampling.polytope import polytope

PROB = 0.94  # the HDI's probability mass


def _covered(tree, truth, names=("flux", "kcat"), fluxes=None) -> np.ndarray:
    """Whether each entry's 94 % HDI (``az.hdi`` on the DataTree) holds its true value (of
    ``fluxes`` only, where given, and every kcat)."""
    hdi = az.hdi(tree, prob=PROB)
    out = []
    for name in names:
        pick = {"reaction": list(fluxes)} if name == "flux" and fluxes is not None else {}
        value = truth[name].sel(pick).values
        lo = hdi[name].sel(pick).sel(ci_bound="lower").values
        hi = hdi[name].sel(pick).sel(ci_bound="upper").values
        slack = 1e-9 * (1.0 + np.abs(value))  # fixed fluxes: an HDI of one value
        out.append((value >= lo - slack) & (value <= hi + slack))
    return np.concatenate(out)


def _directions(network: Network, seed: int) -> dict[str, float]:
    """A sign for every reversible GPR reaction: the signs of an approximately uniform flux
    draw from the whole polytope (a sign pattern with room in every direction)."""
    poly = polytope(network)
    z = blocks.hit_and_run_walks(
        jax.random.key(seed)[None],
        jnp.asarray(poly.A),
        jnp.asarray(poly.b),
        jnp.asarray(poly.center),
        200 * poly.dim + 1000,
    )[0]
    v = poly.v0 + np.asarray(z) @ poly.N.T
    return {
        r: float(np.sign(v[j]) or 1.0)
        for j, (r, lo, hi, rule) in enumerate(
            zip(network.reactions, network.lb, network.ub, network.gpr)
        )
        if lo < 0 < hi and rule.strip()
    }


@pytest.fixture(scope="module")
def chain():
    """``EX_A -> A -(R1: g1)-> B -(R2: g2 or g3)-> C -(R3: g4 and g5)-> D ->`` (``EX_D``)
    and a reversible branch ``B <-(R4: g4)-> D``; R4 runs forward here."""
    return Network.from_stoichiometry(
        {
            "EX_A": {"A": 1},
            "R1": {"A": -1, "B": 1},
            "R2": {"B": -1, "C": 1},
            "R3": {"C": -1, "D": 1},
            "R4": {"B": -1, "D": 1},
            "EX_D": {"D": -1},
        },
        bounds={"EX_A": (0.0, 10.0), "R4": (-10.0, 10.0)},
        gpr={"R1": "g1", "R2": "g2 or g3", "R3": "g4 and g5", "R4": "g4"},
        id="enzyme_chain",
    )


def test_enzyme_demand_is_flux_over_kcat(chain):
    """``E_g = Σ_{r ∋ g} |v_r| / (3600 kcat_r)``: g4 serves R3 (with g5) and R4; the isozyme
    of R2 with a measured gene is chosen, else the cheapest (the first, all equal)."""
    post = enzyme_posterior(chain, {"g1": 1e-3, "g3": 1e-3, "g4": 2e-3}, directions={"R4": 1})
    assert post.reactions == ("R1", "R2", "R3", "R4")
    assert post.complexes == (("g1",), ("g3",), ("g4", "g5"), ("g4",))
    v = np.array([5.0, 5.0, 3.0, 3.0, 2.0, 5.0])
    kcat = np.array([10.0, 20.0, 30.0, 40.0])
    expected = {
        "g1": 5 / 10,
        "g3": 3 / 20,
        "g4": 3 / 30 + 2 / 40,
        "g5": 3 / 30,
    }
    got = dict(zip(post.genes, np.asarray(post.demand(jnp.asarray(v), jnp.asarray(kcat)))))
    for g, e in expected.items():
        np.testing.assert_allclose(got[g] * 3600.0, e, rtol=1e-12)
    unmeasured = enzyme_posterior(chain, {"g1": 1e-3}, directions={"R4": 1})
    assert unmeasured.complexes[1] == ("g2",)
    # the model's sites: the prior of ln kcat and the proteomics likelihood
    model = post.model()
    # g1 and g3 serve R1 and R2 alone: sampled as ln kcat_r - ln|v_r|; g4 is shared
    assert post.pinned == ("R1", "R2")
    u = np.log(kcat[:2]) - np.log(v[1:3])
    data = {"flux": v, "_log_kcat_over_flux": u, "_log_kcat": np.log(kcat[2:])}
    trace = numpyro.handlers.trace(
        numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=data)
    ).get_trace()
    np.testing.assert_allclose(trace["kcat"]["value"], kcat)
    np.testing.assert_allclose(trace["log_kcat"]["value"], np.log(kcat))
    # ln kcat_r's prior N(ln 65, σ_k²) (65 1/s the default kcat) for R3, R4; u's site for R1,
    # R2 centred on the data, -ln(3600 Ê_g) (its prior is a factor: next test)
    pinned, free = trace["_log_kcat_over_flux"]["fn"], trace["_log_kcat"]["fn"]
    np.testing.assert_allclose(free.loc, np.log(65.0))
    np.testing.assert_allclose(free.scale, KCAT_SD)
    np.testing.assert_allclose(pinned.loc, -np.log(3600.0 * 1e-3))
    demand = np.array([expected[g] for g in ("g1", "g3", "g4")]) / 3600.0
    np.testing.assert_allclose(trace["proteomics"]["fn"].loc, np.log(demand + 1e-12), rtol=1e-12)
    np.testing.assert_allclose(trace["proteomics"]["value"], np.log([1e-3, 1e-3, 2e-3]))


def test_ratio_coordinates_keep_the_posterior(chain):
    """``"auto"`` samples ``u_r = ln kcat_r - ln|v_r|`` for the pinned reactions: a shear of
    Jacobian 1, so the joint log density at ``(v, u)`` equals ``"kcat"``'s at ``(v, ln kcat)``,
    with a measured flux and a protein budget too."""
    from numpyro.infer.util import log_density

    data = {"g1": 1e-3, "g3": 2e-3, "g4": 3e-3, "g5": 5e-4}
    options = dict(directions={"R4": 1}, measured={"EX_A": (5.0, 0.5)}, protein_budget=0.05)
    auto = enzyme_posterior(chain, data, **options)
    plain = enzyme_posterior(chain, data, parametrization="kcat", **options)
    assert auto.pinned == ("R1", "R2", "R3") and plain.pinned == ()
    v = np.array([5.0, 5.0, 3.0, 3.0, 2.0, 5.0])
    for log_kcat in (np.log([10.0, 20.0, 30.0, 40.0]), np.log([300.0, 2.0, 65.0, 1e4])):
        u = log_kcat[:3] - np.log(v[1:4])
        ours = {"flux": v, "_log_kcat_over_flux": u, "_log_kcat": log_kcat[3:]}
        theirs = {"flux": v, "_log_kcat": log_kcat}
        np.testing.assert_allclose(
            log_density(auto.model(), (), {}, ours)[0],
            log_density(plain.model(), (), {}, theirs)[0],
            rtol=1e-12,
        )
    with pytest.raises(ConfigError, match="parametrization"):
        enzyme_posterior(chain, data, parametrization="log")


def test_protein_budget_is_a_soft_upper_bound(chain):
    """``log Φ((P - Σ MW_g E_g / 1000) / s_P)``: about 0 well inside the budget, ``log 1/2`` on
    it, strongly negative past it."""
    post = enzyme_posterior(
        chain, {"g1": 1e-3}, directions={"R4": 1}, protein_budget=0.1, default_mw=50_000.0
    )
    model = post.model()
    v = jnp.asarray([5.0, 5.0, 3.0, 3.0, 2.0, 5.0])
    mass = float(np.asarray(post.demand(v, jnp.full(4, 65.0))) @ post.mw / 1000.0)
    for budget_kcat, expected in ((65.0, None), (65.0 * mass / 0.1, np.log(0.5))):
        assert post.pinned == ("R1",)
        log_kcat = np.log(np.full(4, budget_kcat))
        data = {"flux": v, "_log_kcat_over_flux": log_kcat[:1] - np.log(v[1:2])}
        data["_log_kcat"] = log_kcat[1:]
        trace = numpyro.handlers.trace(
            numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=data)
        ).get_trace()
        factor = float(trace["protein_budget"]["fn"].log_factor)
        if expected is None:
            assert mass < 0.1 and factor > -1e-6
        else:
            np.testing.assert_allclose(factor, expected, rtol=1e-9)


def test_bad_input_raises_typed_errors_naming_the_item(chain):
    with pytest.raises(ConfigError, match="'g9'"):
        enzyme_posterior(chain, {"g9": 1e-3})
    with pytest.raises(ConfigError, match="'g1'.*positive"):
        enzyme_posterior(chain, {"g1": 0.0})
    with pytest.raises(ConfigError, match="'g1'.*positive"):
        enzyme_posterior(chain, {"g1": -1e-3})
    with pytest.raises(ConfigError, match="'g1'.*abundance"):
        enzyme_posterior(chain, {"g1": "high"})
    with pytest.raises(ConfigError, match="'g1'.*positive"):
        enzyme_posterior(chain, {"g1": float("nan")})
    with pytest.raises(ConfigError, match="'g1'.*sd"):
        enzyme_posterior(chain, {"g1": (1e-3, 0.0)})
    with pytest.raises(NetworkError, match="'EX_A'.*no GPR"):
        enzyme_posterior(chain, {"g1": 1e-3}, reactions=["R1", "EX_A"])
    with pytest.raises(NetworkError, match="'R9'"):
        enzyme_posterior(chain, {"g1": 1e-3}, directions={"R9": 1})
    with pytest.raises(ConfigError, match="'EX_A'.*contradicts"):
        enzyme_posterior(chain, {"g1": 1e-3}, directions={"EX_A": -1})
    with pytest.raises(ConfigError, match="'R9'"):
        enzyme_posterior(chain, {"g1": 1e-3}, measured={"R9": (1.0, 0.1)})
    with pytest.raises(ConfigError, match="no measured gene.*'g1'"):
        enzyme_posterior(chain, {"g1": 1e-3}, reactions=["R2"])
    # both isozymes of R2 measured: the first (all equally cheap) is modelled, g3 ignored
    assert enzyme_posterior(chain, {"g2": 1e-3, "g3": 1e-3}).ignored_genes == ("g3",)
    with pytest.raises(ConfigError, match="kcat_sd"):
        enzyme_posterior(chain, {"g1": 1e-3}, kcat_sd=0.0)


@pytest.mark.filterwarnings("ignore:the chains have not converged")
def test_sign_free_reactions_are_named_when_sampling(chain):
    """Proteomics sees ``|v|``: a reaction that may run either way gives a mode per sign."""
    post = enzyme_posterior(chain, {"g1": 1e-3})
    assert post.sign_free == ("R4",)
    assert enzyme_posterior(chain, {"g1": 1e-3}, directions={"R4": -1}).sign_free == ()
    with pytest.warns(UserWarning, match="R4"):
        post.sample(num_draws=10, num_warmup=10, num_chains=2)


def test_calibrated_on_a_small_network(chain, arviz_reads):
    """Four simulated data sets on ``chain`` (measured uptake, proteomics of every subunit):
    each run converges (max R-hat < 1.01) and the 94 % HDIs cover the truth. Counted: the
    fluxes of R2 and R4 (the polytope's two free directions; the other fluxes are sums of
    them) and the 4 kcats, 24 quantities; ``P(Binomial(24, 0.94) <= 17) ≈ 4e-4``, so at least
    18 must be covered. (Twelve data sets, seeds 0-11: 66 of these 72 quantities and 109 of
    the 120 entries covered, max R-hat <= 1.0033, min bulk ESS >= 1835.)"""
    covered, rhat = [], []
    for seed in range(4):
        sim = simulate_enzyme_data(
            chain, directions={"R4": 1}, measured_sd={"EX_A": 0.5}, seed=seed
        )
        post = enzyme_posterior(chain, sim.proteomics, directions={"R4": 1}, measured=sim.measured)
        tree = post.sample(num_draws=2000, num_warmup=1000, num_chains=4, seed=seed)
        if seed == 0:
            summary = arviz_reads(tree)
            assert "kcat[R3]" in summary.index and "enzyme[g5]" in summary.index
            assert list(tree["posterior"]["kcat"].coords["kcat_reaction"].values) == list(
                post.reactions
            )
            assert set(tree["log_likelihood"].data_vars) == {"proteomics", "measured_fluxes"}
        rhat.append(tree.attrs["max_rhat"])
        covered.append(_covered(tree, sim.truth, fluxes=["R2", "R4"]))
    assert max(rhat) < 1.01, rhat
    count = int(np.concatenate(covered).sum())
    assert scipy.stats.binom.cdf(17, 24, PROB) < 1e-3
    assert count >= 18, count


@pytest.mark.slow
def test_calibrated_on_ecoli_core():
    """E. coli core with the bundled kcat table: directions from a uniform flux draw, proteomics
    of the 93 subunits in use (sd 0.2 of ln), measured glucose uptake; 24-d polytope, 64 kcats.
    Effective independent quantities 24 + 64 = 88: ``P(Binomial(88, 0.94) <= 74) ≈ 7e-4``,
    so at least 75 / 88 = 0.85 of the 159 entries (95 fluxes, 64 kcats) must be covered."""
    from bayesflux import datasets

    net = datasets.load("textbook")
    table = ecoli_core_enzyme_table()
    directions = _directions(net, 1000)
    sim = simulate_enzyme_data(
        net, table=table, directions=directions, measured_sd={"EX_glc__D_e": 0.5}, seed=0
    )
    post = enzyme_posterior(
        net, sim.proteomics, table=table, directions=directions, measured=sim.measured
    )
    assert len(post.reactions) == 64 and post.polytope.dim == 24 and not post.sign_free
    start = time.perf_counter()
    tree = post.sample(num_draws=4000, num_warmup=2000, num_chains=4, seed=0)
    seconds = time.perf_counter() - start
    rate = _covered(tree, sim.truth).mean()
    print(f"E. coli core: {seconds:.0f} s, max R-hat {tree.attrs['max_rhat']:.4f}, {rate:.3f}")
    assert tree.attrs["max_rhat"] < 1.01
    assert scipy.stats.binom.cdf(74, 88, PROB) < 1e-3
    assert rate >= 0.85, rate
