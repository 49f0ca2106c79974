"""BayFlux's input formats and the 13C problem built from them (bayesflux.labeling.bayflux).

The simulated MIDs are compared with an independent reference: a plain isotopomer fixed point
on the transitions exactly as BayFlux reads them (every line of a reaction carries an equal
share of its flux, a reversible reaction's backward flux runs its lines in reverse), with no
EMUs, no symmetric molecules and no reaction strings.
"""

from __future__ import annotations

import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux import Network
from bayesflux.errors import ModelReadError
from bayesflux.labeling.bayflux import (
    IJO1366_RENAMES,
    MAX_FLUX,
    bayflux_core,
    bayflux_genome_scale,
    read_bayflux,
    read_flux_bounds,
    read_mass_distribution,
    read_transitions,
)


# ----------------------------------------------------------------------------- reference
def _product(sources: list[tuple[np.ndarray, list[int], list[int]]], n: int) -> np.ndarray:
    """Isotopomer tensor of an ``n``-atom product whose atoms ``P_i`` come from the atoms
    ``Q_i`` of independent source tensors ``x_i`` (``sources = [(x_i, Q_i, P_i)]``)."""
    out, order = np.ones(()), []
    for x, q, p in sources:
        other = tuple(a for a in range(x.ndim) if a not in q)
        marginal = x.sum(axis=other) if other else x
        kept = sorted(q)
        marginal = np.transpose(marginal, [kept.index(a) for a in q])
        out = np.multiply.outer(out, marginal)
        order += p
    return np.transpose(out, np.argsort(order)) if n else out


def reference_mids(transitions, forward, backward, inputs, fragments, sweeps=5000):
    """MIDs ``{(metabolite, atoms): mid}`` of BayFlux's transitions at gross fluxes
    ``forward`` / ``backward`` (``{reaction: flux}``) by Gauss-Seidel sweeps of the isotopomer
    balances, from unlabelled pools; ``inputs``: ``{metabolite: isotopomer tensor}``."""
    terms: dict[str, list] = {}
    size = {}
    for rid, lines in transitions.items():
        for t in lines:
            for m, a in (*t.substrates, *t.products):
                size[m] = len(a)
            runs = [(forward.get(rid, 0.0), t.substrates, t.products)]
            if rid in backward:
                runs.append((backward[rid], t.products, t.substrates))
            for flux, subs, prods in runs:
                where = {c: (i, q) for i, (_, a) in enumerate(subs) for q, c in enumerate(a)}
                for m, a in prods:
                    parts = {}
                    for p, c in enumerate(a):
                        i, q = where[c]
                        parts.setdefault(i, ([], []))
                        parts[i][0].append(q)
                        parts[i][1].append(p)
                    src = [(subs[i][0], q, p) for i, (q, p) in parts.items()]
                    terms.setdefault(m, []).append((flux / len(lines), src))
    x = {m: np.zeros((2,) * n) for m, n in size.items()}
    for t in x.values():
        t[(0,) * t.ndim] = 1.0
    x.update(inputs)
    for _ in range(sweeps):
        change = 0.0
        for m, ts in terms.items():
            if m in inputs:
                continue
            total = sum(f for f, _ in ts)
            if total <= 0.0:  # not made at these fluxes (and not measured): left unlabelled
                continue
            new = sum(f * _product([(x[s], q, p) for s, q, p in src], size[m]) for f, src in ts)
            new = new / new.sum()  # = new / total, without the drift of rounding in the sum
            change = max(change, float(np.abs(new - x[m]).max()))
            x[m] = new
        if change < 1e-14:
            break
    else:
        raise AssertionError(f"no fixed point in {sweeps} sweeps (last change {change:.3g})")
    out = {}
    for m, atoms in fragments:
        t = x[m]
        keep = [a - 1 for a in atoms]
        other = tuple(a for a in range(t.ndim) if a not in keep)
        marginal = t.sum(axis=other) if other else t
        mid = np.zeros(len(atoms) + 1)
        for idx in itertools.product((0, 1), repeat=len(atoms)):
            mid[sum(idx)] += marginal[idx]
        out[(m, tuple(atoms))] = mid
    return out


