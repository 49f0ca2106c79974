"""Benchmark of the 13C simulators beside x3cflux (13CFLUX) on the same E. coli model.

Model: influx_si's ``test/e_coli.ftbl`` (86 reactions, 9 MS fragments), written as FluxML for
x3cflux by :func:`bayesflux.labeling.fluxml.write_fluxml`. Timed, per flux vector: one
simulation of all measured MIDs, simulation + full Jacobian w.r.t. the free parameters (one
``jax.jacfwd(..., has_aux=True)`` call returning both in bayesflux; ``compute_measurements`` then
``compute_jacobian`` in x3cflux), and 1000 simulations (vmapped in bayesflux, a loop in
x3cflux); and one simulation by the fluxomer (FIA) simulator beside the EMU one. Median seconds
per call over rounds (quartiles beside it), wall clock, CPU only; ratios are of medians.

x3cflux (13CFLUX, PyPI ``x3cflux``) needs ``apt-get install coinor-libipopt-dev liblapack-dev
libblas-dev`` and then ``pip install x3cflux``. FreeFlux pins numpy<1.23 and does not install on
Python 3.12 (checked again 2026-12), so it is not timed. Run:
``python benchmarks/bench_labeling.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayesflux.labeling import (  # noqa: E402
    FluxomerSimulator,
    LabelingProblem,
    MSMeasurement,
    read_ftbl,
)
from bayesflux.labeling.fit import random_starts  # noqa: E402
from bayesflux.labeling.fluxml import write_fluxml  # noqa: E402


def timed(fn, repeat: int = 9, number: int = 20) -> np.ndarray:
    """Mean seconds per call in each of ``repeat`` rounds of ``number`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return np.asarray(times)


def spread(times: np.ndarray) -> str:
    """``median [q25, q75] ms`` of per-round times."""
    q25, q50, q75 = np.quantile(times, [0.25, 0.5, 0.75]) * 1e3
    return f"{q50:.3f} [{q25:.3f}, {q75:.3f}] ms"


def main() -> None:
    model = read_ftbl(importlib.resources.files("influx_si") / "test" / "e_coli.ftbl")
    ms = [
        dataclasses.replace(
            m,
            scale="none",
            masses=None,
            sd=0.01,
            values=[0.0] * (len(m.values) + (m.mass_shifts[0] == 1)),
        )
        for m in model.measurements
        if isinstance(m, MSMeasurement)
    ]
    options = dict(
        fixed=model.fixed,
        equalities=model.equalities,
        fixed_xch=model.fixed_xch,
        xch_equalities=model.xch_equalities,
        xch_max=100.0,
    )
    problem = LabelingProblem(model.network, [model.experiment], ms, **options)
    thetas = random_starts(problem, 1000, np.random.default_rng(0))
    sim = problem.simulator
    print(
        f"model: {len(model.network.reactions)} reactions, {problem.n_params} free parameters, "
        f"{len(ms)} MS fragments, {sim.n_unknown} EMUs in {len(sim.levels)} levels"
    )

    def measure(theta):
        net, xch = problem.split(theta)
        return problem.predictions(net, xch)["ms"]

    one = jax.jit(measure)
    jac = jax.jit(jax.jacfwd(lambda th: (measure(th), measure(th)), has_aux=True))
    many = jax.jit(jax.vmap(measure))
    th = jnp.asarray(thetas[0])
    batch = jnp.asarray(thetas)
    t0 = time.perf_counter()
    one(th).block_until_ready()
    jac(th)[0].block_until_ready()
    many(batch).block_until_ready()
    print(f"bayesflux compile (3 functions): {time.perf_counter() - t0:.1f} s")
    ours = {
        "simulation": timed(lambda: one(th).block_until_ready()),
        "simulation + Jacobian": timed(lambda: jac(th)[0].block_until_ready()),
        "1000 simulations": timed(lambda: many(batch).block_until_ready(), repeat=5, number=2),
    }
    # the fluxomer (FIA, seed 001) simulator beside the EMU one: same MIDs, time per simulation
    fia = FluxomerSimulator(model.network, sim.targets)
    x_emu, x_fia = problem.inputs[0], fia.input_isotopomers(model.experiment)
    u = model.network.gross_fluxes(*problem.split(th))
    f_emu, f_fia = jax.jit(sim.simulate), jax.jit(fia.simulate)
    diff = float(jnp.abs(f_fia(u, x_fia) - f_emu(u, x_emu)).max())
    t_emu, t_fia = [], []
    for _ in range(15):  # interleaved rounds, so load changes hit both alike
        t_emu.append(timed(lambda: f_emu(u, x_emu).block_until_ready(), repeat=1)[0])
        t_fia.append(timed(lambda: f_fia(u, x_fia).block_until_ready(), repeat=1)[0])
    t_emu, t_fia = np.asarray(t_emu), np.asarray(t_fia)
    print(
        f"FIA vs EMU, one simulation: {spread(t_fia)} vs {spread(t_emu)} "
        f"({np.median(t_fia) / np.median(t_emu):.2f}x of medians), max |MID FIA - EMU| {diff:.1e}"
    )
    print(f"{'':24s}{'bayesflux':>30s}{'x3cflux':>30s}{'ratio x3c/ours':>16s}")
    try:
        import x3cflux
    except ImportError as exc:
        for k, v in ours.items():
            print(f"{k:24s}{spread(v):>30s}{'-':>30s}")
        print(f"x3cflux not installed ({exc}); pip install x3cflux (needs coinor-libipopt-dev)")
        return
    x3cflux.logging.level = 40
    with tempfile.TemporaryDirectory() as tmp:
        path = write_fluxml(Path(tmp) / "ecoli.fml", model.network, model.experiment, ms, **options)
        xsim = x3cflux.create_simulator_from_fml(str(path))
    space = xsim.parameter_space
    space.constraint_violation_tolerance = 1e-9
    frees = []
    for theta in thetas:
        net, xch = (np.asarray(a) for a in problem.split(jnp.asarray(theta)))
        d = {f"{r}.n": v for r, v in zip(problem.network.reaction_ids, net, strict=True)}
        d |= {f"{r}.x": v for r, v in zip(problem.reversible, xch, strict=True)}
        frees.append(np.array([d[n] for n in space.free_parameter_names]))
    names = {n: i for i, n in enumerate(xsim.measurement_names[0])}
    theirs = xsim.compute_measurements(frees[0])[0]
    mine = np.asarray(one(th))
    diff = max(
        np.abs(
            mine[k, : np.asarray(theirs[names[f"ms_{k}"]]).size]
            - np.asarray(theirs[names[f"ms_{k}"]]).ravel()
        ).max()
        for k in range(len(ms))
    )
    print(f"max |MID bayesflux - x3cflux| at the first flux vector: {diff:.2e}")
    x3 = {
        "simulation": timed(lambda: xsim.compute_measurements(frees[0])),
        "simulation + Jacobian": timed(
            lambda: (xsim.compute_measurements(frees[0]), xsim.compute_jacobian(frees[0]))
        ),
        "1000 simulations": timed(
            lambda: [xsim.compute_measurements(f) for f in frees], repeat=5, number=1
        ),
    }
    for k in ours:
        ratio = np.median(x3[k]) / np.median(ours[k])
        print(f"{k:24s}{spread(ours[k]):>30s}{spread(x3[k]):>30s}{ratio:15.2f}x")


if __name__ == "__main__":
    main()
