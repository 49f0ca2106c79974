"""Uniform flux sampling: bayesflux beside hopsy, like for like, in one process, several seeds.

    python benchmarks/bench_sampling.py [--models textbook iJO1366 salmonella] [--seeds 3]
                                        [--chains 4] [--draws N] [--skip-hopsy]
                                        [--hopsy-rounding polyround|ours] [--rounding-study]

Samplers, each run from scratch per seed (4 chains, the same number of kept draws):

* ``coordinate``: ``sample_fluxes(kernel="coordinate")``, coordinate hit-and-run in EP-rounded
  coordinates, thinning ``d`` (one sweep of the axes per draw);
* ``billiard``: ``sample_fluxes(kernel="billiard")``, one reflected path of mean length 2 per draw;
* hopsy 1.7 as its users run it: ``hopsy.round`` (PolyRound: redundancy removal and maximum-volume
  ellipsoid rounding) then ``UniformCoordinateHitAndRunProposal`` (CHRR) with thinning ``d`` and
  ``BilliardWalkProposal`` with thinning 1 (its defaults otherwise), from the Chebyshev centre,
  ``n_procs=1``. Where PolyRound does not finish (iJO1366: over 750 s on this machine class) or
  with ``--hopsy-rounding ours``, hopsy samples our EP-rounded polytope instead and its set-up is
  not reported.

Accounting, the same on both sides: CPU seconds of this process (``time.process_time``, all
threads). *Sampling* is the chains alone (for bayesflux the compiled blocks,
``attrs["sampling_cpu_seconds"]``; for hopsy ``hopsy.sample``); *total* adds the set-up (bayesflux:
FVA polytope, EP rounding, model tracing, dispersed chain starts, JAX compilation, diagnostics;
hopsy: problem, PolyRound, Chebyshev centre). ESS is ArviZ's bulk and tail ESS per reaction
(reactions that move); the min over reactions per CPU second is the figure of merit, with the max
rank-normalised R-hat beside it. Rows show the median over seeds and the range; ratios are medians
of per-seed ratios, like to like: coordinate / CHRR and billiard / hopsy billiard. Imports and a
first small run of every sampler happen before any timing, so no row pays for loading a library.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# every tool on one core: BLAS too (on a shared machine OpenBLAS threads otherwise spin)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import arviz as az  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayesflux import datasets  # noqa: E402
from bayesflux.sampling import polytope, round_polytope, sample_fluxes  # noqa: E402

warnings.filterwarnings("ignore", message="the chains have not converged")
warnings.filterwarnings("ignore", message="Found chain dimension")

DEFAULT_DRAWS = {"textbook": 2000, "iJO1366": 2000, "salmonella": 2000}
POLYROUND_TOO_SLOW = {"iJO1366", "salmonella"}  # hopsy.round did not finish in 750 s


def diagnostics(draws: np.ndarray) -> dict:
    """Min bulk and tail ESS and max R-hat over the reactions that move; ``(chain, draw, n)``."""
    spread = draws.std(axis=(0, 1))
    moving = draws[..., spread > 1e-9 * max(1.0, float(np.abs(draws).max()))]
    x = xr.DataArray(moving, dims=("chain", "draw", "reaction"))
    return {
        "bulk": float(np.nanmin(az.ess(x, method="bulk").values)),
        "tail": float(np.nanmin(az.ess(x, method="tail").values)),
        "rhat": float(np.nanmax(az.rhat(x).values)),
    }


def run_ours(poly, rnd, setup_cpu: float, kernel: str, chains: int, draws: int, seed: int):
    """One bayesflux run: diagnostics, sampling CPU s and total CPU s (``setup_cpu`` is the
    polytope's and rounding's, spent once per model and charged to every run)."""
    t0 = time.process_time()
    tree = sample_fluxes(
        poly, kernel=kernel, rounding=rnd, num_chains=chains, num_draws=draws, num_warmup=0,
        seed=seed,
    )  # fmt: skip
    total = setup_cpu + time.process_time() - t0
    row = diagnostics(tree.posterior["flux"].values)
    return {**row, "sampling": tree.attrs["sampling_cpu_seconds"], "total": total}


def hopsy_problem(network, poly, rnd, use_polyround: bool):
    """hopsy's problem (PolyRound-rounded, as its users build it) or our EP-rounded polytope,
    a map of its points to fluxes, its start, and its set-up CPU s (None for ours)."""
    import hopsy

    if not use_polyround:
        A, b = rnd.rounded(poly)
        problem = hopsy.Problem(A, b)
        return problem, lambda y: poly.to_fluxes(rnd.to_reduced(y)), np.zeros(poly.dim), None
    t0 = time.process_time()
    eye = np.eye(network.n_reactions)
    upper, lower = np.isfinite(network.ub), np.isfinite(network.lb)
    A = np.vstack([eye[upper], -eye[lower]])
    b = np.concatenate([network.ub[upper], -network.lb[lower]])
    problem = hopsy.Problem(A, b)
    problem = hopsy.add_equality_constraints(
        problem, network.S.toarray(), np.zeros(network.n_metabolites)
    )
    problem = hopsy.round(problem)
    start = hopsy.compute_chebyshev_center(problem)
    return problem, lambda v: v, start, time.process_time() - t0


def run_hopsy(problem, to_fluxes, start, setup, proposal: str, thinning, chains, draws, seed):
    import hopsy

    kind = {
        "CHRR": hopsy.UniformCoordinateHitAndRunProposal,
        "billiard": hopsy.BilliardWalkProposal,
    }[proposal]
    t0 = time.process_time()
    mcs = [hopsy.MarkovChain(problem, kind, starting_point=start) for _ in range(chains)]
    rngs = [hopsy.RandomNumberGenerator(seed, i) for i in range(chains)]
    _, samples = hopsy.sample(mcs, rngs, n_samples=draws, thinning=thinning, n_procs=1)
    sampling = time.process_time() - t0
    row = diagnostics(to_fluxes(np.asarray(samples)))
    total = np.nan if setup is None else setup + sampling
    return {**row, "sampling": sampling, "total": total}


def per_second(row: dict, what: str, time_of: str) -> float:
    return row[what] / row[time_of]


def show(name: str, rows: list[dict]) -> None:
    def cell(what, time_of):
        values = [per_second(r, what, time_of) for r in rows]
        return f"{np.median(values):9.1f} [{min(values):.0f}-{max(values):.0f}]"

    med = {k: np.median([r[k] for r in rows]) for k in ("bulk", "tail", "rhat", "sampling")}
    total = np.median([r["total"] for r in rows])
    print(
        f"  {name:16s} ESS bulk {med['bulk']:7.0f} tail {med['tail']:7.0f} R-hat "
        f"{max(r['rhat'] for r in rows):.3f} | CPU s sampling {med['sampling']:7.2f} total "
        f"{total:7.2f} | min ESS / CPU s, sampling: bulk {cell('bulk', 'sampling')} tail "
        f"{cell('tail', 'sampling')}; total: bulk {cell('bulk', 'total')} tail "
        f"{cell('tail', 'total')}"
    )


def ratio(ours: list[dict], theirs: list[dict], label: str) -> None:
    parts = []
    for time_of in ("sampling", "total"):
        for what in ("bulk", "tail"):
            r = [per_second(a, what, time_of) / per_second(b, what, time_of)
                 for a, b in zip(ours, theirs, strict=True)]  # fmt: skip
            if np.all(np.isnan(r)):
                parts.append(f"{time_of} {what} n/a")
            else:
                parts.append(f"{time_of} {what} x{np.median(r):.2f} [{min(r):.2f}-{max(r):.2f}]")
    print(f"  {label}: " + ", ".join(parts))


def warm_up(skip_hopsy: bool) -> None:
    """Load every library and compile nothing that the timed runs reuse: a tiny polytope."""
    net = datasets.load("textbook")
    poly = polytope(net)
    rnd = round_polytope(poly, "ep")
    for kernel in ("coordinate", "billiard"):
        sample_fluxes(poly, kernel=kernel, rounding=rnd, num_chains=2, num_draws=20, num_warmup=0)
    diagnostics(np.random.default_rng(0).normal(size=(2, 50, 3)))
    if not skip_hopsy:
        problem, to_fluxes, start, _ = hopsy_problem(net, poly, rnd, use_polyround=False)
        run_hopsy(problem, to_fluxes, start, None, "CHRR", 1, 2, 20, 0)


def bench_model(name: str, args) -> None:
    network = datasets.load(name)
    draws = args.draws or DEFAULT_DRAWS.get(name, 1000)
    t0 = time.process_time()
    poly = polytope(network)
    t1 = time.process_time()
    rnd = round_polytope(poly, "ep")
    t2 = time.process_time()
    print(
        f"{name}: {network.n_reactions} reactions, d = {poly.dim}, m = {poly.n_constraints}; "
        f"{args.chains} chains x {draws} draws, seeds 0-{args.seeds - 1}; our set-up: FVA "
        f"polytope {t1 - t0:.2f} CPU s, EP rounding {t2 - t1:.2f} CPU s ({rnd.iterations} sweeps)"
    )
    seeds = range(args.seeds)
    ours = {
        kernel: [run_ours(poly, rnd, t2 - t0, kernel, args.chains, draws, s) for s in seeds]
        for kernel in ("coordinate", "billiard")
    }
    for kernel, rows in ours.items():
        show(kernel, rows)
    if args.skip_hopsy:
        return
    polyround = args.hopsy_rounding == "polyround" and name not in POLYROUND_TOO_SLOW
    problem, to_fluxes, start, setup = hopsy_problem(network, poly, rnd, polyround)
    print(
        "  hopsy on "
        + (
            f"its PolyRound rounding (set-up {setup:.2f} CPU s)"
            if polyround
            else "our EP-rounded polytope (its PolyRound set-up not run: totals n/a)"
        )  # fmt: skip
    )
    theirs = {
        "CHRR": [
            run_hopsy(problem, to_fluxes, start, setup, "CHRR", poly.dim, args.chains, draws, s)
            for s in seeds
        ],
        "billiard": [
            run_hopsy(problem, to_fluxes, start, setup, "billiard", 1, args.chains, draws, s)
            for s in seeds
        ],
    }
    for proposal, rows in theirs.items():
        show(f"hopsy {proposal}", rows)
    ratio(ours["coordinate"], theirs["CHRR"], "coordinate / hopsy CHRR")
    ratio(ours["billiard"], theirs["billiard"], "billiard / hopsy billiard")


def rounding_study(chains: int = 4, draws: int = 500) -> None:
    """EP vs inscribed ellipsoid vs none on E. coli core: ``cond(L⁻¹ Cov(z) L⁻ᵀ)`` of the uniform
    distribution in the rounded coordinates (1 is round), and min bulk ESS per 1000 coordinate
    moves over 3 seeds (how the default rounding was chosen)."""
    network = datasets.load("textbook")
    poly = polytope(network)
    reference = sample_fluxes(poly, kernel="billiard", num_chains=8, num_draws=3000, seed=123)
    flux = reference.posterior["flux"].values.reshape(-1, network.n_reactions)
    z = np.linalg.lstsq(poly.N, (flux - poly.v0).T, rcond=None)[0].T
    cov = np.cov(z.T)
    print(f"rounding study, E. coli core (d = {poly.dim}), coordinate hit-and-run, thinning d:")
    for method in ("ep", "mve", "none"):
        rnd = round_polytope(poly, method)
        inv = np.linalg.inv(rnd.L)
        eig = np.linalg.eigvalsh(inv @ cov @ inv.T)
        per_move = [
            run_ours(poly, rnd, 0.0, "coordinate", chains, draws, s)["bulk"]
            / (chains * draws * poly.dim)
            for s in range(3)
        ]
        print(
            f"  {method:5s} cond {eig.max() / eig.min():7.2f}; min ESS per 1000 moves: "
            + ", ".join(f"{1000 * x:.3f}" for x in per_move)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["textbook", "iJO1366", "salmonella"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=None, help="draws per chain")
    parser.add_argument("--skip-hopsy", action="store_true")
    parser.add_argument("--hopsy-rounding", choices=("polyround", "ours"), default="polyround")
    parser.add_argument("--rounding-study", action="store_true")
    args = parser.parse_args()
    warm_up(args.skip_hopsy)
    for name in args.models:
        bench_model(name, args)
    if args.rounding_study:
        rounding_study()


if __name__ == "__main__":
    main()
