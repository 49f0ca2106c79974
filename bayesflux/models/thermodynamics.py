"""The second law and the metabolome as a term of a :class:`~bayesflux.models.FluxPosterior`.

Log concentrations ``ln c`` join the fluxes as latents with their box bounds, so the prior is
uniform on the thermodynamically feasible set of ``(v, ln c)`` (seeds 000 and 002, DESIGN.md)::

    ΔrG = ΔrG0 + R T Sᵀ ln c,    sign(v_j) ΔrG_j <= -δ  for every constrained j with v_j != 0

(the flux marginal is weighted by the volume of the concentration polytope B(sign v)). Measured
concentrations add a lognormal likelihood ``ln c_obs,m ~ N(ln c_m, sd_m²)``. Hit-and-run moves
only to the parts of a chord where the second law holds (:func:`feasible_chord_move`), so all
draws are feasible once the chain starts at a feasible interior point: :meth:`Thermodynamics.starts`
finds them with the posterior's constraints (a growth floor) in the TSM MILP (a strictly signed
orthant piece, :meth:`~bayesflux.thermo.space.FluxSpace.feasible_starts`, and the Chebyshev
centre of its B). :func:`simulate_thermodynamic_data` draws a true state from this prior and
data from the likelihoods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import xarray as xr

from bayesflux.errors import ConfigError, InfeasibleError
from bayesflux.models import blocks
from bayesflux.models.posterior import JOINT_SITE, Coupling, FluxPosterior, Latent
from bayesflux.sampling.hit_and_run import chord, pick
from bayesflux.sampling.rounding import Rounding, covariance_rounding, round_polytope
from bayesflux.thermo.data import ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope, flux_signs
from bayesflux.thermo.space import FluxSpace
from bayesflux.thermo.tfva import tfba

__all__ = [
    "SimulatedThermoData",
    "Thermodynamics",
    "sample_thermodynamic",
    "simulate_thermodynamic_data",
]


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
        ``(v, ln c)`` (:meth:`starts`).

        Pass it as ``posterior.sample(rounding=...)``: chains start at its centre. Give the
        ``rounding`` of a previous call to find more starts without rounding again.
        """
        rounding = rounding if rounding is not None else round_polytope(posterior.polytope, "ep")
        return replace(rounding, center=self.starts(posterior, 1, seed=seed, rounding=rounding)[0])

    def starts(
        self,
        posterior: FluxPosterior,
        num: int,
        *,
        seed: int = 0,
        rounding: Rounding | None = None,
    ) -> np.ndarray:
        """``num`` points ``z (num, d)`` of ``posterior.polytope`` strictly inside it and inside
        the second law's feasible set.

        The polytope's constraints and couplings (a growth floor, other terms' latents) are
        rows of the start's TSM MILP (:meth:`~bayesflux.thermo.space.FluxSpace.feasible_starts`
        on the polytope in ``rounding``'s coordinates, default EP): one MILP per orthant piece
        (at most 8) maximises the piece's margin ``ρ``, and each start lies in the half-radius
        ball of its piece's Chebyshev centre; its ``ln c`` is the Chebyshev centre of
        ``B(sign v)`` (one LP). Raises :class:`~bayesflux.InfeasibleError` naming the cause if
        there is none (:meth:`_no_start`).
        """
        poly = posterior.polytope
        rounding = rounding if rounding is not None else round_polytope(poly, "ep")
        space = self._space_of(posterior, rounding)
        if self._B is None:  # its LP cache serves every start
            self._B = ConcentrationPolytope(self.space.thermo)
        try:
            ys = space.feasible_starts(num, self._B, seed=seed)
        except InfeasibleError as err:
            raise self._no_start(space) from err
        lnc_at = [poly.reactions.index(nm) for nm in self.lnc_names]
        out = np.empty((num, poly.dim))
        for c, y in enumerate(ys):
            x = poly.to_fluxes(rounding.center + rounding.L @ y)
            x[lnc_at] = self._central_lnc(flux_signs(x[self.thermo.index]))[self.free]
            out[c] = np.linalg.lstsq(poly.N, x - poly.v0, rcond=None)[0]
            if not np.all(poly.A @ out[c] < poly.b):
                raise InfeasibleError(
                    "no feasible start strictly inside the posterior's polytope: the Chebyshev "
                    "centre of the start's concentration polytope lies on a latent's bound"
                )
        return out

    def affine_maps(
        self, posterior: FluxPosterior, rounding: Rounding
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(f0v, Fv, f0g, Fg)``: the fluxes under the second law ``v_k = f0v + Fv y`` and their
        ``ΔrG = ΔrG0 + R T Sᵀ ln c = f0g + Fg y`` at ``z = center + L y`` of ``rounding``."""
        poly, t = posterior.polytope, self.thermo
        x0 = poly.v0 + poly.N @ rounding.center
        X = poly.N @ rounding.L
        lnc_at = [poly.reactions.index(nm) for nm in self.lnc_names]
        P = np.zeros((len(self.lnc_fixed), len(poly.reactions)))  # x -> all ln c (free ones)
        P[self.free, lnc_at] = 1.0
        D = t.drg_matrix
        f0g = t.drg0 + D @ (self.lnc_fixed + P @ x0)
        return x0[t.index], X[t.index], f0g, D @ P @ X

    def _space_of(self, posterior: FluxPosterior, rounding: Rounding) -> FluxSpace:
        """The posterior's polytope as a :class:`~bayesflux.thermo.space.FluxSpace`: all its
        rows in ``rounding``'s coordinates ``y``, its flux rows as the fluxes."""
        poly, n = posterior.polytope, posterior.network.n_reactions
        fluxes = replace(
            poly,
            reactions=poly.reactions[:n],
            v0=poly.v0[:n],
            N=poly.N[:n],
            flux_min=poly.flux_min[:n],
            flux_max=poly.flux_max[:n],
        )
        A_y, b_y = rounding.rounded(poly)
        idx = self.thermo.index
        f0 = fluxes.v0[idx] + fluxes.N[idx] @ rounding.center
        F = fluxes.N[idx] @ rounding.L
        return FluxSpace(self.space.thermo, fluxes, rounding.center, rounding.L, A_y, b_y, f0, F)

    def _no_start(self, space: FluxSpace) -> InfeasibleError:
        """Why ``space`` (a posterior's polytope) has no strictly feasible start.

        Thermodynamic FBA on the data alone (with an objective) raises, naming the metabolome,
        if they admit no flux; otherwise the TSM MILP that lets reactions stop either finds the
        reactions that cannot run strictly inside the polytope or shows that its rows (e.g. a
        growth floor) exclude every thermodynamically feasible flux.
        """
        thermo = self.space.thermo
        net = thermo.network
        reach = ""
        if np.any(net.objective):
            best, _ = tfba(thermo)
            reach = f"; the second law allows objective {best:.4g} at most"
        try:
            _, _, stopped = space.interior(seed=None, allow_zero=True)
        except InfeasibleError:
            return InfeasibleError(
                f"no (v, ln c) inside the posterior's polytope of {net.id!r} satisfies the "
                "second law: its flux constraints (e.g. a growth floor) or couplings exclude "
                f"every thermodynamically feasible flux{reach}"
            )
        names = [net.reactions[j] for j in thermo.index[stopped]]
        return InfeasibleError(
            f"reactions {names} cannot carry flux strictly inside the posterior's polytope of "
            f"{net.id!r} together with the others under the second law: fix them at zero "
            "(constraints of the posterior)"
        )

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


#: quantiles of the feasible part of a chord where the log density is fitted by a parabola
_FIT_QUANTILES = (0.25, 0.5, 0.75)


def _truncated_normal(u: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """The ``u``-quantile of ``N(0, 1)`` truncated to ``[lo, hi]``, computed in the lower tail
    (``[-hi, -lo]`` where ``lo > 0``) so that far pieces keep their precision."""
    flip = lo > 0
    a, b = jnp.where(flip, -hi, lo), jnp.where(flip, -lo, hi)
    pa, pb = jax.scipy.special.ndtr(a), jax.scipy.special.ndtr(b)
    x = jnp.clip(jax.scipy.special.ndtri(pa + u * (pb - pa)), a, b)
    return jnp.where(flip, -x, x)


def _log_mass(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """``log(Φ(hi) - Φ(lo))`` for ``lo <= hi``, stable in both tails."""
    flip = lo > 0
    a, b = jnp.where(flip, -hi, lo), jnp.where(flip, -lo, hi)
    la, lb = jax.scipy.special.log_ndtr(a), jax.scipy.special.log_ndtr(b)
    return lb + jnp.log1p(-jnp.exp(jnp.minimum(la - lb, 0.0)))


def feasible_chord_move(A, b, f0v, Fv, f0g, Fg, margin: float, log_density):
    """One hit-and-run move on ``{y : A y <= b}`` restricted to the second law's feasible part of
    its chord: ``move(state, key) -> (state, (accepted, feasible fraction of the chord))`` with
    ``state = (y, b - A y, log p(y))``.

    The constrained fluxes ``v = f0v + Fv y`` and their ``ΔrG' = f0g + Fg y`` are affine along
    ``y + λ θ``, so the feasible set of the line is a union of intervals between the points where
    some ``v_j`` crosses 0 or some ``ΔrG'_j`` crosses ``±margin``. The proposal is an
    independence proposal on that union: ``q(λ) ∝ exp(Q(λ))`` with ``Q`` the parabola through
    ``log_density`` at the 25, 50 and 75% points of the union (by length), a normal truncated to
    the union where ``Q`` is concave, else uniform on it. Both depend on the line only, not on
    the point, so Metropolis-Hastings with ``log p(λ') - Q(λ') - log p(0) + Q(0)`` keeps
    ``log_density`` invariant; where it is a Gaussian in ``y`` (measured fluxes and
    concentrations under the uniform prior) ``Q`` is exact and every move is accepted: a Gibbs
    step along the line (hit-and-run with the exact conditional; Bélisle, Romeijn and Smith
    1993), which follows the density where it, not the polytope, confines ``y``.
    """

    def move(state, key):
        y, slack, logp = state
        k_dir, k_piece, k_pos, k_acc = jax.random.split(key, 4)
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
        total = jnp.sum(jnp.diff(edges) * ok)
        # the parabola Q(λ) = c2 λ² + c1 λ + c0 through three points of the union
        fit, _ = pick(
            jnp.asarray(_FIT_QUANTILES, y.dtype), jnp.tile(edges, (3, 1)), jnp.tile(ok, (3, 1))
        )
        lp = jax.vmap(lambda lam: log_density(y + lam * theta))(fit)
        V = jnp.stack([fit**2, fit, jnp.ones_like(fit)], axis=1)
        c2, c1, c0 = jnp.linalg.solve(V, lp)
        gauss = jnp.all(jnp.isfinite(lp)) & (c2 < 0) & (fit[2] - fit[0] > 0)
        c2 = jnp.where(gauss, c2, -1.0)
        mu, sd = -c1 / (2.0 * c2), jnp.sqrt(-0.5 / c2)
        lo_z, hi_z = (edges[:-1] - mu) / sd, (edges[1:] - mu) / sd
        log_w = jnp.where(ok & (edges[1:] > edges[:-1]), _log_mass(lo_z, hi_z), -jnp.inf)
        gauss = gauss & jnp.isfinite(jax.scipy.special.logsumexp(log_w))
        piece = jax.random.categorical(k_piece, log_w)
        u = jax.random.uniform(k_pos, dtype=y.dtype)
        lam_gauss = mu + sd * _truncated_normal(u, lo_z[piece], hi_z[piece])
        lam_gauss = jnp.clip(lam_gauss, edges[piece], edges[piece + 1])
        lam_flat, _ = pick(u[None], edges[None], ok[None])
        lam = jnp.where(gauss, lam_gauss, lam_flat[0])

        def Q(x):
            return jnp.where(gauss, c2 * x**2 + c1 * x, 0.0)

        y_new = y + lam * theta
        logp_new = log_density(y_new)
        log_ratio = logp_new - Q(lam) - logp + Q(0.0)
        accept = (jnp.log(jax.random.uniform(k_acc, dtype=y.dtype)) < log_ratio) & (
            jnp.isfinite(logp_new)
        )
        new = (
            jnp.where(accept, y_new, y),
            jnp.where(accept, slack - lam * a_theta, slack),
            jnp.where(accept, logp_new, logp),
        )
        return new, (accept.astype(y.dtype), total / jnp.maximum(hi - lo, 1e-300))

    return move


def curvature_rounding(posterior: FluxPosterior, ep: Rounding, z: np.ndarray) -> Rounding:
    """The rounding ``Σ = (C⁻¹ + Nᵀ H N)⁻¹`` centred at ``z``: the polytope's EP covariance
    ``C`` (``ep``) combined with the curvature ``H = -∇² log p(x)`` of the posterior's terms at
    ``x = v0 + N z`` (a Laplace approximation; exact for Gaussian measurements), its negative
    eigenvalues set to zero. Hit-and-run directions then follow the posterior, not the prior,
    where the data confine it."""
    poly = posterior.polytope
    x = jnp.asarray(poly.to_fluxes(z))
    H = poly.N.T @ -np.asarray(jax.hessian(posterior.log_density)(x)) @ poly.N
    w, V = np.linalg.eigh(0.5 * (H + H.T))
    precision = (V * np.maximum(w, 0.0)) @ V.T + np.linalg.inv(ep.cov)
    cov = np.linalg.inv(0.5 * (precision + precision.T))
    return replace(covariance_rounding(poly, 0.5 * (cov + cov.T)), center=np.asarray(z))


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

    Chains start at :meth:`Thermodynamics.starts` (distinct feasible starts per chain, strictly
    inside the polytope with its constraints, e.g. a growth floor) and move in the coordinates
    of :func:`curvature_rounding` at the first start (fixed: NumPyro's windowed adaptation
    learns from too few, too correlated warm-up draws in ~90 dimensions and slowed E. coli core
    down), ``thinning`` moves (default: the dimension) per kept draw; ``sample_stats`` has
    ``acceptance_rate`` and ``feasible_chord_fraction``.
    """
    from bayesflux.infer import FeasibleChord
    from bayesflux.infer import sample as infer_sample

    if term not in posterior.terms:
        raise ConfigError("the Thermodynamics term must be one of the posterior's terms")
    ep = round_polytope(posterior.polytope, "ep")
    starts = term.starts(posterior, num_chains, seed=seed, rounding=ep)
    rounding = curvature_rounding(posterior, ep, starts[0])
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


class SimulatedThermoData(NamedTuple):
    """A simulated experiment: the ``truth`` (``flux`` over ``reaction``, ``lnc`` over
    ``metabolite``), measured ``fluxes`` ``{reaction: (value, sd)}`` and ``metabolome``
    ``{metabolite: (concentration, sd of ln c)}``, ready for
    :class:`~bayesflux.models.FluxObservations` and :class:`Thermodynamics`."""

    truth: xr.Dataset
    fluxes: dict[str, tuple[float, float]]
    metabolome: dict[str, tuple[float, float]]


def simulate_thermodynamic_data(
    posterior: FluxPosterior,
    term: Thermodynamics,
    *,
    flux_sd: Mapping[str, float],
    metabolome_sd: Mapping[str, float],
    seed: int = 0,
    mixing_moves: int | None = None,
) -> SimulatedThermoData:
    """Draw a true ``(v, ln c)`` from the prior and data from the likelihoods at it.

    The prior is uniform on the second law's feasible part of ``posterior.polytope`` (its
    constraints, e.g. a growth floor, included): a :func:`feasible_chord_move` walk of
    ``mixing_moves`` (default ``100 d²``, hit-and-run mixes in ``O(d²)`` moves) from a start of
    :meth:`Thermodynamics.starts`, in EP-rounded coordinates. Measured fluxes
    ``y_j ~ N(v_j, s_j²)`` for ``flux_sd = {reaction: s_j}``; measured concentrations
    ``ln ĉ_m ~ N(ln c_m, s_m²)`` for ``metabolome_sd = {metabolite: s_m}``: the model of
    :class:`~bayesflux.models.FluxObservations` and :class:`Thermodynamics`'s metabolome. The
    truth's ``ln c`` of fixed metabolites are their bounds.
    """
    net = posterior.network
    poly = posterior.polytope
    for r, sd in flux_sd.items():
        if r not in net.reaction_index or not (np.isfinite(sd) and sd > 0):
            raise ConfigError(f"flux_sd of {r!r} needs a reaction of the network and sd > 0")
    for m, sd in metabolome_sd.items():
        if m not in net.metabolite_index or not (np.isfinite(sd) and sd > 0):
            raise ConfigError(f"metabolome_sd of {m!r} needs a metabolite and sd > 0")
    rounding = round_polytope(poly, "ep")
    rounding = replace(rounding, center=term.starts(posterior, 1, seed=seed, rounding=rounding)[0])
    A, b = rounding.rounded(poly)
    maps = [jnp.asarray(a) for a in term.affine_maps(posterior, rounding)]
    move = feasible_chord_move(
        jnp.asarray(A), jnp.asarray(b), *maps, term.thermo.margin, lambda y: jnp.zeros(())
    )
    moves = int(mixing_moves or 100 * poly.dim**2)
    key, k_data = jax.random.split(jax.random.key(int(seed)))
    y0 = jnp.zeros(poly.dim)
    walk = jax.jit(lambda keys: jax.lax.scan(move, (y0, jnp.asarray(b), jnp.zeros(())), keys))
    (y, _, _), _ = walk(jax.random.split(key, moves))
    x = poly.to_fluxes(rounding.center + rounding.L @ np.asarray(y))
    v, theta = posterior.split(x)
    lnc = np.asarray(term.lnc({k: jnp.asarray(a) for k, a in theta.items()}))
    rng = np.random.default_rng(int(np.asarray(jax.random.randint(k_data, (), 0, 2**31 - 1))))
    fluxes = {
        r: (float(v[net.reaction_index[r]] + sd * rng.standard_normal()), float(sd))
        for r, sd in flux_sd.items()
    }
    metabolome = {
        m: (float(np.exp(lnc[net.metabolite_index[m]] + sd * rng.standard_normal())), float(sd))
        for m, sd in metabolome_sd.items()
    }
    truth = xr.Dataset(
        {"flux": ("reaction", np.asarray(v)), "lnc": ("metabolite", lnc)},
        coords={"reaction": list(net.reactions), "metabolite": list(net.metabolites)},
        attrs={"seed": int(seed), "mixing_moves": moves, "network": net.id},
    )
    return SimulatedThermoData(truth, fluxes, metabolome)
