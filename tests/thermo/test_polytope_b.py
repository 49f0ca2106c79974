"""Concentration polytope B: minimal L1 violation (seed 002 Eq. 11), feasibility and caching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bayesflux.thermo import ThermoModel, ecoli_core
from bayesflux.thermo.loops import find_loop
from bayesflux.thermo.polytope_b import ConcentrationPolytope, check_sign_pattern, sign_pattern

ALL_PATTERNS = [np.array(p, dtype=np.int8) for p in itertools.product((-1, 0, 1), repeat=3)]


def test_feasibility_agrees_with_independent_lp_and_loop_law(triangle_thermo):
    """Wide enough bounds: a pattern is feasible iff it has no sign-consistent cycle (Gordan)."""
    B = ConcentrationPolytope(triangle_thermo)
    for s in ALL_PATTERNS:
        feasible = B.is_feasible(s)
        assert feasible == check_sign_pattern(triangle_thermo, s)
        assert feasible == (find_loop(triangle_thermo, s) is None)
    assert not B.is_feasible(np.array([1, 1, -1]))
    assert not B.is_feasible(np.array([-1, -1, 1]))
    assert B.lp_solves == len(ALL_PATTERNS)  # each pattern solved once, then cached
    B.is_feasible(np.array([1, 1, -1]))
    assert B.lp_solves == len(ALL_PATTERNS)


def test_minimal_violation_closed_form(triangle):
    """Fixed concentrations: ΔrG is fixed, so the violation is its distance to the allowed side.

    ΔrG0 = (-2, 0.5, -1.5) and c_A = c_B = c_C: R2 forwards needs ΔrG2 <= -δ, violated by 0.5 + δ;
    R1 backwards needs ΔrG1 >= δ, violated by 2 + δ.
    """
    t = ThermoModel.from_data(
        triangle, {"R1": -2.0, "R2": 0.5, "R3": -1.5}, default_lnc_bounds=(-5.0, -5.0), margin=0.1
    )
    B = ConcentrationPolytope(t)
    v = B.violation(np.array([-1, 1, 0]))
    np.testing.assert_allclose(v.eps, [-(2.0 + 0.1), 0.5 + 0.1, 0.0], atol=1e-9)
    assert v.total == pytest.approx(2.7)
    assert not v.feasible
    ok = B.violation(np.array([1, -1, 1]))
    assert ok.feasible and ok.total == 0.0


def test_violation_is_monotone_in_the_margin(triangle):
    """A larger δ can only increase the minimal violation (the allowed set shrinks)."""
    totals = []
    for margin in (0.0, 1.0, 5.0):
        t = ThermoModel.from_data(
            triangle,
            {"R1": -2.0, "R2": 0.5, "R3": -1.5},
            default_lnc_bounds=(-3.0, -2.0),
            margin=margin,
        )
        totals.append(ConcentrationPolytope(t).violation(np.array([1, 1, 1])).total)
    assert totals[0] <= totals[1] <= totals[2]
    assert totals[2] > 0


def test_sign_pattern_ignores_tiny_fluxes(triangle_thermo):
    v = np.array([[5.0, 2.0, 1e-12, -3.0, 4.0, 1.0]])  # EX_A, R1, R2, R3, EX_B, EX_C
    np.testing.assert_array_equal(sign_pattern(v, triangle_thermo), [[1, 0, -1]])


def test_ecoli_core_fluxes_batch(textbook):
    """FBA optimum of E. coli core (SUCDi running, FRD7 off) is thermodynamically feasible with
    wide bounds; adding the reverse loop flux through FRD7 makes it infeasible."""
    from bayesflux.methods import fba

    t = ecoli_core(bounds="wide")
    B = ConcentrationPolytope(t)
    v = fba(textbook)["flux"].values
    looped = v.copy()
    looped[textbook.reaction_index["FRD7"]] = 1.0
    looped[textbook.reaction_index["SUCDi"]] += 1.0
    ok = B.feasible_fluxes(np.stack([v, looped]))
    assert ok.tolist() == [True, False]


def test_wrong_pattern_length(triangle_thermo):
    with pytest.raises(ValueError, match="3 entries"):
        ConcentrationPolytope(triangle_thermo).violation(np.array([1, 1]))
