"""13C-MFA by weighted least squares, with linearised and profile-likelihood intervals.

Minimise ``SSR(theta) = sum_i ((model_i(theta) - y_i) / sd_i)^2`` over ``theta = (z, v_xch)``
subject to the net-flux bounds ``lb <= v0 + K z <= ub`` and ``0 <= v_xch <= xch_max``, by SLSQP
with exact JAX gradients, from several starts spread over the flux polytope. At the optimum,
``SSR ~ chi2(n - p)`` if the model is right: the fit is accepted when ``SSR`` lies in the central
95% range (Antoniewicz, Kelleher & Stephanopoulos 2006). Intervals: linearised,
``Cov(theta) = (J'J)^+``, ``v +- 1.96 sd``; profile likelihood, the values of one flux where the
re-optimised ``SSR`` exceeds its minimum by ``chi2_1(0.95) = 3.84``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.stats
import xarray as xr

from bayesflux.errors import InfeasibleError, SolverError
from bayesflux.labeling.measurements import LabelingProblem

__all__ = ["FitResult", "fit", "linear_constraints", "profile_interval", "random_starts"]


@dataclass(frozen=True)
class FitResult:
    """Best fit: parameters, fluxes, statistics and linearised intervals."""

    theta: np.ndarray
    net: np.ndarray
    xch: np.ndarray
    ssr: float
    dof: int
    chi2_range: tuple[float, float]
    residuals: np.ndarray
    jacobian: np.ndarray
    net_sd: np.ndarray
    xch_sd: np.ndarray
    start_ssr: np.ndarray
    status: str

    @property
    def passed(self) -> bool:
        """Whether the SSR lies in the central 95% range of chi2(dof)."""
        return self.chi2_range[0] <= self.ssr <= self.chi2_range[1]

    def to_dataset(self, problem: LabelingProblem) -> xr.Dataset:
        """Fluxes, sds and 95% linearised intervals with a ``reaction`` coordinate."""
        z = 1.959963984540054
        ds = xr.Dataset(
            {
                "net": ("reaction", self.net),
                "net_sd": ("reaction", self.net_sd),
                "net_lower": ("reaction", self.net - z * self.net_sd),
                "net_upper": ("reaction", self.net + z * self.net_sd),
                "xch": ("reversible_reaction", self.xch),
                "xch_sd": ("reversible_reaction", self.xch_sd),
                "residual": ("measurement", self.residuals),
            },
            coords={
                "reaction": list(problem.network.reaction_ids),
                "reversible_reaction": list(problem.reversible),
                "measurement": problem.labels(),
            },
        )
        ds.attrs.update(
            ssr=self.ssr,
            dof=self.dof,
            chi2_lower=self.chi2_range[0],
            chi2_upper=self.chi2_range[1],
            passed=int(self.passed),
            status=self.status,
        )
        return ds


def linear_constraints(problem: LabelingProblem) -> tuple[np.ndarray, np.ndarray]:
    """``G theta <= h`` for the net-flux bounds and the exchange-flux bounds."""
    blocks_G, blocks_h = [], []
    sizes = (problem.space.n_free, problem.xch_space.n_free)
    for k, sp in enumerate((problem.space, problem.xch_space)):
        K = np.zeros((sp.K.shape[0], sum(sizes)))
        K[:, sum(sizes[:k]) : sum(sizes[: k + 1])] = sp.K
        fin_u, fin_l = np.isfinite(sp.ub), np.isfinite(sp.lb)
        blocks_G += [K[fin_u], -K[fin_l]]
        blocks_h += [sp.ub[fin_u] - sp.v0[fin_u], sp.v0[fin_l] - sp.lb[fin_l]]
    G, h = np.vstack(blocks_G), np.concatenate(blocks_h)
    keep = np.any(G != 0, axis=1)
    if np.any(h[~keep] < -1e-9):
        raise InfeasibleError("fixed fluxes lie outside their bounds")
    return G[keep], h[keep]


def random_starts(problem: LabelingProblem, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random interior points: convex combinations of LP vertices in random directions."""
    G, h = linear_constraints(problem)
    p = problem.n_params
    vertices = []
    for _ in range(max(2 * n, p + 1)):
        res = scipy.optimize.linprog(
            rng.normal(size=p), A_ub=G, b_ub=h, bounds=(None, None), method="highs"
        )
        if res.status == 2:
            raise InfeasibleError("the net-flux bounds and fixed fluxes leave no feasible flux")
        if res.status == 0:
            vertices.append(res.x)
    if not vertices:
        raise SolverError("no starting point found (is the flux space unbounded?)")
    V = np.array(vertices)
    W = rng.dirichlet(np.ones(len(V)), size=n)
    return W @ V


def _objective(problem: LabelingProblem):
    return problem.compiled["ssr_and_grad"]


def _minimise(fg, x0, G, h, extra=(), maxiter=500):
    cons = [{"type": "ineq", "fun": lambda x: h - G @ x, "jac": lambda x: -G}, *extra]
    res = scipy.optimize.minimize(
        lambda x: tuple(np.asarray(a) for a in fg(jnp.asarray(x))),
        x0,
        jac=True,
        method="SLSQP",
        constraints=cons,
        options={"maxiter": maxiter, "ftol": 1e-12},
    )
    return res


