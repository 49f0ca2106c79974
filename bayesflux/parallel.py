"""Independent work (chains, sectors, per-sample 13C fits, permutation tests), here or on Dask.

:func:`map_tasks` applies a function to every item of a list, in this process (``"local"``), on a
thread or process pool (:mod:`concurrent.futures`) or on a Dask cluster
(``dask.distributed.Client`` or a scheduler address), and returns the results in input order.
With ``checkpoint=DIR`` every finished result is written atomically to ``DIR/task_NNNNNN.pkl`` as
soon as it arrives, and a rerun computes only the tasks missing there. :func:`split_seeds` gives
each task its own reproducible random stream (NumPy ``SeedSequence`` spawning, O'Neill 2015),
whichever machine runs it; :func:`map_chains` runs one sampler per seed and joins the per-run
``xarray.DataTree`` s along ``chain`` (:func:`concat_chains`).

Dask is optional (``pip install bayesflux[dask]``): it is imported only when a Dask client or
scheduler address is asked for.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import pickle
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bayesflux.errors import BayesfluxError, ConfigError
from bayesflux.progress import progress_bar
from bayesflux.results import atomic_write

__all__ = ["TaskError", "map_tasks", "split_seeds", "map_chains", "concat_chains"]

_CHECKPOINT_FORMAT = 1
_META = "meta.json"


class TaskError(BayesfluxError, RuntimeError):
    """A task of :func:`map_tasks` raised; ``index`` is its position, the cause is chained."""

    def __init__(self, message: str, *, index: int = -1) -> None:
        super().__init__(message)
        self.index = index

    def __reduce__(self):
        return (type(self), (self.args[0],), {"index": self.index})


# ---------------------------------------------------------------------------- seeds
def split_seeds(seed: int | np.random.SeedSequence, n: int) -> list[int]:
    """``n`` independent, reproducible integer seeds derived from one.

    The children of ``numpy.random.SeedSequence(seed).spawn(n)`` (O'Neill 2015, the hashing that
    NumPy uses for parallel streams) are each reduced to one 63-bit integer, a valid seed for
    ``numpy.random.default_rng`` and for ``jax.random.key`` (bayesflux enables x64). The same
    ``(seed, n)`` always gives the same list, and the first ``k`` seeds do not depend on ``n``,
    so results do not depend on where or in which order the tasks run.

    Parameters
    ----------
    seed
        A non-negative integer or a ``SeedSequence``.
    n
        How many seeds.

    Returns
    -------
    list of int
        ``n`` seeds in ``[0, 2**63)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"split_seeds needs a non-negative integer count, got {n!r}")
    if isinstance(seed, np.random.SeedSequence):
        parent = seed
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer or SeedSequence, got {seed!r}")
        parent = np.random.SeedSequence(int(seed))
    children = parent.spawn(int(n))
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]


