"""Starting points of the thermodynamic samplers (FluxSpace.interior, feasible_start, build)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bayesflux.sampling.polytope import chebyshev_center
from bayesflux.thermo.polytope_b import ConcentrationPolytope, check_sign_pattern, flux_signs
from bayesflux.thermo.space import FluxSpace


def _piece_radius(space: FluxSpace, signs: np.ndarray) -> float:
    """Chebyshev radius of ``{A_y y <= b_y, s_j v_j(y) >= 0}`` (0 if empty or flat)."""
    A = np.vstack([space.A_y, -signs[:, None] * space.F])
    b = np.concatenate([space.b_y, signs * space.f0])
    norm = np.linalg.norm(A, axis=1)
    try:
        return chebyshev_center(A / norm[:, None], b / norm)[1]
    except Exception:  # an empty or flat piece
        return 0.0


def test_interior_margin_is_the_largest_feasible_piece_radius(triangle_thermo):
    """With w_j = ||F_j||, the MILP's ρ is the largest Chebyshev radius over the orthant pieces
    whose B is non-empty (enumerated here, 8 patterns, each one LP). HiGHS stops at a 5% relative
    MIP gap, so ρ may fall short of the best radius by at most 5%, never exceed it."""
    space = FluxSpace.build(triangle_thermo)
    best = max(
        _piece_radius(space, np.array(s))
        for s in itertools.product((-1, 1), repeat=3)
        if check_sign_pattern(space.thermo, np.array(s))
    )
    y, rho, stopped = space.interior(seed=None)
    assert not stopped.any() and space.stopped == ()
    assert 0.95 * best - 1e-9 <= rho <= best + 1e-7
    v = space.f0 + space.F @ y
    assert np.all(np.abs(v) >= rho * np.linalg.norm(space.F, axis=1) - 1e-7)
    assert np.all(space.A_y @ y + rho * np.linalg.norm(space.A_y, axis=1) <= space.b_y + 1e-7)


def test_feasible_starts_are_interior_feasible_and_distinct(triangle_thermo):
    space = FluxSpace.build(triangle_thermo)
    B = ConcentrationPolytope(space.thermo)
    starts = np.stack([space.feasible_start(B, seed=s) for s in range(3)])
    v = starts @ space.F.T + space.f0
    assert np.all(np.abs(v) > 1e-3)  # strictly inside an orthant: no flux under the law is 0
    assert np.all(starts @ space.A_y.T < space.b_y - 1e-3)  # strictly inside A
    assert all(check_sign_pattern(space.thermo, s) for s in flux_signs(v))
    assert (
        np.min(np.linalg.norm(starts[:, None] - starts[None], axis=-1)[np.triu_indices(3, 1)]) > 0
    )


@pytest.fixture(scope="module")
def ecoli_space():
    from bayesflux.thermo import ecoli_core

    with pytest.warns(UserWarning, match="can carry flux thermodynamically") as record:
        space = FluxSpace.build(ecoli_core(), bounds={"FRD7": (0.0, 0.0)})
    return space, str(record[0].message)


def test_build_fixes_reactions_that_cannot_run(ecoli_space):
    """On E. coli core (physiological ln c), H2Ot (ΔrG within ±δ, water fixed), FORt2 and
    SUCCt2_2 carry no flux in the TSM (TFVA ranges [0, 0]); THD2 and NADTRHD can each run, but not
    together, so no feasible piece of the sector is full-dimensional: one of them is fixed too, with
    a warning that names it."""
    space, message = ecoli_space
    assert {"H2Ot", "FORt2", "SUCCt2_2"} <= set(space.stopped)
    assert len(space.stopped) == 4 and (set(space.stopped) & {"THD2", "NADTRHD"})
    exclusive = [r for r in space.stopped if r in ("THD2", "NADTRHD")]
    assert f"{exclusive} can carry flux thermodynamically" in message
    fixed = [space.thermo.network.reaction_index[r] for r in space.stopped]
    np.testing.assert_array_equal(space.thermo.network.lb[fixed], 0.0)
    np.testing.assert_array_equal(space.thermo.network.ub[fixed], 0.0)
    _, rho, _ = space.interior(seed=0)
    assert rho > 1e-3  # now some feasible piece is full-dimensional


def test_ecoli_starts_are_strictly_inside_feasible_pieces(ecoli_space):
    space, _ = ecoli_space
    B = ConcentrationPolytope(space.thermo)
    active = np.abs(space.F).max(axis=1) > 1e-12
    for seed in (0, 1):
        y = space.feasible_start(B, seed=seed)
        v = space.f0 + space.F @ y
        assert np.min(np.abs(v[active])) > 1e-4
        assert np.all(space.A_y @ y < space.b_y - 1e-4)
        assert check_sign_pattern(space.thermo, flux_signs(v))


def test_strata_of_ecoli_core(ecoli_space):
    """THD2 and NADTRHD exclude each other: two strata, each stopping one of them, of the same
    dimension (neither has zero volume beside the other), EP-weighted; the stratum that build did
    not pick builds without a warning and has a full-dimensional feasible piece."""
    import warnings

    from bayesflux.thermo import ecoli_core, strata

    space, _ = ecoli_space
    found = strata(ecoli_core(), bounds={"FRD7": (0.0, 0.0)})
    exclusive = [{r for r in s.signs if r in ("THD2", "NADTRHD")} for s in found]
    assert sorted(map(sorted, exclusive)) == [["NADTRHD"], ["THD2"]]
    assert {s.dim for s in found} == {space.dim}
    assert sum(s.weight for s in found) == pytest.approx(1.0)
    assert all(0 < s.weight < 1 for s in found)
    other = next(s for s in found if not set(s.signs) <= set(space.stopped))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alt = FluxSpace.build(ecoli_core(), bounds=other.bounds)
    assert alt.dim == space.dim and set(alt.stopped) <= set(other.signs)
    assert alt.interior(seed=0)[1] > 1e-3
