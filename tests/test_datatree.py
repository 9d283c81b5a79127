# SPDX-License-Identifier: MIT
"""The converters' DataTrees: the layout, ArviZ's LOO, BFMI and plots on every kind, saving."""

import json
import math
import subprocess
import sys
import textwrap

import arviz as az
import matplotlib
import numpy as np
import pyro
import pytest
import torch
import xarray as xr
from linear_gaussian import make_problem, short_nuts_run, synthetic_obs
from pyro.infer import MCMC, NUTS, SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

from invprior import infer
from invprior.datatree import PyroSampleStats, from_pyro_mcmc, from_svi, save_datatree, to_arviz
from invprior.potential import PotentialEnergy
from invprior.sites import FIELD, OBS, Z_AUX, Z_REC

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def linear_run():
    return short_nuts_run()


@pytest.fixture(scope="module")
def setup(linear_run):
    problem, obs, start, _ = linear_run
    return problem, obs, start


def _ours(problem, obs, start):
    result = infer.nuts(
        problem, obs, init=start, num_samples=100, warmup_steps=50, disable_progbar=True
    )
    return to_arviz(result, problem, obs, num_prior_draws=50, warn=False)


def _pyro_mcmc(problem, obs, start):
    stats = PyroSampleStats(NUTS(problem.model), num_samples=100)
    mcmc = MCMC(
        stats.kernel, num_samples=100, warmup_steps=50, hook_fn=stats, disable_progbar=True
    )
    pyro.set_rng_seed(1)
    mcmc.run(obs)
    return from_pyro_mcmc(mcmc, stats=stats, problem=problem, num_prior_draws=50, warn=False)