# ---------------------------------------------------------------------------- checkpoints
def _task_name(fn: Callable) -> str:
    """``module.qualname`` of a function (through ``functools.partial``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    qualname = getattr(fn, "__qualname__", type(fn).__qualname__)
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}.{qualname}"


def _derived_key(fn: Callable, items: list) -> str:
    """Function name and a SHA-256 of the pickled items (the name alone if they do not pickle)."""
    h = hashlib.sha256(_task_name(fn).encode())
    try:
        h.update(pickle.dumps(items, protocol=4))
    except Exception:  # unpicklable items (local runs): the name and the count guard the folder
        h.update(b"<unpicklable items>")
    return "derived:" + h.hexdigest()


class _Checkpoint:
    """A folder of per-task result pickles plus ``meta.json`` (task count and key)."""

    def __init__(self, directory: Path, *, n_items: int, key: str) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format": _CHECKPOINT_FORMAT, "n_items": n_items, "key": key}
        path = directory / _META
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"checkpoint metadata {path} is unreadable: {exc}") from exc
            if {k: stored.get(k) for k in meta} != meta:
                raise ConfigError(
                    f"checkpoint {directory} holds another task list ({stored.get('n_items')} "
                    f"tasks, key {stored.get('key')!r}) than this call ({n_items} tasks, key "
                    f"{key!r}); use a new checkpoint folder or delete this one"
                )
        else:
            atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(meta)))

    def path(self, index: int) -> Path:
        return self.directory / f"task_{index:06d}.pkl"

    def load(self, n_items: int) -> dict[int, Any]:
        done = {}
        for i in range(n_items):
            path = self.path(i)
            if path.is_file():
                try:
                    with path.open("rb") as fh:
                        done[i] = pickle.load(fh)
                except Exception as exc:
                    raise ConfigError(
                        f"checkpoint file {path} cannot be read ({type(exc).__name__}: {exc}); "
                        "delete it to recompute that task"
                    ) from exc
        return done

    def write(self, index: int, value: Any) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(self.path(index), lambda tmp: Path(tmp).write_bytes(data))


# ---------------------------------------------------------------------------- executors
class _Sink:
    """Collects results as they finish (and checkpoints them); remembers the first failure."""

    def __init__(self, results: dict[int, Any], store: _Checkpoint | None) -> None:
        self.results = results
        self.store = store
        self.failure: tuple[int, BaseException] | None = None

    def put(self, index: int, value: Any) -> None:
        if self.store is not None:
            self.store.write(index, value)
        self.results[index] = value

    def fail(self, index: int, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = (index, exc)


def _run_local(fn, items, todo, sink, bar) -> None:
    for i in bar(todo):
        try:
            value = fn(items[i])
        except Exception as exc:
            sink.fail(i, exc)
            return
        sink.put(i, value)


def _run_pool(pool: Executor, fn, items, todo, sink, bar) -> None:
    """Submit every task; after a failure cancel those not started, keep those that finish."""
    futures = {pool.submit(fn, items[i]): i for i in todo}
    try:
        for future in bar(as_completed(futures)):
            if future.cancelled():
                continue
            i = futures[future]
            exc = future.exception()
            if exc is None:
                sink.put(i, future.result())
            else:
                sink.fail(i, exc)
                for other in futures:
                    other.cancel()
    except BaseException:
        for other in futures:
            other.cancel()
        raise


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            "a Dask client or scheduler address needs dask.distributed; install it with "
            "`pip install bayesflux[dask]`"
        ) from exc
    return distributed


def _is_dask_client(obj: Any) -> bool:
    """True for a ``distributed.Client`` (without importing Dask when it is not loaded)."""
    import sys

    module = sys.modules.get("distributed")
    return module is not None and isinstance(obj, module.Client)


def _run_dask(client, fn, items, todo, sink, bar) -> None:
    """``client.map`` the tasks (``pure=False``: impure functions are rerun) and gather them."""
    distributed = _import_distributed()
    token = uuid.uuid4().hex[:12]
    name = _task_name(fn).rsplit(".", 1)[-1].replace("<", "").replace(">", "") or "task"
    keys = [f"{name}-{token}-{i:06d}" for i in todo]
    futures = client.map(fn, [items[i] for i in todo], key=keys, pure=False)
    index = dict(zip(keys, todo))
    try:
        for future in bar(distributed.as_completed(futures)):
            i = index[future.key]
            try:
                value = future.result()
            except Exception as exc:
                sink.fail(i, exc)
                client.cancel(futures)
                return
            sink.put(i, value)
    except BaseException:
        client.cancel(futures)
        raise


def _process_context():
    """forkserver (or spawn): forking a process that runs JAX's threads can deadlock."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _short(item: Any, width: int = 80) -> str:
    text = repr(item)
    return text if len(text) <= width else text[: width - 3] + "..."


