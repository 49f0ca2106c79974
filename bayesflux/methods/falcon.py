"""FALCON: fluxes fitted to enzyme-complex abundance (Barker et al. 2015, seed 003, Alg. 3.1).

Reversible reactions are split into ``v_f, v_b >= 0``. For reaction groups ``R_i`` (reactions
with the same canonical GPR rule) of abundance ``e_i`` and standard deviation ``sigma_i`` the
linear-fractional least-absolute-deviation program

    min  sum_i d_i / (n sigma_i)
    s.t. S v = 0,  lb <= v <= ub,  sum_{j in any R_i} (v_jf + v_jb) >= V,
         -d_i <= sum_{j in R_i} (v_jf + v_jb) - n e_i <= d_i,  n > 0

is solved as an LP after the Charnes-Cooper substitution ``t = 1/n``, ``x = t v``, ``d' = t d``:

    min  sum_i d'_i / sigma_i
    s.t. S x = 0,  t lb <= x <= t ub,  sum x_enz >= t V,  |G x - e| <= d',  t >= 0,

and ``v = x / t``. After each solve every reaction carrying net flux is fixed to its direction
(the smaller of ``v_f, v_b`` gets upper bound 0 in the warm-started HiGHS LP); the loop ends
when no new reaction becomes irreversible. As in the reference ``falcon.m`` (bbarker/FALCON:
``if ~boundsRev(k) && ~isnan(r(k)) && s > 0``) a column enters ``G`` only once its reaction is
irreversible, by its bounds or by the iteration: "the objective function is changed at each
iteration to include more irreversible fluxes" (seed 003, Sec. 3). The flux floor keeps every
enzymatic column. ``t >= t_min > 0`` (see :func:`falcon`) keeps a first LP that has nothing to
fit (every enzymatic reaction still reversible) from returning ``x = 0``. Repeated runs on
randomly permuted columns sample alternative optima and report their mean and standard
deviation.
"""

from __future__ import annotations

import time
import warnings
from typing import Literal

import highspy
import numpy as np
import scipy.sparse as sp
import xarray as xr

from bayesflux._highs import highs_model
from bayesflux.errors import InfeasibleError, NetworkError, SolverError
from bayesflux.expression.abundance import enzyme_abundance, group_abundance
from bayesflux.network import IrreversibleSplit, as_network, steady_state_violation
from bayesflux.results import provenance

__all__ = ["falcon", "FalconLP"]

# t = 1/n >= MIN_SCALE_FRACTION * sum(e) / sum_enzymatic max(|lb_j|, |ub_j|): see falcon()
MIN_SCALE_FRACTION = 1e-3
REORDER_ATTEMPTS = 3  # column orders tried for a repeated run whose LP stalls numerically


