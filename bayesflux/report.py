"""The report of a flux posterior: a forest plot, observed vs predicted, rank plots, a summary.

Inputs are the ArviZ DataTrees of :meth:`bayesflux.models.FluxPosterior.sample` (``posterior``
with ``flux`` over ``reaction`` and latent scalars, ``observed_data``, ``constant_data``, ...) or
of :func:`bayesflux.sampling.sample_fluxes` (``posterior/flux`` and ``sample_stats`` only).

* :func:`flux_summary` — per reaction: mean, sd, median, credible interval, rank-normalised
  split R-hat, bulk and tail ESS (Vehtari et al. 2021, *Bayesian Analysis* 16(2), via
  ``arviz_stats``);
* :func:`flux_forest` — medians with 50% and ``ci_prob`` interval bars of the most variable
  reactions;
* :func:`observed_vs_predicted` — measured MIDs with their sd next to the posterior predictive
  median and credible interval, one row per measurement label;
* :func:`rank_plot` — rank histograms per chain (Vehtari et al. 2021, Sec. 4.1) of the variables
  with the worst R-hat: for well-mixed chains every histogram is flat;
* :func:`write_report` — the PNGs that apply and ``summary.csv``, written atomically.

Credible intervals follow ArviZ: ``ci_kind`` (``"eti"``, equal-tailed, or ``"hdi"``) and
``ci_prob`` default to ``arviz_base.rcParams["stats.ci_kind"]`` and ``["stats.ci_prob"]`` (ETI
and 0.89 out of the box), and the summary's bounds are ``az.summary``'s numbers and column names
(``eti89_lb``, ``eti89_ub``).

Figures are :class:`matplotlib.figure.Figure` objects drawn with the Agg canvas, without pyplot,
so nothing is shown and the user's matplotlib backend is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.results import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["flux_forest", "flux_summary", "observed_vs_predicted", "rank_plot", "write_report"]

#: colours of the Okabe-Ito palette (readable with colour-vision deficiencies)
_BLUE, _ORANGE, _GREEN, _VERMILION, _GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#555555"
_SAMPLE_DIMS = ("chain", "draw")


# ---------------------------------------------------------------------------------------------
# inputs


def _group(tree: xr.DataTree, name: str) -> xr.Dataset | None:
    """A group of ``tree`` as a Dataset, ``None`` where it is absent or empty."""
    if not isinstance(tree, xr.DataTree):
        raise ConfigError(f"a report needs an xarray.DataTree of ArviZ groups, got {type(tree)}")
    if name not in tree.children:
        return None
    ds = tree[name].to_dataset()
    return ds if ds.data_vars else None


def _flux(tree: xr.DataTree) -> xr.DataArray:
    """``posterior/flux`` as (chain, draw, reaction), checked."""
    post = _group(tree, "posterior")
    if post is None or "flux" not in post:
        raise ConfigError("the DataTree has no posterior/flux variable to report on")
    flux = post["flux"]
    if set(flux.dims) != {"chain", "draw", "reaction"}:
        raise ConfigError(f"posterior/flux needs dims (chain, draw, reaction), got {flux.dims}")
    return flux.transpose("chain", "draw", "reaction")


def _latents(tree: xr.DataTree) -> dict[str, xr.DataArray]:
    """Scalar posterior variables other than ``flux`` (latents), each over (chain, draw)."""
    post = _group(tree, "posterior")
    if post is None:
        return {}
    return {
        str(k): v.transpose(*_SAMPLE_DIMS)
        for k, v in post.data_vars.items()
        if k != "flux" and set(v.dims) == set(_SAMPLE_DIMS)
    }


def _reaction_ids(flux: xr.DataArray) -> list[str]:
    return [str(r) for r in flux["reaction"].values]


def _check_reactions(reactions: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    reactions = [str(r) for r in reactions]
    unknown = [r for r in reactions if r not in set(known)]
    if unknown:
        raise ConfigError(f"{what}: unknown reaction(s) {unknown[:10]} (not in posterior/flux)")
    if not reactions:
        raise ConfigError(f"{what}: no reaction selected")
    return reactions


def _interval(ci_prob: float | None, ci_kind: str | None) -> tuple[float, str]:
    """``(ci_prob, ci_kind)`` checked, ArviZ's rcParams where ``None`` (as ``az.summary``)."""
    from arviz_base import rcParams

    prob = float(rcParams["stats.ci_prob"] if ci_prob is None else ci_prob)
    kind = str(rcParams["stats.ci_kind"] if ci_kind is None else ci_kind)
    if not 0 < prob < 1:
        raise ConfigError(f"the credible interval probability must lie in (0, 1), got {prob}")
    if kind not in ("eti", "hdi"):
        raise ConfigError(f"ci_kind must be 'eti' or 'hdi', got {kind!r}")
    return prob, kind


