"""Enzyme-constrained models (ecModels) as GECKO builds them (Sánchez et al. 2017, MSB 13:935).

A :class:`~bayesflux.network.Network` is expanded so that every enzyme-catalysed flux consumes
its enzyme: for a reaction ``r`` catalysed by the complex ``C`` (the genes AND-ed in one term of
the GPR in disjunctive normal form) with turnover number ``kcat`` (1/s), each subunit ``g in C``
is consumed with stoichiometry ``1 / (3600 kcat)`` mmol/gDW per unit flux (mmol/gDW/h). Then

* reversible enzymatic reactions are split into a forward and a ``_REV`` backward reaction;
* a reaction with isozymes (several DNF terms) gets an ``arm_`` reaction that carries its flux
  to a pseudo-metabolite ``pmet_``, from which one ``_No<k>`` reaction per isozyme goes on;
* ``draw_prot_<g>: (MW_g / 1000) prot_pool -> prot_<g>`` supplies each enzyme (MW in g/mol, so
  the pool is in g/gDW); a measured abundance (mmol/gDW) bounds its draw from above;
* ``prot_pool_exchange: -> prot_pool`` is bounded by the protein budget ``P`` (g/gDW).

At steady state this is the constraint ``sum_r |v_r| sum_{g in C_r} MW_g / (3.6e6 kcat_r) <= P``
(plus ``sum_r c_r v_r`` for ``growth_protein``) with each reaction free to use its cheapest
isozyme (the sMOMENT form, Bekiaris & Klamt 2020, BMC Bioinformatics 21:19).

Turnover numbers and molecular weights come from a table (:func:`read_enzyme_table`) with the
columns ``reaction``, ``gene``, ``kcat`` (1/s) and ``mw`` (g/mol), any of them empty per row:

* ``reaction`` and ``kcat``, no ``gene``: the turnover number of every isozyme of the reaction;
* ``reaction``, ``gene`` and ``kcat``: the turnover number of the isozymes of the reaction that
  contain the gene (the smallest such value, if subunits disagree);
* ``gene`` and ``mw``: the molecular weight of the gene's product (one value per gene).

Missing values take ``default_kcat`` and ``default_mw``. :func:`ecoli_core_enzyme_table` is the
table bundled for E. coli core (generic values; see ``methods/data/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from bayesflux.errors import InfeasibleError, ModelReadError, NetworkError
from bayesflux.expression.gpr import Node, parse
from bayesflux.methods._lp import FluxLP
from bayesflux.network import Network, as_network

if TYPE_CHECKING:
    import cobra

__all__ = [
    "EcModel",
    "EnzymeLookup",
    "check_enzyme_table",
    "ec_model",
    "read_enzyme_table",
    "ecoli_core_enzyme_table",
    "isozymes",
    "growth_scan",
]

SECONDS_PER_HOUR = 3600.0
POOL = "prot_pool"
POOL_EXCHANGE = "prot_pool_exchange"
MAX_ISOZYMES = 1000
"""Most complexes (DNF terms) one GPR may expand to."""
_COLUMNS = ("reaction", "gene", "kcat", "mw")


# ---------------------------------------------------------------------- enzyme table
def check_enzyme_table(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate and normalise an enzyme table (columns ``reaction, gene, kcat, mw``)."""
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise NetworkError(f"{where}: enzyme table lacks column(s) {missing} (needs {_COLUMNS})")
    out = pd.DataFrame(index=table.index)
    for col in ("reaction", "gene"):
        out[col] = table[col].fillna("").astype(str).str.strip()
    for col in ("kcat", "mw"):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = table[col].notna() & values.isna() & (table[col].astype(str).str.strip() != "")
        bad |= (values <= 0) | (values == np.inf)
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            row = out.iloc[i]
            raise NetworkError(
                f"{where}: data row {i + 1} (reaction {row['reaction']!r}, gene "
                f"{row['gene']!r}) has {col} = {table[col].iloc[i]!r}; it must be "
                "a positive finite number or empty"
            )
        out[col] = values.astype(float)
    for key, col in ((["reaction", "gene"], "kcat"), (["gene"], "mw")):
        rows = out[out[col].notna() & (out[key[0]] != "")]
        clash = rows.groupby(key)[col].nunique()
        clash = clash[clash > 1]
        if clash.size:
            which = clash.index[0]
            label = ", ".join(f"{k} {str(v)!r}" for k, v in zip(key, np.atleast_1d(which)))
            raise NetworkError(f"{where}: conflicting {col} values for {label}")
    useless = (out["kcat"].isna() | (out["reaction"] == "")) & (
        out["mw"].isna() | (out["gene"] == "")
    )
    if useless.any():
        i = useless.to_numpy().nonzero()[0][0]
        raise NetworkError(
            f"{where}: data row {i + 1} gives neither a kcat with a reaction nor an mw with a gene"
        )
    return out.reset_index(drop=True)


