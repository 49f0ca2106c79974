"""FluxML reader: round trips with our writer, closed forms, variants against our symmetric
molecules, the models of Stratmann et al. (2025), and x3cflux as a peer where installed."""

from __future__ import annotations

import importlib.resources
import importlib.util
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesflux.errors import ModelReadError
from bayesflux.labeling import (
    EnrichmentMeasurement,
    Experiment,
    FluxMeasurement,
    LabelingNetwork,
    LabelingProblem,
    MSMeasurement,
    Species,
    read_fluxml,
    read_ftbl,
)
from bayesflux.labeling.fit import random_starts
from bayesflux.labeling.fluxml import (
    X3CFLUX_NATURAL_13C,
    FluxMLModel,
    fluxml_string,
    read_fluxml_inputs,
    write_fluxml,
)
from bayesflux.labeling.measurements import atom_positions

STRATMANN = "fluxml_stratmann2025"


def _options(model) -> dict:
    return dict(
        fixed=model.fixed,
        equalities=model.equalities,
        fixed_xch=model.fixed_xch,
        xch_equalities=model.xch_equalities,
        start=model.start,
    )


def _key(m) -> tuple:
    """What a measurement says, independent of its name and of how sds are broadcast."""
    if isinstance(m, MSMeasurement):
        sd = np.broadcast_to(np.asarray(m.sd, float), (len(m.values),))
        pos = atom_positions(m.atoms)
        return ("ms", m.metabolite, pos, tuple(m.values), tuple(sd), m.mass_shifts, m.scale)
    if isinstance(m, EnrichmentMeasurement):
        return ("fe", m.metabolite, m.position, m.value, m.sd)
    return ("flux", m.reaction, m.value, m.sd)


def _same_model(a, b) -> None:
    """Two models (one written and read back) define the same fit problem."""
    na, nb = a.network, b.network
    assert na.reaction_ids == nb.reaction_ids
    assert na.reversible_ids == nb.reversible_ids
    assert na.inputs == nb.inputs
    assert dict(na.bounds) == dict(nb.bounds)
    assert a.fixed == b.fixed and a.fixed_xch == b.fixed_xch and a.start == b.start
    assert [dict(c) | {"=": v} for c, v in a.equalities] == [
        dict(c) | {"=": v} for c, v in b.equalities
    ]
    assert [dict(c) | {"=": v} for c, v in a.xch_equalities] == [
        dict(c) | {"=": v} for c, v in b.xch_equalities
    ]
    assert sorted(map(_key, a.measurements), key=str) == sorted(map(_key, b.measurements), key=str)
    assert a.experiment.natural == b.experiment.natural
    assert {k: tuple(v) for k, v in a.experiment.tracers.items()} == {
        k: tuple(v) for k, v in b.experiment.tracers.items()
    }


# ------------------------------------------------------------------ round trips with the writer
EXCRETED = {  # E is excreted (never consumed): FluxML leaves it out, its atom goes to v3.lost
    "v1": "A (abc) -> B (abc)",
    "v2": "B (abc) <-> D (abc)",
    "v3": "B (abc) -> C (bc) + E (a)",
    "v4": "C (ab) + D (cde) -> F (abcde)",
    "v5": "F (abcde) -> ",
    "v6": "D (abc) -> ",
}


