"""Thermodynamically infeasible loops and the division of the flux space into sectors.

Loop law (Beard et al. 2002; seed 002): a sign pattern ``s`` of the reactions under the second law
admits potentials with ``s_j ΔrG_j < 0`` (``ΔrG = Sᵀ μ``) iff no non-zero internal cycle ``n``
(``S n = 0``, supported on the active reactions) is sign-consistent, ``s_j n_j >= 0`` (Gordan's
theorem). :func:`find_loop` tests one pattern by LP; :func:`enumerate_loops` lists the elementary
sign-consistent cycles that the flux bounds allow, smallest first (MILP with no-good cuts).

Sectors (seed 002, "Division of the flux solution space into sectors"): fixing the signs of the
reactions that appear in the chosen loops splits the flux polytope into orthant pieces; pieces that
contain a whole loop are dropped, the others are weighted by the Expectation Propagation volume
proxy ``exp(H)`` of their polytope (Braunstein et al. 2017), in flux units. :func:`sector_patterns`
finds them by a depth-first search over the loop reactions' signs that abandons a partial pattern
as soon as it closes a loop, leaves a zero unneeded, or empties the flux polytope (LP, cached per
pattern in :class:`SignFeasibility`) or, optionally, the concentration polytope B: on the yeast
TSM's 4 loops (10 reactions, 3^10 sign combinations) it solves about 30 LPs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import highspy
import numpy as np
import scipy.optimize
import scipy.sparse as sp

from bayesflux._highs import highs_model
from bayesflux.errors import InfeasibleError, SolverError
from bayesflux.network import Network
from bayesflux.thermo._milp import TSMMilp
from bayesflux.thermo.data import ThermoDataError, ThermoModel
from bayesflux.thermo.polytope_b import ConcentrationPolytope

if TYPE_CHECKING:
    from bayesflux.sampling.polytope import Polytope
    from bayesflux.sampling.rounding import Rounding

__all__ = [
    "Loop",
    "Sector",
    "SectorPatterns",
    "SignFeasibility",
    "enumerate_loops",
    "find_loop",
    "sector_patterns",
    "sectors",
]


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

    ``bounds`` are the flux bounds that define it; ``log_volume`` the EP entropy ``H`` in flux
    units (``H_z + ½ log det NᵀN`` for the polytope's basis ``v = v0 + N z``) and ``weight`` its
    share ``exp(H_i) / Σ_k exp(H_k)``.
    """

    signs: dict[str, int]
    bounds: dict[str, tuple[float, float]]
    log_volume: float
    weight: float
    dim: int


class SignFeasibility:
    """Whether the flux polytope has a point with given (partial) flux signs, cached per pattern.

    A pattern ``{j: s}`` adds ``v_j >= 0`` (``s = 1``), ``v_j <= 0`` (``s = -1``) or ``v_j = 0``
    to ``{v : S v = 0, lb <= v <= ub}``: the closed orthant pieces of seed 002's sectors. One
    HiGHS LP is built once and re-solved with changed column bounds. Answers are cached per pattern
    (seed 002 caches feasibility per sign pattern), feasible points are kept as witnesses (any
    pattern a witness satisfies is feasible without an LP) and infeasible patterns prune their
    supersets (adding signs only shrinks the set).
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        self._lb = np.asarray(network.lb, dtype=float)
        self._ub = np.asarray(network.ub, dtype=float)
        self._highs = highs_model(
            sp.csc_array(network.S),
            col_lower=self._lb,
            col_upper=self._ub,
            row_lower=0.0,
            row_upper=0.0,
        )
        self._cache: dict[frozenset[tuple[int, int]], bool] = {}
        self._infeasible: list[frozenset[tuple[int, int]]] = []
        self._witnesses = np.zeros((0, network.n_reactions))
        self.stats = {"lp_solves": 0, "cache_hits": 0, "witness_hits": 0, "subset_hits": 0}

    def witness(self, pattern: Mapping[int, int]) -> np.ndarray | None:
        """A stored feasible point with the signs of ``pattern`` (closed orthants), or None."""
        if not len(self._witnesses) or not pattern:
            return self._witnesses[-1] if len(self._witnesses) else None
        idx = np.fromiter(pattern.keys(), dtype=int, count=len(pattern))
        s = np.fromiter(pattern.values(), dtype=int, count=len(pattern))
        W = self._witnesses[:, idx]
        ok = np.all(np.where(s > 0, W >= 0, np.where(s < 0, W <= 0, W == 0)), axis=1)
        hit = np.flatnonzero(ok)
        return self._witnesses[int(hit[-1])] if hit.size else None

    def feasible(self, pattern: Mapping[int, int]) -> bool:
        """LP feasibility of ``pattern`` (reaction index -> sign in {-1, 0, 1})."""
        key = frozenset((int(j), int(s)) for j, s in pattern.items())
        hit = self._cache.get(key)
        if hit is not None:
            self.stats["cache_hits"] += 1
            return hit
        if self.witness(pattern) is not None:
            self.stats["witness_hits"] += 1
            self._cache[key] = True
            return True
        if any(bad <= key for bad in self._infeasible):
            self.stats["subset_hits"] += 1
            self._cache[key] = False
            return False
        ok = self._solve(pattern)
        self._cache[key] = ok
        if not ok:
            self._infeasible.append(key)
        return ok

    def _solve(self, pattern: Mapping[int, int]) -> bool:
        idx = np.fromiter(pattern.keys(), dtype=np.int32, count=len(pattern))
        s = np.fromiter(pattern.values(), dtype=int, count=len(pattern))
        lb, ub = self._lb[idx], self._ub[idx]
        lo = np.where(s < 0, lb, np.maximum(lb, 0.0))
        hi = np.where(s > 0, ub, np.minimum(ub, 0.0))
        h = self._highs
        self.stats["lp_solves"] += 1
        if np.any(lo > hi):
            return False
        h.changeColsBounds(idx.size, idx, lo, hi)
        try:
            h.run()
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kOptimal:
                x = np.asarray(h.getSolution().col_value, dtype=float)
                self._witnesses = np.vstack([self._witnesses, _snap(x, pattern)])
                return True
            if status == highspy.HighsModelStatus.kInfeasible:
                return False
            raise SolverError(
                f"sign-pattern LP on {self.network.id!r}: {h.modelStatusToString(status)}"
            )
        finally:
            h.changeColsBounds(idx.size, idx, lb, ub)


def _snap(x: np.ndarray, pattern: Mapping[int, int]) -> np.ndarray:
    """The LP point with the pattern's fluxes put exactly on the side (or zero) it asked for."""
    x = x.copy()
    for j, s in pattern.items():
        x[j] = max(x[j], 0.0) if s > 0 else min(x[j], 0.0) if s < 0 else 0.0
    return x


