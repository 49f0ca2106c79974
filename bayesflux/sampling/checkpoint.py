"""Checkpoint folders of long sampling runs: one atomically written ``.npz`` file per finished
block of draws, and a fingerprint of the run that wrote them.

A run writes ``meta.json`` (its fingerprint) and then ``{prefix}_NNNNNN.npz`` files in order;
a rerun with the same fingerprint reads the consecutive files from the start and goes on after
the last, a rerun with another fingerprint is refused (its blocks would not belong to it).
Files are written to a temporary name and renamed, so a killed run leaves whole files only; the
temporary files a killed run leaves are deleted when the folder is next opened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from bayesflux.errors import ConfigError
from bayesflux.results import atomic_write, remove_stale_temps

__all__ = ["StateStore", "fingerprint", "open_checkpoint", "write_block"]


def fingerprint(arrays: tuple[np.ndarray, ...], **settings) -> str:
    """SHA-256 of ``arrays`` (rounded to 12 decimals) and the JSON of ``settings``."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.round(np.asarray(a, float), 12)).tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def open_checkpoint(directory: Path, stamp: str) -> None:
    """Create ``directory`` for the run ``stamp``, or check that it holds that run's blocks;
    temporary files of dead writers in it are deleted."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(directory)
    meta = directory / "meta.json"
    if meta.is_file():
        if json.loads(meta.read_text()).get("fingerprint") != stamp:
            raise ConfigError(
                f"checkpoint {directory} was written by a different run (other polytope, "
                "seed, chains, sampler settings or block size); use a new checkpoint folder"
            )
    else:
        atomic_write(meta, lambda tmp: Path(tmp).write_text(json.dumps({"fingerprint": stamp})))


def write_block(
    directory: Path, index: int, arrays: dict[str, np.ndarray], prefix: str = "block"
) -> None:
    """Write ``{prefix}_{index:06d}.npz`` atomically (temporary file, then rename)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(directory / f"{prefix}_{index:06d}.npz", write)


class StateStore:
    """The state a compiled sampler is in after each finished block, as a pytree of arrays:
    ``{prefix}_{index:06d}.npz`` in a checkpoint folder of the run ``stamp``.

    A sampler whose blocks depend on nothing but their state and their index (random numbers
    drawn per block from the seed) resumes exactly from the last stored block.
    """

    def __init__(self, directory: Path, stamp: str, prefix: str = "state") -> None:
        self.directory, self.prefix = Path(directory), prefix
        open_checkpoint(self.directory, stamp)

    def save(self, index: int, state, **arrays: np.ndarray) -> None:
        """Store ``state`` (PRNG keys as their raw data) and any extra named ``arrays``."""
        leaves = jax.tree.leaves(state)
        stored = {f"leaf{i}": np.asarray(_raw(x)) for i, x in enumerate(leaves)}
        write_block(self.directory, index, {**stored, **arrays}, self.prefix)

    def load(self, index: int, like):
        """The state stored for block ``index`` (structure of ``like``), or None."""
        path = self.directory / f"{self.prefix}_{index:06d}.npz"
        if not path.is_file():
            return None
        leaves, treedef = jax.tree.flatten(like)
        with np.load(path) as data:
            stored = [_like(data[f"leaf{i}"], leaf) for i, leaf in enumerate(leaves)]
        return jax.tree.unflatten(treedef, stored)

    def arrays(self, index: int) -> dict[str, np.ndarray]:
        """The extra arrays stored with block ``index``."""
        with np.load(self.directory / f"{self.prefix}_{index:06d}.npz") as data:
            return {k: data[k] for k in data.files if not k.startswith("leaf")}


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def _raw(x):
    return jax.random.key_data(x) if _is_key(x) else x


def _like(stored: np.ndarray, leaf):
    return jax.random.wrap_key_data(stored) if _is_key(leaf) else jnp.asarray(stored)
