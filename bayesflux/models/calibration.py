"""Simulation-based calibration (SBC) of a :class:`~bayesflux.models.FluxPosterior`.

Talts, Betancourt, Simpson, Vehtari and Gelman (2018), "Validating Bayesian inference algorithms
with simulation-based calibration", arXiv:1804.06788. For replications ``r = 1..R``:

1. draw ``x* = (v*, θ*)`` from the prior (uniform on the joint polytope of fluxes and latents,
   times the latents' priors) by a long uniform hit-and-run chain (Metropolised for log-uniform
   latents) started at the rounding centre;
2. simulate data ``y* ~ p(y | x*)``: each term's model prediction plus Gaussian noise with the
   term's standard deviations (Laplace noise and a scale ``k`` from its prior for
   :class:`~bayesflux.models.ExpressionLaplace`);
3. run hit-and-run Metropolis (:class:`bayesflux.infer.HitAndRun` on a NumPyro model of the
   posterior with ``y*`` as its argument) on ``p(x | y*)`` and keep ``L`` thinned draws;
4. record, for each scalar quantity ``f`` (a flux or a latent), the rank
   ``#{l : f(x_l) < f(x*)}`` (ties broken at random) in ``0..L``.

If the sampler draws from the exact posterior and the ``L`` draws are independent, each rank is
uniform on ``{0, ..., L}`` (Talts et al., Theorem 1); an overconfident posterior gives U-shaped
rank histograms, a biased one skewed ones. :func:`rank_uniformity` tests uniformity by a
chi-square test on ``B`` bins of ``(L + 1) / B`` ranks, Bonferroni-corrected over quantities;
:func:`plot_rank_histograms` draws the histograms.

The chains run in one jit-compiled function vmapped over replications: the simulated data is an
argument of the NumPyro model and of the log density (``LabelingProblem.log_likelihood(net, xch,
values)``, the formula of :class:`~bayesflux.models.FluxObservations`), never a constant baked
into a new posterior.
Supported terms: :class:`~bayesflux.models.FluxObservations`, :class:`~bayesflux.models.Labeling13C`
(fragments with ``scale="none"`` or ``"normalized"``; a ``"free"`` scale is profiled out, which has
no generative model), :class:`~bayesflux.models.ExpressionLaplace` (``e = k g(v) + σ ε``,
``ε ~ Laplace(0, 1)``, ``k ~ U(scale_bounds)`` when integrated out) and
:class:`~bayesflux.models.ExpressionCapacity` (a prior only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.stats
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.models.blocks import FluxPolytope
from bayesflux.models.posterior import FluxPosterior
from bayesflux.models.terms import (
    ExpressionCapacity,
    ExpressionLaplace,
    FluxObservations,
    Labeling13C,
)
from bayesflux.results import provenance
from bayesflux.sampling.rounding import Rounding, round_polytope

__all__ = [
    "GenerativeModel",
    "generative_model",
    "plot_rank_histograms",
    "rank_uniformity",
    "simulation_based_calibration",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class _DataModel:
    """A term as a generative model with the data ``y`` as an argument.

    Gaussian (default): ``y = mean(v, θ) + sd ε`` and standardised residuals
    ``r(v, θ, y) = (model(v, θ, y) - y) / sd``. Otherwise ``log_likelihood(v, θ, y, sd_scale)``
    and ``simulate(key, v, θ)`` define the term (``mean`` and ``residuals`` unused).
    """

    name: str
    sd: np.ndarray
    observed: np.ndarray
    mean: Callable[[jax.Array, dict], jax.Array]
    residuals: Callable[[jax.Array, dict, jax.Array], jax.Array]
    log_likelihood: Callable[..., jax.Array] | None = None
    simulate: Callable[[jax.Array, jax.Array, dict], jax.Array] | None = None


def _expression_model(term: ExpressionLaplace) -> _DataModel:
    """FALCON's Laplace term: ``e = k g(v) + σ ε``, ``ε ~ Laplace(0, 1)``; with ``k``
    integrated out the simulation draws it from its uniform prior on ``scale_bounds``."""
    sigma = np.asarray(term.sigma, dtype=float)
    a, b = term.scale_bounds

    def scale(key, theta):
        if term.marginalize:
            return jax.random.uniform(key, (), minval=a, maxval=b)
        return term.scale_of(theta)

    def log_likelihood(v, theta, y, sd_scale):
        g, s = term.group_flux(v), sd_scale * sigma
        const = -jnp.sum(jnp.log(2.0 * s))
        if term.marginalize:
            return term.log_marginal(g, y, s) + const
        return -jnp.sum(jnp.abs(term.scale_of(theta) * g - y) / s) + const

    def simulate(key, v, theta):
        k_scale, k_noise = jax.random.split(key)
        noise = jax.random.laplace(k_noise, sigma.shape, v.dtype)
        return scale(k_scale, theta) * term.group_flux(v) + sigma * noise

    return _DataModel(
        term.name,
        sigma,
        np.asarray(term.abundance, dtype=float),
        mean=lambda v, theta: term.group_flux(v),
        residuals=lambda v, theta, y: jnp.zeros(0, dtype=v.dtype),
        log_likelihood=log_likelihood,
        simulate=simulate,
    )


def _flux_model(term: FluxObservations) -> _DataModel:
    index, sd = np.asarray(term.index), np.asarray(term.sd, dtype=float)
    return _DataModel(
        term.name,
        sd,
        np.asarray(term.values, dtype=float),
        mean=lambda v, theta: v[index],
        residuals=lambda v, theta, y: (v[index] - y) / sd,
    )


def _labeling_model(term: Labeling13C) -> _DataModel:
    problem = term.problem
    free = [m.label for m in problem.ms if m.scale == "free"]
    if free:
        raise ConfigError(
            f"term {term.name!r}: fragment(s) {free} have scale='free'; their scale factor is "
            "profiled out, which has no generative model to simulate data from"
        )
    observed, sd = problem.observations()
    index = np.asarray(term.index)

    def fluxes(v, theta):
        return v[index], term.exchange_fluxes(theta)

    def mean(v, theta):
        # without a free scale the predictions do not depend on the data, so the residuals at
        # data 0 times sd are the model values, in the order of problem.observations()
        zero = jnp.zeros(sd.size, dtype=v.dtype)
        return problem.residuals_from_fluxes(*fluxes(v, theta), zero) * sd

    return _DataModel(
        term.name,
        np.asarray(sd, dtype=float),
        np.asarray(observed, dtype=float),
        mean=mean,
        residuals=lambda v, theta, y: problem.residuals_from_fluxes(*fluxes(v, theta), y),
    )


def _data_model(term) -> _DataModel:
    if isinstance(term, FluxObservations):
        return _flux_model(term)
    if isinstance(term, Labeling13C):
        return _labeling_model(term)
    if isinstance(term, ExpressionLaplace):
        return _expression_model(term)
    if isinstance(term, ExpressionCapacity):  # a prior: no data, its content is the couplings
        return _DataModel(
            term.name,
            np.zeros(0),
            np.zeros(0),
            mean=lambda v, theta: jnp.zeros(0, dtype=v.dtype),
            residuals=lambda v, theta, y: jnp.zeros(0, dtype=v.dtype),
        )
    raise ConfigError(
        f"term {getattr(term, 'name', term)!r} ({type(term).__name__}) has no generative model "
        "for simulation-based calibration (supported: FluxObservations, Labeling13C, "
        "ExpressionLaplace, ExpressionCapacity)"
    )


def _quantity_index(posterior: FluxPosterior, quantities: Sequence[str] | None) -> list[int]:
    names = list(posterior.polytope.reactions)
    if quantities is None:
        poly = posterior.polytope
        scale = np.maximum(1.0, np.abs(np.concatenate([poly.flux_min, poly.flux_max])).max())
        return [i for i in range(len(names)) if poly.flux_max[i] - poly.flux_min[i] > 1e-9 * scale]
    unknown = [q for q in quantities if q not in names]
    if unknown:
        raise ConfigError(
            f"quantities {unknown} are neither reactions of {posterior.network.id!r} nor latents "
            f"{list(posterior.latent_names)}"
        )
    if not quantities:
        raise ConfigError("quantities must name at least one reaction or latent")
    return [names.index(q) for q in quantities]


class GenerativeModel(NamedTuple):
    """A :class:`FluxPosterior` with the data as an argument (pure JAX functions).

    ``log_density(x, y, sd_scale=1.0)`` is ``log p(x) + log p(y | x)`` of ``x = (v, θ)`` given
    data ``y`` (flat, terms in order, each in its own order: ``FluxObservations.reactions``,
    ``LabelingProblem.observations()``), with the measurement sds multiplied by ``sd_scale``; at
    ``y = observed`` and ``sd_scale = 1`` it equals ``posterior.log_density(x)``.
    ``simulate(key, x)`` draws ``y ~ p(y | x)``: model predictions plus ``N(0, sd²)`` noise
    (Laplace noise of scale ``sd`` and a prior draw of ``k`` for an expression term).
    """

    log_density: Callable[..., jax.Array]
    log_prior: Callable[[jax.Array], jax.Array]
    simulate: Callable[[jax.Array, jax.Array], jax.Array]
    observed: np.ndarray
    sd: np.ndarray
    labels: tuple[str, ...]


def generative_model(posterior: FluxPosterior) -> GenerativeModel:
    """The prior, likelihood and data simulator of ``posterior`` with data as an argument.

    Raises
    ------
    ConfigError
        For a term without a generative model (named), e.g. a free-scale MS fragment.
    """
    models = [_data_model(t) for t in posterior.terms]
    sizes = np.cumsum([0] + [m.sd.size for m in models])
    sd_all = np.concatenate([m.sd for m in models]) if models else np.zeros(0)
    gaussian = [m.log_likelihood is None for m in models]
    sd_gauss = np.concatenate([m.sd for m, g in zip(models, gaussian) if g] or [np.zeros(0)])
    observed = np.concatenate([m.observed for m in models]) if models else np.zeros(0)
    labels = tuple(f"{m.name}[{i}]" for m in models for i in range(m.sd.size))
    latents = posterior.latents

    def log_prior(x):
        _, theta = posterior.split(x)
        return sum((lat.log_prior(theta[lat.name]) for lat in latents), jnp.zeros(()))

    def log_density(x, y, sd_scale=1.0):
        v, theta = posterior.split(x)
        out = log_prior(x) - jnp.sum(jnp.log(sd_scale * sd_gauss)) - 0.5 * sd_gauss.size * _LOG_2PI
        for k, m in enumerate(models):
            yk = y[sizes[k] : sizes[k + 1]]
            if m.log_likelihood is not None:
                out = out + m.log_likelihood(v, theta, yk, sd_scale)
                continue
            r = m.residuals(v, theta, yk) / sd_scale
            out = out - 0.5 * jnp.sum(r**2)
        return out

    def simulate(key, x):
        v, theta = posterior.split(x)
        mean = jnp.concatenate([m.mean(v, theta) for m in models]) if models else jnp.zeros(0)
        y = mean + sd_all * jax.random.normal(key, mean.shape, mean.dtype)
        for k, m in enumerate(models):  # other noise from keys of their own
            if m.simulate is not None:
                y = y.at[sizes[k] : sizes[k + 1]].set(
                    m.simulate(jax.random.fold_in(key, k + 1), v, theta)
                )
        return y

    return GenerativeModel(log_density, log_prior, simulate, observed, sd_all, labels)


def _sbc_models(posterior: FluxPosterior, model: GenerativeModel) -> tuple[Callable, Callable]:
    """NumPyro models of the prior and of the posterior with the data ``(y, sd_scale)`` as
    arguments: one site ``x = (v, θ)`` on the joint polytope (times the latents' priors) and a
    factor for the likelihood."""
    latent_prior = None
    if any(lat.prior != "uniform" for lat in posterior.latents):
        latent_prior = model.log_prior
    poly = posterior.polytope

    def prior_model() -> None:
        numpyro.sample("x", FluxPolytope(poly, log_density=latent_prior))

    def posterior_model(y: jax.Array, sd_scale: jax.Array) -> None:
        x = numpyro.sample("x", FluxPolytope(poly, log_density=latent_prior))
        numpyro.factor("likelihood", model.log_density(x, y, sd_scale) - model.log_prior(x))

    return prior_model, posterior_model


def _run(
    posterior: FluxPosterior,
    keys: jax.Array,
    sd_scale: float,
    *,
    quantities: Sequence[int],
    num_draws: int,
    thinning: int,
    num_warmup: int,
    prior_thinning: int,
    init: str,
    kernel: str,
    rounding: Rounding,
):
    """All replications at once, by :class:`bayesflux.infer.HitAndRun` on NumPyro models (its
    transition vmapped over replications, each with its own data). Returns ranks, ``x*`` and
    posterior draws of the quantities, and each chain's mean acceptance rate."""
    from bayesflux.infer import HitAndRun

    model = generative_model(posterior)
    prior_model, posterior_model = _sbc_models(posterior, model)
    poly = posterior.polytope
    q_idx = np.asarray(quantities)
    R = keys.shape[0]
    split = jax.vmap(lambda k: jax.random.split(k, 4))(keys)
    k_prior, k_data, k_post, k_tie = (split[:, i] for i in range(4))
    centre = {"x": jnp.tile(jnp.asarray(rounding.center), (R, 1))}
    options = dict(direction=kernel, rounding=rounding, adapt_rounding=False)

    prior = HitAndRun(prior_model, moves=prior_thinning, **options)
    prior_state = prior.init(k_prior, 0, centre, (), {})
    z_true = jax.jit(lambda s: prior.sample(s, (), {}).z["x"])(prior_state)
    x_true = poly.v0 + z_true @ poly.N.T
    y = jax.jit(jax.vmap(model.simulate))(k_data, x_true)

    post = HitAndRun(posterior_model, moves=thinning, **options)
    start = {"x": z_true} if init == "prior_draw" else centre
    state = post.init(k_post, 0, start, (jnp.asarray(model.observed), jnp.asarray(1.0)), {})

    @jax.jit
    def chains(state, y, x_true, k_tie, sd_scale):
        def one(state, y, truth, k_tie):
            def body(st, _):
                st = post.transition(st, (y, sd_scale))
                return st, ((poly.v0 + poly.N @ st.z["x"])[q_idx], st.accept_prob)

            _, (draws, acc) = jax.lax.scan(body, state, None, length=num_warmup + num_draws)
            draws, acc = draws[num_warmup:], acc[num_warmup:]
            truth = truth[q_idx]
            below = jnp.sum(draws < truth, axis=0)
            ties = jnp.sum(draws == truth, axis=0)  # a rejected move repeats a draw: random tie
            extra = jnp.floor(jax.random.uniform(k_tie, ties.shape) * (ties + 1))
            return below + extra.astype(below.dtype), truth, draws, jnp.mean(acc)

        return jax.vmap(one)(state, y, x_true, k_tie)

    return chains(state, y, x_true, k_tie, jnp.asarray(sd_scale))


def simulation_based_calibration(
    posterior: FluxPosterior,
    *,
    num_replications: int = 100,
    num_draws: int = 39,
    thinning: int | None = None,
    num_warmup: int = 5,
    prior_thinning: int | None = None,
    quantities: Sequence[str] | None = None,
    likelihood_sd_scale: float = 1.0,
    init: Literal["center", "prior_draw"] = "center",
    kernel: Literal["coordinate", "random"] = "coordinate",
    rounding: Literal["ep", "mve", "none"] = "ep",
    seed: int = 0,
) -> xr.Dataset:
    """Ranks of prior draws among posterior draws on simulated data (Talts et al. 2018).

    Parameters
    ----------
    posterior
        The model to check: its network, constraints, latents and terms. The data stored in the
        terms is ignored (only their structure and standard deviations are used); each
        replication simulates its own.
    num_replications
        ``R``: prior draws, simulated data sets and posterior runs (vmapped).
    num_draws
        ``L``: thinned posterior draws per replication; ranks lie in ``0..L``. Choose ``L + 1``
        with many divisors (19, 39, 49, 99) for the binned uniformity test.
    thinning
        Hit-and-run Metropolis moves between kept posterior draws (default ``10 d``, ``d`` the
        joint polytope's dimension). Ranks are uniform only for nearly independent draws: check
        the ``ess`` variable of the result (near ``L`` is good).
    num_warmup
        Thinned posterior draws discarded at the start of each chain.
    prior_thinning
        Hit-and-run moves of the prior chain behind each ``x*`` (default ``100 d``).
    quantities
        Reaction ids and latent names to rank (default: every flux whose range is not a point,
        and every latent). Affinely related fluxes give identical (or mirrored) ranks, which
        makes the Bonferroni correction of :func:`rank_uniformity` conservative.
    likelihood_sd_scale
        Factor on the measurement standard deviations of the *posterior's* likelihood only (data
        is always simulated with the terms' own sds): 1 for the calibration check, another value
        for a negative control (``1/3``: an overconfident posterior, U-shaped ranks).
    init
        Where each posterior chain starts: ``"center"`` (the rounding centre, as
        :meth:`FluxPosterior.sample`, so burn-in is tested too) or ``"prior_draw"`` (at ``x*``,
        a draw from the exact posterior of ``y*``, so little burn-in is needed).
    kernel, rounding
        Hit-and-run direction and rounding of the joint polytope, as in
        :meth:`FluxPosterior.sample`.
    seed
        Seed of all random numbers.

    Returns
    -------
    xarray.Dataset
        ``rank`` (replication, quantity) in ``0..L``; ``prior_draw`` (replication, quantity), the
        ``x*``; ``posterior_draw`` (replication, draw, quantity), the ``L`` kept draws; ``ess``
        (replication, quantity), their bulk effective sample size per replication (arviz-stats);
        ``acceptance_rate`` (replication, after warmup). Attributes ``L``, ``R``, ``thinning``,
        ``num_warmup``, ``prior_thinning``, ``likelihood_sd_scale`` and provenance.
    """
    if not isinstance(posterior, FluxPosterior):
        raise ConfigError(f"expected a FluxPosterior, got {type(posterior).__name__}")
    poly = posterior.polytope
    d = poly.dim
    R, L = int(num_replications), int(num_draws)
    thinning = 10 * d if thinning is None else int(thinning)
    prior_thinning = 100 * d if prior_thinning is None else int(prior_thinning)
    for name, value, low in (
        ("num_replications", R, 1),
        ("num_draws", L, 1),
        ("thinning", thinning, 1),
        ("prior_thinning", prior_thinning, 1),
        ("num_warmup", int(num_warmup), 0),
    ):
        if value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value}")
    if not (np.isfinite(likelihood_sd_scale) and likelihood_sd_scale > 0):
        raise ConfigError(f"likelihood_sd_scale must be > 0, got {likelihood_sd_scale}")
    if init not in ("center", "prior_draw"):
        raise ConfigError(f"init must be 'center' or 'prior_draw', got {init!r}")
    if kernel not in ("coordinate", "random"):
        raise ConfigError(f"unknown kernel {kernel!r}; expected 'coordinate' or 'random'")
    for term in posterior.terms:
        _data_model(term)  # fails early, naming a term without a generative model
    q_index = _quantity_index(posterior, quantities)
    q_names = [poly.reactions[i] for i in q_index]

    rnd = round_polytope(poly, rounding)
    keys = jax.random.split(jax.random.key(int(seed)), R)
    from bayesflux.infer.sites import TRACING

    with TRACING:  # the chains are traced from NumPyro models
        out = _run(
            posterior,
            keys,
            float(likelihood_sd_scale),
            quantities=q_index,
            num_draws=L,
            thinning=thinning,
            num_warmup=int(num_warmup),
            prior_thinning=prior_thinning,
            init=init,
            kernel=kernel,
            rounding=rnd,
        )
    rank, truth, draws, acc = (np.asarray(a) for a in out)
    s = float(likelihood_sd_scale)
    ess = _ess(draws)
    return xr.Dataset(
        {
            "rank": (("replication", "quantity"), rank.astype(np.int64)),
            "prior_draw": (("replication", "quantity"), truth),
            "posterior_draw": (("replication", "draw", "quantity"), draws),
            "ess": (("replication", "quantity"), ess),
            "acceptance_rate": ("replication", acc),
        },
        coords={"replication": np.arange(R), "draw": np.arange(L), "quantity": q_names},
        attrs=provenance(
            "simulation-based calibration (Talts et al. 2018)",
            posterior.network,
            L=L,
            R=R,
            thinning=thinning,
            num_warmup=int(num_warmup),
            prior_thinning=prior_thinning,
            likelihood_sd_scale=s,
            init=init,
            kernel=kernel,
            rounding=rnd.method,
            terms=",".join(t.name for t in posterior.terms) or "none",
            seed=int(seed),
        ),
    )