def _compare(model, v: np.ndarray, xch: dict[str, float], inputs, transitions) -> float:
    """Largest difference between the problem's MIDs and :func:`reference_mids` at ``(v, xch)``
    (net fluxes of the network, exchange fluxes of its reversible reactions)."""
    problem = model.problem()
    term = model.term(problem)
    net = model.network
    theta = {nm: xch.get(r, 0.0) for nm, r in zip(term.xch_names, term.exchange_reactions)}
    vl, x = term.net_fluxes(jnp.asarray(v)), term.exchange_fluxes(theta)
    pred = np.asarray(jax.jit(problem.predictions)(vl, x)["ms"])
    reversible = {model.shares.get(r, (r, 1.0))[0] for r in problem.reversible}
    forward = {r: xch.get(r, 0.0) + max(v[j], 0.0) for j, r in enumerate(net.reactions)}
    backward = {r: xch.get(r, 0.0) + max(-v[net.reaction_index[r]], 0.0) for r in reversible}
    frags = [(m.metabolite, tuple(m.atoms)) for m in problem.ms]
    ref = reference_mids(transitions, forward, backward, inputs, frags)
    worst = 0.0
    for k, (m, frag) in enumerate(zip(problem.ms, frags, strict=True)):
        n = len(m.values)
        np.testing.assert_allclose(pred[k, :n].sum(), 1.0, atol=1e-12)
        worst = max(worst, float(np.abs(pred[k, :n] - ref[frag]).max()))
    return worst


# ----------------------------------------------------------------------------- small files
TRANSITIONS = (
    "# a symmetric four-carbon molecule S, made from A and exchanged with B\n"
    "R1\tA --> S\tabcd : abcd\n"
    "R1\tA --> S\tabcd : dcba\n"
    "R2\tS <==> B\tabcd : abcd\n"
    "R2\tS <==> B\tabcd : dcba\n"
    "R3\tA --> B\tabcd : abcd\n"
    "R4\tB --> C + D\tabcd : ab + cd\n"
)
MIDS = (
    "metabolite\tatoms\t0\t1\t2\t3\t4\n"
    "B\t1,2,3,4\t0.5\t0.2\t0.1\t0.1\t0.1\n"
    "C\t1,2\t0.6\t0.3\t0.1\t\t\n"
)
BOUNDS = "reaction,lower,upper\nEX_A,10,10\n"


def small_network() -> Network:
    return Network.from_stoichiometry(
        {
            "EX_A": {"A": 1},
            "R1": {"A": -1, "S": 1},
            "R2": {"S": -1, "B": 1},
            "R3": {"A": -1, "B": 1},
            "R4": {"B": -1, "C": 1, "D": 1},
            "EX_C": {"C": -1},
            "EX_D": {"D": -1},
        },
        bounds={"R2": (-100.0, 100.0)},
        id="small",
    )


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def small_model(tmp_path):
    return read_bayflux(
        small_network(),
        write(tmp_path, "t.txt", TRANSITIONS),
        write(tmp_path, "m.txt", MIDS),
        write(tmp_path, "b.csv", BOUNDS),
        tracers={"A": {"1000": 0.5, "1111": 0.2}},
    )


def test_small_model_reads_and_finds_symmetric_molecules(small_model):
    lab = small_model.labeling
    assert lab.symmetric == {"S"}  # B is also made in one order by R3: not symmetric
    assert lab.inputs == ("A",)
    assert lab.reversible_ids == ("R2",)
    assert small_model.fixed == {"EX_A": 10.0}
    assert [m.label for m in small_model.measurements] == ["B[1,2,3,4]", "C[1,2]"]
    assert small_model.network.ub.max() == MAX_FLUX and small_model.network.lb.min() == -MAX_FLUX


def test_small_model_mids_match_the_reference(small_model, tmp_path):
    transitions = read_transitions(write(tmp_path, "t2.txt", TRANSITIONS))
    net = small_model.network
    v = np.zeros(net.n_reactions)
    for r, f in {"EX_A": 10, "R1": 6, "R2": 6, "R3": 4, "R4": 10, "EX_C": 10, "EX_D": 10}.items():
        v[net.reaction_index[r]] = f
    a = np.zeros((2,) * 4)
    a[1, 0, 0, 0], a[1, 1, 1, 1], a[0, 0, 0, 0] = 0.5, 0.2, 0.3
    assert _compare(small_model, v, {"R2": 3.0}, {"A": a}, transitions) < 1e-12


