"""Bad model and data files: one typed error naming the file and the line, reaction or gene."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from bayesflux.datasets import read_cobra_mat
from bayesflux.errors import ModelReadError, NetworkError
from bayesflux.expression import read_flux_data, read_gene_data
from bayesflux.network import Network, read_sbml

SBML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1">\n'
    '<model id="m">\n'
)


def test_sbml_error_gives_libsbml_cause_with_line(tmp_path):
    path = tmp_path / "truncated.xml"
    path.write_text(SBML_HEAD + '<listOfCompartments><compartment id="c"/>\n')
    with pytest.raises(ModelReadError, match=r"truncated\.xml: libsbml reports line \d+: XML"):
        read_sbml(path)


def test_sbml_error_gives_cobra_cause(tmp_path):
    path = tmp_path / "dangling.xml"
    path.write_text(
        SBML_HEAD + '<listOfCompartments><compartment id="c" constant="true"/>'
        "</listOfCompartments>\n<listOfReactions>\n"
        '<reaction id="R1" reversible="false" fast="false"><listOfReactants>'
        '<speciesReference species="B" stoichiometry="1" constant="true"/>'
        "</listOfReactants></reaction>\n</listOfReactions>\n</model>\n</sbml>\n"
    )
    with pytest.raises(ModelReadError, match=r"dangling\.xml: .*KeyError: 'B'"):
        read_sbml(path)


def _save_mat(path, *, rules=("x(1)", "x(1) | x(2)"), lb=(0.0, 0.0)) -> None:
    model = {
        "S": sp.csc_matrix(np.array([[1.0, -1.0]])),
        "rxns": np.array(["R1", "R2"], dtype=object),
        "mets": np.array(["A"], dtype=object),
        "lb": np.array(lb),
        "ub": np.array([10.0, 10.0]),
        "c": np.array([0.0, 1.0]),
        "genes": np.array(["g1", "g2"], dtype=object),
        "rules": np.array(rules, dtype=object),
    }
    scipy.io.savemat(path, {"model": model})


@pytest.mark.parametrize("rule", ["x(0) | x(2)", "x(1) & x(3)"])
def test_mat_rule_index_out_of_range_names_reaction_and_rule(tmp_path, rule):
    path = tmp_path / "model.mat"
    _save_mat(path, rules=("x(1)", rule))
    with pytest.raises(
        ModelReadError, match=rf"model\.mat: reaction 'R2': rule {re.escape(repr(rule))}"
    ):
        read_cobra_mat(path)


def test_empty_mat_is_a_model_read_error(tmp_path):
    path = tmp_path / "empty.mat"
    path.write_bytes(b"")
    with pytest.raises(ModelReadError, match=r"could not read .*empty\.mat"):
        read_cobra_mat(path)


def test_mat_network_error_names_the_file(tmp_path):
    path = tmp_path / "model.mat"
    _save_mat(path, lb=(0.0, 20.0))
    with pytest.raises(NetworkError, match=r"model\.mat: reaction 'R2' has lb = 20.0 > ub"):
        read_cobra_mat(path)


def _two(**kwargs) -> Network:
    return Network.from_stoichiometry({"R1": {"A": 1}, "R2": {"A": -1}}, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": {"R1": (np.inf, np.inf)}}, "reaction 'R1' has lb = \\+inf"),
        ({"bounds": {"R2": (-np.inf, -np.inf)}}, "reaction 'R2' has ub = -inf"),
        ({"objective": {"R2": 1e300}}, "too large objective coefficient 1e\\+300 of .*'R2'"),
    ],
)
def test_bounds_and_objective_are_validated(kwargs, match):
    with pytest.raises(NetworkError, match=match):
        _two(**kwargs)


def test_huge_stoichiometric_coefficient_is_named():
    with pytest.raises(NetworkError, match="coefficient 1e\\+300 of metabolite 'A' in .*'R1'"):
        Network.from_stoichiometry({"R1": {"A": 1e300}, "R2": {"A": -1}})
    assert _two().S.shape == (1, 2)  # coefficients up to the limit stay accepted
    Network.from_stoichiometry({"R1": {"A": 1e9}, "R2": {"A": -1}})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "gene\tmean\tstd\ng1\t1\t0.1\ng2\tabc\t0.1\n",
            r"line 3: mean 'abc' of gene 'g2' is not a number",
        ),
        ("gene\tmean\tstd\ng1\t1\tnan\n", r"line 2: std 'nan' of gene 'g1' is not finite"),
        (
            "gene\tmean\tstd\ng1\t1\t0.1\ng2\t1\n",
            r"line 3: expected 3 .*found 2: gene 'g2' lacks column 'std'",
        ),
        ("gene\tmean\n\t1\n", r"line 2: empty gene name"),
        ("gene\tmean\ng1\t-1\n", r"line 2: mean '-1' of gene 'g1' is negative"),
    ],
)
def test_gene_table_errors_name_line_gene_and_column(tmp_path, text, match):
    path = tmp_path / "genes.txt"
    path.write_text(text)
    with pytest.raises(ModelReadError, match=rf"genes\.txt, {match}"):
        read_gene_data(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("glucose\t1.0\nglucose\t2.0\n", r"line 2: flux 'glucose' repeats line 1"),
        ("glucose\tinf\n", r"line 1: value 'inf' of flux 'glucose' is not finite"),
    ],
)
def test_flux_table_errors_name_line_and_flux(tmp_path, text, match):
    path = tmp_path / "fluxes.txt"
    path.write_text(text)
    with pytest.raises(ModelReadError, match=rf"fluxes\.txt, {match}"):
        read_flux_data(path)


def test_json_model_is_read_as_utf8_whatever_the_locale(tmp_path):
    model = {
        "id": "m",
        "metabolites": [{"id": "A", "compartment": "c"}],
        "reactions": [
            {
                "id": "R1",
                "metabolites": {"A": 1},
                "lower_bound": 0,
                "upper_bound": 10,
                "gene_reaction_rule": "gène1",
            },
            {"id": "R2", "metabolites": {"A": -1}, "lower_bound": 0, "upper_bound": 10},
        ],
        "genes": [{"id": "gène1"}],
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model, ensure_ascii=False), encoding="utf-8")
    # an ASCII locale, as on a bare container: the file must still be read as UTF-8
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code = (
        "import sys; from bayesflux.network import read_json; "
        "print(ascii(read_json(sys.argv[1]).genes))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ascii(("gène1",))


def test_json_rule_with_non_ascii_gene_is_kept(tmp_path):
    """cobra parses rules as Python and would empty ``g€1 and ｇ２`` (or fold ``ｇ２`` to
    ``g2``); the rule and its genes reach the network as the file writes them."""
    import json

    from bayesflux.network import read_json

    model = {
        "id": "m",
        "compartments": {"c": ""},
        "metabolites": [{"id": "a_c", "compartment": "c"}, {"id": "b_c", "compartment": "c"}],
        "reactions": [
            {
                "id": "R1",
                "metabolites": {"a_c": -1, "b_c": 1},
                "lower_bound": 0,
                "upper_bound": 10,
                "gene_reaction_rule": "g€1 and ｇ２",
            }
        ],
        "genes": [{"id": "g€1"}, {"id": "ｇ２"}],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model, ensure_ascii=False), encoding="utf-8")
    net = read_json(path)
    assert net.gpr == ("g€1 and ｇ２",)
    assert set(net.genes) == {"g€1", "ｇ２"}
