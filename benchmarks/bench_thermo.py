"""Thermodynamics benchmarks: TFVA vs cobra loopless FVA, thermodynamic samplers vs rejection,
flux-range and box-volume reduction from the stoichiometric to the thermodynamic yeast model.

Run ``python benchmarks/bench_thermo.py [core] [sampling] [yeast]`` (all sections by default);
``sampling=N`` keeps ``N`` draws per chain in the sampling section (default 1000).
Prints timings, agreements and ratios. The yeast section reads the Niebel et al. (2019) TSM from
``../shared/data/tsm_niebel2019`` (not shipped with the package).

Sampling: on E. coli core with physiological ln c every point of the stopped stratum's polytope
is feasible, and before stopping none is (the feasible set is lower-dimensional), so neither is a
fair rejection benchmark; the samplers are compared with rejection on E. coli core with a
measured metabolome (:func:`metabolome_case`) around the state of the median sign pattern (a
union of orthant pieces of about 1% of A) and of the rarest (about 0.2%). Rates are feasible
draws per second and minimum ESS per second, all in one process, each sampler with its own LP
cache; the samplers' marginal means are compared by a two-sample z test with ArviZ MCSEs.

Peers: pyTFA 0.9.4 installs from PyPI but its wheel ships no thermodynamic database (the
``thermo_data.thermodb`` of its GitHub repository), so its TVA cannot run offline on E. coli core.
``pta`` 0.6.0 (PTA's thermodynamic sampler) does not install on Python 3.12 here:
``pip install pta`` fails building its dependency rpy2 ("Error: rpy2 in API mode cannot be built
without R in the PATH or R_HOME defined"; no R on this machine). Neither is compared.
"""

from __future__ import annotations

import sys
import time
import warnings

import highspy
import numpy as np
import scipy.sparse as sp
import scipy.stats
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
    sm = lp_ranges(phys_model.network)
    exchanges = [r for r in phys_model.network.reactions if r.startswith("EX_") or "BIOMASS" in r]
    out = box_volume_reduction(sm, phys, exclude=exchanges)
    print(
        f"box-volume reduction SM -> TSM (physiological ln c): "
        f"10^{out['log10_box_volume_ratio']:.1f} over {out['n_compared']} reactions with a "
        f"non-zero TSM range ({out['n_blocked_by_thermodynamics']} more blocked by "
        "thermodynamics); mean relative flux-range reduction (exchanges excluded) "
        f"{100 * out['mean_relative_range_reduction']:.0f}%"
    )
    try:
        import pytfa  # noqa: F401

        print("pyTFA: importable, but the PyPI wheel has no thermodynamic database; not compared")
    except ImportError:
        print(
            "pyTFA: not installed here (it installs in a separate venv, without its "
            "thermodynamic database, so TVA cannot run offline); not compared"
        )
    print("PTA: `pip install pta` fails (its dependency rpy2 needs R); not compared")


def _uniform_chains(space, n: int, chains: int = 1, seed: int = 0) -> np.ndarray:
    """``(chains, n, d)`` plain hit-and-run points ``y`` of the polytope A of ``space`` (jitted,
    chains from the EP centre)."""
    import jax
    import jax.numpy as jnp

    from bayesflux.thermo.space import plain_chain

    keys = jax.random.split(jax.random.key(seed), 1)
    y0 = jnp.zeros((chains, space.dim))
    A, b = jnp.asarray(space.A_y), jnp.asarray(space.b_y)
    return np.asarray(plain_chain(keys, y0, A, b, n))


def _uniform_chain(space, n: int, seed: int = 0) -> np.ndarray:
    return _uniform_chains(space, n, 1, seed)[0]


def metabolome_case(t, bounds, *, width: float = 0.05, quantile: float = 0.5):
    """E. coli core with a measured metabolome: every free ``ln c`` within ``±width`` of the
    concentrations of one feasible state, that of the sign pattern at frequency ``quantile``
    among the patterns of 5000 uniform points of A (0.5: the median pattern, whose feasible set is
    a small union of orthant pieces; 0: the rarest, whose feasible set is a thin part of A)."""
    from bayesflux.thermo.polytope_b import ConcentrationPolytope, sign_pattern
    from bayesflux.thermo.space import FluxSpace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = FluxSpace.build(t, bounds=bounds)
    B = ConcentrationPolytope(space.thermo)
    signs = sign_pattern(space.to_fluxes(_uniform_chain(space, 5000)), space.thermo)
    unique, counts = np.unique(signs, axis=0, return_counts=True)
    rank = min(int(quantile * len(counts)), len(counts) - 1)
    lnc = B.violation(unique[np.argsort(counts, kind="stable")[rank]]).lnc
    free = t.lnc_ub - t.lnc_lb > 1e-9
    names = np.asarray(t.network.metabolites)[free]
    lo = np.maximum(t.lnc_lb, lnc - width)[free]
    hi = np.minimum(t.lnc_ub, lnc + width)[free]
    return t.with_lnc_bounds({m: (float(a), float(b)) for m, a, b in zip(names, lo, hi)})