@dataclass(frozen=True)
class SectorPatterns:
    """Sign patterns of the loop reactions that :func:`sectors` turns into sectors.

    ``reactions`` are the loop reactions in search order, ``patterns`` one tuple of signs per
    candidate sector (closed-orthant polytope non-empty), ``stats`` the search's counters.
    """

    reactions: tuple[str, ...]
    patterns: tuple[tuple[int, ...], ...]
    stats: dict[str, int]


def _sign_choices(net: Network, names: list[str]) -> list[list[int]]:
    """Signs each loop reaction may take: forwards, backwards (if its bounds allow), then 0."""
    choices = []
    for r in names:
        j = net.reaction_index[r]
        signs_ok = [s for s, ok in ((1, net.ub[j] > 0), (-1, net.lb[j] < 0)) if ok]
        choices.append(signs_ok + ([0] if net.lb[j] <= 0 <= net.ub[j] else []))
    return choices


def sector_patterns(
    thermo: ThermoModel,
    loops: list[Loop],
    *,
    feasibility: SignFeasibility | None = None,
    concentrations: ConcentrationPolytope | bool = False,
    thermodynamic: bool = False,
    min_flux: float = 1e-6,
    limit: int | None = None,
) -> SectorPatterns:
    """Depth-first search over the signs of the loop reactions, pruned as soon as it must fail.

    Reactions are taken loop by loop; each gets forwards, backwards or (bounds allowing) zero,
    and a partial pattern is abandoned as soon as (i) it runs a whole loop, (ii) a zero can no
    longer be *needed* (for some sign of that reaction every loop through it already has a
    reaction against the loop's sign, so giving it that sign would close no loop), or (iii) the
    flux polytope has no point with those signs (:class:`SignFeasibility`, one LP per new
    pattern, cached). The leaves are exactly the combinations that the product of all sign
    choices would keep: loop-free, every zero needed, non-empty. The work grows with the number
    of feasible partial patterns, not with ``3^(number of loop reactions)``.

    With ``concentrations`` (a :class:`~bayesflux.thermo.ConcentrationPolytope`, or True for one
    built here) the second law prunes too (seed 002's TSM, ``s_j ΔrG_j <= -δ``): a sign that a
    reaction cannot have on its own (polytope B empty for it alone) is dropped from its choices
    first, and a partial pattern whose non-zero signs leave B empty is abandoned; zeros are kept
    by rule (ii) on the remaining choices. With ``thermodynamic`` a final pattern is kept only if
    one point of the whole TSM (every reaction under the second law; the MILP of thermodynamic
    FVA, :class:`~bayesflux.thermo._milp.TSMMilp`) runs each of its non-zero loop reactions
    strictly, ``s_j v_j >= min_flux``: a sector whose feasible fluxes all stop a loop reaction
    has no volume. ``feasibility`` passes a cache to reuse (its counters accumulate); more than
    ``limit`` patterns raise :class:`ThermoDataError`.
    """
    net = thermo.network
    lp = feasibility if feasibility is not None else SignFeasibility(net)
    if lp.network is not net:
        raise ValueError("feasibility was built for another network")
    names = list(dict.fromkeys(r for loop in loops for r in loop.reactions))
    pos = {r: i for i, r in enumerate(names)}
    cols = [net.reaction_index[r] for r in names]
    choices = _sign_choices(net, names)
    B = ConcentrationPolytope(thermo) if concentrations is True else concentrations or None
    if B is not None and B.thermo.reactions != thermo.reactions:
        raise ValueError("concentrations were built for another thermodynamic model")
    under = {r: i for i, r in enumerate(thermo.reactions)}
    k_law = [under.get(r, -1) for r in names]

    def b_feasible(assigned: Mapping[int, int]) -> bool:
        if B is None:
            return True
        s = np.zeros(thermo.n_constrained, dtype=np.int8)
        for p, x in assigned.items():
            if k_law[p] >= 0:
                s[k_law[p]] = x
        return B.is_feasible(s)

    if B is not None:
        choices = [
            [s for s in opts if s == 0 or (b_feasible({p: s}) and lp.feasible({cols[p]: s}))]
            for p, opts in enumerate(choices)
        ]
    members = [tuple((pos[r], s) for r, s in zip(loop.reactions, loop.signs)) for loop in loops]
    through: dict[tuple[int, int], list[int]] = {}
    for li, loop in enumerate(members):
        for p, s in loop:
            through.setdefault((p, s), []).append(li)
    milp = TSMMilp(thermo) if thermodynamic else None
    k = len(names)
    signs: list[int | None] = [None] * k
    zeros: list[int] = []
    found: list[tuple[int, ...]] = []
    stats = {
        "nodes": 0,
        "pruned_loop": 0,
        "pruned_zero": 0,
        "pruned_empty": 0,
        "pruned_second_law": 0,
        "pruned_tsm": 0,
        "milp_solves": 0,
    }

    def closes(li: int, skip: int) -> bool:
        """Loop ``li`` can still be realised: no assigned member (other than ``skip``) opposes."""
        return all(signs[p] is None or signs[p] == s for p, s in members[li] if p != skip)

    def zero_needed(p: int) -> bool:
        return all(
            any(closes(li, p) for li in through.get((p, s), ())) for s in choices[p] if s != 0
        )

    def visit(i: int) -> None:
        if i == k:
            if milp is not None:
                stats["milp_solves"] += 1
                if not _tsm_runs(milp, cols, k_law, signs, min_flux):  # type: ignore[arg-type]
                    stats["pruned_tsm"] += 1
                    return
            found.append(tuple(int(s) for s in signs))  # type: ignore[arg-type]
            if limit is not None and len(found) > limit:
                raise ThermoDataError(
                    f"more than {limit} loop-free sign patterns of {k} loop reactions; "
                    "pass fewer loops or a larger limit (max_sectors of sectors)"
                )
            return
        for s in choices[i]:
            stats["nodes"] += 1
            signs[i] = s
            if s != 0 and any(
                all(signs[p] == t for p, t in members[li]) for li in through.get((i, s), ())
            ):
                stats["pruned_loop"] += 1
                continue
            if s == 0:
                zeros.append(i)
            if not all(zero_needed(p) for p in zeros):
                stats["pruned_zero"] += 1
            elif not lp.feasible({cols[p]: signs[p] for p in range(i + 1)}):
                stats["pruned_empty"] += 1
            elif not b_feasible({p: signs[p] for p in range(i + 1) if signs[p]}):
                stats["pruned_second_law"] += 1
            else:
                visit(i + 1)
            if s == 0:
                zeros.pop()
        signs[i] = None

    visit(0)
    return SectorPatterns(tuple(names), tuple(found), {**stats, **lp.stats})


