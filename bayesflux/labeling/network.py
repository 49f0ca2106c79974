"""Atom-mapped reaction networks for 13C labelling, written the way 13C users write them.

A reaction is a string such as ``"G6P (abcdef) -> Ru5P (bcdef) + CO2 (a)"``; ``<->`` (or ``<=>``)
makes it reversible, described by a net flux ``v = v+ - v-`` and an exchange flux
``v_xch = min(v+, v-)`` (Wiechert & de Graaf 1997), so ``v+ = v_xch + max(v, 0)`` and
``v- = v_xch + max(-v, 0)``. A metabolite written without atoms (``ATP``, ``2 NADH``) takes part
in the stoichiometry only if it is balanced elsewhere; it is never traced. Symmetric molecules
(succinate, fumarate) are produced half in the written atom order and half reversed.

Metabolites never produced are *inputs* (their labelling comes from the tracers); all other
traced metabolites are balanced pools whose labelling is simulated. Metabolites never consumed
are *outputs* (excreted): their labelling is simulated but their mass balance is not imposed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from bayesflux.errors import NetworkError
from bayesflux.network import Network

__all__ = [
    "Occurrence",
    "AtomReaction",
    "LabelingNetwork",
    "FluxSpace",
    "ProductionTerm",
    "parse_reaction",
    "production_terms",
]

_ARROWS = ("<->", "<=>", "->", "=>")
_TERM = re.compile(
    r"^\s*(?:(\d+(?:\.\d*)?|\.\d+)\s+)?([A-Za-z_][\w.\-\[\]]*)\s*(?:\(\s*([^)]*)\s*\))?\s*$"
)


@dataclass(frozen=True)
class Occurrence:
    """One metabolite on one side of a reaction: ``coefficient metabolite (atoms)``."""

    metabolite: str
    atoms: str  # one letter per traced atom; "" when not traced
    coefficient: float = 1.0


@dataclass(frozen=True)
class AtomReaction:
    """A reaction with its atom transitions (``substrates -> products``)."""

    id: str
    substrates: tuple[Occurrence, ...]
    products: tuple[Occurrence, ...]
    reversible: bool

    def traced(self, side: str) -> tuple[Occurrence, ...]:
        """The occurrences on ``side`` ("substrates" or "products") that carry atoms."""
        return tuple(o for o in getattr(self, side) if o.atoms)


def _parse_side(text: str, rid: str) -> tuple[Occurrence, ...]:
    text = text.strip()
    if not text:
        return ()
    out = []
    for term in text.split(" + "):
        m = _TERM.match(term)
        if m is None:
            raise NetworkError(f"reaction {rid!r}: cannot parse term {term.strip()!r}")
        coef, met, atoms = m.groups()
        atoms = (atoms or "").replace(" ", "").replace("#", "")
        if atoms and not atoms.isalpha():
            raise NetworkError(f"reaction {rid!r}: atoms of {met!r} must be letters, got {atoms!r}")
        if atoms and coef is not None and float(coef) != 1.0:
            raise NetworkError(
                f"reaction {rid!r}: write a traced metabolite {met!r} once per molecule "
                f"instead of the coefficient {coef}"
            )
        out.append(Occurrence(met, atoms, float(coef) if coef else 1.0))
    return tuple(out)


def parse_reaction(rid: str, text: str) -> AtomReaction:
    """Parse ``"A (abc) + B (de) -> C (abcde)"`` (``<->`` for reversible) into an AtomReaction.

    Raises
    ------
    NetworkError
        For a missing arrow, unparsable terms, a letter used twice on one side, or atoms that
        are not balanced between both traced sides (all naming the reaction).
    """
    for arrow in _ARROWS:
        if arrow in text:
            left, right = text.split(arrow, 1)
            break
    else:
        raise NetworkError(f"reaction {rid!r}: no arrow (->, <->) in {text!r}")
    subs, prods = _parse_side(left, rid), _parse_side(right, rid)
    rxn = AtomReaction(rid, subs, prods, arrow in ("<->", "<=>"))
    sub_letters = "".join(o.atoms for o in rxn.traced("substrates"))
    prod_letters = "".join(o.atoms for o in rxn.traced("products"))
    for side, letters in (("substrates", sub_letters), ("products", prod_letters)):
        dup = sorted({c for c in letters if letters.count(c) > 1})
        if dup:
            raise NetworkError(f"reaction {rid!r}: atom letters {dup} used twice among {side}")
    if prod_letters and not sub_letters:
        raise NetworkError(f"reaction {rid!r}: products carry atoms but no substrate does")
    if sub_letters and prod_letters and sorted(sub_letters) != sorted(prod_letters):
        missing = sorted(set(sub_letters) - set(prod_letters))
        extra = sorted(set(prod_letters) - set(sub_letters))
        raise NetworkError(
            f"reaction {rid!r}: unbalanced atoms (substrate letters not in products: {missing}; "
            f"product letters not in substrates: {extra})"
        )
    if rxn.reversible and (not sub_letters or not prod_letters) and (sub_letters or prod_letters):
        raise NetworkError(
            f"reaction {rid!r}: a reversible reaction must trace atoms on both sides"
        )
    return rxn


@dataclass(frozen=True)
class LabelingNetwork:
    """An atom-mapped network with its flux parameterisation.

    Build it with :meth:`from_strings`. Gross fluxes ``u`` (the simulators' input) stack the
    forward fluxes of all reactions, then the backward fluxes of the reversible ones.
    """

    reactions: tuple[AtomReaction, ...]
    symmetric: frozenset[str] = frozenset()
    inputs: tuple[str, ...] = ()
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    atom_counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_strings(
        cls,
        reactions: Mapping[str, str],
        *,
        symmetric: Sequence[str] = (),
        bounds: Mapping[str, tuple[float, float]] | None = None,
        inputs: Sequence[str] | None = None,
    ) -> LabelingNetwork:
        """Parse ``{reaction_id: "A (ab) -> B (ab)"}``; see the module docstring for the syntax.

        ``bounds`` are net-flux bounds (default ``(0, 1000)`` for irreversible and
        ``(-1000, 1000)`` for reversible reactions). ``inputs`` overrides the metabolites whose
        labelling is given (default: traced metabolites that no reaction produces).
        """
        rxns = tuple(parse_reaction(rid, text) for rid, text in reactions.items())
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        for r in rxns:
            for o in (*r.substrates, *r.products):
                if not o.atoms:
                    continue
                n = counts.setdefault(o.metabolite, len(o.atoms))
                first.setdefault(o.metabolite, r.id)
                if n != len(o.atoms):
                    raise NetworkError(
                        f"reaction {r.id!r}: metabolite {o.metabolite!r} has {len(o.atoms)} "
                        f"atoms ({o.atoms}) but {n} in reaction {first[o.metabolite]!r}"
                    )
        produced = {o.metabolite for r in rxns for o in r.traced("products")}
        produced |= {o.metabolite for r in rxns if r.reversible for o in r.traced("substrates")}
        if inputs is None:
            inputs = tuple(m for m in counts if m not in produced)
        for m in list(symmetric) + list(inputs):
            if m not in counts:
                raise NetworkError(f"unknown traced metabolite {m!r} (no reaction maps its atoms)")
        for r in rxns:
            for o in r.traced("products") + (r.traced("substrates") if r.reversible else ()):
                if o.metabolite in inputs:
                    raise NetworkError(
                        f"reaction {r.id!r} produces the input metabolite {o.metabolite!r}"
                    )
        ids = [r.id for r in rxns]
        if len(set(ids)) != len(ids):
            raise NetworkError(
                f"duplicate reaction ids: {sorted({i for i in ids if ids.count(i) > 1})}"
            )
        full = {r.id: ((-1000.0, 1000.0) if r.reversible else (0.0, 1000.0)) for r in rxns}
        for rid, b in (bounds or {}).items():
            if rid not in full:
                raise NetworkError(f"bounds given for unknown reaction {rid!r}")
            full[rid] = (float(b[0]), float(b[1]))
        return cls(rxns, frozenset(symmetric), tuple(inputs), full, counts)

    # ----------------------------------------------------------------- views
    @property
    def reaction_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.reactions)

    @property
    def reversible_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.reactions if r.reversible)

    @property
    def n_gross(self) -> int:
        return len(self.reactions) + len(self.reversible_ids)

    @property
    def balanced(self) -> tuple[str, ...]:
        """Metabolites whose mass balance ``S v = 0`` holds: consumed and produced, not inputs."""
        prod: set[str] = set()
        cons: set[str] = set()
        for r in self.reactions:
            for o in r.products:
                prod.add(o.metabolite)
                (cons.add(o.metabolite) if r.reversible else None)
            for o in r.substrates:
                cons.add(o.metabolite)
                (prod.add(o.metabolite) if r.reversible else None)
        mets = dict.fromkeys(
            o.metabolite for r in self.reactions for o in (*r.substrates, *r.products)
        )
        return tuple(m for m in mets if m in prod and m in cons and m not in self.inputs)

    @property
    def simulated(self) -> tuple[str, ...]:
        """Traced metabolites whose labelling is simulated (all traced but the inputs)."""
        return tuple(m for m in self.atom_counts if m not in self.inputs)

    def stoichiometry(self) -> Network:
        """The stoichiometric :class:`bayesflux.network.Network` of the balanced metabolites."""
        bal = set(self.balanced)
        st: dict[str, dict[str, float]] = {}
        for r in self.reactions:
            d: dict[str, float] = {}
            for o in r.substrates:
                d[o.metabolite] = d.get(o.metabolite, 0.0) - o.coefficient
            for o in r.products:
                d[o.metabolite] = d.get(o.metabolite, 0.0) + o.coefficient
            st[r.id] = {m: c for m, c in d.items() if m in bal and c != 0.0}
        return Network.from_stoichiometry(
            st, metabolites=list(self.balanced), bounds=dict(self.bounds), id="labeling"
        )

    def gross_fluxes(self, net: np.ndarray, xch: np.ndarray):
        """Gross fluxes ``u = [v+ (all reactions), v- (reversible)]`` from net and exchange fluxes.

        Works on numpy or jax arrays (``xch`` has one entry per reversible reaction).
        """
        import jax.numpy as jnp

        rev = np.array([i for i, r in enumerate(self.reactions) if r.reversible], dtype=int)
        pos = jnp.maximum(net, 0.0)
        fwd = pos.at[..., rev].add(xch) if rev.size else pos
        bwd = xch + jnp.maximum(-net[..., rev], 0.0)
        return jnp.concatenate([fwd, bwd], axis=-1)


def equality_rows(
    ids: Sequence[str],
    fixed: Mapping[str, float] | None,
    equalities: Sequence[tuple[Mapping[str, float], float]],
) -> tuple[np.ndarray, np.ndarray]:
    """``(E, e)`` with one row ``E_k · v = e_k`` over the fluxes ``ids`` per fixed flux
    (``v_r = value``) and per equality ``({r: c_r}, value)``; an unknown reaction raises."""
    index = {r: i for i, r in enumerate(ids)}
    rows = [({r: 1.0}, v) for r, v in (fixed or {}).items()] + list(equalities)
    E = np.zeros((len(rows), len(ids)))
    for k, (coefs, _) in enumerate(rows):
        for r, c in coefs.items():
            if r not in index:
                raise NetworkError(f"unknown reaction {r!r} in a fixed flux or equality")
            E[k, index[r]] += c
    return E, np.array([float(v) for _, v in rows])


@dataclass(frozen=True)
class FluxSpace:
    """Net fluxes ``v = v0 + K z`` over free net fluxes ``z`` solving ``S v = 0``, ``v_fix = c``.

    The free reactions are the non-pivot columns of a column-pivoted QR of the constraint matrix
    (or the ones a user asks for, when they are a valid choice).
    """

    reaction_ids: tuple[str, ...]
    free: tuple[str, ...]
    v0: np.ndarray
    K: np.ndarray
    lb: np.ndarray
    ub: np.ndarray

    @classmethod
    def build(
        cls,
        network: LabelingNetwork,
        *,
        fixed: Mapping[str, float] | None = None,
        equalities: Sequence[tuple[Mapping[str, float], float]] = (),
        free: Sequence[str] | None = None,
    ) -> FluxSpace:
        """Net fluxes of ``network`` under ``S v = 0``, ``v_r = fixed[r]`` and
        ``sum_r c_r v_r = value`` for each ``({r: c_r}, value)`` in ``equalities``."""
        stoich = network.stoichiometry()
        ids = network.reaction_ids
        S = stoich.S.toarray() if hasattr(stoich.S, "toarray") else np.asarray(stoich.S)
        E, e = equality_rows(ids, fixed, equalities)
        lb = np.array([network.bounds[r][0] for r in ids])
        ub = np.array([network.bounds[r][1] for r in ids])
        return cls.from_constraints(
            ids, np.vstack([S, E]), np.concatenate([np.zeros(S.shape[0]), e]), lb, ub, free=free
        )

    @classmethod
    def from_constraints(
        cls,
        ids: Sequence[str],
        A: np.ndarray,
        b: np.ndarray,
        lb: np.ndarray,
        ub: np.ndarray,
        *,
        free: Sequence[str] | None = None,
    ) -> FluxSpace:
        """``{v : A v = b, lb <= v <= ub}`` as ``v0 + K z`` over free fluxes ``z``."""
        ids = tuple(ids)
        index = {r: i for i, r in enumerate(ids)}
        for r in free or ():
            if r not in index:
                raise NetworkError(f"unknown reaction {r!r} in the free fluxes")
        n = len(ids)
        A = np.asarray(A, float)
        A = A.reshape(A.shape[0] if A.ndim == 2 else 0, n)
        b = np.asarray(b, float).reshape(-1)
        preferred = [index[r] for r in (free or ())]
        order = [j for j in range(n) if j not in preferred] + preferred
        if A.shape[0]:
            _, R, piv = scipy.linalg.qr(A[:, order], pivoting=True, mode="economic")
            diag = np.abs(np.diag(R))
            rank = int(np.sum(diag > 1e-9 * max(1.0, diag.max(initial=0.0))))
        else:
            piv, rank = np.zeros(0, int), 0
        dep = sorted(order[p] for p in piv[:rank])
        fr = [j for j in range(n) if j not in dep]
        if free is not None and not set(preferred) <= set(fr):
            bad = sorted(ids[j] for j in set(preferred) - set(fr))
            raise NetworkError(
                f"reactions {bad} cannot all be free: they are determined by the others"
            )
        Ad, Af = A[:, dep], A[:, fr]
        Adp = np.linalg.pinv(Ad) if dep else np.zeros((0, A.shape[0]))
        if dep and np.linalg.norm(Ad @ (Adp @ b) - b) > 1e-8 * max(1.0, np.linalg.norm(b)):
            raise NetworkError(
                "the fixed fluxes and equalities are inconsistent with the mass balances"
            )
        v0 = np.zeros(n)
        v0[dep] = Adp @ b
        K = np.zeros((n, len(fr)))
        K[fr, np.arange(len(fr))] = 1.0
        if dep:
            K[np.ix_(dep, np.arange(len(fr)))] = -Adp @ Af
        K[np.abs(K) < 1e-12] = 0.0
        v0[np.abs(v0) < 1e-12] = 0.0
        return cls(
            ids, tuple(ids[j] for j in fr), v0, K, np.asarray(lb, float), np.asarray(ub, float)
        )

    @property
    def n_free(self) -> int:
        return self.K.shape[1]

    def net(self, z):
        """Net fluxes of all reactions from the free net fluxes ``z`` (numpy or jax)."""
        return self.v0 + z @ self.K.T

    def free_values(self, net: np.ndarray) -> np.ndarray:
        """The free net fluxes ``z`` of a full net flux vector."""
        idx = [self.reaction_ids.index(r) for r in self.free]
        return np.asarray(net)[..., idx]


@dataclass(frozen=True)
class ProductionTerm:
    """Gross flux ``u[flux]`` times ``weight`` makes one molecule of ``metabolite`` whose atom
    ``p`` is the atom written ``atoms[p]`` in one of the ``sources`` ``(metabolite, atoms)``."""

    flux: int
    weight: float
    metabolite: str
    atoms: str
    sources: tuple[tuple[str, str], ...]


def production_terms(network: LabelingNetwork) -> tuple[ProductionTerm, ...]:
    """All ways a traced, simulated metabolite is made: per gross flux and product molecule.

    Backward fluxes of reversible reactions swap the sides; a symmetric product gives two terms
    of weight 1/2, with the written and the reversed atom order.
    """
    terms = []
    n = len(network.reactions)
    back = {r.id: n + k for k, r in enumerate(r for r in network.reactions if r.reversible)}
    for j, r in enumerate(network.reactions):
        directions = [(j, r.traced("substrates"), r.traced("products"))]
        if r.reversible:
            directions.append((back[r.id], r.traced("products"), r.traced("substrates")))
        for flux, subs, prods in directions:
            sources = tuple((o.metabolite, o.atoms) for o in subs)
            for o in prods:
                if o.metabolite in network.inputs:
                    continue
                if o.metabolite in network.symmetric:
                    terms.append(ProductionTerm(flux, 0.5, o.metabolite, o.atoms, sources))
                    terms.append(ProductionTerm(flux, 0.5, o.metabolite, o.atoms[::-1], sources))
                else:
                    terms.append(ProductionTerm(flux, 1.0, o.metabolite, o.atoms, sources))
    return tuple(terms)
