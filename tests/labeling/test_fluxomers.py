"""Fluxomer simulator (seed 001) against the EMU simulator: sparse cumomer cascade, MIDs, full
isotopomer state, implicit gradients, and speed on influx_si's 86-reaction E. coli model."""

from __future__ import annotations

import importlib.resources
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux.errors import NetworkError
from bayesflux.labeling import EMUSimulator, FluxomerSimulator, read_ftbl
from bayesflux.labeling.emu import mid_matrix

TARGETS = [("F", (0, 1, 2)), ("E", (0,)), ("D", (1, 2)), ("B", (0,)), ("C", (0, 1))]
NET = jnp.array([100.0, 60, 20, 20, 80, 60, 80])


@pytest.fixture(scope="module")
def sims(toy):
    return EMUSimulator(toy, TARGETS), FluxomerSimulator(toy, TARGETS)


@pytest.fixture(scope="module")
def jitted(sims):
    """Compiled once per module: EMU MIDs, fluxomer MIDs, isotopomers and ``F(x) - x``."""
    emu, flx = sims
    return {
        "emu": jax.jit(emu.simulate),
        "flx": jax.jit(flx.simulate),
        "iso": jax.jit(flx.isotopomers),
        "balance": jax.jit(lambda x, u, x_in: flx.propagate(x, u, x_in) - x),
    }


@pytest.mark.parametrize("xch", [0.0, 50.0, 400.0])
def test_isotopomers_are_the_fluxomer_fixed_point(toy, sims, jitted, toy_experiments, xch):
    """The cascade's isotopomers solve ``x = F(x, u)`` (the fluxomer balances, evaluated by
    enumerating every fluxomer), are distributions, and sum to EMU's MIDs."""
    emu, flx = sims
    u = toy.gross_fluxes(NET, jnp.array([xch]))
    for ex in toy_experiments:
        x_in = jnp.asarray(flx.input_isotopomers(ex))
        x = np.asarray(jitted["iso"](u, x_in))
        assert x.shape == (flx.n_state,)
        np.testing.assert_allclose(jitted["balance"](jnp.asarray(x), u, x_in), 0.0, atol=1e-14)
        assert x.min() > -1e-15
        mids = np.asarray(jitted["emu"](u, emu.input_mids(ex)))
        for i, (m, p) in enumerate(TARGETS):
            n, o = toy.atom_counts[m], flx.offset[m] - 1 - flx.n_input
            np.testing.assert_allclose(x[o : o + 2**n].sum(), 1.0, atol=1e-14)
            np.testing.assert_allclose(
                x[o : o + 2**n] @ mid_matrix(n, p), mids[i, : len(p) + 1], atol=1e-14
            )


def test_gradients_equal_emus_forward_and_reverse(toy, sims, jitted, toy_experiments):
    """Both modes of the fluxomer Jacobian (implicit, through the level solves) equal the
    EMU simulator's implicit Jacobian; the input-isotopomer derivative equals differences."""
    emu, flx = sims
    ex = toy_experiments[0]
    u = toy.gross_fluxes(NET, jnp.array([50.0]))
    x_in = jnp.asarray(flx.input_isotopomers(ex))
    ref = np.asarray(jax.jit(jax.jacfwd(emu.simulate))(u, emu.input_mids(ex)))
    fwd = np.asarray(jax.jit(jax.jacfwd(flx.simulate))(u, x_in))
    rev = np.asarray(jax.jit(jax.jacrev(flx.simulate))(u, x_in))
    np.testing.assert_allclose(fwd, ref, atol=1e-13)
    np.testing.assert_allclose(rev, ref, atol=1e-13)
    d_in = np.asarray(jax.jit(jax.jacfwd(flx.simulate, argnums=1))(u, x_in))
    eps, k = 1e-6, 5
    step = eps * np.eye(x_in.size)[k]
    fd = (jitted["flx"](u, x_in + step) - jitted["flx"](u, x_in - step)) / (2 * eps)
    np.testing.assert_allclose(d_in[..., k], fd, atol=1e-8)


def test_vmap_and_labeling_problem_use(toy, sims, jitted, toy_experiments, toy_problem):
    _, flx = sims
    x_in = jnp.asarray(flx.input_isotopomers(toy_experiments[1]))
    us = jnp.stack([toy.gross_fluxes(NET, jnp.array([x])) for x in (0.0, 5.0, 500.0)])
    batched = jax.jit(jax.vmap(flx.simulate, in_axes=(0, None)))(us, x_in)
    np.testing.assert_allclose(batched[2], jitted["flx"](us[2], x_in), atol=1e-15)
    p_emu = toy_problem(NET, [50.0], 0.004)
    p_flx = toy_problem(NET, [50.0], 0.004, simulator="fluxomer")
    xch = jnp.array([30.0])
    np.testing.assert_allclose(
        p_flx.compiled_residuals(NET, xch), p_emu.compiled_residuals(NET, xch), atol=1e-10
    )


def test_bad_targets_are_named(toy):
    with pytest.raises(NetworkError, match="not traced"):
        FluxomerSimulator(toy, [("Z", (0,))])
    with pytest.raises(NetworkError, match="not distinct positions"):
        FluxomerSimulator(toy, [("B", (0, 3))])


def test_influx_si_ecoli_equals_emu_within_3x_its_time():
    """influx_si's ``e_coli.ftbl`` (86 reactions, 9 312 isotopomer states): the fluxomer MIDs
    equal EMU's to 1e-10 at random feasible fluxes, every level is solved by blocks of at most
    48 unknowns (never a dense 9 312^2 system), and one simulation takes under 3x EMU's time
    (best of interleaved rounds: both see the same machine load)."""
    pytest.importorskip("influx_si")
    from bayesflux.labeling.fit import random_starts

    model = read_ftbl(importlib.resources.files("influx_si") / "test" / "e_coli.ftbl")
    problem = model.problem(xch_max=100.0)
    emu = problem.simulator
    flx = FluxomerSimulator(model.network, emu.targets)
    assert flx.n_state == 9312
    blocks = [w.block_pos.shape[1] for w in flx._cascade.waves]
    assert max(blocks) <= 48 and flx._cascade.n_solved < 600
    x_emu, x_flx = emu.input_mids(model.experiment), flx.input_isotopomers(model.experiment)
    f_emu, f_flx = jax.jit(emu.simulate), jax.jit(flx.simulate)
    for theta in random_starts(problem, 3, np.random.default_rng(5)):
        u = model.network.gross_fluxes(*problem.split(jnp.asarray(theta)))
        np.testing.assert_allclose(f_flx(u, x_flx), f_emu(u, x_emu), atol=1e-10, rtol=0)

    def seconds(f, x, n=30):
        start = time.perf_counter()
        for _ in range(n):
            f(u, x).block_until_ready()
        return (time.perf_counter() - start) / n

    rounds = [(seconds(f_emu, x_emu), seconds(f_flx, x_flx)) for _ in range(15)]
    t_emu, t_flx = (min(t) for t in zip(*rounds, strict=True))
    print(f"e_coli: EMU {t_emu * 1e3:.3f} ms, fluxomer {t_flx * 1e3:.3f} ms per simulation")
    assert t_flx < 3 * t_emu
