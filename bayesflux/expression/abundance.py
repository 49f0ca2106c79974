"""Enzyme-complex abundance per reaction, and reaction groups that share one abundance.

:func:`enzyme_abundance` maps gene expression (one value per gene, or genes x samples) through
every reaction's GPR rule (min-disjunction by default, see :mod:`bayesflux.expression.gpr`) and
returns an ``xarray.Dataset`` with a ``reaction`` coordinate. :func:`reaction_groups` gathers the
reactions whose rules are logically identical (same canonical CNF), which FALCON treats as one
enzyme complex catalysing several reactions (seed 003, "reaction groups").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesflux.errors import NetworkError
from bayesflux.expression.gpr import cnf_to_string, evaluate_rules, parse, rule_genes, to_cnf
from bayesflux.network import Network, as_network
from bayesflux.results import provenance

__all__ = [
    "reaction_groups",
    "enzyme_abundance",
    "expression_table",
    "group_abundance",
    "abundance_vector",
]


def reaction_groups(network) -> xr.DataArray:
    """Group index per reaction (``-1``: no rule); one group per distinct canonical CNF rule.

    ``(A and B) or (A and C)`` and ``A and (B or C)`` fall into one group. The group's canonical
    rule text is in the ``rule`` coordinate of the result.
    """
    network = as_network(network)
    keys: dict[str, int] = {}
    group = np.full(network.n_reactions, -1, dtype=int)
    canonical = [""] * network.n_reactions
    for j, (r, rule) in enumerate(zip(network.reactions, network.gpr)):
        tree = parse(rule, reaction=r)
        if tree is None:
            continue
        canonical[j] = cnf_to_string(to_cnf(tree, reaction=r))
        group[j] = keys.setdefault(canonical[j], len(keys))
    return xr.DataArray(
        group,
        dims=("reaction",),
        coords={"reaction": list(network.reactions), "rule": ("reaction", canonical)},
        name="group",
    )


def expression_table(expression, name: str = "expression") -> pd.DataFrame:
    """Genes x samples DataFrame from a Series, DataFrame or ``{gene: value}`` mapping."""
    if isinstance(expression, pd.Series):
        frame = expression.to_frame(name="value")
    elif isinstance(expression, pd.DataFrame):
        frame = expression
    elif isinstance(expression, Mapping):
        frame = pd.Series(dict(expression), dtype=float).to_frame(name="value")
    else:
        raise TypeError(f"{name} must be a pandas Series/DataFrame or a mapping gene -> value")
    frame = frame.astype(float)
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise ValueError(f"gene {dup!r} appears more than once in the {name}")
    bad = np.argwhere(~np.isfinite(frame.to_numpy()))
    if bad.size:
        g, s = bad[0]
        raise ValueError(f"{name} of gene {frame.index[g]!r} (sample {frame.columns[s]!r}) is "
                         f"not finite; drop the gene to treat it as unmeasured")
    if (frame.to_numpy() < 0).any():
        g = frame.index[(frame.to_numpy() < 0).any(axis=1)][0]
        raise ValueError(f"negative {name} for gene {g!r}")
    return frame


def enzyme_abundance(
    network,
    expression,
    std=None,
    *,
    method: Literal["min_disjunction", "plain"] = "min_disjunction",
    or_: Literal["sum", "max"] = "sum",
    missing: Literal["drop", "error"] = "drop",
) -> xr.Dataset:
    """Enzyme-complex abundance of every reaction from gene expression.

    Parameters
    ----------
    network
        Network (or anything :func:`~bayesflux.network.as_network` accepts) with GPR rules.
    expression
        Gene -> value: a Series, a mapping, or a genes x samples DataFrame (a ``sample`` dim).
    std
        Optional standard deviations, same layout as ``expression`` (missing genes: 0).
    method
        ``"min_disjunction"`` (seed 003: CNF, min over clauses of summed expression) or
        ``"plain"`` (seed 000: AND = min, OR = ``or_``).
    missing
        ``"drop"``: genes without data are removed from each rule (``A and (B or C)`` with ``B``
        unmeasured -> ``A and C``); a reaction with no measured gene gets ``NaN``.
        ``"error"``: any rule gene without data raises :class:`NetworkError`.

    Returns
    -------
    xarray.Dataset
        ``abundance`` and ``std`` over ``reaction`` (and ``sample``), ``group`` per reaction, and
        attrs ``n_missing_genes`` and ``n_unmeasured_reactions``.
    """
    network = as_network(network)
    frame = expression_table(expression)
    sd = None if std is None else expression_table(std, "std").reindex(frame.index).fillna(0.0)
    if sd is not None:
        sd.columns = frame.columns
    rule_gene_set = frozenset().union(
        *(rule_genes(parse(g, reaction=r)) for r, g in zip(network.reactions, network.gpr))
    )
    absent = sorted(rule_gene_set - set(frame.index))
    if absent and missing == "error":
        raise NetworkError(f"{len(absent)} gene(s) of network {network.id!r} have no expression "
                           f"data: {', '.join(absent[:10])}")
    if missing not in ("drop", "error"):
        raise ValueError(f"missing must be 'drop' or 'error', not {missing!r}")
    values = dict(zip(frame.index, frame.to_numpy()))
    variances = None if sd is None else dict(zip(sd.index, sd.to_numpy() ** 2))
    abundance, variance = evaluate_rules(
        network.gpr, values, variances=variances, method=method, or_=or_,
        reactions=network.reactions,
    )
    single = not isinstance(expression, pd.DataFrame)
    dims = ("reaction",) if single else ("reaction", "sample")
    coords = {"reaction": list(network.reactions)}
    if single:
        abundance, variance = abundance[:, 0], variance[:, 0]
    else:
        coords["sample"] = [str(c) for c in frame.columns]
    groups = reaction_groups(network)
    has_rule = groups.values >= 0
    unmeasured = has_rule & np.isnan(abundance.reshape(network.n_reactions, -1)[:, 0])
    ds = xr.Dataset(
        {
            "abundance": (dims, abundance),
            "std": (dims, np.sqrt(variance)),
            "group": groups.drop_vars("rule"),
        },
        coords={**coords, "rule": ("reaction", groups["rule"].values)},
        attrs=provenance(
            "enzyme_abundance", network, gpr_method=method, or_=or_,
            n_missing_genes=len(absent), n_unmeasured_reactions=int(unmeasured.sum()),
        ),
    )
    return ds


def group_abundance(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group ``(abundance, std, member mask groups x reactions)`` of a single-sample result.

    Groups whose abundance is ``NaN`` (no measured gene) are left out.
    """
    group = ds["group"].values
    a = ds["abundance"].values
    s = ds["std"].values
    if a.ndim != 1:
        raise ValueError("group_abundance needs a single-sample abundance (select one sample)")
    ids, first = np.unique(group, return_index=True)
    keep = (ids >= 0) & ~np.isnan(a[first])
    ids, first = ids[keep], first[keep]
    members = group[None, :] == ids[:, None]
    return a[first], s[first], members


def abundance_vector(
    network: Network,
    expression=None,
    *,
    abundance: xr.Dataset | xr.DataArray | None = None,
    method: Literal["min_disjunction", "plain"] = "min_disjunction",
    or_: Literal["sum", "max"] = "sum",
) -> np.ndarray:
    """Per-reaction abundance (``NaN`` for reactions without a rule or without measured genes).

    ``expression`` goes through :func:`enzyme_abundance`; or pass a precomputed single-sample
    ``abundance`` (its Dataset or its ``abundance`` DataArray over ``reaction``).
    """
    if abundance is None:
        if expression is None:
            raise ValueError("give expression data or a precomputed abundance")
        abundance = enzyme_abundance(network, expression, method=method, or_=or_)
    da = abundance["abundance"] if isinstance(abundance, xr.Dataset) else abundance
    if da.dims != ("reaction",):
        raise ValueError(f"abundance must be one value per reaction, got dims {da.dims}")
    unknown = set(map(str, da["reaction"].values)) - set(network.reactions)
    if unknown:
        raise NetworkError(f"abundance names reaction(s) not in network {network.id!r}: "
                           f"{', '.join(sorted(unknown)[:5])}")
    return da.reindex(reaction=list(network.reactions)).values.astype(float)