@pytest.mark.parametrize("case", ["toy", "excreted"])
def test_write_read_round_trip_keeps_model_and_mids(case, toy, tmp_path):
    if case == "toy":
        network = toy
        ms = [
            MSMeasurement("e", "F", "1-3", [0.5, 0.3, 0.15, 0.05], 0.01, scale="none"),
            MSMeasurement("e", "D", "1,2", [0.4, 0.1], [0.02, 0.03], scale="free", masses=(1, 2)),
            EnrichmentMeasurement("e", "F", 2, 0.3, 0.01),
            FluxMeasurement("v5", 55.0, 2.0),
        ]
        fixed, eqs = {"v1": 100.0}, [({"v3": 1.0, "v4": 1.0}, 40.0)]
        start = {"v2.xch": 5.0}
    else:
        network = LabelingNetwork.from_strings(EXCRETED, bounds={"v2": (-50.0, 80.0)})
        ms = [MSMeasurement("e", "F", "2-5", [0.5, 0.3, 0.1, 0.05, 0.05], 0.01, scale="free")]
        fixed, eqs, start = {"v1": 10.0}, [], {"v3.net": 2.0, "v2.xch": 1.5}
    tracer = {"A": (Species("100", 0.6, 0.99), Species("111", 0.4, 0.995))}
    experiment = Experiment("e", tracer, X3CFLUX_NATURAL_13C)
    options = dict(fixed=fixed, equalities=eqs, start=start)
    path = write_fluxml(tmp_path / "m.fml", network, experiment, ms, **options)
    model = read_fluxml(path)
    assert isinstance(model, FluxMLModel) and model.stationary and model.notes == ()
    assert model.experiment.natural == X3CFLUX_NATURAL_13C
    assert dict(model.experiment.tracers) == tracer
    assert [_key(m) for m in model.measurements] == [_key(m) for m in ms], "measurements differ"
    assert model.fixed == fixed and model.start == start
    assert [dict(c) | {"=": v} for c, v in model.equalities] == [c | {"=": v} for c, v in eqs]
    assert model.network.reaction_ids == network.reaction_ids
    assert model.network.reversible_ids == network.reversible_ids
    assert dict(model.network.bounds) == dict(network.bounds)
    assert model.xch_bounds == {r: (0.0, 1000.0) for r in network.reversible_ids}
    lost = {o.metabolite for r in model.network.reactions for o in r.products} - set(
        network.atom_counts
    )
    assert lost == ({"v3.lost"} if case == "excreted" else set())  # E's atom, E left out
    # writing the model read gives the same document
    assert fluxml_string(model.network, model.experiment, model.measurements, **options) == (
        path.read_text()
    )
    # and the same simulated measurements at random feasible fluxes
    experiment_read = Experiment("e", model.experiment.tracers, model.experiment.natural)
    ours = LabelingProblem(network, [experiment], ms, fixed=fixed, equalities=eqs)
    back = LabelingProblem(model.network, [experiment_read], ms, fixed=fixed, equalities=eqs)
    predict_ours, predict_back = jax.jit(ours.predictions), jax.jit(back.predictions)
    for theta in random_starts(ours, 2, np.random.default_rng(3)):
        net, xch = ours.split(jnp.asarray(theta))
        a, b = predict_ours(net, xch), predict_back(net, xch)
        for k in ("ms", "fe", "flux"):
            np.testing.assert_allclose(np.asarray(b[k]), np.asarray(a[k]), atol=1e-13, rtol=0)


def test_ecoli_ftbl_written_as_fluxml_reads_back(tmp_path):
    """influx_si's E. coli FTBL model -> FluxML -> read: the same model, the same document."""
    pytest.importorskip("influx_si")
    ftbl = read_ftbl(importlib.resources.files("influx_si") / "test" / "e_coli.ftbl")
    path = write_fluxml(
        tmp_path / "e_coli.fml", ftbl.network, ftbl.experiment, ftbl.measurements, **_options(ftbl)
    )
    text = path.read_text()
    model = read_fluxml(path)
    _same_model(ftbl, model)
    assert len(model.network.reactions) == 86
    assert fluxml_string(
        model.network, model.experiment, model.measurements, **_options(model)
    ) == (text)


