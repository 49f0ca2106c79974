"""Typed errors. Every message names the reaction, metabolite, gene, file or line at fault."""

from __future__ import annotations

__all__ = [
    "BayesfluxError",
    "NetworkError",
    "GPRSyntaxError",
    "ModelReadError",
    "ConfigError",
    "InfeasibleError",
    "UnboundedError",
    "SolverError",
    "MemoryLimitError",
]


class BayesfluxError(Exception):
    """Base class of all errors raised on purpose by bayesflux."""


class NetworkError(BayesfluxError, ValueError):
    """A metabolic network is malformed (duplicate ids, bad bounds, unknown metabolites...)."""


class GPRSyntaxError(NetworkError):
    """A gene-protein-reaction rule cannot be parsed; the message gives the rule and position."""

    def __init__(self, message: str, *, rule: str = "", position: int = -1) -> None:
        super().__init__(message)
        self.rule = rule
        self.position = position


class ModelReadError(BayesfluxError, OSError):
    """A model file could not be read or parsed."""


class ConfigError(BayesfluxError, ValueError):
    """A pipeline configuration (TOML) is malformed."""


class InfeasibleError(BayesfluxError, RuntimeError):
    """An optimisation or sampling problem has no feasible point."""


class UnboundedError(BayesfluxError, RuntimeError):
    """An optimisation problem or polytope is unbounded."""


class SolverError(BayesfluxError, RuntimeError):
    """The numerical solver failed for a reason other than infeasibility or unboundedness."""


class MemoryLimitError(BayesfluxError, MemoryError):
    """A run would need more memory than the machine has; refused before it starts."""
