"""Pipeline steps of ``bayesflux run``: thin adapters from config options to the public functions.

Each step is ``step(network, *, previous, **options)`` registered with
:func:`bayesflux.config.register_step`; ``previous`` maps earlier step names to their results.
Each capability keeps its steps in its own module here.
"""

from bayesflux.steps import (
    expression,  # noqa: F401
    labeling,  # noqa: F401
    optimisation,  # noqa: F401
    posterior,  # noqa: F401
    sampling,  # noqa: F401
    thermo,  # noqa: F401
)
