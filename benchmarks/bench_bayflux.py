"""Benchmark: BayFlux's own 13C posterior, like for like (issue 16).

``--case core``: BayFlux's core case as its ``ecoli_core_Sample_Model`` notebook poses it
(:func:`bayesflux.labeling.bayflux.bayflux_core`): TOYA.xml (63 reactions) with every bound
clipped to ±58.5, glucose uptake fixed at 11.7 and acetate secretion at 4.3, 30 % [1-13C] /
20 % [U-13C] glucose, 48 MID entries of 9 fragments (Toya 2010, wild type 5 h) each
``N(simulated, 0.0070417²)``, and BayFlux's prior: uniform forward and backward fluxes, i.e.
uniform net fluxes and exchange fluxes with ``x + |v| <= 58.5`` (16 net + 16 exchange dimensions).
BayFlux made 100 000 posterior draws in 15 h 36 min (cobra's ACHR, thinning 100).

Steps: a weighted least-squares 13C fit (``--fit-starts`` starts) gives the chains' start (its
exchange fluxes pulled into the gross-flux bounds) and the initial rounding
``N(x_fit, (C_EP^-1 + Tᵀ JᵀJ T)^-1)`` (EP's Gaussian of the uniform prior times the fit's Fisher
information, ``T`` mapping the posterior's coordinates to the fit's parameters); then reflective
HMC through the NumPyro layer (:meth:`bayesflux.models.FluxPosterior.sample`), ``--chains``
chains. The reported time counts everything after reading the files: fit, compilation, warm-up
and draws. R-hat (rank-normalised split) and bulk / tail ESS over all varying net fluxes.

Run: ``python benchmarks/bench_bayflux.py --case core`` (100 000 draws; ``--draws 2000`` for a
quick estimate). Prints ``core: draws=N time_s=T max_rhat=R min_ess_bulk=E min_ess_tail=F``.

Measured 2026-12-07, ``--case core --draws 2000 --warmup 500`` on the 2 shared cores while other
jobs ran (load average 7-9, so wall times are inflated, about 2x): fit SSR 150.75 (16 dof: the
model misfits BayFlux's data at sd 0.007; PPC and PPCK near 58.5, ENO and PGM exchange at the
bound) in 78 s; set-up and compilation 254 s; 4000 chain iterations (warm-up and draws) 225 s,
88.6 leapfrog steps a draw, acceptance 0.81, 2.8 % divergent; total 705 s;
``core: draws=2000 time_s=704.7 max_rhat=1.1595 min_ess_bulk=18 min_ess_tail=14`` (not
converged). One gradient of the log-density for 4 chains costs 1.05 ms unloaded, so at 88
steps a draw 100 000 draws (26 000 iterations a chain with warm-up) need at least 40 min of
gradients; extrapolated from the loaded run, about 1.7 h (BayFlux: 15.6 h).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayesflux.labeling import fit  # noqa: E402
from bayesflux.labeling.bayflux import bayflux_core  # noqa: E402
from bayesflux.sampling import round_polytope  # noqa: E402
from bayesflux.sampling.polytope import nearest_interior  # noqa: E402
from bayesflux.sampling.rounding import covariance_rounding  # noqa: E402

BAYFLUX_SECONDS = 15 * 3600 + 36 * 60  # BayFlux's notebook: 100 000 draws in 15 h 36 min


def start_and_rounding(model, post, best):
    """The fit as a point ``x = (v, θ)`` of the joint polytope (exchange fluxes pulled into
    ``x <= min(ub - max(v, 0), -lb - max(-v, 0))``) and the rounding of the module docstring."""
    poly, term, problem = post.polytope, post.terms[0], post.terms[0].problem
    net = model.network
    n = net.n_reactions
    v = np.zeros(n)
    v[term.index] = best.net
    xch = dict(zip(problem.reversible, best.xch, strict=True))
    theta = []
    for r in term.exchange_reactions:
        j = net.reaction_index[r]
        room = min(net.ub[j] - max(v[j], 0.0), -net.lb[j] - max(-v[j], 0.0))
        theta.append(min(xch.get(r, 0.0), 0.999 * room))
    x = np.concatenate([v, theta])
    pinv = np.linalg.pinv(poly.N)
    z = nearest_interior(poly.A, poly.b, pinv @ (x - poly.v0))
    position = {r: k for k, r in enumerate(term.exchange_reactions)}
    rows = [term.index[problem.network.reaction_ids.index(r)] for r in problem.space.free]
    rows += [n + position[r] for r in problem.xch_space.free]
    T = poly.N[rows]
    J = np.asarray(problem.compiled["jacobian"](jnp.asarray(best.theta)))
    precision = np.linalg.inv(round_polytope(poly, "ep").cov) + T.T @ (J.T @ J) @ T
    cov = np.linalg.inv(0.5 * (precision + precision.T))
    return poly.v0 + poly.N @ z, covariance_rounding(poly, cov, center=z)


def diagnostics(flux: np.ndarray) -> tuple[float, float, float, int]:
    """Max R-hat, min bulk and tail ESS over the varying net fluxes, and their number."""
    import arviz_stats
    import xarray as xr

    varying = flux.reshape(-1, flux.shape[-1]).std(axis=0) > 1e-9
    x = xr.DataArray(flux[..., varying], dims=("chain", "draw", "reaction"))
    return (
        float(np.max(arviz_stats.rhat(x).values)),
        float(np.min(arviz_stats.ess(x, method="bulk").values)),
        float(np.min(arviz_stats.ess(x, method="tail").values)),
        int(varying.sum()),
    )


def run_core(args) -> None:
    model = bayflux_core()
    t0 = time.perf_counter()
    problem = model.problem()
    post = model.posterior()
    best = fit(problem, n_starts=args.fit_starts, rng=args.seed)
    t_fit = time.perf_counter() - t0
    start, rounding = start_and_rounding(model, post, best)
    per_chain = -(-args.draws // args.chains)
    tree = post.sample(
        method="hmc",
        rounding=rounding,
        start=start,
        start_spread=args.start_spread,
        num_chains=args.chains,
        num_draws=per_chain,
        num_warmup=args.warmup,
        trajectory_length=args.trajectory_length,
        seed=args.seed,
        block_size=args.block_size,
    )
    total = time.perf_counter() - t0
    flux = tree.posterior["flux"].values
    rhat, bulk, tail, varying = diagnostics(flux)
    stats = tree.sample_stats
    print(
        f"core model: {model.network.n_reactions} reactions, {problem.n_measurements} MID "
        f"entries, posterior dimension {post.polytope.dim}; fit SSR {best.ssr:.2f} (dof "
        f"{best.dof}) in {t_fit:.1f} s; {args.chains} chains x {per_chain} draws, warm-up "
        f"{args.warmup}; set-up and compilation {tree.attrs['setup_seconds']:.1f} s, sampling "
        f"{tree.attrs['sampling_seconds']:.1f} s; acceptance "
        f"{float(stats['acceptance_rate'].mean()):.3f}, leapfrog steps per draw "
        f"{float(stats['n_steps'].mean()):.1f}, divergent {float(stats['diverging'].mean()):.2%}; "
        f"{varying} varying net fluxes; BayFlux 15 h 36 min: {BAYFLUX_SECONDS / total:.0f}x"
    )
    print(
        f"core: draws={args.chains * per_chain} time_s={total:.1f} max_rhat={rhat:.4f} "
        f"min_ess_bulk={bulk:.0f} min_ess_tail={tail:.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("core",), default="core")
    ap.add_argument("--draws", type=int, default=100_000, help="kept draws over all chains")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000, help="warm-up draws per chain")
    ap.add_argument("--trajectory-length", type=float, default=3.0)
    ap.add_argument("--fit-starts", type=int, default=2)
    ap.add_argument("--start-spread", type=float, default=0.01)
    ap.add_argument("--block-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    run_core(args)


if __name__ == "__main__":
    main()
