"""The pipeline runner behind ``bayesflux run CONFIG.toml``.

The config (its format, paths relative to the config file, the schema from the step signatures,
the step registry) is :mod:`bayesflux.config`; this module runs a validated config.

**Groups.** Each finished step is written to the output at once (atomically), as one DataTree node
named after the step (``name``, default the kind; a ``posterior`` step is ``flux_posterior``).

**Reuse.** A rerun reuses a step already in the output when its fingerprint is unchanged: the
SHA-256 of its kind, its resolved options, the contents of the model file (a bundled dataset: its
name and the bayesflux and cobra versions that ship it), the ``[model] bounds`` and the contents of
every input file its options name. A stale step is recomputed and the summary says why ("model
file changed", "option fraction changed", ...).

**Shared outputs.** Several configs may write one output: each group records the config that wrote
it (``step_config``) and a run keeps the groups of other configs. A run whose step would replace a
group another config wrote is refused with a ConfigError naming both configs: replacing it would
silently lose that config's result, while keeping both configs' distinct groups loses nothing.
Writers serialise on a lock file beside the output (:func:`bayesflux.results.output_lock`) and
merge with the file as it is on disk at each write, so concurrent runs keep each other's groups;
temporary files of writers that were killed are deleted on the next run.

**Diagnostics.** Every step with a ``posterior`` group stores and logs its max R-hat and min
bulk / tail ESS and warns below the thresholds; a step whose chains never move is an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xarray as xr

from bayesflux.config import (
    RANGES,
    STEPS,
    Config,
    InputFile,
    OutputDir,
    Step,
    check_memory,
    load_config,
    path_marker,
    register_step,
)
from bayesflux.errors import BayesfluxError, ConfigError, SolverError
from bayesflux.network import Network
from bayesflux.results import output_lock, read_results, remove_stale_temps, write_netcdf

__all__ = [
    "run_config",
    # the config's names, re-exported: the runner is where users meet them
    "STEPS",
    "Step",
    "register_step",
    "load_config",
    "Config",
    "InputFile",
    "OutputDir",
    "RANGES",
]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- fingerprints
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_identity(config: Config) -> str:
    """The model file's SHA-256, or a bundled dataset's name and the versions that ship it."""
    if config.model_file is not None:
        return f"file sha256 {_sha256(config.model_file)}"
    from importlib.metadata import version

    from bayesflux import __version__

    return f"dataset {config.model} (bayesflux {__version__}, cobra {version('cobra')})"


def _inputs(config: Config, model: str, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Everything a step's result depends on, by part (compared to explain a recomputation)."""
    hints = STEPS[kind].hints
    files = {
        k: _sha256(Path(v)) for k, v in options.items() if path_marker(hints[k]) == "input file"
    }
    return {
        "kind": kind,
        "model": model,
        "bounds": {r: list(b) for r, b in config.bounds.items()},
        "options": options,
        "files": files,
    }


