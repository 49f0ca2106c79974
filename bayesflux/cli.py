"""The ``bayesflux`` command line: ``info``, ``fba``, ``fva``, ``run`` and ``steps``.

Any error prints one line, ``bayesflux: error: ...``, and exits with status 1 (2 for usage
errors, 130 on Ctrl-C); ``--debug`` prints the traceback instead. Progress and summaries are log
records of the ``bayesflux`` logger, which this module alone gives a handler: INFO and DEBUG to
stdout, warnings and errors to stderr; ``-q`` keeps warnings and errors only, ``-v`` adds DEBUG.
Heavy modules (JAX, cvxpy, cobra, xarray) are imported only by the command that needs them.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bayesflux.errors import BayesfluxError, ConfigError

log = logging.getLogger("bayesflux")

_MODEL_HELP = "SBML/JSON/.mat model file or bundled dataset (small, textbook, iJO1366, ...)"
_OUTPUT_HELP = "write the result to this NetCDF file and print a summary instead of the table"
_TOLERANCE = 1e-9  # a flux below this is zero
#: errors whose message is the whole story (not ``RuntimeError`` itself, which NumPy, JAX and
#: cvxpy raise for their own failures too)
_ON_PURPOSE = (BayesfluxError, ValueError, KeyError, OSError)


def _verbosity(*, defaults: bool) -> argparse.ArgumentParser:
    """``-q``/``-v``/``--debug``, accepted before and after the command; only the top-level
    parser sets defaults, so a subcommand's absent flag does not reset one given before it."""
    parent = argparse.ArgumentParser(
        add_help=False, argument_default=None if defaults else argparse.SUPPRESS
    )
    group = parent.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
    group.add_argument("-v", "--verbose", action="store_true", help="print debug messages too")
    parent.add_argument(
        "--debug", action="store_true", help="print the traceback of an error, not one line"
    )
    return parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesflux",
        description="Bayesian inference of metabolic fluxes.",
        parents=[_verbosity(defaults=True)],
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    common = [_verbosity(defaults=False)]

    p = sub.add_parser("info", help="describe a model", parents=common)
    p.add_argument("model", help=_MODEL_HELP)

    p = sub.add_parser("fba", help="flux balance analysis", parents=common)
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("-o", "--output", help=_OUTPUT_HELP)

    p = sub.add_parser("fva", help="flux variability analysis", parents=common)
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--fraction", type=float, default=1.0, help="fraction of the optimum (1.0)")
    p.add_argument("-o", "--output", help=_OUTPUT_HELP)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser(
        "run", help="run the steps of a TOML config and write results", parents=common
    )
    p.add_argument("config", help="TOML config (see examples/; paths relative to the config file)")
    p.add_argument("--fresh", action="store_true", help="recompute steps already in the output")

    p = sub.add_parser(
        "steps", help="list the step kinds of a config with their options", parents=common
    )
    p.add_argument("kind", nargs="*", help="show only these kinds")
    return parser


def _info(model: str) -> None:
    from bayesflux.network import as_network

    network = as_network(model)
    print(network.summary())
    groups = network.gpr_groups()
    shared = sum(1 for g in groups.values() if len(g) > 1)
    print(f"{len(groups)} distinct GPR rules, {shared} shared by several reactions")


def _optimise(args: argparse.Namespace) -> None:
    """``fba``/``fva``: the table on stdout, or with ``-o`` the file and the step's summary."""
    import bayesflux
    from bayesflux.network import as_network

    network = as_network(args.model)
    if args.command == "fba":
        result = bayesflux.fba(network)
        print(f"objective value: {result.attrs['objective_value']:.10g}")
        flux = result["flux"].to_series()
        table = flux[flux.abs() > _TOLERANCE]
        log.debug("%d of %d reactions carry flux", len(table), len(flux))
    else:
        result = bayesflux.fva(network, fraction=args.fraction, progress=not args.no_progress)
        table = result.to_dataframe()
    if args.output is None:
        print(table.to_string())
        return
    import bayesflux.steps  # noqa: F401  (registers the steps whose summaries are used here)
    from bayesflux.pipeline import STEPS

    path = bayesflux.write_netcdf(result, args.output)
    log.info("%s: %s", args.command, STEPS[args.command].summarize(result))
    log.info("wrote %s", path)