class FalconLP:
    """The Charnes-Cooper LP of FALCON over an irreversible split, loaded once into HiGHS.

    Columns are ``[x (split fluxes), t, d' (groups)]``; rows ``[S, x <= t ub, x >= t lb, floor,
    G x - d' <= e, G x + d' >= e]``. Fixing a direction sets the upper bound of its column to 0,
    and (reference formulation) puts the reaction's columns into its group's two residual rows by
    ``changeCoeff``, so each re-solve of the iteration warm-starts (dual simplex) from the
    previous optimal basis instead of starting afresh.

    Parameters
    ----------
    split
        ``network.split_irreversible()``.
    members
        Boolean ``groups x reactions`` membership of the reaction groups ``R_i``.
    abundance, sigma
        ``e_i`` and ``sigma_i`` per group (already scaled; ``sigma_i > 0``).
    flux_floor
        ``V``: lower bound on the total flux ``sum (v_jf + v_jb)`` through the reactions of the
        groups (every enzymatic column, open or not).
    order
        Optional permutation of the split columns (to reach alternative optima).
    fit_open_reactions
        ``False`` (default, the reference ``falcon.m``): a column enters the residual rows of its
        group only once its reaction is irreversible, by its bounds or because the iteration
        closed one of its directions; ``True``: every column is fitted from the start.
    min_scale
        Lower bound of ``t = 1/n`` (``t > 0``; see :func:`falcon`).
    solver_options
        HiGHS options (``time_limit``, ``simplex_strategy``, ...).
    """

    def __init__(
        self,
        split: IrreversibleSplit,
        members: np.ndarray,
        abundance: np.ndarray,
        sigma: np.ndarray,
        flux_floor: float,
        order: np.ndarray | None = None,
        *,
        fit_open_reactions: bool = False,
        min_scale: float = 0.0,
        **solver_options,
    ) -> None:
        m = len(split.reactions)
        g = len(abundance)
        self.m, self.g = m, g
        self._split = split
        self.order = np.arange(m) if order is None else np.asarray(order)
        self._origin = split.origin[self.order]
        self._n_cols = np.bincount(split.origin, minlength=split.to_net.shape[0])
        S = sp.csr_array(split.S[:, self.order])
        lb, ub = split.lb[self.order], split.ub[self.order]
        member = members[:, self._origin]
        # group of each column (reaction groups are disjoint), -1 outside every group
        self._group = np.where(member.any(axis=0), member.argmax(axis=0), -1)
        self._fit_all = bool(fit_open_reactions)
        fitted = self._fitted(np.zeros(m, dtype=bool))
        G = sp.csr_array(member * fitted[None, :], dtype=float)
        fin = np.flatnonzero(np.isfinite(ub))
        pos = np.flatnonzero(lb > 0)
        enz = (self._group >= 0).astype(float)
        eye_m = sp.eye_array(m, format="csr")
        col = lambda values, rows: sp.csr_array(np.asarray(values, float).reshape(rows, 1))  # noqa: E731
        blocks = [
            [S, None, None],
            [eye_m[fin], col(-ub[fin], fin.size), None],
            [eye_m[pos], col(-lb[pos], pos.size), None],
            [sp.csr_array(enz.reshape(1, m)), col([-flux_floor], 1), None],
            [G, None, -sp.eye_array(g)],
            [G, None, sp.eye_array(g)],
        ]
        sizes = [S.shape[0], fin.size, pos.size, 1, g, g]
        keep = [i for i, n in enumerate(sizes) if n]
        A = sp.bmat([blocks[i] for i in keep], format="csc")
        if A.shape[1] != m + 1 + g:  # t or d absent from every kept block: pad
            A = sp.hstack([A, sp.csc_array((A.shape[0], m + 1 + g - A.shape[1]))], format="csc")
        # first residual row: after S, the bound rows and the floor row
        self._res_row = sum(sizes[:4])
        inf = highspy.kHighsInf
        lo = [
            np.zeros(sizes[0]),
            np.full(sizes[1], -inf),
            np.zeros(sizes[2]),
            [0.0],
            np.full(g, -inf),
            abundance,
        ]
        hi = [
            np.zeros(sizes[0]),
            np.zeros(sizes[1]),
            np.full(sizes[2], inf),
            [inf],
            abundance,
            np.full(g, inf),
        ]
        col_lower = np.zeros(m + 1 + g)
        col_lower[m] = min_scale
        self.highs = highs_model(
            A,
            cost=np.concatenate([np.zeros(m + 1), 1.0 / sigma]),
            col_lower=col_lower,
            row_lower=np.concatenate([np.asarray(lo[i], float) for i in keep]),
            row_upper=np.concatenate([np.asarray(hi[i], float) for i in keep]),
        )
        self._time_limit = float(solver_options.pop("time_limit", highspy.kHighsInf))
        for key, value in solver_options.items():
            if self.highs.setOptionValue(key, value) == highspy.HighsStatus.kError:
                raise ValueError(f"unknown or invalid HiGHS option {key}={value!r}")
        self._closed = np.zeros(m, dtype=bool)
        self._in_rows = fitted & (self._group >= 0)

    def _fitted(self, closed: np.ndarray) -> np.ndarray:
        """Columns (LP order) whose reaction is irreversible given ``closed`` (or all)."""
        if self._fit_all:
            return np.ones(self.m, dtype=bool)
        n_closed = np.bincount(self._origin, weights=closed, minlength=self._n_cols.size)
        return (self._n_cols - n_closed <= 1)[self._origin]

    def _run(self) -> bool:
        # HiGHS measures time_limit against the instance's total run time: extend it per solve
        self.highs.setOptionValue("time_limit", self.highs.getRunTime() + self._time_limit)
        self.highs.run()
        return self.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal

    def solve(self, closed: np.ndarray) -> tuple[np.ndarray, float]:
        """Solve with the given closed columns (original order); returns (``v_irr``, objective)."""
        want = np.asarray(closed, dtype=bool)[self.order]
        change = np.flatnonzero(want != self._closed)
        if change.size:
            upper = np.where(want[change], 0.0, highspy.kHighsInf)
            self.highs.changeColsBounds(
                change.size, change.astype(np.int32), np.zeros(change.size), upper
            )
            self._closed = want
        in_rows = self._fitted(want) & (self._group >= 0)
        # columns entering (or leaving) the residual rows of their group: both rows change
        for j in np.flatnonzero(in_rows != self._in_rows):
            value = 1.0 if in_rows[j] else 0.0
            row = self._res_row + int(self._group[j])
            self.highs.changeCoeff(row, int(j), value)
            self.highs.changeCoeff(row + self.g, int(j), value)
        self._in_rows = in_rows
        if not self._run():
            # a warm start that stalls numerically: retry from scratch, without presolve, and
            # with the interior-point solver (crossover to a vertex) before giving up
            ok = False
            for option, value, default in (
                ("presolve", "choose", "choose"),
                ("presolve", "off", "choose"),
                ("solver", "ipm", "choose"),
            ):
                self.highs.clearSolver()
                self.highs.setOptionValue(option, value)
                ok = self._run()
                self.highs.setOptionValue(option, default)
                if ok or self.highs.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
                    break
            if not ok:
                status = self.highs.modelStatusToString(self.highs.getModelStatus())
                if status == "Infeasible":
                    raise InfeasibleError(
                        "FALCON LP is infeasible: no steady-state flux "
                        "meets the bounds and the flux floor"
                    )
                raise SolverError(f"FALCON LP: HiGHS ended with status {status!r}")
        sol = np.asarray(self.highs.getSolution().col_value)
        t = float(sol[self.m])
        if not t > 0:
            # only x = 0 is feasible: no steady state within the bounds carries the floor flux
            raise InfeasibleError(
                "FALCON LP is infeasible: no steady-state flux within the "
                "bounds carries the flux floor through the enzymatic reactions "
                "(Charnes-Cooper scale t = 1/n = 0); check the bounds or lower "
                "flux_floor"
            )
        # split fluxes at round-off level next to the largest one are zero: left in, they would
        # fix directions that no solve chose (v = x / t magnifies them by 1 / t)
        x = sol[: self.m]
        x = np.where(x > 1e-9 * max(float(x.max()), 0.0), x, 0.0)
        v_irr = np.empty(self.m)
        v_irr[self.order] = x / t
        self._check_steady_state(v_irr)
        return v_irr, float(self.highs.getInfo().objective_function_value)

    def _check_steady_state(self, v_irr: np.ndarray, rtol: float = 1e-6) -> None:
        """Raise SolverError unless ``v`` is a steady state within the bounds to ``rtol`` of its
        size: an optimum that HiGHS accepts within its absolute tolerances can still be far
        from one once divided by a small ``t``."""
        split = self._split
        violation = steady_state_violation(split.S, v_irr, split.lb, split.ub)
        if violation > rtol:
            raise SolverError(
                f"FALCON LP: the solution misses steady state or bounds by {violation:.2e} of "
                "its largest flux; the LP is badly scaled"
            )


