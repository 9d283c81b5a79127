# SPDX-License-Identifier: MIT
"""The generator contract: every generator class honours it, built by ``generators.py``.

``eps_shape``, ``tau``, ``metadata``, ``training_data`` and ``aux_units`` are declared on
:class:`Generator`; encoding is the :class:`Encoder` protocol. Every generator decodes
batches that broadcast, passes gradients to its latent, decodes the same field twice in
eval mode, decodes the same fields after a save/load round trip and moves with ``.to``.
``decode`` takes ``eps`` exactly when ``eps_shape`` declares it. The tests run over every
generator class of the library and the linear test double, and a guard fails when a new
library class is not listed in ``generators.BUILDERS``.
"""

import inspect
import sys

import pytest
import torch
from generators import BUILDERS, GRID, LIBRARY, spread_velocity, tiny_flow
from linear_gaussian import LinearGenerator

import invprior.priors
from invprior.priors import (
    AuxVAE,
    BetaVAE,
    DLCFMGenerator,
    Encoder,
    GaussianFieldGenerator,
    Generator,
    HierarchicalVAE,
    SemiSupervisedVAE,
    SimulatorGenerator,
    load,
    save,
)

#: ``(tau, eps_shape, encodes)`` each class must declare.
EXPECTED = {
    AuxVAE: (0.2, None, True),
    SemiSupervisedVAE: (0.05, None, True),
    BetaVAE: (0.1, None, True),
    HierarchicalVAE: (0.1, None, True),
    DLCFMGenerator: (0.2, torch.Size(GRID.shape), True),
    GaussianFieldGenerator: (0.1, None, False),
    SimulatorGenerator: (0.0, None, False),
    LinearGenerator: (0.1, None, False),
}
ALL = pytest.mark.parametrize("cls", list(BUILDERS), ids=lambda c: c.__name__)


def _build(cls, dtype=None):
    torch.manual_seed(0)
    g = BUILDERS[cls]().eval()
    return g if dtype is None else g.to(dtype)


def _latent(g, batch_aux, batch_rec, like):
    """Standard normal ``(z_aux, z_rec[, eps])`` with the given batch shapes."""
    z = [like.new_empty(*batch_aux, g.aux_dim).normal_()]
    z.append(like.new_empty(*batch_rec, g.rec_dim).normal_())
    if g.eps_shape is not None:
        z.append(like.new_empty(*batch_rec, *g.eps_shape).normal_())
    return z


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
    assert _library_generators() == set(LIBRARY)


@ALL
def test_declared_attributes_have_the_declared_types(cls):
    g = _build(cls)
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
        mu, logvar = g.encode(torch.zeros(2, 5, *GRID.shape))
        assert mu.shape == logvar.shape == (2, 5, g.aux_dim + g.rec_dim)


@ALL
def test_decode_shapes_and_batch_broadcasting(cls, dtype):
    g = _build(cls, dtype)
    like = torch.zeros((), dtype=dtype)
    z = _latent(g, (3, 1), (1, 2), like)
    out = g.decode(*z)
    assert out.shape == (3, 2, *g.grid.shape) and out.dtype == dtype
    for i in range(3):
        for j in range(2):
            one = g.decode(z[0][i, 0], *(t[0, j] for t in z[1:]))
            assert one.shape == g.grid.shape
            torch.testing.assert_close(one, out[i, j])


@ALL
def test_gradients_reach_the_latent(cls):
    g = _build(cls, torch.float64)
    z = [t.requires_grad_() for t in _latent(g, (4,), (4,), torch.zeros((), dtype=torch.float64))]
    g.decode(*z).square().sum().backward()
    for t in (t for t in z if t.numel()):  # an empty z_aux reaches nothing
        assert t.grad.shape == t.shape and torch.isfinite(t.grad).all()
        assert t.grad.abs().max() > 0


@ALL
def test_decode_is_repeatable_in_eval_mode(cls):
    g = _build(cls)
    z = _latent(g, (5,), (5,), g.aux_mean)
    torch.testing.assert_close(g.decode(*z), g.decode(*z), rtol=0, atol=0)


@ALL
def test_decode_takes_eps_exactly_when_it_declares_eps_shape(cls):
    g = _build(cls, torch.float64)
    z = _latent(g, (3,), (3,), torch.zeros((), dtype=torch.float64))
    eps = torch.ones(3, *g.grid.shape, dtype=torch.float64)
    if g.eps_shape is None:
        torch.testing.assert_close(g.decode(*z, eps=None), g.decode(*z), rtol=0, atol=0)
        with pytest.raises(ValueError, match=r"eps_shape is None.*pass eps=None"):
            g.decode(*z, eps=eps)
    else:
        z_aux, z_rec, _ = z
        mean_path = g.decode(z_aux, z_rec, eps=None)
        torch.testing.assert_close(mean_path, g.decode(z_aux, z_rec, torch.zeros_like(eps)))
        assert (g.decode(z_aux, z_rec, eps=eps) - mean_path).abs().max() > 0


@pytest.mark.parametrize("cls", LIBRARY, ids=lambda c: c.__name__)
def test_save_load_round_trip_decodes_the_same_fields(cls, tmp_path):
    g = _build(cls)
    save(g, tmp_path / "g")
    back = load(tmp_path / "g")
    assert type(back) is cls and not back.training
    z = _latent(g, (5,), (5,), g.aux_mean)
    torch.testing.assert_close(back.decode(*z), g.decode(*z), rtol=0, atol=0)


@ALL
def test_to_device_moves_every_tensor(cls, device):
    g = _build(cls).to(device)
    assert all(t.device.type == device.type for t in [*g.parameters(), *g.buffers()])
    z = _latent(g, (2,), (2,), g.aux_mean)
    assert all(t.device.type == device.type for t in z)
    out = g.decode(*z)
    assert out.device.type == device.type and out.shape == (2, *g.grid.shape)


def test_metadata_is_per_instance():
    a, b = BUILDERS[BetaVAE](), BUILDERS[BetaVAE]()
    a.metadata["data"] = {"seed": 1}
    assert b.metadata == {} and b.training_data == {}


@pytest.mark.parametrize("cls", LIBRARY, ids=lambda c: c.__name__)
def test_loaded_generator_exposes_its_sidecar(cls, tmp_path):
    recipe = {"simulator": "source", "n": 10, "seed": 7, "parameters": {}}
    save(_build(cls), tmp_path / "g", {"data": recipe, "metrics": {"lds": 0.5}})
    g = load(tmp_path / "g")
    assert isinstance(g.metadata, dict) and g.metadata["metrics"] == {"lds": 0.5}
    assert g.metadata["architecture"] == cls.__name__
    assert g.training_data == recipe
    g.training_data["seed"] = 8  # a copy: the sidecar is not changed through it
    assert g.metadata["data"]["seed"] == 7
    assert (g.tau, g.eps_shape) == EXPECTED[cls][:2]


def test_training_data_ignores_a_malformed_recipe():
    g = BUILDERS[BetaVAE]()
    g.metadata = {"data": "source"}
    assert g.training_data == {}


def test_an_encode_set_to_none_is_not_an_encoder():
    class DecodeOnly(BetaVAE):
        encode = None

    assert isinstance(BUILDERS[BetaVAE](), Encoder)
    assert not isinstance(DecodeOnly(3, GRID), Encoder)


def _flow(steps=3):
    torch.manual_seed(0)
    return spread_velocity(tiny_flow(steps)).double()


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
    z_aux, z_rec = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
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
