"""The metabolic network: an immutable, array-first view of a constraint-based model.

A :class:`Network` holds reaction and metabolite ids, the sparse stoichiometric matrix ``S``
(metabolites x reactions), flux bounds ``lb <= v <= ub``, a linear objective, gene-protein-reaction
(GPR) rules and annotations. It is built once from a ``cobra.Model`` (or an SBML / JSON file read
through cobra) and never mutated: methods that change it return a new network.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from bayesflux.errors import ModelReadError, NetworkError

if TYPE_CHECKING:
    import cobra
    import xarray as xr

__all__ = ["Network", "IrreversibleSplit", "as_network", "read_sbml", "read_json"]

_GENE_TOKEN = re.compile(r"[^\s()&|]+")
_OPERATORS = {"and", "or", "AND", "OR", "And", "Or"}
_NAMED = 5  # offenders named in one error message

#: Largest magnitude of a stoichiometric or objective coefficient. In double precision one
#: product ``a * v`` carries a rounding error of about ``|a| |v| 2.2e-16``; at ``|a| = 1e9`` and
#: unit fluxes that is ``2e-7``, already HiGHS's default primal feasibility tolerance (``1e-7``).
#: Larger values make LP answers meaningless long before HiGHS's own limits (it treats matrix
#: entries ``>= 1e15`` and costs ``>= 1e20`` as infinite and then fails).
MAX_COEFFICIENT = 1e9


class IrreversibleSplit(NamedTuple):
    """A network with every reversible reaction split into a forward and a backward part.

    ``v = to_net @ v_irr`` maps irreversible fluxes (all >= 0 where the original allowed both
    directions) back to net fluxes.
    """

    S: sp.csr_array
    lb: np.ndarray
    ub: np.ndarray
    reactions: tuple[str, ...]
    origin: np.ndarray  # index of the original reaction of each column
    direction: np.ndarray  # +1 forward, -1 backward
    to_net: sp.csr_array


def steady_state_violation(S, v: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> float:
    """``max(|S v|_inf, bound violation) / max(1, |v|_inf)``: how far ``v`` is from a steady
    state within ``[lb, ub]``, relative to its size (0 for a feasible flux)."""
    v = np.asarray(v, dtype=float)
    imbalance = float(np.max(np.abs(S @ v), initial=0.0))
    outside = float(np.max(np.maximum(lb - v, v - ub), initial=0.0))
    return max(imbalance, outside) / max(1.0, float(np.max(np.abs(v), initial=0.0)))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.flags.writeable = False
    return a


def _duplicates(ids: Sequence[str]) -> list[str]:
    return [k for k, n in Counter(ids).items() if n > 1]


def _rule_genes(rule: str) -> list[str]:
    return [t for t in _GENE_TOKEN.findall(rule) if t not in _OPERATORS]


def _listing(messages: Sequence[str], total: int) -> str:
    """The first few of ``total`` per-reaction messages, joined, with a count of the rest."""
    more = f" (and {total - len(messages)} more reactions)" if total > len(messages) else ""
    return "; ".join(messages) + more


@dataclass(frozen=True, eq=False)
class Network:
    """An immutable metabolic network.

    Parameters
    ----------
    reactions, metabolites
        Unique ids; the columns and rows of ``S``.
    S
        Stoichiometric matrix, ``len(metabolites) x len(reactions)`` (any scipy sparse or dense).
    lb, ub
        Flux bounds (finite or infinite, never NaN, ``lb <= ub``).
    objective
        Objective coefficients per reaction (maximised by default); zeros if omitted.
    gpr
        Gene-protein-reaction rule per reaction (``""`` for none), COBRA syntax.
    genes
        Gene ids; defaults to the genes named in ``gpr``.
    """

    reactions: tuple[str, ...]
    metabolites: tuple[str, ...]
    S: sp.csr_array
    lb: np.ndarray
    ub: np.ndarray
    objective: np.ndarray | None = None
    gpr: tuple[str, ...] | None = None
    genes: tuple[str, ...] | None = None
    reaction_names: tuple[str, ...] | None = None
    metabolite_names: tuple[str, ...] | None = None
    metabolite_compartments: tuple[str, ...] | None = None
    compartments: Mapping[str, str] = field(default_factory=dict)
    subsystems: tuple[str, ...] | None = None
    id: str = "network"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        rxns = tuple(str(r) for r in self.reactions)
        mets = tuple(str(m) for m in self.metabolites)
        set_(self, "reactions", rxns)
        set_(self, "metabolites", mets)
        n, m = len(rxns), len(mets)
        for kind, ids in (("reaction", rxns), ("metabolite", mets)):
            dup = _duplicates(ids)
            if dup:
                raise NetworkError(f"duplicate {kind} id(s): {', '.join(sorted(dup)[:10])}")
            empty = [i for i, x in enumerate(ids) if not x.strip()]
            if empty:
                raise NetworkError(f"empty {kind} id at position {empty[0]}")
        if n == 0:
            raise NetworkError("a network needs at least one reaction")

        S = sp.csr_array(self.S, dtype=float, copy=True)
        if S.shape != (m, n):
            raise NetworkError(
                f"S has shape {S.shape}, expected (metabolites, reactions) = ({m}, {n})"
            )
        S.sum_duplicates()
        S.eliminate_zeros()
        bad = ~(np.abs(S.data) <= MAX_COEFFICIENT)  # also catches NaN
        if bad.any():
            coo, k = S.tocoo(), np.flatnonzero(bad)
            cols, first = np.unique(coo.col[k], return_index=True)
            messages = [
                f"non-finite or too large coefficient {coo.data[k[i]]:g} of metabolite "
                f"{mets[coo.row[k[i]]]!r} in reaction {rxns[coo.col[k[i]]]!r}"
                for i in first[:_NAMED]
            ]
            raise NetworkError(
                _listing(messages, cols.size)
                + f" (stoichiometric coefficients must be finite, |a| <= {MAX_COEFFICIENT:g})"
            )
        S.data.flags.writeable = False
        set_(self, "S", S)

        empty = np.flatnonzero(np.diff(S.tocsc().indptr) == 0)
        if empty.size:
            names = ", ".join(rxns[i] for i in empty[:10])
            raise NetworkError(f"reaction(s) with no metabolites: {names}")

        lb, ub = self._bounds(self.lb, "lb"), self._bounds(self.ub, "ub")
        for mask, problem in (
            (lb > ub, "has lb = {lb} > ub = {ub}"),
            (lb == np.inf, "has lb = +inf: no flux satisfies it"),
            (ub == -np.inf, "has ub = -inf: no flux satisfies it"),
        ):
            if mask.any():
                bad = np.flatnonzero(mask)
                messages = [
                    f"reaction {rxns[j]!r} " + problem.format(lb=lb[j], ub=ub[j])
                    for j in bad[:_NAMED]
                ]
                raise NetworkError(_listing(messages, bad.size))
        set_(self, "lb", lb)
        set_(self, "ub", ub)

        obj = np.zeros(n) if self.objective is None else np.asarray(self.objective, float)
        if obj.shape != (n,):
            raise NetworkError(
                f"objective must be a vector with one entry per reaction: shape {obj.shape}, "
                f"expected ({n},)"
            )
        bad = np.flatnonzero(~(np.abs(obj) <= MAX_COEFFICIENT))
        if bad.size:
            messages = [
                f"non-finite or too large objective coefficient {obj[j]:g} of reaction {rxns[j]!r}"
                for j in bad[:_NAMED]
            ]
            raise NetworkError(
                _listing(messages, bad.size)
                + f" (objective coefficients must be finite, |c| <= {MAX_COEFFICIENT:g})"
            )
        set_(self, "objective", _readonly(obj))

        gpr = (
            tuple("" for _ in rxns)
            if self.gpr is None
            else tuple("" if g is None else str(g).strip() for g in self.gpr)
        )
        set_(self, "gpr", self._per(gpr, n, "gpr"))
        if self.genes is None:
            genes = dict.fromkeys(g for rule in gpr for g in _rule_genes(rule))
            set_(self, "genes", tuple(genes))
        else:
            set_(self, "genes", tuple(str(g) for g in self.genes))
            dup = _duplicates(self.genes)
            if dup:
                raise NetworkError(f"duplicate gene id(s): {', '.join(sorted(dup)[:10])}")
        for name, size in (
            ("reaction_names", n),
            ("metabolite_names", m),
            ("metabolite_compartments", m),
            ("subsystems", n),
        ):
            value = getattr(self, name)
            value = tuple("" for _ in range(size)) if value is None else tuple(map(str, value))
            set_(self, name, self._per(value, size, name))
        set_(self, "compartments", dict(self.compartments))

    def _bounds(self, values: Any, name: str) -> np.ndarray:
        a = np.asarray(values, dtype=float)
        if a.shape != (len(self.reactions),):
            raise NetworkError(f"{name} has shape {a.shape}, expected ({len(self.reactions)},)")
        nan = np.flatnonzero(np.isnan(a))
        if nan.size:
            raise NetworkError(f"reaction {self.reactions[nan[0]]!r} has a NaN {name}")
        return _readonly(a)

    @staticmethod
    def _per(values: tuple, size: int, name: str) -> tuple:
        if len(values) != size:
            raise NetworkError(f"{name} has {len(values)} entries, expected {size}")
        return values

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_stoichiometry(
        cls,
        stoichiometry: Mapping[str, Mapping[str, float]],
        *,
        metabolites: Sequence[str] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        objective: Mapping[str, float] | None = None,
        gpr: Mapping[str, str] | None = None,
        default_bounds: tuple[float, float] = (0.0, 1000.0),
        id: str = "network",
    ) -> Network:
        """Build a network from ``{reaction: {metabolite: coefficient}}``.

        If ``metabolites`` is given, every metabolite a reaction names must be in it.
        """
        rxns = list(stoichiometry)
        if metabolites is None:
            metabolites = list(dict.fromkeys(m for r in rxns for m in stoichiometry[r]))
        met_index = {m: i for i, m in enumerate(metabolites)}
        rows, cols, vals = [], [], []
        for j, r in enumerate(rxns):
            for met, coef in stoichiometry[r].items():
                if met not in met_index:
                    raise NetworkError(f"reaction {r!r} uses unknown metabolite {met!r}")
                rows.append(met_index[met])
                cols.append(j)
                vals.append(float(coef))
        S = sp.coo_array((vals, (rows, cols)), shape=(len(metabolites), len(rxns)))
        bounds = dict(bounds or {})
        for r in set(bounds) | set(objective or {}) | set(gpr or {}):
            if r not in stoichiometry:
                raise NetworkError(f"unknown reaction {r!r}")
        lb = [bounds.get(r, default_bounds)[0] for r in rxns]
        ub = [bounds.get(r, default_bounds)[1] for r in rxns]
        c = [float((objective or {}).get(r, 0.0)) for r in rxns]
        rules = [(gpr or {}).get(r, "") for r in rxns]
        return cls(rxns, metabolites, S, lb, ub, objective=c, gpr=rules, id=id)

    @classmethod
    def from_cobra(cls, model: cobra.Model) -> Network:
        """Convert a ``cobra.Model`` (its linear objective, bounds, GPRs and annotations)."""
        from cobra.util.array import create_stoichiometric_matrix

        rxns = model.reactions
        mets = model.metabolites
        S = create_stoichiometric_matrix(model, array_type="lil")
        objective = [r.objective_coefficient for r in rxns]
        if str(model.objective_direction) == "min":
            objective = [-c for c in objective]
        return cls(
            reactions=[r.id for r in rxns],
            metabolites=[m.id for m in mets],
            S=sp.csr_array(S),
            lb=[r.lower_bound for r in rxns],
            ub=[r.upper_bound for r in rxns],
            objective=objective,
            gpr=[r.gene_reaction_rule for r in rxns],
            genes=[g.id for g in model.genes],
            reaction_names=[r.name or "" for r in rxns],
            metabolite_names=[m.name or "" for m in mets],
            metabolite_compartments=[m.compartment or "" for m in mets],
            compartments={k: v or k for k, v in model.compartments.items()},
            subsystems=[r.subsystem or "" for r in rxns],
            id=model.id or "network",
        )

    def to_cobra(self) -> cobra.Model:
        """A new ``cobra.Model`` with the same reactions, bounds, objective and GPRs."""
        import cobra

        model = cobra.Model(self.id)
        model.compartments = dict(self.compartments)
        mets = [
            cobra.Metabolite(m, name=name, compartment=comp or None)
            for m, name, comp in zip(
                self.metabolites, self.metabolite_names, self.metabolite_compartments
            )
        ]
        model.add_metabolites(mets)
        csc = self.S.tocsc()
        reactions = []
        for j, rid in enumerate(self.reactions):
            rxn = cobra.Reaction(rid, name=self.reaction_names[j], subsystem=self.subsystems[j])
            rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
            vals = csc.data[csc.indptr[j] : csc.indptr[j + 1]]
            rxn.add_metabolites({mets[i]: float(v) for i, v in zip(rows, vals)})
            rxn.bounds = (float(self.lb[j]), float(self.ub[j]))
            rxn.gene_reaction_rule = self.gpr[j]
            reactions.append(rxn)
        model.add_reactions(reactions)
        model.objective = {r: float(c) for r, c in zip(reactions, self.objective) if c != 0.0}
        model.objective_direction = "max"
        return model

    # ------------------------------------------------------------------ basic views
    @property
    def n_reactions(self) -> int:
        return len(self.reactions)

    @property
    def n_metabolites(self) -> int:
        return len(self.metabolites)

    @cached_property
    def reaction_index(self) -> dict[str, int]:
        """Position of each reaction id."""
        return {r: i for i, r in enumerate(self.reactions)}

    @cached_property
    def metabolite_index(self) -> dict[str, int]:
        """Position of each metabolite id."""
        return {m: i for i, m in enumerate(self.metabolites)}

    def indices(self, reactions: Iterable[str]) -> np.ndarray:
        """Positions of the given reaction ids; unknown ids raise :class:`NetworkError`."""
        out = []
        for r in reactions:
            if r not in self.reaction_index:
                raise NetworkError(f"unknown reaction {r!r} in network {self.id!r}")
            out.append(self.reaction_index[r])
        return np.asarray(out, dtype=int)

    @cached_property
    def is_exchange(self) -> np.ndarray:
        """Boundary reactions: exactly one metabolite (exchange, demand and sink reactions)."""
        mask = np.diff(self.S.tocsc().indptr) == 1
        mask.flags.writeable = False
        return mask

    @property
    def exchange_reactions(self) -> tuple[str, ...]:
        return tuple(r for r, e in zip(self.reactions, self.is_exchange) if e)

    @property
    def internal_reactions(self) -> tuple[str, ...]:
        return tuple(r for r, e in zip(self.reactions, self.is_exchange) if not e)

    @cached_property
    def is_reversible(self) -> np.ndarray:
        """Reactions that may run both ways (``lb < 0 < ub``)."""
        mask = (self.lb < 0) & (self.ub > 0)
        mask.flags.writeable = False
        return mask

    # ------------------------------------------------------------------ derived views
    def split_irreversible(self) -> IrreversibleSplit:
        """Split each reaction into a forward (if ``ub > 0``) and a backward part (if ``lb < 0``).

        The forward part has bounds ``[max(lb, 0), ub]``, the backward part ``[max(-ub, 0), -lb]``
        with column ``-S_j`` and id ``<id>_reverse``; a reaction fixed at zero keeps one column.
        """
        fwd = np.flatnonzero((self.ub > 0) | (self.lb >= 0))
        bwd = np.flatnonzero(self.lb < 0)
        origin = np.concatenate([fwd, bwd])
        direction = np.concatenate([np.ones(fwd.size), -np.ones(bwd.size)])
        S = sp.csr_array(self.S[:, origin] @ sp.diags_array(direction))
        lb = np.concatenate([np.maximum(self.lb[fwd], 0.0), np.maximum(-self.ub[bwd], 0.0)])
        ub = np.concatenate([self.ub[fwd], -self.lb[bwd]])
        names = tuple(self.reactions[i] for i in fwd) + tuple(
            f"{self.reactions[i]}_reverse" for i in bwd
        )
        to_net = sp.csr_array(
            (direction, (origin, np.arange(origin.size))),
            shape=(self.n_reactions, origin.size),
        )
        return IrreversibleSplit(S, _readonly(lb), _readonly(ub), names, origin, direction, to_net)

    @cached_property
    def nullspace(self) -> np.ndarray:
        """Orthonormal basis ``N`` of the null space of ``S`` (``S @ N = 0``, ``N.T @ N = I``)."""
        N = scipy.linalg.null_space(self.S.toarray())
        N.flags.writeable = False
        return N

    def gpr_groups(self) -> dict[str, tuple[str, ...]]:
        """Reactions that share an identical GPR rule (whitespace-normalised), by rule.

        Reactions without a rule are left out. Such reactions share one enzyme abundance.
        """
        groups: dict[str, list[str]] = {}
        for r, rule in zip(self.reactions, self.gpr):
            if rule:
                groups.setdefault(" ".join(rule.split()), []).append(r)
        return {k: tuple(v) for k, v in groups.items()}

    # ------------------------------------------------------------------ modified copies
    def with_bounds(self, bounds: Mapping[str, tuple[float, float]]) -> Network:
        """A copy with new ``(lb, ub)`` for the named reactions."""
        lb, ub = self.lb.copy(), self.ub.copy()
        for r, (lo, hi) in bounds.items():
            j = self.indices([r])[0]
            lb[j], ub[j] = lo, hi
        return replace(self, lb=lb, ub=ub)

    def with_objective(self, objective: Mapping[str, float] | np.ndarray) -> Network:
        """A copy with a new (maximised) linear objective."""
        if isinstance(objective, Mapping):
            c = np.zeros(self.n_reactions)
            c[self.indices(objective.keys())] = list(objective.values())
        else:
            c = np.asarray(objective, dtype=float)
        return replace(self, objective=c)

    # ------------------------------------------------------------------ results helpers
    def to_dataarray(self, values: np.ndarray, name: str, **attrs: Any) -> xr.DataArray:
        """Label a per-reaction vector with the ``reaction`` coordinate."""
        import xarray as xr

        return xr.DataArray(
            np.asarray(values, dtype=float),
            dims=("reaction",),
            coords={"reaction": list(self.reactions)},
            name=name,
            attrs=attrs,
        )

    def summary(self) -> str:
        """One paragraph describing the network's size."""
        bounded = np.isfinite(self.lb) & np.isfinite(self.ub)
        objective = [r for r, c in zip(self.reactions, self.objective) if c]
        return (
            f"Network {self.id!r}: {self.n_reactions} reactions "
            f"({int(self.is_exchange.sum())} exchange, {int(self.is_reversible.sum())} reversible, "
            f"{int(bounded.sum())} with finite bounds), {self.n_metabolites} metabolites, "
            f"{len(self.genes)} genes, {len(self.compartments)} compartments; "
            f"objective: {', '.join(objective) or 'none'}"
        )

    def __repr__(self) -> str:
        return (
            f"Network(id={self.id!r}, reactions={self.n_reactions}, "
            f"metabolites={self.n_metabolites}, genes={len(self.genes)})"
        )


