"""bayesflux: Bayesian inference of metabolic fluxes.

The public names are imported on first use (PEP 562 ``__getattr__``), so ``import bayesflux``
(and ``bayesflux --help``) loads neither JAX, cvxpy nor cobra. JAX runs in double precision
whatever imports it first. The package logs to ``logging.getLogger("bayesflux")`` and adds only a
``NullHandler``; the command line sets up the handler.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from bayesflux.errors import (
    BayesfluxError,
    ConfigError,
    InfeasibleError,
    ModelReadError,
    NetworkError,
    SolverError,
    UnboundedError,
)

if TYPE_CHECKING:
    from bayesflux import datasets, methods
    from bayesflux.methods import fba, fva
    from bayesflux.network import Network, as_network, read_json, read_sbml
    from bayesflux.results import read_results, write_netcdf

if "jax" in sys.modules:
    sys.modules["jax"].config.update("jax_enable_x64", True)
else:  # jax reads its default from the environment when first imported
    os.environ["JAX_ENABLE_X64"] = "1"

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: public name -> (module, attribute); attribute ``None`` for the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "datasets": ("bayesflux.datasets", None),
    "methods": ("bayesflux.methods", None),
    "fba": ("bayesflux.methods", "fba"),
    "fva": ("bayesflux.methods", "fva"),
    "Network": ("bayesflux.network", "Network"),
    "as_network": ("bayesflux.network", "as_network"),
    "read_json": ("bayesflux.network", "read_json"),
    "read_sbml": ("bayesflux.network", "read_sbml"),
    "read_results": ("bayesflux.results", "read_results"),
    "write_netcdf": ("bayesflux.results", "write_netcdf"),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it in the module's namespace."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("bayesflux")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            value = "0.0.0+unknown"
    elif name in _LAZY:
        module, attribute = _LAZY[name]
        value = import_module(module)
        if attribute is not None:
            value = getattr(value, attribute)
    else:
        raise AttributeError(f"module 'bayesflux' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
