"""The hit-and-run MCMCKernel under numpyro's MCMC: 'vectorized', 'sequential' and 'parallel'."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numpyro.infer import MCMC

from bayesflux.sampling import HitAndRun, polytope

pytestmark = pytest.mark.filterwarnings("ignore:There are not enough devices")


def _check_cube_draws(flux, names, net):
    idx = net.indices(names)
    v = np.asarray(flux)
    assert v.shape[-1] == net.n_reactions
    assert np.all(v[..., idx] >= -1e-9) and np.all(v[..., idx] <= 1 + 1e-9)
    np.testing.assert_allclose(
        v[..., idx], v[..., net.indices([n.replace("IN", "OUT") for n in names])]
    )
    # 4 x 300 draws of U(0, 1) thinned by d: mean 0.5 +- 4 sd / sqrt(n) with n >= 300 (ESS)
    assert np.all(np.abs(v[..., idx].mean(axis=(0, 1)) - 0.5) < 4 * np.sqrt(1 / 12 / 300))


@pytest.mark.parametrize("chain_method", ["vectorized"])
def test_numpyro_mcmc(make_cube, chain_method):
    import jax

    net = make_cube(2)
    kernel = HitAndRun(polytope(net), thinning=2)
    mcmc = MCMC(
        kernel,
        num_warmup=20,
        num_samples=300,
        num_chains=4,
        chain_method=chain_method,
        progress_bar=False,
    )
    mcmc.run(jax.random.key(0), extra_fields=("acceptance_rate",))
    flux = mcmc.get_samples(group_by_chain=True)
    assert flux.shape == (4, 300, net.n_reactions)
    _check_cube_draws(flux, ["IN0", "IN1"], net)
    # chains differ (independent keys)
    assert not np.allclose(flux[0], flux[1])
    acc = mcmc.get_extra_fields(group_by_chain=True)["acceptance_rate"]
    assert acc.shape == (4, 300)
    np.testing.assert_allclose(acc, 1.0)  # uniform target: every chord point is accepted


def test_numpyro_parallel_chains_on_two_devices():
    # pmap needs several devices, fixed before jax starts: run in a fresh interpreter
    code = textwrap.dedent(
        """
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        from numpyro.infer import MCMC
        from bayesflux.network import Network
        from bayesflux.sampling import HitAndRun, polytope
        assert jax.local_device_count() == 2
        net = Network.from_stoichiometry(
            {"IN0": {"A": 1.0}, "OUT0": {"A": -1.0}}, bounds={"IN0": (0.0, 1.0)})
        mcmc = MCMC(HitAndRun(polytope(net)), num_warmup=10, num_samples=200, num_chains=2,
                    chain_method="parallel", progress_bar=False)
        mcmc.run(jax.random.key(1))
        v = np.asarray(mcmc.get_samples(group_by_chain=True))
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


def test_kernel_pickles_without_its_jitted_closure(make_cube):
    import pickle

    kernel = HitAndRun(polytope(make_cube(2)))
    kernel.build()
    clone = pickle.loads(pickle.dumps(kernel))
    assert clone._kernel is None and clone.thinning == kernel.thinning