def map_tasks(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    executor: str | Executor | Any = "local",
    max_workers: int | None = None,
    progress: bool = False,
    desc: str = "tasks",
    checkpoint: str | Path | None = None,
    key: str | None = None,
) -> list:
    """Apply ``fn`` to every item, locally or on a Dask cluster; results in input order.

    Parameters
    ----------
    fn
        Function of one item. For ``"processes"`` and Dask it must pickle (a module-level
        function, a ``functools.partial`` of one; Dask also takes closures via cloudpickle).
    items
        The inputs, one task each.
    executor
        ``"local"`` (this process, one after another, the default); ``"threads"`` or
        ``"processes"`` (:mod:`concurrent.futures` pools; processes start by forkserver or spawn,
        never fork, because JAX is multithreaded, so a script needs the usual
        ``if __name__ == "__main__":`` guard); a ready ``concurrent.futures.Executor``
        (left open); a ``dask.distributed.Client``; or a scheduler address such as
        ``"tcp://host:8786"`` (a client is opened for this call and closed after it).
    max_workers
        Pool size for ``"threads"``/``"processes"`` (default: the pool's own); a Dask cluster
        sizes itself.
    progress, desc
        Show a progress bar over finished tasks, labelled ``desc``.
    checkpoint
        Folder where each result is written (pickle, temporary file then ``os.replace``) as
        ``task_NNNNNN.pkl`` when it finishes. A rerun with the same folder loads those and runs
        only the missing tasks, so an interrupted or failed run loses nothing already computed.
    key
        Identifies the task list in the checkpoint folder together with ``len(items)``; a folder
        written under another key or count raises :class:`ConfigError`. Default: the function's
        qualified name and a SHA-256 of the pickled items.

    Returns
    -------
    list
        ``[fn(item) for item in items]``.

    Raises
    ------
    TaskError
        When a task raises: the message names its index and item, the original exception is
        chained (``__cause__``). Tasks not yet started are cancelled; results that finished are
        kept in ``checkpoint``.
    ConfigError
        Unknown executor, Dask asked for but not installed, or a checkpoint folder of another
        task list.
    """
    items = list(items)
    n = len(items)
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ConfigError(f"max_workers must be a positive integer or None, got {max_workers!r}")

    owned_client = None
    if isinstance(executor, str):
        if "://" in executor:
            distributed = _import_distributed()
            try:
                owned_client = distributed.Client(executor)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"cannot connect to the Dask scheduler at {executor}: {exc}"
                ) from exc
        elif executor not in ("local", "threads", "processes"):
            raise ConfigError(
                f"unknown executor {executor!r}; expected 'local', 'threads', 'processes', a "
                "concurrent.futures.Executor, a dask.distributed.Client or a scheduler address"
            )
    elif not isinstance(executor, Executor) and not _is_dask_client(executor):
        raise ConfigError(
            f"executor must be a name, an Executor or a dask.distributed.Client, not "
            f"{type(executor).__name__}"
        )

    try:
        store = None
        results: dict[int, Any] = {}
        if checkpoint is not None:
            store = _Checkpoint(
                Path(checkpoint), n_items=n, key=key if key is not None else _derived_key(fn, items)
            )
            results = store.load(n)
        todo = [i for i in range(n) if i not in results]
        sink = _Sink(results, store)

        def bar(iterable):
            return progress_bar(iterable, desc=desc, disable=not progress, total=len(todo))

        if todo:
            if owned_client is not None or _is_dask_client(executor):
                _run_dask(owned_client or executor, fn, items, todo, sink, bar)
            elif isinstance(executor, Executor):
                _run_pool(executor, fn, items, todo, sink, bar)
            elif executor == "local":
                _run_local(fn, items, todo, sink, bar)
            else:
                pool = (
                    ThreadPoolExecutor(max_workers)
                    if executor == "threads"
                    else ProcessPoolExecutor(max_workers, mp_context=_process_context())
                )
                try:
                    _run_pool(pool, fn, items, todo, sink, bar)
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if owned_client is not None:
            owned_client.close()

    if sink.failure is not None:
        i, exc = sink.failure
        saved = f"; finished results are in {checkpoint}" if checkpoint is not None else ""
        raise TaskError(
            f"task {i} of {n} (item {_short(items[i])}) failed: {type(exc).__name__}: {exc}"
            + saved,
            index=i,
        ) from exc
    return [results[i] for i in range(n)]


# ---------------------------------------------------------------------------- chains
def _equal(a: Any, b: Any) -> bool:
    try:
        return np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
    except Exception:
        return False


def _merge_attrs(attrs: Sequence[dict]) -> dict:
    """Attributes equal in every run are kept; a differing number (e.g. ``seed``) becomes the
    list of per-run values; any other differing value (creation times) is the first run's."""
    merged = {}
    for name in dict.fromkeys(k for a in attrs for k in a):
        values = [a[name] for a in attrs if name in a]
        if len(values) == len(attrs) and all(_equal(values[0], v) for v in values[1:]):
            merged[name] = values[0]
        elif len(values) == len(attrs) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in values
        ):
            merged[name] = [v.item() if isinstance(v, np.generic) else v for v in values]
        else:
            merged[name] = values[0]
    return merged


