"""The second law and the metabolome as a term of a :class:`~bayesflux.models.FluxPosterior`.

Log concentrations ``ln c`` join the fluxes as latents with their box bounds, so the prior is
uniform on the thermodynamically feasible set of ``(v, ln c)`` (seeds 000 and 002, DESIGN.md)::

    ΔrG = ΔrG0 + R T Sᵀ ln c,    sign(v_j) ΔrG_j <= -δ  for every constrained j with v_j != 0

(the flux marginal is weighted by the volume of the concentration polytope B(sign v)). Measured
concentrations add a lognormal likelihood ``ln c_obs,m ~ N(ln c_m, sd_m²)``. Hit-and-run Metropolis
rejects every proposal that breaks the second law, so all draws are feasible once the chain starts
at a feasible interior point: :meth:`Thermodynamics.start` finds one (a strictly signed orthant
piece of the flux polytope, :meth:`~bayesflux.thermo.space.FluxSpace.feasible_start`, and the
Chebyshev centre of its B).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import scipy.optimize
import xarray as xr

from bayesflux.errors import ConfigError, InfeasibleError
from bayesflux.models.posterior import Coupling, FluxPosterior, Latent
from bayesflux.sampling.hit_and_run import chord
from bayesflux.sampling.rounding import Rounding, round_polytope
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope
from bayesflux.thermo.space import ZERO_FLUX, FluxSpace, flux_signs

__all__ = ["Thermodynamics", "sample_thermodynamic"]


class Thermodynamics:
    """Second-law feasibility of ``(v, ln c)`` and, optionally, measured concentrations.

    Parameters
    ----------
    thermo
        Thermodynamic data on the posterior's network (same reaction and metabolite ids).
    metabolome
        ``{metabolite: (concentration, sd of ln c)}`` in the units of the ``ln c`` bounds (M).
    """

    def __init__(
        self,
        thermo: ThermoModel,
        *,
        metabolome: Mapping[str, tuple[float, float]] | None = None,
        name: str = "thermo",
    ) -> None:
        self.thermo = thermo
        self.name = name
        net = thermo.network
        free = thermo.lnc_ub > thermo.lnc_lb
        self.free = np.flatnonzero(free)
        self.lnc_fixed = np.where(free, 0.0, thermo.lnc_lb)
        self.lnc_names = tuple(f"{name}_lnc[{net.metabolites[i]}]" for i in self.free)
        self.latents = tuple(
            Latent(nm, float(thermo.lnc_lb[i]), float(thermo.lnc_ub[i]))
            for nm, i in zip(self.lnc_names, self.free)
        )
        # a reaction the second law stops in every feasible point must be fixed at zero, or the
        # feasible set is flat in it and no hit-and-run move could leave a point of it
        self.space = FluxSpace.build(thermo)
        self._B: ConcentrationPolytope | None = None
        self.couplings = tuple(Coupling({r: 1.0}, lower=0.0, upper=0.0) for r in self.space.stopped)
        index = {m: i for i, m in enumerate(net.metabolites)}
        self.measured = tuple(metabolome or {})
        unknown = [m for m in self.measured if m not in index]
        if unknown:
            raise ConfigError(f"metabolome names unknown metabolite(s) {unknown[:8]}")
        self.measured_index = np.array([index[m] for m in self.measured], dtype=int)
        self.measured_lnc = np.array([np.log(float(metabolome[m][0])) for m in self.measured])
        self.measured_sd = np.array([float(metabolome[m][1]) for m in self.measured])
        if np.any(~np.isfinite(self.measured_lnc)) or np.any(~(self.measured_sd > 0)):
            raise ConfigError("metabolome entries need concentration > 0 and sd > 0")

    def lnc(self, theta: Mapping[str, jax.Array]) -> jax.Array:
        """All metabolites' ``ln c`` (fixed ones from their bounds)."""
        values = jnp.asarray(self.lnc_fixed)
        if self.free.size:
            values = values.at[self.free].set(jnp.stack([theta[nm] for nm in self.lnc_names]))
        return values

    def second_law(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        """``0`` where every flux runs down its ``ΔrG`` (beyond the margin), else ``-inf``."""
        t = self.thermo
        drg = t.drg0 + t.drg_matrix @ self.lnc(theta)
        vk = v[t.index]
        broken = (jnp.abs(vk) > ZERO_FLUX) & (jnp.sign(vk) * drg > -t.margin)
        return jnp.where(jnp.any(broken), -jnp.inf, 0.0)

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """NumPyro sites: the second law as a factor, the metabolome ``ln c_i ~ N(ln ĉ_i, sd_i²)``
        as an observed site ``{name}_metabolome`` over ``measured_metabolite``."""
        numpyro.factor(f"{self.name}_second_law", self.second_law(v, theta))
        if self.measured:
            dim = "measured_metabolite"
            with numpyro.plate(dim, len(self.measured)):
                numpyro.sample(
                    f"{self.name}_metabolome",
                    dist.Normal(self.lnc(theta)[self.measured_index], self.measured_sd),
                    obs=self.measured_lnc,
                    infer={"coords": {dim: list(self.measured)}},
                )

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        lnc = self.lnc(theta)
        out = self.second_law(v, theta)
        if self.measured:
            r = (lnc[self.measured_index] - self.measured_lnc) / self.measured_sd
            out = out - 0.5 * jnp.sum(r**2) - np.sum(np.log(self.measured_sd))
            out = out - 0.5 * r.size * np.log(2 * np.pi)
        return out

    def start(
        self, posterior: FluxPosterior, *, seed: int = 0, rounding: Rounding | None = None
    ) -> Rounding:
        """``rounding`` (default: EP of ``posterior.polytope``) centred at a feasible interior
        ``(v, ln c)``.

        Pass it as ``posterior.sample(rounding=...)``: chains start at its centre. Give the
        ``rounding`` of a previous call to find more starts without rounding again.
        """
        poly = posterior.polytope
        if self._B is None:  # its LP cache serves every start
            self._B = ConcentrationPolytope(self.space.thermo)
        y = self.space.feasible_start(self._B, seed=seed)
        v = self.space.to_fluxes(y)
        lnc = self._central_lnc(flux_signs(v[self.thermo.index]))
        x = np.zeros(len(poly.reactions))
        x[: posterior.network.n_reactions] = v
        for nm, i in zip(self.lnc_names, self.free):
            x[poly.reactions.index(nm)] = lnc[i]
        others = [
            k
            for k, r in enumerate(poly.reactions)
            if k >= posterior.network.n_reactions and r not in self.lnc_names
        ]
        for k in others:  # other terms' latents: their box centres
            x[k] = 0.5 * (poly.flux_min[k] + poly.flux_max[k])
        z = np.linalg.lstsq(poly.N, x - poly.v0, rcond=None)[0]
        if not np.all(poly.A @ z < poly.b):
            raise InfeasibleError(
                "no feasible start strictly inside the posterior's polytope: the other terms' "
                "couplings exclude the thermodynamically feasible start found"
            )
        return replace(rounding if rounding is not None else round_polytope(poly, "ep"), center=z)

    def _central_lnc(self, signs: np.ndarray) -> np.ndarray:
        """Chebyshev centre of B(signs) in ``ln c`` (one LP)."""
        t = self.thermo
        A = t.drg_matrix
        on = signs != 0
        rows = signs[on, None] * A[on]  # s_j (ΔrG0_j + A_j ln c) <= -δ
        rhs = -t.margin - signs[on] * t.drg0[on]
        m = A.shape[1]
        eye = np.eye(m)
        G = np.vstack([rows, eye, -eye])
        h = np.concatenate([rhs, t.lnc_ub, -t.lnc_lb])
        norms = np.linalg.norm(G, axis=1)
        fixed = t.lnc_ub <= t.lnc_lb  # their box rows have zero width: no radius from them
        norms[len(rhs) :] *= np.concatenate([~fixed, ~fixed])
        res = scipy.optimize.linprog(
            np.concatenate([np.zeros(m), [-1.0]]),
            A_ub=np.column_stack([G, norms]),
            b_ub=h,
            bounds=[(None, None)] * m + [(0, None)],
            method="highs",
        )
        if res.status != 0:
            raise InfeasibleError("the start's sign pattern has an empty concentration polytope")
        return res.x[:m]


def _feasible_chord_kernel(A, b, offset, M, v_rows, lnc_map, thermo: ThermoModel, log_density):
    """One move of hit-and-run restricted to the thermodynamically feasible part of the chord.

    Along ``y + λ θ`` the constrained fluxes ``v(λ)`` and ``ΔrG(λ)`` are affine, so the feasible
    set of the line is a union of intervals between the points where some ``v_j`` crosses 0 or
    some ``ΔrG_j`` crosses ``±δ``. The proposal is uniform on that union (the same set seen from
    any of its points, hence symmetric); Metropolis corrects for the other terms' likelihoods.
    """
    Fv, f0v = M[v_rows], offset[v_rows]  # v_k = f0v + Fv y
    lnc_off, lnc_M = lnc_map  # ln c = lnc_off + lnc_M y
    Fg = thermo.drg_matrix @ lnc_M
    f0g = thermo.drg0 + thermo.drg_matrix @ lnc_off
    delta = thermo.margin

    def move(state, key):
        y, slack, logp = state
        k_dir, k_pos, k_acc = jax.random.split(key, 3)
        theta = jax.random.normal(k_dir, y.shape, dtype=y.dtype)
        theta = theta / jnp.linalg.norm(theta)
        a_theta = A @ theta
        lo, hi = chord(slack, a_theta)
        va, vb = f0v + Fv @ y, Fv @ theta
        ga, gb = f0g + Fg @ y, Fg @ theta
        safe_v = jnp.where(vb == 0, 1.0, vb)
        safe_g = jnp.where(gb == 0, 1.0, gb)
        cuts = jnp.concatenate(
            [
                jnp.where(vb == 0, hi, -va / safe_v),
                jnp.where(gb == 0, hi, (-delta - ga) / safe_g),
                jnp.where(gb == 0, hi, (delta - ga) / safe_g),
            ]
        )
        edges = jnp.sort(jnp.concatenate([jnp.array([lo, hi]), jnp.clip(cuts, lo, hi)]))
        mid = 0.5 * (edges[1:] + edges[:-1])
        vm = va[None, :] + mid[:, None] * vb[None, :]
        gm = ga[None, :] + mid[:, None] * gb[None, :]
        ok = jnp.all((jnp.abs(vm) <= ZERO_FLUX) | (jnp.sign(vm) * gm <= -delta), axis=1)
        length = jnp.diff(edges) * ok
        cum = jnp.cumsum(length)
        u = jax.random.uniform(k_pos, dtype=y.dtype) * cum[-1]
        piece = jnp.minimum(jnp.sum(cum <= u), length.size - 1)
        lam = edges[piece] + (u - (cum[piece] - length[piece]))
        lam = jnp.where(cum[-1] > 0, lam, 0.0)
        y_new = y + lam * theta
        logp_new = log_density(offset + M @ y_new)
        accept = (jnp.log(jax.random.uniform(k_acc, dtype=y.dtype)) < logp_new - logp) & (
            jnp.isfinite(logp_new)
        )
        new = (
            jnp.where(accept, y_new, y),
            jnp.where(accept, slack - lam * a_theta, slack),
            jnp.where(accept, logp_new, logp),
        )
        return new, (accept.astype(y.dtype), cum[-1] / jnp.maximum(hi - lo, 1e-300))

    return move


def sample_thermodynamic(
    posterior: FluxPosterior,
    term: Thermodynamics,
    *,
    num_chains: int = 4,
    num_draws: int = 1000,
    num_warmup: int | None = None,
    thinning: int | None = None,
    seed: int = 0,
) -> xr.DataTree:
    """Sample a posterior with a :class:`Thermodynamics` term by feasible-chord hit-and-run.

    Chains start at :meth:`Thermodynamics.start` (distinct starts per chain) in EP-rounded
    coordinates, make ``thinning`` moves (default: the dimension) per kept draw and are vmapped;
    the result is :meth:`FluxPosterior.to_datatree` with ``sample_stats`` ``acceptance_rate`` and
    ``feasible_chord_fraction``.
    """
    if term not in posterior.terms:
        raise ConfigError("the Thermodynamics term must be one of the posterior's terms")
    poly = posterior.polytope
    rounding = term.start(posterior, seed=seed)
    starts = [rounding] + [
        term.start(posterior, seed=seed + c, rounding=rounding) for c in range(1, num_chains)
    ]
    A, b = rounding.rounded(poly)
    offset = poly.v0 + poly.N @ rounding.center
    M = poly.N @ rounding.L
    names = list(poly.reactions)
    v_rows = np.asarray(term.thermo.index)
    lnc_off = np.asarray(term.lnc_fixed, dtype=float).copy()
    lnc_M = np.zeros((lnc_off.size, poly.dim))
    for nm, i in zip(term.lnc_names, term.free):
        k = names.index(nm)
        lnc_off[i] = offset[k]
        lnc_M[i] = M[k]
    move = _feasible_chord_kernel(
        jnp.asarray(A),
        jnp.asarray(b),
        jnp.asarray(offset),
        jnp.asarray(M),
        v_rows,
        (jnp.asarray(lnc_off), jnp.asarray(lnc_M)),
        term.thermo,
        posterior.log_density,
    )
    y0 = np.stack([np.linalg.solve(rounding.L, s.center - rounding.center) for s in starts])
    thinning = poly.dim if thinning is None else int(thinning)
    num_warmup = max(1, num_draws // 10) if num_warmup is None else int(num_warmup)
    total = num_warmup + num_draws

    @jax.jit
    def run(keys, y):
        def draw(state, key):
            state, (acc, frac) = jax.lax.scan(move, state, jax.random.split(key, thinning))
            return state, (state[0], acc.mean(), frac.mean())

        def one_chain(key, y):
            state = (y, jnp.asarray(b) - jnp.asarray(A) @ y, posterior.log_density(offset + M @ y))
            return jax.lax.scan(draw, state, jax.random.split(key, total))[1]

        return jax.vmap(one_chain)(keys, y)

    keys = jax.random.split(jax.random.key(seed), num_chains)
    ys, acc, frac = (np.asarray(a)[:, num_warmup:] for a in run(keys, jnp.asarray(y0)))
    x = offset + ys @ M.T
    coords = {"chain": np.arange(num_chains), "draw": np.arange(num_draws)}
    stats = xr.Dataset(
        {
            "acceptance_rate": (("chain", "draw"), acc),
            "feasible_chord_fraction": (("chain", "draw"), frac),
        },
        coords=coords,
    )
    return posterior.to_datatree(
        x,
        stats,
        attrs={"kernel": "feasible-chord hit-and-run", "thinning": thinning, "seed": int(seed)},
    )
