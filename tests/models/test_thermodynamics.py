"""The second-law term: feasible-chord hit-and-run on (v, ln c) against exact rejection sampling."""

from __future__ import annotations

import arviz_stats
import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.models import FluxPosterior
from bayesflux.models.thermodynamics import Thermodynamics, sample_thermodynamic
from bayesflux.sampling import sample_fluxes
from bayesflux.thermo.polytope_b import check_sign_pattern, sign_pattern

Z_BOUND = 4.0  # |z| > 4 has probability 6e-5 per comparison under the CLT


def _rejection(thermo, n_flux: int = 20000):
    """Exact reference: uniform fluxes (hit-and-run) x uniform ln c, kept where feasible."""
    net = thermo.network
    tree = sample_fluxes(net, num_chains=4, num_draws=n_flux // 4, seed=5)
    u = tree["posterior"]["flux"].values
    ess = np.array([arviz_stats.ess(u[..., j], method="mean") for j in range(net.n_reactions)])
    u = u.reshape(-1, net.n_reactions)
    lnc = np.random.default_rng(0).uniform(thermo.lnc_lb, thermo.lnc_ub, size=(len(u), 3))
    drg = thermo.drg0 + lnc @ thermo.drg_matrix.T
    vk = u[:, thermo.index]
    ok = ~np.any((np.abs(vk) > 1e-9) & (np.sign(vk) * drg > -thermo.margin), axis=1)
    return u[ok], lnc[ok], ess * ok.mean()


@pytest.mark.slow
def test_feasible_chord_sampler_matches_rejection(triangle_thermo):
    """Both sign patterns of R2 are visited, every draw obeys the second law with its own ln c,
    and flux and ln c means agree with rejection sampling within Z_BOUND combined MCSE."""
    thermo = triangle_thermo
    term = Thermodynamics(thermo)
    post = FluxPosterior(thermo.network, [term])
    tree = sample_thermodynamic(post, term, num_chains=4, num_draws=2000, seed=1)
    flux = tree["posterior"]["flux"].values
    lnc = np.stack([tree["posterior"][nm].values for nm in term.lnc_names], axis=-1)
    v = flux.reshape(-1, 6)
    drg = thermo.drg0 + lnc.reshape(-1, 3) @ thermo.drg_matrix.T
    vk = v[:, thermo.index]
    assert np.all((np.abs(vk) <= 1e-9) | (np.sign(vk) * drg <= -thermo.margin + 1e-9))
    patterns = np.unique(sign_pattern(v, thermo), axis=0)
    assert len(patterns) == 2 and all(check_sign_pattern(thermo, s) for s in patterns)
    ref_v, ref_lnc, ref_ess = _rejection(thermo)
    ours = np.concatenate([flux, lnc], axis=-1)
    ess = np.array([arviz_stats.ess(ours[..., j], method="mean") for j in range(9)])
    mcse = ours.reshape(-1, 9).std(0) / np.sqrt(ess)
    ref = np.concatenate([ref_v, ref_lnc], axis=1)
    ref_ess_all = np.concatenate([ref_ess, np.full(3, len(ref_lnc))])
    ref_mcse = ref.std(0) / np.sqrt(ref_ess_all)
    z = (ours.reshape(-1, 9).mean(0) - ref.mean(0)) / np.hypot(mcse, ref_mcse)
    assert np.all(np.abs(z) < Z_BOUND), z


def test_metabolome_pulls_ln_c(triangle_thermo):
    """A precise measurement of B (sd 0.05 in ln c at the box centre) sets ln c_B's posterior."""
    thermo = triangle_thermo
    target = float(np.log(1e-2))
    term = Thermodynamics(thermo, metabolome={"B": (1e-2, 0.05)})
    post = FluxPosterior(thermo.network, [term])
    tree = sample_thermodynamic(post, term, num_chains=2, num_draws=300, seed=2)
    lnc_b = tree["posterior"][term.lnc_names[1]].values
    assert abs(lnc_b.mean() - target) < 0.05
    assert float(tree["observed_data"]["thermo_metabolome"].sel(measured_metabolite="B")) == target
    with pytest.raises(ConfigError, match="unknown metabolite"):
        Thermodynamics(thermo, metabolome={"Z": (1.0, 0.1)})


def test_second_law_and_metabolome_blocks(triangle_thermo):
    """The blocks as NumPyro sites: the second-law factor is 0 at a feasible (v, ln c) of the
    exact reference and -inf where a flux runs up its ΔrG; the metabolome's pointwise log
    density is scipy's normal log-pdf of ln ĉ; bad entries are refused by name."""
    import jax.numpy as jnp
    import numpyro
    import scipy.stats

    from bayesflux.models import blocks

    thermo = triangle_thermo
    net = thermo.network
    ref_v, ref_lnc, _ = _rejection(thermo, n_flux=400)
    v, lnc = jnp.asarray(ref_v[0]), jnp.asarray(ref_lnc[0])
    measured = {net.metabolites[0]: (1e-3, 0.2)}

    def model(v, lnc):
        blocks.second_law(v, lnc, thermo)
        blocks.metabolome(lnc, measured, metabolites=net.metabolites)

    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(v, lnc)
    assert float(trace["second_law"]["fn"].log_prob(0.0)) == 0.0
    site = trace["metabolome"]
    expected = scipy.stats.norm(ref_lnc[0][0], 0.2).logpdf(np.log(1e-3))
    np.testing.assert_allclose(site["fn"].log_prob(site["value"]), [expected])
    drg = thermo.drg0 + ref_lnc[0] @ thermo.drg_matrix.T
    j = int(np.argmax(np.abs(drg)))
    uphill = v.at[thermo.index[j]].set(float(np.sign(drg[j])) * 1.0)  # runs up its ΔrG
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(uphill, lnc)
    assert float(trace["second_law"]["fn"].log_prob(0.0)) == -np.inf
    with pytest.raises(ConfigError, match="unknown metabolite"):
        blocks.metabolome(lnc, {"nope": (1.0, 0.1)}, metabolites=net.metabolites)
    with pytest.raises(ConfigError, match="concentration > 0"):
        blocks.metabolome(lnc, {net.metabolites[0]: (0.0, 0.1)}, metabolites=net.metabolites)


def test_feasible_chord_needs_one_affine_second_law(triangle_thermo):
    """FeasibleChord refuses a model without a second-law site, and one whose ln c is not affine
    in the latent coordinates."""
    import jax.numpy as jnp

    from bayesflux.infer import FeasibleChord
    from bayesflux.infer import sample as infer_sample
    from bayesflux.models import blocks
    from bayesflux.sampling import polytope

    thermo = triangle_thermo
    poly = polytope(thermo.network)

    def no_law():
        blocks.flux_polytope("v", poly)

    def curved():
        v = blocks.flux_polytope("v", poly)
        blocks.second_law(v, jnp.full(3, jnp.tanh(v[0])), thermo)

    for model, match in ((no_law, "exactly one second_law"), (curved, "affine")):
        with pytest.raises(ConfigError, match=match):
            infer_sample(model, kernel=FeasibleChord(model), num_draws=5, num_chains=1)
