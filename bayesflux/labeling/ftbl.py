"""Reader of FTBL files (13CFLUX v1 / influx_si) for stationary 13C-MFA.

FTBL is a tab-separated text format in sections (``NETWORK``, ``FLUXES`` with ``NET`` / ``XCH``
subsections, ``EQUALITIES``, ``INEQUALITIES``, ``FLUX_MEASUREMENTS``, ``LABEL_INPUT``,
``MASS_SPECTROMETRY``, ...). A reaction takes two lines: its name with up to two educts and two
products, then their atom patterns (``#ABC``). Exchange fluxes are written on FTBL's ``[0, 1)``
scale ``x01 = v_xch / (1 + v_xch)``. Supported: the sections above (MS groups are scale-free,
as influx_si fits them by default); cumomer (``LABEL_MEASUREMENTS``) and NMR
(``PEAK_MEASUREMENTS``) data raise :class:`~bayesflux.errors.ModelReadError`, as do
inequalities on more than one flux.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayesflux.errors import BayesfluxError, ModelReadError
from bayesflux.labeling.measurements import FluxMeasurement, LabelingProblem, MSMeasurement
from bayesflux.labeling.network import LabelingNetwork
from bayesflux.labeling.tracers import Experiment, Species

__all__ = ["FTBLModel", "read_ftbl"]

_TERM = re.compile(r"([+-]?)\s*(?:([0-9.eE+-]+)\s*\*\s*)?([A-Za-z_][\w.]*)")


@dataclass(frozen=True)
class FTBLModel:
    """Everything an FTBL file defines; :meth:`problem` builds the fit problem."""

    network: LabelingNetwork
    experiment: Experiment
    measurements: tuple
    fixed: dict[str, float]
    equalities: tuple
    fixed_xch: dict[str, float]
    xch_equalities: tuple
    start: dict[str, float] = field(default_factory=dict)

    def problem(self, **options: Any) -> LabelingProblem:
        """A :class:`LabelingProblem` of this model (options passed on, e.g. ``xch_max``)."""
        return LabelingProblem(
            self.network,
            [self.experiment],
            self.measurements,
            fixed=self.fixed,
            equalities=self.equalities,
            fixed_xch=self.fixed_xch,
            xch_equalities=self.xch_equalities,
            **options,
        )


def _number(text: str, where: str, what: str, *, positive: bool = False) -> float:
    """``float(text)``, finite (and ``> 0`` if ``positive``), or a :class:`ModelReadError`
    at ``where`` (``file:line``) naming ``what``."""
    if not text.strip():
        raise ModelReadError(f"{where}: missing {what}")
    try:
        value = float(text)
    except ValueError:
        raise ModelReadError(f"{where}: {what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ModelReadError(f"{where}: {what} is {text.strip()!r}, not a finite number")
    if positive and value <= 0:
        raise ModelReadError(f"{where}: {what} must be > 0, not {text.strip()}")
    return value


def _linear(text: str, where: str) -> dict[str, float]:
    text = text.replace(" ", "")
    if not text:
        raise ModelReadError(f"{where}: missing formula")
    out: dict[str, float] = {}
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise ModelReadError(f"{where}: cannot parse linear formula {text!r}")
        sign, coef, name = m.groups()
        c = 1.0 if coef is None else _number(coef, where, f"coefficient of {name!r}")
        out[name] = out.get(name, 0.0) + (-c if sign == "-" else c)
        pos = m.end()
    return out


def _sections(path: Path) -> dict[str, list[tuple[int, list[str]]]]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ModelReadError(f"cannot read FTBL file {path}: {exc}") from exc
    out: dict[str, list[tuple[int, list[str]]]] = {}
    current = None
    for no, raw in enumerate(lines, 1):
        line = raw.split("//", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = line.strip().split()[0]
            out.setdefault(current, [])
            continue
        if current is None:
            raise ModelReadError(f"{path}:{no}: data before the first section")
        out[current].append((no, line.split("\t")))
    return out


def _subsections(rows, path) -> dict[str, list[tuple[int, list[str]]]]:
    """Split ``NET`` / ``XCH`` subsections and drop each table's header line."""
    out: dict[str, list] = {}
    current = None
    for no, f in rows:
        cells = [c.strip() for c in f]
        if len(f) >= 2 and f[0] == "" and cells[1] in ("NET", "XCH") and not any(cells[2:]):
            current = cells[1]
            out[current] = []
            continue
        if current is None:
            raise ModelReadError(f"{path}:{no}: expected a NET or XCH subsection")
        out[current].append((no, cells[2:] + [""] * 4))  # two leading tabs of indentation
    return {k: v[1:] for k, v in out.items()}


