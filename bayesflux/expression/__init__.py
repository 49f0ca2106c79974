"""Gene expression to reactions: normalisation, GPR rules, enzyme-complex abundance, capacities."""

from bayesflux.expression.abundance import (
    abundance_vector,
    enzyme_abundance,
    expression_table,
    group_abundance,
    reaction_groups,
)
from bayesflux.expression.capacity import capacity_bounds, enzyme_capacity, translation_factor
from bayesflux.expression.gpr import (
    cnf_to_string,
    evaluate,
    evaluate_rules,
    min_disjunction,
    parse,
    prune,
    rule_genes,
    to_cnf,
)
from bayesflux.expression.normalize import cpm, fpkm, tpm
from bayesflux.expression.readers import read_flux_data, read_gene_data

__all__ = [
    "abundance_vector",
    "capacity_bounds",
    "cnf_to_string",
    "cpm",
    "enzyme_abundance",
    "enzyme_capacity",
    "evaluate",
    "evaluate_rules",
    "expression_table",
    "fpkm",
    "group_abundance",
    "min_disjunction",
    "parse",
    "prune",
    "reaction_groups",
    "read_flux_data",
    "read_gene_data",
    "rule_genes",
    "to_cnf",
    "tpm",
    "translation_factor",
]
