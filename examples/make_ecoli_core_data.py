"""Generate the bundled example's data from a known flux state of E. coli core (seeded).

The data are drawn from the example's own model, so that its posterior is calibrated (the 94 %
HDIs cover the truth 94 % of the time on average over draws of the prior and the data):

* the true state ``v*`` is a draw of the prior: uniform on the growth-constrained polytope
  (glucose <= 10, oxygen <= 20, biomass >= 0.75 1/h), the last of 100 kept draws of one
  coordinate hit-and-run chain thinned ``10 d`` (``d`` the polytope's dimension). It is not made
  loopless: a loopless correction moves the loop reactions onto faces of the polytope (e.g.
  ``FRD7 = 0``), a state in the tails of the uniform prior. Checked: the 94 % HDIs of 4 x 4000
  prior draws cover 0.948 +- 0.006 of the fluxes of 100 such draws (seeds ``SEED + i``);
* measured fluxes (:class:`~bayesflux.models.FluxObservations`): glucose, oxygen, CO2, acetate
  exchange and biomass, ``y = v* + N(0, sd²)`` with fixed ``sd`` (``SD``, not a function of
  ``v*``: the likelihood takes ``sd`` as known), written into ``ecoli_core.toml``;
* gene expression (``ecoli_core_genes.tsv``, ``gene mean``, no std column) from the model of
  :class:`~bayesflux.models.ExpressionLaplace`: for every reaction group ``R_i`` of
  :func:`~bayesflux.expression.enzyme_abundance` the abundance is ``e_i = max(k g_i(v*) + ε_i,
  0)``, ``g_i = Σ_{j∈R_i} |v*_j|``, ``ε_i ~ Laplace(0, σ = 1)`` (the term's σ without a std
  column) and ``k = 2`` (abundance per unit flux): fixed, not drawn from the term's uniform
  prior on ``k`` (about ``[0.007, 660]`` here), which the 59 groups pin down (the best ``k`` at
  ``v*`` is 2.0003).
  Gene expression cannot be negative; the clipping is exact censoring: ``P(e_i = 0 | v, k) =
  ½ exp(-k g_i / σ)`` is ``σ`` times the Laplace density at ``e_i = 0`` (``k g_i >= 0``), so the
  posterior given ``e_i = 0`` is the term's (which takes ``e_i`` as a Laplace draw).

The term treats the groups' abundances as independent, but genes shared between groups can tie
them for any gene values: ``NADTRHD = b3962 + THD2`` (``b3962 or (b1602 and b1603)`` against
``b1602 and b1603``) and every CNF clause of GLCpts holds a gene of FRUpts2, so ``e_GLCpts >=
e_FRUpts2``. Those genes (``b1602, b1603`` and FRUpts2's five) are left unmeasured, which drops
THD2 and FRUpts2 (no fructose: fixed at 0) from the likelihood and frees the other abundances;
so is the pseudo-gene ``s0001`` of spontaneous reactions (diffusion). Gene values whose min-
disjunction abundance of every group is exactly ``e_i`` come from one MILP (cvxpy + HiGHS):
every CNF clause of group ``i`` sums to at least ``e_i``, one (a binary choice) to exactly
``e_i``, the total expression minimal; the script checks them through ``enzyme_abundance``.

The true fluxes are in ``ecoli_core_truth.tsv`` (for checking coverage); the script reads them
from there and draws a new true state only with ``--new-truth`` (hit-and-run draws depend on the
sampler's version). :func:`simulate_data` makes other data sets of the same process (seeds):
``benchmarks/bench_joint.py --replicates``. Run:
``.venv/bin/python examples/make_ecoli_core_data.py [--new-truth]``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import bayesflux as bf
from bayesflux.expression import enzyme_abundance
from bayesflux.expression.abundance import group_abundance
from bayesflux.expression.gpr import parse, prune, to_cnf
from bayesflux.network import Network
from bayesflux.sampling import LinearConstraint, polytope, sample_fluxes

HERE = Path(__file__).parent
SEED = 20261202
BOUNDS = {"EX_glc__D_e": (-10.0, 1000.0), "EX_o2_e": (-20.0, 1000.0)}
GROWTH = [LinearConstraint({"Biomass_Ecoli_core": 1.0}, 0.75)]
# measured fluxes and their (known, fixed) sds
SD = {"EX_glc__D_e": 0.6, "EX_o2_e": 1.1, "EX_co2_e": 1.1, "EX_ac_e": 0.2,
      "Biomass_Ecoli_core": 0.1}
K = 2.0  # enzyme abundance per unit flux
SIGMA = 1.0  # Laplace scale of the abundances
# unmeasured genes: spontaneous reactions' pseudo-gene; genes tying THD2 to NADTRHD and
# FRUpts2 to GLCpts
UNMEASURED = {"s0001", "b1602", "b1603", "b1817", "b1818", "b1819", "b2415", "b2416"}


def _genes_for_abundance(genes: list[str], rules: list, target: np.ndarray) -> dict[str, float]:
    """Gene values whose min-disjunction abundance of rule ``i`` is ``target[i]`` (a MILP)."""
    import cvxpy as cp

    col = {g: j for j, g in enumerate(genes)}
    x = cp.Variable(len(genes), nonneg=True)
    big = 10.0 * float(target.max()) + 10.0
    cons = []
    for rule, t in zip(rules, target):
        clauses = sorted(to_cnf(rule), key=sorted)
        tight = cp.Variable(len(clauses), boolean=True)
        cons.append(cp.sum(tight) == 1)
        for c, clause in enumerate(clauses):
            total = cp.sum(x[[col[g] for g in sorted(clause)]])
            cons += [total >= t, total <= t + big * (1 - tight[c])]
    problem = cp.Problem(cp.Minimize(cp.sum(x)), cons)
    problem.solve(solver=cp.HIGHS)
    if problem.status != "optimal":
        raise RuntimeError(f"no gene values reproduce the abundances: {problem.status}")
    return {g: max(float(x.value[col[g]]), 0.0) for g in genes}


def network() -> Network:
    """E. coli core with the example's exchange bounds (the growth floor is ``GROWTH``)."""
    return bf.datasets.load("textbook").with_bounds(BOUNDS)


