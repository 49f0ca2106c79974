"""The ``bayesflux`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesflux import fva, read_results

ROOT = Path(__file__).resolve().parents[2]


def bayesflux(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bayesflux.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_info():
    out = bayesflux("info", "textbook")
    assert out.returncode == 0, out.stderr
    assert "95 reactions" in out.stdout and "72 metabolites" in out.stdout


def test_fba_prints_the_objective():
    out = bayesflux("fba", "small")
    assert out.returncode == 0, out.stderr
    assert "objective value: 10" in out.stdout


def test_fva_writes_netcdf(tmp_path, small):
    path = tmp_path / "fva.nc"
    out = bayesflux("fva", "small", "--fraction", "0.5", "-o", str(path), "--no-progress")
    assert out.returncode == 0, out.stderr
    ds = read_results(path).to_dataset()
    np.testing.assert_allclose(ds["minimum"], fva(small, fraction=0.5)["minimum"])


def test_bundled_example_runs_and_resumes(tmp_path):
    config = tmp_path / "ecoli.toml"
    text = (ROOT / "examples" / "ecoli_core.toml").read_text()
    config.write_text(
        text.replace("../results/ecoli_core.nc", "out.nc")
        .replace("../results/report", "report")
        .replace('"ecoli_core_genes.tsv"', f'"{ROOT / "examples" / "ecoli_core_genes.tsv"}"')
    )
    first = bayesflux("run", str(config))
    assert first.returncode == 0, first.stderr
    assert "[fba] objective 0.8326" in first.stdout
    tree = read_results(tmp_path / "out.nc")
    # the posterior step's group is "flux_posterior": a group named "posterior" would be read by
    # ArviZ as the posterior itself
    assert set(tree.children) == {"fba", "fva", "sample", "flux_posterior"}
    assert (tmp_path / "report" / "flux_posterior" / "flux_forest.png").is_file()
    assert tree["sample"]["posterior"]["flux"].dims == ("chain", "draw", "reaction")
    assert tree["fva"].to_dataset().sizes["reaction"] == 95
    again = bayesflux("run", str(config))
    assert all(
        f"[{step}] reused" in again.stdout for step in ("fba", "fva", "sample", "flux_posterior")
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "no_such_model.xml"], "no model file 'no_such_model.xml'"),
        (["fva", "small", "--fraction", "2"], "fraction must lie in [0, 1]"),
        (["run", "missing.toml"], "config file not found: "),
    ],
)
def test_errors_are_one_line_and_nonzero(args, message):
    out = bayesflux(*args)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bayesflux: error: {message}")


def test_no_command_prints_help():
    out = bayesflux()
    assert out.returncode == 2 and "usage: bayesflux" in out.stdout