def _fix_directions(
    split: IrreversibleSplit,
    v_irr: np.ndarray,
    closed: np.ndarray,
    tol: float,
    *,
    close_balanced: bool,
) -> np.ndarray:
    """Close the smaller direction of every reaction with ``|v_f - v_b| > tol``.

    A reaction carrying equal flux both ways (``v_f = v_b > 0``, net zero) has its backward
    direction closed only if ``close_balanced``: when open reactions are fitted, the LP counts
    ``v_f + v_b`` as enzyme activity that the net flux it returns does not carry, so the
    objective it reports would not be that of its fluxes. In the reference formulation an open
    reaction is not in the residual rows, such a pair costs and earns nothing there, and closing
    a direction would fix one that no flux chose (the reference ``setRxnDirection`` leaves it
    open too: neither share exceeds one half).
    """
    n = split.to_net.shape[0]
    fwd = np.full(n, -1)
    bwd = np.full(n, -1)
    is_f = split.direction > 0
    fwd[split.origin[is_f]] = np.flatnonzero(is_f)
    bwd[split.origin[~is_f]] = np.flatnonzero(~is_f)
    both = np.flatnonzero((fwd >= 0) & (bwd >= 0))
    f, b = v_irr[fwd[both]], v_irr[bwd[both]]
    net = np.abs(f - b) > tol
    balanced = ~net & (f + b > tol) if close_balanced else np.zeros(both.size, dtype=bool)
    forward = f >= b
    out = closed.copy()
    out[bwd[both][(net & forward) | balanced]] = 1.0
    out[fwd[both][net & ~forward]] = 1.0
    return out


