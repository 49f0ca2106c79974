"""Fixtures of the thermodynamics tests: a three-reaction loop network with closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux import Network
from bayesflux.thermo import ThermoModel


def triangle_network() -> Network:
    """``A`` taken up, ``B`` and ``C`` secreted; ``R1: A <-> B``, ``R2: B <-> C``, ``R3: A <-> C``.

    ``R1 + R2 - R3`` is the only internal cycle (a loop when run sign-consistently).
    """
    return Network.from_stoichiometry(
        {
            "EX_A": {"A": 1},
            "R1": {"A": -1, "B": 1},
            "R2": {"B": -1, "C": 1},
            "R3": {"A": -1, "C": 1},
            "EX_B": {"B": -1},
            "EX_C": {"C": -1},
        },
        bounds={
            "EX_A": (0, 10),
            "R1": (-10, 10),
            "R2": (-10, 10),
            "R3": (-10, 10),
            "EX_B": (0, 10),
            "EX_C": (0, 10),
        },
        id="triangle",
    )


@pytest.fixture(scope="session")
def triangle() -> Network:
    return triangle_network()


@pytest.fixture(scope="session")
def triangle_thermo(triangle) -> ThermoModel:
    """ΔrG0 consistent with ΔfG0 = (0, -2, -1.5) for (A, B, C); ln c in [ln 1e-3, ln 1e-1]."""
    return ThermoModel.from_data(
        triangle,
        {"R1": -2.0, "R2": 0.5, "R3": -1.5},
        default_lnc_bounds=(float(np.log(1e-3)), float(np.log(1e-1))),
        margin=0.1,
    )
