"""Thermodynamic FVA against cobra's loopless FVA and closed forms; ΔrG0 fitting."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from bayesflux import InfeasibleError, thermo
from bayesflux.methods import fva
from bayesflux.thermo import ThermoDataError, ThermoModel
from bayesflux.thermo.tfva import box_volume_reduction, fit_drg0, tfba, thermodynamic_fva


@pytest.mark.parametrize("fraction", [0.0, 0.9])
def test_wide_bounds_equal_cobra_loopless_fva(textbook_cobra, fraction):
    """With wide ln c bounds only the loop law binds, so TFVA = loopless FVA.

    Reference: cobra's loopless FVA with ``loopless="fastSNP"`` (an exact MILP). cobra's default
    ``loopless=True`` (CycleFreeFlux) reports SUCDi max 0 at fraction 0, although the exact
    loopless MILP of ``cobra.flux_analysis.add_loopless`` reaches 20: we compare with the exact one.
    """
    import cobra

    model = textbook_cobra.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cobra.flux_analysis.flux_variability_analysis(
            model, loopless="fastSNP", fraction_of_optimum=fraction
        )
    t = thermo.ecoli_core(bounds="wide")
    got = thermodynamic_fva(t, fraction=fraction, variables=("flux",))  # all 95 reactions
    # MILP gap 1e-7 relative and HiGHS feasibility tolerances: 1e-5 absolute on fluxes of ~1000
    np.testing.assert_allclose(got["minimum"].to_series()[ref.index], ref["minimum"], atol=1e-5)
    np.testing.assert_allclose(got["maximum"].to_series()[ref.index], ref["maximum"], atol=1e-5)
    if fraction == 0.0:  # the loop SUCDi + FRD7 cannot run, yet each alone reaches its LP maximum
        assert float(got["maximum"].sel(reaction="SUCDi")) == pytest.approx(20.0, abs=1e-6)


def test_triangle_closed_form(triangle_thermo):
    """The loop R1 + R2 - R3 is the only way to run R1 or R3 backwards (see conftest)."""
    ds = thermodynamic_fva(triangle_thermo)
    lo, hi = ds["minimum"].to_series(), ds["maximum"].to_series()
    assert lo["R1"] == pytest.approx(0.0, abs=1e-7) and hi["R1"] == pytest.approx(10.0)
    assert lo["R3"] == pytest.approx(0.0, abs=1e-7) and hi["R3"] == pytest.approx(10.0)
    assert lo["R2"] == pytest.approx(-10.0) and hi["R2"] == pytest.approx(10.0)
    plain = fva(triangle_thermo.network, fraction=0.0)
    assert float(plain["minimum"].sel(reaction="R1")) == pytest.approx(-10.0)
    # ln c ranges are the box (nothing pins them), ΔrG ranges respect the margin ±δ
    np.testing.assert_allclose(ds["lnc_minimum"], np.log(1e-3), atol=1e-7)
    np.testing.assert_allclose(ds["lnc_maximum"], np.log(1e-1), atol=1e-7)
    rt, width = triangle_thermo.rt, np.log(100.0)
    assert float(ds["drg_minimum"].sel(reaction="R1")) == pytest.approx(-2.0 - rt * width)
    assert np.isnan(float(ds["drg_minimum"].sel(reaction="EX_A")))


def test_screening_does_not_change_the_answer():
    t = thermo.ecoli_core()
    subset = ["SUCDi", "FRD7", "PGK", "GAPD", "ENO", "ACKr", "PTAr", "GLUDy"]
    a = thermodynamic_fva(t, variables=("flux",), reactions=subset, screen=True)
    b = thermodynamic_fva(t, variables=("flux",), reactions=subset, screen=False)
    xr.testing.assert_allclose(a[["minimum", "maximum"]], b[["minimum", "maximum"]], atol=1e-6)


def test_physiological_ranges_inside_wide_inside_lp():
    subset = ["PGK", "GAPD", "PGI", "FBA", "TPI", "ACKr", "PTAr", "SUCDi", "MDH", "EX_ac_e"]
    phys = thermodynamic_fva(thermo.ecoli_core(), variables=("flux",), reactions=subset)
    wide = thermodynamic_fva(
        thermo.ecoli_core(bounds="wide"), variables=("flux",), reactions=subset
    )
    assert np.all(phys["minimum"] >= wide["minimum"] - 1e-6)
    assert np.all(phys["maximum"] <= wide["maximum"] + 1e-6)
    narrower = (phys["maximum"] - phys["minimum"]) < (wide["maximum"] - wide["minimum"]) - 1e-6
    assert int(narrower.sum()) >= 3  # concentrations fix directions of glycolysis / acetate steps


def test_infeasible_metabolome_names_metabolites(triangle):
    """R1 (A -> B) must run at >= 5, but c_B / c_A = 100 gives ΔrG1 = -2 + RT ln 100 > 0."""
    net = triangle.with_bounds({"EX_B": (5.0, 10.0), "R2": (0.0, 10.0)})
    t = ThermoModel.from_data(
        net,
        {"R1": -2.0, "R2": 0.5, "R3": -1.5},
        lnc_bounds={"A": (np.log(1e-3),) * 2, "B": (np.log(1e-1),) * 2},
    )
    with pytest.raises(InfeasibleError, match=r"infeasible metabolome.*\b(A|B)\b"):
        tfba(t, objective={"EX_B": 1.0})
    with pytest.raises(InfeasibleError, match="infeasible metabolome"):
        thermodynamic_fva(t)


def test_fit_drg0_closed_form(triangle):
    """Equal sd, cycle n = (1, 1, -1): x = μ - n nᵀμ / |n|² = (2/3, 2/3, 4/3) from μ = (1, 1, 1)."""
    t = ThermoModel.from_data(
        triangle, {"R1": 1.0, "R2": 1.0, "R3": 1.0}, drg0_sd={"R1": 1.0, "R2": 1.0, "R3": 1.0}
    )
    fitted, resid = fit_drg0(t)
    np.testing.assert_allclose(fitted.drg0, [2 / 3, 2 / 3, 4 / 3], atol=1e-12)
    np.testing.assert_allclose(fitted.cycle_inconsistency(), 0.0, atol=1e-12)
    np.testing.assert_allclose(resid, [-1 / 3, -1 / 3, 1 / 3], atol=1e-12)
    # a reaction known exactly (sd 0) keeps its value; the others absorb the whole gap
    t2 = ThermoModel.from_data(
        triangle, {"R1": 1.0, "R2": 1.0, "R3": 1.0}, drg0_sd={"R1": 0.0, "R2": 1.0, "R3": 1.0}
    )
    f2, _ = fit_drg0(t2)
    assert f2.drg0[0] == pytest.approx(1.0)
    assert f2.drg0[0] + f2.drg0[1] - f2.drg0[2] == pytest.approx(0.0, abs=1e-12)


def test_fit_drg0_unfixable_cycle_is_named(triangle):
    t = ThermoModel.from_data(triangle, {"R1": 1.0, "R2": 1.0, "R3": 1.0})  # all sd 0
    with pytest.raises(ThermoDataError, match="R1, R2, R3"):
        fit_drg0(t)


def test_box_volume_reduction_closed_form(triangle):
    sm = xr.Dataset(
        {"minimum": ("reaction", [0.0, -10, -10]), "maximum": ("reaction", [10.0, 10, 10])},
        coords={"reaction": ["a", "b", "c"]},
    )
    tsm = xr.Dataset(
        {"minimum": ("reaction", [0.0, 0, -10]), "maximum": ("reaction", [10.0, 10, 10])},
        coords={"reaction": ["a", "b", "c"]},
    )
    out = box_volume_reduction(sm, tsm)
    assert out["log10_box_volume_ratio"] == pytest.approx(np.log10(2.0))
    assert out["mean_relative_range_reduction"] == pytest.approx(0.5 / 3)


def test_drg0_uncertainty_widens_ranges():
    """Letting ΔrG0 vary by ±2 sd (as pyTFA does) can only widen ranges and raise the optimum."""
    t = thermo.ecoli_core()
    subset = ["PGK", "GAPD", "ACKr", "PTAr", "MDH", "FBA", "EX_ac_e"]
    fixed = thermodynamic_fva(t, variables=("flux",), reactions=subset)
    loose = thermodynamic_fva(t, variables=("flux",), reactions=subset, drg0_sd_factor=2.0)
    assert np.all(loose["minimum"].values <= fixed["minimum"].values + 1e-6)
    assert np.all(loose["maximum"].values >= fixed["maximum"].values - 1e-6)
    assert tfba(t, drg0_sd_factor=2.0)[0] >= tfba(t)[0] - 1e-6
