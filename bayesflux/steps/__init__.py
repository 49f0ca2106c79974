"""Pipeline steps of ``bayesflux run``: thin adapters from config options to the public functions.

Each step is ``step(network, *, previous, **options)`` registered with
:func:`bayesflux.pipeline.register_step`; ``previous`` maps earlier step names to their results.
Each capability keeps its steps in its own module here.
"""

from bayesflux.steps import labeling  # noqa: F401
from bayesflux.steps import optimisation  # noqa: F401
from bayesflux.steps import sampling  # noqa: F401
