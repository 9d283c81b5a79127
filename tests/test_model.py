# SPDX-License-Identifier: MIT
"""DisentangledPrior and InverseProblem: sites, shapes, dtypes, input checks, potential."""

import pickle

import pyro
import pyro.distributions as dist
import pytest
import torch
from linear_gaussian import GRID, LinearForward, LinearGenerator, make_problem, synthetic_obs
from pyro.infer import Predictive
from pyro.infer.mcmc.util import initialize_model

from invprior.model import DisentangledPrior, ForwardMap, InverseProblem
from invprior.potential import PotentialEnergy
from invprior.sites import AUX_NOISE, FIELD, NOISE_STD, OBS, Z_AUX, Z_REC


def test_prior_sites_and_shapes(dtype):
    prior = DisentangledPrior(LinearGenerator(2, 3, dtype), tau=0.2)
    trace = pyro.poutine.trace(prior).get_trace()
    names = [n for n, s in trace.nodes.items() if s["type"] == "sample"]
    assert names == ["u0", "u1", AUX_NOISE, Z_AUX, Z_REC, FIELD]
    assert trace.nodes[FIELD]["value"].shape == GRID.shape
    assert trace.nodes[FIELD]["value"].dtype == dtype
    assert isinstance(trace.nodes["u0"]["fn"], dist.Uniform)
    gen = prior.generator
    u = torch.stack([trace.nodes["u0"]["value"], trace.nodes["u1"]["value"]])
    expected = gen.to_latent(u) + 0.2 * trace.nodes[AUX_NOISE]["value"]
    torch.testing.assert_close(trace.nodes[Z_AUX]["value"], expected)
    assert not any(p.requires_grad for p in gen.parameters()) and not gen.training


def test_prior_without_aux_has_only_z_rec(dtype):
    prior = DisentangledPrior(LinearGenerator(0, 3, dtype))
    trace = pyro.poutine.trace(prior).get_trace()
    names = [n for n, s in trace.nodes.items() if s["type"] == "sample"]
    assert names == [Z_REC, FIELD]
    assert list(prior.latent_shapes) == [Z_REC]


def test_prior_follows_generator_dtype():
    prior = DisentangledPrior(LinearGenerator(1, 2, torch.float64).to(torch.float32))
    trace = pyro.poutine.trace(prior).get_trace()
    assert all(
        trace.nodes[n]["value"].dtype == torch.float32 for n in ("u0", AUX_NOISE, Z_REC, FIELD)
    )


def test_predictive_batches_every_site(dtype):
    problem = make_problem(dtype=dtype)
    samples = Predictive(problem.model, num_samples=7, parallel=True)()
    assert samples["u0"].shape == (7,)
    assert samples[Z_REC].shape == (7, 2)
    assert samples[FIELD].shape == (7, *GRID.shape)
    assert samples[OBS].shape == (7, 5)


def test_potential_matches_pyro_initialize_model(dtype):
    """Our picklable potential equals Pyro's own with our transforms (Uniform: probit)."""
    gen = LinearGenerator(2, 2, dtype)
    problem = InverseProblem(DisentangledPrior(gen), LinearForward(5, dtype), 0.3)
    obs = synthetic_obs(problem)
    ours = pickle.loads(pickle.dumps(PotentialEnergy(problem, obs)))
    params, theirs, _, _ = initialize_model(
        problem.model, model_args=(obs,), transforms={k: t.inv for k, t in ours.transforms.items()}
    )
    for _ in range(3):
        z = {k: torch.randn_like(v) for k, v in params.items()}
        torch.testing.assert_close(ours(z), theirs(z))


def test_complete_reproduces_the_trace(dtype):
    problem = make_problem(dtype=dtype)
    trace = pyro.poutine.trace(problem.prior).get_trace()
    latent = {n: trace.nodes[n]["value"] for n in problem.prior.latent_shapes}
    sites = problem.prior.complete(latent)
    torch.testing.assert_close(sites[FIELD], trace.nodes[FIELD]["value"])


@pytest.mark.parametrize(
    ("obs", "match"),
    [
        (torch.full((5,), float("nan")), "NaN or infinite"),
        (torch.tensor([0.0, 1.0, float("inf"), 0.0, 0.0]), r"indices \[2\]"),
        (torch.zeros(4), r"yields 5 observations; pass shape \(5,\)"),
        (torch.zeros(5, 1), r"has shape \(5, 1\)"),
    ],
)
def test_bad_obs_is_rejected(obs, match):
    problem = make_problem()
    with pytest.raises(ValueError, match=match):
        problem.model(obs.double())
    with pytest.raises(ValueError, match=match):
        PotentialEnergy(problem, obs.double())