def test_lines_that_symmetry_cannot_explain_are_equal_share_sub_reactions(tmp_path):
    """Two maps of R3 that reversing S does not relate: BayFlux's equal shares, as the
    reference (which runs every line at 1/k of the flux) computes them."""
    text = TRANSITIONS.replace(
        "R3\tA --> B\tabcd : abcd\n", "R3\tA --> B\tabcd : abcd\nR3\tA --> B\tabcd : bacd\n"
    )
    path = write(tmp_path, "t.txt", text)
    model = read_bayflux(
        small_network(),
        path,
        write(tmp_path, "m.txt", MIDS),
        write(tmp_path, "b.csv", BOUNDS),
        tracers={"A": {"1000": 0.5, "1111": 0.2}},
    )
    assert model.shares == {"R3#1": ("R3", 0.5), "R3#2": ("R3", 0.5)}
    assert model.labeling.symmetric == {"S"}
    assert "R3" not in model.labeling.reaction_ids
    assert ({"R3#2": 1.0, "R3#1": -1.0}, 0.0) in model.equalities
    net = model.network
    v = np.zeros(net.n_reactions)
    for r, f in {"EX_A": 10, "R1": 6, "R2": 6, "R3": 4, "R4": 10, "EX_C": 10, "EX_D": 10}.items():
        v[net.reaction_index[r]] = f
    problem = model.problem()
    np.testing.assert_allclose(
        problem.space.net(problem.space.free_values(model.term(problem).net_fluxes(v))),
        model.term(problem).net_fluxes(v),
        atol=1e-12,
    )
    a = np.zeros((2,) * 4)
    a[1, 0, 0, 0], a[1, 1, 1, 1], a[0, 0, 0, 0] = 0.5, 0.2, 0.3
    assert _compare(model, v, {"R2": 3.0}, {"A": a}, read_transitions(path)) < 1e-12


# alternative atom maps with closed-form MIDs: R1 makes B as A (abcd) or with the ring flipped
# (adcb, PHETA1's kind); R2 runs both ways, as B or flipped (TYRTA's kind); R3 swaps which
# product takes which substrate's atoms (ADNK1's kind). A is [2-13C], D unlabelled.
ALTERNATIVES = (
    "R1\tA --> B\tabcd : abcd\n"
    "R1\tA --> B\tabcd : adcb\n"
    "R2\tB <==> G\tabcd : abcd\n"
    "R2\tB <==> G\tabcd : adcb\n"
    "R3\tA + D --> E + F\tabcd + efgh : abcd + efgh\n"
    "R3\tA + D --> E + F\tabcd + efgh : efgh + abcd\n"
)
ALTERNATIVE_MIDS = (
    "metabolite\tatoms\t0\t1\t2\t3\t4\n"
    "B\t1,2,3,4\t0\t1\t0\t0\t0\n"
    "B\t2\t0.5\t0.5\n"
    "B\t3\t1\t0\n"
    "B\t2,4\t0\t1\t0\n"
    "G\t4\t0.5\t0.5\n"
    "E\t1,2,3,4\t0.5\t0.5\t0\t0\t0\n"
    "F\t2\t0.5\t0.5\n"
    "F\t1,3\t1\t0\t0\n"
)