# ------------------------------------------------------------------ variants, closed forms
VARIANTS = """<?xml version="1.0" encoding="UTF-8"?>
<fluxml xmlns="http://www.13cflux.net/fluxml">
  <reactionnetwork>
    <metabolitepools>
      <pool id="A" atoms="4"/><pool id="Suc" atoms="4"/><pool id="Fum" atoms="4"/>
      <pool id="Mal" atoms="4"/>
    </metabolitepools>
    <reaction id="r1_1 r1_2" bidirectional="false">
      <reduct id="A" cfg="abcd"/>
      <rproduct id="Suc"><variant cfg="abcd"/><variant cfg="dcba"/></rproduct>
    </reaction>
    <reaction id="r2_1 r2_2 r2_3 r2_4">
      <reduct id="Suc">
        <variant cfg="C#1@1 C#2@1 C#3@1 C#4@1" ratio="0.5"/>
        <variant cfg="C#4@1 C#3@1 C#2@1 C#1@1" ratio="0.5"/>
      </reduct>
      <rproduct id="Fum">
        <variant cfg="C#1@1 C#2@1 C#3@1 C#4@1" ratio="0.5"/>
        <variant cfg="C#4@1 C#3@1 C#2@1 C#1@1" ratio="0.5"/>
      </rproduct>
    </reaction>
    <reaction id="r3_1 r3_2">
      <reduct id="Fum"><variant cfg="abcd"/><variant cfg="dcba"/></reduct>
      <rproduct id="Mal" cfg="abcd"/>
    </reaction>
    <reaction id="r4"><reduct id="Mal" cfg="abcd"/></reaction>
  </reactionnetwork>
  <constraints><xch><textual>r2_1 + r2_2 + r2_3 + r2_4 &lt;= 100;
    r3_1 &lt;= 50</textual></xch></constraints>
  <configuration name="c" stationary="true">
    <input pool="A" type="isotopomer"><label cfg="1000">1</label></input>
    <measurement>
      <model><labelingmeasurement>
        <group id="suc1" scale="one"><textual>Suc[1]#M0,1</textual></group>
        <group id="suc2" scale="one"><textual>Suc[2]#M0,1</textual></group>
        <group id="mal" scale="one"><textual>Mal#M0,1,2,3,4</textual></group>
        <group id="nmr" scale="one"><textual>Mal#P1,4</textual></group>
      </labelingmeasurement></model>
      <data>
        <datum id="suc1" stddev="0.01" weight="0">0.5</datum>
        <datum id="suc1" stddev="0.01" weight="1">0.5</datum>
        <datum id="suc2" stddev="0.01" weight="0">1</datum>
        <datum id="suc2" stddev="0.01" weight="1">0</datum>
        <datum id="mal" stddev="0.01" weight="0">0</datum>
        <datum id="mal" stddev="0.01" weight="1">1</datum>
        <datum id="mal" stddev="0.01" weight="2">0</datum>
        <datum id="mal" stddev="0.01" weight="3">0</datum>
        <datum id="mal" stddev="0.01" weight="4">0</datum>
        <datum id="nmr" stddev="0.02" pos="1">0.5</datum>
        <datum id="nmr" stddev="0.02" pos="4">0.5</datum>
      </data>
    </measurement>
    <simulation><variables>
      <fluxvalue flux="r1_1" type="net">5</fluxvalue>
      <fluxvalue flux="r2_1" type="xch">0.75</fluxvalue>
      <fluxvalue flux="r3_2" type="xch">2.5</fluxvalue>
    </variables></simulation>
  </configuration>
</fluxml>
"""


def test_variants_split_like_symmetric_molecules(tmp_path):
    """Variants (13CFLUX's symmetric molecules) against bayesflux's ``symmetric`` pools and the
    closed form: [1-13C] A makes succinate labelled at C1 or C4 with probability 1/2 each."""
    path = tmp_path / "variants.fml"
    path.write_text(VARIANTS)
    model = read_fluxml(path)
    ids = model.network.reaction_ids
    assert ids == ("r1_1", "r1_2", "r2_1", "r2_2", "r2_3", "r2_4", "r3_1", "r3_2", "r4")
    assert model.network.reversible_ids == ("r2_1", "r2_2", "r2_3", "r2_4", "r3_1", "r3_2")
    assert model.xch_bounds["r3_1"] == (0.0, 50.0)
    assert model.xch_inequalities == (({f"r2_{k}": 1.0 for k in range(1, 5)}, -np.inf, 100.0),)
    net, xch = model.configured_fluxes()
    np.testing.assert_allclose(net, [5, 5, 2.5, 2.5, 2.5, 2.5, 5, 5, 10], atol=1e-12)
    np.testing.assert_allclose(xch, [0.75] * 4 + [2.5] * 2, atol=1e-12)
    kinds = [type(m).__name__ for m in model.measurements]
    assert kinds == ["MSMeasurement"] * 3 + ["EnrichmentMeasurement"] * 2
    problem = model.problem()
    pred = jax.jit(problem.predictions)(jnp.asarray(net), jnp.asarray(xch))
    assert np.allclose(np.asarray(pred["ms"])[0, :2], [0.5, 0.5], atol=1e-13)
    assert np.allclose(np.asarray(pred["ms"])[1, :2], [1.0, 0.0], atol=1e-13)
    assert np.allclose(np.asarray(pred["fe"]), [0.5, 0.5], atol=1e-13)
    assert np.allclose(np.asarray(pred["ms"])[2], [0, 1, 0, 0, 0], atol=1e-13)  # one label
    # the same network with symmetric Suc and Fum, one reaction per variant group
    sym = LabelingNetwork.from_strings(
        {
            "r1": "A (abcd) -> Suc (abcd)",
            "r2": "Suc (abcd) <-> Fum (abcd)",
            "r3": "Fum (abcd) <-> Mal (abcd)",
            "r4": "Mal (abcd) -> ",
        },
        symmetric=["Suc", "Fum"],
    )
    experiment = Experiment("c", {"A": (Species("0010", 0.3), Species("1100", 0.7))})
    ms = [
        MSMeasurement("c", met, "1-4", [0.2] * 5, 0.01, scale="none")
        for met in ("Suc", "Fum", "Mal")
    ] + [MSMeasurement("c", "Mal", "1,2", [0.3] * 3, 0.01, scale="none")]
    ref = LabelingProblem(sym, [experiment], ms)
    split = LabelingProblem(
        model.network,
        [experiment],
        ms,
        equalities=model.equalities,
        xch_equalities=model.xch_equalities,
    )
    ref_fluxes = (jnp.array([10.0, 10.0, 10.0, 10.0]), jnp.array([3.0, 5.0]))
    expected = jax.jit(ref.predictions)(*ref_fluxes)["ms"]
    net_split = np.array([5, 5, 2.5, 2.5, 2.5, 2.5, 5, 5, 10.0])
    xch_split = np.array([3.0 / 4] * 4 + [5.0 / 2] * 2)
    got = jax.jit(split.predictions)(jnp.asarray(net_split), jnp.asarray(xch_split))["ms"]
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-13, rtol=0)


