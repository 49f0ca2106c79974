"""Execute every notebook in ``notebooks/`` with nbclient; check each matches its builder.

Each notebook reproduces one seed's central result at small size (``expression_mapping``: seed
000, ``fluxomers``: 001, ``thermodynamics``: 002, ``falcon_yeast``: 003) or walks through a real
13C fit (``mfa_fit``), the enzyme-constrained and ME-lite models (``enzyme_models``: overflow
metabolism, issue 21); their cells carry ``assert`` statements on the claims they show, so a
notebook that runs to the end has reproduced them. Notebooks reading ``../shared/data`` skip
without it (a failure under ``CI=true``, see the ``shared_data`` fixture).

Run times: ``pytest tests/test_notebooks.py --durations=0``. Each notebook runs in well under a
minute on an idle 2-core machine; the limit below leaves room for a loaded one.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
BUILDERS = sorted(NOTEBOOKS.glob("build_*.py"))
#: notebooks that read the benchmark data in ../shared/data
NEEDS_SHARED_DATA = {"falcon_yeast.ipynb", "expression_posterior.ipynb"}
#: seconds per notebook (also nbclient's per-cell limit); several times the idle run time
TIMEOUT = 300
KERNEL = "python3"


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """The ``python3`` kernel of this interpreter, its spec installed into ``sys.prefix`` if absent.

    jupyter_client starts a spec whose ``argv[0]`` is ``python`` with ``sys.executable``, so the
    kernel runs in the same virtual environment as the tests.
    """
    import ipykernel.kernelspec

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        ipykernel.kernelspec.install(kernel_name=KERNEL, prefix=sys.prefix)
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    assert spec.language == "python"
    return KERNEL


def test_every_seed_has_a_notebook():
    names = {p.name for p in PATHS}
    for name in ("expression_mapping", "fluxomers", "thermodynamics", "falcon_yeast"):
        assert f"{name}.ipynb" in names, f"notebooks/{name}.ipynb is missing"


def _builder(path: Path):
    sys.path.insert(0, str(NOTEBOOKS))  # the builders import the shared notebooks/_build.py
    try:
        spec = importlib.util.spec_from_file_location(f"_nb_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(NOTEBOOKS))
    return module


@pytest.mark.parametrize("builder", BUILDERS, ids=[p.stem for p in BUILDERS])
def test_notebook_is_built_from_its_builder(builder):
    """The stored notebook's cells are its builder's cells (rebuild after editing a builder)."""
    module = _builder(builder)
    nb = nbformat.read(NOTEBOOKS / module.NOTEBOOK, as_version=4)
    stored = [("md" if c.cell_type == "markdown" else c.cell_type, c.source) for c in nb.cells]
    assert stored == [tuple(c) for c in module.CELLS], (
        f"notebooks/{module.NOTEBOOK} differs from {builder.name}; run "
        f"`.venv/bin/python notebooks/{builder.name}`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, kernel_name, request):
    if path.name in NEEDS_SHARED_DATA:
        request.getfixturevalue("shared_data")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:  # its message holds the cell's source and traceback
        pytest.fail(f"{path.name}: a cell raised\n{exc}", pytrace=False)
    except CellTimeoutError as exc:
        pytest.fail(f"{path.name}: a cell ran past {TIMEOUT} s\n{exc}", pytrace=False)
    elapsed = time.perf_counter() - start
    assert elapsed < TIMEOUT, f"{path.name} took {elapsed:.0f} s (limit {TIMEOUT} s)"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= 1, f"{path.name} draws no figure"
