# SPDX-License-Identifier: MIT
"""The declared generator interface: every generator class exposes it with the right types.

``eps_shape``, ``tau``, ``metadata``, ``training_data`` and ``aux_units`` are declared on
:class:`Generator`; encoding is the :class:`Encoder` protocol. One test runs over every
generator class of the library, and a guard fails when a new class is not listed here.
"""

import inspect
import sys

import pytest
import torch

import invprior.priors
from invprior.priors import (
    AuxVAE,
    BetaVAE,
    DLCFMGenerator,
    Encoder,
    GaussianFieldPrior,
    Generator,
    GridSpec,
    HierarchicalVAE,
    SemiSupervisedVAE,
    SimulatorPrior,
    load,
    save,
)

GRID = GridSpec((8, 8))
NAMES, UNITS = ("x0", "amplitude"), ("m", "1")
RANGES = {"x0": (0.0, 1.0), "amplitude": (0.5, 2.0)}


def _aux(cls=AuxVAE, tau=0.2):
    return cls(NAMES, UNITS, RANGES, [0.5, 1.2], [0.3, 0.4], 3, GRID, (4,), 8, tau=tau)


BUILDERS = {
    AuxVAE: _aux,
    SemiSupervisedVAE: lambda: _aux(SemiSupervisedVAE, tau=0.05),
    BetaVAE: lambda: BetaVAE(4, GRID, (4,), 8),
    HierarchicalVAE: lambda: HierarchicalVAE(4, 2, 8, GRID, (4,), 8),
    DLCFMGenerator: lambda: DLCFMGenerator(_aux(), channels=4, embed=8, steps=3),
    GaussianFieldPrior: lambda: GaussianFieldPrior.matern(GRID, 1.0, 0.3, rank=5),
    SimulatorPrior: lambda: SimulatorPrior(GRID),
}
#: ``(tau, eps_shape, encodes)`` each class must declare.
EXPECTED = {
    AuxVAE: (0.2, None, True),
    SemiSupervisedVAE: (0.05, None, True),
    BetaVAE: (0.1, None, True),
    HierarchicalVAE: (0.1, None, True),
    DLCFMGenerator: (0.2, torch.Size(GRID.shape), True),
    GaussianFieldPrior: (0.1, None, False),
    SimulatorPrior: (0.0, None, False),
}


def _library_generators():
    """Every concrete :class:`Generator` subclass defined in ``invprior.priors``."""
    found = set()
    for name, module in sys.modules.items():
        if name.startswith("invprior.priors"):
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, Generator) and not inspect.isabstract(cls):
                    found.add(cls)
    return found


def test_every_library_generator_is_covered():
    assert invprior.priors.__all__  # the package (and with it every generator) is imported
    assert _library_generators() == set(BUILDERS)


@pytest.mark.parametrize("cls", list(BUILDERS), ids=lambda c: c.__name__)
def test_declared_attributes_have_the_declared_types(cls):
    torch.manual_seed(0)
    g = BUILDERS[cls]()
    tau, eps_shape, encodes = EXPECTED[cls]
    assert type(g) is cls
    assert isinstance(g.tau, float) and g.tau == tau
    assert g.eps_shape == eps_shape
    assert eps_shape is None or isinstance(g.eps_shape, torch.Size)
    assert g.metadata == {} and isinstance(g.metadata, dict)
    assert g.training_data == {}
    assert isinstance(g.aux_names, tuple) and isinstance(g.aux_units, tuple)
    assert len(g.aux_units) == len(g.aux_names) == g.aux_dim
    assert all(isinstance(u, str) for u in g.aux_units)
    assert isinstance(g, Encoder) is encodes
    if encodes:
        mu, logvar = g.encode(torch.zeros(2, *GRID.shape))
        assert mu.shape == logvar.shape == (2, g.aux_dim + g.rec_dim)


def test_metadata_is_per_instance():
    a, b = BetaVAE(4, GRID, (4,), 8), BetaVAE(4, GRID, (4,), 8)
    a.metadata["data"] = {"seed": 1}
    assert b.metadata == {} and b.training_data == {}


@pytest.mark.parametrize("cls", list(BUILDERS), ids=lambda c: c.__name__)
def test_loaded_generator_exposes_its_sidecar(cls, tmp_path):
    torch.manual_seed(0)
    recipe = {"simulator": "source", "n": 10, "seed": 7, "parameters": {}}
    save(BUILDERS[cls](), tmp_path / "g", {"data": recipe, "metrics": {"lds": 0.5}})
    g = load(tmp_path / "g")
    assert isinstance(g.metadata, dict) and g.metadata["metrics"] == {"lds": 0.5}
    assert g.metadata["architecture"] == cls.__name__
    assert g.training_data == recipe
    g.training_data["seed"] = 8  # a copy: the sidecar is not changed through it
    assert g.metadata["data"]["seed"] == 7
    assert (g.tau, g.eps_shape) == EXPECTED[cls][:2]


def test_training_data_ignores_a_malformed_recipe():
    g = BetaVAE(4, GRID, (4,), 8)
    g.metadata = {"data": "source"}
    assert g.training_data == {}


def test_an_encode_set_to_none_is_not_an_encoder():
    class DecodeOnly(BetaVAE):
        encode = None

    assert isinstance(BetaVAE(4, GRID, (4,), 8), Encoder)
    assert not isinstance(DecodeOnly(4, GRID, (4,), 8), Encoder)


def _flow(steps=3):
    torch.manual_seed(0)
    g = DLCFMGenerator(_aux(), channels=4, embed=8, residual_scale=0.5, steps=steps)
    for p in g.velocity.parameters():  # an untrained U-Net's last layer is near zero
        p.data.normal_(0.0, 0.3)
    return g.double()


def test_with_steps_leaves_the_generator_unchanged(tmp_path):
    save(_flow(3), tmp_path / "flow", {"data": {"seed": 1}})
    loaded = load(tmp_path / "flow").double()
    state = {k: v.clone() for k, v in loaded.state_dict().items()}
    fast = loaded.with_steps(1)
    assert (loaded.steps, fast.steps) == (3, 1)
    assert fast.velocity is loaded.velocity and fast.base is loaded.base
    assert fast.residual_scale is loaded.residual_scale
    assert fast.metadata == loaded.metadata and fast.metadata is not loaded.metadata
    assert fast.config()["steps"] == 1 and loaded.config()["steps"] == 3
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key])
    z_aux, z_rec = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    eps = torch.randn(4, *GRID.shape, dtype=torch.float64)
    one = _flow(1).decode(z_aux, z_rec, eps)
    torch.testing.assert_close(fast.decode(z_aux, z_rec, eps), one, rtol=0, atol=0)
    three = loaded.decode(z_aux, z_rec, eps)
    torch.testing.assert_close(three, _flow(3).decode(z_aux, z_rec, eps), rtol=0, atol=0)
    assert (one - three).abs().max() > 1e-3


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_with_steps_refuses_bad_counts(steps):
    with pytest.raises(ValueError, match="steps >= 1"):
        _flow().with_steps(steps)
