"""Flux-balance linear programs, built once in cvxpy and re-solved by HiGHS.

The problem ``min w @ v  s.t.  S v = 0, lb <= v <= ub, [extra constraints]`` is written in cvxpy
with the weights ``w`` as a ``Parameter`` (so it is DPP and compiled once). For many re-solves
(FVA) the canonical LP that cvxpy compiles is handed to one persistent HiGHS instance, whose
primal simplex restarts from the previous optimal basis after each change of costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cvxpy as cp
import highspy
import numpy as np

from bayesflux._highs import highs_model
from bayesflux.errors import InfeasibleError, SolverError, UnboundedError
from bayesflux.network import Network

__all__ = ["FluxLP"]

_PRIMAL_SIMPLEX = 4  # HiGHS simplex_strategy: a cost change keeps the basis primal feasible
# Fluxes span 1e-6..1e3 and biomass coefficients reach 1e-5, so HiGHS's default feasibility
# tolerance (1e-7) lets an objective floor slip enough to move some ranges by ~1e-6.
_TOLERANCE = 1e-9
_POLISH = 1e-10  # larger primal infeasibilities of an optimum are polished away (HiGHS's minimum)
_DECIDED = (
    highspy.HighsModelStatus.kOptimal,
    highspy.HighsModelStatus.kUnbounded,
    highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
)


def check_status(status: str, what: str) -> None:
    """Raise the typed error matching a cvxpy status."""
    if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise InfeasibleError(f"{what} is infeasible: no flux satisfies S v = 0 and the bounds")
    if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
        raise UnboundedError(f"{what} is unbounded: the objective can grow without limit")
    raise SolverError(f"{what}: the solver ended with status {status!r}")


class FluxLP:
    """``min w @ v`` over the flux polytope of a network, with optional extra linear constraints.

    Parameters
    ----------
    network
        The network whose ``S v = 0`` and bounds define the feasible set.
    extra
        Functions ``v -> list of cvxpy constraints`` added to the problem (e.g. an objective floor).
    """

    def __init__(
        self,
        network: Network,
        extra: Sequence[Callable[[cp.Variable], list[cp.Constraint]]] = (),
    ) -> None:
        self.network = network
        n = network.n_reactions
        self.v = cp.Variable(n, name="v", bounds=[network.lb.copy(), network.ub.copy()])
        self.weights = cp.Parameter(n, name="w", value=np.zeros(n))
        constraints = [network.S @ self.v == 0]
        for make in extra:
            constraints += make(self.v)
        self.problem = cp.Problem(cp.Minimize(self.weights @ self.v), constraints)
        if not self.problem.is_dpp():  # pragma: no cover - guarded by tests
            raise SolverError("flux LP is not DPP; it would be recompiled on every solve")

    def solve(self, weights: np.ndarray, *, what: str = "flux balance LP") -> np.ndarray:
        """Solve once through cvxpy; returns the optimal fluxes or raises a typed error."""
        self.weights.value = np.asarray(weights, dtype=float)
        self.problem.solve(solver=cp.HIGHS)
        check_status(self.problem.status, what)
        return np.asarray(self.v.value, dtype=float)

    def hot_start(self) -> _HotStartHighs:
        """A persistent HiGHS model of the compiled problem for fast repeated re-solves."""
        return _HotStartHighs(self, what=f"flux LP on {self.network.id!r}")


class _HotStartHighs:
    """The canonical LP of a :class:`FluxLP`, loaded once into HiGHS.

    cvxpy maps the single variable ``v`` to the first columns of its canonical LP and the
    objective ``w @ v`` to the cost vector ``w``; both facts are checked when the model is built.
    """

    def __init__(self, lp: FluxLP, *, what: str) -> None:
        self.what = what
        n = lp.network.n_reactions
        saved = lp.weights.value
        probe = np.random.default_rng(0).normal(size=n)
        lp.weights.value = probe
        data, _, _ = lp.problem.get_problem_data(cp.HIGHS)
        lp.weights.value = saved
        cost = data["c"]
        if data["param_prob"].var_id_to_col.get(lp.v.id) != 0 or not np.allclose(cost[:n], probe):
            raise SolverError("unexpected cvxpy canonical form: cannot map costs to fluxes")
        A = data["A"].tocsc()
        n_eq = data["dims"].zero
        b = data["b"]
        self.highs = highs_model(
            A,
            col_lower=data["lower_bounds"],
            col_upper=data["upper_bounds"],
            row_lower=np.concatenate([b[:n_eq], np.full(b.size - n_eq, -np.inf)]),
            row_upper=b,
        )
        self.highs.setOptionValue("simplex_strategy", _PRIMAL_SIMPLEX)
        self.highs.setOptionValue("primal_feasibility_tolerance", _TOLERANCE)
        self.highs.setOptionValue("dual_feasibility_tolerance", _TOLERANCE)
        self.n = n
        self._columns = np.arange(A.shape[1], dtype=np.int32)
        self._cost = np.zeros(A.shape[1])

    def _retry(self) -> highspy.HighsModelStatus:
        """A hot start that ends undecided (rare, tight tolerances): solve cold, then at 1e-7."""
        self.highs.clearSolver()
        self.highs.run()
        status = self.highs.getModelStatus()
        if status in _DECIDED:
            return status
        for name in ("primal_feasibility_tolerance", "dual_feasibility_tolerance"):
            self.highs.setOptionValue(name, 1e-7)
        self.highs.clearSolver()
        self.highs.run()
        for name in ("primal_feasibility_tolerance", "dual_feasibility_tolerance"):
            self.highs.setOptionValue(name, _TOLERANCE)
        return self.highs.getModelStatus()

    def _polish(self) -> highspy.HighsModelStatus:
        """Re-solve from the optimal basis at the tightest tolerance HiGHS accepts.

        Degenerate optima of genome-scale models amplify a bound violation of 1e-9 (inside the
        tolerance) into range errors of ~1e-6 (iJO1366, fraction 0.9: min ACONTa); the extra
        simplex iterations from the current basis remove the violation (or, rarely, a cold solve).
        """
        self.highs.setOptionValue("primal_feasibility_tolerance", _POLISH)
        self.highs.run()
        if self.highs.getInfo().max_primal_infeasibility > _POLISH:  # rare: solve it cold
            self.highs.clearSolver()
            self.highs.run()
        status = self.highs.getModelStatus()
        self.highs.setOptionValue("primal_feasibility_tolerance", _TOLERANCE)
        return status if status in _DECIDED else self._retry()

    def minimize(self, cost: np.ndarray) -> tuple[float, np.ndarray | None]:
        """``min cost @ v``: (optimal value, fluxes), or ``(-inf, None)`` if unbounded."""
        changed = np.flatnonzero(self._cost[: self.n] != cost).astype(np.int32)
        if changed.size:  # only the costs that differ: cheaper, and the basis stays valid
            self._cost[changed] = cost[changed]
            self.highs.changeColsCost(changed.size, changed, self._cost[changed])
        self.highs.run()
        status = self.highs.getModelStatus()
        if status not in _DECIDED:
            status = self._retry()
        if (
            status == highspy.HighsModelStatus.kOptimal
            and self.highs.getInfo().max_primal_infeasibility > _POLISH
        ):
            status = self._polish()
        if status == highspy.HighsModelStatus.kOptimal:
            x = np.asarray(self.highs.getSolution().col_value[: self.n])
            return float(self.highs.getInfo().objective_function_value), x
        if status == highspy.HighsModelStatus.kUnbounded:
            return -np.inf, None
        if status in (
            highspy.HighsModelStatus.kInfeasible,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        ):
            # Tell the two apart with a zero objective: only feasibility is left to decide.
            self.highs.changeColsCost(self._cost.size, self._columns, np.zeros_like(self._cost))
            self.highs.run()
            self.highs.changeColsCost(self._cost.size, self._columns, self._cost)
            if self.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                return -np.inf, None
            raise InfeasibleError(
                f"{self.what} is infeasible: no flux satisfies S v = 0, the bounds "
                "and the extra constraints"
            )
        raise SolverError(
            f"{self.what}: HiGHS ended with status {self.highs.modelStatusToString(status)}"
        )
