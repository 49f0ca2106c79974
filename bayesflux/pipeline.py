"""The pipeline runner behind ``bayesflux run CONFIG.toml``.

A config names a model, optional bound overrides, an output file and a list of steps::

    [model]
    source = "textbook"                      # bundled dataset, or SBML / JSON / .mat path
    bounds = { EX_glc__D_e = [-10, 1000] }   # optional

    [output]
    path = "results/ecoli_core.nc"           # relative to the config file
    report = "results/report"                # optional: plots + summary.csv of sampled steps

    [[step]]
    kind = "fva"                             # a registered step (see STEPS)
    fraction = 0.9                           # the step's keyword options

Each finished step is written to the output at once (atomically), as one DataTree node named after
the step (``name``, default the kind; a ``posterior`` step is ``flux_posterior`` by default). A
step may not take the name of an ArviZ group (``posterior``, ``sample_stats``, ...): ArviZ reads
a DataTree named after a group as that group itself, so ``az.summary(results["posterior"])`` would
find no variables. Re-running the same config reuses the steps already in the output whose
options are unchanged, so an interrupted run loses nothing it had finished.
"""

from __future__ import annotations

import inspect
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from bayesflux.errors import ConfigError
from bayesflux.network import Network, as_network
from bayesflux.results import read_results, write_netcdf

__all__ = ["STEPS", "Step", "register_step", "load_config", "run_config", "Config"]

StepFunction = Callable[..., xr.Dataset | xr.DataTree]


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
    """A parsed pipeline configuration."""

    path: Path
    model: str
    bounds: dict[str, tuple[float, float]]
    output: Path
    steps: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # name, kind, opts
    report: Path | None = None

    def network(self) -> Network:
        source = self.model
        candidate = self.path.parent / source
        network = as_network(candidate if candidate.exists() else source)
        return network.with_bounds(self.bounds) if self.bounds else network


def _table(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; errors name the file, the step and the key at fault."""
    _register_builtin_steps()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    unknown = set(raw) - {"model", "output", "step"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; use model, output, step")
    model = _table(raw, "model", str(path))
    if "source" not in model:
        raise ConfigError(f"{path}: [model] needs 'source' (a dataset name or a model file)")
    bounds = {}
    for rxn, pair in _table(model, "bounds", f"{path} [model]").items():
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ConfigError(f"{path}: bounds for {rxn!r} must be [lower, upper]")
        bounds[rxn] = (float(pair[0]), float(pair[1]))
    output_table = _table(raw, "output", str(path))
    unknown = set(output_table) - {"path", "report"}
    if unknown:
        raise ConfigError(f"{path}: [output] has unknown key(s) {sorted(unknown)}")
    output = output_table.get("path", "results.nc")
    report = output_table.get("report")
    steps_raw = raw.get("step", [])
    if not isinstance(steps_raw, list) or not steps_raw:
        raise ConfigError(f"{path}: no [[step]] given; known kinds: {', '.join(sorted(STEPS))}")
    steps, names = [], set()
    for i, entry in enumerate(steps_raw, start=1):
        entry = dict(entry)
        kind = entry.pop("kind", None)
        if kind not in STEPS:
            raise ConfigError(
                f"{path}: step {i} has kind {kind!r}; known kinds: {', '.join(sorted(STEPS))}"
            )
        name = str(entry.pop("name", _default_name(kind)))
        if _is_arviz_group(name):
            raise ConfigError(
                f"{path}: step {i}: name {name!r} is an ArviZ group name, which ArviZ would take "
                f"for that group rather than the step's DataTree; give another 'name'"
            )
        if name in names:
            raise ConfigError(f"{path}: step {i}: name {name!r} is used twice; give a 'name'")
        names.add(name)
        allowed = STEPS[kind].options
        bad = set(entry) - set(allowed)
        if bad:
            raise ConfigError(
                f"{path}: step {i} ({kind}): unknown option(s) {sorted(bad)}; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
        steps.append((name, kind, entry))
    return Config(
        path,
        str(model["source"]),
        bounds,
        (path.parent / output).resolve(),
        steps,
        None if report is None else (path.parent / report).resolve(),
    )


def _fingerprint(config: Config, kind: str, options: dict[str, Any]) -> str:
    return json.dumps(
        {"model": config.model, "bounds": config.bounds, "kind": kind, "options": options},
        sort_keys=True,
        default=str,
    )


def run_config(
    path: str | Path,
    *,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
) -> xr.DataTree:
    """Run every step of a config, writing the output after each one; returns the DataTree."""
    config = load_config(path)
    network = config.network()
    echo(network.summary())
    done: dict[str, xr.DataTree] = {}
    if config.output.exists() and not fresh:
        try:
            done = {k: v for k, v in read_results(config.output).children.items()}
        except Exception as exc:  # an unreadable old output is recomputed, never trusted
            echo(f"ignoring unreadable previous output {config.output}: {exc}")
    tree = xr.DataTree(name="bayesflux")
    tree.attrs = {"config": str(config.path), "model": config.model, "network": network.id}
    previous: dict[str, xr.Dataset | xr.DataTree] = {}
    for name, kind, options in config.steps:
        step = STEPS[kind]
        fingerprint = _fingerprint(config, kind, options)
        old = done.get(name)
        if old is not None and old.attrs.get("step_fingerprint") == fingerprint:
            echo(f"[{name}] reused from {config.output}")
            node = old.copy()
        else:
            echo(f"[{name}] running {kind} {options or ''}".rstrip())
            result = step.function(network, previous=previous, **options)
            node = result.copy() if isinstance(result, xr.DataTree) else xr.DataTree(result)
            node.attrs = {**node.attrs, "step_kind": kind, "step_fingerprint": fingerprint}
        tree[name] = node
        previous[name] = tree[name]
        echo(f"[{name}] {step.summarize(tree[name])}")
        write_netcdf(tree, config.output)
        if config.report is not None and "posterior" in tree[name].children:
            from bayesflux.report import write_report

            paths = write_report(tree[name], config.report / name)
            echo(f"[{name}] report: {', '.join(p.name for p in paths)} in {config.report / name}")
    echo(f"wrote {config.output}")
    return tree


def _register_builtin_steps() -> None:
    """Import the modules that register steps (kept lazy so importing the runner is cheap)."""
    import bayesflux.steps  # noqa: F401
