"""Samplers of the thermodynamically feasible flux space: exactness and agreement.

Target: the triangle network (conftest) whose loop R1 + R2 - R3 (either direction) is forbidden,
so the feasible set is the half of the flux polytope with R1 >= 0 and R3 >= 0. Reference: i.i.d.
uniform points by rejection from the box of (R1, R2, R3) (the exchange fluxes follow by mass
balance). Means are compared with a Monte Carlo standard error test, |Δ| < 4 SE (SE: ArviZ's
MCSE of the mean, from the ESS over chains; the chance that a correct sampler fails one
comparison is 6e-5; seeds are fixed).
"""

from __future__ import annotations

from functools import partial

import arviz as az
import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.infer.thermodynamic import swap_log_acceptance
from bayesflux.thermo.flux_force import exchange_lower_bound, least_conservative_bounds
from bayesflux.thermo.orthants import sample_orthants
from bayesflux.thermo.polytope_b import check_sign_pattern, sign_pattern, unique_patterns
from bayesflux.thermo.tempering import parallel_tempering

REACTIONS = ["R1", "R2", "R3"]


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(7)
    v = rng.uniform(-10, 10, size=(300_000, 3))
    r1, r2, r3 = v.T
    ok = (r1 >= 0) & (r3 >= 0)
    for x in (r1 + r3, r1 - r2, r2 + r3):
        ok &= (x >= 0) & (x <= 10)
    v = v[ok]
    return v.mean(axis=0), v.std(axis=0) / np.sqrt(len(v))


@pytest.fixture(scope="module")
def orthant_draws(triangle_thermo):
    return sample_orthants(triangle_thermo, num_draws=1000, num_warmup=100, num_chains=4, seed=3)


@pytest.fixture(scope="module")
def tempering_draws(triangle_thermo):
    return parallel_tempering(
        triangle_thermo,
        num_draws=500,
        num_warmup=200,
        num_chains=4,
        num_replicas=3,
        moves_per_swap=3,
        seed=4,
    )


def _mean_se(tree) -> tuple[np.ndarray, np.ndarray]:
    flux = tree["posterior"]["flux"].sel(reaction=REACTIONS).to_dataset(name="flux")
    mean = flux["flux"].mean(("chain", "draw")).values
    return mean, az.mcse(flux)["flux"].values


@pytest.mark.slow
@pytest.mark.parametrize("which", ["orthant_draws", "tempering_draws"])
def test_every_draw_is_feasible(which, triangle_thermo, request):
    """A fresh, uncached LP (scipy linprog on ln c) accepts every draw's sign pattern."""
    tree = request.getfixturevalue(which)
    v = tree["posterior"]["flux"].values.reshape(-1, triangle_thermo.network.n_reactions)
    net = triangle_thermo.network
    np.testing.assert_allclose(net.S @ v.T, 0.0, atol=1e-9)
    assert np.all(v >= net.lb - 1e-9) and np.all(v <= net.ub + 1e-9)
    patterns = np.unique(sign_pattern(v, triangle_thermo), axis=0)
    assert len(patterns) >= 2  # both orthants (R2 forwards and backwards) are visited
    assert all(check_sign_pattern(triangle_thermo, s) for s in patterns)


@pytest.mark.parametrize("which", ["orthant_draws", "tempering_draws"])
def test_marginal_means_match_exact_reference(which, reference, request):
    mean, se = _mean_se(request.getfixturevalue(which))
    ref_mean, ref_se = reference
    assert np.all(np.abs(mean - ref_mean) < 4 * np.sqrt(se**2 + ref_se**2)), (mean, ref_mean, se)


@pytest.mark.parametrize("which", ["orthant_draws", "tempering_draws"])
def test_arviz_reads_the_datatree_as_returned(which, arviz_reads, request):
    arviz_reads(request.getfixturevalue(which))


def test_the_two_samplers_agree(orthant_draws, tempering_draws):
    m1, s1 = _mean_se(orthant_draws)
    m2, s2 = _mean_se(tempering_draws)
    assert np.all(np.abs(m1 - m2) < 4 * np.sqrt(s1**2 + s2**2))


def test_tempering_chains_converge(tempering_draws):
    """Four independent ladders: one chain each, rank-normalised R-hat < 1.05 (Vehtari et al.
    2021) on every flux of the triangle."""
    flux = tempering_draws["posterior"]["flux"].sel(reaction=REACTIONS)
    assert flux.sizes["chain"] == 4
    assert np.all(az.rhat(flux.to_dataset(name="flux"))["flux"].values < 1.05)


def test_swap_acceptance_closed_form():
    """Eq. 13: log α = (E_lo - E_hi)(β_lo - β_hi); with the exact replica (β = ∞) α is 1 iff the
    hotter point is feasible."""
    got = swap_log_acceptance(np.array([1.0, 3.0]), np.array([3.0, 1.0]), 2.0, 0.5)
    np.testing.assert_allclose(got, [-3.0, 3.0])
    exact = swap_log_acceptance(np.zeros(2), np.array([0.0, 0.4]), np.inf, 0.5)
    np.testing.assert_array_equal(exact, [0.0, -np.inf])


