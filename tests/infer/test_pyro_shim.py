# SPDX-License-Identifier: MIT
"""Pyro's private names: all still exist, and only ``invprior.infer.pyro_shim`` uses them."""

import ast
import importlib
from pathlib import Path

import pytest
import torch
from linear_gaussian import make_problem, synthetic_obs
from pyro.infer.mcmc import HMC, MCMC, NUTS
from pyro.infer.mcmc.adaptation import BlockMassMatrix, WarmupAdapter
from pyro.infer.mcmc.nuts import _TreeInfo
from pyro.ops.dual_averaging import DualAveraging
from pyro.ops.welford import WelfordCovariance

import invprior
from invprior import infer
from invprior.infer.common import seeded
from invprior.infer.mcmc import _FixedMassNUTS
from invprior.infer.pyro_shim import PYRO_ATTRIBUTES, kernel_state, restore_kernel
from invprior.potential import PotentialEnergy

PACKAGE = Path(invprior.__file__).parent
SHIM = PACKAGE / "infer" / "pyro_shim.py"
#: Modules that drive Pyro's kernels and must reach their private state through the shim.
CLIENTS = [PACKAGE / "infer" / "mcmc.py", PACKAGE / "infer" / "checkpoint.py"]
CLIENTS += [PACKAGE / "datatree.py"]


@pytest.fixture(scope="module")
def problem_obs_start():
    """A small problem, its data and its MAP."""
    problem = make_problem(aux_dim=1, rec_dim=2)
    obs = synthetic_obs(problem)
    return problem, obs, infer.map(problem, obs, num_restarts=1).latent


def _kernel(problem, obs, start):
    """A fixed-mass NUTS kernel (every mixin of the shim) at ``start``, not set up."""
    made = _FixedMassNUTS(potential_fn=PotentialEnergy(problem, obs), full_mass=True)
    made.initial_params = made.potential_fn.layout.unpack(start)
    return made


def _run(problem, obs, start, iterations):
    """A kernel set up for 20 warm-up steps and run ``iterations`` times; its params."""
    kernel = _kernel(problem, obs, start)
    with seeded(3, torch.device("cpu")):
        kernel.setup(warmup_steps=20)
        params = kernel.initial_params
        for _ in range(iterations):
            params = kernel.sample(params)
    return kernel, params


def test_pyro_private_names_still_exist(problem_obs_start):
    """Every name of PYRO_ATTRIBUTES on an object of its class, mid warm-up."""
    problem, obs, start = problem_obs_start
    kernel, params = _run(problem, obs, start, 6)  # into the first mass matrix window
    adapter = kernel._adapter
    mass = adapter.mass_matrix_adapter
    objects = {
        HMC: kernel,
        WarmupAdapter: adapter,
        DualAveraging: adapter._step_size_adapt_scheme,
        BlockMassMatrix: mass,
        WelfordCovariance: next(iter(mass._adapt_scheme.values())),
        NUTS: kernel,
        _TreeInfo: _TreeInfo,
        MCMC: MCMC(kernel, num_samples=1, initial_params=params, disable_progbar=True),
    }
    assert objects.keys() == PYRO_ATTRIBUTES.keys()
    missing = [
        f"{kind.__name__}.{name}"
        for kind, names in PYRO_ATTRIBUTES.items()
        for name in names
        if not hasattr(objects[kind], name)
    ]
    assert missing == []
    assert objects[WelfordCovariance].n_samples > 0


def _private_names(path: Path) -> tuple[set[str], set[str], set[object]]:
    """Private attributes a module reads or writes, those it defines, Pyro's private imports.

    Defined: attributes assigned on ``self`` and methods of the module's classes.
    """
    tree = ast.parse(path.read_text())
    used, defined, imported = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if not node.attr.startswith("__"):
                used.add(node.attr)
        if isinstance(node, ast.ClassDef):
            defined |= {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    for target in ast.walk(item):
                        if isinstance(target, ast.Attribute) and isinstance(target.ctx, ast.Store):
                            defined.add(target.attr)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyro"):
            names = (alias.name for alias in node.names if alias.name.startswith("_"))
            imported |= {getattr(importlib.import_module(node.module), name) for name in names}
    return used, defined, imported


def test_only_the_shim_uses_pyro_private_names_and_it_lists_them():
    listed = {name for names in PYRO_ATTRIBUTES.values() for name in names}
    used, defined, imported = _private_names(SHIM)
    hooks = {"_sample_r", "_build_tree", "_is_turning", "_initialize_adapter"}
    assert hooks <= listed  # the Pyro hooks its mixins override
    assert used - (defined - hooks) <= listed, used - (defined - hooks) - listed
    assert imported <= PYRO_ATTRIBUTES.keys()
    for path in CLIENTS:
        used, defined, imported = _private_names(path)
        assert not (used | defined) & listed, (path.name, (used | defined) & listed)
        assert used <= defined, (path.name, used - defined)
        assert not imported, (path.name, imported)


def test_kernel_state_round_trip_continues_the_chain(problem_obs_start):
    """A kernel restored from another's state is in that state and draws the same."""
    problem, obs, start = problem_obs_start
    first, params = _run(problem, obs, start, 6)
    tensors, scalars = kernel_state(first)
    second = _kernel(problem, obs, start)
    restored = restore_kernel(second, tensors, scalars, start)
    tensors_again, scalars_again = kernel_state(second)
    assert scalars_again == scalars
    assert tensors_again.keys() == tensors.keys()
    assert all(torch.equal(tensors[k], tensors_again[k]) for k in tensors)
    draws = []
    for made, start_params in ((first, params), (second, restored)):
        with seeded(5, torch.device("cpu")):
            draws.append(made.sample(start_params))
    assert all(torch.equal(draws[0][k], draws[1][k]) for k in draws[0])
