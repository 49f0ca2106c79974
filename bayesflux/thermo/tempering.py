"""Parallel tempering over thermodynamic relaxation temperatures (seed 002) on a network's
thermodynamically feasible flux space: the NumPyro model ``flux_polytope`` +
:func:`~bayesflux.models.blocks.second_law_signs` run by
:class:`bayesflux.infer.ParallelTempering` (the energy, the ladder and its adaptation are
documented there) under :func:`bayesflux.infer.sample`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.orthants import sample_space
from bayesflux.thermo.pattern_table import PatternTable
from bayesflux.thermo.polytope_b import ConcentrationPolytope
from bayesflux.thermo.space import FluxSpace

__all__ = ["parallel_tempering"]


def parallel_tempering(
    thermo: ThermoModel,
    *,
    num_draws: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 4,
    num_replicas: int = 6,
    moves_per_swap: int = 10,
    min_temperature: float = 1.001,
    max_temperature: float = 3.0,
    target_acceptance: float = 0.25,
    adapt_rate: float = 1.0,
    adapt_decay: float = 100.0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: bool = False,
    space: FluxSpace | None = None,
    B: ConcentrationPolytope | None = None,
    checkpoint: str | Path | None = None,
    block_size: int | None = None,
    chain_method: str | None = None,
) -> xr.DataTree:
    """Samples of the thermodynamically feasible flux space by parallel tempering.

    Parameters
    ----------
    thermo
        Network plus thermodynamic data.
    num_draws, num_warmup
        Swap rounds kept / used for ladder adaptation (each round: ``moves_per_swap`` hit-and-run
        moves of every replica, then one swap sweep). One draw of each exact replica per round.
    num_chains
        Independent ladders, each adapted on its own; their exact replicas are the chains of
        the output (for R-hat and ESS).
    num_replicas
        ``K`` (>= 2) per ladder: the exact replica plus ``K - 1`` relaxed ones.
    moves_per_swap
        Hit-and-run moves of every replica between swap sweeps.
    min_temperature, max_temperature
        Initial ladder: ``T_2 .. T_K`` with geometric gaps ``T_k - 1`` from ``min_temperature - 1``
        to ``max_temperature - 1`` (``β`` from ~500 to 1/8 by default); each adapted gap is capped
        at ``max_temperature - 1``.
    target_acceptance, adapt_rate, adapt_decay
        ``α*``, ``κ`` and ``τ`` of the Robbins-Monro ladder adaptation.
    bounds
        Sector flux bounds.
    seed
        Seeds the starts and every move, acceptance and swap.
    space, B
        Reuse a prepared :class:`FluxSpace` / :class:`ConcentrationPolytope`.
    checkpoint, block_size
        Folder for each block of ``block_size`` draws (:func:`bayesflux.infer.sample`): a rerun
        with the same settings resumes after the last finished block and gives the same draws;
        other settings are refused.
    chain_method
        ``"vectorized"`` or ``"sequential"`` (:func:`bayesflux.infer.sample`).

    Returns
    -------
    xarray.DataTree
        ``posterior.flux (chain, draw, reaction)`` from the exact replicas; ``sample_stats`` per
        draw with ``swap_accept_prob (pair)``, ``move_accept_prob (replica)`` and
        ``temperature (replica)`` (the ladder, frozen after warm-up), and ``violation_scale``.
    """
    from bayesflux.infer import ParallelTempering

    space = space if space is not None else FluxSpace.build(thermo, bounds=bounds)
    B = B if B is not None else ConcentrationPolytope(space.thermo)
    sigma = space.violation_scales(B, seed=seed)

    def kernel(model):
        return ParallelTempering(
            model,
            num_replicas=num_replicas,
            moves_per_swap=moves_per_swap,
            min_temperature=min_temperature,
            max_temperature=max_temperature,
            target_acceptance=target_acceptance,
            adapt_rate=adapt_rate,
            adapt_decay=adapt_decay,
            violation_scale=sigma,
            rounding=space.rounding,
        )

    # every ladder starts at its own point strictly inside a feasible orthant piece (E = 0)
    tree = sample_space(
        space,
        PatternTable(B),
        kernel,
        num_draws=num_draws,
        num_warmup=num_warmup,
        num_chains=num_chains,
        seed=seed,
        checkpoint=checkpoint,
        block_size=block_size,
        chain_method=chain_method,
        progress=progress,
        dims={
            "temperature": ["replica"],
            "move_accept_prob": ["replica"],
            "swap_accept_prob": ["pair"],
        },
        attrs={"replicas": num_replicas, "moves_per_swap": moves_per_swap},
    )
    stats = tree["sample_stats"].to_dataset()
    tree["sample_stats"] = stats.assign(violation_scale=("constrained_reaction", np.asarray(sigma)))
    tree.attrs.update(
        method="parallel_tempering",
        lp_solves=B.lp_solves,
        sign_patterns=len(B.cache),
        seed=seed,
        replicas=num_replicas,
    )
    return tree
