"""Steady-state isotopomer (fluxomer) propagation (Srour, Young & Eldar 2011; seed 001).

A fluxomer is the rate at which a reaction carries one labelling pattern of its atoms: the flux
``u_r`` times the product of the isotopomer fractions of its substrates. A simulated pool's
isotopomer fractions are its incoming fluxomers over its total production, which gives the
fixed-point equation ``x = F(x, u) = (sum_r w_r u_r M_r (x_s1 (x) x_s2 ...)) / (sum_r w_r u_r)``
where ``M_r`` sends a joint substrate pattern to the product pattern the atom map makes
(:meth:`FluxomerSimulator.propagate`).

The fixed point is solved sparsely, never as one dense system. In cumulative coordinates
(cumomers, Wiechert et al. 1999: ``c_m(S)`` = fraction of ``m`` labelled at least at the atoms
``S``, ``c = T x`` with ``T`` the 0/1 superset-sum matrix) the fluxomer balances become a cascade
over the weight ``|S|``: ``d_m c_m(S) = sum_r w_r u_r prod_k c_{s_k}(S_k)`` where ``S_k`` are the
atoms of ``S`` taken from substrate ``k``. A term with one substrate of the same weight couples
the unknowns of level ``|S|``; the others are products of lower-weight cumomers. Each level is
thus one sparse linear system ``A_w(u) c_w = b_w(u, c_{<w})``, ``A_w = diag(d) - N_w`` a
nonsingular M-matrix. It is solved as a sparse direct solve in block triangular form (Duff &
Reid 1978, as in KLU): the strongly connected components of ``N_w``'s graph, in waves that use
only earlier waves; a one-cumomer component is a division, the larger ones (cycles of
reversible reactions) one batched dense LU per wave, and a component of a few cumomers that
uses only one block joins it (still block triangular; one wave fewer, for the MIDs of
:meth:`FluxomerSimulator.simulate`, where the number of waves sets the run time on a CPU).
Only the cumomers a request needs are
traced (the subsets of the measured atoms, closed under the atom maps); MIDs and isotopomers
are linear read-outs of the cumomers (the inverse transform
``x_T = sum_{S >= T} (-1)^{|S|-|T|} c(S)``).

Everything is a fixed sequence of JAX gathers, segment sums and small batched solves built
once per model, so the simulator is jit-able and vmap-able, and its derivatives are those of
direct linear solves (implicit: ``dc = A^{-1}(db - dA c)`` per block, with the block inverse
formed once for all tangents), never of an iteration.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import comb

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from bayesflux.errors import NetworkError
from bayesflux.labeling.emu import EMU
from bayesflux.labeling.network import LabelingNetwork, ProductionTerm, production_terms
from bayesflux.labeling.tracers import Experiment, isotopomer_distribution

__all__ = ["FluxomerSimulator"]

Cumomer = tuple[str, int]  # (metabolite, bit mask of labelled atoms; bit p = atom p)


def _popcount(mask: int) -> int:
    return bin(mask).count("1")


def _subsets(mask: int) -> Iterable[int]:
    """Every subset of the bit mask ``mask``, itself and 0 included."""
    s = mask
    while True:
        yield s
        if s == 0:
            return
        s = (s - 1) & mask


def _source_masks(term: ProductionTerm, mask: int) -> list[tuple[str, int]]:
    """The substrate cumomers ``(metabolite, S_k)`` whose atoms the product atoms ``mask`` of
    ``term`` come from (one per substrate molecule that gives at least one of them)."""
    groups: dict[int, int] = {}
    for p, letter in enumerate(term.atoms):
        if not (mask >> p) & 1:
            continue
        for k, (_, atoms) in enumerate(term.sources):
            q = atoms.find(letter)
            if q >= 0:
                groups[k] = groups.get(k, 0) | (1 << q)
                break
        else:
            raise NetworkError(
                f"atom {letter!r} of {term.metabolite!r} comes from no substrate of its reaction"
            )
    return [(term.sources[k][0], m) for k, m in sorted(groups.items())]


@dataclass(frozen=True, eq=False)
class _Wave:
    """Unknowns ``z[start:start + size]`` of one weight level whose strongly connected blocks
    use only earlier waves: ``n_single`` one-cumomer blocks, then the larger blocks' members.

    Every sum is a padded gather-sum (fused by XLA, no scatter); ``G = [g, 0]`` and ``z[0] = 1``
    absorb the padding. Row ``i``: ``b_i = sum_s G[b_term[i, s]] prod_f z[b_fac[i, s, f]]``
    (inflow from lower levels, inputs and earlier waves), ``d_i = sum_s d_sign[i, s]
    G[d_term[i, s]]`` (production less self-inflow). Blocks, padded to one size ``k``:
    ``block_pos`` ``(n_blocks, k)`` wave rows, ``block_real`` 1 there and 0 at padding (an
    identity row); ``M = diag(d) - sum_s G[n_term[..., s]]``; ``members`` takes the block
    unknowns, in wave order, from the flattened solution."""

    start: int
    size: int
    n_single: int
    b_term: np.ndarray
    b_fac: np.ndarray
    d_term: np.ndarray
    d_sign: np.ndarray
    block_pos: np.ndarray
    block_real: np.ndarray
    n_term: np.ndarray
    members: np.ndarray


def _depths(uses: Sequence[set[int]]) -> np.ndarray:
    """Depth of each node of a DAG given by ``uses`` (``0`` for nodes that use none)."""
    depth = np.full(len(uses), -1)
    for c in range(len(uses)):
        stack = [c]
        while stack:
            x = stack[-1]
            if depth[x] >= 0:
                stack.pop()
                continue
            pending = [y for y in uses[x] if depth[y] < 0]
            if pending:
                stack.extend(pending)
            else:
                depth[x] = max((depth[y] + 1 for y in uses[x]), default=0)
                stack.pop()
    return depth


def _blocks_by_depth(
    n: int, rows: np.ndarray, cols: np.ndarray, *, small: int = 3, cap: int = 48
) -> list[list[list[int]]]:
    """Blocks of the graph ``row -> col`` (``row``'s equation uses ``col``) on ``range(n)``,
    grouped by depth in their DAG: a block uses only blocks of smaller depth (block triangular
    form, Duff & Reid 1978). Blocks are the strongly connected components, except that a
    component of at most ``small`` nodes that uses exactly one block joins it (up to ``cap``
    nodes; the block stays block triangular, one fewer wave). Singletons first in each group."""
    graph = scipy.sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    n_comp, label = scipy.sparse.csgraph.connected_components(
        graph, directed=True, connection="strong"
    )
    uses: list[set[int]] = [set() for _ in range(n_comp)]
    for a, b in zip(label[rows], label[cols], strict=True):
        if a != b:
            uses[a].add(b)
    members: list[list[int]] = [[] for _ in range(n_comp)]
    for i, c in enumerate(label):
        members[c].append(i)
    root, size = list(range(n_comp)), [len(m) for m in members]

    def find(c: int) -> int:
        while root[c] != c:
            c = root[c]
        return c

    for c in np.argsort(_depths(uses), kind="stable"):
        deps = {find(y) for y in uses[c]}
        if len(members[c]) <= small and len(deps) == 1:
            x = deps.pop()
            if size[x] + size[c] <= cap:
                root[c], size[x] = x, size[x] + size[c]
    groups = sorted({find(c) for c in range(n_comp)})
    number = {g: k for k, g in enumerate(groups)}
    block: list[list[int]] = [[] for _ in groups]
    block_uses: list[set[int]] = [set() for _ in groups]
    for c in range(n_comp):
        k = number[find(c)]
        block[k] += members[c]
        block_uses[k] |= {number[find(y)] for y in uses[c]} - {k}
    depth = _depths(block_uses)
    return [
        sorted(
            (sorted(block[c]) for c in np.flatnonzero(depth == k)), key=lambda m: (len(m) > 1, m)
        )
        for k in range(depth.max() + 1 if groups else 0)
    ]


def _padded(rows: Sequence[Sequence], fill: object, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Ragged ``rows`` of entries of shape ``shape`` -> ``(len(rows), max length, *shape)``,
    padded with ``fill``."""
    k = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(k, 1), *shape), fill)
    for i, r in enumerate(rows):
        if r:
            out[i, : len(r)] = r
    return out


