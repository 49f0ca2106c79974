"""The ``bayesflux`` command line: ``info``, ``fba``, ``fva`` and ``run``.

Errors print one line naming what is wrong and exit with status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bayesflux.errors import BayesfluxError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesflux", description="Bayesian inference of metabolic fluxes."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    model_help = "SBML/JSON/.mat model file or bundled dataset (small, textbook, iJO1366, ...)"

    p = sub.add_parser("info", help="describe a model")
    p.add_argument("model", help=model_help)

    p = sub.add_parser("fba", help="flux balance analysis")
    p.add_argument("model", help=model_help)
    p.add_argument("-o", "--output", help="write the result to this NetCDF file")

    p = sub.add_parser("fva", help="flux variability analysis")
    p.add_argument("model", help=model_help)
    p.add_argument("--fraction", type=float, default=1.0, help="fraction of the optimum (1.0)")
    p.add_argument("-o", "--output", help="write the result to this NetCDF file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("run", help="run the steps of a TOML config and write results")
    p.add_argument("config", help="TOML config (see examples/)")
    p.add_argument("--fresh", action="store_true", help="recompute steps already in the output")
    return parser


def _main(args: argparse.Namespace) -> int:
    import bayesflux
    from bayesflux.network import as_network

    if args.version:
        print(bayesflux.__version__)
        return 0
    if args.command == "info":
        network = as_network(args.model)
        print(network.summary())
        groups = network.gpr_groups()
        shared = sum(1 for g in groups.values() if len(g) > 1)
        print(f"{len(groups)} distinct GPR rules, {shared} shared by several reactions")
        return 0
    if args.command == "fba":
        result = bayesflux.fba(as_network(args.model))
        print(f"objective value: {result.attrs['objective_value']:.10g}")
        nonzero = result["flux"].to_series()
        print(nonzero[nonzero.abs() > 1e-9].to_string())
    elif args.command == "fva":
        result = bayesflux.fva(
            as_network(args.model), fraction=args.fraction, progress=not args.no_progress
        )
        print(result.to_dataframe().to_string())
    elif args.command == "run":
        from bayesflux.pipeline import run_config

        run_config(args.config, fresh=args.fresh)
        return 0
    else:
        _parser().print_help()
        return 2
    if args.output:
        path = bayesflux.write_netcdf(result, args.output)
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except (BayesfluxError, KeyError, ValueError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"bayesflux: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bayesflux: interrupted; finished steps are saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
