"""Fuzzing the command line (issue 20): random configs for ``bayesflux run`` and random GPR rules
for ``bayesflux info``; the exit status is 0, 1 or 2 and no traceback ever reaches stderr."""

from __future__ import annotations

import json
import math
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bayesflux.cli import main

#: options of the cheap kinds and of the sampler, so that wrong types and unknown keys both occur
OPTIONS = ["fraction", "reactions", "progress", "objective", "sense", "num_draws", "seed"]
KINDS = ["fba", "fva", "sample", "posterior", "no_such_kind"]

FUZZ = settings(
    max_examples=40,
    deadline=None,  # the first example imports the solvers
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def toml_value(value) -> str:
    """A TOML literal for the value (inline tables and arrays for dicts and lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["max", "min", "EX_A", "R1", "small", "0.5"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
#: cheap-to-run values are likely, so that some configs are valid and reach a step
option_values = st.one_of(
    st.sampled_from([0.5, 1.0, 2, -1, "high", True, ["R1"], {"R1": 1.0}]), values
)
steps = st.lists(
    st.fixed_dictionaries(
        {"kind": st.one_of(st.sampled_from(KINDS), values)},
        optional={"name": st.one_of(st.sampled_from(["a", "b", "posterior"]), values)},
    ).flatmap(
        lambda step: st.dictionaries(
            st.one_of(st.sampled_from(OPTIONS), st.text(max_size=6)), option_values, max_size=3
        ).map(lambda options: {**step, **options})
    ),
    max_size=3,
)
#: the output stays inside the test's folder: a safe relative name or a wrong type
outputs = st.one_of(
    st.sampled_from(["out.nc", "sub/out.nc", "."]),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
)
models = st.one_of(st.sampled_from(["small", "no_such_model", "model.json"]), scalars)


def config_text(model, bounds, output, step_list, extra) -> str:
    lines = ["[model]", f"source = {toml_value(model)}"]
    if bounds is not None:
        lines.append(f"bounds = {toml_value(bounds)}")
    lines += ["", "[output]", f"path = {toml_value(output)}"]
    for key, value in extra.items():
        lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    for step in step_list:
        lines += ["", "[[step]]"] + [f"{json.dumps(k)} = {toml_value(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"


def assert_clean(status: int, err: str) -> None:
    assert status in (0, 1, 2), status
    assert "Traceback" not in err, err
    if status == 1:
        assert err.strip().splitlines()[-1].startswith("bayesflux: error: "), err


@FUZZ
@given(
    model=models,
    bounds=st.none() | st.dictionaries(st.sampled_from(["EX_A", "R1", "nope"]), values, max_size=2),
    output=outputs,
    step_list=steps,
    extra=st.dictionaries(st.sampled_from(["report", "unknown"]), values, max_size=1),
    garbage=st.sampled_from(["", "", "", "[[step]\n", "x = \n", "\x00"]),
)
def test_random_configs_never_leak_a_traceback(
    tmp_path_factory, capsys, model, bounds, output, step_list, extra, garbage
):
    folder = tmp_path_factory.mktemp("config")
    (folder / "model.json").write_text(json.dumps(tiny_model("g1 and g2")))
    config = folder / "config.toml"
    config.write_text(config_text(model, bounds, output, step_list, extra) + garbage)
    status = main(["run", str(config)])
    assert_clean(status, capsys.readouterr().err)


GENES = "gene\tmean\tstd\ng1\t3\t0.3\ng2\t1\t0.1\ng3\t0.5\t0.1\ng4\t4\t1\ng5\t2\t0.5\n"

#: values that fit each option of the cheap kinds, so that most drawn steps run and a wrong
#: value (drawn from ``option_values``) meets a step the schema let through
GOOD = {
    "objective": [{"R1": 1.0}, {"BIOMASS": 1}],
    "sense": ["max", "min"],
    "fraction": [0.5, 1.0, 0],
    "reactions": [["R1", "BIOMASS"], []],
    "progress": [False],
    "expression": ["genes.txt"],
    "method": ["min_disjunction", "plain"],
    "or_": ["sum", "max"],
    "alpha": [1.0, 0.5],
    "measured": [{"BIOMASS": 1.0}],
    "gpr_method": ["min_disjunction", "plain"],
}
CHEAP = {
    "fba": ["objective", "sense"],
    "fva": ["fraction", "reactions", "progress"],
    "enzyme_abundance": ["expression", "method", "or_"],
    "eflux": ["expression", "alpha", "measured", "gpr_method"],
}


def _options(kind: str) -> st.SearchStrategy[dict]:
    """A subset of ``kind``'s own options, each a fitting value or any value."""
    keys = st.lists(st.sampled_from(CHEAP[kind]), unique=True, max_size=len(CHEAP[kind]))
    return keys.flatmap(
        lambda chosen: st.fixed_dictionaries(
            {k: st.sampled_from(GOOD[k]) | option_values for k in chosen}
        ).map(lambda options: {"kind": kind, **options})
    )


def test_the_cheap_kinds_take_exactly_these_options():
    """CHEAP lists every option of its kinds, so the fuzz below reaches each of them."""
    import bayesflux.steps  # noqa: F401
    from bayesflux.config import STEPS

    assert {k: list(STEPS[k].options) for k in CHEAP} == CHEAP


@FUZZ
@given(
    step_list=st.lists(st.sampled_from(sorted(CHEAP)).flatmap(_options), min_size=1, max_size=2),
    bounds=st.none() | st.dictionaries(st.sampled_from(["EX_A", "R1"]), values, max_size=1),
)
def test_real_options_with_any_values_never_leak_a_traceback(
    tmp_path_factory, capsys, step_list, bounds
):
    """Known options of steps that run in milliseconds, with right and wrong values: a bad
    value is refused in one line or the step runs; the schema must catch what a step would
    trip over (``fraction = "high"``, ``reactions = 5``, ``objective = [1, 2]``, ...)."""
    folder = tmp_path_factory.mktemp("steps")
    (folder / "genes.txt").write_text(GENES)
    for i, step in enumerate(step_list):
        step["name"] = f"s{i}"
    config = folder / "config.toml"
    config.write_text(config_text("small", bounds, "out.nc", step_list, {}))
    status = main(["run", str(config)])
    assert_clean(status, capsys.readouterr().err)
    assert status in (0, 1)


def tiny_model(rule: str) -> dict:
    """A cobra JSON model: ``A`` taken up and turned into ``B``, which leaves; R1 has ``rule``."""
    return {
        "id": "tiny",
        "metabolites": [
            {"id": "A", "compartment": "c"},
            {"id": "B", "compartment": "c"},
        ],
        "reactions": [
            {"id": "EX_A", "metabolites": {"A": 1}, "lower_bound": 0, "upper_bound": 10},
            {
                "id": "R1",
                "metabolites": {"A": -1, "B": 1},
                "lower_bound": 0,
                "upper_bound": 1000,
                "gene_reaction_rule": rule,
                "objective_coefficient": 1,
            },
            {"id": "EX_B", "metabolites": {"B": -1}, "lower_bound": 0, "upper_bound": 1000},
        ],
        "genes": [],
        "compartments": {"c": "cytosol"},
    }


tokens = st.one_of(
    st.sampled_from(["and", "or", "AND", "OR", "(", ")", "g1", "g2", "b0001", "x(0)", "not"]),
    st.text(alphabet=string.printable + "äß→", min_size=1, max_size=4),
)
rules = st.one_of(
    st.lists(tokens, max_size=12).map(" ".join),
    st.text(max_size=20),
    st.integers(1, 3000).map(lambda n: "(" * n + "g1" + ")" * n),
    st.integers(1, 30).map(lambda n: " or ".join(f"(a{i} and b{i})" for i in range(n))),
)


#: the genes the rules above name, with data, so that ``enzyme_abundance`` evaluates them
RULE_GENES = "gene\tmean\n" + "".join(
    f"{g}\t{k + 1}\n"
    for k, g in enumerate(["g1", "g2", "b0001"] + [f"{c}{i}" for c in "ab" for i in range(30)])
)


@FUZZ
@given(rule=rules)
@example(rule=" or ".join(f"(a{i} and b{i})" for i in range(25)))  # 2**25 clauses: a hang
@example(
    rule="g1" + "".join(f" {('or', 'and')[i % 2]} (a{i % 30}" for i in range(3000)) + ")" * 3000
)
@example(rule="(" * 3000 + "g1" + ")" * 3000)
@example(rule="g€1 and ｇ２ or x(0)")
def test_random_gpr_rules_never_leak_a_traceback(tmp_path_factory, capsys, rule):
    """Through ``info`` (the model reader) and through a step that parses every rule and turns
    it into CNF (``enzyme_abundance`` by ``min_disjunction``)."""
    folder = tmp_path_factory.mktemp("gpr")
    (folder / "model.json").write_text(json.dumps(tiny_model(rule)))
    status = main(["info", str(folder / "model.json")])
    out, err = capsys.readouterr()
    assert_clean(status, err)
    if status == 0:
        assert "3 reactions" in out
    (folder / "genes.txt").write_text(RULE_GENES)
    (folder / "run.toml").write_text(
        f'[model]\nsource = "{folder / "model.json"}"\n[[step]]\nkind = "enzyme_abundance"\n'
        f'expression = "{folder / "genes.txt"}"\n'
    )
    status = main(["run", str(folder / "run.toml")])
    assert_clean(status, capsys.readouterr().err)