def _tsm_runs(
    milp: TSMMilp, cols: list[int], k_law: list[int], signs: list[int], min_flux: float
) -> bool:
    """Whether the TSM MILP has a point with ``s_j v_j >= min_flux`` (``v_j = 0`` for zeros) on
    the given reactions; a reaction under the second law then has its direction binary fixed."""
    c = milp.columns
    idx: list[int] = []
    lo: list[float] = []
    hi: list[float] = []
    for j, kk, s in zip(cols, k_law, signs):
        lb, ub = milp.col_lower[c.v.start + j], milp.col_upper[c.v.start + j]
        idx.append(c.v.start + j)
        lo.append(max(lb, min_flux) if s > 0 else lb if s < 0 else 0.0)
        hi.append(ub if s > 0 else min(ub, -min_flux) if s < 0 else 0.0)
        if kk >= 0 and s != 0:  # forwards: f = 1, r = 0; backwards: f = 0, r = 1
            idx += [c.z.start + kk, c.zb.start + kk]
            lo += [float(s > 0), float(s < 0)]
            hi += [float(s > 0), float(s < 0)]
    if any(a > b for a, b in zip(lo, hi)):
        return False
    cols_arr = np.asarray(idx, dtype=np.int32)
    h = milp.highs
    h.changeColsBounds(cols_arr.size, cols_arr, np.asarray(lo), np.asarray(hi))
    try:
        status, _, _ = milp.minimize(np.zeros(milp.n_col))
    finally:
        h.changeColsBounds(
            cols_arr.size, cols_arr, milp.col_lower[cols_arr], milp.col_upper[cols_arr]
        )
    if status == "time_limit":
        raise SolverError("the TSM MILP of a sector pattern hit its time limit")
    return status == "optimal"