@pytest.mark.parametrize("noise", [0.0, -1.0, float("nan"), torch.tensor([[0.1]])])
def test_bad_noise_is_rejected(noise):
    gen = LinearGenerator(1, 2, torch.float64)
    with pytest.raises(ValueError, match="noise_std must be a finite positive"):
        InverseProblem(gen, LinearForward(5, torch.float64), noise)


@pytest.mark.parametrize(
    ("noise", "match"),
    [
        (dist.Normal(0.0, 1.0), "positive support"),
        (dist.HalfNormal(torch.ones(2)), "scalar Pyro distribution"),
        (torch.distributions.HalfNormal(1.0), "scalar Pyro distribution"),
    ],
)
def test_bad_noise_prior_is_rejected(noise, match):
    gen = LinearGenerator(1, 2, torch.float64)
    with pytest.raises(ValueError, match=match):
        InverseProblem(gen, LinearForward(5, torch.float64), noise)


def test_noise_prior_is_a_site_before_the_data():
    gen = LinearGenerator(1, 2, torch.float64)
    problem = InverseProblem(gen, LinearForward(5, torch.float64), dist.LogNormal(-1.0, 0.5))
    with pyro.plate("draws", 7):
        trace = pyro.poutine.trace(problem.model).get_trace()
    names = [n for n, s in trace.nodes.items() if s["type"] == "sample" and n != "draws"]
    assert names[-2:] == [NOISE_STD, OBS] and trace.nodes[NOISE_STD]["value"].shape == (7,)
    scale = trace.nodes[OBS]["fn"].base_dist.scale
    sigma = trace.nodes[NOISE_STD]["value"]  # float32 prior, float64 prediction and data
    torch.testing.assert_close(scale, sigma[:, None].expand(7, 5).to(scale))


def test_noise_length_must_match():
    gen = LinearGenerator(1, 2, torch.float64)
    problem = InverseProblem(gen, LinearForward(5, torch.float64), torch.full((3,), 0.1))
    with pytest.raises(ValueError, match="noise_std has 3 values"):
        problem.model()


def test_grid_mismatch_is_rejected():
    gen = LinearGenerator(1, 2, torch.float64)
    forward = LinearForward(5, torch.float64)
    forward.grid_shape = (8, 8)
    with pytest.raises(ValueError, match=r"expects fields of shape \(8, 8\)"):
        InverseProblem(gen, forward, 0.1)
    forward = LinearForward(5, torch.float64)
    forward.grid_bbox = ((0.0, 0.0), (2.0, 1.0))
    with pytest.raises(ValueError, match="must cover the same domain"):
        InverseProblem(gen, forward, 0.1)


def test_forward_without_n_obs_is_rejected():
    with pytest.raises(TypeError, match="n_obs"):
        InverseProblem(LinearGenerator(1, 2, torch.float64), lambda x: x, 0.1)


@pytest.mark.parametrize("member", ["n_obs", "grid_shape", "grid_bbox", "counter", "batched_vjp"])
def test_forward_must_be_a_forward_map(member):
    forward = LinearForward(5, torch.float64)
    assert isinstance(forward, ForwardMap)
    delattr(forward, member)
    assert not isinstance(forward, ForwardMap)
    with pytest.raises(TypeError, match="must be a ForwardMap.*TorchForward"):
        InverseProblem(LinearGenerator(1, 2, torch.float64), forward, 0.1)


def test_forward_with_a_non_integer_n_obs_is_rejected():
    forward = LinearForward(5, torch.float64)
    forward.n_obs = 5.0
    with pytest.raises(TypeError, match="integer n_obs"):
        InverseProblem(LinearGenerator(1, 2, torch.float64), forward, 0.1)


def test_bad_prior_arguments_are_rejected():
    gen = LinearGenerator(1, 2, torch.float64)
    with pytest.raises(ValueError, match="does not know"):
        DisentangledPrior(gen, {"nope": dist.Normal(0.0, 1.0)})
    with pytest.raises(ValueError, match="scalar Pyro distribution"):
        DisentangledPrior(gen, {"u0": dist.Normal(torch.zeros(2), 1.0)})
    with pytest.raises(ValueError, match="tau must be"):
        DisentangledPrior(gen, tau=-0.1)


def test_tau_defaults_to_the_generators():
    gen = LinearGenerator(1, 2, torch.float64)
    assert DisentangledPrior(gen).tau == 0.1  # Generator.tau: no recorded width
    gen.tau = 0.25
    assert DisentangledPrior(gen).tau == 0.25 and DisentangledPrior(gen, tau=0.5).tau == 0.5
