"""Atom-mapped reaction parsing, its errors, and the free-flux parameterisation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux.errors import NetworkError
from bayesflux.labeling import FluxSpace, LabelingNetwork, parse_reaction
from bayesflux.labeling.network import production_terms


def test_parse_reaction_sides_and_reversibility():
    r = parse_reaction("gnd", "G6P (abcdef) -> Ru5P (bcdef) + CO2 (a) + NADPH")
    assert [o.metabolite for o in r.products] == ["Ru5P", "CO2", "NADPH"]
    assert r.products[1].atoms == "a" and r.products[2].atoms == ""
    assert not r.reversible
    assert parse_reaction("pgi", "G6P (abcdef) <-> F6P (abcdef)").reversible


@pytest.mark.parametrize(
    "text, message",
    [
        ("A (abc) -> B (ab)", "unbalanced atoms"),
        ("A (abc) -> B (abd)", "unbalanced atoms"),
        ("A (abc) + C (a) -> B (abcd)", "used twice"),
        ("A (abc) B (abc)", "no arrow"),
        ("A (a1c) -> B (a1c)", "must be letters"),
        ("2 A (ab) -> B (ab)", "once per molecule"),
        (" -> B (ab)", "no substrate"),
    ],
)
def test_reaction_errors_name_the_reaction(text, message):
    with pytest.raises(NetworkError, match=message) as err:
        parse_reaction("r42", text)
    assert "r42" in str(err.value)


def test_network_errors():
    with pytest.raises(NetworkError, match=r"'r2'.*'B' has 2 atoms"):
        LabelingNetwork.from_strings({"r1": "A (abc) -> B (abc)", "r2": "B (ab) -> C (ab)"})
    with pytest.raises(NetworkError, match="unknown traced metabolite 'X'"):
        LabelingNetwork.from_strings({"r1": "A (ab) -> B (ab)"}, symmetric=["X"])
    with pytest.raises(NetworkError, match="unknown reaction 'nope'"):
        LabelingNetwork.from_strings({"r1": "A (ab) -> B (ab)"}, bounds={"nope": (0, 1)})


def test_roles_and_stoichiometry(toy):
    assert toy.inputs == ("A",)
    assert set(toy.balanced) == {"B", "C", "D", "E", "F"}
    assert toy.reversible_ids == ("v2",)
    S = toy.stoichiometry().S.toarray()
    v = np.array([100, 60, 20, 20, 80, 60, 80.0])
    np.testing.assert_allclose(S @ v, 0.0, atol=1e-12)


def test_flux_space_spans_the_balanced_fluxes(toy):
    space = FluxSpace.build(toy, fixed={"v1": 100.0})
    assert space.n_free == 1  # v3 = v4, v2 = 100 - 2 v3 ... one degree of freedom
    z = np.random.default_rng(0).uniform(1, 30, size=(5, 1))
    v = space.net(z)
    S = toy.stoichiometry().S.toarray()
    np.testing.assert_allclose(v @ S.T, 0.0, atol=1e-10)
    np.testing.assert_allclose(v[:, 0], 100.0)
    np.testing.assert_allclose(space.free_values(v), z)
    with pytest.raises(NetworkError, match="cannot all be free"):
        FluxSpace.build(toy, fixed={"v1": 100.0}, free=["v1", "v5"])
    with pytest.raises(NetworkError, match="inconsistent"):
        FluxSpace.build(toy, fixed={"v1": 100.0, "v5": 10.0, "v6": 10.0, "v3": 1.0})


def test_gross_fluxes_from_net_and_exchange(toy):
    u = toy.gross_fluxes(jnp.array([100, -30, 20, 20, 80, 60, 80.0]), jnp.array([5.0]))
    # forward of v2 = xch + max(v, 0), backward = xch + max(-v, 0)
    np.testing.assert_allclose(np.asarray(u), [100, 5, 20, 20, 80, 60, 80, 35])


def test_symmetric_products_split_in_halves():
    net = LabelingNetwork.from_strings(
        {"r1": "AKG (abcde) -> Suc (bcde) + CO2 (a)", "r2": "Suc (abcd) -> Fum (abcd)"},
        symmetric=["Suc"],
    )
    terms = [t for t in production_terms(net) if t.metabolite == "Suc"]
    assert [(t.weight, t.atoms) for t in terms] == [(0.5, "bcde"), (0.5, "edcb")]