def _summary(tree) -> dict[str, np.ndarray]:
    """Per flux: mean, MCSE of the mean, bulk ESS and rank-normalised R-hat (ArviZ)."""
    import arviz as az

    flux = tree["posterior"]["flux"].to_dataset(name="flux")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat of a constant flux is 0/0
        return {
            "mean": flux["flux"].mean(("chain", "draw")).values,
            "mcse": az.mcse(flux)["flux"].values,
            "ess": az.ess(flux)["flux"].values,
            "rhat": az.rhat(flux)["flux"].values,
        }


def section_sampling(num: int = 1000) -> None:
    from bayesflux.thermo.loops import enumerate_loops, sectors
    from bayesflux.thermo.polytope_b import ConcentrationPolytope
    from bayesflux.thermo.space import FluxSpace

    print("== E. coli core, physiological ln c: sectors and strata ==")
    t = thermo.ecoli_core()
    secs = sectors(t, enumerate_loops(t))
    strata = [thermo.strata(t, bounds=sec.bounds) for sec in secs]
    for sec, found in zip(secs, strata):
        print(
            f"sector {sec.signs} (loop-law weight {sec.weight:.3f}, dim {sec.dim}): strata "
            + "; ".join(
                f"{sorted(r for r in st.signs if r in ('THD2', 'NADTRHD', 'FRD7', 'SUCDi'))} "
                f"stopped, dim {st.dim}, weight {st.weight:.3f}"
                for st in found
            )
        )
    # a sector whose strata lose a dimension (FRD7 never runs) has zero volume beside the other
    top = int(np.argmax([found[0].dim for found in strata]))
    sector, stratum = secs[top], max(strata[top], key=lambda st: st.weight)
    whole = FluxSpace._rounded(t, dict(sector.bounds))  # without fixing the stopped reactions
    ok = ConcentrationPolytope(whole.thermo).feasible_fluxes(
        whole.to_fluxes(_uniform_chain(whole, 2000))
    )
    print(
        f"sector {sector.signs} polytope (dim {whole.dim}) before stopping: feasible fraction of "
        f"2000 hit-and-run points {ok.mean():.2e} (the feasible set has lower dimension: naive "
        "rejection finds nothing)"
    )

    for label, quantile in (("median", 0.5), ("rarest", 0.0)):
        print(
            "== E. coli core with a measured metabolome around the state of the "
            f"{label} sign pattern: feasible samples per second =="
        )
        compare_samplers(metabolome_case(t, stratum.bounds, quantile=quantile), stratum, num)


