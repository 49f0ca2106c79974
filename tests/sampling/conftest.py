"""Fixtures for the sampling tests: small networks whose flux polytopes have known marginals."""

from __future__ import annotations

import pytest

from bayesflux.network import Network


def cube(d: int = 3) -> Network:
    """``IN_i: -> A_i`` (bounds [0, 1]) and ``OUT_i: A_i ->``: fluxes uniform on [0, 1]^d."""
    stoich, bounds = {}, {}
    for i in range(d):
        stoich[f"IN{i}"] = {f"A{i}": 1.0}
        stoich[f"OUT{i}"] = {f"A{i}": -1.0}
        bounds[f"IN{i}"] = (0.0, 1.0)
    return Network.from_stoichiometry(stoich, bounds=bounds, id="cube")


def simplex(k: int = 3) -> Network:
    """``IN: -> A`` fixed at 1, ``R_i: A -> B_i``, ``OUT_i: B_i ->``: ``R_i ~ Beta(1, k - 1)``."""
    stoich = {"IN": {"A": 1.0}}
    for i in range(k):
        stoich[f"R{i}"] = {"A": -1.0, f"B{i}": 1.0}
        stoich[f"OUT{i}"] = {f"B{i}": -1.0}
    return Network.from_stoichiometry(stoich, bounds={"IN": (1.0, 1.0)}, id="simplex")


@pytest.fixture(scope="session")
def make_cube():
    return cube


@pytest.fixture(scope="session")
def make_simplex():
    return simplex