def test_linea_reaches_the_tracer_labelling(shared_data):
    """Stratmann's straight line S -> A <-> B ->: at steady state A and B carry S's labelling."""
    model = read_fluxml(shared_data / STRATMANN / "linea.fml")
    assert not model.stationary and any("non-stationary" in n for n in model.notes)
    assert model.network.reversible_ids == ("v2",)
    assert [m.name for m in model.measurements] == ["MS_A", "MS_B"]
    problem = model.problem()
    simulate = jax.jit(problem.simulate_from_fluxes)
    for v, x in ((1.0, 0.0), (3.0, 7.5)):
        net, xch = jnp.array([v, v, v]), jnp.array([x])
        mids = np.asarray(simulate(net, xch))[0]
        np.testing.assert_allclose(mids[:, :2], [[0.1, 0.9], [0.1, 0.9]], atol=1e-14)
        # the data (time 1, scale auto) are fitted exactly
        assert float(jnp.sum(problem.compiled_residuals(net, xch) ** 2)) < 1e-20


def test_mixture_documents_are_read_as_tracer_options(shared_data):
    path = shared_data / STRATMANN / "mixture.fml"
    inputs = read_fluxml_inputs(path)
    assert [dict(e.tracers) for e in inputs] == [
        {"Gluc_ext": (Species("100000", 1.0),)},
        {"Gluc_ext": (Species("111111", 1.0),)},
    ]
    with pytest.raises(ModelReadError, match=r"mixture.fml:2: <mixture> .*read_fluxml_inputs"):
        read_fluxml(path)


# ------------------------------------------------------------------ Synechocystis (Syn.fml)
@pytest.fixture(scope="module")
def syn_models(shared_data):
    path = shared_data / STRATMANN / "Syn.fml"
    return {c: read_fluxml(path, configuration=c) for c in ("a", "b", "bayes")}


def test_synechocystis_loads_with_consistent_fluxes(shared_data, syn_models):
    for name, model in syn_models.items():
        assert model.configuration == name and not model.stationary
        network = model.network
        assert len(network.reactions) == 62  # 58 reactions, sdh in 4 and fum, icl in 2 parts
        assert model.experiment.natural == X3CFLUX_NATURAL_13C  # purities given
        net, xch = model.configured_fluxes()
        stoich = network.stoichiometry()
        S = stoich.S.toarray() if hasattr(stoich.S, "toarray") else np.asarray(stoich.S)
        assert np.abs(S @ net).max() < 1e-9  # mass balance
        ids = network.reaction_ids
        for r, v in model.fixed.items():
            assert net[ids.index(r)] == pytest.approx(v, abs=1e-9)
        for coefs, v in model.equalities:
            assert sum(c * net[ids.index(r)] for r, c in coefs.items()) == pytest.approx(
                v, abs=1e-9
            )
        sdh = [net[ids.index(f"sdh___{k}")] for k in range(1, 5)]
        np.testing.assert_allclose(sdh, sdh[0], rtol=1e-12)  # equal shares of the variants
        assert net[ids.index("co2in")] == pytest.approx(10.002285178239713, rel=1e-12)
        assert np.all(xch >= 0)
    assert len(syn_models["a"].measurements) == 19  # 18 MS groups + co2in
    assert any("pool sizes" in n for n in syn_models["bayes"].notes)


