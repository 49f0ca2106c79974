"""Malformed FTBL files: one :class:`ModelReadError` naming the file and line at fault."""

from __future__ import annotations

import pytest

from bayesflux.errors import ModelReadError
from bayesflux.labeling import read_ftbl

#: A four-reaction FTBL model; each test breaks one line of it (line numbers in comments).
FTBL = """NETWORK
\tFLUX_NAME\tEDUCT_1\tEDUCT_2\tPRODUCT_1\tPRODUCT_2
\tv1\tA\t\tB
\t\t#AB\t\t#AB
\tv2\tB\t\tC
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
"""
# line 7: v3, 15: v1's NET, 21: v2's XCH, 26: the equality, 30: the flux measurement,
# 34: the label input, 38-39: the MS group of C[1]


def _write(tmp_path, old: str, new: str):
    assert FTBL.count(old) == 1
    path = tmp_path / "bad.ftbl"
    path.write_text(FTBL.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        # flux measurement SD: zero (was a ZeroDivisionError later), negative, missing (IndexError)
        (
            "\tv4\t1.0\t0.01",
            "\tv4\t1.0\t0",
            r"bad.ftbl:30: DEVIATION of measured flux 'v4' must be > 0",
        ),
        ("\tv4\t1.0\t0.01", "\tv4\t1.0\t-0.01", r"bad.ftbl:30: DEVIATION .* must be > 0"),
        ("\tv4\t1.0\t0.01", "\tv4\t1.0", r"bad.ftbl:30: missing DEVIATION of measured flux 'v4'"),
        ("\tv4\t1.0\t0.01", "\tv4\tone\t0.01", r"bad.ftbl:30: measured flux of 'v4' 'one' is not"),
        ("\tv4\t1.0\t0.01", "\tv9\t1.0\t0.01", r"bad.ftbl:30: measured flux of unknown reaction"),
        # MS SD: negative (was accepted by the reader), zero, NaN, missing
        ("\t\t\t1\t0.69\t0.01", "\t\t\t1\t0.69\t-0.01", r"bad.ftbl:39: MS C\[1\] DEVIATION must"),
        ("\t\t\t1\t0.69\t0.01", "\t\t\t1\t0.69\t0", r"bad.ftbl:39: MS C\[1\] DEVIATION must"),
        ("\t\t\t1\t0.69\t0.01", "\t\t\t1\t0.69\tnan", r"bad.ftbl:39: .* not a finite number"),
        ("\t\t\t1\t0.69\t0.01", "\t\t\t1\t0.69", r"bad.ftbl:39: missing MS C\[1\] DEVIATION"),
        ("\tC\t1\t0\t0.31", "\tC\t1\t0.5\t0.31", r"bad.ftbl:38: MS C\[1\] WEIGHT must be a mass"),
        # bare ValueErrors before: no file, no line
        ("\t\t1\tv1+v3", "\t\tone\tv1+v3", r"bad.ftbl:26: NET equality value 'one' is not a"),
        ("\t\t1\tv1+v3", "\t\t1\t1e*v1+v3", r"bad.ftbl:26: coefficient of 'v1' '1e' is not a"),
        ("\tA\t#10\t1", "\tA\t#10\t", r"bad.ftbl:34: missing LABEL_INPUT fraction of 'A'"),
        ("\t\tv2\tC\t0", "\t\tv2\tC\tzero", r"bad.ftbl:21: XCH value of 'v2' 'zero' is not a"),
        # a constrained flux without its value was silently free
        ("\t\tv1\tF\t0.5", "\t\tv1\tC", r"bad.ftbl:15: missing NET value of 'v1'"),
        ("\t\tv1\tF\t0.5", "\t\tv1\tX\t0.5", r"bad.ftbl:15: NET flux of 'v1': FCD must be F, C"),
        # errors found by the network parser now name the reaction's line
        ("\t\t#AB\t\t#BA", "\t\t#AB\t\t#BC", r"bad.ftbl:7: reaction 'v3': unbalanced atoms"),
        ("\tv3\tA\t\tC", "\tv1\tA\t\tC", r"bad.ftbl:7: reaction 'v1' already defined on line 3"),
    ],
)
def test_bad_ftbl_names_file_and_line(tmp_path, old, new, match):
    with pytest.raises(ModelReadError, match=match):
        read_ftbl(_write(tmp_path, old, new))
