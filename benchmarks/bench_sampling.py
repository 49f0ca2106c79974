"""ESS per second of bayesflux hit-and-run beside hopsy and cobra's OptGP, in one process.

    python benchmarks/bench_sampling.py [--models textbook iJO1366] [--chains 4] [--draws N]
                                        [--thin-factor 1] [--skip-hopsy] [--skip-optgp]
                                        [--rounding-study]

For each model every sampler produces the same number of draws (chains x draws; OptGP as one
chain of that length). ESS is arviz's bulk ESS per reaction (reactions with zero spread left out);
min and median over reactions are divided by wall time: "total" includes preprocessing (polytope,
rounding / PolyRound / OptGP warm-up points) and, for bayesflux, JAX compilation; "sampling" is the
chains alone (for bayesflux the compiled blocks, timed apart from set-up and compilation by
``bayesflux.infer.sample``).
bayesflux and hopsy use coordinate hit-and-run with the same thinning (the polytope dimension
times ``--thin-factor``), both sweeping the axes in turn (hopsy cyclically, bayesflux in random
permutations); hopsy starts at the Chebyshev centre, bayesflux at dispersed points (hit-and-run
walks from it, part of its set-up), neither with warm-up. The max R-hat column shows
whether the chains have mixed at all. A second bayesflux row, "billiard", is the billiard walk
(``sample_fluxes(kernel="billiard")``: reflective paths of mean length ``--trajectory-length`` in
EP-rounded coordinates, same number of draws, no warm-up), timed the same way.

hopsy's preprocessing (``hopsy.round``, PolyRound) of iJO1366 did not finish in 20 minutes on a
2-core machine (hopsy 1.7.0; nor, in a later check, within a 5-minute limit); pass
``--skip-hopsy`` for genome-scale models there.

``--rounding-study`` compares EP, the maximum-volume ellipsoid and no rounding on E. coli core by
the minimum ESS per hit-and-run step over three seeds (how the default rounding was chosen).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# every tool on one core (hopsy n_procs=1, OptGP processes=1, bayesflux's chains in one XLA loop):
# BLAS on one thread too. On a shared machine OpenBLAS threads otherwise spin: one EP sweep on
# iJO1366 took 0.29 s with 2 threads and 0.034 s with 1 on a loaded 2-core machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import arviz as az  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayesflux import datasets  # noqa: E402
from bayesflux.sampling import polytope, round_polytope, sample_fluxes  # noqa: E402

warnings.filterwarnings("ignore", message="Found chain dimension")
# xarray imports dask at its first DataArray (about 1 s): an import, done here with the others so
# that no tool's timing includes importing a library
xr.DataArray(np.zeros(1))

DEFAULT_DRAWS = {"textbook": 1000, "iJO1366": 250}


def ess_stats(draws: np.ndarray) -> tuple[float, float]:
    """Min and median bulk ESS over reactions that vary; ``draws`` is (chain, draw, reaction)."""
    spread = draws.std(axis=(0, 1))
    varying = spread > 1e-9 * max(1.0, float(np.abs(draws).max()))
    ess = np.asarray(az.ess(draws[..., varying], method="bulk"))
    return float(np.nanmin(ess)), float(np.nanmedian(ess))


def run_bayesflux(
    network,
    chains: int,
    draws: int,
    seed: int = 0,
    rounding: str = "ep",
    thin_factor: float = 1.0,
):
    """Draws, total cold time, sampling-only time, dimension, thinning and cold-time parts.

    The run (polytope + rounding + model tracing, chain starts, JIT compilation + sampling +
    diagnostics) is timed end to end; its sampling-only time is the compiled blocks'
    (``attrs["sampling_seconds"]`` of :func:`bayesflux.infer.sample`).
    """
    t0 = time.perf_counter()
    poly = polytope(network)
    t_poly = time.perf_counter()
    rnd = round_polytope(poly, rounding)
    t_round = time.perf_counter()
    thinning = max(1, round(thin_factor * poly.dim))
    tree = sample_fluxes(
        poly, rounding=rnd, kernel="coordinate", thinning=thinning, num_chains=chains,
        num_draws=draws, num_warmup=0, seed=seed,
    )  # fmt: skip
    t1 = time.perf_counter()
    parts = {
        "polytope (FVA)": t_poly - t0,
        f"rounding ({rounding}, {rnd.iterations} sweeps)": t_round - t_poly,
        "set-up (model, chain starts, compilation)": tree.attrs["setup_seconds"],
        "sampling": tree.attrs["sampling_seconds"],
    }
    sampling = tree.attrs["sampling_seconds"]
    return tree.posterior["flux"].values, t1 - t0, sampling, poly.dim, thinning, parts


def run_billiard(network, chains: int, draws: int, trajectory_length: float, seed: int = 0):
    """Billiard walk: draws, total time and sampling-only time (as above)."""
    t0 = time.perf_counter()
    poly = polytope(network)
    rnd = round_polytope(poly, "ep")
    tree = sample_fluxes(
        poly, kernel="billiard", rounding=rnd, trajectory_length=trajectory_length,
        num_chains=chains, num_draws=draws, num_warmup=0, seed=seed,
    )  # fmt: skip
    total = time.perf_counter() - t0
    return tree.posterior["flux"].values, total, tree.attrs["sampling_seconds"]


def run_hopsy(network, chains: int, draws: int, thinning: int, seed: int = 0):
    import hopsy

    t0 = time.perf_counter()
    lb, ub = network.lb, network.ub
    eye = np.eye(network.n_reactions)
    fin_u, fin_l = np.isfinite(ub), np.isfinite(lb)
    A = np.vstack([eye[fin_u], -eye[fin_l]])
    b = np.concatenate([ub[fin_u], -lb[fin_l]])
    problem = hopsy.Problem(A, b)
    problem = hopsy.add_equality_constraints(
        problem, network.S.toarray(), np.zeros(network.n_metabolites)
    )
    problem = hopsy.round(problem)
    start = hopsy.compute_chebyshev_center(problem)
    mcs = [
        hopsy.MarkovChain(problem, hopsy.UniformCoordinateHitAndRunProposal, starting_point=start)
        for _ in range(chains)
    ]
    rngs = [hopsy.RandomNumberGenerator(seed, i) for i in range(chains)]
    t1 = time.perf_counter()
    _, samples = hopsy.sample(mcs, rngs, n_samples=draws, thinning=thinning, n_procs=1)
    t2 = time.perf_counter()
    return np.asarray(samples), t2 - t0, t2 - t1


def run_optgp(network, n: int, seed: int = 0):
    from cobra.sampling import OptGPSampler

    model = network.to_cobra()
    t0 = time.perf_counter()
    sampler = OptGPSampler(model, processes=1, thinning=100, seed=seed)
    t1 = time.perf_counter()
    frame = sampler.sample(n)
    t2 = time.perf_counter()
    return frame[list(network.reactions)].to_numpy()[None], t2 - t0, t2 - t1


def max_rhat(draws: np.ndarray) -> float:
    """Largest rank-normalised R-hat over varying reactions (NaN for a single chain)."""
    if draws.shape[0] < 2:
        return float("nan")
    spread = draws.std(axis=(0, 1))
    varying = spread > 1e-9 * max(1.0, float(np.abs(draws).max()))
    return float(np.nanmax(np.asarray(az.rhat(draws[..., varying]))))


def agreement(ours: np.ndarray, theirs: np.ndarray, name: str) -> None:
    """Marginal means of two samplers, ``z = (m_1 - m_2) / sqrt(mcse_1^2 + mcse_2^2)`` per varying
    reaction (arviz MCSE of the mean; a single chain's MCSE from its own autocorrelation)."""
    spread = ours.std(axis=(0, 1))
    varying = spread > 1e-9 * max(1.0, float(np.abs(ours).max()))
    a, b = ours[..., varying], theirs[..., varying]
    se = np.hypot(np.asarray(az.mcse(a)), np.asarray(az.mcse(b)))
    z = (a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))) / se
    print(
        f"  means {name} {varying.sum()} reactions, max |z| "
        f"{np.nanmax(np.abs(z)):.2f}, |z| > 3 for {np.mean(np.abs(z) > 3):.1%} "
        "(about 0.3% expected if both are right)"
    )


