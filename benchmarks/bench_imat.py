"""iMAT and GIMME on Yeast 5.21 (HC) with the Lee et al. 2012 75% data, timed.

Run: ``python benchmarks/bench_imat.py [--time-limit 120]``. Reference (issue 3): dexom-python's
iMAT with HiGHS 2.2 s; GLPK-based tools find nothing in 500 s. dexom-python needs Python < 3.11
and cannot be installed beside bayesflux (Python 3.12), so it is not timed here; the iMAT MILP is
checked against brute-force enumeration in tests/methods/test_imat.py. Also prints the Pearson r
of the 7 exchange fluxes (scaled to the measured glucose uptake) as in seed 003 Table 1.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayesflux import datasets
from bayesflux.expression import enzyme_abundance, read_flux_data, read_gene_data
from bayesflux.methods.gimme import gimme
from bayesflux.methods.imat import imat

EXCHANGES = ["r_1714", "r_1761", "r_1672", "r_1808", "r_1634", "r_1650", "r_1546"]


def pearson(v: np.ndarray, measured: np.ndarray) -> float:
    if abs(v[0]) < 1e-12:
        return float("nan")
    return float(np.corrcoef(np.abs(v) * measured[0] / abs(v[0]), measured)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args()
    lee = datasets.shared_data_dir() / "falcon_yeast" / "lee2012"
    genes = read_gene_data(lee / "genedata_75.txt")
    measured = read_flux_data(lee / "experimental_fluxes_75.txt").to_numpy()
    net = datasets.yeast("5.21")
    start = time.perf_counter()
    ab = enzyme_abundance(net, genes["mean"])
    print(
        f"enzyme abundance (min-disjunction, {net.n_reactions} reactions): "
        f"{time.perf_counter() - start:.3f} s"
    )
    start = time.perf_counter()
    g = gimme(net, abundance=ab)
    r = pearson(g["flux"].sel(reaction=EXCHANGES).values, measured)
    print(
        f"GIMME: {time.perf_counter() - start:.2f} s, inconsistency "
        f"{g.attrs['inconsistency']:.4g}, r = {r:.3f}"
    )
    start = time.perf_counter()
    m = imat(net, abundance=ab, time_limit=args.time_limit)
    print(
        f"iMAT (HiGHS MILP): {time.perf_counter() - start:.2f} s, status {m.attrs['status']}, "
        f"{m.attrs['objective_value']:.0f} of {int((m['category'] != 0).sum())} reactions "
        f"agree, r = {pearson(m['flux'].sel(reaction=EXCHANGES).values, measured):.3f}"
    )


if __name__ == "__main__":
    main()
