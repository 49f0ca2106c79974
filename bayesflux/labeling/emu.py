"""Elementary metabolite units (EMU; Antoniewicz, Kelleher & Stephanopoulos 2007).

An EMU is a subset of a metabolite's atoms; its mass isotopomer distribution (MID) is what MS
measures. Tracing the measured EMUs back through the atom maps gives, for each EMU size ``n``,
a linear system ``A_n(u) X_n = B_n(u) Y_n`` whose unknowns ``X_n`` are the MIDs of the size-``n``
EMUs of simulated pools and whose knowns ``Y_n`` are input-substrate EMUs or convolutions of
smaller EMUs already solved. ``A_n`` holds each EMU's total production on the diagonal and
minus the fluxes exchanging it with other size-``n`` EMUs off the diagonal.

The plan is built once per model, so the simulation is a pure, jit-able and vmap-able function
of the gross fluxes ``u``:

* an EMU made only from one other EMU of its size is that EMU's alias (no unknown);
* the rest of a level is split into strongly connected components of its EMU graph, solved in
  block-triangular order in *waves* (a wave's blocks depend only on earlier waves): a one-EMU
  block is a division, a larger one a Gauss-Jordan elimination without pivoting (the blocks
  are nonsingular M-matrices) whose structurally independent pivots are eliminated together,
  one fused update per round;
* right-hand sides are gathers of the pool and Cauchy products (convolutions) of MIDs.

The pool is a few small fused array operations per wave; on a CPU their count, not the
arithmetic, sets the run time. Derivatives follow by implicit differentiation of each block
solve (``dX = A^{-1}(dB - dA X)`` with the factorised ``A^{-1}`` reused and ``dA X`` taken from
the sparse entries), never by differentiating an iteration.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from bayesflux.errors import NetworkError
from bayesflux.labeling.network import LabelingNetwork, production_terms
from bayesflux.labeling.tracers import Experiment, isotopomer_distribution

__all__ = ["EMU", "EMUSimulator", "mid_matrix"]

EMU = tuple[str, tuple[int, ...]]


def mid_matrix(n_atoms: int, positions: Sequence[int]) -> np.ndarray:
    """``(2**n_atoms, len(positions)+1)`` 0/1 matrix summing isotopomers into an EMU's MID."""
    idx = np.arange(2**n_atoms)
    mask = sum(1 << p for p in positions)
    weight = np.array([bin(i & mask).count("1") for i in idx])
    out = np.zeros((2**n_atoms, len(positions) + 1))
    out[idx, weight] = 1.0
    return out


def _convolve(a: jax.Array, b: jax.Array) -> jax.Array:
    """MID of a union of independent atom sets: ``c_l = sum_{i <= l} a_i b_{l-i}`` (last axis,
    truncated to the common width, which holds the whole support)."""
    w = a.shape[-1]
    pad = [(0, 0)] * (b.ndim - 1)
    return sum(a[..., i : i + 1] * jnp.pad(b[..., : w - i], [*pad, (i, 0)]) for i in range(w))


