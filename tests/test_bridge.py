# SPDX-License-Identifier: MIT
"""The torch bridge: shapes, dtype/device round trip, gradients, failures."""

import numpy as np
import pytest
import torch

from invprior.bridge import DenseObservationMap, NotTwiceDifferentiableError, TorchForward
from invprior.pde import ForwardModel, PDESolveError, SolveCounter


class LinearModel(ForwardModel):
    """y = W m.ravel(), numpy only; ``fail_adjoint`` makes vjp raise PDESolveError."""

    def __init__(self, grid_shape=(3, 4), n_obs=2, fail_adjoint=False):
        self.grid_shape = grid_shape
        self.grid_bbox = ((0.0, 0.0), (1.0, 1.0))
        self.n_obs = n_obs
        self.counter = SolveCounter()
        self.W = np.random.default_rng(0).standard_normal((n_obs, int(np.prod(grid_shape))))
        self.fail_adjoint = fail_adjoint

    def forward(self, field):
        self.counter.forward += 1
        return self.W @ field.ravel()

    def vjp(self, field, obs_cotangent):
        self.counter.adjoint += 1
        if self.fail_adjoint:
            raise PDESolveError("adjoint solve failed: KSP converged reason DIVERGED_ITS (-3)")
        return (self.W.T @ obs_cotangent).reshape(self.grid_shape)


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_shapes_dtype_device_and_gradient(batch, dtype, device):
    model = LinearModel()
    forward = TorchForward(model)
    field = torch.randn(*batch, 3, 4, dtype=dtype, device=device, requires_grad=True)
    y = forward(field)
    assert y.shape == (*batch, 2) and y.dtype == dtype and y.device == field.device
    y.sum().backward()
    W = torch.as_tensor(model.W, dtype=dtype, device=device)
    expected = W.sum(0).reshape(3, 4).expand(*batch, 3, 4)
    torch.testing.assert_close(field.grad, expected)
    n = int(np.prod(batch))
    assert (forward.counter.forward, forward.counter.adjoint) == (n, n)


def test_attributes():
    forward = TorchForward(LinearModel())
    assert forward.n_obs == 2 and forward.grid_shape == (3, 4)
    assert forward.grid_bbox == ((0.0, 0.0), (1.0, 1.0))


def test_failed_adjoint_gives_nan_gradient():
    field = torch.zeros(2, 3, 4, dtype=torch.float64, requires_grad=True)
    TorchForward(LinearModel(fail_adjoint=True))(field).sum().backward()
    assert torch.isnan(field.grad).all()


def test_second_derivative_through_the_adjoint_raises():
    field = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = TorchForward(LinearModel())(torch.sin(field)).square().sum()
    with pytest.raises(NotTwiceDifferentiableError, match="second derivative"):
        torch.autograd.grad(y, field, create_graph=True)


def test_laplace_of_a_hand_written_pde_model_says_what_to_do():
    import pyro
    import pyro.distributions as dist

    from invprior import infer

    forward = TorchForward(LinearModel(grid_shape=(1, 2)))

    def model(obs):
        m = pyro.sample("m", dist.Normal(torch.zeros(1, 2), 1.0).to_event(2))
        pyro.sample("y", dist.Normal(forward(torch.sin(m)), 0.1).to_event(1), obs=obs)

    obs = torch.tensor([0.3, -0.2], dtype=torch.float64)
    with pytest.raises(ValueError, match="not twice differentiable"):
        infer.laplace(model, obs, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize(
    ("field", "error", "match"),
    [
        (np.zeros((3, 4)), TypeError, "torch.Tensor"),
        (torch.zeros(3, 4, dtype=torch.int64), TypeError, "floating dtype"),
        (torch.zeros(4, 3), ValueError, r"expects \(\*batch, 3, 4\)"),
        (torch.zeros(4), ValueError, r"expects \(\*batch, 3, 4\)"),
    ],
)
def test_bad_inputs(field, error, match):
    with pytest.raises(error, match=match):
        TorchForward(LinearModel())(field)


def test_model_type_is_checked():
    with pytest.raises(TypeError, match="ForwardModel"):
        TorchForward(lambda m: m)
    with pytest.raises(TypeError, match="AffineForwardModel .* got LinearModel"):
        DenseObservationMap(LinearModel())  # no affine_map: not declared affine


@pytest.mark.dolfinx
@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["source", "conductivity"])
def test_gradcheck_through_pde(comm, kind):
    from invprior.pde import ConductivityProblem, SourceProblem, grid_sensors, unit_square

    cls = {"source": SourceProblem, "conductivity": ConductivityProblem}[kind]
    model = cls(unit_square(comm, 4), grid_sensors(((0, 0), (1, 1)), 2), (3, 3))
    forward = TorchForward(model)
    field = (0.3 * torch.randn(2, 3, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(forward, (field,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_dense_observation_map_runs_in_torch(comm, device):
    """The dense map F m + c is applied in torch, on the field's device, and agrees with the
    solve path in value and gradient; it solves only when it is built."""
    from invprior.pde import SourceProblem, grid_sensors, unit_square

    # non-zero Dirichlet data: the map is affine
    model = SourceProblem(
        unit_square(comm, 6), grid_sensors(((0, 0), (1, 1)), 3), (5, 5),
        dirichlet=[(None, lambda x: x[1])],
    )  # fmt: skip
    solve, dense = TorchForward(model), DenseObservationMap(model)
    assert (model.counter.forward, model.counter.adjoint) == (1, 9)
    assert (dense.n_obs, dense.grid_shape, dense.counter) == (9, (5, 5), model.counter)
    assert repr(dense) == "DenseObservationMap(SourceProblem, n_obs=9)"
    field = torch.randn(2, 5, 5, dtype=torch.float64, device=device, requires_grad=True)
    y_dense = dense(field)
    assert y_dense.device == field.device and y_dense.dtype == torch.float64
    (g_dense,) = torch.autograd.grad(y_dense.square().sum(), field)
    dense(field).sum().backward()
    assert model.counter.total == 10  # no solve once the map is built
    cpu = field.detach().cpu().requires_grad_()
    y_solve = solve(cpu)
    (g_solve,) = torch.autograd.grad(y_solve.square().sum(), cpu)
    torch.testing.assert_close(y_dense.detach().cpu(), y_solve.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_dense.cpu(), g_solve, rtol=1e-10, atol=1e-12)
    assert dense(field.float()).dtype == torch.float32
    with pytest.raises(ValueError, match=r"expects \(\*batch, 5, 5\)"):
        dense(torch.zeros(4, 4, dtype=torch.float64))


@pytest.mark.dolfinx
def test_dense_map_needs_an_affine_model():
    from mpi4py import MPI

    from invprior.pde import ConductivityProblem, grid_sensors, unit_square

    model = ConductivityProblem(
        unit_square(MPI.COMM_SELF, 2), grid_sensors(((0, 0), (1, 1)), 2), (3, 3)
    )
    with pytest.raises(TypeError, match="got ConductivityProblem; a nonlinear model"):
        DenseObservationMap(model)