def _inner_prob(prob: float) -> float:
    """The inner interval of a forest (ArviZ's ``plot_forest``): 50%, or half of ``prob``."""
    return 0.5 if prob > 0.5 else 0.5 * prob


def _ci(da: xr.DataArray, prob: float, kind: str) -> xr.DataArray:
    """The ``kind`` interval over (chain, draw), with a ``ci_bound`` ('lower', 'upper') dim."""
    import arviz_stats

    fn = arviz_stats.eti if kind == "eti" else arviz_stats.hdi
    return fn(da, prob=prob, dim=list(_SAMPLE_DIMS))


def _ci_label(prob: float, kind: str) -> str:
    return f"{prob:.0%} {kind.upper()}"


def _new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure on the Agg canvas (never shown, backend untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend(ax: Axes, own_figure: bool, *, ncol: int) -> None:
    """A legend under the axes (outside, so it hides no data) or, on a caller's axes, inside."""
    if own_figure:
        handles, labels = ax.get_legend_handles_labels()
        ax.figure.legend(
            handles, labels, loc="outside lower center", ncol=ncol, fontsize="small", frameon=False
        )
    else:
        ax.legend(fontsize="small")


def _rows_height(n: int) -> float:
    """Figure height (inches) for ``n`` labelled rows: 0.28 in per row plus room for axes text."""
    return min(1.4 + 0.28 * n, 60.0)


# ---------------------------------------------------------------------------------------------
# summary


def flux_summary(
    tree: xr.DataTree, *, ci_prob: float | None = None, ci_kind: str | None = None
) -> xr.Dataset:
    """Posterior summary per reaction, as a Dataset over ``reaction``.

    Variables: ``mean``, ``sd`` (``ddof=1``), ``median``, the credible interval of the pooled
    draws as ``az.summary`` names and computes it (``{ci_kind}{int(100 ci_prob)}_lb`` and
    ``_ub``, e.g. ``eti89_lb``; ``ci_prob`` and ``ci_kind`` default to ArviZ's rcParams),
    ``r_hat`` (rank-normalised split R-hat) and ``ess_bulk``/``ess_tail`` (Vehtari et al. 2021,
    computed by ``arviz_stats``). A reaction whose draws are all equal has an undefined (NaN)
    ``r_hat``; with one chain ``r_hat`` is NaN too. ``attrs`` record ``ci_prob`` and ``ci_kind``.
    """
    import arviz_stats

    prob, kind = _interval(ci_prob, ci_kind)
    flux = _flux(tree)
    ci = _ci(flux, prob, kind)
    name = f"{kind}{int(prob * 100)}"  # az.summary's column names
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws: R-hat NaN, by design
        r_hat = arviz_stats.rhat(flux)
    out = xr.Dataset(
        {
            "mean": flux.mean(_SAMPLE_DIMS),
            "sd": flux.std(_SAMPLE_DIMS, ddof=1),
            "median": flux.median(_SAMPLE_DIMS),
            f"{name}_lb": ci.sel(ci_bound="lower", drop=True),
            f"{name}_ub": ci.sel(ci_bound="upper", drop=True),
            "r_hat": r_hat,
            "ess_bulk": arviz_stats.ess(flux, method="bulk"),
            "ess_tail": arviz_stats.ess(flux, method="tail"),
        },
        attrs={"ci_prob": prob, "ci_kind": kind},
    )
    return out.drop_vars([c for c in out.coords if c != "reaction"])


# ---------------------------------------------------------------------------------------------
# forest


def _as_truth(truth: Any, known: Sequence[str]) -> dict[str, float]:
    """``truth`` (Series, DataArray over ``reaction`` or mapping) as ``{reaction: value}``."""
    if isinstance(truth, xr.DataArray):
        if truth.dims != ("reaction",):
            raise ConfigError(f"truth needs the single dim 'reaction', got {truth.dims}")
        items = zip(truth["reaction"].values, truth.values)
    elif hasattr(truth, "items"):  # pandas Series or a mapping
        items = truth.items()
    else:
        raise ConfigError(f"truth must be a Series, DataArray or mapping, got {type(truth)}")
    values = {str(k): float(v) for k, v in items}
    _check_reactions(list(values), known, "truth")
    return values


def _sd(tree: xr.DataTree, obs: xr.Dataset, name: str) -> xr.DataArray | None:
    """The standard deviations of observed variable ``name``: ``{name}_sd`` in
    ``observed_data`` or in ``constant_data`` (where :mod:`bayesflux.infer` writes them)."""
    if f"{name}_sd" in obs:
        return obs[f"{name}_sd"]
    const = _group(tree, "constant_data")
    return const[f"{name}_sd"] if const is not None and f"{name}_sd" in const else None


def _observed_fluxes(tree: xr.DataTree) -> dict[str, tuple[float, float]]:
    """Measured fluxes in ``observed_data``: variables over ``measured_reaction`` with an sd."""
    obs = _group(tree, "observed_data")
    out: dict[str, tuple[float, float]] = {}
    if obs is None:
        return out
    for name, da in obs.data_vars.items():
        sd = _sd(tree, obs, str(name))
        if da.dims != ("measured_reaction",) or sd is None:
            continue
        for r, y, s in zip(da["measured_reaction"].values, da.values, sd.values):
            out[str(r)] = (float(y), float(s))
    return out


def flux_forest(
    tree: xr.DataTree,
    *,
    reactions: Sequence[str] | None = None,
    ci_prob: float | None = None,
    ci_kind: str | None = None,
    truth: Any = None,
    max_reactions: int = 30,
    observed: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Forest plot of flux posteriors: median, 50% (thick) and ``ci_prob`` (thin) intervals.

    Parameters
    ----------
    tree
        DataTree with ``posterior/flux`` (chain, draw, reaction); chains are pooled.
    reactions
        Reactions to show, top to bottom. Default: the ``max_reactions`` with the largest
        posterior sd, in network order.
    ci_prob, ci_kind
        Probability and kind (``"eti"`` or ``"hdi"``) of the outer interval, by default ArviZ's
        rcParams; the inner one holds 50% (half of ``ci_prob`` where that is at most 50%), as in
        ``az.plot_forest``.
    truth
        Known fluxes (Series, DataArray over ``reaction`` or mapping), drawn as diamonds labelled
        ``"truth"``; reactions not shown are ignored, unknown reactions raise.
    max_reactions
        How many reactions the default selection keeps.
    observed
        Also draw measured fluxes of ``observed_data`` (value ± sd, labelled ``"measured"``).
    ax
        Axes to draw into; default a new figure sized to the number of reactions.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ConfigError
        An unknown reaction in ``reactions`` or ``truth``, or a tree without ``posterior/flux``.
    """
    prob, kind = _interval(ci_prob, ci_kind)
    flux = _flux(tree)
    known = _reaction_ids(flux)
    if reactions is None:
        if max_reactions < 1:
            raise ConfigError(f"max_reactions must be >= 1, got {max_reactions}")
        sd = flux.std(_SAMPLE_DIMS).values
        keep = np.sort(np.argsort(-np.nan_to_num(sd, nan=-1.0), kind="stable")[:max_reactions])
        reactions = [known[i] for i in keep]
    else:
        reactions = _check_reactions(reactions, known, "flux_forest(reactions=...)")
    truth_values = _as_truth(truth, known) if truth is not None else {}
    sel = flux.sel(reaction=reactions)
    inner_prob = _inner_prob(prob)
    outer, inner = _ci(sel, prob, kind).values, _ci(sel, inner_prob, kind).values
    median = sel.median(_SAMPLE_DIMS).values

    own_figure = ax is None
    if ax is None:
        ax = _new_figure(6.4, _rows_height(len(reactions))).add_subplot()
    y = np.arange(len(reactions))[::-1].astype(float)  # first reaction on top
    ax.axvline(0.0, color=_GREY, lw=0.8, ls=":", zorder=0)
    ax.hlines(y, outer[:, 0], outer[:, 1], color=_BLUE, lw=1.4, label=_ci_label(prob, kind))
    ax.hlines(y, inner[:, 0], inner[:, 1], color=_BLUE, lw=4.5, label=_ci_label(inner_prob, kind))
    ax.scatter(median, y, s=30, color="white", edgecolor=_BLUE, zorder=3, label="median")
    measured = _observed_fluxes(tree) if observed else {}
    rows = [(yi, measured[r]) for yi, r in zip(y, reactions) if r in measured]
    if rows:
        ym = np.array([yi for yi, _ in rows]) - 0.25
        ax.errorbar(
            [m for _, (m, _) in rows],
            ym,
            xerr=[s for _, (_, s) in rows],
            fmt="s",
            ms=4,
            color=_GREEN,
            capsize=2,
            lw=1,
            label="measured ± sd",
        )
    shown = [(yi, truth_values[r]) for yi, r in zip(y, reactions) if r in truth_values]
    if shown:
        ax.scatter(
            [v for _, v in shown],
            [yi for yi, _ in shown],
            marker="D",
            s=28,
            color=_VERMILION,
            zorder=4,
            label="truth",
        )
    ax.set_yticks(y, reactions)
    ax.set_ylim(-0.7, len(reactions) - 0.3)
    # a few huge intervals (a loop at its bounds) would squash all others into one column: then
    # switch to a symmetric log axis, linear within the typical half-width
    half = 0.5 * (outer[:, 1] - outer[:, 0])
    typical = float(np.median(np.abs(median) + half))
    if typical > 0 and float(np.max(np.abs(outer))) > 20 * typical:
        ax.set_xscale("symlog", linthresh=typical, linscale=2.0)
    ax.set_xlabel("flux")
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    subset = "" if len(reactions) == len(known) else f", {len(reactions)} of {len(known)} reactions"
    ax.set_title(
        f"Flux posterior ({flux.sizes['chain']} chains × {flux.sizes['draw']} draws{subset})"
    )
    _legend(ax, own_figure, ncol=5)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# observed vs predicted


def _observed_measurements(tree: xr.DataTree, variable: str | None) -> tuple[str, xr.Dataset]:
    """The observed variable over ``measurement`` (and its ``_sd``) chosen for the plot."""
    obs = _group(tree, "observed_data")
    names = []
    if obs is not None:
        names = [
            str(k)
            for k, v in obs.data_vars.items()
            if v.dims == ("measurement",) and not str(k).endswith("_sd")
        ]
    if variable is not None:
        if variable not in names:
            raise ConfigError(
                f"observed_data has no variable {variable!r} over 'measurement' (found {names})"
            )
        names = [variable]
    if not names:
        raise ConfigError("observed_data holds no labelling measurements (dim 'measurement')")
    if len(names) > 1:
        raise ConfigError(f"several measured variables {names}: choose one with variable=")
    name = names[0]
    sd = _sd(tree, obs, name)
    sd = xr.zeros_like(obs[name]) if sd is None else sd
    return name, xr.Dataset({"value": obs[name], "sd": sd})


def _predictions(tree: xr.DataTree, predictions: xr.DataArray | None, name: str) -> xr.DataArray:
    if predictions is None:
        pp = _group(tree, "posterior_predictive")
        if pp is None or name not in pp:
            raise ConfigError(
                f"no predictions given and no posterior_predictive/{name} in the DataTree"
            )
        predictions = pp[name]
    if not isinstance(predictions, xr.DataArray):
        raise ConfigError(f"predictions must be an xarray.DataArray, got {type(predictions)}")
    if set(predictions.dims) != {"chain", "draw", "measurement"}:
        raise ConfigError(
            f"predictions need dims (chain, draw, measurement), got {predictions.dims}"
        )
    return predictions.transpose("chain", "draw", "measurement")


def _align(pred: xr.DataArray, labels: list[str]) -> xr.DataArray:
    """Predictions in the order of the observed measurement labels."""
    if "measurement" not in pred.coords:
        if pred.sizes["measurement"] != len(labels):
            raise ConfigError(
                f"predictions have {pred.sizes['measurement']} measurements, the data "
                f"{len(labels)}; give them a 'measurement' coordinate or the same length"
            )
        return pred.assign_coords(measurement=labels)
    have = {str(m) for m in pred["measurement"].values}
    missing = [m for m in labels if m not in have]
    if missing:
        raise ConfigError(f"predictions lack measurement(s) {missing[:10]}")
    return pred.assign_coords(measurement=[str(m) for m in pred["measurement"].values]).sel(
        measurement=labels
    )


def observed_vs_predicted(
    tree: xr.DataTree,
    predictions: xr.DataArray | None = None,
    *,
    variable: str | None = None,
    ci_prob: float | None = None,
    ci_kind: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Measured values (± sd) next to the posterior predictive median and credible interval.

    One row per measurement label (``experiment:fragment:M+k``, ``experiment:FE:met#p``,
    ``flux:reaction``, see :meth:`~bayesflux.labeling.LabelingProblem.labels`). A measurement
    whose sd bar does not reach the predictive interval is a misfit worth a look.

    Parameters
    ----------
    tree
        DataTree with ``observed_data/<variable>`` (and ``<variable>_sd``) over ``measurement``.
    predictions
        Posterior predictive draws (chain, draw, measurement), aligned by the ``measurement``
        coordinate where it has one. Default: ``posterior_predictive/<variable>`` of ``tree``.
    variable
        The observed variable; needed only where ``observed_data`` holds several.
    ci_prob, ci_kind
        Probability and kind (``"eti"`` or ``"hdi"``) of the predictive interval, by default
        ArviZ's rcParams.
    ax
        Axes to draw into; default a new figure sized to the number of measurements.

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob, kind = _interval(ci_prob, ci_kind)
    name, obs = _observed_measurements(tree, variable)
    labels = [str(m) for m in obs["measurement"].values]
    pred = _align(_predictions(tree, predictions, name), labels)
    interval = _ci(pred, prob, kind).values
    median = pred.median(_SAMPLE_DIMS).values

    own_figure = ax is None
    if ax is None:
        ax = _new_figure(6.4, _rows_height(len(labels))).add_subplot()
    y = np.arange(len(labels))[::-1].astype(float)
    label = f"predicted {_ci_label(prob, kind)}"
    ax.hlines(y - 0.15, interval[:, 0], interval[:, 1], color=_BLUE, lw=3, label=label)
    ax.scatter(
        median, y - 0.15, s=22, color="white", edgecolor=_BLUE, zorder=3, label="predicted median"
    )
    ax.errorbar(
        obs["value"].values,
        y + 0.15,
        xerr=obs["sd"].values,
        fmt="o",
        ms=4,
        color=_ORANGE,
        capsize=2,
        lw=1,
        label="measured ± sd",
    )
    ax.set_yticks(y, labels, fontsize="small" if len(labels) > 25 else "medium")
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel(f"{name} (measured and predicted)")
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_title(f"Observed vs posterior predictive: {name}")
    _legend(ax, own_figure, ncol=3)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# rank plot


def _scalar_variables(tree: xr.DataTree) -> dict[str, np.ndarray]:
    """Every flux (by reaction id) and latent as a (chain, draw) array."""
    flux = _flux(tree)
    values = flux.values
    out = {r: values[..., j] for j, r in enumerate(_reaction_ids(flux))}
    for name, da in _latents(tree).items():
        out.setdefault(name, da.values)
    return out


def _rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of one (chain, draw) array (NaN when undefined)."""
    import arviz_stats

    with np.errstate(invalid="ignore", divide="ignore"):
        return float(arviz_stats.rhat(xr.DataArray(x, dims=_SAMPLE_DIMS)))


def rank_plot(
    tree: xr.DataTree,
    *,
    var_names: Sequence[str] | None = None,
    max_vars: int = 6,
    bins: int = 20,
    ncols: int = 3,
) -> Figure:
    """Rank histograms per chain for the fluxes and latents with the worst R-hat.

    All draws of a variable are ranked together; each chain's ranks are binned. If the chains
    sample the same distribution, every chain's histogram is flat around ``draws / bins``
    (dashed line); a chain stuck in one region piles up at high or low ranks (Vehtari et al.
    2021, *Bayesian Analysis* 16(2), Sec. 4.1 — the ArviZ rank plot).

    Parameters
    ----------
    tree
        DataTree with ``posterior/flux`` and optionally latent scalars, at least 2 chains.
    var_names
        Reaction ids or latent names to show. Default: the ``max_vars`` with the largest
        R-hat (variables with constant draws, whose R-hat is undefined, come last).
    max_vars, bins, ncols
        Panels in the default selection, histogram bins, panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ConfigError
        Fewer than 2 chains, or an unknown variable name.
    """
    from scipy.stats import rankdata

    variables = _scalar_variables(tree)
    n_chains, n_draws = next(iter(variables.values())).shape
    if n_chains < 2:
        raise ConfigError(f"a rank plot compares chains; the posterior has {n_chains}")
    if bins < 2:
        raise ConfigError(f"bins must be >= 2, got {bins}")
    rhat = {k: _rhat(v) for k, v in variables.items()}
    if var_names is None:
        if max_vars < 1:
            raise ConfigError(f"max_vars must be >= 1, got {max_vars}")
        order = sorted(variables, key=lambda k: -rhat[k] if np.isfinite(rhat[k]) else np.inf)
        var_names = order[:max_vars]
    else:
        var_names = [str(v) for v in var_names]
        unknown = [v for v in var_names if v not in variables]
        if unknown:
            raise ConfigError(
                f"rank_plot(var_names=...): unknown reaction(s) or latent(s) {unknown[:10]}"
            )
        if not var_names:
            raise ConfigError("rank_plot(var_names=...): no variable selected")
    ncols = max(1, min(ncols, len(var_names)))
    nrows = -(-len(var_names) // ncols)
    fig = _new_figure(3.2 * ncols, 0.45 * n_chains * nrows + 1.1 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    edges = np.linspace(0.5, n_chains * n_draws + 0.5, bins + 1)
    expected = n_draws / bins
    colours = [_BLUE, _ORANGE, _GREEN, _VERMILION, "#CC79A7", "#56B4E9", "#F0E442", _GREY]
    for ax, name in zip(axes, var_names):
        ranks = rankdata(variables[name], axis=None).reshape(n_chains, n_draws)
        for c in range(n_chains):
            counts, _ = np.histogram(ranks[c], bins=edges)
            # each chain on its own baseline c; heights scaled so `expected` spans 0.4 of a row
            ax.stairs(
                c + 0.4 * counts / expected,
                edges,
                baseline=c,
                fill=True,
                color=colours[c % len(colours)],
                alpha=0.85,
                label=f"chain {c}",
            )
            ax.axhline(c, color="0.6", lw=0.6)
            ax.axhline(c + 0.4, color="black", lw=0.7, ls="--")
        value = rhat[name]
        ax.set_title(
            f"{name}   R̂ = {value:.3f}" if np.isfinite(value) else f"{name}   R̂ = n/a",
            fontsize="medium",
        )
        ax.set_yticks(np.arange(n_chains) + 0.4, [str(c) for c in range(n_chains)])
        ax.set_ylim(0, n_chains)
        ax.set_xlim(edges[0], edges[-1])
        ax.tick_params(axis="x", labelsize="small")
    for ax in axes[len(var_names) :]:
        ax.set_visible(False)
    for ax in axes[: len(var_names)]:
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("chain")
        if ax.get_subplotspec().is_last_row() or ax is axes[len(var_names) - 1]:
            ax.set_xlabel("rank (all chains)")
    fig.suptitle("Rank plots (flat = chains agree), worst R̂ first", fontsize="medium")
    return fig


# ---------------------------------------------------------------------------------------------
# report


def _save(fig: Figure, path: Path, dpi: int) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def _has_measurements(tree: xr.DataTree) -> bool:
    obs = _group(tree, "observed_data")
    return obs is not None and any(v.dims == ("measurement",) for v in obs.data_vars.values())


def write_report(
    tree: xr.DataTree,
    directory: str | os.PathLike,
    *,
    truth: Any = None,
    predictions: xr.DataArray | None = None,
    ci_prob: float | None = None,
    ci_kind: str | None = None,
    dpi: int = 120,
) -> list[Path]:
    """Write the report of a flux posterior into ``directory``; return the paths written.

    * ``summary.csv`` — :func:`flux_summary`, one row per reaction (always), and a ``ci_prob``
      column;
    * ``flux_forest.png`` — :func:`flux_forest` with ``truth`` markers (always);
    * ``observed_vs_predicted.png`` — :func:`observed_vs_predicted`, where ``observed_data``
      holds labelling measurements and ``predictions`` are given or the tree has a
      ``posterior_predictive`` group;
    * ``rank.png`` — :func:`rank_plot`, where the posterior has at least 2 chains.

    Every file is written to a temporary file in ``directory`` and moved into place with
    ``os.replace``, so an interrupted run never leaves a truncated file. ``ci_prob`` and
    ``ci_kind`` (ArviZ's rcParams by default) choose every interval of the report.
    """
    prob, kind = _interval(ci_prob, ci_kind)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flux = _flux(tree)
    summary = flux_summary(tree, ci_prob=prob, ci_kind=kind)
    frame = summary.to_dataframe()
    frame.insert(len(frame.columns), "ci_prob", prob)
    written = [atomic_write(directory / "summary.csv", lambda tmp: frame.to_csv(tmp))]
    fig = flux_forest(tree, ci_prob=prob, ci_kind=kind, truth=truth)
    written.append(_save(fig, directory / "flux_forest.png", dpi))
    if _has_measurements(tree) and (
        predictions is not None or _group(tree, "posterior_predictive") is not None
    ):
        fig = observed_vs_predicted(tree, predictions, ci_prob=prob, ci_kind=kind)
        written.append(_save(fig, directory / "observed_vs_predicted.png", dpi))
    if flux.sizes["chain"] >= 2:
        written.append(_save(rank_plot(tree), directory / "rank.png", dpi))
    return written
