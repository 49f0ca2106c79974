"""FVA on a genome-scale model beside cobra's, in one process.

Usage: ``python benchmarks/bench_fva.py [MODEL] [--fraction F]`` (default iJO1366, fraction 1.0).
Prints wall times, the time ratio cobra / bayesflux, and the largest range difference.
"""

from __future__ import annotations

import argparse
import os
import time

from cobra.exceptions import OptimizationError
from cobra.flux_analysis import flux_variability_analysis

from bayesflux import as_network, fva


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", nargs="?", default="iJO1366")
    parser.add_argument("--fraction", type=float, default=1.0)
    args = parser.parse_args()

    network = as_network(args.model)
    model = network.to_cobra()
    print(network.summary())

    start = time.perf_counter()
    ours = fva(network, fraction=args.fraction).to_dataframe()
    t_ours = time.perf_counter() - start

    print(f"bayesflux fva (1 process, HiGHS hot start): {t_ours:8.2f} s")
    # cobra with its default LP solver (GLPK) and with HiGHS (optlang's 'hybrid' interface), on
    # one process and on all cores (cobra's default).
    for solver in ("glpk", "hybrid"):
        model.solver = solver
        for processes in sorted({1, os.cpu_count() or 1}):
            start = time.perf_counter()
            try:
                ref = flux_variability_analysis(
                    model, fraction_of_optimum=args.fraction, processes=processes
                ).loc[list(network.reactions)]
            except OptimizationError as exc:  # optlang's HiGHS interface aborts on iJO1366
                print(f"cobra fva ({solver}, {processes} process(es)): failed: {exc}")
                continue
            t = time.perf_counter() - start
            diff = (ours - ref[["minimum", "maximum"]]).abs().max(axis=1)
            worst = diff.idxmax()
            print(
                f"cobra fva ({solver}, {processes} process(es)): {t:8.2f} s   "
                f"ratio cobra/bayesflux = {t / t_ours:5.2f}x   "
                f"max |range difference| = {diff.max():.2e} ({worst}); "
                f"{int((diff > 1e-6).sum())} reactions differ by > 1e-6"
            )

if __name__ == "__main__":
    main()
