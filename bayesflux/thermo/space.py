"""The flux space that the thermodynamic samplers move in, and their shared jitted geometry.

A (sector of the) flux polytope A in reduced, EP-rounded coordinates ``y``: ``v = v0 + N (c + L y)``
with half-spaces ``A_y y <= b_y`` (from :mod:`bayesflux.sampling`). The fluxes of the reactions
under the second law are affine in ``y``: ``v_k = f0 + F y``. Hit-and-run chords and the points
where fluxes change sign along them are computed in JAX for all chains at once.

Chains start strictly inside a feasible orthant piece: one TSM MILP maximises a common margin
``ρ`` of every active flux from zero and of the point from the facets of A, and the start is drawn
near the Chebyshev centre of that piece (:meth:`FluxSpace.feasible_start`). A vertex of A, as a
plain TSM MILP gives, would stall hit-and-run: every chord through it has length zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import InfeasibleError, SolverError
from bayesflux.sampling.hit_and_run import chord
from bayesflux.sampling.polytope import Polytope, chebyshev_center, polytope
from bayesflux.sampling.rounding import Rounding, expectation_propagation
from bayesflux.thermo._milp import Interior, TSMMilp, diagnose_infeasible
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.loops import Sector
from bayesflux.thermo.polytope_b import (
    ZERO_FLUX,
    ConcentrationPolytope,
    flux_signs,
)


@dataclass(frozen=True, eq=False)
class FluxSpace:
    """Rounded flux polytope of a network (or sector) plus the thermodynamic model on it.

    ``stopped`` names the reactions that :meth:`build` fixed at zero because they cannot carry
    flux in a full-dimensional feasible piece (``thermo.network`` has them at ``(0, 0)``).
    """

    thermo: ThermoModel
    poly: Polytope
    center: np.ndarray
    L: np.ndarray
    A_y: np.ndarray
    b_y: np.ndarray
    f0: np.ndarray
    F: np.ndarray

    stopped: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, thermo: ThermoModel, *, bounds: Mapping[str, tuple[float, float]] | None = None
    ) -> FluxSpace:
        """Polytope of ``thermo.network`` with optional sector ``bounds``, rounded by EP.

        Reactions under the second law that vary on the polytope but cannot carry flux in a
        full-dimensional feasible piece (the fewest that :meth:`interior` with ``allow_zero``
        must stop for the others to run strictly) are fixed at zero and listed in
        :attr:`stopped`: the feasible set lies in their hyperplanes ``v_j = 0``, where
        hit-and-run in the whole polytope sees only zero-length feasible pieces and never moves.
        Most never run (the TSM MILP proves ``max v_j = min v_j = 0``; E. coli core: ``H2Ot``,
        whose ``ΔrG`` cannot leave ``(-δ, δ)`` with water fixed). Reactions that exclude each
        other are different (E. coli core: ``THD2 + NADTRHD`` is ``2 h_e -> 2 h_c``, whose
        ``ΔrG`` is 0 with both proton concentrations fixed, so the two cannot both have
        ``ΔrG <= -δ``; a loop through fixed metabolites, which the loop law of
        :mod:`~bayesflux.thermo.loops` does not see): the feasible set is then
        the union of *strata*, one per reaction left stopped, of the same dimension, so no
        stratum has zero volume beside the others. ``build`` keeps the stratum that the MILP
        picks and warns; :func:`strata` lists them all with volume weights, to be sampled one
        by one and mixed like sectors.
        """
        bounds = dict(bounds or {})
        space = cls._rounded(thermo, bounds)
        names, runs = space._stops()
        if not names:
            return space
        if runs:
            warnings.warn(
                f"network {space.thermo.network.id!r}: {[r for r, _ in runs]} can carry flux "
                f"thermodynamically, but not together with the rest: they are fixed at zero "
                f"(with {[n for n in names if n not in dict(runs)]}, which never run), so the "
                "samplers cover one stratum of the feasible set only; the others have the same "
                "dimension (not volume zero): list them with bayesflux.thermo.strata and sample "
                "each (its .bounds), weighted like sectors",
                stacklevel=2,
            )
        return cls._rounded(thermo, {**bounds, **dict.fromkeys(names, (0.0, 0.0))}, names)

    def _stops(self) -> tuple[tuple[str, ...], list[tuple[str, float]]]:
        """Reactions that must stop for the rest to run strictly (:meth:`interior`), and those
        of them that can run in the TSM all the same, each with a flux it reaches (signed)."""
        _, _, stopped = self.interior(seed=None, allow_zero=True)
        t = self.thermo
        names = tuple(t.network.reactions[j] for j in t.index[stopped])
        milp = TSMMilp(t)
        runs = []
        for j in t.index[stopped]:
            for sign in (1.0, -1.0):
                status, value, _ = milp.minimize(milp.unit_cost(milp.columns.v.start + j, -sign))
                if status != "infeasible" and -value > ZERO_FLUX:
                    runs.append((t.network.reactions[j], -sign * value))
                    break
        return names, runs

    @classmethod
    def _rounded(
        cls, thermo: ThermoModel, bounds: dict[str, tuple[float, float]], stopped=()
    ) -> FluxSpace:
        net = thermo.network.with_bounds(bounds) if bounds else thermo.network
        thermo = thermo.with_network(net)
        poly = polytope(net)
        rounding = expectation_propagation(poly)
        A_y, b_y = rounding.rounded(poly)
        idx = thermo.index
        f0 = poly.v0[idx] + poly.N[idx] @ rounding.center
        F = poly.N[idx] @ rounding.L
        return cls(thermo, poly, rounding.center, rounding.L, A_y, b_y, f0, F, tuple(stopped))

    @property
    def rounding(self) -> Rounding:
        """The EP rounding ``z = center + L y`` of :attr:`poly` that these coordinates use."""
        return Rounding(self.center, self.L, self.center, self.L @ self.L.T, np.nan, "ep")

    @property
    def dim(self) -> int:
        return self.A_y.shape[1]

    def to_fluxes(self, y: np.ndarray) -> np.ndarray:
        """``v = v0 + N (center + L y)`` for ``y (..., d)``."""
        z = self.center + np.asarray(y) @ self.L.T
        return self.poly.to_fluxes(z)

    @cached_property
    def radius(self) -> float:
        """Chebyshev radius of ``A_y y <= b_y`` (bounds the margin ``ρ`` of :meth:`interior`)."""
        norm = np.linalg.norm(self.A_y, axis=1)
        return chebyshev_center(self.A_y / norm[:, None], self.b_y / norm, what="flux polytope")[1]

    def interior(
        self, *, seed: int | None = 0, allow_zero: bool = False, time_limit: float = 60.0
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """A point of a thermodynamically feasible orthant piece with the largest margin ``ρ``.

        One TSM MILP (:class:`~bayesflux.thermo._milp.TSMMilp` with an
        :class:`~bayesflux.thermo._milp.Interior`) in the rounded coordinates ``y``: every *active*
        reaction under the second law (``F_j != 0``; a blocked one has no sign to choose) runs
        strictly, ``±v_j >= ρ w_j``, the polytope rows keep ``A_i y + ρ ||A_i|| <= b_i``, and
        ``ρ`` is maximised. With ``w_j = ||F_j||``, ``ρ`` is the Chebyshev radius of the piece
        (distance to the hyperplanes ``v_j = 0`` and to the facets of A); a ``seed`` scales each
        ``w_j`` by a random factor in ``[0.5, 1.5]``, so different seeds may land in different
        pieces (None: no factor).

        ``allow_zero`` instead fixes ``ρ = 10⁻⁴ ×`` the Chebyshev radius of A, keeps it off the
        rows of A and lets reactions stop (binary ``z_j``): the fewest reactions that must stop
        for the others to run strictly. Returns ``y``, ``ρ`` and the mask (over constrained
        reactions) of those that stopped. Raises :class:`~bayesflux.InfeasibleError` (naming the
        metabolome at fault) if the MILP has no solution.
        """
        t = self.thermo
        norm_F = np.linalg.norm(self.F, axis=1)
        if seed is not None:
            norm_F = norm_F * np.random.default_rng(seed).uniform(0.5, 1.5, size=len(norm_F))
        active = np.abs(self.F).max(axis=1, initial=0.0) > 1e-12
        eps = 1e-4 * self.radius
        interior = Interior(
            t0=self.poly.v0 + self.poly.N @ self.center,
            T=self.poly.N @ self.L,
            A=self.A_y,
            b=self.b_y,
            rho=(eps, eps) if allow_zero else (0.0, self.radius),
            w=norm_F,
            strict=active,
            allow_zero=allow_zero,
            polytope_margin=not allow_zero,
        )
        milp = TSMMilp(t, interior=interior, mip_rel_gap=0.05, time_limit=time_limit)
        status, _, x = milp.minimize(milp.interior_cost(interior))
        if status == "infeasible":
            if allow_zero:
                raise diagnose_infeasible(t, what="thermodynamic sampling start")
            raise InfeasibleError(
                f"no thermodynamically feasible orthant piece of network {t.network.id!r} is "
                "full-dimensional: some reaction cannot carry flux (FluxSpace.build fixes such "
                "reactions at zero)"
            )
        if status != "optimal":
            raise SolverError(
                f"the interior-start MILP of network {t.network.id!r} ended with status {status}; "
                "raise time_limit"
            )
        stopped = np.zeros(len(active), dtype=bool)
        if allow_zero:
            stopped[active] = x[milp.columns.zero][active] > 0.5
        return x[milp.columns.y], float(x[milp.columns.rho][0]), stopped

    def feasible_start(
        self, B: ConcentrationPolytope | None = None, *, seed: int = 0
    ) -> np.ndarray:
        """A thermodynamically feasible point ``y`` strictly inside its orthant piece.

        The sign pattern ``s`` of :meth:`interior` fixes the piece
        ``{A_y y <= b_y, s_j v_j(y) >= 0}``; its Chebyshev centre ``c`` and radius ``r`` (one LP)
        give the start ``c + u``, ``u`` uniform in the ball of radius ``r / 2`` (``seed``), so
        chains start apart and every hit-and-run chord through the start has positive length.
        With ``B``, the pattern is checked again by its own LP. Raises
        :class:`~bayesflux.InfeasibleError` if the TSM is infeasible or no piece has an interior
        (an active reaction that cannot run: :meth:`build` fixes such reactions at zero).
        """
        return self.feasible_starts(1, B, seed=seed)[0]

    def feasible_starts(
        self,
        num: int,
        B: ConcentrationPolytope | None = None,
        *,
        seed: int = 0,
        max_pieces: int = 8,
    ) -> np.ndarray:
        """``num`` starts ``(num, d)`` as in :meth:`feasible_start`, from ``min(num, max_pieces)``
        interior MILPs (seeds ``seed, seed + 1, ...``); chain ``c`` takes piece ``c mod`` that
        number and its own uniform point in the half-radius ball (one MILP per chain would cost
        more than a long warm-up)."""
        rng = np.random.default_rng(seed)
        pieces = [self._start_piece(B, seed + i) for i in range(min(num, max_pieces))]
        out = np.empty((num, self.dim))
        for c in range(num):
            centre, r = pieces[c % len(pieces)]
            u = rng.normal(size=self.dim)
            u *= 0.5 * r * rng.uniform() ** (1.0 / self.dim) / np.linalg.norm(u)
            out[c] = centre + u
        return out

    def _start_piece(self, B: ConcentrationPolytope | None, seed: int) -> tuple[np.ndarray, float]:
        """Chebyshev centre and radius of the orthant piece of :meth:`interior` (``seed``)."""
        y_milp, rho, _ = self.interior(seed=seed)
        if rho <= 1e-7 * self.radius:
            raise InfeasibleError(
                f"no thermodynamically feasible orthant piece of network "
                f"{self.thermo.network.id!r} has an interior (margin {rho:.2g}); build the space "
                "with FluxSpace.build, which fixes reactions that cannot run at zero"
            )
        signs = flux_signs(self.f0 + self.F @ y_milp)
        sided = (np.abs(self.F).max(axis=1, initial=0.0) > 1e-12) & (signs != 0)
        rows = -signs[sided, None] * self.F[sided]  # s_j (f0_j + F_j y) >= 0
        A = np.vstack([self.A_y, rows])
        b = np.concatenate([self.b_y, signs[sided] * self.f0[sided]])
        norm = np.linalg.norm(A, axis=1)
        centre, r = chebyshev_center(
            A / norm[:, None],
            b / norm,
            what=f"orthant piece of the start of {self.thermo.network.id!r}",
        )
        if B is not None and not B.is_feasible(flux_signs(self.f0 + self.F @ centre)):
            raise SolverError(
                f"the interior-start MILP of network {self.thermo.network.id!r} gave a sign "
                "pattern whose concentration polytope B is empty (solver tolerances)"
            )
        return centre, r

    def violation_scales(
        self, B: ConcentrationPolytope, *, n: int = 2000, seed: int = 0
    ) -> np.ndarray:
        """Seed 002's ``σ_i``: per reaction, the larger magnitude of the 10% / 90% quantiles of the
        minimal violations ``ε_i`` over hit-and-run points of A (1 kJ/mol where that is 0)."""
        keys = jax.random.split(jax.random.key(seed), 1)
        y0 = jnp.zeros((1, self.dim))
        ys = np.asarray(plain_chain(keys, y0, jnp.asarray(self.A_y), jnp.asarray(self.b_y), n))[0]
        return B.violation_scales(flux_signs(ys @ self.F.T + self.f0))

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
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset(stats or {})})


def strata(
    thermo: ThermoModel, *, bounds: Mapping[str, tuple[float, float]] | None = None
) -> list[Sector]:
    """The strata of a feasible set whose reactions exclude each other (:meth:`FluxSpace.build`).

    Stratum 0 stops what ``build`` stops; for each reaction ``r`` among them that can run in the
    TSM, another stratum lets ``r`` run (``|v_r| >= 10⁻³`` of the flux it reaches) and stops
    what :meth:`FluxSpace.interior` with ``allow_zero`` then stops. Strata of the largest
    dimension are kept and weighted by their Expectation Propagation volume ``exp(H)`` in
    reduced coordinates (orthonormal null-space basis, so volume in flux space), as
    :func:`~bayesflux.thermo.loops.sectors` weights sectors (seed 002): the uniform measure on
    the union of equal-dimensional strata, up to the EP approximation and to the share of each
    stratum that is feasible (1 on E. coli core). Returned as
    :class:`~bayesflux.thermo.loops.Sector` (``signs``: 0 for each reaction the stratum stops).
    """
    bounds = dict(bounds or {})
    net = thermo.network
    names, runs = FluxSpace._rounded(thermo, bounds)._stops()
    options = [names]
    for r, reach in runs:
        j = net.reaction_index[r]
        run = (1e-3 * reach, float(net.ub[j])) if reach > 0 else (float(net.lb[j]), 1e-3 * reach)
        free = {**bounds, **{n: (0.0, 0.0) for n in names if n != r}, r: run}
        more, _ = FluxSpace._rounded(thermo, free)._stops()
        options.append(tuple(n for n in names if n != r) + more)
    found = []
    for stops in dict.fromkeys(tuple(sorted(o)) for o in options):
        sector_bounds = {**bounds, **dict.fromkeys(stops, (0.0, 0.0))}
        poly = polytope(net, bounds=sector_bounds)
        found.append((stops, sector_bounds, expectation_propagation(poly).log_volume, poly.dim))
    top = max(f[3] for f in found)
    found = [f for f in found if f[3] == top]
    logv = np.array([f[2] for f in found])
    w = np.exp(logv - logv.max())
    w /= w.sum()
    return [
        Sector(dict.fromkeys(stops, 0), b, float(lv), float(wi), d)
        for (stops, b, lv, d), wi in zip(found, w)
    ]


def chords(
    z: jax.Array, y: jax.Array, A: jax.Array, b: jax.Array, D: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For chains ``y (c, d)`` and normals ``z (c, d)``: unit directions ``θ ∝ D z`` and chord
    ends ``λmin, λmax (c,)`` of ``{A y <= b}``.

    Hit-and-run along ``D z`` is hit-and-run in the coordinates ``D⁻¹ y``, so the uniform
    distribution stays stationary for any fixed ``D`` (isotropic if ``D`` is None).
    """
    theta = z if D is None else z @ D.T
    theta = theta / jnp.linalg.norm(theta, axis=-1, keepdims=True)
    slack = b - y @ A.T
    lo, hi = jax.vmap(chord)(slack, theta @ A.T)
    return theta, lo, hi


def plain_chain(keys: jax.Array, y: jax.Array, A: jax.Array, b: jax.Array, n: int) -> jax.Array:
    """``n`` uniform hit-and-run points per chain (no thermodynamics), shape ``(c, n, d)``."""

    def step(y, key):
        k1, k2 = jax.random.split(key)
        theta, lo, hi = chords(jax.random.normal(k1, y.shape, dtype=y.dtype), y, A, b)
        lam = jax.random.uniform(k2, lo.shape, y.dtype, lo, hi)
        y = y + lam[:, None] * theta
        return y, y

    _, ys = jax.lax.scan(step, y, jax.random.split(keys[0], n))
    return jnp.swapaxes(ys, 0, 1)