def fit(
    problem: LabelingProblem,
    *,
    n_starts: int = 8,
    rng: np.random.Generator | int | None = 0,
    theta0: np.ndarray | None = None,
    maxiter: int = 500,
    polish: int = 5,
) -> FitResult:
    """Weighted least-squares flux fit from ``n_starts`` starts; see the module docstring.

    Each start is re-run from its end point up to ``polish`` times while that lowers the SSR.
    ``theta0`` adds a start of one's own.
    """
    rng = np.random.default_rng(rng)
    G, h = linear_constraints(problem)
    starts = random_starts(problem, n_starts, rng)
    if theta0 is not None:
        starts = np.vstack([np.asarray(theta0, float)[None], starts])
    fg = _objective(problem)
    best, ssrs = None, []
    for x0 in starts:
        res = _minimise(fg, x0, G, h, maxiter=maxiter)
        ssr = float(fg(jnp.asarray(res.x))[0])
        for _ in range(polish):  # restarting SLSQP resets its quasi-Newton Hessian
            again = _minimise(fg, res.x, G, h, maxiter=maxiter)
            new = float(fg(jnp.asarray(again.x))[0])
            if not new < ssr - 1e-10 * max(1.0, ssr):
                break
            res, ssr = again, new
        ssrs.append(ssr)
        if np.isfinite(ssr) and (best is None or ssr < best[1]):
            best = (res, ssr)
    if best is None:
        raise SolverError("every start of the 13C fit ended with a non-finite SSR")
    res, ssr = best
    theta = np.asarray(res.x)
    r = np.asarray(problem.compiled["residuals"](jnp.asarray(theta)))
    J = np.asarray(problem.compiled["jacobian"](jnp.asarray(theta)))
    cov = np.linalg.pinv(J.T @ J, rcond=1e-10)
    nz = problem.space.n_free
    K, Kx = problem.space.K, problem.xch_space.K
    net_cov = K @ cov[:nz, :nz] @ K.T
    xch_sd = np.sqrt(np.clip(np.diag(Kx @ cov[nz:, nz:] @ Kx.T), 0, None))
    net, xch = problem.split(jnp.asarray(theta))
    dof = problem.n_measurements - problem.n_params - problem.n_scale
    lo, hi = scipy.stats.chi2.ppf([0.025, 0.975], dof) if dof > 0 else (0.0, 0.0)
    return FitResult(
        theta=theta,
        net=np.asarray(net),
        xch=np.asarray(xch),
        ssr=ssr,
        dof=int(dof),
        chi2_range=(float(lo), float(hi)),
        residuals=r,
        jacobian=J,
        net_sd=np.sqrt(np.clip(np.diag(net_cov), 0, None)),
        xch_sd=xch_sd,
        start_ssr=np.array(ssrs),
        status=str(res.message),
    )


def profile_interval(
    problem: LabelingProblem,
    result: FitResult,
    reaction: str,
    *,
    exchange: bool = False,
    level: float = 0.95,
    bisections: int = 10,
    max_steps: int = 12,
) -> tuple[float, float]:
    """Profile-likelihood interval of one net (or exchange) flux.

    The flux is moved away from its optimum and all other parameters re-fitted, until
    ``SSR - SSR_min`` exceeds ``chi2_1(level)``; the crossing is found by bisection. An end that
    reaches a bound without crossing is reported at the bound.
    """
    G, h = linear_constraints(problem)
    fg = _objective(problem)
    delta = float(scipy.stats.chi2.ppf(level, 1))
    if exchange:
        k = problem.reversible.index(reaction)
        row = np.concatenate([np.zeros(problem.space.n_free), problem.xch_space.K[k]])
        offset, value, sd = problem.xch_space.v0[k], result.xch[k], result.xch_sd[k]
        lb, ub = 0.0, problem.xch_max
    else:
        j = problem.network.reaction_ids.index(reaction)
        row = np.concatenate([problem.space.K[j], np.zeros(problem.xch_space.n_free)])
        offset = problem.space.v0[j]
        value, sd = result.net[j], result.net_sd[j]
        lb, ub = problem.space.lb[j], problem.space.ub[j]
    if not np.any(row):
        return float(value), float(value)  # fixed flux

    def refit(c, x0):
        eq = {
            "type": "eq",
            "fun": lambda x: np.array([row @ x + offset - c]),
            "jac": lambda x: row[None, :],
        }
        res = _minimise(fg, x0, G, h, extra=[eq])
        return float(fg(jnp.asarray(res.x))[0]), res.x

    ends = []
    for sign in (-1.0, 1.0):
        bound = lb if sign < 0 else ub
        step = max(sd, 1e-3 * max(1.0, abs(value)))
        inside, x_in = float(value), result.theta
        outside = None
        for _ in range(max_steps):
            c = inside + sign * step
            if sign * (c - bound) >= 0:
                c = bound
            ssr, x = refit(c, x_in)
            if ssr - result.ssr > delta:
                outside = c
                break
            inside, x_in = c, x
            if c == bound:
                break
            step *= 2.0
        if outside is None:
            ends.append(inside)
            continue
        for _ in range(bisections):
            mid = 0.5 * (inside + outside)
            ssr, x = refit(mid, x_in)
            if ssr - result.ssr > delta:
                outside = mid
            else:
                inside, x_in = mid, x
        ends.append(0.5 * (inside + outside))
    return float(ends[0]), float(ends[1])
