"""Seed 002's scoring of net-flux samples by 13C fits, and its subset statistics.

Scoring (seed 002, "13C labelling data"): each thermodynamically feasible net-flux sample is fed
to the isotopomer model with the net fluxes fixed, and only the exchange fluxes ``v_xch`` of the
reversible reactions are fitted by weighted least squares,

    SSR(v) = min_{l <= v_xch <= xch_max} sum_i ((model_i(v, v_xch) - y_i) / sd_i)^2,

with ``l = 0`` or the flux-force lower bound ``l = |v_net| / (exp(|ΔrG|/RT) - 1)`` (seed 002,
Eq. 7; :func:`bayesflux.thermo.flux_force.exchange_lower_bound`). The SSR scores the sample; it is
accepted when it lies in the central 95% range of ``chi2(n_measurements - n_free_xch - n_scale)``
(Antoniewicz, Kelleher & Stephanopoulos 2006). The fit is a box-constrained Levenberg–Marquardt
(Marquardt's diagonal scaling; variables at a bound whose gradient points outwards are held
there, the step is projected onto the box) run for a fixed number of iterations in ``lax.scan``
from ``num_starts`` log-uniform random starts, jit-compiled and vmapped over samples and starts.

Statistics (seed 002, "Statistical analysis"): :func:`subset_shift` compares the median and IQR of
each flux over a selected subset (e.g. the 20% best-scoring samples, :func:`best_fraction`) with
their null distributions over random subsets of the same size; :func:`ks_shift` compares the
Kolmogorov–Smirnov statistic between two selected subsets with its null distribution over pairs
of random subsets of the same sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
import xarray as xr

from bayesflux.errors import InfeasibleError, NetworkError
from bayesflux.labeling.measurements import LabelingProblem
from bayesflux.progress import progress_bar

__all__ = ["score_net_fluxes", "subset_shift", "ks_shift", "best_fraction"]

#: log-uniform starts need a positive lower end: an unbounded exchange flux starts at or above
#: this fraction of ``xch_max``
_START_FLOOR = 1e-6
#: Levenberg–Marquardt damping: initial value, decrease and increase factors, clip range
_LAMBDA0, _DOWN, _UP, _LAMBDA_RANGE = 1e-3, 3.0, 4.0, (1e-12, 1e12)
#: elements per chunk of the vectorised null distributions (about 160 MB of float64)
_CHUNK_ELEMENTS = 20_000_000


# ---------------------------------------------------------------------------------------- inputs
def _sample_frame(values, name: str) -> tuple[np.ndarray, str, dict]:
    """``(sample, reaction)`` DataArray -> transposed values, sample dim name and its coords."""
    if not isinstance(values, xr.DataArray) or values.ndim != 2 or "reaction" not in values.dims:
        raise ValueError(
            f"{name} must be an xarray.DataArray with dims (sample, reaction), got "
            f"{getattr(values, 'dims', type(values).__name__)}"
        )
    sdim = next(d for d in values.dims if d != "reaction")
    da = values.transpose(sdim, "reaction")
    coords = {sdim: da[sdim].values} if sdim in da.coords else {}
    return da, sdim, coords


def _select_net(problem: LabelingProblem, net: xr.DataArray) -> tuple[np.ndarray, str, dict]:
    da, sdim, coords = _sample_frame(net, "net")
    ids = list(problem.network.reaction_ids)
    have = {str(r) for r in da["reaction"].values} if "reaction" in da.coords else set()
    missing = [r for r in ids if r not in have]
    if missing:
        raise NetworkError(f"net-flux samples lack the labelling reactions {missing}")
    v = np.asarray(da.sel(reaction=ids).values, dtype=float)
    if v.shape[0] == 0:
        raise ValueError("net holds no samples")
    bad = np.argwhere(~np.isfinite(v))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"net flux of reaction {ids[j]!r} in sample {i} is not finite")
    return v, sdim, coords


def _check_balance(problem: LabelingProblem, v: np.ndarray, tol: float) -> None:
    """Raise when a sample violates ``S v = 0`` of the labelling network (relative to its scale)."""
    stoich = problem.network.stoichiometry()
    if stoich.S.shape[0] == 0:
        return
    idx = [stoich.reaction_index[r] for r in problem.network.reaction_ids]
    S = stoich.S.toarray()[:, idx]
    scale = np.maximum(1.0, np.abs(v).max(axis=1, keepdims=True))
    err = np.abs(v @ S.T) / scale
    if np.any(err > tol):
        i, m = np.unravel_index(np.argmax(err), err.shape)
        raise NetworkError(
            f"net-flux sample {i} is not at steady state in the labelling network: metabolite "
            f"{stoich.metabolites[m]!r} is imbalanced by {err[i, m] * scale[i, 0]:.3g} "
            f"(map or lump the sampled model's reactions onto the labelling network's first)"
        )


def _xch_parameters(problem: LabelingProblem) -> tuple[np.ndarray, np.ndarray]:
    """Free exchange fluxes (indices into ``problem.reversible``) and the fixed values of all."""
    sp = problem.xch_space
    free = np.array([problem.reversible.index(r) for r in sp.free], dtype=int)
    dependent = np.setdiff1d(np.arange(len(problem.reversible)), free)
    coupled = [problem.reversible[j] for j in dependent if np.any(sp.K[j] != 0)]
    if coupled:
        raise NetworkError(
            f"exchange fluxes {coupled} are coupled to others by xch_equalities; scoring keeps "
            "the exchange-flux box simple, so fix them (fixed_xch) or drop the equalities"
        )
    return free, np.asarray(sp.v0, dtype=float)


def _lower_bounds(
    problem: LabelingProblem, xch_lower, n: int, sdim: str, coords: dict
) -> np.ndarray:
    """Lower bounds ``(sample, reversible reaction)``; 0 where a reaction has no bound."""
    rev = list(problem.reversible)
    lo = np.zeros((n, len(rev)))
    if xch_lower is None:
        return lo
    if isinstance(xch_lower, xr.DataArray):
        rdim = "reversible_reaction" if "reversible_reaction" in xch_lower.dims else "reaction"
        da, ldim, lcoords = _sample_frame(xch_lower.rename({rdim: "reaction"}), "xch_lower")
        if da.shape[0] != n:
            raise ValueError(f"xch_lower has {da.shape[0]} samples, net has {n}")
        if sdim in coords and ldim == sdim and sdim in lcoords:
            if not np.array_equal(lcoords[sdim], coords[sdim]):
                raise ValueError(f"xch_lower and net have different {sdim!r} coordinates")
        names = [str(r) for r in da["reaction"].values]
        unknown = [r for r in names if r not in rev]
        if unknown:
            raise NetworkError(
                f"xch_lower names {unknown}, which are not reversible reactions of the labelling "
                f"network (reversible: {rev})"
            )
        lo[:, [rev.index(r) for r in names]] = np.asarray(da.values, dtype=float)
    else:
        arr = np.asarray(xch_lower, dtype=float)
        if arr.shape != (n, len(rev)):
            raise ValueError(
                f"xch_lower has shape {arr.shape}, expected (samples, reversible reactions) = "
                f"({n}, {len(rev)}) in the order {rev}"
            )
        lo = arr.copy()
    for mask, what in ((np.isnan(lo), "is NaN"), (lo < 0, "is negative")):
        if np.any(mask):
            i, j = np.argwhere(mask)[0]
            raise ValueError(f"xch_lower of reaction {rev[j]!r} in sample {i} {what}")
    above = lo > problem.xch_max
    if np.any(above):
        i, j = np.argwhere(above)[0]
        raise InfeasibleError(
            f"xch_lower of reaction {rev[j]!r} in sample {i} is {lo[i, j]:.6g}, above "
            f"xch_max = {problem.xch_max:g} ({int(above.sum())} such entries); raise xch_max or "
            "check the ΔrG behind the bound"
        )
    return lo


# ---------------------------------------------------------------------------------------- solver
def _solver(problem: LabelingProblem, num_starts: int, num_iterations: int) -> Callable:
    """Jitted ``(keys, net, lo) -> (ssr, xch, hits)`` for a batch; cached on the problem (it lives
    and dies with it, like ``problem.compiled``)."""
    cache = vars(problem).setdefault("_scoring_solvers", {})
    key = (num_starts, num_iterations)
    if key in cache:
        return cache[key]
    free, v0 = _xch_parameters(problem)
    hi = problem.xch_max
    floor = _START_FLOOR * hi

    def full(x):
        return jnp.asarray(v0).at[free].set(x) if free.size else jnp.asarray(v0)

    def value_and_jac(net, x):
        f = lambda y: (r := problem.residuals_from_fluxes(net, full(y)), r)  # noqa: E731
        J, r = jax.jacfwd(f, has_aux=True)(x)
        return r, J

    def lm(net, lo, x0):
        """Projected Levenberg–Marquardt from ``x0`` in the box ``[lo, hi]``.

        Each scan step evaluates residuals and Jacobian at the trial point (the first one at
        ``x0``), accepts it if the SSR drops, and proposes the next trial, so the simulator
        and its Jacobian are traced (and compiled) once.
        """

        def step(state, _):
            x, r, J, ssr, lam, xt = state
            rt, Jt = value_and_jac(net, xt)
            st = jnp.sum(rt**2)
            st = jnp.where(jnp.isfinite(st), st, jnp.inf)
            ok = st < ssr
            x, r, J = jnp.where(ok, xt, x), jnp.where(ok, rt, r), jnp.where(ok, Jt, J)
            ssr = jnp.where(ok, st, ssr)
            lam = jnp.clip(jnp.where(ok, lam / _DOWN, lam * _UP), *_LAMBDA_RANGE)
            g = J.T @ r
            A = J.T @ J
            f = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))  # not held at a bound
            d = jnp.diag(A)
            damp = lam * (d + 1e-12 * (1.0 + jnp.max(d)))
            M = jnp.where(f[:, None] & f[None, :], A, 0.0) + jnp.diag(jnp.where(f, damp, 1.0))
            delta = jnp.linalg.solve(M, jnp.where(f, -g, 0.0))
            xt = jnp.clip(x + jnp.where(f, delta, 0.0), lo, hi)
            return (x, r, J, ssr, lam, xt), None

        m, p = problem.n_measurements, free.size
        state = (x0, jnp.zeros(m), jnp.zeros((m, p)), jnp.inf, _LAMBDA0 * _DOWN, x0)
        (x, _, _, ssr, _, _), _ = jax.lax.scan(step, state, None, length=num_iterations + 1)
        return ssr, x

    def one_sample(key, net, lo):
        if free.size == 0:
            r = problem.residuals_from_fluxes(net, full(jnp.zeros(0)))
            ssr = jnp.sum(r**2)
            return jnp.where(jnp.isfinite(ssr), ssr, jnp.inf), full(jnp.zeros(0)), jnp.asarray(1)
        a = jnp.log(jnp.maximum(lo, floor))
        u = jax.random.uniform(key, (num_starts, free.size))
        x0 = jnp.exp(a + u * (jnp.log(hi) - a))
        ssr, x = jax.vmap(lm, in_axes=(None, None, 0))(net, lo, x0)
        best = jnp.argmin(ssr)
        hits = jnp.sum(ssr <= ssr[best] * (1 + 1e-6) + 1e-9)
        return ssr[best], full(x[best]), hits

    def batch(keys, net, lo):
        return jax.vmap(one_sample)(keys, net, lo[:, free] if free.size else lo[:, :0])

    cache[key] = jax.jit(batch)
    return cache[key]


def score_net_fluxes(
    problem: LabelingProblem,
    net: xr.DataArray,
    *,
    xch_lower: xr.DataArray | np.ndarray | None = None,
    num_starts: int = 8,
    num_iterations: int = 200,
    seed: int = 0,
    batch_size: int = 256,
    balance_tol: float = 1e-6,
    progress: bool = False,
) -> xr.Dataset:
    """Score net-flux samples by fitting only the exchange fluxes to the 13C data (seed 002).

    Parameters
    ----------
    problem
        The labelling problem (network, experiments, measurements, ``xch_max``). Its free net
        fluxes and net-flux bounds play no role: the net fluxes are the samples.
    net
        Net-flux samples, dims ``(sample, reaction)``; the ``reaction`` coordinate must contain
        every reaction of the labelling network (others are ignored). Each sample must satisfy
        the labelling network's mass balances to ``balance_tol`` (relative to its largest flux).
    xch_lower
        Flux-force lower bounds on the exchange fluxes, ``(sample, reaction)`` over some of the
        reversible reactions (0 for the others), e.g. from
        :func:`~bayesflux.thermo.flux_force.least_conservative_bounds`; or an array
        ``(sample, reversible reaction)`` in the order of ``problem.reversible``.
    num_starts, num_iterations
        Random starts per sample (log-uniform in the box) and Levenberg–Marquardt iterations per
        start (seed 002 used 50 and 200 with 13CFlux2).
    seed
        Starts of sample ``i`` come from ``fold_in(PRNGKey(seed), i)``: results do not depend on
        ``batch_size``.
    batch_size
        Samples per compiled call (the last batch is padded, so one compilation serves all).
    balance_tol
        Largest ``|S v|`` allowed, relative to ``max(1, max_j |v_j|)`` of the sample.
    progress
        Show a progress bar over batches.

    Returns
    -------
    xarray.Dataset
        ``residual`` (SSR, sample), ``xch`` and ``xch_lower`` (sample, reversible_reaction),
        ``passed`` (SSR in the central 95% chi2 range), ``rank`` (1 = lowest SSR; non-finite
        last), ``hits`` (starts that reached the best SSR, a check of global convergence);
        attrs ``dof``, ``chi2_lower``, ``chi2_upper`` and the solver settings.
    """
    if num_starts < 1 or num_iterations < 1 or batch_size < 1:
        raise ValueError("num_starts, num_iterations and batch_size must be at least 1")
    v, sdim, coords = _select_net(problem, net)
    _check_balance(problem, v, balance_tol)
    n = v.shape[0]
    lo = _lower_bounds(problem, xch_lower, n, sdim, coords)
    free, v0 = _xch_parameters(problem)
    fixed = np.setdiff1d(np.arange(len(problem.reversible)), free)
    bad = lo[:, fixed] > v0[fixed] + 1e-12
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        r = problem.reversible[fixed[j]]
        raise InfeasibleError(
            f"xch_lower of reaction {r!r} in sample {i} ({lo[i, fixed[j]]:.6g}) is above its "
            f"fixed exchange flux {v0[fixed[j]]:.6g}"
        )
    solve = _solver(problem, int(num_starts), int(num_iterations))
    base = jax.random.PRNGKey(seed)
    size = min(int(batch_size), n)
    ssr, xch, hits = np.empty(n), np.empty((n, len(problem.reversible))), np.empty(n, int)
    starts = range(0, n, size)
    for s in progress_bar(starts, desc="13C scoring", disable=not progress):
        idx = np.arange(s, s + size)
        take = np.minimum(idx, n - 1)  # pad the last batch by repeating its last sample
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(idx))
        out = solve(keys, jnp.asarray(v[take]), jnp.asarray(lo[take]))
        m = min(size, n - s)
        ssr[s : s + m] = np.asarray(out[0])[:m]
        xch[s : s + m] = np.asarray(out[1])[:m]
        hits[s : s + m] = np.asarray(out[2])[:m]
    dof = problem.n_measurements - free.size - problem.n_scale
    lo_chi, hi_chi = scipy.stats.chi2.ppf([0.025, 0.975], dof) if dof > 0 else (0.0, 0.0)
    finite = np.isfinite(ssr)
    ssr = np.where(finite, ssr, np.nan)
    order = np.argsort(np.where(finite, ssr, np.inf), kind="stable")
    rank = np.empty(n, int)
    rank[order] = np.arange(1, n + 1)
    rev = list(problem.reversible)
    ds = xr.Dataset(
        {
            "residual": (sdim, ssr),
            "xch": ((sdim, "reversible_reaction"), xch),
            "xch_lower": ((sdim, "reversible_reaction"), lo),
            "passed": (sdim, finite & (ssr >= lo_chi) & (ssr <= hi_chi) & (dof > 0)),
            "rank": (sdim, rank),
            "hits": (sdim, hits),
        },
        coords={**coords, "reversible_reaction": rev},
    )
    ds["residual"].attrs.update(long_name="weighted sum of squared residuals (SSR)")
    ds["xch"].attrs.update(long_name="fitted exchange flux v_xch = min(v+, v-)")
    ds["xch_lower"].attrs.update(formula="|v_net| / (exp(|ΔrG|/RT) - 1) (0 = unbounded)")
    ds.attrs.update(
        dof=int(dof),
        chi2_lower=float(lo_chi),
        chi2_upper=float(hi_chi),
        n_measurements=int(problem.n_measurements),
        n_free_xch=int(free.size),
        xch_max=problem.xch_max,
        num_starts=int(num_starts),
        num_iterations=int(num_iterations),
        seed=int(seed),
        method="projected Levenberg-Marquardt over exchange fluxes, net fluxes fixed",
        reference="seed 002: scoring net-flux samples by 13C fits",
    )
    return ds


# ------------------------------------------------------------------------------------ statistics
def _samples_matrix(samples) -> tuple[np.ndarray, np.ndarray]:
    """``(sample, reaction)`` values and reaction ids (0, 1, ... for a bare array)."""
    if isinstance(samples, xr.DataArray):
        da, _, _ = _sample_frame(samples, "samples")
        ids = da["reaction"].values if "reaction" in da.coords else np.arange(da.shape[1])
        x = np.asarray(da.values, dtype=float)
    else:
        x = np.asarray(samples, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"samples must be 2-D (sample, reaction), got shape {x.shape}")
        ids = np.arange(x.shape[1])
    if not np.all(np.isfinite(x)):
        j = int(np.argwhere(~np.isfinite(x))[0, 1])
        raise ValueError(f"samples of reaction {ids[j]!r} are not all finite")
    return x, ids


def _indices(selected, n: int, name: str) -> np.ndarray:
    """Boolean mask (length ``n``) or integer positions -> unique sorted positions."""
    s = np.asarray(selected.values if isinstance(selected, xr.DataArray) else selected)
    if s.dtype == bool:
        if s.shape != (n,):
            raise ValueError(f"{name} is a mask of shape {s.shape}, expected ({n},)")
        idx = np.flatnonzero(s)
    else:
        if s.ndim != 1 or not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"{name} must be a boolean mask or integer sample positions")
        if np.any((s < 0) | (s >= n)):
            raise ValueError(f"{name} has positions outside [0, {n})")
        idx = np.unique(s)
        if idx.size != s.size:
            raise ValueError(f"{name} repeats sample positions")
    if not 2 <= idx.size <= n:
        raise ValueError(f"{name} selects {idx.size} samples; need between 2 and {n}")
    return idx


def _random_subsets(rng: np.random.Generator, count: int, n: int, k: int) -> np.ndarray:
    """``count`` uniform random ``k``-subsets of ``range(n)``: the ``k`` smallest of iid keys."""
    keys = rng.random((count, n))
    return np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n else np.argsort(keys, axis=1)


def _check_level(level: float, n_null: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_null < 1:
        raise ValueError(f"n_null must be at least 1, got {n_null}")


def _median_iqr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and interquartile range over axis -2 (numpy's linear quantiles)."""
    q = np.quantile(x, [0.25, 0.5, 0.75], axis=-2)
    return q[1], q[2] - q[0]


