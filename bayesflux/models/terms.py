"""Likelihood terms of a :class:`~bayesflux.models.FluxPosterior` (DESIGN.md, "Bayesian view").

* :class:`FluxObservations` — measured (exchange) fluxes, ``y_j ~ N(v_j, sd_j²)``.
* :class:`ExpressionLaplace` — FALCON as a likelihood: the abundance of each reaction group ``R_i``
  is ``e_i ~ Laplace(Σ_{j∈R_i} |v_j| / n, σ_i)`` with the scale ``n`` latent. Up to a constant
  its negative log-likelihood is ``Σ_i |Σ_{R_i}|v_j| - n e_i| / (n σ_i)``, FALCON's objective
  (seed 003), so its maximum is FALCON's optimum; sampling gives the uncertainty that FALCON's
  single optimum hides.
* :class:`ExpressionCapacity` — E-Flux as a prior: ``|v_j| <= α e_j`` with the capacity ``α``
  latent (linear in ``(v, α)``, so the support stays a polytope).
* :class:`Labeling13C` — the 13C MID likelihood of a :class:`~bayesflux.labeling.LabelingProblem`
  at the net fluxes ``v`` and latent exchange fluxes, which obey the flux-force lower bound
  ``v_xch >= |v_net| / (exp(|ΔrG|/RT) - 1)`` (seed 002) as linear couplings.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError, NetworkError
from bayesflux.expression.abundance import abundance_vector, enzyme_abundance, group_abundance
from bayesflux.labeling.measurements import LabelingProblem
from bayesflux.models.posterior import Coupling, Latent
from bayesflux.network import Network, as_network

__all__ = ["ExpressionCapacity", "ExpressionLaplace", "FluxObservations", "Labeling13C"]


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

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        r = (v[self.index] - self.values) / self.sd
        return -0.5 * jnp.sum(r**2) - np.sum(np.log(self.sd)) - 0.5 * r.size * np.log(2 * np.pi)

    def observed_data(self) -> dict[str, xr.DataArray]:
        coords = {"measured_reaction": list(self.reactions)}
        return {
            f"{self.name}": xr.DataArray(self.values, dims="measured_reaction", coords=coords),
            f"{self.name}_sd": xr.DataArray(self.sd, dims="measured_reaction", coords=coords),
        }


def _abundance(network: Network, expression, std, abundance, gpr_method) -> xr.Dataset:
    if abundance is None:
        if expression is None:
            raise ConfigError("give expression data or a precomputed abundance")
        abundance = enzyme_abundance(network, expression, std, method=gpr_method)
    return abundance


class ExpressionLaplace:
    """FALCON's least-absolute-deviation fit as a Laplace likelihood with a latent scale ``n``.

    ``e_i ~ Laplace(g_i(v) / n, σ_i)``, ``g_i(v) = Σ_{j∈R_i} |v_j|`` over the reaction groups of
    :func:`~bayesflux.expression.enzyme_abundance` (reactions with one GPR rule share ``e_i``);
    ``σ_i`` is the abundance's standard deviation floored at the smallest positive one (1 where
    none is given), as in :func:`~bayesflux.methods.falcon`.

    Parameters
    ----------
    network
        Network with GPR rules.
    expression, std
        Gene expression means and standard deviations, or ``abundance``: a precomputed
        single-sample :func:`~bayesflux.expression.enzyme_abundance`.
    scale_bounds
        Support of ``n`` (flux per unit abundance). Default: ``Σ_j max|v_j| / Σ_i e_i`` times
        ``[1e-4, 10]`` over the FVA ranges of the network.
    prior
        ``"uniform"`` (default: the posterior mode is FALCON's optimum) or ``"log-uniform"``.
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
        prior: str = "uniform",
        name: str = "expression",
    ) -> None:
        network = as_network(network)
        ds = _abundance(network, expression, std, abundance, gpr_method)
        e, s, members = group_abundance(ds)
        if e.size == 0:
            raise NetworkError(f"no reaction of {network.id!r} has a measured gene")
        positive = s[s > 0]
        self.sigma = np.maximum(s, positive.min()) if positive.size else np.ones_like(e)
        self.abundance = e
        self.members = members.astype(float)  # groups x reactions
        self.groups = np.unique(ds["group"].values[ds["group"].values >= 0])[: e.size]
        self.name = name
        self.scale_name = f"{name}_scale"
        if scale_bounds is None:
            vmax = np.maximum(np.abs(network.lb), np.abs(network.ub))
            total = float(np.sum(np.where(np.isfinite(vmax), vmax, 0.0) * members.any(axis=0)))
            ref = total / float(e.sum()) if e.sum() > 0 else 1.0
            scale_bounds = (1e-4 * ref, 10.0 * ref)
        self.latents = (Latent(self.scale_name, *scale_bounds, prior=prior),)
        self.couplings: tuple[Coupling, ...] = ()

    def group_flux(self, v: jax.Array) -> jax.Array:
        """``g_i(v) = Σ_{j∈R_i} |v_j|`` per group."""
        return jnp.abs(v) @ self.members.T

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        n = theta[self.scale_name]
        dev = jnp.abs(self.group_flux(v) / n - self.abundance) / self.sigma
        return -jnp.sum(dev) - np.sum(np.log(2.0 * self.sigma))

    def best_scale(self, v: np.ndarray) -> float:
        """The ``n`` maximising the likelihood at fixed ``v``: ``1/n`` is the weighted median of
        ``e_i / g_i`` with weights ``g_i / σ_i`` (the objective is piecewise linear in ``1/n``)."""
        g = np.abs(np.asarray(v)) @ self.members.T
        ok = g > 0
        ratio, weight = self.abundance[ok] / g[ok], g[ok] / self.sigma[ok]
        order = np.argsort(ratio)
        cum = np.cumsum(weight[order])
        u = ratio[order][np.searchsorted(cum, 0.5 * cum[-1])]
        return float(1.0 / u)

    def observed_data(self) -> dict[str, xr.DataArray]:
        coords = {"group": np.arange(self.abundance.size)}
        return {
            f"{self.name}": xr.DataArray(self.abundance, dims="group", coords=coords),
            f"{self.name}_sigma": xr.DataArray(self.sigma, dims="group", coords=coords),
        }


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
            e[known], dims="capacity_reaction",
            coords={"capacity_reaction": [network.reactions[j] for j in known]},
        )

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        return jnp.zeros(())  # a prior: its content is the couplings

    def observed_data(self) -> dict[str, xr.DataArray]:
        return {f"{self.name}_abundance": self.relative_abundance}


