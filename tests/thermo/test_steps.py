"""The thermodynamics pipeline steps."""

from __future__ import annotations

import pytest

from bayesflux.errors import ConfigError
from bayesflux.pipeline import run_config


def test_thermodynamic_fva_step(tmp_path):
    config = tmp_path / "thermo.toml"
    config.write_text(
        '[model]\nsource = "textbook"\n[output]\npath = "out.nc"\n'
        '[[step]]\nkind = "thermodynamic_fva"\nthermo = "ecoli_core_wide"\n'
        'variables = ["flux"]\nreactions = ["SUCDi", "FRD7"]\nprogress = false\n'
    )
    lines: list[str] = []
    tree = run_config(config, echo=lines.append)
    ds = tree["thermodynamic_fva"]
    assert float(ds["maximum"].sel(reaction="SUCDi")) == pytest.approx(20.0, abs=1e-6)
    assert any("thermodynamic flux ranges" in line for line in lines)
    assert (tmp_path / "out.nc").exists()


def test_unknown_thermo_source(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[model]\nsource = "textbook"\n[[step]]\nkind = "thermodynamic_fva"\nthermo = "nope"\n'
    )
    with pytest.raises(ConfigError, match="unknown thermodynamic data 'nope'"):
        run_config(config, echo=lambda _: None)
