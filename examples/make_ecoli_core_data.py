"""Generate the bundled example's data from a known flux state of E. coli core (seeded).

The true state ``v*`` is one hit-and-run draw from the growth-constrained polytope of the example
(glucose <= 10, oxygen <= 20, biomass >= 0.75 1/h) with its internal cycles removed by cobra's
CycleFreeFlux (``loopless_solution``: exchange fluxes kept, internal ones the closest loopless
ones), so it is thermodynamically possible. From it:

* measured fluxes: glucose, oxygen, CO2, acetate exchange and biomass, ``y = v* + N(0, sd²)`` with
  ``sd = 0.05 |v*| + 0.1`` (written into ``ecoli_core.toml`` by hand from the printed table);
* gene expression (``ecoli_core_genes.tsv``, ``gene mean std``): each reaction's ``|v*_j|`` is
  shared equally among the alternatives of its GPR rule (an OR of complexes; every gene of a
  complex gets the complex's share), summed over a gene's reactions, plus 1 (basal expression),
  times lognormal noise (sd 0.2 in log space); ``std = 0.2 mean``.

The true fluxes are written to ``ecoli_core_truth.tsv`` for checking coverage.
Run: ``.venv/bin/python examples/make_ecoli_core_data.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bayesflux as bf
from bayesflux.expression.gpr import parse
from bayesflux.sampling import LinearConstraint, sample_fluxes

HERE = Path(__file__).parent
MEASURED = ["EX_glc__D_e", "EX_o2_e", "EX_co2_e", "EX_ac_e", "Biomass_Ecoli_core"]


def _alternatives(node) -> list[list[str]]:
    """The complexes (gene lists) of a rule read as an OR of ANDs, without distribution."""
    if isinstance(node, str):
        return [[node]]
    parts = [_alternatives(c) for c in node.args]
    if node.op == "or":
        return [alt for p in parts for alt in p]
    return [sorted({g for p in parts for alt in p for g in alt})]  # AND: one complex


def main() -> None:
    net = bf.datasets.load("textbook").with_bounds(
        {"EX_glc__D_e": (-10.0, 1000.0), "EX_o2_e": (-20.0, 1000.0)}
    )
    tree = sample_fluxes(
        net,
        num_chains=1,
        num_draws=200,
        seed=20261202,
        constraints=[LinearConstraint({"Biomass_Ecoli_core": 1.0}, 0.75)],
    )
    from cobra.flux_analysis import loopless_solution

    draw = tree["posterior"]["flux"].isel(chain=0, draw=-1)
    model = net.to_cobra()
    model.reactions.get_by_id("Biomass_Ecoli_core").lower_bound = 0.75
    free = loopless_solution(model, fluxes=draw.to_series().to_dict()).fluxes
    v = draw.copy(data=free.reindex(list(net.reactions)).to_numpy())
    rng = np.random.default_rng(20261202)
    print("measured fluxes (value, sd):")
    for r in MEASURED:
        true = float(v.sel(reaction=r))
        sd = 0.05 * abs(true) + 0.1
        print(f"  {r} = [{true + rng.normal(0, sd):.4f}, {sd:.4f}]")
    expression = {g: 1.0 for g in net.genes}
    for j, rule in enumerate(net.gpr):
        if not rule:
            continue
        alts = _alternatives(parse(rule))
        share = abs(float(v.values[j])) / len(alts)
        for alt in alts:
            for g in alt:
                expression[g] += share
    lines = ["gene\tmean\tstd"]
    for g in sorted(expression):
        mean = expression[g] * rng.lognormal(0.0, 0.2)
        lines.append(f"{g}\t{mean:.6g}\t{0.2 * mean:.6g}")
    (HERE / "ecoli_core_genes.tsv").write_text("\n".join(lines) + "\n")
    truth = ["reaction\tflux"] + [f"{r}\t{x:.10g}" for r, x in zip(net.reactions, v.values)]
    (HERE / "ecoli_core_truth.tsv").write_text("\n".join(truth) + "\n")


if __name__ == "__main__":
    main()
