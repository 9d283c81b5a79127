# SPDX-License-Identifier: MIT
"""HMC and NUTS: closed-form posterior, reproducibility, statistics, solver failures, resume."""

import itertools
import os
import signal
import time

import arviz_stats
import numpy as np
import pytest
import torch
from linear_gaussian import (
    exact_posterior,
    half_failing_problem,
    make_problem,
    synthetic_obs,
)
from pyro.infer.mcmc import HMC, MCMC

from invprior import infer
from invprior.infer.checkpoint import (
    ChainState,
    ChainStore,
    SamplingCheckpoint,
    SamplingInterrupted,
    check_resumable,
    prepare_checkpoint,
    sampling_folder,
    signals_held,
)
from invprior.infer.common import child_seeds, seeded
from invprior.infer.mcmc import _NUTS, _FixedMassNUTS
from invprior.potential import PotentialEnergy
from invprior.sites import AUX_NOISE, FIELD, Z_AUX, Z_REC
from invprior.validation import InputError

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
        "energy",
        "lp",
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
    problem, obs, init, forward = half_failing_problem(pde_solve_error)
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
    # about half as many (16.4 against 32.3 on one machine, under half on another):
    # the bar leaves room for floating-point paths, an identity-like mass would be near 1
    assert steps["laplace"] < 0.65 * steps["identity"], steps


# Checkpoints: interrupted chains continue bit for bit -------------------------------------

RESUMABLE = {
    "num_samples": 8,
    "warmup_steps": 20,
    "max_tree_depth": 3,
    "num_steps": 4,
    "disable_progbar": True,
}


@pytest.fixture(scope="module")
def resumable():
    """A small problem, its data and its MAP."""
    problem = make_problem(aux_dim=1, rec_dim=2)
    obs = synthetic_obs(problem)
    return problem, obs, infer.map(problem, obs, num_restarts=1)


def _interrupt_at(monkeypatch, evaluation):
    """The ``evaluation``-th potential evaluation from now raises KeyboardInterrupt.

    That is in the middle of a kernel iteration, as a real SIGINT would be.
    """
    call = PotentialEnergy.__call__
    count = itertools.count(1)

    def interrupting(self, params):
        if next(count) == evaluation:
            raise KeyboardInterrupt
        return call(self, params)

    monkeypatch.setattr(PotentialEnergy, "__call__", interrupting)


def _assert_same_run(result, reference):
    torch.testing.assert_close(result.latent, reference.latent, rtol=0, atol=0)
    assert set(result.sample_stats) == set(reference.sample_stats)
    for key, values in reference.sample_stats.items():
        np.testing.assert_array_equal(result.sample_stats[key], values, err_msg=key)
    keys = ("chain", "num_evals", "pde_solves", "num_divergences", "step_size")
    assert [{k: c[k] for k in keys} for c in result.chain_stats] == [
        {k: c[k] for k in keys} for c in reference.chain_stats
    ]


def test_driver_gives_the_draws_of_pyro_mcmc(resumable):
    """The chain loop reproduces ``pyro.infer.MCMC(...).run()``, the former implementation."""
    problem, obs, start = resumable
    potential = PotentialEnergy(problem, obs)
    kernel = _NUTS(
        potential_fn=potential,
        inverse_mass_matrix=infer.laplace(problem, obs, start.latent).cov,
        full_mass=True,
        max_tree_depth=3,
    )
    with seeded(child_seeds(7, 1)[0], torch.device("cpu")):
        mcmc = MCMC(
            kernel,
            num_samples=8,
            warmup_steps=20,
            initial_params=potential.layout.unpack(start.latent),
            disable_progbar=True,
            transforms={},
        )
        mcmc.run()
    expected = potential.layout.pack(mcmc.get_samples())
    result = infer.nuts(problem, obs, init=start, seed=7, num_chains=1, **RESUMABLE)
    torch.testing.assert_close(result.latent[0], expected, rtol=0, atol=0)
    assert result.chain_stats[0]["step_size"] == kernel.step_size


@pytest.mark.parametrize(
    ("sampler", "num_chains", "stops"),
    [
        ("nuts", 1, (25, 80, 60)),  # during setup, in a mass matrix window, among the draws
        ("nuts", 2, (150, 60)),  # just after chain 0 ended, then in chain 1
        ("hmc", 1, (60, 60)),
        ("hmc", 2, (110, 120)),
    ],
)
def test_interrupted_chains_resume_bit_for_bit(
    resumable, tmp_path, monkeypatch, sampler, num_chains, stops
):
    problem, obs, start = resumable
    sample = getattr(infer, sampler)
    options = {"init": start, "seed": 7, "num_chains": num_chains, **RESUMABLE}
    reference = sample(problem, obs, **options)  # no checkpoint
    folder = tmp_path / "sampling"
    done = []
    for stop in stops:
        with monkeypatch.context() as patch:
            _interrupt_at(patch, stop)
            checkpoint = SamplingCheckpoint(folder, every=3, resume=bool(done))
            with pytest.raises(SamplingInterrupted) as info:
                sample(problem, obs, checkpoint=checkpoint, **options)
        total = num_chains * 28
        assert str(info.value) == f"{info.value.done} of {total} iterations saved in {folder}"
        done.append(info.value.done)
    assert done == sorted(done) and done[-1] < num_chains * 28, done
    if sampler == "nuts" and num_chains == 1:
        assert done[0] == 0 and 3 < done[1] < 20 < done[2], done  # setup, warm-up, draws
    if num_chains == 2:
        assert done[-1] > 28, done  # chain 1 was begun
    resumed = sample(problem, obs, checkpoint=SamplingCheckpoint(folder, resume=True), **options)
    _assert_same_run(resumed, reference)
    checkpointed = sample(problem, obs, checkpoint=SamplingCheckpoint(tmp_path / "new"), **options)
    _assert_same_run(checkpointed, reference)  # saving changes nothing either


