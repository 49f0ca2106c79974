"""The pipeline runner behind ``bayesflux run CONFIG.toml``.

A config names a model, optional bound overrides, an output file and a list of steps::

    [model]
    source = "textbook"                      # bundled dataset, or SBML / JSON / .mat path
    bounds = { EX_glc__D_e = [-10, 1000] }   # optional

    [output]
    path = "results/ecoli_core.nc"           # default "results.nc"
    report = "results/report"                # optional: plots + summary.csv of sampled steps

    [[step]]
    kind = "fva"                             # a registered step (see STEPS)
    name = "fva_90"                          # optional: its group in the output (default: kind)
    fraction = 0.9                           # the step's keyword options

**Paths.** Every path in a config (the model file, ``[output]`` paths, and every step option
annotated :data:`InputFile` or :data:`OutputDir`: expression tables, FTBL files, checkpoint
folders) is relative to the folder of the config file, never to the working directory.

**Schema.** :func:`load_config` checks the whole config before any work: unknown sections and keys,
the type of every option (from the step function's annotations: ``int`` takes no ``1.5`` or
``true``, ``float`` no ``"high"``, ``Literal`` only its values, ``TypedDict`` tables only their
keys), ranges of common options (:data:`RANGES`), measured values with a finite sd > 0, and that
input files exist. Every error is a :class:`~bayesflux.errors.ConfigError` naming the config file,
the step (index, kind and name) and the key.

**Groups.** Each finished step is written to the output at once (atomically), as one DataTree node
named after the step (``name``, default the kind; a ``posterior`` step is ``flux_posterior`` by
default). A step may not take the name of an ArviZ group (``posterior``, ``sample_stats``, ...):
ArviZ reads a DataTree named after a group as that group itself, so
``az.summary(results["posterior"])`` would find no variables.

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
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import tomllib
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import xarray as xr

from bayesflux.errors import BayesfluxError, ConfigError, SolverError
from bayesflux.network import Network, as_network
from bayesflux.results import output_lock, read_results, remove_stale_temps, write_netcdf

__all__ = [
    "STEPS",
    "Step",
    "register_step",
    "load_config",
    "run_config",
    "Config",
    "InputFile",
    "OutputDir",
    "RANGES",
]

log = logging.getLogger(__name__)

StepFunction = Callable[..., xr.Dataset | xr.DataTree]

#: a step option naming a file the step reads: resolved against the config's folder, checked to
#: exist, and its contents part of the step's fingerprint
InputFile = Annotated[str, "input file"]
#: a step option naming a folder the step writes (a checkpoint): resolved against the config's
#: folder
OutputDir = Annotated[str, "output folder"]


@dataclass(frozen=True)
class Step:
    """A pipeline step: ``function(network, *, previous, **options) -> Dataset | DataTree``."""

    kind: str
    function: StepFunction
    summarize: Callable[[xr.Dataset | xr.DataTree], str]

    @property
    def options(self) -> dict[str, inspect.Parameter]:
        params = inspect.signature(self.function).parameters
        return {
            k: p
            for k, p in params.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "previous"
        }

    @property
    def hints(self) -> dict[str, Any]:
        """The type annotation of each option (with ``Annotated`` markers kept)."""
        hints = typing.get_type_hints(self.function, include_extras=True)
        return {k: hints.get(k, Any) for k in self.options}


STEPS: dict[str, Step] = {}

#: the groups of the ArviZ InferenceData schema (each also with a ``warmup_`` prefix): no step
#: node may be named after one, since ArviZ takes a DataTree of that name for the group itself
_ARVIZ_GROUPS = frozenset(
    {
        "posterior",
        "posterior_predictive",
        "predictions",
        "log_likelihood",
        "log_prior",
        "sample_stats",
        "prior",
        "prior_predictive",
        "sample_stats_prior",
        "observed_data",
        "constant_data",
        "predictions_constant_data",
        "unconstrained_posterior",
        "unconstrained_prior",
    }
)

#: ranges of step options, by option name (the same meaning in every step that has the option)
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "num_draws": (lambda x: x >= 1, ">= 1"),
    "num_chains": (lambda x: x >= 1, ">= 1"),
    "num_warmup": (lambda x: x >= 0, ">= 0"),
    "thinning": (lambda x: x >= 1, ">= 1"),
    "block_size": (lambda x: x >= 1, ">= 1"),
    "repeats": (lambda x: x >= 1, ">= 1"),
    "n_starts": (lambda x: x >= 1, ">= 1"),
    "seed": (lambda x: 0 <= x < 2**32, "in [0, 2**32)"),
    "fraction": (lambda x: 0 <= x <= 1, "in [0, 1]"),
    "quantile": (lambda x: 0 <= x <= 1, "in [0, 1]"),
    "low_quantile": (lambda x: 0 <= x <= 1, "in [0, 1]"),
    "high_quantile": (lambda x: 0 <= x <= 1, "in [0, 1]"),
    "alpha": (lambda x: 0 < x < math.inf, "finite and > 0"),
    "eps": (lambda x: 0 < x < math.inf, "finite and > 0"),
    "xch_max": (lambda x: 0 < x < math.inf, "finite and > 0"),
    "labeling_xch_max": (lambda x: 0 < x < math.inf, "finite and > 0"),
    "time_limit": (lambda x: 0 < x < math.inf, "finite and > 0"),
    "mip_rel_gap": (lambda x: 0 <= x < math.inf, "finite and >= 0"),
}

#: options whose entries are pairs, with their meaning (named in errors)
_PAIRS = {
    "bounds": "[lower, upper]",
    "lnc_bounds": "[lower, upper]",
    "fluxes": "[value, sd]",
    "metabolome": "[concentration, sd]",
}


def _default_name(kind: str) -> str:
    """The node name of a step without ``name``: its kind, ``flux_<kind>`` for a kind that is an
    ArviZ group name (the ``posterior`` step is ``flux_posterior``)."""
    return f"flux_{kind}" if _is_arviz_group(kind) else kind


def _is_arviz_group(name: str) -> bool:
    return name.removeprefix("warmup_") in _ARVIZ_GROUPS


def register_step(
    kind: str, *, summarize: Callable[[xr.Dataset | xr.DataTree], str] | None = None
) -> Callable[[StepFunction], StepFunction]:
    """Decorator registering ``function(network, *, previous, **options)`` as a step kind."""

    def decorate(function: StepFunction) -> StepFunction:
        STEPS[kind] = Step(kind, function, summarize or _default_summary)
        return function

    return decorate


def _default_summary(result: xr.Dataset | xr.DataTree) -> str:
    ds = result.to_dataset() if isinstance(result, xr.DataTree) else result
    names = ", ".join(f"{k}{tuple(v.dims)}" for k, v in ds.data_vars.items())
    return f"variables: {names}"


@dataclass(frozen=True)
class Config:
    """A parsed, validated pipeline configuration (every path resolved)."""

    path: Path
    model: str
    bounds: dict[str, tuple[float, float]]
    output: Path
    steps: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # name, kind, opts
    report: Path | None = None
    model_file: Path | None = None  # None: ``model`` is a bundled dataset

    def network(self) -> Network:
        network = as_network(self.model if self.model_file is None else self.model_file)
        return network.with_bounds(self.bounds) if self.bounds else network


# ---------------------------------------------------------------------------------- the schema
def _plain(hint: Any) -> Any:
    """``hint`` without its ``Annotated`` markers."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _describe(hint: Any) -> str:
    hint = _plain(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is Literal:
        return _one_of(args)
    if origin is tuple:
        return "[" + ", ".join(_describe(a) for a in args) + "]"
    if origin is list:
        return f"a list of {_describe(args[0]) if args else 'values'}"
    if origin is dict or hint is dict or typing.is_typeddict(hint):
        return "a table"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _one_of(values: tuple) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _invalid(value: Any, hint: Any, key: str) -> str | None:
    """Why ``value`` (from TOML) does not fit the annotation ``hint``, naming ``key``; None if it
    fits."""
    hint = _plain(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        reasons = [_invalid(value, a, key) for a in arms]
        if None in reasons:
            return None
        return reasons[0] if len(arms) == 1 else f"{key} = {value!r} must be {_describe(hint)}"
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return None
        return f"{key} must be {_one_of(args)}, not {value!r}"
    if hint is bool:
        return None if isinstance(value, bool) else f"{key} = {value!r} must be true or false"
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"{key} = {value!r} must be an integer"
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return None
        return f"{key} = {value!r} must be a number"
    if hint is str:
        return None if isinstance(value, str) else f"{key} = {value!r} must be a string"
    if origin is tuple:
        if not (isinstance(value, list) and len(value) == len(args)):
            return f"{key} must be {_describe(hint)}, got {value!r}"
        reasons = (_invalid(v, a, f"{key}[{j}]") for j, (a, v) in enumerate(zip(args, value)))
        return next((r for r in reasons if r is not None), None)
    if origin is list:
        if not isinstance(value, list):
            return f"{key} = {value!r} must be {_describe(hint)}"
        item = args[0] if args else Any
        return next(
            (r for i, v in enumerate(value) if (r := _invalid(v, item, f"{key}[{i}]")) is not None),
            None,
        )
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return f"{key} = {value!r} must be a table"
        fields = typing.get_type_hints(hint)
        unknown = sorted(set(value) - set(fields))
        if unknown:
            return f"{key} has unknown key(s) {unknown}; allowed: {', '.join(fields)}"
        missing = sorted(hint.__required_keys__ - set(value))
        if missing:
            return f"{key} needs {', '.join(missing)}"
        return next(
            (
                r
                for k, v in value.items()
                if (r := _invalid(v, fields[k], f"{key}.{k}")) is not None
            ),
            None,
        )
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            return f"{key} = {value!r} must be a table"
        item = args[1] if len(args) == 2 else Any
        return next(
            (
                r
                for k, v in value.items()
                if (r := _invalid(v, item, f"{key} for {k!r}")) is not None
            ),
            None,
        )
    return None


def _pair_problem(option: str, entry: str, pair: list) -> str | None:
    """What is wrong with a (type-checked) pair of ``option`` (:data:`_PAIRS`), or None."""
    a, b = (float(x) for x in pair)
    where = f"{option} for {entry!r}"
    if _PAIRS[option] == "[lower, upper]":
        return f"{where}: lower {a} > upper {b}" if a > b else None
    if not 0 < b < math.inf:
        return f"{where}: sd must be a finite number > 0, got {b}"
    if not math.isfinite(a) or (_PAIRS[option].startswith("[concentration") and a <= 0):
        return f"{where}: {_PAIRS[option][1:].split(',')[0]} {a} is not allowed"
    return None


def _check_option(option: str, value: Any, hint: Any) -> str | None:
    """Type, range and pair checks of one option value; the reason it is bad, or None."""
    if option in _PAIRS and isinstance(value, dict):
        for entry, pair in value.items():
            if not (isinstance(pair, list) and len(pair) == 2):
                return f"{option} for {entry!r} must be {_PAIRS[option]}, got {pair!r}"
    reason = _invalid(value, hint, option)
    if reason is not None:
        return reason
    if option in _PAIRS and isinstance(value, dict):
        return next(
            (r for k, p in value.items() if (r := _pair_problem(option, k, p)) is not None), None
        )
    if option in RANGES and isinstance(value, int | float) and not isinstance(value, bool):
        test, text = RANGES[option]
        if not test(value):
            return f"{option} = {value!r} must be {text}"
    if option == "constraints" and isinstance(value, list):
        for i, table in enumerate(value):
            if table.get("lower", -math.inf) > table.get("upper", math.inf):
                return f"constraints[{i}]: lower {table['lower']} > upper {table['upper']}"
    return None


def _marker(hint: Any) -> str | None:
    """``"input file"`` / ``"output folder"`` for :data:`InputFile` / :data:`OutputDir` options."""
    for arm in typing.get_args(hint) or (hint,):
        if typing.get_origin(arm) is Annotated:
            return next((m for m in arm.__metadata__ if isinstance(m, str)), None)
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, str)), None)
    return None


