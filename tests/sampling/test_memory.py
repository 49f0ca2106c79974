"""Memory of a sampling run: the kept draws once, plus at most 8 bytes per value per draw.

Peak resident memory is measured in fresh processes (``ru_maxrss``) for two run lengths on a
polytope with many reactions and few dimensions, so that the draws dominate; the difference
of the peaks over the difference of the draws' bytes is the memory a run holds per byte of draws
(1 = the draws alone). The bound 2 is the issue's "no more than 8 bytes per reaction per kept draw
beyond the draws themselves"; before chunked constraining and diagnostics it was 3.4.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bayesflux.errors import MemoryLimitError
from bayesflux.infer import run as infer_run
from bayesflux.sampling import sample_fluxes

SCRIPT = """
import json, os, resource, sys
os.environ["JAX_PLATFORMS"] = "cpu"
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from bayesflux.sampling import Polytope, sample_fluxes
n, draws = 4000, int(sys.argv[1])
square = Polytope.from_halfspaces(np.vstack([np.eye(2), -np.eye(2)]), np.ones(4))
N = np.random.default_rng(0).normal(size=(n, 2))
wide = Polytope(tuple(f"r{i}" for i in range(n)), np.zeros(n), N, square.A, square.b,
                square.center, square.radius, -np.abs(N).sum(1), np.abs(N).sum(1), "wide")
sample_fluxes(wide, num_chains=2, num_draws=10, num_warmup=0)  # imports and compilation
tree = sample_fluxes(wide, num_chains=4, num_draws=draws, num_warmup=0)
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "draw_bytes": tree.posterior["flux"].nbytes}))
"""


def _peak(draws: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(draws)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_a_run_holds_its_draws_and_little_more():
    small, large = _peak(1000), _peak(3000)
    extra = (large["peak_kib"] - small["peak_kib"]) * 1024
    per_byte = extra / (large["draw_bytes"] - small["draw_bytes"])
    assert per_byte <= 2.0, f"{per_byte:.2f} bytes of memory per byte of draws"


def test_a_run_that_would_not_fit_is_refused_up_front(small, monkeypatch):
    """With 1 MiB available, 4 x 100 000 draws of the small network are refused before any
    sampling, and the message gives the estimate."""
    monkeypatch.setattr(infer_run, "available_memory", lambda: 2**20)
    with pytest.raises(MemoryLimitError, match=r"GiB of draws .* 0\.00 GiB is available"):
        sample_fluxes(small, num_chains=4, num_draws=100_000)
    monkeypatch.setattr(infer_run, "available_memory", lambda: 2**30)
    assert sample_fluxes(small, num_chains=2, num_draws=20).posterior.sizes["draw"] == 20
