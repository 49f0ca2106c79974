"""Generate the bundled example's data from a known flux state of E. coli core (seeded).

The true state ``v*`` is one hit-and-run draw from the growth-constrained polytope of the example
(glucose <= 10, oxygen <= 20, biomass >= 0.75 1/h) with its internal cycles removed by cobra's
CycleFreeFlux (``loopless_solution``: exchange fluxes kept, internal ones the closest loopless
ones), so it is thermodynamically possible. From it:

* measured fluxes: glucose, oxygen, CO2, acetate exchange and biomass, ``y = v* + N(0, sd²)`` with
  ``sd = 0.05 |v*| + 0.1`` (written into ``ecoli_core.toml`` by hand from the printed table);
* gene expression (``ecoli_core_genes.tsv``, ``gene mean``, no std column) drawn from the
  model of :class:`~bayesflux.models.ExpressionLaplace` at the true state: for every reaction
  group ``R_i`` of :func:`~bayesflux.expression.enzyme_abundance` (reactions with one GPR rule)
  the enzyme abundance is ``e_i = k g_i(v*) + ε_i``, ``g_i = Σ_{j∈R_i} |v*_j|``, with the known
  scale ``k = 2`` (abundance per unit flux) and ``ε_i ~ Laplace(0, σ = 1)`` (the model's σ when
  the table has no std column); a negative draw (groups without flux) is set to 0. Gene values
  are then chosen so that the min-disjunction abundance of every group is exactly ``e_i``: one
  MILP (cvxpy + HiGHS) asks every CNF clause of group ``i`` to sum to at least ``e_i`` and one
  clause (a binary choice) to sum to exactly ``e_i``, minimising the total expression. The script
  checks the result through ``enzyme_abundance``. The pseudo-gene ``s0001`` of spontaneous
  reactions (diffusion) has no expression: it is left out of the table, so rules drop it and
  reactions catalysed by it alone have no abundance.

The true fluxes are in ``ecoli_core_truth.tsv`` (for checking coverage); the script reads them
from there and draws a new true state only with ``--new-truth`` (hit-and-run draws depend on the
sampler's version). Run: ``.venv/bin/python examples/make_ecoli_core_data.py [--new-truth]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import bayesflux as bf
from bayesflux.expression import enzyme_abundance
from bayesflux.expression.abundance import group_abundance
from bayesflux.expression.gpr import parse, prune, to_cnf
from bayesflux.sampling import LinearConstraint, sample_fluxes

HERE = Path(__file__).parent
MEASURED = ["EX_glc__D_e", "EX_o2_e", "EX_co2_e", "EX_ac_e", "Biomass_Ecoli_core"]
K = 2.0  # enzyme abundance per unit flux
SIGMA = 1.0  # Laplace scale of the abundances
SPONTANEOUS = "s0001"  # the pseudo-gene of spontaneous reactions: no expression


def _genes_for_abundance(genes: list[str], rules: list, target: np.ndarray) -> dict[str, float]:
    """Gene values whose min-disjunction abundance of rule ``i`` is ``target[i]`` (a MILP)."""
    import cvxpy as cp

    col = {g: j for j, g in enumerate(genes)}
    x = cp.Variable(len(genes), nonneg=True)
    big = 10.0 * float(target.max()) + 10.0
    dev = cp.Variable(len(rules))
    cons = [target + dev >= 0]
    for i, (rule, t) in enumerate(zip(rules, target)):
        clauses = sorted(to_cnf(rule), key=sorted)
        tight = cp.Variable(len(clauses), boolean=True)
        cons.append(cp.sum(tight) == 1)
        for c, clause in enumerate(clauses):
            total = cp.sum(x[[col[g] for g in sorted(clause)]])
            cons += [total >= t + dev[i], total <= t + dev[i] + big * (1 - tight[c])]
    problem = cp.Problem(cp.Minimize(1e3 * cp.norm1(dev) + cp.sum(x)), cons)
    problem.solve(solver=cp.HIGHS)
    if problem.status != "optimal":
        raise RuntimeError(f"no gene values reproduce the abundances: {problem.status}")
    return {g: max(float(x.value[col[g]]), 0.0) for g in genes}, dev.value


def _true_state(net) -> np.ndarray:
    """A hit-and-run draw of the growth-constrained polytope, its internal cycles removed."""
    from cobra.flux_analysis import loopless_solution

    tree = sample_fluxes(
        net,
        num_chains=1,
        num_draws=200,
        seed=20261202,
        constraints=[LinearConstraint({"Biomass_Ecoli_core": 1.0}, 0.75)],
    )
    draw = tree["posterior"]["flux"].isel(chain=0, draw=-1)
    model = net.to_cobra()
    model.reactions.get_by_id("Biomass_Ecoli_core").lower_bound = 0.75
    free = loopless_solution(model, fluxes=draw.to_series().to_dict()).fluxes
    return free.reindex(list(net.reactions)).to_numpy()


def main() -> None:
    net = bf.datasets.load("textbook").with_bounds(
        {"EX_glc__D_e": (-10.0, 1000.0), "EX_o2_e": (-20.0, 1000.0)}
    )
    truth_file = HERE / "ecoli_core_truth.tsv"
    if truth_file.is_file() and "--new-truth" not in sys.argv:
        v = np.asarray(pd.read_csv(truth_file, sep="\t", index_col=0)["flux"][list(net.reactions)])
    else:
        v = _true_state(net)
        truth = ["reaction\tflux"] + [f"{r}\t{x:.10g}" for r, x in zip(net.reactions, v)]
        truth_file.write_text("\n".join(truth) + "\n")
    rng = np.random.default_rng(20261202)
    print("measured fluxes (value, sd):")
    for r in MEASURED:
        true = float(v[net.reactions.index(r)])
        sd = 0.05 * abs(true) + 0.1
        print(f"  {r} = [{true + rng.normal(0, sd):.4f}, {sd:.4f}]")
    # reaction groups (one GPR rule each) in the order of group_abundance, the model's order
    genes = sorted(set(net.genes) - {SPONTANEOUS})
    _, _, members = group_abundance(enzyme_abundance(net, {g: 1.0 for g in genes}))
    rules = [prune(parse(net.gpr[int(np.flatnonzero(m)[0])]), genes) for m in members]
    group_flux = members.astype(float) @ np.abs(v)
    e = K * group_flux + rng.laplace(0.0, SIGMA, size=group_flux.size)
    e = np.maximum(e, 0.0)
    expression, dev = _genes_for_abundance(genes, rules, e)
    got, _, _ = group_abundance(enzyme_abundance(net, expression))
    np.testing.assert_allclose(got, e + dev, atol=1e-6)
    print(
        f"{int(np.sum(np.abs(dev) > 1e-6))} of {e.size} group abundances differ from their draw "
        f"(genes shared between groups), by at most {np.abs(dev).max():.3g}"
    )
    lines = ["gene\tmean"] + [f"{g}\t{expression[g]:.10g}" for g in sorted(expression)]
    (HERE / "ecoli_core_genes.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