def test_synechocystis_simulates_its_isotopic_steady_state(shared_data, syn_models, tmp_path):
    model = syn_models["a"]
    problem = model.problem()
    net, xch = model.configured_fluxes()
    u = np.asarray(problem.network.gross_fluxes(jnp.asarray(net), jnp.asarray(xch)))
    assert u.min() >= 0
    mids = np.asarray(jax.jit(problem.simulate_from_fluxes)(jnp.asarray(net), jnp.asarray(xch)))
    assert mids.shape[:2] == (1, len(problem.ms))
    assert mids.min() >= -1e-12 and mids.max() <= 1 + 1e-12
    np.testing.assert_allclose(mids.sum(axis=-1), 1.0, atol=1e-12)
    # the network written by our writer (stationary FluxML) reads back to the same document
    text = fluxml_string(model.network, model.experiment, model.measurements, **_options(model))
    (tmp_path / "syn.fml").write_text(text)
    back = read_fluxml(tmp_path / "syn.fml")
    assert fluxml_string(back.network, back.experiment, back.measurements, **_options(back)) == text


# ------------------------------------------------------------------ errors name line and element
BASE = """<fluxml xmlns="http://www.13cflux.net/fluxml">
<reactionnetwork>
<metabolitepools><pool id="S" atoms="1"/><pool id="A" atoms="1"/></metabolitepools>
<reaction id="v1" bidirectional="false">
<reduct id="S" cfg="a"/>
<rproduct id="A" cfg="a"/>
</reaction>
<reaction id="v2" bidirectional="false"><reduct id="A" cfg="a"/></reaction>
</reactionnetwork>
<constraints><net><textual>v1 = 1;
v2 &lt;= 5</textual></net></constraints>
<configuration name="c">
<input pool="S"><label cfg="1">1</label></input>
<measurement><model><labelingmeasurement>
<group id="g" scale="one"><textual>A#M0,1</textual></group>
</labelingmeasurement></model>
<data><datum id="g" stddev="0.01" weight="0">0.5</datum>
<datum id="g" stddev="0.01" weight="1">0.5</datum></data>
</measurement>
</configuration>
</fluxml>
"""

