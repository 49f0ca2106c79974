"""sample_fluxes: ArviZ DataTree output, checkpoint/resume, agreement with cobra's OptGP."""

from __future__ import annotations

import shutil

import arviz as az
import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.sampling import sample as sample_module
from bayesflux.sampling import sample_fluxes

pytestmark = pytest.mark.filterwarnings("ignore:Found chain dimension")


def test_datatree_layout_and_arviz(small, arviz_reads):
    tree = sample_fluxes(small, num_chains=3, num_draws=120, seed=0, block_size=50)
    arviz_reads(tree)  # summary, R-hat, ESS, HDI and forest plot of the tree as returned
    flux = tree.posterior["flux"]
    assert flux.dims == ("chain", "draw", "reaction")
    assert flux.shape == (3, 120, small.n_reactions)
    assert list(flux.reaction.values) == list(small.reactions)
    assert set(tree.sample_stats.data_vars) == {"acceptance_rate", "chord_length"}
    assert tree.attrs["kernel"] == "coordinate" and tree.attrs["rounding"] == "ep"
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


def test_checkpoint_resumes_without_losing_draws(small, tmp_path, monkeypatch):
    opts = dict(num_chains=3, num_draws=250, num_warmup=50, block_size=50, seed=4)
    full = sample_fluxes(small, **opts).posterior["flux"].values

    # "interrupt" after 3 written blocks (1 warm-up + 2 kept): the next write raises
    written = []
    real_write = sample_module.write_block

    def write_then_die(directory, index, arrays):
        if len(written) == 3:
            raise KeyboardInterrupt
        real_write(directory, index, arrays)
        written.append(index)

    monkeypatch.setattr(sample_module, "write_block", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        sample_fluxes(small, checkpoint=tmp_path / "ck", **opts)
    assert sorted(p.name for p in (tmp_path / "ck").glob("block_*.npz")) == [
        "block_000000.npz",
        "block_000001.npz",
        "block_000002.npz",
    ]
    monkeypatch.setattr(sample_module, "write_block", real_write)

    resumed = sample_fluxes(small, checkpoint=tmp_path / "ck", **opts).posterior["flux"].values
    np.testing.assert_array_equal(resumed, full)
    # a finished checkpoint is read back without sampling again
    again = sample_fluxes(small, checkpoint=tmp_path / "ck", **opts).posterior["flux"].values
    np.testing.assert_array_equal(again, full)
    # a checkpoint cut after the first kept block also resumes exactly
    cut = tmp_path / "cut"
    cut.mkdir()
    for name in ("meta.json", "block_000000.npz", "block_000001.npz"):
        shutil.copy(tmp_path / "ck" / name, cut / name)
    np.testing.assert_array_equal(
        sample_fluxes(small, checkpoint=cut, **opts).posterior["flux"].values, full
    )
    with pytest.raises(ConfigError, match="different run"):
        sample_fluxes(small, checkpoint=tmp_path / "ck", **{**opts, "seed": 5})


def test_billiard_options(small, tmp_path, arviz_reads):
    """The billiard walk: uniform target only, positive path length; checkpointed like HMC;
    HMC's ``sample_stats`` (ArviZ's names), no divergence on a uniform target."""
    with pytest.raises(ConfigError, match="uniform distribution"):
        sample_fluxes(small, kernel="billiard", step_size=0.5)
    with pytest.raises(ConfigError, match="trajectory_length"):
        sample_fluxes(small, kernel="billiard", trajectory_length=0.0)
    opts = dict(kernel="billiard", num_chains=2, num_draws=200, num_warmup=20, seed=3)
    tree = sample_fluxes(small, checkpoint=tmp_path / "ck", **opts)
    assert tree.attrs["method"] == "billiard walk" and tree["posterior"].sizes["draw"] == 200
    stats = tree["sample_stats"]
    assert {"n_steps", "diverging", "step_size", "acceptance_rate"} <= set(stats.data_vars)
    assert not stats["diverging"].any() and stats.sizes["draw"] == 200
    arviz_reads(tree)
    np.testing.assert_array_equal(
        sample_fluxes(small, **opts)["posterior"]["flux"].values, tree["posterior"]["flux"].values
    )


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


def test_checkpoint_keeps_the_adapted_steps(small, tmp_path, monkeypatch):
    """A run with step adaptation, interrupted during warm-up or after it, resumes to the very
    draws and frozen steps of an uninterrupted run (the adaptation state is in every block)."""
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
    assert full.attrs["step_size_min"] != full.attrs["step_size_max"]  # adapted per axis
    real_write = sample_module.write_block
    for stop in (1, 3):  # inside warm-up (block 1 of 2), and after it
        written = []

        def write_then_die(directory, index, arrays, stop=stop, written=written):
            if len(written) == stop:
                raise KeyboardInterrupt
            real_write(directory, index, arrays)
            written.append(index)

        monkeypatch.setattr(sample_module, "write_block", write_then_die)
        folder = tmp_path / f"ck{stop}"
        with pytest.raises(KeyboardInterrupt):
            sample_fluxes(small, checkpoint=folder, **opts)
        monkeypatch.setattr(sample_module, "write_block", real_write)
        resumed = sample_fluxes(small, checkpoint=folder, **opts)
        np.testing.assert_array_equal(
            resumed.posterior["flux"].values, full.posterior["flux"].values
        )
        assert resumed.attrs["step_size_median"] == full.attrs["step_size_median"]
    with pytest.raises(ConfigError, match="different run"):
        sample_fluxes(small, checkpoint=tmp_path / "ck1", **{**opts, "step_size": 0.25})


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


def test_block_draws_sweep_every_axis_and_depend_on_seed_and_block_only():
    """Coordinate axes come in permutations of the d axes (d moves update every axis once), cut
    to the moves per draw; the numbers of a block are a function of (seed, block) alone."""
    d = 5
    axes, lam, log_u = sample_module._block_draws(3, 7, (2, 4, 12), d, "coordinate", False, True)
    assert axes.shape == (2, 4, 12) and axes.dtype == np.int32
    for start in (0, 5):  # two full sweeps per draw, then 2 moves of a third
        np.testing.assert_array_equal(
            np.sort(axes[..., start : start + d], axis=-1), np.broadcast_to(np.arange(d), (2, 4, d))
        )
    assert np.all((lam >= 0) & (lam < 1)) and np.all(log_u <= 0)
    again = sample_module._block_draws(3, 7, (2, 4, 12), d, "coordinate", False, True)
    np.testing.assert_array_equal(again[0], axes)
    other = sample_module._block_draws(3, 8, (2, 4, 12), d, "coordinate", False, True)
    assert not np.array_equal(other[1], lam)
    keys, gauss, none = sample_module._block_draws(0, 0, (2, 4, 12), d, "random", True, False)
    assert keys.shape == (2, 4, 2) and gauss.shape == (2, 4, 12) and none is None


def test_one_compilation_serves_warmup_and_kept_blocks(small, caplog):
    """Warm-up and kept blocks (uniform chord; adapted Gaussian steps) reuse one compiled block:
    sampling again with other seeds and draws of the same block shape compiles nothing new."""
    import jax
    import jax.numpy as jnp

    def logdensity(v):
        return -0.5 * jnp.sum(v**2)

    def compiles():
        return sum("Compiling jit(_run_block)" in r.getMessage() for r in caplog.records)

    sample_module._run_block.clear_cache()
    opts = dict(num_chains=2, num_draws=100, num_warmup=100, block_size=50)
    with jax.log_compiles(True), caplog.at_level("WARNING"):
        sample_fluxes(small, seed=1, **opts)
        assert compiles() == 1
        sample_fluxes(small, seed=2, **{**opts, "num_draws": 150})
        assert compiles() == 1
        sample_fluxes(small, seed=1, logdensity_fn=logdensity, step_size=0.5, **opts)
        assert compiles() == 2
