"""One sampler layer: NumPyro ``MCMCKernel`` s for flux models, and their results as DataTrees.

Kernels take a NumPyro model (with :mod:`bayesflux.models.blocks` sites), like NumPyro's
``NUTS``, and run under ``numpyro.infer.MCMC``::

    mcmc = MCMC(ReflectiveHMC(model), num_warmup=1000, num_samples=1000, num_chains=4,
                chain_method="vectorized")
    mcmc.run(jax.random.key(0), extra_fields=EXTRA_FIELDS)
    tree = to_datatree(mcmc)            # az.summary(tree), az.loo(tree), az.plot_forest(tree)

or, with bayesflux's vocabulary, blocks, checkpoints and stored diagnostics::

    tree = sample(model, num_draws=1000, num_chains=4, seed=0, checkpoint="run/")
"""

from bayesflux.infer.convert import EXTRA_FIELDS, build_datatree, diagnostics, to_datatree
from bayesflux.infer.hit_and_run import Billiard, ChordState, HitAndRun, HitAndRunSlice
from bayesflux.infer.reflective_hmc import ReflectiveHMC, ReflectiveHMCState
from bayesflux.infer.run import sample
from bayesflux.infer.sites import init_to_polytope, polytope_sites
from bayesflux.infer.thermodynamic import FeasibleChord, OrthantHitAndRun, ParallelTempering

__all__ = [
    "Billiard",
    "ChordState",
    "HitAndRun",
    "HitAndRunSlice",
    "EXTRA_FIELDS",
    "FeasibleChord",
    "OrthantHitAndRun",
    "ParallelTempering",
    "ReflectiveHMC",
    "ReflectiveHMCState",
    "build_datatree",
    "diagnostics",
    "init_to_polytope",
    "polytope_sites",
    "sample",
    "to_datatree",
]
