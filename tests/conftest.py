"""Shared fixtures: x64 and CPU for JAX, seeded RNGs, bundled networks, the shared data folder."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayesflux import datasets  # noqa: E402


@pytest.fixture(scope="session")
def small():
    return datasets.load("small")


@pytest.fixture(scope="session")
def textbook():
    return datasets.load("textbook")


@pytest.fixture(scope="session")
def textbook_cobra():
    """cobra's E. coli core; copy it (``model.copy()``) before changing it in a test."""
    from importlib import resources

    from cobra.io import read_sbml_model

    return read_sbml_model(str(resources.files("cobra") / "data" / "textbook.xml.gz"))


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data``: skipped where absent (a user's clone), a failure under CI=true."""
    path = datasets.shared_data_dir()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but ../shared/data is missing; the benchmark data must be there")
        pytest.skip("../shared/data not found (set BAYESFLUX_SHARED_DATA); needed for real data")
    return path