def sectors(
    thermo: ThermoModel,
    loops: list[Loop],
    *,
    max_sectors: int = 1024,
    feasibility: SignFeasibility | None = None,
    concentrations: ConcentrationPolytope | bool = False,
    thermodynamic: bool = False,
) -> list[Sector]:
    """Split the flux polytope by the signs of the reactions in ``loops`` (seed 002).

    Each of those reactions is forwards, backwards or (where its bounds allow) zero. A sector is a
    combination that realises no loop, whose zeros are all needed (giving any of them a sign would
    close a loop) and whose polytope has the largest dimension found; sectors are weighted by their
    Expectation Propagation volume ``exp(H)`` (Braunstein et al. 2017), ``H`` taken in flux units.
    The combinations come from the pruned depth-first search of :func:`sector_patterns` (not the
    product of all sign choices); ``concentrations`` and ``thermodynamic`` add the second law
    there (yeast TSM, 4 loops: 637 patterns without it, 34 with B, 22 with a strict TSM point).
    Irreversible loops (E. coli core's SUCDi + FRD7) give lower-dimensional sectors (one of them
    at zero). Raises :class:`ThermoDataError` when more than ``max_sectors`` sign patterns remain
    and :class:`~bayesflux.InfeasibleError` if none does.
    """
    from bayesflux.sampling.polytope import polytope
    from bayesflux.sampling.rounding import expectation_propagation

    net = thermo.network
    search = sector_patterns(
        thermo,
        loops,
        feasibility=feasibility,
        concentrations=concentrations,
        thermodynamic=thermodynamic,
        limit=max_sectors,
    )
    found: list[tuple[dict[str, int], dict[str, tuple[float, float]], float, int]] = []
    for combo in search.patterns:
        signs = dict(zip(search.reactions, combo))
        bounds = _sector_bounds(net, signs)
        try:
            poly = polytope(net, bounds=bounds)
        except InfeasibleError:
            continue
        found.append((signs, bounds, _log_volume(poly, expectation_propagation(poly)), poly.dim))
    if found:  # keep the pieces of largest dimension: the others have zero volume beside them
        top = max(f[3] for f in found)
        found = [f for f in found if f[3] == top]
    if not found:
        raise InfeasibleError("no sector of the flux space avoids every loop")
    logv = np.array([f[2] for f in found])
    w = np.exp(logv - logv.max())
    w /= w.sum()
    return [Sector(s, b, float(lv), float(wi), d) for (s, b, lv, d), wi in zip(found, w)]


def _sector_bounds(net: Network, signs: Mapping[str, int]) -> dict[str, tuple[float, float]]:
    """Flux bounds of the closed orthant piece: ``[max(lb, 0), ub]``, ``[lb, min(ub, 0)]`` or 0."""
    bounds = {}
    for r, s in signs.items():
        j = net.reaction_index[r]
        lo, hi = float(net.lb[j]), float(net.ub[j])
        bounds[r] = (max(lo, 0.0), hi) if s > 0 else (lo, min(hi, 0.0)) if s < 0 else (0.0, 0.0)
    return bounds


def _log_volume(poly: Polytope, ep: Rounding) -> float:
    """EP entropy in flux units: ``H_z + ½ log det(NᵀN)``.

    The polytope's coordinates ``z`` (``v = v0 + N z``) scale each free flux by its FVA width,
    which differs between sectors; the Gram determinant of ``N`` turns the volume in ``z`` into
    the ``d``-dimensional volume in flux space, the same measure for every sector.
    """
    _, logdet = np.linalg.slogdet(poly.N.T @ poly.N)
    return float(ep.log_volume + 0.5 * logdet)
