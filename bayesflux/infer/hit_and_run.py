"""Straight-line kernels for NumPyro models with polytope sites: hit-and-run, slice, billiard.

Both take a model, as NumPyro's ``NUTS`` does, and move all latent sites together in NumPyro's
unconstrained space ``x`` (a :class:`~bayesflux.models.blocks.FluxPolytope` site's reduced
coordinates, other sites' unconstrained values), inside the polytopes' half-spaces ``A x <= b``.
One transition is ``moves`` hit-and-run moves (default: the dimension of ``x``, one sweep) along
lines of the rounded coordinates ``x = x0 + S y`` (Smith 1984; seed 002): random directions or
coordinate axes of ``y``. ``S Sᵀ`` starts as the polytopes' Expectation-Propagation covariance
and, where the model has a density, is adapted in warm-up to the posterior's covariance by
NumPyro's Welford windows (Stan's schedule), so lines run along the posterior's ridges. The
rounding is frozen after warm-up: kept draws come from one fixed, exact kernel.

* :class:`HitAndRun` — a uniform point of the chord (exact for the uniform prior; hit-and-run
  Metropolis with a density), or a Gaussian step along the line (``step_size``; adapted per axis
  in warm-up by dual averaging) accepted by Metropolis: :mod:`bayesflux.sampling.hit_and_run`.
* :class:`HitAndRunSlice` — slice sampling along the chord by shrinkage (Neal 2003, sections 4 and
  5.2): no step size and no rejection, :mod:`bayesflux.sampling.slice`.
* :class:`Billiard` — the billiard walk (Polyak and Gryazina 2014, "Billiard walk - a new sampling
  algorithm for control and optimization", IFAC Proc. 47): a straight path of random length
  ``τ ~ U(0, 2 T)`` with a Gaussian velocity, reflected at the facets
  (:func:`~bayesflux.infer.reflective_hmc.reflect`). Reflection preserves volume and speed, so
  the path is an exact move for the uniform distribution (always accepted); with a density it is
  accepted with ``min(1, p(x') / p(x))`` (HMC without force). It crosses long, thin polytopes
  where coordinate moves crawl.

The kernels that keep to the second law build on the same driver
(:mod:`bayesflux.infer.thermodynamic`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc_util import HMCAdaptState, warmup_adapter

from bayesflux.errors import ConfigError
from bayesflux.infer.reflective_hmc import flight
from bayesflux.infer.sites import PolytopeKernel, Prepared, init_to_polytope
from bayesflux.sampling import hit_and_run, slice
from bayesflux.sampling.hit_and_run import DualAveragingState, HitAndRunState
from bayesflux.sampling.rounding import Rounding

__all__ = ["Billiard", "ChordState", "Frame", "HitAndRun", "HitAndRunSlice"]


class ChordState(NamedTuple):
    """One chain: the unconstrained site values ``z`` (``x`` flattened), ``U = -log p``, the
    statistics of the last transition (mean acceptance and chord length of its moves, density
    evaluations), the Gaussian steps' dual averaging (``step``), the rounding's adaptation
    (``adapt_state``, NumPyro's) and a kernel's own state (``extra``: the orthant kernel's
    pattern table; empty for the others)."""

    i: jax.Array
    z: dict
    x: jax.Array
    potential_energy: jax.Array
    accept_prob: jax.Array
    mean_accept_prob: jax.Array
    chord_length: jax.Array
    num_evals: jax.Array
    step_size: jax.Array
    step: DualAveragingState
    adapt_state: HMCAdaptState
    rng_key: jax.Array
    slack: jax.Array
    extra: Any = ()


class Frame(NamedTuple):
    """What the moves of one transition see. Lines run through ``x + S y`` (``S`` the rounding)
    inside ``AS y <= room`` (``room = b - A x``, the slacks; ``A x <= b`` the polytopes'
    half-spaces). ``gram = AS ASᵀ`` for a kernel that reads it (the billiard walk's reflections)
    where the rounding is fixed and the ``m x m`` matrix is small enough, else None.
    ``log_density(x)``, the model's log density at ``x`` for this call's arguments, is None for
    a uniform target."""

    x: jax.Array
    S: jax.Array
    AS: jax.Array
    room: jax.Array
    A: jax.Array
    b: jax.Array
    gram: jax.Array | None
    log_density: Callable | None


class _Moves(NamedTuple):
    """A transition's moves: ``y`` from 0 in ``x + S y``, or the new point ``x`` itself and its
    slacks (``slack``, for kernels that keep them; the driver computes what is None)."""

    y: jax.Array | None
    logdensity: jax.Array
    accept_prob: jax.Array
    chord_length: jax.Array
    num_evals: jax.Array
    step: DualAveragingState
    extra: Any = ()
    x: jax.Array | None = None
    slack: jax.Array | None = None


GRAM_BYTES = 2**28
"""Largest Gram matrix ``AS ASᵀ`` (bytes) the billiard walk keeps: 256 MiB, ``m`` up to 5 792."""


class _ChordKernel(PolytopeKernel):
    """Shared driver: rounding, its adaptation, and the bookkeeping of one transition; a
    subclass supplies ``_moves(key, frame, target, logp, step, adapting, extra) -> _Moves``
    (moves ``y`` from 0 in ``x + S y`` of the :class:`Frame`, ``target(y)`` the log density
    there), and may keep state of its own (``extra``, from :meth:`_initial_extra`) and count as
    uniform where other kernels see a density (:meth:`_uniform`). The slacks ``b - A x`` travel
    in the state: a kernel that keeps them up to date spares the driver an ``O(m d)`` product."""

    stat_fields = ("potential_energy", "accept_prob", "chord_length", "num_evals", "step_size")
    _bounded_chords = True  # uniform chord points and slices need every line to end
    _reads_gram = False  # whether the moves read Frame.gram (the billiard walk's reflections)

    def __init__(
        self,
        model: Callable,
        *,
        direction: str,
        moves: int | None,
        rounding: str | Rounding,
        adapt_rounding: bool | None,
        init_strategy: Callable | None,
    ) -> None:
        if direction not in ("coordinate", "random"):
            raise ConfigError(f"direction must be 'coordinate' or 'random', got {direction!r}")
        if moves is not None and (isinstance(moves, bool) or int(moves) < 1):
            raise ConfigError(f"moves must be an integer >= 1, got {moves!r}")
        self._model = model
        self.direction = direction
        self.moves = None if moves is None else int(moves)
        self.rounding = rounding
        self.adapt_rounding = adapt_rounding
        self._init_strategy = init_strategy or init_to_polytope()
        self.polytopes = {}

    def get_diagnostics_str(self, state: ChordState) -> str:
        return (
            f"chord {float(state.chord_length):.2e}, {float(state.num_evals):.0f} evals, "
            f"acc. prob={float(state.mean_accept_prob):.2f}"
        )

    def _check(self, prepared: Prepared, model_args: tuple, model_kwargs: dict) -> None:
        if self._bounded_chords and prepared.free_sites:
            raise ConfigError(
                f"{type(self).__name__} needs every latent site on a polytope (its lines must "
                f"end), but {list(prepared.free_sites)} are not: put them in a joint polytope "
                "(bayesflux.models.joint_polytope), give HitAndRun a step_size, or use "
                "ReflectiveHMC"
            )

    def _initial_step(self, size: int) -> DualAveragingState:
        return hit_and_run.init_adaptation(1.0, dim=size, direction="random")

    def _initial_extra(self) -> Any:
        return ()

    def _uniform(self, prepared: Prepared) -> bool:
        """Whether the target is uniform on the set the moves keep to (no Metropolis step)."""
        return prepared.uniform

    @abstractmethod
    def _moves(self, key, frame: Frame, target, logp, step, adapting, extra) -> _Moves:
        """``moves`` moves of one transition, from ``y = 0``."""

    def _build(self, prepared: Prepared, num_warmup: int):
        geom, U, unravel = prepared.geometry, prepared.potential, prepared.unravel
        size = geom.A.shape[1]
        moves = self.moves or size
        uniform = self._uniform(prepared)
        adapt_rounding = (not uniform) if self.adapt_rounding is None else bool(self.adapt_rounding)
        A, b = jnp.asarray(geom.A), jnp.asarray(geom.b)
        S0 = np.asarray(geom.factor)
        AS0 = geom.A @ S0
        gram = None
        small = AS0.shape[0] ** 2 * AS0.itemsize <= GRAM_BYTES
        if self._reads_gram and not adapt_rounding and small:
            gram = jnp.asarray(AS0 @ AS0.T)
        S0, AS0 = jnp.asarray(S0), jnp.asarray(AS0)
        adapt_init, adapt_update = warmup_adapter(
            num_warmup, adapt_step_size=False, adapt_mass_matrix=adapt_rounding, dense_mass=True
        )
        zero_moves = jnp.zeros((), int)

        def init_fn(x, key, args, kwargs):
            key, key_adapt = jax.random.split(key)
            adapt = adapt_init(
                (x,),
                key_adapt,
                jnp.ones((), x.dtype),
                inverse_mass_matrix=jnp.asarray(geom.inverse_mass),
            )
            step = self._initial_step(size)
            one = jnp.ones((), x.dtype)
            return ChordState(
                zero_moves, unravel(x), x, U(x, args, kwargs), one, one, jnp.zeros((), x.dtype),
                jnp.zeros((), x.dtype), jnp.exp(jnp.mean(step.log_step)), step, adapt, key,
                b - A @ x, self._initial_extra(),
            )  # fmt: skip

        def transition(state: ChordState, args, kwargs) -> ChordState:
            key, key_moves = jax.random.split(state.rng_key)
            if adapt_rounding:
                S = state.adapt_state.mass_matrix_sqrt_inv.T  # S Sᵀ the adapted covariance
                AS = A @ S
            else:
                S, AS = S0, AS0
            log_density = None if uniform else (lambda q: -U(q, args, kwargs))
            frame = Frame(state.x, S, AS, state.slack, A, b, gram, log_density)
            target = None if uniform else (lambda y: log_density(state.x + S @ y))
            # the potential at x for this call's arguments (they may differ between calls)
            logp = 0.0 * state.potential_energy if uniform else log_density(state.x)
            step = jax.lax.cond(
                state.i == num_warmup, hit_and_run.freeze, lambda s: s, state.step
            )  # kept draws use the averaged steps
            out = self._moves(
                key_moves, frame, target, logp, step, state.i < num_warmup, state.extra
            )
            x = state.x + S @ out.y if out.x is None else out.x
            slack = b - A @ x if out.slack is None else out.slack
            adapt = state.adapt_state
            if adapt_rounding:
                adapt = jax.lax.cond(
                    state.i < num_warmup,
                    lambda a: adapt_update(state.i, out.accept_prob, (x,), a),
                    lambda a: a,
                    adapt,
                )
            n = state.i + 1 - num_warmup  # kept draws so far, this one included
            mean_prob = jnp.where(
                n > 0,
                state.mean_accept_prob
                + (out.accept_prob - state.mean_accept_prob) / jnp.maximum(n, 1),
                out.accept_prob,
            )
            return ChordState(
                state.i + 1, unravel(x), x, -out.logdensity, out.accept_prob, mean_prob,
                out.chord_length, out.num_evals, jnp.exp(jnp.mean(out.step.log_step)), out.step,
                adapt, key, slack, out.extra,
            )  # fmt: skip

        self._n_moves = moves
        return init_fn, transition


class HitAndRun(_ChordKernel):
    """Hit-and-run on a model's polytope sites: uniform chord points or Gaussian steps.

    Parameters
    ----------
    model
        A NumPyro model with :func:`~bayesflux.models.blocks.flux_polytope` sites. With the
        uniform chord (``step_size=None``) every latent site must lie on a polytope (a joint
        polytope holds latent coordinates); Gaussian steps also move sites without bounds.
    direction
        ``"coordinate"`` (axes of the rounded coordinates, ``O(m)`` per move) or ``"random"``.
    moves
        Moves per transition (default: the dimension, one sweep).
    step_size
        None: a uniform point of the chord, accepted by Metropolis where the model has a
        density (exact and always accepted for the uniform prior). A number: the initial sd of a
        Gaussian step along the line in rounded units, adapted per axis in warm-up toward
        ``target_accept_prob`` (unless ``adapt_step_size=False``) and frozen for the kept draws.
    rounding
        Initial rounding of the polytope sites: ``"ep"``, ``"mve"``, ``"none"`` or a
        :class:`~bayesflux.sampling.Rounding` (one polytope site), e.g. from a linearised fit.
    adapt_rounding
        Adapt the rounding to the posterior's covariance in warm-up (default: where the model
        has a density).
    init_strategy
        NumPyro init strategy (default :func:`~bayesflux.infer.init_to_polytope`).
    """

    def __init__(
        self,
        model: Callable,
        *,
        direction: str = "coordinate",
        moves: int | None = None,
        step_size: float | None = None,
        adapt_step_size: bool = True,
        target_accept_prob: float = 0.4,
        rounding: str | Rounding = "ep",
        adapt_rounding: bool | None = None,
        init_strategy: Callable | None = None,
    ) -> None:
        super().__init__(
            model,
            direction=direction,
            moves=moves,
            rounding=rounding,
            adapt_rounding=adapt_rounding,
            init_strategy=init_strategy,
        )
        if step_size is not None and not np.all(np.asarray(step_size, dtype=float) > 0):
            raise ConfigError(f"step_size must be positive, got {step_size!r}")
        if not 0.0 < target_accept_prob < 1.0:
            raise ConfigError(f"target_accept_prob must lie in (0, 1), got {target_accept_prob}")
        self.step_size = step_size
        self.adapt_step_size = bool(adapt_step_size)
        self.target_accept_prob = float(target_accept_prob)
        self._bounded_chords = step_size is None

    def _initial_step(self, size: int) -> DualAveragingState:
        if self.step_size is None:
            return super()._initial_step(size)
        step = np.asarray(self.step_size, dtype=float)
        if step.ndim and step.shape != (size,):
            raise ConfigError(
                f"step_size must be a scalar or one per unconstrained coordinate ({size}), "
                f"got shape {step.shape}"
            )
        if self.direction == "random" and step.ndim:
            raise ConfigError("step_size for random directions must be a scalar")
        return hit_and_run.init_adaptation(step, dim=size, direction=self.direction)

    def _moves(self, key, frame: Frame, target, logp, step, adapting, extra) -> _Moves:
        # moves along the columns of S update x and its slacks themselves: O(m + d) a move
        start = HitAndRunState(frame.x, frame.room, logp)
        options = dict(
            direction=self.direction, logdensity_fn=frame.log_density, thinning=self._n_moves,
            basis=frame.S,
        )  # fmt: skip
        n_evals = jnp.asarray(0.0 if target is None else float(self._n_moves), frame.x.dtype)
        if self.step_size is None:
            kernel = hit_and_run.build_kernel(frame.A, frame.b, **options)
            state, info = kernel(key, start)
        else:
            kernel = hit_and_run.build_warmup_kernel(
                frame.A, frame.b, target_acceptance=self.target_accept_prob, **options
            )
            state, step, info = kernel(key, start, step, adapting & self.adapt_step_size)
        return _Moves(
            None, state.logdensity, info.acceptance_rate, info.chord_length, n_evals, step,
            x=state.position, slack=state.slack,
        )  # fmt: skip


class HitAndRunSlice(_ChordKernel):
    """Hit-and-run slice sampling on a model's polytope sites (Neal 2003): along each line, a
    uniform point of ``{λ : p(x + λθ) > u}`` found by shrinking the chord; every latent site must
    lie on a polytope.

    Parameters are those of :class:`HitAndRun` without the step; ``max_shrink`` bounds the
    shrinkage proposals of one move (a move that uses them all stays put).
    """

    def __init__(
        self,
        model: Callable,
        *,
        direction: str = "random",
        moves: int | None = None,
        max_shrink: int = 200,
        rounding: str | Rounding = "ep",
        adapt_rounding: bool | None = None,
        init_strategy: Callable | None = None,
    ) -> None:
        super().__init__(
            model,
            direction=direction,
            moves=moves,
            rounding=rounding,
            adapt_rounding=adapt_rounding,
            init_strategy=init_strategy,
        )
        if int(max_shrink) < 1:
            raise ConfigError(f"max_shrink must be >= 1, got {max_shrink}")
        self.max_shrink = int(max_shrink)

    def _moves(self, key, frame: Frame, target, logp, step, adapting, extra) -> _Moves:
        AS, room = frame.AS, frame.room
        target = target if target is not None else (lambda y: jnp.zeros((), AS.dtype))
        kernel = slice.build_kernel(
            AS,
            room,
            target,
            direction=self.direction,
            thinning=self._n_moves,
            max_shrink=self.max_shrink,
        )
        state, info = kernel(key, slice.SliceState(jnp.zeros(AS.shape[1], AS.dtype), room, logp))
        one = jnp.ones((), AS.dtype)
        return _Moves(
            state.position,
            state.logdensity,
            one,
            info.chord_length,
            info.n_evals * self._n_moves,
            step,
        )


class Billiard(_ChordKernel):
    """The billiard walk on a model's polytope sites: reflected straight paths, ``moves`` (default
    1) per transition, each accepted or rejected on its own.

    Parameters
    ----------
    model
        A NumPyro model whose latent sites all lie on polytopes (paths must end at facets).
    trajectory_length
        Mean path length ``T`` in rounded coordinates (paths are ``U(0, 2 T)`` long).
    max_reflections
        Cap on the reflections of one path; a path that needs more is rejected.
    moves
        Paths per transition (a thinning that stores nothing between paths).
    rounding, adapt_rounding, init_strategy
        As in :class:`HitAndRun`.
    """

    _reads_gram = True

    def __init__(
        self,
        model: Callable,
        *,
        trajectory_length: float = 2.0,
        max_reflections: int = 1000,
        moves: int = 1,
        rounding: str | Rounding = "ep",
        adapt_rounding: bool | None = None,
        init_strategy: Callable | None = None,
    ) -> None:
        super().__init__(
            model,
            direction="random",
            moves=moves,
            rounding=rounding,
            adapt_rounding=adapt_rounding,
            init_strategy=init_strategy,
        )
        if not trajectory_length > 0 or int(max_reflections) < 1:
            raise ConfigError(
                "trajectory_length must be > 0 and max_reflections >= 1, got "
                f"{trajectory_length}, {max_reflections}"
            )
        self.trajectory_length = float(trajectory_length)
        self.max_reflections = int(max_reflections)

    def _moves(self, key, frame: Frame, target, logp, step, adapting, extra) -> _Moves:
        AS, room, dtype = frame.AS, frame.room, frame.x.dtype
        tol = 1e-9 * (1.0 + jnp.abs(room))

        def path(carry, key):
            y, slack, logp = carry
            k_velocity, k_time, k_accept = jax.random.split(key, 3)
            velocity = jax.random.normal(k_velocity, y.shape, dtype)
            time = self.trajectory_length * jax.random.uniform(k_time, (), dtype, 0.0, 2.0)
            y_new, _, n, s_new = flight(
                y, velocity, time, AS, slack, self.max_reflections, frame.gram
            )
            inside = (n <= self.max_reflections) & jnp.all(s_new >= -tol)
            new = logp if target is None else target(y_new)
            prob = jnp.where(inside, jnp.exp(jnp.minimum(new - logp, 0.0)), 0.0)
            prob = jnp.where(jnp.isfinite(prob), prob, 0.0)
            accept = jax.random.uniform(k_accept, (), dtype) < prob
            carry = jax.tree.map(
                lambda a, b: jnp.where(accept, a, b), (y_new, s_new, new), (y, slack, logp)
            )
            return carry, (prob, time)

        start = (jnp.zeros(AS.shape[1], dtype), room, logp)
        (y, _, logp), (prob, time) = jax.lax.scan(path, start, jax.random.split(key, self._n_moves))
        evals = jnp.asarray(0.0 if target is None else float(self._n_moves), dtype)
        return _Moves(y, logp, prob.mean(), time.mean(), evals, step)
