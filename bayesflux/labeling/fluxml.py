"""Writer and reader of FluxML (13CFLUX / x3cflux) documents for stationary 13C-MFA.

FluxML (Beyß et al. 2019) is 13CFLUX's XML format. :func:`write_fluxml` writes the network
(atom maps as ``C#i@k``: atom ``i`` of the ``k``-th educt), net/exchange constraints, one
stationary configuration with the tracer mixture, MS groups (scale ``one`` or ``auto``) and
1H-NMR enrichments with their data, and start values for free fluxes, so a model built in
bayesflux can be simulated, fitted or cross-checked by 13CFLUX/x3cflux. Tracer species are
written without a purity when the experiment has no natural 13C (pure 12C at unlabelled
positions), and with their purities when it has 13CFLUX's natural abundance
:data:`X3CFLUX_NATURAL_13C`.

:func:`read_fluxml` reads a FluxML model (13CFLUX 2 / x3cflux dialect, ``<variant>`` reactants
included) into a :class:`FluxMLModel`, an :class:`~bayesflux.labeling.ftbl.FTBLModel` with the
FluxML extras; :func:`read_fluxml_inputs` reads tracer ``<mixture>`` documents.
"""

from __future__ import annotations

import itertools
import math
import re
import string
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from bayesflux.errors import BayesfluxError, ModelReadError, NetworkError
from bayesflux.labeling.ftbl import FTBLModel
from bayesflux.labeling.measurements import (
    EnrichmentMeasurement,
    FluxMeasurement,
    MSMeasurement,
    atom_positions,
)
from bayesflux.labeling.network import LabelingNetwork, equality_rows
from bayesflux.labeling.tracers import Experiment, Species

__all__ = [
    "FluxMLModel",
    "X3CFLUX_NATURAL_13C",
    "fluxml_string",
    "read_fluxml",
    "read_fluxml_inputs",
    "write_fluxml",
]

#: natural 13C abundance 13CFLUX (x3cflux 3.1) puts on the unlabelled positions of a tracer
#: species written with a purity (measured from its simulations: an unlabelled position gives
#: M+1 = 0.01055); without a purity attribute the species is taken as pure.
X3CFLUX_NATURAL_13C = 0.01055


def _cfg(atoms: str, where: Mapping[str, tuple[int, int]]) -> str:
    return " ".join(f"C#{where[c][1] + 1}@{where[c][0] + 1}" for c in atoms)


def _ranges(positions: Sequence[int]) -> str:
    out, start = [], None
    pos = sorted(positions)
    for i, p in enumerate(pos):
        if start is None:
            start = p
        if i + 1 == len(pos) or pos[i + 1] != p + 1:
            out.append(f"{start + 1}" if start == p else f"{start + 1}-{p + 1}")
            start = None
    return ",".join(out)


def _linear(coefs: Mapping[str, float]) -> str:
    return " + ".join(f"{c!r}*{r}" for r, c in coefs.items()).replace("+ -", "- ")