def prior_draw(net: Network, seed: int) -> np.ndarray:
    """One (nearly exact) uniform draw of the growth-constrained polytope."""
    poly = polytope(net, constraints=GROWTH)
    tree = sample_fluxes(poly, num_chains=1, num_draws=100, seed=seed, thinning=10 * poly.dim)
    return tree["posterior"]["flux"].isel(chain=0, draw=-1).to_numpy()


def simulate_data(
    net: Network, seed: int, truth: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, tuple[float, float]], dict[str, float]]:
    """``(v*, {reaction: (y, sd)}, {gene: expression})``: ``v*`` a prior draw (or ``truth``),
    the data drawn from the likelihoods at ``v*`` (module docstring); seeded."""
    v = prior_draw(net, seed) if truth is None else np.asarray(truth, dtype=float)
    rng = np.random.default_rng(seed)
    fluxes = {
        r: (float(v[net.reactions.index(r)] + rng.normal(0.0, sd)), sd) for r, sd in SD.items()
    }
    # reaction groups (one GPR rule each) in the order of group_abundance, the model's order
    genes = sorted(set(net.genes) - UNMEASURED)
    _, _, members = group_abundance(enzyme_abundance(net, {g: 1.0 for g in genes}))
    rules = [prune(parse(net.gpr[int(np.flatnonzero(m)[0])]), genes) for m in members]
    group_flux = members.astype(float) @ np.abs(v)
    e = np.maximum(K * group_flux + rng.laplace(0.0, SIGMA, size=group_flux.size), 0.0)
    expression = _genes_for_abundance(genes, rules, e)
    got, _, _ = group_abundance(enzyme_abundance(net, expression))
    np.testing.assert_allclose(got, e, atol=1e-6)
    return v, fluxes, expression


def main() -> None:
    net = network()
    truth_file = HERE / "ecoli_core_truth.tsv"
    truth = None
    if truth_file.is_file() and "--new-truth" not in sys.argv:
        truth = pd.read_csv(truth_file, sep="\t", index_col=0)["flux"][list(net.reactions)]
    v, fluxes, expression = simulate_data(net, SEED, truth)
    if truth is None:
        lines = ["reaction\tflux"] + [f"{r}\t{x:.10g}" for r, x in zip(net.reactions, v)]
        truth_file.write_text("\n".join(lines) + "\n")
    lines = ["gene\tmean"] + [f"{g}\t{expression[g]:.10g}" for g in sorted(expression)]
    (HERE / "ecoli_core_genes.tsv").write_text("\n".join(lines) + "\n")
    toml = HERE / "ecoli_core.toml"
    entries = ", ".join(f"{r} = [{y:.4f}, {sd:.4f}]" for r, (y, sd) in fluxes.items())
    text, n = re.subn(r"(?m)^fluxes = \{.*\}$", f"fluxes = {{ {entries} }}", toml.read_text())
    if n != 1:
        raise RuntimeError(f"expected one 'fluxes = {{...}}' line in {toml}, found {n}")
    toml.write_text(text)
    e, _, _ = group_abundance(enzyme_abundance(net, expression))
    print(f"measured fluxes: {entries}\n{len(expression)} genes; {int(np.sum(e == 0))} of "
          f"{e.size} group abundances clipped at 0")


if __name__ == "__main__":
    main()
