"""ME-lite: metabolism and expression as a resource-balance model (issue 21; seed 000, ME-models).

ME-models (O'Brien et al. 2013, MSB 9:693; Lloyd et al. 2018, PLoS Comput Biol 14:e1006302) and
resource-balance analysis (Goelzer et al. 2011, Automatica 47:1171) add the synthesis of the
catalysts to flux balance: enzymes are made by ribosomes from amino acids, mRNAs by RNA
polymerase from nucleotides, every macromolecule is diluted by growth, and the machines have
finite capacities. This module builds a small version of that on top of the GECKO expansion of
:mod:`bayesflux.methods.ecmodel` (which gives each enzymatic flux its enzyme usage
``sum_r v_r / (3600 kcat_r)``, isozymes and directions included).

Variables: the fluxes ``v`` (mmol/gDW/h) of the expanded :class:`~bayesflux.network.Network`, and
the amounts ``a`` (mmol/gDW) of every enzyme ``E_g``, the ribosome ``R``, RNA polymerase ``P`` and
every enzyme's mRNA ``m_g``. For a fixed growth rate ``mu`` (1/h) the constraints are linear:

* ``S v = 0`` over the expanded network, whose extra reactions are the lumped syntheses
  ``AA_SYNTH`` (-> ``aa_c``) and ``NT_SYNTH`` (-> ``nt_c``), ``translation_<g>`` (consumes
  ``L_g`` ``aa_c`` and ``atp_per_aa L_g`` ATP hydrolyses), ``translation_ribosome`` and
  ``translation_rnap``, ``transcription_<g>`` (``3 L_g`` ``nt_c`` and ``atp_per_nt`` ATP per nt),
  ``mrna_degradation_<g>`` (returns the ``3 L_g`` nucleotides) and ``transcription_rrna``;
* enzyme coupling ``usage_g(v) <= E_g`` (so ``v_r <= 3600 kcat_r E_g``, as in ecmodel);
* dilution by growth: ``v_translation_g = mu E_g``, ``v_translation_ribosome =
  v_transcription_rrna = mu R``, ``v_translation_rnap = mu P``, ``v_transcription_g =
  (mu + k_deg) m_g`` and ``v_mrna_degradation_g = k_deg m_g``;
* capacities: ``sum_g L_g v_translation_g + L_R v_tl_R + L_P v_tl_P <= 3600 k_ribo R``;
  ``sum_g 3 L_g v_transcription_g + L_rRNA v_transcription_rrna <= 3600 k_rnap P``;
  ``v_translation_g <= 3600 k_mrna m_g``;
* the biomass reaction carries ``v_biomass = mu`` (it still makes the rest of the cell).

The products ``mu E`` make the problem bilinear; for fixed ``mu`` it is an LP (one cvxpy problem,
``mu`` a ``Parameter``, compiled once), and :func:`max_growth` bisects on ``mu`` over LP
feasibility, the sequence of LPs over the growth rate that ME and RBA tools solve.

**Amino acids and nucleotides.** E. coli core has no amino acids, so one lumped ``aa_c`` (and
``nt_c``) is made from the biomass reaction's own precursor mix, by mass: 1 mmol of residues of
``aa_mass`` g/mol costs ``aa_mass / 1000`` g of biomass precursors, i.e. the biomass column
times ``aa_mass / 1000``, after removing its growth-associated ATP hydrolysis (the largest
multiple of ``energy`` contained in it). The explicitly made enzymes and machines are costed
*on top of* the biomass reaction, so their cost is an upper estimate (the biomass reaction
already contains an average proteome). ``aa_precursors`` / ``nt_precursors`` replace these
columns (``{}``: free precursors).

**RNA-seq as a regularising penalty** (seed 000): at a fixed ``mu``, :func:`fixed_growth` with
``transcripts={gene: level}`` minimises ``sum_g |m_g - s e_g|`` (L1, linear with deviation
variables). The scale ``s`` (mmol/gDW per unit of the measurement) is given, or with
``scale=None`` fitted jointly as an LP variable ``s >= 0`` (a least-absolute-deviation fit
through the origin, linear because ``s e_g`` is linear in ``s``, like FALCON's ``n``).

All default parameters are generic E. coli assumptions, not fitted values (see :func:`me_lite`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from cvxpy.settings import INFEASIBLE_OR_UNBOUNDED

from bayesflux.errors import InfeasibleError, NetworkError, SolverError
from bayesflux.methods._lp import _TOLERANCE, check_status
from bayesflux.methods.ecmodel import POOL, POOL_EXCHANGE, ec_model, read_enzyme_table
from bayesflux.network import Network, as_network

if TYPE_CHECKING:
    import cobra

__all__ = ["MELiteModel", "me_lite", "growth_feasible", "fixed_growth", "max_growth"]

SECONDS_PER_HOUR = 3600.0
AA = "aa_c"
NT = "nt_c"
_UNIT = 1e-6
"""Internal unit of amounts (nmol/gDW) and synthesis fluxes (nmol/gDW/h) in the LP, in mmol:
mRNAs (~1e-8 mmol/gDW) would otherwise sit below the solver's feasibility tolerance."""
ATP_HYDROLYSIS = {"atp_c": -1.0, "h2o_c": -1.0, "adp_c": 1.0, "pi_c": 1.0, "h_c": 1.0}
"""One ATP equivalent in E. coli core ids (GTP is counted as ATP: the core has no GTP)."""


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class MELiteModel:
    """An expanded ME-lite network and the linear data of its growth-dependent constraints.

    Attributes
    ----------
    network
        Expanded network: GECKO-split metabolism (enzyme usage rows ``prot_<g>``), lumped
        ``aa_c``/``nt_c`` syntheses, translation, transcription and mRNA degradation reactions.
    original
        The network it was built from; ``to_net`` maps expanded fluxes to its net fluxes.
    to_net
        Sparse ``(original reactions x expanded reactions)``.
    biomass
        Id of the biomass reaction (flux fixed to ``mu``).
    genes
        Enzyme-coding genes, in the order of the enzyme and mRNA amounts.
    species
        Amount variables (mmol/gDW): ``genes``, then ``ribosome``, ``rnap``, ``mRNA_<g>``.
    mass
        Mass per species (g/mol), used by the parsimonious objective.
    length
        Protein length per gene (amino acids), ``MW / aa_mass``.
    usage
        Sparse ``(genes x reactions)``: ``usage @ v`` is the enzyme need; ``usage @ v <= E``.
    dilution, dilution_mu, dilution_const
        ``dilution @ v == mu * (dilution_mu @ a) + dilution_const @ a`` (synthesis = dilution
        plus degradation).
    capacity, capacity_rate
        ``capacity @ v <= capacity_rate @ a`` (ribosome, RNAP and per-mRNA limits).
    capacity_names
        One label per capacity row.
    parameters
        The scalar parameters used (units in :func:`me_lite`).
    """

    network: Network
    original: Network
    to_net: sp.csr_array
    biomass: str
    genes: tuple[str, ...]
    species: tuple[str, ...]
    mass: np.ndarray
    length: np.ndarray
    usage: sp.csr_array
    dilution: sp.csr_array
    dilution_mu: sp.csr_array
    dilution_const: sp.csr_array
    capacity: sp.csr_array
    capacity_rate: sp.csr_array
    capacity_names: tuple[str, ...]
    parameters: Mapping[str, float] = field(default_factory=dict)

    @property
    def transcription(self) -> bool:
        """Whether mRNAs, RNA polymerase and nucleotides are modelled."""
        return "rnap" in self.species

    def net_flux(self, w: np.ndarray) -> np.ndarray:
        """Net fluxes of the original reactions from expanded fluxes ``w``."""
        return self.to_net @ np.asarray(w, dtype=float)


