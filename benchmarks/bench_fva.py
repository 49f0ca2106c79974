"""FVA on a genome-scale model beside cobra's, in one process.

Usage: ``python benchmarks/bench_fva.py [MODEL] [--fraction F]`` (default iJO1366, fraction 1.0).
Prints wall times, the time ratio cobra / bayesflux, and the largest range difference.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
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

    timings = {}
    for processes in sorted({1, os.cpu_count() or 1}):
        start = time.perf_counter()
        ref = flux_variability_analysis(
            model, fraction_of_optimum=args.fraction, processes=processes
        )
        timings[processes] = time.perf_counter() - start
    ref = ref.loc[list(network.reactions)]

    diff = max(
        np.nanmax(np.abs(ours["minimum"] - ref["minimum"])),
        np.nanmax(np.abs(ours["maximum"] - ref["maximum"])),
    )
    print(f"bayesflux fva (1 process, HiGHS hot start): {t_ours:8.2f} s")
    solver = model.solver.interface.__name__.split(".")[-1]
    for processes, t in timings.items():
        print(
            f"cobra fva ({processes} process(es), {solver}): {t:8.2f} s   "
            f"ratio cobra/bayesflux = {t / t_ours:5.2f}x"
        )
    print(f"largest |range difference| = {diff:.2e} over {len(ours)} reactions")


if __name__ == "__main__":
    main()