# ---------------------------------------------------------------------- readers
def _read_with_cobra(path: str | Path, reader: str, source: Any = None) -> Network:
    """``cobra.io.<reader>(source or path)`` as a :class:`Network`, errors naming ``path``."""
    import cobra.io

    path = Path(path)
    if not path.is_file():
        raise ModelReadError(f"model file not found: {path}")
    try:
        model = getattr(cobra.io, reader)(str(path) if source is None else source)
    except Exception as exc:  # cobra raises many types; report them as one, naming the file
        causes = [_sbml_errors(path)] if reader == "read_sbml_model" else []
        inner = exc.__cause__  # cobra's generic SBML error wraps the real one, e.g. a KeyError
        if inner is not None or not any(causes):
            inner = inner or exc
            causes.append(f"cobra: {type(inner).__name__}: {inner}")
        raise ModelReadError(f"could not read {path}: {'; '.join(filter(None, causes))}") from exc
    try:
        return Network.from_cobra(model)
    except NetworkError as exc:
        raise NetworkError(f"{path}: {exc}") from exc


def _sbml_errors(path: Path, limit: int = 3) -> str:
    """libsbml's own errors on reading ``path`` (the first ``limit``, with line numbers)."""
    import libsbml

    doc = libsbml.readSBMLFromFile(str(path))
    errors = [
        doc.getError(i)
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    text = "; ".join(
        f"line {e.getLine()}: {' '.join(e.getMessage().split())}" for e in errors[:limit]
    )
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return f"libsbml reports {text}{more}" if errors else ""


def read_sbml(path: str | Path) -> Network:
    """Read an SBML model (``.xml``, ``.sbml``, optionally gzipped) through cobra.

    A file cobra cannot read raises :class:`ModelReadError` with libsbml's first errors (line
    and message), or cobra's underlying error where libsbml finds none.
    """
    return _read_with_cobra(path, "read_sbml_model")


def read_json(path: str | Path) -> Network:
    """Read a cobra JSON model (UTF-8, as JSON requires, whatever the locale); unknown
    metabolites in reactions are reported by name."""
    import json

    path = Path(path)
    if not path.is_file():
        raise ModelReadError(f"model file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelReadError(f"could not read {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or "reactions" not in data:
        raise ModelReadError(f"could not read {path}: no 'reactions' list")
    known = {m.get("id") for m in data.get("metabolites", [])}
    for rxn in data["reactions"]:
        for met in rxn.get("metabolites", {}):
            if met not in known:
                raise NetworkError(
                    f"{path}: reaction {rxn.get('id')!r} uses unknown metabolite {met!r}"
                )
    import logging
    import warnings

    gene_log = logging.getLogger("cobra.core.gene")
    level = gene_log.level
    gene_log.setLevel(logging.CRITICAL)  # its ast parser's complaints: the rules are ours
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Malformed gene_reaction_rule", SyntaxWarning)
            network = _read_with_cobra(path, "model_from_dict", data)
    finally:
        gene_log.setLevel(level)
    return _json_rules(network, data, path)


def _json_rules(network: Network, data: dict, path: Path) -> Network:
    """The GPR rules exactly as the JSON file writes them: cobra parses rules as Python
    expressions, so it empties a rule with a gene like ``g€1`` and folds ``ｇ１`` to ``g1``."""
    from dataclasses import replace

    from bayesflux.expression import gpr

    rules = tuple(str(r.get("gene_reaction_rule") or "") for r in data["reactions"])
    if rules == network.gpr:
        return network
    for rxn, rule in zip(network.reactions, rules, strict=True):
        try:
            gpr.parse(rule, reaction=rxn)
        except NetworkError as exc:
            raise NetworkError(f"{path}: {exc}") from exc
    named = dict.fromkeys(g for rule in rules for g in _rule_genes(rule))
    listed = [str(g.get("id")) for g in data.get("genes", []) if isinstance(g, dict)]
    return replace(network, gpr=rules, genes=tuple(dict.fromkeys([*listed, *named])))


def as_network(model: Network | cobra.Model | str | Path) -> Network:
    """Accept a :class:`Network`, a ``cobra.Model``, a model file or a bundled dataset name."""
    if isinstance(model, Network):
        return model
    if isinstance(model, (str, Path)):
        from bayesflux import datasets

        name = str(model)
        if name in datasets.AVAILABLE:
            return datasets.load(name)
        suffixes = "".join(Path(name).suffixes).lower()
        if suffixes.endswith(".json"):
            return read_json(name)
        if suffixes.endswith(".mat"):
            return datasets.read_cobra_mat(name)
        if not Path(name).exists():
            raise ModelReadError(
                f"no model file {name!r} and no bundled dataset of that name "
                f"(bundled: {', '.join(datasets.AVAILABLE)})"
            )
        return read_sbml(name)
    try:
        import cobra
    except ImportError:  # pragma: no cover - cobra is a dependency
        cobra = None
    if cobra is not None and isinstance(model, cobra.Model):
        return Network.from_cobra(model)
    raise TypeError(f"expected a Network, cobra.Model or model path, got {type(model).__name__}")
