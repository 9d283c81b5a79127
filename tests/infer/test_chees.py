# SPDX-License-Identifier: MIT
"""ChEES-HMC: closed-form posterior, one batch, reproducibility, divergences, bad input."""

import arviz_stats
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from linear_gaussian import (
    exact_posterior,
    half_failing_problem,
    make_problem,
    synthetic_obs,
)

from invprior import infer
from invprior.infer.checkpoint import SamplingCheckpoint
from invprior.infer.chees import _chees_gradient, halton
from invprior.potential import PotentialEnergy
from invprior.sites import FIELD, Z_REC
from invprior.validation import InputError

TINY = {"num_samples": 10, "warmup_steps": 20, "num_chains": 4, "disable_progbar": True}


@pytest.mark.parametrize("init_mass", ["laplace", "identity"])
def test_chees_matches_closed_form_within_4_mcse(init_mass):
    """Means and sds of every latent coordinate, with and without the Laplace preconditioner."""
    problem = make_problem(aux_dim=1, rec_dim=2)
    obs = synthetic_obs(problem)
    mean, cov = exact_posterior(problem, obs)
    result = infer.chees(
        problem, obs, num_chains=16, num_samples=150, warmup_steps=150, init_mass=init_mass,
        full_mass=init_mass == "laplace", disable_progbar=True,
    )  # fmt: skip
    draws = result.latent.numpy()
    for i in range(draws.shape[-1]):
        x = draws[..., i]
        assert abs(x.mean() - float(mean[i])) < 4 * arviz_stats.mcse(x, method="mean"), i
        assert abs(x.std() - float(cov[i, i].sqrt())) < 4 * arviz_stats.mcse(x, method="sd"), i
        assert arviz_stats.rhat(x) < 1.05, i
    assert result.num_divergences == 0
    assert result.kernel == "ChEES"


def test_exact_preconditioner_needs_short_trajectories():
    """With the exact (Laplace) covariance the target is N(0, I): few steps, high acceptance."""
    problem = make_problem(aux_dim=1, rec_dim=2)
    obs = synthetic_obs(problem)
    exact = infer.chees(problem, obs, **{**TINY, "num_samples": 40, "warmup_steps": 60})
    plain = infer.chees(
        problem, obs, init_mass="identity", **{**TINY, "num_samples": 40, "warmup_steps": 60}
    )
    assert exact.sample_stats["n_steps"].mean() < plain.sample_stats["n_steps"].mean()
    assert exact.sample_stats["accept_prob"].mean() > 0.6


def test_same_seed_same_chains_and_the_result_layout():
    problem = make_problem(aux_dim=1, rec_dim=1)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    a = infer.chees(problem, obs, init=start, seed=7, **TINY)
    b = infer.chees(problem, obs, init=start, seed=7, **TINY)
    c = infer.chees(problem, obs, init=start, seed=8, **TINY)
    torch.testing.assert_close(a.latent, b.latent, rtol=0, atol=0)
    assert not torch.equal(a.latent, c.latent)
    assert not torch.equal(a.latent[0], a.latent[1])  # chains get their own seeds
    assert a.samples[Z_REC].shape == (4, 10, 1) and a.samples[FIELD].shape == (4, 10, 3, 4)
    assert set(a.sample_stats) == {
        "diverging", "step_size", "n_steps", "accept_prob", "energy", "lp",
    }  # fmt: skip
    assert all(v.shape == (4, 10) for v in a.sample_stats.values())
    assert a.sample_stats["n_steps"].dtype == np.int64 and (a.sample_stats["n_steps"] >= 1).all()
    # every chain takes the same number of leapfrog steps per iteration: one batch
    assert (a.sample_stats["n_steps"] == a.sample_stats["n_steps"][:1]).all()
    potential = PotentialEnergy(problem, obs)
    lp = -potential.batch(a.latent.reshape(-1, a.latent.shape[-1])).reshape(4, 10)
    np.testing.assert_allclose(a.sample_stats["lp"], lp.detach().numpy(), rtol=1e-10)
    # one forward solve per chain and evaluation, and one for the Laplace preconditioner
    assert a.pde_solves["forward"] == sum(chain["num_evals"] for chain in a.chain_stats) + 1


def test_failed_solves_are_divergences_not_crashes(pde_solve_error):
    problem, obs, init, forward = half_failing_problem(pde_solve_error)
    result = infer.chees(
        problem, obs, init=init, init_mass="identity", **{**TINY, "num_samples": 30}
    )
    assert result.num_divergences > 0
    fields = result.samples[FIELD].reshape(4, 30, -1)
    assert (fields.mean(-1) <= forward.threshold).all()


