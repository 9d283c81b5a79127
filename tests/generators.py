# SPDX-License-Identifier: MIT
"""Tiny untrained generators of every class, built one way for all tests.

:data:`BUILDERS` maps each generator class of :mod:`invprior.priors`, and the linear test
double of ``linear_gaussian.py``, to a builder of a small instance; the contract test
(``tests/priors/test_generator_interface.py``) runs over all of them. :func:`tiny_auxvae`
is the Aux-VAE of the study tests; :func:`two_scale_auxvae` the one of the Aux-VAE unit
tests (named variables on different scales); :func:`tiny_betavae`, :func:`tiny_hvae` and
:func:`tiny_flow` build the other networks. Keyword arguments of a builder replace its
constructor arguments. A test that needs another shape (an 8 x 8 or 4 x 4 grid, four named
variables) builds its own.
"""

from functools import partial

import torch
from linear_gaussian import LinearGenerator

from invprior.priors import (
    AuxVAE,
    BetaVAE,
    DLCFMGenerator,
    GaussianFieldGenerator,
    GridSpec,
    HierarchicalVAE,
    SemiSupervisedVAE,
    SimulatorGenerator,
)

GRID = GridSpec((16, 16))
NAMES = ("x0", "y0")


def tiny_auxvae(cls: type[AuxVAE] = AuxVAE, **overrides) -> AuxVAE:
    """An untrained Aux-VAE (or ``cls``) on a 16 x 16 grid with the named variables ``NAMES``.

    Args:
        cls: :class:`AuxVAE` or a subclass with its constructor.
        **overrides: Constructor arguments that replace the defaults below.
    """
    kwargs = dict(
        aux_names=NAMES,
        aux_units=("m", "m"),
        aux_ranges={n: (0.2, 0.8) for n in NAMES},
        aux_mean=[0.5, 0.5],
        aux_std=[0.17, 0.17],
        rec_dim=2,
        grid=GRID,
        channels=(4, 4),
        hidden=16,
    )
    return cls(**(kwargs | overrides))


#: Constructor arguments of :func:`two_scale_auxvae` beyond :func:`tiny_auxvae`'s.
TWO_SCALES = dict(
    aux_names=("a", "b"),
    aux_units=("m", "1"),
    aux_ranges={"a": (0, 1), "b": (1, 2)},
    aux_mean=[0.5, 1.5],
    aux_std=[0.3, 0.3],
    channels=(4, 8),
)


def two_scale_auxvae(cls: type[AuxVAE] = AuxVAE, **overrides) -> AuxVAE:
    """:func:`tiny_auxvae` with named variables ``a`` (m) and ``b`` (1) on different scales.

    Args:
        cls: :class:`AuxVAE` or a subclass with its constructor.
        **overrides: Constructor arguments that replace those of :data:`TWO_SCALES`.
    """
    return tiny_auxvae(cls, **(TWO_SCALES | overrides))


def tiny_betavae(**overrides) -> BetaVAE:
    """An untrained beta-VAE with three latents on a 16 x 16 grid.

    Args:
        **overrides: Constructor arguments that replace the defaults below.
    """
    kwargs = dict(latent_dim=3, grid=GRID, channels=(4, 4), hidden=16)
    return BetaVAE(**(kwargs | overrides))


def tiny_hvae(**overrides) -> HierarchicalVAE:
    """An untrained hierarchical VAE with three latents and two hyper-latents, 16 x 16 grid.

    Args:
        **overrides: Constructor arguments that replace the defaults below.
    """
    kwargs = dict(latent_dim=3, hyper_dim=2, hyper_hidden=8, grid=GRID, channels=(4, 4), hidden=16)
    return HierarchicalVAE(**(kwargs | overrides))


def tiny_flow(steps: int = 2, base: AuxVAE | None = None, **overrides) -> DLCFMGenerator:
    """An untrained DL-CFM generator, ``steps`` solver steps.

    Args:
        steps: Steps of the ODE solver.
        base: The Aux-VAE it refines; default: a one-level :func:`tiny_auxvae`, built first.
        **overrides: Constructor arguments that replace the defaults below.
    """
    if base is None:
        base = tiny_auxvae(channels=(4,), hidden=8, tau=0.2)
    kwargs = dict(channels=4, embed=8, residual_scale=0.5, steps=steps)
    return DLCFMGenerator(base, **(kwargs | overrides))


def spread_velocity(g: DLCFMGenerator, std: float = 0.3) -> DLCFMGenerator:
    """Draw every weight of ``g``'s velocity field from ``N(0, std^2)``, in place.

    An untrained U-Net's last layer is near zero, so its flow barely moves the field; with
    spread weights the flow's part of a decode is visible. Uses torch's global generator.

    Returns:
        ``g``.
    """
    with torch.no_grad():
        for p in g.velocity.parameters():
            p.normal_(0.0, std)
    return g


#: A builder of a small instance of every generator class (float32 but the linear double);
#: the Aux-VAE builders take :func:`tiny_auxvae`'s overrides.
BUILDERS = {
    AuxVAE: partial(tiny_auxvae, tau=0.2, field_offset=0.1, field_scale=2.0),
    SemiSupervisedVAE: partial(tiny_auxvae, SemiSupervisedVAE, tau=0.05),
    BetaVAE: tiny_betavae,
    HierarchicalVAE: tiny_hvae,
    DLCFMGenerator: tiny_flow,
    GaussianFieldGenerator: lambda: GaussianFieldGenerator.matern(GRID, 1.0, 0.3, rank=4),
    SimulatorGenerator: lambda: SimulatorGenerator(GRID),
    LinearGenerator: lambda: LinearGenerator(2, 3, torch.float64),
}
#: The classes of :data:`BUILDERS` that :func:`invprior.priors.save` writes.
LIBRARY = tuple(cls for cls in BUILDERS if cls is not LinearGenerator)
