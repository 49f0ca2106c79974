"""GIMME against an independent LP written with scipy.optimize.linprog."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so

from bayesflux import datasets
from bayesflux.errors import NetworkError
from bayesflux.expression import abundance_vector
from bayesflux.methods.gimme import GimmeLP, gimme


def _reference(network, e, threshold, fraction):
    """Variables [v, a] with a >= |v|: min w a s.t. S v = 0, bounds, c v >= f Z*."""
    n = network.n_reactions
    c = network.objective
    S = network.S.toarray()
    bounds = list(zip(network.lb, network.ub))
    z = -so.linprog(-c, A_eq=S, b_eq=np.zeros(S.shape[0]), bounds=bounds).fun
    w = np.where(np.isnan(e) | (e >= threshold), 0.0, threshold - np.nan_to_num(e))
    eye = np.eye(n)
    A_ub = np.block([[eye, -eye], [-eye, -eye], [-c[None], np.zeros((1, n))]])
    b_ub = np.concatenate([np.zeros(2 * n), [-fraction * z]])
    res = so.linprog(np.concatenate([np.zeros(n), w]), A_ub, b_ub,
                     A_eq=np.hstack([S, np.zeros_like(S)]), b_eq=np.zeros(S.shape[0]),
                     bounds=bounds + [(0, None)] * n)
    return res.fun, z


@pytest.mark.parametrize("fraction", [0.3, 0.9, 1.0])
def test_matches_independent_lp(textbook, rng, fraction):
    expr = {g: float(x) for g, x in zip(textbook.genes, rng.lognormal(size=len(textbook.genes)))}
    res = gimme(textbook, expr, fraction=fraction)
    e = abundance_vector(textbook, expr)
    ref, z = _reference(textbook, e, res.attrs["threshold"], fraction)
    assert res.attrs["optimal_objective"] == pytest.approx(z, rel=1e-6)
    assert res.attrs["inconsistency"] == pytest.approx(ref, rel=1e-5, abs=1e-6)
    assert res.attrs["objective_value"] >= fraction * z - 1e-6


def test_threshold_by_quantile_and_weights(small):
    expr = {"g1": 3.0, "g2": 1.0, "g3": 0.5, "g4": 4.0, "g5": 2.0, "g6": 0.1}
    res = gimme(small, expr, threshold=2.5)
    w = res["weight"].to_series()
    assert w["R1"] == 0 and w["R2"] == pytest.approx(1.0) and w["R5"] == pytest.approx(2.4)
    assert float(res["flux"].sel(reaction="R2")) == pytest.approx(0, abs=1e-7)
    assert float(res["flux"].sel(reaction="BIOMASS")) == pytest.approx(9.0, rel=1e-6)


def test_is_dpp(small):
    assert GimmeLP(small, small.objective).problem.is_dpp()


def test_errors(small):
    with pytest.raises(NetworkError):
        gimme(small, {"nope": 1.0})
    with pytest.raises(ValueError, match="fraction"):
        gimme(small, {"g1": 1.0}, fraction=2)


def test_yeast5_runs(shared_data):
    from bayesflux.expression import read_gene_data

    genes = read_gene_data(shared_data / "falcon_yeast/lee2012/genedata_75.txt")
    res = gimme(datasets.yeast("5.21"), genes["mean"])
    assert res.attrs["objective_value"] >= 0.9 * res.attrs["optimal_objective"] - 1e-6
