"""Natural-isotope correction: binomial closed forms and IsoCor's correction matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayesflux.errors import NetworkError
from bayesflux.labeling.isotopes import (
    ABUNDANCE,
    correct,
    correction_matrix,
    natural_distribution,
    parse_formula,
)


def test_parse_formula():
    assert parse_formula("C11H26NO2Si2") == {"C": 11, "H": 26, "N": 1, "O": 2, "Si": 2}
    with pytest.raises(NetworkError, match="Xx"):
        parse_formula("C3Xx2")
    with pytest.raises(NetworkError, match="cannot parse"):
        parse_formula("c3h8")


def test_carbon_only_formula_is_binomial():
    p = ABUNDANCE["C"][1]
    dist = natural_distribution("C6")
    np.testing.assert_allclose(
        dist, [math.comb(6, k) * p**k * (1 - p) ** (6 - k) for k in range(7)]
    )


def test_correction_matrix_columns_are_shifted_binomials():
    p = ABUNDANCE["C"][1]
    C = correction_matrix("C3", 2, n_measured=4)
    # column i: i labelled carbons + (2 - i) backbone and 1 extra carbon at natural abundance
    for i in range(3):
        n = 3 - i
        expect = np.zeros(4)
        expect[i : i + n + 1] = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
        np.testing.assert_allclose(C[:, i], expect, atol=1e-15)


def test_correct_inverts_the_matrix():
    C = correction_matrix("C7H17NO2Si", 3)
    x = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(correct(C @ x, C), x, atol=1e-12)


isocor = pytest.importorskip("isocor")


@pytest.mark.parametrize(
    "formula, derivative, purity",
    [("C3H7NO2", "C6H15Si", 1.0), ("C6H10O5", None, 0.99), ("C4H6NO4S", "C3H9Si", 0.995)],
)
def test_matrix_equals_isocor(formula, derivative, purity):
    corr = isocor.LowResMetaboliteCorrector(
        formula,
        "13C",
        derivative_formula=derivative,
        tracer_purity=[1 - purity, purity],
        correct_NA_tracer=True,
        data_isotopes=isocor.LowResMetaboliteCorrector.DEFAULT_ISODATA
        if hasattr(isocor.LowResMetaboliteCorrector, "DEFAULT_ISODATA")
        else None,
    )
    full = parse_formula(formula)
    for el, n in parse_formula(derivative or "C0").items():
        full[el] = full.get(el, 0) + n
    ours = correction_matrix(full, parse_formula(formula)["C"], purity=purity)
    np.testing.assert_allclose(ours, corr.correction_matrix, atol=1e-12)


def test_correction_equals_isocor_on_its_example_data():
    import importlib.resources

    import pandas as pd

    data = pd.read_csv(importlib.resources.files("isocor") / "data" / "Data_example.tsv", sep="\t")
    mets = pd.read_csv(importlib.resources.files("isocor") / "data" / "Metabolites.dat", sep="\t")
    formulas = dict(zip(mets["name"].str.strip(), mets["formula"], strict=True))
    checked = 0
    for (_, met), g in data.groupby(["sample", data["metabolite"].str.strip()]):
        n = parse_formula(formulas[met])["C"]
        if len(g) != n + 1:
            continue
        corr = isocor.LowResMetaboliteCorrector(
            formulas[met],
            "13C",
            derivative_formula=None,
            tracer_purity=[0.0, 1.0],
            correct_NA_tracer=True,
            data_isotopes=isocor.LowResMetaboliteCorrector.DEFAULT_ISODATA,
        )
        area = g.sort_values("isotopologue")["area"].to_numpy(float)
        if area.sum() <= 0:  # IsoCor returns NaN for an all-zero cluster
            continue
        _, theirs, _, _ = corr.correct(area)
        ours = correct(area, correction_matrix(formulas[met], n))
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
        checked += 1
    assert checked >= 5
