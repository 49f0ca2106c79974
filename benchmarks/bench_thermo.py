"""Thermodynamics benchmarks: TFVA vs cobra loopless FVA, thermodynamic samplers vs rejection,
flux-range and box-volume reduction from the stoichiometric to the thermodynamic yeast model.

Run ``python benchmarks/bench_thermo.py [core] [sampling] [yeast]`` (all sections by default);
``sampling=N`` keeps ``N`` draws per chain in the sampling section (default 1000).
Prints timings, agreements and ratios. The yeast section reads the Niebel et al. (2019) TSM from
``../shared/data/tsm_niebel2019`` (not shipped with the package).

Peers: pyTFA 0.9.4 installs from PyPI but its wheel ships no thermodynamic database (the
``thermo_data.thermodb`` of its GitHub repository), so its TVA cannot run offline on E. coli core;
``pta`` does not install (it needs rpy2, which needs an R installation). Both are reported, not
compared.
"""

from __future__ import annotations

import sys
import time
import warnings

import highspy
import numpy as np
import scipy.sparse as sp
import xarray as xr

from bayesflux import thermo
from bayesflux.thermo.tfva import box_volume_reduction, tfba, thermodynamic_fva

MILP_SECONDS = 3.0  # per TFVA end on the yeast TSM (a stopped MILP gives a conservative bound)


def lp_ranges(network) -> xr.Dataset:
    """Plain flux variability (no thermodynamics, no objective floor) with one HiGHS LP."""
    n = network.n_reactions
    A = sp.csc_array(network.S)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, network.n_metabolites
    lp.col_cost_ = np.zeros(n)
    lp.col_lower_, lp.col_upper_ = network.lb.copy(), network.ub.copy()
    lp.row_lower_ = lp.row_upper_ = np.zeros(network.n_metabolites)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    out = np.empty((2, n))
    cols = np.arange(n, dtype=np.int32)
    for j in range(n):
        for k, sign in enumerate((1.0, -1.0)):
            cost = np.zeros(n)
            cost[j] = sign
            h.changeColsCost(n, cols, cost)
            h.run()
            out[k, j] = sign * h.getInfo().objective_function_value
    return xr.Dataset(
        {"minimum": ("reaction", out[0]), "maximum": ("reaction", out[1])},
        coords={"reaction": list(network.reactions)},
    )