def _ess(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS (arviz-stats, rank-normalised split chains) of ``draws (R, L, q)`` per
    replication and quantity; NaN where a chain never moved."""
    from arviz_stats.base import array_stats

    ary = np.moveaxis(draws, 1, -1)[:, :, None, :]  # (R, q, chain=1, L)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(array_stats.ess(ary, chain_axis=-2, draw_axis=-1, method="bulk"))


def _bins(L: int, R: int, bins: int | None) -> int:
    if bins is None:
        divisors = [B for B in range(2, L + 2) if (L + 1) % B == 0 and R / B >= 10]
        if not divisors:
            raise ConfigError(
                f"no bin count B >= 2 divides L + 1 = {L + 1} with >= 10 expected ranks per bin "
                f"at R = {R}; use more replications or pass bins="
            )
        return max(divisors)
    B = int(bins)
    if B < 2 or (L + 1) % B:
        raise ConfigError(f"bins = {bins} must be >= 2 and divide L + 1 = {L + 1}")
    return B


def rank_uniformity(
    ranks: xr.Dataset, *, bins: int | None = None, alpha: float = 0.01
) -> xr.Dataset:
    """Chi-square test that each quantity's SBC ranks are uniform on ``0..L``.

    Ranks are pooled into ``B`` bins of ``(L + 1) / B`` consecutive values, so each bin has
    probability ``1 / B`` under uniformity; ``X² = Σ_b (n_b - R/B)² / (R/B)`` is compared with
    the chi-square distribution with ``B - 1`` degrees of freedom. A quantity fails at the
    Bonferroni-corrected level ``alpha / Q`` (``Q`` quantities), so a calibrated model fails
    anywhere with probability at most ``alpha`` (for independent replications).

    Parameters
    ----------
    ranks
        The result of :func:`simulation_based_calibration`.
    bins
        ``B``, a divisor of ``L + 1`` (default: the largest one with at least 10 expected ranks
        per bin).
    alpha
        Family-wise level over quantities.

    Returns
    -------
    xarray.Dataset
        ``chi2``, ``p_value``, ``uniform`` (``p_value > alpha / Q``) and ``counts``
        (quantity, bin); attributes ``bins``, ``df``, ``alpha``, ``level`` (``alpha / Q``).
    """
    L, R = int(ranks.attrs["L"]), int(ranks.sizes["replication"])
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha}")
    B = _bins(L, R, bins)
    r = ranks["rank"].transpose("replication", "quantity").values
    if r.min() < 0 or r.max() > L:
        raise ConfigError(f"ranks must lie in 0..{L}, got {r.min()}..{r.max()}")
    width = (L + 1) // B
    counts = np.stack([np.bincount(col // width, minlength=B) for col in r.T])  # (Q, B)
    expected = R / B
    chi2 = np.sum((counts - expected) ** 2, axis=1) / expected
    p = scipy.stats.chi2.sf(chi2, df=B - 1)
    level = alpha / r.shape[1]
    return xr.Dataset(
        {
            "chi2": ("quantity", chi2),
            "p_value": ("quantity", p),
            "uniform": ("quantity", p > level),
            "counts": (("quantity", "bin"), counts),
        },
        coords={"quantity": ranks["quantity"].values, "bin": np.arange(B)},
        attrs={"bins": B, "df": B - 1, "alpha": float(alpha), "level": level, "L": L, "R": R},
    )


def plot_rank_histograms(
    ranks: xr.Dataset, *, bins: int | None = None, band: float = 0.99, axes=None
):
    """Rank histograms (one panel per quantity) with the ``band`` binomial range of a bin count
    under uniformity (Talts et al. 2018, Fig. 1), as a matplotlib Figure.

    ``bins`` as in :func:`rank_uniformity`; ``axes``: a sequence of matplotlib Axes, one per
    quantity (default: a new figure). Needs matplotlib (optional dependency).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ConfigError("plot_rank_histograms needs matplotlib: pip install matplotlib") from err
    test = rank_uniformity(ranks, bins=bins)
    B, R = test.attrs["bins"], test.attrs["R"]
    names = [str(q) for q in test["quantity"].values]
    if axes is None:
        cols = min(3, len(names))
        rows = -(-len(names) // cols)
        fig, grid = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
        axes = grid.ravel()
        for ax in axes[len(names) :]:
            ax.set_visible(False)
    else:
        axes = list(axes)
        if len(axes) < len(names):
            raise ConfigError(f"need {len(names)} axes, got {len(axes)}")
        fig = axes[0].figure
    lo, hi = scipy.stats.binom.interval(band, R, 1.0 / B)
    for ax, name in zip(axes, names):
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(R / B, color="0.5", lw=0.8)
        ax.bar(np.arange(B), test["counts"].sel(quantity=name).values, width=0.9, zorder=1)
        p = float(test["p_value"].sel(quantity=name))
        ax.set_title(f"{name}  (p = {p:.3g})", fontsize=9)
        ax.set_xlabel(f"rank bin (of {B})")
    axes[0].set_ylabel("count")
    fig.suptitle(f"SBC ranks: R = {R}, L = {ranks.attrs['L']}", fontsize=10)
    fig.tight_layout()
    return fig
