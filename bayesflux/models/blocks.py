"""NumPyro building blocks of flux models: a polytope prior and likelihoods, one observed site each.

Call them inside a NumPyro model (DESIGN.md, "How a model is written")::

    def model():
        v = blocks.flux_polytope("v", poly)                # uniform on {S v = 0, lb <= v <= ub}
        k = numpyro.sample("k", dist.LogNormal(0.0, 1.0))  # any prior a user likes
        blocks.expression_falcon(v, expression, scale=k)   # one observation per gene group
        blocks.measured_fluxes(v, {"EX_glc__D_e": (-10, 0.5)}, network=net)

* :class:`FluxPolytope` — the uniform distribution on a polytope ``{v0 + N z : A z <= b}``; its
  support :class:`PolytopeSupport` maps to NumPyro's unconstrained space by the reduced
  coordinates ``z`` (:class:`ReducedCoordinates`, ``v = v0 + N z``), so that every value is a
  steady state. The inequalities ``A z <= b`` stay: the kernels of :mod:`bayesflux.infer` find
  the site and move ``z`` inside them exactly (reflection); a kernel that ignores them (NUTS)
  sees ``log p = -inf`` outside.
* :func:`eflux_capacity` — E-Flux's capacity ``|v_j| <= α e_j`` with a latent ``α`` (seed 000).
* :func:`measured_fluxes` — ``y_j ~ N(v_j, sd_j²)``.
* :func:`expression_falcon` — FALCON as a likelihood: ``e_i ~ Laplace(k Σ_{j∈R_i}|v_j|, σ_i)``
  (seed 003); the scale ``k`` a model variable, or integrated out exactly.
* :func:`second_law` and :func:`metabolome` — the second law on ``(v, ln c)`` as a factor, and
  measured concentrations ``ln ĉ_i ~ N(ln c_i, sd_i²)`` (seed 002).
* :func:`second_law_signs` — the second law on fluxes alone (``ln c`` marginalised): ``v``'s sign
  pattern must leave the concentration polytope B(s) non-empty (seed 002; one LP per pattern).
* :func:`labeling_13c` — MIDs (and other 13C measurements) of a
  :class:`~bayesflux.labeling.LabelingProblem`, ``y_i ~ N(model_i(v, v_xch), sd_i²)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to

from bayesflux.errors import ConfigError
from bayesflux.labeling.measurements import LabelingProblem
from bayesflux.network import Network
from bayesflux.sampling.polytope import Polytope
from bayesflux.thermo.polytope_b import flux_signs

if TYPE_CHECKING:
    from bayesflux.models.terms import ExpressionCapacity, ExpressionLaplace
    from bayesflux.thermo.data import ThermoModel
    from bayesflux.thermo.pattern_table import PatternTable

__all__ = [
    "FluxPolytope",
    "PolytopeSupport",
    "ReducedCoordinates",
    "SecondLaw",
    "SignPatternLaw",
    "eflux_capacity",
    "expression_falcon",
    "flux_polytope",
    "hit_and_run_walks",
    "labeling_13c",
    "measured_fluxes",
    "metabolome",
    "second_law",
    "second_law_signs",
]

_INSIDE_TOL = 1e-8  # slack (relative to max(1, |b_i|)) within which a point counts as inside


_PSEUDO_INVERSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pseudo_inverse(polytope: Polytope) -> np.ndarray:
    """``N⁺`` of a polytope, computed once."""
    if polytope not in _PSEUDO_INVERSES:
        _PSEUDO_INVERSES[polytope] = np.linalg.pinv(polytope.N)
    return _PSEUDO_INVERSES[polytope]


class PolytopeSupport(constraints.Constraint):
    """``{v0 + N z : A z <= b}``: the support of :class:`FluxPolytope` (event_dim 1)."""

    event_dim = 1

    def __init__(self, polytope: Polytope) -> None:
        self.polytope = polytope

    def reduced(self, v: jax.Array) -> jax.Array:
        """``z`` with ``v0 + N z = v`` (least squares; exact on the support)."""
        p = self.polytope
        return (jnp.asarray(v) - p.v0) @ _pseudo_inverse(p).T

    def __call__(self, v: jax.Array) -> jax.Array:
        p = self.polytope
        z = self.reduced(v)
        slack = z @ p.A.T - p.b
        on_subspace = jnp.max(jnp.abs(p.v0 + z @ p.N.T - v), axis=-1) <= _INSIDE_TOL * (
            1.0 + jnp.max(jnp.abs(v), axis=-1)
        )
        return jnp.all(slack <= _INSIDE_TOL * (1.0 + np.abs(p.b)), axis=-1) & on_subspace

    def feasible_like(self, prototype: jax.Array) -> jax.Array:
        centre = self.polytope.v0 + self.polytope.N @ self.polytope.center
        return jnp.broadcast_to(centre, jnp.shape(prototype))

    def tree_flatten(self):
        return (), ((), {"polytope": self.polytope})


class ReducedCoordinates(Transform):
    """``z -> v0 + N z``: NumPyro's unconstrained space of a polytope site is ``R^d``.

    The Jacobian factor is constant (``N`` has full column rank), so the uniform density on the
    polytope is uniform in ``z``; ``log_abs_det_jacobian`` is 0 up to that constant.
    """

    domain = constraints.real_vector

    def __init__(self, polytope: Polytope) -> None:
        self.polytope = polytope

    @property
    def codomain(self) -> PolytopeSupport:
        return PolytopeSupport(self.polytope)

    def __call__(self, z: jax.Array) -> jax.Array:
        return self.polytope.v0 + jnp.asarray(z) @ self.polytope.N.T

    def _inverse(self, v: jax.Array) -> jax.Array:
        return PolytopeSupport(self.polytope).reduced(v)

    def log_abs_det_jacobian(self, z: jax.Array, v: jax.Array, intermediates=None) -> jax.Array:
        return jnp.zeros(jnp.shape(z)[:-1])

    def forward_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape[:-1] + (self.polytope.N.shape[0],)

    def inverse_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape[:-1] + (self.polytope.dim,)

    def tree_flatten(self):
        return (), ((), {"polytope": self.polytope})


@biject_to.register(PolytopeSupport)
def _reduced_coordinates(constraint: PolytopeSupport) -> ReducedCoordinates:
    return ReducedCoordinates(constraint.polytope)


class FluxPolytope(dist.Distribution):
    """The uniform distribution on a polytope ``P = {v0 + N z : A z <= b}`` (DESIGN.md).

    ``log_prob`` is 0 on ``P`` and ``-inf`` off it (unnormalised: ``-log vol(P)`` is left out, a
    constant for a fixed polytope), plus ``log_density(v)`` where given (an unnormalised density
    on ``P``, e.g. priors of latent coordinates of a joint polytope). ``sample`` runs
    ``mixing_steps`` random-direction hit-and-run moves from the Chebyshev centre (exact
    chords): approximate uniform draws, used for dispersed chain starts and prior predictive
    checks; the kernels of :mod:`bayesflux.infer` sample ``P``
    exactly.
    """

    reparametrized_params: list = []
    pytree_data_fields = ()
    pytree_aux_fields = ("polytope", "mixing_steps", "log_density")

    def __init__(
        self,
        polytope: Polytope,
        *,
        log_density: Callable[[jax.Array], jax.Array] | None = None,
        mixing_steps: int | None = None,
    ) -> None:
        self.polytope = polytope
        self.log_density = log_density
        self.mixing_steps = int(mixing_steps or 20 * polytope.dim + 100)
        super().__init__(batch_shape=(), event_shape=(polytope.N.shape[0],))

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> PolytopeSupport:
        return PolytopeSupport(self.polytope)

    def log_prob(self, value: jax.Array) -> jax.Array:
        inside = self.support(value)
        if self.log_density is None:
            return jnp.where(inside, 0.0, -jnp.inf)
        return jnp.where(
            inside, jnp.vectorize(self.log_density, signature="(n)->()")(value), -jnp.inf
        )

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        p = self.polytope
        keys = jax.random.split(key, int(np.prod(sample_shape)))
        z = hit_and_run_walks(keys, p.A, p.b, p.center, self.mixing_steps)
        return (p.v0 + z @ p.N.T).reshape(tuple(sample_shape) + self.event_shape)


def hit_and_run_walks(keys, A, b, start, steps: int) -> jax.Array:
    """One coordinate hit-and-run walk of ``steps`` moves inside ``A z <= b`` from ``start`` per
    key (exact chords, random axes); the end points, ``(len(keys), d)``.

    Dispersed chain starts, not draws to keep: run in NumPy, all walks in step (``O(m)`` per move
    and walk, slacks updated as the walks move), so that starting chains compiles nothing (a
    host callback where the keys are traced, e.g. under ``pmap``). The random numbers come from
    a generator seeded by the keys' data.
    """
    keys = jnp.asarray(keys)
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = jax.random.key_data(keys)
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    start = np.asarray(start, dtype=float)

    def walks(key_data) -> np.ndarray:
        key_data = np.asarray(key_data, dtype=np.uint32)
        rng = np.random.default_rng(key_data.ravel())
        z = np.tile(start, (len(key_data), 1))
        if steps < 1 or A.shape[1] == 0:
            return z
        columns = np.ascontiguousarray(A.T)
        slack = b - z @ A.T
        rows = np.arange(len(z))
        axes = rng.integers(0, A.shape[1], size=(steps, len(z)))
        positions = rng.uniform(size=(steps, len(z)))
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, t in zip(axes, positions, strict=True):
                rate = columns[k]  # (walks, m): the column of each walk's axis
                ratio = np.maximum(slack, 0.0) / rate
                hi = np.min(np.where(rate > 0, ratio, np.inf), axis=1)
                lo = np.max(np.where(rate < 0, ratio, -np.inf), axis=1)
                step = lo + t * (hi - lo)
                z[rows, k] += step
                slack -= step[:, None] * rate
        return z

    if isinstance(keys, jax.core.Tracer):
        shape = jax.ShapeDtypeStruct((keys.shape[0], start.size), jnp.result_type(float))
        return jax.pure_callback(walks, shape, keys)
    return jnp.asarray(walks(keys))


def flux_polytope(name: str, polytope: Polytope, *, prior=None) -> jax.Array:
    """A sample site ``name`` uniform on ``polytope``, times ``prior.log_density`` where given
    (e.g. :class:`~bayesflux.models.Parsimony`); returns its value (fluxes in the order of
    ``polytope.reactions``, latent coordinates of a joint polytope after them).

    Build the polytope once, outside the model (a model is traced many times):
    :func:`bayesflux.sampling.polytope` for a network with extra constraints, or
    :func:`bayesflux.models.joint_polytope` for fluxes with coupled latent variables.
    """
    if not isinstance(polytope, Polytope):
        raise ConfigError(
            f"flux_polytope({name!r}) needs a Polytope (bayesflux.sampling.polytope(network)), "
            f"got {type(polytope).__name__}"
        )
    log_density = None if prior is None else prior.log_density
    return numpyro.sample(name, FluxPolytope(polytope, log_density=log_density))


def eflux_capacity(
    name: str, polytope: Polytope, capacity: ExpressionCapacity
) -> tuple[jax.Array, jax.Array]:
    """E-Flux as a prior (seed 000): a sample site ``name`` uniform on the joint polytope of
    fluxes and the capacity ``α``, ``-α e_j <= v_j <= α e_j``, times ``α``'s prior (uniform or
    log-uniform on ``capacity_bounds``). Returns ``(v, α)``.

    ``polytope`` is built once, outside the model:
    ``joint_polytope(network, capacity.latents, capacity.couplings)``
    (:func:`bayesflux.models.joint_polytope`; extra flux constraints by its ``constraints``).
    """
    k = len(polytope.reactions) - 1
    if polytope.reactions[k:] != (capacity.alpha_name,):
        raise ConfigError(
            f"eflux_capacity({name!r}): the polytope's last coordinate must be "
            f"{capacity.alpha_name!r}; build it with joint_polytope(network, capacity.latents, "
            "capacity.couplings)"
        )
    (alpha,) = capacity.latents
    x = numpyro.sample(
        name, FluxPolytope(polytope, log_density=lambda x: alpha.log_prior(x[..., k]))
    )
    return x[..., :k], x[..., k]


def measured_fluxes(
    v: jax.Array,
    measured: Mapping[str, tuple[float, float]],
    *,
    network: Network | Polytope | Sequence[str],
    name: str = "measured_fluxes",
    dim: str = "measured_reaction",
) -> None:
    """Observed site ``name``: ``y_j ~ N(v_j, sd_j²)``, one observation per measured reaction
    (plate ``dim``: give two such sites with other reactions other dims),
    ``measured = {reaction: (value, sd)}`` with ``sd > 0``; ``network`` (or a polytope, or the
    reaction ids) names the entries of ``v``."""
    reactions = tuple(getattr(network, "reactions", network))
    missing = [r for r in measured if r not in reactions]
    if missing:
        raise ConfigError(f"{name}: measured reaction(s) {missing[:8]} are not in the model")
    if not measured:
        raise ConfigError(f"{name}: no measured flux given")
    ids = list(measured)
    values = np.array([float(measured[r][0]) for r in ids])
    sd = np.array([float(measured[r][1]) for r in ids])
    bad = [
        r for r, y, s in zip(ids, values, sd) if not (np.isfinite(y) and np.isfinite(s) and s > 0)
    ]
    if bad:
        raise ConfigError(f"{name}: measured flux of {bad} needs a finite value and 0 < sd < inf")
    index = np.array([reactions.index(r) for r in ids])
    with numpyro.plate(dim, len(ids)):
        numpyro.sample(
            name, dist.Normal(v[..., index], sd), obs=values, infer={"coords": {dim: ids}}
        )


class _MarginalFalcon(dist.Distribution):
    """The abundance vector under FALCON's Laplace likelihood with the scale integrated out
    (:meth:`ExpressionLaplace.log_marginal`): one observation of all groups together, Laplace
    scales ``noise`` (:meth:`ExpressionLaplace.noise`)."""

    support = constraints.real_vector
    pytree_data_fields = ("group_flux", "noise")
    pytree_aux_fields = ("expression",)

    def __init__(self, group_flux: jax.Array, expression: ExpressionLaplace, noise) -> None:
        self.group_flux = group_flux
        self.expression = expression
        self.noise = jnp.asarray(noise)
        batch = jnp.broadcast_shapes(jnp.shape(group_flux)[:-1], jnp.shape(noise)[:-1])
        super().__init__(batch_shape=batch, event_shape=jnp.shape(group_flux)[-1:])

    def log_prob(self, value: jax.Array) -> jax.Array:
        e = self.expression

        def one(g, x, s):
            return e.log_marginal(g, abundance=x, sigma=s) + e.log_normaliser(s)

        shape = jnp.broadcast_shapes(self.group_flux.shape, value.shape, self.noise.shape)
        g = jnp.broadcast_to(self.group_flux, shape).reshape(-1, shape[-1])
        x = jnp.broadcast_to(value, shape).reshape(-1, shape[-1])
        s = jnp.broadcast_to(self.noise, shape).reshape(-1, shape[-1])
        return jax.vmap(one)(g, x, s).reshape(shape[:-1])


def expression_falcon(
    v: jax.Array,
    expression: ExpressionLaplace,
    *,
    scale: jax.Array | None = None,
    noise: jax.Array | None = None,
    name: str | None = None,
) -> None:
    """FALCON's Laplace likelihood of the enzyme abundances (seed 003).

    ``e_i ~ Laplace(k g_i(v), σ_i)`` with ``g_i(v) = Σ_{j∈R_i} |v_j|`` over the reaction groups of
    ``expression`` (an :class:`~bayesflux.models.ExpressionLaplace` built from the network and
    the expression data). With a ``scale`` ``k`` (abundance per unit flux, any model variable):
    one observation per group (plate ``{name}_group``), so pointwise log-likelihoods exist. With
    ``scale=None``, ``k`` is integrated out exactly over ``expression.scale_bounds`` (uniform
    prior) and the groups form one observation. ``noise``: the Laplace scales (default the
    ``σ_i``; :meth:`~bayesflux.models.ExpressionLaplace.noise` of a dispersion and a relative
    error, which may be model variables).
    """
    name = name or expression.name
    g = expression.group_flux(v)
    noise = expression.noise() if noise is None else noise
    if scale is None:
        numpyro.sample(name, _MarginalFalcon(g, expression, noise), obs=expression.abundance)
        return
    dim, size = f"{name}_group", expression.abundance.size
    with numpyro.plate(dim, size):
        numpyro.sample(
            name,
            dist.Laplace(jnp.expand_dims(scale, -1) * g, noise),
            obs=expression.abundance,
            infer={"coords": {dim: np.arange(size)}},
        )


def labeling_13c(
    net: jax.Array,
    problem: LabelingProblem,
    *,
    xch: jax.Array,
    name: str = "labeling",
    dim: str = "measurement",
) -> jax.Array:
    """13C measurements as one observed site ``name`` (plate ``dim``, labelled as
    ``problem.labels()``).

    ``net`` are the net fluxes of ``problem.network``'s reactions (in its order) and ``xch`` the
    exchange fluxes of its reversible reactions; ``y_i ~ N(m_i(net, xch), sd_i²)`` with ``m`` the
    EMU / fluxomer simulation mapped to each measurement (MS fragments with their natural-isotope
    correction and scale model, enrichments, fluxes). Returns the predictions ``m``.
    """
    values, sd = problem.observations()
    predicted = values + problem.compiled_residuals(net, xch) * sd
    with numpyro.plate(dim, values.size):
        numpyro.sample(
            name, dist.Normal(predicted, sd), obs=values, infer={"coords": {dim: problem.labels()}}
        )
    return predicted


class SecondLaw(dist.Unit):
    """The factor of :func:`second_law` (``log_factor`` 0 or ``-inf``), keeping its arguments:
    the constrained reactions' fluxes ``v``, all ``ln c`` and the ``ThermoModel``, which the
    feasible-chord kernel (:class:`bayesflux.infer.FeasibleChord`) reads from the trace."""

    pytree_data_fields = ("log_factor", "v", "lnc")
    pytree_aux_fields = ("thermo",)

    def __init__(self, v: jax.Array, lnc: jax.Array, thermo: ThermoModel) -> None:
        self.v, self.lnc, self.thermo = v, lnc, thermo
        drg = thermo.drg0 + jnp.asarray(lnc) @ thermo.drg_matrix.T
        sign = flux_signs(v)
        broken = (sign != 0) & (sign * drg > -thermo.margin)
        super().__init__(jnp.where(jnp.any(broken, axis=-1), -jnp.inf, 0.0))


def second_law(
    v: jax.Array, lnc: jax.Array, thermo: ThermoModel, *, name: str = "second_law"
) -> None:
    """The second law as a factor site ``name``: 0 where every constrained flux runs down its
    ``ΔrG' = ΔrG'° + R T Σ s_ij ln c_i`` (``sign(v_j) ΔrG'_j <= -margin``; a zero flux is free),
    ``-inf`` elsewhere (seed 002). ``v`` are the fluxes of ``thermo.network`` and ``lnc`` all its
    metabolites' ``ln c``, in its orders. The feasible set is a union of orthant pieces, which
    :class:`bayesflux.infer.FeasibleChord` samples (a reflecting kernel cannot cross between
    pieces)."""
    law = SecondLaw(v[..., thermo.index], lnc, thermo)
    numpyro.sample(name, law, obs=law.sample(None), infer={"is_auxiliary": True})


class SignPatternLaw(dist.Unit):
    """The factor of :func:`second_law_signs` (``log_prob`` 0 or ``-inf``, asked of the pattern
    table only when the density is evaluated, not at every trace of the model), keeping its
    arguments: the constrained reactions' fluxes ``v`` and the :class:`PatternTable` that decides
    their sign patterns, which the orthant kernel (:class:`bayesflux.infer.OrthantHitAndRun`)
    reads from the trace."""

    pytree_data_fields = ("log_factor", "v")
    pytree_aux_fields = ("table",)

    def __init__(self, v: jax.Array, table: PatternTable) -> None:
        self.v, self.table = v, table
        super().__init__(jnp.zeros(jnp.shape(v)[:-1]))

    def log_prob(self, value: jax.Array) -> jax.Array:
        signs = flux_signs(jax.lax.stop_gradient(self.v))
        energy = jax.pure_callback(
            self.table.energies,
            jax.ShapeDtypeStruct(signs.shape[:-1], jnp.result_type(float)),
            signs,
            vmap_method="expand_dims",
        )
        return jnp.where(energy == 0.0, 0.0, -jnp.inf)


def second_law_signs(
    v: jax.Array,
    thermo: ThermoModel,
    *,
    table: PatternTable | None = None,
    name: str = "second_law",
) -> None:
    """The second law on fluxes alone, ``ln c`` marginalised, as a factor site ``name``: 0 where
    the sign pattern ``s`` of ``v`` (``thermo.network``'s fluxes; zero within ``ZERO_FLUX``)
    admits concentrations, i.e. the concentration polytope ``B(s)`` of seed 002 is non-empty,
    ``-inf`` elsewhere. Each pattern costs one LP on the host the first time it is met
    (``table``, default :meth:`PatternTable.of(thermo)
    <bayesflux.thermo.pattern_table.PatternTable.of>`),
    then a lookup. The support is a union of orthant pieces of the flux polytope, which
    :class:`bayesflux.infer.OrthantHitAndRun` samples exactly."""
    from bayesflux.thermo.pattern_table import PatternTable

    table = PatternTable.of(thermo) if table is None else table
    law = SignPatternLaw(v[..., thermo.index], table)
    numpyro.sample(name, law, obs=law.sample(None), infer={"is_auxiliary": True})


def metabolome(
    lnc: jax.Array,
    measured: Mapping[str, tuple[float, float]],
    *,
    metabolites: Sequence[str],
    name: str = "metabolome",
    dim: str = "measured_metabolite",
) -> None:
    """Observed site ``name``: ``ln ĉ_i ~ N(ln c_i, sd_i²)``, one observation per measured
    metabolite (plate ``dim``); ``measured = {metabolite: (concentration in M, sd of ln c)}``,
    ``metabolites`` the ids of the entries of ``lnc``."""
    unknown = [m for m in measured if m not in metabolites]
    if unknown:
        raise ConfigError(f"{name}: metabolome names unknown metabolite(s) {unknown[:8]}")
    ids = list(measured)
    values = np.array([float(measured[m][0]) for m in ids])
    sd = np.array([float(measured[m][1]) for m in ids])
    bad = [m for m, c, s in zip(ids, values, sd) if not (np.isfinite(c) and c > 0 and s > 0)]
    if bad or not ids:
        raise ConfigError(f"{name}: metabolome entries {bad} need concentration > 0 and sd > 0")
    index = np.array([list(metabolites).index(m) for m in ids])
    with numpyro.plate(dim, len(ids)):
        numpyro.sample(
            name,
            dist.Normal(jnp.asarray(lnc)[..., index], sd),
            obs=np.log(values),
            infer={"coords": {dim: ids}},
        )