def test_chains_run_together_and_are_not_resumed(tmp_path):
    problem = make_problem(aux_dim=0, rec_dim=1)
    obs = synthetic_obs(problem)
    with pytest.raises(ValueError, match="pass chains=None"):
        infer.chees(problem, obs, chains=[0, 1], **TINY)
    checkpoint = SamplingCheckpoint(tmp_path / "sampling", resume=True)
    with pytest.raises(InputError, match="nothing to resume"):
        infer.chees(problem, obs, checkpoint=checkpoint, **TINY)
    with pytest.raises(InputError, match="max_leapfrog_steps"):
        infer.MCMCConfig(max_leapfrog_steps=0)


def test_halton_points_fill_the_unit_interval():
    points = np.array([halton(i) for i in range(1023)])
    assert ((points > 0) & (points < 1)).all() and len(set(points)) == 1023
    assert sorted(np.histogram(points, bins=8, range=(0, 1))[0].tolist()) == [127] + [128] * 7


def test_chees_gradient_is_zero_without_movement_and_signs_a_useful_move():
    """No change in spread: zero; proposals spreading outward along their velocity: > 0."""
    y0 = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    accept, diverging = torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.bool)
    velocity = torch.zeros_like(y0)
    assert _chees_gradient(y0, y0, velocity, accept, diverging, 1.0) == 0.0
    y1 = y0 * torch.tensor([[2.0], [2.0], [0.5], [0.5]], dtype=torch.float64)
    assert _chees_gradient(y0, y1, y1, accept, diverging, 1.0) > 0.0
    everything_diverged = torch.ones(4, dtype=torch.bool)
    assert _chees_gradient(y0, y1, y1, accept, everything_diverged, 1.0) == 0.0


@pytest.mark.parametrize("warmup_steps", [0, 1])
def test_no_or_one_warmup_step_keeps_the_given_step_size(warmup_steps):
    # no warm-up, or one whose only mass window closes on its last step: the step size
    # is the one given, or the last adapted one, not an average of no iterates
    problem = make_problem(aux_dim=1, rec_dim=1)
    obs = synthetic_obs(problem)
    settings = {**TINY, "warmup_steps": warmup_steps, "step_size": 0.3}
    result = infer.chees(problem, obs, **settings)
    step_sizes = np.unique(result.sample_stats["step_size"])
    assert len(step_sizes) == 1 and np.isfinite(step_sizes).all()
    if warmup_steps == 0:
        assert step_sizes[0] == pytest.approx(0.3)


F64 = torch.float64
#: A narrow, strongly correlated block beside a standard-normal noise site, the shape of a
#: DL-CFM posterior (named and residual coordinates beside the flow's noise).
BLOCK_COV = torch.tensor([[1.0, 0.099], [0.099, 0.01]], dtype=F64)  # correlation 0.99


def block_beside_noise(obs):
    pyro.sample("z_rec", dist.MultivariateNormal(torch.zeros(2, dtype=F64), BLOCK_COV))
    pyro.sample("eps", dist.Normal(torch.zeros(40, dtype=F64), 1.0).to_event(1))
    pyro.sample("y", dist.Normal(torch.tensor(0.0, dtype=F64), 1.0), obs=obs)


def test_a_flow_noise_site_gets_a_dense_block_beside_a_diagonal():
    """Dense over the other sites, diagonal over eps: exact moments, many more effective draws.

    42 coordinates are more than ``max_dense_dim``, the two beside ``eps`` are not.
    """
    obs = torch.tensor(0.0, dtype=F64)
    kw = {"num_chains": 16, "num_samples": 60, "warmup_steps": 80, "init_mass": "identity"}
    kw |= {"max_dense_dim": 8, "max_leapfrog_steps": 16, "disable_progbar": True}
    block = infer.chees(block_beside_noise, obs, **kw)
    diagonal = infer.chees(block_beside_noise, obs, full_mass=False, **kw)
    draws = block.latent.numpy()
    sd = np.sqrt(np.r_[BLOCK_COV.diagonal().numpy(), np.ones(40)])
    for i in range(draws.shape[-1]):
        x = draws[..., i]
        assert abs(x.mean()) < 4 * arviz_stats.mcse(x, method="mean"), i
        assert abs(x.std() - sd[i]) < 4 * arviz_stats.mcse(x, method="sd"), i

    def ess(result):
        return min(float(arviz_stats.ess(result.latent[..., i].numpy())) for i in range(2))

    # the diagonal cannot follow the correlation: its steps stay short and its draws close
    assert ess(block) > 300 and ess(block) > 3 * ess(diagonal), (ess(block), ess(diagonal))
