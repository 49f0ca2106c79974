"""ME-lite: tiny closed forms, bisection vs a grid scan, balances, FBA limit, RNA-seq penalty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from bayesflux import Network
from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.methods import fba
from bayesflux.methods.ecmodel import ecoli_core_enzyme_table
from bayesflux.methods.me_lite import (
    _MELiteLP,
    fixed_growth,
    growth_feasible,
    max_growth,
    me_lite,
)

BIOMASS = "Biomass_Ecoli_core"
GLUCOSE = "EX_glc__D_e"
# LP decisions are made at HiGHS tolerances (1e-9 on the scaled problem), so a growth rate found
# by bisection to 1e-8 agrees with another LP-based bound to ~1e-7: we compare to 1e-6.
MU_TOL = 1e-6

# tiny network: A is taken up (<= U), R1 (gene g1) makes B, biomass drains B; amino acids and
# nucleotides cost one A each; no ATP costs. Numbers chosen so that every term matters.
U, KCAT, L, L_R = 10.0, 0.01, 1000.0, 1000.0
K_R = 3600 * 1.0  # ribosome_rate 1 aa/s


def _tiny() -> Network:
    return Network.from_stoichiometry(
        {"EX_A": {"A": 1.0}, "R1": {"A": -1.0, "B": 1.0}, "BIO": {"B": -1.0}},
        bounds={"EX_A": (0.0, U)},
        objective={"BIO": 1.0},
        gpr={"R1": "g1"},
        id="tiny",
    )


def _tiny_model(**options):
    table = pd.DataFrame(
        {"reaction": ["R1", ""], "gene": ["", "g1"], "kcat": [KCAT, None], "mw": [None, 110 * L]}
    )
    return me_lite(
        _tiny(),
        table,
        energy={},
        atp_per_aa=0.0,
        atp_per_nt=0.0,
        aa_precursors={"A": -1.0},
        nt_precursors={"A": -1.0},
        ribosome_rate=1.0,
        ribosome_protein=L_R,
        **options,
    )


def test_tiny_closed_form_translation_only():
    """v_R1 = mu, E = mu / (3600 kcat), translation mu E; the ribosome makes L mu E + L_R mu R
    amino acids per hour at most K_R R, so R = L mu E / (K_R - L_R mu), and the uptake
    mu + (L mu E + L_R mu R) = U is the quadratic
    (c K_R - L_R) mu^2 + (K_R + U L_R) mu - U K_R = 0 with c = L / (3600 kcat)."""
    c = L / (3600 * KCAT)
    a, b, d = c * K_R - L_R, K_R + U * L_R, -U * K_R
    expected = (-b + np.sqrt(b * b - 4 * a * d)) / (2 * a)
    model = _tiny_model(transcription=False)
    res = max_growth(model, tol=1e-10)
    mu = float(res["growth_rate"])
    assert mu == pytest.approx(expected, abs=MU_TOL)
    assert 0.3 < mu < 0.9  # every cost binds: far below the uptake limit U
    assert float(res["enzyme"].sel(gene="g1")) == pytest.approx(mu / (3600 * KCAT), rel=1e-6)
    ribosome = L * mu * mu / (3600 * KCAT) / (K_R - L_R * mu)
    assert float(res["ribosome"]) == pytest.approx(ribosome, rel=1e-6)
    assert float(res["flux"].sel(reaction="EX_A")) == pytest.approx(U, rel=1e-7)
    assert growth_feasible(model, expected - 1e-6)
    assert not growth_feasible(model, expected + 1e-6)


def test_tiny_closed_form_with_transcription():
    """With mRNA (m = mu E / K_m, made at (mu + k_deg) m, nucleotides returned by decay), RNAP
    and rRNA: R and P solve (K_R - L_R mu) R - L_P mu P = L mu E and
    K_P P - L_rr mu R = 3 L (mu + k_deg) m; the uptake is
    mu + L mu E + L_R mu R + L_P mu P + 3 L mu m + L_rr mu R = U."""
    k_p, l_p, l_rr, k_m, kdeg = 2.0, 500.0, 2000.0, 0.001, 2.0
    K_P, K_m = 3600 * k_p, 3600 * k_m

    def uptake(mu):
        e = mu / (3600 * KCAT)
        m = mu * e / K_m
        A = np.array([[K_R - L_R * mu, -l_p * mu], [-l_rr * mu, K_P]])
        R, P = np.linalg.solve(A, [L * mu * e, 3 * L * (mu + kdeg) * m])
        return mu + L * mu * e + L_R * mu * R + l_p * mu * P + 3 * L * mu * m + l_rr * mu * R

    expected = brentq(lambda mu: uptake(mu) - U, 1e-6, 1.5, xtol=1e-14)
    model = _tiny_model(
        rnap_rate=k_p,
        rnap_protein=l_p,
        ribosome_rrna=l_rr,
        mrna_translation_rate=k_m,
        mrna_degradation=kdeg,
    )
    res = max_growth(model, tol=1e-10)
    mu = float(res["growth_rate"])
    assert mu == pytest.approx(expected, abs=MU_TOL)
    assert 0.1 < mu < 0.9
    e = mu / (3600 * KCAT)
    assert float(res["mrna"].sel(gene="g1")) == pytest.approx(mu * e / K_m, rel=1e-6)


@pytest.fixture(scope="module")
def core(textbook):
    return me_lite(textbook, ecoli_core_enzyme_table())


@pytest.fixture(scope="module")
def core_max(core):
    return max_growth(core)


def test_lp_is_dpp(core):
    assert _MELiteLP(core).problem.is_dpp()


def test_bisection_matches_grid_scan(core, core_max, textbook):
    """A brute-force scan of LP feasibility on nested grids (41 points, then 21 points around
    the last feasible one) brackets the bisection's growth rate to 1e-6; feasibility is
    monotone on every grid."""
    mu = float(core_max["growth_rate"])
    lo, hi = 0.0, fba(textbook).attrs["objective_value"]
    grid = np.linspace(lo, hi, 41)
    ok = growth_feasible(core, grid)
    while True:
        assert ok[0] and not ok[-1]
        last = int(np.flatnonzero(ok)[-1])
        assert ok[: last + 1].all() and not ok[last + 1 :].any()  # one feasible interval
        lo, hi = grid[last], grid[last + 1]
        if hi - lo < MU_TOL / 4:
            break
        grid = np.linspace(lo, hi, 21)
        ok = np.concatenate([[True], growth_feasible(core, grid[1:-1]), [False]])
    assert mu == pytest.approx(lo, abs=MU_TOL)
    assert 0.5 < mu < fba(textbook).attrs["objective_value"] - 0.05  # ME costs bite


def _amounts(model, res) -> np.ndarray:
    parts = [res["enzyme"].values, [float(res["ribosome"])]]
    if model.transcription:
        parts += [[float(res["rnap"])], res["mrna"].values]
    return np.concatenate(parts)


def test_mass_balance_dilution_and_capacities(core, core_max, textbook):
    res, net = core_max, core.network
    v, mu = res["flux"].values, float(res["growth_rate"])
    a = _amounts(core, res)
    np.testing.assert_allclose(net.S @ v, 0.0, atol=1e-8)
    assert np.all(v >= net.lb - 1e-9) and np.all(v <= net.ub + 1e-9)
    assert v[net.reaction_index[BIOMASS]] == pytest.approx(mu, rel=1e-9)
    # dilution: synthesis = (mu + k_deg) amount
    lhs = core.dilution @ v
    rhs = mu * (core.dilution_mu @ a) + core.dilution_const @ a
    np.testing.assert_allclose(lhs, rhs, rtol=1e-7, atol=1e-12 * np.abs(rhs).max())
    tl = net.indices([f"translation_{g}" for g in core.genes])
    np.testing.assert_allclose(v[tl], mu * res["enzyme"].values, rtol=1e-7, atol=1e-15)
    assert v[net.reaction_index["translation_ribosome"]] == pytest.approx(
        mu * float(res["ribosome"]), rel=1e-7
    )
    # capacities and enzyme coupling hold, to the LP tolerance: 1e-9 on rows in nmol divided by
    # rates up to 1.8e5 /h, i.e. ~2e-10 mmol/gDW/h at worst (loads are 1e-5..1)
    load, limit = core.capacity @ v, core.capacity_rate @ a
    assert np.all(load <= limit * (1 + 1e-7) + 1e-11)
    assert load[0] == pytest.approx(limit[0], rel=1e-6)  # the ribosome is fully used at max mu
    assert np.all(core.usage @ v <= a[: len(core.genes)] * (1 + 1e-7) + 1e-14)
    # the original metabolites balance: metabolism supplies exactly what expression draws
    orig = core.net_flux(v)
    np.testing.assert_allclose(res["net_flux"].values, orig)
    prefixes = ("AA_SYNTH", "NT_SYNTH", "translation_", "transcription_", "mrna_degradation_")
    new = [j for j, r in enumerate(net.reactions) if r.startswith(prefixes)]
    rows = [net.metabolite_index[m] for m in textbook.metabolites]
    drawn = net.S.tocsr()[rows][:, new] @ v[new]
    np.testing.assert_allclose(textbook.S @ orig, -drawn, atol=1e-8)
    assert np.abs(drawn).max() > 1e-3  # expression costs are not negligible


def test_ribosome_efficiency_and_fba_limit(textbook, core_max):
    table = ecoli_core_enzyme_table()
    mus = [
        float(max_growth(me_lite(textbook, table, ribosome_rate=r))["growth_rate"])
        for r in (8.0, 32.0)
    ]
    mus.insert(1, float(core_max["growth_rate"]))  # 16 aa/s
    assert mus[0] + 1e-4 < mus[1] < mus[2] - 1e-4
    free = me_lite(
        textbook,
        table,
        aa_precursors={},
        nt_precursors={},
        atp_per_aa=0.0,
        atp_per_nt=0.0,
        ribosome_rate=1e9,
        rnap_rate=1e9,
        mrna_translation_rate=1e9,
    )
    assert mus[2] < textbook.to_cobra().slim_optimize()
    mu_free = float(max_growth(free)["growth_rate"])
    assert mu_free == pytest.approx(textbook.to_cobra().slim_optimize(), rel=1e-7)


def test_transcripts_recover_a_known_solution(core, core_max, rng):
    """Transcripts made from a known feasible point (here the L1 fit to random levels) are
    recovered: exactly with the true scale, up to the fitted scale otherwise; the parsimonious
    point without transcripts is far from them."""
    mu = 0.5 * float(core_max["growth_rate"])
    levels = dict(zip(core.genes, rng.uniform(0.0, 100.0, len(core.genes))))
    truth = fixed_growth(core, mu, transcripts=levels, scale=1e-9)["mrna"].values
    assert truth.max() > 1e-8
    measured = dict(zip(core.genes, 1e3 * truth / truth.max()))
    scale = truth.max() / 1e3
    fixed = fixed_growth(core, mu, transcripts=measured, scale=scale)
    np.testing.assert_allclose(fixed["mrna"].values, truth, rtol=1e-6, atol=1e-7 * truth.max())
    assert fixed.attrs["penalty"] <= 1e-7 * truth.sum()
    fitted = fixed_growth(core, mu, transcripts=measured)
    s = fitted.attrs["scale"]
    e = np.array([measured[g] for g in core.genes])
    np.testing.assert_allclose(fitted["mrna"].values, s * e, rtol=1e-6, atol=1e-7 * truth.max())
    plain = fixed_growth(core, mu)["mrna"].values
    err_plain = np.abs(plain - truth).sum()
    assert np.abs(fixed["mrna"].values - truth).sum() < 1e-3 * err_plain
    assert float(fitted["growth_rate"]) == mu


def test_errors_name_the_culprit(textbook, core):
    table = ecoli_core_enzyme_table()
    bad_gene = pd.concat([table, pd.DataFrame({"gene": ["b9999"], "mw": [1e4]})])
    with pytest.raises(NetworkError, match="'b9999'"):
        me_lite(textbook, bad_gene)
    neg = table.copy()
    neg.loc[neg["kcat"].notna().idxmax(), "kcat"] = -1.0
    with pytest.raises(NetworkError, match="kcat"):
        me_lite(textbook, neg)
    neg = table.copy()
    neg.loc[neg["mw"].notna().idxmax(), "mw"] = -5.0
    with pytest.raises(NetworkError, match="mw"):
        me_lite(textbook, neg)
    with pytest.raises(NetworkError, match="biomass"):
        me_lite(textbook.with_objective({}), table)
    with pytest.raises(NetworkError, match="'NOPE'"):
        me_lite(textbook, table, biomass="NOPE")
    with pytest.raises(NetworkError, match="'gtp_c'"):
        me_lite(textbook, table, energy={"gtp_c": -1.0})
    with pytest.raises(ValueError, match="ribosome_rate"):
        me_lite(textbook, table, ribosome_rate=-1.0)
    with pytest.raises(NetworkError, match="'b9999'"):
        fixed_growth(core, 0.1, transcripts={"b9999": 1.0})
    with pytest.raises(ValueError, match="'b0008'"):
        fixed_growth(core, 0.1, transcripts={"b0008": -1.0})
    with pytest.raises(NetworkError, match="transcription=True"):
        fixed_growth(me_lite(textbook, table, transcription=False), 0.1, transcripts={"b0008": 1})
    with pytest.raises(InfeasibleError, match="mu = 5 "):
        fixed_growth(core, 5.0)
    starved = me_lite(textbook.with_bounds({GLUCOSE: (0.0, 0.0)}), table)
    with pytest.raises(InfeasibleError, match="mu = 0 "):
        max_growth(starved)