def _open_directions(split: IrreversibleSplit, closed: np.ndarray) -> np.ndarray:
    """Per reaction: +1 (only forwards open), -1 (only backwards), 0 (both, or neither)."""
    n = split.to_net.shape[0]
    is_open = closed < 0.5
    fwd = np.bincount(split.origin, weights=is_open & (split.direction > 0), minlength=n) > 0
    bwd = np.bincount(split.origin, weights=is_open & (split.direction < 0), minlength=n) > 0
    return fwd.astype(int) - bwd.astype(int)


def _n_irreversible(split: IrreversibleSplit, closed: np.ndarray) -> int:
    """Reactions that can run in one direction only, given the closed split columns."""
    open_ = np.bincount(split.origin, weights=1.0 - closed, minlength=split.to_net.shape[0])
    return int(np.sum(open_ <= 1))


def falcon(
    network,
    expression=None,
    std=None,
    *,
    abundance: xr.Dataset | None = None,
    gpr_method: Literal["min_disjunction", "plain"] = "min_disjunction",
    use_groups: bool = True,
    fit_open_reactions: bool = False,
    flux_floor: float | None = None,
    repeats: int = 1,
    seed: int = 0,
    max_iterations: int = 100,
    tol: float = 1e-9,
    **solver_options,
) -> xr.Dataset:
    """Estimate fluxes from expression with FALCON (seed 003, Algorithm 3.1).

    Parameters
    ----------
    network
        Network with GPR rules (or anything ``as_network`` accepts).
    expression, std
        Gene expression means and standard deviations (Series or ``{gene: value}``); used through
        :func:`~bayesflux.expression.enzyme_abundance` unless ``abundance`` is given.
    abundance
        A precomputed single-sample result of ``enzyme_abundance`` (``abundance``, ``std``,
        ``group``).
    use_groups
        Reactions with identical rules share one residual (default); ``False`` fits each reaction
        to its own abundance.
    fit_open_reactions
        ``False`` (default): the reference formulation, where a reaction enters its group's
        residual only once it is irreversible. ``True``: every split column is fitted from the
        first solve (bayesflux's earlier behaviour); a reaction with ``v_f = v_b > 0`` then has
        its backward direction closed, since the LP would count flux its net value lacks.
    flux_floor
        ``V`` of the constraint ``sum_enzymatic |v| >= V``; default ``u_min / |enzymatic|``, the
        smallest positive ``max(|lb_j|, |ub_j|)`` over the number of reactions in groups (seed
        003), or, if no flux reaches it, the smallest non-zero bound magnitude over that number.
        Small, so it does not bind: the fluxes' scale is otherwise free, only ratios are fitted.
        ``t = 1/n`` is bounded below by ``t_min = 1e-3 sum(e) / sum_enzymatic U_j`` (scaled e,
        ``U_j = max(|lb_j|, |ub_j|)``, infinite ones replaced by the largest finite one). Since
        ``sum_enz x <= t sum U``, a solution with ``t < t_min`` explains less than 0.1% of the
        total abundance, within 0.1% of the trivial ``x = 0``: the bound removes nothing but
        the zero-scale corner, where an LP with no fitted column would otherwise stop.
    repeats
        Number of runs; runs after the first permute the LP columns (seeded by ``seed``) so the
        solver can land on alternative optima. The result reports their mean and sd.
    solver_options
        HiGHS options (e.g. ``simplex_strategy``); ``time_limit`` per LP solve defaults to 60 s
        (a solve that stalls is retried from scratch, then without presolve).

    Returns
    -------
    xarray.Dataset
        ``flux`` (mean over runs), ``flux_sd``, ``runs`` (``run`` x ``reaction``), ``direction``
        (per run: +1 / -1 where the iteration left only the forward / backward direction open, 0
        where both stayed open), ``objective`` (per run: the last LP's, which at convergence is
        that of the net fluxes, min over u of ``sum_i |u sum_{R_i} |v_j| - e_i| / sigma_i``:
        every reaction with net flux is then fixed, hence fitted) and attrs
        ``iterations``, ``seconds`` (per run mean). Groups are sigma-weighted
        (``sigma_i`` floored at the smallest positive sigma; 1 where no std is given).
    """
    network = as_network(network)
    solver_options = {"time_limit": 60.0, **solver_options}
    if abundance is None:
        if expression is None:
            raise ValueError("falcon needs expression data or a precomputed abundance")
        abundance = enzyme_abundance(network, expression, std, method=gpr_method)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, not {repeats}")
    ds = abundance
    if not use_groups:
        ds = ds.assign(group=xr.where(ds["group"] >= 0, np.arange(network.n_reactions), -1))
    e, s, members = group_abundance(ds)
    if e.size == 0:
        raise NetworkError(
            f"no reaction of network {network.id!r} has a measured gene; FALCON has nothing to fit"
        )
    positive = s[s > 0]
    sigma = np.maximum(s, positive.min()) if positive.size else np.ones_like(e)
    floors = [flux_floor]
    if flux_floor is None:
        n_enzymatic = int(members.any(axis=0).sum())
        vmax = np.maximum(np.abs(network.lb), np.abs(network.ub))
        vmax = vmax[(vmax > 0) & np.isfinite(vmax)]
        bounds = np.abs(np.concatenate([network.lb, network.ub]))
        bounds = bounds[(bounds > 0) & np.isfinite(bounds)]
        floors = [
            (float(vmax.min()) if vmax.size else 1.0) / n_enzymatic,
            (float(bounds.min()) if bounds.size else 1.0) / n_enzymatic,
        ]
    for k, floor in enumerate(floors):
        try:
            return _falcon_runs(
                network,
                e,
                sigma,
                members,
                floor,
                repeats,
                seed,
                max_iterations,
                tol,
                gpr_method,
                use_groups,
                fit_open_reactions,
                solver_options,
            )
        except InfeasibleError:
            if k == len(floors) - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _min_scale(network, members: np.ndarray, total: float) -> float:
    """``t_min = MIN_SCALE_FRACTION * sum(e) / sum_enzymatic U_j`` (see :func:`falcon`)."""
    vmax = np.maximum(np.abs(network.lb), np.abs(network.ub))[members.any(axis=0)]
    finite = vmax[np.isfinite(vmax)]
    cap = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    capacity = float(np.sum(np.minimum(vmax, cap)))
    return MIN_SCALE_FRACTION * total / capacity if capacity > 0 else 0.0


