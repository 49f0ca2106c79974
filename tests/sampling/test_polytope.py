"""Reduced polytopes: S v = 0 by construction, fixed and redundant rows removed, typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bayesflux.errors import InfeasibleError, NetworkError, UnboundedError
from bayesflux.network import Network
from bayesflux.sampling import LinearConstraint, Polytope, polytope


def test_cube_is_the_unit_cube(make_cube):
    poly = polytope(make_cube(3))
    assert poly.dim == 3
    assert poly.n_constraints == 6  # OUT_i <= 1000 never attained: redundant, dropped
    assert poly.radius == pytest.approx(0.5 * np.sqrt(2), abs=1e-9)  # z moves IN_i and OUT_i
    v = poly.to_fluxes(poly.center)
    np.testing.assert_allclose(v, 0.5, atol=1e-9)


def test_simplex_fixes_the_uptake_and_merges_duplicate_rows(make_simplex):
    net = make_simplex(4)
    poly = polytope(net)
    assert poly.dim == 3  # 9 fluxes, 5 balances, IN fixed at 1 -> 3 free directions
    assert poly.n_constraints == 4  # R_i >= 0 (OUT_i >= 0 is the same half-space)
    np.testing.assert_array_equal(poly.N[net.reaction_index["IN"]], 0.0)
    assert poly.v0[net.reaction_index["IN"]] == 1.0
    # Chebyshev centre of the regular simplex is its barycentre
    v = poly.to_fluxes(poly.center)
    np.testing.assert_allclose(v[net.indices(["R0", "R1", "R2", "R3"])], 0.25, atol=1e-8)


def test_random_points_satisfy_steady_state_and_bounds(textbook, rng):
    poly = polytope(textbook)
    assert poly.dim == 24  # E. coli core: 95 reactions, rank S = 71 less fixed/blocked ones
    S = textbook.S.toarray()
    np.testing.assert_allclose(S @ poly.v0, 0.0, atol=1e-9)
    np.testing.assert_allclose(S @ poly.N, 0.0, atol=1e-12)
    width = poly.flux_max - poly.flux_min
    free = width > 1e-9
    U = poly.N[free] / width[free, None]  # orthonormal in range-scaled fluxes
    np.testing.assert_allclose(U.T @ U, np.eye(poly.dim), atol=1e-10)
    # points inside the Chebyshev ball are feasible fluxes
    u = rng.normal(size=(50, poly.dim))
    z = poly.center + 0.99 * poly.radius * u / np.linalg.norm(u, axis=1, keepdims=True)
    assert poly.contains(z).all()
    v = poly.to_fluxes(z)
    assert np.all(v >= textbook.lb - 1e-9) and np.all(v <= textbook.ub + 1e-9)


def test_extra_constraints_cut_the_polytope(small):
    floor = LinearConstraint({"BIOMASS": 1.0}, 5.0)
    poly = polytope(small, constraints=[floor])
    assert poly.to_fluxes(poly.center)[small.reaction_index["BIOMASS"]] > 5.0
    exact = polytope(small, constraints=[({"BIOMASS": 1.0}, 7.0, 7.0)])
    assert exact.dim == 2
    np.testing.assert_array_equal(exact.N[small.reaction_index["BIOMASS"]], 0.0)
    np.testing.assert_allclose(exact.to_fluxes(exact.center)[small.reaction_index["BIOMASS"]], 7.0)


def test_infeasible_bounds_raise(small):
    with pytest.raises(InfeasibleError, match="empty"):
        polytope(small, bounds={"BIOMASS": (20.0, 1000.0)})


def test_unbounded_reactions_are_named():
    loop = Network.from_stoichiometry(
        {"IN": {"A": 1}, "R1": {"A": -1, "B": 1}, "R2": {"B": -1, "A": 1}, "OUT": {"B": -1}},
        bounds={"IN": (0, 1), "R1": (-np.inf, np.inf), "R2": (0, np.inf)},
    )
    with pytest.raises(UnboundedError, match="R1"):
        polytope(loop)


def test_nan_stoichiometry_and_bad_constraints_raise(small):
    S = small.S.toarray()
    S[0, 2] = np.nan
    with pytest.raises(NetworkError, match="R2"):
        Network(small.reactions, small.metabolites, sp.csr_array(S), small.lb, small.ub)
    with pytest.raises(NetworkError, match="nope"):
        polytope(small, constraints=[LinearConstraint({"nope": 1.0}, 0.0)])
    with pytest.raises(NetworkError, match="non-finite"):
        polytope(small, constraints=[LinearConstraint({"R1": np.nan}, 0.0)])
    with pytest.raises(NetworkError, match="limits"):
        polytope(small, constraints=[LinearConstraint({"R1": 1.0}, 2.0, 1.0)])


def test_flat_polytope_raises(small):
    both = {"R1": 1.0, "R4": 1.0}  # fixes no single flux, so FVA cannot see the implicit equality
    pair = [LinearConstraint(both, 4.0), LinearConstraint(both, upper=4.0)]
    with pytest.raises(InfeasibleError, match="empty interior"):
        polytope(small, constraints=pair)


def test_halfspaces():
    diamond = Polytope.from_halfspaces([[1, 1], [1, -1], [-1, 1], [-1, -1]], [1, 1, 1, 1])
    np.testing.assert_allclose(diamond.center, 0.0, atol=1e-12)
    assert diamond.radius == pytest.approx(1 / np.sqrt(2))
    with pytest.raises(UnboundedError):
        Polytope.from_halfspaces([[1, 0], [0, 1]], [1, 1])
    with pytest.raises(InfeasibleError):
        Polytope.from_halfspaces([[1, 0], [-1, 0], [0, 1], [0, -1]], [1, -2, 1, 1])
    with pytest.raises(NetworkError):
        Polytope.from_halfspaces([[1, np.nan]], [1])


def test_nearest_interior_moves_a_point_just_inside():
    """The unit square: a point overstepping x <= 1 by 1e-6 comes back to x = 1 - margin (the
    nearest such point in L1: y unchanged), an interior point stays, an empty one is an error."""
    from bayesflux.sampling.polytope import nearest_interior

    A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([1.0, 0.0, 1.0, 0.0])
    z = nearest_interior(A, b, np.array([1.0 + 1e-6, 0.5]), margin=1e-7)
    np.testing.assert_allclose(z, [1.0 - 2e-7, 0.5], atol=1e-12)
    inside = np.array([0.3, 0.4])
    np.testing.assert_array_equal(nearest_interior(A, b, inside), inside)
    with pytest.raises(InfeasibleError, match="inside the polytope"):
        nearest_interior(A, np.array([-1.0, 0.0, 1.0, 0.0]), inside)
