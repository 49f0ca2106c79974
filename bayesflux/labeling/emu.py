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
  block-triangular order in *waves* (a wave's blocks depend only on earlier waves); a wave is
  one block-diagonal matrix, eliminated by Gauss-Jordan without pivoting (the blocks are
  nonsingular M-matrices) with the structurally independent pivots of a round together and
  the rows kept at unit diagonal, one fused loop per round;
* right-hand sides are gathers of the pool and Cauchy products (convolutions) of MIDs; all
  flux coefficients of all waves are one gather, the productions (diagonals) one sum.

The pool is a few fused array operations per wave written in place; on a CPU their count
(each XLA kernel costs about a microsecond), not the arithmetic, sets the run time.
Derivatives follow by implicit differentiation of each wave's solve (``dX = A^{-1}(dB - dA X)``
with ``A^{-1}`` eliminated beside ``X`` and ``dA X`` taken from the sparse entries), never by
differentiating an iteration.
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
    return jnp.stack(
        [sum(a[..., i] * b[..., k - i] for i in range(k + 1)) for k in range(a.shape[-1])], -1
    )


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


def _unit_rows(M: jax.Array, d: jax.Array) -> jax.Array:
    """Rows of ``M`` divided by ``d``. The divisor is given the full shape of ``M`` so that XLA
    keeps the division inside the fused loop (a broadcast divisor would become a reciprocal,
    a kernel of its own, and a second rounding)."""
    return M / (d[..., :, None] + 0.0 * M)


def _eliminate(M: jax.Array, n: int, rounds: tuple[tuple[int, int], ...]) -> jax.Array:
    """``A^{-1} B`` from ``M = [A | B]`` with unit diagonal by Gauss-Jordan rounds.

    A round ``S`` of independent pivots (``M[s, s'] = 0``) updates
    ``M <- M - sum_{s in S} (M[:, s] - e_s) M[s, :]`` and divides every row by its new diagonal
    ``1 - sum_s (M[i, s] - [i = s]) M[s, i]``, so the next pivots are unit again: one fused
    loop per round (the last leaves the identity in ``A``'s place and needs no division)."""
    eye = np.eye(n)
    for r, (a, b) in enumerate(rounds):
        C = M[..., :, a:b] - eye[:, a:b]
        P = M[..., a:b, :]
        M = M - sum(C[..., :, s : s + 1] * P[..., s : s + 1, :] for s in range(b - a))
        if r + 1 < len(rounds):
            M = _unit_rows(M, 1.0 - sum(C[..., :, s] * P[..., s, :n] for s in range(b - a)))
    return M[..., n:]


def _gauss_jordan(A: jax.Array, B: jax.Array, rounds: tuple[tuple[int, int], ...]) -> jax.Array:
    """``A^{-1} B`` by Gauss-Jordan elimination without pivoting, independent pivots at once.

    ``rounds`` are ranges ``[a, b)`` of independent pivots (:func:`_pivot_slices`); their
    eliminations commute and add up (:func:`_eliminate`, rows scaled to a unit diagonal).
    No pivoting is needed: an EMU block is a nonsingular M-matrix, diagonally dominant by rows
    (production = consumption + inflow from outside the block), so every leading minor is
    nonsingular and the growth is at most 2 (Wilkinson 1961)."""
    n = A.shape[-1]
    d = jnp.sum(A * np.eye(n), -1)
    return _eliminate(_unit_rows(jnp.concatenate([A, B], -1), d), n, rounds)


