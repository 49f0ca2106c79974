"""Benchmark: the joint flux posterior of the bundled example against each data type alone.

The example (``examples/ecoli_core.toml``: E. coli core, glucose <= 10, oxygen <= 20, growth
>= 0.75 1/h) with data simulated from the model itself by ``examples/make_ecoli_core_data.py``:
a true flux state drawn from the prior (uniform on the polytope; in
``examples/ecoli_core_truth.tsv``), five measured exchange fluxes (the toml's ``fluxes``) and
gene expression drawn from FALCON's Laplace model at the true state (``ecoli_core_genes.tsv``).
Three posteriors with the growth floor: measured fluxes only, expression only
(:class:`~bayesflux.models.ExpressionLaplace`, scale integrated out), both.

Reported per posterior, over the reactions whose flux is not fixed by the polytope: coverage of
the true fluxes by the 94 % HDIs (``arviz_stats.hdi``), the misses (named) and those where the
true flux sits on a bound of the polytope (an HDI's end is a draw, never the bound itself); the
mean HDI width and the fraction of reactions whose joint HDI is narrower than both single-data
HDIs; max rank-normalised split R-hat and min bulk / tail ESS over fluxes (arviz_stats); wall
time (compilation included). ``--replicates N`` instead simulates N data sets of the same process
(``simulate_data``, seeds ``SEED + 1 ... SEED + N``, truth included) and reports the mean
coverage: what a calibrated 94 % HDI promises is 0.94 on average over prior and data, while one
data set's coverage scatters widely (the 87 fluxes are a few dozen correlated quantities).

Run: ``python benchmarks/bench_joint.py`` (``--method metropolis`` or ``slice`` for the other
samplers, ``--draws``, ``--chains``, ``--replicates``). ``--versus-legacy --seeds N`` runs the
NumPyro layer's ReflectiveHMC beside the legacy reflective HMC in one process, interleaved per
seed, and prints min bulk / tail ESS per wall second (set-up and compilation included) and the
median ratio.

Measured (2 shared CPU cores, other jobs running; 4 chains x 2000 draws, seed 1, 87 reactions):

=========================  =======  ====  ======  ======  =====  ========  ======
posterior (method)         cover94  miss  @bound  width   R-hat  bulk ESS  time s
=========================  =======  ====  ======  ======  =====  ========  ======
fluxes only (hmc)          0.931    6     0       23.16   1.005  2029      12.4
expression only (hmc)      0.920    7     0       1.467   1.004  1632      20.0
joint (hmc)                0.920    7     0       1.389   1.003  1442      19.4
fluxes only (metropolis)   0.931    6     0       23.16   1.015  281       1.8
expression only (metrop.)  0.805    17    0       1.473   1.772  6         5.7
joint (metropolis)         0.874    11    0       1.399   1.540  7         6.3
fluxes only (slice)        0.885    10    0       23.12   1.057  64        5.5
expression only (slice)    0.920    7     0       1.472   1.015  423       14.4
joint (slice)              0.897    9     0       1.400   1.033  205       11.3
=========================  =======  ====  ======  ======  =====  ========  ======

With HMC the joint HDIs are the narrowest on average and narrower than both single-data HDIs
for 55 % of the reactions (the others: fluxes the five measurements say nothing about, where
the joint and expression-only HDIs agree up to Monte Carlo error). The joint misses are 3
distinct quantities: acetate secretion (ACKr, ACt2r, EX_ac_e, PTAr; the measured acetate is
1.7 sd below the truth), ATPM (the true 10.27 at the prior's 0.998 quantile) and glutamate
export (EX_glu__L_e, GLUt2r). Over ``--replicates 10`` (HMC, 4 chains x 2000 draws):

=================  =============  ======  =====  ========
posterior          cover94 (sd)   width   R-hat  bulk ESS
=================  =============  ======  =====  ========
fluxes only        0.894 (0.118)  23.16   1.005  1677
expression only    0.954 (0.052)  1.069   1.005  1141
joint              0.939 (0.061)  1.024   1.005  1355
=================  =============  ======  =====  ========

(mean coverage, its sd over the replicates, mean HDI width, max R-hat and min bulk ESS over all
replicates; the joint HDI is narrower than both for 55 % of the reactions on average). The mean
coverages are 0.94 within 1.3 standard errors (sd / sqrt(10)); fluxes only is the lowest, with
two data sets (seeds SEED + 2, SEED + 10) at 0.67-0.69 whose true states the prior's own 94 %
HDIs also cover at only 0.69 (the five exchange fluxes say little about them; over 100 prior
draws the prior's HDIs cover 0.948 +- 0.006). Hit-and-run Metropolis does not converge on the
expression likelihood (R-hat 1.5-1.8, ESS 6); its HDIs are single chains'. Hit-and-run slice
sampling agrees with HMC but mixes 3-15x worse per second (R-hat up to 1.06).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import arviz_stats  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from legacy_hmc import sample_hmc  # noqa: E402

import bayesflux as bf  # noqa: E402
from bayesflux.models import ExpressionLaplace, FluxObservations, FluxPosterior  # noqa: E402
from bayesflux.sampling import LinearConstraint  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example():
    """Network, growth floor, measured fluxes, gene expression and true fluxes of the example."""
    config = tomllib.loads((EXAMPLES / "ecoli_core.toml").read_text())
    step = next(s for s in config["step"] if s["kind"] == "posterior")
    net = bf.datasets.load(config["model"]["source"]).with_bounds(
        {r: tuple(b) for r, b in config["model"]["bounds"].items()}
    )
    constraints = [
        LinearConstraint(c["coefficients"], c.get("lower", -np.inf), c.get("upper", np.inf))
        for c in step["constraints"]
    ]
    genes = pd.read_csv(EXAMPLES / "ecoli_core_genes.tsv", sep="\t", index_col=0)
    truth = pd.read_csv(EXAMPLES / "ecoli_core_truth.tsv", sep="\t", index_col=0)["flux"]
    fluxes = {r: tuple(p) for r, p in step["fluxes"].items()}
    return net, constraints, fluxes, genes, truth.reindex(list(net.reactions)).to_numpy()


def draw(post: FluxPosterior, method: str, args):
    """The posterior's DataTree by ``method``; ``"legacy-hmc"`` is the reflective HMC of
    ``legacy_hmc.sample_hmc`` (pooled re-rounding windows, before the
    NumPyro layer), at its own defaults, converted by the same ``post.to_datatree``."""
    if method != "legacy-hmc":
        return post.sample(
            method=method, num_chains=args.chains, num_draws=args.draws, seed=args.seed
        )
    raw = sample_hmc(
        post.polytope, post.log_density, num_chains=args.chains, num_draws=args.draws,
        seed=args.seed,
    )  # fmt: skip
    return post.to_datatree(raw["posterior"]["flux"].values, raw["sample_stats"].to_dataset())


def measure(post: FluxPosterior, truth: np.ndarray, args, method: str | None = None) -> dict:
    t0 = time.perf_counter()
    tree = draw(post, method or args.method, args)
    seconds = time.perf_counter() - t0
    flux = tree["posterior"]["flux"]
    poly = post.polytope
    n = post.network.n_reactions
    lo_b, hi_b = poly.flux_min[:n], poly.flux_max[:n]
    moving = (hi_b - lo_b) > 1e-9
    hdi = arviz_stats.hdi(flux, prob=0.94, dim=["chain", "draw"]).values  # (reaction, 2)
    lo, hi = hdi[..., 0], hdi[..., 1]
    covered = (truth >= lo - 1e-9) & (truth <= hi + 1e-9)
    on_bound = (np.abs(truth - lo_b) < 1e-6) | (np.abs(truth - hi_b) < 1e-6)
    ds = tree["posterior"].to_dataset()[["flux"]]
    rhat = arviz_stats.rhat(ds, method="rank")["flux"].values
    bulk = arviz_stats.ess(ds, method="bulk")["flux"].values
    tail = arviz_stats.ess(ds, method="tail")["flux"].values
    varies = moving & (flux.std(("chain", "draw")).values > 1e-9)
    return {
        "width": np.where(moving, hi - lo, np.nan),
        "coverage": float(covered[moving].mean()),
        "misses": int((~covered & moving).sum()),
        "misses_on_bound": int((~covered & moving & on_bound).sum()),
        "mean_width": float((hi - lo)[moving].mean()),
        "max_rhat": float(np.nanmax(rhat[varies])),
        "min_bulk_ess": float(np.nanmin(bulk[varies])),
        "min_tail_ess": float(np.nanmin(tail[varies])),
        "seconds": seconds,
        "setup_seconds": float(tree.attrs.get("setup_seconds", np.nan)),
        "n_reactions": int(moving.sum()),
        "missed": [post.network.reactions[j] for j in np.flatnonzero(~covered & moving)],
    }


def posteriors(
    net, constraints, fluxes, expression: pd.Series, truth, args, method: str | None = None
) -> dict:
    """:func:`measure` of the fluxes-only, expression-only and joint posteriors."""
    observed = FluxObservations(net, fluxes)
    laplace = ExpressionLaplace(net, expression)
    cases = {"fluxes only": [observed], "expression only": [laplace], "joint": [observed, laplace]}
    return {
        name: measure(FluxPosterior(net, terms, constraints=constraints), truth, args, method)
        for name, terms in cases.items()
    }


def versus_legacy(net, constraints, fluxes, genes, truth, args) -> None:
    """The NumPyro layer's ReflectiveHMC beside the legacy reflective HMC, same run: min bulk
    and tail ESS per second (wall time including compilation) and their ratios, per seed; the
    layer's set-up (model tracing, chain starts, compilation) is shown apart (the legacy driver
    does not time it apart: nan). Each sampler first makes one short untimed run."""
    # one short untimed run of each first: the process-wide caches (JAX's compiled primitives of
    # eager code, NumPyro's and ArviZ's imports) then serve both samplers alike, instead of
    # whichever runs first paying for both
    warm = argparse.Namespace(**{**vars(args), "draws": 50})
    for method in ("hmc", "legacy-hmc"):
        measure(FluxPosterior(net, [FluxObservations(net, fluxes)], constraints=constraints),
                truth, warm, method)  # fmt: skip
    print(f"{'posterior':<16}{'seed':>5}{'sampler':>11}{'cover94':>8}{'R-hat':>7}"
          f"{'bulk/s':>8}{'tail/s':>8}{'time s':>8}{'set-up s':>9}")  # fmt: skip
    ratios = []
    for seed in range(args.seed, args.seed + args.seeds):
        args.seed = seed
        new = posteriors(net, constraints, fluxes, genes, truth, args, "hmc")
        old = posteriors(net, constraints, fluxes, genes, truth, args, "legacy-hmc")
        for name in new:
            for label, r in (("numpyro", new[name]), ("legacy", old[name])):
                print(
                    f"{name:<16}{seed:>5}{label:>11}{r['coverage']:>8.3f}{r['max_rhat']:>7.3f}"
                    f"{r['min_bulk_ess'] / r['seconds']:>8.1f}"
                    f"{r['min_tail_ess'] / r['seconds']:>8.1f}{r['seconds']:>8.1f}"
                    f"{r['setup_seconds']:>9.1f}"
                )
            ratios.append(
                [
                    (new[name][k] / new[name]["seconds"]) / (old[name][k] / old[name]["seconds"])
                    for k in ("min_bulk_ess", "min_tail_ess")
                ]
            )
    med = np.median(np.array(ratios), axis=0)
    print(f"ratio numpyro / legacy, median over posteriors and seeds: bulk ESS/s {med[0]:.2f}x, "
          f"tail ESS/s {med[1]:.2f}x")  # fmt: skip


def narrower(results: dict) -> float:
    """Fraction of reactions whose joint HDI is narrower than both single-data HDIs."""
    single = np.fmin(results["fluxes only"]["width"], results["expression only"]["width"])
    joint = results["joint"]["width"]
    ok = np.isfinite(joint)
    return float(np.mean(joint[ok] <= single[ok] + 1e-12))


def replicates(net, constraints, args) -> None:
    """Mean coverage over data sets simulated by ``make_ecoli_core_data.simulate_data``."""
    sys.path.insert(0, str(EXAMPLES))
    from make_ecoli_core_data import SEED, simulate_data

    rows = []
    for r in range(args.replicates):
        truth, fluxes, expression = simulate_data(net, SEED + 1 + r)
        res = posteriors(net, constraints, fluxes, pd.Series(expression), truth, args)
        rows.append(res)
        print(f"replicate {r + 1} (seed {SEED + 1 + r}): " + ", ".join(
            f"{name} {x['coverage']:.3f}" for name, x in res.items()
        ) + f"; joint narrower {narrower(res):.2f}", flush=True)
    print(f"mean over {args.replicates} replicates ({args.chains} chains x {args.draws} draws):")
    print(f"{'posterior':<16}{'cover94':>8}{'sd':>7}{'width':>8}{'maxRhat':>8}{'minESS':>8}")
    for name in rows[0]:
        cov = np.array([x[name]["coverage"] for x in rows])
        print(
            f"{name:<16}{cov.mean():>8.3f}{cov.std(ddof=1) if cov.size > 1 else 0.0:>7.3f}"
            f"{np.mean([x[name]['mean_width'] for x in rows]):>8.3f}"
            f"{max(x[name]['max_rhat'] for x in rows):>8.3f}"
            f"{min(x[name]['min_bulk_ess'] for x in rows):>8.0f}"
        )
    print(f"joint narrower than both: {np.mean([narrower(x) for x in rows]):.2f} of reactions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--method", default="hmc", choices=["hmc", "legacy-hmc", "metropolis", "slice"]
    )
    parser.add_argument("--versus-legacy", action="store_true",
                        help="ReflectiveHMC (NumPyro layer) beside the legacy reflective HMC")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for --versus-legacy")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replicates", type=int, default=0,
                        help="mean coverage over N simulated data sets instead of the example's")
    args = parser.parse_args()
    net, constraints, fluxes, genes, truth = example()
    if args.versus_legacy:
        versus_legacy(net, constraints, fluxes, genes["mean"], truth, args)
        return
    if args.replicates:
        replicates(net, constraints, args)
        return
    results = posteriors(net, constraints, fluxes, genes["mean"], truth, args)
    print(
        f"method {args.method}, {args.chains} chains x {args.draws} draws, seed {args.seed}; "
        f"{results['joint']['n_reactions']} reactions not fixed by the polytope"
    )
    header = (
        f"{'posterior':<16}{'cover94':>8}{'miss':>5}{'@bound':>7}{'width':>8}{'R-hat':>8}"
        f"{'bulkESS':>8}{'tailESS':>8}{'time s':>8}"
    )
    print(header)
    for name, r in results.items():
        print(
            f"{name:<16}{r['coverage']:>8.3f}{r['misses']:>5d}{r['misses_on_bound']:>7d}"
            f"{r['mean_width']:>8.3f}{r['max_rhat']:>8.3f}{r['min_bulk_ess']:>8.0f}"
            f"{r['min_tail_ess']:>8.0f}{r['seconds']:>8.1f}"
        )
    print(f"joint HDI narrower than both single-data HDIs for {narrower(results):.2f} of the "
          f"reactions")
    for name, r in results.items():
        print(f"missed ({name}): {', '.join(r['missed']) or '-'}")


if __name__ == "__main__":
    main()
