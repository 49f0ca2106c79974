"""E-Flux: bounds alpha * e, closed-form optimum on the small network, calibration, the default
scale on E. coli core and yeast."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.methods.eflux import eflux, eflux_min_scale

EXPR = {"g1": 3.0, "g2": 1.0, "g3": 0.5, "g4": 4.0, "g5": 2.0, "g6": 0.1}


def _closed_form(alpha):
    # abundance: R1 3, R2 1.5 (g2 or g3), R3 = R4 = 2 (g4 and g5), R5 0.1; scaled by max 3
    # biomass is the max flow from uptake to D = the min cut (R5 carries B <-> C)
    c1, c2, c3, c4, c5 = alpha * np.array([3.0, 1.5, 2.0, 2.0, 0.1]) / 3.0
    return min(10.0, c1 + c2, c2 + c3 + c5, c1 + c4 + c5, c3 + c4)


@pytest.mark.parametrize("alpha", [0.5, 3.0, 10.0, 100.0])
def test_biomass_matches_closed_form(small, alpha):
    res = eflux(small, EXPR, alpha=alpha)
    assert float(res["flux"].sel(reaction="BIOMASS")) == pytest.approx(_closed_form(alpha))
    assert float(res["upper"].sel(reaction="R1")) == pytest.approx(alpha)
    # the reversible R5 is bounded on both sides, irreversible ones keep lb = 0
    assert float(res["lower"].sel(reaction="R5")) == pytest.approx(-alpha * 0.1 / 3)
    assert float(res["lower"].sel(reaction="R1")) == 0


def test_calibration_to_measured_flux(small):
    res = eflux(small, EXPR, measured={"BIOMASS": 7.0})
    assert float(res["flux"].sel(reaction="BIOMASS")) == pytest.approx(7.0)
    np.testing.assert_allclose(small.S @ res["flux"].values, 0, atol=1e-9)
    assert res.attrs["alpha"] == pytest.approx(7.0 / _closed_form(1.0))


def test_default_scale_on_small(small):
    """Default: the most expressed reaction gets the largest bound (1000): uptake limits, 10."""
    res = eflux(small, EXPR)
    assert res.attrs["alpha"] == 1000.0 and res.attrs["alpha_min"] == 0.0
    assert float(res["flux"].sel(reaction="BIOMASS")) == pytest.approx(_closed_form(1000.0))


def test_errors(small):
    with pytest.raises(NetworkError, match="no reaction"):
        eflux(small, {"zz": 1.0})
    # R1 must carry 5 from B, through R3 (capacity 2 alpha / 3) or R5 then R4 (0.1 alpha / 3):
    # alpha_min = 15 / 2.1, limited by R3 and R5, which the error names
    with pytest.raises(InfeasibleError, match=r"alpha = 7\.14286, .*'R3', 'R5'"):
        eflux(small.with_bounds({"R1": (5, 10)}), EXPR, alpha=1.0)
    res = eflux(small.with_bounds({"R1": (5, 10)}), EXPR)
    assert res.attrs["alpha_min"] == pytest.approx(15 / 2.1)
    with pytest.raises(ValueError, match="alpha"):
        eflux(small, EXPR, alpha=0)
    with pytest.raises(ValueError, match="alpha"):
        eflux(small, EXPR, alpha="large")


def _ecoli_expression(net, rng):
    return {g: float(x) for g, x in zip(net.genes, rng.lognormal(3.0, 1.0, len(net.genes)))}


def _min_scale_by_bisection(net, expression):
    """The smallest feasible alpha by bisection on feasibility of explicit-alpha E-Flux runs."""
    lo, hi = 1e-3, 1e4
    for _ in range(40):  # (1e7) ** (2 ** -40) - 1 < 1e-11
        mid = np.sqrt(lo * hi)
        try:
            eflux(net, expression, alpha=mid)
            hi = mid
        except InfeasibleError:
            lo = mid
    return hi


def test_default_scale_is_feasible_on_ecoli_core(textbook, rng):
    """ATPM >= 8.39 makes alpha = 1 infeasible; the default picks a feasible scale, and the
    smallest feasible scale from one LP matches a bisection over feasibility (issue 21)."""
    expression = _ecoli_expression(textbook, rng)
    res = eflux(textbook, expression)
    v = res["flux"].values
    np.testing.assert_allclose(textbook.S @ v, 0, atol=1e-8)
    assert np.all(v >= res["lower"].values - 1e-8) and np.all(v <= res["upper"].values + 1e-8)
    assert float(res["flux"].sel(reaction="ATPM")) >= 8.39 - 1e-8
    # the default: the most expressed reaction gets the model's flux bound 1000
    assert res.attrs["alpha"] == 1000.0
    alpha_min = res.attrs["alpha_min"]
    assert alpha_min == pytest.approx(_min_scale_by_bisection(textbook, expression), rel=1e-6)
    assert eflux_min_scale(textbook, expression) == pytest.approx(alpha_min, rel=1e-12)
    with pytest.raises(InfeasibleError, match=r"smallest scale .* reaction\(s\) '"):
        eflux(textbook, expression, alpha=1.0)
    assert eflux(textbook, expression, alpha=alpha_min * 1.001).attrs["objective_value"] >= 0


def test_calibration_on_ecoli_core(textbook, rng):
    """measured= on E. coli core (forced ATPM, bounded uptake): the measured growth is reproduced
    at the smallest scale that reaches it, and nothing smaller reaches it."""
    expression = _ecoli_expression(textbook, rng)
    res = eflux(textbook, expression, measured={"Biomass_Ecoli_core": 0.3})
    assert res.attrs["objective_value"] == pytest.approx(0.3, rel=1e-7)
    alpha = res.attrs["alpha"]
    assert eflux(textbook, expression, alpha=alpha).attrs["objective_value"] == pytest.approx(
        0.3, rel=1e-6
    )
    assert eflux(textbook, expression, alpha=0.99 * alpha).attrs["objective_value"] < 0.3 - 1e-6


def test_infeasible_at_every_scale_says_why(small):
    # g4 = 0 closes R3 (g4 and g5) at every scale, but R3 is forced to carry 1
    with pytest.raises(InfeasibleError, match="every scale: reaction\\(s\\) 'R3' have zero"):
        eflux(small.with_bounds({"R3": (1, 10)}), {**EXPR, "g4": 0.0})
    with pytest.raises(InfeasibleError, match="no steady state within its own bounds"):
        eflux(small.with_bounds({"R3": (1, 10), "EX_A": (0, 0)}), EXPR)


@pytest.mark.parametrize("version", ["5.21", "7.6"])
def test_defaults_work_on_yeast(shared_data, version):
    """Lee et al. 2012 expression (75% data) on the bundled yeast models, all defaults."""
    from bayesflux import datasets
    from bayesflux.expression import read_gene_data

    genes = read_gene_data(shared_data / "falcon_yeast" / "lee2012" / "genedata_75.txt")
    net = datasets.yeast(version)
    res = eflux(net, genes["mean"])
    v = res["flux"].values
    assert np.abs(net.S @ v).max() <= 1e-7 * max(1.0, np.abs(v).max())
    assert np.all(v >= res["lower"].values - 1e-7) and np.all(v <= res["upper"].values + 1e-7)
    assert res.attrs["alpha"] >= res.attrs["alpha_min"]
    assert res.attrs["objective_value"] > 0
