"""parallel: map_tasks on local/threads/processes/Dask, checkpoints, seeds, map_chains."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import arviz as az
import arviz_base
import numpy as np
import pytest

from bayesflux import parallel
from bayesflux.errors import BayesfluxError, ConfigError
from bayesflux.parallel import TaskError, concat_chains, map_chains, map_tasks, split_seeds
from bayesflux.sampling import sample_fluxes

ITEMS = list(range(12))
EXPECTED = [math.factorial(i) for i in ITEMS]


def _reverse_sleep(i: int) -> int:
    """Earlier items sleep longer, so on a pool they finish in roughly reverse order."""
    time.sleep(0.02 * (len(ITEMS) - i))
    return i * i


@pytest.fixture(scope="module")
def dask_client():
    """A two-worker in-process Dask cluster; Dask is required under CI=true."""
    if os.environ.get("CI") == "true":
        import dask.distributed as distributed
    else:
        distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


# ---------------------------------------------------------------------------- executors
@pytest.mark.parametrize("executor", ["local", "threads", "processes"])
def test_results_in_input_order(executor):
    # math.factorial pickles by reference, so the forkserver children need not import this file
    assert map_tasks(math.factorial, ITEMS, executor=executor, max_workers=2) == EXPECTED
    assert map_tasks(math.factorial, [], executor=executor) == []


def test_order_kept_when_tasks_finish_out_of_order():
    finished = []

    def fn(i):
        value = _reverse_sleep(i)
        finished.append(i)
        return value

    assert map_tasks(fn, ITEMS, executor="threads", max_workers=4) == [i * i for i in ITEMS]
    assert finished != sorted(finished)  # they really did finish out of order


def test_dask_client_and_address(dask_client):
    assert map_tasks(math.factorial, ITEMS, executor=dask_client) == EXPECTED
    # a scheduler address opens (and closes) a client of its own
    address = dask_client.scheduler.address
    assert map_tasks(math.factorial, ITEMS, executor=address, progress=True) == EXPECTED
    # later items finish first (two workers, earlier items sleep longer); order is still kept
    assert map_tasks(_reverse_sleep, ITEMS, executor=dask_client) == [i * i for i in ITEMS]


def test_dask_failure_names_item_and_keeps_results(dask_client, tmp_path):
    # Dask serialises the function, so calls are counted in files, not in a captured list
    log = tmp_path / "calls"
    log.mkdir()
    broken = {"on": True}

    def fn(i):
        (log / f"{i}-{uuid.uuid4().hex}").touch()
        if broken["on"] and i == 5:
            raise ValueError("bad input")
        return -i

    def calls():
        return sorted(int(p.name.split("-")[0]) for p in log.iterdir())

    store = tmp_path / "store"
    with pytest.raises(TaskError, match=r"task 5 of 8 \(item 5\).*ValueError: bad input") as err:
        map_tasks(fn, range(8), executor=dask_client, checkpoint=store)
    assert err.value.index == 5
    assert isinstance(err.value.__cause__, ValueError)
    saved = {int(p.stem.split("_")[1]) for p in store.glob("task_*.pkl")}
    assert saved and 5 not in saved  # results that arrived before the failure are on disk
    for p in log.iterdir():
        p.unlink()
    broken["on"] = False
    out = map_tasks(fn, range(8), executor=dask_client, checkpoint=store)
    assert out == [-i for i in range(8)]
    # a task of the failed run already running on a worker cannot be stopped and may log its call
    # after the clean-up: compare the set of called items (saved ones are never run again)
    assert sorted(set(calls())) == sorted(set(range(8)) - saved)


def test_unknown_executor_and_bad_workers():
    with pytest.raises(ConfigError, match="unknown executor 'gpu'"):
        map_tasks(abs, [1], executor="gpu")
    with pytest.raises(ConfigError, match="executor must be"):
        map_tasks(abs, [1], executor=42)
    with pytest.raises(ConfigError, match="max_workers"):
        map_tasks(abs, [1], executor="threads", max_workers=0)


def test_works_without_dask(monkeypatch):
    """A fresh copy of the module, imported while Dask cannot be imported."""
    for name in ("dask", "dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    spec = importlib.util.spec_from_file_location("_parallel_without_dask", parallel.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.map_tasks(abs, [-3, 2, -1], executor="threads") == [3, 2, 1]
    with pytest.raises(ConfigError, match=r"bayesflux\[dask\]"):
        module.map_tasks(abs, [-3], executor="tcp://127.0.0.1:8786")


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("executor", ["local", "threads"])
def test_checkpoint_resume_after_failure(executor, tmp_path):
    n, k = 10, 6
    calls = []
    lock = threading.Lock()
    broken = {"on": True}

    def fn(i):
        with lock:
            calls.append(i)
        if broken["on"] and i == k:
            raise RuntimeError(f"solver died on {i}")
        return {"index": i, "value": np.full(3, float(i))}

    with pytest.raises(TaskError, match=rf"task {k} of {n} \(item {k}\).*solver died") as err:
        map_tasks(fn, range(n), executor=executor, max_workers=2, checkpoint=tmp_path)
    assert err.value.index == k and str(tmp_path) in str(err.value)
    assert isinstance(err.value, BayesfluxError)
    saved = {int(p.stem.split("_")[1]) for p in tmp_path.glob("task_*.pkl")}
    # tasks are started in order, so every task before k had started and was kept on disk
    assert set(range(k)) <= saved and k not in saved
    if executor == "local":
        assert saved == set(range(k))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind

    calls.clear()
    broken["on"] = False
    out = map_tasks(fn, range(n), executor=executor, max_workers=2, checkpoint=tmp_path)
    assert sorted(calls) == sorted(set(range(n)) - saved)  # only the missing tasks ran
    assert [r["index"] for r in out] == list(range(n))
    np.testing.assert_array_equal(out[7]["value"], [7.0, 7.0, 7.0])

    calls.clear()  # a third run computes nothing
    assert [r["index"] for r in map_tasks(fn, range(n), checkpoint=tmp_path)] == list(range(n))
    assert calls == []


def test_checkpoint_fingerprint_mismatch(tmp_path):
    map_tasks(abs, [-1, -2, -3], checkpoint=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"another task list \(3 tasks.*this call \(4 tasks"):
        map_tasks(abs, [-1, -2, -3, -4], checkpoint=tmp_path / "a")
    with pytest.raises(ConfigError, match="another task list"):  # same count, other items
        map_tasks(abs, [-1, -2, -7], checkpoint=tmp_path / "a")
    with pytest.raises(ConfigError, match="another task list"):  # same items, other function
        map_tasks(math.factorial, [-1, -2, -3], checkpoint=tmp_path / "a")
    assert map_tasks(abs, [-1, -2, -3], checkpoint=tmp_path / "a") == [1, 2, 3]

    # with a user key the items themselves are not compared, only the key and the count
    map_tasks(abs, [-1, -2], checkpoint=tmp_path / "b", key="run-1")
    assert map_tasks(str, [5, 6], checkpoint=tmp_path / "b", key="run-1") == [1, 2]
    with pytest.raises(ConfigError, match="'run-2'"):
        map_tasks(abs, [-1, -2], checkpoint=tmp_path / "b", key="run-2")


def test_unreadable_checkpoint_file_is_named(tmp_path):
    map_tasks(abs, [-1, -2], checkpoint=tmp_path)
    (tmp_path / "task_000001.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="task_000001.pkl"):
        map_tasks(abs, [-1, -2], checkpoint=tmp_path)


# ---------------------------------------------------------------------------- seeds
def test_split_seeds_reproducible_and_independent():
    seeds = split_seeds(2026, 5)
    assert seeds == split_seeds(2026, 5)
    assert split_seeds(2026, 3) == seeds[:3]  # a prefix does not depend on n
    assert len(set(seeds)) == 5 and all(0 <= s < 2**63 for s in seeds)
    assert split_seeds(2027, 5) != seeds
    assert split_seeds(np.random.SeedSequence(2026), 5) == seeds
    a, b = (np.random.default_rng(s).standard_normal(10_000) for s in seeds[:2])
    # independent streams: the sample correlation of 10^4 pairs has sd 1/100; 0.05 is 5 sd
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError):
            split_seeds(bad, 2)
    with pytest.raises(ConfigError):
        split_seeds(0, -1)


# ---------------------------------------------------------------------------- chains
def _tree(values, *, seed, observed=(1.0, 2.0)):
    tree = arviz_base.from_dict(
        {
            "posterior": {"flux": np.asarray(values)},
            "observed_data": {"y": np.asarray(observed)},
        },
        dims={"flux": ["reaction"], "y": ["obs"]},
        coords={"reaction": ["R1", "R2"]},
    )
    tree.attrs.update(method="test", seed=seed)
    return tree


def test_concat_chains_groups_attrs_and_errors():
    one = _tree(np.zeros((1, 4, 2)), seed=1)
    two = _tree(np.ones((2, 4, 2)), seed=2)
    joined = concat_chains([one, two])
    assert joined.posterior["flux"].dims == ("chain", "draw", "reaction")
    assert list(joined.posterior["chain"].values) == [0, 1, 2]
    np.testing.assert_array_equal(joined.posterior["flux"].values[0], 0.0)
    np.testing.assert_array_equal(joined.posterior["flux"].values[1:], 1.0)
    assert "chain" not in joined.observed_data.dims
    np.testing.assert_array_equal(joined.observed_data["y"].values, [1.0, 2.0])
    assert joined.attrs["method"] == "test" and joined.attrs["seed"] == [1, 2]

    with pytest.raises(ConfigError, match="'/posterior' does not align"):
        concat_chains([one, _tree(np.zeros((1, 5, 2)), seed=3)])
    with pytest.raises(ConfigError, match="'/observed_data' has no chain dimension"):
        concat_chains([one, _tree(np.zeros((1, 4, 2)), seed=3, observed=(1.0, 3.0))])
    with pytest.raises(ConfigError, match="at least one"):
        concat_chains([])


def test_map_chains_equals_single_chain_runs(small, tmp_path):
    def run_chain(seed):
        return sample_fluxes(small, num_chains=1, num_draws=40, block_size=40, seed=seed)

    seeds = split_seeds(11, 2)
    singles = [run_chain(s) for s in seeds]
    merged = map_chains(run_chain, seeds, executor="threads", checkpoint=tmp_path)
    again = map_chains(run_chain, seeds, checkpoint=tmp_path)  # loaded back from the pickles
    for tree in (merged, again):
        flux = tree.posterior["flux"]
        assert flux.dims == ("chain", "draw", "reaction")
        assert list(flux["chain"].values) == [0, 1]
        assert list(flux["reaction"].values) == list(small.reactions)
        for k, single in enumerate(singles):
            for group in ("posterior", "sample_stats"):
                for name, var in single[group].data_vars.items():
                    np.testing.assert_array_equal(tree[group][name].values[k], var.values[0])
        assert tree.attrs["seed"] == seeds and tree.attrs["run_seeds"] == seeds
    assert np.isfinite(az.rhat(merged)["flux"].values).any()  # ArviZ sees two chains
    assert sorted(p.name for p in Path(tmp_path).glob("task_*.pkl")) == [
        "task_000000.pkl",
        "task_000001.pkl",
    ]
    with pytest.raises(ConfigError, match="not a DataTree"):
        map_chains(lambda s: s, [1])