class Labeling13C:
    """13C measurements of a :class:`~bayesflux.labeling.LabelingProblem` as a likelihood.

    Net fluxes of the labelling network come from the flux vector ``v`` (labelling reaction ``r``
    is network reaction ``reaction_map.get(r, r)``); each reversible reaction's exchange flux is a
    latent in ``[0, problem.xch_max]``. With ``max_abs_drg`` (kJ/mol per labelling reaction, e.g.
    the largest ``|ΔrG|`` thermodynamic FVA allows) the flux-force bound
    ``v_xch >= c |v_net|``, ``c = 1 / (exp(|ΔrG|max / RT) - 1)``, joins the support as two linear
    couplings (the least conservative bound, seed 002).
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
        self.xch_names = tuple(f"{name}_xch[{r}]" for r in rev)
        self.latents = tuple(Latent(nm, 0.0, problem.xch_max) for nm in self.xch_names)
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
            xch = self.xch_names[rev.index(r)]
            rows.append(Coupling({target: -c}, {xch: 1.0}, lower=0.0))
            rows.append(Coupling({target: c}, {xch: 1.0}, lower=0.0))
        self.couplings = tuple(rows)

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        net = v[self.index]
        xch = jnp.stack([theta[nm] for nm in self.xch_names]) if self.xch_names else jnp.zeros(0)
        return self.problem.log_likelihood(net, xch)

    def observed_data(self) -> dict[str, xr.DataArray]:
        values, sd = self.problem.observations()
        coords = {"measurement": self.problem.labels()}
        return {
            f"{self.name}": xr.DataArray(values, dims="measurement", coords=coords),
            f"{self.name}_sd": xr.DataArray(sd, dims="measurement", coords=coords),
        }
