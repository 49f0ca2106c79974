"""The compiled sign-pattern table and the chord pieces it is looked up with.

References: the per-piece patterns recomputed from scratch at each piece's midpoint (the
definition of a piece's orthant), hashes computed on the host with numpy, and a sampler run whose
table starts full (no stop, no LP in the loop) against one that starts empty.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux.thermo import orthants
from bayesflux.thermo.orthants import argsort_rows, chord_pieces, sample_orthants
from bayesflux.thermo.pattern_table import PatternTable, lookup, pattern_hash
from bayesflux.thermo.polytope_b import ConcentrationPolytope, sign_pattern
from bayesflux.thermo.space import FluxSpace


@pytest.fixture(scope="module")
def space_and_b(triangle_thermo):
    space = FluxSpace.build(triangle_thermo)
    return space, ConcentrationPolytope(space.thermo)


def test_host_and_compiled_hashes_agree_and_differ_between_patterns(space_and_b):
    table = PatternTable(space_and_b[1])
    rng = np.random.default_rng(0)
    signs = np.unique(rng.integers(-1, 2, size=(500, len(table.weights))).astype(np.int8), axis=0)
    host = table.hashes(signs)
    np.testing.assert_array_equal(host, np.asarray(pattern_hash(jnp.asarray(signs), table.weights)))
    assert len(np.unique(host)) == len(signs)


def test_lookup_finds_added_patterns_only(space_and_b):
    space, B = space_and_b
    table = PatternTable(B, sigma=np.full(space.thermo.n_constrained, 2.0))
    all_patterns = np.array(np.meshgrid(*[[-1, 0, 1]] * space.thermo.n_constrained)).T
    all_patterns = all_patterns.reshape(-1, space.thermo.n_constrained).astype(np.int8)
    added = all_patterns[::2]
    assert table.add(added) == len(added) and table.add(added[:3]) == 0
    energy, known = lookup(jnp.asarray(table.hashes(all_patterns)), *table.device)
    energy, known = np.asarray(energy), np.asarray(known)
    np.testing.assert_array_equal(known, np.arange(len(all_patterns)) % 2 == 0)
    want = [table.energy(s) for s in added]  # 0 where B(s) is feasible, else ½ Σ (ε/σ)²
    np.testing.assert_array_equal(energy[::2], want)
    feasible = np.array([B.is_feasible(s) for s in added])
    assert feasible.any() and not feasible.all()
    np.testing.assert_array_equal(energy[::2] == 0.0, feasible)
    assert np.all(np.isnan(energy[1::2]))


def test_integer_argsort_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 71)) * np.exp(rng.normal(size=(50, 71)) * 5)
    x[:, ::7] = 3.0  # ties keep index order, as a stable sort does
    np.testing.assert_array_equal(
        np.asarray(argsort_rows(jnp.asarray(x))), np.argsort(x, axis=1, kind="stable")
    )


def test_piece_patterns_are_the_midpoint_orthants(ecoli_core_space):
    """On E. coli core: every piece of positive length has the sign pattern of its midpoint, and
    the hashes updated crossing by crossing equal the hashes of those patterns."""
    space = ecoli_core_space
    rng = np.random.default_rng(2)
    y = jnp.asarray(space.feasible_starts(6, seed=3))
    geometry = [jnp.asarray(x) for x in (space.A_y, space.b_y, space.f0, space.F)]
    pieces = chord_pieces(jnp.asarray(rng.normal(size=y.shape)), y, *geometry, jnp.eye(space.dim))
    edges = np.asarray(pieces.edges)
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    points = np.asarray(y)[:, None] + mid[..., None] * np.asarray(pieces.theta)[:, None]
    want = sign_pattern(space.to_fluxes(points), space.thermo)
    got = np.asarray(pieces.patterns())
    long = np.diff(edges, axis=1) > 1e-6
    assert long.sum() > 6  # the chords cross sign boundaries
    np.testing.assert_array_equal(got[long], want[long])
    weights = PatternTable(ConcentrationPolytope(space.thermo)).weights
    np.testing.assert_array_equal(
        np.asarray(pieces.hashes(jnp.asarray(weights))),
        np.asarray(pattern_hash(jnp.asarray(got), jnp.asarray(weights))),
    )


@pytest.fixture(scope="module")
def ecoli_core_space():
    from bayesflux.thermo import ecoli_core

    with pytest.warns(UserWarning, match="can carry flux thermodynamically"):
        return FluxSpace.build(ecoli_core(), bounds={"FRD7": (0.0, 0.0)})


@pytest.mark.slow
def test_stops_for_new_patterns_do_not_change_the_chain(triangle_thermo, monkeypatch):
    """A run whose table holds every pattern from the start (it never stops for an LP) gives the
    same draws as one that starts empty and stops at each new pattern."""
    kwargs = dict(num_draws=150, num_warmup=40, num_chains=3, thinning=2, seed=5)
    empty = sample_orthants(triangle_thermo, **kwargs)
    k = triangle_thermo.n_constrained
    every = np.array(np.meshgrid(*[[-1, 0, 1]] * k)).T.reshape(-1, k).astype(np.int8)

    class FullTable(PatternTable):
        def __init__(self, B, sigma=None):
            super().__init__(B, sigma)
            self.add(every)

    monkeypatch.setattr(orthants, "PatternTable", FullTable)
    full = sample_orthants(triangle_thermo, **kwargs)
    assert empty.attrs["lp_solves"] > 0
    np.testing.assert_array_equal(
        full["posterior"]["flux"].values, empty["posterior"]["flux"].values
    )
