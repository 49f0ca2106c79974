"""Against peer tools: influx_si's stored E. coli result (FTBL, real data) and x3cflux.

influx_si ships ``test/e_coli.ftbl`` (E. coli K12 MG1655, LC-MS MIDs of 9 metabolites; GPL,
read from the installed package, not bundled) with its own fit in ``test/ok/mtf/e_coli_res``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux.errors import ModelReadError
from bayesflux.labeling import LabelingProblem, MSMeasurement, read_ftbl
from bayesflux.labeling.fit import random_starts
from bayesflux.labeling.fluxml import write_fluxml

pytest.importorskip("influx_si")
ROOT = importlib.resources.files("influx_si") / "test"


@pytest.fixture(scope="module")
def ecoli():
    return read_ftbl(ROOT / "e_coli.ftbl")


def _influx_solution(problem):
    """influx_si's optimum: net and exchange fluxes (its XCH on the [0, 1) scale)."""
    rows = (ROOT / "ok" / "mtf" / "e_coli_res" / "e_coli.tvar.sim").read_text().splitlines()[1:]
    val = {}
    for line in rows:
        f = line.split("\t")
        val[(f[2], f[3])] = float(f[5])
    net = np.array([val[(r, "NET")] for r in problem.network.reaction_ids])
    x01 = np.array([val[(r, "XCH")] for r in problem.reversible])
    return net, x01 / (1 - x01)


def test_ftbl_reproduces_influx_si_chi_square(ecoli):
    problem = ecoli.problem(xch_max=999.0)  # influx_si: exchange <= 0.999 on its [0, 1) scale
    assert len(problem.network.reactions) == 86
    # influx_si's stat file: 54 measurements, 21 parameters (12 fluxes + 9 MS scales), 33 dof
    assert problem.n_measurements == 54
    assert problem.n_params + problem.n_scale == 21
    net, xch = _influx_solution(problem)
    theta = np.concatenate([problem.space.free_values(net), problem.xch_space.free_values(xch)])
    np.testing.assert_allclose(problem.split(jnp.asarray(theta))[0], net, atol=1e-9)
    ssr = float(jnp.sum(problem.compiled["residuals"](jnp.asarray(theta)) ** 2))
    assert ssr == pytest.approx(61.5142106358407, rel=1e-6)  # e_coli.stat chi2_value


def test_ftbl_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.ftbl"
    bad.write_text(
        "NETWORK\n\tFLUX_NAME\tEDUCT_1\tEDUCT_2\tPRODUCT_1\tPRODUCT_2\n"
        "\tr1\tA\t\tB\n\t\t#AB\t\tABC\n"
    )
    with pytest.raises(ModelReadError, match=r"bad.ftbl:4: reaction 'r1': no atom pattern"):
        read_ftbl(bad)
    with pytest.raises(ModelReadError, match="cannot read"):
        read_ftbl(tmp_path / "missing.ftbl")


def test_mids_equal_x3cflux_on_the_ecoli_model(ecoli, tmp_path):
    """The same E. coli model written as FluxML: x3cflux's EMU MIDs equal ours to 1e-10."""
    x3cflux = pytest.importorskip("x3cflux")  # here, so the tests above run without it
    ms = [
        dataclasses.replace(
            m,
            scale="none",
            masses=None,
            sd=0.01,
            values=[0.0] * (len(m.values) + (m.mass_shifts[0] == 1)),
        )
        for m in ecoli.measurements
        if isinstance(m, MSMeasurement)
    ]
    options = dict(
        fixed=ecoli.fixed,
        equalities=ecoli.equalities,
        fixed_xch=ecoli.fixed_xch,
        xch_equalities=ecoli.xch_equalities,
        xch_max=100.0,
    )
    path = write_fluxml(tmp_path / "ecoli.fml", ecoli.network, ecoli.experiment, ms, **options)
    x3cflux.logging.level = 40
    sim = x3cflux.create_simulator_from_fml(str(path))
    space = sim.parameter_space
    space.constraint_violation_tolerance = 1e-9
    problem = LabelingProblem(ecoli.network, [ecoli.experiment], ms, **options)
    predict = jax.jit(problem.predictions)
    names = {n: i for i, n in enumerate(sim.measurement_names[0])}
    for theta in random_starts(problem, 2, np.random.default_rng(5)):  # random interior points
        net, xch = (np.asarray(a) for a in problem.split(jnp.asarray(theta)))
        d = {f"{r}.n": v for r, v in zip(problem.network.reaction_ids, net, strict=True)}
        d |= {f"{r}.x": v for r, v in zip(problem.reversible, xch, strict=True)}
        free = np.array([d[n] for n in space.free_parameter_names])
        full = dict(
            zip(space.parameter_names, np.asarray(space.compute_parameters(free)), strict=True)
        )
        x_net = np.array([full[f"{r}.n"] for r in problem.network.reaction_ids])
        x_xch = np.array([full[f"{r}.x"] for r in problem.reversible])
        theirs = sim.compute_measurements(free)[0]
        ours = np.asarray(predict(jnp.asarray(x_net), jnp.asarray(x_xch))["ms"])
        for k in range(len(ms)):
            t = np.asarray(theirs[names[f"ms_{k}"]]).ravel()
            np.testing.assert_allclose(ours[k, : t.size], t, atol=1e-10, rtol=0)
