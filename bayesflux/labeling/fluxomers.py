"""Steady-state isotopomer (fluxomer) propagation (Srour, Young & Eldar 2011; seed 001).

A fluxomer is the rate at which a reaction carries one labelling pattern of its atoms: the flux
``u_r`` times the product of the isotopomer fractions of its substrates. A simulated pool's
isotopomer fractions are its incoming fluxomers over its total production, which gives the
fixed-point equation ``x = F(x, u) = (sum_r w_r u_r M_r (x_s1 (x) x_s2 ...)) / (sum_r w_r u_r)``
where ``M_r`` sends a joint substrate pattern to the product pattern the atom map makes.

:func:`FluxomerSimulator.isotopomers` solves ``F(x, u) - x = 0`` by fixed-point sweeps followed
by Newton steps, wrapped in ``jax.lax.custom_root``: its derivative comes from the implicit
function theorem ``(I - dF/dx) dx/du = dF/du``, never from differentiating the iterations.
Every input array is built once; the propagation is a gather, products and a segment sum.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bayesflux.errors import NetworkError
from bayesflux.labeling.emu import EMU, mid_matrix
from bayesflux.labeling.network import LabelingNetwork, production_terms
from bayesflux.labeling.tracers import Experiment, isotopomer_distribution

__all__ = ["FluxomerSimulator"]


class FluxomerSimulator:
    """Full isotopomer model of every simulated pool of ``network``.

    Parameters
    ----------
    network
        The atom-mapped network.
    targets
        EMUs ``(metabolite, 0-based positions)`` whose MIDs :meth:`simulate` returns.
    sweeps, newton_steps, tol
        Fixed-point sweeps before Newton, the most Newton steps, and the stopping tolerance on
        ``max |F(x) - x|``.
    """

    def __init__(
        self,
        network: LabelingNetwork,
        targets: Sequence[EMU] = (),
        *,
        sweeps: int = 20,
        newton_steps: int = 40,
        tol: float = 1e-14,
    ) -> None:
        self.network = network
        self.sweeps, self.newton_steps, self.tol = sweeps, newton_steps, tol
        counts = network.atom_counts
        self.inputs = tuple(network.inputs)
        self.simulated = network.simulated
        # flat layout: [unit 1.0, input isotopomers..., simulated isotopomers...]
        offset: dict[str, int] = {}
        pos = 1
        for m in self.inputs:
            offset[m], pos = pos, pos + 2 ** counts[m]
        self.n_input = pos - 1
        for m in self.simulated:
            offset[m], pos = pos, pos + 2 ** counts[m]
        self.n_state = pos - 1 - self.n_input
        self.offset = offset
        met_index = {m: i for i, m in enumerate(self.simulated)}
        terms = production_terms(network)
        made = {t.metabolite for t in terms}
        for m in self.simulated:
            if m not in made:
                raise NetworkError(f"metabolite {m!r} is simulated but no reaction produces it")
        tgt, flux, weight, srcs = [], [], [], []
        self.term_met = np.array([met_index[t.metabolite] for t in terms], dtype=int)
        self.term_flux = np.array([t.flux for t in terms], dtype=int)
        self.term_weight = np.array([t.weight for t in terms])
        kmax = 1
        for t in terms:
            used = [(k, m, a) for k, (m, a) in enumerate(t.sources) if set(a) & set(t.atoms)]
            kmax = max(kmax, len(used))
            where = {}
            for slot, (_, _, a) in enumerate(used):
                for q, letter in enumerate(a):
                    where[letter] = (slot, q)
            for combo in itertools.product(*[range(2 ** counts[m]) for _, m, _ in used]):
                prod = 0
                for p, letter in enumerate(t.atoms):
                    slot, q = where[letter]
                    prod |= ((combo[slot] >> q) & 1) << p
                tgt.append(offset[t.metabolite] + prod - 1 - self.n_input)
                flux.append(t.flux)
                weight.append(t.weight)
                srcs.append([offset[m] + c for (_, m, _), c in zip(used, combo, strict=True)])
        self.kmax = kmax
        self._tgt = np.array(tgt, dtype=int)
        self._flux = np.array(flux, dtype=int)
        self._weight = np.array(weight)
        self._src = np.array([s + [0] * (kmax - len(s)) for s in srcs], dtype=int)
        self._state_met = np.concatenate(
            [np.full(2 ** counts[m], met_index[m]) for m in self.simulated]
        ).astype(int)
        self._x0 = np.concatenate([np.eye(1, 2 ** counts[m]).ravel() for m in self.simulated])
        self.targets = tuple((m, tuple(sorted(p))) for m, p in targets)
        self.width = 1 + max((len(p) for _, p in self.targets), default=0)
        rows, cols, vals = [], [], []
        for i, (m, p) in enumerate(self.targets):
            if m not in offset:
                raise NetworkError(f"measured metabolite {m!r} is not traced in the network")
            mm = mid_matrix(counts[m], p)
            iso, w = np.nonzero(mm)
            rows.append(np.full(iso.size, i))
            cols.append(w)
            vals.append(offset[m] + iso)
        self._t_row = np.concatenate(rows).astype(int) if rows else np.zeros(0, int)
        self._t_bin = np.concatenate(cols).astype(int) if cols else np.zeros(0, int)
        self._t_src = np.concatenate(vals).astype(int) if vals else np.zeros(0, int)

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

    def propagate(self, x: jax.Array, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """One application of ``F(x, u)``: incoming fluxomers over total production."""
        full = jnp.concatenate([jnp.ones(1, x.dtype), x_in.astype(x.dtype), x])
        fluxomers = self._weight * u[self._flux] * jnp.prod(full[self._src], axis=1)
        incoming = jax.ops.segment_sum(fluxomers, self._tgt, num_segments=self.n_state)
        production = jax.ops.segment_sum(
            self.term_weight * u[self.term_flux], self.term_met, num_segments=len(self.simulated)
        )
        return incoming / production[self._state_met]

    def isotopomers(self, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """Steady-state isotopomer fractions of all simulated pools (implicitly differentiable)."""
        u = jnp.asarray(u)
        dtype = jnp.result_type(u, x_in)
        x_in = jnp.asarray(x_in, dtype)

        def residual(x):
            return self.propagate(x, u, x_in) - x

        def solve(f, x0):
            x = jax.lax.fori_loop(0, self.sweeps, lambda _, x: f(x) + x, x0)

            def cond(state):
                k, x = state
                return (k < self.newton_steps) & (jnp.max(jnp.abs(f(x))) > self.tol)

            def newton(state):
                k, x = state
                J = jax.jacfwd(f)(x)
                return k + 1, x - jnp.linalg.solve(J, f(x))

            return jax.lax.while_loop(cond, newton, (0, x))[1]

        def tangent_solve(g, y):
            return jnp.linalg.solve(jax.jacfwd(g)(y), y)

        return jax.lax.custom_root(residual, jnp.asarray(self._x0, dtype), solve, tangent_solve)

    def simulate(self, u: jax.Array, x_in: jax.Array) -> jax.Array:
        """Target MIDs ``(n_targets, width)``, zero-padded, at gross fluxes ``u``."""
        x = self.isotopomers(u, x_in)
        full = jnp.concatenate([jnp.ones(1, x.dtype), jnp.asarray(x_in, x.dtype), x])
        out = jnp.zeros((len(self.targets), self.width), x.dtype)
        return out.at[self._t_row, self._t_bin].add(full[self._t_src])
