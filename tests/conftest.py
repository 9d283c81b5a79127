# SPDX-License-Identifier: MIT
"""Shared fixtures: seeding, dtype/device options, MPI-aware reporting and teardown."""

import gc
import importlib.util
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

HAVE_DOLFINX = importlib.util.find_spec("dolfinx") is not None
_DEVNULL = pytest.StashKey()


def _comm_world():
    if importlib.util.find_spec("mpi4py") is None:
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def pytest_addoption(parser):
    parser.addoption("--dtype", default="float64", choices=("float32", "float64"))
    parser.addoption("--device", default="cpu", help="torch device for generator tests")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    comm = _comm_world()
    if comm is not None and comm.size > 1 and config.option.basetemp is None:
        # One temporary root per rank: ranks sharing pytest's numbered directories race
        # in its end-of-session cleanup (one deletes what the other is listing).
        root = Path(tempfile.gettempdir()) / f"invprior-pytest-{os.getuid()}"
        config.option.basetemp = str(root / f"rank{comm.rank}")
        root.mkdir(mode=0o700, exist_ok=True)
    if comm is not None and comm.size > 1 and comm.rank > 0:
        # Only rank 0 reports; a failure on another rank still fails the mpiexec run.
        config.option.verbose = -2
        config.stash[_DEVNULL] = sys.stdout = open(os.devnull, "w")  # noqa: SIM115


def pytest_unconfigure(config):
    devnull = config.stash.get(_DEVNULL, None)
    if devnull is not None:
        sys.stdout = sys.__stdout__
        devnull.close()


def _cuda_available():
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_fem = pytest.mark.skip(reason="DOLFINx not installed (pip install -e '.[fem]')")
    comm = _comm_world()
    parallel = comm is not None and comm.size > 1
    skip_par = pytest.mark.skip(reason="meaningless on more than one rank")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is available here")
    have_cuda = any("gpu" in item.keywords for item in items) and _cuda_available()
    for item in items:
        if "gpu" in item.keywords and not have_cuda:
            item.add_marker(skip_gpu)
        if "dolfinx" in item.keywords and not HAVE_DOLFINX:
            item.add_marker(skip_fem)
        if parallel and "skip_in_parallel" in item.keywords:
            item.add_marker(skip_par)


@pytest.fixture(autouse=True)
def seed():
    """Same seed, same numbers: every test starts from seed 0."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (code under test may use the global generator)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(0)
    yield 0


@pytest.fixture(autouse=True)
def _mpi_teardown():
    yield
    comm = _comm_world() if HAVE_DOLFINX else None
    if comm is not None:
        gc.collect(0)
        comm.Barrier()


@pytest.fixture
def dtype(request):
    import torch

    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture
def device(request):
    import torch

    dev = torch.device(request.config.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA requested but not available")
    return dev


@pytest.fixture
def comm():
    c = _comm_world()
    if c is None:
        pytest.skip("mpi4py not installed")
    return c


@pytest.fixture(scope="session")
def load_example():
    """Import a script of ``examples/`` as a module: ``load_example("compare_priors")``."""

    def load(name):
        path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"example_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
