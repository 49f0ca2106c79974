# ruff: noqa: E501
"""Build and execute ``notebooks/enzyme_models.ipynb`` (issue 21: enzyme-constrained and ME models).

Run: ``.venv/bin/python notebooks/build_enzyme_models.py``; the notebook shows overflow
metabolism from a protein budget on E. coli core, ME-lite growth rates, and a short Bayesian
enzyme posterior on simulated proteomics.
"""

from __future__ import annotations

from pathlib import Path

from _build import build

NOTEBOOK = "enzyme_models.ipynb"

CELLS = [
    (
        "md",
        """# Enzyme-constrained and expression (ME-lite) models

Issue 21 adds three ways of making enzymes cost something in a flux model, all on *E. coli* core
(cobra's `textbook`, bundled as `bayesflux.datasets.load("textbook")`):

1. **ecModels** (`bayesflux.methods.ecmodel`, GECKO / sMOMENT): each enzymatic flux uses enzyme
   `|v_r| / (3600 kcat_r)` and all enzymes share a protein budget. With a growth-proportional
   ribosomal demand this gives **overflow metabolism**: no acetate at low growth rates, a linear
   rise above a critical one.
2. **ME-lite** (`bayesflux.methods.me_lite`): enzymes, ribosomes, RNA polymerase and mRNAs are made
   from metabolism and diluted by growth; the largest growth rate is found by bisection over LPs.
3. **The enzyme posterior** (`bayesflux.models.enzyme_posterior`): fluxes and log-normal turnover
   numbers given measured enzyme amounts, sampled by reflective HMC.

**The enzyme data are generic.** The bundled table (`ecoli_core_enzyme_table()`, see
`bayesflux/methods/data/README.md`) gives *every* enzymatic reaction `kcat = 65 1/s` and every
gene `MW = 40 kDa`; they are not measured values. A reaction's cost is then proportional to the
number of subunits of its cheapest isozyme, and only the product `budget × kcat / MW` sets the
scale. So the growth rate at which overflow starts is set by the one budget we choose (from
proteome sectors, below); the *shape* of the curve (zero, then a linear rise) is what the model
produces by itself.""",
    ),
    (
        "code",
        """import time
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayesflux import datasets
from bayesflux.methods import fba
from bayesflux.methods.ecmodel import ec_model, ecoli_core_enzyme_table, growth_scan
from bayesflux.methods.me_lite import growth_feasible, max_growth, me_lite
from bayesflux.models import blocks
from bayesflux.models.enzyme_posterior import enzyme_posterior, simulate_enzyme_data
from bayesflux.sampling import polytope

# R-hat of fluxes the polytope fixes (zero variance) is undefined: ArviZ warns and reports NaN
warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
BIOMASS, GLUCOSE = "Biomass_Ecoli_core", "EX_glc__D_e"
net = datasets.load("textbook")
table = ecoli_core_enzyme_table()
mu_fba = fba(net).attrs["objective_value"]
print(f"{net.n_reactions} reactions, {len(net.genes)} genes; FBA growth rate {mu_fba:.4f} 1/h")
kcats, mws = sorted(set(table["kcat"].dropna())), sorted(set(table["mw"].dropna()))
print(f"enzyme table: kcat values {kcats} 1/s; MW values {mws} g/mol")
assert kcats == [65.0] and mws == [40_000.0]  # generic, see methods/data/README.md""",
    ),
    (
        "md",
        """## 1. Overflow metabolism from a protein budget

The set-up of constrained-allocation FBA (Mori et al. 2016, *PLoS Comput Biol* 12:e1004913),
with proteome sectors from Scott et al. 2010 (*Science* 330:1099): protein is ~0.55 g/gDW; the
growth-independent sector (~45 %) and the ribosomal offset (~7 %) leave
`0.55 (1 - 0.45 - 0.07) = 0.264 g/gDW` for metabolic enzymes, and the ribosomal sector grows by
`0.55 / κ_t = 0.122 g/gDW` per 1/h of growth (`κ_t ≈ 4.5 1/h`), a demand the biomass reaction
draws from the same pool (`growth_protein`). Glucose uptake is left free: the budget, not the
uptake bound, limits growth.

`growth_scan` fixes the growth rate and minimises glucose uptake (one LP per rate, compiled once),
as in chemostats where the dilution rate sets growth.""",
    ),
    (
        "code",
        """BUDGET = 0.55 * (1 - 0.45 - 0.07)  # g/gDW for metabolic enzymes
RIBOSOME = 0.55 / 4.5  # g/gDW of ribosomal protein per 1/h of growth
free = net.with_bounds({GLUCOSE: (-1000.0, 0.0)})
ec = ec_model(free, table, protein_budget=BUDGET, growth_protein={BIOMASS: RIBOSOME})
mu_ec = fba(ec.network).attrs["objective_value"]
print(
    f"ec-model: {ec.network.n_reactions} reactions, {len(ec.enzymes)} enzymes; "
    f"largest growth rate under the budget {mu_ec:.4f} 1/h"
)
report = ["EX_ac_e", "EX_for_e", "EX_etoh_e", "EX_o2_e"]
mus = np.round(np.arange(0.30, 0.951, 0.01), 10)
start = time.perf_counter()
scan = growth_scan(ec, mus, biomass=BIOMASS, substrate=GLUCOSE, report=report)
loose = growth_scan(ec.with_budget(100.0), mus, biomass=BIOMASS, substrate=GLUCOSE, report=report)
print(f"{2 * mus.size} LPs in {time.perf_counter() - start:.1f} s")
assert scan["feasible"].all() and loose["feasible"].all()

ac = scan["EX_ac_e"].values
first = int(np.flatnonzero(ac > 1e-6)[0])
# the first linear piece, extrapolated back to zero acetate: the onset
slope0 = (ac[first + 1] - ac[first]) / (mus[first + 1] - mus[first])
onset = mus[first] - ac[first] / slope0
# a straight line through the acetate fluxes from the onset up to 0.90 1/h
rise = (mus > onset) & (mus <= 0.90 + 1e-9)
slope, intercept = np.polyfit(mus[rise], ac[rise], 1)
resid = ac[rise] - (slope * mus[rise] + intercept)
r2 = 1 - resid @ resid / np.sum((ac[rise] - ac[rise].mean()) ** 2)
formate_from = mus[np.flatnonzero(scan["EX_for_e"].values > 1e-6)[0]]
print(f"acetate onset: {onset:.3f} 1/h (Basan et al. 2015: ~0.76 1/h; {onset / 0.76 - 1:+.1%})")
print(
    f"straight line over [{onset:.3f}, 0.90] 1/h: slope {slope:.1f} mmol/gDW/h per 1/h, "
    f"x-intercept {-intercept / slope:.3f} 1/h, R^2 = {r2:.4f}"
)
print(f"formate secretion from {formate_from:.2f} 1/h; max acetate {np.nanmax(ac):.1f} mmol/gDW/h")
print(f"non-binding budget (100 g/gDW): max |acetate| {np.abs(loose['EX_ac_e']).max().item():.1e}")

assert np.all(np.abs(ac[mus < onset]) <= 1e-6)  # exactly no acetate below the onset
assert abs(onset - 0.76) / 0.76 < 0.10
assert r2 > 0.99 and slope > 0
protein = scan["protein"].values
assert np.all(protein[mus < onset - 0.01] < BUDGET - 1e-6)  # the pool is slack below the onset
assert np.allclose(protein[mus > onset], BUDGET, rtol=1e-8)  # and full above it
assert np.all(np.abs(loose["EX_ac_e"].values) <= 1e-6)  # no budget, no overflow""",
    ),
    (
        "code",
        """fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
ax0.plot(mus, ac, "o-", ms=3, color="tab:red", label="acetate (budget 0.264 g/gDW)")
ax0.plot(mus, scan["EX_for_e"], "-", color="tab:purple", lw=1, label="formate")
ax0.plot(mus, scan["EX_etoh_e"], "-", color="tab:olive", lw=1, label="ethanol")
ax0.plot(mus, loose["EX_ac_e"], "s", ms=3, color="tab:gray", label="acetate, non-binding budget")
line = np.linspace(onset, 0.90, 2)
ax0.plot(line, slope * line + intercept, "k--", lw=1, label=f"linear fit, R² = {r2:.4f}")
ax0.axvline(onset, color="tab:red", ls=":", lw=1)
ax0.axvline(0.76, color="tab:blue", ls="-.", lw=1)
ax0.text(onset - 0.01, 30, f"model onset\\n{onset:.3f} 1/h", ha="right", fontsize=8)
ax0.text(0.765, 40, "Basan et al. 2015\\n0.76 1/h", fontsize=8, color="tab:blue")
ax0.set_xlabel("growth rate (1/h)")
ax0.set_ylabel("secretion (mmol/gDW/h)")
ax0.set_title("overflow: acetate vs growth rate, E. coli core")
ax0.legend(fontsize=8, loc="upper left")
ax1.plot(mus, protein, "o-", ms=3, label="enzymes + ribosomal demand")
ax1.plot(mus, loose["protein"], "s", ms=3, color="tab:gray", label="non-binding budget")
ax1.axhline(BUDGET, color="k", ls="--", lw=1, label="budget 0.264 g/gDW")
ax1.axvline(onset, color="tab:red", ls=":", lw=1)
ax1.set_ylim(0, 0.35)
ax1.set_xlabel("growth rate (1/h)")
ax1.set_ylabel("protein pool used (g/gDW)")
ax1.set_title("the budget binds at the onset")
ax1.legend(fontsize=8, loc="lower right")
plt.show()""",
    ),
    (
        "md",
        """**Comparison with the literature.** Basan et al. 2015 (*Nature* 528:99) measured acetate
excretion of wild-type *E. coli* across growth rates (glucose-limited chemostats and titrated
glucose uptake) and found none below a critical growth rate near 0.76 1/h and a linear rise above
it; constrained-allocation FBA (Mori et al. 2016) reproduces that linear rise on a genome-scale
model. Here, with nothing fitted but the budget from proteome sectors:

* acetate is exactly zero below the onset, which lies within 10 % of 0.76 1/h (asserted);
* above it, acetate rises linearly (a straight line over the onset to 0.90 1/h has R² > 0.99)
  while the protein pool stays full: respiration (NADH dehydrogenase, 13 subunits; ATP synthase,
  8) costs more protein per ATP than fermentation to acetate, so once the budget binds each extra
  unit of growth is paid for by shifting ATP production to the cheaper pathway, Basan's
  explanation;
* with a non-binding budget (100 g/gDW) there is no acetate at any of these growth rates.

What we do not claim, and where the generic table shows:

* the **slope** (mmol/gDW/h of acetate per 1/h of growth) depends on the kcats and MWs, which are
  generic here, so we do not compare it with Basan's measured slope (we found no value of it in a
  form we could cite);
* from 0.81 1/h on the model also secretes **formate** (pyruvate formate-lyase costs as little
  protein as any other single reaction here), steeply, and near its largest growth rate
  (0.951 1/h) **ethanol**, while acetate levels off and finally drops. Aerobic *E. coli* does
  neither (its pyruvate formate-lyase is oxygen-sensitive, which E. coli core does not encode);
  measured kcats (the table's `source` column) and such regulation would be needed there. The
  acetate flux itself stays on the straight line up to 0.90 1/h.""",
    ),
    (
        "md",
        """## 2. ME-lite: metabolism and expression

`me_lite` builds on the same GECKO expansion: every enzyme is translated by ribosomes from a
lumped amino-acid pool (made from the biomass precursor mix, 4 ATP per peptide bond), ribosomes
and RNA polymerase are themselves made and diluted, ribosomes elongate at 16 aa/s, and with
`transcription=True` each enzyme needs mRNA (made by RNA polymerase at 50 nt/s, half-life
5 min). For a fixed growth rate the constraints are linear; `max_growth` bisects on the growth
rate over LP feasibility (no protein budget here: the machinery's own cost limits growth).

Check of the bisection: a brute-force scan of `growth_feasible` over nested grids (41 points
from 0 to the FBA optimum, then 21 points across the last feasible interval, repeated until it is
narrower than 2.5e-7 1/h) must bracket the same growth rate to 1e-6, and feasibility must be
monotone on every grid.""",
    ),
    (
        "code",
        """start = time.perf_counter()
translation = me_lite(net, table, transcription=False)
expression = me_lite(net, table)
res_tl = max_growth(translation)
res_tx = max_growth(expression)
mu_tl, mu_tx = float(res_tl["growth_rate"]), float(res_tx["growth_rate"])
print(f"two ME-lite models and their bisections in {time.perf_counter() - start:.1f} s")

start = time.perf_counter()
lo, hi, scans, lps = 0.0, mu_fba, 0, 0
grid = np.linspace(lo, hi, 41)
ok = growth_feasible(expression, grid)
lps += grid.size
while True:
    assert ok[0] and not ok[-1]
    last = int(np.flatnonzero(ok)[-1])
    assert ok[: last + 1].all() and not ok[last + 1 :].any()  # one feasible interval
    lo, hi = grid[last], grid[last + 1]
    scans += 1
    if hi - lo < 2.5e-7:
        break
    grid = np.linspace(lo, hi, 21)
    ok = np.concatenate([[True], growth_feasible(expression, grid[1:-1]), [False]])
    lps += grid.size - 2
print(
    f"grid scan: {scans} nested grids, {lps} LPs in {time.perf_counter() - start:.1f} s; "
    f"feasible up to {lo:.8f}, infeasible from {hi:.8f} 1/h"
)
print(
    f"bisection: {mu_tx:.8f} 1/h ({res_tx.attrs['bisection_steps']} steps); "
    f"difference {abs(mu_tx - lo):.1e}"
)
assert abs(mu_tx - lo) < 1e-6

aa_ribosome = translation.parameters["ribosome_protein"]
rows = []
for name, mu, res in (
    ("FBA", mu_fba, None),
    ("ME-lite, translation", mu_tl, res_tl),
    ("ME-lite, translation + transcription", mu_tx, res_tx),
):
    rows.append(
        {
            "model": name,
            "growth rate (1/h)": round(mu, 4),
            "vs FBA": f"{mu / mu_fba - 1:+.1%}",
            "ribosomes (µmol/gDW)": np.nan if res is None else 1e3 * float(res["ribosome"]),
            "r-protein (g/gDW)": np.nan
            if res is None
            else float(res["ribosome"]) * aa_ribosome * 110.0 / 1e3,
            "enzymes (g/gDW)": np.nan if res is None else float(res["protein_mass"]),
        }
    )
assert mu_fba > mu_tl + 1e-3 > mu_tx + 2e-3  # each layer of machinery costs growth
pd.DataFrame(rows).set_index("model").round(4)""",
    ),
    (
        "md",
        """Making the enzymes costs growth (amino acids and 4 ATP per peptide bond, plus ribosomes that
must also make themselves), and making their mRNAs costs a little more. The explicitly made
enzymes and machines are costed *on top of* the biomass reaction, which already contains an
average proteome, so these drops are upper estimates (see the `me_lite` docstring).""",
    ),
    (
        "md",
        """## 3. The enzyme posterior on simulated proteomics

`enzyme_posterior` puts a log-normal prior on each turnover number around the table
(`ln kcat_r ~ N(ln 65, (ln 10 / 2)²)`), a uniform prior on the flux polytope, and explains
measured enzyme amounts by `E_g = Σ_r |v_r| / (3600 kcat_r)` (log-normal error, sd 0.2 of ln).
Proteomics sees `|v|` only, so every reversible enzymatic reaction gets a direction: here the
signs of one uniform flux draw from the whole polytope (as the package's slow calibration test
does). `simulate_enzyme_data` draws the true fluxes and kcats from the prior and the proteomics
(every subunit in use) and a glucose uptake measurement (sd 0.5) from the likelihood.

The slow test (`tests/models/test_enzyme_posterior.py::test_calibrated_on_ecoli_core`) samples
4 chains × 4000 draws; to run in ~20 s we take 2 chains × 1000 draws after 2000 warm-up steps.
With 2 chains R-hat is a weak check, so we also check that the 94 % HDIs cover the truth.""",
    ),
    (
        "code",
        """poly = polytope(net)
z = blocks.hit_and_run_walks(
    jax.random.key(1000)[None],
    jnp.asarray(poly.A),
    jnp.asarray(poly.b),
    jnp.asarray(poly.center),
    200 * poly.dim + 1000,
)[0]
draw = poly.v0 + np.asarray(z) @ poly.N.T
directions = {
    r: float(np.sign(draw[j]) or 1.0)
    for j, (r, lo, hi, rule) in enumerate(zip(net.reactions, net.lb, net.ub, net.gpr))
    if lo < 0 < hi and rule.strip()
}
sim = simulate_enzyme_data(
    net, table=table, directions=directions, measured_sd={GLUCOSE: 0.5}, seed=0
)
post = enzyme_posterior(
    net, sim.proteomics, table=table, directions=directions, measured=sim.measured
)
print(
    f"{len(post.reactions)} kcats, {len(sim.proteomics)} measured subunits, "
    f"{post.polytope.dim}-d directed flux polytope, {len(post.pinned)} reactions sampled as "
    "ln kcat - ln|v|"
)
start = time.perf_counter()
tree = post.sample(num_draws=1000, num_warmup=2000, num_chains=2, seed=0)
print(
    f"sampled in {time.perf_counter() - start:.1f} s: max R-hat {tree.attrs['max_rhat']:.4f}, "
    f"min bulk ESS {tree.attrs['min_ess_bulk']:.0f}, min tail ESS {tree.attrs['min_ess_tail']:.0f}"
)

hdi = az.hdi(tree, prob=0.94)
covered = {}
for name in ("flux", "kcat"):
    value = sim.truth[name].values
    lower = hdi[name].sel(ci_bound="lower").values
    upper = hdi[name].sel(ci_bound="upper").values
    slack = 1e-9 * (1.0 + np.abs(value))  # fluxes the polytope fixes: an HDI of one value
    covered[name] = (value >= lower - slack) & (value <= upper + slack)
everything = np.concatenate(list(covered.values()))
print(
    f"94 % HDIs covering the truth: fluxes {covered['flux'].mean():.3f} "
    f"({covered['flux'].size}), kcats {covered['kcat'].mean():.3f} ({covered['kcat'].size}), "
    f"all {everything.mean():.3f}"
)
prior_sd = post.kcat_sd
post_sd = tree["posterior"]["log_kcat"].std(("chain", "draw")).to_series()
print(
    f"sd of ln kcat: prior {prior_sd:.3f}; posterior median {post_sd.median():.3f}, "
    f"range {post_sd.min():.3f} ({post_sd.idxmin()}) to {post_sd.max():.3f} ({post_sd.idxmax()})"
)
assert tree.attrs["max_rhat"] < 1.05
assert everything.mean() >= 0.85  # the slow test's threshold (binomial, 88 effective quantities)
assert post_sd.median() < 0.6 * prior_sd  # the proteomics narrow most kcats""",
    ),
    (
        "md",
        """Three kcats. The glucose PTS (GLCpts) is pinned down: its subunit PtsG (b1101) serves no other
modelled reaction and the measured glucose uptake fixes its flux, so the measured amount fixes
`kcat = |v| / (3600 E)`. PGI's enzyme is measured too, but its flux is not well determined (the
pentose phosphate pathway can take over), and the data fix only the ratio `|v| / kcat`: a wider
posterior. The fructose PTS (FRUpts2) carries no flux here (no fructose in the medium), so the
data say nothing about its kcat and the posterior is the prior. Dashed: the true value; dotted:
the table's 65 1/s (the prior median).""",
    ),
    (
        "code",
        """show = ["GLCpts", "PGI", "FRUpts2"]
summary = az.summary(tree, var_names=["kcat"], coords={"kcat_reaction": show})
summary.insert(0, "true", sim.truth["kcat"].sel(kcat_reaction=show).values.round(1))
summary.insert(1, "posterior sd of ln kcat", post_sd[show].values.round(3))
assert post_sd["GLCpts"] < 0.25 * prior_sd and post_sd["FRUpts2"] > 0.75 * prior_sd
summary""",
    ),
    (
        "code",
        """pc = az.plot_dist(
    tree, var_names=["log_kcat"], coords={"kcat_reaction": show}, backend="matplotlib"
)
fig = pc.viz["figure"].item()
fig.set_size_inches(12, 3.4)
for r in show:
    ax = pc.viz["plot"]["log_kcat"].sel(kcat_reaction=r).item()
    ax.axvline(float(sim.truth["log_kcat"].sel(kcat_reaction=r)), color="k", ls="--", lw=1.2)
    ax.axvline(np.log(65.0), color="tab:red", ls=":", lw=1.2)
    ax.set_xlabel("ln kcat (kcat in 1/s)")
fig.subplots_adjust(top=0.8, bottom=0.2)
plt.show()""",
    ),
    (
        "md",
        """**Summary.** A protein budget set from proteome sectors turns *E. coli* core's FBA into a model
with an acetate switch near the measured growth rate and a linear rise above it, although every
enzyme has the same generic kcat and MW; ME-lite's bisection agrees with a brute-force grid to
1e-6 and shows how much growth the expression machinery costs; and the enzyme posterior recovers
fluxes and kcats from simulated proteomics, with the kcats the data do not reach left at their
prior. Measured kcats and MWs (BRENDA, SABIO-RK, Davidi et al. 2016; UniProt) are the next step
for quantitative slopes.""",
    ),
]


if __name__ == "__main__":
    build(CELLS, Path(__file__).with_name(NOTEBOOK))
