"""What every kernel of :mod:`bayesflux.infer` needs from a NumPyro model with polytope sites.

:func:`prepare` traces the model once per chain at its start (the init strategy), finds its
:class:`~bayesflux.models.blocks.FluxPolytope` sites (:func:`polytope_sites`), and returns the
flat unconstrained starting point of each chain, the potential ``U(x) = -log p(x)``, and the
geometry in the flat vector ``x``: the polytopes' half-spaces ``A x <= b`` and an initial
rounding (Expectation-Propagation covariance of each polytope, identity elsewhere).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable
from functools import partial, wraps
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro import distributions as dist
from numpyro.distributions.transforms import biject_to
from numpyro.infer.initialization import init_to_median, init_to_value
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import constrain_fn, potential_energy
from numpyro.util import identity, is_prng_key, not_jax_tracer

from bayesflux.errors import ConfigError
from bayesflux.models.blocks import FluxPolytope, hit_and_run_walks
from bayesflux.sampling.polytope import Polytope
from bayesflux.sampling.rounding import Rounding, round_polytope

__all__ = [
    "TRACING",
    "Geometry",
    "PolytopeKernel",
    "Prepared",
    "init_to_polytope",
    "polytope_sites",
    "prepare",
    "traces_models",
]


#: Held while a NumPyro model is traced (initialisation, compilation, conversion): NumPyro's effect
#: handlers live on one module-global stack, which two threads tracing at once corrupt. Compiled
#: sampling runs outside it, so threads still sample in parallel.
TRACING = threading.RLock()


def traces_models(fn: Callable) -> Callable:
    """Decorator: ``fn`` holds :data:`TRACING` while it runs."""

    @wraps(fn)
    def holding(*args, **kwargs):
        with TRACING:
            return fn(*args, **kwargs)

    return holding


def _flux_polytope(fn) -> FluxPolytope | None:
    while isinstance(fn, dist.MaskedDistribution | dist.ExpandedDistribution):
        fn = fn.base_dist
    return fn if isinstance(fn, FluxPolytope) else None


def polytope_sites(model_trace: dict) -> dict[str, Polytope]:
    """The latent :class:`~bayesflux.models.blocks.FluxPolytope` sites of a model trace."""
    out = {}
    for name, site in model_trace.items():
        if site["type"] == "sample" and not site["is_observed"]:
            fn = _flux_polytope(site["fn"])
            if fn is not None:
                if site["fn"].batch_shape:
                    raise ConfigError(
                        f"FluxPolytope site {name!r} is inside a plate (batch shape "
                        f"{site['fn'].batch_shape}); write one flux_polytope site per condition"
                    )
                out[name] = fn.polytope
    return out


def _is_uniform(model_trace: dict) -> bool:
    """True when the model is nothing but uniform polytope sites (and deterministic sites)."""
    for site in model_trace.values():
        if site["type"] != "sample":
            continue
        fn = _flux_polytope(site["fn"])
        if site["is_observed"] or fn is None or fn.log_density is not None:
            return False
    return True


def init_to_polytope(site=None):
    """NumPyro init strategy: polytope sites at their Chebyshev centre (the kernels then disperse
    each chain's start by a hit-and-run walk from it), other latent sites at their prior median
    (NumPyro's ``init_to_median``): the chains start apart in the fluxes, and in the prior's bulk
    in the other sites. (Starts spread over ``U(-2, 2)`` of the unconstrained space, or jittered
    by ``U(-1, 1)`` around the median, left one reflective-HMC chain in four or eight with a
    hierarchical scale ``log k`` stuck for all of a 1000-iteration warm-up: its mass matrix
    adapted while the chain crossed from the far start, 30 times too narrow in ``log k``.)"""
    if site is None:
        return partial(init_to_polytope)
    if site["type"] != "sample" or site["is_observed"]:
        return None
    if _flux_polytope(site["fn"]) is not None:
        return site["fn"].support.feasible_like(jnp.zeros(site["fn"].event_shape))
    return init_to_median(site)


class Geometry(NamedTuple):
    """Half-spaces ``A x <= b`` of all polytope sites in the flat unconstrained vector, the
    initial inverse mass matrix / rounding covariance (EP covariance on polytope blocks,
    identity elsewhere), its lower-triangular factor (``factor factorᵀ = inverse_mass``, taken
    from the rounding rather than recomputed, so that a whitening spanning many orders of
    magnitude keeps its precision), and which entries of ``x`` lie on no polytope (``free``)."""

    A: np.ndarray
    b: np.ndarray
    inverse_mass: np.ndarray
    factor: np.ndarray
    free: np.ndarray


def _geometry(z: dict, polytopes: dict[str, Polytope], rounding: str | Rounding) -> Geometry:
    keys = sorted(z)  # ravel_pytree's order: sites by name, each flattened
    labels = np.repeat(np.arange(len(keys)), [int(np.prod(jnp.shape(z[k]))) for k in keys])
    size = labels.size
    rows, rhs, inv_mass, factor = [], [], np.eye(size), np.eye(size)
    free = np.ones(size, bool)
    for name, poly in polytopes.items():
        cols = np.flatnonzero(labels == keys.index(name))
        if cols.size != poly.dim:
            raise ConfigError(
                f"site {name!r}: {cols.size} unconstrained values for a {poly.dim}-dimensional "
                "polytope (is it inside a plate?)"
            )
        free[cols] = False
        block = np.zeros((poly.n_constraints, size))
        block[:, cols] = poly.A
        rows.append(block)
        rhs.append(poly.b)
        if isinstance(rounding, Rounding):
            if len(polytopes) > 1 or rounding.cov.shape != (poly.dim, poly.dim):
                raise ConfigError(
                    "a Rounding object rounds one polytope site of its dimension; give a method "
                    "name ('ep', 'mve', 'none') for several"
                )
            block_rounding = rounding
        else:
            block_rounding = round_polytope(poly, rounding)
        inv_mass[np.ix_(cols, cols)] = block_rounding.cov
        factor[np.ix_(cols, cols)] = block_rounding.lower_factor()
    if not rows:  # no polytope: one inactive facet keeps the kernels' code uniform
        rows, rhs = [np.zeros((1, size))], [np.ones(1)]
    return Geometry(np.vstack(rows), np.concatenate(rhs), inv_mass, factor, free)


def _around(rounding: Rounding, poly: Polytope, keys: jax.Array) -> jax.Array:
    """Starts ``c + t L ε`` (``ε ~ N(0, I)``, ``t = min(1, 0.9 t_max)`` keeps them inside) around
    the centre ``c`` of a posterior's rounding: chains dispersed on the posterior's scale."""
    L, c = jnp.asarray(rounding.L), jnp.asarray(rounding.center)
    A, slack = jnp.asarray(poly.A), jnp.asarray(poly.b - poly.A @ rounding.center)

    def one(key):
        step = L @ jax.random.normal(key, c.shape, c.dtype)
        rate = A @ step
        t_max = jnp.min(jnp.where(rate > 0, slack / jnp.where(rate > 0, rate, 1.0), jnp.inf))
        return c + jnp.minimum(1.0, 0.9 * t_max) * step

    return jax.vmap(one)(keys)


def _dispersed(
    z: dict, polytopes: dict[str, Polytope], key, batched: bool, rounding: str | Rounding
) -> dict:
    """Each chain's own start on every polytope site, for R-hat to mean something: the end of a
    hit-and-run walk from the Chebyshev centre (``FluxPolytope.mixing_steps`` moves), or, for a
    posterior's rounding (``covariance_rounding``: a fit and its covariance), a Gaussian draw
    around its centre."""
    z = dict(z)
    for i, (name, poly) in enumerate(sorted(polytopes.items())):
        keys = (
            jax.random.fold_in(key, i)
            if not batched
            else jax.vmap(jax.random.fold_in, (0, None))(key, i)
        )
        keys = jnp.atleast_1d(keys)
        if isinstance(rounding, Rounding) and rounding.method == "covariance":
            starts = _around(rounding, poly, keys)
        else:
            starts = hit_and_run_walks(
                keys, poly.A, poly.b, poly.center, FluxPolytope(poly).mixing_steps
            )
        z[name] = starts if batched else starts[0]
    return z


class Prepared(NamedTuple):
    """A traced model, ready for a kernel.

    ``x`` the flat unconstrained start of each chain (``(chains, size)`` when ``batched``),
    ``potential(x, model_args, model_kwargs) = -log p`` (the model's arguments may be traced:
    data as an argument) and ``unravel(x)`` the site dict, ``geometry`` the polytopes in
    ``x``, ``uniform`` whether ``p`` is constant on the polytopes, ``free_sites`` the latent sites
    on no polytope, ``rng_key`` the chains' keys left after initialisation, and
    ``postprocess_gen`` NumPyro's constrain function factory and ``trace`` the model's trace.
    """

    x: jax.Array
    potential: Callable[[jax.Array, tuple, dict], jax.Array]
    unravel: Callable[[jax.Array], dict]
    geometry: Geometry
    polytopes: dict[str, Polytope]
    uniform: bool
    free_sites: tuple[str, ...]
    batched: bool
    rng_key: jax.Array
    postprocess_gen: Callable
    trace: dict


def prepare(
    model: Callable,
    rng_key: jax.Array,
    init_strategy: Callable,
    init_params: dict | None,
    model_args: tuple,
    model_kwargs: dict | None,
    rounding: str | Rounding,
) -> Prepared:
    """Trace ``model``, find its polytope sites and start each chain (one key per chain, or one
    key). Polytope sites start at dispersed points of their polytope (``init_to_polytope``)."""
    batched = not is_prng_key(rng_key)
    keys = jax.random.split(rng_key) if not batched else jax.vmap(jax.random.split)(rng_key)
    rng_key, key_init = (keys[0], keys[1]) if not batched else (keys[:, 0], keys[:, 1])
    if init_params is not None:  # NumPyro's own search starts there too (it must find p > 0)
        init_strategy = _init_to_params(model, init_params, batched, model_args, model_kwargs)
    model_kwargs = model_kwargs or {}
    z, trace = _initial(model, key_init, init_strategy, batched, model_args, model_kwargs)
    polytopes = polytope_sites(trace)
    z = z if init_params is None else init_params
    if init_params is None and getattr(init_strategy, "func", None) is init_to_polytope:
        z = _dispersed(z, polytopes, key_init, batched, rounding)
    one = jax.tree.map(lambda a: a[0], z) if batched else z
    geometry = _geometry(one, polytopes, rounding)
    _, unravel = ravel_pytree(one)
    flat = jax.vmap(lambda t: ravel_pytree(t)[0])(z) if batched else ravel_pytree(z)[0]
    free_sites = tuple(
        name
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"] and name not in polytopes
    )
    return Prepared(
        x=flat,
        potential=lambda x, args, kwargs: potential_energy(model, args, kwargs, unravel(x)),
        unravel=unravel,
        geometry=geometry,
        polytopes=polytopes,
        uniform=_is_uniform(trace),
        free_sites=free_sites,
        batched=batched,
        rng_key=rng_key,
        postprocess_gen=lambda *a, **k: partial(
            constrain_fn, model, a, k, return_deterministic=True
        ),
        trace=trace,
    )


def _constrainer(model, *args, **kwargs) -> Callable:
    """NumPyro's ``postprocess_fn`` factory: unconstrained site values to constrained ones and
    the deterministic sites."""
    return partial(constrain_fn, model, args, kwargs, return_deterministic=True)


def _initial(model, keys, init_strategy, batched: bool, args: tuple, kwargs: dict):
    """Each chain's unconstrained start by ``init_strategy`` (one trace of the model per chain,
    as NumPyro's own initialisation makes, but without evaluating the density eagerly: the
    kernels' compiled ``init`` does, and :meth:`PolytopeKernel.init` checks it), and the first
    chain's trace."""
    traces = []
    for key in keys if batched else [keys]:
        seeded = numpyro.handlers.seed(model, key)
        at_start = numpyro.handlers.substitute(seeded, substitute_fn=init_strategy)
        traces.append(numpyro.handlers.trace(at_start).get_trace(*args, **kwargs))
    latent = [
        k for k, site in traces[0].items() if site["type"] == "sample" and not site["is_observed"]
    ]
    starts = [{k: biject_to(t[k]["fn"].support).inv(t[k]["value"]) for k in latent} for t in traces]
    z = jax.tree.map(lambda *a: jnp.stack(a), *starts) if batched else starts[0]
    return z, traces[0]


def _init_to_params(model, init_params: dict, batched: bool, args: tuple, kwargs) -> Callable:
    """``init_to_value`` at the first chain's ``init_params`` (unconstrained), constrained by each
    site's transform: NumPyro's initialisation then evaluates the model where the chains start
    (e.g. a point feasible for the second law), not at a point where ``p = 0``."""
    first = jax.tree.map(lambda a: jnp.asarray(a)[0], init_params) if batched else init_params
    at_centres = numpyro.handlers.substitute(  # no draw from the sites' distributions
        numpyro.handlers.seed(model, 0), substitute_fn=init_to_polytope
    )
    plain = numpyro.handlers.trace(at_centres).get_trace(*args, **(kwargs or {}))
    unknown = sorted(set(first) - set(plain))
    if unknown:
        raise ConfigError(f"init_params name site(s) {unknown} that the model does not have")
    values = {k: biject_to(plain[k]["fn"].support)(v) for k, v in first.items()}
    return init_to_value(values=values)


#: name of the vmapped chain axis when chains run batched: a kernel may reduce over it (e.g. to
#: take a branch only when some chain needs it, :func:`any_chain`)
CHAIN_AXIS = "chain"


def any_chain(flag: jax.Array) -> jax.Array:
    """``flag`` of one chain, or-ed over the chains of a batch (:data:`CHAIN_AXIS`) when they run
    vmapped, so that ``lax.cond`` on it stays a branch (a batched predicate turns a cond into
    both branches and a select)."""
    try:
        return jax.lax.psum(flag.astype(jnp.int32), CHAIN_AXIS) > 0
    except NameError:  # one chain, or batched by a vmap without the axis name
        return flag


def check_starts(potential_energy) -> None:
    """ConfigError naming the chains whose start has ``-log p`` infinite or NaN."""
    energy = np.atleast_1d(np.asarray(potential_energy))
    if not np.all(np.isfinite(energy)):
        raise ConfigError(
            f"the model's density is zero or not finite where chain(s) "
            f"{np.flatnonzero(~np.isfinite(energy)).tolist()} start (-log p = "
            f"{energy[~np.isfinite(energy)][:4].tolist()}): give init_params where it is "
            "positive, e.g. a fit's fluxes"
        )


class PolytopeKernel(MCMCKernel):
    """The ``MCMCKernel`` contract shared by the kernels of :mod:`bayesflux.infer`.

    A subclass sets ``self._model``, ``self._init_strategy`` and ``self.rounding`` and implements
    ``_build(prepared, num_warmup) -> (init_fn(x, key, args, kwargs), transition(state, args,
    kwargs))`` for one chain; :meth:`init` and :meth:`sample` vmap them over a batch of chains
    (``chain_method="vectorized"``). The model's arguments reach the potential at every call, so
    they may be traced (:meth:`transition` vmapped over data sets, as in SBC). States have a
    field ``i`` (transitions so far) and ``z`` (the unconstrained site values), which
    :meth:`postprocess_fn` constrains.
    """

    sample_field = "z"
    #: ``sample_stats`` fields :func:`bayesflux.infer.sample` collects for this kernel
    stat_fields: tuple[str, ...] = ()

    _model: Callable
    _init_strategy: Callable
    rounding: str | Rounding
    _sample_fn: Callable | None = None
    _postprocess_fn: Callable | None = None

    @property
    def model(self) -> Callable:
        return self._model

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z",)

    def postprocess_fn(self, args, kwargs) -> Callable:
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*args, **(kwargs or {}))

    def _check(self, prepared: Prepared, model_args: tuple, model_kwargs: dict) -> None:
        """Refuse a model this kernel cannot sample (ConfigError naming the site)."""

    @abstractmethod
    def _build(self, prepared: Prepared, num_warmup: int) -> tuple[Callable, Callable]:
        """``(init_fn, transition)`` of one chain."""

    @traces_models  # tracing the model and compiling the start (its density)
    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs):
        prep = prepare(
            self._model, rng_key, self._init_strategy, init_params, model_args, model_kwargs,
            self.rounding,
        )  # fmt: skip
        self._check(prep, model_args, model_kwargs or {})
        self._postprocess_fn = prep.postprocess_gen
        self.polytopes = prep.polytopes
        init_fn, self._sample_fn = self._build(prep, int(num_warmup))
        kwargs = model_kwargs or {}
        one = lambda x, key: init_fn(x, key, model_args, kwargs)  # noqa: E731
        state = jax.jit(jax.vmap(one) if prep.batched else one)(prep.x, prep.rng_key)
        if not_jax_tracer(state.potential_energy):  # else traced: under pmap ("parallel")
            check_starts(state.potential_energy)
        return state

    def transition(self, state, model_args: tuple, model_kwargs: dict | None = None):
        """One transition of one chain (after :meth:`init`); ``model_args`` may be traced."""
        return self._sample_fn(state, model_args, model_kwargs or {})

    def sample(self, state, model_args, model_kwargs):
        if jnp.ndim(state.i):  # a batch of chains
            step = lambda s: self.transition(s, model_args, model_kwargs)  # noqa: E731
            return jax.vmap(step, axis_name=CHAIN_AXIS)(state)
        return self.transition(state, model_args, model_kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sample_fn"] = None
        state["_postprocess_fn"] = None
        return state