def test_checkpoint_of_another_run_is_refused(resumable, tmp_path, monkeypatch):
    problem, obs, start = resumable
    options = {"init": start, "num_chains": 1, **RESUMABLE}
    folder = tmp_path / "sampling"
    settings = {"[mesh] n": "8", "[prior] name": "'a'"}
    with monkeypatch.context() as patch, pytest.raises(SamplingInterrupted):
        _interrupt_at(patch, 80)
        infer.nuts(
            problem, obs, checkpoint=SamplingCheckpoint(folder, settings=settings), **options
        )

    def resume(obs=obs, seed=0, **changes):
        checkpoint = SamplingCheckpoint(folder, resume=True, settings={**settings, **changes})
        return infer.nuts(problem, obs, seed=seed, checkpoint=checkpoint, **options)

    with pytest.raises(InputError, match=r"another sampler settings \(kernel"):
        resume(seed=1)
    with pytest.raises(InputError, match="another observed data"):
        resume(obs=obs + 0.1)
    with pytest.raises(InputError, match=r"\[mesh\] n 16 here, 8 in the checkpoint"):
        resume(**{"[mesh] n": "16"})
    with pytest.raises(InputError, match=r"\[mesh\] n 16 here, 8 in the checkpoint"):
        check_resumable(folder, {**settings, "[mesh] n": "16"})
    check_resumable(folder, settings)  # the same settings pass
    with pytest.raises(InputError, match="no checkpoint of an interrupted run"):
        infer.nuts(
            problem, obs, checkpoint=SamplingCheckpoint(tmp_path / "none", resume=True), **options
        )


def test_a_new_run_discards_an_old_checkpoint(tmp_path):
    output = tmp_path / "study"
    folder = sampling_folder(output)
    assert folder == tmp_path / ".study.sampling"
    folder.mkdir()
    (folder / "run.safetensors").write_text("left by a killed run")
    with pytest.raises(InputError, match=r"cannot be read"):
        prepare_checkpoint(output, {}, resume=True)
    with pytest.warns(RuntimeWarning, match="discarding the checkpoint"):
        checkpoint = prepare_checkpoint(output, {"seed": "0"}, resume=False)
    assert not folder.exists() and checkpoint.folder == folder and not checkpoint.resume


def test_a_saved_chain_is_read_back_into_aligned_memory_of_its_own(tmp_path):
    """Tensors come back equal, in their layout, 64-byte aligned as torch allocates them.

    Read in place from the file they would sit at its byte offsets, where BLAS takes other
    paths than for the uninterrupted chain's tensors and a resumed chain drifts in the
    last bits after some draws.
    """
    store = ChainStore(SamplingCheckpoint(tmp_path), {"sampler": "s", "data": "d"}, writes=True)
    odd = torch.arange(3.0)  # 12 bytes: every tensor after it starts off the alignment
    matrix = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    tensors = {"a": odd, "b": matrix, "c": matrix.T.clone(), "d": torch.randn(7).double()}
    store.save_chain(0, ChainState(tensors, {"iteration": 1}))
    loaded = store.load_chain(0)
    for name, value in tensors.items():
        back = loaded.tensors[name]
        torch.testing.assert_close(back, value, rtol=0, atol=0)
        assert back.stride() == value.stride(), name
        assert back.data_ptr() % 64 == 0, name
    pointers = [t.untyped_storage().data_ptr() for t in loaded.tensors.values()]
    assert len(set(pointers)) == len(pointers)  # no two share a buffer


@pytest.fixture
def sigint_handler():
    """Set SIGINT's handler for the test, whatever the launcher left (a shell's background
    job starts with SIGINT ignored), and restore it afterwards."""
    previous = signal.getsignal(signal.SIGINT)
    yield lambda handler: signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGINT, previous)


def test_signals_held_defers_sigint(sigint_handler):
    sigint_handler(signal.default_int_handler)
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached = True
    assert reached


def test_signals_held_leaves_an_ignored_sigint_ignored(sigint_handler):
    sigint_handler(signal.SIG_IGN)  # as under nohup or in a background job
    with signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