@dataclass(frozen=True, eq=False)
class _Wave:
    """One wave of an EMU level: ``size`` unknowns written to pool rows ``[row, row + size)``.

    Its coefficients are ranges of the simulator's gathered ``weight * u[flux]`` vector:
    ``rhs`` ``(size, k_rhs)`` (times the convolution of the MIDs in pool rows ``factors``
    ``(size, k_rhs, n_factors)``) and ``off`` ``(size, k_off)`` (entry ``[t, column[t, k]]`` of
    the matrix; ``onehot[t, k, s] = [column[t, k] == s]``); the diagonal is the EMU's
    production, number ``production[t]`` among the simulator's distinct productions. The
    matrix is block diagonal over the wave's strongly connected blocks and eliminated in pivot
    ranges ``rounds``."""

    row: int
    size: int
    mid_width: int
    production: np.ndarray
    factors: np.ndarray
    rhs: tuple[int, int]
    off: tuple[int, int]
    column: np.ndarray
    onehot: np.ndarray
    rounds: tuple[tuple[int, int], ...]


def _off_diagonal(wave: _Wave, off: jax.Array) -> jax.Array:
    """``sum_k off[:, k] onehot[:, k, :]`` (unrolled: part of one fused loop)."""
    return sum(off[..., :, k : k + 1] * wave.onehot[:, k, :] for k in range(wave.onehot.shape[1]))


def _wave_rows(wave: _Wave, off: jax.Array, d: jax.Array, *columns: jax.Array) -> jax.Array:
    """``[A | columns]`` divided by rows by ``A``'s diagonal ``d``, for :func:`_eliminate`."""
    A = d[:, None] * np.eye(wave.size) + _off_diagonal(wave, off)
    return _unit_rows(jnp.concatenate([A, *columns], -1), d)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _wave_solve(wave: _Wave, off: jax.Array, d: jax.Array, B: jax.Array) -> jax.Array:
    """``X = A^{-1} B``, ``A = diag(d) + off-diagonal(off)``; ``dX = A^{-1}(dB - dA X)``."""
    return _eliminate(_wave_rows(wave, off, d, B), wave.size, wave.rounds)