_IN_BOUNDS = "promise_in_bounds"  # every index below is built in range: no clamping ops


def _take(x: jax.Array, index: np.ndarray) -> jax.Array:
    """``x[index]`` along the first axis for a static in-range integer array ``index``."""
    return x.at[np.asarray(index, np.uint32)].get(mode=_IN_BOUNDS)  # unsigned: no wrap-around


def _sum_at(values: jax.Array, rows: np.ndarray, n: int) -> jax.Array:
    """``out[rows[k]] += values[k]`` into ``n`` zeros (a segment sum)."""
    return jnp.zeros(n, values.dtype).at[np.asarray(rows, np.uint32)].add(values, mode=_IN_BOUNDS)


def _ints(values: Sequence) -> np.ndarray:
    return np.array(values, dtype=int)


def _matvec(M: jax.Array, v: jax.Array) -> jax.Array:
    return jnp.einsum("bij,bj->bi", M, v)


def _inverse(M: jax.Array) -> jax.Array:
    """``M^{-1}`` for a batch of blocks ``(n, k, k)`` by Gauss-Jordan on ``[M | I]`` without
    pivoting, one pivot per loop step: the blocks are nonsingular M-matrices, diagonally
    dominant by rows, so every pivot is positive and the growth bounded (Wilkinson 1961). (On
    CPU, LAPACK-backed ``jnp.linalg.inv`` takes milliseconds for ``k`` near 46.)"""
    k = M.shape[2]
    eye = jnp.broadcast_to(jnp.eye(k, dtype=M.dtype), M.shape)

    def step(i: int, A: jax.Array) -> jax.Array:
        row = A[:, i, :] / A[:, i, i][:, None]
        return (A - A[:, :, i][:, :, None] * row[:, None, :]).at[:, i, :].set(row)

    return jax.lax.fori_loop(0, k, step, jnp.concatenate([M, eye], axis=2))[:, :, k:]


