"""Optimisation methods: each takes a network (and data) and returns an xarray result."""

from bayesflux.methods.eflux import eflux
from bayesflux.methods.falcon import FalconLP, falcon
from bayesflux.methods.fba import fba
from bayesflux.methods.fva import fva
from bayesflux.methods.gimme import GimmeLP, gimme
from bayesflux.methods.imat import imat

__all__ = ["FalconLP", "GimmeLP", "eflux", "falcon", "fba", "fva", "gimme", "imat"]
