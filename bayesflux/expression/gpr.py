"""Gene-protein-reaction (GPR) rules: parsing, CNF min-disjunction and evaluation.

A rule such as ``b0001 and (b0002 or b0003)`` is parsed into a tree of :class:`Op` nodes whose
leaves are gene ids. Two ways of turning gene expression into an enzyme-complex abundance are
offered:

* **plain evaluation** (seed 000; Lee et al. 2012): AND = min, OR = sum (or max), evaluated on
  the rule as written;
* **min-disjunction** (seed 003; Barker et al. 2015): the rule is converted to conjunctive normal
  form (CNF) by distribution, a gene OR-ed with itself is reduced to the gene and absorbed clauses
  are dropped; the abundance is the minimum over clauses of the summed expression of each clause.
  The variance of the rule is the variance (sum of its genes' variances) of the minimising clause.

Genes without data are removed from the rule before conversion, so ``A and (B or C)`` with ``B``
unmeasured becomes ``A and C``. Evaluation is vectorised over samples (and, for min-disjunction,
over all rules at once through one sparse clause-by-gene matrix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from bayesflux.errors import GPRSyntaxError, NetworkError

__all__ = [
    "Op",
    "Node",
    "CNF",
    "parse",
    "rule_genes",
    "prune",
    "to_cnf",
    "cnf_to_string",
    "evaluate",
    "min_disjunction",
    "evaluate_rules",
]


class Op(NamedTuple):
    """An AND / OR node of a rule tree: ``op`` is ``"and"`` or ``"or"``, ``args`` its children."""

    op: str
    args: tuple[Node, ...]


Node = str | Op
CNF = frozenset[frozenset[str]]
"""A rule in conjunctive normal form: a set of clauses, each a set of genes OR-ed together."""

_TOKEN = re.compile(r"\s*(?:(\()|(\))|(&&|\|\||&|\|)|([^\s()&|]+))")
_WORD_OPS = {"and": "and", "or": "or"}
_SYMBOL_OPS = {"&": "and", "&&": "and", "|": "or", "||": "or"}
MAX_CLAUSES = 100_000


def _syntax_error(rule: str, pos: int, why: str, reaction: str | None) -> GPRSyntaxError:
    where = f" of reaction {reaction!r}" if reaction else ""
    return GPRSyntaxError(
        f"GPR rule{where}: {why} at position {pos}\n    {rule}\n    {' ' * pos}^",
        rule=rule,
        position=pos,
    )


def _tokens(rule: str, reaction: str | None) -> list[tuple[str, str, int]]:
    """``(kind, text, position)`` with kind in ``( ) and or gene``."""
    out: list[tuple[str, str, int]] = []
    pos = 0
    end = len(rule.rstrip())
    while pos < end:
        m = _TOKEN.match(rule, pos)
        if m is None:  # pragma: no cover - the gene pattern matches any other character
            raise _syntax_error(rule, pos, "unexpected character", reaction)
        start = m.start(m.lastindex)
        lpar, rpar, sym, word = m.groups()
        if lpar:
            out.append(("(", lpar, start))
        elif rpar:
            out.append((")", rpar, start))
        elif sym:
            out.append((_SYMBOL_OPS[sym], sym, start))
        elif word.lower() in _WORD_OPS:
            out.append((_WORD_OPS[word.lower()], word, start))
        else:
            out.append(("gene", word, start))
        pos = m.end()
    return out


def _flat(op: str, args: list[Node]) -> Node:
    if len(args) == 1:
        return args[0]
    flat: list[Node] = []
    for a in args:
        flat.extend(a.args if isinstance(a, Op) and a.op == op else (a,))
    return Op(op, tuple(flat))


@lru_cache(maxsize=65536)
def _parse_cached(rule: str, reaction: str | None) -> Node | None:
    toks = _tokens(rule, reaction)
    if not toks:
        return None
    i = 0

    def peek() -> tuple[str, str, int]:
        return toks[i] if i < len(toks) else ("end", "", len(rule.rstrip()))

    def expr() -> Node:
        nonlocal i
        args = [term()]
        while peek()[0] == "or":
            i += 1
            args.append(term())
        return _flat("or", args)

    def term() -> Node:
        nonlocal i
        args = [factor()]
        while peek()[0] == "and":
            i += 1
            args.append(factor())
        return _flat("and", args)

    def factor() -> Node:
        nonlocal i
        kind, text, pos = peek()
        if kind == "gene":
            i += 1
            return text
        if kind == "(":
            i += 1
            node = expr()
            k, t, p = peek()
            if k != ")":
                found = "end of rule" if k == "end" else repr(t)
                raise _syntax_error(rule, p, f"expected ')' to close '(' at {pos}, found {found}",
                                    reaction)
            i += 1
            return node
        found = "end of rule" if kind == "end" else repr(text)
        raise _syntax_error(rule, pos, f"expected a gene or '(', found {found}", reaction)

    node = expr()
    kind, text, pos = peek()
    if kind != "end":
        raise _syntax_error(rule, pos, f"unexpected {text!r}", reaction)
    return node


def parse(rule: str | None, *, reaction: str | None = None) -> Node | None:
    """Parse a COBRA-style rule into a tree; ``None`` for an empty rule.

    Operators: ``and``/``or`` in any case, ``&``/``|`` and ``&&``/``||``; AND binds tighter than
    OR; parentheses nest. Gene ids are any run of characters other than whitespace, parentheses,
    ``&`` and ``|`` (dots, dashes and colons included). A malformed rule raises
    :class:`~bayesflux.errors.GPRSyntaxError` naming the reaction and the position.
    """
    if rule is None:
        return None
    return _parse_cached(str(rule), reaction)


def rule_genes(node: Node | None) -> frozenset[str]:
    """The genes named in a rule tree."""
    if node is None:
        return frozenset()
    if isinstance(node, str):
        return frozenset((node,))
    return frozenset().union(*(rule_genes(a) for a in node.args))


def prune(node: Node | None, present: Iterable[str] | Mapping[str, object]) -> Node | None:
    """Remove the genes not in ``present`` (seed 003): ``A and (B or C)`` -> ``A and C``.

    A sub-expression left with no genes disappears from its parent; ``None`` if nothing is left.
    """
    keep = present if isinstance(present, (set, frozenset, Mapping)) else set(present)

    def go(n: Node) -> Node | None:
        if isinstance(n, str):
            return n if n in keep else None
        args = [a for a in (go(a) for a in n.args) if a is not None]
        return _flat(n.op, args) if args else None

    return None if node is None else go(node)


def _absorb(clauses: Iterable[frozenset[str]]) -> CNF:
    """Drop every clause that contains another clause (``A and (A or B)`` = ``A``)."""
    kept: list[frozenset[str]] = []
    for c in sorted(set(clauses), key=len):
        if not any(k <= c for k in kept):
            kept.append(c)
    return frozenset(kept)


@lru_cache(maxsize=65536)
def _cnf(node: Node) -> CNF:
    if isinstance(node, str):
        return frozenset((frozenset((node,)),))
    parts = [_cnf(a) for a in node.args]
    if node.op == "and":
        return _absorb(c for p in parts for c in p)
    out = parts[0]
    for p in parts[1:]:
        if len(out) * len(p) > MAX_CLAUSES:
            raise NetworkError(f"GPR rule too large for CNF conversion: {cnf_to_string(out)} ...")
        # a | b as sets: a gene OR-ed with itself is the gene
        out = _absorb(a | b for a in out for b in p)
    return out


def to_cnf(node: Node | str | None) -> CNF:
    """Conjunctive normal form by distribution, with self-disjunction reduction and absorption.

    ``(A and B) or (A and C)`` -> ``{{A}, {B, C}}``; an empty rule gives the empty CNF.
    """
    if node is None:
        return frozenset()
    if isinstance(node, str) and not _is_gene(node):
        node = parse(node)
        if node is None:
            return frozenset()
    return _cnf(node)


def _is_gene(text: str) -> bool:
    toks = _tokens(text, None)
    return len(toks) == 1 and toks[0][0] == "gene"


def cnf_to_string(cnf: CNF) -> str:
    """Canonical text of a CNF: clauses and genes sorted, ``(A or B) and C``."""
    clauses = sorted(sorted(c) for c in cnf)
    parts = [" or ".join(c) if len(c) == 1 else "(" + " or ".join(c) + ")" for c in clauses]
    return " and ".join(parts)


# --------------------------------------------------------------------------- evaluation
def _values(values: Mapping[str, object]) -> dict[str, np.ndarray]:
    return {g: np.asarray(v, dtype=float) for g, v in values.items()}


def evaluate(
    node: Node | str | None,
    values: Mapping[str, object],
    *,
    variances: Mapping[str, object] | None = None,
    or_: Literal["sum", "max"] = "sum",
) -> tuple[np.ndarray, np.ndarray]:
    """Plain evaluation of a rule (seed 000): AND = min, OR = sum or max, vectorised over samples.

    Genes missing from ``values`` are pruned first. Returns ``(abundance, variance)``; the variance
    follows the same path (min/max: that of the chosen child; sum: the sum). ``NaN`` if no gene of
    the rule has data.
    """
    if or_ not in ("sum", "max"):
        raise ValueError(f"or_ must be 'sum' or 'max', not {or_!r}")
    tree = parse(node) if isinstance(node, str) else node
    tree = prune(tree, values)
    vals = _values(values)
    var = _values(variances) if variances is not None else None
    if tree is None:
        shape = np.shape(next(iter(vals.values()))) if vals else ()
        return np.full(shape, np.nan), np.full(shape, np.nan)

    def go(n: Node) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(n, str):
            x = vals[n]
            return x, (var[n] if var is not None and n in var else np.zeros_like(x))
        xs, vs = zip(*(go(a) for a in n.args))
        X, V = np.stack(xs), np.stack(vs)
        if n.op == "or" and or_ == "sum":
            return X.sum(axis=0), V.sum(axis=0)
        pick = X.argmin(axis=0) if n.op == "and" else X.argmax(axis=0)
        return np.take_along_axis(X, pick[None], 0)[0], np.take_along_axis(V, pick[None], 0)[0]

    return go(tree)


def min_disjunction(
    node: Node | str | None,
    values: Mapping[str, object],
    *,
    variances: Mapping[str, object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Min-disjunction abundance of one rule (seed 003): ``min_clauses sum_{g in clause} x_g``.

    Returns ``(abundance, variance of the minimising clause)``; ``NaN`` when no gene has data.
    """
    tree = parse(node) if isinstance(node, str) else node
    a, v = evaluate_rules([tree], values, variances=variances, method="min_disjunction")
    return a[0], v[0]