@jax.custom_jvp
def _block_solve(M: jax.Array, r: jax.Array) -> jax.Array:
    """``x = M^{-1} r`` for a batch of blocks ``M`` ``(n, k, k)`` (LU, ``jnp.linalg.solve``)."""
    return jnp.linalg.solve(M, r[:, :, None])[:, :, 0]


@_block_solve.defjvp
def _block_solve_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    """Implicit derivative ``dx = M^{-1}(dr - dM x)`` with ``M^{-1}`` formed once, so many
    tangents (``jax.jacfwd``) cost one batched product, not one solve each; linear in the
    tangents, so reverse mode transposes it."""
    M, r = primals
    dM, dr = tangents
    inv = _inverse(M)
    x = _matvec(inv, r)
    return x, _matvec(inv, dr - _matvec(dM, x))


class _Cascade:
    """Cumomer cascade of the cumomers ``wanted`` need, closed under the atom maps.

    ``input_offset[m] = (first index in the flat input isotopomers, atom count)``;
    ``n_terms`` production terms (``G[n_terms] = 0`` pads); ``merge``: the ``small`` of
    :func:`_blocks_by_depth` (0: strongly connected components only).
    ``z = [1, input cumomers (inputs), solved cumomers level by level, wave by wave]``;
    ``index[c]`` is the position of cumomer ``c`` in ``z``.
    """

    def __init__(
        self,
        terms: Sequence[ProductionTerm],
        by_met: dict[str, list[int]],
        input_offset: dict[str, tuple[int, int]],
        wanted: Iterable[Cumomer],
        *,
        merge: int = 3,
    ) -> None:
        equations: dict[Cumomer, list[tuple[int, list[Cumomer]]]] = {}
        inputs: dict[Cumomer, None] = {}
        stack = [c for c in wanted if c[1]]
        while stack:
            c = stack.pop()
            if c in equations or c in inputs:
                continue
            if c[0] in input_offset:
                inputs[c] = None
                continue
            rows = []
            for t in by_met[c[0]]:
                src = _source_masks(terms[t], c[1])
                rows.append((t, src))
                stack.extend(src)
            equations[c] = rows
        self.n_terms = len(terms)
        self.inputs = tuple(sorted(inputs))
        pairs = [
            (k, input_offset[m][0] + i)
            for k, (m, s) in enumerate(self.inputs)
            for i in range(2 ** input_offset[m][1])
            if i & s == s
        ]
        self.in_rows, self.in_cols = np.array(pairs, dtype=int).reshape(-1, 2).T
        self.index: dict[Cumomer, int] = {c: 1 + i for i, c in enumerate(self.inputs)}
        self.n_factors = max((len(s) for eq in equations.values() for _, s in eq), default=1)
        pos = 1 + len(self.inputs)
        self.level_sizes: list[int] = []
        self.waves: list[_Wave] = []
        for w in sorted({_popcount(c[1]) for c in equations}):
            unknown = sorted(c for c in equations if _popcount(c[1]) == w)
            self._level(unknown, equations, pos, merge)
            self.level_sizes.append(len(unknown))
            pos += len(unknown)
        self.n_z = pos
        self.n_solved = pos - 1 - len(self.inputs)

    def _level(self, unknown: list[Cumomer], equations: dict, start: int, merge: int) -> None:
        """Plan the waves of one level; its unknowns, in wave order, get ``z`` indices from
        ``start``."""
        local = {c: i for i, c in enumerate(unknown)}

        def coupled(src: list[Cumomer]) -> bool:  # one substrate cumomer of the same weight
            return len(src) == 1 and src[0] in local

        edges = [
            (local[c], local[src[0]])
            for c in unknown
            for _, src in equations[c]
            if coupled(src) and src[0] != c
        ]
        r, k = np.array(edges, dtype=int).reshape(-1, 2).T
        waves = _blocks_by_depth(len(unknown), r, k, small=merge)
        index = self.index
        for p, i in enumerate(i for wave in waves for block in wave for i in block):
            index[unknown[i]] = start + p
        pad_fac = (0,) * self.n_factors
        for wave in waves:
            first = index[unknown[wave[0][0]]]
            blocks = [b for b in wave if len(b) > 1]
            where = {unknown[i]: (nb, q) for nb, b in enumerate(blocks) for q, i in enumerate(b)}
            k = max((len(b) for b in blocks), default=0)
            b_rows, d_rows = [], []
            n_rows: list[list[list[int]]] = [[[] for _ in range(k * k)] for _ in blocks]
            for c in (unknown[i] for b in wave for i in b):
                b_row, d_row = [], [(t, 1.0) for t, _ in equations[c]]
                for t, src in equations[c]:
                    if coupled(src) and src[0] == c:  # made from itself: off both sides
                        d_row.append((t, -1.0))
                    elif coupled(src) and c in where and src[0] in where:  # inside the block
                        nb, q = where[c]
                        n_rows[nb][q * k + where[src[0]][1]].append(t)
                    else:  # inputs, lower levels, earlier waves
                        fac = [index[s] for s in src]
                        b_row.append((t, (*fac, *pad_fac[len(fac) :])))
                b_rows.append(b_row)
                d_rows.append(d_row)
            block_pos = np.full((len(blocks), k), -1, dtype=int)
            for c, (nb, q) in where.items():
                block_pos[nb, q] = index[c] - first
            n_flat = [cell for blk in n_rows for cell in blk]
            self.waves.append(
                _Wave(
                    start=first,
                    size=len(b_rows),
                    n_single=len(b_rows) - len(where),
                    b_term=_padded([[t for t, _ in r] for r in b_rows], self.n_terms),
                    b_fac=_padded([[f for _, f in r] for r in b_rows], 0, (self.n_factors,)),
                    d_term=_padded([[t for t, _ in r] for r in d_rows], self.n_terms),
                    d_sign=_padded([[s for _, s in r] for r in d_rows], 0.0),
                    block_pos=np.maximum(block_pos, 0),
                    block_real=(block_pos >= 0) * 1.0,
                    n_term=_padded(n_flat, self.n_terms).reshape(len(blocks), k, k, -1)
                    if blocks
                    else np.zeros((0, 0, 0, 1), dtype=int),
                    members=_ints(
                        [nb * k + q for nb, b in enumerate(blocks) for q in range(len(b))]
                    ),
                )
            )

    def input_cumomers(self, x_in: jax.Array) -> jax.Array:
        """Input cumomers ``c(S) = sum_{i >= S} x_i`` from the flat input isotopomers."""
        return _sum_at(_take(x_in, self.in_cols), self.in_rows, len(self.inputs))

    def solve(self, g: jax.Array, x_in: jax.Array) -> jax.Array:
        """``z`` at production-term coefficients ``g = w * u[flux]`` and input isotopomers.

        Wave by wave: ``b`` and ``d`` are fused gather-sums, the one-cumomer blocks a division,
        the larger blocks one batched LU solve (:func:`_block_solve`, differentiated
        implicitly, never through an iteration)."""
        dtype = g.dtype
        G = jnp.concatenate([g, jnp.zeros(1, dtype)])
        z = jnp.concatenate(
            [jnp.ones(1, dtype), self.input_cumomers(x_in), jnp.zeros(self.n_solved, dtype)]
        )
        for wv in self.waves:
            b = jnp.sum(_take(G, wv.b_term) * jnp.prod(_take(z, wv.b_fac), axis=2), axis=1)
            d = jnp.sum(wv.d_sign * _take(G, wv.d_term), axis=1)
            parts = [b[: wv.n_single] / d[: wv.n_single]] if wv.n_single else []
            if wv.block_pos.size:
                pos, real = wv.block_pos, wv.block_real
                diag = (_take(d, pos) * real + (1.0 - real))[:, :, None] * np.eye(pos.shape[1])
                M = diag - jnp.sum(_take(G, wv.n_term), axis=3)
                x = _block_solve(M, _take(b, pos) * real)
                parts.append(_take(x.ravel(), wv.members))
            x = jnp.concatenate(parts) if len(parts) > 1 else parts[0]
            z = z.at[wv.start : wv.start + wv.size].set(x)
        return z