def _empirical_p(obs: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Two-sided ``(1 + #{null at least as extreme on obs's side}) / (1 + n_null)``, doubled."""
    below = (1 + np.sum(null <= obs, axis=0)) / (1 + null.shape[0])
    above = (1 + np.sum(null >= obs, axis=0)) / (1 + null.shape[0])
    return np.minimum(1.0, 2 * np.minimum(below, above))


def subset_shift(
    samples: xr.DataArray | np.ndarray,
    selected,
    *,
    n_null: int = 10000,
    level: float = 1e-4,
    seed: int = 0,
) -> xr.Dataset:
    """Per-reaction test of a shifted median or IQR in a selected subset (seed 002).

    The null distributions of the median and interquartile range of each flux come from
    ``n_null`` uniform random subsets (without replacement) of the same size as ``selected``;
    a reaction is flagged when the selected subset's statistic lies outside the
    ``[level/2, 1 - level/2]`` quantiles of its null (seed 002: 10000 subsets of 200 of 1000
    samples, the 0.01% and 99.99% percentiles).

    Parameters
    ----------
    samples
        Flux samples ``(sample, reaction)``.
    selected
        Boolean mask over samples or integer sample positions (e.g. :func:`best_fraction`).
    n_null, level, seed
        Null subsets, two-sided level of each test, RNG seed.

    Returns
    -------
    xarray.Dataset
        Over ``reaction``: ``median``, ``iqr`` of the subset, null quantile bounds
        ``median_lower``/``median_upper``/``iqr_lower``/``iqr_upper``, flags ``median_shift``,
        ``iqr_shift`` and empirical two-sided p-values ``median_pvalue``, ``iqr_pvalue``.
    """
    _check_level(level, n_null)
    x, ids = _samples_matrix(samples)
    n, nr = x.shape
    idx = _indices(selected, n, "selected")
    k = idx.size
    obs_med, obs_iqr = _median_iqr(x[idx])
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // (k * nr))
    med, iqr = np.empty((n_null, nr)), np.empty((n_null, nr))
    for s in range(0, n_null, chunk):
        c = min(chunk, n_null - s)
        med[s : s + c], iqr[s : s + c] = _median_iqr(x[_random_subsets(rng, c, n, k)])
    q = [level / 2, 1 - level / 2]
    mlo, mhi = np.quantile(med, q, axis=0)
    ilo, ihi = np.quantile(iqr, q, axis=0)
    ds = xr.Dataset(
        {
            "median": ("reaction", obs_med),
            "iqr": ("reaction", obs_iqr),
            "median_lower": ("reaction", mlo),
            "median_upper": ("reaction", mhi),
            "iqr_lower": ("reaction", ilo),
            "iqr_upper": ("reaction", ihi),
            "median_shift": ("reaction", (obs_med < mlo) | (obs_med > mhi)),
            "iqr_shift": ("reaction", (obs_iqr < ilo) | (obs_iqr > ihi)),
            "median_pvalue": ("reaction", _empirical_p(obs_med, med)),
            "iqr_pvalue": ("reaction", _empirical_p(obs_iqr, iqr)),
        },
        coords={"reaction": ids},
    )
    ds.attrs.update(
        n_null=int(n_null),
        level=float(level),
        subset_size=int(k),
        n_samples=int(n),
        seed=int(seed),
        reference="seed 002: medians and IQRs of random subsets as null distributions",
    )
    return ds


def _ks_statistic(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Two-sample KS statistic ``sup_t |F_a(t) - F_b(t)|`` over axis -2, ties handled.

    The pooled values are sorted with weights ``+1/m`` (a) and ``-1/n`` (b); the running sum is
    ``F_a - F_b`` and is read at the last element of each group of equal values.
    """
    m, n = xa.shape[-2], xb.shape[-2]
    z = np.concatenate([xa, xb], axis=-2)
    w = np.concatenate([np.full(xa.shape, 1.0 / m), np.full(xb.shape, -1.0 / n)], axis=-2)
    order = np.argsort(z, axis=-2, kind="stable")
    zs = np.take_along_axis(z, order, axis=-2)
    diff = np.cumsum(np.take_along_axis(w, order, axis=-2), axis=-2)
    last = np.ones(zs.shape, dtype=bool)
    last[..., :-1, :] = zs[..., 1:, :] != zs[..., :-1, :]
    return np.max(np.where(last, np.abs(diff), 0.0), axis=-2)


def ks_shift(
    samples: xr.DataArray | np.ndarray,
    a,
    b,
    *,
    n_null: int = 10000,
    level: float = 1e-4,
    seed: int = 0,
) -> xr.Dataset:
    """Per-reaction KS comparison of two selected subsets against random pairs (seed 002).

    The two-sample Kolmogorov–Smirnov statistic between the subsets ``a`` and ``b`` (e.g. the
    best 20% with and without flux-force bounds, which may overlap) is compared with its null
    distribution over ``n_null`` pairs of independent uniform random subsets of the same sizes;
    a reaction is flagged when the statistic exceeds the ``1 - level`` null quantile (one-sided:
    only a large KS statistic signals a difference; seed 002 used the 99.99% percentile).

    Returns
    -------
    xarray.Dataset
        Over ``reaction``: ``ks`` (observed), ``ks_upper`` (null quantile), ``ks_shift`` (flag),
        ``ks_pvalue`` (``(1 + #{null >= ks}) / (1 + n_null)``).
    """
    _check_level(level, n_null)
    x, ids = _samples_matrix(samples)
    n, nr = x.shape
    ia, ib = _indices(a, n, "a"), _indices(b, n, "b")
    obs = _ks_statistic(x[ia], x[ib])
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // (4 * (ia.size + ib.size) * nr))
    null = np.empty((n_null, nr))
    for s in range(0, n_null, chunk):
        c = min(chunk, n_null - s)
        pa = x[_random_subsets(rng, c, n, ia.size)]
        pb = x[_random_subsets(rng, c, n, ib.size)]
        null[s : s + c] = _ks_statistic(pa, pb)
    upper = np.quantile(null, 1 - level, axis=0)
    ds = xr.Dataset(
        {
            "ks": ("reaction", obs),
            "ks_upper": ("reaction", upper),
            "ks_shift": ("reaction", obs > upper),
            "ks_pvalue": ("reaction", (1 + np.sum(null >= obs - 1e-12, axis=0)) / (1 + n_null)),
        },
        coords={"reaction": ids},
    )
    ds.attrs.update(
        n_null=int(n_null),
        level=float(level),
        size_a=int(ia.size),
        size_b=int(ib.size),
        n_samples=int(n),
        seed=int(seed),
        reference="seed 002: KS statistics of random subset pairs as null distribution",
    )
    return ds


def best_fraction(scores: xr.DataArray | np.ndarray, fraction: float = 0.2):
    """Mask of the ``round(fraction * n)`` lowest scores (seed 002: the best-fitting 20%).

    Ties keep the earlier sample; non-finite scores are never selected. Returns a boolean
    DataArray with the coordinates of ``scores`` (or a numpy array for an array).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    s = np.asarray(scores.values if isinstance(scores, xr.DataArray) else scores, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D (one per sample), got shape {s.shape}")
    k = max(1, int(np.floor(fraction * s.size + 0.5)))
    finite = np.isfinite(s)
    order = np.argsort(np.where(finite, s, np.inf), kind="stable")[:k]
    mask = np.zeros(s.size, dtype=bool)
    mask[order[finite[order]]] = True
    if isinstance(scores, xr.DataArray):
        return scores.copy(data=mask).rename("best_fraction")
    return mask
