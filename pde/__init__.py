# SPDX-License-Identifier: MIT
"""Finite-element forward models (DOLFINx, PETSc), installed as :mod:`invprior.pde`.

The DOLFINx-based names load on first access, so ``invprior.pde.errors`` and
``invprior.pde.base`` stay importable without the ``fem`` extra.
"""

import importlib
import importlib.util
import signal
import sys
import threading

from .base import ForwardModel, SolveCounter
from .errors import PDESolveError, SensorOutsideMeshError

# The PyPI wheel's bootstrap must run before mpi4py's, petsc4py's and DOLFINx's bindings.
if importlib.util.find_spec("dolfinx_solver") is not None:
    importlib.import_module("dolfinx_solver")


def _leave_signals_to_python() -> None:
    """Keep PETSc's signal handler off, so SIGTERM and SIGINT reach Python's handlers.

    PETSc's handler (installed by ``PetscInitialize``) answers SIGTERM with "Caught signal
    number 15 ... -start_in_debugger" and ``MPI_Abort``: no ``finally`` block runs, nothing
    is saved or cleaned up. Before PETSc starts, the option ``-no_signal_handler`` keeps it
    from installing one; if PETSc was started elsewhere first, its handler is popped and
    Python's handlers for SIGINT and SIGTERM are installed again (popping leaves the
    signals' default actions).
    """
    import petsc4py

    module = sys.modules.get("petsc4py.PETSc")
    if module is None or not module.Sys.isInitialized():
        petsc4py.init(["-no_signal_handler"])
        return
    module.Sys.popSignalHandler()
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(number)  # None: not installed from Python
            if handler is not None:
                signal.signal(number, handler)


if importlib.util.find_spec("petsc4py") is not None:
    _leave_signals_to_python()

_LAZY = {
    "ConductivityProblem": "conductivity",
    "SourceProblem": "source",
    "GridTransfer": "transfer",
    "LoadedMesh": "mesh",
    "PointSensors": "observation",
    "grid_sensors": "observation",
    "unit_square": "mesh",
    "rectangle": "mesh",
    "read_mesh": "mesh",
    "tag_boundaries": "mesh",
    "mesh_bbox": "mesh",
    "taylor_test": "verify",
    "l2_error": "verify",
    "convergence_rates": "verify",
    "write_grid_functions": "io",
    "VariationalProblem": "variational",
    "AffineVariationalProblem": "variational",
}

__all__ = [
    "AffineVariationalProblem",
    "ConductivityProblem",
    "ForwardModel",
    "GridTransfer",
    "LoadedMesh",
    "PDESolveError",
    "PointSensors",
    "SensorOutsideMeshError",
    "SolveCounter",
    "SourceProblem",
    "convergence_rates",
    "grid_sensors",
    "l2_error",
    "mesh_bbox",
    "read_mesh",
    "rectangle",
    "tag_boundaries",
    "taylor_test",
    "unit_square",
    "VariationalProblem",
    "write_grid_functions",
]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if importlib.util.find_spec("dolfinx") is None:
        raise ImportError(
            f"invprior.pde.{name} needs DOLFINx; install the fem extra "
            "(pip install -e '.[fem]') or fenics-dolfinx from conda-forge."
        )
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
