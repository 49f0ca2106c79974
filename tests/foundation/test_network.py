"""Network construction, validation errors, derived views and cobra/SBML/JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from bayesflux import ModelReadError, Network, NetworkError, as_network, read_json, read_sbml


def _net(**overrides):
    kwargs = dict(
        reactions=["R1", "R2", "R3"],
        metabolites=["A", "B"],
        S=np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]),
        lb=[0.0, -5.0, 0.0],
        ub=[10.0, 5.0, 10.0],
    )
    kwargs.update(overrides)
    return Network(**kwargs)


def test_basic_fields_are_immutable():
    net = _net()
    assert net.reactions == ("R1", "R2", "R3")
    assert isinstance(net.S, sp.csr_array)
    with pytest.raises(ValueError):
        net.lb[0] = 3.0
    with pytest.raises(ValueError):
        net.S.data[0] = 3.0
    with pytest.raises(AttributeError):
        net.id = "other"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reactions": ["R1", "R1", "R3"]}, "duplicate reaction id.*R1"),
        ({"metabolites": ["A", "A"]}, "duplicate metabolite id.*A"),
        ({"lb": [0.0, 6.0, 0.0]}, "reaction 'R2' has lb = 6.0 > ub = 5.0"),
        ({"ub": [10.0, np.nan, 10.0]}, "reaction 'R2' has a NaN ub"),
        ({"lb": [np.nan, 0.0, 0.0]}, "reaction 'R1' has a NaN lb"),
        ({"S": np.array([[1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])}, "no metabolites: R3"),
        ({"S": np.ones((3, 3))}, r"S has shape \(3, 3\)"),
        ({"S": np.array([[1.0, np.nan, 0.0], [0.0, 1.0, -1.0]])}, "non-finite.*'R2'"),
        ({"reactions": ["R1", " ", "R3"]}, "empty reaction id at position 1"),
        ({"objective": [1.0, 0.0]}, "objective must be"),
        ({"gpr": ["g1"]}, "gpr has 1 entries, expected 3"),
    ],
)
def test_validation_errors_name_the_culprit(overrides, message):
    with pytest.raises(NetworkError, match=message):
        _net(**overrides)


def test_unknown_metabolite_and_reaction_are_named():
    with pytest.raises(NetworkError, match="reaction 'R1' uses unknown metabolite 'Z'"):
        Network.from_stoichiometry({"R1": {"Z": 1}}, metabolites=["A"])
    with pytest.raises(NetworkError, match="unknown reaction 'R9'"):
        Network.from_stoichiometry({"R1": {"A": 1}}, bounds={"R9": (0, 1)})
    with pytest.raises(NetworkError, match="unknown reaction 'nope'"):
        _net().with_bounds({"nope": (0, 1)})


def test_exchange_internal_and_reversible(small):
    assert small.exchange_reactions == ("EX_A", "BIOMASS")
    assert set(small.internal_reactions) == {"R1", "R2", "R3", "R4", "R5"}
    assert [r for r, rev in zip(small.reactions, small.is_reversible) if rev] == ["EX_A", "R5"]


def test_irreversible_split_reproduces_net_fluxes(textbook, rng):
    split = textbook.split_irreversible()
    assert np.all(split.lb >= 0)
    n_rev = int(np.sum(textbook.lb < 0))
    assert split.S.shape[1] == textbook.n_reactions + n_rev
    # Any irreversible flux maps to a net flux with the same mass balance: S (M u) = S_irr u.
    u = rng.uniform(0, 1, split.S.shape[1])
    np.testing.assert_allclose(textbook.S @ (split.to_net @ u), split.S @ u, atol=1e-12)
    # Bounds map back: forward ub and backward -lb.
    j = textbook.reaction_index["PGI"]
    back = split.reactions.index("PGI_reverse")
    assert split.ub[back] == -textbook.lb[j]


def test_nullspace_is_an_orthonormal_kernel_basis(textbook):
    N = textbook.nullspace
    S = textbook.S.toarray()
    assert N.shape == (textbook.n_reactions, textbook.n_reactions - np.linalg.matrix_rank(S))
    np.testing.assert_allclose(S @ N, 0, atol=1e-10)
    np.testing.assert_allclose(N.T @ N, np.eye(N.shape[1]), atol=1e-10)


def test_gpr_groups_collect_identical_rules(small):
    groups = small.gpr_groups()
    assert groups["g4 and g5"] == ("R3", "R4")
    assert groups["g1"] == ("R1",)
    assert set(small.genes) == {"g1", "g2", "g3", "g4", "g5", "g6"}


def test_from_cobra_matches_cobra(textbook, textbook_cobra):
    m = textbook_cobra
    assert textbook.reactions == tuple(r.id for r in m.reactions)
    j = textbook.reaction_index["PFK"]
    assert textbook.gpr[j] == m.reactions.PFK.gene_reaction_rule
    i = textbook.metabolite_index["atp_c"]
    assert textbook.S[i, j] == m.reactions.PFK.metabolites[m.metabolites.atp_c]
    assert textbook.objective[textbook.reaction_index["Biomass_Ecoli_core"]] == 1.0
    assert textbook.metabolite_compartments[i] == "c"


def test_sbml_round_trip(tmp_path, textbook):
    import cobra.io

    path = tmp_path / "core.xml"
    cobra.io.write_sbml_model(textbook.to_cobra(), str(path))
    back = read_sbml(path)
    assert back.reactions == textbook.reactions
    assert back.metabolites == textbook.metabolites
    assert (back.S != textbook.S).nnz == 0
    np.testing.assert_array_equal(back.lb, textbook.lb)
    np.testing.assert_array_equal(back.ub, textbook.ub)
    np.testing.assert_array_equal(back.objective, textbook.objective)
    assert back.gpr == textbook.gpr


def test_json_round_trip_and_unknown_metabolite(tmp_path, small):
    import cobra.io

    path = tmp_path / "small.json"
    cobra.io.save_json_model(small.to_cobra(), str(path))
    back = read_json(path)
    assert back.reactions == small.reactions and (back.S != small.S).nnz == 0
    data = json.loads(path.read_text())
    data["reactions"][1]["metabolites"]["ghost"] = 1.0
    path.write_text(json.dumps(data))
    with pytest.raises(NetworkError, match="reaction 'R1' uses unknown metabolite 'ghost'"):
        read_json(path)


@pytest.mark.parametrize("content", ["not xml at all <", "<sbml></sbml>"])
def test_unreadable_sbml_names_the_file(tmp_path, content):
    path = tmp_path / "broken.xml"
    path.write_text(content)
    with pytest.raises(ModelReadError, match="broken.xml"):
        read_sbml(path)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ModelReadError, match="model file not found"):
        read_sbml(tmp_path / "absent.xml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelReadError, match="bad.json: not valid JSON"):
        read_json(bad)
    with pytest.raises(ModelReadError, match="no bundled dataset"):
        as_network(str(tmp_path / "nothing.xml"))
    with pytest.raises(TypeError, match="expected a Network"):
        as_network(42)


def test_as_network_accepts_cobra_models_and_names(textbook_cobra):
    assert as_network(textbook_cobra).n_reactions == 95
    assert as_network("small").id == "small"
