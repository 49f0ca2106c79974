"""ecModels: GPR complexes, closed forms, an independent sMOMENT LP, cobra/SBML, overflow."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from bayesflux.errors import NetworkError
from bayesflux.methods import fba
from bayesflux.methods.ecmodel import (
    POOL_EXCHANGE,
    ec_model,
    ecoli_core_enzyme_table,
    growth_scan,
    isozymes,
    read_enzyme_table,
)
from bayesflux.network import read_sbml

BIOMASS = "Biomass_Ecoli_core"
GLUCOSE = "EX_glc__D_e"
# Overflow budget, from proteome sectors (Scott et al. 2010, Science 330:1099): protein is
# ~0.55 g/gDW; the growth-independent sector phi_Q ~ 0.45 and the ribosomal offset phi_R0 ~ 0.07
# leave 0.55 (1 - 0.45 - 0.07) = 0.264 g/gDW for metabolic enzymes, and the ribosomal sector
# grows as mu / kappa_t with kappa_t ~ 4.5 1/h, i.e. 0.55 / 4.5 = 0.122 g/gDW per 1/h of growth.
BUDGET = 0.55 * (1 - 0.45 - 0.07)
RIBOSOME = 0.55 / 4.5


def test_isozymes_are_the_dnf_terms():
    assert isozymes("(A and B) or C") == [("A", "B"), ("C",)]
    assert isozymes("A and (B or C)") == [("A", "B"), ("A", "C")]
    assert isozymes("A or (A and B)") == [("A",)]  # absorbed
    assert isozymes("(A and s0001) or B") == [("A",), ("B",)]
    assert isozymes("A or s0001") is None  # a spontaneous alternative: no enzyme needed
    assert isozymes("") is None


def _table(rows):
    return pd.DataFrame(rows, columns=["reaction", "gene", "kcat", "mw"])


def _path_cost(kcat, mw, genes):
    return sum(mw[g] for g in genes) / (3.6e6 * kcat)


def test_small_network_closed_form(small):
    """Biomass = P / (cheapest path cost) below the uptake limit 10; an abundance caps g4."""
    mw = {"g1": 3e4, "g2": 5e4, "g3": 2e4, "g4": 4e4, "g5": 1e4, "g6": 6e4}
    kcat = {"R1": 10.0, "R2": 20.0, "R3": 5.0, "R4": 5.0, "R5": 50.0}
    rows = [(r, "", k, None) for r, k in kcat.items()] + [("", g, None, m) for g, m in mw.items()]
    rows.append(("R2", "g2", 40.0, None))  # the g2 isozyme of R2 is faster than R2's default
    c1 = _path_cost(kcat["R1"], mw, ["g1"])
    c2 = min(_path_cost(40.0, mw, ["g2"]), _path_cost(20.0, mw, ["g3"]))
    c34 = _path_cost(5.0, mw, ["g4", "g5"])
    c5 = _path_cost(kcat["R5"], mw, ["g6"])
    cheapest = min(c1, c2, c1 + c5, c2 + c5) + c34
    budget = 5.0 * cheapest  # biomass 5 < 10: the budget binds
    ec = ec_model(small, _table(rows), protein_budget=budget)
    res = fba(ec.network)
    assert res.attrs["objective_value"] == pytest.approx(5.0, rel=1e-9)
    w = res["flux"].values
    v = ec.net_flux(w)
    np.testing.assert_allclose(small.S @ v, 0, atol=1e-9)
    assert ec.protein_usage(w) == pytest.approx(budget, rel=1e-9)
    assert ec.kcat["R2_No1"] == 40.0 and ec.kcat["R2_No2"] == 20.0  # g2 then g3 isozyme
    # a measured abundance of g4 (mmol/gDW) caps R3 + R4 = biomass at 3600 kcat E_g4
    capped = ec_model(small, _table(rows), protein_budget=budget, abundances={"g4": 1e-4})
    assert fba(capped.network).attrs["objective_value"] == pytest.approx(3600 * 5.0 * 1e-4)
    # a loose budget leaves the uptake limit
    loose = ec.with_budget(100 * budget)
    assert fba(loose.network).attrs["objective_value"] == pytest.approx(10.0)


def _smoment_optimum(net, table, budget, ribosome):
    """max biomass s.t. S v = 0, bounds, sum_r |v_r| min_iso sum_g MW_g / (3.6e6 kcat) + c mu <= P.

    Written directly (no enzyme species): each enzymatic reaction costs its cheapest isozyme.
    """
    kc = {(r, g): k for r, g, k in zip(table["reaction"], table["gene"], table["kcat"]) if r}
    mw = {g: m for r, g, m in zip(table["reaction"], table["gene"], table["mw"]) if not r}
    n = net.n_reactions
    cost = np.zeros(n)
    for j, (rid, rule) in enumerate(zip(net.reactions, net.gpr)):
        complexes = isozymes(rule)
        if complexes is None:
            continue
        per = []
        for genes in complexes:
            specific = [kc[(rid, g)] for g in genes if (rid, g) in kc]
            k = min(specific) if specific else kc[(rid, "")]
            per.append(sum(mw[g] for g in genes) / (3.6e6 * k))
        cost[j] = min(per)
    v = cp.Variable(n)
    vf, vb = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True)
    b = net.reactions.index(BIOMASS)
    problem = cp.Problem(
        cp.Maximize(v[b]),
        [
            net.S @ v == 0,
            v >= net.lb,
            v <= net.ub,
            v == vf - vb,
            cost @ (vf + vb) + ribosome * v[b] <= budget,
        ],
    )
    problem.solve(solver=cp.HIGHS)
    assert problem.status == cp.OPTIMAL
    return problem.value


@pytest.fixture(scope="module")
def free_glucose(textbook):
    return textbook.with_bounds({GLUCOSE: (-1000.0, 0.0)})


def test_textbook_matches_independent_smoment_lp(free_glucose, rng):
    """Random kcats, isozyme-specific kcats and MWs: the GECKO network and the direct LP agree."""
    base = ecoli_core_enzyme_table()
    table = base.copy()
    kcat_rows = table["kcat"].notna()
    table.loc[kcat_rows, "kcat"] = rng.lognormal(np.log(65), 1.5, kcat_rows.sum())
    mw_rows = table["mw"].notna()
    table.loc[mw_rows, "mw"] = rng.uniform(1e4, 1e5, mw_rows.sum())
    specific = pd.DataFrame(
        {
            "reaction": ["ATPS4r", "CYTBD", "PFL", "ACKr"],
            "gene": ["b3739", "b0733", "b3951", "b1849"],
            "kcat": [500.0, 3.0, 900.0, 0.5],
            "mw": [np.nan] * 4,
        }
    )
    table = pd.concat([table, specific], ignore_index=True)
    for budget, ribosome in ((0.1, 0.0), (BUDGET, RIBOSOME)):
        growth = {BIOMASS: ribosome} if ribosome else None
        ec = ec_model(free_glucose, table, protein_budget=budget, growth_protein=growth)
        ours = fba(ec.network).attrs["objective_value"]
        direct = _smoment_optimum(free_glucose, table.fillna({"gene": ""}), budget, ribosome)
        assert ours == pytest.approx(direct, rel=1e-8)


def test_cobra_and_sbml_round_trip(free_glucose, tmp_path):
    from cobra.io import write_sbml_model

    ec = ec_model(free_glucose, ecoli_core_enzyme_table(), protein_budget=0.1)
    expected = fba(ec.network).attrs["objective_value"]
    model = ec.network.to_cobra()
    assert model.slim_optimize() == pytest.approx(expected, rel=1e-8)
    path = tmp_path / "ec_core.xml"
    write_sbml_model(model, str(path))
    back = read_sbml(path)
    assert back.reactions == ec.network.reactions
    assert abs(back.S - ec.network.S).max() <= 1e-15
    assert fba(back).attrs["objective_value"] == pytest.approx(expected, rel=1e-8)


def test_overflow_onset_and_linear_rise(free_glucose):
    """Acetate is zero below a critical growth rate and rises linearly above it (Basan et al.
    2015, Nature 528:99: onset near 0.76 1/h in glucose-limited chemostats)."""
    ec = ec_model(
        free_glucose,
        ecoli_core_enzyme_table(),
        protein_budget=BUDGET,
        growth_protein={BIOMASS: RIBOSOME},
    )
    mus = np.round(np.arange(0.40, 0.86, 0.01), 10)
    scan = growth_scan(ec, mus, biomass=BIOMASS, substrate=GLUCOSE, report=["EX_ac_e"])
    assert scan["feasible"].all()
    ac = scan["EX_ac_e"].values
    first = int(np.flatnonzero(ac > 1e-6)[0])
    # first linear piece, extrapolated back to zero acetate: the onset
    slope = (ac[first + 1] - ac[first]) / (mus[first + 1] - mus[first])
    onset = mus[first] - ac[first] / slope
    assert 0.6 <= onset <= 0.9
    assert np.all(np.abs(ac[mus < onset - 1e-6]) <= 1e-7)
    # the protein pool is slack below the onset and full above it
    assert np.all(scan["protein"].values[mus < onset - 0.01] < BUDGET - 1e-6)
    assert np.allclose(scan["protein"].values[mus > onset], BUDGET, rtol=1e-8)
    # linear above the onset: the next 0.03 1/h lie on the same line
    above = (mus > onset) & (mus <= onset + 0.03)
    np.testing.assert_allclose(ac[above], slope * (mus[above] - onset), rtol=1e-6, atol=1e-8)
    assert slope > 0
    # without a binding budget there is no overflow at any of these growth rates
    loose = growth_scan(
        ec.with_budget(100.0), mus[::3], biomass=BIOMASS, substrate=GLUCOSE, report=["EX_ac_e"]
    )
    assert np.all(np.abs(loose["EX_ac_e"].values) <= 1e-7)


def test_errors_name_the_culprit(small, tmp_path):
    with pytest.raises(NetworkError, match="'R9'"):
        ec_model(small, _table([("R9", "", 10.0, None)]), protein_budget=1.0)
    with pytest.raises(NetworkError, match="kcat"):
        ec_model(small, _table([("R1", "", -1.0, None)]), protein_budget=1.0)
    with pytest.raises(NetworkError, match="conflicting kcat values for reaction 'R1'"):
        ec_model(small, _table([("R1", "", 1.0, None), ("R1", "", 2.0, None)]), protein_budget=1)
    with pytest.raises(NetworkError, match="conflicting mw values for gene 'g1'"):
        ec_model(small, _table([("", "g1", None, 1e4), ("", "g1", None, 2e4)]), protein_budget=1)
    with pytest.raises(NetworkError, match="'gz'"):
        ec_model(small, None, protein_budget=1.0, abundances={"gz": 1.0})
    path = tmp_path / "bad.csv"
    path.write_text("reaction,gene,kcat\nR1,,10\n")
    with pytest.raises(NetworkError, match="mw"):
        read_enzyme_table(path)
    with pytest.raises(ValueError, match="protein_budget"):
        ec_model(small, None, protein_budget=-1.0)


def test_bundled_table_covers_textbook(textbook):
    table = ecoli_core_enzyme_table()
    ec = ec_model(textbook, table, protein_budget=0.2)
    assert set(ec.enzymes) == set(table.loc[table["mw"].notna(), "gene"])
    assert POOL_EXCHANGE in ec.network.reactions
    assert len(ec.kcat) > 0 and set(ec.kcat.values()) == {65.0}
