"""Config validation and checkpointed, resumable runs of the pipeline."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from bayesflux import ConfigError
from bayesflux.pipeline import STEPS, load_config, run_config


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


GOOD = """
[model]
source = "small"
bounds = { EX_A = [-4, 1000] }
[output]
path = "res.nc"
[[step]]
kind = "fba"
[[step]]
kind = "fva"
name = "fva_half"
fraction = 0.5
progress = false
"""


def test_run_writes_each_step_and_applies_bounds(tmp_path):
    tree = run_config(write(tmp_path, GOOD), echo=lambda s: None)
    assert tree["fba"].attrs["objective_value"] == pytest.approx(4.0)
    assert tree["fva_half"].to_dataset()["minimum"].sel(reaction="BIOMASS") == pytest.approx(2.0)
    assert (tmp_path / "res.nc").exists()


def test_interrupted_run_keeps_finished_steps_and_resumes(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    calls = []
    real = STEPS["fva"]

    @functools.wraps(real.function)
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(STEPS, "fva", dataclasses.replace(real, function=interrupted))
    with pytest.raises(KeyboardInterrupt):
        run_config(path, echo=calls.append)
    monkeypatch.setitem(STEPS, "fva", real)
    calls.clear()
    run_config(path, echo=calls.append)
    assert "[fba] reused from" in " ".join(calls)
    assert any(c.startswith("[fva_half] running fva") for c in calls)
    calls.clear()
    run_config(path, echo=calls.append)
    assert sum("reused" in c for c in calls) == 2
    calls.clear()
    run_config(write(tmp_path, GOOD.replace("0.5", "0.25")), echo=calls.append)
    assert any(c.startswith("[fva_half] running") for c in calls)  # changed options: recomputed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model\n", "invalid TOML"),
        (
            "[model]\nsource='small'\n[[step]]\nkind='fba'\n[extra]\n",
            r"unknown section\(s\) \['extra'\]",
        ),
        ("[model]\n[[step]]\nkind='fba'\n", "needs 'source'"),
        ("[model]\nsource='small'\n", r"no \[\[step\]\] given"),
        ("[model]\nsource='small'\n[[step]]\nkind='magic'\n", "step 1 has kind 'magic'"),
        (
            "[model]\nsource='small'\n[[step]]\nkind='fva'\nfractoin=0.5\n",
            r"step 1 \(fva\): unknown option\(s\) \['fractoin'\]",
        ),
        ("[model]\nsource='small'\n[[step]]\nkind='fba'\n[[step]]\nkind='fba'\n", "used twice"),
        # ArviZ would read a DataTree named after one of its groups as that group
        (
            "[model]\nsource='small'\n[[step]]\nkind='sample'\nname='posterior'\n",
            "'posterior' is an ArviZ group name",
        ),
        (
            "[model]\nsource='small'\n[[step]]\nkind='fba'\nname='warmup_sample_stats'\n",
            "ArviZ group name",
        ),
        (
            "[model]\nsource='small'\nbounds={R1=[1]}\n[[step]]\nkind='fba'\n",
            "bounds for 'R1' must be",
        ),
    ],
)
def test_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_default_step_names_avoid_arviz_groups(tmp_path):
    """A step is named after its kind, the ``posterior`` kind ``flux_posterior`` (not an ArviZ
    group name); a ``name`` that is no group name is kept."""
    text = (
        "[model]\nsource='small'\n[[step]]\nkind='fba'\n[[step]]\nkind='posterior'\n"
        "[[step]]\nkind='posterior'\nname='joint'\n"
    )
    steps = load_config(write(tmp_path, text)).steps
    assert [(name, kind) for name, kind, _ in steps] == [
        ("fba", "fba"),
        ("flux_posterior", "posterior"),
        ("joint", "posterior"),
    ]
