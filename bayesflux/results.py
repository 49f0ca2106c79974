"""Results as xarray objects: provenance attributes and atomic, locked NetCDF writing.

Every method returns an ``xarray.Dataset`` (or a ``DataTree`` of ArviZ groups) whose variables are
indexed by a ``reaction`` coordinate holding reaction ids.

A file is written to ``.NAME.<pid>.<rnd>.tmp`` beside it and renamed (:func:`atomic_write`); a
writer killed mid-write leaves that temporary file, which :func:`remove_stale_temps` deletes once
its process is gone. Writers that read, merge and rewrite one file serialise on ``.NAME.lock``
(:func:`output_lock`).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xarray as xr

from bayesflux.network import Network

__all__ = [
    "atomic_write",
    "provenance",
    "flux_dataset",
    "write_netcdf",
    "read_results",
    "output_lock",
    "remove_stale_temps",
]


def provenance(method: str, network: Network, **options: Any) -> dict[str, Any]:
    """Attributes recording what produced a result (NetCDF-safe: strings and numbers only)."""
    from bayesflux import __version__

    attrs: dict[str, Any] = {
        "method": method,
        "network": network.id,
        "n_reactions": network.n_reactions,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "bayesflux_version": __version__,
    }
    for key, value in options.items():
        if value is None:
            continue
        attrs[key] = value if isinstance(value, (int, float, str)) else str(value)
    return attrs


def flux_dataset(
    network: Network, variables: dict[str, Any], *, method: str, **options: Any
) -> xr.Dataset:
    """A Dataset of per-reaction vectors with a ``reaction`` coordinate and provenance attrs."""
    return xr.Dataset(
        {name: network.to_dataarray(values, name) for name, values in variables.items()},
        attrs=provenance(method, network, **options),
    )


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, flush it to disk and rename it to
    ``path``: a run interrupted at any moment leaves the previous file or the new one, never a
    truncated one. The temporary name ``.NAME.<pid>.<rnd>.tmp`` carries the writer's process id,
    so :func:`remove_stale_temps` can tell a dead writer's leftovers from a live writer's file. The
    file gets the permissions the umask gives new files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_netcdf(result: xr.Dataset | xr.DataTree, path: str | Path) -> Path:
    """Write a Dataset or DataTree to NetCDF atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: result.to_netcdf(tmp, engine="h5netcdf"))


def read_results(path: str | Path) -> xr.DataTree:
    """Open a results file written by :func:`write_netcdf` as a DataTree (loaded into memory)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()


@contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``.NAME.lock`` beside ``path`` (created if needed).

    Every pipeline writer of ``path`` reads, merges and rewrites it inside this lock, so
    concurrent runs are serialised and none loses what another wrote. The lock file is left in
    place: deleting it would let two writers hold locks on different files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's live process
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def remove_stale_temps(path: str | Path, *, locked: bool = False) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left when its writer died: those of the
    file ``path``, or of every file in ``path`` if it is a folder.

    A file ``.NAME.<pid>.<rnd>.tmp`` goes when no process ``<pid>`` exists. One without a process
    id (written before ids were recorded) goes only with ``locked=True``, i.e. when the caller holds
    :func:`output_lock` on ``path`` and so no pipeline writer can be using it. Returns the paths
    deleted.
    """
    path = Path(path)
    folder, pattern = (path, ".*.tmp") if path.is_dir() else (path.parent, f".{path.name}.*.tmp")
    removed = []
    for tmp in folder.glob(pattern):
        parts = tmp.name[1 : -len(".tmp")].rsplit(".", 2)  # name, pid, random part
        pid = parts[1] if len(parts) == 3 else ""
        stale = not _alive(int(pid)) if pid.isdigit() else locked
        if stale:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