@_wave_solve.defjvp
def _wave_solve_jvp(wave, primals, tangents):
    off, d, B = primals
    doff, dd, dB = tangents
    XI = _eliminate(_wave_rows(wave, off, d, B, np.eye(wave.size)), wave.size, wave.rounds)
    X, inv = XI[:, : B.shape[-1]], XI[:, B.shape[-1] :]
    Xc = X[wave.column]
    dAX = dd[..., :, None] * X
    dAX = dAX + sum(doff[..., :, k : k + 1] * Xc[:, k] for k in range(wave.column.shape[1]))
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
    terms: list[tuple[int, float]],
    production: dict[tuple[tuple[int, float], ...], int],
) -> tuple[dict, int]:
    """Static solve plan of one EMU size; assigns the pool rows of ``unknown`` in ``row``,
    appends the ``(flux, weight)`` coefficients of its waves to ``terms`` and numbers the
    distinct productions ``d`` of its EMUs (their terms) in ``production``.

    An EMU made only from one other EMU of its size (whatever the fluxes) has its MID: it is
    an alias and gets no row. The rest are split into strongly connected components solved
    in waves, each wave one block-diagonal matrix whose rows follow its pivot rounds.
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
    neighbours = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
    # a wave's EMUs in the order of its pivot rounds: each round is a contiguous slice
    waves = []
    for wave in _waves(len(core), edges):
        nodes = [k for comp in wave for k in comp]
        pattern = np.array([[k == r or r in neighbours[k] for r in nodes] for k in nodes])
        order, rounds = _pivot_slices(pattern)
        waves.append(([nodes[i] for i in order], rounds, n_rows))
        for i in order:
            row[unknown[core[nodes[i]]]] = n_rows
            n_rows += 1
    for i in range(m):
        row[unknown[i]] = row[unknown[find(i)]]

    def add(coefs: np.ndarray) -> tuple[int, int]:
        terms.extend(zip(coefs[..., 0].astype(int).ravel(), coefs[..., 1].ravel(), strict=True))
        return len(terms) - coefs[..., 0].size, len(terms)

    plans = []
    for nodes, rounds, first in waves:
        pos = {k: p for p, k in enumerate(nodes)}
        rhs, off, prod = [], [], []
        for k in nodes:
            i = core[k]
            t = [(f, w, *[row[s] for s in src]) for f, w, src in known[i]]
            d = [(f, w) for f, w, _ in known[i]]
            a = []
            for f, w, j in same[i]:
                r = index[find(j)]
                if r == k:
                    continue  # produced from itself: cancels on both sides
                d.append((f, w))
                if r in pos:
                    a.append((f, -w, pos[r]))
                else:
                    t.append((f, w, row[unknown[core[r]]]))
            rhs.append(t)
            prod.append(production.setdefault(tuple(d), len(production)))
            off.append(a)
        kmax = max((len(t) - 2 for ts in rhs for t in ts), default=1)
        rhs = [[t + (0,) * (kmax + 2 - len(t)) for t in ts] for ts in rhs]
        t_arr = _padded(rhs, (0, 0.0) + (0,) * kmax)
        a_arr = _padded(off, (0, 0.0, 0))
        column = a_arr[..., 2].astype(int)
        onehot = (column[..., None] == np.arange(len(nodes))) & (a_arr[..., 1:2] != 0)
        plans.append(
            _Wave(
                row=first,
                size=len(nodes),
                mid_width=len(unknown[0][1]) + 1,
                production=np.array(prod, dtype=int),
                factors=t_arr[..., 2:].astype(int),
                rhs=add(t_arr[..., :2]),
                off=add(a_arr[..., :2]),
                column=column,
                onehot=onehot * 1.0,
                rounds=rounds,
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
        terms: list[tuple[int, float]] = []
        production: dict[tuple[tuple[int, float], ...], int] = {}
        for n in sorted({len(p) for _, p in equations}):
            level, n_rows = _plan_level(
                [e for e in equations if len(e[1]) == n], equations, row, n_rows, terms, production
            )
            self.levels.append(level)
        self.n_rows = n_rows
        # every coefficient is one gather ``weight * u[flux]``; the productions come last
        prod = _padded([list(d) for d in production], (0, 0.0))
        self._production_shape = prod.shape[:2]
        self._production = np.concatenate([w.production for lv in self.levels for w in lv["waves"]])
        terms.extend(zip(prod[..., 0].astype(int).ravel(), prod[..., 1].ravel(), strict=True))
        self._flux = np.array([f for f, _ in terms], dtype=int)
        self._weight = np.array([w for _, w in terms], dtype=float)
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
        n_solved = self.n_rows - 1 - len(self.input_emus)
        pool = jnp.concatenate(
            [unit, jnp.asarray(input_mids, dtype), jnp.zeros((n_solved, self.width), dtype)]
        )
        g = self._weight * u[self._flux]
        n_prod = int(np.prod(self._production_shape))
        d = jnp.sum(g[g.size - n_prod :].reshape(self._production_shape), 1)
        d = d[self._production]  # per solved pool row, from row 1 + n_inputs
        first = 1 + len(self.input_emus)
        for lv in self.levels:
            for wave in lv["waves"]:
                n, w = wave.size, wave.mid_width
                sl = slice(wave.row - first, wave.row - first + n)
                c = g[slice(*wave.rhs)].reshape(n, -1)
                off = g[slice(*wave.off)].reshape(n, -1)
                Y = pool[wave.factors][..., :w]
                conv = Y[:, :, 0]
                for f in range(1, Y.shape[2]):
                    conv = _convolve(conv, Y[:, :, f])
                rhs = sum(c[:, k : k + 1] * conv[:, k] for k in range(c.shape[1]))
                X = jnp.pad(_wave_solve(wave, off, d[sl], rhs), [(0, 0), (0, self.width - w)])
                pool = jax.lax.dynamic_update_slice(pool, X.astype(dtype), (wave.row, 0))
        return pool

    def simulate(self, u: jax.Array, input_mids: jax.Array) -> jax.Array:
        """Target MIDs ``(n_targets, width)`` at gross fluxes ``u``; zero-padded past each size."""
        return self.pool(u, input_mids)[self.target_rows]