def test_alternative_atom_maps_give_the_closed_form_mids(tmp_path):
    """B's atom 2 is A's atom 2 or 4, half the time each: ``B[2] = B[4] = (1/2, 1/2)``, one of
    them labelled (``B[2,4] = (0, 1, 0)``), one 13C in all; G's atom 4 likewise, whatever R2's
    exchange flux. E and F are A or D half the time each: ``E = F[2] = (1/2, 1/2, ...)``,
    ``F[1,3]`` unlabelled."""
    network = Network.from_stoichiometry(
        {
            "EX_A": {"A": 1},
            "EX_D": {"D": 1},
            "R1": {"A": -1, "B": 1},
            "R2": {"B": -1, "G": 1},
            "R3": {"A": -1, "D": -1, "E": 1, "F": 1},
            "EX_G": {"G": -1},
            "EX_E": {"E": -1},
            "EX_F": {"F": -1},
        },
        bounds={"R2": (-100.0, 100.0)},
        id="alternatives",
    )
    model = read_bayflux(
        network,
        write(tmp_path, "t.txt", ALTERNATIVES),
        write(tmp_path, "m.txt", ALTERNATIVE_MIDS),
        write(tmp_path, "b.csv", "reaction,lower,upper\nEX_A,10,10\nEX_D,4,4\n"),
        tracers={"A": {"0100": 1.0}},
    )
    assert model.shares == {f"R{k}#{i}": (f"R{k}", 0.5) for k in (1, 2, 3) for i in (1, 2)}
    assert model.labeling.symmetric == frozenset() and model.labeling.inputs == ("A", "D")
    problem = model.problem()
    assert problem.reversible == ("R2#1", "R2#2")
    assert problem.xch_space.n_free == 1  # R2#2's exchange flux is R2#1's
    term = model.term(problem)
    v = np.zeros(network.n_reactions)
    for r, f in {"EX_A": 10, "EX_D": 4, "R1": 6, "R2": 6, "R3": 4, "EX_G": 6}.items():
        v[network.reaction_index[r]] = f
    for r in ("EX_E", "EX_F"):
        v[network.reaction_index[r]] = 4
    theta = {"labeling_xch[R2]": 5.0}
    vl, x = term.net_fluxes(jnp.asarray(v)), term.exchange_fluxes(theta)
    np.testing.assert_allclose(x, [2.5, 2.5])
    np.testing.assert_allclose(vl[problem.network.reaction_ids.index("R3#2")], 2.0)
    pred = np.asarray(problem.predictions(vl, x)["ms"])
    for k, m in enumerate(problem.ms):
        np.testing.assert_allclose(pred[k, : len(m.values)], m.values, atol=1e-12, err_msg=m.label)
    assert float(term.log_likelihood(jnp.asarray(v), theta)) == pytest.approx(
        -0.5 * problem.n_measurements * np.log(2 * np.pi)
        - np.sum(np.log(problem.observations()[1]))
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("R9\tA --> B", "expected 3 tab-separated cells"),
        ("R9\tA -> B\tabcd : abcd", "needs one ' --> ' or ' <==> '"),
        ("R9\tA --> B\tabcd abcd", "needs one ' : '"),
        ("R9\tA --> B + C\tabcd : abcd", "2 products but 1 atom groups"),
        ("R9\tA --> B\tabcd : abce", "not balanced"),
        ("R9\tA --> B\taacd : aacd", "repeat among substrates"),
        ("R1\tA --> B\tabcd : abcd", "equation differs from its line"),
    ],
)
def test_transition_errors_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, "t.txt", TRANSITIONS + line + "\n")
    with pytest.raises(ModelReadError, match=rf"^{path}:8: .*{message}"):
        read_transitions(path)


def test_transition_of_unknown_reaction_or_metabolite(tmp_path):
    mids = write(tmp_path, "m.txt", MIDS)
    for line, message in [
        ("R9\tA --> B\tabcd : abcd", "'R9' is not in network"),
        ("R4\tB --> C + E\tabcd : ab + cd", "product 'E' appears 1 time"),
    ]:
        path = write(
            tmp_path, "t.txt", TRANSITIONS.replace("R4\tB --> C + D\tabcd : ab + cd\n", "") + line
        )
        with pytest.raises(ModelReadError, match=rf"{path}:7: .*{message}"):
            read_bayflux(small_network(), path, mids, tracers={})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("D\t1,2\t0.5\t0.5", "2 atoms, so 3 MID entries"),
        ("D\t1,x\t0.5\t0.5\t0", "1-based positions"),
        ("D\t1,1\t0.5\t0.5\t0", "distinct"),
        ("D\t1,2\t0.5\t\t0.5", "M\\+1 of 'D' is empty"),
        ("D\t1,2\t0.5\tabc\t0.5", "M\\+1 of 'D' 'abc' is not a number"),
    ],
)
def test_mass_distribution_errors_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path, "m.txt", MIDS + row + "\n")
    with pytest.raises(ModelReadError, match=rf"^{path}:4: .*{message}"):
        read_mass_distribution(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("R1,5,4", "lower bound 5.0 > upper bound 4.0"),
        ("R1,a,4", "lower bound of 'R1' 'a' is not a number"),
        ("EX_A,0,1", "'EX_A' already bounded on line 2"),
        ("R7,0,1", "'R7' is not in network 'small'"),
        ("R1,0", "expected 3 cells"),
    ],
)
def test_flux_bounds_errors_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path, "b.csv", BOUNDS + row + "\n")
    with pytest.raises(ModelReadError, match=rf"^{path}:3: .*{message}"):
        read_flux_bounds(path, small_network())