def read_enzyme_table(path: str | Path) -> pd.DataFrame:
    """Read an enzyme table (CSV, ``#`` comments) with columns ``reaction, gene, kcat, mw``.

    ``kcat`` is in 1/s, ``mw`` in g/mol; other columns (e.g. ``source``) are ignored.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, comment="#", dtype=str, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ModelReadError(f"could not read enzyme table {path}: {exc}") from exc
    return check_enzyme_table(table, str(path))


def ecoli_core_enzyme_table() -> pd.DataFrame:
    """The enzyme table bundled for E. coli core (cobra's ``textbook``); see its README."""
    with resources.as_file(
        resources.files("bayesflux.methods") / "data" / "ecoli_core_kcats.csv"
    ) as path:
        return read_enzyme_table(path)


# ---------------------------------------------------------------------- GPR -> complexes
def _dnf(node: Node, reaction: str) -> list[frozenset[str]]:
    """Disjunctive normal form of a rule tree: the list of AND-ed gene sets (complexes)."""
    if isinstance(node, str):
        return [frozenset((node,))]
    parts = [_dnf(a, reaction) for a in node.args]
    if node.op == "or":
        terms = [t for p in parts for t in p]
    else:
        size = int(np.prod([len(p) for p in parts]))
        if size > MAX_ISOZYMES:
            raise NetworkError(
                f"GPR of reaction {reaction!r} expands to {size} complexes "
                f"(more than {MAX_ISOZYMES})"
            )
        terms = [frozenset().union(*combo) for combo in product(*parts)]
    unique = list(dict.fromkeys(terms))
    # absorption: A or (A and B) is A
    return [t for t in unique if not any(o < t for o in unique)]


def isozymes(
    rule: str, *, reaction: str = "", spontaneous: Iterable[str] = ("s0001",)
) -> list[tuple[str, ...]] | None:
    """The enzyme complexes of a GPR rule, one per isozyme (its terms in DNF, absorbed).

    ``(A and B) or C`` gives ``[("A", "B"), ("C",)]``. Spontaneous pseudo-genes are dropped from
    complexes; ``None`` if the rule is empty or a term is spontaneous only (no enzyme needed).
    """
    node = parse(rule, reaction=reaction or None)
    if node is None:
        return None
    skip = set(spontaneous)
    out = []
    for term in _dnf(node, reaction):
        genes = tuple(sorted(term - skip))
        if not genes:
            return None
        out.append(genes)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class EcModel:
    """An enzyme-constrained network and the maps back to the original one.

    Attributes
    ----------
    network
        The expanded network (enzymes ``prot_<g>``, draws ``draw_prot_<g>``, ``prot_pool``).
    original
        The network it was built from.
    to_net
        Sparse ``(original reactions x ec reactions)``: net original fluxes ``v = to_net @ w``.
    enzymes
        Gene ids with an enzyme species, in the order of ``draw_reactions``.
    draw_reactions
        ``draw_prot_<g>`` per enzyme; their fluxes are enzyme amounts (mmol/gDW).
    mw
        Molecular weight used per enzyme (g/mol).
    kcat
        Turnover number used (1/s) per enzyme-consuming reaction of ``network``.
    protein_budget
        Upper bound of ``prot_pool_exchange`` (g/gDW).
    """

    network: Network
    original: Network
    to_net: sp.csr_array
    enzymes: tuple[str, ...]
    draw_reactions: tuple[str, ...]
    mw: np.ndarray
    kcat: Mapping[str, float]
    protein_budget: float

    def net_flux(self, w: np.ndarray) -> np.ndarray:
        """Net fluxes of the original reactions from ec-model fluxes ``w``."""
        return self.to_net @ np.asarray(w, dtype=float)

    def enzyme_usage(self, w: np.ndarray) -> np.ndarray:
        """Enzyme amounts (mmol/gDW), one per entry of ``enzymes``."""
        return np.asarray(w, dtype=float)[self.network.indices(self.draw_reactions)]

    def protein_usage(self, w: np.ndarray) -> float:
        """Total enzyme mass ``sum_g MW_g E_g / 1000`` (g/gDW): the pool flux."""
        return float(self.enzyme_usage(w) @ self.mw / 1000.0)

    def with_budget(self, protein_budget: float) -> EcModel:
        """A copy with another protein budget (g/gDW)."""
        if not protein_budget >= 0:
            raise ValueError(f"protein_budget must be >= 0, not {protein_budget}")
        net = self.network.with_bounds({POOL_EXCHANGE: (0.0, float(protein_budget))})
        return replace(self, network=net, protein_budget=float(protein_budget))


class EnzymeLookup:
    """kcat per (reaction, complex) and MW per gene from a checked enzyme table."""

    def __init__(self, table: pd.DataFrame, default_kcat: float, default_mw: float) -> None:
        kc = table[(table["reaction"] != "") & table["kcat"].notna()]
        gene_rows = kc[kc["gene"] != ""]
        self.by_reaction = {
            r: float(k) for r, g, k in zip(kc["reaction"], kc["gene"], kc["kcat"]) if not g
        }
        self.by_pair: dict[tuple[str, str], float] = {}
        for r, g, k in zip(gene_rows["reaction"], gene_rows["gene"], gene_rows["kcat"]):
            key = (r, g)
            self.by_pair[key] = min(float(k), self.by_pair.get(key, np.inf))
        mw = table[(table["gene"] != "") & table["mw"].notna()]
        self.mw = dict(zip(mw["gene"], mw["mw"].astype(float)))
        self.default_kcat = default_kcat
        self.default_mw = default_mw

    def kcat(self, reaction: str, complex_: Sequence[str]) -> float:
        specific = [self.by_pair[(reaction, g)] for g in complex_ if (reaction, g) in self.by_pair]
        if specific:
            return min(specific)
        return self.by_reaction.get(reaction, self.default_kcat)

    def weight(self, gene: str) -> float:
        return float(self.mw.get(gene, self.default_mw))


class _Builder:
    """Collects the columns of the ec-model network while the original reactions are expanded."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.met_index = {m: i for i, m in enumerate(net.metabolites)}
        self.mets = list(net.metabolites)
        self.comps = list(net.metabolite_compartments)
        self.enzyme_comp = "c" if "c" in net.compartments else ""
        self.cols: list[dict[int, float]] = []
        self.ids: list[str] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.gpr: list[str] = []
        self.names: list[str] = []
        self.objective: list[float] = []
        self.origin: list[tuple[int, float]] = []  # (original reaction, +1 / -1), or (-1, 0)
        self.kcat: dict[str, float] = {}
        self.enzymes: dict[str, None] = {}

    def metabolite(self, mid: str) -> int:
        """Row of a metabolite, added (enzymes, pool, pseudo-metabolites) if new."""
        if mid not in self.met_index:
            self.met_index[mid] = len(self.mets)
            self.mets.append(mid)
            self.comps.append(self.enzyme_comp)
        return self.met_index[mid]

    def add(
        self,
        rid: str,
        column: dict[int, float],
        lo: float,
        hi: float,
        *,
        gpr: str = "",
        name: str | None = None,
        source: tuple[int, float] = (-1, 0.0),
    ) -> None:
        """Append one reaction; ``source`` maps its flux onto an original reaction."""
        j, sign = source
        self.ids.append(rid)
        self.cols.append(column)
        self.lb.append(float(lo))
        self.ub.append(float(hi))
        self.gpr.append(gpr)
        self.names.append(
            name if name is not None else self.net.reaction_names[j] if j >= 0 else ""
        )
        self.objective.append(sign * float(self.net.objective[j]) if j >= 0 else 0.0)
        self.origin.append(source)

    def _consume(self, column: dict[int, float], genes: Sequence[str], kcat: float) -> None:
        """Each subunit is used at 1 / (3600 kcat) mmol/gDW per mmol/gDW/h of flux."""
        for g in genes:
            column[self.metabolite(f"prot_{g}")] = -1.0 / (SECONDS_PER_HOUR * kcat)
            self.enzymes[g] = None

    def enzymatic(
        self, j: int, column: dict[int, float], complexes: list[tuple[str, ...]], look: EnzymeLookup
    ) -> None:
        """Split by direction; one reaction per isozyme behind an ``arm_`` reaction if several."""
        rid, lo, hi = self.net.reactions[j], float(self.net.lb[j]), float(self.net.ub[j])
        directions = []
        if hi > 0 or lo >= 0:
            directions.append(("", 1.0, max(lo, 0.0), hi))
        if lo < 0:
            directions.append(("_REV", -1.0, max(-hi, 0.0), -lo))
        for suffix, sign, d_lo, d_hi in directions:
            base = rid + suffix
            signed = {i: sign * a for i, a in column.items()}
            if len(complexes) == 1:
                kcat = look.kcat(rid, complexes[0])
                self._consume(signed, complexes[0], kcat)
                self.kcat[base] = kcat
                self.add(base, signed, d_lo, d_hi, gpr=self.net.gpr[j], source=(j, sign))
                continue
            pmet = self.metabolite(f"pmet_{base}")
            arm = {i: a for i, a in signed.items() if a < 0} | {pmet: 1.0}
            name = f"{self.net.reaction_names[j]} (arm)"
            self.add(f"arm_{base}", arm, d_lo, d_hi, name=name, source=(j, sign))
            for k, genes in enumerate(complexes, start=1):
                kcat = look.kcat(rid, genes)
                iso = {i: a for i, a in signed.items() if a > 0} | {pmet: -1.0}
                self._consume(iso, genes, kcat)
                self.kcat[f"{base}_No{k}"] = kcat
                name = self.net.reaction_names[j]
                self.add(f"{base}_No{k}", iso, 0.0, np.inf, gpr=" and ".join(genes), name=name)

    def network(self) -> tuple[Network, sp.csr_array]:
        """The expanded network and the map ``to_net`` of its fluxes onto the original ones."""
        net, n = self.net, len(self.ids)
        rows = [i for col in self.cols for i in col]
        cols = [c for c, col in enumerate(self.cols) for _ in col]
        vals = [a for col in self.cols for a in col.values()]
        S = sp.csr_array((vals, (rows, cols)), shape=(len(self.mets), n))
        mapped = [(o, c, s) for c, (o, s) in enumerate(self.origin) if o >= 0]
        to_net = sp.csr_array(
            ([s for *_, s in mapped], ([o for o, *_ in mapped], [c for _, c, _ in mapped])),
            shape=(net.n_reactions, n),
        )
        ec = Network(
            reactions=self.ids,
            metabolites=self.mets,
            S=S,
            lb=self.lb,
            ub=self.ub,
            objective=self.objective,
            gpr=self.gpr,
            genes=tuple(dict.fromkeys([*net.genes, *self.enzymes])),
            reaction_names=self.names,
            metabolite_names=list(net.metabolite_names)
            + [""] * (len(self.mets) - net.n_metabolites),
            metabolite_compartments=self.comps,
            compartments=net.compartments,
            id=f"ec_{net.id}",
        )
        return ec, to_net


def ec_model(
    network: Network | cobra.Model | str | Path,
    table: pd.DataFrame | str | Path | None = None,
    *,
    protein_budget: float,
    abundances: Mapping[str, float] | None = None,
    growth_protein: Mapping[str, float] | None = None,
    default_kcat: float = 65.0,
    default_mw: float = 40_000.0,
    spontaneous: Iterable[str] = ("s0001",),
) -> EcModel:
    """Expand a network into a GECKO-style enzyme-constrained model.

    Parameters
    ----------
    network
        A :class:`Network`, ``cobra.Model`` or model path, with GPR rules.
    table
        Enzyme table (DataFrame or CSV path; see the module docstring). ``None``: no table, every
        reaction gets ``default_kcat`` and every gene ``default_mw``.
    protein_budget
        Upper bound ``P`` of the total enzyme mass (g/gDW), GECKO's ``Ptot f sigma``.
    abundances
        Measured enzyme amounts ``{gene: mmol/gDW}``: upper bounds of ``draw_prot_<gene>``.
    growth_protein
        ``{reaction: g/gDW per unit flux}`` drawn from the pool by reactions such as biomass:
        the growth-dependent (ribosomal) proteome sector ``phi_R = phi_R0 + mu / kappa_t`` of
        Scott et al. 2010 (Science 330:1099), as constrained-allocation FBA adds it (Mori et
        al. 2016). The pool then obeys ``sum_g MW_g E_g / 1000 + sum_r c_r v_r <= P``.
    default_kcat, default_mw
        Values for reactions (1/s) and genes (g/mol) missing from the table. The defaults are
        generic: 65 1/s is near the median kcat of central metabolism (Bar-Even et al. 2011,
        Biochemistry 50:4402) and 40 kDa a typical bacterial protein mass.
    spontaneous
        Pseudo-genes meaning "no enzyme needed" (cobra's E. coli core uses ``s0001``).

    Returns
    -------
    EcModel
        The expanded network with maps back to the original reactions.
    """
    net = as_network(network)
    if not protein_budget >= 0 or not np.isfinite(protein_budget):
        raise ValueError(f"protein_budget must be finite and >= 0 (g/gDW), not {protein_budget}")
    for name, value in (("default_kcat", default_kcat), ("default_mw", default_mw)):
        if not (value > 0 and np.isfinite(value)):
            raise ValueError(f"{name} must be a positive number, not {value}")
    if table is None:
        checked = pd.DataFrame({c: pd.Series(dtype=object) for c in _COLUMNS})
        checked = check_enzyme_table(checked, "enzyme table")
    elif isinstance(table, pd.DataFrame):
        checked = check_enzyme_table(table, "enzyme table")
    else:
        checked = read_enzyme_table(table)
    unknown = sorted(set(checked["reaction"]) - {""} - set(net.reactions))
    if unknown:
        raise NetworkError(
            f"enzyme table names reaction(s) not in network {net.id!r}: "
            f"{', '.join(map(repr, unknown[:10]))}"
        )
    look = EnzymeLookup(checked, float(default_kcat), float(default_mw))
    growth_protein = dict(growth_protein or {})
    for r, cost in growth_protein.items():
        if r not in net.reaction_index:
            raise NetworkError(f"growth_protein names reaction {r!r}, not in network {net.id!r}")
        if not (cost >= 0 and np.isfinite(cost)):
            raise ValueError(f"growth_protein of reaction {r!r} must be >= 0, not {cost}")
        if net.gpr[net.reaction_index[r]].strip() or net.lb[net.reaction_index[r]] < 0:
            raise NetworkError(
                f"growth_protein reaction {r!r} must be irreversible and have no GPR"
            )

    build = _Builder(net)
    csc = net.S.tocsc()
    for j, rid in enumerate(net.reactions):
        col = csc.indices[csc.indptr[j] : csc.indptr[j + 1]].tolist()
        column = dict(zip(col, csc.data[csc.indptr[j] : csc.indptr[j + 1]].tolist()))
        complexes = isozymes(net.gpr[j], reaction=rid, spontaneous=spontaneous)
        if complexes is None:
            if growth_protein.get(rid):
                column[build.metabolite(POOL)] = -float(growth_protein[rid])
            build.add(rid, column, net.lb[j], net.ub[j], gpr=net.gpr[j], source=(j, 1.0))
        else:
            build.enzymatic(j, column, complexes, look)

    abundances = dict(abundances or {})
    unknown = sorted(set(abundances) - set(build.enzymes))
    if unknown:
        raise NetworkError(
            f"abundance given for gene(s) that catalyse no reaction of {net.id!r}: "
            f"{', '.join(map(repr, unknown[:10]))}"
        )
    pool = build.metabolite(POOL)
    mw = np.array([look.weight(g) for g in build.enzymes])
    draws = tuple(f"draw_prot_{g}" for g in build.enzymes)
    for g, weight, rid in zip(build.enzymes, mw, draws):
        cap = float(abundances.get(g, np.inf))
        if not cap >= 0:
            raise ValueError(f"abundance of gene {g!r} must be >= 0 mmol/gDW, not {cap}")
        column = {pool: -weight / 1000.0, build.metabolite(f"prot_{g}"): 1.0}
        build.add(rid, column, 0.0, cap, gpr=g)
    build.add(POOL_EXCHANGE, {pool: 1.0}, 0.0, float(protein_budget), name="protein pool")
    ec, to_net = build.network()
    enzymes = tuple(build.enzymes)
    return EcModel(ec, net, to_net, enzymes, draws, mw, build.kcat, float(protein_budget))


# ---------------------------------------------------------------------- growth-rate scan
def growth_scan(
    ec: EcModel,
    growth_rates: Sequence[float],
    *,
    biomass: str,
    substrate: str,
    report: Sequence[str] = (),
) -> xr.Dataset:
    """Fix the growth rate, minimise substrate uptake; one LP per rate (overflow scans).

    For each ``mu`` the biomass reaction is fixed to ``mu`` and the uptake ``-v_substrate`` of
    the exchange ``substrate`` (negative when taken up) is minimised, which is how enzyme- and
    proteome-constrained models show overflow metabolism (Basan et al. 2015, Nature 528:99; Mori
    et al. 2016, PLoS Comput Biol 12:e1004913).

    Returns
    -------
    xarray.Dataset
        Over ``growth_rate``: ``uptake`` (substrate), ``protein`` (pool usage, g/gDW, with any
        ``growth_protein`` demand), ``feasible`` and one variable per reaction in ``report``
        (its net flux); NaN where the rate is infeasible under the budget.
    """
    mus = np.asarray(growth_rates, dtype=float)
    orig = ec.original
    jb, js = orig.indices([biomass, substrate])
    jr = orig.indices(list(report)) if report else np.array([], dtype=int)
    bio_cols = np.flatnonzero(ec.to_net[[jb], :].toarray()[0])
    if bio_cols.size != 1:
        raise NetworkError(f"biomass reaction {biomass!r} must map to one ec-model reaction")
    kb = int(bio_cols[0])
    weights = -(ec.to_net[[js], :].toarray()[0])  # minimise -v_substrate = uptake
    pool = ec.network.indices([POOL_EXCHANGE])[0]
    out = {
        "uptake": np.full(mus.size, np.nan),
        "protein": np.full(mus.size, np.nan),
        "feasible": np.zeros(mus.size, dtype=bool),
    }
    flux = np.full((mus.size, jr.size), np.nan)
    rate = cp.Parameter(name="growth_rate")
    lp = FluxLP(ec.network, extra=[lambda v: [v[kb] == rate]])  # compiled once, re-solved
    for i, mu in enumerate(mus):
        rate.value = float(mu)
        try:
            w = lp.solve(weights, what=f"growth scan of {ec.network.id!r} at mu = {mu:g}")
        except InfeasibleError:
            continue
        v = ec.net_flux(w)
        out["uptake"][i] = -v[js]
        out["protein"][i] = w[pool]
        out["feasible"][i] = True
        flux[i] = v[jr]
    data = {k: ("growth_rate", a) for k, a in out.items()}
    data |= {r: ("growth_rate", flux[:, k]) for k, r in enumerate(report)}
    return xr.Dataset(
        data,
        coords={"growth_rate": mus},
        attrs={
            "method": "growth_scan",
            "network": ec.network.id,
            "biomass": biomass,
            "substrate": substrate,
            "protein_budget": ec.protein_budget,
        },
    )
