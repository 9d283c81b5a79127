# SPDX-License-Identifier: MIT
"""HMC and NUTS: closed-form posterior, reproducibility, statistics, solver failures."""

import arviz_stats
import numpy as np
import pytest
import torch
from linear_gaussian import (
    FailingForward,
    LinearGenerator,
    exact_posterior,
    make_problem,
    synthetic_obs,
)

from invprior import infer
from invprior.model import InverseProblem
from invprior.sites import AUX_NOISE, FIELD, Z_AUX, Z_REC

TINY = {
    "num_samples": 10,
    "warmup_steps": 20,
    "num_chains": 2,
    "max_tree_depth": 3,
    "disable_progbar": True,
}


@pytest.mark.slow
def test_nuts_matches_closed_form_within_4_mcse():
    """Named site, e_aux and z_rec: means and sds within 4 Monte Carlo standard errors."""
    problem = make_problem(aux_dim=1, rec_dim=2)
    obs = synthetic_obs(problem)
    mean, cov = exact_posterior(problem, obs)
    result = infer.nuts(problem, obs, num_samples=500, warmup_steps=200, disable_progbar=True)
    draws = result.latent.numpy()  # (chain, draw, dim), Normal priors: unconstrained = physical
    for i in range(draws.shape[-1]):
        x = draws[..., i]
        mcse_mean = arviz_stats.mcse(x, method="mean")
        mcse_sd = arviz_stats.mcse(x, method="sd")
        assert abs(x.mean() - float(mean[i])) < 4 * mcse_mean, i
        assert abs(x.std() - float(cov[i, i].sqrt())) < 4 * mcse_sd, i
    np.testing.assert_array_equal(result.samples["u0"].numpy(), draws[..., 0])
    assert result.num_divergences == 0


def test_same_seed_same_chains_and_shapes():
    problem = make_problem(aux_dim=1, rec_dim=1)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    a = infer.nuts(problem, obs, init=start, seed=7, **TINY)
    b = infer.nuts(problem, obs, init=start, seed=7, **TINY)
    torch.testing.assert_close(a.latent, b.latent, rtol=0, atol=0)
    assert not torch.equal(a.latent[0], a.latent[1])  # chains get their own seeds
    assert a.samples[Z_REC].shape == (2, 10, 1)
    assert a.samples[AUX_NOISE].shape == a.samples[Z_AUX].shape == (2, 10, 1)
    assert a.samples[FIELD].shape == (2, 10, 3, 4)
    assert set(a.sample_stats) == {
        "diverging",
        "step_size",
        "n_steps",
        "accept_prob",
        "tree_depth",
    }
    assert all(v.shape == (2, 10) for v in a.sample_stats.values())
    n_steps, depth = a.sample_stats["n_steps"], a.sample_stats["tree_depth"]
    assert (
        (n_steps >= 1).all() and (2 ** (depth - 1) <= n_steps).all() and (n_steps < 2**depth).all()
    )
    assert (
        (a.sample_stats["accept_prob"] >= 0) & (a.sample_stats["accept_prob"] <= 1 + 1e-9)
    ).all()
    solves = a.pde_solves
    assert solves["forward"] == sum(c["num_evals"] for c in a.chain_stats)


def test_hmc_runs_from_the_map_by_default_without_fields():
    problem = make_problem(aux_dim=0, rec_dim=2)
    obs = synthetic_obs(problem)
    result = infer.hmc(problem, obs, num_steps=4, step_size=0.5, store_field=False, **TINY)
    assert FIELD not in result.samples
    assert result.kernel == "HMC" and "tree_depth" not in result.sample_stats
    assert (result.sample_stats["n_steps"] >= 1).all()


def test_failed_solves_are_divergences_not_crashes(pde_solve_error):
    gen = LinearGenerator(0, 2, torch.float64)
    forward = FailingForward(pde_solve_error, threshold=0.0)
    problem = InverseProblem(gen, forward, 0.3)
    init = torch.tensor([-0.5, -0.5], dtype=torch.float64)
    field = gen.decode(init.new_zeros(0), init)
    obs = forward(field).detach()
    forward.threshold = float(field.mean())  # half of the posterior mass fails
    config = {**TINY, "warmup_steps": 0, "num_samples": 20}
    result = infer.nuts(problem, obs, init=init, **config)
    assert result.num_divergences > 0
    fields = result.samples[FIELD].reshape(2, 20, -1)
    assert (fields.mean(-1) <= forward.threshold).all()


def test_mcmc_config_is_checked():
    with pytest.raises(ValueError, match="target_accept_prob"):
        infer.MCMCConfig(target_accept_prob=1.0)
    with pytest.raises(ValueError, match="num_chains"):
        infer.MCMCConfig(num_chains=0)


def test_warmup_starts_from_the_laplace_covariance_in_pyro_site_order():
    """The dense block is ordered by sorted site names, not by the packing order."""
    from invprior.infer.mcmc import _NUTS
    from invprior.potential import PotentialEnergy

    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    _, cov = exact_posterior(problem, obs)  # linear-Gaussian: Laplace is exact
    potential = PotentialEnergy(problem, obs)
    start = infer.map(problem, obs, num_restarts=1).latent
    kernel = _NUTS(
        potential_fn=potential,
        full_mass=True,
        inverse_mass_matrix=infer.laplace(problem, obs, start).cov,
    )
    kernel.initial_params = potential.layout.unpack(start)
    kernel.setup(warmup_steps=0)
    names = tuple(sorted(potential.layout.names))
    assert names != potential.layout.names
    order = potential.layout.positions(names)
    torch.testing.assert_close(
        kernel.inverse_mass_matrix[names], cov[order][:, order], rtol=1e-6, atol=1e-10
    )


def test_laplace_warm_start_takes_fewer_leapfrog_steps():
    problem = make_problem(aux_dim=2, rec_dim=3, noise=0.02)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    steps = {
        init_mass: infer.nuts(
            problem, obs, init=start, init_mass=init_mass, num_samples=30, warmup_steps=30,
            num_chains=1, disable_progbar=True,
        ).sample_stats["n_steps"].mean()
        for init_mass in ("laplace", "identity")
    }  # fmt: skip
    assert steps["laplace"] < 0.5 * steps["identity"], steps
