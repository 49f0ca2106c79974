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
        line = line.rstrip()  # keep a leading tab: an empty first field must stay a field
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append((k, line.split("\t")))
    return rows


def _number(text: str, where: str, column: str, owner: str) -> float:
    """``float(text)`` if finite, else a :class:`ModelReadError`:
    ``"<where>: <column> '<text>' of <owner> is not a number"``."""
    try:
        value = float(text)
    except ValueError:
        raise ModelReadError(
            f"{where}: {column} {text.strip()!r} of {owner} is not a number"
        ) from None
    if not np.isfinite(value):
        raise ModelReadError(f"{where}: {column} {text.strip()!r} of {owner} is not finite")
    return value


def _name(text: str, seen: dict[str, int], path: Path, line: int, what: str) -> str:
    """The first field of a row: a non-empty ``what`` (gene, flux) not seen on earlier lines."""
    name = text.strip()
    if not name:
        raise ModelReadError(f"{path}, line {line}: empty {what} name")
    if name in seen:
        raise ModelReadError(f"{path}, line {line}: {what} {name!r} repeats line {seen[name]}")
    seen[name] = line
    return name


def read_gene_data(path: str | Path) -> pd.DataFrame:
    """Read a ``gene mean [std]`` table (header required) into a DataFrame indexed by gene.

    Missing columns, negative, non-numeric or non-finite values, empty and duplicate genes
    raise :class:`~bayesflux.errors.ModelReadError` naming the file, line, gene and column.
    """
    path = Path(path)
    rows = _lines(path)
    if not rows:
        raise ModelReadError(f"{path}: empty gene data file")
    _, header = rows[0]
    header = [h.strip().lower() for h in header]
    if header[:2] != ["gene", "mean"] or len(header) > 3:
        raise ModelReadError(
            f"{path}, line {rows[0][0]}: expected header 'gene mean [std]', "
            f"found {' '.join(header)!r}"
        )
    genes, means, stds = [], [], []
    seen: dict[str, int] = {}
    for line, fields in rows[1:]:
        gene = _name(fields[0], seen, path, line, "gene")
        where = f"{path}, line {line}"
        if len(fields) != len(header):
            problem = (
                f"lacks column {header[len(fields)]!r}"
                if len(fields) < len(header)
                else "has more fields than the header"
            )
            raise ModelReadError(
                f"{where}: expected {len(header)} tab-separated fields, found {len(fields)}: "
                f"gene {gene!r} {problem}"
            )
        values = []
        for text, column in zip(fields[1:], header[1:]):
            values.append(_number(text, where, column, f"gene {gene!r}"))
            if values[-1] < 0:
                raise ModelReadError(f"{where}: {column} {text!r} of gene {gene!r} is negative")
        genes.append(gene)
        means.append(values[0])
        stds.append(values[1] if len(values) > 1 else np.nan)
    frame = pd.DataFrame({"mean": means, "std": stds}, index=pd.Index(genes, name="gene"))
    return frame if len(header) == 3 else frame[["mean"]]


def read_flux_data(path: str | Path) -> pd.Series:
    """Read ``name<TAB>value`` rows (no header) of measured fluxes into a Series.

    Malformed rows, non-numeric or non-finite values, empty and duplicate names raise
    :class:`~bayesflux.errors.ModelReadError` naming the file, line and flux.
    """
    path = Path(path)
    names, values = [], []
    seen: dict[str, int] = {}
    for line, fields in _lines(path):
        if len(fields) != 2:
            raise ModelReadError(
                f"{path}, line {line}: expected 'name<TAB>value', found {len(fields)} field(s)"
            )
        names.append(_name(fields[0], seen, path, line, "flux"))
        values.append(_number(fields[1], f"{path}, line {line}", "value", f"flux {names[-1]!r}"))
    if not names:
        raise ModelReadError(f"{path}: no fluxes")
    return pd.Series(values, index=pd.Index(names, name="reaction_name"), name="flux")