def _falcon_runs(
    network,
    e,
    sigma,
    members,
    flux_floor,
    repeats,
    seed,
    max_iterations,
    tol,
    gpr_method,
    use_groups,
    fit_open_reactions,
    solver_options,
) -> xr.Dataset:
    """The runs of :func:`falcon` at one flux floor."""
    # The LP is invariant to scaling e and sigma together (x, t, d' scale along; v = x / t and
    # the objective do not change), so the scale is numerics only: a mean scaled abundance of 1
    # keeps x and d' of order 1 against HiGHS's absolute tolerances (1e-7). Seed 003 scales
    # sum(e) to V instead; with our small V (~1e-4 on yeast) that put x near 1e-6 and left
    # steady-state errors |S v| up to 0.47 (Yeast 7.6 MC) in fluxes of order 1
    scale = e.size / e.sum() if e.sum() > 0 else 1.0
    e_scaled, sigma_scaled = e * scale, sigma * scale
    min_scale = _min_scale(network, members, float(e_scaled.sum()))

    split = network.split_irreversible()
    rng = np.random.default_rng(seed)

    def run(order) -> tuple[np.ndarray, float, np.ndarray, int]:
        """One run in column ``order``: LP solves, fixing directions until no new reaction
        becomes irreversible; the split fluxes, objective, closed columns, iteration count."""
        lp = FalconLP(
            split,
            members,
            e_scaled,
            sigma_scaled,
            flux_floor,
            order,
            fit_open_reactions=fit_open_reactions,
            min_scale=min_scale,
            **solver_options,
        )
        closed = np.zeros(len(split.reactions))
        count, it = _n_irreversible(split, closed), 0
        while True:
            it += 1
            v_irr, obj = lp.solve(closed)
            closed = _fix_directions(split, v_irr, closed, tol, close_balanced=fit_open_reactions)
            new = _n_irreversible(split, closed)
            if new <= count or it >= max_iterations:
                return v_irr, obj, closed, it
            count = new

    runs, directions, objectives, iterations, seconds = [], [], [], [], []
    for k in range(repeats):
        start = time.perf_counter()
        for attempt in range(REORDER_ATTEMPTS):
            order = None if k == 0 else rng.permutation(len(split.reactions))
            try:
                v_irr, obj, closed, it = run(order)
                break
            except SolverError as exc:
                # a column order is arbitrary (it only picks among alternative optima): a run
                # whose LP stalls numerically in one order is drawn again in another
                if k == 0 or attempt == REORDER_ATTEMPTS - 1:
                    raise
                warnings.warn(
                    f"FALCON run {k + 1}: {exc}; retrying with another column order",
                    stacklevel=2,
                )
        runs.append(split.to_net @ v_irr)
        directions.append(_open_directions(split, closed))
        objectives.append(obj)
        iterations.append(it)
        seconds.append(time.perf_counter() - start)
    runs_arr = np.array(runs)
    coords = {"reaction": list(network.reactions)}
    return xr.Dataset(
        {
            "flux": ("reaction", runs_arr.mean(axis=0)),
            "flux_sd": (
                "reaction",
                runs_arr.std(axis=0, ddof=1) if repeats > 1 else np.zeros(network.n_reactions),
            ),
            "runs": (("run", "reaction"), runs_arr),
            "direction": (("run", "reaction"), np.array(directions)),
            "objective": ("run", np.array(objectives)),
        },
        coords={**coords, "run": np.arange(repeats)},
        attrs=provenance(
            "falcon",
            network,
            gpr_method=gpr_method,
            use_groups=int(use_groups),
            flux_floor=flux_floor,
            repeats=repeats,
            seed=seed,
            iterations=float(np.mean(iterations)),
            seconds=float(np.mean(seconds)),
            n_groups=int(e.size),
            solver="HiGHS (Charnes-Cooper LP, warm-started)",
        ),
    )
