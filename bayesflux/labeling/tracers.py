"""Substrate tracers: mixtures of labelled species with purities, and labelling experiments.

A tracer species is a pattern over a substrate's atoms, ``"100000"`` for [1-13C]glucose or
``"111111"`` for [U-13C]glucose; its purity is the probability that each position written ``1`` is
13C, and the other positions are 13C with probability ``natural`` (0 by default, i.e. the
measurements are corrected for natural 13C of the backbone; 0.0107 to simulate uncorrected
data). The isotopomer distribution of the substrate is the mixture
``x = sum_k f_k (x) over positions p of Bernoulli(q_kp)`` over its species ``k``.
Isotopomer index bit ``p`` set means atom ``p`` (0-based, in the written atom order) is 13C.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bayesflux.errors import NetworkError

__all__ = ["Species", "Experiment", "isotopomer_distribution", "NATURAL_13C"]

NATURAL_13C = 0.0107


@dataclass(frozen=True)
class Species:
    """One labelled form of a substrate in a tracer mixture."""

    pattern: str
    fraction: float
    purity: float = 1.0


@dataclass(frozen=True)
class Experiment:
    """One labelling experiment: the tracer mixture fed for each input metabolite.

    Inputs not named here are unlabelled (all positions at ``natural``). Several experiments
    fitted together share one flux vector (parallel labelling experiments).
    """

    name: str
    tracers: Mapping[str, Sequence[Species]] = field(default_factory=dict)
    natural: float = 0.0

    @classmethod
    def from_dict(
        cls,
        name: str,
        tracers: Mapping[str, Mapping[str, float | tuple[float, float]]],
        *,
        natural: float = 0.0,
    ) -> Experiment:
        """``{"Glc": {"100000": 0.8, "111111": (0.2, 0.99)}}``: fraction, or (fraction, purity)."""
        out = {}
        for met, mix in tracers.items():
            species = []
            for pattern, spec in mix.items():
                f, p = spec if isinstance(spec, tuple) else (spec, 1.0)
                species.append(Species(pattern, float(f), float(p)))
            out[met] = tuple(species)
        return cls(name, out, natural)


def isotopomer_distribution(
    n_atoms: int, species: Sequence[Species], *, natural: float = 0.0, metabolite: str = "?"
) -> np.ndarray:
    """Isotopomer fractions (length ``2**n_atoms``) of a tracer mixture.

    Species fractions must sum to 1 (within 1e-6); a mixture given as less than 1 is completed
    with the unlabelled species.
    """
    if not species:
        species = (Species("0" * n_atoms, 1.0),)
    total = sum(s.fraction for s in species)
    if total > 1.0 + 1e-6 or any(s.fraction < 0 for s in species):
        raise NetworkError(
            f"tracer fractions of {metabolite!r} sum to {total:.6g} (> 1) or are negative"
        )
    if total < 1.0 - 1e-6:
        species = (*species, Species("0" * n_atoms, 1.0 - total))
    idx = np.arange(2**n_atoms)
    bits = (idx[:, None] >> np.arange(n_atoms)[None, :]) & 1
    x = np.zeros(2**n_atoms)
    for s in species:
        pattern = s.pattern.lstrip("#")
        if len(pattern) != n_atoms or set(pattern) - {"0", "1"}:
            raise NetworkError(
                f"tracer pattern {s.pattern!r} of {metabolite!r} must be {n_atoms} digits 0/1"
            )
        if not 0.0 <= s.purity <= 1.0:
            raise NetworkError(f"tracer purity {s.purity} of {metabolite!r} is not in [0, 1]")
        q = np.array([s.purity if c == "1" else natural for c in pattern])
        x += s.fraction * np.prod(np.where(bits == 1, q, 1.0 - q), axis=1)
    return x