def fluxml_string(
    network: LabelingNetwork,
    experiment: Experiment,
    measurements: Sequence[MSMeasurement | EnrichmentMeasurement | FluxMeasurement] = (),
    *,
    fixed: Mapping[str, float] | None = None,
    equalities: Sequence[tuple[Mapping[str, float], float]] = (),
    fixed_xch: Mapping[str, float] | None = None,
    xch_equalities: Sequence[tuple[Mapping[str, float], float]] = (),
    start: Mapping[str, float] | None = None,
    xch_max: float = 1000.0,
    name: str = "bayesflux model",
) -> str:
    """The FluxML text of a model; see :func:`write_fluxml`."""
    if network.symmetric:
        raise NetworkError(
            f"FluxML has no symmetric molecules: write {sorted(network.symmetric)} as two "
            "half reactions instead"
        )
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        '<fluxml xmlns="http://www.13cflux.net/fluxml">',
        f"<info><version>1.1</version><comment>{escape(name)}</comment></info>",
        "<reactionnetwork>",
        "<metabolitepools>",
    ]
    # excreted pools (never consumed) are left out: FluxML writes outflows without products;
    # untraced pools are written with 0 atoms, those never produced with an empty input
    keep = set(network.balanced) | set(network.inputs)
    made = {o.metabolite for r in network.reactions for o in r.products}
    made |= {o.metabolite for r in network.reactions if r.reversible for o in r.substrates}
    untraced_in = list(
        dict.fromkeys(
            o.metabolite
            for r in network.reactions
            for o in r.substrates
            if o.metabolite not in network.atom_counts and o.metabolite not in made
        )
    )
    keep |= set(untraced_in)
    pools = dict.fromkeys(
        o.metabolite for r in network.reactions for o in (*r.substrates, *r.products)
    )
    lines += [
        f'  <pool atoms="{network.atom_counts.get(m, 0)}" id={quoteattr(m)}/>'
        for m in pools
        if m in keep
    ]
    lines.append("</metabolitepools>")
    for r in network.reactions:
        for o in (*r.substrates, *r.products):
            if o.coefficient != 1.0 and (o.atoms or o.coefficient != int(o.coefficient)):
                raise NetworkError(
                    f"reaction {r.id!r}: FluxML has no coefficients; {o.coefficient} "
                    f"{o.metabolite!r} cannot be written as repeated molecules"
                )
        where = {c: (k, q) for k, o in enumerate(r.substrates) for q, c in enumerate(o.atoms)}
        own = {c: (0, q) for o in r.substrates for q, c in enumerate(o.atoms)}
        bid = "true" if r.reversible else "false"
        lines.append(f'<reaction bidirectional="{bid}" id={quoteattr(r.id)}>')
        for k, o in enumerate(r.substrates):
            cfg = f'cfg="{_cfg(o.atoms, {c: (k, own[c][1]) for c in o.atoms})}" ' if o.atoms else ""
            lines += [f"  <reduct {cfg}id={quoteattr(o.metabolite)}/>"] * int(o.coefficient)
        for o in r.products:
            if o.metabolite not in keep:
                continue
            cfg = f'cfg="{_cfg(o.atoms, where)}" ' if o.atoms else ""
            lines += [f"  <rproduct {cfg}id={quoteattr(o.metabolite)}/>"] * int(o.coefficient)
        lines.append("</reaction>")
    lines.append("</reactionnetwork>")
    net = [f"{r} = {v!r};" for r, v in (fixed or {}).items()]
    net += [f"{_linear(c)} = {v!r};" for c, v in equalities]
    for r, (lo, hi) in network.bounds.items():
        net += [f"{r} &gt;= {lo!r};", f"{r} &lt;= {hi!r};"]
    xch = [f"{r} = 0;" for r in network.reaction_ids if r not in network.reversible_ids]
    xch += [f"{r} = {v!r};" for r, v in (fixed_xch or {}).items()]
    xch += [f"{_linear(c)} = {v!r};" for c, v in xch_equalities]
    for r in network.reversible_ids:
        xch += [f"{r} &gt;= 0;", f"{r} &lt;= {float(xch_max)!r};"]
    lines += [
        "<constraints>",
        f"<net><textual>{' '.join(net)}</textual></net>",
        f"<xch><textual>{' '.join(xch)}</textual></xch>",
        "</constraints>",
        '<configuration name="default" stationary="true">',
    ]
    natural = experiment.natural
    if natural and abs(natural - X3CFLUX_NATURAL_13C) > 1e-12:
        raise NetworkError(
            f"experiment {experiment.name!r}: 13CFLUX's natural 13C abundance is "
            f"{X3CFLUX_NATURAL_13C}, not {natural}"
        )
    for met in network.inputs:
        lines.append(f'<input pool={quoteattr(met)} type="isotopomer">')
        species = list(experiment.tracers.get(met, ()))
        total = sum(s.fraction for s in species)
        if total < 1.0 - 1e-12:
            species.append(Species("0" * network.atom_counts[met], 1.0 - total))
        for s in species:
            if natural:
                attr = f' purity="{s.purity!r}"'
            elif s.purity == 1.0:
                attr = ""
            else:
                raise NetworkError(
                    f"tracer of {met!r}: 13CFLUX puts natural 13C ({X3CFLUX_NATURAL_13C}) on "
                    "unlabelled positions whenever a purity is given; use that natural abundance "
                    "in the experiment to write purities below 1"
                )
            lines.append(f'  <label cfg="{s.pattern.lstrip("#")}"{attr}>{s.fraction!r}</label>')
        lines.append("</input>")
    lines += [f'<input pool={quoteattr(m)} type="isotopomer"/>' for m in untraced_in]
    groups, data = [], []
    for k, m in enumerate(x for x in measurements if isinstance(x, MSMeasurement)):
        if m.formula:
            raise NetworkError(f"measurement {m.label!r}: FluxML groups take corrected MIDs only")
        gid = f"ms_{k}"
        scale = "one" if m.scale in ("none", "normalized") else "auto"
        masses = m.mass_shifts
        spec = f"{m.metabolite}[{_ranges(atom_positions(m.atoms))}]#M{','.join(map(str, masses))}"
        groups.append(f'<group id="{gid}" scale="{scale}"><textual>{spec}</textual></group>')
        sds = np.broadcast_to(np.asarray(m.sd, float), (len(masses),))
        for w, v, sd in zip(masses, m.values, sds, strict=True):
            data.append(
                f'<datum id="{gid}" stddev="{float(sd)!r}" weight="{w}">{float(v)!r}</datum>'
            )
    for k, m in enumerate(x for x in measurements if isinstance(x, EnrichmentMeasurement)):
        gid = f"nmr_{k}"
        spec = f"{m.metabolite}#P{int(m.position)}"
        groups.append(f'<group id="{gid}" scale="one"><textual>{spec}</textual></group>')
        data.append(
            f'<datum id="{gid}" stddev="{float(m.sd)!r}" pos="{int(m.position)}">'
            f"{float(m.value)!r}</datum>"
        )
    fluxes = []
    for k, m in enumerate(x for x in measurements if isinstance(x, FluxMeasurement)):
        fluxes.append(f'<netflux id="flux_{k}"><textual>{m.reaction}</textual></netflux>')
        data.append(f'<datum id="flux_{k}" stddev="{m.sd!r}">{m.value!r}</datum>')
    lines += [
        "<measurement><model><labelingmeasurement>",
        *groups,
        "</labelingmeasurement>",
        f"<fluxmeasurement>{''.join(fluxes)}</fluxmeasurement></model>",
        "<data>",
        *data,
        "</data></measurement>",
        '<simulation method="auto" type="full"><variables>',
    ]
    for key, v in (start or {}).items():
        r, _, kind = key.rpartition(".")
        lines.append(f'<fluxvalue flux={quoteattr(r)} type="{kind}">{float(v)!r}</fluxvalue>')
    lines += ["</variables></simulation>", "</configuration>", "</fluxml>"]
    return "\n".join(lines) + "\n"


def write_fluxml(
    path: str | Path,
    network: LabelingNetwork,
    experiment: Experiment,
    measurements: Sequence[MSMeasurement | EnrichmentMeasurement | FluxMeasurement] = (),
    **options,
) -> Path:
    """Write a FluxML file (options as :func:`fluxml_string`: ``fixed``, ``equalities``,
    ``fixed_xch``, ``xch_equalities``, ``start`` as ``{"reaction.net" | "reaction.xch": value}``,
    ``xch_max``, ``name``)."""
    path = Path(path)
    path.write_text(fluxml_string(network, experiment, measurements, **options), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- reader
_LINE = "{bayesflux}line"  # attribute key holding an element's line in the file
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op><=|>=|=<|=>|==|[-+*/()=<>]))"
)
_MS = re.compile(r"^([A-Za-z_]\w*)(?:\[([\d,\-\s]+)\])?#M(\d+(?:\s*,\s*\d+)*)$")
_NMR1H = re.compile(r"^([A-Za-z_]\w*)#P(\d+(?:\s*,\s*P?\d+)*)$")


