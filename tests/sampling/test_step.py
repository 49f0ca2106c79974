"""The ``sample`` step of ``bayesflux run``."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.pipeline import run_config
from bayesflux.results import read_results

pytestmark = pytest.mark.filterwarnings("ignore:Found chain dimension")


def test_sample_step_runs_and_is_reused(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        """
[model]
source = "small"

[output]
path = "out.nc"

[[step]]
kind = "sample"
num_chains = 2
num_draws = 100
seed = 3
progress = false
constraints = [{ coefficients = { BIOMASS = 1.0 }, lower = 5.0 }]
"""
    )
    lines: list[str] = []
    tree = run_config(config, echo=lines.append)
    flux = tree["sample"]["posterior"]["flux"]
    assert flux.shape == (2, 100, 7)
    assert float(flux.sel(reaction="BIOMASS").min()) >= 5.0 - 1e-9
    assert any("chains x 100 draws" in line for line in lines)
    saved = read_results(tmp_path / "out.nc")
    np.testing.assert_array_equal(saved["sample"]["posterior"]["flux"].values, flux.values)
    again: list[str] = []
    run_config(config, echo=again.append)
    assert any("reused" in line for line in again)