def _pivot_rounds(pattern: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Order the Gauss-Jordan pivots of a matrix with structural nonzeros ``pattern`` into
    rounds of pivots that are independent (``M[s, s'] = M[s', s] = 0`` when the round starts),
    so that one round is one fused update; greedy by fewest nonzeros, tracking the fill."""
    P = np.array(pattern, dtype=bool)
    left = list(range(P.shape[0]))
    rounds = []
    while left:
        sub = P[np.ix_(left, left)]
        order = [left[i] for i in np.argsort(sub.sum(0) + sub.sum(1), kind="stable")]
        chosen: list[int] = []
        for i in order:
            if not any(P[i, j] or P[j, i] for j in chosen):
                chosen.append(i)
        for s in chosen:
            rows = P[:, s].copy()
            rows[s] = False
            P[rows] |= P[s]
            P[rows, s] = False
        rounds.append(tuple(sorted(chosen)))
        left = [i for i in left if i not in chosen]
    return tuple(rounds)


def _pivot_slices(pattern: np.ndarray) -> tuple[list[int], tuple[tuple[int, int], ...]]:
    """The order of a block's unknowns that makes each pivot round of :func:`_pivot_rounds` a
    contiguous range ``[start, stop)`` (a slice, no gather), and those ranges."""
    rounds = _pivot_rounds(pattern)
    stops = np.cumsum([len(S) for S in rounds])
    return [i for S in rounds for i in S], tuple(zip([0, *stops[:-1]], stops, strict=True))


def _gauss_jordan(A: jax.Array, B: jax.Array, rounds: tuple[tuple[int, int], ...]) -> jax.Array:
    """``A^{-1} B`` by Gauss-Jordan elimination without pivoting, independent pivots at once.

    ``rounds`` are ranges ``[a, b)`` of independent pivots (:func:`_pivot_slices`); their
    eliminations commute and add up: ``M <- M - (M[:, S] - I[:, S]) (M[S, :] / M[S, S])``.
    No pivoting is needed: an EMU block is a nonsingular M-matrix, diagonally dominant by rows
    (production = consumption + inflow from outside the block), so every leading minor is
    nonsingular and the growth is at most 2 (Wilkinson 1961)."""
    n = A.shape[-1]
    M = jnp.concatenate([A, B], axis=-1)
    eye = np.eye(n)
    for a, b in rounds:
        pivots = M[..., a:b, :] / jnp.diagonal(M[..., a:b, a:b], axis1=-2, axis2=-1)[..., None]
        M = M - (M[..., :, a:b] - eye[:, a:b]) @ pivots
    return M[..., n:]


@dataclass(frozen=True, eq=False)
class _Block:
    """A strongly connected block of ``size`` EMUs: row ``t`` of its matrix is the diagonal
    ``d_t`` plus ``weight[t, k] * u[flux[t, k]]`` in column ``column[t, k]`` (``k`` padded with
    zero weights; ``onehot[t, k, s] = [column[t, k] == s]``), eliminated in pivot ranges
    ``rounds``."""

    offset: int
    size: int
    flux: np.ndarray
    weight: np.ndarray
    column: np.ndarray
    onehot: np.ndarray
    rounds: tuple[tuple[int, int], ...]


def _block_matrix(block: _Block, u: jax.Array, d: jax.Array) -> jax.Array:
    coef = block.weight * u[block.flux]
    return jnp.sum(coef[..., None] * block.onehot, axis=1) + jnp.diag(d)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _block_solve(block: _Block, u: jax.Array, d: jax.Array, B: jax.Array) -> jax.Array:
    """``X = A(u, d)^{-1} B``; derivative ``dX = A^{-1} (dB - dA X)``, ``dA X`` taken sparse."""
    return _gauss_jordan(_block_matrix(block, u, d), B, block.rounds)


@_block_solve.defjvp
def _block_solve_jvp(block, primals, tangents):
    u, d, B = primals
    du, dd, dB = tangents
    eye = jnp.eye(block.size, dtype=B.dtype)
    XI = _gauss_jordan(_block_matrix(block, u, d), jnp.concatenate([B, eye], axis=-1), block.rounds)
    X, inv = XI[:, : B.shape[-1]], XI[:, B.shape[-1] :]
    dAX = dd[:, None] * X + jnp.sum((block.weight * du[block.flux])[..., None] * X[block.column], 1)
    return X, inv @ (dB - dAX)


def _waves(n: int, edges: Sequence[tuple[int, int]]) -> list[list[list[int]]]:
    """Strongly connected components of the graph ``t -> s`` (``t``'s equation uses ``s``) on
    ``range(n)``, grouped into waves: a component depends only on components of earlier waves.
    Within a wave the one-node components come first."""
    t, s = np.array(edges, dtype=int).reshape(-1, 2).T
    graph = scipy.sparse.coo_matrix((np.ones(t.size), (t, s)), shape=(n, n))
    n_comp, label = scipy.sparse.csgraph.connected_components(
        graph, directed=True, connection="strong"
    )
    deps = [set() for _ in range(n_comp)]
    users = [set() for _ in range(n_comp)]
    for a, b in zip(label[t], label[s], strict=True):
        if a != b:
            deps[a].add(b)
            users[b].add(a)
    depth = np.zeros(n_comp, dtype=int)
    waiting = [len(d) for d in deps]
    ready = [c for c in range(n_comp) if not waiting[c]]
    while ready:
        c = ready.pop()
        for user in users[c]:
            depth[user] = max(depth[user], depth[c] + 1)
            waiting[user] -= 1
            if not waiting[user]:
                ready.append(user)
    members = [sorted(np.flatnonzero(label == c)) for c in range(n_comp)]
    return [
        sorted((members[c] for c in np.flatnonzero(depth == k)), key=lambda m: (len(m), m))
        for k in range(depth.max() + 1)
    ]


def _padded(rows: list[list], fill: tuple) -> np.ndarray:
    """Ragged ``rows`` of equal-length tuples -> ``(n_rows, max length, len(fill))``."""
    k = max(1, max(len(r) for r in rows))
    return np.array([r + [fill] * (k - len(r)) for r in rows], dtype=float)


def _plan_level(
    unknown: Sequence[EMU],
    equations: dict[EMU, list[tuple[int, float, tuple[EMU, ...]]]],
    row: dict[EMU, int],
    n_rows: int,
) -> tuple[dict, int]:
    """Static solve plan of one EMU size; assigns the pool rows of ``unknown`` in ``row``.

    An EMU made only from one other EMU of its size (whatever the fluxes) has its MID: it is
    an alias and gets no row. The rest are split into strongly connected components solved
    in waves: one-node components by a division, the others by Gauss-Jordan rounds.
    """
    m = len(unknown)
    local = {e: i for i, e in enumerate(unknown)}
    same = [
        [(f, w, local[s[0]]) for f, w, s in equations[e] if len(s) == 1 and s[0] in local]
        for e in unknown
    ]
    known = [
        [(f, w, s) for f, w, s in equations[e] if not (len(s) == 1 and s[0] in local)]
        for e in unknown
    ]
    root = list(range(m))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    changed = True
    while changed:
        changed = False
        for i in range(m):
            if root[i] == i and not known[i]:
                sources = {find(j) for _, _, j in same[i]} - {i}
                if len(sources) == 1:
                    root[i] = sources.pop()
                    changed = True
    core = [i for i in range(m) if root[i] == i]
    index = {i: k for k, i in enumerate(core)}
    edges = [(index[i], index[find(j)]) for i in core for _, _, j in same[i] if find(j) != i]
    waves = _waves(len(core), edges)
    neighbours = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
    slices = {}
    for wave in waves:
        # a block's EMUs in the order of its pivot rounds: each round is a contiguous slice
        for c, comp in enumerate(wave):
            if len(comp) > 1:
                pattern = np.array([[k == r or r in neighbours[k] for r in comp] for k in comp])
                order, slices[min(comp)] = _pivot_slices(pattern)
                wave[c] = [comp[i] for i in order]
        for comp in wave:
            for k in comp:
                row[unknown[core[k]]] = n_rows
                n_rows += 1
    for i in range(m):
        row[unknown[i]] = row[unknown[find(i)]]
    comps = [comp for wave in waves for comp in wave]
    comp_of = {k: c for c, comp in enumerate(comps) for k in comp}
    plans = []
    for wave in waves:
        nodes = [k for comp in wave for k in comp]
        pos = {k: p for p, k in enumerate(nodes)}
        terms, diag, blocks = [], [], []
        for k in nodes:
            i = core[k]
            t = [(f, w, *[row[s] for s in src]) for f, w, src in known[i]]
            d = [(f, w) for f, w, _ in known[i]]
            for f, w, j in same[i]:
                r = index[find(j)]
                if r == k:
                    continue  # produced from itself: cancels on both sides
                d.append((f, w))
                if comp_of[r] != comp_of[k]:
                    t.append((f, w, row[unknown[core[r]]]))
            terms.append(t)
            diag.append(d)
        kmax = max((len(t) - 2 for ts in terms for t in ts), default=1)
        terms = [[t + (0,) * (kmax + 2 - len(t)) for t in ts] for ts in terms]
        t_arr = _padded(terms, (0, 0.0) + (0,) * kmax)
        d_arr = _padded(diag, (0, 0.0))
        for comp in wave:
            if len(comp) == 1:
                continue
            b, off = len(comp), pos[comp[0]]
            entries: list[list[tuple[int, float, int]]] = [[] for _ in range(b)]
            for k in comp:
                for f, w, j in same[core[k]]:
                    r = index[find(j)]
                    if r != k and comp_of[r] == comp_of[k]:
                        entries[pos[k] - off].append((f, -w, pos[r] - off))
            e = _padded(entries, (0, 0.0, 0))
            column = e[..., 2].astype(int)
            onehot = (column[..., None] == np.arange(b)) & (e[..., 1:2] != 0)
            blocks.append(
                _Block(
                    off,
                    b,
                    e[..., 0].astype(int),
                    e[..., 1],
                    column,
                    onehot * 1.0,
                    slices[min(comp)],
                )
            )
        plans.append(
            dict(
                t_flux=t_arr[..., 0].astype(int),
                t_weight=t_arr[..., 1],
                t_factors=t_arr[..., 2:].astype(int),
                d_flux=d_arr[..., 0].astype(int),
                d_weight=d_arr[..., 1],
                n_single=sum(len(c) == 1 for c in wave),
                blocks=blocks,
            )
        )
    return dict(size=len(unknown[0][1]), waves=plans), n_rows


class EMUSimulator:
    """Compiled EMU model of ``network`` for the ``targets`` EMUs ``(metabolite, positions)``.

    ``positions`` are 0-based atom indices in the order the metabolite's atoms are written.
    Call :meth:`simulate` (jit-able, vmap-able over ``u`` and ``input_mids``) for the target
    MIDs, padded with zeros to width ``max size + 1``.
    """

    def __init__(self, network: LabelingNetwork, targets: Sequence[EMU]) -> None:
        self.network = network
        targets = [(m, tuple(sorted(p))) for m, p in targets]
        for m, p in targets:
            if m not in network.atom_counts:
                raise NetworkError(f"measured metabolite {m!r} is not traced in the network")
            if not p or len(set(p)) != len(p) or min(p) < 0 or max(p) >= network.atom_counts[m]:
                raise NetworkError(
                    f"atoms {[i + 1 for i in p]} of {m!r} are not distinct positions "
                    f"1..{network.atom_counts[m]}"
                )
        self.targets = tuple(targets)
        by_met = defaultdict(list)
        for t in production_terms(network):
            by_met[t.metabolite].append(t)
        inputs = set(network.inputs)
        equations: dict[EMU, list[tuple[int, float, tuple[EMU, ...]]]] = {}
        input_emus: dict[EMU, None] = {}
        stack = list(self.targets)
        while stack:
            e = stack.pop()
            if e in equations or e in input_emus:
                continue
            met, pos = e
            if met in inputs:
                input_emus[e] = None
                continue
            if not by_met[met]:
                raise NetworkError(f"metabolite {met!r} is simulated but no reaction produces it")
            rows = []
            for t in by_met[met]:
                groups: dict[int, list[int]] = {}
                for p in pos:
                    letter = t.atoms[p]
                    for k, (_, atoms) in enumerate(t.sources):
                        q = atoms.find(letter)
                        if q >= 0:
                            groups.setdefault(k, []).append(q)
                            break
                srcs = tuple(sorted((t.sources[k][0], tuple(sorted(q))) for k, q in groups.items()))
                rows.append((t.flux, t.weight, srcs))
                stack.extend(srcs)
            equations[e] = rows
        self.input_emus = tuple(sorted(input_emus))
        self.width = 1 + max(len(p) for _, p in (*equations, *self.input_emus, *self.targets))
        # pool rows: 0 = the unit MID [1, 0, ...], then inputs, then the solved EMUs wave by wave;
        # an alias shares the row of the EMU it equals
        row: dict[EMU, int] = {e: 1 + i for i, e in enumerate(self.input_emus)}
        self.n_unknown = len(equations)
        self.levels = []
        n_rows = 1 + len(self.input_emus)
        for n in sorted({len(p) for _, p in equations}):
            level, n_rows = _plan_level(
                [e for e in equations if len(e[1]) == n], equations, row, n_rows
            )
            self.levels.append(level)
        self.n_rows = n_rows
        self.target_rows = np.array([row[e] for e in self.targets], dtype=int)
        self.emu_rows = dict(row)

    def input_mids(self, experiment: Experiment) -> np.ndarray:
        """MIDs ``(n_input_emus, width)`` of the input EMUs under an experiment's tracers."""
        for met in experiment.tracers:
            if met not in self.network.inputs:
                raise NetworkError(
                    f"experiment {experiment.name!r}: tracer for {met!r}, which is not an input "
                    f"metabolite (inputs: {list(self.network.inputs)})"
                )
        out = np.zeros((len(self.input_emus), self.width))
        cache: dict[str, np.ndarray] = {}
        for i, (met, pos) in enumerate(self.input_emus):
            if met not in cache:
                cache[met] = isotopomer_distribution(
                    self.network.atom_counts[met],
                    experiment.tracers.get(met, ()),
                    natural=experiment.natural,
                    metabolite=met,
                )
            mid = cache[met] @ mid_matrix(self.network.atom_counts[met], pos)
            out[i, : mid.size] = mid
        return out

    def pool(self, u: jax.Array, input_mids: jax.Array) -> jax.Array:
        """MIDs of every EMU: row :attr:`emu_rows` ``[emu]``; row 0 is the unit MID."""
        dtype = jnp.result_type(u, input_mids)
        unit = jnp.zeros((1, self.width), dtype).at[0, 0].set(1.0)
        parts = [unit, jnp.asarray(input_mids, dtype)]
        for lv in self.levels:
            w = lv["size"] + 1
            for wave in lv["waves"]:
                pool = jnp.concatenate(parts)
                coef = wave["t_weight"] * u[wave["t_flux"]]
                factors = wave["t_factors"]
                Y = pool[factors[..., 0], :w]
                for f in range(1, factors.shape[-1]):
                    Y = _convolve(Y, pool[factors[..., f], :w])
                rhs = jnp.sum(coef[..., None] * Y, axis=1)
                d = jnp.sum(wave["d_weight"] * u[wave["d_flux"]], axis=1)
                s = wave["n_single"]
                xs = [rhs[:s] / d[:s, None]] if s else []
                for block in wave["blocks"]:
                    sl = slice(block.offset, block.offset + block.size)
                    xs.append(_block_solve(block, u, d[sl], rhs[sl]))
                x = xs[0] if len(xs) == 1 else jnp.concatenate(xs)
                parts.append(jnp.pad(x, [(0, 0), (0, self.width - w)]))
        return jnp.concatenate(parts)

    def simulate(self, u: jax.Array, input_mids: jax.Array) -> jax.Array:
        """Target MIDs ``(n_targets, width)`` at gross fluxes ``u``; zero-padded past each size."""
        return self.pool(u, input_mids)[self.target_rows]
