"""Shared fixtures: x64 and CPU for JAX, seeded RNGs, bundled networks, the shared data folder,
small atom-mapped networks for the labelling tests, a three-reaction loop with thermodynamics."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayesflux import Network, datasets  # noqa: E402
from bayesflux.labeling import (  # noqa: E402
    EnrichmentMeasurement,
    Experiment,
    FluxMeasurement,
    LabelingNetwork,
    LabelingProblem,
    MSMeasurement,
)
from bayesflux.thermo import ThermoModel  # noqa: E402


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
def arviz_reads():
    """``check(tree)``: ``az.summary``, ``az.rhat``, ``az.ess``, ``az.hdi`` and ``az.plot_forest``
    (matplotlib's Agg backend) read ``tree`` exactly as bayesflux returns it, no group picked
    and nothing renamed; returns ``az.summary(tree)`` (one row per flux and latent)."""
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def check(tree):
        post = tree["posterior"]
        rows = sum(
            int(np.prod([post.sizes[d] for d in v.dims if d not in ("chain", "draw")]))
            for v in post.data_vars.values()
        )
        summary = az.summary(tree)
        assert len(summary) == rows, (len(summary), rows)
        for fn in (az.rhat, az.ess):
            out = fn(tree)
            assert set(out.data_vars) == set(post.data_vars)
            assert "chain" not in out["flux"].dims and "draw" not in out["flux"].dims
        hdi = az.hdi(tree)
        assert hdi["flux"].sizes["ci_bound"] == 2
        az.plot_forest(tree)
        plt.close("all")
        return summary

    return check


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data``: skipped where absent (a user's clone), a failure under CI=true."""
    path = datasets.shared_data_dir()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but ../shared/data is missing; the benchmark data must be there")
        pytest.skip("../shared/data not found (set BAYESFLUX_SHARED_DATA); needed for real data")
    return path


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


def _toy_measurements(values, sd: float, formulas: bool) -> list:
    """MS fragments of F, E, D (TBDMS formulas optional), an NMR enrichment of B, flux of v6."""
    specs = [
        ("mix", "F", "1-3", "C5H10O2Si", 4),
        ("mix", "E", "1", None, 2),
        ("c2", "F", "1-3", "C5H10O2Si", 4),
        ("c2", "D", "2,3", None, 3),
    ]
    out = [
        MSMeasurement(
            e, m, a, values[k] if values else [0.25] * n, sd, formula=f if formulas else None
        )
        for k, (e, m, a, f, n) in enumerate(specs)
    ]
    out.append(EnrichmentMeasurement("mix", "B", 2, values[4][0] if values else 0.5, 0.01))
    out.append(FluxMeasurement("v6", 60.0, 1.0))
    return out


@pytest.fixture(scope="session")
def toy_problem(toy, toy_experiments):
    """``make(net, xch, sd, *, formulas=True, **options)``: a LabelingProblem on the toy network
    (v1 fixed at 100) whose 15 measurements are simulated at ``(net, xch)`` plus seeded noise."""

    def make(net, xch, sd: float, *, formulas: bool = True, **options) -> LabelingProblem:
        placeholder = LabelingProblem(
            toy, toy_experiments, _toy_measurements(None, sd, formulas), fixed={"v1": 100.0}
        )
        p = jax.jit(placeholder.predictions)(jnp.asarray(net), jnp.asarray(xch))
        rng = np.random.default_rng(11)
        values = [
            list(np.asarray(p["ms"][k, :n]) + rng.normal(0, sd, n))
            for k, n in enumerate([4, 2, 4, 3])
        ]
        values.append([float(p["fe"][0]) + rng.normal(0, 0.01)])
        measurements = _toy_measurements(values, sd, formulas)
        return LabelingProblem(toy, toy_experiments, measurements, fixed={"v1": 100.0}, **options)

    return make