BAD = [
    ('<reduct id="S" cfg="a"/>', '<reduct id="Q" cfg="a"/>', r":5: <reduct> metabolite 'Q'"),
    ('<reduct id="S" cfg="a"/>', '<reduct id="S" cfg="ab"/>', r":5: <reduct> 'S' in 'v1': cfg"),
    ('<rproduct id="A" cfg="a"/>', '<rproduct id="A" cfg="b"/>', r":4: <reaction> 'v1': product"),
    ("v2 &lt;= 5", "v2 &lt;= 5;\nv9 = 2", r":12: <textual> net constraint on unknown .*v9"),
    ("v2 &lt;= 5", "v2 &lt;= 5 +", r":11: <textual> 'v2 <= 5 \+' ends early"),
    ("A#M0,1", "A[1:1]#M(0,0),(1,1)", r":15: <textual> 'g': MS-MS \(tandem MS\) measurements"),
    ("A#M0,1", "A#S1,DL1", r":15: <textual> 'g': 13C-NMR multiplet measurements"),
    ("A#M0,1", "A#1", r":15: <textual> 'g': cumomer / isotopomer fraction"),
    ("A#M0,1", "A#M0,2", r":15: <textual> 'g': masses M\+\[0, 2\] do not fit 1 atoms"),
    (
        '<group id="g" scale="one">',
        '<group id="g" scale="one"><errormodel><textual>0.01</textual></errormodel>',
        r":15: <errormodel> 'g': error-model expressions are not supported",
    ),
    ('weight="1">0.5', 'weight="2">0.5', r":18: <datum> 'g': weight '2' is not one of \[0, 1\]"),
    ('stddev="0.01" weight="0"', 'stddev="0" weight="0"', r":17: <datum> stddev of 'g' must"),
    ('<label cfg="1">1</label>', '<label cfg="1" purity="x">1</label>', r":13: <label> purity"),
    ('id="v1"', 'id="v1 v1b"', r":4: <reaction> 'v1 v1b': 2 ids for 1 combinations"),
    ('<label cfg="1">1</label>', '<label cfg="1">0.5</label>', r":13: <input> 'S': label"),
    ("</fluxml>", "</fluxm>", r":21: not well-formed"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD)
def test_errors_name_file_line_and_element(old, new, message, tmp_path):
    path = tmp_path / "bad.fml"
    path.write_text(BASE)
    read_fluxml(path)  # the base model is fine
    assert old in BASE
    path.write_text(BASE.replace(old, new, 1))
    with pytest.raises(ModelReadError, match="bad.fml" + message):
        read_fluxml(path)


def test_unsupported_flux_measurements_and_configuration_name(tmp_path):
    path = tmp_path / "bad.fml"
    text = BASE.replace(
        "</labelingmeasurement>",
        '</labelingmeasurement><fluxmeasurement><xchflux id="x"><textual>v1</textual>'
        "</xchflux></fluxmeasurement>",
    )
    path.write_text(text)
    with pytest.raises(ModelReadError, match=r":16: <xchflux> 'x': xchflux measurements"):
        read_fluxml(path)
    path.write_text(BASE)
    with pytest.raises(ModelReadError, match=r"no configuration 'z' \(it has \['c'\]\)"):
        read_fluxml(path, configuration="z")
    with pytest.raises(ModelReadError, match="cannot read FluxML file"):
        read_fluxml(tmp_path / "missing.fml")


# ------------------------------------------------------------------ x3cflux as a peer
@pytest.mark.skipif(
    importlib.util.find_spec("x3cflux") is None,
    reason="x3cflux is not installed (pip install bayesflux[bench]; needs coinor-libipopt-dev)",
)
@pytest.mark.parametrize("configuration", ["a", "bayes"])
def test_synechocystis_mids_equal_x3cflux(configuration, shared_data, tmp_path):
    """Syn.fml with its configuration switched to stationary (and groups to scale one): the
    MIDs x3cflux simulates at the configuration's fluxes equal ours to 1e-8."""
    import dataclasses

    import x3cflux

    text = (shared_data / STRATMANN / "Syn.fml").read_text()
    text = text.replace('stationary="false"', 'stationary="true"').replace(
        'scale="auto"', 'scale="one"'
    )
    blocks = re.findall(r"\s*<configuration name=\"(\w+)\".*?</configuration>", text, re.S)
    assert configuration in blocks
    text = re.sub(  # keep the configuration compared only: x3cflux simulates the first one
        r"\s*<configuration name=\"(\w+)\".*?</configuration>",
        lambda m: m.group(0) if m.group(1) == configuration else "",
        text,
        flags=re.S,
    )
    path = tmp_path / "syn_stationary.fml"
    path.write_text(text)
    model = read_fluxml(path, configuration=configuration)
    net, xch = model.configured_fluxes()
    ms = [dataclasses.replace(m, scale="none") for m in model.measurements]
    problem = LabelingProblem(
        model.network,
        [model.experiment],
        ms,
        **{k: v for k, v in _options(model).items() if k != "start"},
    )
    ours = np.asarray(problem.predictions(jnp.asarray(net), jnp.asarray(xch))["ms"])
    x3cflux.logging.level = 40
    sim = x3cflux.create_simulator_from_fml(str(path))
    d = {f"{r}.n": v for r, v in zip(model.network.reaction_ids, net, strict=True)}
    d |= {f"{r}.x": v for r, v in zip(model.network.reversible_ids, xch, strict=True)}
    free = np.array([d.get(n, 0.0) for n in sim.parameter_space.free_parameter_names])
    theirs = sim.compute_measurements(free)[0]
    names = {n: i for i, n in enumerate(sim.measurement_names[0])}
    for k, m in enumerate(problem.ms):
        t = np.asarray(theirs[names[m.name]]).reshape(-1, len(m.values))
        np.testing.assert_allclose(t, np.broadcast_to(ours[k, : len(m.values)], t.shape), atol=1e-8)