def _table(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _known_keys(table: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {unknown}; allowed: {', '.join(allowed)}")


def _path(folder: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} = {value!r} must be a path (a string)")
    return (folder / value).resolve()


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config (the module docstring's schema); errors name the file,
    the step and the key at fault."""
    _register_builtin_steps()
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    folder = path.parent
    unknown = set(raw) - {"model", "output", "step"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; use model, output, step")
    model = _table(raw, "model", str(path))
    _known_keys(model, ("source", "bounds"), f"{path}: [model]")
    source = model.get("source")
    if source is None:
        raise ConfigError(f"{path}: [model] needs 'source' (a dataset name or a model file)")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{path}: [model] source = {source!r} must be a dataset name or a path")
    bounds_raw = model.get("bounds", {})
    reason = _check_option("bounds", bounds_raw, dict[str, tuple[float, float]])
    if reason is not None:
        raise ConfigError(f"{path}: [model] {reason}")
    bounds = {r: (float(a), float(b)) for r, (a, b) in bounds_raw.items()}
    model_file = _model_file(folder, source, path)
    output_table = _table(raw, "output", str(path))
    _known_keys(output_table, ("path", "report"), f"{path}: [output]")
    output = _path(folder, output_table.get("path", "results.nc"), f"{path}: [output] path")
    report = output_table.get("report")
    if report is not None:
        report = _path(folder, report, f"{path}: [output] report")
    steps_raw = raw.get("step", [])
    if not isinstance(steps_raw, list) or not steps_raw:
        raise ConfigError(f"{path}: no [[step]] given; known kinds: {', '.join(sorted(STEPS))}")
    steps, names = [], set()
    for i, entry in enumerate(steps_raw, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: step {i} must be a [[step]] table, got {entry!r}")
        name, kind, options = _step(path, i, dict(entry))
        if name in names:
            raise ConfigError(f"{path}: step {i}: name {name!r} is used twice; give a 'name'")
        names.add(name)
        steps.append((name, kind, options))
    return Config(path, source, bounds, output, steps, report, model_file)


def _model_file(folder: Path, source: str, config: Path) -> Path | None:
    """The model file ``source`` names (relative to ``folder``), None for a bundled dataset."""
    from bayesflux.datasets import AVAILABLE

    candidate = (folder / source).resolve()
    if candidate.is_file():
        return candidate
    if source in AVAILABLE:
        return None
    raise ConfigError(
        f"{config}: [model] source: no model file {candidate} (paths are relative to the "
        f"config's folder) and no bundled dataset {source!r} (bundled: {', '.join(AVAILABLE)})"
    )


def _step(path: Path, i: int, entry: dict) -> tuple[str, str, dict[str, Any]]:
    """Validate one ``[[step]]`` table: its name, kind and resolved options."""
    kind = entry.pop("kind", None)
    if not isinstance(kind, str) or kind not in STEPS:
        raise ConfigError(
            f"{path}: step {i} has kind {kind!r}; known kinds: {', '.join(sorted(STEPS))}"
        )
    name = entry.pop("name", _default_name(kind))
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"{path}: step {i} ({kind}): name {name!r} must be a string without '/'")
    where = f"{path}: step {i} ({kind}" + (f" {name!r})" if name != _default_name(kind) else ")")
    if _is_arviz_group(name):
        raise ConfigError(
            f"{path}: step {i}: name {name!r} is an ArviZ group name, which ArviZ would take "
            f"for that group rather than the step's DataTree; give another 'name'"
        )
    step = STEPS[kind]
    allowed, hints = step.options, step.hints
    bad = set(entry) - set(allowed)
    if bad:
        raise ConfigError(
            f"{where}: unknown option(s) {sorted(bad)}; allowed: {', '.join(allowed) or 'none'}"
        )
    missing = [k for k, p in allowed.items() if p.default is inspect.Parameter.empty]
    missing = [k for k in missing if k not in entry]
    if missing:
        raise ConfigError(f"{where}: missing option(s) {missing}")
    for key, value in entry.items():
        reason = _check_option(key, value, hints[key])
        if reason is not None:
            raise ConfigError(f"{where}: {reason}")
        marker = _marker(hints[key])
        if marker is not None:
            entry[key] = str(_path(path.parent, value, f"{where}: {key}"))
            if marker == "input file" and not Path(entry[key]).is_file():
                raise ConfigError(
                    f"{where}: {key}: input file {entry[key]} not found (paths are relative to "
                    f"the config's folder {path.parent})"
                )
    return name, kind, entry


def _memory_check(config: Config, network: Network) -> None:
    """Refuse up front a sampling step whose draws would not fit in this machine's memory."""
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return
    for i, (name, kind, options) in enumerate(config.steps, start=1):
        defaults = {k: p.default for k, p in STEPS[kind].options.items()}
        if "num_draws" not in defaults:
            continue
        chains = options.get("num_chains", defaults.get("num_chains") or 1)
        draws = options.get("num_draws", defaults["num_draws"])
        block = min(options.get("block_size", defaults.get("block_size")) or draws, draws)
        # the kept draws, one block being collected, and the copy made joining the blocks
        need = 8 * chains * network.n_reactions * (2 * draws + block)
        if need > available:
            raise ConfigError(
                f"{config.path}: step {i} ({kind} {name!r}): {chains} chains x {draws} draws "
                f"(block_size {block}) of {network.n_reactions} fluxes need about "
                f"{need / 2**30:.3g} GiB, more than this machine's {available / 2**30:.3g} GiB; "
                "lower num_draws, num_chains or block_size"
            )


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
    files = {k: _sha256(Path(v)) for k, v in options.items() if _marker(hints[k]) == "input file"}
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
def _owner(node: xr.DataTree, root: xr.DataTree) -> str | None:
    return node.attrs.get("step_config", root.attrs.get("config"))


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
        self.owners = {k: _owner(v, root) for k, v in self.groups.items()}
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
            self.owners = {k: _owner(v, out) for k, v in self.groups.items()}
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
    _memory_check(config, network)
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


def _register_builtin_steps() -> None:
    """Import the modules that register steps (kept lazy so importing the runner is cheap)."""
    import bayesflux.steps  # noqa: F401
