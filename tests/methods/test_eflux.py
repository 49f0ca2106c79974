"""E-Flux: bounds alpha * e, closed-form optimum on the small network, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.methods.eflux import eflux

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


def test_errors(small):
    with pytest.raises(NetworkError, match="no reaction"):
        eflux(small, {"zz": 1.0})
    with pytest.raises(InfeasibleError, match="reaction 'R1'"):
        eflux(small.with_bounds({"R1": (5, 10)}), EXPR, alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        eflux(small, EXPR, alpha=0)
