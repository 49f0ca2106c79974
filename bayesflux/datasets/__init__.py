"""Bundled and shipped example networks.

* ``small``: a hand-made six-reaction network with closed-form FBA/FVA answers (for tests).
* ``textbook`` (E. coli core), ``iJO1366`` and ``salmonella``: the SBML models cobra ships offline.
* :func:`yeast`: Yeast 5.21 and 7.6 from the FALCON benchmark data in ``shared/data/falcon_yeast``
  (not shipped with the package; see :func:`shared_data_dir`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io
import scipy.sparse as sp
from scipy.io.matlab import MatReadError

from bayesflux.errors import ModelReadError, NetworkError
from bayesflux.network import Network, read_sbml

__all__ = [
    "AVAILABLE",
    "load",
    "small",
    "textbook",
    "ijo1366",
    "salmonella",
    "yeast",
    "read_cobra_mat",
    "shared_data_dir",
]


def small() -> Network:
    """Seven reactions, four metabolites: ``A`` taken up (at most 10), turned into ``D`` two ways.

    ``EX_A: A <->`` (uptake <= 10), ``R1: A -> B``, ``R2: A -> C``, ``R3: B -> D``, ``R4: C -> D``,
    ``R5: B <-> C``, ``BIOMASS: D ->`` (the objective). Maximum biomass is 10; at the optimum
    R1..R4 range over [0, 10] and R5 over [-10, 10].
    """
    return Network.from_stoichiometry(
        {
            "EX_A": {"A": -1},
            "R1": {"A": -1, "B": 1},
            "R2": {"A": -1, "C": 1},
            "R3": {"B": -1, "D": 1},
            "R4": {"C": -1, "D": 1},
            "R5": {"B": -1, "C": 1},
            "BIOMASS": {"D": -1},
        },
        bounds={"EX_A": (-10.0, 1000.0), "R5": (-1000.0, 1000.0)},
        objective={"BIOMASS": 1.0},
        gpr={"R1": "g1", "R2": "g2 or g3", "R3": "g4 and g5", "R4": "g4 and g5", "R5": "g6"},
        id="small",
    )


def _cobra_model(filename: str) -> Callable[[], Network]:
    def load() -> Network:
        return read_sbml(resources.files("cobra") / "data" / filename)

    load.__doc__ = f"The ``{filename}`` model shipped with cobra, read offline."
    return load


textbook = _cobra_model("textbook.xml.gz")
ijo1366 = _cobra_model("iJO1366.xml.gz")
salmonella = _cobra_model("salmonella.xml.gz")

_LOADERS: dict[str, Callable[[], Network]] = {
    "small": small,
    "textbook": textbook,
    "ecoli_core": textbook,
    "iJO1366": ijo1366,
    "salmonella": salmonella,
}
AVAILABLE: tuple[str, ...] = tuple(_LOADERS)


@cache
def _load_cached(name: str) -> Network:
    return _LOADERS[name]()


def load(name: str) -> Network:
    """Load a bundled network by name (see :data:`AVAILABLE`). Networks are immutable, so cached."""
    if name not in _LOADERS:
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(AVAILABLE)}")
    return _load_cached(name)


# ---------------------------------------------------------------------- shared benchmark data
def shared_data_dir() -> Path | None:
    """``$BAYESFLUX_SHARED_DATA`` or ``shared/data`` beside the checkout; None if absent."""
    env = os.environ.get("BAYESFLUX_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[3] / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
        Path.cwd() / "shared" / "data",
    ]
    return next((p for p in candidates if p.is_dir()), None)


def _strings(values: np.ndarray) -> list[str]:
    """MATLAB cell arrays of strings (empty cells load as empty arrays) to Python strings."""
    return ["" if isinstance(v, np.ndarray) else str(v) for v in np.atleast_1d(values)]


_X_REF = re.compile(r"x\((\d+)\)")


def _rules_to_gpr(
    rules: list[str], genes: list[str], reactions: list[str], path: Path
) -> list[str]:
    """COBRA ``rules`` (``x(3) & (x(5) | x(7))``) to gene rules (``G3 and (G5 or G7)``).

    ``x(i)`` is 1-based; an index outside ``1..len(genes)`` raises :class:`ModelReadError`
    naming the reaction and the rule.
    """
    if len(rules) != len(reactions):
        raise ModelReadError(f"{path}: {len(rules)} rules for {len(reactions)} reactions")
    out = []
    for reaction, rule in zip(reactions, rules):
        refs = [int(i) for i in _X_REF.findall(rule)]
        bad = [i for i in refs if not 1 <= i <= len(genes)]
        if bad:
            raise ModelReadError(
                f"{path}: reaction {reaction!r}: rule {rule!r} refers to gene x({bad[0]}), "
                f"but the model's genes are x(1) to x({len(genes)})"
            )
        text = _X_REF.sub(lambda m: genes[int(m.group(1)) - 1], rule)
        out.append(text.replace("&", " and ").replace("|", " or "))
    return out


def read_cobra_mat(path: str | Path, *, variable: str | None = None) -> Network:
    """Read a MATLAB COBRA model struct (fields ``S, rxns, mets, lb, ub, c`` and rules).

    cobra's own ``load_matlab_model`` requires compartment suffixes on metabolite ids, which the
    Yeast 5.21 file lacks; this reader takes the struct as it is. Gene rules come from
    ``grRules`` or, failing that, from ``rules`` (``x(i)`` references into ``genes``).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelReadError(f"model file not found: {path}")
    try:
        data = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except (OSError, ValueError, MatReadError) as exc:  # MatReadError: e.g. an empty file
        raise ModelReadError(f"could not read {path}: {exc}") from exc
    names = [k for k in data if not k.startswith("__")] if variable is None else [variable]
    if len(names) != 1 or names[0] not in data:
        raise ModelReadError(f"{path}: expected one model struct, found {names}")
    m = data[names[0]]
    fields = set(getattr(m, "_fieldnames", ()))
    missing = {"S", "rxns", "mets", "lb", "ub"} - fields
    if missing:
        raise ModelReadError(f"{path}: COBRA struct lacks field(s) {sorted(missing)}")
    try:
        return _from_struct(m, fields, path)
    except NetworkError as exc:
        raise NetworkError(f"{path}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # e.g. text where numbers belong
        raise ModelReadError(f"{path}: malformed COBRA struct: {exc}") from exc


def _from_struct(m: scipy.io.matlab.mat_struct, fields: set[str], path: Path) -> Network:
    """The :class:`Network` of a loaded COBRA struct ``m`` with fields ``fields``."""
    genes = _strings(m.genes) if "genes" in fields else []
    if "grRules" in fields:
        gpr = _strings(m.grRules)
    elif "rules" in fields:
        gpr = _rules_to_gpr(_strings(m.rules), genes, _strings(m.rxns), path)
    else:
        gpr = None
    mets = _strings(m.mets)
    if "comps" in fields:
        comps = dict(zip(_strings(m.comps), _strings(m.compNames)))
        met_comps = [x[x.rfind("[") + 1 : -1] if x.endswith("]") else "" for x in mets]
    else:  # Yeast 5: compartment named in brackets at the end of the metabolite name
        met_names = _strings(m.metNames) if "metNames" in fields else [""] * len(mets)
        met_comps = [n[n.rfind("[") + 1 : -1] if n.endswith("]") else "" for n in met_names]
        comps = {c: c for c in dict.fromkeys(met_comps) if c}
    c = np.asarray(m.c, dtype=float) if "c" in fields else None
    minimise = "osense" in fields and np.ndim(m.osense) == 0 and float(m.osense or -1) > 0
    if minimise and c is not None:
        c = -c  # COBRA osense = +1 means minimise; a Network's objective is maximised
    return Network(
        reactions=_strings(m.rxns),
        metabolites=mets,
        S=sp.csr_array(m.S),
        lb=np.asarray(m.lb, dtype=float),
        ub=np.asarray(m.ub, dtype=float),
        objective=c,
        gpr=gpr,
        genes=genes or None,
        reaction_names=_strings(m.rxnNames) if "rxnNames" in fields else None,
        metabolite_names=_strings(m.metNames) if "metNames" in fields else None,
        metabolite_compartments=met_comps,
        compartments=comps,
        id=path.stem,
    )


_YEAST_FILES = {
    "5.21": "falcon_yeast/hpcof/yeast_5.21_MCISB.mat",
    "7.6": "falcon_yeast/yeast7.6/yeast_7.6_cobra.mat",
}


def _yeast_reversible(version: str, path: Path, network: Network) -> np.ndarray:
    """The model's own reversibility flags (``rev`` in 5.21, the 'Reversible' column for 7.6)."""
    if version == "5.21":
        rev = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["model"].rev
        return np.asarray(rev, dtype=bool)
    import pandas as pd

    # The text export lists reactions (8 columns), then metabolites; keep the reaction rows.
    table = pd.read_csv(path.with_suffix(".txt"), sep="\t", nrows=network.n_reactions)
    flags = table.set_index("Rxn name")["Reversible"].reindex(list(network.reactions))
    return flags.fillna(0).to_numpy(bool)


def _remove_enzyme_irrevs(network: Network, reversible: np.ndarray) -> Network:
    """Open the direction constraints of gene-associated reactions flagged reversible.

    After the FALCON reference ``removeEnzymeIrrevs`` (bbarker/FALCON): every non-exchange
    reaction with a gene rule and the reversible flag gets ``lb = -ub`` if ``lb >= 0``
    (849 bounds on Yeast 5.21, 1,719 on 7.6). The reference also sets ``ub = -lb`` where
    ``ub <= 0``, which adds 4 bounds on Yeast 5.21 (853, the number seed 003 reports) and
    none on 7.6; those 4 stay closed here, since opening them took single-run FALCON on
    Yeast 5.21 MC 75% from r = 0.99 to 0.61 (benchmarks/bench_falcon.py).
    """
    has_gene = np.array([bool(g) for g in network.gpr])
    candidate = reversible & has_gene & ~network.is_exchange
    return replace(network, lb=np.where(candidate & (network.lb >= 0), -network.ub, network.lb))


def _copy_yeast5_irreversibilities(network: Network, yeast5_path: Path) -> Network:
    """Restore the directions Yeast 5.21 annotates as irreversible (reference ``useYN5irrevs``).

    For every Yeast 5.21 reaction with ``rev = 0`` whose name does not contain ``'isa'`` (the
    lumped "isa" pseudo-reactions), the reactions of ``network`` with the same *name* get
    ``lb = 0`` where the Yeast 5.21 one has ``lb = 0`` and ``ub = 0`` where it has ``ub = 0``.
    On Yeast 7.6 77 such reactions match 95 reactions by name and 60 bounds change, which
    leaves 52 of the 2,302 gene-associated reactions irreversible: the minimally constrained
    model's only fitted reactions in FALCON's first iteration (seed 003 Sec. 4.2, Table 1).
    """
    m5 = scipy.io.loadmat(yeast5_path, squeeze_me=True, struct_as_record=False)["model"]
    names5 = _strings(m5.rxnNames)
    rev5 = np.asarray(m5.rev, dtype=bool)
    lb5, ub5 = np.asarray(m5.lb, dtype=float), np.asarray(m5.ub, dtype=float)
    by_name: dict[str, list[int]] = {}
    for j, name in enumerate(network.reaction_names or ()):
        by_name.setdefault(name, []).append(j)
    lb, ub = network.lb.copy(), network.ub.copy()
    for i, name in enumerate(names5):
        if rev5[i] or "isa" in name or name not in by_name:
            continue
        targets = by_name[name]
        if lb5[i] == 0:
            lb[targets] = 0.0
        if ub5[i] == 0:
            ub[targets] = 0.0
    return replace(network, lb=lb, ub=ub)


def yeast(
    version: Literal["5.21", "7.6"] = "5.21",
    *,
    constraints: Literal["high", "minimal"] = "high",
    data_dir: str | Path | None = None,
) -> Network:
    """Yeast 5.21 or 7.6 as used in the FALCON benchmark (seed 003, Table 1).

    ``constraints="high"`` keeps the bounds as shipped. ``"minimal"`` follows the reference
    scripts of seed 003: ``removeEnzymeIrrevs`` opens every gene-associated, non-exchange
    reaction that the model flags reversible (``lb = -ub``; 849 bounds on 5.21, 1,719 on
    7.6), and for the newer model ``useYN5irrevs`` then copies the irreversible
    directions of Yeast 5.21 by reaction name (see :func:`_copy_yeast5_irreversibilities`).
    """
    if version not in _YEAST_FILES:
        raise KeyError(f"unknown yeast model version {version!r}; use one of {list(_YEAST_FILES)}")
    if constraints not in ("high", "minimal"):
        raise ValueError(f"constraints must be 'high' or 'minimal', not {constraints!r}")
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None or not (root / _YEAST_FILES[version]).is_file():
        raise ModelReadError(
            f"yeast {version} model not found under {root}; set BAYESFLUX_SHARED_DATA to the "
            "folder holding falcon_yeast/"
        )
    path = root / _YEAST_FILES[version]
    network = read_cobra_mat(path)
    if constraints == "minimal":
        network = _remove_enzyme_irrevs(network, _yeast_reversible(version, path, network))
        if version != "5.21":
            yeast5 = root / _YEAST_FILES["5.21"]
            if not yeast5.is_file():
                raise ModelReadError(
                    f"the minimally constrained yeast {version} copies Yeast 5.21's "
                    f"irreversible reactions, but {yeast5} is missing"
                )
            network = _copy_yeast5_irreversibilities(network, yeast5)
    return network