def concat_chains(trees: Sequence[xr.DataTree]) -> xr.DataTree:
    """Join ArviZ DataTrees of separate runs along ``chain``, renumbering chains ``0..n-1``.

    Every group with a ``chain`` dimension (``posterior``, ``sample_stats``, ...) is concatenated
    in the order of ``trees`` (a run may hold several chains); other groups (``observed_data``,
    ``constant_data``) must be equal in every run and are taken once. Coordinates such as
    ``draw`` and ``reaction`` must match exactly. Attributes of every group are merged:
    common ones kept, a differing number such as ``seed`` listed per run.

    Raises
    ------
    ConfigError
        No trees, different groups, misaligned coordinates, or unequal chain-free groups.
    """
    trees = list(trees)
    if not trees:
        raise ConfigError("concat_chains needs at least one DataTree")
    paths = [node.path for node in trees[0].subtree]
    for k, tree in enumerate(trees[1:], start=1):
        other = [node.path for node in tree.subtree]
        if sorted(other) != sorted(paths):
            raise ConfigError(
                f"run {k} has groups {sorted(other)}, run 0 has {sorted(paths)}; cannot join them"
            )
    groups: dict[str, xr.Dataset] = {}
    for path in paths:
        datasets = [tree[path].to_dataset(inherit=False) for tree in trees]
        attrs = _merge_attrs([ds.attrs for ds in datasets])
        if "chain" in datasets[0].dims:
            try:
                joined = xr.concat(
                    [ds.drop_vars("chain", errors="ignore") for ds in datasets],
                    dim="chain",
                    data_vars="minimal",
                    coords="minimal",
                    compat="override",
                    join="exact",
                    combine_attrs="override",
                )
            except ValueError as exc:
                raise ConfigError(f"group {path!r} does not align across runs: {exc}") from exc
            joined = joined.assign_coords(chain=np.arange(joined.sizes["chain"]))
        else:
            for k, ds in enumerate(datasets[1:], start=1):
                if not ds.equals(datasets[0]):
                    raise ConfigError(
                        f"group {path!r} has no chain dimension and differs between run 0 and "
                        f"run {k}; runs to be joined must share their data"
                    )
            joined = datasets[0].copy()
        joined.attrs = attrs
        groups[path] = joined
    return xr.DataTree.from_dict(groups)


def map_chains(
    run_chain: Callable[[Any], xr.DataTree],
    seeds: Iterable[Any],
    *,
    executor: str | Executor | Any = "local",
    max_workers: int | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    key: str | None = None,
) -> xr.DataTree:
    """Run ``run_chain(seed)`` for every seed (see :func:`map_tasks`) and join the DataTrees.

    Typically ``seeds = split_seeds(seed, n)`` and ``run_chain`` a one-chain sampler run, e.g.
    ``lambda s: sample_fluxes(network, num_chains=1, seed=s)``; the result is the
    :func:`concat_chains` of the runs, chain ``k`` coming from ``seeds[k]`` (for one-chain
    runs). Integer seeds are recorded in the root attribute ``run_seeds``.

    Parameters
    ----------
    run_chain
        Function of one seed returning an ArviZ ``xarray.DataTree`` with a ``chain`` dimension.
    seeds
        One seed per run.
    executor, max_workers, progress, checkpoint, key
        As in :func:`map_tasks`.

    Returns
    -------
    xarray.DataTree
        Groups with a ``chain`` dimension concatenated along it, chains numbered ``0..n-1``.
    """
    seeds = list(seeds)
    trees = map_tasks(
        run_chain,
        seeds,
        executor=executor,
        max_workers=max_workers,
        progress=progress,
        desc="chains",
        checkpoint=checkpoint,
        key=key,
    )
    for k, tree in enumerate(trees):
        if not isinstance(tree, xr.DataTree):
            raise ConfigError(
                f"run_chain returned {type(tree).__name__} for seed {seeds[k]!r}, not a DataTree"
            )
    merged = concat_chains(trees)
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        merged.attrs["run_seeds"] = [int(s) for s in seeds]
    return merged
