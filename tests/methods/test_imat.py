"""iMAT: the MILP against brute-force enumeration of activity patterns (independent LPs)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize as so

from bayesflux import Network
from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.expression import abundance_vector
from bayesflux.methods.imat import imat

EXPR = {"g1": 3.0, "g2": 1.0, "g3": 0.5, "g4": 4.0, "g5": 2.0, "g6": 0.1}


def _brute_force(network, e, low, high, eps):
    """Max number of agreeing reactions over all sign patterns, each checked by an LP."""
    high_set = [j for j in range(network.n_reactions) if e[j] >= high]
    low_set = [j for j in range(network.n_reactions) if e[j] <= low]
    S = network.S.toarray()
    best = 0
    # each high reaction: +1 (v >= eps), -1 (v <= -eps) or 0 (free); each low: 1 (v = 0) or free
    for hs in itertools.product([1, -1, 0], repeat=len(high_set)):
        for ls in itertools.product([1, 0], repeat=len(low_set)):
            score = sum(h != 0 for h in hs) + sum(ls)
            if score <= best:
                continue
            lb, ub = network.lb.copy(), network.ub.copy()
            for j, h in zip(high_set, hs):
                if h == 1:
                    lb[j] = max(lb[j], eps)
                elif h == -1:
                    ub[j] = min(ub[j], -eps)
            for j, s in zip(low_set, ls):
                if s:
                    lb[j], ub[j] = max(lb[j], 0), min(ub[j], 0)
            if np.any(lb > ub):
                continue
            res = so.linprog(np.zeros(network.n_reactions), A_eq=S,
                             b_eq=np.zeros(S.shape[0]), bounds=list(zip(lb, ub)))
            if res.status == 0:
                best = score
    return best


@pytest.mark.parametrize("eps", [0.5, 6.0])
def test_matches_brute_force(small, eps):
    res = imat(small, EXPR, eps=eps, low=1.0, high=2.0)
    e = abundance_vector(small, EXPR)
    assert res.attrs["objective_value"] == _brute_force(small, e, 1.0, 2.0, eps)
    assert res["satisfied"].sum() == res.attrs["objective_value"]
    np.testing.assert_allclose(small.S @ res["flux"].values, 0, atol=1e-7)


def test_random_networks_match_brute_force(rng):
    for trial in range(3):
        net = Network.from_stoichiometry(
            {"EX_A": {"A": 1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "C": 1},
             "R3": {"B": -1, "C": 1}, "R4": {"C": -1, "D": 1}, "R5": {"B": -1, "D": 1},
             "EX_D": {"D": -1}},
            bounds={"EX_A": (0, 10), "R3": (-10, 10)},
            gpr={f"R{i}": f"g{i}" for i in range(1, 6)},
        )
        expr = {f"g{i}": float(x) for i, x in enumerate(rng.uniform(0, 10, 5), start=1)}
        res = imat(net, expr, low_quantile=0.4, high_quantile=0.6, eps=1.0)
        e = abundance_vector(net, expr)
        ref = _brute_force(net, e, res.attrs["low"], res.attrs["high"], 1.0)
        assert res.attrs["objective_value"] == ref, trial


def test_bad_thresholds_and_data(small):
    with pytest.raises(ValueError, match="thresholds overlap"):
        imat(small, EXPR, low=3.0, high=1.0)
    with pytest.raises(NetworkError):
        imat(small, {"other": 1.0})
    with pytest.raises(ValueError, match="eps"):
        imat(small, EXPR, eps=0)
    infeasible = small.with_bounds({"BIOMASS": (20, 30)})
    with pytest.raises(InfeasibleError):
        imat(infeasible, EXPR)


def test_eps_larger_than_capacity_is_a_documented_result(small):
    # no reaction can carry 100 > uptake 10: high reactions cannot be active, only lows count
    res = imat(small, EXPR, eps=100.0, low=1.0, high=2.0)
    assert res["satisfied"].sel(reaction=["R1", "R3", "R4"]).sum() == 0
