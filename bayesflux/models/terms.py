"""Likelihood terms of a :class:`~bayesflux.models.FluxPosterior` (DESIGN.md, "Bayesian view").

* :class:`FluxObservations` — measured (exchange) fluxes, ``y_j ~ N(v_j, sd_j²)``.
* :class:`ExpressionLaplace` — FALCON as a likelihood: the abundance of each reaction group ``R_i``
  is ``e_i ~ Laplace(k Σ_{j∈R_i} |v_j|, σ_i)``, the scale ``k`` integrated out or latent. Up to
  a constant its negative log-likelihood is ``Σ_i |Σ_{R_i}|v_j| - n e_i| / (n σ_i)`` with
  ``n = 1/k``, FALCON's objective (seed 003), so its maximum is FALCON's optimum; sampling gives
  the uncertainty that FALCON's single optimum hides.
* :class:`ExpressionCapacity` — E-Flux as a prior: ``|v_j| <= α e_j`` with the capacity ``α``
  latent (linear in ``(v, α)``, so the support stays a polytope).
* :class:`Labeling13C` — the 13C MID likelihood of a :class:`~bayesflux.labeling.LabelingProblem`
  at the net fluxes ``v`` and latent exchange fluxes, which obey the flux-force lower bound
  ``v_xch >= |v_net| / (exp(|ΔrG|/RT) - 1)`` (seed 002) as linear couplings. Their prior is
  stated on influx_si's ``[0, 1)`` scale ``f = v_xch / (1 + v_xch)`` (:class:`ExchangeLatent`,
  :func:`exchange_latent`; default uniform in ``f``), the scale :func:`bayesflux.labeling.fit`
  optimises on: the data often leave an exchange flux undetermined above ~10, where a uniform
  prior in ``v_xch`` on ``[0, 999]`` would put 99% of its mass (``f > 0.9``).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError, InfeasibleError, NetworkError, SolverError
from bayesflux.expression.abundance import abundance_vector, enzyme_abundance, group_abundance
from bayesflux.labeling.measurements import LabelingProblem
from bayesflux.models import blocks
from bayesflux.models.posterior import Coupling, Latent
from bayesflux.network import Network, as_network, steady_state_violation
from bayesflux.sampling.polytope import LinearConstraint, Polytope

__all__ = [
    "XCH_PRIORS",
    "ExchangeLatent",
    "ExpressionCapacity",
    "ExpressionLaplace",
    "FluxObservations",
    "Labeling13C",
    "exchange_latent",
]

log = logging.getLogger(__name__)

_BLOCKED = 1e-9  # a reaction whose FVA range lies within ±this carries no flux

#: Exchange-flux priors of :class:`Labeling13C` (``xch_prior``): uniform in ``f = x / (1 + x)``
#: (the default), uniform in ``x`` (absolute units, the prior before issue 18) and
#: ``Beta(a, b)`` in ``f``, e.g. ``"beta(2, 2)"``; all truncated to the latent's box.
XCH_PRIORS = ("uniform-fraction", "uniform-absolute", "beta(a, b)")
_BETA = re.compile(r"beta\(\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)")


class FluxObservations:
    """Gaussian likelihood of measured fluxes: ``y_j ~ N(v_j, sd_j²)``.

    Parameters
    ----------
    network
        The network whose fluxes are observed.
    measured
        ``{reaction: (value, sd)}`` with ``sd > 0``.
    """

    latents: tuple[Latent, ...] = ()
    couplings: tuple[Coupling, ...] = ()

    def __init__(
        self, network, measured: Mapping[str, tuple[float, float]], *, name: str = "fluxes"
    ) -> None:
        network = as_network(network)
        if not measured:
            raise ConfigError("FluxObservations needs at least one measured flux")
        self.name = name
        self.reactions = tuple(measured)
        self.index = network.indices(self.reactions)
        values = np.array([float(measured[r][0]) for r in self.reactions])
        sd = np.array([float(measured[r][1]) for r in self.reactions])
        bad = [r for r, y, s in zip(self.reactions, values, sd) if not (np.isfinite(y) and s > 0)]
        if bad:
            raise ConfigError(f"measured flux of {bad} needs a finite value and sd > 0")
        self.values, self.sd = values, sd
        self.network_reactions = tuple(network.reactions)

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """NumPyro sites: :func:`~bayesflux.models.blocks.measured_fluxes`."""
        measured = dict(zip(self.reactions, zip(self.values, self.sd, strict=True), strict=True))
        blocks.measured_fluxes(v, measured, network=self.network_reactions, name=self.name)

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        r = (v[self.index] - self.values) / self.sd
        return -0.5 * jnp.sum(r**2) - np.sum(np.log(self.sd)) - 0.5 * r.size * np.log(2 * np.pi)


def _abundance(network: Network, expression, std, abundance, gpr_method) -> xr.Dataset:
    if abundance is None:
        if expression is None:
            raise ConfigError("give expression data or a precomputed abundance")
        abundance = enzyme_abundance(network, expression, std, method=gpr_method)
    return abundance


class ExpressionLaplace:
    """FALCON's least-absolute-deviation fit as a Laplace likelihood of the enzyme abundances.

    ``e_i ~ Laplace(k g_i(v), σ_i)``, ``g_i(v) = Σ_{j∈R_i} |v_j|`` over the reaction groups of
    :func:`~bayesflux.expression.enzyme_abundance` (reactions with one GPR rule share ``e_i``),
    ``k`` the abundance per unit flux (FALCON's ``1/n``) with a uniform prior on ``scale_bounds``;
    ``σ_i`` is the abundance's standard deviation floored at the smallest positive one (1 where
    none is given), as in :func:`~bayesflux.methods.falcon`. Then
    ``-log L = Σ_i |g_i(v) - n e_i| / (n σ_i) + const``: FALCON's objective.

    With ``marginalize=True`` (default) ``k`` is integrated out exactly: ``Σ_i |k g_i - e_i| / σ_i``
    is piecewise linear in ``k`` with breakpoints ``e_i / g_i``, so
    ``∫ exp(-Σ_i |k g_i - e_i| / σ_i) dk`` is a sum of exponential integrals over the segments.
    The chains then move in the fluxes alone (no ridge ``(v, k) -> (c v, k / c)`` to crawl along).

    Parameters
    ----------
    network
        Network with GPR rules.
    expression, std
        Gene expression means and standard deviations, or ``abundance``: a precomputed
        single-sample :func:`~bayesflux.expression.enzyme_abundance`.
    scale_bounds
        Support of ``k``. Default: ``Σ_i e_i / Σ_j max|v_j|`` (over enzymatic reactions, from the
        flux bounds) times ``[1e-1, 1e4]``.
    marginalize
        Integrate ``k`` out (default) or keep it as the latent ``{name}_k``.
    dispersion
        ``(lower, upper)``: the abundances' scales are ``φ σ_i`` with the dispersion ``φ`` a
        latent ``{name}_dispersion`` with a log-uniform prior on that range. FALCON takes the
        ``σ_i`` as given; on real data its optimum's residuals are several ``σ_i`` (Yeast 5.21,
        Lee 2012: mean ``|r_i| / σ_i`` 7.3 at the global mode), a misfit that a fixed ``σ``
        turns into intervals far too narrow. Default none (``φ = 1``).
    relative_error
        ``(lower, upper)``: the scales become ``sqrt(φ² σ_i² + ρ² e_i²)`` with ``ρ`` a latent
        ``{name}_relative_error`` (log-uniform on that range): an error floor proportional to
        the abundance, for what replicate ``σ_i`` cannot see (enzymes differ in ``kcat`` and
        saturation; on Lee 2012 a tenth of the genes have ``σ_i / e_i < 3.5 %`` and carry
        residuals of tens of ``σ_i`` at the mode). Default none (``ρ = 0``: FALCON's scales).
    abundance_units
        The fluxes are in abundance units, ``w = k v`` (as
        :func:`~bayesflux.models.expression_posterior` samples them by default):
        ``e_i ~ Laplace(g_i(w), s_i)`` with no scale to integrate out or sample (``marginalize``
        and ``scale_bounds`` are then unused).
    polytope
        The flux polytope the term will see: groups none of whose reactions can carry flux in it
        (FVA range ``[0, 0]``) are left out, their likelihood being a constant (and a constant
        pointwise log-likelihood, which PSIS-LOO cannot smooth).
    """

    def __init__(
        self,
        network,
        expression=None,
        std=None,
        *,
        abundance: xr.Dataset | None = None,
        gpr_method: str = "min_disjunction",
        scale_bounds: tuple[float, float] | None = None,
        marginalize: bool = True,
        dispersion: tuple[float, float] | None = None,
        relative_error: tuple[float, float] | None = None,
        abundance_units: bool = False,
        polytope: Polytope | None = None,
        name: str = "expression",
    ) -> None:
        network = as_network(network)
        ds = _abundance(network, expression, std, abundance, gpr_method)
        e, s, members = group_abundance(ds)
        if polytope is not None:
            if tuple(polytope.reactions[: network.n_reactions]) != tuple(network.reactions):
                raise ConfigError("the polytope's reactions are not the network's")
            n = network.n_reactions
            movable = np.maximum(np.abs(polytope.flux_min[:n]), np.abs(polytope.flux_max[:n]))
            live = (members & (movable > _BLOCKED)).any(axis=1)
            if not live.all():
                log.info("%s: %d gene group(s) cannot carry flux; left out", name, (~live).sum())
            e, s, members = e[live], s[live], members[live]
        if e.size == 0:
            raise NetworkError(f"no reaction of {network.id!r} has a measured gene")
        positive = s[s > 0]
        self.sigma = np.maximum(s, positive.min()) if positive.size else np.ones_like(e)
        self.abundance = e
        self.members = members.astype(float)  # groups x reactions
        self._member_of = np.nonzero(members)  # (group, reaction) pairs: a sparse sum per group
        self.name = name
        self.scale_name = f"{name}_k"
        if scale_bounds is None:
            vmax = np.maximum(np.abs(network.lb), np.abs(network.ub))
            total = float(np.sum(np.where(np.isfinite(vmax), vmax, 0.0) * members.any(axis=0)))
            ref = float(e.sum()) / total if total > 0 else 1.0
            scale_bounds = (1e-1 * ref, 1e4 * ref)
        self.scale_bounds = (float(scale_bounds[0]), float(scale_bounds[1]))
        if not 0 < self.scale_bounds[0] < self.scale_bounds[1] < np.inf:
            raise ConfigError(f"scale_bounds must satisfy 0 < lower < upper, got {scale_bounds}")
        self.abundance_units = bool(abundance_units)
        self.marginalize = bool(marginalize) and not self.abundance_units
        scaled = self.marginalize or self.abundance_units
        self.latents = () if scaled else (Latent(self.scale_name, *self.scale_bounds),)
        self.dispersion_name = f"{name}_dispersion"
        self.dispersion = None if dispersion is None else tuple(map(float, dispersion))
        if self.dispersion is not None:
            self.latents += (Latent(self.dispersion_name, *self.dispersion, prior="log-uniform"),)
        self.relative_error_name = f"{name}_relative_error"
        self.relative_error = None if relative_error is None else tuple(map(float, relative_error))
        if self.relative_error is not None:
            self.latents += (
                Latent(self.relative_error_name, *self.relative_error, prior="log-uniform"),
            )
        self.couplings: tuple[Coupling, ...] = ()

    def group_flux(self, v: jax.Array) -> jax.Array:
        """``g_i(v) = Σ_{j∈R_i} |v_j|`` per group."""
        groups, reactions = self._member_of
        flux = jnp.abs(v)[..., reactions]
        return jnp.zeros(flux.shape[:-1] + (self.sigma.size,), flux.dtype).at[..., groups].add(flux)

    def noise(self, dispersion=1.0, relative_error=0.0) -> jax.Array:
        """The Laplace scales ``sqrt(φ² σ_i² + ρ² e_i²)`` (``φ = 1, ρ = 0``: the ``σ_i``)."""
        replicate = jnp.expand_dims(jnp.asarray(dispersion), -1) * self.sigma
        if isinstance(relative_error, float) and relative_error == 0.0:
            return replicate
        rho = jnp.expand_dims(jnp.asarray(relative_error), -1)
        return jnp.sqrt(replicate**2 + (rho * self.abundance) ** 2)

    def noise_of(self, theta: Mapping[str, jax.Array]) -> jax.Array:
        """:meth:`noise` at the latents ``theta`` (``φ``, ``ρ`` where the term has them)."""
        phi = 1.0 if self.dispersion is None else theta[self.dispersion_name]
        rho = 0.0 if self.relative_error is None else theta[self.relative_error_name]
        return self.noise(phi, rho)

    @staticmethod
    def log_normaliser(noise: jax.Array) -> jax.Array:
        """``-Σ_i log(2 s_i)``: the Laplace densities' constant for scales ``s`` (:meth:`noise`)."""
        return -jnp.sum(jnp.log(2.0 * noise), axis=-1)

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """NumPyro sites: :func:`~bayesflux.models.blocks.expression_falcon` (one observation
        per group with the latent scale, one of all groups with the scale integrated out)."""
        scale = None if self.marginalize else self.scale_of(theta)
        blocks.expression_falcon(v, self, scale=scale, noise=self.noise_of(theta), name=self.name)

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        g = self.group_flux(v)
        s = self.noise_of(theta)
        if not self.marginalize:
            k = self.scale_of(theta)
            return -jnp.sum(jnp.abs(k * g - self.abundance) / s) + self.log_normaliser(s)
        return self.log_marginal(g, sigma=s) + self.log_normaliser(s)

    def scale_of(self, theta: Mapping[str, jax.Array]) -> jax.Array:
        """``k``: the latent's value, or 1 where the fluxes are in abundance units."""
        return jnp.ones(()) if self.abundance_units else theta[self.scale_name]

    def log_marginal(self, g: jax.Array, abundance=None, sigma=None) -> jax.Array:
        """``log (1/(b-a)) ∫_a^b exp(-Σ_i w_i |k - r_i| - c0) dk`` with ``w_i = g_i / σ_i``,
        ``r_i = e_i / g_i`` (groups with ``g_i = 0`` add ``|e_i| / σ_i`` to ``c0``); ``e`` and
        ``σ`` default to the term's (other values: simulated data, in calibration)."""
        a, b = self.scale_bounds
        e = self.abundance if abundance is None else abundance
        sig = self.sigma if sigma is None else sigma
        on = g > 0
        w = jnp.where(on, g / sig, 0.0)
        ratio = jnp.where(on, e / jnp.where(on, g, 1.0), a)
        r = jnp.clip(ratio, a, b)
        # |k - r_i| = |k - clip(r_i)| + |r_i - clip(r_i)| for k in [a, b]: keep the offset
        c0 = jnp.sum(jnp.where(on, w * jnp.abs(ratio - r), jnp.abs(e) / sig))
        order = jnp.argsort(r)
        r, w = r[order], w[order]
        edges = jnp.concatenate([jnp.array([a]), r, jnp.array([b])])  # segment k: [edges_k, +1]
        left_w = jnp.concatenate([jnp.zeros(1), jnp.cumsum(w)])  # weight of r_i <= segment
        left_wr = jnp.concatenate([jnp.zeros(1), jnp.cumsum(w * r)])
        slope = left_w - (left_w[-1] - left_w)  # f(k) = slope k + intercept on the segment
        intercept = -left_wr + (left_wr[-1] - left_wr) + c0
        p, q = edges[:-1], edges[1:]
        d = q - p
        m = jnp.where(slope >= 0, p, q)
        mag = jnp.abs(slope)
        # safe arguments in both branches of every where: the gradient (reflective HMC) of an
        # unused branch must not be NaN
        steep, used = mag * d > 1e-12, d > 0
        safe = jnp.where(steep, mag, 1.0)
        d_safe = jnp.where(used, d, 1.0)
        log_len = jnp.where(
            steep,
            jnp.log(-jnp.expm1(-jnp.where(steep, safe * d_safe, 1.0))) - jnp.log(safe),
            jnp.log(d_safe),
        )
        pieces = jnp.where(used, -intercept - slope * m + log_len, -jnp.inf)
        return jax.scipy.special.logsumexp(pieces) - np.log(b - a)

    def best_scale(self, v: np.ndarray) -> float:
        """The ``k`` maximising the likelihood at fixed ``v``: the weighted median of ``e_i / g_i``
        with weights ``g_i / σ_i`` (the objective is piecewise linear in ``k``)."""
        g = np.abs(np.asarray(v)) @ self.members.T
        ok = g > 0
        ratio, weight = self.abundance[ok] / g[ok], g[ok] / self.sigma[ok]
        order = np.argsort(ratio)
        cum = np.cumsum(weight[order])
        return float(ratio[order][np.searchsorted(cum, 0.5 * cum[-1])])

    def map_estimate(
        self,
        network,
        *,
        constraints: Sequence[LinearConstraint] = (),
        directions: Mapping[str, int] | None = None,
        time_limit: float = 60.0,
    ) -> xr.Dataset:
        """The global posterior mode of ``(v, k)`` (flat priors) by one MILP in cvxpy + HiGHS.

        Charnes-Cooper ``w = k v`` makes the model linear except ``|w_j|``, which direction
        binaries ``y_j`` make exact: ``w_j = w_j+ - w_j-``, ``w_j+ <= M y_j``,
        ``w_j- <= M (1 - y_j)``. Minimise ``Σ_i |Σ_{R_i} (w_j+ + w_j-) - e_i| / σ_i`` subject to
        ``S w = 0``, ``k lb <= w <= k ub``, ``k lower <= G w <= k upper`` (extra constraints) and
        ``k`` in its bounds; ``v = w / k``. ``directions`` (``{reaction: +1, -1 or 0}``: forwards
        only, backwards only, no flux) restricts the mode to a face of an orthant, e.g. the one
        FALCON's iteration settled on.

        Only ``w`` (the fluxes in abundance units) is identified: ``k`` may take any value that
        keeps ``w / k`` within the flux bounds, so compare fluxes through ``w`` (``flux * k``).
        At ``time_limit`` the best flux found is returned with a warning and attrs status
        ``'user_limit'``; a SolverError if none was found, an InfeasibleError if none exists.
        """
        import cvxpy as cp

        network = as_network(network)
        n = network.n_reactions
        lb, ub = network.lb, network.ub
        k_lo, k_hi = self.scale_bounds
        big = k_hi * float(np.max(np.abs(np.concatenate([lb, ub]))))
        # finite variable bounds keep cvxpy's bound propagation free of 0 * inf (NaN warnings)
        wp, wm = cp.Variable(n, bounds=[0.0, big]), cp.Variable(n, bounds=[0.0, big])
        y = cp.Variable(n, boolean=True)
        k = cp.Variable()
        w = wp - wm
        cons = [
            network.S @ w == 0,
            w >= k * lb,
            w <= k * ub,
            wp <= big * y,
            wm <= big * (1 - y),
            k >= k_lo,
            k <= k_hi,
        ]
        for rxn, sign in (directions or {}).items():
            j = network.indices([rxn])[0]
            if sign not in (-1, 0, 1):
                raise ConfigError(f"direction of {rxn!r} must be +1, -1 or 0, got {sign!r}")
            if sign >= 0:
                cons.append(wm[j] == 0)
            if sign <= 0:
                cons.append(wp[j] == 0)
        for con in constraints:
            row = np.zeros(n)
            for rxn, coef in con.coefficients.items():
                row[network.indices([rxn])[0]] += coef
            if np.isfinite(con.lower):
                cons.append(row @ w >= k * con.lower)
            if np.isfinite(con.upper):
                cons.append(row @ w <= k * con.upper)
        dev = cp.abs(self.members @ (wp + wm) - self.abundance)
        problem = cp.Problem(cp.Minimize(cp.sum(cp.multiply(1.0 / self.sigma, dev))), cons)
        problem.solve(solver=cp.HIGHS, time_limit=time_limit, mip_rel_gap=1e-9)
        if problem.status in ("infeasible", "infeasible_inaccurate"):
            raise InfeasibleError(
                "MAP of the expression model: no steady-state flux within the bounds and the "
                "extra constraints"
            )
        if problem.status == "user_limit" and self._feasible(network, w.value, k.value):
            warnings.warn(
                f"MAP of the expression model: time limit of {time_limit} s reached; returning "
                "the best flux found, not proven to be the global mode (attrs status "
                "'user_limit')",
                stacklevel=2,
            )
        elif problem.status not in ("optimal", "optimal_inaccurate"):
            hint = f"; raise time_limit ({time_limit} s)" if problem.status == "user_limit" else ""
            raise SolverError(
                f"MAP of the expression model: HiGHS ended with status {problem.status!r} "
                f"before finding a feasible flux{hint}"
            )
        kv = float(k.value)
        flux = np.asarray(w.value) / kv
        return xr.Dataset(
            {"flux": ("reaction", flux)},
            coords={"reaction": list(network.reactions)},
            attrs={"k": kv, "objective": float(problem.value), "status": problem.status},
        )

    def _feasible(self, network: Network, w, k, tol: float = 1e-6) -> bool:
        """Whether a point a stopped MILP returned is a flux: ``k`` in its bounds and ``w`` a
        steady state within ``k [lb, ub]`` (HiGHS may hand back its start instead)."""
        if w is None or k is None or not np.all(np.isfinite(w)) or not np.isfinite(k):
            return False
        k = float(k)
        lo, hi = self.scale_bounds
        return lo * (1 - tol) <= k <= hi * (1 + tol) and (
            steady_state_violation(network.S, w, k * network.lb, k * network.ub) <= tol
        )


class ExpressionCapacity:
    """E-Flux as a prior: ``-α e_j <= v_j <= α e_j`` with latent capacity ``α`` (seed 000).

    Abundance is divided by its maximum (as :func:`~bayesflux.methods.eflux`), so ``α`` is the
    capacity of the most expressed reaction; reactions without data keep their bounds.
    """

    def __init__(
        self,
        network,
        expression=None,
        *,
        abundance: xr.Dataset | None = None,
        gpr_method: str = "min_disjunction",
        capacity_bounds: tuple[float, float] = (1e-3, 1e3),
        prior: str = "log-uniform",
        name: str = "capacity",
    ) -> None:
        network = as_network(network)
        e = abundance_vector(network, expression, abundance=abundance, method=gpr_method)
        known = np.flatnonzero(np.isfinite(e))
        if known.size == 0:
            raise NetworkError(f"no reaction of {network.id!r} has a measured gene")
        e = e / np.nanmax(e)
        self.name = name
        self.alpha_name = f"{name}_alpha"
        self.latents = (Latent(self.alpha_name, *capacity_bounds, prior=prior),)
        rows = []
        for j in known:
            rxn = network.reactions[j]
            rows.append(Coupling({rxn: 1.0}, {self.alpha_name: -float(e[j])}, upper=0.0))
            if network.lb[j] < 0:
                rows.append(Coupling({rxn: 1.0}, {self.alpha_name: float(e[j])}, lower=0.0))
        self.couplings = tuple(rows)
        self.relative_abundance = xr.DataArray(
            e[known],
            dims="capacity_reaction",
            coords={"capacity_reaction": [network.reactions[j] for j in known]},
        )

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """No observed site: a prior, whose content is the couplings."""

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        return jnp.zeros(())  # a prior: its content is the couplings


@dataclass(frozen=True)
class ExchangeLatent(Latent):
    """An exchange flux ``x`` on ``[lower, upper]`` (``lower >= 0``) whose prior is
    ``f = x / (1 + x) ~ Beta(a, b)`` truncated to ``[f(lower), f(upper)]`` (influx_si's
    ``[0, 1)`` scale, :func:`bayesflux.labeling.fit`'s). With ``df/dx = 1 / (1 + x)²``::

        log p(x) = (a - 1) log x - (a + b) log(1 + x) + const

    (a beta-prime density); ``a = b = 1`` (``prior="uniform-fraction"``) is uniform in ``f``:
    ``-2 log(1 + x)``. ``prior`` names it, from ``a`` and ``b``: ``"uniform-fraction"`` or
    ``"beta(a, b)"``.
    """

    prior: str = field(default="uniform-fraction", init=False)
    a: float = 1.0
    b: float = 1.0

    def __post_init__(self) -> None:
        Latent(self.name, self.lower, self.upper)  # the base checks of the bounds
        if not (np.isfinite(self.a) and np.isfinite(self.b) and self.a > 0 and self.b > 0):
            raise ConfigError(
                f"latent {self.name!r}: Beta(a, b) needs finite a, b > 0, got ({self.a}, {self.b})"
            )
        if self.lower < 0:
            raise ConfigError(f"exchange flux {self.name!r} needs lower >= 0, got {self.lower}")
        uniform = self.a == 1.0 and self.b == 1.0
        name = "uniform-fraction" if uniform else f"beta({self.a:g}, {self.b:g})"
        object.__setattr__(self, "prior", name)

    def log_prior(self, x: jax.Array) -> jax.Array:
        """``(a - 1) log x - (a + b) log(1 + x)``, up to a constant, on the support."""
        return jax.scipy.special.xlogy(self.a - 1.0, x) - (self.a + self.b) * jnp.log1p(x)


def exchange_latent(name: str, lower: float, upper: float, prior: str) -> Latent:
    """The latent of one exchange flux with prior ``prior`` (one of :data:`XCH_PRIORS`):
    ``"uniform-fraction"`` and ``"beta(a, b)"`` an :class:`ExchangeLatent`,
    ``"uniform-absolute"`` a uniform :class:`~bayesflux.models.Latent` in ``x``.

    Raises
    ------
    ConfigError
        For an unknown prior name or a Beta with ``a`` or ``b`` not > 0.
    """
    spec = str(prior).strip().lower()
    if spec == "uniform-absolute":
        return Latent(name, lower, upper)
    if spec == "uniform-fraction":
        return ExchangeLatent(name, lower, upper)
    match = _BETA.fullmatch(spec)
    if match is None:
        raise ConfigError(
            f"unknown exchange-flux prior {prior!r}; expected one of {list(XCH_PRIORS)} (Beta "
            "with numbers, e.g. 'beta(2, 2)'), all on f = xch / (1 + xch) but 'uniform-absolute'"
        )
    try:
        a, b = float(match[1]), float(match[2])
    except ValueError:
        raise ConfigError(f"exchange-flux prior {prior!r}: a and b must be numbers") from None
    return ExchangeLatent(name, lower, upper, a=a, b=b)


class Labeling13C:
    """13C measurements of a :class:`~bayesflux.labeling.LabelingProblem` as a likelihood.

    Net fluxes of the labelling network come from the flux vector ``v`` (labelling reaction ``r``
    is network reaction ``reaction_map.get(r, r)``). Exchange fluxes are latents
    ``{name}_xch[r]`` in ``[0, problem.xch_max]``: one per reversible reaction
    (``xch_latents="reversible"``), or one per *free* exchange flux of ``problem.xch_space``
    (``"free"``: the others follow as ``v_xch = v0 + K w``, so fixed exchange fluxes and
    exchange equalities hold exactly and the support is the MFA problem's; ``K`` must copy, each
    row at most one 1). With ``max_abs_drg`` (kJ/mol per labelling reaction, e.g. the largest
    ``|ΔrG|`` thermodynamic FVA allows) the flux-force bound ``v_xch >= c |v_net|``,
    ``c = 1 / (exp(|ΔrG|max / RT) - 1)``, joins the support as two linear couplings (the least
    conservative bound, seed 002).

    ``xch_prior`` (:func:`exchange_latent`, :data:`XCH_PRIORS`) is the exchange fluxes' prior,
    truncated to their box: ``"uniform-fraction"`` (default) uniform in
    ``f = v_xch / (1 + v_xch)``; ``"beta(a, b)"``: ``f ~ Beta(a, b)``; ``"uniform-absolute"``:
    uniform in ``v_xch`` (before issue 18; with ``xch_max = 999`` it puts 99% of its mass at
    ``f > 0.9``, where undetermined exchange fluxes then sit). ``attrs`` records it
    (``{name}_xch_prior``) for a DataTree's provenance.
    """

    def __init__(
        self,
        problem: LabelingProblem,
        network,
        *,
        reaction_map: Mapping[str, str] | None = None,
        max_abs_drg: Mapping[str, float] | None = None,
        rt: float = 8.314462618e-3 * 298.15,
        name: str = "labeling",
        xch_prior: str = "uniform-fraction",
        xch_latents: Literal["reversible", "free"] = "reversible",
    ) -> None:
        network = as_network(network)
        reaction_map = dict(reaction_map or {})
        self.problem = problem
        self.name = name
        label_ids = list(problem.network.reaction_ids)
        mapped = [reaction_map.get(r, r) for r in label_ids]
        missing = [r for r, m in zip(label_ids, mapped) if m not in network.reaction_index]
        if missing:
            raise NetworkError(
                f"labelling reaction(s) {missing[:8]} have no counterpart in network "
                f"{network.id!r}; pass reaction_map={{labelling id: network id}}"
            )
        self.index = network.indices(mapped)
        rev = list(problem.reversible)
        latent, v0, K = self._exchange_map(problem, xch_latents)
        self.xch_names = tuple(f"{name}_xch[{r}]" for r in latent)
        self._xch_v0, self._xch_K = v0, K
        self._xch_identity = xch_latents == "reversible"
        bounds = [(0.0, problem.xch_max)] * len(latent)
        if xch_latents == "free":
            sp = problem.xch_space
            bounds = [
                (float(sp.lb[sp.reaction_ids.index(r)]), float(sp.ub[sp.reaction_ids.index(r)]))
                for r in latent
            ]
        self.latents = tuple(
            exchange_latent(nm, lo, hi, xch_prior)
            for nm, (lo, hi) in zip(self.xch_names, bounds, strict=True)
        )
        probe = exchange_latent(f"{name}_xch", 0.0, 1.0, xch_prior)  # checked without latents too
        self.xch_prior = "uniform-absolute" if probe.prior == "uniform" else probe.prior
        self.attrs = {
            f"{name}_xch_prior": f"{self.xch_prior} (f = xch / (1 + xch); xch_latents="
            f"{xch_latents})"
        }
        rows = []
        for r, drg in (max_abs_drg or {}).items():
            if r not in rev:
                raise NetworkError(
                    f"max_abs_drg given for {r!r}, not a reversible labelling reaction"
                )
            if not drg > 0:
                raise ConfigError(f"max_abs_drg of {r!r} must be > 0 kJ/mol, got {drg}")
            c = 1.0 / np.expm1(float(drg) / rt)
            target = network.reactions[self.index[label_ids.index(r)]]
            k = rev.index(r)  # v_xch[r] = v0[k] + Σ_j K[k, j] w_j >= c |v_net|
            coefs = {self.xch_names[j]: float(K[k, j]) for j in np.flatnonzero(K[k])}
            rows.append(Coupling({target: -c}, coefs, lower=-float(v0[k])))
            rows.append(Coupling({target: c}, coefs, lower=-float(v0[k])))
        self.couplings = tuple(rows)

    @staticmethod
    def _exchange_map(
        problem: LabelingProblem, xch_latents: str
    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """Latent reactions and ``(v0, K)`` with ``v_xch = v0 + K w`` over the latents ``w``."""
        rev = tuple(problem.reversible)
        if xch_latents == "reversible":
            return rev, np.zeros(len(rev)), np.eye(len(rev))
        if xch_latents != "free":
            raise ConfigError(f"xch_latents must be 'reversible' or 'free', got {xch_latents!r}")
        sp = problem.xch_space
        K = np.asarray(sp.K, dtype=float)
        if tuple(sp.reaction_ids) != rev:
            raise ConfigError("the exchange-flux space does not list the reversible reactions")
        if not (np.all(np.isin(K, (0.0, 1.0))) and np.all(K.sum(axis=1) <= 1)):
            raise ConfigError(
                "xch_latents='free' needs exchange equalities that copy one free exchange flux "
                "(each row of xch_space.K at most one 1); use 'reversible'"
            )
        return tuple(sp.free), np.asarray(sp.v0, dtype=float), K

    def exchange_fluxes(self, theta: Mapping[str, jax.Array]) -> jax.Array:
        """The exchange fluxes of the problem's reversible reactions from the latents
        (``v0 + K w``; the latents themselves with ``xch_latents="reversible"``)."""
        if not self.xch_names:
            return jnp.asarray(self._xch_v0)
        w = jnp.stack([theta[nm] for nm in self.xch_names])
        if self._xch_identity:
            return w
        return jnp.asarray(self._xch_v0) + jnp.asarray(self._xch_K) @ w

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """NumPyro sites: :func:`~bayesflux.models.blocks.labeling_13c`."""
        blocks.labeling_13c(
            v[self.index], self.problem, xch=self.exchange_fluxes(theta), name=self.name
        )

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        return self.problem.log_likelihood(v[self.index], self.exchange_fluxes(theta))
