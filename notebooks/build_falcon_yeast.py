# ruff: noqa: E501
"""Build and execute ``notebooks/falcon_yeast.ipynb`` (seed 003, FALCON on the Lee et al. yeast data).

Needs the shared benchmark data (``shared/data/falcon_yeast`` or ``$BAYESFLUX_SHARED_DATA``).
Run: ``.venv/bin/python notebooks/build_falcon_yeast.py``.
"""

from __future__ import annotations

from pathlib import Path

from _build import build

NOTEBOOK = "falcon_yeast.ipynb"

CELLS = [
    (
        "md",
        """# FALCON on the Lee et al. (2012) yeast data

This notebook walks through expression-based flux estimation with **FALCON** (Barker et al. 2015,
seed 003) in bayesflux:

1. read the RNA-seq means and standard deviations (bare-CR text files);
2. turn gene expression into enzyme-complex abundance with the **min-disjunction** algorithm
   (GPR rule -> CNF, minimum over clauses of summed expression);
3. group reactions that share one enzyme complex;
4. fit fluxes with FALCON's iterative least-absolute-deviation linear-fractional program;
5. compare the 7 predicted exchange fluxes with the measured ones (seed 003, Table 1).

It needs the shared benchmark data (`shared/data/falcon_yeast`, or `$BAYESFLUX_SHARED_DATA`).""",
    ),
    (
        "code",
        """import time

import numpy as np
import pandas as pd

from bayesflux import datasets
from bayesflux.expression import (
    cnf_to_string,
    enzyme_abundance,
    min_disjunction,
    parse,
    reaction_groups,
    read_flux_data,
    read_gene_data,
    to_cnf,
)
from bayesflux.methods.falcon import falcon
from bayesflux.methods.gimme import gimme

lee = datasets.shared_data_dir() / "falcon_yeast" / "lee2012"
genes = read_gene_data(lee / "genedata_75.txt")
measured = read_flux_data(lee / "experimental_fluxes_75.txt")
genes.head()""",
    ),
    (
        "md",
        """## GPR rules: why CNF

`(A and B) or (A and C)` evaluated directly (AND = min, OR = sum) counts A twice. Its CNF
`A and (B or C)` gives `min(a, b + c)`, the rate-limiting component of the complex.""",
    ),
    (
        "code",
        """rule = "(A and B) or (A and C)"
print(cnf_to_string(to_cnf(parse(rule))))
values = {"A": 1.0, "B": 2.0, "C": 3.0}
print("min-disjunction:", min_disjunction(rule, values)[0])
# a gene without data is removed from the rule: A and (B or C) with B missing -> A and C
print("missing B:", min_disjunction("A and (B or C)", {"A": 4.0, "C": 3.0})[0])""",
    ),
    ("md", "## Yeast 5.21: enzyme abundance and reaction groups"),
    (
        "code",
        """net = datasets.yeast("5.21")  # highly constrained, as shipped
print(net.summary())
start = time.perf_counter()
ab = enzyme_abundance(net, genes["mean"], genes["std"])
print(
    f"abundance of {int(np.isfinite(ab.abundance).sum())} reactions in "
    f"{time.perf_counter() - start:.3f} s; {ab.attrs['n_missing_genes']} rule genes lack data"
)
groups = reaction_groups(net)
print(
    "reaction groups:",
    int(groups.max()) + 1,
    "| largest:",
    pd.Series(groups.values[groups.values >= 0]).value_counts().iloc[0],
    "reactions",
)""",
    ),
    (
        "md",
        """## FALCON

Each run solves the Charnes-Cooper form of the LAD linear-fractional program, fixes the direction
of every reaction that carries flux, and re-solves (warm-started HiGHS) until no new reaction
becomes irreversible. Runs after the first permute the LP columns to visit alternative optima;
`flux` is their mean, `flux_sd` their spread.""",
    ),
    (
        "code",
        """EXCHANGES = ["r_1714", "r_1761", "r_1672", "r_1808", "r_1634", "r_1650", "r_1546"]


def compare(result, measured):
    v = result["flux"].sel(reaction=EXCHANGES).values
    predicted = np.abs(v) * measured.iloc[0] / abs(v[0])  # scale to the measured glucose uptake
    table = pd.DataFrame(
        {"measured": measured.values, "predicted": predicted}, index=measured.index
    )
    return table, np.corrcoef(predicted, measured.values)[0, 1]


start = time.perf_counter()
res = falcon(net, abundance=ab, repeats=4)
seconds = time.perf_counter() - start
print(f"4 runs in {seconds:.1f} s, {res.attrs['iterations']:.1f} iterations per run")
table, r = compare(res, measured)
print(f"Pearson r = {r:.3f} (paper: 0.99)")
table""",
    ),
    (
        "code",
        """import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(table["measured"], table["predicted"])
for name, row in table.iterrows():
    ax.annotate(name, (row["measured"], row["predicted"]), fontsize=7)
lim = 1.1 * float(table.to_numpy().max())
ax.plot([0, lim], [0, lim], "k:", lw=1)
ax.set(
    xlabel="measured exchange flux",
    ylabel="FALCON (scaled to glucose uptake)",
    xscale="symlog",
    yscale="symlog",
)
plt.show()""",
    ),
    (
        "md",
        """## Both growth conditions, both constraint sets

The minimally constrained (MC) model opens every gene-associated reaction that Yeast 5.21 flags
reversible (`datasets.yeast(..., constraints="minimal")`).""",
    ),
    (
        "code",
        """rows = []
for constraints in ("high", "minimal"):
    model = datasets.yeast("5.21", constraints=constraints)
    for cond in ("75", "85"):
        g = read_gene_data(lee / f"genedata_{cond}.txt")
        m = read_flux_data(lee / f"experimental_fluxes_{cond}.txt")
        start = time.perf_counter()
        out = falcon(model, g["mean"], g["std"], repeats=2)
        rows.append(
            {
                "constraints": constraints,
                "condition": cond + "%",
                "r": compare(out, m)[1],
                "seconds": time.perf_counter() - start,
            }
        )
pd.DataFrame(rows)""",
    ),
    (
        "md",
        """## Beside GIMME

GIMME (maximise growth, then minimise flux through lowly expressed reactions) has no information
about the secreted by-products, so its exchange fluxes correlate worse with the measurements
(seed 003, Table 1).""",
    ),
    (
        "code",
        """g = gimme(net, abundance=ab)
print(f"GIMME Pearson r = {compare(g, measured)[1]:.3f}")""",
    ),
    (
        "md",
        """The full table for Yeast 5.21 and 7.6 with timings is produced by
`python benchmarks/bench_falcon.py`.""",
    ),
]


if __name__ == "__main__":
    build(CELLS, Path(__file__).with_name(NOTEBOOK))
