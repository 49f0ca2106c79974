"""Fixtures of the sampler-layer tests."""

from __future__ import annotations

import pytest

from bayesflux import Network
from bayesflux.sampling import polytope


@pytest.fixture(scope="module")
def fork_polytope():
    """Uptake ``u = -EX_A`` in [0, 10] split over R1, R2: the triangle ``0 <= R1 <= u <= 10``."""
    net = Network.from_stoichiometry(
        {"EX_A": {"A": -1}, "R1": {"A": -1, "B": 1}, "R2": {"A": -1, "B": 1}, "EX_B": {"B": -1}},
        bounds={"EX_A": (-10.0, 0.0)},
        id="fork",
    )
    return net, polytope(net)