def _digest(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _why_stale(old: xr.DataTree, inputs: dict[str, Any]) -> str:
    """Why the group ``old`` no longer fits ``inputs`` (the summary's reason to recompute)."""
    try:
        before = json.loads(old.attrs["step_inputs"])
    except (KeyError, TypeError, ValueError):
        return "written by an older bayesflux"
    if before.get("kind") != inputs["kind"]:
        return f"step kind changed from {before.get('kind')}"
    if before.get("model") != inputs["model"]:
        return "model file changed" if inputs["model"].startswith("file") else "model changed"
    if before.get("bounds") != inputs["bounds"]:
        return "model bounds changed"
    reasons = []
    old_files = before.get("files", {})
    for key in sorted(set(old_files) | set(inputs["files"])):
        if old_files.get(key) != inputs["files"].get(key):
            reasons.append(f"{key} file changed")
    old_options = before.get("options", {})
    for key in sorted(set(old_options) | set(inputs["options"])):
        if key not in inputs["files"] and old_options.get(key) != inputs["options"].get(key):
            reasons.append(f"option {key} changed")
    return ", ".join(reasons) or "inputs changed"


# ------------------------------------------------------------------------------------- runner
def _owner(node: xr.DataTree) -> str | None:
    """The config that wrote a group; None for a group of a bayesflux before shared outputs,
    whose root ``config`` attribute is the path as typed (maybe relative to a working directory
    long gone), so it can name no config reliably: such a group is recomputed, not protected."""
    return node.attrs.get("step_config")


class _Output:
    """The output file as shared by configs: its groups by name and the config owning each.

    Every read and write happens inside :func:`~bayesflux.results.output_lock`; between writes
    of this run the file is re-read only if another writer changed it.
    """

    def __init__(self, config: Config, *, fresh: bool) -> None:
        self.config, self.path = config, config.output
        self.groups: dict[str, xr.DataTree] = {}
        self.owners: dict[str, str | None] = {}
        self._seen: tuple | None = None
        with output_lock(self.path):
            for tmp in remove_stale_temps(self.path, locked=True):
                log.info("removed %s, left by a killed writer", tmp)
            self._read()
        if fresh:  # recompute this config's steps; other configs' groups stay
            mine = str(config.path)
            self.groups = {k: v for k, v in self.groups.items() if self.owners[k] != mine}

    def _stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        try:
            root = read_results(self.path)
        except Exception as exc:  # an unreadable old output is recomputed, never trusted
            log.warning("ignoring unreadable previous output %s: %s", self.path, exc)
            self._seen = stamp
            return
        self.groups = dict(root.children.items())
        self.owners = {k: _owner(v) for k, v in self.groups.items()}
        self._seen = stamp

    def check_names(self) -> None:
        """Refuse a step whose group another config wrote to this output."""
        mine = str(self.config.path)
        for i, (name, kind, _) in enumerate(self.config.steps, start=1):
            owner = self.owners.get(name)
            if name in self.groups and owner not in (None, mine):
                raise ConfigError(
                    f"{self.config.path}: step {i} ({kind} {name!r}) would replace group "
                    f"{name!r} of {self.path}, written by config {owner}; give the step another "
                    "'name' or the config another [output] path"
                )

    def write(self, tree: xr.DataTree, network: Network) -> None:
        """Write this config's finished groups, keeping every other config's groups."""
        mine = str(self.config.path)
        with output_lock(self.path):
            self._read()
            self.check_names()
            out = xr.DataTree(name="bayesflux")
            out.attrs = {"config": mine, "model": self.config.model, "network": network.id}
            own = {name for name, _, _ in self.config.steps}
            for name, node in self.groups.items():
                if name not in tree.children and (self.owners[name] != mine or name in own):
                    out[name] = node
            for name, node in tree.children.items():
                out[name] = node
            write_netcdf(out, self.path)
            self.groups = dict(out.children.items())
            self.owners = {k: _owner(v) for k, v in self.groups.items()}
            self._seen = self._stamp()


@contextmanager
def _step_context(config: Config, i: int, name: str, kind: str) -> Iterator[None]:
    """Prefix a bayesflux error raised by step ``i`` with the config file and the step."""
    try:
        yield
    except BayesfluxError as exc:
        exc.args = (f"{config.path}: step {i} ({kind} {name!r}): {exc}", *exc.args[1:])
        raise


def _frozen_chains(posterior: xr.Dataset) -> list[int]:
    """Chains in which no posterior variable ever moves (with at least two draws)."""
    if posterior.sizes.get("draw", 0) < 2:
        return []
    moving = None
    for var in posterior.data_vars.values():
        moves = (var != var.isel(draw=0)).any([d for d in var.dims if d != "chain"])
        moving = moves if moving is None else moving | moves
    return [] if moving is None else [int(c) for c in (~moving).values.nonzero()[0]]


def _diagnose(name: str, node: xr.DataTree) -> None:
    """Store and log a sampled step's max R-hat and min bulk / tail ESS; warn when they miss
    :data:`~bayesflux.infer.run.RHAT_THRESHOLD` / ``ESS_THRESHOLD``; frozen chains are an
    error (every chain) or a warning (some)."""
    from bayesflux.infer.convert import diagnostics
    from bayesflux.infer.run import ESS_THRESHOLD, RHAT_THRESHOLD

    posterior = node["posterior"].to_dataset()
    frozen = _frozen_chains(posterior)
    chains = posterior.sizes.get("chain", 1)
    if frozen and len(frozen) == chains:
        raise SolverError(
            f"step {name!r}: every chain is frozen (no draw moved: sd 0, acceptance 0); the "
            "sampler or its data are broken, so the result is not saved"
        )
    if frozen:
        log.warning("[%s] chain(s) %s never moved: the sampler is stuck there", name, frozen)
    keys = ("max_rhat", "min_ess_bulk", "min_ess_tail")
    if not all(k in node.attrs for k in keys):
        diag = {k: float(v) for k, v in diagnostics(node).data_vars.items()}
        node.attrs["max_rhat"] = max(v for k, v in diag.items() if k.endswith("max_rhat"))
        node.attrs["min_ess_bulk"] = min(v for k, v in diag.items() if k.endswith("ess_bulk"))
        node.attrs["min_ess_tail"] = min(v for k, v in diag.items() if k.endswith("ess_tail"))
    rhat, bulk, tail = (float(node.attrs[k]) for k in keys)
    log.info("[%s] max R-hat %.4f, min bulk ESS %.0f, min tail ESS %.0f", name, rhat, bulk, tail)
    if not rhat <= RHAT_THRESHOLD or not min(bulk, tail) >= ESS_THRESHOLD:
        log.warning(
            "[%s] the chains have not converged: max R-hat %.3f (want <= %s), min bulk / tail "
            "ESS %.0f / %.0f (want >= %d); draw longer chains",
            name, rhat, RHAT_THRESHOLD, bulk, tail, ESS_THRESHOLD,
        )  # fmt: skip


def run_config(
    path: str | Path,
    *,
    fresh: bool = False,
    echo: Callable[[str], None] | None = None,
) -> xr.DataTree:
    """Run every step of a config, writing the output after each one; returns the DataTree of
    this config's groups. Summary lines go to ``echo`` (default: this module's logger at INFO);
    warnings always to the logger."""
    say = echo or log.info
    config = load_config(path)
    network = config.network()
    say(network.summary())
    check_memory(config, network)
    output = _Output(config, fresh=fresh)
    output.check_names()
    model = _model_identity(config)
    tree = xr.DataTree(name="bayesflux")
    tree.attrs = {"config": str(config.path), "model": config.model, "network": network.id}
    previous: dict[str, xr.Dataset | xr.DataTree] = {}
    for i, (name, kind, options) in enumerate(config.steps, start=1):
        step = STEPS[kind]
        inputs = _inputs(config, model, kind, options)
        fingerprint = _digest(inputs)
        old = None if fresh else output.groups.get(name)
        if old is not None and old.attrs.get("step_fingerprint") == fingerprint:
            say(f"[{name}] reused from {config.output}")
            node = old.copy()
        else:
            why = "--fresh" if fresh else "new" if old is None else _why_stale(old, inputs)
            say(f"[{name}] running {kind} {options or ''}".rstrip() + f" ({why})")
            with _step_context(config, i, name, kind), warnings.catch_warnings():
                # _diagnose says it once, naming the step
                warnings.filterwarnings("ignore", "the chains have not converged", UserWarning)
                result = step.function(network, previous=previous, **options)
                node = result.copy() if isinstance(result, xr.DataTree) else xr.DataTree(result)
                node.attrs = {
                    **node.attrs,
                    "step_kind": kind,
                    "step_fingerprint": fingerprint,
                    "step_inputs": json.dumps(inputs, sort_keys=True, default=str),
                    "step_config": str(config.path),
                }
                if "posterior" in node.children:
                    _diagnose(name, node)
        tree[name] = node
        previous[name] = tree[name]
        say(f"[{name}] {step.summarize(tree[name])}")
        output.write(tree, network)
        if config.report is not None and "posterior" in tree[name].children:
            from bayesflux.report import write_report

            paths = write_report(tree[name], config.report / name)
            say(f"[{name}] report: {', '.join(p.name for p in paths)} in {config.report / name}")
    say(f"wrote {config.output}")
    return tree
