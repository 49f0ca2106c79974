"""sample_fluxes: ArviZ DataTree output, checkpoint/resume, agreement with cobra's OptGP."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.sampling import sample_fluxes

pytestmark = pytest.mark.filterwarnings("ignore:Found chain dimension")


def test_datatree_layout_and_arviz(small, arviz_reads):
    tree = sample_fluxes(small, num_chains=3, num_draws=120, seed=0, block_size=50)
    arviz_reads(tree)  # summary, R-hat, ESS, HDI and forest plot of the tree as returned
    flux = tree.posterior["flux"]
    assert flux.dims == ("chain", "draw", "reaction")
    assert flux.shape == (3, 120, small.n_reactions)
    assert list(flux.reaction.values) == list(small.reactions)
    assert {"acceptance_rate", "chord_length"} <= set(tree.sample_stats.data_vars)
    assert tree.attrs["kernel"] == "billiard" and tree.attrs["rounding"] == "ep"  # the default
    summary = az.summary(tree)
    assert len(summary) == small.n_reactions
    rhat = az.rhat(tree)["flux"].values
    assert np.all(rhat[np.isfinite(rhat)] < 1.1)
    ess = az.ess(tree)["flux"].values
    assert np.nanmin(ess) > 50
    # the same seed gives the same draws; another seed others
    again = sample_fluxes(small, num_chains=3, num_draws=120, seed=0, block_size=50)
    np.testing.assert_array_equal(again.posterior["flux"].values, flux.values)
    other = sample_fluxes(small, num_chains=3, num_draws=120, seed=1, block_size=50)
    assert not np.allclose(other.posterior["flux"].values, flux.values)


def test_checkpoint_resumes_without_losing_draws(small, tmp_path):
    """Blocks lost after a run (as after a kill) are redrawn from the stored state: the resumed
    draws equal an uninterrupted run's; a finished checkpoint is read back; another seed in the
    same folder is refused."""
    opts = dict(num_chains=3, num_draws=250, num_warmup=50, block_size=50, seed=4)
    full = sample_fluxes(small, **opts).posterior["flux"].values
    ck = tmp_path / "ck"
    first = sample_fluxes(small, checkpoint=ck, **opts).posterior["flux"].values
    np.testing.assert_array_equal(first, full)
    assert sorted(p.name for p in ck.glob("mcmc_*.npz")) == [f"mcmc_{i:06d}.npz" for i in range(5)]
    again = sample_fluxes(small, checkpoint=ck, **opts).posterior["flux"].values
    np.testing.assert_array_equal(again, full)
    for i in (2, 3, 4):
        (ck / f"mcmc_{i:06d}.npz").unlink()
    resumed = sample_fluxes(small, checkpoint=ck, **opts).posterior["flux"].values
    np.testing.assert_array_equal(resumed, full)
    with pytest.raises(ConfigError, match="different run"):
        sample_fluxes(small, checkpoint=ck, **{**opts, "seed": 5})


def test_billiard_options(small, tmp_path, arviz_reads):
    """The billiard walk: no step size, positive path length; checkpointed; always accepted on
    the uniform target; ArviZ reads the tree."""
    with pytest.raises(ConfigError, match="step_size"):
        sample_fluxes(small, kernel="billiard", step_size=0.5)
    with pytest.raises(ConfigError, match="trajectory_length"):
        sample_fluxes(small, kernel="billiard", trajectory_length=0.0)
    opts = dict(kernel="billiard", num_chains=2, num_draws=200, num_warmup=20, seed=3)
    tree = sample_fluxes(small, checkpoint=tmp_path / "ck", **opts)
    assert tree.attrs["method"] == "billiard walk" and tree["posterior"].sizes["draw"] == 200
    stats = tree["sample_stats"]
    assert {"acceptance_rate", "chord_length"} <= set(stats.data_vars)
    np.testing.assert_allclose(stats["acceptance_rate"].values, 1.0)
    arviz_reads(tree)
    np.testing.assert_array_equal(
        sample_fluxes(small, **opts)["posterior"]["flux"].values, tree["posterior"]["flux"].values
    )


def test_defaults_converge_on_textbook(textbook):
    """The must-have of uniform sampling: ``sample_fluxes(net)`` with its defaults (the billiard
    walk for a uniform target) gives max R-hat < 1.01 on E. coli core with 4 x 2000 draws. At
    ESS near the draws R-hat lies within about 1 + 1/sqrt(ESS per chain) ~ 1.002 of 1; the
    coordinate kernel reaches about 1.03 here, so the test tells them apart."""
    tree = sample_fluxes(textbook, num_draws=2000, seed=0)
    assert tree.attrs["kernel"] == "billiard" and tree.posterior.sizes["chain"] == 4
    assert tree.attrs["max_rhat"] < 1.01, tree.attrs["max_rhat"]
    assert tree.attrs["min_ess_bulk"] > 1000


def test_bad_options(small):
    with pytest.raises(ConfigError, match="kernel"):
        sample_fluxes(small, kernel="gibbs")
    with pytest.raises(ConfigError, match="num_chains"):
        sample_fluxes(small, num_chains=0)


@pytest.fixture(scope="module")
def optgp_textbook(textbook_cobra, textbook):
    from cobra.sampling import sample

    ref = sample(textbook_cobra.copy(), 400, method="optgp", thinning=50, processes=1, seed=42)
    return ref[list(textbook.reactions)].to_numpy()


@pytest.mark.parametrize("kernel", ["coordinate", "billiard"])
def test_textbook_means_agree_with_cobra_optgp(optgp_textbook, textbook, kernel):
    """E. coli core: our means and OptGP's agree within their joint Monte Carlo error.

    z = |m_ours - m_optgp| / sqrt(mcse_ours^2 + mcse_optgp^2) with MCSEs from arviz (OptGP's draws
    as one chain). Under agreement z is about normal; z < 4.5 for all 95 reactions fails with
    probability about 6e-4 (Bonferroni) per kernel. The seeds are fixed.
    """
    ref = optgp_textbook
    tree = sample_fluxes(textbook, num_chains=4, num_draws=500, kernel=kernel, seed=8)
    ours = tree.posterior["flux"].values
    m_ours = ours.mean(axis=(0, 1))
    se_ours = az.mcse(ours, method="mean")
    se_ref = az.mcse(ref[None], method="mean")
    m_ref = ref.mean(axis=0)
    spread = np.sqrt(np.nan_to_num(se_ours) ** 2 + np.nan_to_num(se_ref) ** 2)
    varying = spread > 1e-9
    z = np.abs(m_ours - m_ref)[varying] / spread[varying]
    assert varying.sum() > 20
    assert z.max() < 4.5, np.asarray(textbook.reactions)[varying][np.argmax(z)]
    np.testing.assert_allclose(m_ours[~varying], m_ref[~varying], atol=1e-6)


def test_checkpoint_keeps_the_adapted_steps(small, tmp_path):
    """A run with step adaptation, cut inside warm-up (the first block holds it) or after it,
    resumes to the very draws and frozen steps of an uninterrupted run (the adaptation state is
    part of the stored kernel state)."""
    import jax.numpy as jnp

    def logdensity(v):
        return -0.5 * jnp.sum(v**2)

    opts = dict(
        num_chains=2,
        num_draws=100,
        num_warmup=100,
        block_size=50,
        seed=3,
        logdensity_fn=logdensity,
        step_size=0.5,
    )
    full = sample_fluxes(small, **opts)
    steps = full.sample_stats["step_size"].values
    assert np.all(steps == steps[:, :1]) and not np.allclose(steps, 0.5)  # adapted, then frozen
    ck = tmp_path / "ck"
    sample_fluxes(small, checkpoint=ck, **opts)
    for keep in (0, 1):
        for i in range(keep, 2):
            (ck / f"mcmc_{i:06d}.npz").unlink(missing_ok=True)
        resumed = sample_fluxes(small, checkpoint=ck, **opts)
        np.testing.assert_array_equal(
            resumed.posterior["flux"].values, full.posterior["flux"].values
        )
        np.testing.assert_array_equal(resumed.sample_stats["step_size"].values, steps)
    with pytest.raises(ConfigError, match="different run"):
        sample_fluxes(small, checkpoint=ck, **{**opts, "step_size": 0.25})


def test_flux_posterior_passes_gaussian_steps(make_cube):
    """FluxPosterior.sample takes step_size and a Rounding; a precise flux measurement
    (IN0 = 0.4 +- 0.01) is recovered by the mean (MCSE |z| < 4, two-sided 6e-5) with a kept
    acceptance near the target (0.2-0.6), where the uniform chord accepts about 2.5%."""
    from bayesflux.models import FluxPosterior
    from bayesflux.models.terms import FluxObservations

    net = make_cube(2)
    post = FluxPosterior(net, [FluxObservations(net, {"IN0": (0.4, 0.01)})])
    tree = post.sample(
        method="metropolis", num_chains=4, num_draws=300, thinning=4, step_size=0.1, seed=1
    )
    x = tree["posterior"]["flux"].sel(reaction="IN0").values
    se = float(az.mcse(x, method="mean"))
    assert abs(x.mean() - 0.4) / se < 4.0
    assert 0.2 < float(tree["sample_stats"]["acceptance_rate"].mean()) < 0.6
    assert "fluxes" in tree["log_likelihood"]


def test_coordinate_sweeps_update_every_axis():
    """Coordinate moves come in random permutations of the axes: ``d`` moves from the centre of
    a box change every coordinate (a random scan would leave about ``e^-1`` of 20 untouched)."""
    import jax
    import jax.numpy as jnp

    from bayesflux.sampling import build_kernel, init

    d = 20
    A = jnp.vstack([jnp.eye(d), -jnp.eye(d)])
    b = jnp.ones(2 * d)
    kernel = jax.jit(build_kernel(A, b, direction="coordinate", thinning=d))
    for seed in range(3):
        state, _ = kernel(jax.random.key(seed), init(jnp.zeros(d), A, b))
        assert np.all(np.asarray(state.position) != 0.0)
