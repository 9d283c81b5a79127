# SPDX-License-Identifier: MIT
"""Tiny untrained generators of every class, built one way for all tests.

:data:`BUILDERS` maps each generator class of :mod:`invprior.priors`, and the linear test
double of ``linear_gaussian.py``, to a builder of a small instance; the contract test
(``tests/priors/test_generator_interface.py``) runs over all of them. :func:`tiny_auxvae`
is the Aux-VAE of the study tests; its keyword arguments replace constructor arguments.
A test that needs another shape (a 4 x 4 grid, four named variables) builds its own.
"""

from functools import partial

import torch
from linear_gaussian import LinearGenerator

from invprior.priors import (
    AuxVAE,
    BetaVAE,
    DLCFMGenerator,
    GaussianFieldPrior,
    GridSpec,
    HierarchicalVAE,
    SemiSupervisedVAE,
    SimulatorPrior,
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


def tiny_flow(steps: int = 2) -> DLCFMGenerator:
    """An untrained DL-CFM generator over a one-level Aux-VAE, ``steps`` Euler steps."""
    base = tiny_auxvae(channels=(4,), hidden=8, tau=0.2)
    return DLCFMGenerator(base, channels=4, embed=8, residual_scale=0.5, steps=steps)


#: A builder of a small instance of every generator class (float32 but the linear double);
#: the Aux-VAE builders take :func:`tiny_auxvae`'s overrides.
BUILDERS = {
    AuxVAE: partial(tiny_auxvae, tau=0.2, field_offset=0.1, field_scale=2.0),
    SemiSupervisedVAE: partial(tiny_auxvae, SemiSupervisedVAE, tau=0.05),
    BetaVAE: lambda: BetaVAE(3, grid=GRID, channels=(4, 4), hidden=16),
    HierarchicalVAE: lambda: HierarchicalVAE(3, 2, 8, grid=GRID, channels=(4, 4), hidden=16),
    DLCFMGenerator: tiny_flow,
    GaussianFieldPrior: lambda: GaussianFieldPrior.matern(GRID, 1.0, 0.3, rank=4),
    SimulatorPrior: lambda: SimulatorPrior(GRID),
    LinearGenerator: lambda: LinearGenerator(2, 3, torch.float64),
}
#: The classes of :data:`BUILDERS` that :func:`invprior.priors.save` writes.
LIBRARY = tuple(cls for cls in BUILDERS if cls is not LinearGenerator)