class FluxomerSimulator:
    """Full isotopomer (fluxomer) model of every simulated pool of ``network``.

    Parameters
    ----------
    network
        The atom-mapped network.
    targets
        EMUs ``(metabolite, 0-based positions)`` whose MIDs :meth:`simulate` returns.

    Notes
    -----
    :meth:`simulate` solves only the cumomers the targets need; :meth:`isotopomers` solves all
    of them (every simulated pool's full isotopomer distribution; built on first use).
    """

    def __init__(self, network: LabelingNetwork, targets: Sequence[EMU] = ()) -> None:
        self.network = network
        counts = network.atom_counts
        self.inputs = tuple(network.inputs)
        self.simulated = network.simulated
        # flat isotopomer layout: [unit 1.0, input isotopomers..., simulated isotopomers...]
        offset: dict[str, int] = {}
        pos = 1
        for m in self.inputs:
            offset[m], pos = pos, pos + 2 ** counts[m]
        self.n_input = pos - 1
        for m in self.simulated:
            offset[m], pos = pos, pos + 2 ** counts[m]
        self.n_state = pos - 1 - self.n_input
        self.offset = offset
        self._terms = production_terms(network)
        made = {t.metabolite for t in self._terms}
        for m in self.simulated:
            if m not in made:
                raise NetworkError(f"metabolite {m!r} is simulated but no reaction produces it")
        self._by_met: dict[str, list[int]] = defaultdict(list)
        for i, t in enumerate(self._terms):
            self._by_met[t.metabolite].append(i)
        self.term_flux = np.array([t.flux for t in self._terms], dtype=int)
        self.term_weight = np.array([t.weight for t in self._terms])
        self._x0 = np.concatenate([np.eye(1, 2 ** counts[m]).ravel() for m in self.simulated])
        self.targets = tuple((m, tuple(sorted(p))) for m, p in targets)
        for m, p in self.targets:
            if m not in offset:
                raise NetworkError(f"measured metabolite {m!r} is not traced in the network")
            if not p or len(set(p)) != len(p) or min(p) < 0 or max(p) >= counts[m]:
                raise NetworkError(
                    f"atoms {[i + 1 for i in p]} of {m!r} are not distinct positions 1..{counts[m]}"
                )
        self.width = 1 + max((len(p) for _, p in self.targets), default=0)
        # MID_k of (m, P) = sum_{S <= P} (-1)^{|S|-k} C(|S|, k) c_m(S)   (c_m(0) = 1)
        wanted, readout = [], []
        for i, (m, p) in enumerate(self.targets):
            full = sum(1 << q for q in p)
            for s in _subsets(full):
                wanted.append((m, s))
                n = _popcount(s)
                readout += [(i, k, (m, s), (-1) ** (n - k) * comb(n, k)) for k in range(n + 1)]
        self._cascade = self._build(wanted)
        idx = self._cascade.index
        self._t_row = np.array([r[0] for r in readout], dtype=int)
        self._t_bin = np.array([r[1] for r in readout], dtype=int)
        self._t_src = np.array([idx.get(r[2], 0) for r in readout], dtype=int)
        self._t_coef = np.array([r[3] for r in readout], dtype=float)

    def _build(self, wanted: Iterable[Cumomer], *, merge: int = 3) -> _Cascade:
        counts = self.network.atom_counts
        offsets = {m: (self.offset[m] - 1, counts[m]) for m in self.inputs}
        return _Cascade(self._terms, self._by_met, offsets, wanted, merge=merge)

    @functools.cached_property
    def _full(self) -> tuple[_Cascade, np.ndarray, np.ndarray, np.ndarray]:
        """Cascade of every cumomer of every simulated pool and the inverse
        transform ``x_T = sum_{S >= T} (-1)^{|S|-|T|} c(S)`` as (state row, z index, sign)."""
        counts = self.network.atom_counts
        # no merging: its waves are wide, and merged blocks would pad them all to ``cap``
        every = ((m, s) for m in self.simulated for s in range(1, 2 ** counts[m]))
        cascade = self._build(every, merge=0)
        rows, cols, signs = [], [], []
        for m in self.simulated:
            n = counts[m]
            for t in range(2**n):
                for s in _subsets((2**n - 1) & ~t):
                    rows.append(self.offset[m] - 1 - self.n_input + t)
                    cols.append(cascade.index.get((m, s | t), 0))
                    signs.append((-1.0) ** _popcount(s))
        return cascade, _ints(rows), _ints(cols), np.array(signs)

    def input_isotopomers(self, experiment: Experiment) -> np.ndarray:
        """Concatenated isotopomer fractions of the input metabolites under ``experiment``."""
        parts = [
            isotopomer_distribution(
                self.network.atom_counts[m],
                experiment.tracers.get(m, ()),
                natural=experiment.natural,
                metabolite=m,
            )
            for m in self.inputs
        ]
        return np.concatenate(parts) if parts else np.zeros(0)

    @functools.cached_property
    def _fluxomer_graph(self) -> tuple[np.ndarray, ...]:
        """Every fluxomer ``(target state, gross flux, weight, substrate isotopomers)`` of
        :meth:`propagate`, enumerated once (all joint substrate patterns of each term)."""
        counts = self.network.atom_counts
        tgt, flux, weight, srcs = [], [], [], []
        kmax = 1
        for t in self._terms:
            used = [(m, a) for m, a in t.sources if set(a) & set(t.atoms)]
            kmax = max(kmax, len(used))
            where = {
                letter: (slot, q) for slot, (_, a) in enumerate(used) for q, letter in enumerate(a)
            }
            for combo in itertools.product(*[range(2 ** counts[m]) for m, _ in used]):
                prod = 0
                for p, letter in enumerate(t.atoms):
                    slot, q = where[letter]
                    prod |= ((combo[slot] >> q) & 1) << p
                tgt.append(self.offset[t.metabolite] + prod - 1 - self.n_input)
                flux.append(t.flux)
                weight.append(t.weight)
                srcs.append([self.offset[m] + c for (m, _), c in zip(used, combo, strict=True)])
        met_index = {m: i for i, m in enumerate(self.simulated)}
        state_met = np.concatenate(
            [np.full(2 ** counts[m], met_index[m]) for m in self.simulated]
        ).astype(int)
        term_met = np.array([met_index[t.metabolite] for t in self._terms], dtype=int)
        src = np.array([s + [0] * (kmax - len(s)) for s in srcs], dtype=int)
        return np.array(tgt), np.array(flux), np.array(weight), src, state_met, term_met

    def propagate(self, x: jax.Array, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """One application of ``F(x, u)``: incoming fluxomers over total production."""
        tgt, flux, weight, src, state_met, term_met = self._fluxomer_graph
        full = jnp.concatenate([jnp.ones(1, x.dtype), x_in.astype(x.dtype), x])
        fluxomers = weight * u[flux] * jnp.prod(full[src], axis=1)
        incoming = jax.ops.segment_sum(fluxomers, tgt, num_segments=self.n_state)
        production = jax.ops.segment_sum(
            self.term_weight * u[self.term_flux], term_met, num_segments=len(self.simulated)
        )
        return incoming / production[state_met]

    def _coefficients(self, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """``g_t = w_t u[flux_t]`` of every production term, in the common dtype."""
        u = jnp.asarray(u, jnp.result_type(u, x_in))
        return self.term_weight * _take(u, self.term_flux)

    def isotopomers(self, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """Steady-state isotopomer fractions of all simulated pools (the fixed point of
        :meth:`propagate`), by the full sparse cumomer cascade; implicitly differentiable."""
        cascade, rows, cols, signs = self._full
        g = self._coefficients(u, x_in)
        z = cascade.solve(g, jnp.asarray(x_in, g.dtype))
        return _sum_at(signs * _take(z, cols), rows, self.n_state)

    def simulate(self, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """Target MIDs ``(n_targets, width)``, zero-padded, at gross fluxes ``u``."""
        g = self._coefficients(u, x_in)
        z = self._cascade.solve(g, jnp.asarray(x_in, g.dtype))
        out = jnp.zeros((len(self.targets), self.width), g.dtype)
        return out.at[self._t_row, self._t_bin].add(
            self._t_coef * _take(z, self._t_src), mode=_IN_BOUNDS
        )
