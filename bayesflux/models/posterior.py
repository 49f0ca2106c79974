"""A flux posterior: uniform prior on the flux polytope, latent scalars, composable likelihoods.

The prior is uniform on ``P = {v : S v = 0, lb <= v <= ub, extra linear constraints}`` (DESIGN.md,
"Bayesian view"). Terms add latent scalars ``θ`` (FALCON's scale ``n``, E-Flux's capacity ``α``,
exchange fluxes of a 13C model) with box support and a prior, linear couplings between fluxes and
latents (``|v_j| <= α e_j``, flux-force bounds ``v_xch >= c |v_net|``) and log-likelihoods. The
joint support of ``x = (v, θ)`` stays a polytope, so the exact hit-and-run kernels of
:mod:`bayesflux.sampling` move in it and hit-and-run Metropolis corrects for the likelihoods::

    log p(v, θ | data) = Σ_k log p(θ_k) + Σ_terms log L_term(v, θ) + const   on  P_joint

:meth:`FluxPosterior.sample` returns an ArviZ DataTree: ``posterior`` (``flux`` over ``reaction``
and one variable per latent), ``sample_stats``, ``log_likelihood`` (one variable per term),
``observed_data`` and ``constant_data`` (flux bounds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.network import Network, as_network
from bayesflux.results import provenance
from bayesflux.sampling.polytope import (
    LinearConstraint,
    Polytope,
    chebyshev_center,
    normalise_rows,
    polytope,
)
from bayesflux.sampling.reflective_hmc import sample_hmc
from bayesflux.sampling.rounding import Rounding
from bayesflux.sampling.sample import sample_fluxes
from bayesflux.sampling.slice import sample_slice

__all__ = ["Coupling", "FluxPosterior", "Latent", "Term", "joint_polytope"]


@dataclass(frozen=True)
class Latent:
    """A latent scalar on ``[lower, upper]`` with a ``uniform`` or ``log-uniform`` prior."""

    name: str
    lower: float
    upper: float
    prior: Literal["uniform", "log-uniform"] = "uniform"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lower) and np.isfinite(self.upper) and self.lower < self.upper):
            raise ConfigError(
                f"latent {self.name!r} needs finite bounds lower < upper, got "
                f"[{self.lower}, {self.upper}]"
            )
        if self.prior not in ("uniform", "log-uniform"):
            raise ConfigError(f"latent {self.name!r}: unknown prior {self.prior!r}")
        if self.prior == "log-uniform" and self.lower <= 0:
            raise ConfigError(f"latent {self.name!r}: a log-uniform prior needs lower > 0")

    def log_prior(self, x: jax.Array) -> jax.Array:
        """``0`` (uniform) or ``-log x`` (log-uniform), up to a constant, on the support."""
        return -jnp.log(x) if self.prior == "log-uniform" else jnp.zeros_like(x)


@dataclass(frozen=True)
class Coupling:
    """``lower <= Σ_j a_j v_j + Σ_k b_k θ_k <= upper`` (fluxes by id, latents by name)."""

    fluxes: Mapping[str, float]
    latents: Mapping[str, float] = field(default_factory=dict)
    lower: float = -np.inf
    upper: float = np.inf


class Term(Protocol):
    """A likelihood (or a prior on latents) that a :class:`FluxPosterior` adds up.

    ``log_likelihood(v, theta)`` takes fluxes ``v (n,)`` in network order and ``theta``, a mapping
    from latent names to scalars; it must be a pure JAX function.
    """

    name: str
    latents: tuple[Latent, ...]
    couplings: tuple[Coupling, ...]

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array: ...

    def observed_data(self) -> dict[str, xr.DataArray]: ...


def joint_polytope(
    network: Network,
    latents: Sequence[Latent] = (),
    couplings: Sequence[Coupling] = (),
    *,
    constraints: Sequence[LinearConstraint | tuple] = (),
) -> Polytope:
    """The polytope of ``x = (v, θ)``: the flux polytope times the latent boxes, cut by couplings.

    Fluxes keep their reduced coordinates ``v = v0 + N z`` (:func:`~bayesflux.sampling.polytope`);
    latents are appended as identity coordinates. ``flux_min``/``flux_max`` are the flux polytope's
    ranges (not tightened by the couplings) and the latent boxes.
    """
    # couplings without latents are flux constraints: the flux polytope handles them (equalities
    # included, which as two half-spaces would leave no interior)
    constraints = list(constraints) + [
        LinearConstraint(dict(c.fluxes), c.lower, c.upper) for c in couplings if not c.latents
    ]
    couplings = [c for c in couplings if c.latents]
    poly = polytope(network, constraints=constraints)
    names = [lat.name for lat in latents]
    clash = sorted(set(names) & set(network.reactions)) or sorted(
        {n for n in names if names.count(n) > 1}
    )
    if clash:
        raise ConfigError(f"latent name(s) {clash} repeat or clash with reaction ids")
    if not latents and not couplings:
        return poly
    n, d, k = network.n_reactions, poly.dim, len(latents)
    lo = np.array([lat.lower for lat in latents])
    hi = np.array([lat.upper for lat in latents])
    rows = [np.hstack([poly.A, np.zeros((poly.n_constraints, k))])]
    rhs = [poly.b]
    eye = np.eye(k)
    rows += [np.hstack([np.zeros((k, d)), eye]), np.hstack([np.zeros((k, d)), -eye])]
    rhs += [hi, -lo]
    latent_index = {name: i for i, name in enumerate(names)}
    for c, coupling in enumerate(couplings):
        a = np.zeros(n)
        for rxn, coef in coupling.fluxes.items():
            a[network.indices([rxn])[0]] += float(coef)
        bl = np.zeros(k)
        for name, coef in coupling.latents.items():
            if name not in latent_index:
                raise ConfigError(f"coupling {c} names unknown latent {name!r}")
            bl[latent_index[name]] += float(coef)
        row, offset = np.concatenate([a @ poly.N, bl]), float(a @ poly.v0)
        if np.isfinite(coupling.upper):
            rows.append(row[None])
            rhs.append(np.array([coupling.upper - offset]))
        if np.isfinite(coupling.lower):
            rows.append(-row[None])
            rhs.append(np.array([offset - coupling.lower]))
    A, b = normalise_rows(np.vstack(rows), np.concatenate(rhs))
    center, radius = chebyshev_center(A, b, what=f"the joint polytope of {network.id!r}")
    N = np.zeros((n + k, d + k))
    N[:n, :d] = poly.N
    N[n:, d:] = eye
    return Polytope(
        reactions=tuple(network.reactions) + tuple(names),
        v0=np.concatenate([poly.v0, np.zeros(k)]),
        N=N,
        A=A,
        b=b,
        center=center,
        radius=radius,
        flux_min=np.concatenate([poly.flux_min, lo]),
        flux_max=np.concatenate([poly.flux_max, hi]),
        id=network.id,
    )


class FluxPosterior:
    """Uniform flux prior on a network's polytope plus latent variables and likelihood terms.

    Parameters
    ----------
    network
        A :class:`~bayesflux.Network`, ``cobra.Model``, file or bundled dataset name.
    terms
        Likelihood terms (:mod:`bayesflux.models.terms`).
    constraints
        Extra linear constraints on the fluxes (e.g. a growth floor).
    """

    def __init__(
        self,
        network,
        terms: Sequence[Term] = (),
        *,
        constraints: Sequence[LinearConstraint | tuple] = (),
    ) -> None:
        self.network = as_network(network)
        self.terms = tuple(terms)
        term_names = [t.name for t in self.terms]
        if len(set(term_names)) != len(term_names):
            raise ConfigError(f"likelihood terms need distinct names, got {term_names}")
        self.latents = tuple(lat for t in self.terms for lat in t.latents)
        couplings = [c for t in self.terms for c in t.couplings]
        self.polytope = joint_polytope(
            self.network, self.latents, couplings, constraints=constraints
        )
        self._n = self.network.n_reactions
        self.log_density = jax.jit(self._log_density)

    @property
    def latent_names(self) -> tuple[str, ...]:
        return tuple(lat.name for lat in self.latents)

    def split(self, x: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``x = (v, θ)`` -> fluxes ``v`` and ``{latent: value}`` (any leading batch shape)."""
        v = x[..., : self._n]
        return v, {name: x[..., self._n + i] for i, name in enumerate(self.latent_names)}

    def term_log_likelihoods(self, x: jax.Array) -> dict[str, jax.Array]:
        """Each term's log-likelihood at one point ``x``."""
        v, theta = self.split(x)
        return {t.name: t.log_likelihood(v, theta) for t in self.terms}

    def _log_density(self, x: jax.Array) -> jax.Array:
        _, theta = self.split(x)
        out = sum((lat.log_prior(theta[lat.name]) for lat in self.latents), jnp.zeros(()))
        for value in self.term_log_likelihoods(x).values():
            out = out + value
        return out

    def sample(
        self,
        *,
        method: Literal["metropolis", "hmc", "slice"] = "metropolis",
        num_chains: int = 4,
        num_draws: int = 1000,
        num_warmup: int | None = None,
        thinning: int | None = None,
        kernel: Literal["coordinate", "random"] = "coordinate",
        rounding: Literal["ep", "mve", "none"] | Rounding = "ep",
        step_size: float | np.ndarray | None = None,
        adapt_step_size: bool = True,
        target_acceptance: float = 0.4,
        seed: int = 0,
        block_size: int = 100,
        progress: bool = False,
        checkpoint: str | Path | None = None,
    ) -> xr.DataTree:
        """Sample the posterior on the joint polytope.

        ``method``:

        * ``"metropolis"`` (default): hit-and-run Metropolis (options as in ``sample_fluxes``);
        * ``"hmc"``: Hamiltonian Monte Carlo reflecting off the polytope's facets, steps and
          rounding adapted in warm-up (:func:`bayesflux.sampling.reflective_hmc.sample_hmc`;
          ``rounding`` is the initial rounding, ``kernel``, ``thinning``, ``step_size`` and the
          other Metropolis options are not used). It needs a differentiable log density and
          mixes where hit-and-run crawls: along the creases of FALCON's Laplace likelihood;
        * ``"slice"``: hit-and-run slice sampling with the same rounding adaptation
          (:func:`bayesflux.sampling.slice.sample_slice`; ``kernel`` and ``thinning`` used).

        ``checkpoint`` needs ``"metropolis"`` or ``"hmc"``. With precise data the posterior fills
        a small part of the polytope; for ``"metropolis"`` give a Gaussian ``step_size`` (adapted in
        warm-up unless ``adapt_step_size=False``) and a ``rounding`` built from the posterior's
        covariance (``bayesflux.sampling.kernel.covariance_rounding`` in the coordinates of
        ``self.polytope``; chains start at its centre). ``"hmc"`` and ``"slice"`` estimate that
        covariance themselves in warm-up.

        Returns an ArviZ DataTree with ``posterior`` (``flux`` over ``reaction``, latents),
        ``sample_stats`` (``lp`` and the sampler's statistics), ``log_likelihood`` (one
        variable per term), ``observed_data`` and ``constant_data``. ``checkpoint`` makes an
        interrupted run resume without losing finished blocks.
        """
        logdensity = self.log_density if (self.terms or self.latents) else None
        if method not in ("metropolis", "hmc", "slice"):
            raise ConfigError(
                f"unknown sampling method {method!r}; expected 'metropolis', 'hmc' or 'slice'"
            )
        if method != "metropolis":
            if checkpoint is not None and method == "slice":
                raise ConfigError("checkpoint needs method='metropolis' or 'hmc', not 'slice'")
            target = logdensity if logdensity is not None else (lambda x: jnp.zeros(()))
            common = dict(
                num_chains=num_chains,
                num_draws=num_draws,
                num_warmup=num_warmup,
                rounding=rounding,
                seed=seed,
                progress=progress,
            )
            if method == "hmc":
                raw = sample_hmc(self.polytope, target, checkpoint=checkpoint, **common)
            else:
                raw = sample_slice(
                    self.polytope, target, direction=kernel, thinning=thinning, **common
                )
            stats = raw["sample_stats"].to_dataset()
            return self.to_datatree(raw["posterior"]["flux"].values, stats, attrs=dict(raw.attrs))
        raw = sample_fluxes(
            self.polytope,
            num_chains=num_chains,
            num_draws=num_draws,
            num_warmup=num_warmup,
            thinning=thinning,
            kernel=kernel,
            rounding=rounding,
            logdensity_fn=logdensity,
            step_size=step_size,
            adapt_step_size=adapt_step_size,
            target_acceptance=target_acceptance,
            seed=seed,
            block_size=block_size,
            progress=progress,
            checkpoint=checkpoint,
        )
        return self.to_datatree(
            raw["posterior"]["flux"].values,
            raw["sample_stats"].to_dataset(),
            attrs=dict(raw.attrs),
        )

    def to_datatree(
        self, x: np.ndarray, sample_stats: xr.Dataset | None = None, *, attrs: dict | None = None
    ) -> xr.DataTree:
        """Draws ``x (chain, draw, n + k)`` of ``(v, θ)`` as the DataTree of :meth:`sample`."""
        x = np.asarray(x)
        chain, draw = np.arange(x.shape[0]), np.arange(x.shape[1])
        coords = {"chain": chain, "draw": draw}
        post = {"flux": (("chain", "draw", "reaction"), x[..., : self._n])}
        for i, name in enumerate(self.latent_names):
            post[name] = (("chain", "draw"), x[..., self._n + i])
        posterior = xr.Dataset(post, coords={**coords, "reaction": list(self.network.reactions)})
        flat = jnp.asarray(x.reshape(-1, x.shape[-1]))
        # in batches: all draws of a long run at once would hold every term's intermediates
        loglik = (
            jax.lax.map(jax.jit(self.term_log_likelihoods), flat, batch_size=1024)
            if self.terms
            else {}
        )
        log_likelihood = xr.Dataset(
            {k: (("chain", "draw"), np.asarray(v).reshape(x.shape[:2])) for k, v in loglik.items()},
            coords=coords,
        )
        observed = {}
        for t in self.terms:
            observed.update(t.observed_data())
        constant = xr.Dataset(
            {
                "lower_bound": ("reaction", self.network.lb),
                "upper_bound": ("reaction", self.network.ub),
            },
            coords={"reaction": list(self.network.reactions)},
        )
        sampler = (attrs or {}).get("method", "hit-and-run")
        sampler = "hit-and-run Metropolis" if sampler == "hit-and-run" else sampler
        meta = provenance(
            f"flux posterior ({sampler})",
            self.network,
            terms=",".join(t.name for t in self.terms) or "none",
            latents=",".join(self.latent_names) or "none",
            **{k: v for k, v in (attrs or {}).items() if k not in ("method", "network")},
        )
        # an unnamed root: ArviZ reads a DataTree *named* "posterior" as the posterior group
        # itself (arviz_base.convert_to_dataset), so az.summary(tree) would find no variables
        tree = xr.DataTree.from_dict(
            {
                "posterior": posterior.assign_attrs(meta),
                "sample_stats": (
                    sample_stats if sample_stats is not None else xr.Dataset(coords=coords)
                ),
                "log_likelihood": log_likelihood,
                "observed_data": xr.Dataset(observed),
                "constant_data": constant,
            }
        )
        tree.attrs.update(meta)
        return tree
