"""Small atom-mapped networks shared by the labelling tests."""

from __future__ import annotations

import pytest

from bayesflux.labeling import Experiment, LabelingNetwork

#: the EMU paper's example network (Antoniewicz et al. 2007), with an outflow of F
TOY = {
    "v1": "A (abc) -> B (abc)",
    "v2": "B (abc) <-> D (abc)",
    "v3": "B (abc) -> C (bc) + E (a)",
    "v4": "B (abc) + C (de) -> D (bcd) + E (a) + E (e)",
    "v5": "D (abc) -> F (abc)",
    "v6": "E (a) -> ",
    "v7": "F (abc) -> ",
}


@pytest.fixture(scope="session")
def toy() -> LabelingNetwork:
    return LabelingNetwork.from_strings(TOY, bounds={"v2": (-500.0, 500.0)})


@pytest.fixture(scope="session")
def toy_experiments() -> list[Experiment]:
    return [
        Experiment.from_dict("mix", {"A": {"100": 0.25, "010": 0.25, "111": (0.5, 0.99)}}),
        Experiment.from_dict("c2", {"A": {"010": 1.0}}, natural=0.0107),
    ]
