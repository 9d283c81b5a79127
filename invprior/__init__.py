# SPDX-License-Identifier: MIT
"""invprior: Bayesian inverse problems with pretrained disentangled generative priors.

The package has three parts:

- :mod:`invprior.pde`: DOLFINx forward models (numpy/PETSc, never torch);
- :mod:`invprior.priors`: generative priors (torch, never DOLFINx);
- :mod:`invprior` itself: the torch bridge, Pyro models, inference and results.

Heavy submodules are imported lazily, so ``import invprior.pde`` does not pull in
torch and ``import invprior.priors`` does not pull in DOLFINx.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "approximation_error",
    "bridge",
    "calibration",
    "collective",
    "datatree",
    "diagnostics",
    "fileio",
    "infer",
    "likelihood",
    "linearised",
    "model",
    "parallel",
    "pde",
    "potential",
    "priors",
    "report",
    "sites",
    "study",
    "validation",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
