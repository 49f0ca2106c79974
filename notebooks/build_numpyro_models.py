# ruff: noqa: E501
"""Build and execute ``notebooks/numpyro_models.ipynb`` (nbformat + nbclient, see ``_build.py``).

Run: ``.venv/bin/python notebooks/build_numpyro_models.py``; the notebook writes a user's own
NumPyro flux model from bayesflux's blocks and samples it with ``ReflectiveHMC``.
"""

from __future__ import annotations

from pathlib import Path

from _build import build

NOTEBOOK = "numpyro_models.ipynb"

CELLS = [
    (
        "md",
        """# Your own flux model in NumPyro

bayesflux's posteriors are NumPyro models. The flux polytope, measured fluxes, FALCON's
expression likelihood and 13C measurements are building blocks (`bayesflux.models.blocks`)
that you combine with any NumPyro prior; `bayesflux.infer.ReflectiveHMC(model)` samples the
result under `numpyro.infer.MCMC`, moving polytope sites exactly (reflecting off their facets)
and every other latent in NumPyro's unconstrained space, and `bayesflux.infer.to_datatree`
returns what ArviZ reads as it is.

The example: *E. coli* core in two growth conditions (aerobic; oxygen-limited), each with
measured exchange fluxes and gene expression. The abundance per unit flux, `k`, differs between
conditions but not by much: a hierarchical prior shares a common `log k` between them. The data
are simulated from known flux states (draws of each condition's polytope) with known `k`
(2 and 3), so we can check the posterior against the truth.""",
    ),
    (
        "code",
        """import warnings
from pathlib import Path

import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.infer import MCMC

import bayesflux as bf
from bayesflux.expression import enzyme_abundance
from bayesflux.infer import EXTRA_FIELDS, ReflectiveHMC, to_datatree
from bayesflux.models import ExpressionLaplace, blocks
from bayesflux.sampling import LinearConstraint, polytope

# R-hat of fluxes the polytope fixes (zero variance) is undefined: ArviZ warns and reports NaN
warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
net = bf.datasets.load("textbook")
genes = pd.read_csv(Path("..") / "examples" / "ecoli_core_genes.tsv", sep="\\t", index_col=0)["mean"]
abundance = enzyme_abundance(net, genes)  # min-disjunction (seed 003): reaction groups
group = abundance["group"].values
members = ExpressionLaplace(net, abundance=abundance).members  # groups x reactions
values = abundance["abundance"].values
kept = [i for i in np.unique(group[group >= 0]) if np.isfinite(values[group == i][0])]
print(net.n_reactions, "reactions,", members.shape[0], "gene groups with data")""",
    ),
    (
        "md",
        """## Simulated data

Per condition: the flux polytope (oxygen uptake bound, a growth floor), a true flux state drawn
from it, measured glucose, oxygen, CO2 and biomass fluxes `y ~ N(v*, sd²)`, and group
abundances `e_i ~ Laplace(k g_i(v*), 1)` with `g_i(v) = Σ_{j∈R_i} |v_j|` (FALCON's model).""",
    ),
    (
        "code",
        """rng = np.random.default_rng(1)
# O2 uptake bound, growth floor, k
conditions = {"aerobic": (-20.0, 0.75, 2.0), "limited": (-8.0, 0.3, 3.0)}
SD = {"EX_glc__D_e": 0.5, "EX_o2_e": 1.0, "EX_co2_e": 1.0, "Biomass_Ecoli_core": 0.05}
data = {}
for i, (name, (o2, floor, k)) in enumerate(conditions.items()):
    poly = polytope(
        net.with_bounds({"EX_o2_e": (o2, 1000.0)}),
        constraints=[LinearConstraint({"Biomass_Ecoli_core": 1.0}, floor)],
    )
    truth = np.asarray(blocks.FluxPolytope(poly).sample(jax.random.key(10 + i)))
    e = k * (members @ np.abs(truth)) + rng.laplace(0.0, 1.0, members.shape[0])
    values = abundance["abundance"].values.copy()
    for gid, value in zip(kept, e):
        values[group == gid] = value
    expression = ExpressionLaplace(
        net, abundance=abundance.assign(abundance=("reaction", values)), polytope=poly,
        name=f"expression_{name}",
    )
    index = {r: net.reactions.index(r) for r in SD}
    measured = {r: (float(truth[index[r]] + rng.normal(0, s)), s) for r, s in SD.items()}
    data[name] = dict(polytope=poly, expression=expression, measured=measured, truth=truth)
    print(f"{name}: polytope of dimension {poly.dim}, {expression.abundance.size} groups observed")""",
    ),
    (
        "md",
        """## The model

Ordinary NumPyro: a prior for the shared `log k`, one polytope site per condition, the
condition's `k` drawn around the shared value, and the two likelihood blocks. Each block writes
one observation per measured flux or gene group, so pointwise log-likelihoods (for PSIS-LOO)
exist.""",
    ),
    (
        "code",
        """def model():
    log_k = numpyro.sample("log_k", dist.Normal(np.log(2.0), 1.0))
    for name, d in data.items():
        v = blocks.flux_polytope(f"v_{name}", d["polytope"])
        k = numpyro.sample(f"k_{name}", dist.LogNormal(log_k, 0.5))
        blocks.measured_fluxes(v, d["measured"], network=net, name=f"fluxes_{name}")
        blocks.expression_falcon(v, d["expression"], scale=k)


mcmc = MCMC(ReflectiveHMC(model), num_warmup=1000, num_samples=1000, num_chains=4,
            chain_method="vectorized", progress_bar=False)
mcmc.run(jax.random.key(0), extra_fields=EXTRA_FIELDS)
tree = to_datatree(mcmc)
summary = az.summary(tree)
print(f"max R-hat {summary.r_hat.max():.4f}, min bulk ESS {summary.ess_bulk.min():.0f}")
summary.loc[["log_k", "k_aerobic", "k_limited"]]""",
    ),
    (
        "md",
        """Every draw is a steady state within the bounds (the polytope site's unconstrained
coordinates are the null-space coordinates of `S v = 0`):""",
    ),
    (
        "code",
        """for name in data:
    v = tree.posterior[f"v_{name}"].values.reshape(-1, net.n_reactions)
    print(name, "max |S v| =", np.abs(v @ net.S.T).max(),
          "; bounds hold:", bool(np.all(v >= net.lb - 1e-9) and np.all(v <= net.ub + 1e-9)))
assert summary.r_hat.max() < 1.05
for name, k in (("aerobic", 2.0), ("limited", 3.0)):
    lo, hi = np.quantile(tree.posterior[f"k_{name}"].values, [0.005, 0.995])
    assert lo < k < hi, (name, lo, hi)""",
    ),
    (
        "md",
        """## Exchange fluxes beside the truth

The posterior's 94% intervals of the exchange fluxes (and growth) in each condition; the crosses
mark the true fluxes the data were simulated from.""",
    ),
    (
        "code",
        """exchanges = ["EX_glc__D_e", "EX_o2_e", "EX_co2_e", "EX_ac_e", "EX_etoh_e", "EX_for_e",
             "Biomass_Ecoli_core"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, name in zip(axes, data):
    post = tree.posterior[f"v_{name}"].sel(reaction=exchanges)
    lo, hi = post.quantile([0.03, 0.97], dim=("chain", "draw")).values
    mean = post.mean(("chain", "draw")).values
    y = np.arange(len(exchanges))
    ax.hlines(y, lo, hi, lw=3, label="94% interval")
    ax.plot(mean, y, "o", label="posterior mean")
    truth = data[name]["truth"][[net.reactions.index(r) for r in exchanges]]
    ax.plot(truth, y, "x", color="C3", ms=9, label="truth")
    ax.set_yticks(y, exchanges)
    ax.set_title(name)
    ax.set_xlabel("flux (mmol/gDW/h)")
axes[0].legend(loc="lower right")
fig.tight_layout()""",
    ),
    (
        "md",
        """PSIS-LOO per observed site (ArviZ asks which one when there are several):""",
    ),
    (
        "code",
        """for name in tree.log_likelihood.data_vars:
    loo = az.loo(tree, var_name=name)
    print(f"{name:22s} elpd_loo {loo.elpd:9.2f}  p_loo {loo.p:6.2f}")""",
    ),
]


if __name__ == "__main__":
    build(CELLS, Path(__file__).parent / NOTEBOOK)
