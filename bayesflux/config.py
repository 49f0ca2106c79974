"""The config of ``bayesflux run CONFIG.toml``: its schema, the step registry and validation.

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
the step (index, kind and name) and the key. :func:`check_memory` refuses, once the network is
known, sampling steps whose draws would not fit in memory.

**Names.** A step's group in the output is its ``name``, default the kind (a ``posterior`` step is
``flux_posterior`` by default). A step may not take the name of an ArviZ group (``posterior``,
``sample_stats``, ...): ArviZ reads a DataTree named after a group as that group itself, so
``az.summary(results["posterior"])`` would find no variables.

The runner (fingerprints, shared outputs, diagnostics) is :mod:`bayesflux.pipeline`.
"""

from __future__ import annotations

import inspect
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import xarray as xr

from bayesflux.errors import ConfigError, NetworkError
from bayesflux.network import Network, as_network

__all__ = [
    "STEPS",
    "Step",
    "register_step",
    "load_config",
    "check_memory",
    "path_marker",
    "Config",
    "InputFile",
    "OutputDir",
    "RANGES",
]

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
    "tune_rounds": (lambda x: x >= 0, ">= 0"),
    "tune_draws": (lambda x: x >= 1, ">= 1"),
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
        """The model with ``[model] bounds`` applied; bounds the network refuses (an unknown
        reaction, ``lb = ub = inf``) are a ConfigError naming the config and the key."""
        network = as_network(self.model if self.model_file is None else self.model_file)
        if not self.bounds:
            return network
        try:
            return network.with_bounds(self.bounds)
        except NetworkError as exc:
            raise ConfigError(f"{self.path}: [model] bounds: {exc}") from exc


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


def path_marker(hint: Any) -> str | None:
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
        kind_of_path = path_marker(hints[key])
        if kind_of_path is not None:
            entry[key] = str(_path(path.parent, value, f"{where}: {key}"))
            if kind_of_path == "input file" and not Path(entry[key]).is_file():
                raise ConfigError(
                    f"{where}: {key}: input file {entry[key]} not found (paths are relative to "
                    f"the config's folder {path.parent})"
                )
    return name, kind, entry


def check_memory(config: Config, network: Network) -> None:
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


def _register_builtin_steps() -> None:
    """Import the modules that register steps (kept lazy: importing this module stays cheap)."""
    import bayesflux.steps  # noqa: F401
