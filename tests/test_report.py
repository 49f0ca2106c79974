"""The report: forest, observed vs predicted, rank plots, summary.csv and atomic writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesflux import datasets
from bayesflux.errors import ConfigError
from bayesflux.models import FluxObservations, FluxPosterior
from bayesflux.report import (
    flux_forest,
    flux_summary,
    observed_vs_predicted,
    rank_plot,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG encoding dominates write_report's time; tests other than the first save small images
LOW_DPI = 60


@pytest.fixture(scope="module")
def fitted():
    net = datasets.load("small")
    post = FluxPosterior(net, [FluxObservations(net, {"R1": (2.0, 0.5)})])
    return post, post.sample(num_chains=2, num_draws=200, seed=3)


@pytest.fixture(scope="module")
def tree(fitted):
    return fitted[1]


def _with_group(tree: xr.DataTree, name: str, ds: xr.Dataset) -> xr.DataTree:
    out = tree.copy()
    out[name] = xr.DataTree(ds)
    return out


def _labelling(tree: xr.DataTree, rng, *, n: int = 9):
    """``tree`` plus synthetic MIDs over ``measurement`` and predictions (2, 50, n) around them."""
    labels = [f"glc:Ala{f}:M+{k}" for f in ("232", "260", "288") for k in range(3)][:n]
    value = rng.uniform(0.05, 0.9, n)
    obs = tree["observed_data"].to_dataset()
    obs = obs.assign(labeling=("measurement", value), labeling_sd=("measurement", np.full(n, 0.01)))
    pred = xr.DataArray(
        value + rng.normal(0.0, 0.02, (2, 50, n)),
        dims=("chain", "draw", "measurement"),
        coords={"measurement": labels},
        name="labeling",
    )
    return _with_group(tree, "observed_data", obs.assign_coords(measurement=labels)), pred


def _synthetic_tree(reactions, draws: np.ndarray) -> xr.DataTree:
    """A posterior-only DataTree with ``draws (chain, draw, reaction)``."""
    post = xr.Dataset(
        {"flux": (("chain", "draw", "reaction"), draws)},
        coords={
            "chain": np.arange(draws.shape[0]),
            "draw": np.arange(draws.shape[1]),
            "reaction": list(reactions),
        },
    )
    return xr.DataTree.from_dict({"posterior": post})


def _labels_overlap(fig) -> list[tuple[str, str]]:
    """Pairs of tick labels of one axis whose rendered boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    clashes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            ticks = [t for t in axis.get_ticklabels() if t.get_text() and t.get_visible()]
            boxes = [t.get_window_extent(renderer) for t in ticks]
            for i, a in enumerate(boxes):
                for j in range(i + 1, len(boxes)):
                    if a.overlaps(boxes[j]):
                        clashes.append((ticks[i].get_text(), ticks[j].get_text()))
    return clashes


def _assert_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_write_report_files_and_summary(tree, tmp_path):
    paths = write_report(tree, tmp_path / "report")
    names = [p.name for p in paths]
    # no labelling measurements in the tree: no observed-vs-predicted plot
    assert names == ["summary.csv", "flux_forest.png", "rank.png"]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    for p in paths[1:]:
        image = _assert_png(p)
        # not a blank canvas: the plot drew something other than the background
        assert image[..., :3].std() > 0.05
    assert not list((tmp_path / "report").glob("*.tmp"))

    # round_trip: pandas' default fast parser may misread the last digit of a float
    table = pd.read_csv(paths[0], index_col="reaction", float_precision="round_trip")
    reactions = list(tree["posterior"]["reaction"].values)
    assert list(table.index) == reactions
    # ArviZ's default interval (rcParams: an 89% equal-tailed one) under az.summary's names
    expected = ["mean", "sd", "median", "eti89_lb", "eti89_ub", "r_hat", "ess_bulk", "ess_tail"]
    assert all(c in table.columns for c in expected)
    assert np.all(np.isfinite(table["r_hat"])) and np.all(table["ess_bulk"] > 0)
    assert np.all(table["eti89_lb"] <= table["median"])
    assert np.all(table["median"] <= table["eti89_ub"])
    assert np.allclose(table["ci_prob"], 0.89)
    # the summary agrees with plain numpy on the draws
    flux = tree["posterior"]["flux"].values.reshape(-1, len(reactions))
    np.testing.assert_allclose(table["mean"], flux.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["median"], np.median(flux, axis=0), rtol=1e-12)
    lower, upper = np.quantile(flux, [0.055, 0.945], axis=0)
    np.testing.assert_allclose(table["eti89_lb"], lower, rtol=1e-12)
    np.testing.assert_allclose(table["eti89_ub"], upper, rtol=1e-12)


