"""bayesflux: Bayesian inference of metabolic fluxes."""

from importlib.metadata import PackageNotFoundError, version

import jax

jax.config.update("jax_enable_x64", True)

from bayesflux import datasets, methods  # noqa: E402
from bayesflux.errors import (  # noqa: E402
    BayesfluxError,
    ConfigError,
    InfeasibleError,
    ModelReadError,
    NetworkError,
    SolverError,
    UnboundedError,
)
from bayesflux.methods import fba, fva  # noqa: E402
from bayesflux.network import Network, as_network, read_json, read_sbml  # noqa: E402
from bayesflux.results import read_results, write_netcdf  # noqa: E402

try:
    __version__ = version("bayesflux")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "BayesfluxError",
    "ConfigError",
    "InfeasibleError",
    "ModelReadError",
    "Network",
    "NetworkError",
    "SolverError",
    "UnboundedError",
    "as_network",
    "datasets",
    "fba",
    "fva",
    "methods",
    "read_json",
    "read_results",
    "read_sbml",
    "write_netcdf",
    "__version__",
]
