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

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.linalg
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.models.blocks import FluxPolytope
from bayesflux.network import Network, as_network
from bayesflux.results import provenance
from bayesflux.sampling.polytope import (
    LinearConstraint,
    Polytope,
    chebyshev_center,
    nearest_interior,
    normalise_rows,
    polytope,
)
from bayesflux.sampling.rounding import Rounding

__all__ = ["JOINT_SITE", "Coupling", "FluxPosterior", "Latent", "Term", "joint_polytope"]

#: The hidden NumPyro site of a posterior with latents: the joint vector ``x = (v, θ)``.
JOINT_SITE = "_flux_and_latents"

log = logging.getLogger(__name__)


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


class FluxPrior(Protocol):
    """A density on the fluxes beside the uniform one: ``log_density(v)`` of ``v (..., n)``."""

    def log_density(self, v: jax.Array) -> jax.Array: ...


class Term(Protocol):
    """A likelihood (or a prior on latents) that a :class:`FluxPosterior` adds up.

    ``log_likelihood(v, theta)`` takes fluxes ``v (n,)`` in network order and ``theta``, a mapping
    from latent names to scalars; it must be a pure JAX function.
    """

    name: str
    latents: tuple[Latent, ...]
    couplings: tuple[Coupling, ...]

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array: ...

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """Add the term's observed NumPyro sites (:mod:`bayesflux.models.blocks`)."""


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
    flux_prior
        A density on the fluxes times the uniform one, e.g.
        :class:`~bayesflux.models.Parsimony` (``log_density(v)``; default none: uniform).
    """

    def __init__(
        self,
        network,
        terms: Sequence[Term] = (),
        *,
        constraints: Sequence[LinearConstraint | tuple] = (),
        flux_prior: FluxPrior | None = None,
    ) -> None:
        self.network = as_network(network)
        self.flux_prior = flux_prior
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
        out = self._log_prior(x)
        for value in self.term_log_likelihoods(x).values():
            out = out + value
        return out

    def _log_prior(self, x: jax.Array) -> jax.Array:
        """``log p(v) + Σ_k log p(θ_k)`` of ``x = (v, θ)`` (``p(v)`` the flux prior's)."""
        v, theta = self.split(x)
        out = sum((lat.log_prior(theta[lat.name]) for lat in self.latents), jnp.zeros(()))
        return out if self.flux_prior is None else out + self.flux_prior.log_density(v)

    def model(self) -> Callable[[], None]:
        """This posterior as a NumPyro model (:mod:`bayesflux.models.blocks`).

        Without latents the site ``flux`` is uniform on the flux polytope; with latents the
        hidden site ``_flux_and_latents`` is uniform on the joint polytope times the latents'
        priors, and ``flux`` and each latent are deterministic sites. Each term adds its
        observed sites (``term.observe(v, theta)``; a term without ``observe`` adds a factor).
        """
        n, names, terms = self._n, self.latent_names, self.terms
        poly = self.polytope
        prior = self._log_prior if self.latents or self.flux_prior is not None else None

        def flux_model() -> None:
            theta: dict[str, jax.Array] = {}
            if not names:
                v = numpyro.sample("flux", FluxPolytope(poly, log_density=prior))
            else:
                x = numpyro.sample(JOINT_SITE, FluxPolytope(poly, log_density=prior))
                v = numpyro.deterministic("flux", x[..., :n])
                theta = {nm: numpyro.deterministic(nm, x[..., n + i]) for i, nm in enumerate(names)}
            for term in terms:
                observe = getattr(term, "observe", None)
                if observe is None:
                    numpyro.factor(term.name, term.log_likelihood(v, theta))
                else:
                    observe(v, theta)

        return flux_model

    def starts(
        self, x: np.ndarray, num_chains: int, *, spread: float = 0.1, seed: int = 0
    ) -> dict[str, jax.Array]:
        """Chain starts (NumPyro ``init_params``) dispersed around a point ``x = (v, θ)`` of the
        joint polytope, e.g. the posterior's mode: chain ``c`` starts at
        ``(1 - s_c) x + s_c u_c``, ``u_c`` an approximate uniform draw of the polytope and
        ``s_c`` such that the step's size is ``spread`` times ``Σ|x|``. Each start is interior
        (a convex combination with an interior point), so a mode on a vertex is a valid
        centre."""
        from bayesflux.models.blocks import _pseudo_inverse

        poly = self.polytope
        x = np.asarray(x, dtype=float)
        if x.shape != (poly.N.shape[0],):
            raise ConfigError(
                f"a start needs {poly.N.shape[0]} values (fluxes, then latents "
                f"{list(self.latent_names)}), got shape {x.shape}"
            )
        z = _pseudo_inverse(poly) @ (x - poly.v0)
        excess = poly.A @ z - poly.b
        off = np.abs(poly.v0 + poly.N @ z - x)
        if excess.max() > 1e-6 * (1.0 + np.abs(poly.b).max()) or off.max() > 1e-6 * (
            1.0 + np.abs(x).max()
        ):
            worst = int(np.argmax(off))
            raise ConfigError(
                "the start is not in the posterior's polytope (largest steady-state or bound "
                f"violation {max(excess.max(), off.max()):.3g}; reaction "
                f"{poly.reactions[worst]!r} is off by {off[worst]:.3g})"
            )
        if not spread > 0:
            raise ConfigError(f"spread must be > 0, got {spread}")
        keys = jax.random.split(jax.random.key(int(seed)), int(num_chains))
        far = np.stack([np.asarray(FluxPolytope(poly).sample(k)) for k in keys])
        u = np.stack([_pseudo_inverse(poly) @ (f - poly.v0) for f in far])
        z = nearest_interior(poly.A, poly.b, z)  # a solver's vertex may overstep a facet
        size = np.abs(far - x).sum(axis=1)
        share = np.minimum(spread * max(np.abs(x).sum(), 1e-12) / np.maximum(size, 1e-300), 1.0)
        z_starts = (1.0 - share[:, None]) * z + share[:, None] * u
        site = JOINT_SITE if self.latents else "flux"
        return {site: jnp.asarray(z_starts)}

    def sample(
        self,
        *,
        method: Literal["metropolis", "hmc", "slice"] = "hmc",
        num_chains: int = 4,
        num_draws: int = 1000,
        num_warmup: int | None = None,
        thinning: int | None = None,
        kernel: Literal["coordinate", "random"] = "coordinate",
        rounding: Literal["ep", "mve", "none"] | Rounding = "ep",
        step_size: float | np.ndarray | None = None,
        adapt_step_size: bool = True,
        target_acceptance: float = 0.4,
        trajectory_length: float = 3.0,
        seed: int = 0,
        block_size: int | None = None,
        progress: bool = False,
        checkpoint: str | Path | None = None,
        start: np.ndarray | None = None,
        start_spread: float = 0.1,
        scale: np.ndarray | None = None,
        scale_direction: np.ndarray | None = None,
        tune_rounds: int = 0,
        tune_draws: int = 200,
    ) -> xr.DataTree:
        """Sample the posterior on the joint polytope: :meth:`model` run by a kernel of
        :mod:`bayesflux.infer` (:func:`bayesflux.infer.sample`).

        ``method``:

        * ``"hmc"`` (default): :class:`~bayesflux.infer.ReflectiveHMC`: reflection off the
          polytope's facets, NumPyro's step-size and dense mass-matrix adaptation from
          ``rounding``'s covariance, mean integration time ``trajectory_length``;
        * ``"metropolis"``: :class:`~bayesflux.infer.HitAndRun` along ``kernel`` directions
          (``"coordinate"`` or ``"random"``), ``thinning`` moves per draw (default: the
          dimension): a uniform chord point accepted by Metropolis, or with ``step_size`` a
          Gaussian step (adapted in warm-up unless ``adapt_step_size=False``, toward
          ``target_acceptance``);
        * ``"slice"``: :class:`~bayesflux.infer.HitAndRunSlice`, ``thinning`` moves per draw.

        The hit-and-run kernels adapt their rounding to the posterior's covariance in warm-up,
        starting from ``rounding`` (a :class:`~bayesflux.sampling.Rounding` in the coordinates of
        ``self.polytope``, e.g. ``bayesflux.sampling.covariance_rounding`` of a fit).

        Returns an ArviZ DataTree (:func:`bayesflux.infer.build_datatree`): ``posterior``
        (``flux`` over ``reaction`` and one variable per latent), ``sample_stats``,
        pointwise ``log_likelihood`` (one variable per observed term), ``observed_data`` and
        ``constant_data``. ``checkpoint`` makes an interrupted run resume without losing
        finished blocks. ``start`` (a point ``(v, θ)``, e.g. a mode): the chains start
        dispersed around it (:meth:`starts`, ``start_spread``) instead of over the polytope.
        ``scale`` (``"hmc"`` only): guessed posterior standard deviations of ``(v, θ)`` (e.g. an
        expression mode's ``scale``): the kernel then moves in coordinates whitened by them
        (``ReflectiveHMC(precondition=True)`` from :meth:`scale_rounding`) and adapts its mass
        matrix there, which keeps NumPyro's shrinkage toward ``1e-3 I`` away from posteriors
        whose variances are far smaller (Yeast 5.21's expression posterior).
        ``scale_direction``: one more direction of ``(v, θ)`` along which the posterior spreads
        by its length (e.g. an expression mode's ``direction``: the fluxes' common scale).
        ``tune_rounds`` (``"hmc"`` only): before the run, that many short runs (``tune_draws``
        warm-up and kept draws per chain) each replace the whitening by the covariance of their
        kept draws pooled over chains (:meth:`pooled_rounding`) and hand their last draws on as
        starts. NumPyro adapts each chain's dense mass matrix from that chain's own warm-up
        window, which in a few hundred dimensions leaves most directions at its shrinkage
        target; pooled chains give a full-rank estimate. Pilots and the run then adapt only a
        diagonal mass matrix in the learned coordinates.
        """
        from bayesflux.infer import HitAndRun, HitAndRunSlice, ReflectiveHMC
        from bayesflux.infer import sample as infer_sample

        if method not in ("metropolis", "hmc", "slice"):
            raise ConfigError(
                f"unknown sampling method {method!r}; expected 'metropolis', 'hmc' or 'slice'"
            )
        model = self.model()
        if (scale is not None or tune_rounds) and method != "hmc":
            raise ConfigError("scale and tune_rounds (whitenings of the coordinates) need 'hmc'")
        if tune_rounds < 0 or tune_draws < 1:
            raise ConfigError(
                f"tune_rounds must be >= 0 and tune_draws >= 1, got {tune_rounds}, {tune_draws}"
            )
        if scale is not None:
            rounding = self.scale_rounding(scale, start, direction=scale_direction)
        init_params = (
            None
            if start is None
            else self.starts(start, num_chains, spread=start_spread, seed=seed)
        )
        for round_ in range(tune_rounds):
            kernel_ = ReflectiveHMC(
                model,
                rounding=rounding,
                trajectory_length=trajectory_length,
                precondition=True,
                dense_mass=False,  # the pooled draws learn the correlations; a chain, its scales
            )
            with warnings.catch_warnings():  # a pilot is not expected to converge
                warnings.simplefilter("ignore")
                pilot = infer_sample(
                    model, kernel=kernel_, num_draws=tune_draws, num_warmup=tune_draws,
                    num_chains=num_chains, seed=seed + 7919 * (round_ + 1), progress=progress,
                    init_params=init_params, **self.tree_options(),
                )  # fmt: skip
            log.info(
                "tuning round %d: max R-hat %.3f, min bulk ESS %.0f",
                round_ + 1, pilot.attrs["max_rhat"], pilot.attrs["min_ess_bulk"],
            )  # fmt: skip
            rounding, last = self.pooled_rounding(pilot, rounding)
            init_params = {JOINT_SITE if self.latents else "flux": jnp.asarray(last)}
        if method == "hmc":
            chosen = ReflectiveHMC(
                model,
                rounding=rounding,
                trajectory_length=trajectory_length,
                precondition=scale is not None or tune_rounds > 0,
                dense_mass=tune_rounds == 0,
            )
            steps = thinning or 1
        elif method == "metropolis":
            chosen = HitAndRun(
                model,
                direction=kernel,
                moves=thinning,
                step_size=step_size,
                adapt_step_size=adapt_step_size,
                target_accept_prob=target_acceptance,
                rounding=rounding,
            )
            steps = 1
        else:
            chosen = HitAndRunSlice(model, direction=kernel, moves=thinning, rounding=rounding)
            steps = 1
        return infer_sample(
            model,
            kernel=chosen,
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=num_chains,
            thinning=steps,
            seed=seed,
            checkpoint=checkpoint,
            block_size=block_size,
            progress=progress,
            init_params=init_params,
            **self.tree_options(),
        )

    def pooled_rounding(
        self, tree: xr.DataTree, prior: Rounding | str = "ep"
    ) -> tuple[Rounding, np.ndarray]:
        """The whitening learned from a run's draws, and its chains' last points (in ``z``).

        The covariance of the draws' reduced coordinates ``z``, pooled over chains (the spread
        between chains counts: they are to cross it), taken in the coordinates ``u`` of the
        previous whitening ``Σ₀ = L Lᵀ`` (``prior``; the polytope's EP shape for ``"ep"``):
        ``S_u = Q diag(μ) Qᵀ``. With ``n`` pooled draws in ``d > n - 1`` dimensions, the
        ``d - n + 1`` directions the draws do not span (and any along which no chain moved, ``μ``
        below ``1e-10`` of the largest) keep ``Σ₀``'s variance (``μ = 1``), so the whitening is
        full rank however few the draws: ``Σ = L Q diag(μ) Qᵀ Lᵀ``."""
        from bayesflux.models.blocks import _pseudo_inverse
        from bayesflux.sampling.rounding import covariance_rounding, round_polytope

        poly = self.polytope
        post = tree["posterior"]
        parts = [post["flux"].values] + [post[n].values[..., None] for n in self.latent_names]
        z = (np.concatenate(parts, axis=-1) - poly.v0) @ _pseudo_inverse(poly).T
        flat = z.reshape(-1, poly.dim)
        L = (round_polytope(poly, prior) if isinstance(prior, str) else prior).lower_factor()
        u = scipy.linalg.solve_triangular(L, (flat - flat.mean(axis=0)).T, lower=True)
        mu, Q = np.linalg.eigh(u @ u.T / max(flat.shape[0] - 1, 1))
        unseen = np.arange(poly.dim) < poly.dim - min(flat.shape[0] - 1, poly.dim)
        mu[unseen | (mu <= 1e-10 * mu.max())] = 1.0  # also directions no chain moved along
        last = np.stack([nearest_interior(poly.A, poly.b, point) for point in z[:, -1]])
        # Σ's factor, not Σ: its scales span the previous whitening's many orders of magnitude
        factor = L @ (Q * np.sqrt(mu))
        return covariance_rounding(poly, factor=factor, center=flat.mean(axis=0)), last

    def scale_rounding(
        self,
        scale: np.ndarray,
        center: np.ndarray | None = None,
        *,
        direction: np.ndarray | None = None,
    ) -> Rounding:
        """The :class:`~bayesflux.sampling.Rounding` of the polytope's coordinates ``z``
        (``x = v0 + N z``) whose covariance is ``(Nᵀ diag(scale⁻²) N + C⁻¹)⁻¹``: each
        coordinate of ``x = (v, θ)`` known to about ``scale`` as if observed alone (a tight flux
        stays tight when it shares ``z`` with loose ones), within the polytope's shape ``C``
        (its Expectation-Propagation covariance: thin directions stay thin), plus ``δ δᵀ`` for
        a ``direction`` ``δ`` of ``x`` (carried to ``z``) along which the posterior spreads
        further than coordinate-wise scales allow; centred at ``center`` if given."""
        from bayesflux.models.blocks import _pseudo_inverse
        from bayesflux.sampling.rounding import covariance_rounding, round_polytope

        poly = self.polytope
        scale = np.asarray(scale, dtype=float)
        if scale.shape != (poly.N.shape[0],) or not np.all(np.isfinite(scale) & (scale > 0)):
            raise ConfigError(
                f"scale needs {poly.N.shape[0]} positive finite values (fluxes, then latents "
                f"{list(self.latent_names)}), got shape {scale.shape}"
            )
        shape = round_polytope(poly, "ep").cov
        precision = (poly.N.T / scale**2) @ poly.N + np.linalg.inv(shape)
        cov = np.linalg.inv(0.5 * (precision + precision.T))
        if direction is not None:
            direction = np.asarray(direction, dtype=float)
            if direction.shape != scale.shape or not np.all(np.isfinite(direction)):
                raise ConfigError(f"direction needs {scale.size} finite values")
            u = _pseudo_inverse(poly) @ direction
            cov = cov + np.outer(u, u)
        z = None
        if center is not None:
            z = nearest_interior(poly.A, poly.b, _pseudo_inverse(poly) @ (center - poly.v0))
        return covariance_rounding(poly, 0.5 * (cov + cov.T), center=z)

    def tree_options(self) -> dict:
        """``coords``, ``dims`` and provenance ``attrs`` of this posterior's DataTrees."""
        dims = {"flux": ["reaction"]} if self.latents else {}
        attrs = provenance(
            "flux posterior",
            self.network,
            terms=",".join(t.name for t in self.terms) or "none",
            latents=",".join(self.latent_names) or "none",
            flux_prior=repr(self.flux_prior) if self.flux_prior is not None else "uniform",
            **{k: v for term in self.terms for k, v in getattr(term, "attrs", {}).items()},
        )
        return {"coords": {"reaction": list(self.network.reactions)}, "dims": dims, "attrs": attrs}

    def to_datatree(
        self, x: np.ndarray, sample_stats: xr.Dataset | None = None, *, attrs: dict | None = None
    ) -> xr.DataTree:
        """Draws ``x (chain, draw, n + k)`` of ``(v, θ)`` (any sampler) as the DataTree of
        :meth:`sample`, built by :func:`bayesflux.infer.build_datatree` from :meth:`model`."""
        from bayesflux.infer import build_datatree

        x = np.asarray(x)
        if self.latents:
            v, theta = self.split(x)
            samples = {JOINT_SITE: x, "flux": v, **{k: np.asarray(t) for k, t in theta.items()}}
        else:
            samples = {"flux": x}
        stats = {k: da.values for k, da in (sample_stats or xr.Dataset()).data_vars.items()}
        options = self.tree_options()
        sampler = (attrs or {}).get("method", "hit-and-run")
        sampler = "hit-and-run Metropolis" if sampler == "hit-and-run" else sampler
        options["attrs"].update(
            {k: v for k, v in (attrs or {}).items() if k not in ("method", "network")},
            method=f"flux posterior ({sampler})",
        )
        return build_datatree(self.model(), samples, stats, **options)
