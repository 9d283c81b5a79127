# SPDX-License-Identifier: MIT
"""Interrupting ``invprior run``: SIGINT and SIGTERM save the sampling, ``--resume`` ends it.

A tiny study with 400 sampling iterations (2 chains of 100 warm-up steps and 100 draws)
runs in a subprocess; once its checkpoint folder holds a chain, the test sends SIGINT or
SIGTERM and asserts status 130, the one line that says what was saved and how to go on,
no traceback, no PETSc signal report, and nothing written but the checkpoint. The SIGINT
run is then resumed and its ``posterior.nc`` compared with that of an uninterrupted run:
the same draws and sampler statistics, bit for bit. Refusals of ``--resume`` (no
checkpoint, another configuration) run in this process.
"""

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import xarray as xr
from fault_cli import BIN, HANG_TIMEOUT_S, assert_input_error, listing, run_cli
from tiny_study import study_toml, tiny_auxvae

import invprior.study
from invprior.cli import main
from invprior.priors import save

ITERATIONS = 400  # 2 chains x (100 warm-up + 100 draws)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The folder with ``study.toml``: a tiny study that samples for a few seconds."""
    folder = tmp_path_factory.mktemp("interrupt")
    torch.manual_seed(0)
    prior = save(tiny_auxvae(), folder / "tiny").with_suffix("")
    text = study_toml(prior, baseline=False)
    text = text.replace("num_samples = 6", "num_samples = 100")
    text = text.replace("warmup_steps = 4", "warmup_steps = 100")
    assert text.count("= 100") == 2
    (folder / "study.toml").write_text(text)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(study):
    """``posterior.nc`` of the study run without interruption."""
    result = run_cli("run", "study.toml", "--out", "reference", cwd=study)
    assert result.returncode == 0, result.stderr[-4000:]
    assert not (study / ".reference.sampling").exists()  # deleted once the results are in
    return study / "reference" / "posterior.nc"


def _default_sigint():
    """In the child: SIGINT does its default (a shell's background job inherits SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(folder, out, number):
    """Run the study into ``out``; send signal ``number`` once a chain is checkpointed."""
    chain = folder / f".{out}.sampling" / "chain-0.safetensors"
    command = [str(BIN / "invprior"), "run", "study.toml", "--out", out]
    process = subprocess.Popen(
        command,
        cwd=folder,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + HANG_TIMEOUT_S
        while not chain.exists():
            if process.poll() is not None:
                pytest.fail(f"the run ended before its first checkpoint:\n{process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint in {chain.parent} after {HANG_TIMEOUT_S} s")
            time.sleep(0.02)
        process.send_signal(number)
        _, stderr = process.communicate(timeout=HANG_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def _assert_stopped_cleanly(folder, out, status, stderr, before):
    """Status 130, the one line, no traceback or PETSc report, only the checkpoint written."""
    assert status == 130, stderr[-4000:]
    line = (
        rf"invprior run: interrupted; (\d+) of {ITERATIONS} iterations saved in "
        rf"\.{out}\.sampling; continue with invprior run --resume study\.toml --out {out}"
    )
    match = re.fullmatch(line, stderr.strip())
    assert match, stderr[-4000:]
    assert 50 <= int(match[1]) < ITERATIONS  # at least the first save, not the whole run
    assert "Traceback" not in stderr and "PETSC" not in stderr and "Caught signal" not in stderr
    sampling = f".{out}.sampling"
    written = set(listing(folder)) - before
    files = {f"{sampling}/{name}.safetensors" for name in ("run", "chain-0", "chain-1")}
    needed = {sampling, f"{sampling}/run.safetensors", f"{sampling}/chain-0.safetensors"}
    assert needed <= written <= {sampling, *files}, sorted(written)


def _groups(path):
    """The posterior draws and sampler statistics of a ``posterior.nc``."""
    with xr.open_datatree(path) as tree:
        return {group: tree[group].to_dataset().load() for group in ("posterior", "sample_stats")}


def test_sigint_saves_the_sampling_and_resume_gives_the_uninterrupted_draws(study, uninterrupted):
    before = set(listing(study))
    status, stderr = _interrupt(study, "interrupted", signal.SIGINT)
    _assert_stopped_cleanly(study, "interrupted", status, stderr, before)

    result = run_cli("run", "--resume", "study.toml", "--out", "interrupted", cwd=study)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    assert not (study / ".interrupted.sampling").exists()
    expected, resumed = _groups(uninterrupted), _groups(study / "interrupted" / "posterior.nc")
    for group, data in expected.items():
        assert sorted(resumed[group].data_vars) == sorted(data.data_vars), group
        for name, values in data.data_vars.items():
            np.testing.assert_array_equal(resumed[group][name].values, values.values, name)


def test_sigterm_stops_cleanly_and_resume_refuses_another_configuration(study, capsys):
    before = set(listing(study))
    status, stderr = _interrupt(study, "terminated", signal.SIGTERM)
    _assert_stopped_cleanly(study, "terminated", status, stderr, before)

    capsys.readouterr()
    out = study / "terminated"
    config = study / "study.toml"
    assert main(["run", "--resume", str(config), "--out", str(out), "--chains", "3"]) == 2
    refused = _as_result(capsys.readouterr())
    assert_input_error(refused, "run", "cannot resume", "[mcmc] num_chains 3 here, 2 in")
    assert (study / ".terminated.sampling" / "run.safetensors").exists()  # kept

    missing = study / "never-run"
    assert main(["run", "--resume", str(config), "--out", str(missing)]) == 2
    refused = _as_result(capsys.readouterr())
    assert_input_error(refused, "run", "cannot resume", "no checkpoint", ".never-run.sampling")
    assert not missing.exists()


def _as_result(captured, status=2):
    """A captured in-process run as the ``subprocess`` result :func:`assert_input_error` reads."""
    return subprocess.CompletedProcess([], status, captured.out, captured.err)


@pytest.mark.parametrize("sampled", [True, False])
def test_an_interrupt_outside_the_sampling_says_whether_there_is_a_run_to_resume(
    study, capsys, monkeypatch, sampled
):
    """After the sampling (results being written) the line gives the resume command; before
    any of it was saved, the bare line, since ``--resume`` would have nothing to continue."""

    def interrupted_study(config, comm, checkpoint):
        if sampled:
            checkpoint.folder.mkdir()
            (checkpoint.folder / "run.safetensors").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(invprior.study, "run_study", interrupted_study)
    out = study / f"outside-{sampled}"
    capsys.readouterr()
    assert main(["run", str(study / "study.toml"), "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    if sampled:
        expected = (
            f"invprior run: interrupted; the sampling is saved in {study}/.outside-True.sampling"
            f"; continue with invprior run --resume {study}/study.toml --out {out}"
        )
    else:
        expected = "invprior run: interrupted"
    assert err == expected
