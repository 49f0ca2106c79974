"""Results as xarray objects: provenance attributes and atomic NetCDF writing.

Every method returns an ``xarray.Dataset`` (or a ``DataTree`` of ArviZ groups) whose variables are
indexed by a ``reaction`` coordinate holding reaction ids.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xarray as xr

from bayesflux.network import Network

__all__ = ["atomic_write", "provenance", "flux_dataset", "write_netcdf", "read_results"]


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
    truncated one. The file gets the permissions the umask gives new files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
