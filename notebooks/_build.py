"""Shared helper of the ``build_*.py`` notebook builders: cells -> executed ``.ipynb``.

A builder lists its cells as ``("md" | "code", source)`` pairs and calls :func:`build`, which
writes the notebook with nbformat and executes it in place with nbclient (kernel ``python3``,
working directory ``notebooks/``), so the stored notebook carries its outputs and plots.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient

__all__ = ["build", "notebook"]

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def notebook(cells: Sequence[tuple[str, str]]) -> nbformat.NotebookNode:
    """A version-4 notebook of markdown (``"md"``) and code (``"code"``) cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for kind, _ in cells:
        if kind not in ("md", "code"):
            raise ValueError(f"cell kind must be 'md' or 'code', not {kind!r}")
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    return nb


def build(cells: Sequence[tuple[str, str]], path: Path, *, timeout: int = 600) -> float:
    """Write ``cells`` to ``path`` as an executed notebook; returns the run time in seconds."""
    nb = notebook(cells)
    start = time.perf_counter()
    resources = {"metadata": {"path": str(path.parent)}}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources)
    try:
        client.execute()
    finally:  # a failed run is written too, with the error in its cell, for inspection
        nbformat.write(nb, path)
    elapsed = time.perf_counter() - start
    print(f"{path.name}: executed in {elapsed:.1f} s")
    return elapsed