def test_unique_patterns_match_numpy():
    rng = np.random.default_rng(0)
    for k in (3, 64, 130):  # one word, exactly two words, several words per bit plane
        signs = rng.integers(-1, 2, size=(400, k)).astype(np.int8)
        signs[200:] = signs[rng.integers(0, 200, size=200)]
        signs = np.asfortranarray(signs)
        unique, inverse = unique_patterns(signs)
        assert len(unique) == len(np.unique(signs, axis=0))
        np.testing.assert_array_equal(unique[inverse], signs)


def test_tempering_reports_ladder(tempering_draws):
    """Each ladder starts at T = 1, rises, is frozen after warm-up, and swaps at every pair."""
    stats = tempering_draws["sample_stats"]
    temps = stats["temperature"].values  # (chain, draw, replica)
    assert np.all(temps[..., 0] == 1.0) and np.all(np.diff(temps, axis=-1) > 0)
    np.testing.assert_array_equal(temps, np.broadcast_to(temps[:, :1], temps.shape))
    swaps = stats["swap_accept_prob"].mean(("chain", "draw")).values
    assert np.all((swaps > 0) & (swaps <= 1))


def test_flux_force_closed_form():
    """v+/v- = exp(-ΔrG/RT) = 2 gives v_net = v-, so v_xch = min(v+, v-) = v_net exactly."""
    rt = 2.5
    got = exchange_lower_bound(
        np.array([3.0, -3.0, 0.0]), np.array([-rt * np.log(2.0), rt * np.log(2.0), 5.0]), rt
    )
    np.testing.assert_allclose(np.asarray(got), [3.0, 3.0, 0.0])


def test_least_conservative_bound_uses_largest_drg(triangle_thermo):
    v = np.array([[5.0, 4.0, 1.0, 1.0, 3.0, 2.0]])  # R1+, R2+, R3+ (feasible)
    out = least_conservative_bounds(triangle_thermo, v)
    # largest |ΔrG1| over B: minimise ΔrG1 = -2 + RT ln(cB/cA) with cA = 0.1; R2 forwards needs
    # 0.5 + RT ln(cC/cB) <= -δ = -0.1, so cB >= cC e^{0.6/RT} >= 1e-3 e^{0.6/RT}:
    # min ΔrG1 = -2 + 0.6 - RT ln 100
    drg = 1.4 + triangle_thermo.rt * np.log(100.0)
    assert float(out.sel(reaction="R1")[0]) == pytest.approx(
        4.0 / np.expm1(drg / triangle_thermo.rt)
    )
    assert np.all(out.values >= 0)


def test_orthant_chains_move_on_ecoli_core():
    """Each chain starts inside an orthant piece (not at a MILP vertex, where every chord has
    length zero) and moves."""
    from bayesflux.thermo import ecoli_core

    tree = sample_orthants(
        ecoli_core(), num_draws=20, num_warmup=5, num_chains=2, bounds={"FRD7": (0, 0)}, seed=1
    )
    spread = tree["posterior"]["flux"].values.std(axis=1).max(axis=1)  # per chain
    assert np.all(spread > 1e-6), spread


@pytest.mark.slow
@pytest.mark.parametrize("which", ["orthants", "tempering"])
def test_interrupted_run_resumes_from_its_checkpoint(which, triangle_thermo, tmp_path):
    """After the last block files are removed (a run killed there), a rerun reads the blocks
    that remain, samples the rest and ends with the draws of an uninterrupted run."""
    if which == "orthants":
        run = partial(
            sample_orthants, num_draws=250, num_warmup=100, num_chains=2, seed=8, block_size=50
        )
    else:
        run = partial(
            parallel_tempering,
            num_draws=250,
            num_warmup=100,
            num_chains=2,
            num_replicas=3,
            moves_per_swap=2,
            seed=8,
            block_size=50,
        )
    whole = run(triangle_thermo)["posterior"]["flux"].values
    first = run(triangle_thermo, checkpoint=tmp_path)["posterior"]["flux"].values
    files = sorted(tmp_path.glob("mcmc_*.npz"))
    assert len(files) == 5  # five blocks of 50 draws
    for path in files[-2:]:
        path.unlink()
    resumed = run(triangle_thermo, checkpoint=tmp_path)["posterior"]["flux"].values
    np.testing.assert_array_equal(first, whole)
    np.testing.assert_array_equal(resumed, whole)
    with pytest.raises(ConfigError, match="different run"):
        run(triangle_thermo, checkpoint=tmp_path, seed=9)


