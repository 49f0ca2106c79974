"""The flux space that the thermodynamic samplers move in, and their shared jitted geometry.

A (sector of the) flux polytope A in reduced, EP-rounded coordinates ``y``: ``v = v0 + N (c + L y)``
with half-spaces ``A_y y <= b_y`` (from :mod:`bayesflux.sampling`). The fluxes of the reactions
under the second law are affine in ``y``: ``v_k = f0 + F y``. Hit-and-run chords and the points
where fluxes change sign along them are computed in JAX for all chains at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.sampling.hit_and_run import chord
from bayesflux.sampling.polytope import Polytope, polytope
from bayesflux.sampling.rounding import expectation_propagation
from bayesflux.thermo._milp import TSMMilp, diagnose_infeasible
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope

ZERO_FLUX = 1e-9  # |v| at or below this counts as zero flux (no second-law constraint)


@dataclass(frozen=True, eq=False)
class FluxSpace:
    """Rounded flux polytope of a network (or sector) plus the thermodynamic model on it."""

    thermo: ThermoModel
    poly: Polytope
    center: np.ndarray
    L: np.ndarray
    A_y: np.ndarray
    b_y: np.ndarray
    f0: np.ndarray
    F: np.ndarray

    @classmethod
    def build(
        cls, thermo: ThermoModel, *, bounds: Mapping[str, tuple[float, float]] | None = None
    ) -> FluxSpace:
        """Polytope of ``thermo.network`` with optional sector ``bounds``, rounded by EP."""
        net = thermo.network.with_bounds(dict(bounds)) if bounds else thermo.network
        thermo = thermo.with_network(net)
        poly = polytope(net)
        rounding = expectation_propagation(poly)
        A_y, b_y = rounding.rounded(poly)
        idx = thermo.index
        f0 = poly.v0[idx] + poly.N[idx] @ rounding.center
        F = poly.N[idx] @ rounding.L
        return cls(thermo, poly, rounding.center, rounding.L, A_y, b_y, f0, F)

    @property
    def dim(self) -> int:
        return self.A_y.shape[1]

    def to_fluxes(self, y: np.ndarray) -> np.ndarray:
        """``v = v0 + N (center + L y)`` for ``y (..., d)``."""
        z = self.center + np.asarray(y) @ self.L.T
        return self.poly.to_fluxes(z)

    def from_fluxes(self, v: np.ndarray) -> np.ndarray:
        """Least-squares inverse of :meth:`to_fluxes` (exact for points of the polytope)."""
        z = np.linalg.lstsq(self.poly.N, (np.asarray(v) - self.poly.v0).T, rcond=None)[0].T
        return np.linalg.solve(self.L, (z - self.center).T).T

    def feasible_start(
        self, B: ConcentrationPolytope | None = None, *, seed: int = 0, tries: int = 64
    ) -> np.ndarray:
        """A thermodynamically feasible point ``y``, inside the polytope where possible.

        The TSM MILP with a random objective gives a feasible vertex, where hit-and-run would stall
        (almost every chord through a vertex has length zero). With ``B``, the segment from that
        vertex to the EP centre (then to random interior points) is cut where fluxes change sign
        and the midpoint of its longest feasible piece is returned. Raises
        :class:`~bayesflux.InfeasibleError` (naming the metabolome at fault) if no point exists.
        """
        rng = np.random.default_rng(seed)
        milp = TSMMilp(self.thermo)
        cost = np.zeros(milp.n_col)
        cost[milp.columns.v] = rng.normal(size=self.thermo.network.n_reactions)
        status, _, x = milp.minimize(cost)
        if status != "optimal":
            raise diagnose_infeasible(self.thermo, what="thermodynamic sampling start")
        vertex = self.from_fluxes(x[milp.columns.v])
        if B is None:
            return vertex
        keys = jax.random.split(jax.random.key(seed), 1)
        targets = np.asarray(
            _plain_chain(
                keys, jnp.zeros((1, self.dim)), jnp.asarray(self.A_y), jnp.asarray(self.b_y), tries
            )
        )[0]
        for target in np.vstack([np.zeros((1, self.dim)), targets]):
            v0 = self.f0 + self.F @ vertex
            w = self.F @ (target - vertex)
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = np.where(w != 0, -v0 / w, np.nan)
            inner = np.sort(cross[(cross > 0) & (cross < 1)])
            edges = np.concatenate([[0.0], inner, [1.0]])
            mids = 0.5 * (edges[1:] + edges[:-1])
            ok = np.array([B.is_feasible(flux_signs(v0 + a * w)) for a in mids])
            if ok.any():
                length = np.where(ok, np.diff(edges), 0.0)
                a = mids[int(np.argmax(length))]
                return vertex + a * (target - vertex)
        return vertex

    def violation_scales(
        self, B: ConcentrationPolytope, *, n: int = 2000, seed: int = 0
    ) -> np.ndarray:
        """Seed 002's ``σ_i``: per reaction, the larger magnitude of the 10% / 90% quantiles of the
        minimal violations ``ε_i`` over hit-and-run points of A (1 kJ/mol where that is 0)."""
        keys = jax.random.split(jax.random.key(seed), 1)
        y0 = jnp.zeros((1, self.dim))
        ys = np.asarray(_plain_chain(keys, y0, jnp.asarray(self.A_y), jnp.asarray(self.b_y), n))[0]
        signs = flux_signs(ys @ self.F.T + self.f0)
        uniq = np.unique(signs, axis=0)
        eps = np.stack([B.violation(s).eps for s in uniq])
        q = np.quantile(eps, [0.1, 0.9], axis=0)
        scale = np.max(np.abs(q), axis=0)
        return np.where(scale > 1e-9, scale, 1.0)

    def dataset(self, ys: np.ndarray, *, stats: dict[str, tuple] | None = None) -> xr.DataTree:
        """Draws ``ys (chain, draw, d)`` as a DataTree with ``posterior.flux``."""
        v = self.to_fluxes(ys)
        post = xr.Dataset(
            {"flux": (("chain", "draw", "reaction"), v)},
            coords={
                "chain": np.arange(v.shape[0]),
                "draw": np.arange(v.shape[1]),
                "reaction": list(self.thermo.network.reactions),
            },
        )
        tree = xr.DataTree(name="thermo_samples")
        tree["posterior"] = xr.DataTree(post)
        tree["sample_stats"] = xr.DataTree(xr.Dataset(stats or {}))
        return tree


def flux_signs(v_constrained: np.ndarray) -> np.ndarray:
    """int8 signs of constrained fluxes, zero within :data:`ZERO_FLUX`."""
    v = np.asarray(v_constrained)
    return (np.sign(v) * (np.abs(v) > ZERO_FLUX)).astype(np.int8)


def random_chords(
    key: jax.Array, y: jax.Array, A: jax.Array, b: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For chains ``y (c, d)``: unit directions ``θ (c, d)`` and chord ends ``λmin, λmax (c,)``."""
    theta = jax.random.normal(key, y.shape, dtype=y.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=-1, keepdims=True)
    slack = b - y @ A.T
    lo, hi = jax.vmap(chord)(slack, theta @ A.T)
    return theta, lo, hi


@partial(jax.jit, static_argnums=(4,))
def _plain_chain(keys: jax.Array, y: jax.Array, A: jax.Array, b: jax.Array, n: int) -> jax.Array:
    """``n`` uniform hit-and-run points per chain (no thermodynamics), shape ``(c, n, d)``."""

    def step(y, key):
        k1, k2 = jax.random.split(key)
        theta, lo, hi = random_chords(k1, y, A, b)
        lam = jax.random.uniform(k2, lo.shape, y.dtype, lo, hi)
        y = y + lam[:, None] * theta
        return y, y

    _, ys = jax.lax.scan(step, y, jax.random.split(keys[0], n))
    return jnp.swapaxes(ys, 0, 1)
