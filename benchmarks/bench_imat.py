"""iMAT and GIMME on Yeast 5.21 (HC) with the Lee et al. 2012 75% data, timed.

Run: ``python benchmarks/bench_imat.py [--time-limit 120] [--cases high-75 ...] [--rounds 3]``.
Reference (issue 3): dexom-python's iMAT with HiGHS 2.2 s on Yeast 5.21 HC 75 %; GLPK-based tools
find nothing in 500 s. dexom-python needs Python < 3.11 and cannot be installed beside bayesflux
(Python 3.12), so it is not timed here. Instead each case is also solved as an independent MILP
written here (dexom's formulation: one activity binary per direction of a highly expressed
reaction, one per lowly expressed reaction, indicator rows with the flux bounds as big-M) through
``scipy.optimize.milp`` with HiGHS's default options, and its optimum must equal ours. Also prints
the Pearson r of the 7 exchange fluxes (scaled to the measured glucose uptake) as in seed 003 Table
1.

Measured (2026-12-08, 2-core machine, ``python benchmarks/bench_imat.py --cases high-75
high-85``, medians of 3 interleaved rounds): iMAT 1.86 s (HC 75 %) and 1.45 s (HC 85 %) against
2.96 s and 3.19 s for the independent MILP with HiGHS's defaults (1.59x, 2.21x), same optima (352
and 354 reactions agree). Single runs earlier, another job on one core: MC 75 % / 85 % 7-8.5 s
against 11-16 s. The ratio is to HiGHS with its default heuristics, not to dexom-python.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from bayesflux import datasets
from bayesflux.expression import enzyme_abundance, read_flux_data, read_gene_data
from bayesflux.expression.abundance import abundance_vector
from bayesflux.methods.gimme import gimme
from bayesflux.methods.imat import imat

EXCHANGES = ["r_1714", "r_1761", "r_1672", "r_1808", "r_1634", "r_1650", "r_1546"]


def pearson(v: np.ndarray, measured: np.ndarray) -> float:
    if abs(v[0]) < 1e-12:
        return float("nan")
    return float(np.corrcoef(np.abs(v) * measured[0] / abs(v[0]), measured)[0, 1])


def independent_imat(net, abundance, low: float, high: float, eps: float = 1.0) -> float:
    """iMAT's optimum from a MILP built here (variables ``[v, a+, a-, z]``), HiGHS defaults."""
    e = abundance_vector(net, abundance=abundance)
    lb, ub = np.clip(net.lb, -1000, 1000), np.clip(net.ub, -1000, 1000)
    known = ~np.isnan(e)
    hi = np.flatnonzero(known & (e >= high))
    lo = np.flatnonzero(known & (e <= low))
    up, down = hi[ub[hi] >= eps], hi[lb[hi] <= -eps]
    n, sizes = net.n_reactions, (up.size, down.size, lo.size)
    cols = n + sum(sizes)
    offsets = np.cumsum([n, *sizes])
    rows = [sp.hstack([sp.csr_array(net.S), sp.csr_array((net.S.shape[0], sum(sizes)))])]
    lower, upper = [np.zeros(net.S.shape[0])], [np.zeros(net.S.shape[0])]

    def indicator(reactions, start, coeff_v, coeff_a, lo_, hi_):
        k = reactions.size
        m = sp.coo_array(
            (
                np.concatenate([np.full(k, coeff_v), coeff_a]),
                (np.tile(np.arange(k), 2), np.concatenate([reactions, start + np.arange(k)])),
            ),
            shape=(k, cols),
        )
        rows.append(m)
        lower.append(lo_)
        upper.append(hi_)

    # a+ = 1 -> v >= eps:  v - (eps - lb) a+ >= lb
    indicator(up, offsets[0], 1.0, -(eps - lb[up]), lb[up], np.full(up.size, np.inf))
    # a- = 1 -> v <= -eps: v + (ub + eps) a- <= ub
    indicator(down, offsets[1], 1.0, ub[down] + eps, np.full(down.size, -np.inf), ub[down])
    # z = 1 -> v = 0:  lb <= v + lb z  and  v + ub z <= ub
    indicator(lo, offsets[2], 1.0, lb[lo], lb[lo], np.full(lo.size, np.inf))
    indicator(lo, offsets[2], 1.0, ub[lo], np.full(lo.size, -np.inf), ub[lo])
    res = milp(
        c=np.concatenate([np.zeros(n), -np.ones(sum(sizes))]),
        constraints=LinearConstraint(
            sp.vstack(rows).tocsr(), np.concatenate(lower), np.concatenate(upper)
        ),
        bounds=Bounds(
            np.concatenate([lb, np.zeros(sum(sizes))]), np.concatenate([ub, np.ones(sum(sizes))])
        ),
        integrality=np.concatenate([np.zeros(n), np.ones(sum(sizes))]),
        options={"mip_rel_gap": 1e-4},
    )
    if res.x is None:
        raise RuntimeError(f"independent iMAT MILP failed: {res.message}")
    return -float(res.fun)


CASES = ["high-75", "high-85", "minimal-75", "minimal-85"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per case (median)")
    args = parser.parse_args()
    lee = datasets.shared_data_dir() / "falcon_yeast" / "lee2012"
    for case in args.cases:
        constraints, cond = case.split("-")
        genes = read_gene_data(lee / f"genedata_{cond}.txt")
        measured = read_flux_data(lee / f"experimental_fluxes_{cond}.txt").to_numpy()
        net = datasets.yeast("5.21", constraints=constraints)
        start = time.perf_counter()
        ab = enzyme_abundance(net, genes["mean"])
        print(
            f"{case}: enzyme abundance (min-disjunction, {net.n_reactions} reactions): "
            f"{time.perf_counter() - start:.3f} s"
        )
        start = time.perf_counter()
        g = gimme(net, abundance=ab)
        r = pearson(g["flux"].sel(reaction=EXCHANGES).values, measured)
        print(
            f"  GIMME: {time.perf_counter() - start:.2f} s, inconsistency "
            f"{g.attrs['inconsistency']:.4g}, r = {r:.3f}"
        )
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved, so load changes hit both sides alike
            start = time.perf_counter()
            m = imat(net, abundance=ab, time_limit=args.time_limit)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = independent_imat(net, ab, m.attrs["low"], m.attrs["high"])
            theirs.append(time.perf_counter() - start)
        ours, theirs = float(np.median(ours)), float(np.median(theirs))
        print(
            f"  iMAT (HiGHS MILP): {ours:.2f} s, status {m.attrs['status']}, "
            f"{m.attrs['objective_value']:.0f} of {int((m['category'] != 0).sum())} reactions "
            f"agree, r = {pearson(m['flux'].sel(reaction=EXCHANGES).values, measured):.3f}; "
            f"independent MILP (HiGHS defaults): {theirs:.2f} s, optimum {reference:.0f}; "
            f"median of {args.rounds} interleaved rounds, ratio {theirs / ours:.2f}x"
        )
        if abs(reference - m.attrs["objective_value"]) > 0.5:
            raise SystemExit(f"{case}: iMAT optimum differs from the independent MILP")


if __name__ == "__main__":
    main()