@pytest.mark.parametrize(
    ("ci_prob", "ci_kind", "columns"),
    [(None, None, ("eti89_lb", "eti89_ub")), (0.94, "hdi", ("hdi94_lb", "hdi94_ub"))],
)
def test_summary_intervals_are_arviz_summary(tree, arviz_reads, ci_prob, ci_kind, columns):
    """The report's interval bounds are az.summary's numbers under az.summary's column names:
    by default ArviZ's rcParams (ETI, 0.89), or the kind and probability both are given."""
    import arviz as az

    arviz_reads(tree)  # FluxPosterior.sample's tree as it is
    ours = flux_summary(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    theirs = az.summary(tree, var_names=["flux"], ci_prob=ci_prob, ci_kind=ci_kind, round_to="none")
    rows = [f"flux[{r}]" for r in ours["reaction"].values]
    for column in (*columns, "mean", "sd", "r_hat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(
            ours[column].values, theirs.loc[rows, column].to_numpy(float), rtol=1e-12
        )
    if ci_kind == "hdi":
        # a 94% HDI holds 94% of the 400 pooled draws (nearest-rank: at least 376 of them)
        flux = tree["posterior"]["flux"].values.reshape(-1, ours.sizes["reaction"])
        inside = (flux >= ours[columns[0]].values) & (flux <= ours[columns[1]].values)
        assert np.all(inside.sum(axis=0) >= int(np.ceil(0.94 * flux.shape[0])))


def test_rewrite_is_atomic(tree, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    first = write_report(tree, tmp_path, dpi=LOW_DPI)
    before = {p.name: p.read_bytes() for p in first}

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(tree, tmp_path, dpi=LOW_DPI)
    # the failed run left the earlier files intact and no temporary files behind
    assert {p.name: p.read_bytes() for p in first} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def test_forest_truth_markers_and_labels(tree):
    truth = pd.Series({"R1": 2.0, "R2": 3.5, "BIOMASS": 8.0})
    reactions = ["BIOMASS", "R1", "R2", "EX_A"]
    fig = flux_forest(tree, reactions=reactions, truth=truth)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == reactions
    (marks,) = [c for c in ax.collections if c.get_label() == "truth"]
    ticks = dict(zip(reactions, ax.get_yticks()))
    got = {tuple(p) for p in np.asarray(marks.get_offsets()).tolist()}
    assert got == {(v, ticks[r]) for r, v in truth.items()}
    # the measured flux of R1 is drawn, too
    assert "measured ± sd" in ax.get_legend_handles_labels()[1]
    assert not _labels_overlap(fig)


def test_forest_default_picks_most_variable_and_draws_into_ax(tree):
    from matplotlib.figure import Figure

    sd = tree["posterior"]["flux"].std(("chain", "draw")).to_series()
    top = set(sd.sort_values(ascending=False).index[:3])
    fig = Figure()
    ax = fig.add_subplot()
    out = flux_forest(
        tree,
        max_reactions=3,
        truth=xr.DataArray([1.0], dims="reaction", coords={"reaction": ["R1"]}),
        ax=ax,
    )
    assert out is fig
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert set(labels) == top and len(labels) == 3
    order = list(tree["posterior"]["reaction"].values)
    assert labels == sorted(labels, key=order.index)  # network order


def test_bad_input_names_the_culprit(tree):
    with pytest.raises(ConfigError, match="NOPE"):
        flux_forest(tree, reactions=["R1", "NOPE"])
    with pytest.raises(ConfigError, match="GHOST"):
        flux_forest(tree, truth={"GHOST": 1.0})
    with pytest.raises(ConfigError, match="NOPE"):
        rank_plot(tree, var_names=["NOPE"])
    with pytest.raises(ConfigError, match="probability"):
        flux_summary(tree, ci_prob=1.5)
    with pytest.raises(ConfigError, match="ci_kind"):
        flux_forest(tree, ci_kind="quantile")
    with pytest.raises(ConfigError, match="posterior/flux"):
        flux_forest(xr.DataTree())


def test_observed_vs_predicted(tree, rng, tmp_path):
    labelled, pred = _labelling(tree, rng)
    labels = list(pred["measurement"].values)
    shuffled = pred.isel(measurement=rng.permutation(len(labels)))
    fig = observed_vs_predicted(labelled, shuffled)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    # predictions are matched to the data by label, not by position
    (medians,) = [c for c in ax.collections if c.get_label() == "predicted median"]
    np.testing.assert_allclose(
        np.asarray(medians.get_offsets())[:, 0], pred.median(("chain", "draw")).values
    )
    assert not _labels_overlap(fig)

    paths = write_report(labelled, tmp_path, predictions=pred, dpi=LOW_DPI)
    assert "observed_vs_predicted.png" in [p.name for p in paths]
    _assert_png(tmp_path / "observed_vs_predicted.png")
    # a posterior_predictive group serves as predictions
    with_pp = _with_group(labelled, "posterior_predictive", pred.to_dataset())
    observed_vs_predicted(with_pp)
    assert "observed_vs_predicted.png" in [
        p.name for p in write_report(with_pp, tmp_path / "b", dpi=LOW_DPI)
    ]

    with pytest.raises(ConfigError, match="glc:Ala288:M"):
        observed_vs_predicted(labelled, pred.isel(measurement=slice(0, 6)))
    with pytest.raises(ConfigError, match="posterior_predictive"):
        observed_vs_predicted(labelled)
    with pytest.raises(ConfigError, match="measurement"):
        observed_vs_predicted(tree, pred)


def test_single_chain_skips_rank_plot(fitted, tmp_path):
    post, tree = fitted
    one = post.to_datatree(tree["posterior"]["flux"].values[:1])
    names = [p.name for p in write_report(one, tmp_path, dpi=LOW_DPI)]
    assert names == ["summary.csv", "flux_forest.png"]
    with pytest.raises(ConfigError, match="chains"):
        rank_plot(one)


def test_rank_plot_shows_worst_rhat_first(rng):
    # chain 1 of "stuck" sits 3 sd away from chain 0: R-hat far above 1, the others ~1
    draws = rng.normal(size=(3, 300, 4))
    draws[1, :, 2] += 3.0
    tree = _synthetic_tree(["a", "b", "stuck", "d"], draws)
    fig = rank_plot(tree, max_vars=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 2 and titles[0].startswith("stuck")
    stuck = fig.axes[0]
    # chain 1 holds the top ranks: its bars (bottom = 1) fill only the upper part of the ranks
    # (a N(3, 1) draw ranks below the pooled median 450 only if it is below ~0.7: 1% of them)
    (steps,) = [p for p in stuck.patches if p.get_label() == "chain 1"]
    heights, edges, baseline = steps.get_data()
    heights = heights - baseline
    assert heights[edges[:-1] >= 0.5 * 900].sum() > 0.9 * heights.sum()
    fig = rank_plot(tree, var_names=["a", "d"])
    assert [ax.get_title().split()[0] for ax in fig.axes if ax.get_visible()] == ["a", "d"]
    assert not _labels_overlap(fig)


def test_sample_step_tree(tree, tmp_path):
    # the `sample` step's DataTree (sample_fluxes): posterior/flux and sample_stats only
    raw = xr.DataTree.from_dict(
        {
            "posterior": tree["posterior"].to_dataset()[["flux"]],
            "sample_stats": tree["sample_stats"].to_dataset(),
        }
    )
    paths = write_report(raw, tmp_path, dpi=LOW_DPI)
    assert [p.name for p in paths] == ["summary.csv", "flux_forest.png", "rank.png"]
    # round_trip: pandas' default fast parser may misread the last digit of a float
    table = pd.read_csv(paths[0], index_col="reaction", float_precision="round_trip")
    assert len(table) == tree["posterior"].sizes["reaction"]


def test_forest_of_many_reactions_is_readable(rng):
    # 95 reactions with ids of textbook-like lengths: the forest keeps the 30 most variable
    n = 95
    ids = [f"{'ABCDEFGHIJ'[k % 10] * (2 + k % 9)}{k}" for k in range(n)]
    scale = rng.uniform(0.1, 5.0, n)
    tree = _synthetic_tree(ids, rng.normal(size=(2, 100, n)) * scale)
    fig = flux_forest(tree)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    sd = tree["posterior"]["flux"].std(("chain", "draw")).values
    assert labels == [ids[i] for i in np.sort(np.argsort(-sd)[:30])]
    assert not _labels_overlap(fig)
    width, height = fig.get_size_inches()
    assert 6 <= width <= 8 and 5 <= height <= 12
