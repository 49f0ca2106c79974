# ruff: noqa: E501
"""Build and execute ``notebooks/expression_posterior.ipynb`` (issue 15: the Bayesian expression
posterior of Yeast 5.21 on the Lee et al. 2012 data, beside FALCON and the measured fluxes).

Needs the shared benchmark data (``shared/data/falcon_yeast`` or ``$BAYESFLUX_SHARED_DATA``).
Run: ``.venv/bin/python notebooks/build_expression_posterior.py``.
"""

from __future__ import annotations

from pathlib import Path

from _build import build

NOTEBOOK = "expression_posterior.ipynb"

CELLS = [
    (
        "md",
        """# The expression posterior of Yeast 5.21 beside FALCON

FALCON (seed 003) turns RNA-seq into **one** flux vector. Its objective is a Laplace likelihood:
enzyme abundance `e_i ± σ_i` (from the genes, by min-disjunction) against the flux `k g_i(v)` its
reaction group carries, `k` an unknown abundance per unit flux. Only `w = k v`, the fluxes in
abundance units, is identified, so bayesflux puts its posterior over **all** of them:

    p(w, ρ, k | e) ∝ Π_i exp(-|g_i(w) - e_i| / s_i) / (2 s_i)  ×  exp(-Σ|w| / τ)  ×  p(ρ) p(k)   on  {S w = 0, lb k ≤ w ≤ ub k}

* `s_i = sqrt(σ_i² + ρ² e_i²)`: the replicate spread plus a relative error `ρ` (latent), since
  Lee's replicates understate how far abundance is from flux;
* `exp(-Σ|w|/τ)` with `τ = Σ e_i`: parsimony as a weak prior, on the identified fluxes. Its slope
  is below every group's likelihood slope, so it pulls no expressed reaction to zero, while it
  holds internal cycles through unmeasured reactions to the data's scale. Put on `v` instead,
  with `k` integrated out, the same prior weighs each flux *shape* by `(Σ|w|)^-d`, `d` = 322 the
  polytope's dimension: the posterior then went wherever the total flux is a little smaller
  (respiration, against the measured ethanol; `units="flux"` keeps that model for comparison);
* `k` (`flux_scale`) log-uniform over 3 decades either side of the mode's: it only carries the
  bounds stated in flux units (glucose uptake <= 1).

`expression_posterior` finds the mode by MILP (the global optimum of FALCON's objective, which
FALCON's heuristic only approaches), and the posterior is sampled by reflective HMC started
around the mode, whitened by the mode's scale guess and by pooled tuning rounds.

This notebook makes a **short** run (minutes); the full-size numbers (4 chains, R-hat, ESS) come
from `python benchmarks/bench_expression_posterior.py`.""",
    ),
    (
        "code",
        """import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayesflux import datasets
from bayesflux.expression import read_flux_data, read_gene_data
from bayesflux.methods.falcon import falcon
from bayesflux.models import expression_posterior

EXCHANGES = ["r_1714", "r_1761", "r_1672", "r_1808", "r_1634", "r_1650", "r_1546"]
NAMES = ["glucose", "ethanol", "CO2", "glycerol", "acetate", "pyruvate", "succinate"]

lee = datasets.shared_data_dir() / "falcon_yeast" / "lee2012"
genes = read_gene_data(lee / "genedata_75.txt")
measured = read_flux_data(lee / "experimental_fluxes_75.txt").to_numpy()
net = datasets.yeast("5.21", constraints="high")
print(net.summary())


def scaled(v):
    \"\"\"|v| of the 7 exchanges (last axis), scaled so glucose uptake is the measured one.\"\"\"
    return np.abs(v) * measured[0] / np.abs(v[..., :1])""",
    ),
    ("md", "## FALCON and the posterior's mode"),
    (
        "code",
        """ref = falcon(net, genes["mean"], genes["std"], repeats=2)
falcon_ex = scaled(ref["flux"].sel(reaction=EXCHANGES).values)
start = time.perf_counter()
posterior, mode = expression_posterior(net, genes["mean"], genes["std"])
print(f"mode in {time.perf_counter() - start:.0f} s")
lo, hi = mode.attrs["scale_bounds"]
print(
    f"objective: mode {mode.attrs['objective']:.0f}, FALCON {float(ref['objective'].min()):.0f}; "
    f"k {mode.attrs['k']:.3g} in its prior range [{lo:.3g}, {hi:.3g}]; "
    f"relative error at the mode {mode.attrs['relative_error']:.2f}"
)
assert mode.attrs["objective"] <= float(ref["objective"].min()) * (1 + 1e-6)
assert lo < mode.attrs["k"] < hi""",
    ),
    (
        "md",
        """## A short posterior run

Four chains dispersed around the mode, whitened by the mode's scale guess, a few dozen draws
each: enough to show where the posterior lies, far too few to converge (the warning says so).
A full run adds pooled tuning rounds (`tune_rounds=2`: pilot runs whose draws, pooled over the
chains, learn the whitening) and thousands of draws; its numbers are in the README.""",
    ),
    (
        "code",
        """start = time.perf_counter()
tree = posterior.sample(
    num_chains=4,
    num_warmup=20,
    num_draws=20,
    seed=0,
    start=mode["start"].values,
    scale=mode["scale"].values,
    scale_direction=mode["direction"].values,
)
print(f"sampled in {time.perf_counter() - start:.0f} s; max R-hat {tree.attrs['max_rhat']:.2f}")
draws = scaled(tree["posterior"]["flux"].sel(reaction=EXCHANGES).values).reshape(-1, 7)
low, median, high = np.quantile(draws, [0.03, 0.5, 0.97], axis=0)
table = pd.DataFrame(
    {
        "measured": measured,
        "FALCON": falcon_ex,
        "mode": scaled(mode["flux"].sel(reaction=EXCHANGES).values),
        "posterior median": median,
        "94% low": low,
        "94% high": high,
    },
    index=NAMES,
)
print(f"Pearson r of posterior means: {np.corrcoef(draws.mean(axis=0), measured)[0, 1]:.3f}")
table.round(3)""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(7, 3.5))
x = np.arange(7)
parts = ax.violinplot([np.log10(draws[:, j]) for j in range(7)], positions=x, showextrema=False)
for body in parts["bodies"]:
    body.set_alpha(0.4)
ax.vlines(x, np.log10(low), np.log10(high), color="C0", lw=2, label="posterior 94%")
ax.scatter(x, np.log10(measured), color="k", marker="D", zorder=3, label="measured")
falcon_shown = np.log10(np.maximum(falcon_ex, 1e-4))  # FALCON's zeros drawn at 1e-4
ax.scatter(x + 0.15, falcon_shown, color="C3", marker="x", zorder=3, label="FALCON")
ax.set_xticks(x, NAMES)
ax.set_ylabel("log10 flux (scaled to glucose uptake)")
ax.legend(fontsize=8)
plt.show()""",
    ),
    (
        "md",
        """The posterior medians sit near FALCON's point (both fit the same likelihood), and the
intervals say how well the expression data pin each exchange flux. Where an interval misses the
measurement the expression data and the model disagree about that by-product, not only its
uncertainty: the full-size run's coverage is in the README.""",
    ),
]


if __name__ == "__main__":
    build(CELLS, Path(__file__).with_name(NOTEBOOK), timeout=600)
