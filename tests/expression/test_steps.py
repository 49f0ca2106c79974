"""The expression pipeline steps run end to end from a TOML config."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.pipeline import STEPS, run_config


def test_falcon_and_imat_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "genes.txt").write_bytes(
        b"gene\tmean\tstd\rg1\t3\t0.3\rg2\t1\t0.1\rg3\t0.5\t0.1\rg4\t4\t1\rg5\t2\t0.5\rg6\t0.1\t0.1\r"
    )
    (tmp_path / "run.toml").write_text(
        '[model]\nsource = "small"\n[output]\npath = "out.nc"\n'
        '[[step]]\nname = "abundance"\nkind = "enzyme_abundance"\nexpression = "genes.txt"\n'
        '[[step]]\nname = "falcon"\nkind = "falcon"\nexpression = "genes.txt"\n'
        '[[step]]\nname = "imat"\nkind = "imat"\nexpression = "genes.txt"\neps = 0.5\n'
        '[[step]]\nname = "gimme"\nkind = "gimme"\nexpression = "genes.txt"\n'
        '[[step]]\nname = "eflux"\nkind = "eflux"\nexpression = "genes.txt"\nalpha = 10.0\n'
    )
    tree = run_config(tmp_path / "run.toml", echo=lambda _: None)
    for name in ("falcon", "imat", "gimme", "eflux"):
        assert tree[name]["flux"].dims == ("reaction",)
    assert float(tree["abundance"]["abundance"].sel(reaction="R2")) == 1.5
    np.testing.assert_allclose(tree["eflux"]["flux"].sel(reaction="BIOMASS"), 10.0)


def test_missing_expression_file(small):
    with pytest.raises(ConfigError, match="not found"):
        STEPS["falcon"].function(small, previous={}, expression="nope.txt")
    with pytest.raises(ConfigError, match="need an 'expression' file"):
        STEPS["imat"].function(small, previous={})
