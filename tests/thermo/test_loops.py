"""Infeasible loops and sectors."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.thermo import ecoli_core
from bayesflux.thermo.loops import enumerate_loops, find_loop, sectors


def test_find_loop_returns_the_cycle(triangle_thermo):
    loop = find_loop(triangle_thermo, np.array([1, 1, -1]))
    assert loop is not None
    assert set(zip(loop.reactions, loop.signs)) == {("R1", 1), ("R2", 1), ("R3", -1)}
    S = triangle_thermo.S
    n = np.zeros(3)
    for r, w in zip(loop.reactions, loop.weights):
        n[triangle_thermo.reactions.index(r)] = w
    np.testing.assert_allclose(S @ n, 0.0, atol=1e-12)
    assert find_loop(triangle_thermo, np.array([1, -1, 1])) is None


def test_enumerate_triangle_loops(triangle_thermo):
    loops = enumerate_loops(triangle_thermo)
    patterns = {tuple(sorted(zip(lp.reactions, lp.signs))) for lp in loops}
    assert patterns == {
        (("R1", 1), ("R2", 1), ("R3", -1)),
        (("R1", -1), ("R2", -1), ("R3", 1)),
    }


def test_ecoli_core_has_one_loop():
    """SUCDi (succ + q8 -> fum + q8h2) and FRD7 (the reverse) are E. coli core's only internal
    cycle that its flux bounds allow; PPCK/PPC or ME1/ME2 cycles exchange ATP/NADPH, not loops."""
    loops = enumerate_loops(ecoli_core())
    assert [set(lp.reactions) for lp in loops] == [{"SUCDi", "FRD7"}]
    assert loops[0].signs == (1, 1)


def test_triangle_sectors_and_ep_weights(triangle_thermo, rng):
    """With EX_A, EX_B, EX_C >= 0 only four orthants of (R1, R2, R3) are full-dimensional; two of
    them run the loop, the other two, (+, +, +) and (+, -, +), are the sectors. Their EP weights
    must match Monte Carlo volume fractions (uniform points of the box, v_EX from mass balance)."""
    loops = enumerate_loops(triangle_thermo)
    secs = sectors(triangle_thermo, loops)
    keys = sorted(tuple(s.signs[r] for r in ("R1", "R2", "R3")) for s in secs)
    assert keys == [(1, -1, 1), (1, 1, 1)]
    assert not any(lp.realised_by(s.signs) for s in secs for lp in loops)
    assert sum(s.weight for s in secs) == pytest.approx(1.0)
    v = rng.uniform(-10, 10, size=(200_000, 3))
    r1, r2, r3 = v.T
    inside = np.all([(x >= 0) & (x <= 10) for x in (r1 + r3, r1 - r2, r2 + r3)], axis=0)
    signs = np.sign(v[inside])
    mc = {k: np.mean(np.all(signs == k, axis=1)) for k in keys}
    total = sum(mc.values())
    for s in secs:
        key = tuple(s.signs[r] for r in ("R1", "R2", "R3"))
        # MC standard error of a fraction near 0.25 from ~1e5 points is ~1.5e-3
        assert s.weight == pytest.approx(mc[key] / total, abs=0.02)


def test_ecoli_core_sectors_put_one_loop_reaction_at_zero():
    t = ecoli_core()
    secs = sectors(t, enumerate_loops(t))
    assert sorted(tuple(sorted(s.signs.items())) for s in secs) == [
        (("FRD7", 0), ("SUCDi", 1)),
        (("FRD7", 1), ("SUCDi", 0)),
    ]
    assert sum(s.weight for s in secs) == pytest.approx(1.0)
