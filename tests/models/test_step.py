"""The ``posterior`` pipeline step: config tables -> terms -> an ArviZ DataTree in results.nc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.pipeline import run_config


def test_posterior_step_with_measured_flux(tmp_path, arviz_reads):
    """On the small network, R1 measured at 2 +- 0.5: the posterior mean of R1 is pulled to the
    measurement (the uniform prior's mean of R1 is about 3.3), every draw is mass balanced. The
    step's group (``flux_posterior`` by default), in memory and read back from the output, is a
    DataTree that ArviZ reads as it is."""
    from bayesflux.results import read_results

    config = tmp_path / "post.toml"
    config.write_text(
        '[model]\nsource = "small"\n[[step]]\nkind = "posterior"\n'
        "fluxes = { R1 = [2.0, 0.5] }\nnum_chains = 2\nnum_draws = 300\nseed = 1\n"
        "progress = false\n"
    )
    lines: list[str] = []
    tree = run_config(config, echo=lines.append)
    node = tree["flux_posterior"]
    arviz_reads(node)
    arviz_reads(read_results(tmp_path / "results.nc")["flux_posterior"])
    flux = node["posterior"]["flux"]
    assert flux.dims == ("chain", "draw", "reaction")
    assert abs(float(flux.sel(reaction="R1").mean()) - 2.0) < 0.5
    assert "fluxes" in node["log_likelihood"]
    assert any("R-hat" in ln for ln in lines)
    again: list[str] = []
    run_config(config, echo=again.append)
    assert any("[flux_posterior] reused" in ln for ln in again)


def test_posterior_step_bad_options(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[model]\nsource = "small"\n[[step]]\nkind = "posterior"\n'
        "fluxes = { R1 = [2.0] }\nprogress = false\n"
    )
    with pytest.raises(ConfigError, match=r"must be \[value, sd\]"):
        run_config(config, echo=lambda _: None)
    config.write_text(
        '[model]\nsource = "small"\n[[step]]\nkind = "posterior"\n'
        'expression = "nope.tsv"\nprogress = false\n'
    )
    with pytest.raises(ConfigError, match="nope.tsv not found"):
        run_config(config, echo=lambda _: None)
    config.write_text(
        '[model]\nsource = "small"\n[[step]]\nkind = "posterior"\n'
        'fluxes = { R1 = [2.0, 0.5] }\nsampler = "nuts"\nprogress = false\n'
    )
    with pytest.raises(ConfigError, match="sampler must be 'hmc', 'metropolis' or 'slice'"):
        run_config(config, echo=lambda _: None)


@pytest.mark.slow
def test_posterior_step_parsimony_starts_at_the_expression_mode(tmp_path):
    """``prior = "parsimony"`` with FALCON's likelihood: the posterior is built around its mode
    (k's range from the data, in the tree's provenance), chains start there, one pooled tuning
    round learns the whitening; the options are checked before any work."""
    genes = Path(__file__).parents[2] / "examples" / "ecoli_core_genes.tsv"
    head = '[model]\nsource = "textbook"\n[[step]]\nkind = "posterior"\nprogress = false\n'
    config = tmp_path / "pars.toml"
    config.write_text(
        head + f'expression = "{genes}"\nprior = "parsimony"\nnum_chains = 2\n'
        "num_draws = 200\nseed = 2\ntune_rounds = 1\ntune_draws = 50\n"
    )
    node = run_config(config, echo=lambda _: None)["flux_posterior"]
    assert node.attrs["flux_prior"].startswith("Parsimony(scale=")
    flux = node["posterior"]["flux"]
    atpm = flux.sel(reaction="ATPM").values
    assert atpm.min() >= 8.39 - 1e-6  # the forced maintenance flux bounds the scale
    for option, message in (
        ('prior = "loopless"', "prior must be 'uniform' or 'parsimony'"),
        ('start = "mode"', "start = 'mode' needs the laplace expression model"),
        ("scale_bounds = [1.0]", r"scale_bounds must be \[lower, upper\]"),
        ("tune_rounds = -1", "tune_rounds = -1 must be >= 0"),
        ('sampler = "slice"\ntune_rounds = 1', "tune_rounds needs sampler = 'hmc'"),
    ):
        config.write_text(head + "fluxes = { PGI = [2.0, 0.5] }\n" + option + "\n")
        with pytest.raises(ConfigError, match=message):
            run_config(config, echo=lambda _: None)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "options", "n_blocks", "files"),
    [
        (
            "metropolis",
            "num_draws = 4000\nnum_warmup = 0\nthinning = 400\nblock_size = 100\n",
            40,
            "mcmc_*.npz",
        ),
        # HMC (bayesflux.infer.sample): 10000 kept draws in 100 blocks of 100, the warm-up in
        # the first
        ("hmc", "num_draws = 10000\nnum_warmup = 300\n", 100, "mcmc_*.npz"),
    ],
)
def test_killed_run_resumes_from_its_checkpoint(tmp_path, sampler, options, n_blocks, files):
    """``bayesflux run`` killed (SIGKILL) after a few checkpoint blocks: the rerun keeps the blocks
    on disk (not recomputed: same bytes) and its draws equal those of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from bayesflux.results import read_results

    def config(name: str, checkpoint: str | None) -> Path:
        path = tmp_path / f"{name}.toml"
        ck = f'checkpoint = "{checkpoint}"\n' if checkpoint else ""
        path.write_text(
            f'[model]\nsource = "small"\n[output]\npath = "{name}.nc"\n[[step]]\n'
            'kind = "posterior"\nfluxes = { R1 = [2.0, 0.5] }\nnum_chains = 2\n'
            f'{options}seed = 3\nsampler = "{sampler}"\nprogress = false\n{ck}'
        )
        return path

    ck = tmp_path / "ck"
    cmd = [sys.executable, "-m", "bayesflux.cli", "run"]
    proc = subprocess.Popen([*cmd, str(config("killed", str(ck)))], cwd=tmp_path)
    deadline = time.monotonic() + 240
    while len(list(ck.glob(files))) < 3 and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = sorted(ck.glob(files))
    assert proc.returncode == -signal.SIGKILL and 3 <= len(kept) < n_blocks, len(kept)
    before = {p.name: p.read_bytes() for p in kept}
    assert not (tmp_path / "killed.nc").exists()
    done = subprocess.run([*cmd, str(config("killed", str(ck)))], cwd=tmp_path, timeout=300)
    assert done.returncode == 0
    assert all((ck / name).read_bytes() == data for name, data in before.items())
    fresh = subprocess.run([*cmd, str(config("fresh", None))], cwd=tmp_path, timeout=300)
    assert fresh.returncode == 0
    a = read_results(tmp_path / "killed.nc")["flux_posterior"]["posterior"]["flux"].values
    b = read_results(tmp_path / "fresh.nc")["flux_posterior"]["posterior"]["flux"].values
    np.testing.assert_array_equal(a, b)


def test_report_of_a_sampled_step(tmp_path):
    """``[output] report`` writes the forest plot, rank plot and summary of the posterior step."""
    config = tmp_path / "rep.toml"
    config.write_text(
        '[model]\nsource = "small"\n[output]\npath = "out.nc"\nreport = "report"\n'
        '[[step]]\nkind = "posterior"\nfluxes = { R1 = [2.0, 0.5] }\nnum_chains = 2\n'
        "num_draws = 100\nseed = 1\nprogress = false\n"
    )
    lines: list[str] = []
    run_config(config, echo=lines.append)
    folder = tmp_path / "report" / "flux_posterior"
    assert {p.name for p in folder.iterdir()} >= {"flux_forest.png", "rank.png", "summary.csv"}
    assert any("report:" in ln for ln in lines)


@pytest.mark.slow
def test_posterior_step_with_the_second_law(tmp_path):
    """``thermo = "ecoli_core"`` adds the second law on (v, ln c): every draw of E. coli core keeps
    its sign pattern thermodynamically feasible (fresh LP) and the SUCDi/FRD7 loop is gone."""
    from bayesflux.thermo import ecoli_core
    from bayesflux.thermo.polytope_b import check_sign_pattern, sign_pattern

    config = tmp_path / "thermo.toml"
    config.write_text(
        '[model]\nsource = "textbook"\n[[step]]\nkind = "posterior"\nthermo = "ecoli_core"\n'
        "fluxes = { EX_glc__D_e = [-9.9, 0.6] }\nmetabolome = { atp_c = [0.005, 0.2] }\n"
        "num_chains = 2\nnum_draws = 20\nseed = 1\nprogress = false\n"
    )
    tree = run_config(config, echo=lambda _: None)["flux_posterior"]
    flux = tree["posterior"]["flux"]
    model = ecoli_core()
    v = flux.values.reshape(-1, flux.sizes["reaction"])
    patterns = np.unique(sign_pattern(v, model), axis=0)
    assert all(check_sign_pattern(model, s) for s in patterns)
    np.testing.assert_allclose(flux.sel(reaction="FRD7").values, 0.0, atol=1e-9)
    assert "thermo_lnc[atp_c]" in tree["posterior"]
    assert float(tree["observed_data"]["thermo_metabolome"].sel(measured_metabolite="atp_c")) == (
        pytest.approx(np.log(0.005))
    )