def _flux_spec(
    rows: list[tuple[int, list[str]]], reactions: dict, path: Path, kind: str
) -> dict[str, tuple[str, float | None, int]]:
    """``{reaction: (FCD, value or None, line)}`` of a ``NET`` or ``XCH`` flux table.

    ``C`` (constrained) needs a value, ``F`` (free) may give a starting value, ``D``
    (dependent) gives none that is used.
    """
    out: dict[str, tuple[str, float | None, int]] = {}
    for no, c in rows:
        where = f"{path}:{no}"
        name, fcd, text = c[0], c[1].upper(), c[2]
        if name not in reactions:
            raise ModelReadError(f"{where}: {kind} flux of unknown reaction {name!r}")
        if name in out:
            raise ModelReadError(
                f"{where}: {kind} flux of {name!r} already given on line {out[name][2]}"
            )
        if fcd not in ("F", "C", "D"):
            raise ModelReadError(
                f"{where}: {kind} flux of {name!r}: FCD must be F, C or D, not {c[1]!r}"
            )
        what = f"{kind} value of {name!r}"
        value = _number(text, where, what) if fcd == "C" or (fcd == "F" and text) else None
        out[name] = (fcd, value, no)
    return out


def read_ftbl(path: str | Path, *, flux_bound: float = 100.0) -> FTBLModel:
    """Read a stationary FTBL model with its labelling input and MS / flux measurements.

    A reaction is reversible unless it feeds on an input, makes an output, or has its exchange
    flux fixed to 0. ``flux_bound`` bounds net fluxes: irreversible ones to ``[0, flux_bound]``,
    reversible ones to ``[-flux_bound, flux_bound]``, as FTBL leaves them unbounded.
    """
    path = Path(path)
    sec = _sections(path)
    for name in ("LABEL_MEASUREMENTS", "PEAK_MEASUREMENTS"):
        data = [(no, f) for no, f in sec.get(name, [])[1:] if any(c.strip() for c in f)]
        if data:
            raise ModelReadError(
                f"{path}:{data[0][0]}: {name} (cumomer / NMR data) are not supported by this reader"
            )
    if "NETWORK" not in sec:
        raise ModelReadError(f"{path}: no NETWORK section")
    reactions: dict[str, tuple[list[str], list[str], int]] = {}
    pending = None
    for no, f in sec["NETWORK"][1:]:
        cells = [c.strip() for c in f] + [""] * 6
        if cells[1]:
            if cells[1] in reactions:
                raise ModelReadError(
                    f"{path}:{no}: reaction {cells[1]!r} already defined on line "
                    f"{reactions[cells[1]][2]}"
                )
            pending = (cells[1], cells[2:6], no)
            continue
        if pending is None:
            raise ModelReadError(f"{path}:{no}: atom patterns without a reaction line")
        name, mets, rno = pending
        pats = cells[2:6]
        terms: list[list[str]] = [[], []]
        for k, (m, p) in enumerate(zip(mets, pats, strict=True)):
            if m and not p.startswith("#"):
                raise ModelReadError(f"{path}:{no}: reaction {name!r}: no atom pattern for {m!r}")
            if m:
                terms[k // 2].append(f"{m} ({p[1:]})")
        reactions[name] = (terms[0], terms[1], rno)
        pending = None
    fluxes = _subsections(sec.get("FLUXES", []), path)
    net_spec = _flux_spec(fluxes.get("NET", []), reactions, path, "NET")
    xch_spec = _flux_spec(fluxes.get("XCH", []), reactions, path, "XCH")
    produced = {t.split(" (")[0] for s, p, _ in reactions.values() for t in p}
    consumed = {t.split(" (")[0] for s, p, _ in reactions.values() for t in s}
    strings, bounds = {}, {}
    fixed, fixed_xch, start = {}, {}, {}
    for name, (subs, prods, rno) in reactions.items():
        boundary = any(t.split(" (")[0] not in produced for t in subs) or any(
            t.split(" (")[0] not in consumed for t in prods
        )
        xch = xch_spec.get(name, ("C", 0.0, rno))
        reversible = not boundary and xch[:2] != ("C", 0.0)
        strings[name] = " + ".join(subs) + (" <-> " if reversible else " -> ") + " + ".join(prods)
        bounds[name] = (-flux_bound, flux_bound) if reversible else (0.0, flux_bound)
        kind, x01, xno = xch
        if reversible and x01 is not None:
            if not 0.0 <= x01 < 1.0:
                raise ModelReadError(f"{path}:{xno}: exchange {x01} of {name!r} not in [0, 1)")
            if kind == "C":
                fixed_xch[name] = x01 / (1.0 - x01)
            else:
                start[name + ".xch"] = x01 / (1.0 - x01)
        kind, value, _ = net_spec.get(name, ("D", None, rno))
        if kind == "C":
            fixed[name] = value
        elif value is not None:
            start[name + ".net"] = value
    eqs = _subsections(sec.get("EQUALITIES", []), path)
    equalities, xch_equalities = [], []
    for kind, target in (("NET", equalities), ("XCH", xch_equalities)):
        for no, c in eqs.get(kind, []):
            where = f"{path}:{no}"
            target.append((_linear(c[1], where), _number(c[0], where, f"{kind} equality value")))
    ineqs = _subsections(sec.get("INEQUALITIES", []), path)
    for no, c in ineqs.get("NET", []):
        where = f"{path}:{no}"
        value, comp = _number(c[0], where, "inequality value"), c[1]
        terms = _linear(c[2], where)
        if len(terms) != 1 or list(terms.values())[0] <= 0:
            raise ModelReadError(f"{path}:{no}: only inequalities on one flux are supported")
        ((r, coef),) = terms.items()
        if r not in bounds:
            raise ModelReadError(f"{path}:{no}: inequality on unknown reaction {r!r}")
        lo, hi = bounds[r]
        if comp in ("<=", "=<", "<"):
            bounds[r] = (max(lo, value / coef), hi)
        elif comp in (">=", "=>", ">"):
            bounds[r] = (lo, min(hi, value / coef))
        else:
            raise ModelReadError(f"{path}:{no}: unknown comparison {comp!r}")
    if ineqs.get("XCH"):
        raise ModelReadError(f"{path}:{ineqs['XCH'][0][0]}: XCH inequalities are not supported")
    try:
        network = LabelingNetwork.from_strings(strings, bounds=bounds)
    except BayesfluxError as exc:  # name the line of the reaction the message names
        line = next((f":{r[2]}" for n, r in reactions.items() if repr(n) in str(exc)), "")
        raise ModelReadError(f"{path}{line}: {exc}") from exc
    tracers: dict[str, list[Species]] = {}
    met = None
    for no, c in sec.get("LABEL_INPUT", [])[1:]:
        c = c + [""] * 4
        met = c[1] or met
        if met is None or not c[2].startswith("#"):
            raise ModelReadError(f"{path}:{no}: LABEL_INPUT needs a metabolite and an #isotopomer")
        fraction = _number(c[3], f"{path}:{no}", f"LABEL_INPUT fraction of {met!r}")
        tracers.setdefault(met, []).append(Species(c[2][1:], fraction))
    experiment = Experiment(path.stem, {m: tuple(s) for m, s in tracers.items()})
    measurements: list = []
    for no, c in sec.get("FLUX_MEASUREMENTS", [])[1:]:
        c, where = [x.strip() for x in c] + [""] * 4, f"{path}:{no}"
        if c[1] not in reactions:
            raise ModelReadError(f"{where}: measured flux of unknown reaction {c[1]!r}")
        value = _number(c[2], where, f"measured flux of {c[1]!r}")
        sd = _number(c[3], where, f"DEVIATION of measured flux {c[1]!r}", positive=True)
        measurements.append(FluxMeasurement(c[1], value, sd))
    groups: list[tuple[str, str, list[int], list[float], list[float], int]] = []
    for no, c in sec.get("MASS_SPECTROMETRY", [])[1:]:
        c = c + [""] * 6
        if c[1]:
            groups.append((c[1], c[2], [], [], [], no))
        if not groups:
            raise ModelReadError(f"{path}:{no}: MS data without a metabolite")
        where, what = f"{path}:{no}", f"MS {groups[-1][0]}[{groups[-1][1]}]"
        weight = _number(c[3], where, f"{what} WEIGHT")
        if weight != int(weight) or weight < 0:
            raise ModelReadError(f"{where}: {what} WEIGHT must be a mass shift >= 0, not {c[3]}")
        groups[-1][2].append(int(weight))
        groups[-1][3].append(_number(c[4], where, f"{what} VALUE"))
        groups[-1][4].append(_number(c[5], where, f"{what} DEVIATION", positive=True))
    for met, frag, masses, values, sds, no in groups:
        if met not in network.atom_counts:
            raise ModelReadError(f"{path}:{no}: MS data of unknown metabolite {met!r}")
        measurements.append(
            MSMeasurement(
                experiment.name,
                met,
                frag.replace("~", "-"),
                values,
                sds,
                masses=tuple(masses),
                scale="free",
                name=f"{met}[{frag}]",
            )
        )
    return FTBLModel(
        network,
        experiment,
        tuple(measurements),
        fixed,
        tuple(equalities),
        fixed_xch,
        tuple(xch_equalities),
        start,
    )