def _positive(name: str, value: float, *, zero: bool = False) -> float:
    value = float(value)
    if not (np.isfinite(value) and (value >= 0 if zero else value > 0)):
        raise ValueError(
            f"{name} must be a {'non-negative' if zero else 'positive'} number, not {value}"
        )
    return value


def _find_biomass(net: Network, biomass: str | None) -> str:
    if biomass is not None:
        if biomass not in net.reaction_index:
            raise NetworkError(f"biomass reaction {biomass!r} is not in network {net.id!r}")
        return biomass
    nonzero = np.flatnonzero(net.objective)
    if nonzero.size != 1:
        raise NetworkError(
            f"network {net.id!r} has {nonzero.size} objective reactions, so no biomass reaction "
            "can be inferred; pass biomass='<reaction id>'"
        )
    return net.reactions[int(nonzero[0])]


def _column(net: Network, mapping: Mapping[str, float], what: str) -> dict[int, float]:
    """Metabolite rows of a ``{metabolite: coefficient}`` mapping; unknown ids raise."""
    index = net.metabolite_index
    unknown = [m for m in mapping if m not in index]
    if unknown:
        raise NetworkError(
            f"{what} names metabolite(s) not in network {net.id!r}: "
            f"{', '.join(map(repr, unknown[:10]))}"
        )
    return {index[m]: float(c) for m, c in mapping.items() if c}


