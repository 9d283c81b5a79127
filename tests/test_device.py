# SPDX-License-Identifier: MIT
"""The device setting: generators and inference state on CUDA when asked, PDE on the CPU."""

import pytest
import torch

from invprior.priors import resolve_device
from invprior.study import PriorConfig, StudyConfig


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_prior_config_checks_the_device():
    assert StudyConfig.from_dict({"prior": {"device": "cpu"}}).prior.device == "cpu"
    assert PriorConfig().device == "auto"
    with pytest.raises(ValueError, match=r"\[prior\] device"):
        StudyConfig.from_dict({"prior": {"device": "gpu"}})


@pytest.mark.gpu
@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_potential_gradient_on_cuda_matches_cpu():
    from mpi4py import MPI

    from invprior.potential import PotentialEnergy
    from invprior.study import build_study

    grads = {}
    for device in ("cpu", "cuda"):
        config = StudyConfig.from_dict({"mesh": {"n": 8}, "prior": {"device": device}})
        setup = build_study(config, MPI.COMM_WORLD)
        assert setup.obs.device.type == device
        assert next(setup.problem.prior.generator.parameters()).device.type == device
        potential = PotentialEnergy(setup.problem, setup.obs)
        latent = torch.linspace(-1, 1, potential.layout.dim, device=device).requires_grad_()
        (grads[device],) = torch.autograd.grad(potential.flat(latent), latent)
        assert grads[device].device.type == device
    torch.testing.assert_close(grads["cuda"].cpu(), grads["cpu"], rtol=1e-3, atol=1e-3)