def report(name: str, draws: np.ndarray, total: float, sampling: float) -> dict:
    lo, med = ess_stats(draws)
    row = {
        "min_ess": lo,
        "median_ess": med,
        "total": total,
        "sampling": sampling,
        "min_ess_s": lo / total,
        "median_ess_s": med / total,
        "min_ess_s_sampling": lo / sampling,
    }
    print(
        f"  {name:10s} draws {draws.shape[0]}x{draws.shape[1]:<5d} ESS min {lo:8.1f} median "
        f"{med:8.1f} | time total {total:7.2f} s (sampling {sampling:7.2f} s) | ESS/s min "
        f"{row['min_ess_s']:9.2f} median {row['median_ess_s']:9.2f} (sampling only: min "
        f"{row['min_ess_s_sampling']:9.2f}) | max R-hat {max_rhat(draws):.3f}"
    )
    return row


def ratios(ours: dict, other: dict, name: str, mine: str = "bayesflux") -> None:
    print(
        f"  {mine} / {name}: min ESS/s x{ours['min_ess_s'] / other['min_ess_s']:.2f}, "
        f"median ESS/s x{ours['median_ess_s'] / other['median_ess_s']:.2f} (total time); "
        f"sampling only: min x{ours['min_ess_s_sampling'] / other['min_ess_s_sampling']:.2f}"
    )


