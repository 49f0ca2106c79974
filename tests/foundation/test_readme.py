"""The README documents what there is (issue 20): every notebook, every step kind, every command
and the fast test subset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bayesflux.steps  # noqa: F401  (registers the step kinds)
from bayesflux.cli import _parser
from bayesflux.config import STEPS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_readme_names_every_notebook(notebook):
    assert f"`{notebook}`" in README


def test_readme_names_every_step_kind():
    assert STEPS
    missing = [kind for kind in STEPS if f"`{kind}`" not in README]
    assert missing == []


def test_readme_shows_every_command():
    block = re.search(r"## Command line\n\n```\n(.*?)```", README, re.S)
    assert block is not None
    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    assert {line.split()[1] for line in block.group(1).splitlines()} == set(commands)


def test_readme_gives_the_fast_subset_and_the_full_command():
    assert '.venv/bin/python -m pytest -m "not slow"' in README
    assert "bash scripts/setup.sh && .venv/bin/python -m pytest\n" in README
    markers = (ROOT / "pyproject.toml").read_text()
    assert '"slow: ' in markers
