"""One place that loads a linear (or mixed-integer) program into a quiet HiGHS instance.

Importing this module also silences HiGHS's banner for the whole process (see
:func:`_silence_banner`); every module that solves with HiGHS, directly or through cvxpy, imports
it first.
"""

from __future__ import annotations

import os
import sys

import highspy
import numpy as np
import scipy.sparse as sp

__all__ = ["highs_model"]


def _silence_banner() -> None:
    """Create the process's first ``Highs`` with file descriptor 1 sent to ``os.devnull``.

    HiGHS prints its version and copyright banner to C ``stdout`` once per process, when the first
    ``Highs`` object is constructed and before any option (``output_flag``) can be set; cvxpy's
    HIGHS interface constructs one per solve. Absorbing that first construction keeps every later
    one, ours and cvxpy's, quiet.
    """
    if sys.stdout is not None:
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (a detached process): nothing to print to
        highspy.Highs()
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


_silence_banner()


def _bounds(values, size: int, fill: float) -> np.ndarray:
    """Bounds as a float vector (``highspy.kHighsInf`` is IEEE infinity, so ``±inf`` pass as is)."""
    if values is None:
        return np.full(size, fill)
    return np.array(np.broadcast_to(np.asarray(values, dtype=float), size))


def highs_model(
    matrix: sp.sparray | sp.spmatrix,
    *,
    col_lower=None,
    col_upper=None,
    row_lower=None,
    row_upper=None,
    cost=None,
    integer: np.ndarray | None = None,
) -> highspy.Highs:
    """``min cost @ x  s.t.  row_lower <= A x <= row_upper, col_lower <= x <= col_upper``.

    Missing bounds are free and ``integer`` is a boolean mask of
    integer columns. Returns a ``highspy.Highs`` with output switched off and the model passed.
    """
    A = sp.csc_array(matrix)
    n_row, n_col = A.shape
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_col, n_row
    lp.col_cost_ = np.zeros(n_col) if cost is None else np.asarray(cost, dtype=float)
    lp.col_lower_ = _bounds(col_lower, n_col, -inf)
    lp.col_upper_ = _bounds(col_upper, n_col, inf)
    lp.row_lower_ = _bounds(row_lower, n_row, -inf)
    lp.row_upper_ = _bounds(row_upper, n_row, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    if integer is not None and np.any(integer):
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in np.asarray(integer, dtype=bool)
        ]
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    return highs