def _precursor_mix(net: Network, biomass: str, energy: dict[int, float]) -> np.ndarray:
    """The biomass column less its growth-associated ATP hydrolysis (per gDW of biomass)."""
    col = net.S.tocsc()[:, [net.reaction_index[biomass]]].toarray()[:, 0]
    ratios = [col[i] / c for i, c in energy.items()]
    gam = max(0.0, min(ratios)) if ratios else 0.0
    for i, c in energy.items():
        col[i] -= gam * c
    col[np.abs(col) < 1e-12] = 0.0
    return col


def me_lite(
    network: Network | cobra.Model | str | Path,
    table: pd.DataFrame | str | Path | None = None,
    *,
    biomass: str | None = None,
    transcription: bool = True,
    ribosome_rate: float = 16.0,
    rnap_rate: float = 50.0,
    mrna_translation_rate: float = 0.5,
    mrna_degradation: float = float(np.log(2) * 60 / 5),
    aa_mass: float = 110.0,
    nt_mass: float = 325.0,
    atp_per_aa: float = 4.0,
    atp_per_nt: float = 2.0,
    ribosome_protein: float = 7336.0,
    ribosome_rrna: float = 4566.0,
    rnap_protein: float = 3498.0,
    energy: Mapping[str, float] | None = None,
    aa_precursors: Mapping[str, float] | None = None,
    nt_precursors: Mapping[str, float] | None = None,
    default_kcat: float = 65.0,
    default_mw: float = 40_000.0,
    spontaneous: tuple[str, ...] = ("s0001",),
) -> MELiteModel:
    """Expand a network with GPRs into an ME-lite model (see the module docstring).

    Parameters
    ----------
    network
        A :class:`Network`, ``cobra.Model`` or model path, with GPR rules.
    table
        Enzyme table (kcat in 1/s per reaction, MW in g/mol per gene), as for
        :func:`~bayesflux.methods.ecmodel.ec_model`; ``None``: the defaults everywhere.
    biomass
        Biomass reaction (its flux is ``mu``, 1/h); default: the single objective reaction.
    transcription
        Model mRNAs, RNA polymerase, rRNA and nucleotides (needed for ``transcripts``).
    ribosome_rate
        Effective elongation rate per ribosome (aa/s). 16 aa/s: E. coli ribosomes elongate at
        12-21 aa/s depending on growth rate (Bremer & Dennis 2008, EcoSal Plus 3.6.1.2).
    rnap_rate
        Effective elongation rate per RNA polymerase (nt/s): 40-80 nt/s for mRNA, up to 90 nt/s
        for rRNA (Bremer & Dennis 2008; Vogel & Jensen 1994, J Bacteriol 176:2807).
    mrna_translation_rate
        Proteins made per mRNA per second (1/s), ``v_translation_g <= 3600 k m_g``. 0.5/s: an
        order-of-magnitude estimate (~3e6 proteins and ~3e3 mRNAs per E. coli cell, doubling in
        under an hour; Milo & Phillips, Cell Biology by the Numbers).
    mrna_degradation
        First-order mRNA decay rate (1/h): ``ln 2 / 5 min`` = 8.3/h, a median E. coli mRNA
        half-life of ~5 min (Bernstein et al. 2002, PNAS 99:9697). Decayed mRNA returns its
        nucleotides; its resynthesis costs ``atp_per_nt`` per nt.
    aa_mass, nt_mass
        Mean residue masses (g/mol): 110 per amino acid; 325 per RNA nucleotide (NMP residue).
        Protein length is ``L_g = MW_g / aa_mass``; mRNA length ``3 L_g``.
    atp_per_aa
        ATP equivalents per peptide bond: 4 (2 for aminoacylation, ATP -> AMP; 2 GTP for
        elongation and translocation; Russell & Cook 1995, Microbiol Rev 59:48).
    atp_per_nt
        ATP equivalents per transcribed nucleotide: 2 (NMP -> NTP activation).
    ribosome_protein, ribosome_rrna
        Ribosome composition: 7336 amino acids of r-protein and 4566 nt of rRNA (16S + 23S + 5S)
        per 70S ribosome (Bremer & Dennis 2008).
    rnap_protein
        RNA polymerase core (alpha2 beta beta' omega) length: 3498 amino acids (~389 kDa).
    energy
        One ATP equivalent as ``{metabolite: coefficient}``; default :data:`ATP_HYDROLYSIS`.
    aa_precursors, nt_precursors
        Column ``{metabolite: coefficient}`` of ``AA_SYNTH`` (``NT_SYNTH``) per mmol of residues
        made; default: the biomass precursor mix scaled by ``aa_mass / 1000`` (``nt_mass / 1000``)
        g. ``{}`` makes them free.
    default_kcat, default_mw, spontaneous
        As for :func:`~bayesflux.methods.ecmodel.ec_model`.

    Returns
    -------
    MELiteModel
    """
    net = as_network(network)
    bio = _find_biomass(net, biomass)
    rates = {
        "ribosome_rate": _positive("ribosome_rate", ribosome_rate),
        "rnap_rate": _positive("rnap_rate", rnap_rate),
        "mrna_translation_rate": _positive("mrna_translation_rate", mrna_translation_rate),
        "mrna_degradation": _positive("mrna_degradation", mrna_degradation, zero=True),
        "aa_mass": _positive("aa_mass", aa_mass),
        "nt_mass": _positive("nt_mass", nt_mass),
        "atp_per_aa": _positive("atp_per_aa", atp_per_aa, zero=True),
        "atp_per_nt": _positive("atp_per_nt", atp_per_nt, zero=True),
        "ribosome_protein": _positive("ribosome_protein", ribosome_protein),
        "ribosome_rrna": _positive("ribosome_rrna", ribosome_rrna, zero=True),
        "rnap_protein": _positive("rnap_protein", rnap_protein),
    }
    if table is not None and not isinstance(table, pd.DataFrame):
        table = read_enzyme_table(table)
    if table is not None and "gene" in table.columns:
        named = {str(g).strip() for g in table["gene"].dropna()} - {""}
        unknown = sorted(named - set(net.genes))
        if unknown:
            raise NetworkError(
                f"enzyme table names gene(s) not in network {net.id!r}: "
                f"{', '.join(map(repr, unknown[:10]))}"
            )
    ec = ec_model(
        net,
        table,
        protein_budget=0.0,
        default_kcat=default_kcat,
        default_mw=default_mw,
        spontaneous=spontaneous,
    )
    base = ec.network
    keep_rows = np.array([m != POOL for m in base.metabolites])
    keep_cols = np.array([r != POOL_EXCHANGE for r in base.reactions])
    S0 = base.S.tocsc()[:, keep_cols].tocsr()[keep_rows, :]
    mets = [m for m, k in zip(base.metabolites, keep_rows) if k]
    comps = [c for c, k in zip(base.metabolite_compartments, keep_rows) if k]
    mnames = [c for c, k in zip(base.metabolite_names, keep_rows) if k]
    rxns = [r for r, k in zip(base.reactions, keep_cols) if k]
    n0 = len(rxns)

    genes = ec.enzymes
    G = len(genes)
    L = ec.mw / rates["aa_mass"]
    new_mets = [AA] + ([NT] if transcription else [])
    met_index = {m: i for i, m in enumerate(mets + new_mets)}
    n_mets = len(met_index)
    aa, nt = met_index[AA], met_index.get(NT, -1)
    e_rows = _column(net, ATP_HYDROLYSIS if energy is None else energy, "energy")
    if rates["atp_per_aa"] or rates["atp_per_nt"]:
        if not e_rows:
            raise NetworkError("energy is empty but atp_per_aa or atp_per_nt is positive")
    e_idx = np.fromiter(e_rows.keys(), dtype=int, count=len(e_rows))
    e_val = np.fromiter(e_rows.values(), dtype=float, count=len(e_rows))
    mix = _precursor_mix(net, bio, e_rows)

    # new columns as (row, column, value) triplets; column ids after the n0 metabolic ones
    ids: list[str] = []
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    vals_l: list[np.ndarray] = []

    def add_block(names: list[str], rows: np.ndarray, local: np.ndarray, vals: np.ndarray) -> int:
        start = n0 + len(ids)
        ids.extend(names)
        rows_l.append(np.asarray(rows, dtype=int))
        cols_l.append(start + np.asarray(local, dtype=int))
        vals_l.append(np.asarray(vals, dtype=float))
        return start

    def synth(name: str, met: int, given: Mapping[str, float] | None, mass: float) -> None:
        if given is None:
            col = mix * (mass / 1000.0)
            r = np.flatnonzero(col)
            v = col[r]
        else:
            c = _column(net, given, name)
            r = np.fromiter(c.keys(), dtype=int, count=len(c))
            v = np.fromiter(c.values(), dtype=float, count=len(c))
        add_block([name], np.append(r, met), np.zeros(r.size + 1), np.append(v, 1.0))

    def polymerise(names: list[str], met: int, length: np.ndarray, atp: float) -> int:
        """One column per name: consumes ``length`` of ``met`` and ``atp * length`` ATP."""
        k, ne = len(names), e_idx.size
        local = np.repeat(np.arange(k), 1 + ne)
        rows = np.tile(np.append(met, e_idx), k)
        vals = np.column_stack([-length, np.outer(atp * length, e_val)]).ravel()
        return add_block(names, rows, local, vals)

    synth("AA_SYNTH", aa, aa_precursors, rates["aa_mass"])
    tl_g = polymerise([f"translation_{g}" for g in genes], aa, L, rates["atp_per_aa"])
    tl_r = polymerise(
        ["translation_ribosome"], aa, np.array([ribosome_protein]), rates["atp_per_aa"]
    )
    species = [*genes, "ribosome"]
    mass = [*ec.mw, ribosome_protein * aa_mass + ribosome_rrna * nt_mass]
    # dilution triplets: (reaction, species, mu coefficient, constant)
    dil = [(tl_g + np.arange(G), np.arange(G), 1.0, 0.0), (np.array([tl_r]), [G], 1.0, 0.0)]
    # capacity rows: ribosome (aa/h) for all translations
    cap_rows = [np.zeros(G + 1, dtype=int)]
    cap_cols = [np.append(tl_g + np.arange(G), tl_r)]
    cap_vals = [np.append(L, ribosome_protein)]
    cap_rate = [(0, G, SECONDS_PER_HOUR * rates["ribosome_rate"])]
    cap_names = ["ribosome"]
    if transcription:
        synth("NT_SYNTH", nt, nt_precursors, rates["nt_mass"])
        tl_p = polymerise(["translation_rnap"], aa, np.array([rnap_protein]), rates["atp_per_aa"])
        nt_len = 3.0 * L
        tx_g = polymerise([f"transcription_{g}" for g in genes], nt, nt_len, rates["atp_per_nt"])
        dg_g = add_block(
            [f"mrna_degradation_{g}" for g in genes], np.full(G, nt), np.arange(G), nt_len
        )
        tx_r = polymerise(
            ["transcription_rrna"], nt, np.array([ribosome_rrna]), rates["atp_per_nt"]
        )
        P, M = G + 1, G + 2 + np.arange(G)
        species += ["rnap", *(f"mRNA_{g}" for g in genes)]
        mass += [rnap_protein * aa_mass, *(nt_len * nt_mass)]
        kdeg = rates["mrna_degradation"]
        dil += [
            (np.array([tx_r]), [G], 1.0, 0.0),
            (np.array([tl_p]), [P], 1.0, 0.0),
            (tx_g + np.arange(G), M, 1.0, kdeg),
            (dg_g + np.arange(G), M, 0.0, kdeg),
        ]
        cap_cols[0] = np.append(cap_cols[0], tl_p)
        cap_vals[0] = np.append(cap_vals[0], rnap_protein)
        cap_rows[0] = np.zeros(G + 2, dtype=int)
        cap_rows += [np.ones(G + 1, dtype=int), 2 + np.arange(G)]
        cap_cols += [np.append(tx_g + np.arange(G), tx_r), tl_g + np.arange(G)]
        cap_vals += [np.append(nt_len, ribosome_rrna), np.ones(G)]
        cap_rate += [(1, P, SECONDS_PER_HOUR * rates["rnap_rate"])]
        cap_rate += list(
            zip(2 + np.arange(G), M, np.full(G, SECONDS_PER_HOUR * rates["mrna_translation_rate"]))
        )
        cap_names += ["rnap", *(f"mRNA_{g}" for g in genes)]

    n, k = n0 + len(ids), len(species)
    new = sp.csc_array(
        (np.concatenate(vals_l), (np.concatenate(rows_l), np.concatenate(cols_l) - n0)),
        shape=(n_mets, len(ids)),
    )
    S = sp.hstack([sp.vstack([S0, sp.csr_array((len(new_mets), n0))]), new]).tocsr()
    comp = "c" if "c" in net.compartments else ""
    expanded = Network(
        reactions=[*rxns, *ids],
        metabolites=[*mets, *new_mets],
        S=S,
        lb=np.concatenate([base.lb[keep_cols], np.zeros(len(ids))]),
        ub=np.concatenate([base.ub[keep_cols], np.full(len(ids), np.inf)]),
        objective=np.concatenate([base.objective[keep_cols], np.zeros(len(ids))]),
        gpr=[*(g for g, c in zip(base.gpr, keep_cols) if c), *[""] * len(ids)],
        genes=base.genes,
        reaction_names=[*(r for r, c in zip(base.reaction_names, keep_cols) if c), *ids],
        metabolite_names=[*mnames, "lumped amino acid", "lumped nucleotide"][:n_mets],
        metabolite_compartments=[*comps, *[comp] * len(new_mets)],
        compartments=net.compartments,
        id=f"me_{net.id}",
    )
    draws = np.asarray(expanded.indices(ec.draw_reactions))
    usage = sp.csr_array((np.ones(G), (np.arange(G), draws)), shape=(G, n))
    d_rxn = np.concatenate([np.asarray(r) for r, *_ in dil])
    d_sp = np.concatenate([np.asarray(s) for _, s, *_ in dil])
    d_mu = np.concatenate([np.full(len(r), m) for r, _, m, _ in dil])
    d_c = np.concatenate([np.full(len(r), c) for r, _, _, c in dil])
    nd = d_rxn.size
    dilution = sp.csr_array((np.ones(nd), (np.arange(nd), d_rxn)), shape=(nd, n))
    dilution_mu = sp.csr_array((d_mu, (np.arange(nd), d_sp)), shape=(nd, k))
    dilution_const = sp.csr_array((d_c, (np.arange(nd), d_sp)), shape=(nd, k))
    nc = len(cap_names)
    capacity = sp.csr_array(
        (np.concatenate(cap_vals), (np.concatenate(cap_rows), np.concatenate(cap_cols))),
        shape=(nc, n),
    )
    cr = np.array(cap_rate, dtype=float)
    capacity_rate = sp.csr_array((cr[:, 2], (cr[:, 0].astype(int), cr[:, 1].astype(int))), (nc, k))
    params = rates | {"transcription": float(transcription)}
    return MELiteModel(
        network=expanded,
        original=net,
        to_net=sp.hstack(
            [ec.to_net[:, keep_cols], sp.csr_array((net.n_reactions, len(ids)))]
        ).tocsr(),
        biomass=bio,
        genes=genes,
        species=tuple(species),
        mass=np.asarray(mass, dtype=float),
        length=L,
        usage=usage,
        dilution=dilution,
        dilution_mu=dilution_mu,
        dilution_const=dilution_const,
        capacity=capacity,
        capacity_rate=capacity_rate,
        capacity_names=tuple(cap_names),
        parameters=params,
    )


