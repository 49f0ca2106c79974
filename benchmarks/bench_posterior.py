"""Benchmark: a Bayesian 13C flux posterior of 100 000 draws on E. coli, beside BayFlux.

Model ("E. coli core" here): influx_si's ``test/e_coli.ftbl`` (E. coli K12 central carbon
metabolism, 86 reactions with atom maps, real LC-MS MIDs of 9 metabolites and one flux
measurement), read from the installed influx_si package. cobra's textbook E. coli core has no atom
mappings, so it cannot carry a 13C likelihood. The FTBL's fixed net fluxes, net-flux equalities and
bounds become the posterior's :class:`LinearConstraint` s and network bounds; its fixed exchange
fluxes and exchange equalities are kept by making only the *free* exchange fluxes latent
(:class:`FreeExchange13C`), so the posterior's support is exactly the MFA problem's
(``xch_max = 999``, influx_si's ``0.999`` on its ``[0, 1)`` exchange scale).

Steps: weighted least-squares MFA fit (:func:`bayesflux.labeling.fit`) for a start and the
linearised covariance; the initial rounding is the Gaussian ``N(x_fit, (C_EP^-1 + Tᵀ JᵀJ T)^-1)``
in the posterior's reduced coordinates (EP's Gaussian of the uniform prior on the polytope, times
the Fisher information of the fit, ``T`` mapping reduced coordinates to the fit's parameters).
Then (default ``--method hmc``) reflective HMC through the NumPyro layer
(``FluxPosterior.sample``, :class:`bayesflux.infer.ReflectiveHMC`: NumPyro's step-size and dense
mass-matrix adaptation in 1000 warm-up iterations), 4 chains, mean integration time
``--trajectory-length``; ``--versus-legacy`` also runs the legacy windowed driver
(``benchmarks/legacy_hmc.py``, the driver before the layer) on the same posterior and prints the
ratio of min-ESS per second. ``--method metropolis``: coordinate hit-and-run Metropolis
(:class:`bayesflux.infer.HitAndRun`) with Gaussian steps along the chord adapted by dual averaging
and the rounding adapted to the posterior in warm-up. Compilation and warm-up count in the
reported time; the MFA fit is timed separately.

Reported: wall time, acceptance, max R-hat and min bulk / tail ESS over net fluxes (arviz_stats,
rank-normalised split R-hat), ESS per second, and the ratio to BayFlux's published 15 h 36 min =
56 160 s (its notebook output).

Run: ``python benchmarks/bench_posterior.py`` (``--draws 8000`` for a quick estimate).

Measured, ``python benchmarks/bench_posterior.py --draws 8000 --versus-legacy`` (one process, 2 CPU
cores; 8000 kept draws, 4 x 2000, warm-up 1000; MFA fit 19 s on top):

==================================  ======  ==========  ============  =============  =========
sampler                              time s  max R-hat   min bulk ESS  min ESS / s    vs BayFlux
==================================  ======  ==========  ============  =============  =========
layer ReflectiveHMC, trajectory 3.0  245.6   1.0012      2092 (tail    8.5            229x
                                                         2392)
legacy HMC, trajectory 0.5           79.1    1.0126      431 (tail     4.9            710x
                                                         384)
==================================  ======  ==========  ============  =============  =========

Layer / legacy: 1.75x min-ESS per second (2026-12-07; 1.65x in an earlier run, when the 13C
potential was compiled three times, by NumPyro's initialisation, the chains' start and the
sampling loop). The layer's chains start around the fit (a Gaussian draw from its
rounding); started at points spread over the whole polytope, far in the tails of this
concentrated likelihood, they did not converge (R-hat 1.7-3.3). Earlier 100 000-draw runs of the
legacy driver: 537.5 s, R-hat 1.0015 (trajectory 0.5). Hit-and-run Metropolis
(``--method metropolis``) makes its draws fastest but does not converge on this posterior.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from legacy_hmc import sample_hmc  # noqa: E402

from bayesflux.labeling import fit, read_ftbl  # noqa: E402
from bayesflux.models import FluxPosterior, Labeling13C  # noqa: E402
from bayesflux.models.posterior import Latent  # noqa: E402
from bayesflux.sampling import LinearConstraint, round_polytope  # noqa: E402
from bayesflux.sampling.rounding import covariance_rounding  # noqa: E402

BAYFLUX_SECONDS = 15 * 3600 + 36 * 60  # BayFlux's published 15 h 36 min


def FIT(problem):  # noqa: N802 - module-level hook so a driver may cache the fit
    return fit(problem, n_starts=2, rng=0)


class FreeExchange13C(Labeling13C):
    """:class:`Labeling13C` whose latents are the problem's *free* exchange fluxes.

    ``v_xch = v0 + K w`` over the free exchange fluxes ``w`` of ``problem.xch_space``; fixed
    exchange fluxes and exchange equalities are then kept exactly. ``K`` must be a selection
    (each row at most one 1), so that ``w`` in ``[0, xch_max]`` is the full exchange support.
    """

    def __init__(self, problem, network, *, name: str = "labeling") -> None:
        super().__init__(problem, network, name=name)
        sp = problem.xch_space
        K = np.asarray(sp.K)
        if not (np.all(np.isin(K, (0.0, 1.0))) and np.all(K.sum(axis=1) <= 1)):
            raise ValueError("exchange equalities beyond copies are not handled here")
        free_idx = [sp.reaction_ids.index(r) for r in sp.free]
        self.xch_names = tuple(f"{name}_xch[{r}]" for r in sp.free)
        self.latents = tuple(
            Latent(nm, float(sp.lb[i]), float(sp.ub[i]))
            for nm, i in zip(self.xch_names, free_idx, strict=True)
        )
        self._xch_v0, self._xch_K = jnp.asarray(sp.v0), jnp.asarray(K)

    def exchange_fluxes(self, theta):
        """All exchange fluxes ``v0 + K w`` from the free ones (used by the likelihood and by
        the NumPyro sites of :meth:`observe`)."""
        w = jnp.stack([theta[nm] for nm in self.xch_names])
        return self._xch_v0 + self._xch_K @ w


def build(xch_max: float = 999.0):
    """The MFA problem, the posterior with the FTBL's constraints, and the 13C term."""
    model = read_ftbl(importlib.resources.files("influx_si") / "test" / "e_coli.ftbl")
    problem = model.problem(xch_max=xch_max)
    network = model.network.stoichiometry()
    constraints = [LinearConstraint({r: 1.0}, v, v) for r, v in model.fixed.items()]
    constraints += [LinearConstraint(dict(c), v, v) for c, v in model.equalities]
    term = FreeExchange13C(problem, network)
    post = FluxPosterior(network, [term], constraints=constraints)
    if post.polytope.dim != problem.n_params:
        raise RuntimeError(
            f"posterior dimension {post.polytope.dim} != MFA parameters {problem.n_params}"
        )
    return problem, network, term, post


