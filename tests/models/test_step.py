"""The ``posterior`` pipeline step: config tables -> terms -> an ArviZ DataTree in results.nc."""

from __future__ import annotations

import pytest

from bayesflux.errors import ConfigError
from bayesflux.pipeline import run_config


def test_posterior_step_with_measured_flux(tmp_path):
    """On the small network, R1 measured at 2 +- 0.5: the posterior mean of R1 is pulled to the
    measurement (the uniform prior's mean of R1 is about 3.3), every draw is mass balanced."""
    config = tmp_path / "post.toml"
    config.write_text(
        '[model]\nsource = "small"\n[[step]]\nkind = "posterior"\n'
        "fluxes = { R1 = [2.0, 0.5] }\nnum_chains = 2\nnum_draws = 300\nseed = 1\n"
        "progress = false\n"
    )
    lines: list[str] = []
    tree = run_config(config, echo=lines.append)
    node = tree["posterior"]
    flux = node["posterior"]["flux"]
    assert flux.dims == ("chain", "draw", "reaction")
    assert abs(float(flux.sel(reaction="R1").mean()) - 2.0) < 0.5
    assert "fluxes" in node["log_likelihood"]
    assert any("R-hat" in ln for ln in lines)
    again: list[str] = []
    run_config(config, echo=again.append)
    assert any("[posterior] reused" in ln for ln in again)


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
