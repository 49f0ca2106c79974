"""GPR parsing, CNF min-disjunction (seed 003) and plain evaluation (seed 000)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesflux.errors import GPRSyntaxError, NetworkError
from bayesflux.expression import gpr
from bayesflux.expression.gpr import Op


def cnf(text):
    return {frozenset(c) for c in gpr.to_cnf(gpr.parse(text))}


# ------------------------------------------------------------------ parser
@pytest.mark.parametrize(
    "rule",
    ["A and (B or C)", "A AND (B OR C)", "A & (B | C)", "A && (B || C)", "(A) and ((B) or C)",
     "A And (B Or C)", "  A and ( B or C )  "],
)
def test_operator_spellings_agree(rule):
    assert gpr.parse(rule) == Op("and", ("A", Op("or", ("B", "C"))))


def test_and_binds_tighter_than_or():
    assert gpr.parse("A or B and C") == Op("or", ("A", Op("and", ("B", "C"))))


def test_ids_with_dots_dashes_colons():
    tree = gpr.parse("YGL188C-A and (b0001.1 or HGNC:1234)")
    assert gpr.rule_genes(tree) == {"YGL188C-A", "b0001.1", "HGNC:1234"}


def test_nested_parentheses_flatten():
    assert gpr.parse("((A and (B and C)))") == Op("and", ("A", "B", "C"))


def test_empty_rule_is_none():
    assert gpr.parse("") is None and gpr.parse("   ") is None and gpr.parse(None) is None


@pytest.mark.parametrize(
    ("rule", "position"),
    [("A and", 5), ("A and (B or C", 13), ("(A or B))", 8), ("A B", 2), ("and A", 0),
     ("A or or B", 5), ("()", 1)],
)
def test_syntax_errors_report_position(rule, position):
    with pytest.raises(GPRSyntaxError) as info:
        gpr.parse(rule, reaction="R_bad")
    assert info.value.position == position
    assert "R_bad" in str(info.value) and rule in str(info.value)
    assert isinstance(info.value, NetworkError)


# ------------------------------------------------------------------ seed 003 examples
def test_seed003_dnf_and_cnf_rules_give_min_a_bc():
    values = {"A": np.array([1.0, 5.0, 2.0]), "B": np.array([2.0, 1.0, 0.5]),
              "C": np.array([3.0, 2.0, 1.0])}
    expected = np.minimum(values["A"], values["B"] + values["C"])
    for rule in ("(A and B) or (A and C)", "A and (B or C)"):
        a, _ = gpr.min_disjunction(rule, values)
        np.testing.assert_allclose(a, expected)
    # plain evaluation of the DNF double counts A: min(a,b) + min(a,c)
    plain, _ = gpr.evaluate("(A and B) or (A and C)", values)
    np.testing.assert_allclose(
        plain, np.minimum(values["A"], values["B"]) + np.minimum(values["A"], values["C"])
    )


def test_seed003_redundant_gene_reduces():
    # (g1 or g2) and (g1 or g2 or g3): g3 is redundant and the second clause is absorbed
    assert cnf("(g1 or g2) and (g1 or g2 or g3)") == {frozenset({"g1", "g2"})}
    # (g1 and g2) or (g1 and g2 and g3) -> g1 and g2
    assert cnf("(g1 and g2) or (g1 and g2 and g3)") == {frozenset({"g1"}), frozenset({"g2"})}


def test_self_disjunction_reduces_to_literal():
    assert cnf("A or A") == {frozenset({"A"})}
    assert cnf("(A and B) or (A and C)") == {frozenset({"A"}), frozenset({"B", "C"})}


def test_seed003_missing_gene_example():
    tree = gpr.prune(gpr.parse("A and (B or C)"), {"A", "C"})
    assert tree == Op("and", ("A", "C"))
    a, _ = gpr.min_disjunction("A and (B or C)", {"A": 4.0, "C": 3.0})
    assert a == 3.0


def test_all_genes_missing_gives_nan():
    a, v = gpr.min_disjunction("X and Y", {"A": 1.0})
    assert np.isnan(a) and np.isnan(v)
    a, v = gpr.evaluate("X or Y", {"A": 1.0})
    assert np.isnan(a)


def test_variance_of_minimising_clause():
    values = {"A": 5.0, "B": 1.0, "C": 2.0}
    var = {"A": 0.5, "B": 0.1, "C": 0.2}
    a, v = gpr.min_disjunction("A and (B or C)", values, variances=var)
    assert a == 3.0 and v == pytest.approx(0.3)  # clause {B, C}: 0.1 + 0.2
    a, v = gpr.min_disjunction("A and (B or C)", {"A": 1.0, "B": 1.0, "C": 2.0}, variances=var)
    assert a == 1.0 and v == pytest.approx(0.5)


def test_plain_or_max():
    a, _ = gpr.evaluate("A or (B and C)", {"A": 1.0, "B": 4.0, "C": 3.0}, or_="max")
    assert a == 3.0


def test_vectorised_over_samples_matches_per_sample(rng):
    rules = ["A and (B or C)", "(A and B) or (C and D)", "D", "E or F", "", "A and Z"]
    X = {g: rng.lognormal(size=7) for g in "ABCDE"}
    out, _ = gpr.evaluate_rules(rules, X)
    assert out.shape == (6, 7)
    for s in range(7):
        single = {g: x[s] for g, x in X.items()}
        for k, rule in enumerate(rules):
            ref, _ = gpr.min_disjunction(rule, single) if rule else (np.nan, None)
            np.testing.assert_allclose(out[k, s], ref)
    assert np.isnan(out[4]).all()
    np.testing.assert_allclose(out[5], X["A"])  # Z missing: pruned
    assert np.all(out[3] == X["E"])  # F missing


def test_cnf_to_string_canonical():
    assert gpr.cnf_to_string(gpr.to_cnf("(C or B) and A")) == "A and (B or C)"


# ------------------------------------------------------------------ property: CNF equivalence
GENES = ["g1", "g2", "g3", "g4", "g5"]


def _rules(depth):
    leaf = st.sampled_from(GENES)
    return st.recursive(
        leaf,
        lambda sub: st.builds(
            lambda op, args: "(" + f" {op} ".join(args) + ")",
            st.sampled_from(["and", "or", "AND", "|", "&&"]),
            st.lists(sub, min_size=2, max_size=3),
        ),
        max_leaves=depth,
    )


def _truth(node, assignment):
    if isinstance(node, str):
        return assignment[node]
    vals = [_truth(a, assignment) for a in node.args]
    return all(vals) if node.op == "and" else any(vals)


@settings(max_examples=150, deadline=None)
@given(_rules(10))
def test_cnf_is_logically_equivalent(rule):
    tree = gpr.parse(rule)
    clauses = gpr.to_cnf(tree)
    genes = sorted(gpr.rule_genes(tree))
    for bits in itertools.product([False, True], repeat=len(genes)):
        assignment = dict(zip(genes, bits))
        via_cnf = all(any(assignment[g] for g in c) for c in clauses)
        assert via_cnf == _truth(tree, assignment)
    # no clause contains another (absorption done)
    for a, b in itertools.permutations(clauses, 2):
        assert not a <= b


@settings(max_examples=100, deadline=None)
@given(_rules(8), st.lists(st.floats(0, 100), min_size=5, max_size=5))
def test_min_disjunction_bounded_by_plain_sum(rule, xs):
    """CNF never double counts: min-disjunction <= plain (min/sum) evaluation of the same rule.

    Plain evaluation is a max-flow through the series-parallel rule with each gene occurrence a
    separate capacity; its min cuts are the distributed clauses counted with multiplicity.
    """
    values = dict(zip(GENES, xs))
    a, _ = gpr.min_disjunction(rule, values)
    p, _ = gpr.evaluate(rule, values)
    assert a <= p + 1e-9 * (1 + abs(p))


# ------------------------------------------------------------------ genome-scale speed
@pytest.mark.parametrize("name", ["iJO1366", "yeast5", "yeast7"])
def test_all_rules_of_a_model_under_one_second(name, request):
    from bayesflux import datasets

    if name == "iJO1366":
        net = datasets.load("iJO1366")
    else:
        request.getfixturevalue("shared_data")
        net = datasets.yeast("5.21" if name == "yeast5" else "7.6")
    gpr._parse_cached.cache_clear()
    gpr._cnf.cache_clear()
    values = {g: np.arange(1.0, 4.0) for g in net.genes}
    start = time.perf_counter()
    out, _ = gpr.evaluate_rules(net.gpr, values)
    assert time.perf_counter() - start < 1.0
    has_rule = np.array([bool(r) for r in net.gpr])
    assert np.isfinite(out[has_rule]).all() and np.isnan(out[~has_rule]).all()
