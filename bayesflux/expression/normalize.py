"""RNA-seq count normalisation: CPM, FPKM and TPM (seed 000, section on expression units).

For raw counts ``c_gs`` of gene ``g`` in sample ``s``, library size ``N_s = sum_g c_gs`` and gene
length ``L_g`` in bases:

* ``CPM_gs  = c_gs / N_s * 1e6``
* ``FPKM_gs = c_gs / (L_g / 1e3) / (N_s / 1e6) = c_gs * 1e9 / (L_g N_s)``
* ``TPM_gs  = (c_gs / L_g) / sum_h (c_hs / L_h) * 1e6``

Counts are a genes x samples ``DataFrame`` (or a ``Series`` for one sample); lengths a ``Series``
indexed by gene. Negative or missing counts, missing or non-positive lengths and empty libraries
raise ``ValueError`` naming the gene or sample at fault.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["cpm", "fpkm", "tpm"]


def _counts(counts: pd.DataFrame | pd.Series) -> pd.DataFrame:
    frame = counts.to_frame() if isinstance(counts, pd.Series) else pd.DataFrame(counts)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise ValueError(f"gene {dup!r} appears more than once in the counts")
    try:
        values = frame.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"counts must be numeric: {exc}") from exc
    bad = np.argwhere(np.isnan(values))
    if bad.size:
        g, s = bad[0]
        raise ValueError(f"missing (NaN) count for gene {frame.index[g]!r} in sample "
                         f"{frame.columns[s]!r}")
    bad = np.argwhere(values < 0)
    if bad.size:
        g, s = bad[0]
        raise ValueError(f"negative count {values[g, s]} for gene {frame.index[g]!r} in sample "
                         f"{frame.columns[s]!r}")
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        g, s = bad[0]
        raise ValueError(f"infinite count for gene {frame.index[g]!r} in sample "
                         f"{frame.columns[s]!r}")
    empty = np.flatnonzero(values.sum(axis=0) == 0)
    if empty.size:
        raise ValueError(f"sample {frame.columns[empty[0]]!r} has no counts (library size 0)")
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)


def _lengths(lengths: pd.Series | Mapping[str, float], genes: pd.Index) -> np.ndarray:
    series = pd.Series(lengths, dtype=float)
    missing = genes.difference(series.index)
    if len(missing):
        shown = ", ".join(map(repr, list(missing[:5])))
        raise ValueError(f"no length for {len(missing)} gene(s): {shown}")
    out = series.reindex(genes).to_numpy(dtype=float)
    bad = np.flatnonzero(~(out > 0) | ~np.isfinite(out))
    if bad.size:
        raise ValueError(f"gene {genes[bad[0]]!r} has invalid length {out[bad[0]]} (must be > 0)")
    return out


def _like(values: np.ndarray, frame: pd.DataFrame, counts) -> pd.DataFrame | pd.Series:
    out = pd.DataFrame(values, index=frame.index, columns=frame.columns)
    return out.iloc[:, 0].rename(counts.name) if isinstance(counts, pd.Series) else out


def cpm(counts: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Counts per million: ``c_gs / N_s * 1e6``."""
    frame = _counts(counts)
    values = frame.to_numpy()
    return _like(values / values.sum(axis=0) * 1e6, frame, counts)


def fpkm(
    counts: pd.DataFrame | pd.Series, lengths: pd.Series | Mapping[str, float]
) -> pd.DataFrame | pd.Series:
    """Fragments per kilobase per million mapped: ``c_gs * 1e9 / (L_g N_s)``; lengths in bases."""
    frame = _counts(counts)
    L = _lengths(lengths, frame.index)
    values = frame.to_numpy()
    return _like(values * 1e9 / (L[:, None] * values.sum(axis=0)), frame, counts)


def tpm(
    counts: pd.DataFrame | pd.Series, lengths: pd.Series | Mapping[str, float]
) -> pd.DataFrame | pd.Series:
    """Transcripts per million: ``(c_gs / L_g) / sum_h (c_hs / L_h) * 1e6``; lengths in bases."""
    frame = _counts(counts)
    L = _lengths(lengths, frame.index)
    rate = frame.to_numpy() / L[:, None]
    return _like(rate / rate.sum(axis=0) * 1e6, frame, counts)
