"""Natural isotope abundances, fragment formulas and MS correction matrices.

The measured mass distribution of a fragment is the convolution of its carbon backbone's mass
isotopomer distribution (MID, from the tracer) with the natural isotope distribution of all its
other atoms (H, N, O, Si, S of the molecule and its derivatisation group, e.g. TBDMS), and with
natural 13C at the backbone positions that carry no tracer carbon: ``m = C x`` with column ``i``
of ``C`` the distribution of a fragment with ``i`` tracer carbons (Wahl, Dauner & Wiechert 2004;
IsoCor, Millard et al. 2012/2019). Abundances are IUPAC's (the values IsoCor ships).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import scipy.optimize

from bayesflux.errors import NetworkError

__all__ = [
    "ABUNDANCE",
    "DERIVATIVES",
    "parse_formula",
    "natural_distribution",
    "correction_matrix",
    "correct",
]

#: relative abundance by mass offset from the lightest isotope (IUPAC 1997 representative values)
ABUNDANCE: dict[str, np.ndarray] = {
    "C": np.array([0.9893, 0.0107]),
    "H": np.array([0.999885, 0.000115]),
    "N": np.array([0.99636, 0.00364]),
    "O": np.array([0.99757, 0.00038, 0.00205]),
    "Si": np.array([0.92223, 0.04685, 0.03092]),
    "S": np.array([0.9499, 0.0075, 0.0425, 0.0, 0.0001]),
    "P": np.array([1.0]),
}

#: formulas of common derivatisation groups (added once per derivatised site)
DERIVATIVES: dict[str, str] = {"TBDMS": "C6H15Si", "TMS": "C3H9Si", "MOX": "CH3N"}

_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_formula(formula: str | Mapping[str, int]) -> dict[str, int]:
    """``"C11H26NO2Si2"`` -> ``{"C": 11, "H": 26, "N": 1, "O": 2, "Si": 2}``.

    Raises
    ------
    NetworkError
        For text that is not a formula or for an element without abundance data.
    """
    if isinstance(formula, Mapping):
        out = {str(k): int(v) for k, v in formula.items()}
    else:
        text = formula.replace(" ", "")
        out = {}
        if "".join(m.group(0) for m in _TOKEN.finditer(text)) != text or not text:
            raise NetworkError(f"cannot parse formula {formula!r}")
        for el, n in _TOKEN.findall(text):
            out[el] = out.get(el, 0) + (int(n) if n else 1)
    for el, n in out.items():
        if el not in ABUNDANCE:
            raise NetworkError(f"formula {formula!r}: no isotope data for element {el!r}")
        if n < 0:
            raise NetworkError(f"formula {formula!r}: negative count of {el!r}")
    return out


def natural_distribution(formula: str | Mapping[str, int]) -> np.ndarray:
    """Mass distribution (by nominal mass offset) of a formula at natural abundance."""
    out = np.ones(1)
    for el, n in parse_formula(formula).items():
        for _ in range(n):
            out = np.convolve(out, ABUNDANCE[el])
    return out


def correction_matrix(
    formula: str | Mapping[str, int],
    n_tracer: int,
    *,
    n_measured: int | None = None,
    purity: float = 1.0,
    correct_na_tracer: bool = True,
) -> np.ndarray:
    """``(n_measured, n_tracer + 1)`` matrix mapping a backbone MID to the measured MID.

    Parameters
    ----------
    formula
        Formula of the whole measured fragment, derivative included; it must hold at least
        ``n_tracer`` carbons.
    n_tracer
        Carbons of the fragment that come from the traced metabolite (the backbone).
    n_measured
        Mass isotopomers measured (rows); default ``n_tracer + 1``.
    purity
        13C purity of the tracer: a labelled position is 12C with probability ``1 - purity``.
    correct_na_tracer
        Whether unlabelled backbone carbons carry natural 13C (IsoCor's ``correct_NA_tracer``).
    """
    f = parse_formula(formula)
    if f.get("C", 0) < n_tracer:
        raise NetworkError(
            f"formula {formula!r} has fewer than {n_tracer} carbons for the backbone"
        )
    f["C"] = f.get("C", 0) - n_tracer
    rest = natural_distribution(f)
    n_measured = n_tracer + 1 if n_measured is None else n_measured
    out = np.zeros((n_measured, n_tracer + 1))
    for i in range(n_tracer + 1):
        col = rest
        for _ in range(i):
            col = np.convolve(col, [1.0 - purity, purity])
        if correct_na_tracer:
            for _ in range(n_tracer - i):
                col = np.convolve(col, ABUNDANCE["C"])
        col = col[:n_measured]
        out[: col.size, i] = col
    return out


def correct(measured: np.ndarray, matrix: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """Backbone MID from a measured one: non-negative least squares ``min ||C x - m||``."""
    measured = np.asarray(measured, float)
    x, _ = scipy.optimize.nnls(matrix, measured)
    return x / x.sum() if normalize and x.sum() > 0 else x
