"""Elementary metabolite units (EMU; Antoniewicz, Kelleher & Stephanopoulos 2007).

An EMU is a subset of a metabolite's atoms; its mass isotopomer distribution (MID) is what MS
measures. Tracing the measured EMUs back through the atom maps gives, for each EMU size ``n``,
a linear system ``A_n(u) X_n = B_n(u) Y_n`` whose unknowns ``X_n`` are the MIDs of the size-``n``
EMUs of simulated pools and whose knowns ``Y_n`` are input-substrate EMUs or convolutions of
smaller EMUs already solved. ``A_n`` holds each EMU's total production on the diagonal and
minus the fluxes exchanging it with other size-``n`` EMUs off the diagonal.

The levels are solved in order with dense LU solves; all index arrays are built once, so the
simulation is a pure, jit-able and vmap-able function of the gross fluxes ``u``. Derivatives
follow by implicit differentiation of each linear solve (``dX = A^{-1}(dB Y + B dY - dA X)``),
which is what JAX's ``linalg.solve`` rule computes — never by differentiating an iteration.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

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


def _conv_tensor(width: int) -> np.ndarray:
    t = np.zeros((width, width, width))
    for i in range(width):
        for j in range(width - i):
            t[i, j, i + j] = 1.0
    return t


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
        sizes = sorted({len(p) for _, p in equations})
        # pool rows: 0 = the unit MID [1, 0, ...], then inputs, then unknowns level by level
        row: dict[EMU, int] = {e: 1 + i for i, e in enumerate(self.input_emus)}
        self.levels = []
        for n in sizes:
            unknown = sorted(e for e in equations if len(e[1]) == n)
            local = {e: i for i, e in enumerate(unknown)}
            for e in unknown:
                row[e] = len(row) + 1
            diag, off, known = [], [], []
            for e in unknown:
                for flux, w, srcs in equations[e]:
                    diag.append((local[e], flux, w))
                    if len(srcs) == 1 and srcs[0] in local:
                        off.append((local[e], local[srcs[0]], flux, w))
                    else:
                        known.append((local[e], flux, w, [row[s] for s in srcs]))
            kmax = max((len(k[3]) for k in known), default=1)
            m = len(unknown)
            # A(u)[t, s] = sum of w * u[flux] over its entries (diagonal: total production)
            a_entries = [(t * m + t, flux, w) for t, flux, w in diag]
            a_entries += [(t * m + s, flux, -w) for t, s, flux, w in off]
            a = np.array(a_entries, dtype=float).reshape(-1, 3)
            k = np.array([kn[:3] for kn in known], dtype=float).reshape(-1, 3)
            self.levels.append(
                dict(
                    size=n,
                    rows=np.array([row[e] for e in unknown], dtype=int),
                    a_index=a[:, 0].astype(int),
                    a_flux=a[:, 1].astype(int),
                    a_weight=a[:, 2],
                    k_row=k[:, 0].astype(int),
                    k_flux=k[:, 1].astype(int),
                    k_weight=k[:, 2],
                    factors=np.array(
                        [kn[3] + [0] * (kmax - len(kn[3])) for kn in known], dtype=int
                    ).reshape(len(known), kmax),
                )
            )
        self.n_rows = len(row) + 1
        self.target_rows = np.array([row[e] for e in self.targets], dtype=int)
        self.emus = tuple(sorted(row, key=row.get))
        self._conv = _conv_tensor(self.width)

    @property
    def n_unknown(self) -> int:
        return self.n_rows - 1 - len(self.input_emus)

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
        """MIDs of every EMU (rows as in :attr:`emus`, after the unit row 0)."""
        dtype = jnp.result_type(u, input_mids)
        unit = jnp.zeros((1, self.width), dtype).at[0, 0].set(1.0)
        pool = jnp.concatenate(
            [unit, jnp.asarray(input_mids, dtype), jnp.zeros((self.n_unknown, self.width), dtype)]
        )
        conv = jnp.asarray(self._conv, dtype)
        for lv in self.levels:
            n, m = lv["size"], lv["rows"].size
            A = jax.ops.segment_sum(
                lv["a_weight"] * u[lv["a_flux"]], lv["a_index"], num_segments=m * m
            ).reshape(m, m)
            Y = pool[lv["factors"][:, 0], : n + 1]
            for f in range(1, lv["factors"].shape[1]):
                Y = jnp.einsum(
                    "ti,tj,ijk->tk",
                    Y,
                    pool[lv["factors"][:, f], : n + 1],
                    conv[: n + 1, : n + 1, : n + 1],
                )
            rhs = jax.ops.segment_sum(
                (lv["k_weight"] * u[lv["k_flux"]])[:, None] * Y, lv["k_row"], num_segments=m
            )
            X = jnp.linalg.solve(A, rhs)
            pool = pool.at[lv["rows"], : n + 1].set(X)
        return pool

    def simulate(self, u: jax.Array, input_mids: jax.Array) -> jax.Array:
        """Target MIDs ``(n_targets, width)`` at gross fluxes ``u``; zero-padded past each size."""
        return self.pool(u, input_mids)[self.target_rows]
