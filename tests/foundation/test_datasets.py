"""Bundled datasets and the COBRA .mat reader on the shared yeast models."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux import datasets, fba


@pytest.mark.parametrize(
    ("name", "n_reactions", "n_metabolites"),
    [("textbook", 95, 72), ("iJO1366", 2583, 1805), ("salmonella", 3357, 2436)],
)
def test_cobra_models_load_offline(name, n_reactions, n_metabolites):
    net = datasets.load(name)
    assert (net.n_reactions, net.n_metabolites) == (n_reactions, n_metabolites)
    assert datasets.load(name) is net  # cached: networks are immutable


def test_unknown_dataset():
    with pytest.raises(KeyError, match="unknown dataset 'nope'"):
        datasets.load("nope")


def test_yeast_521_reads_and_grows(shared_data):
    net = datasets.yeast("5.21", data_dir=shared_data)
    assert (net.n_reactions, net.n_metabolites, len(net.genes)) == (2061, 1605, 893)
    assert "YDL174C" in net.gpr[0]
    assert fba(net).attrs["objective_value"] > 0


def test_yeast_76_rules_are_translated(shared_data):
    net = datasets.yeast("7.6", data_dir=shared_data)
    assert net.n_reactions == 3494
    assert "x(" not in " ".join(net.gpr)
    # The x(i) rules of the .mat file, translated, equal the gene rules of the model's text export.
    import pandas as pd

    table = pd.read_csv(
        shared_data / "falcon_yeast/yeast7.6/yeast_7.6_cobra.txt", sep="\t", nrows=3494
    ).set_index("Rxn name")
    text = (
        table["Gene-reaction association"]
        .reindex(list(net.reactions))
        .fillna("")
        .str.lower()
        .str.split()
        .str.join(" ")
    )
    ours = pd.Series(net.gpr).str.lower().str.split().str.join(" ")
    assert (ours.to_numpy() == text.to_numpy()).mean() > 0.99
    assert net.metabolite_compartments[0] == "ce"


def test_yeast_minimal_constraints_open_reversible_gene_reactions(shared_data):
    high = datasets.yeast("5.21", data_dir=shared_data)
    low = datasets.yeast("5.21", constraints="minimal", data_dir=shared_data)
    opened = (low.lb < 0) & (high.lb >= 0)
    assert opened.sum() > 500
    assert not np.any(opened & high.is_exchange)
    assert all(high.gpr[j] for j in np.flatnonzero(opened))
    np.testing.assert_array_equal(low.lb[opened], -high.ub[opened])
