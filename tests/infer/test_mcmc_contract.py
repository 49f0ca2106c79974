"""The kernels of bayesflux.infer under numpyro's MCMC: 'vectorized', 'sequential' and 'parallel'
chains, and pickling (as ``chain_method="parallel"`` and multiprocessing need)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from functools import partial

import jax
import numpy as np
import pytest
from numpyro.infer import MCMC

from bayesflux import Network
from bayesflux.infer import Billiard, HitAndRun, HitAndRunSlice, ReflectiveHMC
from bayesflux.models import blocks
from bayesflux.sampling import polytope

pytestmark = pytest.mark.filterwarnings("ignore:There are not enough devices")


def _square_model():
    """Fluxes ``IN0, IN1`` uniform on [0, 1]², ``OUT_i = IN_i``."""
    net = Network.from_stoichiometry(
        {"IN0": {"A0": 1.0}, "OUT0": {"A0": -1.0}, "IN1": {"A1": 1.0}, "OUT1": {"A1": -1.0}},
        bounds={"IN0": (0.0, 1.0), "IN1": (0.0, 1.0)},
        id="square",
    )
    return partial(_uniform, polytope(net))  # module-level parts: the model pickles


def _uniform(poly) -> None:
    blocks.flux_polytope("v", poly)


@pytest.mark.parametrize("chain_method", ["vectorized", "sequential"])
@pytest.mark.parametrize("kernel", [HitAndRun, HitAndRunSlice, Billiard, ReflectiveHMC])
def test_numpyro_mcmc(chain_method, kernel):
    """4 x 300 draws of U(0, 1)²: mean 0.5 within 4 sd / sqrt(300) (thinned draws nearly
    independent on a square); chains differ; the uniform chord is always accepted."""
    model = _square_model()
    mcmc = MCMC(
        kernel(model),
        num_warmup=50,
        num_samples=300,
        num_chains=4,
        chain_method=chain_method,
        progress_bar=False,
    )
    mcmc.run(jax.random.key(0), extra_fields=("accept_prob",))
    v = np.asarray(mcmc.get_samples(group_by_chain=True)["v"])
    assert v.shape == (4, 300, 4)
    assert np.all(v >= -1e-9) and np.all(v <= 1 + 1e-9)
    np.testing.assert_allclose(v[..., 0], v[..., 1])
    assert np.all(np.abs(v.mean(axis=(0, 1)) - 0.5) < 4 * np.sqrt(1 / 12 / 300))
    assert not np.allclose(v[0], v[1])
    if kernel is HitAndRun:
        acc = mcmc.get_extra_fields(group_by_chain=True)["accept_prob"]
        np.testing.assert_allclose(acc, 1.0)


def test_numpyro_parallel_chains_on_two_devices():
    # pmap needs several devices, fixed before jax starts: run in a fresh interpreter
    code = textwrap.dedent(
        """
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        from numpyro.infer import MCMC
        from bayesflux.network import Network
        from bayesflux.infer import HitAndRun
        from bayesflux.models import blocks
        from bayesflux.sampling import polytope
        assert jax.local_device_count() == 2
        net = Network.from_stoichiometry(
            {"IN0": {"A": 1.0}, "OUT0": {"A": -1.0}}, bounds={"IN0": (0.0, 1.0)})
        poly = polytope(net)
        def model():
            blocks.flux_polytope("v", poly)
        mcmc = MCMC(HitAndRun(model), num_warmup=10, num_samples=200, num_chains=2,
                    chain_method="parallel", progress_bar=False)
        mcmc.run(jax.random.key(1))
        v = np.asarray(mcmc.get_samples(group_by_chain=True)["v"])
        assert v.shape == (2, 200, 2), v.shape
        assert np.all((v >= -1e-9) & (v <= 1 + 1e-9)) and abs(v.mean() - 0.5) < 0.1
        print("ok")
        """
    )
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_kernel_pickles_without_its_compiled_transition():
    model = _square_model()
    kernel = HitAndRun(model, moves=3)
    kernel.init(jax.random.key(0), 10, None, (), {})
    clone = pickle.loads(pickle.dumps(kernel))
    assert clone._sample_fn is None and clone.moves == 3


@pytest.mark.slow
def test_threads_sample_at_once():
    """Four threads run ``infer.sample`` at once (NumPyro's handler stack is global: model
    tracing is serialised by ``infer.sites.TRACING``) and get the draws of runs one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from bayesflux.infer import sample as infer_sample

    model = _square_model()

    def run(seed):
        tree = infer_sample(model, kernel=HitAndRun(model), num_draws=50, num_chains=2, seed=seed)
        return tree["posterior"]["v"].values

    alone = [run(seed) for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(run, range(4)))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
