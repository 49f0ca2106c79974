"""The expression posterior of a genome-scale model, built around its mode (issue 15).

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

from collections.abc import Sequence

import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.models.posterior import FluxPosterior, Term
from bayesflux.models.priors import Parsimony
from bayesflux.models.terms import ExpressionLaplace
from bayesflux.network import as_network
from bayesflux.sampling.polytope import LinearConstraint, polytope

__all__ = ["expression_posterior"]


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
    prior: Parsimony | None | str = "parsimony",
    scale_decades: float = 3.0,
    dispersion: tuple[float, float] | None = None,
    relative_error: tuple[float, float] | None = (1e-3, 10.0),
    time_limit: float = 120.0,
) -> tuple[FluxPosterior, xr.Dataset]:
    """FALCON's likelihood (scale integrated out) with a flux prior, and the posterior's mode.

    Parameters
    ----------
    expression, std, abundance
        As :class:`~bayesflux.models.ExpressionLaplace`.
    terms
        Further likelihood terms (measured fluxes, ...) of the same network.
    prior
        ``"parsimony"`` (default: :meth:`Parsimony.for_polytope`), a :class:`Parsimony`, or
        ``None`` for the uniform prior (the mode is then placed at the MILP's scale).
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
        The posterior, and its mode: ``flux`` over ``reaction``, ``start`` (the point ``(v, θ)``
        to give ``FluxPosterior.sample(start=...)``: dispersion and relative error at their
        maximum likelihood there, other latents at the middle of their ranges), ``scale``
        (guessed posterior standard deviations of ``(v, θ)``, for ``sample(scale=...)``),
        ``direction`` (the flux scale's spread, for ``sample(scale_direction=...)``) and attrs
        ``k`` (the mode's abundance per flux), ``scale_bounds``, ``objective`` (FALCON's,
        ``Σ_i |g_i - e_i/k| / (σ_i / k)`` at the MILP's optimum: compare with
        :func:`~bayesflux.methods.falcon`'s),
        ``dispersion`` and ``relative_error`` (their maximum likelihood at the mode),
        ``parsimony_scale`` and ``status``.
    """
    network = as_network(network)
    if not scale_decades > 0:
        raise ConfigError(f"scale_decades must be > 0, got {scale_decades}")
    poly = polytope(network, constraints=constraints)
    fit = ExpressionLaplace(
        network, expression, std, abundance=abundance, polytope=poly, name="expression"
    )
    # only w = k v is identified: widen k's range so the bounds on v never cap w's scale
    low, high = fit.scale_bounds
    fit.scale_bounds = (low, high * 1e4)
    mode = fit.map_estimate(network, constraints=constraints, time_limit=time_limit)
    v = mode["flux"].values
    if prior == "parsimony":
        prior = Parsimony.for_polytope(poly)
    elif prior is not None and not isinstance(prior, Parsimony):
        raise ConfigError(f"prior must be 'parsimony', a Parsimony or None, got {prior!r}")
    if prior is not None:
        total = float(np.abs(v).sum())
        if total <= 0:
            raise ConfigError("the expression mode carries no flux; nothing to scale")
        v = v * _feasible_scale(poly, v, max(poly.dim - 2, 1) * prior.scale / total)
    k = fit.best_scale(v)
    factor = 10.0**scale_decades
    term = ExpressionLaplace(
        network,
        expression,
        std,
        abundance=abundance,
        polytope=poly,
        scale_bounds=(k / factor, k * factor),
        dispersion=dispersion,
        relative_error=relative_error,
        name="expression",
    )
    posterior = FluxPosterior(network, [term, *terms], constraints=constraints, flux_prior=prior)
    residual = np.abs(k * np.asarray(term.group_flux(v)) - term.abundance)
    phi, rho = _noise_estimate(term, residual)
    latents = {lat.name: np.sqrt(lat.lower * lat.upper) for lat in posterior.latents}
    if dispersion is not None:
        latents[term.dispersion_name] = phi
    if relative_error is not None:
        latents[term.relative_error_name] = rho
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
            "direction": (
                "coordinate",
                np.concatenate([v, np.zeros(len(latents))]) / np.sqrt(max(poly.dim - 1, 1)),
            ),
        },
        coords={
            "reaction": list(network.reactions),
            "coordinate": list(network.reactions) + list(latents),
        },
        attrs={
            "k": k,
            "scale_bounds": term.scale_bounds,
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
