"""Thermodynamically infeasible loops and the division of the flux space into sectors.

Loop law (Beard et al. 2002; seed 002): a sign pattern ``s`` of the reactions under the second law
admits potentials with ``s_j ΔrG_j < 0`` (``ΔrG = Sᵀ μ``) iff no non-zero internal cycle ``n``
(``S n = 0``, supported on the active reactions) is sign-consistent, ``s_j n_j >= 0`` (Gordan's
theorem). :func:`find_loop` tests one pattern by LP; :func:`enumerate_loops` lists the elementary
sign-consistent cycles that the flux bounds allow, smallest first (MILP with no-good cuts).

Sectors (seed 002, "Division of the flux solution space into sectors"): fixing the signs of the
reactions that appear in the chosen loops splits the flux polytope into orthant pieces; pieces that
contain a whole loop are dropped, the others are weighted by the Expectation Propagation volume
proxy ``exp(H)`` of their polytope (Braunstein et al. 2017).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.optimize
import scipy.sparse as sp

from bayesflux._highs import highs_model
from bayesflux.errors import InfeasibleError, SolverError
from bayesflux.thermo.data import ThermoDataError, ThermoModel

__all__ = ["Loop", "Sector", "find_loop", "enumerate_loops", "sectors"]


@dataclass(frozen=True)
class Loop:
    """A sign-consistent internal cycle: ``reactions``, their flux ``signs`` and cycle weights."""

    reactions: tuple[str, ...]
    signs: tuple[int, ...]
    weights: tuple[float, ...]

    def realised_by(self, signs: dict[str, int]) -> bool:
        """Whether a sign assignment runs the whole loop (every reaction with the loop's sign)."""
        return all(signs.get(r, 0) == s for r, s in zip(self.reactions, self.signs))

    def __str__(self) -> str:
        return " + ".join(f"{'' if s > 0 else '-'}{r}" for r, s in zip(self.reactions, self.signs))


def find_loop(thermo: ThermoModel, signs: np.ndarray, *, tol: float = 1e-9) -> Loop | None:
    """A sign-consistent internal cycle among the active reactions of ``signs``, or None.

    LP: ``max Σ_j s_j n_j  s.t.  Sₖ n = 0, 0 <= s_j n_j <= 1`` (``n_j = 0`` where ``s_j = 0``).
    A positive optimum is a cycle (the loop law forbids the pattern whatever the concentrations).
    """
    s = np.asarray(signs, dtype=float)
    if s.shape != (thermo.n_constrained,):
        raise ValueError(f"sign pattern needs {thermo.n_constrained} entries, got {s.shape}")
    bounds = [(0.0, 1.0) if x > 0 else (-1.0, 0.0) if x < 0 else (0.0, 0.0) for x in s]
    used = np.any(thermo.S != 0, axis=1)
    res = scipy.optimize.linprog(
        -s, A_eq=thermo.S[used], b_eq=np.zeros(int(used.sum())), bounds=bounds, method="highs"
    )
    if res.status != 0:
        raise SolverError(f"loop-detection LP failed: {res.message}")
    if -res.fun <= tol:
        return None
    n = res.x
    support = np.flatnonzero(np.abs(n) > 1e-9)
    return Loop(
        tuple(thermo.reactions[i] for i in support),
        tuple(int(np.sign(n[i])) for i in support),
        tuple(float(n[i]) for i in support),
    )


def enumerate_loops(
    thermo: ThermoModel,
    *,
    max_loops: int = 50,
    flux_ranges: tuple[np.ndarray, np.ndarray] | None = None,
    time_limit: float = 30.0,
) -> list[Loop]:
    """Elementary sign-consistent internal cycles allowed by the flux bounds, smallest first.

    MILP over ``n = p - q`` (``0 <= p <= a``, ``0 <= q <= b``, binaries ``a + b <= 1``,
    ``Sₖ n = 0``, ``Σ (p + q) >= 1``) minimising the support ``Σ (a + b)``; each loop found is cut
    off with ``Σ_{j+} a_j + Σ_{j-} b_j <= |loop| - 1`` (which also removes its supersets).
    A reaction can run forwards in a loop only if its upper bound (or ``flux_ranges`` maximum) is
    positive, backwards only if its lower bound is negative.
    """
    net = thermo.network
    k = thermo.n_constrained
    if k == 0:
        raise ThermoDataError("no reaction is under the second law")
    lo, hi = (net.lb, net.ub) if flux_ranges is None else flux_ranges
    lo, hi = np.asarray(lo)[thermo.index], np.asarray(hi)[thermo.index]
    used = np.any(thermo.S != 0, axis=1)
    Sk = sp.csr_array(thermo.S[used])
    m = Sk.shape[0]
    I_k = sp.identity(k, format="csr")
    Zk = sp.csr_array((k, k))
    ones = sp.csr_array(np.ones((1, k)))
    matrix = sp.vstack(
        [
            sp.hstack([Sk, -Sk, sp.csr_array((m, 2 * k))]),
            sp.hstack([I_k, Zk, -I_k, Zk]),
            sp.hstack([Zk, I_k, Zk, -I_k]),
            sp.hstack([Zk, Zk, I_k, I_k]),
            sp.hstack([ones, ones, sp.csr_array((1, 2 * k))]),
        ]
    ).tocsc()
    inf = highspy.kHighsInf
    row_lo = np.concatenate([np.zeros(m), np.full(2 * k, -inf), np.full(k, -inf), [1.0]])
    row_hi = np.concatenate([np.zeros(m), np.zeros(2 * k), np.ones(k), [inf]])
    can_fwd, can_bwd = hi > 1e-9, lo < -1e-9
    h = highs_model(
        matrix,
        cost=np.concatenate([np.zeros(2 * k), np.ones(2 * k)]),
        col_lower=0.0,
        col_upper=np.concatenate([can_fwd, can_bwd, can_fwd, can_bwd]).astype(float),
        row_lower=row_lo,
        row_upper=row_hi,
        integer=np.arange(4 * k) >= 2 * k,
    )
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("random_seed", 0)
    loops: list[Loop] = []
    while len(loops) < max_loops:
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            break
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(f"loop enumeration MILP: {h.modelStatusToString(status)}")
        x = np.asarray(h.getSolution().col_value)
        n = x[:k] - x[k : 2 * k]
        support = np.flatnonzero(np.abs(n) > 1e-9)
        loop = Loop(
            tuple(thermo.reactions[i] for i in support),
            tuple(int(np.sign(n[i])) for i in support),
            tuple(float(n[i] / np.abs(n[support]).max()) for i in support),
        )
        loops.append(loop)
        cols = np.array([i if n[i] > 0 else k + i for i in support]) + 2 * k
        h.addRow(
            -inf, float(len(support) - 1), len(cols), cols.astype(np.int32), np.ones(len(cols))
        )
    return loops


@dataclass(frozen=True)
class Sector:
    """An orthant piece of the flux space: fixed signs of the loop reactions, its EP volume proxy.

    ``bounds`` are the flux bounds that define it; ``log_volume`` the EP entropy ``H`` (reduced
    coordinates) and ``weight`` its share ``exp(H_i) / Σ_k exp(H_k)``.
    """

    signs: dict[str, int]
    bounds: dict[str, tuple[float, float]]
    log_volume: float
    weight: float
    dim: int


def sectors(
    thermo: ThermoModel,
    loops: list[Loop],
    *,
    max_sectors: int = 1024,
) -> list[Sector]:
    """Split the flux polytope by the signs of the reactions in ``loops`` (seed 002).

    Each of those reactions is forwards, backwards or (where its bounds allow) zero. A sector is a
    combination that realises no loop, whose zeros are all needed (giving any of them a sign would
    close a loop) and whose polytope has the largest dimension found; sectors are weighted by their
    Expectation Propagation volume ``exp(H)``. Irreversible loops (E. coli core's SUCDi + FRD7)
    thus give lower-dimensional sectors (one of them at zero). Raises
    :class:`~bayesflux.InfeasibleError` if no sector remains.
    """
    from bayesflux.sampling.polytope import polytope
    from bayesflux.sampling.rounding import expectation_propagation

    net = thermo.network
    names = list(dict.fromkeys(r for loop in loops for r in loop.reactions))
    choices = []
    for r in names:
        j = net.reaction_index[r]
        signs_ok = [s for s, ok in ((1, net.ub[j] > 0), (-1, net.lb[j] < 0)) if ok]
        choices.append(signs_ok + ([0] if net.lb[j] <= 0 <= net.ub[j] else []))
    total = int(np.prod([len(c) for c in choices])) if choices else 1
    if total > max_sectors:
        raise ThermoDataError(
            f"{total} sign combinations of {len(names)} loop reactions exceed max_sectors="
            f"{max_sectors}; pass fewer loops"
        )

    def loop_free(signs: dict[str, int]) -> bool:
        return not any(loop.realised_by(signs) for loop in loops)

    found: list[tuple[dict[str, int], dict[str, tuple[float, float]], float, int]] = []
    for combo in itertools.product(*choices):
        signs = dict(zip(names, combo))
        if not loop_free(signs):
            continue
        # a zero that could take a sign without closing a loop makes this a face of a larger sector
        if any(
            loop_free({**signs, r: s})
            for r, options in zip(names, choices)
            if signs[r] == 0
            for s in options
            if s != 0
        ):
            continue
        bounds = {}
        for r, s in signs.items():
            j = net.reaction_index[r]
            lo, hi = float(net.lb[j]), float(net.ub[j])
            bounds[r] = (max(lo, 0.0), hi) if s > 0 else (lo, min(hi, 0.0)) if s < 0 else (0.0, 0.0)
        try:
            poly = polytope(net, bounds=bounds)
        except InfeasibleError:
            continue
        found.append((signs, bounds, expectation_propagation(poly).log_volume, poly.dim))
    if found:  # keep the pieces of largest dimension: the others have zero volume beside them
        top = max(f[3] for f in found)
        found = [f for f in found if f[3] == top]
    if not found:
        raise InfeasibleError("no sector of the flux space avoids every loop")
    logv = np.array([f[2] for f in found])
    w = np.exp(logv - logv.max())
    w /= w.sum()
    return [Sector(s, b, float(lv), float(wi), d) for (s, b, lv, d), wi in zip(found, w)]
