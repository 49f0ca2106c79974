"""The expression posterior of a genome-scale model, built around its mode (issue 15).

**Units.** FALCON's likelihood identifies only the fluxes in abundance units, ``w = k v`` (``k``
the abundance per unit flux): nothing measures ``k``. A prior put on ``v`` with ``k`` integrated
out turns into a prior on the *shape* of ``w`` with a ``d``-th power in it (``d`` the polytope's
dimension, 322 for Yeast 5.21 HC): ``∫ p_v(w / k) k^-d p(k) dk``, i.e. ``gauge_P(w)^-(d-1)``
under the uniform prior (shapes whose fluxes the bounds let grow, such as internal cycles) and
``(Σ|w|)^-d`` under the parsimony prior ``exp(-Σ|v|/τ)`` (a 10 % smaller total flux weighs
``e^(0.1 d)``, 32 nats on Yeast 5.21, more than the expression data can answer: with
``relative_error`` latent the chains went respiratory, ethanol 1.5 against a measured 23.8).
``units="abundance"`` (default) therefore samples ``w`` itself: the likelihood is
``Laplace(g_i(w), s_i)`` (:class:`~bayesflux.models.ExpressionLaplace` with
``abundance_units=True``), the prior ``exp(-Σ|w_j| / τ)`` with ``τ = Σ_i e_i``, the total
abundance (its slope ``1/τ`` stays below every group's ``1/(ρ e_i)``, so it never pulls an
expressed reaction to 0, and it holds cycles through unmeasured reactions to the data's scale),
on the network's sign pattern; bounds at cobra's "none" (``|b| >= 1000``) become ``±100 τ``, where
the prior has no mass. ``k`` is a latent (log-uniform over ``10^±scale_decades`` around the
mode's) only where something is in flux units: finite nonzero bounds and ``constraints`` become
``lb k <= w_j <= ub k`` and further ``terms`` see ``v = w / k``. The DataTree's ``flux`` is then in
abundance units (attrs ``flux_units``); divide by ``flux_scale`` for flux units, or compare ratios
(seed 003 scales to the measured glucose uptake). Yeast 5.21 HC, Lee 75 % (4 chains, 2 pooled
tuning rounds, 300 + 300 draws): the chains stay fermentative, r 0.989 of the 7 measured
exchange fluxes (0.671 with ``units="flux"``), though not yet converged (max R-hat 2.1).

``units="flux"`` keeps the fluxes in flux units:

FALCON's Laplace likelihood (:class:`~bayesflux.models.ExpressionLaplace`) fixes flux *ratios*
only: with the abundance per unit flux ``k`` integrated out it hardly depends on the flux scale.
Under the uniform prior the posterior then follows the polytope's volume into internal cycles;
under :class:`~bayesflux.models.Parsimony` it stays with the fit. :func:`expression_posterior`

1. finds the likelihood's global mode by MILP (:meth:`ExpressionLaplace.map_estimate`: the
   fluxes ``w = k v`` in abundance units, identified up to scale),
2. puts that shape at the prior's most probable scale: under ``exp(-Σ|v|/τ)`` on a
   ``d``-dimensional cone the scale ``c`` of ``v = c u`` has density
   ``∝ c^(d-2) exp(-c Σ|u| / τ)`` (``c^(d-1)`` from the volume, ``1/c`` from the uniform prior on
   ``k``), whose mode is ``c = (d - 2) τ / Σ|u|``, or the nearest scale the bounds allow
   (a forced flux such as ATP maintenance bounds ``c`` below),
3. gives ``k`` a uniform prior over ``k_mode 10^(±decades)``, ``k_mode`` the best scale at that
   point (the weighted median of ``e_i / g_i``), so the prior's range is derived from the data
   and the mode's ``k`` sits in its middle, not on a bound,
4. widens FALCON's scales ``σ_i`` to ``sqrt(φ² σ_i² + ρ² e_i²)`` with the dispersion ``φ`` and
   the relative error ``ρ`` latent (:class:`~bayesflux.models.ExpressionLaplace`), started at
   their maximum likelihood given the mode's residuals, and guesses each coordinate's
   posterior standard deviation from them (``√2 ρ |v_j|``: a Laplace of scale ``ρ e_i``
   around ``k g_i = e_i``; ``ρ`` times the median nonzero ``|v|`` for fluxes at 0; with
   FALCON's scales alone, ``ρ = 0``, the median relative error ``φ σ_i / e_i`` stands in).

The fluxes' common scale ``c`` is known to a relative ``1/sqrt(d - 1)`` only (step 2's
``Gamma(d - 1)``), far looser than independent per-flux scales imply along ``v`` itself:
``direction`` is ``v / sqrt(d - 1)``. Sample with ``posterior.sample(start=mode["start"],
scale=mode["scale"], scale_direction=mode["direction"])``: chains dispersed around the mode, HMC
in coordinates whitened by the guessed scales.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

import jax
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.models.posterior import Coupling, FluxPosterior, Latent, Term
from bayesflux.models.priors import Parsimony
from bayesflux.models.terms import ExpressionLaplace
from bayesflux.network import as_network
from bayesflux.sampling.polytope import LinearConstraint, polytope

__all__ = ["FluxScale", "expression_posterior"]

#: cobra's convention: a bound this large (or infinite) is no bound
UNBOUNDED = 1000.0
#: where the abundance-unit box sits, in units of the parsimony scale ``τ``
BOX = 100.0


class FluxScale:
    """The abundance per unit flux ``k`` of a posterior in abundance units (``w = k v``): a
    log-uniform latent whose couplings carry what is stated in flux units,
    ``lower k <= Σ a_j w_j <= upper k``. No likelihood of its own."""

    def __init__(self, bounds: tuple[float, float], couplings: Sequence[Coupling]) -> None:
        self.name = "flux_scale"
        self.latents = (Latent(self.name, *bounds, prior="log-uniform"),)
        self.couplings = tuple(couplings)
        self.attrs = {"flux_units": "abundance (w = k v; flux_scale is k)"}

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        return jax.numpy.zeros(())

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """No observed sites."""


class _InFluxUnits:
    """A term of fluxes ``v`` seen from a posterior in abundance units: ``v = w / k``."""

    def __init__(self, term: Term, scale: str) -> None:
        if any(c.latents for c in term.couplings):
            raise ConfigError(
                f"term {term.name!r} couples fluxes with latents; it cannot be used with "
                "units='abundance' (use units='flux')"
            )
        self.term, self.scale, self.name = term, scale, term.name
        self.latents = term.latents
        self.couplings = tuple(
            c for coupling in term.couplings for c in _in_abundance_units(coupling, scale)
        )

    def __getattr__(self, name: str):
        return getattr(self.term, name)

    def log_likelihood(self, w: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        return self.term.log_likelihood(w / theta[self.scale], theta)

    def observe(self, w: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        self.term.observe(w / theta[self.scale], theta)


def _in_abundance_units(c: Coupling | LinearConstraint, scale: str) -> list[Coupling]:
    """``lower <= a·v <= upper`` as ``a·w - lower k >= 0`` and ``a·w - upper k <= 0``."""
    fluxes = dict(c.fluxes if isinstance(c, Coupling) else c.coefficients)
    lower, upper = float(c.lower), float(c.upper)
    if lower == upper:
        if lower != 0.0:
            raise ConfigError(
                f"the equality {fluxes} = {lower} fixes a flux scale; units='abundance' has none "
                "(use units='flux')"
            )
        return [Coupling(fluxes, {}, 0.0, 0.0)]
    out = []
    if np.isfinite(lower):
        out.append(Coupling(fluxes, {scale: -lower} if lower else {}, lower=0.0))
    if np.isfinite(upper):
        out.append(Coupling(fluxes, {scale: -upper} if upper else {}, upper=0.0))
    return out


def _abundance_network(network, box: float, scale: str):
    """The network with bounds in abundance units (``0`` stays, any other bound becomes
    ``±box``) and the couplings ``lb k <= w_j <= ub k`` of its finite nonzero bounds."""
    lb, ub = network.lb, network.ub
    couplings = []
    for j, r in enumerate(network.reactions):
        for bound, kind in ((lb[j], "lower"), (ub[j], "upper")):
            if bound != 0 and abs(bound) < UNBOUNDED:
                couplings.append(Coupling({r: 1.0}, {scale: -float(bound)}, **{kind: 0.0}))
    bounds = {"lb": np.where(lb < 0, -box, 0.0), "ub": np.where(ub > 0, box, 0.0)}
    return dataclasses.replace(network, **bounds), couplings


def _scale_range(couplings: Sequence[Coupling], w: np.ndarray, network, bounds) -> float:
    """A start for ``k`` at ``w``: the geometric middle of the ``k`` the couplings allow (the
    mode may pin it: chain starts are drawn towards the interior from there)."""
    low, high = bounds
    index = network.reaction_index
    for c in couplings:
        if not c.latents:
            continue
        value = sum(a * w[index[r]] for r, a in c.fluxes.items())
        b = next(iter(c.latents.values()))  # value + b k within [lower, upper]
        for edge, sign in ((c.lower, 1.0), (c.upper, -1.0)):
            if np.isfinite(edge) and b != 0:
                limit = (edge - value) / b  # k on the edge
                if sign * b > 0:
                    low = max(low, limit)
                else:
                    high = min(high, limit)
    if low > high * (1 + 1e-9):  # equal where the mode sits on bounds at both ends
        raise ConfigError("no flux scale k fits the mode: the bounds in flux units conflict")
    return float(np.sqrt(low * high)) if low < high else float(high)


def _feasible_scale(poly, v: np.ndarray, target: float) -> float:
    """The ``c`` nearest ``target`` with ``c v`` in the polytope (``c v`` stays a steady state;
    bounds such as a forced maintenance flux give ``c`` a range)."""
    from bayesflux.models.blocks import _pseudo_inverse

    pinv = _pseudo_inverse(poly)
    slope, room = poly.A @ (pinv @ v), poly.b + poly.A @ (pinv @ poly.v0)
    tol = 1e-9 * (1.0 + np.abs(room))
    up = slope > tol
    down = slope < -tol
    high = np.min(room[up] / slope[up]) if up.any() else np.inf
    low = np.max(room[down] / slope[down]) if down.any() else 0.0
    return float(np.clip(target, max(low, 0.0), high))


def expression_posterior(
    network,
    expression=None,
    std=None,
    *,
    abundance: xr.Dataset | None = None,
    terms: Sequence[Term] = (),
    constraints: Sequence[LinearConstraint] = (),
    units: Literal["abundance", "flux"] = "abundance",
    prior: Parsimony | None | str = "parsimony",
    scale_decades: float = 3.0,
    dispersion: tuple[float, float] | None = None,
    relative_error: tuple[float, float] | None = (1e-3, 10.0),
    time_limit: float = 120.0,
) -> tuple[FluxPosterior, xr.Dataset]:
    """FALCON's likelihood with a flux prior, and the posterior's mode (see the module's note).

    Parameters
    ----------
    expression, std, abundance
        As :class:`~bayesflux.models.ExpressionLaplace`.
    terms
        Further likelihood terms (measured fluxes, ...) of the same network, in flux units.
    constraints
        Linear constraints on the fluxes, in flux units.
    units
        ``"abundance"`` (default): sample ``w = k v`` with the prior on ``w``; ``"flux"``: sample
        ``v`` with ``k`` integrated out and the prior on ``v``.
    prior
        ``"parsimony"`` (default: ``τ = Σ e_i`` in abundance units, :meth:`Parsimony.for_polytope`
        in flux units), a :class:`Parsimony`, or ``None`` for the uniform prior (in flux units
        the mode is then placed at the MILP's scale).
    scale_decades
        Half-width of ``k``'s prior range in decades around the mode's ``k``.
    dispersion
        Range of the log-uniform prior of the abundances' dispersion ``φ`` (``σ_i -> φ σ_i``,
        see :class:`~bayesflux.models.ExpressionLaplace`), or ``None`` (default) for ``φ = 1``:
        with the relative error free, Lee 2012's residuals put ``φ`` on any lower bound (Yeast
        5.21 HC 75 %: ``ρ`` 0.82 at the mode, the replicate ``σ_i`` negligible beside it).
    relative_error
        Range of the log-uniform prior of the relative error ``ρ`` (``σ_i -> sqrt(φ² σ_i² +
        ρ² e_i²)``), or ``None`` for ``ρ = 0`` (FALCON's scales).

    Returns
    -------
    (FluxPosterior, xarray.Dataset)
        The posterior, and its mode: ``flux`` over ``reaction`` (in the posterior's units),
        ``start`` (the point ``(v, θ)`` to give ``FluxPosterior.sample(start=...)``: dispersion
        and relative error at their maximum likelihood there, ``k`` in the middle of what the
        bounds allow, other latents at the middle of their ranges), ``scale`` (guessed posterior
        standard deviations of ``(v, θ)``, for ``sample(scale=...)``), ``direction`` (the flux
        scale's spread in flux units, zero in abundance units, for
        ``sample(scale_direction=...)``) and attrs ``units``, ``k`` (the mode's abundance per
        flux), ``scale_bounds``, ``objective`` (FALCON's, ``Σ_i |g_i - e_i/k| / (σ_i / k)`` at the
        MILP's optimum: compare with :func:`~bayesflux.methods.falcon`'s), ``dispersion`` and
        ``relative_error`` (their maximum likelihood at the mode), ``parsimony_scale`` and
        ``status``.
    """
    network = as_network(network)
    if not scale_decades > 0:
        raise ConfigError(f"scale_decades must be > 0, got {scale_decades}")
    if units not in ("abundance", "flux"):
        raise ConfigError(f"units must be 'abundance' or 'flux', got {units!r}")
    if not (prior is None or prior == "parsimony" or isinstance(prior, Parsimony)):
        raise ConfigError(f"prior must be 'parsimony', a Parsimony or None, got {prior!r}")
    poly = polytope(network, constraints=constraints)
    fit = ExpressionLaplace(
        network, expression, std, abundance=abundance, polytope=poly, name="expression"
    )
    # only w = k v is identified: widen k's range so the bounds on v never cap w's scale
    low, high = fit.scale_bounds
    fit.scale_bounds = (low, high * 1e4)
    mode = fit.map_estimate(network, constraints=constraints, time_limit=time_limit)
    v = mode["flux"].values
    options = dict(
        abundance=abundance, dispersion=dispersion, relative_error=relative_error, name="expression"
    )
    if units == "abundance":
        k = fit.best_scale(v)
        w = k * v
        tau = float(fit.abundance.sum())
        net_w, couplings = _abundance_network(
            network, BOX * max(tau, np.abs(w).max()), "flux_scale"
        )
        for c in constraints:
            couplings += _in_abundance_units(c, "flux_scale")
        # the groups that can carry flux are those of the network's own polytope
        term = ExpressionLaplace(
            net_w, expression, std, polytope=poly, abundance_units=True, **options
        )
        terms = list(terms)
        scale_bounds = (k / 10.0**scale_decades, k * 10.0**scale_decades)
        if couplings or terms:
            flux_scale = FluxScale(scale_bounds, couplings)
            terms = [flux_scale] + [_InFluxUnits(t, flux_scale.name) for t in terms]
        prior = Parsimony(tau) if prior == "parsimony" else prior
        posterior = FluxPosterior(net_w, [term, *terms], flux_prior=prior)
        v, direction = w, np.zeros_like(w)
        # terms is not empty exactly where a flux scale was added
        k_start = _scale_range(couplings, w, network, scale_bounds) if terms else None
    else:
        if prior == "parsimony":
            prior = Parsimony.for_polytope(poly)
        if prior is not None:
            total = float(np.abs(v).sum())
            if total <= 0:
                raise ConfigError("the expression mode carries no flux; nothing to scale")
            v = v * _feasible_scale(poly, v, max(poly.dim - 2, 1) * prior.scale / total)
        k = fit.best_scale(v)
        factor = 10.0**scale_decades
        scale_bounds = (k / factor, k * factor)
        term = ExpressionLaplace(
            network, expression, std, polytope=poly, scale_bounds=scale_bounds, **options
        )
        posterior = FluxPosterior(
            network, [term, *terms], constraints=constraints, flux_prior=prior
        )
        # the fluxes' common scale c is known to 1/sqrt(d - 1) only (the Gamma(d - 1) above)
        direction = v / np.sqrt(max(poly.dim - 1, 1))
        k_start = None
    fitted = np.asarray(term.group_flux(v)) * (1.0 if units == "abundance" else k)
    phi, rho = _noise_estimate(term, np.abs(fitted - term.abundance))
    latents = {lat.name: np.sqrt(lat.lower * lat.upper) for lat in posterior.latents}
    if dispersion is not None:
        latents[term.dispersion_name] = phi
    if relative_error is not None:
        latents[term.relative_error_name] = rho
    if k_start is not None:
        latents["flux_scale"] = k_start
    # with FALCON's scales alone (ρ = 0) the abundances' typical relative error φ σ_i / e_i
    expressed = term.abundance > 0
    relative = (
        rho
        if rho > 0
        else phi * float(np.median(term.sigma[expressed] / term.abundance[expressed]))
    )
    moving = np.abs(v)[np.abs(v) > 1e-12 * np.abs(v).max()]
    floor = relative * float(np.median(moving)) if moving.size else 1.0
    scale = np.concatenate(
        [np.sqrt(2.0) * relative * np.abs(v) + floor, 0.1 * np.asarray(list(latents.values()))]
    )
    mode = xr.Dataset(
        {
            "flux": ("reaction", v),
            "start": ("coordinate", np.concatenate([v, list(latents.values())])),
            "scale": ("coordinate", scale),
            "direction": ("coordinate", np.concatenate([direction, np.zeros(len(latents))])),
        },
        coords={
            "reaction": list(network.reactions),
            "coordinate": list(network.reactions) + list(latents),
        },
        attrs={
            "units": units,
            "k": k,
            "scale_bounds": scale_bounds,
            "objective": mode.attrs["objective"],
            "dispersion": phi,
            "relative_error": rho,
            "parsimony_scale": np.nan if prior is None else prior.scale,
            "status": mode.attrs["status"],
        },
    )
    return posterior, mode


def _noise_estimate(term: ExpressionLaplace, residual: np.ndarray) -> tuple[float, float]:
    """Maximum likelihood ``(φ, ρ)`` of Laplace residuals ``r_i`` with scales
    ``sqrt(φ² σ_i² + ρ² e_i²)``, within the term's ranges (``φ = 1`` or ``ρ = 0`` where the term
    has no such latent)."""
    from scipy.optimize import minimize

    sigma, e = term.sigma, term.abundance
    bounds = [
        (np.log(term.dispersion[0]), np.log(term.dispersion[1])) if term.dispersion else (0, 0),
        np.log(term.relative_error) if term.relative_error else (-np.inf, -np.inf),
    ]

    def nll(p: np.ndarray) -> float:
        s = np.sqrt((np.exp(p[0]) * sigma) ** 2 + (np.exp(p[1]) * e) ** 2)
        return float(np.sum(residual / s + np.log(s)))

    if term.relative_error is None:
        phi = float(np.clip(np.mean(residual / sigma), *(term.dispersion or (1.0, 1.0))))
        return phi, 0.0
    starts = [
        np.array([np.clip(0.0, *bounds[0]), np.clip(np.log(r), *bounds[1])]) for r in (0.1, 1.0)
    ]
    best = min(
        (minimize(nll, p0, bounds=bounds, method="L-BFGS-B") for p0 in starts), key=lambda r: r.fun
    )
    return float(np.exp(best.x[0])), float(np.exp(best.x[1]))
