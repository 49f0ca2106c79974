"""Benchmark: the joint thermodynamic posterior of E. coli core with a growth floor (issue 19).

Case ``ecoli-core-floor-0.75``: cobra's E. coli core on the bundled example's bounds (glucose
uptake <= 10, oxygen <= 20 mmol/gDW/h), growth >= 0.75 1/h as a flux constraint, the second
law on ``(v, ln c)`` with the bundled eQuilibrator ΔrG'0 (``bayesflux.thermo.ecoli_core``,
physiological ``ln c`` bounds, membrane reactions and H2Ot left off: with water fixed on both
sides H2Ot cannot run under the law, and growth is then at most 0.38 1/h).

Data (:func:`~bayesflux.models.thermodynamics.simulate_thermodynamic_data`, seeded): a true
``(v, ln c)`` from a long feasible-chord walk of the prior (uniform on the feasible set with
the floor), hence thermodynamically consistent by construction; measured fluxes ``N(v, sd²)``
of the five exchange fluxes of the example (its sds) and of ``INTERNAL`` (sd 0.5, as a 13C fit
gives them), and every free metabolite's ``ln c`` with sd 0.3 (a metabolome).

Posterior: :func:`~bayesflux.models.sample_thermodynamic`, 4 chains. Reported: max R-hat and
min bulk ESS over the fluxes and ``ln c`` (arviz_stats, rank-normalised split R-hat), the
fraction of fluxes and ``ln c`` (those that vary) whose 94% HDI covers the truth, whether every
draw obeys the second law (checked from the data, not by the sampler), and the wall time of
the sampling (starts, compilation and warm-up included; the simulation not).

Run: ``python benchmarks/bench_thermo_posterior.py [--draws N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import arviz as az
import jax
import numpy as np

from bayesflux import datasets
from bayesflux.models import FluxObservations, FluxPosterior, Thermodynamics
from bayesflux.models.thermodynamics import sample_thermodynamic, simulate_thermodynamic_data
from bayesflux.sampling import LinearConstraint
from bayesflux.thermo import ecoli_core

jax.config.update("jax_enable_x64", True)

BOUNDS = {"EX_glc__D_e": (-10.0, 1000.0), "EX_o2_e": (-20.0, 1000.0)}
FLOOR = [LinearConstraint({"Biomass_Ecoli_core": 1.0}, 0.75)]
EXCHANGE_SD = {
    "EX_glc__D_e": 0.6,
    "EX_o2_e": 1.1,
    "EX_co2_e": 1.1,
    "EX_ac_e": 0.2,
    "Biomass_Ecoli_core": 0.1,
}
INTERNAL = (
    "PGI", "G6PDH2r", "CS", "ICDHyr", "AKGDH", "SUCDi", "MDH", "PYK", "PDH", "PPC", "ME1",
    "NADH16", "LDH_D", "EX_etoh_e", "EX_for_e", "TKT1", "ME2", "PPCK", "FUM", "GLUDy", "ACALD",
    "EX_lac__D_e", "EX_pyr_e", "EX_succ_e", "NADTRHD", "ICL", "MALS",
)  # fmt: skip
LNC_SD = 0.3


def case(seed: int = 1):
    """``(thermo, posterior, term, simulated data)`` of ``ecoli-core-floor-0.75``."""
    net = datasets.load("textbook").with_bounds(BOUNDS)
    thermo = ecoli_core(net, include_fixed=False)
    with warnings.catch_warnings():  # THD2's stratum (FluxSpace.build): one stratum sampled
        warnings.simplefilter("ignore")
        prior_term = Thermodynamics(thermo)
    prior = FluxPosterior(net, [prior_term], constraints=FLOOR)
    metabolites = [net.metabolites[i] for i in prior_term.free]
    sim = simulate_thermodynamic_data(
        prior,
        prior_term,
        flux_sd={**EXCHANGE_SD, **dict.fromkeys(INTERNAL, 0.5)},
        metabolome_sd=dict.fromkeys(metabolites, LNC_SD),
        seed=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        term = Thermodynamics(thermo, metabolome=sim.metabolome)
    posterior = FluxPosterior(net, [FluxObservations(net, sim.fluxes), term], constraints=FLOOR)
    return thermo, posterior, term, sim


def check(tree, thermo, term, truth) -> dict[str, float]:
    """Max R-hat, min bulk ESS, 94% HDI coverage of the truth (over fluxes and ``ln c`` that
    vary) and whether every draw obeys ``sign(v_j) ΔrG_j <= -δ`` (``v_j != 0``)."""
    post = tree["posterior"]
    names = ["flux", *term.lnc_names]
    rhat = np.concatenate([np.ravel(a) for a in az.rhat(tree, var_names=names).values()])
    ess = np.concatenate([np.ravel(a) for a in az.ess(tree, var_names=names).values()])
    hdi = az.hdi(tree, var_names=names, prob=0.94)
    net = thermo.network
    true = {"flux": truth["flux"].values}
    true |= {nm: truth["lnc"].values[i] for nm, i in zip(term.lnc_names, term.free)}
    covered = []
    for nm in names:
        lo = hdi[nm].sel(ci_bound="lower").values
        hi = hdi[nm].sel(ci_bound="upper").values
        varies = post[nm].std(("chain", "draw")).values > 1e-9
        inside = (true[nm] >= lo - 1e-9) & (true[nm] <= hi + 1e-9)
        covered.append(np.atleast_1d(inside)[np.atleast_1d(varies)])
    covered = np.concatenate(covered)
    v = post["flux"].values.reshape(-1, net.n_reactions)
    lnc = np.tile(term.lnc_fixed, (len(v), 1))
    lnc[:, term.free] = np.stack([post[nm].values.ravel() for nm in term.lnc_names], axis=1)
    drg = thermo.drg0 + lnc @ thermo.drg_matrix.T
    vk = v[:, thermo.index]
    obeys = np.all((np.abs(vk) <= 1e-9) | (np.sign(vk) * drg <= -thermo.margin + 1e-9))
    return {
        "max_rhat": float(np.nanmax(rhat)),
        "min_ess_bulk": float(np.nanmin(ess)),
        "coverage": float(covered.mean()),
        "entries": int(covered.size),
        "second_law": bool(obeys),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000, help="kept draws per chain")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated data")
    args = parser.parse_args()
    thermo, posterior, term, sim = case(args.seed)
    t0 = time.perf_counter()
    tree = sample_thermodynamic(
        posterior, term, num_chains=4, num_draws=args.draws, num_warmup=400, seed=0
    )
    seconds = time.perf_counter() - t0
    out = check(tree, thermo, term, sim.truth)
    print(
        f"case=ecoli-core-floor-0.75 max_rhat={out['max_rhat']:.4f} "
        f"min_ess_bulk={out['min_ess_bulk']:.0f} coverage={out['coverage']:.3f} "
        f"time_s={seconds:.0f}"
    )
    print(
        f"  {out['entries']} fluxes and ln c vary; every draw obeys the second law: "
        f"{out['second_law']}; draws per chain {args.draws} (+400 warm-up), "
        f"acceptance {float(tree['sample_stats']['acceptance_rate'].mean()):.3f}"
    )


if __name__ == "__main__":
    main()
