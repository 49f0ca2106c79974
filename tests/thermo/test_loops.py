"""Infeasible loops and sectors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize

from bayesflux.network import Network
from bayesflux.thermo import ThermoDataError, ThermoModel, check_sign_pattern, ecoli_core
from bayesflux.thermo.loops import (
    SignFeasibility,
    enumerate_loops,
    find_loop,
    sector_patterns,
    sectors,
)


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


# --- sector enumeration by pruned depth-first search, against the product of all sign choices ---


def _nonempty(net, pattern: dict[str, int]) -> bool:
    """Independent LP (scipy) for the closed orthant piece of ``pattern``."""
    lb, ub = net.lb.copy(), net.ub.copy()
    for r, s in pattern.items():
        j = net.reaction_index[r]
        lb[j], ub[j] = (
            (max(lb[j], 0), ub[j]) if s > 0 else (lb[j], min(ub[j], 0)) if s < 0 else (0, 0)
        )
    if np.any(lb > ub):
        return False
    res = scipy.optimize.linprog(
        np.zeros(net.n_reactions),
        A_eq=net.S.toarray(),
        b_eq=np.zeros(net.n_metabolites),
        bounds=list(zip(lb, ub)),
        method="highs",
    )
    return res.status == 0


def _second_law_ok(thermo, pattern: dict[str, int]) -> bool:
    s = np.zeros(thermo.n_constrained)
    for r, x in pattern.items():
        if r in thermo.reactions:
            s[thermo.reactions.index(r)] = x
    return check_sign_pattern(thermo, s)


def _brute_force(thermo, loops, *, second_law: bool = False) -> set[tuple[int, ...]]:
    """The former enumeration: every combination of signs, filtered; optionally the second law
    (each sign checked alone first, then the whole pattern), all by fresh scipy LPs."""
    net = thermo.network
    names = list(dict.fromkeys(r for lp in loops for r in lp.reactions))
    choices = []
    for r in names:
        j = net.reaction_index[r]
        opts = [s for s, ok in ((1, net.ub[j] > 0), (-1, net.lb[j] < 0)) if ok]
        opts += [0] if net.lb[j] <= 0 <= net.ub[j] else []
        if second_law:
            opts = [
                s
                for s in opts
                if s == 0 or (_nonempty(net, {r: s}) and _second_law_ok(thermo, {r: s}))
            ]
        choices.append(opts)

    def loop_free(signs):
        return not any(lp.realised_by(signs) for lp in loops)

    out = set()
    for combo in itertools.product(*choices):
        signs = dict(zip(names, combo))
        if not loop_free(signs):
            continue
        if any(
            loop_free({**signs, r: s})
            for r, opts in zip(names, choices)
            if signs[r] == 0
            for s in opts
            if s != 0
        ):
            continue
        if second_law and not _second_law_ok(thermo, {r: s for r, s in signs.items() if s}):
            continue
        if not _nonempty(net, signs):
            continue
        out.add(combo)
    return out


def _square_thermo() -> ThermoModel:
    """Four metabolites, six reversible internal reactions (14 sign-consistent loops), A taken up
    (at least 1), C and D secreted. ΔrG0 from formation energies (A 0, B -5, C -15, D -6 kJ/mol)
    under ln c in [ln 1e-3, ln 1e-1]: R3 can only run forwards, and some pairs of directions need
    incompatible concentrations."""
    rxns = {
        "EX_A": ({"A": 1}, (1, 10)),
        "R1": ({"A": -1, "B": 1}, (-10, 10)),
        "R2": ({"B": -1, "C": 1}, (-10, 10)),
        "R3": ({"A": -1, "C": 1}, (-10, 10)),
        "R4": ({"C": -1, "D": 1}, (-10, 10)),
        "R5": ({"B": -1, "D": 1}, (-10, 10)),
        "R6": ({"A": -1, "D": 1}, (-3, 10)),
        "EX_C": ({"C": -1}, (0, 10)),
        "EX_D": ({"D": -1}, (0, 2)),
    }
    net = Network.from_stoichiometry(
        {r: st for r, (st, _) in rxns.items()},
        bounds={r: b for r, (_, b) in rxns.items()},
        id="square",
    )
    g = {"A": 0.0, "B": -5.0, "C": -15.0, "D": -6.0}
    drg0 = {r: sum(c * g[m] for m, c in st.items()) for r, (st, _) in rxns.items() if r[0] == "R"}
    return ThermoModel.from_data(
        net, drg0, default_lnc_bounds=(float(np.log(1e-3)), float(np.log(1e-1))), margin=0.1
    )


@pytest.fixture(scope="module")
def square() -> tuple[ThermoModel, list]:
    t = _square_thermo()
    return t, enumerate_loops(t)


@pytest.mark.parametrize("second_law", [False, True])
@pytest.mark.parametrize("model", ["triangle", "square", "ecoli_core"])
def test_sector_search_matches_brute_force(model, second_law, triangle_thermo, square):
    if model == "square":
        t, loops = square
    else:
        t = triangle_thermo if model == "triangle" else ecoli_core()
        loops = enumerate_loops(t)
    found = sector_patterns(t, loops, concentrations=second_law)
    assert set(found.patterns) == _brute_force(t, loops, second_law=second_law)
    assert len(found.patterns) == len(set(found.patterns))
    if model == "square":  # the square is where pruning has work to do
        assert len(loops) >= 5
        assert found.stats["pruned_loop"] > 0 and found.stats["pruned_zero"] > 0
        assert found.stats["pruned_second_law" if second_law else "pruned_empty"] > 0


def test_sectors_from_search_are_loop_free_and_nonempty(square):
    t, loops = square
    secs = sectors(t, loops, concentrations=True)
    assert {tuple(s.signs.values()) for s in secs} <= _brute_force(t, loops, second_law=True)
    for s in secs:
        assert not any(lp.realised_by(s.signs) for lp in loops)
        assert _nonempty(t.network, s.signs)
    assert sum(s.weight for s in secs) == pytest.approx(1.0)
    assert len({s.dim for s in secs}) == 1


def test_sign_feasibility_matches_scipy(rng):
    """Cached LP answers (with witnesses and subset pruning) against fresh scipy LPs on E. coli
    core: random partial patterns of 1-6 reactions, some repeated, some extending others."""
    net = ecoli_core().network
    lp = SignFeasibility(net)
    patterns = []
    for _ in range(60):
        size = int(rng.integers(1, 7))
        js = rng.choice(net.n_reactions, size=size, replace=False)
        patterns.append({int(j): int(rng.choice([-1, 0, 1])) for j in js})
    patterns += patterns[:10] + [{**a, **b} for a, b in zip(patterns[:10], patterns[10:20])]
    for p in patterns:
        named = {net.reactions[j]: s for j, s in p.items()}
        assert lp.feasible(p) == _nonempty(net, named), named
    assert lp.stats["cache_hits"] >= 10
    assert lp.stats["lp_solves"] < len(patterns)


def test_sector_weights_are_flux_volumes(triangle, rng):
    """With R2 in [-1, 10] the two triangle sectors differ in shape; their EP weights must follow
    the Monte Carlo volume fractions in flux space. (The polytope's coordinates scale each flux by
    its range in that sector: weights taken in those coordinates come out 0.41 / 0.59 here, against
    Monte Carlo 0.79 / 0.21.)"""
    net = triangle.with_bounds({"R2": (-1.0, 10.0)})
    t = ThermoModel.from_data(net, {"R1": -2.0, "R2": 0.5, "R3": -1.5})
    secs = sectors(t, enumerate_loops(t))
    v = rng.uniform(-10, 10, size=(400_000, 3))
    r1, r2, r3 = v.T
    box = [(x >= 0) & (x <= 10) for x in (r1 + r3, r1 - r2, r2 + r3)]
    signs = np.sign(v[np.all(box + [r2 >= -1], axis=0)])
    mc = np.array(
        [np.mean(np.all(signs == [s.signs[r] for r in ("R1", "R2", "R3")], axis=1)) for s in secs]
    )
    mc /= mc.sum()
    # EP's exp(H) is a volume proxy: 0.04 off the Monte Carlo fraction (MC error ~1e-3) here
    np.testing.assert_allclose([s.weight for s in secs], mc, atol=0.06)


#: the four smallest loops of the yeast TSM (enumerate_loops(t, max_loops=4), 70 s there)
YEAST_LOOPS = (
    {"Htm": -1, "OAAtm-2+2H": 1, "OAAtm-2": -1},
    {"SUCCt-2+2H": 1, "SUCCt-2+H": -1, "SUCCt-2": 1},
    {"OAAtm-2+2H": 1, "OAAtm-2+H": -1, "OAAtm-2": 1},
    {"GLYK": -1, "G3PT": -1, "ATPHYD": 1},
)


def test_yeast_tsm_sectors_match_brute_force(shared_data):
    """Issue 19: 4 loops on 10 reactions (3^10 sign combinations, too many for the product
    enumeration's old limit). The pruned search with the second law must give exactly the
    patterns of the product enumeration, checked here by fresh scipy LPs."""
    from bayesflux.thermo import niebel_tsm

    _, t = niebel_tsm("yeast", folder=shared_data)
    loops = []
    for spec in YEAST_LOOPS:
        s = np.zeros(t.n_constrained)
        for r, x in spec.items():
            s[t.reactions.index(r)] = x
        loop = find_loop(t, s)
        assert loop is not None and dict(zip(loop.reactions, loop.signs)) == spec
        loops.append(loop)
    found = sector_patterns(t, loops, concentrations=True)
    assert set(found.patterns) == _brute_force(t, loops, second_law=True)
    assert found.stats["lp_solves"] < 100


def test_search_stops_at_the_limit(square):
    t, loops = square
    with pytest.raises(ThermoDataError, match="more than 3"):
        sector_patterns(t, loops, limit=3)
    with pytest.raises(ThermoDataError, match="max_sectors"):
        sectors(t, loops, max_sectors=3)


def test_shared_cache_answers_a_repeated_search(square):
    """A second search with the same cache solves no LP: every partial pattern is cached."""
    t, loops = square
    cache = SignFeasibility(t.network)
    first = sector_patterns(t, loops, feasibility=cache)
    solved = cache.stats["lp_solves"]
    again = sector_patterns(t, loops, feasibility=cache)
    assert again.patterns == first.patterns
    assert cache.stats["lp_solves"] == solved and cache.stats["cache_hits"] > 0


def _strict_nonempty(net, pattern: dict[str, int], eps: float) -> bool:
    """Independent LP: a flux with ``s_j v_j >= eps`` for the signs and ``v_j = 0`` for zeros."""
    lb, ub = net.lb.copy(), net.ub.copy()
    for r, s in pattern.items():
        j = net.reaction_index[r]
        lb[j], ub[j] = (
            (max(lb[j], eps), ub[j]) if s > 0 else (lb[j], min(ub[j], -eps)) if s < 0 else (0, 0)
        )
    if np.any(lb > ub):
        return False
    res = scipy.optimize.linprog(
        np.zeros(net.n_reactions),
        A_eq=net.S.toarray(),
        b_eq=np.zeros(net.n_metabolites),
        bounds=list(zip(lb, ub)),
        method="highs",
    )
    return res.status == 0


@pytest.mark.parametrize("model", ["triangle", "square"])
def test_thermodynamic_sectors_match_full_sign_enumeration(model, triangle_thermo, square):
    """The TSM MILP check against brute force over every sign of every reaction under the second
    law: a pattern is kept iff some full sign pattern extending it strictly has a non-empty B
    (scipy) and a flux running it strictly (scipy)."""
    t, loops = square if model == "square" else (triangle_thermo, enumerate_loops(triangle_thermo))
    eps = 1e-6
    found = sector_patterns(t, loops, concentrations=True, thermodynamic=True, min_flux=eps)
    names = found.reactions
    others = [r for r in t.reactions if r not in names]
    expected = set()
    for combo in _brute_force(t, loops, second_law=True):
        for rest in itertools.product((1, -1, 0), repeat=len(others)):
            full = {**dict(zip(names, combo)), **dict(zip(others, rest))}
            if _second_law_ok(t, full) and _strict_nonempty(t.network, full, eps):
                expected.add(combo)
                break
    assert set(found.patterns) == expected
    assert found.stats["milp_solves"] >= len(expected)
    if model == "square":
        assert found.stats["pruned_tsm"] > 0
