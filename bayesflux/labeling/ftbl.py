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


def _linear(text: str, where: str) -> dict[str, float]:
    text = text.replace(" ", "")
    out: dict[str, float] = {}
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise ModelReadError(f"{where}: cannot parse linear formula {text!r}")
        sign, coef, name = m.groups()
        out[name] = out.get(name, 0.0) + (-1.0 if sign == "-" else 1.0) * float(coef or 1.0)
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
    net_spec = {c[0]: (no, c[1:]) for no, c in fluxes.get("NET", [])}
    xch_spec = {c[0]: (no, c[1:]) for no, c in fluxes.get("XCH", [])}
    for spec in (net_spec, xch_spec):
        for r, (no, _) in spec.items():
            if r not in reactions:
                raise ModelReadError(f"{path}:{no}: flux of unknown reaction {r!r}")
    produced = {t.split(" (")[0] for s, p, _ in reactions.values() for t in p}
    consumed = {t.split(" (")[0] for s, p, _ in reactions.values() for t in s}
    strings, bounds = {}, {}
    fixed, fixed_xch, start = {}, {}, {}
    for name, (subs, prods, rno) in reactions.items():
        boundary = any(t.split(" (")[0] not in produced for t in subs) or any(
            t.split(" (")[0] not in consumed for t in prods
        )
        xno, x = xch_spec.get(name, (rno, ["C", "0"]))
        reversible = not boundary and not (x[0] == "C" and float(x[1] or 0) == 0.0)
        strings[name] = " + ".join(subs) + (" <-> " if reversible else " -> ") + " + ".join(prods)
        bounds[name] = (-flux_bound, flux_bound) if reversible else (0.0, flux_bound)
        try:
            if reversible and x[0] in ("C", "F") and x[1]:
                x01 = float(x[1])
                if not 0.0 <= x01 < 1.0:
                    raise ModelReadError(f"{path}:{xno}: exchange {x01} of {name!r} not in [0, 1)")
                (fixed_xch if x[0] == "C" else start)[name + ".xch"] = x01 / (1.0 - x01)
            no, n = net_spec.get(name, (rno, ["D"]))
            if n[0] in ("C", "F") and len(n) > 1 and n[1]:
                (fixed if n[0] == "C" else start)[name if n[0] == "C" else name + ".net"] = float(
                    n[1]
                )
        except ValueError as exc:
            raise ModelReadError(f"{path}: reaction {name!r}: bad flux value ({exc})") from exc
    fixed_xch = {k[:-4]: v for k, v in fixed_xch.items()}
    eqs = _subsections(sec.get("EQUALITIES", []), path)
    equalities, xch_equalities = [], []
    for kind, target in (("NET", equalities), ("XCH", xch_equalities)):
        for no, c in eqs.get(kind, []):
            target.append((_linear(c[1], f"{path}:{no}"), float(c[0])))
    ineqs = _subsections(sec.get("INEQUALITIES", []), path)
    for no, c in ineqs.get("NET", []):
        value, comp, terms = float(c[0]), c[1], _linear(c[2], f"{path}:{no}")
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
    except BayesfluxError as exc:
        raise ModelReadError(f"{path}: {exc}") from exc
    tracers: dict[str, list[Species]] = {}
    met = None
    for no, c in sec.get("LABEL_INPUT", [])[1:]:
        c = c + [""] * 4
        met = c[1] or met
        if met is None or not c[2].startswith("#"):
            raise ModelReadError(f"{path}:{no}: LABEL_INPUT needs a metabolite and an #isotopomer")
        tracers.setdefault(met, []).append(Species(c[2][1:], float(c[3])))
    experiment = Experiment(path.stem, {m: tuple(s) for m, s in tracers.items()})
    measurements: list = []
    for _, c in sec.get("FLUX_MEASUREMENTS", [])[1:]:
        measurements.append(FluxMeasurement(c[1], float(c[2]), float(c[3])))
    groups: list[tuple[str, str, list[int], list[float], list[float], int]] = []
    for no, c in sec.get("MASS_SPECTROMETRY", [])[1:]:
        c = c + [""] * 6
        if c[1]:
            groups.append((c[1], c[2], [], [], [], no))
        if not groups:
            raise ModelReadError(f"{path}:{no}: MS data without a metabolite")
        try:
            groups[-1][2].append(int(c[3]))
            groups[-1][3].append(float(c[4]))
            groups[-1][4].append(float(c[5]))
        except ValueError as exc:
            raise ModelReadError(f"{path}:{no}: bad MS entry ({exc})") from exc
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