def test_mid_of_untraced_metabolite(tmp_path):
    path = write(tmp_path, "m.txt", MIDS + "EX\t1\t0.5\t0.5\n")
    with pytest.raises(ModelReadError, match=rf"{path}:4: metabolite 'EX' carries no atoms"):
        read_bayflux(small_network(), write(tmp_path, "t.txt", TRANSITIONS), path, tracers={})


# ----------------------------------------------------------------------------- BayFlux's core
@pytest.fixture(scope="module")
def core(request):
    data = request.getfixturevalue("shared_data")
    return bayflux_core(data / "bayflux_toya2010" / "core"), data / "bayflux_toya2010" / "core"


def test_core_files(core):
    _, d = core
    transitions = read_transitions(d / "TOYA_transitions.txt")
    assert sum(len(ts) for ts in transitions.values()) == 54 and len(transitions) == 50
    assert {r for r, ts in transitions.items() if len(ts) == 2} == {
        "FUM",
        "ICL",
        "SUCD1i",
        "SUCOAS",
    }
    mids = read_mass_distribution(d / "TOYA_wt5h_mass_distribution.txt")
    assert len(mids) == 9 and sum(len(m.values) for m in mids) == 48
    assert mids[-1].metabolite == "mal_L_c" and mids[-1].values[-1] == 0.018
    bounds = read_flux_bounds(d / "EXCHANGE_FLUXES_TOYA2.csv")
    assert bounds == {"glc_exchange": (-11.7, -11.7), "Ac_exchange": (4.3, 4.3)}


def test_core_problem_as_bayflux_poses_it(core):
    model, _ = core
    assert model.labeling.symmetric == {"succ_c", "fum_c"}
    assert model.labeling.inputs == ("glc_D_e",)
    assert model.fixed == {"glc_exchange": -11.7, "Ac_exchange": 4.3}
    assert np.all(np.abs(model.network.lb) <= MAX_FLUX) and np.all(model.network.ub <= MAX_FLUX)
    problem = model.problem()
    assert problem.n_measurements == 48
    assert np.all(problem.observations()[1] == pytest.approx(0.0070417, abs=1e-7))
    post = model.posterior()
    assert post.polytope.dim == 32 and len(post.latents) == 16  # 16 net + 16 exchange
    # BayFlux's prior: v+ = x + max(v, 0) <= ub and v- = x + max(-v, 0) <= -lb; ENO runs
    # forwards (tight v+), PGK backwards (tight v-)
    from scipy.optimize import linprog

    poly = post.polytope
    n = model.network.n_reactions
    for r, sign in (("ENO", 1.0), ("PGK", -1.0)):
        j, k = model.network.reaction_index[r], n + post.latent_names.index(f"labeling_xch[{r}]")
        c = poly.N[k] + sign * poly.N[j]
        res = linprog(-c, A_ub=poly.A, b_ub=poly.b, bounds=(None, None))
        assert -res.fun + poly.v0[k] + sign * poly.v0[j] == pytest.approx(MAX_FLUX, abs=1e-6)
        z = res.x  # a vertex: the exchange flux is the most the gross bounds allow
        assert poly.v0[k] + poly.N[k] @ z == pytest.approx(
            MAX_FLUX - abs(poly.N[j] @ z + poly.v0[j])
        )