def rounding_study(chains: int = 4, draws: int = 500) -> None:
    """EP vs inscribed ellipsoid vs none on E. coli core, two ways.

    1. isotropy: ``cond(L^-1 Cov(z) L^-T)``, the covariance of the uniform distribution (from 8 x
       3000 draws) in the rounded coordinates; 1 is perfectly round;
    2. minimum bulk ESS per 1000 coordinate moves, 3 seeds (noisy: the minimum over reactions).
    """
    network = datasets.load("textbook")
    poly = polytope(network)
    reference = (
        sample_fluxes(poly, rounding="mve", num_chains=8, num_draws=3000, seed=123)
        .posterior["flux"]
        .values.reshape(-1, network.n_reactions)
    )
    z = np.linalg.lstsq(poly.N, (reference - poly.v0).T, rcond=None)[0].T
    cov = np.cov(z.T)
    print(f"rounding study, E. coli core (d = {poly.dim}), coordinate HR, thinning d:")
    for rounding in ("ep", "mve", "none"):
        Li = np.linalg.inv(round_polytope(poly, rounding).L)
        eig = np.linalg.eigvalsh(Li @ cov @ Li.T)
        per_step = []
        for seed in range(3):
            flux, *_, d, _, _ = run_bayesflux(network, chains, draws, seed=seed, rounding=rounding)
            per_step.append(ess_stats(flux)[0] / (chains * draws * d))
        print(
            f"  {rounding:5s} cond of rounded covariance {eig.max() / eig.min():7.2f}; "
            f"min ESS per 1000 moves ({chains}x{draws} draws): "
            + ", ".join(f"{1000 * x:.3f}" for x in per_step)
            + f"  (mean {1000 * np.mean(per_step):.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["textbook", "iJO1366"])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=None, help="draws per chain")
    parser.add_argument(
        "--thin-factor", type=float, default=1.0, help="thinning = factor x dimension"
    )
    parser.add_argument("--trajectory-length", type=float, default=2.0, help="billiard walk")
    parser.add_argument("--skip-hopsy", action="store_true")
    parser.add_argument("--skip-optgp", action="store_true")
    parser.add_argument("--rounding-study", action="store_true")
    args = parser.parse_args()
    for name in args.models:
        network = datasets.load(name)
        draws = args.draws or DEFAULT_DRAWS.get(name, 500)
        print(f"{name}: {network.n_reactions} reactions, {args.chains} chains x {draws} draws")
        flux, total, sampling, d, thinning, parts = run_bayesflux(
            network, args.chains, draws, thin_factor=args.thin_factor
        )
        print(f"  polytope dimension {d}; thinning {thinning}")
        print("  bayesflux cold run: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
        ours = {"bayesflux": (report("bayesflux", flux, total, sampling), flux)}
        b_flux, total, sampling = run_billiard(network, args.chains, draws, args.trajectory_length)
        ours["billiard"] = (report("billiard", b_flux, total, sampling), b_flux)
        agreement(b_flux, flux, "billiard vs hit-and-run:")
        peers = []
        if not args.skip_hopsy:
            try:
                peers.append(("hopsy", *run_hopsy(network, args.chains, draws, thinning)))
            except ImportError:
                print("  hopsy not installed (pip install hopsy)")
        if not args.skip_optgp:
            peers.append(("OptGP", *run_optgp(network, args.chains * draws)))
        for peer, samples, total, sampling in peers:
            row = report(peer, samples, total, sampling)
            for name, (mine, draws_) in ours.items():
                ratios(mine, row, peer, name)
                agreement(draws_, samples, f"{name} vs {peer}:")
    if args.rounding_study:  # last, so that the models' timings include JAX compilation
        rounding_study()


if __name__ == "__main__":
    main()