# ---------------------------------------------------------------------- the LP at fixed mu
class _MELiteLP:
    """The LP of an ME-lite model at growth rate ``mu`` (a cvxpy ``Parameter``; DPP, compiled
    once). Objective: ``min cost @ a`` (zero: a feasibility problem), or with ``measured`` the
    L1 transcript penalty ``sum_g |m_g - s e_g|`` over the measured genes."""

    def __init__(
        self,
        model: MELiteModel,
        *,
        measured: tuple[np.ndarray, np.ndarray] | None = None,
        scale: float | None = None,
    ) -> None:
        self.model = model
        net = model.network
        n, k = net.n_reactions, len(model.species)
        # Internal units (see _UNIT): amounts a = _UNIT a', and the enzyme draws and synthesis
        # fluxes v = _UNIT v'; enzyme-usage rows whose entries all fall below 1 are scaled up
        # (a tighter constraint) and capacity rows divided by their machine's rate.
        G = len(model.genes)
        col = np.ones(n)
        col[model.usage.indices] = _UNIT
        col[model.dilution.indices] = _UNIT
        self.col = col
        S = net.S.tocsr() @ sp.diags_array(col)
        top = abs(S).max(axis=1).toarray().ravel()
        row = np.where((top > 0) & (top < 1.0), 1.0 / np.where(top > 0, top, 1.0), 1.0)
        S = sp.diags_array(row) @ S
        rate = model.capacity_rate.max(axis=1).toarray().ravel()
        cap = sp.diags_array(1.0 / rate) @ model.capacity @ sp.diags_array(col / _UNIT)
        cap_rate = sp.diags_array(1.0 / rate) @ model.capacity_rate
        use = model.usage @ sp.diags_array(col / _UNIT)
        dil = model.dilution @ sp.diags_array(col / _UNIT)
        self.v = cp.Variable(n, name="v", bounds=[net.lb / col, net.ub / col])
        self.a = cp.Variable(k, name="amount", nonneg=True)
        self.mu = cp.Parameter(name="growth_rate", nonneg=True, value=0.0)
        self.cost = cp.Parameter(k, name="cost", value=np.zeros(k))  # zero: feasibility only
        jb = net.reaction_index[model.biomass]
        cons = [
            S @ self.v == 0,
            use @ self.v <= self.a[:G],
            dil @ self.v == self.mu * (model.dilution_mu @ self.a) + model.dilution_const @ self.a,
            cap @ self.v <= cap_rate @ self.a,
            self.v[jb] == self.mu,
        ]
        self.scale: cp.Variable | None = None
        self.measured = measured is not None
        self.fixed = scale
        if measured is None:
            objective = self.cost @ self.a
        else:
            rows, levels = measured
            pick = sp.csr_array((np.ones(rows.size), (np.arange(rows.size), rows)), (rows.size, k))
            dev = cp.Variable(rows.size, name="deviation", nonneg=True)
            if scale is None:
                self.scale = cp.Variable(name="scale", nonneg=True)  # in _UNIT per unit of e
                target = self.scale * levels
            else:
                target = (float(scale) / _UNIT) * levels
            cons += [pick @ self.a - target <= dev, target - pick @ self.a <= dev]
            objective = cp.sum(dev)
        self.problem = cp.Problem(cp.Minimize(objective), cons)
        if not self.problem.is_dpp():  # pragma: no cover - guarded by tests
            raise SolverError("ME-lite LP is not DPP; it would be recompiled on every solve")

    def _run(self, mu: float) -> str:
        """Solve at tight tolerances; an undecided end (rare, near the growth limit) is retried
        at HiGHS's default tolerance (1e-7), as :mod:`bayesflux.methods._lp` does."""
        self.mu.value = float(mu)
        for tol in (_TOLERANCE, 1e-7):
            try:
                self.problem.solve(
                    solver=cp.HIGHS,
                    primal_feasibility_tolerance=tol,
                    dual_feasibility_tolerance=tol,
                )
            except (ValueError, cp.error.SolverError) as exc:
                if isinstance(exc, ValueError) and "invalid solution" not in str(exc):
                    raise
                error = exc  # cvxpy cannot unpack HiGHS's "unknown" status
                continue
            return self.problem.status
        raise SolverError(f"ME-lite LP at mu = {mu:g} 1/h ended undecided: {error}")

    def feasible(self, mu: float) -> bool:
        """Whether some fluxes and amounts meet every constraint at growth rate ``mu``."""
        status = self._run(mu)
        # costs are >= 0 on amounts >= 0 (or an L1 penalty): never unbounded, so HiGHS's
        # "unbounded or infeasible" means infeasible
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE, INFEASIBLE_OR_UNBOUNDED):
            return False
        check_status(status, f"ME-lite LP of {self.model.network.id!r} at mu = {mu:g} 1/h")
        return True

    def values(self) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """``(v, a, attrs)`` of the last feasible solve (attrs: penalty and fitted scale)."""
        attrs: dict[str, float] = {}
        if self.measured:
            attrs["penalty"] = float(self.problem.value) * _UNIT
            fitted = _UNIT * float(self.scale.value) if self.scale is not None else self.fixed
            attrs["scale"] = float(fitted)
        v = self.col * np.asarray(self.v.value, dtype=float)
        return v, _UNIT * np.asarray(self.a.value, dtype=float), attrs


