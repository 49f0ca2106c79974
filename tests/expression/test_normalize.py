"""CPM / FPKM / TPM against hand-computed values, and the input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesflux.expression import cpm, fpkm, tpm


@pytest.fixture
def counts():
    return pd.DataFrame({"s1": [10.0, 30.0, 60.0], "s2": [0.0, 5.0, 15.0]},
                        index=["gA", "gB", "gC"])


@pytest.fixture
def lengths():
    return pd.Series({"gA": 1000.0, "gB": 2000.0, "gC": 500.0})


def test_cpm(counts):
    out = cpm(counts)
    np.testing.assert_allclose(out["s1"], [1e5, 3e5, 6e5])
    np.testing.assert_allclose(out["s2"], [0, 2.5e5, 7.5e5])
    np.testing.assert_allclose(out.sum(), 1e6)


def test_fpkm(counts, lengths):
    out = fpkm(counts, lengths)
    # gB in s1: 30 reads / 2 kb / (100 reads / 1e6) = 150000
    assert out.loc["gB", "s1"] == pytest.approx(30 / 2 / (100 / 1e6))
    np.testing.assert_allclose(out["s1"], cpm(counts)["s1"] / (lengths / 1e3))


def test_tpm_sums_to_a_million_and_is_proportional_to_rate(counts, lengths):
    out = tpm(counts, lengths)
    np.testing.assert_allclose(out.sum(), 1e6)
    rate = counts["s1"] / lengths
    np.testing.assert_allclose(out["s1"], rate / rate.sum() * 1e6)
    # TPM is FPKM rescaled per sample
    f = fpkm(counts, lengths)
    np.testing.assert_allclose(out, f / f.sum() * 1e6)


def test_series_in_series_out(counts, lengths):
    out = tpm(counts["s1"], lengths)
    assert isinstance(out, pd.Series) and out.name == "s1"


def test_errors(counts, lengths):
    bad = counts.copy()
    bad.loc["gB", "s2"] = -1
    with pytest.raises(ValueError, match="negative count .* 'gB' in sample 's2'"):
        cpm(bad)
    bad.loc["gB", "s2"] = np.nan
    with pytest.raises(ValueError, match="NaN.*'gB'.*'s2'"):
        cpm(bad)
    with pytest.raises(ValueError, match="no length for 1 gene.*'gC'"):
        tpm(counts, lengths.drop("gC"))
    with pytest.raises(ValueError, match="'gA' has invalid length"):
        fpkm(counts, lengths.replace(1000.0, 0.0))
    with pytest.raises(ValueError, match="sample 's2' has no counts"):
        cpm(counts.assign(s2=0.0))
