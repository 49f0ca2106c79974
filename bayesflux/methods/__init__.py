"""Optimisation methods: each takes a network (and data) and returns an xarray result."""

from bayesflux.methods.fba import fba
from bayesflux.methods.fva import fva

__all__ = ["fba", "fva"]
