"""EMU and fluxomer simulators: agreement, closed forms, implicit gradients, vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux.labeling import EMUSimulator, Experiment, FluxomerSimulator, LabelingNetwork

TARGETS = [("F", (0, 1, 2)), ("E", (0,)), ("D", (1, 2)), ("B", (0,)), ("C", (0, 1))]
NET = jnp.array([100.0, 60, 20, 20, 80, 60, 80])
XCH = jnp.array([50.0])


@pytest.fixture(scope="module")
def sims(toy):
    return EMUSimulator(toy, TARGETS), FluxomerSimulator(toy, TARGETS)


def _run(sim, toy, experiment, net=NET, xch=XCH):
    x = (
        sim.input_mids(experiment)
        if isinstance(sim, EMUSimulator)
        else sim.input_isotopomers(experiment)
    )
    return jax.jit(sim.simulate)(toy.gross_fluxes(net, xch), x)


def test_emu_equals_fluxomers(toy, sims, toy_experiments):
    emu, flx = sims
    for experiment in toy_experiments:
        a, b = _run(emu, toy, experiment), _run(flx, toy, experiment)
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
        widths = np.array([len(p) + 1 for _, p in TARGETS])
        np.testing.assert_allclose(np.asarray(a).sum(axis=1), 1.0, atol=1e-12)
        assert np.all(np.asarray(a)[np.arange(5), widths - 1] >= 0)


def test_closed_form_with_exchange(toy, sims):
    """[1-13C]/[U-13C] A: hand-solved balances give FE(E) = 17/21 and FE(B1) = 27/28.

    B1 = (100 + 50 D1)/150 and D1 = (110 B1 + 20 * 1/2)/130, B3 = 1/2, E = (40 B1 + 20 B3)/60.
    """
    emu, _ = sims
    ex = Experiment.from_dict("e", {"A": {"100": 0.5, "111": 0.5}})
    mids = np.asarray(_run(emu, toy, ex))
    assert mids[1, 1] == pytest.approx(17 / 21, abs=1e-13)
    assert mids[3, 1] == pytest.approx(27 / 28, abs=1e-13)


def test_symmetric_scrambling_closed_form():
    net = LabelingNetwork.from_strings(
        {"in": "A (abcd) -> S (abcd)", "out": "S (abcd) -> P (abcd)", "drain": "P (abcd) -> "},
        symmetric=["S"],
    )
    ex = Experiment.from_dict("e", {"A": {"1000": 1.0}})
    emu = EMUSimulator(net, [("P", (0,)), ("P", (3,)), ("P", (1, 2))])
    flx = FluxomerSimulator(net, emu.targets)
    u = jnp.array([1.0, 1.0, 1.0])
    a = np.asarray(emu.simulate(u, emu.input_mids(ex)))
    np.testing.assert_allclose(a[:2, :2], [[0.5, 0.5], [0.5, 0.5]], atol=1e-14)
    np.testing.assert_allclose(a[2], [1.0, 0.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(flx.simulate(u, flx.input_isotopomers(ex)), a, atol=1e-14)


def test_natural_abundance_and_purity_of_inputs(toy):
    emu = EMUSimulator(toy, [("B", (0, 1, 2))])
    ex = Experiment.from_dict("e", {"A": {"111": (1.0, 0.99)}}, natural=0.0107)
    mid = emu.input_mids(ex)[0]
    np.testing.assert_allclose(mid, [0.01**3, 3 * 0.01**2 * 0.99, 3 * 0.01 * 0.99**2, 0.99**3])


def _fd_check(f, x, eps=1e-6, reverse=True):
    J = np.asarray(jax.jit(jax.jacfwd(f))(x))
    steps = eps * jnp.eye(x.size)
    plus, minus = jax.jit(jax.vmap(f))(x + steps), jax.jit(jax.vmap(f))(x - steps)
    fd = np.moveaxis(np.asarray(plus - minus) / (2 * eps), 0, -1)
    np.testing.assert_allclose(J, fd, atol=1e-7)
    if reverse:
        np.testing.assert_allclose(jax.jit(jax.jacrev(f))(x), J, atol=1e-12)


@pytest.mark.slow
def test_gradients_equal_finite_differences(toy, sims, toy_experiments):
    emu, flx = sims
    ex = toy_experiments[0]
    u0 = toy.gross_fluxes(NET, XCH)
    _fd_check(lambda u: emu.simulate(u, emu.input_mids(ex)), u0)
    _fd_check(lambda u: flx.simulate(u, flx.input_isotopomers(ex)), u0)


def test_vmap_over_flux_vectors(toy, sims, toy_experiments):
    emu, _ = sims
    x = emu.input_mids(toy_experiments[0])
    rng = np.random.default_rng(3)
    z = rng.uniform(5, 30, size=(16, 2))
    nets = np.array([[100, 100 - 2 * a, a, a, 100 - a, 3 * a, 100 - a] for a, _ in z])
    np.testing.assert_allclose(nets @ toy.stoichiometry().S.toarray().T, 0.0, atol=1e-10)
    us = jax.vmap(toy.gross_fluxes)(jnp.asarray(nets), jnp.asarray(z[:, 1:]))
    batched = jax.jit(jax.vmap(emu.simulate, in_axes=(0, None)))(us, x)
    single = np.stack([emu.simulate(u, x) for u in us[:3]])
    np.testing.assert_allclose(batched[:3], single, atol=1e-14)


def test_gauss_jordan_rounds_on_a_sparse_m_matrix():
    """Independent-pivot rounds solve a sparse row-dominant M-matrix like LAPACK does."""
    from bayesflux.labeling.emu import _gauss_jordan, _pivot_slices

    rng = np.random.default_rng(7)
    n = 30
    off = rng.uniform(0.1, 2.0, (n, n)) * (rng.uniform(size=(n, n)) < 0.1)
    off[np.arange(n), np.roll(np.arange(n), 1)] = 1.0  # a cycle: one strongly connected block
    np.fill_diagonal(off, 0.0)
    inflow = np.where(rng.uniform(size=n) < 0.2, 0.5, 0.0)
    inflow[0] = 0.5
    A = np.diag(off.sum(axis=1) + inflow) - off
    B = rng.uniform(size=(n, 3))
    order, rounds = _pivot_slices(A != 0)
    assert sorted(order) == list(range(n))
    assert [a for a, _ in rounds[1:]] == [b for _, b in rounds[:-1]] and rounds[-1][1] == n
    assert len(rounds) <= 2 * n // 3  # fewer fused updates than pivots
    first = order[: rounds[0][1]]  # independent pivots: no entry between them
    assert np.count_nonzero(A[np.ix_(first, first)]) == len(first)
    X = _gauss_jordan(jnp.asarray(A[np.ix_(order, order)]), jnp.asarray(B[order]), rounds)
    np.testing.assert_allclose(X, np.linalg.solve(A, B)[order], rtol=1e-11, atol=1e-13)