# A mass matrix fixed through warm-up: no U-turn missed at a resonant step size -----------


def _draws_at_fixed_step(monkeypatch, problem, obs, start, step_size, adapt_mass):
    """NUTS from the exact Laplace mass, without warm-up, at exactly ``step_size``.

    Pyro's search for a reasonable step size is switched off, so the draws run at the
    step size given (as all draws after warm-up run at the one warm-up ends with).
    """
    with monkeypatch.context() as patch:
        patch.setattr(HMC, "_find_reasonable_step_size", lambda self, z: self.step_size)
        return infer.nuts(
            problem, obs, init=start, seed=2, num_chains=1, num_samples=8, warmup_steps=0,
            full_mass=True, init_mass="laplace", adapt_mass=adapt_mass, max_tree_depth=8,
            step_size=step_size, disable_progbar=True,
        )  # fmt: skip


def test_fixed_laplace_mass_does_not_miss_u_turns_at_a_resonant_step_size(monkeypatch):
    """With the exact covariance as mass a Gaussian posterior is isotropic in its metric.

    All 402 coordinates then turn with one period, and at a step size just above
    ``2 sin(pi / 15)`` = 0.416 the 15-step tree falls short of half a period while the
    31-step one spans a little more than a whole period, so Pyro's check between the two ends
    misses the U-turn: 127 steps a draw instead of about 15. The fixed-mass kernel checks
    across the subtrees too.
    """
    problem = make_problem(aux_dim=1, rec_dim=400)
    obs = synthetic_obs(problem)
    mean, cov = exact_posterior(problem, obs)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(0), dtype=mean.dtype)
    start = mean + torch.linalg.cholesky(cov) @ noise  # a posterior draw, as after warm-up
    resonant, plain = 0.419, 0.40
    missed = _draws_at_fixed_step(monkeypatch, problem, obs, start, resonant, adapt_mass=True)
    fixed = _draws_at_fixed_step(monkeypatch, problem, obs, start, resonant, adapt_mass=False)
    near = _draws_at_fixed_step(monkeypatch, problem, obs, start, plain, adapt_mass=False)
    assert missed.sample_stats["step_size"][0, 0] == fixed.sample_stats["step_size"][0, 0]
    assert fixed.sample_stats["step_size"][0, 0] == resonant
    # the case is resonant under Pyro's criterion (no warm-up, so nothing adapts the mass)
    assert missed.sample_stats["n_steps"].mean() >= 100, missed.sample_stats["n_steps"]
    steps, steps_near = fixed.sample_stats["n_steps"], near.sample_stats["n_steps"]
    assert steps.max() <= 31 and steps.mean() <= 1.5 * steps_near.mean(), (steps, steps_near)
    assert fixed.num_divergences == 0


def test_fixed_laplace_mass_is_the_one_used_after_warmup():
    """``adapt_mass=False``: the inverse mass after warm-up is the Laplace covariance."""
    problem = make_problem(aux_dim=2, rec_dim=3)
    obs = synthetic_obs(problem)
    mean, cov = exact_posterior(problem, obs)  # linear-Gaussian: Laplace is exact
    potential = PotentialEnergy(problem, obs)
    kernel = _FixedMassNUTS(
        potential_fn=potential,
        full_mass=True,
        adapt_mass_matrix=False,
        inverse_mass_matrix=infer.laplace(problem, obs, mean).cov,
    )
    kernel.initial_params = params = potential.layout.unpack(mean)
    names = tuple(sorted(potential.layout.names))
    order = potential.layout.positions(names)
    with seeded(4, torch.device("cpu")):
        kernel.setup(warmup_steps=30)
        for _ in range(32):
            params = kernel.sample(params)
    assert kernel._t == 32  # two draws after warm-up
    torch.testing.assert_close(
        kernel.inverse_mass_matrix[names], cov[order][:, order], rtol=1e-6, atol=1e-10
    )


def test_fixed_mass_chains_resume_bit_for_bit(resumable, tmp_path, monkeypatch):
    """Interrupted in warm-up and among the draws, a fixed-mass chain resumes bit for bit."""
    problem, obs, start = resumable
    options = {"init": start, "seed": 7, "num_chains": 1, "adapt_mass": False, **RESUMABLE}
    reference = infer.nuts(problem, obs, **options)
    folder = tmp_path / "sampling"
    done = []
    for stop in (40, 105):
        with monkeypatch.context() as patch:
            _interrupt_at(patch, stop)
            checkpoint = SamplingCheckpoint(folder, every=3, resume=bool(done))
            with pytest.raises(SamplingInterrupted) as info:
                infer.nuts(problem, obs, checkpoint=checkpoint, **options)
        done.append(info.value.done)
    assert 0 < done[0] < 20 < done[1] < 28, done  # in warm-up, then among the draws
    resumed = infer.nuts(
        problem, obs, checkpoint=SamplingCheckpoint(folder, resume=True), **options
    )
    _assert_same_run(resumed, reference)
