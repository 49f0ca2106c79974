"""The thermodynamics pipeline steps."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.pipeline import run_config
from bayesflux.thermo import ecoli_core
from bayesflux.thermo.polytope_b import check_sign_pattern, sign_pattern


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


@pytest.mark.parametrize("method", ["orthants", "tempering"])
def test_thermodynamic_sampling_step(tmp_path, method):
    """A short run of either sampler on E. coli core (sector FRD7 = 0): every draw satisfies mass
    balance and the flux bounds, its sign pattern passes a fresh LP of the second law, and the
    summary line names the method."""
    config = tmp_path / "sampling.toml"
    config.write_text(
        '[model]\nsource = "textbook"\n'
        f'[[step]]\nkind = "thermodynamic_sampling"\nmethod = "{method}"\n'
        "num_draws = 20\nnum_warmup = 5\nnum_chains = 2\nseed = 1\nprogress = false\n"
        "bounds = { FRD7 = [0.0, 0.0] }\n"
    )
    lines: list[str] = []
    tree = run_config(config, echo=lines.append)
    flux = tree["thermodynamic_sampling"]["posterior"]["flux"]
    model = ecoli_core()
    net = model.network
    assert dict(flux.sizes) == {"chain": 2, "draw": 20, "reaction": net.n_reactions}
    assert list(flux["reaction"].values) == list(net.reactions)
    v = flux.values.reshape(-1, net.n_reactions)
    np.testing.assert_allclose(net.S @ v.T, 0.0, atol=1e-8)
    assert np.all(v >= net.lb - 1e-8) and np.all(v <= net.ub + 1e-8)
    np.testing.assert_allclose(flux.sel(reaction="FRD7").values, 0.0, atol=1e-9)
    patterns = np.unique(sign_pattern(v, model), axis=0)
    assert all(check_sign_pattern(model, s) for s in patterns)
    method_attr = "orthant_hit_and_run" if method == "orthants" else "parallel_tempering"
    assert any("thermodynamically feasible draws" in ln and method_attr in ln for ln in lines)


def test_unknown_sampling_method(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[model]\nsource = "textbook"\n[[step]]\nkind = "thermodynamic_sampling"\n'
        'method = "nope"\nprogress = false\n'
    )
    with pytest.raises(ConfigError, match="method must be 'orthants' or 'tempering'"):
        run_config(config, echo=lambda _: None)
