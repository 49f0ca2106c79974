"""Thermodynamic data: ΔrG(ln c), loaders and input errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bayesflux import Network, thermo
from bayesflux.thermo import R_GAS, ThermoDataError, ThermoModel


def test_drg_is_drg0_plus_rt_st_lnc(triangle_thermo, rng):
    lnc = rng.uniform(-7, -2, size=(5, triangle_thermo.network.n_metabolites))
    S = triangle_thermo.S
    expected = triangle_thermo.drg0 + R_GAS * 298.15 * lnc @ S
    got = jax.jit(triangle_thermo.drg)(lnc)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)


def test_from_formation_matches_closed_form(triangle):
    t = ThermoModel.from_formation(triangle, {"A": 0.0, "B": -2.0, "C": -1.5})
    np.testing.assert_allclose(t.drg0, [-2.0, 0.5, -1.5])
    np.testing.assert_allclose(t.cycle_inconsistency(), 0.0, atol=1e-12)


def test_drg_bounds_interval_arithmetic(triangle_thermo):
    lo, hi = triangle_thermo.drg_bounds()
    width = np.log(1e-1) - np.log(1e-3)
    rt = triangle_thermo.rt
    np.testing.assert_allclose(lo, triangle_thermo.drg0 - rt * width)  # c_prod low, c_subs high
    np.testing.assert_allclose(hi, triangle_thermo.drg0 + rt * width)


def test_missing_drg0_is_named(triangle):
    with pytest.raises(ThermoDataError, match="missing ΔrG0.*R3"):
        ThermoModel.from_data(triangle, {"R1": -2.0, "R2": 0.5})


def test_inconsistent_lnc_bounds_are_named(triangle):
    with pytest.raises(ThermoDataError, match="inconsistent ln c bounds.*B"):
        ThermoModel.from_data(
            triangle, {"R1": -2.0, "R2": 0.5, "R3": -1.5}, lnc_bounds={"B": (-2.0, -5.0)}
        )


def test_unknown_ids_are_named(triangle):
    with pytest.raises(ThermoDataError, match="unknown metabolite 'Z'"):
        ThermoModel.from_data(triangle, {"R1": 0, "R2": 0, "R3": 0}, lnc_bounds={"Z": (0, 1)})
    with pytest.raises(ThermoDataError, match="XYZ"):
        ThermoModel.from_data(triangle, {"R1": 0, "R2": 0, "R3": 0, "XYZ": 1.0})
    with pytest.raises(ThermoDataError, match="missing ΔfG0.*C"):
        ThermoModel.from_formation(triangle, {"A": 0.0, "B": 1.0})


def test_ecoli_core_table_is_cycle_consistent_and_rank_deficient():
    t = thermo.ecoli_core()
    assert t.n_constrained == 71  # 74 table reactions minus ATPS4r, NADH16, CYTBD
    assert "ATPS4r" not in t.reactions and "Biomass_Ecoli_core" not in t.reactions
    # ΔrG0 from component contributions sums to zero around every internal cycle
    assert np.abs(t.cycle_inconsistency()).max() < 1e-8
    L = t.drg0_factor()
    assert L.shape[1] < t.n_constrained  # the README: rank 43 of 74
    np.testing.assert_allclose(L @ L.T, t.drg0_cov, atol=1e-8)
    i = t.network.metabolite_index["h2o_c"]
    assert t.lnc_lb[i] == t.lnc_ub[i] == 0.0


def test_fixed_only_reactions_left_free():
    """H2Ot moves water between two fixed activities (ΔrG = ΔrG'0 = 0 always): under the second
    law it stops and thermodynamic FBA on the example's bounds grows at 0.38 1/h; left off
    (include_fixed=False, nothing else changes) growth is FBA's 0.83 1/h again."""
    from bayesflux import datasets

    net = datasets.load("textbook").with_bounds(
        {"EX_glc__D_e": (-10.0, 1000.0), "EX_o2_e": (-20.0, 1000.0)}
    )
    stopped, free = thermo.ecoli_core(net), thermo.ecoli_core(net, include_fixed=False)
    assert set(stopped.reactions) - set(free.reactions) == {"H2Ot"}
    assert set(free.reactions) < set(stopped.reactions)
    assert thermo.tfba(stopped)[0] == pytest.approx(0.3835, abs=1e-3)
    assert thermo.tfba(free)[0] == pytest.approx(0.8326, abs=1e-3)


def test_wide_bounds_cover_every_metabolite():
    t = thermo.ecoli_core(bounds="wide", wide_half_width=20.0)
    assert np.all(t.lnc_lb == -20.0) and np.all(t.lnc_ub == 20.0)


def test_niebel_yeast_tsm(shared_data):
    from bayesflux.methods import fba

    net, t = thermo.niebel_tsm("yeast", folder=shared_data)
    assert (net.n_reactions, net.n_metabolites) == (257, 210)
    assert t.n_constrained == 240
    assert t.rt == pytest.approx(0.008314 * 303.15)
    assert t.margin == 0.5
    # the data README: the LP without thermodynamics, glucose uptake fixed at -1, gives 0.1533
    growth = float(fba(net)["flux"].sel(reaction="biomass"))
    assert growth == pytest.approx(0.1533, abs=1e-4)


def test_non_finite_drg0_rejected(triangle):
    with pytest.raises(ThermoDataError, match="R2"):
        ThermoModel(triangle, ("R1", "R2"), np.array([1.0, np.nan]), None, np.zeros(3), np.ones(3))


def test_network_without_metabolite_bounds_rejects_infinite(triangle):
    with pytest.raises(ThermoDataError, match="finite"):
        ThermoModel.from_data(
            triangle, {"R1": 0, "R2": 0, "R3": 0}, default_lnc_bounds=(-np.inf, 0.0)
        )


def test_small_network_type_guard():
    net = Network.from_stoichiometry({"X": {"A": -1, "B": 1}, "EX": {"A": 1}, "EY": {"B": -1}})
    t = ThermoModel.from_data(net, {"X": -1.0})
    assert t.reactions == ("X",)