@dataclass(frozen=True)
class FluxMLModel(FTBLModel):
    """A FluxML model read by :func:`read_fluxml`: an :class:`FTBLModel` (same fields, same
    :meth:`~FTBLModel.problem`) plus what FluxML says beyond FTBL.

    ``xch_bounds`` are per-reaction exchange-flux bounds and ``inequalities`` /
    ``xch_inequalities`` the inequalities on more than one flux, as ``({r: c}, lo, hi)``: kept
    here, not enforced by :class:`LabelingProblem` (one global ``xch_max``). ``notes`` lists
    what was read but left out of the stationary model (pool sizes, time points).
    """

    configuration: str = "default"
    stationary: bool = True
    xch_bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    inequalities: tuple = ()
    xch_inequalities: tuple = ()
    notes: tuple[str, ...] = ()

    def configured_fluxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Net and exchange fluxes (all reactions; reversible ones) of the configuration's
        ``fluxvalue`` elements, completed through the constraints.

        Raises :class:`ModelReadError` when the given values are not a valid set of free fluxes.
        """
        stoich = self.network.stoichiometry()
        S = stoich.S.toarray() if hasattr(stoich.S, "toarray") else np.asarray(stoich.S)
        ids, rev = self.network.reaction_ids, self.network.reversible_ids
        E, e = equality_rows(ids, self.fixed, self.equalities)
        Ex, ex = equality_rows(rev, self.fixed_xch, self.xch_equalities)
        out = []
        for kind, names, A, b in (
            ("net", ids, np.vstack([S, E]), np.concatenate([np.zeros(S.shape[0]), e])),
            ("xch", rev, Ex, ex),
        ):
            given = {k[:-4]: v for k, v in self.start.items() if k.endswith("." + kind)}
            G = np.zeros((len(given), len(names)))
            G[np.arange(len(given)), [names.index(r) for r in given]] = 1.0
            M = np.vstack([A.reshape(-1, len(names)), G])
            rhs = np.concatenate([b, list(given.values())])
            v, *_ = np.linalg.lstsq(M, rhs, rcond=None)
            if len(names) and np.linalg.matrix_rank(M) < len(names):
                raise ModelReadError(
                    f"configuration {self.configuration!r}: the {kind} fluxvalues "
                    f"{sorted(given)} and the constraints leave {kind} fluxes undetermined"
                )
            if np.linalg.norm(M @ v - rhs) > 1e-8 * max(1.0, np.linalg.norm(rhs)):
                raise ModelReadError(
                    f"configuration {self.configuration!r}: the {kind} fluxvalues "
                    f"{sorted(given)} contradict the constraints"
                )
            out.append(v)
        return out[0], out[1]


def _parse_xml(path: Path) -> ET.Element:
    """The element tree of ``path`` with namespaces stripped and each element's line number
    stored under the attribute ``_LINE`` (ElementTree keeps none)."""
    parser = expat.ParserCreate(namespace_separator="}")
    builder = ET.TreeBuilder()

    def start(name: str, attrs: dict[str, str]) -> None:
        attrs = {k.rpartition("}")[2]: v for k, v in attrs.items()}
        attrs[_LINE] = str(parser.CurrentLineNumber)
        builder.start(name.rpartition("}")[2], attrs)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: builder.end(name.rpartition("}")[2])
    parser.CharacterDataHandler = builder.data
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except OSError as exc:
        raise ModelReadError(f"cannot read FluxML file {path}: {exc}") from exc
    except expat.ExpatError as exc:
        raise ModelReadError(f"{path}:{exc.lineno}: not well-formed XML ({exc})") from None
    return builder.close()


class _Reader:
    """Shared state of one :func:`read_fluxml` call: the path, for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.one_way: list[str] = []  # bidirectional in the file, one way here

    def error(self, el: ET.Element, message: str, offset: int = 0) -> ModelReadError:
        return ModelReadError(f"{self.path}:{int(el.get(_LINE, 0)) + offset}: <{el.tag}> {message}")

    def attr(self, el: ET.Element, name: str) -> str:
        value = el.get(name)
        if value is None:
            raise self.error(el, f"needs the attribute {name!r}")
        return value

    def number(self, el: ET.Element, text: str | None, what: str) -> float:
        try:
            value = float((text or "").strip())
        except ValueError:
            raise self.error(el, f"{what} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise self.error(el, f"{what} is {text!r}, not a finite number")
        return value

    def textual(self, el: ET.Element, what: str) -> tuple[ET.Element, str]:
        t = el.find("textual")
        if t is None:
            kind = "MathML" if len(el) else "nothing"
            raise self.error(el, f"{what}: only <textual> content is supported, found {kind}")
        return t, t.text or ""

    # ------------------------------------------------------------- linear expressions
    def linear(
        self, el: ET.Element, text: str, offset: int, shown: str = ""
    ) -> tuple[dict[str, float], float]:
        """``sum c_r r + const`` of a linear expression (``+ - * / ( )``, numbers, names);
        messages quote ``shown`` (the whole statement) or ``text``."""
        whole = (shown or text).strip()
        tokens, pos = [], 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if not text[pos:].strip():
                    break
                raise self.error(el, f"cannot parse {whole!r} at {text[pos:].strip()!r}", offset)
            tokens.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        k = 0

        def peek() -> str | None:
            return tokens[k][1] if k < len(tokens) else None

        def expr() -> tuple[dict[str, float], float]:
            nonlocal k
            c, v = term()
            while peek() in ("+", "-"):
                sign = 1.0 if tokens[k][1] == "+" else -1.0
                k += 1
                c2, v2 = term()
                for r, a in c2.items():
                    c[r] = c.get(r, 0.0) + sign * a
                v += sign * v2
            return c, v

        def term() -> tuple[dict[str, float], float]:
            nonlocal k
            c, v = factor()
            while peek() in ("*", "/"):
                op = tokens[k][1]
                k += 1
                c2, v2 = factor()
                if op == "/" and (c2 or v2 == 0.0):
                    raise self.error(el, f"{whole!r}: divide by nonzero numbers only", offset)
                if op == "*" and c and c2:
                    raise self.error(el, f"{whole!r} is not linear", offset)
                if op == "/":
                    c, v = {r: a / v2 for r, a in c.items()}, v / v2
                elif c2:
                    c, v = {r: a * v for r, a in c2.items()}, 0.0
                else:
                    c, v = {r: a * v2 for r, a in c.items()}, v * v2
            return c, v

        def factor() -> tuple[dict[str, float], float]:
            nonlocal k
            if k >= len(tokens):
                raise self.error(el, f"{whole!r} ends early", offset)
            kind, tok = tokens[k]
            k += 1
            if tok in ("+", "-"):
                c, v = factor()
                return ({r: -a for r, a in c.items()}, -v) if tok == "-" else (c, v)
            if kind == "num":
                return {}, float(tok)
            if kind == "name":
                return {tok: 1.0}, 0.0
            if tok == "(":
                out = expr()
                if peek() != ")":
                    raise self.error(el, f"{whole!r}: missing ')'", offset)
                k += 1
                return out
            raise self.error(el, f"{whole!r}: unexpected {tok!r}", offset)

        out = expr()
        if k != len(tokens):
            raise self.error(el, f"{whole!r}: unexpected {tokens[k][1]!r}", offset)
        return out

    def constraints(self, el: ET.Element) -> list[tuple[str, dict[str, float], float, int]]:
        """``(op, {r: c}, value, line offset)`` of ``sum c_r r  op  value`` per statement."""
        t, text = self.textual(el, "constraints")
        out = []
        start = 0
        for stmt in text.split(";"):
            offset = text[:start].count("\n") + stmt[: len(stmt) - len(stmt.lstrip())].count("\n")
            start += len(stmt) + 1
            if not stmt.strip():
                continue
            m = re.search(r"<=|>=|=<|=>|==|=|<|>", stmt)
            if m is None:
                raise self.error(t, f"constraint {stmt.strip()!r} has no =, <= or >=", offset)
            op = {"=<": "<=", "=>": ">=", "==": "=", "<": "<=", ">": ">="}.get(m.group(), m.group())
            lhs = self.linear(t, stmt[: m.start()], offset, stmt)
            rhs = self.linear(t, stmt[m.end() :], offset, stmt)
            coefs = dict(lhs[0])
            for r, a in rhs[0].items():
                coefs[r] = coefs.get(r, 0.0) - a
            coefs = {r: a for r, a in coefs.items() if a != 0.0}
            if not coefs:
                raise self.error(t, f"constraint {stmt.strip()!r} names no flux", offset)
            out.append((op, coefs, rhs[1] - lhs[1], offset))
        return out


def _cfg_names(cfg: str) -> list[str]:
    """Atom names of a FluxML ``cfg``: ``C#1@1 C#2@1`` tokens, or one letter per atom."""
    cfg = cfg.strip()
    return cfg.split() if "#" in cfg else list(cfg.replace(" ", ""))


def _reactions(rd: _Reader, net: ET.Element, atoms: dict[str, int]):
    """Parse ``<reaction>`` elements: ``(strings, lines, bidirectional, scramblers)``; reactions
    with ``<variant>`` reactants are split into one sub-reaction per combination of variants
    (ids from the space-separated ``id``), each carrying the product of its variants' ratios."""
    strings: dict[str, str] = {}
    lines: dict[str, ET.Element] = {}
    bidir: dict[str, bool] = {}
    scramblers: list[tuple[list[str], list[float], ET.Element]] = []
    for r in net.findall("reaction"):
        ids = rd.attr(r, "id").replace(",", " ").split()
        if not ids:
            raise rd.error(r, "has an empty id")
        flag = r.get("bidirectional", "true").strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise rd.error(r, f"{ids[0]!r}: bidirectional must be true or false, not {flag!r}")
        sides: list[list[tuple[str, list[tuple[list[str], float]]]]] = [[], []]
        for child in r:
            if child.tag == "annotation":
                continue
            if child.tag not in ("reduct", "rproduct"):
                raise rd.error(child, f"unexpected in reaction {ids[0]!r}")
            met = rd.attr(child, "id")
            if met not in atoms:
                raise rd.error(child, f"metabolite {met!r} is not a pool of <metabolitepools>")
            variants = child.findall("variant")
            specs = [(v, v.get("cfg", "")) for v in variants] or [(child, child.get("cfg"))]
            options = []
            for v, cfg in specs:
                if cfg is None:
                    if atoms[met]:
                        raise rd.error(v, f"{met!r} in {ids[0]!r}: needs cfg ({atoms[met]} atoms)")
                    cfg = ""
                names = _cfg_names(cfg)
                if len(names) != atoms[met]:
                    raise rd.error(
                        v,
                        f"{met!r} in {ids[0]!r}: cfg {cfg!r} has {len(names)} atoms, "
                        f"the pool {atoms[met]}",
                    )
                ratio = rd.number(v, v.get("ratio"), "ratio") if v.get("ratio") else None
                options.append((names, ratio))
            given = [p for _, p in options if p is not None]
            if given and len(given) != len(options):
                raise rd.error(child, f"{met!r} in {ids[0]!r}: give a ratio for every variant")
            if given and abs(sum(given) - 1.0) > 1e-6:
                raise rd.error(child, f"{met!r} in {ids[0]!r}: variant ratios sum to {sum(given)}")
            options = [(n, p if p is not None else 1.0 / len(options)) for n, p in options]
            sides[child.tag == "rproduct"].append((met, options))
        combos = list(itertools.product(*(opts for _, opts in sides[0] + sides[1])))
        if len(combos) != len(ids):
            raise rd.error(
                r, f"{' '.join(ids)!r}: {len(ids)} ids for {len(combos)} combinations of variants"
            )
        mets = [m for m, _ in sides[0] + sides[1]]
        ratios = []
        for rid, combo in zip(ids, combos, strict=True):
            if rid in strings:
                raise rd.error(r, f"duplicate reaction id {rid!r}")
            letters: dict[str, str] = {}
            terms: list[list[str]] = [[], []]
            for q, ((names, _), met) in enumerate(zip(combo, mets, strict=True)):
                side = int(q >= len(sides[0]))
                if side == 0:
                    for a in names:
                        if a in letters:
                            raise rd.error(r, f"{rid!r}: atom {a!r} appears twice among reducts")
                        if len(letters) == len(string.ascii_letters):
                            raise rd.error(r, f"{rid!r}: more than 52 atoms")
                        letters[a] = string.ascii_letters[len(letters)]
                else:
                    unknown = [a for a in names if a not in letters]
                    if unknown:
                        raise rd.error(r, f"{rid!r}: product atoms {unknown} are in no reduct")
                word = "".join(letters[a] for a in names)
                terms[side].append(f"{met} ({word})" if word else met)
            used = {letters[a] for names, _ in combo[len(sides[0]) :] for a in names}
            lost = [c for c in letters.values() if c not in used]
            if lost and used:  # FluxML leaves excreted pools out: keep their atoms
                terms[1].append(f"{rid}.lost ({''.join(lost)})")
            # a reaction with nothing traced on one side (an in- or outflow) runs one way
            one_way = not terms[0] or not terms[1] or bool(letters) != bool(used)
            bidir[rid] = flag in ("true", "1") and not one_way
            if flag in ("true", "1") and one_way:
                rd.one_way.append(rid)
            arrow = " <-> " if bidir[rid] else " -> "
            strings[rid] = " + ".join(terms[0]) + arrow + " + ".join(terms[1])
            lines[rid] = r
            ratios.append(math.prod(p for _, p in combo))
        if len(ids) > 1:
            scramblers.append((ids, ratios, r))
    return strings, lines, bidir, scramblers


def _species(rd: _Reader, inp: ET.Element, n_atoms: int | None) -> tuple[list[Species], list]:
    """Tracer species of an ``<input>`` and the ``<label>`` elements that give a purity."""
    pool = rd.attr(inp, "pool")
    kind = inp.get("type", "isotopomer")
    if kind != "isotopomer":
        raise rd.error(inp, f"{pool!r}: input type {kind!r} is not supported (use isotopomer)")
    if inp.get("profile"):
        raise rd.error(inp, f"{pool!r}: time-dependent input profiles are not supported")
    species, purities = [], []
    for lab in inp.findall("label"):
        cfg = rd.attr(lab, "cfg").strip()
        if set(cfg) - {"0", "1"} or (n_atoms is not None and len(cfg) != n_atoms):
            raise rd.error(lab, f"{pool!r}: cfg {cfg!r} must be {n_atoms or 'n'} digits 0/1")
        if len(lab):
            raise rd.error(lab, f"{pool!r}: only a number is supported as label fraction")
        fraction = rd.number(lab, lab.text, f"fraction of {pool!r}")
        purity = 1.0
        if lab.get("purity") is not None:
            purity = rd.number(lab, lab.get("purity"), f"purity of {pool!r}")
            if not 0.0 <= purity <= 1.0:
                raise rd.error(lab, f"{pool!r}: purity {purity} is not in [0, 1]")
        purities.append(lab if lab.get("purity") is not None else None)
        species.append(Species(cfg, fraction, purity))
    if species and abs(sum(s.fraction for s in species) - 1.0) > 1e-6:
        total = sum(s.fraction for s in species)
        raise rd.error(inp, f"{pool!r}: label fractions sum to {total:.9g}, not 1")
    return species, purities


def _natural(rd: _Reader, purities: list) -> float:
    """13CFLUX's natural 13C on unlabelled positions if the labels give purities, else 0; a
    mixture of labels with and without purity cannot be one :class:`Experiment`."""
    given = [p for p in purities if p is not None]
    if given and len(given) != len(purities):
        raise rd.error(
            given[0],
            "gives a purity (so 13CFLUX puts natural 13C on unlabelled positions) but "
            "other labels do not: give a purity for all labels or none",
        )
    return X3CFLUX_NATURAL_13C if given else 0.0


def read_fluxml_inputs(path: str | Path) -> tuple[Experiment, ...]:
    """Read a FluxML tracer ``<mixture>`` document (or the inputs of every configuration of a
    ``<fluxml>`` model): one :class:`Experiment` per ``<input>`` (per configuration).

    Purities switch on 13CFLUX's natural 13C (:data:`X3CFLUX_NATURAL_13C`) as in
    :func:`read_fluxml`.
    """
    path = Path(path)
    rd = _Reader(path)
    root = _parse_xml(path)
    if root.tag == "mixture":
        groups = [(inp.get("id") or f"input_{k}", [inp]) for k, inp in enumerate(root)]
    elif root.tag == "fluxml":
        groups = [(rd.attr(c, "name"), c.findall("input")) for c in root.findall("configuration")]
    else:
        raise rd.error(root, "is neither a FluxML <fluxml> nor a <mixture> document")
    out = []
    for name, inputs in groups:
        tracers, purities = {}, []
        for inp in inputs:
            if inp.tag != "input":
                raise rd.error(inp, "unexpected in <mixture>")
            species, pur = _species(rd, inp, None)
            if species:
                tracers[rd.attr(inp, "pool")] = tuple(species)
                purities += pur
        out.append(Experiment(name, tracers, _natural(rd, purities)))
    return tuple(out)


def _pick_time(rd: _Reader, gid: str, data: list, time: float | str) -> list:
    """The data ``(key, value, time, sd, element)`` of one group at the chosen time point
    (``"last"``: the latest one; data without a time are stationary)."""
    times = {d[2] for d in data}
    if times == {None}:
        return data
    if None in times:
        raise rd.error(data[0][4], f"data of {gid!r} mix entries with and without a time")
    if time == "last":
        chosen = max(times)
    else:
        chosen = next((t for t in times if abs(t - float(time)) <= 1e-9 * max(1.0, abs(t))), None)
        if chosen is None:
            raise rd.error(
                data[0][4], f"{gid!r} has no data at time {time} (times {sorted(times)})"
            )
    return [d for d in data if d[2] == chosen]


def _measurements(rd: _Reader, cfg: ET.Element, network: LabelingNetwork, time, notes: list):
    """MS, 1H-NMR and net-flux measurements of a configuration's ``<measurement>``."""
    name = rd.attr(cfg, "name")
    meas = cfg.find("measurement")
    if meas is None:
        return []
    model = meas.find("model")
    groups: dict[str, tuple] = {}
    skipped: set[str] = set()
    for block in [] if model is None else list(model):
        for g in block:
            gid = rd.attr(g, "id")
            if gid in groups or gid in skipped:
                raise rd.error(g, f"duplicate measurement id {gid!r}")
            if block.tag == "poolsizemeasurement":
                skipped.add(gid)
                continue
            if block.tag != "labelingmeasurement" and g.tag != "netflux":
                raise rd.error(g, f"{gid!r}: {g.tag} measurements are not supported")
            if g.find("errormodel") is not None:
                raise rd.error(
                    g.find("errormodel"),
                    f"{gid!r}: error-model expressions are not supported; "
                    "give each <datum> its stddev",
                )
            t, text = rd.textual(g, f"measurement {gid!r}")
            spec = "".join(text.split())
            if g.tag == "netflux":
                if spec not in network.reaction_ids:
                    raise rd.error(t, f"{gid!r}: flux measurement {spec!r} is not one reaction")
                groups[gid] = ("flux", spec, g)
                continue
            scale = g.get("scale", "auto")
            if scale not in ("auto", "one"):
                raise rd.error(g, f"{gid!r}: scale must be auto or one, not {scale!r}")
            ms, nmr = _MS.match(spec), _NMR1H.match(spec)
            if ms:
                met, rng, masses = ms.group(1), ms.group(2), ms.group(3)
                n = network.atom_counts.get(met)
                if n is None:
                    raise rd.error(t, f"{gid!r}: {met!r} is not a traced pool of the network")
                atoms = rng or (f"1-{n}" if n > 1 else "1")
                try:
                    pos = atom_positions(atoms)
                except ValueError:
                    raise rd.error(t, f"{gid!r}: cannot read the atom range {rng!r}") from None
                if not pos or pos[0] < 0 or pos[-1] >= n or len(set(pos)) != len(pos):
                    raise rd.error(t, f"{gid!r}: atoms [{rng}] are not within 1..{n} of {met!r}")
                mz = tuple(int(w) for w in masses.split(","))
                if max(mz) > len(pos) or len(set(mz)) != len(mz):
                    raise rd.error(t, f"{gid!r}: masses M+{list(mz)} do not fit {len(pos)} atoms")
                groups[gid] = ("ms", met, atoms, mz, scale, g)
            elif nmr:
                met = nmr.group(1)
                if met not in network.atom_counts:
                    raise rd.error(t, f"{gid!r}: {met!r} is not a traced pool of the network")
                if scale != "one":
                    raise rd.error(
                        g,
                        f"{gid!r}: a 1H-NMR group is read as fractional enrichments, which "
                        'bayesflux fits unscaled: set scale="one"',
                    )
                positions = tuple(int(p) for p in nmr.group(2).replace("P", "").split(","))
                groups[gid] = ("nmr", met, positions, g)
            else:
                kind = (
                    "MS-MS (tandem MS)"
                    if "#M(" in spec or ":" in spec
                    else "13C-NMR multiplet"
                    if re.search(r"#(S|DL|DR|DD|T)\d", spec)
                    else "cumomer / isotopomer fraction"
                    if re.search(r"#[01xX]+$", spec)
                    else None
                )
                what = f"{kind} measurements are not supported" if kind else "cannot read"
                raise rd.error(t, f"{gid!r}: {what}: {spec!r}")
    data: dict[str, list] = {}
    for d in [] if meas.find("data") is None else meas.find("data").findall("datum"):
        gid = rd.attr(d, "id")
        if gid in skipped:
            continue
        if gid not in groups:
            raise rd.error(d, f"data of unknown measurement {gid!r}")
        sd = rd.number(d, rd.attr(d, "stddev"), f"stddev of {gid!r}")
        if sd <= 0:
            raise rd.error(d, f"stddev of {gid!r} must be > 0, not {sd}")
        t = d.get("time")
        t = (
            None
            if t is None
            else (math.inf if t.strip().lower() == "inf" else rd.number(d, t, "time"))
        )
        key = d.get("weight") if groups[gid][0] == "ms" else d.get("pos")
        data.setdefault(gid, []).append((key, rd.number(d, d.text, f"value of {gid!r}"), t, sd, d))
    if skipped:
        notes.append(f"pool-size measurements {sorted(skipped)} left out (isotopic steady state)")
    out: list = []
    times: dict[str, float] = {}
    for gid, spec in groups.items():
        rows = _pick_time(rd, gid, data.get(gid, []), time)
        if not rows:
            raise rd.error(spec[-1], f"{gid!r} has no <datum>")
        if rows[0][2] is not None:
            times[gid] = rows[0][2]
        by_key: dict = {}
        for key, value, _, sd, d in rows:
            if key in by_key:
                raise rd.error(d, f"{gid!r}: a second datum for {key!r} at the same time")
            by_key[key] = (value, sd, d)
        if spec[0] == "flux":
            value, sd, _ = by_key.popitem()[1]
            out.append(FluxMeasurement(spec[1], value, sd))
            continue
        keys = spec[3] if spec[0] == "ms" else spec[2]
        what = "weight" if spec[0] == "ms" else "pos"
        want = {str(k): k for k in keys}
        for key, (_, _, d) in by_key.items():
            if (key or "").strip() not in want:
                raise rd.error(d, f"{gid!r}: {what} {key!r} is not one of {list(keys)}")
        got = {want[k.strip()]: v for k, v in by_key.items()}
        missing = [k for k in keys if k not in got]
        if missing:
            raise rd.error(spec[-1], f"{gid!r}: no datum for {what} {missing}")
        if spec[0] == "ms":
            _, met, atoms, mz, scale, _ = spec
            out.append(
                MSMeasurement(
                    name,
                    met,
                    atoms,
                    [got[k][0] for k in mz],
                    [got[k][1] for k in mz],
                    scale="free" if scale == "auto" else "none",
                    name=gid,
                    masses=mz,
                )
            )
        else:
            out += [EnrichmentMeasurement(name, spec[1], p, *got[p][:2]) for p in spec[2]]
    if times:
        notes.append(f"data of the time series taken at times {times}")
    return out


def _apply(rd, cons, el, kind, reversible, out) -> None:
    """Sort the constraints of one ``<net>`` / ``<xch>`` block into ``out`` (fixed values,
    equalities, bounds, inequalities); exchange terms of one-way reactions are 0."""
    fixed, eqs, bounds, ineqs = out
    for op, coefs, value, offset in cons:
        unknown = sorted(r for r in coefs if r not in reversible)
        if unknown:
            raise rd.error(el, f"{kind} constraint on unknown reactions {unknown}", offset)
        if kind == "xch":
            coefs = {r: c for r, c in coefs.items() if reversible[r]}
            if not coefs:  # only one-way reactions, whose exchange flux is 0
                ok = value == 0 if op == "=" else (value >= 0 if op == "<=" else value <= 0)
                if not ok:
                    raise rd.error(el, f"xch constraint {op} {value} on one-way reactions", offset)
                continue
        if op == "=" and len(coefs) == 1:
            ((r, c),) = coefs.items()
            if r in fixed and abs(fixed[r] - value / c) > 1e-12 * max(1.0, abs(fixed[r])):
                raise rd.error(
                    el, f"{kind} flux of {r!r} fixed twice ({fixed[r]}, {value / c})", offset
                )
            fixed[r] = value / c
        elif op == "=":
            eqs.append((coefs, value))
        elif len(coefs) == 1:
            ((r, c),) = coefs.items()
            lo, hi = bounds[r]
            if (op == "<=") == (c > 0):
                bounds[r] = (lo, min(hi, value / c))
            else:
                bounds[r] = (max(lo, value / c), hi)
        else:
            ineqs.append((coefs, value, math.inf) if op == ">=" else (coefs, -math.inf, value))


def read_fluxml(
    path: str | Path,
    *,
    configuration: str | None = None,
    time: float | str = "last",
    flux_bound: float = 1000.0,
) -> FluxMLModel:
    """Read a FluxML model (13CFLUX 2 / x3cflux dialect; Beyß et al. 2019) for stationary 13C-MFA.

    Reads pools, reactions with atom maps (``C#i@k`` tokens or letters), ``<variant>`` reactants
    (split into one sub-reaction per combination of variants, with net and exchange fluxes tied
    to the product of the variant ratios of their sum, as 13CFLUX does), constraints on net and
    exchange fluxes (``<textual>``, linear), one configuration (``configuration``, default the
    first): its tracer inputs (natural 13C :data:`X3CFLUX_NATURAL_13C` on unlabelled positions
    when purities are given), MS groups (``scale="auto"`` -> ``"free"``, ``"one"`` ->
    ``"none"``), 1H-NMR groups (``#P``, fractional enrichments), net-flux measurements, their data
    and stddevs, and ``fluxvalue`` start values. Non-stationary configurations are read at their
    isotopic steady state: pool sizes are left out and each group's data are taken at ``time``
    (``"last"``: its latest time point); :attr:`FluxMLModel.notes` says so.

    Net fluxes are bounded by ``[-flux_bound, flux_bound]`` (``[0, flux_bound]`` one way) and the
    constraints. Reactions with nothing traced on one side (in- and outflows) run one way. Atoms
    a reaction sends to no listed product (FluxML leaves excreted pools out) go to an excreted
    pool ``"<reaction>.lost"``. MS-MS, 13C-NMR multiplet, cumomer, flux-ratio, exchange-flux
    and error-model measurements raise :class:`~bayesflux.errors.ModelReadError`, as does any
    malformed element, naming the file, line and element.
    """
    path = Path(path)
    if time != "last":
        try:
            time = float(time)
        except (TypeError, ValueError):
            raise ModelReadError(f"{path}: time must be 'last' or a number, not {time!r}") from None
    rd = _Reader(path)
    root = _parse_xml(path)
    if root.tag == "mixture":
        raise rd.error(root, "is a tracer-mixture document: read it with read_fluxml_inputs")
    if root.tag != "fluxml":
        raise rd.error(root, "is not a FluxML document (root <fluxml> expected)")
    net = root.find("reactionnetwork")
    if net is None or net.find("metabolitepools") is None:
        raise rd.error(root, "has no <reactionnetwork> with <metabolitepools>")
    atoms: dict[str, int] = {}
    for p in net.find("metabolitepools").findall("pool"):
        pid = rd.attr(p, "id")
        n = rd.number(p, p.get("atoms", "0"), f"atoms of {pid!r}")
        if pid in atoms or n < 0 or n != int(n):
            raise rd.error(p, f"pool {pid!r} is a duplicate or has no whole number of atoms")
        atoms[pid] = int(n)
    strings, lines, bidir, scramblers = _reactions(rd, net, atoms)
    configs = root.findall("configuration")
    if not configs:
        raise rd.error(root, "has no <configuration> (inputs, measurements)")
    names = [rd.attr(c, "name") for c in configs]
    if configuration is None:
        cfg = configs[0]
    elif configuration in names:
        cfg = configs[names.index(configuration)]
    else:
        raise rd.error(root, f"has no configuration {configuration!r} (it has {names})")
    name = rd.attr(cfg, "name")
    stationary = cfg.get("stationary", "true").strip().lower() in ("true", "1")
    notes: list[str] = []
    if not stationary:
        notes.append(
            f"configuration {name!r} is isotopically non-stationary: read at its isotopic "
            "steady state (pool sizes and time points left out)"
        )
    if rd.one_way:
        notes.append(f"in- and outflows {rd.one_way} run one way (nothing traced on one side)")
    # ---- inputs
    tracers: dict[str, tuple[Species, ...]] = {}
    purities: list = []
    declared: dict[str, ET.Element] = {}
    for inp in cfg.findall("input"):
        pool = rd.attr(inp, "pool")
        if pool not in atoms:
            raise rd.error(inp, f"input {pool!r} is not a pool of <metabolitepools>")
        if pool in declared:
            raise rd.error(
                inp, f"second input for {pool!r} (first on line {declared[pool].get(_LINE)})"
            )
        declared[pool] = inp
        species, pur = _species(rd, inp, atoms[pool])
        if atoms[pool] and not species:
            raise rd.error(inp, f"input {pool!r} has no <label>")
        if species:
            tracers[pool] = tuple(species)
            purities += pur
    experiment = Experiment(name, tracers, _natural(rd, purities))
    traced = {m for s in strings.values() for m in re.findall(r"([\w.]+) \(", s)}
    produced = set()
    for rid, s in strings.items():
        left, _, right = s.partition(" <-> " if bidir[rid] else " -> ")
        produced |= set(re.findall(r"([\w.]+) \(", right))
        if bidir[rid]:
            produced |= set(re.findall(r"([\w.]+) \(", left))
    for m in sorted(traced - produced - set(declared)):
        raise rd.error(cfg, f"pool {m!r} is consumed, never produced, and has no <input>")
    # ---- constraints
    reversible = dict(bidir)
    bounds = {
        r: (-flux_bound, flux_bound) if b else (0.0, flux_bound) for r, b in reversible.items()
    }
    xch_bounds = {r: (0.0, math.inf) for r, b in reversible.items() if b}
    net_out: tuple = ({}, [], bounds, [])
    xch_out: tuple = ({}, [], xch_bounds, [])
    for ids, ratios, _ in scramblers:  # sub-reaction = its share of the sum, net and xch
        for rid, p in zip(ids[:-1], ratios[:-1], strict=True):
            coefs = {r: -p for r in ids}
            coefs[rid] += 1.0
            net_out[1].append((coefs, 0.0))
            if reversible[rid]:
                xch_out[1].append((dict(coefs), 0.0))
    for block in (root.find("constraints"), cfg.find("constraints")):
        for part in [] if block is None else list(block):
            if part.tag == "psize":
                notes.append("pool-size constraints (psize) left out")
            elif part.tag in ("net", "xch"):
                out = net_out if part.tag == "net" else xch_out
                _apply(rd, rd.constraints(part), part.find("textual"), part.tag, reversible, out)
            else:
                raise rd.error(part, "unexpected in <constraints>")
    try:
        network = LabelingNetwork.from_strings(
            strings, bounds=bounds, inputs=[m for m in declared if atoms[m] and m in traced]
        )
    except BayesfluxError as exc:  # name the line of the reaction the message names
        el = next((lines[r] for r in lines if repr(r) in str(exc)), net)
        raise rd.error(el, str(exc)) from exc
    measurements = _measurements(rd, cfg, network, time, notes)
    # ---- start values
    start: dict[str, float] = {}
    variables = cfg.find("simulation/variables")
    for v in [] if variables is None else list(variables):
        if v.tag == "poolsizevalue":
            continue
        if v.tag != "fluxvalue":
            raise rd.error(v, "unexpected in <variables>")
        r, kind = rd.attr(v, "flux"), rd.attr(v, "type")
        if (
            r not in reversible
            or kind not in ("net", "xch")
            or (kind == "xch" and not reversible[r])
        ):
            raise rd.error(v, f"{kind} flux of {r!r}: no such free flux (unknown or one way)")
        start[f"{r}.{kind}"] = rd.number(v, v.text, f"{kind} value of {r!r}")
    if variables is not None and variables.find("poolsizevalue") is not None:
        notes.append("pool sizes (poolsizevalue) left out")
    return FluxMLModel(
        network,
        experiment,
        tuple(measurements),
        net_out[0],
        tuple(net_out[1]),
        xch_out[0],
        tuple(xch_out[1]),
        start,
        configuration=name,
        stationary=stationary,
        xch_bounds=xch_bounds,
        inequalities=tuple(net_out[3]),
        xch_inequalities=tuple(xch_out[3]),
        notes=tuple(notes),
    )