def compare_samplers(tm, stratum, num: int) -> None:
    """Naive rejection, orthant hit-and-run and parallel tempering on one thermodynamic model:
    feasible draws and minimum ESS per second, R-hat, fresh B checks, agreement of means."""
    import arviz as az

    from bayesflux.thermo.orthants import sample_orthants
    from bayesflux.thermo.polytope_b import ConcentrationPolytope, check_sign_pattern, sign_pattern
    from bayesflux.thermo.space import FluxSpace
    from bayesflux.thermo.tempering import parallel_tempering

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = FluxSpace.build(tm, bounds=stratum.bounds)
    B = ConcentrationPolytope(space.thermo)
    print(
        f"every ln c within ±0.05 of one feasible state; stopped {space.stopped}, dim {space.dim}"
    )

    # naive rejection: uniform hit-and-run on A (8 chains), keep the points whose pattern has a
    # non-empty B; the kept subsequence of each chain is itself a Markov chain with the uniform
    # distribution on the feasible set as stationary law, so its ESS is comparable
    n_naive = 500 * num
    _uniform_chains(space, n_naive // 8, 8, seed=4)  # compile first: time the run only
    t0 = time.perf_counter()
    ys = _uniform_chains(space, n_naive // 8, 8, seed=3)
    ok = B.feasible_fluxes(space.to_fluxes(ys))
    t_naive = time.perf_counter() - t0
    rate_naive = max(ok.sum(), 1) / t_naive  # < 1 feasible point seen: bound the rate above
    keep = ok.sum(axis=1).min()
    naive_ess = np.nan
    if keep > 10:
        kept = np.stack([c[k][:keep] for c, k in zip(ys, ok)])
        flux = xr.DataArray(space.to_fluxes(kept), dims=("chain", "draw", "reaction"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ess = az.ess(flux.to_dataset(name="flux"))["flux"].values
        naive_ess = np.nanmin(np.where(flux.std(("chain", "draw")).values > 1e-9, ess, np.nan))
    print(
        f"naive rejection: {ys.shape[0] * ys.shape[1]} hit-and-run points (8 chains) in "
        f"{t_naive:.2f} s, feasible fraction {ok.mean():.2e} -> {rate_naive:.1f} feasible/s, "
        f"min ESS/s {naive_ess / t_naive:.1f} ({len(B.cache)} sign patterns)"
    )

    # long chains rather than many (R-hat needs each chain to forget its start); equal budgets
    runs = {
        "orthant hit-and-run": lambda: sample_orthants(
            tm,
            num_draws=num,
            num_warmup=num,
            num_chains=8,
            thinning=40,
            space=space,
            B=ConcentrationPolytope(space.thermo),  # its own LP cache: no head start
            seed=1,
        ),
        "parallel tempering": lambda: parallel_tempering(
            tm,
            num_draws=2 * num,
            num_warmup=num,
            num_chains=4,
            num_replicas=5,
            moves_per_swap=10,
            space=space,
            B=ConcentrationPolytope(space.thermo),  # its own LP cache: no head start
            seed=2,
        ),
    }
    summaries = {}
    for name, run in runs.items():
        t0 = time.perf_counter()
        tree = run()
        elapsed = time.perf_counter() - t0
        v = tree["posterior"]["flux"].values.reshape(-1, tm.network.n_reactions)
        patterns = np.unique(sign_pattern(v, space.thermo), axis=0)
        fresh = np.mean([check_sign_pattern(space.thermo, s) for s in patterns])
        summ = summaries[name] = _summary(tree)
        varying = v.std(axis=0) > 1e-9
        ess = summ["ess"][varying].min()
        summ["ess_rate"] = ess / elapsed
        extra = ""
        if "swap_accept_prob" in tree["sample_stats"]:
            st = tree["sample_stats"].mean(("chain", "draw"))
            extra = (
                f"; swap acceptance {np.round(st['swap_accept_prob'].values, 2)}, move "
                f"acceptance {np.round(st['move_accept_prob'].values, 2)}, adapted ladders "
                f"(mean) {np.round(st['temperature'].values, 2)}"
            )
        print(
            f"{name}: {v.shape[0]} draws ({tree['posterior'].sizes['chain']} chains) in "
            f"{elapsed:.1f} s (set-up and compilation {tree.attrs['setup_seconds']:.1f} s, "
            f"sampling {tree.attrs['sampling_seconds']:.1f} s; sampling-only min ESS/s "
            f"{summ['ess'][varying].min() / tree.attrs['sampling_seconds']:.1f}) = "
            f"{v.shape[0] / elapsed:.1f} feasible/s (ratio to naive rejection "
            f"{v.shape[0] / elapsed / rate_naive:.2f}x); min ESS {ess:.0f} = {ess / elapsed:.1f}"
            f" ESS/s (ratio {ess / elapsed / (naive_ess / t_naive):.2f}x); max R-hat "
            f"{np.nanmax(summ['rhat'][varying]):.3f}; fresh B check of "
            f"{len(patterns)} distinct patterns: {100 * fresh:.0f}% feasible{extra}"
        )
    best = max(s["ess_rate"] for s in summaries.values())
    print(
        f"naive rejection's ESS/s scales with the feasible fraction: it would fall below the "
        f"better sampler's at a fraction of about {ok.mean() * best / (naive_ess / t_naive):.1e} "
        "(extrapolated), and it finds nothing where the feasible set is lower-dimensional"
    )
    a, b = summaries.values()
    varying = (a["mcse"] > 1e-12) | (b["mcse"] > 1e-12)
    z = (a["mean"] - b["mean"])[varying] / np.hypot(a["mcse"], b["mcse"])[varying]
    n = int(varying.sum())
    p3 = 2 * scipy.stats.norm.sf(3.0)
    print(
        f"two-sample test of marginal means, z = (m1 - m2) / sqrt(mcse1² + mcse2²) over {n} "
        f"fluxes: |z| > 3 for {int((np.abs(z) > 3).sum())} (chance {n * p3:.2f} expected, "
        f"P(|z| > 3) = {p3:.4f} each), |z| > 2 for {np.mean(np.abs(z) > 2):.3f} (chance 0.046), "
        f"max |z| {np.abs(z).max():.2f}, mean z² {np.mean(z**2):.2f} (chance 1)"
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
