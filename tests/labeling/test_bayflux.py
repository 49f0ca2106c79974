"""BayFlux's input formats and the 13C problem built from them (bayesflux.labeling.bayflux).

The simulated MIDs are compared with an independent reference: a plain isotopomer fixed point
on the transitions exactly as BayFlux reads them (every line of a reaction carries an equal
share of its flux, a reversible reaction's backward flux runs its lines in reverse), with no
EMUs, no symmetric molecules and no reaction strings.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux import Network
from bayesflux.errors import ModelReadError
from bayesflux.labeling.bayflux import (
    MAX_FLUX,
    bayflux_core,
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
    """Largest difference between the problem's MIDs and :func:`reference_mids` at ``(v, xch)``."""
    problem = model.problem()
    net = model.network
    index = net.indices(problem.network.reaction_ids)
    x = np.array([xch.get(r, 0.0) for r in problem.reversible])
    pred = np.asarray(jax.jit(problem.predictions)(jnp.asarray(v[index]), jnp.asarray(x))["ms"])
    forward = {r: xch.get(r, 0.0) + max(v[j], 0.0) for j, r in enumerate(net.reactions)}
    backward = {
        r: xch.get(r, 0.0) + max(-v[net.reaction_index[r]], 0.0) for r in problem.reversible
    }
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


def test_lines_that_symmetry_cannot_explain(tmp_path):
    text = TRANSITIONS.replace(
        "R3\tA --> B\tabcd : abcd\n", "R3\tA --> B\tabcd : abcd\nR3\tA --> B\tabcd : bacd\n"
    )
    path = write(tmp_path, "t.txt", text)
    with pytest.raises(ModelReadError, match=rf"{path}:6: reaction 'R3'.*lines 6, 7"):
        read_bayflux(
            small_network(), path, write(tmp_path, "m.txt", MIDS), tracers={"A": {"1000": 1.0}}
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
