"""Measurement models: MS fragments, NMR fractional enrichments, measured fluxes.

:class:`LabelingProblem` joins a network, its labelling experiments and the measurements into
one weighted residual function of the free parameters ``theta = (z, v_xch)`` (free net fluxes,
then exchange fluxes of the reversible reactions):

* MS fragment: ``m = C x_EMU`` (``C`` from :func:`~bayesflux.labeling.isotopes.correction_matrix`),
  compared on the measured mass isotopomers only. ``scale="normalized"`` divides ``m`` by its
  sum over the measured masses (partial MIDs given as fractions of what was measured);
  ``scale="free"`` fits a per-fragment factor ``c = m'W y / m'W m`` in closed form (raw peak
  areas, no normalisation estimated); ``scale="none"`` uses ``m`` as it is.
* NMR fractional enrichment of one position: the M+1 fraction of the one-atom EMU.
* Flux measurement: the net flux of one reaction.

Residuals are ``(model - value) / sd``; all of them come from one jit-able function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from bayesflux.errors import NetworkError
from bayesflux.labeling.emu import EMUSimulator
from bayesflux.labeling.fluxomers import FluxomerSimulator
from bayesflux.labeling.isotopes import correction_matrix
from bayesflux.labeling.network import FluxSpace, LabelingNetwork, equality_rows
from bayesflux.labeling.tracers import Experiment

__all__ = ["MSMeasurement", "EnrichmentMeasurement", "FluxMeasurement", "LabelingProblem"]


def atom_positions(atoms: str | Sequence[int]) -> tuple[int, ...]:
    """1-based positions ``"1-3"``, ``"1,2,4"`` or ``[1, 2]`` -> 0-based sorted tuple."""
    if isinstance(atoms, str):
        out = []
        for part in atoms.replace(" ", "").split(","):
            a, _, b = part.partition("-")
            out.extend(range(int(a), int(b or a) + 1))
        atoms = out
    return tuple(sorted(int(a) - 1 for a in atoms))


@dataclass(frozen=True)
class MSMeasurement:
    """A mass isotopomer distribution of atoms ``atoms`` (1-based) of ``metabolite``.

    ``values[k]`` is mass M+``masses[k]`` (default M+k); ``formula`` (whole fragment, derivative
    included) switches on the natural-isotope model; without it the values are taken as
    corrected backbone MIDs.
    """

    experiment: str
    metabolite: str
    atoms: str | Sequence[int]
    values: Sequence[float]
    sd: Sequence[float] | float
    formula: str | None = None
    scale: str = "normalized"
    name: str = ""
    masses: Sequence[int] | None = None

    @property
    def mass_shifts(self) -> tuple[int, ...]:
        return tuple(self.masses) if self.masses is not None else tuple(range(len(self.values)))

    @property
    def label(self) -> str:
        return self.name or f"{self.metabolite}[{self.atoms}]"


@dataclass(frozen=True)
class EnrichmentMeasurement:
    """Fractional 13C enrichment (NMR) of position ``position`` (1-based) of ``metabolite``."""

    experiment: str
    metabolite: str
    position: int
    value: float
    sd: float


@dataclass(frozen=True)
class FluxMeasurement:
    """A measured net flux."""

    reaction: str
    value: float
    sd: float


class LabelingProblem:
    """Network + experiments + measurements -> residuals of ``theta = (z, v_xch)``.

    Parameters
    ----------
    network
        Atom-mapped network.
    experiments
        Parallel labelling experiments; measurements name theirs.
    measurements
        MS, NMR and flux measurements.
    fixed, equalities
        Net fluxes fixed to values (e.g. the substrate uptake that sets the flux scale) and
        linear equalities ``({reaction: coefficient}, value)`` on net fluxes.
    free
        Preferred free net fluxes (default: chosen by pivoted QR).
    xch_max
        Upper bound of the exchange fluxes.
    fixed_xch, xch_equalities
        The same for exchange fluxes of reversible reactions.
    simulator
        ``"emu"`` (default, faster) or ``"fluxomer"``.
    """

    def __init__(
        self,
        network: LabelingNetwork,
        experiments: Sequence[Experiment],
        measurements: Sequence[MSMeasurement | EnrichmentMeasurement | FluxMeasurement],
        *,
        fixed: Mapping[str, float] | None = None,
        equalities: Sequence[tuple[Mapping[str, float], float]] = (),
        free: Sequence[str] | None = None,
        xch_max: float = 1000.0,
        fixed_xch: Mapping[str, float] | None = None,
        xch_equalities: Sequence[tuple[Mapping[str, float], float]] = (),
        simulator: str = "emu",
    ) -> None:
        self.network = network
        self.experiments = tuple(experiments)
        self.measurements = tuple(measurements)
        self.space = FluxSpace.build(network, fixed=fixed, equalities=equalities, free=free)
        self.xch_max = float(xch_max)
        self.reversible = network.reversible_ids
        for r in fixed_xch or {}:
            if r not in self.reversible:
                raise NetworkError(f"exchange flux fixed for {r!r}, which is not reversible")
        nx = len(self.reversible)
        E, e = equality_rows(self.reversible, fixed_xch, xch_equalities)
        self.xch_space = FluxSpace.from_constraints(
            self.reversible, E, e, np.zeros(nx), np.full(nx, self.xch_max)
        )
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise NetworkError(f"duplicate experiment names {names}")
        exp_index = {n: i for i, n in enumerate(names)}
        rxn_index = {r: i for i, r in enumerate(network.reaction_ids)}
        targets: dict[tuple[str, tuple[int, ...]], int] = {}
        ms, fe, fl = [], [], []
        for m in self.measurements:
            if isinstance(m, FluxMeasurement):
                if m.reaction not in rxn_index:
                    raise NetworkError(f"flux measurement of unknown reaction {m.reaction!r}")
                fl.append(m)
                continue
            if m.experiment not in exp_index:
                raise NetworkError(
                    f"measurement of {m.metabolite!r} names unknown experiment {m.experiment!r}"
                )
            if m.metabolite not in network.atom_counts:
                raise NetworkError(
                    f"measured metabolite {m.metabolite!r} is not traced in the network"
                )
            pos = (
                atom_positions(m.atoms) if isinstance(m, MSMeasurement) else (int(m.position) - 1,)
            )
            targets.setdefault((m.metabolite, pos), len(targets))
            (ms if isinstance(m, MSMeasurement) else fe).append((m, pos))
        for what, m in [*((f"enrichment of {m.metabolite!r}", m) for m, _ in fe)] + [
            (f"flux of {m.reaction!r}", m) for m in fl
        ]:
            if not (np.isfinite(m.sd) and m.sd > 0 and np.isfinite(m.value)):
                raise NetworkError(
                    f"measured {what}: value {m.value} and sd {m.sd} must be finite, sd > 0"
                )
        if simulator == "emu":
            self.simulator = EMUSimulator(network, list(targets))
            self.inputs = np.stack([self.simulator.input_mids(e) for e in self.experiments])
        elif simulator == "fluxomer":
            self.simulator = FluxomerSimulator(network, list(targets))
            self.inputs = np.stack([self.simulator.input_isotopomers(e) for e in self.experiments])
        else:
            raise NetworkError(f"unknown simulator {simulator!r} (use 'emu' or 'fluxomer')")
        width = self.simulator.width
        lmax = max((len(m.values) for m, _ in ms), default=1)
        n = len(ms)
        self._ms_exp = np.array([exp_index[m.experiment] for m, _ in ms], dtype=int)
        self._ms_tgt = np.array([targets[(m.metabolite, p)] for m, p in ms], dtype=int)
        self._ms_C = np.zeros((n, lmax, width))
        self._ms_y = np.zeros((n, lmax))
        self._ms_w = np.zeros((n, lmax))  # 1/sd, 0 where not measured
        self._ms_scale = np.zeros(n, dtype=int)
        for i, (m, p) in enumerate(ms):
            masses = m.mass_shifts
            k = len(masses)
            if k != len(m.values) or len(set(masses)) != k or min(masses) < 0:
                raise NetworkError(
                    f"measurement {m.label!r}: masses {masses} do not match its values"
                )
            sd = np.broadcast_to(np.asarray(m.sd, float), (k,))
            if not np.all(np.isfinite(sd) & (sd > 0)):
                raise NetworkError(
                    f"measurement {m.label!r}: standard deviations must be finite and > 0"
                )
            if m.formula:
                C = correction_matrix(m.formula, len(p), n_measured=max(masses) + 1)
            elif max(masses) > len(p):
                raise NetworkError(
                    f"measurement {m.label!r}: mass M+{max(masses)} above the {len(p)} traced atoms"
                )
            else:
                C = np.eye(len(p) + 1)
            self._ms_C[i, :k, : len(p) + 1] = C[list(masses)]
            self._ms_y[i, :k] = m.values
            self._ms_w[i, :k] = 1.0 / sd
            if m.scale not in ("normalized", "free", "none"):
                raise NetworkError(f"measurement {m.label!r}: unknown scale {m.scale!r}")
            self._ms_scale[i] = ("none", "normalized", "free").index(m.scale)
        self.ms = tuple(m for m, _ in ms)
        self._fe_exp = np.array([exp_index[m.experiment] for m, _ in fe], dtype=int)
        self._fe_tgt = np.array([targets[(m.metabolite, p)] for m, p in fe], dtype=int)
        self._fe_y = np.array([m.value for m, _ in fe], dtype=float)
        self._fe_w = np.array([1.0 / m.sd for m, _ in fe], dtype=float)
        self.fe = tuple(m for m, _ in fe)
        self._fl_idx = np.array([rxn_index[m.reaction] for m in fl], dtype=int)
        self._fl_y = np.array([m.value for m in fl], dtype=float)
        self._fl_w = np.array([1.0 / m.sd for m in fl], dtype=float)
        self.fluxes = tuple(fl)
        self._mask = np.concatenate([self._ms_w.ravel() > 0, np.ones(len(fe) + len(fl), bool)])
        self.n_measurements = int(self._mask.sum())
        self.n_scale = int(np.sum(self._ms_scale == 2))

    # ------------------------------------------------------------------ parameters
    @property
    def n_params(self) -> int:
        return self.space.n_free + self.xch_space.n_free

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f"{r}.net" for r in self.space.free) + tuple(
            f"{r}.xch" for r in self.xch_space.free
        )

    def split(self, theta: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``theta -> (net fluxes of all reactions, exchange fluxes)``."""
        z, w = theta[..., : self.space.n_free], theta[..., self.space.n_free :]
        return self.space.net(z), self.xch_space.net(w)

    # ------------------------------------------------------------------ model
    def simulate_from_fluxes(self, net: jax.Array, xch: jax.Array) -> jax.Array:
        """Target MIDs of every experiment ``(n_experiments, n_targets, width)``."""
        u = self.network.gross_fluxes(net, xch)
        return jax.vmap(lambda x: self.simulator.simulate(u, x))(jnp.asarray(self.inputs))

    def _data(self, values: jax.Array | None) -> tuple:
        """``(ms (n_ms, L), fe, flux)`` data arrays: the stored ones, or ``values`` (flat, order
        of :meth:`observations`) scattered into the same padded layout (traceable)."""
        if values is None:
            return self._ms_y, self._fe_y, self._fl_y
        values = jnp.asarray(values)
        if values.shape != (self.n_measurements,):
            raise NetworkError(
                f"values must be a flat vector of the {self.n_measurements} measured values "
                f"(order of observations()), got shape {values.shape}"
            )
        where = np.flatnonzero(self._mask[: self._ms_w.size])
        n_ms, n_fe = where.size, self._fe_y.size
        ms = jnp.zeros(self._ms_w.size, values.dtype).at[where].set(values[:n_ms])
        return (
            ms.reshape(self._ms_w.shape),
            values[n_ms : n_ms + n_fe],
            values[n_ms + n_fe :],
        )

    def predictions(
        self, net: jax.Array, xch: jax.Array, values: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Model values: ``ms`` ``(n_ms, L)`` (scaled like the data), ``fe``, ``flux``.

        ``values`` (flat, order of :meth:`observations`) replaces the stored data; only
        ``scale="free"`` fragments use it (their fitted factor ``c``).
        """
        ms_y = self._data(values)[0]
        mids = self.simulate_from_fluxes(net, xch)
        sim = mids[self._ms_exp, self._ms_tgt]  # (n_ms, width)
        m = jnp.einsum("nlw,nw->nl", self._ms_C, sim) * (self._ms_w > 0)
        w2 = self._ms_w**2
        normalized = m / jnp.sum(m, axis=1, keepdims=True)
        c = jnp.sum(m * ms_y * w2, axis=1, keepdims=True) / jnp.sum(
            m * m * w2, axis=1, keepdims=True
        )
        s = self._ms_scale[:, None]
        ms = jnp.where(s == 1, normalized, jnp.where(s == 2, c * m, m))
        fe = mids[self._fe_exp, self._fe_tgt, 1]
        return {"ms": ms, "fe": fe, "flux": net[self._fl_idx]}

    def residuals_from_fluxes(
        self, net: jax.Array, xch: jax.Array, values: jax.Array | None = None
    ) -> jax.Array:
        """Weighted residuals ``(model - data) / sd`` over all measured values (fixed length).

        ``values``: the measured values as a flat vector in the order of :meth:`observations`
        and :meth:`labels`, replacing the stored data, so that data can be a traced JAX
        argument (e.g. simulated data in simulation-based calibration); default: stored data.
        """
        ms_y, fe_y, fl_y = self._data(values)
        p = self.predictions(net, xch, values)
        r_ms = ((p["ms"] - ms_y) * self._ms_w).ravel()[
            np.flatnonzero(self._mask[: self._ms_w.size])
        ]
        r_fe = (p["fe"] - fe_y) * self._fe_w
        r_fl = (p["flux"] - fl_y) * self._fl_w
        return jnp.concatenate([r_ms, r_fe, r_fl])

    def residuals(self, theta: jax.Array) -> jax.Array:
        """Weighted residuals at ``theta = (z, v_xch)``."""
        return self.residuals_from_fluxes(*self.split(theta))

    @cached_property
    def compiled_residuals(self):
        """:meth:`residuals_from_fluxes` as one compiled program (models evaluated eagerly under
        ``vmap``, as NumPyro's start-up and log-likelihoods do, would otherwise compile every
        operation of the simulation on its own)."""
        return jax.jit(self.residuals_from_fluxes)

    @cached_property
    def compiled(self) -> dict:
        """Jitted ``ssr_and_grad(theta)``, ``residuals(theta)`` and ``jacobian(theta)``."""
        ssr = lambda th: jnp.sum(self.residuals(th) ** 2)  # noqa: E731
        return {
            "ssr_and_grad": jax.jit(jax.value_and_grad(ssr)),
            "residuals": jax.jit(self.residuals),
            "jacobian": jax.jit(jax.jacfwd(self.residuals)),
        }

    def log_likelihood(
        self, net: jax.Array, xch: jax.Array, values: jax.Array | None = None
    ) -> jax.Array:
        """Gaussian log-likelihood of all measurements at net and exchange fluxes.

        ``-1/2 sum r_i^2 - sum log sd_i - n/2 log(2 pi)``; jit-able and differentiable, ready for
        ``numpyro.factor("labeling", problem.log_likelihood(v, v_xch))``. ``values`` replaces the
        stored data as in :meth:`residuals_from_fluxes`.
        """
        r = self.residuals_from_fluxes(net, xch, values)
        _, sd = self.observations()
        return -0.5 * jnp.sum(r**2) - np.sum(np.log(sd)) - 0.5 * r.size * np.log(2 * np.pi)

    def observations(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured values and standard deviations, one per residual (order of :meth:`labels`)."""
        ms = self._mask[: self._ms_w.size]
        values = np.concatenate([self._ms_y.ravel()[ms], self._fe_y, self._fl_y])
        sd = 1.0 / np.concatenate([self._ms_w.ravel()[ms], self._fe_w, self._fl_w])
        return values, sd

    def labels(self) -> list[str]:
        """One label per residual: ``experiment:fragment:M+k``, ``experiment:FE:met#p``,
        ``flux:reaction``."""
        out = [f"{m.experiment}:{m.label}:M+{k}" for m in self.ms for k in m.mass_shifts]
        out += [f"{m.experiment}:FE:{m.metabolite}#{m.position}" for m in self.fe]
        out += [f"flux:{m.reaction}" for m in self.fluxes]
        return out