def _describe(parameter: inspect.Parameter) -> str:
    """``name: type = default`` of one step option, as in its function's signature."""
    text = parameter.name
    if parameter.annotation is not inspect.Parameter.empty:
        annotation = parameter.annotation
        if not isinstance(annotation, str):
            annotation = inspect.formatannotation(annotation)
        text += f": {annotation}"
    if parameter.default is inspect.Parameter.empty:
        return f"{text}  (required)"
    return f"{text} = {parameter.default!r}"


def _steps(kinds: Sequence[str]) -> None:
    """Print each registered step kind, its docstring's first line and its options."""
    import bayesflux.steps  # noqa: F401  (registers the built-in steps)
    from bayesflux.pipeline import STEPS

    unknown = [k for k in kinds if k not in STEPS]
    if unknown:
        raise ConfigError(f"unknown step kind(s) {unknown}; known kinds: {', '.join(STEPS)}")
    print(
        "A [[step]] table takes kind, name (its output group; default the kind) and the options "
        "below.\nInputFile and OutputDir paths are relative to the config file."
    )
    for kind in kinds or sorted(STEPS):
        step = STEPS[kind]
        doc = inspect.getdoc(step.function)
        print(f"\n{kind}" + (f": {doc.splitlines()[0]}" if doc else ""))
        options = step.options.values()
        for parameter in options:
            print(f"    {_describe(parameter)}")
        if not options:
            print("    (no options)")


def _main(args: argparse.Namespace) -> int:
    if args.version:
        import bayesflux

        print(bayesflux.__version__)
    elif args.command == "info":
        _info(args.model)
    elif args.command in ("fba", "fva"):
        _optimise(args)
    elif args.command == "run":
        from bayesflux.pipeline import run_config

        run_config(args.config, fresh=args.fresh)
    elif args.command == "steps":
        _steps(args.kind)
    else:
        _parser().print_help()
        return 2
    return 0


class _Formatter(logging.Formatter):
    """One line per record: plain for INFO, ``bayesflux: warning: ...`` above it (another
    library's logger named), ``debug: logger: ...`` below it; tracebacks only with ``--debug``."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.tracebacks and record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.WARNING:
            origin = "" if _ours(record) else f"{record.name}: "
            return f"bayesflux: {record.levelname.lower()}: {origin}{message}"
        if record.levelno < logging.INFO:
            return f"debug: {record.name}: {message}"
        return message


def _ours(record: logging.LogRecord) -> bool:
    return record.name == log.name or record.name.startswith(f"{log.name}.")


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Python warnings as one log line each (the category named unless a plain UserWarning)."""
    name = "" if category is UserWarning else f"{category.__name__}: "
    log.warning("%s%s", name, message)


@contextmanager
def _logging(level: int, *, tracebacks: bool) -> Iterator[None]:
    """Handlers on the root logger for one command, removed again afterwards.

    ``bayesflux`` logs at ``level``: INFO and DEBUG to stdout, warnings and errors to stderr.
    Other libraries (cobra logs a traceback with every malformed GPR rule) reach stderr with
    their warnings and errors only, one line each.
    """
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(lambda record: record.levelno < logging.WARNING and _ours(record))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in (out, err):
        handler.setFormatter(_Formatter(tracebacks=tracebacks))
        root.addHandler(handler)
    levels = root.level, log.level
    root.setLevel(logging.WARNING)
    log.setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            yield
    finally:
        root.setLevel(levels[0])
        log.setLevel(levels[1])
        root.removeHandler(out)
        root.removeHandler(err)


def _one_line(exc: Exception) -> str:
    """The exception's message on one line. Errors raised on purpose (ours, and the ``ValueError``,
    ``KeyError`` and ``OSError`` that name their cause) print their message alone; any other is
    named with its type and a pointer to ``--debug``."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    message = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
    if isinstance(exc, _ON_PURPOSE) and message:
        return message
    name = type(exc).__name__
    return f"{name}: {message} (--debug shows the traceback)" if message else name


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage, 130 interrupted)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    with _logging(level, tracebacks=args.debug):
        try:
            return _main(args)
        except KeyboardInterrupt:
            print("bayesflux: interrupted; finished steps are saved", file=sys.stderr)
            return 130
        except BrokenPipeError:  # stdout closed early (``bayesflux fva ... | head``)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as exc:
            if args.debug:
                traceback.print_exc()
            else:
                print(f"bayesflux: error: {_one_line(exc)}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
