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
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import xarray as xr

from bayesflux.errors import ConfigError, InfeasibleError
from bayesflux.models import blocks
from bayesflux.models.posterior import JOINT_SITE, Coupling, FluxPosterior, Latent
from bayesflux.sampling.hit_and_run import chord, pick
from bayesflux.sampling.rounding import Rounding, round_polytope
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope, flux_signs
from bayesflux.thermo.space import FluxSpace

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
        sign = flux_signs(vk)
        broken = (sign != 0) & (sign * drg > -t.margin)
        return jnp.where(jnp.any(broken), -jnp.inf, 0.0)

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """NumPyro sites: :func:`~bayesflux.models.blocks.second_law` (``{name}_second_law``)
        and :func:`~bayesflux.models.blocks.metabolome` (``{name}_metabolome``)."""
        lnc = self.lnc(theta)
        blocks.second_law(v, lnc, self.thermo, name=f"{self.name}_second_law")
        if self.measured:
            measured = {
                m: (float(np.exp(c)), float(s))
                for m, c, s in zip(self.measured, self.measured_lnc, self.measured_sd)
            }
            blocks.metabolome(
                lnc,
                measured,
                metabolites=self.thermo.network.metabolites,
                name=f"{self.name}_metabolome",
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


def feasible_chord_move(A, b, f0v, Fv, f0g, Fg, margin: float, log_density):
    """One hit-and-run move on ``{y : A y <= b}`` restricted to the second law's feasible part of
    its chord: ``move(state, key) -> (state, (accepted, feasible fraction of the chord))`` with
    ``state = (y, b - A y, log p(y))``.

    The constrained fluxes ``v = f0v + Fv y`` and their ``ΔrG' = f0g + Fg y`` are affine along
    ``y + λ θ``, so the feasible set of the line is a union of intervals between the points where
    some ``v_j`` crosses 0 or some ``ΔrG'_j`` crosses ``±margin``. The proposal is uniform on
    that union (the same set seen from any of its points, hence symmetric); Metropolis corrects
    for ``log_density`` (the other terms).
    """

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
                jnp.where(gb == 0, hi, (-margin - ga) / safe_g),
                jnp.where(gb == 0, hi, (margin - ga) / safe_g),
            ]
        )
        edges = jnp.sort(jnp.concatenate([jnp.stack([lo, hi]), jnp.clip(cuts, lo, hi)]))
        mid = 0.5 * (edges[1:] + edges[:-1])
        vm = va[None, :] + mid[:, None] * vb[None, :]
        gm = ga[None, :] + mid[:, None] * gb[None, :]
        sign = flux_signs(vm)
        ok = jnp.all((sign == 0) | (sign * gm <= -margin), axis=1)
        lam, _ = pick(jax.random.uniform(k_pos, (1,), dtype=y.dtype), edges[None], ok[None])
        lam = lam[0]
        total = jnp.sum(jnp.diff(edges) * ok)
        y_new = y + lam * theta
        logp_new = log_density(y_new)
        accept = (jnp.log(jax.random.uniform(k_acc, dtype=y.dtype)) < logp_new - logp) & (
            jnp.isfinite(logp_new)
        )
        new = (
            jnp.where(accept, y_new, y),
            jnp.where(accept, slack - lam * a_theta, slack),
            jnp.where(accept, logp_new, logp),
        )
        return new, (accept.astype(y.dtype), total / jnp.maximum(hi - lo, 1e-300))

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
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Sample a posterior with a :class:`Thermodynamics` term by feasible-chord hit-and-run:
    :meth:`FluxPosterior.model` run by :class:`bayesflux.infer.FeasibleChord` under
    :func:`bayesflux.infer.sample`.

    Chains start at :meth:`Thermodynamics.start` (distinct feasible starts per chain) in
    EP-rounded coordinates and make ``thinning`` moves (default: the dimension) per kept draw;
    ``sample_stats`` has ``acceptance_rate`` and ``feasible_chord_fraction``.
    """
    from bayesflux.infer import FeasibleChord
    from bayesflux.infer import sample as infer_sample

    if term not in posterior.terms:
        raise ConfigError("the Thermodynamics term must be one of the posterior's terms")
    rounding = term.start(posterior, seed=seed)
    starts = [rounding.center] + [
        term.start(posterior, seed=seed + c, rounding=rounding).center for c in range(1, num_chains)
    ]
    model = posterior.model()
    site = JOINT_SITE if posterior.latents else "flux"
    thinning = posterior.polytope.dim if thinning is None else int(thinning)
    kernel = FeasibleChord(model, moves=thinning, rounding=rounding, adapt_rounding=False)
    options = posterior.tree_options()
    options["attrs"].update(kernel="feasible-chord hit-and-run", thinning=thinning)
    return infer_sample(
        model,
        kernel=kernel,
        init_params={site: np.stack(starts)},
        num_chains=num_chains,
        num_draws=num_draws,
        num_warmup=max(1, num_draws // 10) if num_warmup is None else int(num_warmup),
        seed=seed,
        checkpoint=checkpoint,
        progress=progress,
        **options,
    )