def test_core_mids_match_the_reference(core):
    model, d = core
    post = model.posterior()
    poly = post.polytope
    x = poly.v0 + poly.N @ poly.center  # an interior point of the joint polytope
    n = model.network.n_reactions
    xch = {r: x[n + k] for k, r in enumerate(post.terms[0].exchange_reactions)}
    glc = np.zeros((2,) * 6)
    glc[(1, 0, 0, 0, 0, 0)], glc[(1,) * 6], glc[(0,) * 6] = 0.3, 0.2, 0.5
    transitions = read_transitions(d / "TOYA_transitions.txt")
    assert _compare(model, x[:n], xch, {"glc_D_e": glc}, transitions) < 1e-10
    assert np.isfinite(float(post.log_density(jnp.asarray(x))))


# ----------------------------------------------------------------------------- genome scale
def _interior_point(model, problem) -> np.ndarray:
    """Net fluxes of ``model.network`` at which every traced reaction that can carry flux does
    (max ``sum_j min(|v_j|, 1e-3)`` over the traced one-way reactions, averaged with random
    vertices), so that every simulated pool is made."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    net = model.network
    S, n = sp.csr_matrix(net.S), net.n_reactions
    parents = {
        model.shares.get(r.id, (r.id, 1.0))[0]
        for r in problem.network.reactions
        if r.traced("substrates")
    }
    rows = [
        (j, 1.0 if net.lb[j] >= 0 else -1.0)
        for j in net.indices(sorted(parents))
        if net.lb[j] >= 0 or net.ub[j] <= 0
    ]
    m, zero = len(rows), np.zeros(S.shape[0])
    A = sp.csr_matrix(([-s for _, s in rows], (np.arange(m), [j for j, _ in rows])), shape=(m, n))
    res = linprog(
        np.r_[np.zeros(n), -np.ones(m)],
        A_ub=sp.hstack([A, sp.eye(m)]),
        b_ub=np.zeros(m),
        A_eq=sp.hstack([S, sp.csr_matrix((S.shape[0], m))]),
        b_eq=zero,
        bounds=[*zip(net.lb, net.ub, strict=True), *[(0.0, 1e-3)] * m],
        method="highs",
    )
    assert res.status == 0, res.message
    rng = np.random.default_rng(0)
    bounds = list(zip(net.lb, net.ub, strict=True))
    vertices = [
        linprog(rng.normal(size=n), A_eq=S, b_eq=zero, bounds=bounds, method="highs").x
        for _ in range(4)
    ]
    return 0.5 * res.x[:n] + 0.5 * np.mean(vertices, axis=0)


@pytest.fixture(scope="module")
def ijo1366():
    from bayesflux.datasets import load

    return load("iJO1366")


@pytest.fixture(scope="module")
def genome(request, ijo1366):
    data = request.getfixturevalue("shared_data") / "bayflux_toya2010" / "genome_scale"
    start = time.perf_counter()
    model, report = bayflux_genome_scale("wt5h", data, network=ijo1366)
    problem = model.problem()
    return model, report, problem, time.perf_counter() - start, data


def test_genome_scale_mapping_report(genome):
    model, report, _, _, _ = genome
    summary = report.summary()
    assert summary["file_reactions"] == 591 and summary["file_lines"] == 630
    assert (summary["mapped"], summary["renamed"], summary["dropped"]) == (572, 6, 5)
    table = report.reactions
    assert set(table.index[table.status == "dropped"]) == {
        "DHPTDCs", "MME", "MMM2", "THZPSN", "URIDK2r"
    }  # fmt: skip
    assert set(table.index[table.status == "blocked"]) == {  # no flux within the bounds
        "FUMt2_2pp", "FUMt2_3pp", "FUMtex", "SUCFUMtpp",  # fumarate uptake: no source
        "OHPHM", "OMBZLM", "OMMBLHX", "OMPHHX",  # ubiquinone: in the closed WT biomass only
    }  # fmt: skip
    assert dict(table.target[table.status == "renamed"]) == IJO1366_RENAMES
    assert set(table.index[table.atom_maps == "split"]) == {"ADNK1", "PHETA1", "TYRTA"}
    assert model.shares == {
        f"{r}#{i}": (r, 0.5) for r in ("ADNK1", "PHETA1", "TYRTA") for i in (1, 2)
    }
    assert {"fum_c", "succ_c"} <= model.labeling.symmetric
    assert summary["truncated_lines"] == 18  # EAR*x: acyl-ACPs with 11 ACP carbons
    assert all(kept < n for _, _, n, kept in report.truncated)
    assert "glc__D_e" in model.labeling.inputs
    assert summary["untraced"] == model.network.n_reactions - 572 - 6
    assert not set(report.left_out) & set(model.labeling.reaction_ids)
    lab = model.labeling
    assert lab.atom_counts["phpyr_c"] == 9 and lab.atom_counts["ddcaACP_c"] == 12


def test_genome_scale_bounds_follow_the_renames(genome, ijo1366):
    data = genome[-1]
    model, _ = bayflux_genome_scale("pyk5h", data, network=ijo1366)
    net = model.network
    bounds = {
        r: (net.lb[net.reaction_index[r]], net.ub[net.reaction_index[r]]) for r in net.reactions
    }
    assert bounds[IJO1366_RENAMES["BIOMASS_Ec_iAF1260_core_59p81M"]] == (0.73, 0.76)
    assert bounds["PYK"] == (0.0, 0.0) and bounds["BIOMASS_Ec_iJO1366_WT_53p95M"] == (0.0, 0.0)
    assert model.measurements[0].sd == pytest.approx(0.0076875)  # pyk5h.yaml's averageError


def test_genome_scale_simulation(genome, record_property):
    model, _, problem, build_s, _ = genome
    term = model.term(problem)
    v = _interior_point(model, problem)
    net = model.network
    span = np.minimum(net.ub - v, v - net.lb)
    theta = {
        nm: 0.5 * span[net.reaction_index[r]]
        for nm, r in zip(term.xch_names, term.exchange_reactions, strict=True)
    }
    vl, x = term.net_fluxes(jnp.asarray(v)), term.exchange_fluxes(theta)
    start = time.perf_counter()
    pred = np.asarray(jax.jit(problem.predictions)(vl, x)["ms"])
    sim_s = time.perf_counter() - start
    record_property("build_s", build_s)
    record_property("first_simulation_s", sim_s)
    print(f"genome-scale wt5h: build {build_s:.1f} s, first simulation (jit) {sim_s:.1f} s")
    assert problem.n_measurements == 48 and len(problem.ms) == 9
    for k, m in enumerate(problem.ms):
        mid = pred[k, : len(m.values)]
        assert np.all(np.isfinite(mid)) and np.all(mid >= -1e-12), m.label
        assert mid.sum() == pytest.approx(1.0, abs=1e-10), m.label
    # the EMU network is traced back from the 9 measured fragments only
    sim = problem.simulator
    assert len(sim.targets) == 9 and sim.n_unknown < 2000  # 1668 EMUs (2916 from all pools)


def test_genome_scale_transition_errors_name_the_line(genome, ijo1366, tmp_path):
    _, _, _, _, data = genome
    for name in ("GCMSwt5h.txt", "flux_bounds_wt5h.csv", "wt5h.yaml"):
        (tmp_path / name).symlink_to(data / name)
    text = (data / "transitions.txt").read_text()
    lines = text.count("\n")
    path = tmp_path / "transitions.txt"
    # a reaction iJO1366 lacks is dropped (and reported); a metabolite its reaction lacks fails
    path.write_text(text + "NOSUCH\tglc__D_c --> g6p_c\tabcdef : abcdef\n")
    _, report = bayflux_genome_scale("wt5h", tmp_path, network=ijo1366)
    assert report.reactions.loc["NOSUCH", "status"] == "dropped"
    assert report.reactions.loc["NOSUCH", "where"] == f"{path}:{lines + 1}"
    path.write_text(text + "CAT\th2o2_c --> co2_c\ta : a\n")
    with pytest.raises(ModelReadError, match=rf"^{path}:{lines + 1}: reaction 'CAT': product "):
        bayflux_genome_scale("wt5h", tmp_path, network=ijo1366)
    with pytest.raises(ModelReadError, match="unknown strain 'wt'"):
        bayflux_genome_scale("wt", tmp_path, network=ijo1366)
