"""Thermodynamic data of a network: ΔrG0, ln-concentration bounds and ΔrG(ln c).

A :class:`ThermoModel` adds to a :class:`~bayesflux.Network` what the thermodynamic-stoichiometric
model (TSM; Niebel et al. 2019, seed 002) needs:

* the reactions subject to the second law (``v_j ΔrG_j < 0`` for ``v_j != 0``) and their standard
  Gibbs energies ``ΔrG0`` (mean, optional standard deviation or covariance), in kJ/mol;
* bounds on ``ln c`` (c in mol/L) per metabolite (metabolites whose activity is fixed, such as
  water or protons under transformed energies, get ``lo = hi``);
* the temperature and a margin ``δ`` (kJ/mol): a reaction carrying flux forwards needs
  ``ΔrG <= -δ``, backwards ``ΔrG >= δ``.

``ΔrG(ln c) = ΔrG0 + R T Sᵀ ln c`` is a JAX function (:meth:`ThermoModel.drg`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesflux.errors import NetworkError
from bayesflux.network import Network, as_network

__all__ = [
    "R_GAS",
    "ThermoDataError",
    "ThermoModel",
    "PHYSIOLOGICAL_LNC",
]

R_GAS = 8.314462618e-3  # kJ / (mol K)
PHYSIOLOGICAL_LNC = (float(np.log(1e-6)), float(np.log(2e-2)))  # 1 µM .. 20 mM


class ThermoDataError(NetworkError):
    """Thermodynamic data are missing or inconsistent (missing ΔrG0, lo > hi, unknown ids)."""


def _readonly(a: Any) -> np.ndarray:
    out = np.array(a, dtype=float, copy=True)
    out.flags.writeable = False
    return out


def _names(ids: Sequence[str], limit: int = 10) -> str:
    ids = list(ids)
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


@dataclass(frozen=True, eq=False)
class ThermoModel:
    """Thermodynamic constraints on a network (use :meth:`from_data` to build one).

    Parameters
    ----------
    network
        The network.
    reactions
        Ids of the reactions subject to the second law, in the order of ``drg0``.
    drg0, drg0_sd
        Standard Gibbs energies of those reactions and their standard deviations (kJ/mol).
    drg0_cov
        Optional covariance of ``drg0`` ((kJ/mol)^2; may be rank deficient).
    lnc_lb, lnc_ub
        Bounds on ``ln(c / M)`` per network metabolite.
    temperature
        Kelvin.
    margin
        ``δ`` in kJ/mol: flux forwards needs ``ΔrG <= -δ``, backwards ``ΔrG >= δ``.
    lnc_measured
        ``{metabolite: (mean, sd)}`` of measured ``ln c`` (used by ΔrG0 fitting).
    """

    network: Network
    reactions: tuple[str, ...]
    drg0: np.ndarray
    drg0_sd: np.ndarray
    lnc_lb: np.ndarray
    lnc_ub: np.ndarray
    drg0_cov: np.ndarray | None = None
    temperature: float = 298.15
    margin: float = 0.1
    lnc_measured: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        net = self.network
        rxns = tuple(str(r) for r in self.reactions)
        set_(self, "reactions", rxns)
        unknown = [r for r in rxns if r not in net.reaction_index]
        if unknown:
            raise ThermoDataError(f"unknown reaction(s) in thermodynamic data: {_names(unknown)}")
        n = len(rxns)
        drg0 = np.asarray(self.drg0, dtype=float)
        sd = np.zeros(n) if self.drg0_sd is None else np.asarray(self.drg0_sd, dtype=float)
        if drg0.shape != (n,) or sd.shape != (n,):
            raise ThermoDataError(f"drg0 and drg0_sd need one entry per constrained reaction ({n})")
        bad = [rxns[i] for i in np.flatnonzero(~np.isfinite(drg0))]
        if bad:
            raise ThermoDataError(f"missing (non-finite) ΔrG0 for reaction(s): {_names(bad)}")
        bad = [rxns[i] for i in np.flatnonzero(~np.isfinite(sd) | (sd < 0))]
        if bad:
            raise ThermoDataError(f"ΔrG0 standard deviation must be finite and >= 0: {_names(bad)}")
        set_(self, "drg0", _readonly(drg0))
        set_(self, "drg0_sd", _readonly(sd))
        if self.drg0_cov is not None:
            cov = np.asarray(self.drg0_cov, dtype=float)
            if cov.shape != (n, n) or not np.allclose(cov, cov.T, atol=1e-8):
                raise ThermoDataError(f"drg0_cov must be a symmetric {n} x {n} matrix")
            set_(self, "drg0_cov", _readonly(cov))
        m = net.n_metabolites
        lo, hi = np.asarray(self.lnc_lb, float), np.asarray(self.lnc_ub, float)
        if lo.shape != (m,) or hi.shape != (m,):
            raise ThermoDataError(f"lnc_lb and lnc_ub need one entry per metabolite ({m})")
        bad = [net.metabolites[i] for i in np.flatnonzero(~(lo <= hi))]
        if bad:
            i = net.metabolite_index[bad[0]]
            raise ThermoDataError(
                f"inconsistent ln c bounds (lower > upper or NaN) for metabolite(s) {_names(bad)}: "
                f"{bad[0]} has [{lo[i]}, {hi[i]}]"
            )
        used = np.asarray(np.abs(self.S).sum(axis=1)).ravel() > 0
        bad = [
            net.metabolites[i] for i in np.flatnonzero(used & ~(np.isfinite(lo) & np.isfinite(hi)))
        ]
        if bad:
            raise ThermoDataError(f"ln c bounds must be finite for metabolite(s) {_names(bad)}")
        set_(self, "lnc_lb", _readonly(lo))
        set_(self, "lnc_ub", _readonly(hi))
        if not (self.temperature > 0 and np.isfinite(self.temperature)):
            raise ThermoDataError(f"temperature must be positive, got {self.temperature}")
        if not self.margin >= 0:
            raise ThermoDataError(f"margin δ must be >= 0 kJ/mol, got {self.margin}")
        for met, (mean, sd) in dict(self.lnc_measured).items():
            if met not in net.metabolite_index:
                raise ThermoDataError(f"measured concentration of unknown metabolite {met!r}")
            if not (np.isfinite(mean) and sd > 0):
                raise ThermoDataError(f"measured ln c of {met!r} needs a finite mean and sd > 0")
        set_(self, "lnc_measured", dict(self.lnc_measured))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_data(
        cls,
        network: Any,
        drg0: Mapping[str, float],
        *,
        drg0_sd: Mapping[str, float] | None = None,
        drg0_cov: Any = None,
        reactions: Sequence[str] | None = None,
        lnc_bounds: Mapping[str, tuple[float, float]] | None = None,
        default_lnc_bounds: tuple[float, float] = PHYSIOLOGICAL_LNC,
        lnc_measured: Mapping[str, tuple[float, float]] | None = None,
        temperature: float = 298.15,
        margin: float = 0.1,
    ) -> ThermoModel:
        """Build from ``{reaction: ΔrG0}`` and ``{metabolite: (lo, hi)}`` of ``ln c``.

        ``reactions`` lists the reactions under the second law; by default every non-exchange
        reaction of the network, so each must have a ΔrG0 (a missing one raises
        :class:`ThermoDataError` naming it). ``drg0_cov`` is a pandas DataFrame labelled by
        reaction id (or an array in the order of ``reactions``).
        """
        network = as_network(network)
        if reactions is None:
            reactions = network.internal_reactions
        reactions = list(reactions)
        unknown = [r for r in list(drg0) + reactions if r not in network.reaction_index]
        if unknown:
            raise ThermoDataError(f"unknown reaction(s): {_names(dict.fromkeys(unknown))}")
        missing = [r for r in reactions if r not in drg0 or drg0[r] is None]
        if missing:
            raise ThermoDataError(
                f"missing ΔrG0 for reaction(s) under the second law: {_names(missing)} "
                "(give a value or leave them out of `reactions`)"
            )
        sd = None if drg0_sd is None else [float(drg0_sd.get(r, 0.0)) for r in reactions]
        cov = None
        if drg0_cov is not None:
            if hasattr(drg0_cov, "loc"):
                absent = [r for r in reactions if r not in drg0_cov.index]
                if absent:
                    raise ThermoDataError(f"drg0_cov lacks reaction(s): {_names(absent)}")
                cov = drg0_cov.loc[reactions, reactions].to_numpy(dtype=float)
            else:
                cov = np.asarray(drg0_cov, dtype=float)
        lo = np.full(network.n_metabolites, float(default_lnc_bounds[0]))
        hi = np.full(network.n_metabolites, float(default_lnc_bounds[1]))
        for met, (a, b) in dict(lnc_bounds or {}).items():
            if met not in network.metabolite_index:
                raise ThermoDataError(f"ln c bounds given for unknown metabolite {met!r}")
            lo[network.metabolite_index[met]] = a
            hi[network.metabolite_index[met]] = b
        return cls(
            network,
            tuple(reactions),
            np.array([float(drg0[r]) for r in reactions]),
            None if sd is None else np.array(sd),
            lo,
            hi,
            drg0_cov=cov,
            temperature=temperature,
            margin=margin,
            lnc_measured=dict(lnc_measured or {}),
        )

    @classmethod
    def from_formation(
        cls,
        network: Any,
        dfg0: Mapping[str, float],
        *,
        reactions: Sequence[str] | None = None,
        **options: Any,
    ) -> ThermoModel:
        """Build from formation energies: ``ΔrG0_j = Σ_i S_ij ΔfG0_i`` (kJ/mol).

        Every metabolite of a constrained reaction needs a ``ΔfG0``; missing ones are named.
        """
        network = as_network(network)
        reactions = list(network.internal_reactions if reactions is None else reactions)
        idx = network.indices(reactions)
        S = network.S[:, idx].tocsc()
        used = np.flatnonzero(np.asarray(np.abs(S).sum(axis=1)).ravel() > 0)
        missing = [network.metabolites[i] for i in used if network.metabolites[i] not in dfg0]
        if missing:
            raise ThermoDataError(f"missing ΔfG0 for metabolite(s): {_names(missing)}")
        f = np.array([float(dfg0.get(m, 0.0)) for m in network.metabolites])
        values = S.T @ f
        return cls.from_data(network, dict(zip(reactions, values)), reactions=reactions, **options)

    # ------------------------------------------------------------------ views
    @property
    def n_constrained(self) -> int:
        return len(self.reactions)

    @property
    def rt(self) -> float:
        """``R T`` in kJ/mol."""
        return R_GAS * self.temperature

    @cached_property
    def index(self) -> np.ndarray:
        """Positions of the constrained reactions in the network."""
        out = self.network.indices(self.reactions)
        out.flags.writeable = False
        return out

    @cached_property
    def S(self) -> np.ndarray:
        """Dense stoichiometry of the constrained reactions (metabolites x constrained)."""
        out = self.network.S[:, self.index].toarray()
        out.flags.writeable = False
        return out

    @cached_property
    def drg_matrix(self) -> np.ndarray:
        """``R T Sᵀ`` (constrained reactions x metabolites): ``ΔrG = ΔrG0 + drg_matrix @ ln c``."""
        out = self.rt * self.S.T
        out.flags.writeable = False
        return out

    def drg(self, lnc: jax.Array, drg0: jax.Array | None = None) -> jax.Array:
        """``ΔrG = ΔrG0 + R T Sᵀ ln c`` (JAX; batches over leading axes of ``lnc``)."""
        base = jnp.asarray(self.drg0 if drg0 is None else drg0)
        return base + jnp.asarray(lnc) @ jnp.asarray(self.drg_matrix).T

    def drg_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Interval bounds of ``ΔrG`` over the ln c box, per constrained reaction."""
        A = self.drg_matrix
        lo = self.drg0 + np.minimum(A * self.lnc_lb, A * self.lnc_ub).sum(axis=1)
        hi = self.drg0 + np.maximum(A * self.lnc_lb, A * self.lnc_ub).sum(axis=1)
        return lo, hi

    def drg0_factor(self, *, tol: float = 1e-9) -> np.ndarray:
        """A factor ``L`` (constrained x rank) with ``L Lᵀ = cov(ΔrG0)``, safe for rank deficiency.

        From the eigendecomposition (a singular matrix has no Cholesky factor); uses
        ``diag(sd²)`` when no covariance is given. Sample ``ΔrG0 = mean + L ξ``, ``ξ ~ N(0, I)``.
        """
        cov = np.diag(self.drg0_sd**2) if self.drg0_cov is None else self.drg0_cov
        w, V = np.linalg.eigh(cov)
        keep = w > tol * max(float(w.max(initial=0.0)), 1.0)
        return V[:, keep] * np.sqrt(w[keep])

    def cycle_inconsistency(self) -> np.ndarray:
        """``Nᵀ ΔrG0`` for an orthonormal basis ``N`` of the cycles of the constrained reactions.

        Zero when ``ΔrG0`` derives from formation energies (first law / loop consistency); large
        entries mean an internal cycle would dissipate or gain energy at standard state.
        """
        import scipy.linalg

        N = scipy.linalg.null_space(self.S)
        return N.T @ self.drg0

    # ------------------------------------------------------------------ modified copies
    def with_lnc_bounds(self, bounds: Mapping[str, tuple[float, float]]) -> ThermoModel:
        """A copy with new ``ln c`` bounds for the named metabolites."""
        lo, hi = self.lnc_lb.copy(), self.lnc_ub.copy()
        for met, (a, b) in bounds.items():
            if met not in self.network.metabolite_index:
                raise ThermoDataError(f"ln c bounds given for unknown metabolite {met!r}")
            lo[self.network.metabolite_index[met]] = a
            hi[self.network.metabolite_index[met]] = b
        return replace(self, lnc_lb=lo, lnc_ub=hi)

    def with_wide_bounds(self, half_width: float = 30.0) -> ThermoModel:
        """Every ``ln c`` (fixed ones too) in ``±half_width``: only loops constrain."""
        m = self.network.n_metabolites
        return replace(self, lnc_lb=np.full(m, -half_width), lnc_ub=np.full(m, half_width))

    def with_network(self, network: Network) -> ThermoModel:
        """The same data on a network with the same ids (e.g. after :meth:`Network.with_bounds`)."""
        if network.metabolites != self.network.metabolites:
            raise ThermoDataError("the new network has different metabolites")
        return replace(self, network=network)

    def __repr__(self) -> str:
        return (
            f"ThermoModel(network={self.network.id!r}, constrained={self.n_constrained}, "
            f"T={self.temperature} K, margin={self.margin} kJ/mol)"
        )