def evaluate_rules(
    rules: Sequence[Node | str | None],
    values: Mapping[str, object],
    *,
    variances: Mapping[str, object] | None = None,
    method: Literal["min_disjunction", "plain"] = "min_disjunction",
    or_: Literal["sum", "max"] = "sum",
    reactions: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Abundance and variance of many rules, shape ``(len(rules),) + sample_shape``.

    ``values`` maps gene -> scalar or array over samples (all the same shape). For min-disjunction
    every clause of every rule becomes a row of one sparse clause x gene matrix ``C``; clause sums
    are ``C @ X`` and each rule takes the minimum over its rows (``np.minimum.reduceat``). Rules
    with no measured gene give ``NaN``.
    """
    if method not in ("min_disjunction", "plain"):
        raise ValueError(f"method must be 'min_disjunction' or 'plain', not {method!r}")
    names = list(reactions) if reactions is not None else [None] * len(rules)
    trees = [parse(r, reaction=n) if isinstance(r, str) else r for r, n in zip(rules, names)]
    gene_ids = list(values)
    if not gene_ids:
        raise ValueError("no gene expression values given")
    X = np.stack([np.asarray(values[g], dtype=float) for g in gene_ids])
    sample_shape = X.shape[1:]
    V = (
        np.stack([np.asarray(variances.get(g, 0.0), dtype=float) * np.ones(sample_shape)
                  for g in gene_ids])
        if variances is not None
        else np.zeros_like(X)
    )
    out = np.full((len(trees),) + sample_shape, np.nan)
    out_var = np.full_like(out, np.nan)
    present = dict.fromkeys(gene_ids)
    if method == "plain":
        for k, t in enumerate(trees):
            if t is not None and prune(t, present) is not None:
                out[k], out_var[k] = evaluate(t, values, variances=variances, or_=or_)
        return out, out_var

    col = {g: i for i, g in enumerate(gene_ids)}
    rows: list[int] = []
    cols: list[int] = []
    counts = np.zeros(len(trees), dtype=int)
    n_clause = 0
    for k, t in enumerate(trees):
        cnf = to_cnf(prune(t, present))
        counts[k] = len(cnf)
        for clause in cnf:
            rows.extend([n_clause] * len(clause))
            cols.extend(col[g] for g in clause)
            n_clause += 1
    if n_clause == 0:
        return out, out_var
    C = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n_clause, len(gene_ids)))
    flat_X = X.reshape(len(gene_ids), -1)
    sums = C @ flat_X
    sum_var = C @ V.reshape(len(gene_ids), -1)
    has = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts[has])[:-1]])
    mins = np.minimum.reduceat(sums, starts, axis=0)
    at_min = sums == np.repeat(mins, counts[has], axis=0)
    var_min = np.minimum.reduceat(np.where(at_min, sum_var, np.inf), starts, axis=0)
    out[has] = mins.reshape((-1,) + sample_shape)
    out_var[has] = var_min.reshape((-1,) + sample_shape)
    return out, out_var
