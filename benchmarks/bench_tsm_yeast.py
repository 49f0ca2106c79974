"""Seed 002 on its own model: sectors of the yeast TSM (Niebel et al. 2019), issue 19.

Run ``python benchmarks/bench_tsm_yeast.py [--loops 4] [--loop-seconds 300] [--no-volumes]``.
Reads ``../shared/data/tsm_niebel2019`` (not shipped with the package). Prints the loops found
(:func:`~bayesflux.thermo.enumerate_loops`, smallest first), the sign patterns of the pruned
depth-first search (:func:`~bayesflux.thermo.sector_patterns`) with and without the second law,
each sector kept only if a point of the whole TSM runs its loop reactions strictly (MILP), the
sectors with their Expectation Propagation log-volumes (flux units) and weights, a line
``sectors=N``, directions fixed by the flux bounds and by the second law reaction by reaction,
timings, and seed 002's numbers beside them.

Not the seed's setting: the seed's flux space is bounded by its thermodynamic FVA after fitting
ΔrG0 to metabolome and physiology data (not done here: the file's flux and ln c bounds are used as
they are), its four loops came from Monte Carlo sampling of sign configurations (here: the four
smallest by MILP), and its per-sector volumes are in its Supplementary Table 2, which the seed
text does not contain, so none are printed beside ours.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayesflux import thermo
from bayesflux.sampling.polytope import flux_ranges
from bayesflux.thermo.loops import enumerate_loops, sector_patterns, sectors
from bayesflux.thermo.polytope_b import ConcentrationPolytope

#: seed 002 ("Division of the flux solution space into sectors"; Results, WT strain)
SEED = {
    "loops": 4,
    "loop reactions": 9,
    "sectors": 16,
    "directions fixed (TSM, WT)": "96 of 148 independent reactions",
    "directions fixed (SM, WT)": "34 of 148 independent reactions",
    "sampling time per sector": "3.5 h (MATLAB, cluster)",
}


def fixed_directions(t: thermo.ThermoModel, B: ConcentrationPolytope) -> tuple[int, int, int]:
    """Reactions with one direction excluded: by FVA on the flux bounds alone (SM), and by the
    SM or the second law on the reaction alone (``B({j: ±1})`` empty); blocked ones counted apart.
    The second law coupled with the flux polytope (thermodynamic FVA) can only fix more."""
    net = t.network
    vmin, vmax = flux_ranges(net, np.zeros((0, net.n_reactions)), np.zeros(0), np.zeros(0))
    tol = 1e-9
    blocked = (vmin > -tol) & (vmax < tol)
    fwd_ok, bwd_ok = vmax > tol, vmin < -tol
    for k, j in enumerate(t.index):
        for sign, ok in ((1, fwd_ok), (-1, bwd_ok)):
            s = np.zeros(t.n_constrained, dtype=np.int8)
            s[k] = sign
            if ok[j] and not B.is_feasible(s):
                ok[j] = False
    sm = int(np.sum(~blocked & ((vmin > -tol) | (vmax < tol))))
    tsm = int(np.sum(~blocked & ~(fwd_ok & bwd_ok)))
    return sm, tsm, int(blocked.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=4, help="loops to enumerate (seed: 4)")
    parser.add_argument("--loop-seconds", type=float, default=300.0, help="MILP time limit")
    parser.add_argument("--no-volumes", action="store_true", help="skip the EP volumes")
    args = parser.parse_args()

    start = time.perf_counter()
    t0 = time.perf_counter()
    net, t = thermo.niebel_tsm("yeast")
    print(
        f"yeast TSM: {net.n_reactions} reactions, {t.n_constrained} under the second law "
        f"(load {time.perf_counter() - t0:.1f} s)"
    )

    t0 = time.perf_counter()
    loops = enumerate_loops(t, max_loops=args.loops, time_limit=args.loop_seconds)
    t_loops = time.perf_counter() - t0
    names = list(dict.fromkeys(r for lp in loops for r in lp.reactions))
    print(f"loops: {len(loops)} on {len(names)} reactions in {t_loops:.1f} s")
    for lp in loops:
        print(f"  {lp}")
    n_product = 3 ** len(names)
    print(f"product of sign choices: 3^{len(names)} = {n_product} (old limit max_sectors=1024)")

    t0 = time.perf_counter()
    plain = sector_patterns(t, loops)
    t_plain = time.perf_counter() - t0
    print(f"search, flux polytope only: {len(plain.patterns)} patterns in {t_plain:.2f} s")
    print(f"  {plain.stats}")
    t0 = time.perf_counter()
    B = ConcentrationPolytope(t)
    law = sector_patterns(t, loops, concentrations=B)
    t_law = time.perf_counter() - t0
    print(f"search, with the second law per pattern (B): {len(law.patterns)} in {t_law:.2f} s")
    print(f"  {law.stats}")
    t0 = time.perf_counter()
    joint = sector_patterns(t, loops, concentrations=B, thermodynamic=True)
    t_tsm = time.perf_counter() - t0
    print(
        f"search, B and a strict TSM point per pattern (MILP): {len(joint.patterns)} "
        f"in {t_tsm:.2f} s"
    )
    print(f"  {joint.stats}")

    t0 = time.perf_counter()
    sm, tsm, blocked = fixed_directions(t, B)
    t_dir = time.perf_counter() - t0
    live = net.n_reactions - blocked
    print(
        f"directions fixed of {live} unblocked reactions: flux bounds {sm} ({sm / live:.1%}), "
        f"flux bounds or the second law per reaction {tsm} ({tsm / live:.1%}) "
        f"in {t_dir:.1f} s; seed (TSM FVA, WT): 96 of 148 independent (64.9%)"
    )

    n_sectors = len(joint.patterns)
    if not args.no_volumes:
        t0 = time.perf_counter()
        secs = sectors(t, loops, concentrations=B, thermodynamic=True)
        t_vol = time.perf_counter() - t0
        n_sectors = len(secs)
        print(
            f"sectors with EP volumes: {len(secs)} of dimension {secs[0].dim} in {t_vol:.1f} s "
            f"({t_vol / len(secs):.1f} s each: polytope FVA + EP)"
        )
        print("  " + "  ".join(f"{r:>10s}" for r in names) + "   log vol    weight")
        for s in sorted(secs, key=lambda s: -s.log_volume):
            signs = "  ".join(f"{'+-0'[(1, -1, 0).index(s.signs[r])]:>10s}" for r in names)
            print(f"  {signs}  {s.log_volume:8.2f}  {s.weight:8.4f}")
        print("  seed: per-sector volumes in its Supplementary Table 2 (not in the seed text)")
    print(f"sectors={n_sectors}")
    print(
        f"seed 002: {SEED['loops']} loops on {SEED['loop reactions']} reactions, "
        f"{SEED['sectors']} sectors; here: {len(loops)} loops on {len(names)} reactions, "
        f"{n_sectors} sectors"
    )
    print(f"total {time.perf_counter() - start:.1f} s (seed: 3.5 h of sampling per sector)")


if __name__ == "__main__":
    main()