def posterior_rounding(problem, term, post, best):
    """``covariance_rounding`` at the fit with ``(C_EP^-1 + Tᵀ JᵀJ T)^-1`` (module docstring)."""
    poly = post.polytope
    n = post.network.n_reactions
    free_net = [term.index[problem.network.reaction_ids.index(r)] for r in problem.space.free]
    rows = free_net + [n + k for k in range(len(term.latents))]
    T = poly.N[rows]  # theta = const + T x  (free net fluxes, free exchange fluxes)
    J = np.asarray(best.jacobian)
    ep = round_polytope(poly, "ep")
    precision = np.linalg.inv(ep.cov) + T.T @ (J.T @ J) @ T
    cov = np.linalg.inv(precision)
    full = np.zeros(poly.N.shape[0])
    full[term.index] = best.net
    nz = problem.space.n_free
    full[n:] = best.theta[nz:]
    x_fit = np.linalg.lstsq(poly.N, full - poly.v0, rcond=None)[0]
    return covariance_rounding(poly, cov, center=x_fit)


def diagnostics(flux: np.ndarray, seconds: float) -> dict:
    """Max R-hat, min bulk / tail ESS over varying net fluxes, ESS per second."""
    import arviz_stats
    import xarray as xr

    varying = flux.reshape(-1, flux.shape[-1]).std(axis=0) > 1e-9
    x = xr.DataArray(flux[..., varying], dims=("chain", "draw", "reaction"))
    rhat = arviz_stats.rhat(x).values
    bulk = arviz_stats.ess(x, method="bulk").values
    tail = arviz_stats.ess(x, method="tail").values
    return {
        "n_varying": int(varying.sum()),
        "rhat_max": float(np.max(rhat)),
        "ess_bulk_min": float(np.min(bulk)),
        "ess_tail_min": float(np.min(tail)),
        "ess_per_s": float(min(np.min(bulk), np.min(tail)) / seconds),
    }


