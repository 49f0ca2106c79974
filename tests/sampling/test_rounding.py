"""Rounding: EP moments and volume proxy, the maximum-volume inscribed ellipsoid, closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.sampling import (
    Polytope,
    expectation_propagation,
    max_volume_ellipsoid,
    round_polytope,
)

BOX = Polytope.from_halfspaces([[1, 0], [-1, 0], [0, 1], [0, -1]], [2.0, 0.0, 0.5, 0.0])
TRIANGLE = Polytope.from_halfspaces([[-1, 0], [0, -1], [1, 1]], [0.0, 0.0, 1.0])


def test_ep_is_exact_on_a_box():
    # independent factors: EP's fixed point matches each uniform marginal, var = w^2 / 12
    ep = expectation_propagation(BOX, tol=1e-10)
    assert ep.converged
    np.testing.assert_allclose(ep.mean, [1.0, 0.25], rtol=1e-6)
    np.testing.assert_allclose(ep.cov, np.diag([4.0 / 12, 0.25 / 12]), rtol=1e-6, atol=1e-10)
    # entropy of N(mu, C): log(w1 w2) + log(2 pi e / 12) per dimension -> volume proxy
    assert ep.log_volume == pytest.approx(np.log(1.0) + np.log(2 * np.pi * np.e / 12), rel=1e-6)
    np.testing.assert_allclose(ep.L @ ep.L.T, ep.cov, atol=1e-12)


def test_ep_approximates_the_triangle_moments():
    # uniform on the triangle: mean (1/3, 1/3), var 1/18, cov -1/36. EP is an approximation:
    # measured, the mean is exact to 1e-6, the variances 19% too large, the correlation exact.
    ep = expectation_propagation(TRIANGLE)
    assert ep.converged
    np.testing.assert_allclose(ep.mean, [1 / 3, 1 / 3], rtol=1e-4)
    truth = np.array([[1 / 18, -1 / 36], [-1 / 36, 1 / 18]])
    np.testing.assert_allclose(ep.cov, truth, rtol=0.25)
    corr = ep.cov[0, 1] / np.sqrt(ep.cov[0, 0] * ep.cov[1, 1])
    assert corr == pytest.approx(-0.5, abs=1e-3)


def test_max_volume_ellipsoid_closed_forms():
    box = max_volume_ellipsoid(BOX)
    np.testing.assert_allclose(box.center, [1.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(box.L, np.diag([1.0, 0.25]), atol=1e-6)
    # Steiner inellipse: centred at the centroid, area pi / (3 sqrt 3) x triangle area
    tri = max_volume_ellipsoid(TRIANGLE)
    np.testing.assert_allclose(tri.center, [1 / 3, 1 / 3], atol=1e-4)  # interior-point accuracy
    assert np.exp(tri.log_volume) == pytest.approx(np.pi / (3 * np.sqrt(3)) * 0.5, rel=1e-4)


def test_rounded_polytope_keeps_the_centre_inside():
    for method in ("ep", "mve", "none"):
        r = round_polytope(TRIANGLE, method)
        A, b = r.rounded(TRIANGLE)
        assert np.all(b > 0)  # y = 0 is strictly interior
        np.testing.assert_allclose(r.to_reduced(np.zeros(2)), r.center)


def test_bad_options():
    with pytest.raises(ConfigError, match="rounding"):
        round_polytope(BOX, "qr")
    with pytest.raises(ConfigError, match="damping"):
        expectation_propagation(BOX, damping=1.0)


def test_ep_sweep_marginals_match_the_direct_formula():
    """The sweep's marginals of t = C z from one Cholesky factor and one triangular solve equal
    ``diag(C Q^-1 C^T)`` and ``C Q^-1 C^T nu`` computed directly, ``Q = C^T diag(tau) C``."""
    from bayesflux.sampling.rounding import _ep_sweep

    rng = np.random.default_rng(0)
    C = rng.normal(size=(12, 5))
    tau, nu = rng.uniform(0.5, 2.0, 12), rng.normal(size=12)
    lower, upper = np.full(12, -1.0), np.full(12, 1.0)
    _, _, m, s2 = _ep_sweep(tau, nu, C, lower, upper, 0.5)
    Qinv = np.linalg.inv(C.T @ np.diag(tau) @ C)
    np.testing.assert_allclose(s2, np.diag(C @ Qinv @ C.T), rtol=1e-12)
    np.testing.assert_allclose(m, C @ Qinv @ C.T @ nu, rtol=1e-10, atol=1e-12)