def section_core() -> None:
    from importlib import resources

    import cobra
    from cobra.io import read_sbml_model

    print("== E. coli core: thermodynamic FVA vs cobra loopless FVA ==")
    model = read_sbml_model(str(resources.files("cobra") / "data" / "textbook.xml.gz"))
    for fraction in (0.0, 0.9):
        t0 = time.perf_counter()
        ours = thermodynamic_fva(
            thermo.ecoli_core(bounds="wide"), fraction=fraction, variables=("flux",)
        )
        t_ours = time.perf_counter() - t0
        for mode in ("fastSNP", "cycleFreeFlux"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                ref = cobra.flux_analysis.flux_variability_analysis(
                    model, loopless=mode, fraction_of_optimum=fraction
                )
                t_ref = time.perf_counter() - t0
            diff = np.maximum(
                np.abs(ours["minimum"].to_series()[ref.index] - ref["minimum"]),
                np.abs(ours["maximum"].to_series()[ref.index] - ref["maximum"]),
            )
            worst = diff.sort_values().index[-1]
            print(
                f"fraction {fraction}: TFVA(wide) {t_ours:.2f} s, cobra loopless={mode} "
                f"{t_ref:.2f} s (ratio {t_ours / t_ref:.1f}x); max |diff| {diff.max():.2e} "
                f"at {worst}; reactions differing > 1e-5: {int((diff > 1e-5).sum())}"
            )
    t0 = time.perf_counter()
    phys_model = thermo.ecoli_core()
    phys = thermodynamic_fva(phys_model)
    t_phys = time.perf_counter() - t0
    wide = thermodynamic_fva(thermo.ecoli_core(bounds="wide"), variables=("flux",))
    narrower = int(((phys.maximum - phys.minimum) < (wide.maximum - wide.minimum) - 1e-6).sum())
    lo, hi = phys.minimum.values, phys.maximum.values
    print(
        f"physiological ln c (1 µM..20 mM): TFVA of fluxes, ln c and ΔrG in {t_phys:.1f} s; "
        f"growth {tfba(phys_model)[0]:.4f} (LP 0.8739); {narrower} flux ranges narrower than "
        f"loopless; {int((lo > 1e-9).sum())} forced forwards, {int((hi < -1e-9).sum())} "
        "backwards"
    )
    try:
        import pytfa  # noqa: F401

        print("pyTFA: importable, but the PyPI wheel has no thermodynamic database; not compared")
    except ImportError:
        print(
            "pyTFA: not installed here (it installs in a separate venv, without its "
            "thermodynamic database, so TVA cannot run offline); not compared"
        )
    print("PTA: `pip install pta` fails (rpy2 needs R); not compared")


def section_sampling(num: int = 1000) -> None:
    import jax
    import jax.numpy as jnp

    from bayesflux.thermo._space import FluxSpace, _plain_chain
    from bayesflux.thermo.loops import enumerate_loops, sectors
    from bayesflux.thermo.orthants import sample_orthants
    from bayesflux.thermo.polytope_b import ConcentrationPolytope, check_sign_pattern, sign_pattern
    from bayesflux.thermo.tempering import parallel_tempering

    print("== E. coli core, physiological bounds: feasible samples per second ==")
    t = thermo.ecoli_core()
    secs = sectors(t, enumerate_loops(t))
    sector = max(secs, key=lambda s: s.weight)
    print(f"sectors: {[(s.signs, round(s.weight, 3)) for s in secs]}; sampling {sector.signs}")
    full = FluxSpace._rounded(t, dict(sector.bounds))  # without fixing the stopped reactions
    B_full = ConcentrationPolytope(full.thermo)
    ys = np.asarray(
        _plain_chain(
            jax.random.split(jax.random.key(0), 1),
            jnp.zeros((1, full.dim)),
            jnp.asarray(full.A_y),
            jnp.asarray(full.b_y),
            2000,
        )
    )[0]
    print(
        f"whole sector polytope (dim {full.dim}): feasible fraction of 2000 hit-and-run points "
        f"{B_full.feasible_fluxes(full.to_fluxes(ys)).mean():.2e}"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        space = FluxSpace.build(t, bounds=sector.bounds)
    print(
        f"FluxSpace.build fixes {list(space.stopped)} at zero (dim {space.dim})"
        + "".join(f"; warning: {w.message}" for w in caught)
    )
    B = ConcentrationPolytope(space.thermo)

    # naive rejection: uniform hit-and-run on A, keep points whose pattern has a non-empty B
    t0 = time.perf_counter()
    n_naive = 20 * num
    ys = np.asarray(
        _plain_chain(
            jax.random.split(jax.random.key(0), 1),
            jnp.zeros((1, space.dim)),
            jnp.asarray(space.A_y),
            jnp.asarray(space.b_y),
            n_naive,
        )
    )[0]
    ok = B.feasible_fluxes(space.to_fluxes(ys))
    t_naive = time.perf_counter() - t0
    frac = ok.mean()
    rate_naive = ok.sum() / t_naive
    print(
        f"naive rejection: {n_naive} hit-and-run points in {t_naive:.2f} s, feasible fraction "
        f"{frac:.2e} -> {rate_naive:.1f} feasible/s "
        f"({len(B.cache)} sign patterns)"
    )
    rate_floor = max(rate_naive, 1.0 / t_naive)  # < 1 feasible point seen: bound the rate above

    results = {}
    for name, run in (
        (
            "orthant hit-and-run",
            lambda: sample_orthants(
                t, num_samples=num, num_warmup=100, num_chains=4, space=space, B=B, seed=1
            ),
        ),
        (
            "parallel tempering",
            lambda: parallel_tempering(
                t, num_samples=num, num_warmup=200, num_replicas=5, space=space, B=B, seed=2
            ),
        ),
    ):
        t0 = time.perf_counter()
        tree = run()
        elapsed = time.perf_counter() - t0
        v = tree["posterior"]["flux"].values.reshape(-1, t.network.n_reactions)
        patterns = np.unique(sign_pattern(v, space.thermo), axis=0)
        fresh = np.mean([check_sign_pattern(space.thermo, s) for s in patterns])
        rate = len(v) / elapsed
        results[name] = tree
        extra = ""
        if "sample_stats" in tree and "swap_acceptance" in tree["sample_stats"]:
            st = tree["sample_stats"]
            extra = (
                f"; swap acceptance {np.round(st['swap_acceptance'].values, 2)}, "
                f"temperatures {np.round(st['temperature'].values, 2)}"
            )
        print(
            f"{name}: {len(v)} draws in {elapsed:.1f} s = {rate:.1f} feasible/s "
            f"(ratio to naive rejection >= {rate / rate_floor:.1f}x); fresh B check of "
            f"{len(patterns)} distinct patterns: {100 * fresh:.0f}% feasible{extra}"
        )
        # does each chain move at all? (a chain started at a vertex of A stalls: every chord
        # through a vertex has length zero)
        per_chain = tree["posterior"]["flux"].values
        spread = per_chain.std(axis=1).max(axis=1)
        n_pat = [len(np.unique(sign_pattern(c, space.thermo), axis=0)) for c in per_chain]
        print(
            f"  per chain: max flux std {np.array2string(spread, precision=2)}, "
            f"sign patterns {n_pat}"
        )
    a = results["orthant hit-and-run"]["posterior"]["flux"]
    b = results["parallel tempering"]["posterior"]["flux"]
    import arviz as az

    def mean_se(x):
        ess = az.ess(x.to_dataset(name="flux"))["flux"].values
        vals = x.values.reshape(-1, x.sizes["reaction"])
        return vals.mean(0), vals.std(0) / np.sqrt(np.maximum(ess, 1.0))

    (m1, s1), (m2, s2) = mean_se(a), mean_se(b)
    z = np.abs(m1 - m2) / np.sqrt(s1**2 + s2**2 + 1e-30)
    varying = (s1 > 1e-9) | (s2 > 1e-9)
    print(
        f"marginal means, orthant vs tempering: |z| median {np.median(z[varying]):.2f}, "
        f"fraction |z| < 3: {np.mean(z[varying] < 3):.2f} over {int(varying.sum())} fluxes"
    )


def section_yeast() -> None:
    print("== Niebel 2019 yeast TSM: stoichiometric vs thermodynamic flux ranges ==")
    net, t = thermo.niebel_tsm("yeast")
    print(
        f"{net.n_reactions} reactions, {net.n_metabolites} metabolites, "
        f"{t.n_constrained} under the second law"
    )
    print(f"TSM with the file's ln c bounds: max growth {tfba(t)[0]:.4f} (LP 0.1533)")
    h_e = net.metabolite_index["h_e"]
    t = t.with_lnc_bounds({"h_e": (float(t.lnc_lb[h_e]), 0.0)})
    print(
        f"extracellular pH left free below its fixed value: max growth {tfba(t)[0]:.4f}; "
        "this model is used below"
    )
    t0 = time.perf_counter()
    sm = lp_ranges(net)
    t_sm = time.perf_counter() - t0
    t0 = time.perf_counter()
    tsm = thermodynamic_fva(t, variables=("flux",), time_limit=MILP_SECONDS, progress=True)
    t_tsm = time.perf_counter() - t0
    exchanges = [r for r in net.reactions if r.endswith("_EX") or r == "biomass"]
    out = box_volume_reduction(sm, tsm, exclude=exchanges)
    print(
        f"FVA (SM) {t_sm:.1f} s, TFVA (TSM) {t_tsm:.1f} s; "
        f"{tsm.attrs['ends_at_time_limit']} TSM range ends stopped at the "
        f"{MILP_SECONDS:g} s MILP limit "
        "(dual bound used: those ranges are conservative)"
    )
    print(
        f"box-volume reduction SM -> TSM: 10^{out['log10_box_volume_ratio']:.1f} over "
        f"{out['n_compared']} reactions with a non-zero TSM range ("
        f"{out['n_blocked_by_thermodynamics']} more blocked by thermodynamics); mean relative "
        "flux-range reduction (exchanges excluded) "
        f"{100 * out['mean_relative_range_reduction']:.0f}%"
        " (seed 002: 10^181 and 89% with measured exchange fluxes and metabolome)"
    )


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["core", "sampling", "yeast"]
    for arg in chosen:
        name, _, value = arg.partition("=")
        section = {"core": section_core, "sampling": section_sampling, "yeast": section_yeast}[name]
        section(int(value)) if value else section()
