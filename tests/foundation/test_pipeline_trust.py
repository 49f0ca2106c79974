"""Trustworthy pipeline runs (issue 20): fingerprints over file contents, outputs shared by
configs, one validated config schema, paths relative to the config, sampling diagnostics."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import xarray as xr

import bayesflux.steps  # noqa: F401  (registers the step kinds)
from bayesflux.errors import ConfigError, SolverError
from bayesflux.pipeline import STEPS, load_config, run_config
from bayesflux.results import read_results, write_netcdf


def tiny_model(uptake: float) -> str:
    """A cobra JSON model ``EX_A: A <->`` (lower bound ``-uptake``), ``R1: A -> B``,
    ``BIOMASS: B ->`` (the objective, so its optimum is ``uptake``)."""

    def reaction(rid, mets, lb, **extra):
        return {"id": rid, "metabolites": mets, "lower_bound": lb, "upper_bound": 1000,
                "gene_reaction_rule": "", **extra}  # fmt: skip

    return json.dumps(
        {
            "id": "tiny",
            "compartments": {"c": "cytosol"},
            "metabolites": [{"id": m, "compartment": "c"} for m in "AB"],
            "reactions": [
                reaction("EX_A", {"A": -1}, -uptake),
                reaction("R1", {"A": -1, "B": 1}, 0),
                reaction("BIOMASS", {"B": -1}, 0, objective_coefficient=1),
            ],
            "genes": [],
        }
    )


def run(path, **kwargs) -> tuple[xr.DataTree, list[str]]:
    lines: list[str] = []
    return run_config(path, echo=lines.append, **kwargs), lines


# ------------------------------------------------------------------------------ fingerprints
def test_editing_the_model_file_recomputes_fba(tmp_path):
    """The glucose-bound edit of the issue: the step is recomputed and the summary says why."""
    (tmp_path / "tiny.json").write_text(tiny_model(10.0))
    config = tmp_path / "run.toml"
    config.write_text('[model]\nsource = "tiny.json"\n[[step]]\nkind = "fba"\n')
    tree, _ = run(config)
    assert tree["fba"].attrs["objective_value"] == pytest.approx(10.0)
    (tmp_path / "tiny.json").write_text(tiny_model(1.0))
    tree, lines = run(config)
    assert tree["fba"].attrs["objective_value"] == pytest.approx(1.0)
    assert any("[fba] running fba" in ln and "model file changed" in ln for ln in lines)
    _, lines = run(config)
    assert any("[fba] reused" in ln for ln in lines)


def test_changed_bounds_and_options_are_named(tmp_path):
    config = tmp_path / "run.toml"
    text = (
        '[model]\nsource = "small"\nbounds = { EX_A = [-4, 1000] }\n'
        '[[step]]\nkind = "fva"\nfraction = 0.5\nprogress = false\n'
    )
    config.write_text(text)
    run(config)
    config.write_text(text.replace("-4", "-3"))
    tree, lines = run(config)
    assert any("(model bounds changed)" in ln for ln in lines)
    assert float(tree["fva"]["maximum"].sel(reaction="BIOMASS")) == pytest.approx(3.0)
    config.write_text(text.replace("-4", "-3").replace("0.5", "0.25"))
    _, lines = run(config)
    assert any("(option fraction changed)" in ln for ln in lines)


GENES = (
    "gene\tmean\tstd\ng1\t3\t0.3\ng2\t1\t0.1\ng3\t0.5\t0.1\ng4\t4\t1\ng5\t2\t0.5\ng6\t0.1\t0.1\n"
)


def test_editing_the_expression_file_recomputes_and_paths_follow_the_config(tmp_path, monkeypatch):
    """``expression`` is relative to the config's folder (not the working directory), and a
    changed table is read again."""
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "genes.txt").write_text(GENES)
    config = folder / "run.toml"
    config.write_text(
        '[model]\nsource = "small"\n[output]\npath = "out/res.nc"\n'
        '[[step]]\nkind = "enzyme_abundance"\nexpression = "genes.txt"\n'
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    tree, _ = run(config)
    assert float(tree["enzyme_abundance"]["abundance"].sel(reaction="R1")) == 3.0
    assert (folder / "out" / "res.nc").is_file()
    (folder / "genes.txt").write_text(GENES.replace("g1\t3", "g1\t7"))
    tree, lines = run(config)
    assert float(tree["enzyme_abundance"]["abundance"].sel(reaction="R1")) == 7.0
    assert any("(expression file changed)" in ln for ln in lines)


# ----------------------------------------------------------------------------- shared outputs
FBA = '[model]\nsource = "small"\n[output]\npath = "shared.nc"\n[[step]]\nkind = "fba"\n'
FVA = (
    '[model]\nsource = "small"\n[output]\npath = "shared.nc"\n'
    '[[step]]\nkind = "fva"\nprogress = false\n'
)


def test_two_configs_one_output_keep_each_others_groups(tmp_path):
    (tmp_path / "a.toml").write_text(FBA)
    (tmp_path / "b.toml").write_text(FVA)
    run(tmp_path / "a.toml")
    run(tmp_path / "b.toml")
    assert set(read_results(tmp_path / "shared.nc").children) == {"fba", "fva"}
    _, lines = run(tmp_path / "a.toml", fresh=True)  # --fresh recomputes a's steps only
    assert set(read_results(tmp_path / "shared.nc").children) == {"fba", "fva"}
    (tmp_path / "c.toml").write_text(FVA.replace("kind", 'name = "fba"\nkind'))
    with pytest.raises(ConfigError, match=r"c\.toml.*'fba'.*written by config .*a\.toml"):
        run(tmp_path / "c.toml")
    assert set(read_results(tmp_path / "shared.nc").children) == {"fba", "fva"}


def test_an_output_of_an_older_bayesflux_is_recomputed_not_refused(tmp_path, monkeypatch):
    """Before shared outputs the root ``config`` attribute held the path as typed (here
    relative) and groups named no config: rerunning that config recomputes them."""
    (tmp_path / "a.toml").write_text(FBA)
    tree, _ = run(tmp_path / "a.toml")
    legacy = tree.copy()
    legacy.attrs = {"config": "a.toml", "model": "small", "network": "small"}
    legacy["fba"].attrs = {
        k: v for k, v in legacy["fba"].attrs.items() if not k.startswith("step_")
    }
    write_netcdf(legacy, tmp_path / "shared.nc")
    monkeypatch.chdir(tmp_path.parent)
    _, lines = run(tmp_path / "a.toml")
    assert any("(written by an older bayesflux)" in ln for ln in lines)
    node = read_results(tmp_path / "shared.nc")["fba"]
    assert node.attrs["step_config"] == str(tmp_path / "a.toml")


def test_concurrent_writers_are_serialised(tmp_path, monkeypatch):
    """Both runs read the output before either writes (a barrier inside their steps); the lock
    and the merge at each write keep both groups."""
    (tmp_path / "a.toml").write_text(FBA)
    (tmp_path / "b.toml").write_text(FVA)
    barrier = threading.Barrier(2, timeout=60)

    def waiting(real):
        @functools.wraps(real)
        def step(*args, **kwargs):
            barrier.wait()
            return real(*args, **kwargs)

        return step

    for kind in ("fba", "fva"):
        monkeypatch.setitem(
            STEPS, kind, dataclasses.replace(STEPS[kind], function=waiting(STEPS[kind].function))
        )
    errors: list[BaseException] = []

    def target(name):
        try:
            run_config(tmp_path / name, echo=lambda _: None)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(n,)) for n in ("a.toml", "b.toml")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(read_results(tmp_path / "shared.nc").children) == {"fba", "fva"}


def test_temp_files_of_dead_writers_are_removed(tmp_path):
    (tmp_path / "a.toml").write_text(FBA)
    dead = tmp_path / ".shared.nc.2147483646.abc123.tmp"  # no such process
    legacy = tmp_path / ".shared.nc.k9x_2.tmp"  # older name without a pid, found under the lock
    alive = tmp_path / f".shared.nc.{os.getpid()}.zz9.tmp"  # a live writer's file
    for path in (dead, legacy, alive):
        path.write_bytes(b"partial")
    run(tmp_path / "a.toml")
    assert not dead.exists() and not legacy.exists() and alive.exists()


# ------------------------------------------------------------------------------------ schema
HEAD = '[model]\nsource = "small"\n'


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("sample", 'num_draws = "100"', "num_draws = '100' must be an integer"),
        ("fva", 'fraction = "high"', "fraction = 'high' must be a number"),
        ("fva", "fraction = 1.5", r"fraction = 1.5 must be in \[0, 1\]"),
        ("sample", "num_chains = 1.5", "num_chains = 1.5 must be an integer"),
        ("sample", "num_chains = true", "num_chains = True must be an integer"),
        ("sample", 'constraints = "x"', "constraints = 'x' must be a list"),
        (
            "sample",
            "constraints = [{ coefficient = { R1 = 1 } }]",
            r"constraints\[0\] has unknown key\(s\) \['coefficient'\]",
        ),
        ("sample", "constraints = [{ lower = 1 }]", r"constraints\[0\] needs coefficients"),
        ("posterior", "fluxes = [1, 2]", r"fluxes = \[1, 2\] must be a table"),
        ("posterior", 'fluxes = { R1 = [2, "a"] }', r"fluxes for 'R1'\[1\] = 'a' must be a num"),
        ("sample", "seed = 1.7", "seed = 1.7 must be an integer"),
        ("sample", "seed = -1", r"seed = -1 must be in \[0, 2\*\*32\)"),
        ("sample", "thinning = 0", "thinning = 0 must be >= 1"),
        ("posterior", "thinning = 0", "thinning = 0 must be >= 1"),
        ("posterior", "fluxes = { R1 = [2.0, inf] }", "fluxes for 'R1': sd must be a finite"),
        ("posterior", "fluxes = { R1 = [2.0, 0.0] }", "fluxes for 'R1': sd must be a finite"),
        ("posterior", "fluxes = { R1 = [2.0, -1] }", "fluxes for 'R1': sd must be a finite"),
        ("posterior", "fluxes = { R1 = [nan, 1] }", r"fluxes for 'R1'\[0\] = nan must be a num"),
        (
            "sample",
            'kernel = "gibbs"',
            "kernel must be 'auto', 'coordinate', 'random' or 'billiard'",
        ),
        ("mfa_fit", "", r"missing option\(s\) \['model'\]"),
        ("mfa_fit", 'model = "none.ftbl"', "model: input file .*none.ftbl not found"),
        ("fba", "name = 3", "name 3 must be a string"),
    ],
)
def test_step_option_errors(tmp_path, kind, options, message):
    """Each bad option is a ConfigError naming the config file, the step and the key."""
    path = tmp_path / "bad.toml"
    path.write_text(f'[model]\nsource = "small"\n[[step]]\nkind = "{kind}"\n{options}\n')
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: step 1 ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[model]\nsource = "small"\n[output]\npath = 5\n', r"\[output\] path = 5 must be a"),
        ('step = [1, 2]\n[model]\nsource = "small"\n', r"step 1 must be a \[\[step\]\] table"),
        ('[model]\nsource = "small"\nbounds = { R1 = [5, 1] }\n', "lower 5.0 > upper 1.0"),
        ('[model]\nsource = "small"\nsauce = 1\n', r"\[model\] has unknown key\(s\) \['sauce'\]"),
        ('[model]\nsource = "nope.xml"\n', "no model file .*nope.xml"),
        ("[model]\nsource = 3\n", "source = 3 must be"),
    ],
)
def test_model_and_output_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    steps = "" if "step =" in text else '[[step]]\nkind = "fba"\n'
    path.write_text(text + steps)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ("{ NOPE = [0, 1] }", "unknown reaction 'NOPE'"),
        ("{ R1 = [inf, inf] }", r"reaction 'R1' has lb = \+inf"),
    ],
)
def test_bounds_the_network_refuses_name_the_config_and_key(tmp_path, bounds, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'[model]\nsource = "small"\nbounds = {bounds}\n[[step]]\nkind = "fba"\n')
    with pytest.raises(ConfigError, match=rf"^{path}: \[model\] bounds: .*{message}"):
        run(path)


def test_a_huge_block_size_is_refused_up_front(tmp_path, monkeypatch):
    """The memory the draws need is estimated before any step runs."""
    ran = []
    real = STEPS["fba"]
    monkeypatch.setitem(STEPS, "fba", dataclasses.replace(real, function=lambda *a, **k: ran))
    path = tmp_path / "big.toml"
    path.write_text(
        HEAD + '[[step]]\nkind = "fba"\n[[step]]\nkind = "posterior"\n'
        "num_draws = 1000000000000\nblock_size = 1000000000000\n"
    )
    with pytest.raises(ConfigError, match=r"step 2 \(posterior.*need about .* GiB, more than"):
        run(path)
    assert not (tmp_path / "results.nc").exists()


# ------------------------------------------------------------------------------- diagnostics
SAMPLE = HEAD + '[[step]]\nkind = "sample"\nnum_chains = 2\nnum_draws = 30\nprogress = false\n'


def test_sample_step_logs_and_stores_rhat_and_ess(tmp_path, caplog):
    path = tmp_path / "s.toml"
    path.write_text(SAMPLE)
    with caplog.at_level(logging.INFO, logger="bayesflux.pipeline"):
        tree, _ = run(path)
    attrs = read_results(tmp_path / "results.nc")["sample"].attrs
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail"} <= set(attrs)
    assert tree["sample"].attrs["min_ess_bulk"] == attrs["min_ess_bulk"]
    messages = [r.getMessage() for r in caplog.records if r.name == "bayesflux.pipeline"]
    assert any(m.startswith("[sample] max R-hat") for m in messages)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("[sample] the chains have not converged" in r.getMessage() for r in warned)


def test_frozen_chains_are_an_error(tmp_path, monkeypatch):
    """Chains whose draws never move (sd 0, acceptance 0, R-hat NaN) are not saved as a result."""
    real = STEPS["sample"]

    @functools.wraps(real.function)
    def frozen(*args, **kwargs):
        tree = real.function(*args, **kwargs)
        flux = tree["posterior"]["flux"]
        stuck = flux.isel(draw=0).broadcast_like(flux).transpose(*flux.dims)
        tree["posterior"] = xr.Dataset({"flux": stuck.copy()})
        tree.attrs = {}
        return tree

    monkeypatch.setitem(STEPS, "sample", dataclasses.replace(real, function=frozen))
    path = tmp_path / "s.toml"
    path.write_text(SAMPLE)
    with pytest.raises(SolverError, match=r"s\.toml: step 1 \(sample 'sample'\).*frozen"):
        run(path)
    assert not (tmp_path / "results.nc").exists()


def test_posterior_warns_when_the_fit_rejects_the_measurements(tmp_path, caplog):
    """BIOMASS measured at 50 +- 1 where the network allows at most 10: a warning names it."""
    path = tmp_path / "p.toml"
    path.write_text(
        HEAD + '[[step]]\nkind = "posterior"\nfluxes = { BIOMASS = [50.0, 1.0], R1 = [3, 1] }\n'
        'sampler = "metropolis"\nnum_chains = 2\nnum_draws = 50\nprogress = false\n'
    )
    with caplog.at_level(logging.WARNING):
        tree, _ = run(path)
    assert tree["flux_posterior"].attrs["measurement_ppp"] < 0.01
    stored = read_results(tmp_path / "results.nc")["flux_posterior"].attrs
    assert stored["measurement_ppp"] < 0.01
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail"} <= set(stored)
    rejected = [r.getMessage() for r in caplog.records if "rejects the measured" in r.getMessage()]
    assert len(rejected) == 1 and "BIOMASS measured 50" in rejected[0]
    assert "R1 measured" not in rejected[0]
    assert np.all(tree["flux_posterior"]["posterior"]["flux"].sel(reaction="BIOMASS") <= 10 + 1e-6)


KILLED_WRITER = """
import sys, time
from bayesflux.results import atomic_write

def write(tmp):
    with open(tmp, "wb") as fh:
        fh.write(b"half a NetCDF file")
    print("writing", flush=True)
    time.sleep(600)

atomic_write(sys.argv[1], write)
"""


def test_a_writer_killed_mid_write_leaves_a_temp_file_the_next_run_removes(tmp_path):
    """A real SIGKILL during the write: the output is untouched and the next run deletes the
    writer's temporary file."""
    (tmp_path / "a.toml").write_text(FBA)
    run(tmp_path / "a.toml")
    before = (tmp_path / "shared.nc").read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "shared.nc")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline() == "writing\n"
    finally:
        writer.kill()
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    leftovers = list(tmp_path.glob(".shared.nc.*.tmp"))
    assert len(leftovers) == 1
    assert (tmp_path / "shared.nc").read_bytes() == before
    _, lines = run(tmp_path / "a.toml")
    assert any("[fba] reused" in ln for ln in lines)
    assert list(tmp_path.glob(".shared.nc.*.tmp")) == []