def growth_feasible(model: MELiteModel, mu: float | Sequence[float]) -> bool | np.ndarray:
    """Whether the ME-lite LP has a feasible point at growth rate ``mu`` (1/h).

    A sequence of rates gives a boolean array (one compiled LP, re-solved per rate): a scan.
    """
    lp = _MELiteLP(model)
    if np.ndim(mu) == 0:
        return lp.feasible(_positive("mu", mu, zero=True))
    return np.array([lp.feasible(_positive("mu", m, zero=True)) for m in np.ravel(mu)])


def _measured(
    model: MELiteModel, transcripts: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    if not model.transcription:
        raise NetworkError("transcripts need a model built with transcription=True")
    index = {s: i for i, s in enumerate(model.species)}
    unknown = [g for g in transcripts if f"mRNA_{g}" not in index]
    if unknown:
        raise NetworkError(
            f"transcripts name gene(s) that encode no enzyme of {model.network.id!r}: "
            f"{', '.join(map(repr, unknown[:10]))}"
        )
    levels = np.array([float(x) for x in transcripts.values()])
    bad = ~(np.isfinite(levels) & (levels >= 0))
    if bad.any():
        g = list(transcripts)[int(np.flatnonzero(bad)[0])]
        raise ValueError(f"transcript level of gene {g!r} must be >= 0, not {transcripts[g]}")
    rows = np.array([index[f"mRNA_{g}"] for g in transcripts], dtype=int)
    return rows, levels


def _dataset(
    model: MELiteModel,
    mu: float,
    solution: tuple[np.ndarray, np.ndarray, dict[str, float]],
    **attrs: object,
) -> xr.Dataset:
    """A solution ``(v, a, extra attrs)`` as a Dataset (see :func:`fixed_growth`)."""
    v, a, extra = solution
    G = len(model.genes)
    index = {s: i for i, s in enumerate(model.species)}
    data: dict[str, object] = {
        "flux": ("reaction", v),
        "net_flux": ("original_reaction", model.net_flux(v)),
        "enzyme": ("gene", a[:G]),
        "ribosome": ((), a[index["ribosome"]]),
        "growth_rate": ((), float(mu)),
        "protein_mass": ((), float(a[:G] @ model.mass[:G] / 1000.0)),
    }
    if model.transcription:
        data["rnap"] = ((), a[index["rnap"]])
        data["mrna"] = ("gene", a[G + 2 :])
    objective = "min sum |m_g - s e_g|" if "penalty" in extra else "min macromolecule mass"
    return xr.Dataset(
        data,
        coords={
            "reaction": list(model.network.reactions),
            "original_reaction": list(model.original.reactions),
            "gene": list(model.genes),
        },
        attrs={
            "method": "me_lite",
            "network": model.network.id,
            "biomass": model.biomass,
            "objective": objective,
            **extra,
            **attrs,
        },
    )


def _lp(
    model: MELiteModel, transcripts: Mapping[str, float] | None, scale: float | None
) -> _MELiteLP:
    """The LP whose optimum is reported: parsimonious, or with the transcript penalty."""
    if transcripts is None:
        lp = _MELiteLP(model)
        lp.cost.value = model.mass / 1000.0
        return lp
    if scale is not None:
        scale = _positive("scale", scale, zero=True)
    return _MELiteLP(model, measured=_measured(model, transcripts), scale=scale)


def _infeasible(model: MELiteModel, mu: float) -> InfeasibleError:
    return InfeasibleError(
        f"ME-lite model {model.network.id!r} is infeasible at growth rate mu = {mu:g} 1/h: no "
        f"fluxes and enzyme, ribosome and mRNA amounts meet S v = 0, the bounds, "
        f"{model.biomass!r} = mu, dilution and the machinery capacities"
    )


def fixed_growth(
    model: MELiteModel,
    mu: float,
    *,
    transcripts: Mapping[str, float] | None = None,
    scale: float | None = None,
) -> xr.Dataset:
    """Solve the ME-lite LP at a fixed growth rate ``mu`` (1/h).

    Without ``transcripts`` the parsimonious point is returned: the least total mass of
    enzymes, machines and mRNAs (``min sum_i mass_i a_i``). With ``transcripts={gene: e_g}``
    (any non-negative units, e.g. TPM) the L1 penalty ``sum_g |m_g - s e_g|`` is minimised
    instead, with ``s`` (mmol/gDW per unit) given by ``scale`` or, if ``None``, fitted as an LP
    variable ``s >= 0``. Raises :class:`InfeasibleError` naming ``mu`` if infeasible.

    Returns
    -------
    xarray.Dataset
        ``flux`` (reaction, expanded), ``net_flux`` (original_reaction), ``enzyme`` and ``mrna``
        (gene, mmol/gDW), ``ribosome``, ``rnap`` (mmol/gDW), ``growth_rate`` (1/h),
        ``protein_mass`` (g/gDW of modelled enzymes); attrs ``penalty`` and ``scale`` with
        ``transcripts``.
    """
    mu = _positive("mu", mu, zero=True)
    lp = _lp(model, transcripts, scale)
    if not lp.feasible(mu):
        raise _infeasible(model, mu)
    return _dataset(model, mu, lp.values())


def max_growth(
    model: MELiteModel,
    *,
    tol: float = 1e-8,
    transcripts: Mapping[str, float] | None = None,
    scale: float | None = None,
) -> xr.Dataset:
    """The largest feasible growth rate, by bisection on ``mu`` over LP feasibility.

    The bracket starts at ``[0, mu_hi]`` with ``mu_hi`` the smaller of the plain FBA optimum of
    the biomass reaction (ME constraints only remove points) and the ribosome self-replication
    limit ``3600 k_ribo / L_R`` (a ribosome must at least make its own protein); it is halved
    until narrower than ``tol`` (1/h). Each step solves the LP that :func:`fixed_growth` would
    (``transcripts`` and ``scale`` passed on), so the point returned is that LP's optimum at the
    last feasible ``mu``: near the limit, feasibility is decided to the solver's tolerance
    (about 1e-7 relative), and one LP decides both.

    Raises
    ------
    InfeasibleError
        If even ``mu = 0`` is infeasible (e.g. the maintenance demand cannot be met).
    """
    tol = _positive("tol", tol)
    lp = _lp(model, transcripts, scale)
    if not lp.feasible(0.0):
        raise _infeasible(model, 0.0)
    best = lp.values()
    p = model.parameters
    hi = SECONDS_PER_HOUR * p["ribosome_rate"] / p["ribosome_protein"]
    orig = model.original
    flux = cp.Variable(orig.n_reactions, bounds=[orig.lb.copy(), orig.ub.copy()])
    top = cp.Problem(cp.Maximize(flux[orig.reaction_index[model.biomass]]), [orig.S @ flux == 0])
    top.solve(solver=cp.HIGHS)
    if top.status not in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
        check_status(top.status, f"FBA bound of the growth rate of {orig.id!r}")
        hi = min(hi, float(top.value))
    lo, steps = 0.0, 0
    if lp.feasible(hi):
        lo, best = hi, lp.values()
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if lp.feasible(mid):
            lo, best = mid, lp.values()
        else:
            hi = mid
        steps += 1
    return _dataset(model, lo, best, method="me_lite.max_growth", bisection_steps=steps, tol=tol)
