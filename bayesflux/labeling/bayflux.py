"""Readers of BayFlux's input formats and the 13C problem they pose (Backman et al. 2023).

BayFlux (PLoS Comput. Biol. 19:e1011111) reads four files beside an SBML model:

* atom transitions (:func:`read_transitions`): one reaction a line, tab separated: id, equation
  (``a_c + b_c --> c_c``, ``<==>`` reversible) and atom map (``abc + de : abcde``, one letter a
  carbon, products after ``:``); a symmetric molecule is written as several lines of one
  reaction, which share its flux equally;
* mass distributions (:func:`read_mass_distribution`): tab separated ``metabolite``, ``atoms``
  (``1,2,3``) and the MID ``M+0 ... M+n`` of those ``n`` atoms, one row per fragment;
* flux bounds (:func:`read_flux_bounds`): CSV ``reaction, lower, upper`` under one header line.

:func:`read_bayflux` joins a :class:`~bayesflux.Network` and such files into a
:class:`BayFluxModel`: the network with BayFlux's bounds (the file's, then every bound clipped to
``±max_flux``), a :class:`~bayesflux.labeling.LabelingNetwork` holding every reaction of the
network (reactions without transitions carry no carbon label), the tracer experiment and one
:class:`~bayesflux.labeling.MSMeasurement` per MID row (``scale="none"``: BayFlux compares the
simulated MID entries with the data as they are). :meth:`BayFluxModel.term` is the likelihood of
:class:`~bayesflux.models.FluxPosterior` with BayFlux's prior: BayFlux samples the forward and
backward flux of each reversible reaction uniformly (``0 <= v+ <= ub``, ``0 <= v- <= -lb``), which
in net and exchange fluxes (``v = v+ - v-``, ``x = min(v+, v-)``, a map of unit Jacobian) is the
uniform density on ``{lb <= v <= ub, 0 <= x <= min(ub, -lb), x + v <= ub, x - v <= -lb}``.
:func:`bayflux_core` is BayFlux's core case (TOYA.xml with the Toya 2010 wild-type MIDs).

Several lines of one reaction are reduced to one atom map with symmetric molecules
(:class:`~bayesflux.labeling.LabelingNetwork`'s ``symmetric``): a metabolite is symmetric when
every line set that makes it makes it in both atom orders equally often. Lines that reversing
symmetric molecules does not relate are alternative atom maps (a ring flip, two products that
may take either substrate's atoms): the reaction becomes one sub-reaction ``{id}#i`` per line
carrying ``1/k`` of its net and exchange flux, BayFlux's equal share of each line
(:func:`labeling_network`, ``BayFluxModel.shares``).

:func:`bayflux_genome_scale` maps BayFlux's genome-scale transitions (imEco726 on iAF1260 ids)
onto the bundled iJO1366 and reports what it mapped, renamed, dropped or cut
(:class:`GenomeScaleReport`).
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayesflux.errors import BayesfluxError, ModelReadError, NetworkError
from bayesflux.labeling.measurements import LabelingProblem, MSMeasurement
from bayesflux.labeling.network import AtomReaction, LabelingNetwork, Occurrence
from bayesflux.labeling.tracers import Experiment, Species
from bayesflux.network import Network, as_network

__all__ = [
    "GENOME_TRACERS",
    "IJO1366_CLOSED",
    "IJO1366_RENAMES",
    "MAX_FLUX",
    "MID_SD",
    "STRAINS",
    "TOYA_TRACERS",
    "AtomTransition",
    "BayFluxLabeling",
    "BayFluxModel",
    "GenomeScaleReport",
    "MassDistribution",
    "bayflux_bounds",
    "bayflux_core",
    "bayflux_genome_scale",
    "labeling_network",
    "read_bayflux",
    "read_flux_bounds",
    "read_mass_distribution",
    "read_transitions",
]

#: BayFlux's flux limit: every bound is clipped to ``[-MAX_FLUX, MAX_FLUX]`` (its ``maxFlux``).
MAX_FLUX = 58.5
#: BayFlux's MID standard deviation for Toya 2010 (its ``averageError``, the mean reported error).
MID_SD = 0.007041666666666667
#: BayFlux's substrate for the Toya 2010 data: 30 % [1-13C], 20 % [U-13C], 50 % unlabelled glucose.
TOYA_TRACERS = {"glc_D_e": {"100000": 0.3, "111111": 0.2}}

_ARROW = re.compile(r"\s+(<==>|-->)\s+")
_PLUS = re.compile(r"\s+\+\s+")
_SAFE = re.compile(r"[A-Za-z_][\w.\-\[\]]*")


@dataclass(frozen=True)
class AtomTransition:
    """One line of a transitions file: ``(metabolite, atom letters)`` per substrate and product."""

    reaction: str
    substrates: tuple[tuple[str, str], ...]
    products: tuple[tuple[str, str], ...]
    reversible: bool
    where: str  # "file:line"


@dataclass(frozen=True)
class MassDistribution:
    """One row of a mass-distribution file: the MID ``values`` (M+0, M+1, ...) of the 1-based
    ``atoms`` of ``metabolite``."""

    metabolite: str
    atoms: tuple[int, ...]
    values: tuple[float, ...]
    where: str  # "file:line"


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Numbered lines of ``path`` without ``#`` comments and blank lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelReadError(f"cannot read {what} file {path}: {exc}") from exc
    out = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip("\r\n")
        if line.strip():
            out.append((no, line))
    return out


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ModelReadError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ModelReadError(f"{where}: {what} is {text!r}, not a finite number")
    return value


def _side(text: str, where: str, what: str) -> list[str]:
    items = [t.strip() for t in _PLUS.split(text.strip())]
    if not all(items) or any(" " in t or "\t" in t for t in items):
        raise ModelReadError(f"{where}: cannot parse the {what} {text.strip()!r}")
    return items


def read_transitions(path: str | Path) -> dict[str, tuple[AtomTransition, ...]]:
    """Read a BayFlux atom-transitions file: ``{reaction: its lines}`` in file order.

    Raises
    ------
    ModelReadError
        Naming ``file:line`` for a line without three tab-separated cells, an equation without
        one ``-->`` / ``<==>``, atom groups that do not match the metabolites, a letter used twice
        on one side, letters not balanced between sides, or lines of one reaction whose
        equations differ.
    """
    path = Path(path)
    out: dict[str, list[AtomTransition]] = {}
    for no, line in _lines(path, "transitions"):
        where = f"{path}:{no}"
        cells = [c.strip() for c in line.split("\t")]
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) != 3 or not all(cells):
            raise ModelReadError(
                f"{where}: expected 3 tab-separated cells (reaction, equation, atom map), "
                f"got {len(cells)}"
            )
        rid, equation, atoms = cells
        parts = _ARROW.split(equation)
        if len(parts) != 3:
            raise ModelReadError(
                f"{where}: reaction {rid!r}: the equation {equation!r} needs one ' --> ' or "
                "' <==> '"
            )
        left, arrow, right = parts
        maps = re.split(r"\s+:\s+", atoms)
        if len(maps) != 2:
            raise ModelReadError(
                f"{where}: reaction {rid!r}: the atom map {atoms!r} needs one ' : ' between "
                "substrate and product atoms"
            )
        sides = []
        for mets, letters, what in ((left, maps[0], "substrates"), (right, maps[1], "products")):
            names = _side(mets, where, f"{what} of {rid!r}")
            groups = _side(letters, where, f"{what}' atoms of {rid!r}")
            if len(names) != len(groups):
                raise ModelReadError(
                    f"{where}: reaction {rid!r}: {len(names)} {what} but {len(groups)} atom groups"
                )
            if any(not g.isalpha() for g in groups):
                raise ModelReadError(f"{where}: reaction {rid!r}: atoms {groups} must be letters")
            joined = "".join(groups)
            dup = sorted({c for c in joined if joined.count(c) > 1})
            if dup:
                raise ModelReadError(
                    f"{where}: reaction {rid!r}: letters {dup} repeat among {what}"
                )
            sides.append(tuple(zip(names, groups, strict=True)))
        sub = "".join(a for _, a in sides[0])
        prod = "".join(a for _, a in sides[1])
        if sorted(sub) != sorted(prod):
            raise ModelReadError(
                f"{where}: reaction {rid!r}: atoms not balanced (substrates {sub!r}, products "
                f"{prod!r})"
            )
        t = AtomTransition(rid, sides[0], sides[1], arrow == "<==>", where)
        first = out.setdefault(rid, [t])[0]
        if first is not t:
            same = [m for m, _ in first.substrates] == [m for m, _ in t.substrates] and [
                m for m, _ in first.products
            ] == [m for m, _ in t.products]
            if not same or first.reversible != t.reversible:
                raise ModelReadError(
                    f"{where}: reaction {rid!r}: equation differs from its line {first.where}"
                )
            out[rid].append(t)
    return {r: tuple(ts) for r, ts in out.items()}


def read_mass_distribution(path: str | Path) -> tuple[MassDistribution, ...]:
    """Read a BayFlux mass-distribution table (tab separated, one header line).

    Each row: metabolite, atoms (``1,2,3``), then the ``n + 1`` MID entries of its ``n`` atoms
    (BayFlux's rule); trailing empty cells are absent entries.

    Raises
    ------
    ModelReadError
        Naming ``file:line`` for a missing or malformed atoms list, an empty or non-numeric
        entry, or a count of entries other than ``n + 1``.
    """
    path = Path(path)
    rows = _lines(path, "mass distribution")
    if not rows:
        raise ModelReadError(f"{path}: empty mass distribution file")
    out = []
    for no, line in rows[1:]:
        where = f"{path}:{no}"
        cells = [c.strip() for c in line.split("\t")]
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) < 3:
            raise ModelReadError(f"{where}: expected metabolite, atoms and MID entries")
        met, atoms_text, entries = cells[0], cells[1], cells[2:]
        try:
            atoms = tuple(int(a) for a in atoms_text.split(","))
        except ValueError:
            raise ModelReadError(
                f"{where}: atoms of {met!r} must be 1-based positions like '1,2,3', not "
                f"{atoms_text!r}"
            ) from None
        if min(atoms) < 1 or len(set(atoms)) != len(atoms):
            raise ModelReadError(f"{where}: atoms {atoms_text!r} of {met!r} must be distinct, >= 1")
        for k, e in enumerate(entries):
            if not e:
                raise ModelReadError(f"{where}: MID entry M+{k} of {met!r} is empty")
        values = tuple(
            _number(e, where, f"MID entry M+{k} of {met!r}") for k, e in enumerate(entries)
        )
        if len(values) != len(atoms) + 1:
            raise ModelReadError(
                f"{where}: {met!r} has {len(atoms)} atoms, so {len(atoms) + 1} MID entries "
                f"(M+0..M+{len(atoms)}), not {len(values)}"
            )
        out.append(MassDistribution(met, atoms, values, where))
    if not out:
        raise ModelReadError(f"{path}: no mass distribution rows under the header")
    return tuple(out)


def read_flux_bounds(
    path: str | Path, network: Network | None = None
) -> dict[str, tuple[float, float]]:
    """Read a BayFlux flux-bounds CSV: ``{reaction: (lower, upper)}`` (header line skipped).

    Raises
    ------
    ModelReadError
        Naming ``file:line`` for a row without three cells, a non-numeric bound,
        ``lower > upper``, a reaction given twice, or (with ``network``) one not in it.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelReadError(f"cannot read flux bounds file {path}: {exc}") from exc
    out: dict[str, tuple[float, float]] = {}
    lines: dict[str, int] = {}
    for no, cells in enumerate(rows[1:], 2):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        where = f"{path}:{no}"
        if len(cells) != 3 or not cells[0]:
            raise ModelReadError(f"{where}: expected 3 cells (reaction, lower, upper)")
        rid = cells[0]
        lo = _number(cells[1], where, f"lower bound of {rid!r}")
        hi = _number(cells[2], where, f"upper bound of {rid!r}")
        if lo > hi:
            raise ModelReadError(f"{where}: reaction {rid!r}: lower bound {lo} > upper bound {hi}")
        if rid in out:
            raise ModelReadError(f"{where}: reaction {rid!r} already bounded on line {lines[rid]}")
        if network is not None and rid not in network.reaction_index:
            raise ModelReadError(f"{where}: reaction {rid!r} is not in network {network.id!r}")
        out[rid], lines[rid] = (lo, hi), no
    return out


# --------------------------------------------------------------------- symmetric molecules
def _mapping(t: AtomTransition, backward: bool) -> tuple[list[str], list[str], list[tuple]]:
    """``(sources, targets, maps)``: for each target molecule, the ``(source index, position)``
    of each of its atoms, for the forward (or backward) direction of ``t``."""
    src, tgt = (t.products, t.substrates) if backward else (t.substrates, t.products)
    where = {c: (i, q) for i, (_, atoms) in enumerate(src) for q, c in enumerate(atoms)}
    return (
        [m for m, _ in src],
        [m for m, _ in tgt],
        [tuple(where[c] for c in atoms) for _, atoms in tgt],
    )


def _canonical(m: tuple, sizes: Sequence[int], flip: Sequence[int]) -> tuple:
    """The least of ``m`` over reversals of the source molecules ``flip`` (symmetric ones)."""
    best = None
    for mask in itertools.product((False, True), repeat=len(flip)):
        rev = {i for i, on in zip(flip, mask, strict=True) if on}
        cand = tuple((i, sizes[i] - 1 - q if i in rev else q) for i, q in m)
        best = cand if best is None or cand < best else best
    return best


def _production_ok(
    lines: Sequence[AtomTransition],
    backward: bool,
    target: int,
    symmetric: set[str],
    want_sym: bool,
) -> bool:
    """Whether the lines make target molecule ``target`` as one atom map (``want_sym=False``) or
    as one map in both atom orders equally often (``want_sym=True``), up to reversing
    symmetric source molecules."""
    classes = []
    for t in lines:
        src, _, maps = _mapping(t, backward)
        side = t.products if backward else t.substrates
        sizes = [len(a) for _, a in side]
        flip = [i for i, m in enumerate(src) if m in symmetric and sizes[i] > 1]
        classes.append(_canonical(maps[target], sizes, flip))
        if want_sym:
            classes[-1] = (classes[-1], _canonical(maps[target][::-1], sizes, flip))
    if not want_sym:
        return len(set(classes)) == 1
    counts = Counter(c[0] for c in classes)
    first, reverse = classes[0]
    if first == reverse:
        return set(counts) == {first}
    return set(counts) == {first, reverse} and counts[first] == counts[reverse]


def _symmetric(
    transitions: Mapping[str, Sequence[AtomTransition]], reversible: Mapping[str, bool]
) -> set[str]:
    """The symmetric molecules that explain reactions written as several lines (module
    docstring): the largest set of candidates each of whose productions is symmetric."""
    multi = {r: ts for r, ts in transitions.items() if len(ts) > 1}
    candidates = {
        m
        for ts in multi.values()
        for t in ts
        for m, a in (*t.substrates, *t.products)
        if len(a) > 1
    }
    productions = []  # (lines, backward, target index, metabolite)
    for r, ts in transitions.items():
        for backward in (False, True) if reversible[r] else (False,):
            _, targets, _ = _mapping(ts[0], backward)
            productions += [(ts, backward, k, m) for k, m in enumerate(targets)]
    made = {m for *_, m in productions}
    sym = candidates & made  # an input's labelling is the tracer's, symmetric or not
    changed = True
    while changed:
        changed = False
        for ts, backward, k, m in productions:
            if m in sym and not _production_ok(ts, backward, k, sym, True):
                sym.discard(m)
                changed = True
    return sym


# --------------------------------------------------------------------- labelling network
def _fmt(x: float) -> str:
    return np.format_float_positional(float(x), trim="-")


def _check(network: Network, transitions: Mapping[str, Sequence[AtomTransition]]) -> np.ndarray:
    """``network``'s dense stoichiometry, once every transition's reaction is in it with at
    least the transition's metabolites on each side (else a ModelReadError names the line)."""
    S = network.S.toarray() if hasattr(network.S, "toarray") else np.asarray(network.S)
    for rid, ts in transitions.items():
        if rid not in network.reaction_index:
            raise ModelReadError(
                f"{ts[0].where}: reaction {rid!r} is not in network {network.id!r}"
            )
        col = S[:, network.reaction_index[rid]]
        for t in ts:
            for side, sign, what in (
                (t.substrates, -1.0, "substrate"),
                (t.products, 1.0, "product"),
            ):
                for m, n in Counter(m for m, _ in side).items():
                    index = network.metabolite_index
                    have = sign * col[index[m]] if m in index else 0.0
                    if have < n - 1e-9:
                        raise ModelReadError(
                            f"{t.where}: reaction {rid!r}: {what} {m!r} appears {n} time(s) in "
                            f"the transition but with coefficient {have:g} in network "
                            f"{network.id!r}"
                        )
    return S


def labeling_network(
    network: Network, transitions: Mapping[str, Sequence[AtomTransition]]
) -> tuple[
    LabelingNetwork, tuple[tuple[dict[str, float], float], ...], dict[str, tuple[str, float]]
]:
    """The labelling network of ``network`` with BayFlux's atom transitions, the mass balances
    of ``network`` it does not impose itself (as ``({reaction: coef}, value)`` equalities, for
    :class:`~bayesflux.labeling.LabelingProblem`) and the shares ``{sub-reaction: (reaction,
    1/k)}`` of reactions split into alternative atom maps.

    Every reaction of ``network`` is kept with its stoichiometry and bounds. One with
    transitions traces their atoms (metabolites it lists more often than the transition are
    kept untraced for the rest) and is reversible when its lower bound is negative (BayFlux
    reads reversibility from the model, not from the file's arrow); one without carries no
    carbon label. Traced metabolites that no transition makes are inputs (unlabelled unless a
    tracer names them). Untraced reactions that touch no metabolite the labelling network
    balances (e.g. the uptake of an input) are left out; the equalities then hold their fixed
    fluxes as values (a balance with a left-out free flux is left to the network).

    A reaction of ``k`` lines that symmetric molecules do not explain (alternative atom maps,
    e.g. a ring flip) becomes ``k`` sub-reactions ``{id}#1 .. {id}#k``, one line and the whole
    stoichiometry each, carrying ``1/k`` of its net and exchange flux (BayFlux's equal share of
    each line): the equalities tie the net fluxes of the sub-reactions (``v_{id#i} = v_{id#1}``,
    as :func:`~bayesflux.labeling.read_fluxml` ties the sub-reactions of ``<variant>``
    reactants); :meth:`BayFluxModel.problem` ties their exchange fluxes alike.

    Raises
    ------
    ModelReadError
        Naming ``file:line`` for a transition of a reaction not in ``network``, a metabolite on
        a side of the transition that the reaction lacks (or has fewer of), atom counts that
        differ between reactions, or a sub-reaction id already in ``network``.
    """
    S = _check(network, transitions)
    mets = network.metabolites
    lb, ub = network.lb, network.ub
    reversible = {r: bool(lb[network.reaction_index[r]] < 0) for r in transitions}
    symmetric = _symmetric(transitions, reversible)
    variants: dict[str, list[tuple[str, AtomTransition]]] = {}
    shares: dict[str, tuple[str, float]] = {}
    for rid, ts in transitions.items():
        variants[rid] = [(rid, ts[0])]
        if len(ts) > 1 and not _one_map(ts, reversible[rid], symmetric):
            variants[rid] = [(f"{rid}#{k}", t) for k, t in enumerate(ts, 1)]
            for sub, t in variants[rid]:
                if sub in network.reaction_index:
                    raise ModelReadError(
                        f"{t.where}: reaction {rid!r}: its alternative atom map {sub!r} would "
                        f"take the id of a reaction of network {network.id!r}"
                    )
                shares[sub] = (rid, 1.0 / len(ts))
    alias = {}
    for m in mets:
        a = m if _SAFE.fullmatch(m) else "_" + m
        if not _SAFE.fullmatch(a) or (a != m and a in network.metabolite_index):
            raise ModelReadError(f"metabolite id {m!r} cannot be written in a reaction equation")
        alias[m] = a
    strings, where, bounds = {}, {}, {}
    for j, rid in enumerate(network.reactions):
        col = S[:, j]
        for sub, t in variants.get(rid, [(rid, None)]):
            terms: list[list[str]] = [[], []]
            for s, sign in ((0, -1.0), (1, 1.0)):
                traced = (t.substrates, t.products)[s] if t else ()
                for m, atoms in traced:
                    terms[s].append(f"{alias[m]} ({atoms})")
                count = Counter(m for m, _ in traced)
                for i in np.flatnonzero(sign * col > 0):
                    rest = sign * col[i] - count.get(mets[i], 0)
                    if rest > 1e-9:
                        coef = "" if abs(rest - 1.0) < 1e-12 else _fmt(rest) + " "
                        terms[s].append(f"{coef}{alias[mets[i]]}")
            arrow = " <-> " if t and reversible[rid] else " -> "
            strings[sub] = " + ".join(terms[0]) + arrow + " + ".join(terms[1])
            where[sub] = t.where if t else f"reaction {rid!r} of network {network.id!r}"
            share = shares.get(sub, (rid, 1.0))[1]
            bounds[sub] = (float(lb[j]) * share, float(ub[j]) * share)
    try:
        lab = LabelingNetwork.from_strings(
            strings, symmetric=sorted(alias[m] for m in symmetric), bounds=bounds
        )
    except BayesfluxError as exc:
        text = str(exc)  # the line of the reaction the message names first
        named = [(text.find(repr(r)), w) for r, w in where.items() if repr(r) in text]
        raise ModelReadError(f"{min(named, default=(0, 'transitions'))[1]}: {exc}") from exc
    lab = _renamed(lab, {a: m for m, a in alias.items()})
    balanced = set(lab.balanced)
    kept = tuple(
        r
        for r in lab.reactions
        if r.traced("substrates")
        or any(o.metabolite in balanced for o in r.substrates)
        or any(o.metabolite in balanced for o in r.products)
    )
    ids = {r.id for r in kept}
    lab = replace(lab, reactions=kept, bounds={r: b for r, b in lab.bounds.items() if r in ids})
    equalities = []
    for i, m in enumerate(mets):
        if m in balanced or not np.any(S[i]):
            continue
        row, value = {}, 0.0
        for j in np.flatnonzero(S[i]):
            r = network.reactions[j]
            if r in ids or r in variants:  # (a split reaction: its sub-reactions)
                row.update({sub: float(S[i, j]) for sub, _ in variants.get(r, [(r, None)])})
            elif lb[j] == ub[j]:
                value -= float(S[i, j] * lb[j])
            else:  # a left-out reaction with a free flux: the balance is the network's only
                row = {}
                break
        if row:
            equalities.append((row, value))
    for subs in variants.values():
        equalities += [({sub: 1.0, subs[0][0]: -1.0}, 0.0) for sub, _ in subs[1:]]
    return lab, tuple(equalities), shares


def _one_map(ts: Sequence[AtomTransition], reversible: bool, symmetric: set[str]) -> bool:
    """Whether the lines ``ts`` of one reaction are one atom map up to symmetric molecules (else
    they are alternative maps, :func:`labeling_network`)."""
    return all(
        _production_ok(ts, backward, k, symmetric, m in symmetric)
        for backward in ((False, True) if reversible else (False,))
        for k, m in enumerate(_mapping(ts[0], backward)[1])
    )


def _renamed(lab: LabelingNetwork, names: Mapping[str, str]) -> LabelingNetwork:
    """``lab`` with its metabolites renamed by ``names``."""

    def occ(o: Occurrence) -> Occurrence:
        return replace(o, metabolite=names.get(o.metabolite, o.metabolite))

    reactions = tuple(
        AtomReaction(r.id, tuple(map(occ, r.substrates)), tuple(map(occ, r.products)), r.reversible)
        for r in lab.reactions
    )
    return LabelingNetwork(
        reactions,
        frozenset(names.get(m, m) for m in lab.symmetric),
        tuple(names.get(m, m) for m in lab.inputs),
        dict(lab.bounds),
        {names.get(m, m): n for m, n in lab.atom_counts.items()},
    )


# --------------------------------------------------------------------- model and likelihood
def bayflux_bounds(
    network: Network,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    max_flux: float | None = MAX_FLUX,
) -> Network:
    """``network`` with ``bounds`` applied, then every bound clipped to ``[-max_flux, max_flux]``
    (BayFlux's order); a clip that leaves ``lower > upper`` raises a NetworkError."""
    net = network.with_bounds(dict(bounds or {}))
    if max_flux is None:
        return net
    lb, ub = np.maximum(net.lb, -max_flux), np.minimum(net.ub, max_flux)
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        r = net.reactions[bad[0]]
        raise NetworkError(
            f"reaction {r!r}: bounds [{net.lb[bad[0]]}, {net.ub[bad[0]]}] lie outside "
            f"±{max_flux} (max_flux)"
        )
    return replace(net, lb=lb, ub=ub)


class BayFluxLabeling:
    """13C MID likelihood with BayFlux's prior on exchange fluxes (module docstring).

    A :class:`~bayesflux.models.FluxPosterior` term: one latent exchange flux
    ``{name}_xch[r]`` on ``[0, min(ub, -lb)]`` per reaction with ``lb < 0 < ub`` (traced or not:
    BayFlux's uniform forward and backward fluxes weight every reversible reaction's net flux),
    coupled by ``x + v <= ub`` and ``x - v <= -lb``; a traced reaction with ``ub <= 0`` runs
    backwards only, exchange 0. The likelihood is ``problem.log_likelihood(v, x)``.

    ``shares``: ``{sub-reaction: (reaction, share)}`` of the problem's sub-reactions (alternative
    atom maps, :func:`labeling_network`), whose net and exchange fluxes are ``share`` times
    their reaction's.
    """

    def __init__(
        self,
        problem: LabelingProblem,
        network,
        *,
        name: str = "labeling",
        shares: Mapping[str, tuple[str, float]] | None = None,
    ) -> None:
        from bayesflux.models.posterior import Coupling, Latent

        network = as_network(network)
        self.problem, self.name = problem, name
        shares = dict(shares or {})
        label_ids = problem.network.reaction_ids
        parents = [shares.get(r, (r, 1.0))[0] for r in label_ids]
        missing = sorted(set(parents) - set(network.reactions))
        if missing:
            raise NetworkError(
                f"labelling reaction(s) {missing[:8]} are not in network {network.id!r}"
            )
        self.index = network.indices(parents)
        self.share = np.array([shares.get(r, (r, 1.0))[1] for r in label_ids])
        lb, ub = network.lb, network.ub
        rev = [j for j in range(network.n_reactions) if lb[j] < 0 < ub[j]]
        self.exchange_reactions = tuple(network.reactions[j] for j in rev)
        self.xch_names = tuple(f"{name}_xch[{r}]" for r in self.exchange_reactions)
        self.latents = tuple(
            Latent(nm, 0.0, float(min(ub[j], -lb[j])))
            for nm, j in zip(self.xch_names, rev, strict=True)
        )
        self.couplings = tuple(
            c
            for nm, j in zip(self.xch_names, rev, strict=True)
            for c in (
                Coupling({network.reactions[j]: 1.0}, {nm: 1.0}, upper=float(ub[j])),
                Coupling({network.reactions[j]: -1.0}, {nm: 1.0}, upper=float(-lb[j])),
            )
        )
        position = {r: k for k, r in enumerate(self.exchange_reactions)}
        rev_parents = [shares.get(r, (r, 1.0)) for r in problem.reversible]
        self._pick = np.array([position.get(r, -1) for r, _ in rev_parents], dtype=int)
        self._xshare = np.array([f for _, f in rev_parents])

    def net_fluxes(self, v: jax.Array) -> jax.Array:
        """Net fluxes of the problem's reactions (sub-reactions: their share) from ``v``."""
        return v[self.index] * self.share

    def exchange_fluxes(self, theta: Mapping[str, jax.Array]) -> jax.Array:
        """Exchange fluxes of the problem's reversible reactions (0 for backward-only ones)."""
        if not self._pick.size:
            return jnp.zeros(0)
        x = jnp.stack([jnp.asarray(theta[nm]) for nm in self.xch_names] + [jnp.zeros(())])
        return x[self._pick] * self._xshare

    def observe(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> None:
        """NumPyro sites: :func:`~bayesflux.models.blocks.labeling_13c`."""
        from bayesflux.models import blocks

        blocks.labeling_13c(
            self.net_fluxes(v), self.problem, xch=self.exchange_fluxes(theta), name=self.name
        )

    def log_likelihood(self, v: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        return self.problem.log_likelihood(self.net_fluxes(v), self.exchange_fluxes(theta))


@dataclass(frozen=True)
class BayFluxModel:
    """A network with BayFlux's bounds, atom transitions, tracers and MID data; ``shares``
    ``{sub-reaction: (reaction, 1/k)}`` of reactions split into alternative atom maps."""

    network: Network
    labeling: LabelingNetwork
    experiment: Experiment
    measurements: tuple[MSMeasurement, ...]
    fixed: dict[str, float]
    equalities: tuple[tuple[dict[str, float], float], ...]
    shares: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    def problem(self, **options) -> LabelingProblem:
        """The :class:`LabelingProblem` (fixed fluxes and the network's other mass balances as
        constraints, the exchange fluxes of sub-reactions tied like their net fluxes;
        ``xch_max`` the largest exchange bound); ``options`` passed on."""
        lb, ub = self.network.lb, self.network.ub
        span = np.minimum(ub, -lb)[(lb < 0) & (ub > 0)]
        options.setdefault("xch_max", float(span.max()) if span.size else 1.0)
        ids = set(self.labeling.reaction_ids)
        fixed = {r: v for r, v in self.fixed.items() if r in ids}
        fixed |= {s: self.fixed[r] * f for s, (r, f) in self.shares.items() if r in self.fixed}
        first: dict[str, str] = {}
        xch_equalities = []
        for s in self.labeling.reversible_ids:
            if s in self.shares:
                one = first.setdefault(self.shares[s][0], s)
                if one != s:
                    xch_equalities.append(({s: 1.0, one: -1.0}, 0.0))
        return LabelingProblem(
            self.labeling,
            [self.experiment],
            self.measurements,
            fixed=fixed,
            equalities=self.equalities,
            xch_equalities=xch_equalities,
            **options,
        )

    def term(self, problem: LabelingProblem | None = None, *, name: str = "labeling"):
        """The :class:`BayFluxLabeling` likelihood term of :meth:`problem`."""
        return BayFluxLabeling(
            problem or self.problem(), self.network, name=name, shares=self.shares
        )

    def posterior(self, **options):
        """``FluxPosterior(network, [term])``: BayFlux's posterior (``options`` passed on)."""
        from bayesflux.models import FluxPosterior

        return FluxPosterior(self.network, [self.term()], **options)


def read_bayflux(
    network,
    transitions: str | Path | Mapping[str, Sequence[AtomTransition]],
    mass_distribution: str | Path,
    flux_bounds: str | Path | Mapping[str, tuple[float, float]] | None = None,
    *,
    tracers: Mapping[str, Mapping[str, float]],
    sd: float = MID_SD,
    max_flux: float | None = MAX_FLUX,
    experiment: str = "bayflux",
) -> BayFluxModel:
    """A :class:`BayFluxModel` from a network (``Network``, ``cobra.Model`` or SBML path) and
    BayFlux's files (``transitions`` and ``flux_bounds`` files or what :func:`read_transitions`
    and :func:`read_flux_bounds` read).

    ``tracers``: ``{metabolite: {pattern: fraction}}`` (rest unlabelled), e.g.
    :data:`TOYA_TRACERS`; ``sd``: every MID entry's standard deviation; bounds are those of
    ``flux_bounds`` and then clipped to ``±max_flux``; fluxes with ``lower == upper`` are fixed.

    Raises
    ------
    ModelReadError
        For malformed files (``file:line``), MIDs of metabolites the transitions do not trace or
        atoms past their carbons.
    """
    network = as_network(network)
    bounds = flux_bounds
    if isinstance(flux_bounds, str | Path):
        bounds = read_flux_bounds(flux_bounds, network)
    net = bayflux_bounds(network, bounds, max_flux=max_flux)
    if isinstance(transitions, str | Path):
        transitions = read_transitions(transitions)
    lab, equalities, shares = labeling_network(net, transitions)
    if not (math.isfinite(sd) and sd > 0):
        raise NetworkError(f"the MID standard deviation must be finite and > 0, got {sd}")
    for met in tracers:
        if met not in lab.inputs:
            raise NetworkError(
                f"tracer for {met!r}, which is not an input of the labelling network "
                f"(inputs: {list(lab.inputs)})"
            )
    exp = Experiment(
        experiment,
        {m: tuple(Species(p, float(f)) for p, f in mix.items()) for m, mix in tracers.items()},
    )
    measurements = []
    for row in read_mass_distribution(mass_distribution):
        n = lab.atom_counts.get(row.metabolite)
        if n is None:
            raise ModelReadError(
                f"{row.where}: metabolite {row.metabolite!r} carries no atoms in the transitions"
            )
        if max(row.atoms) > n:
            raise ModelReadError(
                f"{row.where}: atoms {list(row.atoms)} of {row.metabolite!r}, which has {n}"
            )
        label = f"{row.metabolite}[{','.join(map(str, row.atoms))}]"
        measurements.append(
            MSMeasurement(
                experiment, row.metabolite, row.atoms, row.values, sd, scale="none", name=label
            )
        )
    fixed = {r: float(net.lb[j]) for j, r in enumerate(net.reactions) if net.lb[j] == net.ub[j]}
    return BayFluxModel(net, lab, exp, tuple(measurements), fixed, equalities, shares)


def _data_folder(data_dir: str | Path | None, case: str) -> Path:
    """``data_dir``, or ``bayflux_toya2010/{case}`` in the shared data folder."""
    if data_dir is not None:
        return Path(data_dir)
    from bayesflux.datasets import shared_data_dir

    root = shared_data_dir()
    if root is None:
        raise ModelReadError("shared data folder not found (set BAYESFLUX_SHARED_DATA)")
    return root / "bayflux_toya2010" / case


def bayflux_core(data_dir: str | Path | None = None) -> BayFluxModel:
    """BayFlux's core case: TOYA.xml, its transitions and exchange fluxes, the Toya 2010
    wild-type (5 h) MIDs, :data:`TOYA_TRACERS`, ``sd`` :data:`MID_SD`, bounds clipped to
    ``±58.5`` (``ecoli_core_Sample_Model`` in BayFlux's repository).

    ``data_dir``: the folder with BayFlux's files (default ``bayflux_toya2010/core`` in the
    shared data folder, :func:`bayesflux.datasets.shared_data_dir`).
    """
    d = _data_folder(data_dir, "core")
    from bayesflux.network import read_sbml

    return read_bayflux(
        read_sbml(d / "TOYA.xml"),
        d / "TOYA_transitions.txt",
        d / "TOYA_wt5h_mass_distribution.txt",
        d / "EXCHANGE_FLUXES_TOYA2.csv",
        tracers=TOYA_TRACERS,
        experiment="wt5h",
    )


# --------------------------------------------------------------------- genome scale
#: iJO1366 reactions that stand for BayFlux's (iAF1260) reactions absent from iJO1366: the one
#: reaction of iJO1366 without transitions whose sides hold the transition's metabolites (the
#: model's biomass reaction for iAF1260's); their other metabolites stay untraced.
IJO1366_RENAMES = {
    "BIOMASS_Ec_iAF1260_core_59p81M": "BIOMASS_Ec_iJO1366_core_53p95M",
    "COLIPAtex": "COLIPAabctex",
    "ETOHt2rpp": "ETOHtrpp",
    "K2L4Atex": "K2L4Aabctex",
    "MECDPDH2": "MECDPDH5",
    "RNTR1c": "RNTR1c2",
}
#: iJO1366 reactions closed (bounds 0) to match BayFlux's model: its second biomass reaction,
#: which the growth-rate bounds of ``pyk5h`` and ``pgi16h`` (on the renamed one) do not reach.
IJO1366_CLOSED = ("BIOMASS_Ec_iJO1366_WT_53p95M",)
#: BayFlux's genome-scale substrate (:data:`TOYA_TRACERS` under BiGG ids; ``cynt_e`` unlabelled).
GENOME_TRACERS = {"glc__D_e": {"100000": 0.3, "111111": 0.2}}
STRAINS = ("wt5h", "pyk5h", "pgi16h")


@dataclass(frozen=True, eq=False)
class GenomeScaleReport:
    """What :func:`bayflux_genome_scale` made of BayFlux's transitions on iJO1366.

    ``reactions``: one row per reaction of the transitions file (index ``reaction``): ``target``
    (its iJO1366 id, ``""`` when dropped), ``status`` (``mapped``, ``renamed`` by
    :data:`IJO1366_RENAMES`, ``dropped`` or ``blocked``: no flux within the bounds),
    ``lines``, ``atom_maps`` (``one``, ``symmetric``: lines reduced by symmetric molecules,
    ``split``: equal-share sub-reactions), ``reversible`` (iJO1366's bounds, which BayFlux
    follows) and ``reversible_file`` (the file's arrow), ``where`` (``file:line``) and
    ``note``. ``truncated``: ``(file:line, metabolite, atoms,
    kept)`` of transitions whose extra atoms of a metabolite were cut to its atom count
    elsewhere. ``untraced``: iJO1366 reactions without transitions (no carbon label);
    ``left_out``: those the labelling network leaves out.
    """

    reactions: pd.DataFrame
    truncated: tuple[tuple[str, str, int, int], ...]
    untraced: tuple[str, ...]
    left_out: tuple[str, ...]

    def summary(self) -> dict[str, int]:
        """Counts: reactions of the file by status, split ones, truncated lines, untraced."""
        status = self.reactions["status"].value_counts()
        return {
            "file_reactions": len(self.reactions),
            "file_lines": int(self.reactions["lines"].sum()),
            **{k: int(status.get(k, 0)) for k in ("mapped", "renamed", "dropped", "blocked")},
            "split": int((self.reactions["atom_maps"] == "split").sum()),
            "symmetric": int((self.reactions["atom_maps"] == "symmetric").sum()),
            "reversibility_from_model": int(
                (
                    self.reactions["status"].isin(("mapped", "renamed"))
                    & (self.reactions["reversible"] != self.reactions["reversible_file"])
                ).sum()
            ),
            "truncated_lines": len(self.truncated),
            "untraced": len(self.untraced),
            "left_out": len(self.left_out),
        }


def _truncate(
    transitions: Mapping[str, Sequence[AtomTransition]],
) -> tuple[dict[str, tuple[AtomTransition, ...]], tuple[tuple[str, str, int, int], ...]]:
    """Cut each metabolite's atoms to its fewest among the transitions (imEco726 writes acyl-ACPs
    with 11 ACP carbons in some lines only): exact for every EMU within the kept atoms, as the
    cut atoms must only pass between cut positions (else a ModelReadError names the line)."""
    fewest: dict[str, int] = {}
    for ts in transitions.values():
        for t in ts:
            for m, a in (*t.substrates, *t.products):
                fewest[m] = min(fewest.get(m, len(a)), len(a))
    out, cut = {}, []
    for rid, ts in transitions.items():
        new = []
        for t in ts:
            sides = (t.substrates, t.products)
            dropped = [{c for m, a in side for c in a[fewest[m] :]} for side in sides]
            if dropped[0] != dropped[1]:
                long = {m: fewest[m] for m, a in (*t.substrates, *t.products) if len(a) > fewest[m]}
                raise ModelReadError(
                    f"{t.where}: reaction {rid!r}: atoms past the atom counts {long} that other "
                    "transitions give pass into kept positions, so they cannot be cut"
                )
            if dropped[0]:
                cut += [
                    (t.where, m, len(a), fewest[m])
                    for m, a in (*t.substrates, *t.products)
                    if len(a) > fewest[m]
                ]
                t = replace(
                    t,
                    substrates=tuple((m, a[: fewest[m]]) for m, a in t.substrates),
                    products=tuple((m, a[: fewest[m]]) for m, a in t.products),
                )
            new.append(t)
        out[rid] = tuple(new)
    return out, tuple(cut)


def _yaml_number(path: Path, key: str) -> float:
    """The number after ``key:`` in BayFlux's run settings (a flat YAML file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelReadError(f"cannot read BayFlux settings {path}: {exc}") from exc
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(rf"\s*{key}\s*:\s*([^#\s]+)", line)
        if m:
            return _number(m.group(1), f"{path}:{no}", key)
    raise ModelReadError(f"{path}: no {key!r} setting")


def bayflux_genome_scale(
    strain: str = "wt5h",
    data_dir: str | Path | None = None,
    *,
    network: Network | None = None,
    renames: Mapping[str, str] = IJO1366_RENAMES,
    tracers: Mapping[str, Mapping[str, float]] = GENOME_TRACERS,
    closed: Sequence[str] = IJO1366_CLOSED,
    drop_blocked: bool = True,
) -> tuple[BayFluxModel, GenomeScaleReport]:
    """BayFlux's genome-scale case (Backman et al. 2023) on iJO1366: its imEco726 transitions,
    the Toya 2010 MIDs and flux bounds of ``strain`` (``wt5h``, ``pyk5h``, ``pgi16h``), its MID
    ``sd`` (``averageError``) and ``maxFlux`` from the strain's settings.

    The transitions are mapped onto ``network`` (default bundled iJO1366; BayFlux's own
    iAF1260-based SBML is not published) by reaction id after ``renames`` (which apply to the
    bounds file too; the reactions ``closed`` get bounds 0); those of reactions it lacks are
    dropped, a metabolite's atoms cut to its fewest (:func:`_truncate`), and
    alternative atom maps become equal-share sub-reactions (:func:`labeling_network`). With
    ``drop_blocked`` the transitions of reactions that no flux within the strain's bounds uses
    (flux variability, e.g. iJO1366's periplasmic fumarate uptake) are dropped too: the pools
    only they make would exchange labelling among themselves with nothing flowing in, a
    singular EMU balance, and they carry no net flux. Reactions without transitions carry no
    carbon label, as in BayFlux. The EMU network the problem builds holds only what the
    measured fragments need (:class:`~bayesflux.labeling.emu.EMUSimulator` traces back from
    them).

    ``data_dir``: the ``genome_scale`` folder (default ``bayflux_toya2010/genome_scale`` in the
    shared data folder). Returns the model and a :class:`GenomeScaleReport`.

    Raises
    ------
    ModelReadError
        For malformed files (``file:line``), a mapped transition naming a metabolite its
        reaction lacks (``file:line``) or an unknown ``strain``.
    """
    if strain not in STRAINS:
        raise ModelReadError(f"unknown strain {strain!r} (BayFlux's: {', '.join(STRAINS)})")
    d = _data_folder(data_dir, "genome_scale")
    if network is None:
        from bayesflux.datasets import load

        network = load("iJO1366")
    network = as_network(network)
    settings = d / f"{strain}.yaml"
    sd, max_flux = _yaml_number(settings, "averageError"), _yaml_number(settings, "maxFlux")
    file = read_transitions(d / "transitions.txt")
    mapped: dict[str, tuple[AtomTransition, ...]] = {}
    rows = []
    for rid, ts in file.items():
        target = renames.get(rid, rid)
        row = dict(reaction=rid, target=target, lines=len(ts), where=ts[0].where, note="")
        row["reversible_file"] = ts[0].reversible
        if target not in network.reaction_index:
            absent = sorted(
                {m for t in ts for m, _ in (*t.substrates, *t.products)}
                - set(network.metabolite_index)
            )
            row.update(target="", status="dropped", note=f"not in {network.id!r}")
            if absent:
                row["note"] += f"; nor are its metabolites {', '.join(absent)}"
        elif target in mapped:
            raise ModelReadError(
                f"{ts[0].where}: reaction {rid!r} maps onto {target!r}, which the transitions "
                "already give"
            )
        else:
            row["status"] = "renamed" if target != rid else "mapped"
            mapped[target] = tuple(replace(t, reaction=target) for t in ts)
        rows.append(row)
    mapped, cut = _truncate(mapped)
    path = d / f"flux_bounds_{strain}.csv"
    bounds = {r: (0.0, 0.0) for r in closed}
    for r, b in read_flux_bounds(path).items():
        if renames.get(r, r) not in network.reaction_index:
            raise ModelReadError(f"{path}: reaction {r!r} is not in network {network.id!r}")
        bounds[renames.get(r, r)] = b
    _check(network, mapped)
    if drop_blocked and mapped:
        from bayesflux.methods.fva import fva

        net = bayflux_bounds(network, bounds, max_flux=max_flux)
        ranges = fva(net, fraction=0.0, reactions=list(mapped))
        low, high = ranges["minimum"].values, ranges["maximum"].values
        for r, a, b in zip(list(mapped), low, high, strict=True):
            if max(abs(a), abs(b)) < 1e-9:
                del mapped[r]
                row = next(row for row in rows if row["target"] == r)
                row.update(status="blocked", note="carries no flux within the bounds")
    model = read_bayflux(
        network,
        mapped,
        d / f"GCMS{strain}.txt",
        bounds,
        tracers=tracers,
        sd=sd,
        max_flux=max_flux,
        experiment=strain,
    )
    split = {r for r, _ in model.shares.values()}
    lb = model.network.lb
    for row in rows:
        t = row["target"]
        row["reversible"] = bool(t and lb[model.network.reaction_index[t]] < 0)
        row["atom_maps"] = (
            ""
            if t not in mapped
            else "split"
            if t in split
            else "symmetric"
            if row["lines"] > 1
            else "one"
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "reaction",
            "target",
            "status",
            "lines",
            "atom_maps",
            "reversible",
            "reversible_file",
            "where",
            "note",
        ],
    ).set_index("reaction")
    kept = {model.shares.get(r, (r, 1.0))[0] for r in model.labeling.reaction_ids}
    untraced = tuple(r for r in model.network.reactions if r not in mapped)
    report = GenomeScaleReport(table, cut, untraced, tuple(r for r in untraced if r not in kept))
    return model, report
