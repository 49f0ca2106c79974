"""Optimisation methods: each takes a network (and data) and returns an xarray result."""

from bayesflux.methods.ecmodel import (
    EcModel,
    ec_model,
    ecoli_core_enzyme_table,
    growth_scan,
    read_enzyme_table,
)
from bayesflux.methods.eflux import eflux, eflux_min_scale
from bayesflux.methods.falcon import FalconLP, falcon
from bayesflux.methods.fba import fba
from bayesflux.methods.fva import fva
from bayesflux.methods.gimme import GimmeLP, gimme
from bayesflux.methods.imat import imat
from bayesflux.methods.me_lite import (
    MELiteModel,
    fixed_growth,
    growth_feasible,
    max_growth,
    me_lite,
)

__all__ = [
    "EcModel",
    "FalconLP",
    "GimmeLP",
    "ec_model",
    "ecoli_core_enzyme_table",
    "eflux",
    "eflux_min_scale",
    "falcon",
    "fba",
    "fva",
    "gimme",
    "growth_scan",
    "imat",
    "MELiteModel",
    "fixed_growth",
    "growth_feasible",
    "max_growth",
    "me_lite",
    "read_enzyme_table",
]