def _triangle_model(triangle_thermo, measured=None):
    """Uniform on the thermodynamically feasible triangle fluxes, optionally with a measured
    flux; and each chain's feasible start (unconstrained)."""
    from bayesflux.models import blocks
    from bayesflux.thermo.space import FluxSpace

    space = FluxSpace.build(triangle_thermo)

    def model():
        v = blocks.flux_polytope("flux", space.poly)
        blocks.second_law_signs(v, space.thermo)
        if measured:
            blocks.measured_fluxes(v, measured, network=space.poly)

    starts = space.center + space.feasible_starts(4, seed=2) @ space.L.T
    return model, {"flux": starts}


def test_orthant_kernel_runs_under_numpyro_mcmc(triangle_thermo, reference):
    """OrthantHitAndRun takes the model like NUTS and runs under numpyro.infer.MCMC with chains
    vectorised: every draw feasible, marginal means as the exact reference (4 SE)."""
    import jax
    from numpyro.infer import MCMC

    from bayesflux.infer import OrthantHitAndRun, to_datatree

    model, starts = _triangle_model(triangle_thermo)
    mcmc = MCMC(
        OrthantHitAndRun(model, moves=3),
        num_warmup=200,
        num_samples=1000,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(3), init_params=starts)
    tree = to_datatree(mcmc)
    v = tree["posterior"]["flux"].values.reshape(-1, triangle_thermo.network.n_reactions)
    assert all(check_sign_pattern(triangle_thermo, s) for s in np.unique(
        sign_pattern(v, triangle_thermo), axis=0
    ))  # fmt: skip
    mean, se = _mean_se(tree)
    ref_mean, ref_se = reference
    assert np.all(np.abs(mean - ref_mean) < 4 * np.sqrt(se**2 + ref_se**2)), (mean, ref_mean)


def test_orthant_kernel_adds_a_likelihood_by_metropolis(triangle_thermo):
    """With a measured R2 ~ N(v_R2, 2²) the target is the feasible set weighted by the
    likelihood; reference: the i.i.d. uniform feasible points weighted by it (self-normalised
    importance sampling, its standard error by the delta method)."""
    from bayesflux.infer import OrthantHitAndRun
    from bayesflux.infer import sample as infer_sample

    rng = np.random.default_rng(11)
    v = rng.uniform(-10, 10, size=(400_000, 3))
    r1, r2, r3 = v.T
    ok = (r1 >= 0) & (r3 >= 0)
    for x in (r1 + r3, r1 - r2, r2 + r3):
        ok &= (x >= 0) & (x <= 10)
    v = v[ok]
    w = np.exp(-0.5 * ((v[:, 1] - 3.0) / 2.0) ** 2)
    w /= w.sum()
    ref = w @ v
    ref_se = np.sqrt(((w[:, None] * (v - ref)) ** 2).sum(axis=0))
    model, starts = _triangle_model(triangle_thermo, measured={"R2": (3.0, 2.0)})
    tree = infer_sample(
        model,
        kernel=OrthantHitAndRun(model, moves=3),
        init_params=starts,
        num_draws=1500,
        num_warmup=300,
        num_chains=4,
        seed=4,
    )
    mean, se = _mean_se(tree)
    assert np.all(np.abs(mean - ref) < 4 * np.sqrt(se**2 + ref_se**2)), (mean, ref)
    assert float(tree["sample_stats"]["acceptance_rate"].mean()) < 1.0  # Metropolis rejects


def test_second_law_signs_is_zero_density_off_the_feasible_set(triangle_thermo):
    """The factor is 0 (log) at fluxes whose sign pattern admits concentrations and -inf at
    fluxes whose pattern leaves B empty (decided afresh by ``check_sign_pattern``), so any kernel
    sees the right support."""
    import itertools

    from numpyro.infer.util import log_density

    from bayesflux.models import blocks

    thermo = triangle_thermo

    def model(v):
        blocks.second_law_signs(v, thermo)

    idx = [thermo.network.reactions.index(r) for r in REACTIONS]
    verdicts = set()
    for signs in itertools.product((-1.0, 1.0), repeat=3):
        v = np.zeros(thermo.network.n_reactions)
        v[idx] = np.array(signs) * [3.0, 1.0, 2.0]
        feasible = check_sign_pattern(thermo, sign_pattern(v[None], thermo)[0])
        got = float(log_density(model, (v,), {}, {})[0])
        assert got == (0.0 if feasible else -np.inf), (signs, feasible, got)
        verdicts.add(feasible)
    assert verdicts == {True, False}


def test_parallel_tempering_refuses_a_model_with_a_likelihood(triangle_thermo):
    from bayesflux.infer import ParallelTempering
    from bayesflux.infer import sample as infer_sample

    model, starts = _triangle_model(triangle_thermo, measured={"R2": (3.0, 2.0)})
    with pytest.raises(ConfigError, match="OrthantHitAndRun"):
        infer_sample(model, kernel=ParallelTempering(model), init_params=starts, num_draws=5)
