"""13C-MFA by weighted least squares, with linearised and profile-likelihood intervals.

Minimise ``SSR(theta) = sum_i ((model_i(theta) - y_i) / sd_i)^2`` over ``theta = (z, v_xch)``
subject to the net-flux bounds ``lb <= v0 + K z <= ub`` and ``0 <= v_xch <= xch_max``.

Solver: Levenberg-Marquardt with the linear inequality constraints kept in every step
(a bounded trust-region Gauss-Newton): each step solves the least-squares problem with
inequality constraints (LSI) ``min |J d + r|^2 + lam |D d|^2  s.t.  G d <= h - G theta`` by
reduction to least distance programming and NNLS (Lawson & Hanson 1974, *Solving Least Squares
Problems*, ch. 23), the subproblem influx_si's NLSIC also solves (Sokol et al. 2012,
Bioinformatics 28:687). ``lam`` follows Nielsen's gain-ratio rule, ``D`` are the column norms
of the exact JAX Jacobian (Moré 1978). Free exchange fluxes are optimised on influx_si's
``[0, 1)`` scale ``u = v_xch / (1 + v_xch)``, where the SSR is far less flat than in ``v_xch``.
Every fit runs from several starts (the polytope's Chebyshev centre and random points of the
feasible set); the result says which converged and how many reached the best SSR.

At the optimum ``SSR ~ chi2(n - p)`` if the model is right: the fit is accepted when ``SSR`` lies
in the central 95% range (Antoniewicz, Kelleher & Stephanopoulos 2006, Metab Eng 8:324).
Linearised sds: ``Cov(theta) = (J'J)^{-1}`` (full inverse, no truncation; a warning names the
parameters of ill-conditioned directions); they equal influx_si's, also at bounds. Reported
intervals (by default): profile likelihood (:func:`profile_interval`), the values of one flux
where the re-optimised ``SSR`` exceeds its minimum by ``chi2_1(0.95) = 3.84`` (Antoniewicz,
Kelleher & Stephanopoulos 2006); unlike ``v +- 1.96 sd`` they respect flux bounds active at the
optimum and nonlinearity.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.stats
import xarray as xr

from bayesflux.errors import InfeasibleError, SolverError
from bayesflux.labeling.measurements import LabelingProblem

__all__ = [
    "FitResult",
    "fit",
    "linear_constraints",
    "linearised_covariance",
    "profile_interval",
    "profile_intervals",
    "random_starts",
]

logger = logging.getLogger(__name__)

#: two SSRs "agree" when they differ by less than this, relative to max(1, SSR)
AGREE_RTOL = 1e-6
#: largest exchange flux the [0, 1) scale represents when ``xch_max`` is infinite
_XCH_CAP = 1e12


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Best fit: parameters, fluxes, goodness of fit, linearised intervals and solver report.

    ``theta`` are the free parameters ``(z, v_xch)``; ``cov`` their linearised covariance
    ``(J'J)^{-1}``; ``net_sd``/``xch_sd`` the sds of all net/exchange fluxes and
    ``xch_fraction = v_xch / (1 + v_xch)`` with ``xch_fraction_sd`` influx_si's ``[0, 1)`` scale.
    ``start_ssr``/``start_converged``: final SSR and convergence of every start, in the order
    of the starts; ``n_best``: how many reached the best SSR within ``AGREE_RTOL``.
    ``ill_conditioned``: parameters of directions the data barely determine (empty if none).
    ``net_ci``/``xch_ci``: the reported ``ci_level`` intervals ``(n, 2)`` of all net/exchange
    fluxes, ``ci_method`` ``"profile"`` (profile likelihood, the default of :func:`fit`) or
    ``"linearised"`` (``value +- z sd``).
    """

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
    converged: bool
    start_converged: np.ndarray
    n_best: int
    cov: np.ndarray
    xch_fraction: np.ndarray
    xch_fraction_sd: np.ndarray
    condition_number: float
    ill_conditioned: tuple[str, ...]
    net_ci: np.ndarray
    xch_ci: np.ndarray
    ci_method: str
    ci_level: float

    @property
    def passed(self) -> bool:
        """Whether the SSR lies in the central 95% range of chi2(dof)."""
        return self.chi2_range[0] <= self.ssr <= self.chi2_range[1]

    @property
    def p_value(self) -> float:
        """Upper-tail probability ``P(chi2(dof) >= SSR)`` (influx_si's p-value)."""
        return float(scipy.stats.chi2.sf(self.ssr, self.dof)) if self.dof > 0 else float("nan")

    @property
    def n_starts(self) -> int:
        """Number of starts run."""
        return int(self.start_ssr.size)

    def to_dataset(self, problem: LabelingProblem) -> xr.Dataset:
        """Fluxes, sds and intervals with ``reaction`` / ``reversible_reaction`` coordinates.

        ``net_lower/upper`` and ``xch_lower/upper`` are the reported intervals (``ci_method``);
        ``net_linear_lower/upper`` the linearised ones, ``value +- z sd``.
        """
        z = float(scipy.stats.norm.ppf(0.5 + self.ci_level / 2))
        ds = xr.Dataset(
            {
                "net": ("reaction", self.net),
                "net_sd": ("reaction", self.net_sd),
                "net_lower": ("reaction", self.net_ci[:, 0]),
                "net_upper": ("reaction", self.net_ci[:, 1]),
                "net_linear_lower": ("reaction", self.net - z * self.net_sd),
                "net_linear_upper": ("reaction", self.net + z * self.net_sd),
                "xch": ("reversible_reaction", self.xch),
                "xch_sd": ("reversible_reaction", self.xch_sd),
                "xch_lower": ("reversible_reaction", self.xch_ci[:, 0]),
                "xch_upper": ("reversible_reaction", self.xch_ci[:, 1]),
                "xch_fraction": ("reversible_reaction", self.xch_fraction),
                "xch_fraction_sd": ("reversible_reaction", self.xch_fraction_sd),
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
            p_value=self.p_value,
            passed=int(self.passed),
            status=self.status,
            converged=int(self.converged),
            n_starts=self.n_starts,
            n_best=self.n_best,
            condition_number=self.condition_number,
            ill_conditioned=", ".join(self.ill_conditioned),
            ci_method=self.ci_method,
            ci_level=self.ci_level,
        )
        return ds


# ---------------------------------------------------------------------------- constraints
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
    return _vertex_mixtures(G, h, n, rng, subset=False)


def _vertex_mixtures(
    G: np.ndarray, h: np.ndarray, n: int, rng: np.random.Generator, *, subset: bool
) -> np.ndarray:
    """``n`` convex combinations of vertices of ``G x <= h`` (LP optima of random directions).

    ``subset``: mix ``p + 1`` random vertices each (dispersed), else all found (central).
    """
    p = G.shape[1]
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
    if not subset:
        return rng.dirichlet(np.ones(len(V)), size=n) @ V
    k = min(len(V), p + 1)
    picks = [rng.choice(len(V), size=k, replace=False) for _ in range(n)]
    return np.stack([rng.dirichlet(np.ones(k)) @ V[i] for i in picks])


def _chebyshev_centre(G: np.ndarray, h: np.ndarray, *, max_radius: float = 1e3) -> np.ndarray:
    """Centre of the largest ball (radius at most ``max_radius``, so that unbounded sets have
    one too) inside ``G x <= h`` (one LP)."""
    norms = np.linalg.norm(G, axis=1)
    c = np.zeros(G.shape[1] + 1)
    c[-1] = -1.0
    res = scipy.optimize.linprog(
        c,
        A_ub=np.hstack([G, norms[:, None]]),
        b_ub=h,
        bounds=[(None, None)] * G.shape[1] + [(0, max_radius)],
        method="highs",
    )
    if res.status == 2:
        raise InfeasibleError("the net-flux bounds and fixed fluxes leave no feasible flux")
    if res.status != 0:
        raise SolverError(f"no Chebyshev centre of the flux polytope: {res.message}")
    return res.x[:-1]


# ---------------------------------------------------------------------------- coordinates
@dataclasses.dataclass(frozen=True, eq=False)
class _Coordinates:
    """Solver coordinates ``u``: ``theta_k = u_k / (1 - u_k)`` for the free exchange fluxes
    bounded by single-flux rows only (``mask``), ``theta_k = u_k`` otherwise; ``G u <= h``."""

    mask: np.ndarray
    G: np.ndarray
    h: np.ndarray
    names: tuple[str, ...]

    def theta(self, u):
        """``theta(u)`` (numpy or jax)."""
        xp = jnp if isinstance(u, jax.Array) else np
        return xp.where(self.mask, u / (1.0 - xp.where(self.mask, u, 0.0)), u)

    def u(self, theta: np.ndarray) -> np.ndarray:
        """``u(theta)``."""
        theta = np.asarray(theta, float)
        return np.where(self.mask, theta / (1.0 + np.where(self.mask, theta, 0.0)), theta)

    def dtheta_du(self, u: np.ndarray) -> np.ndarray:
        """Diagonal of ``d theta / d u``: ``1 / (1 - u)^2`` on the mask, 1 elsewhere."""
        return np.where(self.mask, 1.0 / (1.0 - np.where(self.mask, u, 0.0)) ** 2, 1.0)

    def clip(self, u: np.ndarray) -> np.ndarray:
        """``u`` with masked entries inside their box (for user starts on a bound)."""
        lo, hi = self._box()
        return np.where(self.mask, np.clip(u, lo, hi), u)

    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.G.shape[1]
        lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
        for g, b in zip(self.G, self.h, strict=True):
            nz = np.flatnonzero(g)
            if nz.size == 1 and self.mask[nz[0]]:
                j = nz[0]
                if g[j] > 0:
                    hi[j] = min(hi[j], b / g[j])
                else:
                    lo[j] = max(lo[j], b / g[j])
        return lo, hi


def _coordinates(problem: LabelingProblem) -> _Coordinates:
    """Solver coordinates and constraints (see :class:`_Coordinates`)."""
    G, h = linear_constraints(problem)
    p, nz = problem.n_params, problem.space.n_free
    single = np.count_nonzero(G, axis=1) == 1
    mask = np.zeros(p, bool)
    lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
    for j in range(nz, p):
        rows = np.flatnonzero(G[:, j])
        if rows.size == 0 or not np.all(single[rows]):
            continue
        g, b = G[rows, j], h[rows]
        lo[j] = np.max(b[g < 0] / g[g < 0], initial=-np.inf)
        hi[j] = min(np.min(b[g > 0] / g[g > 0], initial=np.inf), _XCH_CAP)
        mask[j] = lo[j] >= 0.0 and hi[j] > lo[j]
    keep = ~np.any(G[:, mask] != 0, axis=1)
    eye = np.eye(p)[mask]
    G_u = np.vstack([G[keep], eye, -eye])
    h_u = np.concatenate([h[keep], hi[mask] / (1 + hi[mask]), -lo[mask] / (1 + lo[mask])])
    return _Coordinates(mask, G_u, h_u, problem.param_names)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _residuals_and_jacobian(problem: LabelingProblem, coords: _Coordinates) -> Callable:
    """``u -> (r, dr/du)`` as numpy arrays, one jitted program cached per problem."""
    key = coords.mask.tobytes()
    cache = _COMPILED.setdefault(problem, {})
    if key not in cache:
        ref = weakref.ref(problem)  # the cache must not keep its key alive

        def r(u):
            res = ref().residuals(coords.theta(u))
            return res, res

        compiled = jax.jit(jax.jacfwd(r, has_aux=True))

        def fun(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            J, res = compiled(jnp.asarray(u, dtype=float))
            return np.asarray(res), np.asarray(J)

        cache[key] = fun
    return cache[key]


# ---------------------------------------------------------------------------- solver
def _lsi_step(
    J: np.ndarray, r: np.ndarray, G: np.ndarray, s: np.ndarray, D: np.ndarray, lam: float
) -> np.ndarray:
    """``argmin |J d + r|^2 + lam |D d|^2`` subject to ``G d <= s`` (``s >= 0``).

    With ``[J; sqrt(lam) D] = QR`` and ``y = R d - Q'f`` this is the least-distance programme
    ``min |y| s.t. A y >= b``, ``A = -G R^-1``, ``b = G R^-1 Q'f - s``, whose solution is
    ``y = -rho[:p] / rho[p]`` for the NNLS residual ``rho`` of ``[A'; b'] u ~ e_{p+1}``
    (Lawson & Hanson 1974, ch. 23).
    """
    p = J.shape[1]
    Q, R = np.linalg.qr(np.vstack([J, np.sqrt(lam) * np.diag(D)]))
    g = -(Q[: J.shape[0]].T @ r)
    d = np.linalg.solve(R, g)  # R is triangular; LAPACK gesv is far faster here than trtrs
    if G.shape[0] == 0 or np.all(G @ d <= s):
        return d
    GRi = np.linalg.solve(R.T, G.T).T
    M = np.vstack([-GRi.T, (GRi @ g - s)[None, :]])
    e = np.zeros(p + 1)
    e[-1] = 1.0
    w, _ = scipy.optimize.nnls(M, e, maxiter=100 * M.shape[1])
    rho = M @ w - e
    if not rho[-1] < -1e-14:  # infeasible LDP: cannot happen with s >= 0 but for round-off
        return np.zeros(p)
    return np.linalg.solve(R, g - rho[:p] / rho[-1])


@dataclasses.dataclass(frozen=True)
class _Run:
    u: np.ndarray
    r: np.ndarray
    J: np.ndarray
    ssr: float
    converged: bool
    message: str
    n_iter: int


def _levenberg_marquardt(
    fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    u0: np.ndarray,
    G: np.ndarray,
    h: np.ndarray,
    *,
    max_iter: int = 200,
    ftol: float = 1e-10,
    xtol: float = 1e-10,
) -> _Run:
    """Levenberg-Marquardt on ``G u <= h`` from the feasible ``u0``; see the module docstring.

    Converged when an accepted step lowers the SSR by at most ``ftol`` (relative, both actual
    and predicted) or moves ``|D du| <= xtol |D u|``; ``lam > 1e16`` without a better point ends
    the run, converged only if the best model decrease left is below ``ftol``.
    """
    u = np.array(u0, float)
    r, J = fun(u)
    ssr = float(r @ r)
    if not np.isfinite(ssr) or not np.all(np.isfinite(J)):
        return _Run(u, r, J, np.inf, False, "non-finite residuals at the start", 0)
    if u.size == 0:
        return _Run(u, r, J, ssr, True, "no free parameters", 0)
    D = np.linalg.norm(J, axis=0)
    D = np.where(D > 0, D, 1.0)
    lam, tol = 1e-3, 1e-9 * (1.0 + np.abs(h))
    for it in range(1, max_iter + 1):
        s = np.maximum(h - G @ u, 0.0)
        d = _lsi_step(J, r, G, s, D, lam)
        over = G @ d
        bad = (G @ (u + d) - h > tol) & (over > 0)  # beyond NNLS round-off: shorten the step
        if np.any(bad):
            d = d * min(1.0, float(np.min(s[bad] / over[bad])))
        if not np.all(np.isfinite(d)):
            d = np.zeros_like(d)
        lin = r + J @ d
        pred = ssr - float(lin @ lin)
        u_new = u + d
        r_new, J_new = fun(u_new)
        ssr_new = float(r_new @ r_new) if np.all(np.isfinite(r_new)) else np.inf
        actual = ssr - ssr_new
        gain = actual / pred if pred > 0 else -1.0
        if gain > 1e-4 and np.all(np.isfinite(J_new)):
            small_f = actual <= ftol * ssr and pred <= ftol * ssr
            small_x = np.linalg.norm(D * d) <= xtol * (xtol + np.linalg.norm(D * u_new))
            u, r, J, ssr = u_new, r_new, J_new, ssr_new
            D = np.maximum(D, np.linalg.norm(J, axis=0))
            lam = max(lam * max(1 / 3, 1 - (2 * gain - 1) ** 3), 1e-15)
            if ssr == 0.0 or small_f:
                return _Run(u, r, J, ssr, True, f"relative SSR decrease below {ftol:g}", it)
            if small_x:
                return _Run(u, r, J, ssr, True, f"relative step below {xtol:g}", it)
        else:
            lam *= 4.0
            if lam > 1e16:
                done = pred <= ftol * ssr
                why = "no step lowers the SSR" + ("" if done else " (stalled)")
                return _Run(u, r, J, ssr, done, why, it)
    return _Run(u, r, J, ssr, False, f"iteration limit {max_iter} reached", max_iter)


# ---------------------------------------------------------------------------- covariance
def linearised_covariance(
    J: np.ndarray, names: tuple[str, ...] | list[str], *, cond_max: float = 1e10
) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """``(J'J)^{-1}``, the full inverse, its condition number and the parameters of
    ill-conditioned directions.

    ``J`` is scaled to unit columns (``S = diag(1/|J_j|)``, ``Cov = S (S J'J S)^{-1} S``) so the
    condition number reflects correlation, not units; the inverse is ``V diag(1/s^2) V'`` from
    the SVD ``J S = U diag(s) V'`` with every singular value kept (no ``rcond`` truncation, and
    no squared condition number from forming ``J'J``). Directions with scaled singular value
    ``s_k < s_max / sqrt(cond_max)`` are reported (their parameters: components above 0.3) and
    logged as a warning; exactly unidentifiable parameters (zero column or ``s_k = 0``) get
    infinite variance rather than a truncated one.
    """
    p = J.shape[1]
    norms = np.linalg.norm(J, axis=0)
    cov = np.full((p, p), np.inf)
    if p == 0:
        return np.zeros((0, 0)), 1.0, ()
    ok = norms > 0
    if not np.any(ok):
        logger.warning("13C fit: the residuals depend on no parameter; all variances infinite")
        return cov, np.inf, tuple(names)
    Js = J[:, ok] / norms[ok]
    _, sv, Vt = np.linalg.svd(Js, full_matrices=False)
    cond = float((sv[0] / sv[-1]) ** 2) if sv.size and sv[-1] > 0 else np.inf
    weak = sv < sv[0] / np.sqrt(cond_max) if sv.size else np.zeros(0, bool)
    flagged = set(np.flatnonzero(~ok))
    idx = np.flatnonzero(ok)
    for k in np.flatnonzero(weak):
        flagged.update(idx[np.abs(Vt[k]) > 0.3])
    ill = tuple(names[j] for j in sorted(flagged))
    if ill:
        logger.warning(
            "13C fit: J'J is ill-conditioned (condition number %.3g); poorly determined: %s",
            cond,
            ", ".join(ill),
        )
    tiny = sv <= np.finfo(float).eps * sv[0] * max(Js.shape)  # exactly singular directions
    bad = np.any(np.abs(Vt[tiny]) > 1e-8, axis=0)  # their parameters get infinite variance
    good = idx[~bad]
    if not good.size:
        return cov, cond, ill
    if np.any(bad):
        _, sv, Vt = np.linalg.svd(Js[:, ~bad], full_matrices=False)
    inner = (Vt.T / sv**2) @ Vt  # (Js'Js)^{-1} = V S^-2 V', all singular values kept
    cov[np.ix_(good, good)] = inner / np.outer(norms[good], norms[good])
    return cov, cond, ill


def _flux_sds(problem: LabelingProblem, theta: np.ndarray, cov: np.ndarray):
    """Sds of all net and exchange fluxes and of the exchange fractions ``x / (1 + x)``."""
    nz = problem.space.n_free
    K, Kx = problem.space.K, problem.xch_space.K

    def sd(M, C):
        with np.errstate(invalid="ignore"):
            return np.sqrt(
                np.clip(np.einsum("ij,jk,ik->i", M, np.nan_to_num(C, posinf=0), M), 0, None)
            )

    def inf_rows(M, C):
        return np.any((M != 0) & ~np.isfinite(np.diag(C))[None, :], axis=1)

    net_sd = sd(K, cov[:nz, :nz])
    net_sd[inf_rows(K, cov[:nz, :nz])] = np.inf
    xc = cov[nz:, nz:]
    xch_sd = sd(Kx, xc)
    xch_sd[inf_rows(Kx, xc)] = np.inf
    xch = np.asarray(problem.xch_space.net(theta[nz:]))
    return net_sd, xch_sd, xch_sd / (1.0 + xch) ** 2


# ---------------------------------------------------------------------------- fit
def fit(
    problem: LabelingProblem,
    *,
    n_starts: int = 10,
    rng: np.random.Generator | int | None = 0,
    theta0: np.ndarray | None = None,
    maxiter: int = 200,
    polish: int = 2,
    ftol: float = 1e-10,
    profile: bool = True,
    ci_level: float = 0.95,
) -> FitResult:
    """Weighted least-squares flux fit from ``n_starts`` starts; see the module docstring.

    Parameters
    ----------
    problem
        The labelling problem.
    n_starts
        Number of starts: the Chebyshev centre of the feasible set (in solver coordinates) and
        ``n_starts - 1`` random convex combinations of ``p + 1`` of its vertices.
    rng
        Seed or generator of the random starts.
    theta0
        An additional start of one's own (free parameters ``(z, v_xch)``; moved to the
        nearest feasible point if outside the bounds).
    maxiter
        Levenberg-Marquardt iterations per start.
    polish
        Restarts (fresh ``lam`` and scaling) of the best run while it is not converged.
    ftol
        Relative SSR decrease that ends a run.
    profile
        Report profile-likelihood intervals (:func:`profile_interval`) of every net and
        exchange flux that is not fixed (one profile per distinct flux; ~5 s on influx_si's
        E. coli); ``False``: linearised intervals ``value +- z sd``.
    ci_level
        Confidence level of the reported intervals.

    Returns
    -------
    FitResult
        The best run's fluxes; ``n_best`` counts the starts within ``AGREE_RTOL`` of its SSR. A
        warning is logged when the best run did not converge or fewer than half the starts
        reached its SSR.
    """
    if n_starts < 1 and theta0 is None:
        raise SolverError("fit needs n_starts >= 1 or a theta0")
    rng = np.random.default_rng(rng)
    coords = _coordinates(problem)
    fun = _residuals_and_jacobian(problem, coords)
    starts = []
    if theta0 is not None:
        u0 = _nearest_feasible(coords.G, coords.h, coords.clip(coords.u(theta0)))
        if u0 is None:
            raise InfeasibleError("the net-flux bounds and fixed fluxes leave no feasible flux")
        starts.append(u0)
    if problem.n_params == 0:
        starts = [np.zeros(0)]  # nothing to fit: the SSR at the fixed fluxes
    elif n_starts >= 1:
        starts.append(_chebyshev_centre(coords.G, coords.h))
    if n_starts >= 2 and problem.n_params > 0:
        starts.extend(_vertex_mixtures(coords.G, coords.h, n_starts - 1, rng, subset=True))
    runs = [
        _levenberg_marquardt(fun, u0, coords.G, coords.h, max_iter=maxiter, ftol=ftol)
        for u0 in starts
    ]
    ssrs = np.array([run.ssr for run in runs])
    if not np.any(np.isfinite(ssrs)):
        raise SolverError("every start of the 13C fit ended with a non-finite SSR")
    k = int(np.argmin(ssrs))
    best = runs[k]
    for _ in range(polish):
        if best.converged:
            break
        again = _levenberg_marquardt(fun, best.u, coords.G, coords.h, max_iter=maxiter, ftol=ftol)
        if again.ssr <= best.ssr:
            best = again
    runs[k] = best
    ssrs[k] = best.ssr
    agree = np.abs(ssrs - best.ssr) <= AGREE_RTOL * max(1.0, best.ssr)
    n_best = int(np.sum(agree))
    if not best.converged:
        logger.warning("13C fit: the best run did not converge (%s)", best.message)
    if n_best < max(2, int(np.ceil(0.5 * len(runs)))) and len(runs) > 1:
        logger.warning(
            "13C fit: only %d of %d starts reached the best SSR %.6g; more starts may find "
            "a lower one",
            n_best,
            len(runs),
            best.ssr,
        )
    theta = coords.theta(best.u)
    J = best.J / coords.dtheta_du(best.u)  # chain rule: dr/dtheta = dr/du / (dtheta/du)
    cov_u, cond, ill = linearised_covariance(best.J, coords.names)
    scale = coords.dtheta_du(best.u)
    cov = cov_u * np.outer(scale, scale)
    cov[~np.isfinite(cov_u)] = np.inf
    net_sd, xch_sd, frac_sd = _flux_sds(problem, theta, cov)
    net, xch = (np.asarray(a) for a in problem.split(jnp.asarray(theta)))
    dof = problem.n_measurements - problem.n_params - problem.n_scale
    lo, hi = scipy.stats.chi2.ppf([0.025, 0.975], dof) if dof > 0 else (0.0, 0.0)
    status = (
        f"{'converged' if best.converged else 'NOT converged'}: {best.message} after "
        f"{best.n_iter} iterations; {n_best} of {len(runs)} starts reached the best SSR"
    )
    z = float(scipy.stats.norm.ppf(0.5 + ci_level / 2))
    result = FitResult(
        theta=theta,
        net=net,
        xch=xch,
        ssr=best.ssr,
        dof=int(dof),
        chi2_range=(float(lo), float(hi)),
        residuals=best.r,
        jacobian=J,
        net_sd=net_sd,
        xch_sd=xch_sd,
        start_ssr=ssrs,
        status=status,
        converged=best.converged,
        start_converged=np.array([run.converged for run in runs]),
        n_best=n_best,
        cov=cov,
        xch_fraction=xch / (1.0 + xch),
        xch_fraction_sd=frac_sd,
        condition_number=cond,
        ill_conditioned=ill,
        net_ci=np.stack([net - z * net_sd, net + z * net_sd], axis=1),
        xch_ci=np.stack([xch - z * xch_sd, xch + z * xch_sd], axis=1),
        ci_method="linearised",
        ci_level=float(ci_level),
    )
    if not profile:
        return result
    return dataclasses.replace(
        result,
        net_ci=_profile_all(problem, result, exchange=False),
        xch_ci=_profile_all(problem, result, exchange=True),
        ci_method="profile",
    )


def _profile_all(problem: LabelingProblem, result: FitResult, *, exchange: bool) -> np.ndarray:
    """Profile intervals ``(n, 2)`` of all net (or exchange) fluxes, one per distinct row
    ``(K_j, v0_j)``; fixed fluxes get ``(value, value)``."""
    space = problem.xch_space if exchange else problem.space
    ids = problem.reversible if exchange else problem.network.reaction_ids
    values = result.xch if exchange else result.net
    ci = np.stack([values, values], axis=1).astype(float)
    done: dict[bytes, tuple[float, float]] = {}
    for j, reaction in enumerate(ids):
        if not np.any(space.K[j]):
            continue
        key = np.round(np.append(space.K[j], space.v0[j]), 12).tobytes()
        if key not in done:
            done[key] = profile_interval(
                problem, result, reaction, exchange=exchange, level=result.ci_level
            )
        ci[j] = done[key]
    return ci


# ---------------------------------------------------------------------------- profiles
def _profile_row(
    problem: LabelingProblem, coords: _Coordinates, reaction: str, exchange: bool
) -> tuple[np.ndarray, Callable[[float], float], float, float]:
    """``(a, target, lb, ub)``: the flux equals ``c`` iff ``a @ u == target(c)``."""
    nz, p = problem.space.n_free, problem.n_params
    a = np.zeros(p)
    if exchange:
        if reaction not in problem.reversible:
            raise SolverError(f"profile of the exchange flux of {reaction!r}, not reversible")
        k = problem.reversible.index(reaction)
        a[nz:] = problem.xch_space.K[k]
        offset = problem.xch_space.v0[k]
        lb, ub = 0.0, problem.xch_max
        cols = np.flatnonzero(a)
        if cols.size == 1 and coords.mask[cols[0]]:
            m, coef = cols[0], a[cols[0]]
            a = np.eye(p)[m]
            return a, lambda c: ((c - offset) / coef) / (1 + (c - offset) / coef), lb, ub
    else:
        if reaction not in problem.network.reaction_ids:
            raise SolverError(f"profile of unknown reaction {reaction!r}")
        j = problem.network.reaction_ids.index(reaction)
        a[:nz] = problem.space.K[j]
        offset = problem.space.v0[j]
        lb, ub = problem.space.lb[j], problem.space.ub[j]
    return a, lambda c: c - offset, lb, ub


def _nearest_feasible(
    G: np.ndarray,
    h: np.ndarray,
    u_near: np.ndarray,
    a: np.ndarray | None = None,
    t: float = 0.0,
) -> np.ndarray | None:
    """The point of ``G u <= h`` (and ``a @ u = t``) nearest ``u_near`` in L1 (one LP), or
    ``None`` if there is none."""
    p = u_near.size
    eye = np.eye(p)
    eq = {} if a is None else {"A_eq": np.concatenate([a, np.zeros(p)])[None, :], "b_eq": [t]}
    res = scipy.optimize.linprog(
        np.concatenate([np.zeros(p), np.ones(p)]),
        A_ub=np.block([[G, np.zeros_like(G)], [eye, -eye], [-eye, -eye]]),
        b_ub=np.concatenate([h, u_near, -u_near]),
        bounds=[(None, None)] * p + [(0, None)] * p,
        method="highs",
        **eq,
    )
    return res.x[:p] if res.status == 0 else None


def _constrained_fit(
    fun: Callable, coords: _Coordinates, a: np.ndarray, t: float, u_near: np.ndarray
) -> _Run | None:
    """Best fit with ``a @ u = t``: from the feasible point nearest ``u_near``,
    Levenberg-Marquardt in the null space of ``a``; ``None`` if ``a @ u = t`` is infeasible."""
    G, h = coords.G, coords.h
    u_c = _nearest_feasible(G, h, u_near, a, t)
    if u_c is None:
        return None
    N = scipy.linalg.null_space(a[None, :])

    def fun_w(w):
        r, J = fun(u_c + N @ w)
        return r, J @ N

    run = _levenberg_marquardt(fun_w, np.zeros(N.shape[1]), G @ N, h - G @ u_c)
    return _Run(u_c + N @ run.u, run.r, run.J, run.ssr, run.converged, run.message, run.n_iter)


def profile_interval(
    problem: LabelingProblem,
    result: FitResult,
    reaction: str,
    *,
    exchange: bool = False,
    level: float = 0.95,
    max_steps: int = 12,
    rtol: float = 1e-4,
    bisections: int | None = None,
) -> tuple[float, float]:
    """Profile-likelihood interval of one net (or exchange) flux.

    The flux ``c`` is moved away from its optimum (steps of its linearised sd, doubling) with all
    other parameters re-fitted, until ``SSR(c) - SSR_min`` exceeds ``chi2_1(level)`` (3.84 for
    95%); the crossing is then found by Brent's method to ``rtol`` of the step. An end that
    reaches a bound without crossing is reported at the bound. ``bisections`` is accepted for
    compatibility and ignored. A profile point below ``SSR_min`` is logged: the fit had not
    found the optimum.
    """
    del bisections
    coords = _coordinates(problem)
    fun = _residuals_and_jacobian(problem, coords)
    a, target, lb, ub = _profile_row(problem, coords, reaction, exchange)
    if not np.any(a):
        j = problem.reversible.index(reaction) if exchange else None
        value = (
            result.xch[j] if exchange else result.net[problem.network.reaction_ids.index(reaction)]
        )
        return float(value), float(value)  # fixed flux
    delta = float(scipy.stats.chi2.ppf(level, 1))
    if exchange:
        k = problem.reversible.index(reaction)
        value, sd = float(result.xch[k]), float(result.xch_sd[k])
    else:
        j = problem.network.reaction_ids.index(reaction)
        value, sd = float(result.net[j]), float(result.net_sd[j])
    u_opt = coords.u(result.theta)
    ends = []
    for sign in (-1.0, 1.0):
        bound = lb if sign < 0 else ub
        step = sd if np.isfinite(sd) and sd > 0 else 1e-3 * max(1.0, abs(value))
        step = max(step, 1e-6 * max(1.0, abs(value)))
        near = {value: u_opt}
        inside, outside = value, None
        for _ in range(max_steps):
            c = inside + sign * step
            if np.isfinite(bound) and sign * (c - bound) >= 0:
                c = float(bound)
            run = _constrained_fit(fun, coords, a, target(c), near[inside])
            if run is None or run.ssr - result.ssr > delta:
                outside = c
                break
            if run.ssr < result.ssr - AGREE_RTOL * max(1.0, result.ssr):
                logger.warning(
                    "profile of %s: SSR %.6g at %g is below the fit's %.6g; the fit missed "
                    "the optimum",
                    reaction,
                    run.ssr,
                    c,
                    result.ssr,
                )
            near[c] = run.u
            inside = c
            if c == bound:
                break
            step *= 2.0
        if outside is None:
            ends.append(inside)
            continue

        def excess(c: float, near: dict = near) -> float:
            start = near[min(near, key=lambda x: abs(x - c))]
            run = _constrained_fit(fun, coords, a, target(c), start)
            if run is None:
                return delta
            if run.ssr - result.ssr <= delta:
                near[c] = run.u
            return run.ssr - result.ssr - delta

        if excess(outside) <= 0:  # infeasible or SSR within delta at the outside point
            ends.append(outside)
            continue
        ends.append(
            scipy.optimize.brentq(excess, inside, outside, xtol=rtol * step, rtol=1e-12)
            if inside != outside
            else inside
        )
    return float(ends[0]), float(ends[1])


def profile_intervals(
    problem: LabelingProblem,
    result: FitResult,
    *,
    net: list[str] | tuple[str, ...] | None = None,
    xch: list[str] | tuple[str, ...] | None = None,
    level: float = 0.95,
) -> xr.Dataset:
    """Profile-likelihood intervals (:func:`profile_interval`) of several fluxes.

    Default: the free net fluxes and free exchange fluxes (``problem.param_names``); about a
    few seconds each on a 12-parameter model, so not computed by :func:`fit` itself. Returns
    ``net_profile_lower/upper`` over ``reaction`` and ``xch_profile_lower/upper`` over
    ``reversible_reaction``, NaN where not profiled.
    """
    if net is None:
        net = problem.space.free
    if xch is None:
        xch = problem.xch_space.free
    out = {}
    for kind, names, ids in (
        ("net", net, problem.network.reaction_ids),
        ("xch", xch, problem.reversible),
    ):
        lo, hi = np.full(len(ids), np.nan), np.full(len(ids), np.nan)
        for r in names:
            if r not in ids:
                raise SolverError(f"profile of {r!r}: not among the {kind} fluxes")
            j = ids.index(r)
            lo[j], hi[j] = profile_interval(problem, result, r, exchange=kind == "xch", level=level)
        dim = "reaction" if kind == "net" else "reversible_reaction"
        out[f"{kind}_profile_lower"] = (dim, lo)
        out[f"{kind}_profile_upper"] = (dim, hi)
    return xr.Dataset(
        out,
        coords={
            "reaction": list(problem.network.reaction_ids),
            "reversible_reaction": list(problem.reversible),
        },
        attrs={"level": level},
    )
