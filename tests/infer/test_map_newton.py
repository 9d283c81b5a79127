# SPDX-License-Identifier: MIT
"""Newton MAP: exact on a linear-Gaussian problem, the L-BFGS optimum elsewhere, cheaper."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from generators import BUILDERS
from generators import GRID as GRID16
from linear_gaussian import (
    GRID,
    FailingForward,
    LinearForward,
    LinearGenerator,
    NaNForward,
    exact_posterior,
    make_problem,
    synthetic_obs,
)

from invprior import infer
from invprior.infer.hessian import GaussNewtonHessian
from invprior.model import DisentangledPrior, InverseProblem
from invprior.potential import PotentialEnergy, potential_energy
from invprior.priors import DLCFMGenerator
from invprior.sites import FIELD
from invprior.validation import InputError

F64 = torch.float64


@pytest.mark.parametrize("aux_dim", [0, 2])
def test_newton_is_exact_in_one_iteration(aux_dim):
    problem = make_problem(aux_dim=aux_dim, rec_dim=3)
    obs = synthetic_obs(problem)
    mean, _ = exact_posterior(problem, obs)
    result = infer.map(problem, obs, num_restarts=1, optimizer="newton", max_iterations=1)
    torch.testing.assert_close(result.latent, mean, rtol=1e-10, atol=1e-10)
    assert result.jacobian_evals == 1 and len(result.history) == 2  # start and one step
    # a gradient at the start and at the end, n_obs Jacobian rows, 2 for the prior diagonal
    assert result.gradient_evals == 1 + problem.n_obs + 2 + 1
    assert result.pde_solves["adjoint"] == result.gradient_evals - 2  # prior diagonal: no solve
    again = infer.map(problem, obs, num_restarts=1, optimizer="newton")  # stops by itself
    assert again.jacobian_evals == 1 and torch.equal(again.latent, result.latent)


def test_woodbury_solve_matches_the_dense_hessian():
    problem = make_problem(aux_dim=2, rec_dim=3, n_obs=4)  # n_obs < dim: Woodbury
    obs = synthetic_obs(problem)
    potential = potential_energy(problem, obs)
    latent = potential.prior_latents(1)[0]
    gn = GaussNewtonHessian.at(potential, latent)
    rhs = torch.linspace(-1.0, 2.0, potential.layout.dim, dtype=F64)
    dense = gn.dense() + 0.3 * torch.eye(len(rhs), dtype=F64)
    torch.testing.assert_close(gn.solve(rhs, 0.3), torch.linalg.solve(dense, rhs))
    torch.testing.assert_close(gn.matvec(rhs), gn.dense() @ rhs)
    torch.testing.assert_close(gn.diagonal(), torch.diagonal(gn.dense()))


def _flow_problem():
    torch.manual_seed(0)
    gen = BUILDERS[DLCFMGenerator]().double()
    problem = InverseProblem(DisentangledPrior(gen), LinearForward(4, F64, grid=GRID16), 0.01)
    torch.manual_seed(3)
    return problem, problem.model().detach()


def test_newton_reaches_the_lbfgs_optimum_of_a_deep_prior_with_fewer_gradients():
    problem, obs = _flow_problem()  # a DL-CFM prior: 262 latent coordinates, nonlinear
    newton = infer.map(problem, obs, num_restarts=1, optimizer="newton", seed=1)
    lbfgs = infer.map(problem, obs, num_restarts=1, seed=1, max_iterations=100)
    energy = lbfgs.potential_energy
    assert newton.potential_energy == pytest.approx(energy, rel=1e-9)
    assert newton.potential_energy <= energy + 1e-12 * abs(energy)
    assert lbfgs.gradient_evals >= 4 * newton.gradient_evals
    assert newton.jacobian_evals >= 2  # nonlinear: more than one Gauss-Newton step
    assert lbfgs.jacobian_evals == 0


def test_newton_with_an_unknown_noise_scale():
    fixed = make_problem(aux_dim=2, rec_dim=2)
    noise = dist.HalfNormal(torch.tensor(1.0, dtype=F64))
    problem = InverseProblem(fixed.prior, fixed.forward, noise)
    obs = synthetic_obs(fixed)
    newton = infer.map(problem, obs, num_restarts=2, optimizer="newton", seed=2)
    lbfgs = infer.map(problem, obs, num_restarts=2, seed=2)
    assert newton.potential_energy == pytest.approx(lbfgs.potential_energy, rel=1e-9)
    torch.testing.assert_close(newton.latent, lbfgs.latent, rtol=1e-5, atol=1e-5)
    # Fisher scoring in the noise scale converges linearly: many steps, but it stops
    assert 2 < newton.jacobian_evals < 2 * infer.MapConfig().max_iterations


def regression(obs):
    """A line with an unknown noise scale and a bounded offset."""
    x = torch.linspace(-2.0, 2.0, 30, dtype=F64)
    slope = pyro.sample("slope", dist.Normal(torch.tensor(0.0, dtype=F64), 2.0))
    offset = pyro.sample("offset", dist.Uniform(torch.tensor(-1.0, dtype=F64), 1.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(torch.tensor(1.0, dtype=F64)))
    with pyro.plate("data", len(x)):
        return pyro.sample("y", dist.Normal(offset + slope * x, sigma), obs=obs)


def test_newton_on_a_general_pyro_model():
    values = {"slope": 1.3, "offset": 0.25, "sigma": 0.4}
    torch.manual_seed(7)
    data = {name: torch.tensor(v, dtype=F64) for name, v in values.items()}
    obs = pyro.poutine.condition(regression, data=data)(None).detach()
    newton = infer.map(regression, obs, num_restarts=2, optimizer="newton", seed=1)
    lbfgs = infer.map(regression, obs, num_restarts=2, seed=1)
    assert newton.pde_solves is None and newton.jacobian_evals == 0
    assert newton.potential_energy == pytest.approx(lbfgs.potential_energy, rel=1e-10)
    torch.testing.assert_close(newton.latent, lbfgs.latent, rtol=1e-6, atol=1e-6)
    # each exact Hessian counts dim + 1 = 4 reverse passes, each gradient 1
    assert newton.gradient_evals >= 2 * (1 + 4 + 1)


def test_newton_steps_back_from_non_finite_energies():
    gen = LinearGenerator(2, 2, F64)
    low = torch.tensor(-2.0, dtype=F64)
    uniform = {name: dist.Uniform(low, 3.0) for name in gen.aux_names}
    forward = NaNForward(threshold=0.4)
    problem = InverseProblem(DisentangledPrior(gen, uniform), forward, 0.05)
    field = torch.full(GRID.shape, 1.0, dtype=F64)  # mean 1 > 0.4: NaN there
    obs = super(NaNForward, forward).__call__(field)
    result = infer.map(problem, obs, num_restarts=3, optimizer="newton", max_iterations=100)
    assert math.isfinite(result.potential_energy) and torch.isfinite(result.latent).all()
    assert float(result.sites[FIELD].mean()) <= 0.4
    assert any(math.isinf(h) for h in result.history)  # it did meet the NaN region


def test_newton_steps_back_from_solver_failures(pde_solve_error):
    gen = LinearGenerator(1, 2, F64)
    forward = FailingForward(pde_solve_error, threshold=0.0)
    problem = InverseProblem(gen, forward, 0.05)
    field = torch.full(GRID.shape, 0.5, dtype=F64)  # the data pull into the failing region
    obs = LinearForward.__call__(forward, field).detach()
    potential = potential_energy(problem, obs)
    start = potential.prior_latents(4)
    latents = [potential.constrain(potential.layout.unpack(s)) for s in start]
    fields = [problem.prior.field_of(latent) for latent in latents]
    first = next(s for s, f in zip(start, fields, strict=True) if float(f.mean()) < 0.0)
    result = infer.map(
        problem, obs, num_restarts=1, optimizer="newton", initial_latent=first, max_iterations=50
    )
    assert math.isfinite(result.potential_energy)
    assert any(math.isinf(h) for h in result.history)  # a trial solve failed
    assert float(result.sites[FIELD].mean()) <= 0.0


def test_max_iterations_is_honoured():
    problem, obs = _flow_problem()
    result = infer.map(problem, obs, num_restarts=1, optimizer="newton", max_iterations=2)
    assert len(result.history) <= 3  # the start and at most two trial steps


def test_bad_optimizer_is_an_input_error():
    with pytest.raises(InputError, match="'lbfgs', 'adam', 'newton', got 'newtn'"):
        infer.MapConfig(optimizer="newtn")


def test_low_rank_covariance_factor_is_a_square_root_of_the_laplace_covariance():
    """S S^T equals the Gauss-Newton covariance, built without a dim x dim matrix."""
    problem = make_problem(aux_dim=0, rec_dim=9, n_obs=3)
    obs = synthetic_obs(problem)
    potential = PotentialEnergy(problem, obs)
    latent = torch.linspace(-0.5, 0.5, potential.layout.dim, dtype=torch.float64)
    hessian = GaussNewtonHessian.at(potential, latent)
    factor = hessian.covariance_factor()
    assert factor.basis.shape == (9, 3)
    s = factor.dense()
    torch.testing.assert_close(s @ s.T, torch.linalg.inv(hessian.dense()), rtol=1e-10, atol=1e-12)
    y = torch.randn(4, 9, dtype=torch.float64)
    torch.testing.assert_close(factor(y), y @ s.T)
    small = make_problem(aux_dim=1, rec_dim=1, n_obs=5)  # 3 coordinates, 5 observations
    potential = PotentialEnergy(small, synthetic_obs(small))
    assert GaussNewtonHessian.at(potential, latent[:3]).covariance_factor() is None
