"""The ``mfa_fit`` pipeline step on a small FTBL file (FTBL reader end to end)."""

from __future__ import annotations

import numpy as np
import pytest

from bayesflux.errors import ConfigError
from bayesflux.labeling import read_ftbl
from bayesflux.steps.labeling import mfa_fit_step

FTBL = """PROJECT
\tNAME\tVERSION
\tmini\t1

NETWORK
\tFLUX_NAME\tEDUCT_1\tEDUCT_2\tPRODUCT_1\tPRODUCT_2
\tv1\tA\t\tB
\t\t#AB\t\t#AB
\tv2\tB\t\tC\t\t// comment
\t\t#AB\t\t#AB
\tv3\tA\t\tC
\t\t#AB\t\t#BA
\tv4\tC\t\tD
\t\t#AB\t\t#AB

FLUXES
\tNET
\t\tNAME\tFCD\tVALUE(F/C)
\t\tv1\tF\t0.5
\t\tv2\tD
\t\tv3\tD
\t\tv4\tD
\tXCH
\t\tNAME\tFCD\tVALUE(F/C)
\t\tv2\tC\t0

EQUALITIES
\tNET
\t\tVALUE\tFORMULA
\t\t1\tv1+v3

FLUX_MEASUREMENTS
\tFLUX_NAME\tVALUE\tDEVIATION
\tv4\t1.0\t0.01

LABEL_INPUT
\tMETA_NAME\tISOTOPOMER\tVALUE
\tA\t#10\t1

MASS_SPECTROMETRY
\tMETA_NAME\tFRAGMENT\tWEIGHT\tVALUE\tDEVIATION
\tC\t1\t0\t0.31\t0.01
\t\t\t1\t0.69\t0.01
\tC\t2\t0\t0.7\t0.01
\t\t\t1\t0.3\t0.01
"""


def test_mfa_fit_step_on_a_small_ftbl(tmp_path):
    path = tmp_path / "mini.ftbl"
    path.write_text(FTBL)
    model = read_ftbl(path)
    assert model.network.inputs == ("A",) and model.network.reversible_ids == ()
    assert model.equalities == (({"v1": 1.0, "v3": 1.0}, 1.0),)
    ds = mfa_fit_step(None, previous={}, model=str(path), n_starts=2, profile=["v1"])
    v1 = float(ds["net"].sel(reaction="v1"))
    # C1 is labelled through v1 only, C2 through v3 only: both fragments say v1 ~ 0.7
    assert v1 == pytest.approx(0.695, abs=0.01)
    assert ds.attrs["dof"] == 2 and ds.attrs["passed"] == 1
    lo, hi = (
        float(ds["net_profile_lower"].sel(reaction="v1")),
        float(ds["net_profile_upper"].sel(reaction="v1")),
    )
    assert lo < v1 < hi and np.isnan(float(ds["net_profile_lower"].sel(reaction="v2")))
    with pytest.raises(ConfigError, match="unknown reactions"):
        mfa_fit_step(None, previous={}, model=str(path), n_starts=1, profile=["nope"])
