# ruff: noqa: E501
"""Build and execute ``notebooks/thermodynamics.ipynb`` (seed 002, the thermodynamic-stoichiometric model).

Run: ``.venv/bin/python notebooks/build_thermodynamics.py``.
"""

from __future__ import annotations

from pathlib import Path

from _build import build

NOTEBOOK = "thermodynamics.ipynb"

CELLS = [
    (
        "md",
        """# The thermodynamic-stoichiometric model (seed 002)

Seed 002 joins the flux polytope (`S v = 0`, bounds) with thermodynamics: reaction Gibbs energies
`ΔrG = ΔrG0 + RT Sᵀ ln c` with bounded metabolite concentrations, and the second law
`sign(v_j) ΔrG_j < 0`. Its results, which we reproduce at small size on *E. coli* core:

* **variability analysis**: the TSM ranges of fluxes are much narrower than the stoichiometric
  ones (the seed reports the box-volume ratio);
* for a fixed flux, feasibility depends only on its **sign pattern** (the concentration
  polytope B); **loops** (sign-consistent internal cycles) are never feasible, and splitting the
  space by the signs of loop reactions gives **sectors**, weighted by Expectation Propagation
  volumes;
* **sampling**: hit-and-run along chords cut where a flux changes sign, keeping only the feasible
  orthant pieces, gives draws that all pass the polytope-B check;
* the **flux-force relationship** `v+/v- = exp(-ΔrG/RT)` bounds each exchange flux from below,
  `v_xch >= |v_net| / (exp(|ΔrG|/RT) - 1)`.

Data: eQuilibrator ΔrG'0 for E. coli core (bundled), concentrations 1 µM to 20 mM, the three
membrane reactions (no proton-motive term in the table) left out of the second law.""",
    ),
    (
        "code",
        """import time

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayesflux import thermo
from bayesflux.methods import fba, fva

jax.config.update("jax_enable_x64", True)

tsm = thermo.ecoli_core()
net = tsm.network
print(
    f"{net.n_reactions} reactions, {tsm.n_constrained} under the second law; "
    f"RT = {tsm.rt:.3f} kJ/mol; margin δ = 0.1 kJ/mol"
)""",
    ),
    (
        "md",
        """## Thermodynamic FVA vs FVA

`thermodynamic_fva` solves each flux end as a MILP (direction binaries, big-M), after screening
it as an LP whose optimum's sign pattern is checked against B.""",
    ),
    (
        "code",
        """start = time.perf_counter()
plain = fva(net, fraction=0.0)
tfva = thermo.thermodynamic_fva(tsm, variables=("flux",))
print(
    f"FVA + TFVA of {net.n_reactions} reactions in {time.perf_counter() - start:.1f} s "
    f"({tfva.attrs['ends_at_time_limit']} MILP ends at the time limit)"
)
summary = thermo.box_volume_reduction(plain, tfva)
print({k: round(v, 3) for k, v in summary.items()})
ranges = pd.DataFrame(
    {
        "FVA min": plain["minimum"].to_series(),
        "FVA max": plain["maximum"].to_series(),
        "TFVA min": tfva["minimum"].to_series(),
        "TFVA max": tfva["maximum"].to_series(),
    }
)
reversible = (ranges["FVA min"] < -1e-6) & (ranges["FVA max"] > 1e-6)
blocked = ranges[
    (ranges["FVA max"] - ranges["FVA min"] > 1e-6)
    & (ranges["TFVA max"] - ranges["TFVA min"] <= 1e-6)
]
fixed_direction = ranges[
    reversible
    & (ranges["TFVA max"] - ranges["TFVA min"] > 1e-6)
    & ((ranges["TFVA min"] >= -1e-6) | (ranges["TFVA max"] <= 1e-6))
]
print("blocked by thermodynamics (no ΔrG below -δ):", list(blocked.index))
print(f"{len(fixed_direction)} reversible reactions get a fixed direction:")
fixed_direction.round(2)""",
    ),
    (
        "code",
        """w = pd.DataFrame(
    {"FVA": ranges["FVA max"] - ranges["FVA min"], "TFVA": ranges["TFVA max"] - ranges["TFVA min"]}
)
order = (w["FVA"] - w["TFVA"]).sort_values(ascending=False).index[:30]
fig, ax = plt.subplots(figsize=(11, 4), constrained_layout=True)
for k, (name, lo, hi) in enumerate(
    [("FVA", "FVA min", "FVA max"), ("TFVA", "TFVA min", "TFVA max")]
):
    ax.vlines(
        np.arange(len(order)) + (k - 0.5) * 0.3,
        ranges.loc[order, lo],
        ranges.loc[order, hi],
        lw=5,
        color=["tab:blue", "tab:orange"][k],
        label=name,
    )
ax.set_yscale("symlog", linthresh=10.0)
ax.set_xticks(np.arange(len(order)), order, rotation=90, fontsize=8)
ax.set_ylabel("flux range")
ax.set_title("30 reactions whose range shrinks most")
ax.legend()
plt.show()""",
    ),
    (
        "md",
        """## Sign patterns, loops and sectors

The plain FBA optimum violates the second law at physiological concentrations; the
thermodynamic FBA optimum (`tfba`, the same MILP as TFVA) does not. Adding flux around the
SUCDi/FRD7 cycle (both forwards: succinate -> fumarate -> succinate) makes that sign pattern
infeasible whatever the concentrations. `enumerate_loops` finds this cycle as E. coli core's only loop;
`sectors` splits the space by the signs of its reactions into loop-free sectors weighted by
their EP volume `exp(H)`.""",
    ),
    (
        "code",
        """B = thermo.ConcentrationPolytope(tsm)
v_fba = fba(net)["flux"].values
z_tfba, v = thermo.tfba(tsm)
print(f"growth: FBA {float(v_fba @ net.objective):.4f}, thermodynamic FBA {z_tfba:.4f}")
looped = v.copy()
looped[net.reaction_index["FRD7"]] += 1.0
looped[net.reaction_index["SUCDi"]] += 1.0
print(
    "feasible [FBA optimum, TFBA optimum, TFBA + loop flux]:",
    B.feasible_fluxes(np.stack([v_fba, v, looped])).tolist(),
)
viol = B.violation(thermo.sign_pattern(looped[None], tsm)[0])
print(
    f"minimal violation ||ε||_1 of the looped pattern (seed 002, Eq. 11): {viol.total:.3g} kJ/mol"
)
loops = thermo.enumerate_loops(tsm)
print("loops:", [str(lp) for lp in loops])
secs = thermo.sectors(tsm, loops)
pd.DataFrame(
    [
        {"signs": s.signs, "dimension": s.dim, "EP log-volume": s.log_volume, "weight": s.weight}
        for s in secs
    ]
).round(3)""",
    ),
    (
        "md",
        """## Orthant hit-and-run in the heavier sector

A short run (2 chains, 50 kept draws after 10 warm-up steps each). Every step splits its chord at
the sign changes of the constrained fluxes and picks a point uniformly on the feasible pieces
(feasibility of each new sign pattern: one LP on B, cached). Then every draw is re-checked: mass
balance, bounds, and an **independent** LP (`check_sign_pattern`, scipy) on each distinct sign
pattern.""",
    ),
    (
        "code",
        """sector = max(secs, key=lambda s: s.weight)
start = time.perf_counter()
tree = thermo.sample_orthants(
    tsm, num_draws=50, num_warmup=10, num_chains=2, bounds=sector.bounds, seed=1
)
draws = tree["posterior"]["flux"].values.reshape(-1, net.n_reactions)
seconds = time.perf_counter() - start
print(
    f"{len(draws)} draws in {seconds:.1f} s; {tree.attrs['sign_patterns']} sign patterns met, "
    f"{tree.attrs['lp_solves']} LPs on B"
)
print(
    "max |S v| =",
    float(np.abs(net.S @ draws.T).max()),
    "| within bounds:",
    bool(np.all((draws >= net.lb - 1e-9) & (draws <= net.ub + 1e-9))),
)
patterns = np.unique(thermo.sign_pattern(draws, tsm), axis=0)
ok = [thermo.check_sign_pattern(tsm, s) for s in patterns]
print(
    f"{len(patterns)} distinct sign patterns among the draws; all feasible by an independent LP: "
    f"{all(ok)}"
)
assert all(ok)""",
    ),
    (
        "code",
        """show = ["PGI", "G6PDH2r", "MDH", "FUM", "PTAr", "GLUDy"]
fig, axes = plt.subplots(1, len(show), figsize=(13, 2.8), constrained_layout=True)
flux = tree["posterior"]["flux"]
for ax, r in zip(axes, show):
    lo, hi = ranges.loc[r, "TFVA min"], ranges.loc[r, "TFVA max"]
    ax.hist(flux.sel(reaction=r).values.ravel(), bins=np.linspace(lo, hi, 25), color="tab:green")
    ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_title(
        f"{r}\\nFVA [{ranges.loc[r, 'FVA min']:.0f}, {ranges.loc[r, 'FVA max']:.0f}]", fontsize=9
    )
axes[0].set_ylabel("draws")
fig.suptitle("orthant hit-and-run draws over each TFVA range")
plt.show()""",
    ),
    (
        "md",
        """## Flux-force bounds on exchange fluxes

`v_xch >= |v_net| / (exp(|ΔrG|/RT) - 1)` falls off exponentially with the driving force (left).
For a flux sample, the largest `|ΔrG_j|` that B allows for its sign pattern gives the least
conservative bound (right; one LP per reaction and sign pattern). With concentrations free over
1 µM to 20 mM every reaction can be driven far from equilibrium, so these bounds are small;
measured metabolite concentrations (the seed's metabolome data) shrink B and raise them. They
enter the 13C likelihood as lower bounds on exchange fluxes.""",
    ),
    (
        "code",
        """drg = np.linspace(0.05, 15.0, 200)
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.4), constrained_layout=True)
ax0.semilogy(drg, thermo.exchange_lower_bound(np.ones_like(drg), -drg, tsm.rt))
ax0.set_xlabel("|ΔrG| (kJ/mol)")
ax0.set_ylabel("v_xch / |v_net| at least")
ax0.set_title("flux-force bound")

last = tree["posterior"]["flux"].isel(chain=0, draw=-1).values  # one draw: one sign pattern
bounds = thermo.least_conservative_bounds(tsm, last, B=B).isel(sample=0).to_series()
largest = bounds.sort_values(ascending=False)
top = largest.index[:15]
ax1.bar(np.arange(len(top)), largest.loc[top])
ax1.set_xticks(np.arange(len(top)), top, rotation=90)
ax1.set_yscale("log")
ax1.set_ylabel("lower bound on v_xch")
ax1.set_title("least conservative bounds, last draw of chain 0")
plt.show()
largest.head(8).round(4)""",
    ),
    (
        "md",
        """Thermodynamics blocks a few reactions, fixes the direction of others and shrinks the box volume
of the flux ranges by many orders of magnitude (`log10_box_volume_ratio`), the loop law removes the
SUCDi/FRD7 cycle and cuts the space into two sectors, and all sampled draws pass an independent
polytope-B check. Parallel tempering between sectors (`thermo.parallel_tempering`) and 13C scoring
of the draws (`bayesflux.models`) are the next steps of the seed's pipeline.""",
    ),
]


if __name__ == "__main__":
    build(CELLS, Path(__file__).with_name(NOTEBOOK))
