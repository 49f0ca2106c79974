"""Enzyme abundance per reaction, reaction groups, readers and capacity bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesflux import Network
from bayesflux.errors import InfeasibleError, ModelReadError, NetworkError
from bayesflux.expression import (
    capacity_bounds,
    enzyme_abundance,
    enzyme_capacity,
    reaction_groups,
    read_flux_data,
    read_gene_data,
    translation_factor,
)


@pytest.fixture
def net():
    return Network.from_stoichiometry(
        {
            "EX": {"A": -1},
            "R1": {"A": -1, "B": 1},
            "R2": {"A": -1, "B": 1},
            "R3": {"B": -1, "C": 1},
            "R4": {"C": -1},
        },
        bounds={"EX": (-10, 10)},
        gpr={"R1": "(A and B) or (A and C)", "R2": "A & (C | B)", "R3": "D or X",
             "R4": "X and Y"},
        id="toy",
    )


def test_groups_by_canonical_cnf(net):
    g = reaction_groups(net)
    assert g.sel(reaction="R1") == g.sel(reaction="R2") >= 0
    assert g.sel(reaction="EX") == -1
    assert len({int(x) for x in g.values if x >= 0}) == 3
    assert str(g.sel(reaction="R1")["rule"].values) == "A and (B or C)"


def test_abundance_min_disjunction_vs_plain(net):
    expr = pd.Series({"A": 2.0, "B": 3.0, "C": 4.0, "D": 1.5})
    std = pd.Series({"A": 0.2, "B": 0.3, "C": 0.4, "D": 0.1})
    ds = enzyme_abundance(net, expr, std)
    assert ds["abundance"].sel(reaction="R1") == 2.0
    assert ds["std"].sel(reaction="R1") == pytest.approx(0.2)
    assert ds["abundance"].sel(reaction="R3") == 1.5  # X missing -> D
    assert np.isnan(ds["abundance"].sel(reaction="R4"))  # all genes missing
    assert np.isnan(ds["abundance"].sel(reaction="EX"))
    assert ds.attrs["n_missing_genes"] == 2 and ds.attrs["n_unmeasured_reactions"] == 1
    plain = enzyme_abundance(net, expr, method="plain")
    assert plain["abundance"].sel(reaction="R1") == 4.0  # min(2,3) + min(2,4): double counted


def test_abundance_samples_dimension(net):
    frame = pd.DataFrame({"s1": [2.0, 3.0, 4.0, 1.0], "s2": [1.0, 1.0, 1.0, 1.0]},
                         index=["A", "B", "C", "D"])
    ds = enzyme_abundance(net, frame)
    assert ds["abundance"].dims == ("reaction", "sample")
    np.testing.assert_allclose(ds["abundance"].sel(reaction="R1"), [2.0, 1.0])


def test_abundance_errors(net):
    with pytest.raises(NetworkError, match="no expression data: X, Y"):
        enzyme_abundance(net, {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}, missing="error")
    with pytest.raises(ValueError, match="gene 'A'.*not finite"):
        enzyme_abundance(net, {"A": np.nan, "B": 1.0})
    with pytest.raises(ValueError, match="negative expression for gene 'B'"):
        enzyme_abundance(net, {"A": 1.0, "B": -1.0})


def test_malformed_rule_in_network_names_reaction():
    bad = Network.from_stoichiometry({"R1": {"A": -1}}, gpr={"R1": "g1 and (g2"})
    with pytest.raises(NetworkError, match="reaction 'R1'.*position 10"):
        enzyme_abundance(bad, {"g1": 1.0})


def test_readers_cr_line_endings(tmp_path):
    genes = tmp_path / "genes.txt"
    genes.write_bytes(b"gene\tmean\tstd\rYAL001C\t1.5\t0.1\rYGL188C-A\t7.54E-27\t0\r")
    df = read_gene_data(genes)
    assert list(df.index) == ["YAL001C", "YGL188C-A"] and df.loc["YAL001C", "std"] == 0.1
    fluxes = tmp_path / "fluxes.txt"
    fluxes.write_bytes(b"D-glucose exchange\t16.5\r(R)-lactate exchange\t0.00873")
    s = read_flux_data(fluxes)
    assert s["(R)-lactate exchange"] == 0.00873
    genes.write_bytes(b"gene\tmean\tstd\rYAL001C\t1.5\r")
    with pytest.raises(ModelReadError, match="line 2: expected 3"):
        read_gene_data(genes)
    genes.write_bytes(b"gene\tmean\tstd\rYAL001C\tabc\t1\r")
    with pytest.raises(ModelReadError, match="line 2: mean 'abc'"):
        read_gene_data(genes)


def test_read_lee2012(shared_data):
    df = read_gene_data(shared_data / "falcon_yeast/lee2012/genedata_75.txt")
    assert df.shape == (6717, 2) and (df >= 0).all().all()
    flux = read_flux_data(shared_data / "falcon_yeast/lee2012/experimental_fluxes_75.txt")
    assert len(flux) == 7 and flux["D-glucose exchange"] == 16.5


def test_capacity_formula_and_bounds(net):
    assert translation_factor(2.0, 0.1, 0.4) == pytest.approx(4.0)
    assert enzyme_capacity(3.0, kcat=5.0, k_trans=2.0, mu=0.1, delta=0.4) == pytest.approx(60.0)
    e = np.array([np.nan, 1.0, 2.0, 0.5, np.nan])
    capped = capacity_bounds(net, e, kcat={"R1": 2.0, "R2": 1.0, "R3": 4.0}, mu=0.5, delta=0.5)
    np.testing.assert_allclose(capped.ub, [10, 2.0, 2.0, 2.0, 1000])
    np.testing.assert_allclose(capped.lb, net.lb)
    with pytest.raises(InfeasibleError, match="reaction 'R1'"):
        capacity_bounds(net.with_bounds({"R1": (5, 10)}), e, kcat=1.0)
    with pytest.raises(ValueError, match="mu \\+ delta"):
        translation_factor(1.0, 0.0, 0.0)