def _svi(problem, obs, start):
    pyro.clear_param_store()
    pyro.set_rng_seed(2)
    guide = AutoNormal(problem.model)
    svi = SVI(problem.model, guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(50):
        svi.step(obs)
    return from_svi(guide, problem.model, obs, num_draws=200, problem=problem, num_prior_draws=50)


def _laplace(problem, obs, start):
    result = infer.laplace(problem, obs, start)
    return to_arviz(result, problem, obs, num_draws=200, num_prior_draws=50)


KINDS = {"ours": _ours, "pyro_mcmc": _pyro_mcmc, "svi": _svi, "laplace": _laplace}


@pytest.fixture(scope="module", params=sorted(KINDS))
def tree(request, setup):
    return request.param, KINDS[request.param](*setup)


@pytest.fixture(scope="module")
def short_run(linear_run):
    """Two short NUTS chains: the problem, its data and the result."""
    problem, obs, _, result = linear_run
    return problem, obs, result


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")  # few draws here
def test_arviz_functions_run_on_every_kind(tree):
    kind, tree = tree
    assert {
        "posterior", "sample_stats", "log_likelihood", "posterior_predictive", "prior",
        "prior_predictive", "observed_data", "constant_data",
    } <= set(tree.children)  # fmt: skip
    stats = tree["sample_stats"]
    assert {"diverging", "energy", "lp", "n_steps", "tree_depth", "step_size",
            "acceptance_rate"} <= set(stats.data_vars)  # fmt: skip
    assert stats["n_steps"].dtype == np.int64 and stats["tree_depth"].dtype == np.int64
    assert stats["diverging"].dtype == bool
    assert tree["log_likelihood"][OBS].dims[-1] == "sensor"
    assert tree["posterior"]["z_rec"].dims == ("chain", "draw", "rec")
    assert {"u0", "u1", "z_rec"} <= set(tree["prior"].data_vars)
    loo = az.loo(tree)
    assert np.isfinite(loo.elpd) and loo.n_data_points == 5
    bfmi = az.bfmi(tree)["energy"].values
    assert np.isfinite(bfmi).all()
    az.plot_energy(tree)
    az.plot_prior_posterior(tree, var_names=["u0", "u1"])
    summary = az.summary(tree, var_names=["u0", "u1", "z_rec"])
    assert len(summary) == 4
    if kind in ("svi", "laplace"):
        np.testing.assert_array_equal(stats["energy"].values, -stats["lp"].values)
    else:
        assert (stats["n_steps"].values >= 1).all()
        # energy of draw i: U of draw i - 1 plus the refreshed momentum's K >= 0
        energy, lp = stats["energy"].values, stats["lp"].values
        assert (energy[:, 1:] >= -lp[:, :-1]).all()


def test_log_likelihood_is_the_gaussian_density_by_hand(tree, setup):
    kind, tree = tree
    problem, obs, _ = setup
    post = tree["posterior"]
    u = np.stack([post["u0"].values, post["u1"].values], -1)
    gen = problem.prior.generator
    z_aux = (u - gen.aux_mean.numpy()) / gen.aux_std.numpy() + 0.3 * post["e_aux"].values
    z_rec = post["z_rec"].values
    field = gen.m.numpy() + z_aux @ gen.a_aux.numpy().T + z_rec @ gen.a_rec.numpy().T
    pred = field @ problem.forward.b.numpy().T
    y = obs.numpy()
    by_hand = -0.5 * ((y - pred) / 0.3) ** 2 - math.log(0.3) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(tree["log_likelihood"][OBS].values, by_hand, rtol=1e-10)
    np.testing.assert_array_equal(tree["observed_data"][OBS].values, y)


def test_lp_of_our_sampler_is_minus_the_potential(setup):
    problem, obs, start = setup
    result = infer.nuts(problem, obs, init=start, num_samples=6, warmup_steps=5,
                        num_chains=1, disable_progbar=True)  # fmt: skip
    potential = PotentialEnergy(problem, obs)
    u = [float(potential.flat(z)) for z in result.latent[0]]
    np.testing.assert_allclose(result.sample_stats["lp"][0], -np.array(u), rtol=1e-12)
    assert result.sample_stats["n_steps"].dtype == np.int64


def test_pyro_sample_stats_runs_a_copy_with_the_draws_of_the_given_kernel():
    """The given kernel is left as it is; its copy draws what it would, on the same seed."""
    problem = make_problem(aux_dim=1, rec_dim=1)
    obs = synthetic_obs(problem)
    given = NUTS(problem.model)
    before = set(vars(given))
    stats = PyroSampleStats(given, num_samples=4)
    draws = []
    for kernel, hook in ((stats.kernel, stats), (NUTS(problem.model), None)):
        mcmc = MCMC(kernel, num_samples=4, warmup_steps=2, hook_fn=hook, disable_progbar=True)
        pyro.set_rng_seed(3)
        mcmc.run(obs)
        draws.append(mcmc.get_samples())
    assert draws[0].keys() == draws[1].keys()
    assert all(torch.equal(draws[0][k], draws[1][k]) for k in draws[0])
    assert set(vars(given)) == before and given.potential_fn is None  # never set up
    assert np.isfinite(stats.stats["energy"]).all() and (stats.stats["n_steps"] >= 1).all()
    with pytest.raises(TypeError, match=r"MCMC\(stats.kernel"):
        stats(given, {}, "Sample", 0)
    with pytest.raises(TypeError, match="NUTS or pyro.infer.HMC kernel, got MCMC"):
        PyroSampleStats(mcmc, num_samples=4)


def test_to_arviz_groups_and_shapes(short_run, tmp_path):
    problem, obs, result = short_run
    coords = np.random.default_rng(0).uniform(size=(problem.n_obs, 2))
    tree = to_arviz(result, problem, obs, sensor_coords=coords, include_field=True)
    post = tree["posterior"]
    assert set(post.data_vars) == {"u0", "u1", "e_aux", Z_AUX, Z_REC, FIELD}
    assert post["u0"].dims == ("chain", "draw")
    assert post[FIELD].dims == ("chain", "draw", "y", "x")
    assert list(post["aux"].values) == ["u0", "u1"]
    np.testing.assert_allclose(post["x"].values, np.linspace(0, 1, 4))
    stats = tree["sample_stats"]
    assert {"diverging", "step_size", "tree_depth", "acceptance_rate", "n_steps"} <= set(
        stats.data_vars
    )
    assert stats["diverging"].dtype == bool
    assert tree["posterior_predictive"]["obs"].shape == (2, 15, problem.n_obs)
    np.testing.assert_array_equal(tree["observed_data"]["obs"].values, obs.numpy())
    assert tree["constant_data"]["sensor_coords"].dims == ("sensor", "xy")
    assert float(tree["constant_data"]["noise_std"]) == pytest.approx(0.3)
    assert json.loads(tree.attrs["aux_names"]) == ["u0", "u1"]
    path = save_datatree(tree, tmp_path / "out" / "posterior.nc")
    back = xr.open_datatree(path)
    np.testing.assert_array_equal(back["posterior"]["u1"].values, post["u1"].values)
    assert [p.name for p in path.parent.iterdir()] == ["posterior.nc"]  # no temporary left


def test_to_arviz_checks_its_inputs(short_run):
    problem, obs, result = short_run
    with pytest.raises(ValueError, match="sensor_coords has shape"):
        to_arviz(result, problem, obs, sensor_coords=np.zeros((3, 2)), posterior_predictive=False)
    with pytest.raises(ValueError, match="NaN"):
        to_arviz(result, problem, obs * np.nan)


def test_a_failed_solve_is_a_divergence_without_importing_the_potential():
    """A plain Pyro model over the torch bridge: NUTS counts divergences, never crashes."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np, pyro, pyro.distributions as dist, torch
        from invprior.bridge import TorchForward
        from invprior.pde.base import ForwardModel, SolveCounter
        from invprior.pde.errors import PDESolveError

        class Failing(ForwardModel):
            n_obs, grid_shape, grid_bbox = 1, (1, 1), ((0.0, 0.0), (1.0, 1.0))
            def __init__(self):
                self.counter = SolveCounter()
            def forward(self, field):
                if field[0, 0] > 0.5:
                    raise PDESolveError("did not converge")
                return field.reshape(1).copy()
            def vjp(self, field, cotangent):
                return cotangent.reshape(1, 1).copy()

        F = TorchForward(Failing())
        def model():
            x = pyro.sample("x", dist.Normal(torch.zeros(()), torch.ones(()).double()))
            pyro.sample("y", dist.Normal(F(x.reshape(1, 1)), 0.5).to_event(1),
                        obs=torch.tensor([0.4], dtype=torch.float64))
        pyro.set_rng_seed(0)
        start = pyro.infer.autoguide.init_to_value(values={"x": torch.tensor(0.0).double()})
        kernel = pyro.infer.NUTS(model, init_strategy=start, max_plate_nesting=0)
        mcmc = pyro.infer.MCMC(kernel, 30, warmup_steps=10, disable_progbar=True)
        mcmc.run()
        assert "invprior.potential" not in sys.modules
        print(sum(len(v) for v in mcmc.diagnostics()["divergences"].values()))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) > 0
