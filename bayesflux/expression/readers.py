"""Readers for expression and measured-flux tables, such as the Lee et al. (2012) yeast files.

The Lee 2012 gene files (``genedata_75.txt``) are tab-separated with a header ``gene mean std``;
the flux files (``experimental_fluxes_75.txt``) hold ``name<TAB>value`` rows without a header.
Both use bare CR (old Mac) line endings, which universal-newline reading handles (LF and CRLF
work too).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from bayesflux.errors import ModelReadError

__all__ = ["read_gene_data", "read_flux_data"]


def _lines(path: str | Path) -> list[tuple[int, list[str]]]:
    path = Path(path)
    try:
        with open(path, newline=None, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelReadError(f"could not read {path}: {exc}") from exc
    rows = []
    for k, line in enumerate(io.StringIO(text, newline=None), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append((k, line.split("\t")))
    return rows


def _number(text: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ModelReadError(f"{path}, line {line}: {what} {text!r} is not a number") from None
    if not np.isfinite(value):
        raise ModelReadError(f"{path}, line {line}: {what} is {text!r}")
    return value


def read_gene_data(path: str | Path) -> pd.DataFrame:
    """Read a ``gene mean [std]`` table (header required) into a DataFrame indexed by gene.

    Negative or non-numeric values and duplicate genes raise
    :class:`~bayesflux.errors.ModelReadError` naming the file and line.
    """
    path = Path(path)
    rows = _lines(path)
    if not rows:
        raise ModelReadError(f"{path}: empty gene data file")
    _, header = rows[0]
    header = [h.strip().lower() for h in header]
    if header[:2] != ["gene", "mean"] or len(header) > 3:
        raise ModelReadError(f"{path}, line {rows[0][0]}: expected header 'gene mean [std]', "
                             f"found {' '.join(header)!r}")
    genes, means, stds = [], [], []
    seen: dict[str, int] = {}
    for line, fields in rows[1:]:
        if len(fields) != len(header):
            raise ModelReadError(f"{path}, line {line}: expected {len(header)} tab-separated "
                                 f"fields, found {len(fields)}")
        gene = fields[0].strip()
        if gene in seen:
            raise ModelReadError(f"{path}, line {line}: gene {gene!r} repeats line {seen[gene]}")
        seen[gene] = line
        values = [_number(f, path, line, name) for f, name in zip(fields[1:], header[1:])]
        if min(values) < 0:
            raise ModelReadError(f"{path}, line {line}: negative value for gene {gene!r}")
        genes.append(gene)
        means.append(values[0])
        stds.append(values[1] if len(values) > 1 else np.nan)
    frame = pd.DataFrame({"mean": means, "std": stds}, index=pd.Index(genes, name="gene"))
    return frame if len(header) == 3 else frame[["mean"]]


def read_flux_data(path: str | Path) -> pd.Series:
    """Read ``name<TAB>value`` rows (no header) of measured fluxes into a Series."""
    path = Path(path)
    names, values = [], []
    for line, fields in _lines(path):
        if len(fields) != 2:
            raise ModelReadError(f"{path}, line {line}: expected 'name<TAB>value', found "
                                 f"{len(fields)} field(s)")
        names.append(fields[0].strip())
        values.append(_number(fields[1], path, line, "flux"))
    if not names:
        raise ModelReadError(f"{path}: no fluxes")
    return pd.Series(values, index=pd.Index(names, name="reaction_name"), name="flux")
