"""Writer of FluxML (13CFLUX / x3cflux) documents from a labelling network.

FluxML (Beyß et al. 2019) is 13CFLUX's XML format. :func:`write_fluxml` writes the network
(atom maps as ``C#i@k``: atom ``i`` of the ``k``-th educt), net/exchange constraints, one
stationary configuration with the tracer mixture, MS groups (scale ``one`` or ``auto``) with
their data, and start values for free fluxes, so a model built in bayesflux can be simulated,
fitted or cross-checked by 13CFLUX/x3cflux. Tracer species are written without a purity when
the experiment has no natural 13C (pure 12C at unlabelled positions), and with their purities
when it has 13CFLUX's natural abundance :data:`X3CFLUX_NATURAL_13C`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from bayesflux.errors import NetworkError
from bayesflux.labeling.measurements import FluxMeasurement, MSMeasurement, atom_positions
from bayesflux.labeling.network import LabelingNetwork
from bayesflux.labeling.tracers import Experiment, Species

__all__ = ["write_fluxml", "fluxml_string", "X3CFLUX_NATURAL_13C"]

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
    measurements: Sequence[MSMeasurement | FluxMeasurement] = (),
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
    # excreted pools (never consumed) are left out: FluxML writes outflows without products
    keep = set(network.balanced) | set(network.inputs)
    lines += [
        f'  <pool atoms="{n}" id={quoteattr(m)}/>'
        for m, n in network.atom_counts.items()
        if m in keep
    ]
    lines.append("</metabolitepools>")
    for r in network.reactions:
        if any(not o.atoms for o in (*r.substrates, *r.products)):
            raise NetworkError(f"reaction {r.id!r}: FluxML needs atoms for every metabolite")
        where = {c: (k, q) for k, o in enumerate(r.substrates) for q, c in enumerate(o.atoms)}
        own = {c: (0, q) for o in r.substrates for q, c in enumerate(o.atoms)}
        bid = "true" if r.reversible else "false"
        lines.append(f'<reaction bidirectional="{bid}" id={quoteattr(r.id)}>')
        for k, o in enumerate(r.substrates):
            lines.append(
                f'  <reduct cfg="{_cfg(o.atoms, {c: (k, own[c][1]) for c in o.atoms})}" '
                f"id={quoteattr(o.metabolite)}/>"
            )
        for o in r.products:
            if o.metabolite not in keep:
                continue
            lines.append(f'  <rproduct cfg="{_cfg(o.atoms, where)}" id={quoteattr(o.metabolite)}/>')
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
    measurements: Sequence[MSMeasurement | FluxMeasurement] = (),
    **options,
) -> Path:
    """Write a FluxML file (options as :func:`fluxml_string`: ``fixed``, ``equalities``,
    ``fixed_xch``, ``xch_equalities``, ``start`` as ``{"reaction.net" | "reaction.xch": value}``,
    ``xch_max``, ``name``)."""
    path = Path(path)
    path.write_text(fluxml_string(network, experiment, measurements, **options), encoding="utf-8")
    return path