def run_hmc(post, rounding, per_chain: int, n_reactions: int, args, *, legacy: bool) -> float:
    """Reflective HMC from the fit's rounding; returns min-ESS per second.

    ``legacy``: the windowed driver before the layer (``legacy_hmc.sample_hmc``: warm-up windows
    re-round and adapt the step); otherwise the NumPyro layer (``FluxPosterior.sample``:
    :class:`bayesflux.infer.ReflectiveHMC` with NumPyro's step and dense mass-matrix adaptation).
    """
    t = time.perf_counter()
    options = dict(
        rounding=rounding, num_chains=args.chains, num_draws=per_chain, num_warmup=args.warmup,
        seed=args.seed, block_size=args.block_size,
        trajectory_length=args.trajectory_length or (0.5 if legacy else 3.0),
    )  # fmt: skip
    if legacy:
        tree = sample_hmc(post.polytope, post.log_density, **options)
    else:
        tree = post.sample(method="hmc", **options)
    total = time.perf_counter() - t
    flux = tree.posterior["flux"].values[..., :n_reactions]
    steps, refl, acc, div = (
        float(tree.sample_stats[k].mean())
        for k in ("n_steps", "n_reflections", "acceptance_rate", "diverging")
    )
    step = tree.sample_stats["step_size"].values
    diag = diagnostics(flux, total)
    label = "legacy HMC" if legacy else "NumPyro-layer HMC"
    print(
        f"{label} (trajectory {options['trajectory_length']}): {args.chains} chains x "
        f"{per_chain} kept (warm-up {args.warmup}); leapfrog "
        f"steps per draw: mean {steps:.1f}, reflections {refl:.2f}; step sizes "
        f"[{step.min():.3f}, {step.max():.3f}]; acceptance {acc:.3f}, divergent {div:.2%}"
    )
    if not legacy:
        print(
            f"  set-up and compilation {tree.attrs['setup_seconds']:.1f} s, sampling "
            f"{tree.attrs['sampling_seconds']:.1f} s"
        )
    print(f"  total {total:.1f} s (compilation, warm-up and kept draws; MFA fit not included)")
    print(
        f"  net fluxes ({diag['n_varying']} varying): max R-hat {diag['rhat_max']:.4f}, "
        f"min bulk ESS {diag['ess_bulk_min']:.0f}, min tail ESS {diag['ess_tail_min']:.0f}, "
        f"{diag['ess_per_s']:.1f} min-ESS / s (total time)"
    )
    print(f"  BayFlux 15 h 36 min = {BAYFLUX_SECONDS} s: {BAYFLUX_SECONDS / total:.0f}x faster")
    return diag["ess_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=100_000, help="kept draws over all chains")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--thinning", type=int, default=4, help="coordinate moves per kept draw")
    ap.add_argument("--warmup", type=int, default=1000, help="warm-up draws per chain")
    ap.add_argument("--block-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kernel", choices=("coordinate", "random"), default="coordinate")
    ap.add_argument(
        "--method", choices=("hmc", "metropolis"), default="hmc", help="sampler (module docstring)"
    )
    ap.add_argument(
        "--trajectory-length",
        type=float,
        default=None,
        help="HMC mean integration time (default: 3.0 for the layer, its default; 0.5 for the "
        "legacy driver, its best setting here)",
    )
    ap.add_argument(
        "--versus-legacy",
        action="store_true",
        help="also run the legacy HMC driver on the same posterior and print the speed ratio",
    )
    args = ap.parse_args()
    per_chain = -(-args.draws // args.chains)
    print(f"devices: {jax.devices()}  (2 CPU cores expected)")

    t = time.perf_counter()
    problem, network, term, post = build()
    print(
        f"model: {network.n_reactions} reactions, {problem.n_measurements} measurements, "
        f"posterior dimension {post.polytope.dim} ({problem.space.n_free} net + "
        f"{len(term.latents)} exchange) [{time.perf_counter() - t:.1f} s]"
    )
    t = time.perf_counter()
    best = FIT(problem)
    print(f"MFA fit: SSR {best.ssr:.3f} (dof {best.dof}) [{time.perf_counter() - t:.1f} s]")
    rounding = posterior_rounding(problem, term, post, best)
    if args.method == "hmc":
        layer = run_hmc(post, rounding, per_chain, network.n_reactions, args, legacy=False)
        if args.versus_legacy:
            old = run_hmc(post, rounding, per_chain, network.n_reactions, args, legacy=True)
            print(f"NumPyro layer / legacy HMC: min-ESS per second x{layer / old:.2f}")
        return
    t = time.perf_counter()
    tree = post.sample(
        method="metropolis",
        kernel=args.kernel,
        thinning=args.thinning,
        rounding=rounding,
        step_size=1.0,  # rounded coordinates are about N(0, I) under the linearised posterior
        num_chains=args.chains,
        num_draws=per_chain,
        num_warmup=args.warmup,
        seed=args.seed,
        block_size=args.block_size,
    )
    total = time.perf_counter() - t
    flux = tree.posterior["flux"].values[..., : network.n_reactions]
    acc = float(tree.sample_stats["acceptance_rate"].mean())
    diag = diagnostics(flux, total)
    moves = args.chains * (per_chain + args.warmup) * args.thinning
    print(
        f"draws: {args.chains} chains x {per_chain} kept (warm-up {args.warmup}, thinning "
        f"{args.thinning}: {moves} Metropolis moves in all); acceptance {acc:.3f}"
    )
    print(
        f"set-up and compilation {tree.attrs['setup_seconds']:.1f} s, sampling "
        f"{tree.attrs['sampling_seconds']:.1f} s, total {total:.1f} s (MFA fit not included)"
    )
    print(
        f"net fluxes ({diag['n_varying']} varying): max R-hat {diag['rhat_max']:.4f}, "
        f"min bulk ESS {diag['ess_bulk_min']:.0f}, min tail ESS {diag['ess_tail_min']:.0f}, "
        f"{diag['ess_per_s']:.1f} min-ESS / s (total time)"
    )
    print(f"BayFlux 15 h 36 min = {BAYFLUX_SECONDS} s: {BAYFLUX_SECONDS / total:.0f}x faster")


if __name__ == "__main__":
    main()
