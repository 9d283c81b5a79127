# SPDX-License-Identifier: MIT
"""A whole inverse study from one configuration: mesh, PDE, sensors, prior, data, inference.

A study is described by a TOML file (``invprior run CONFIG.toml``); every table maps to a
frozen dataclass checked on construction. Example (``examples/source_identification.toml``)::

    [study]
    seed = 0                     # MAP restarts, chains, error draws, baseline MAP
    parallel_chains = true       # chains on MPI rank groups, each with its own mesh
    [mesh]
    n = 32                       # squares per side of the generator's domain
    [pde]
    kind = "source"              # "source" (SourceProblem) or "conductivity"
    [sensors]
    per_side = 8                 # 64 sensors on an even interior grid
    [noise]
    relative = 0.01              # noise std = relative * max |F(truth)|
    [approximation_error]
    enabled = true               # the generator's error as extra Gaussian noise
    [prior]
    name = "source-auxvae"       # shipped name or checkpoint path
    [truth]
    simulator = "source"         # held-out truth from this simulator ...
    seed = 777                   # ... with a seed other than the training seed
    [map]
    num_restarts = 4
    [mcmc]
    kernel = "nuts"
    num_samples = 500
    [baseline]
    num_fields = 2000            # oracle Gaussian from 2000 simulator draws
    [output]
    folder = "results/source_identification"

A study on measured data replaces ``[truth]`` (and ``[sensors]``) with ``[data]``: the
sensors and values come from a file (CSV or ``.npz`` with columns ``x``, ``y``, ``value``
and optionally ``std``, :mod:`invprior.data`), and the noise std from its ``std`` column,
``[noise] std`` (a number, or a list with one value per observation) or ``[noise] prior``
(an unknown noise std sampled with the rest)::

    [data]
    file = "data.csv"            # relative to this TOML file
    [noise]
    prior = "halfnormal"         # the noise std is a site, HalfNormal(scale)
    scale = 0.01
    [pde]
    form = "physics.py:residual" # residual(u, m, v) -> ufl.Form, relative to this file
    [pde.dirichlet]
    1 = 0.0                      # u = 0 on the left side of the generator's box
    [pde.robin]
    2 = [5.0, 0.0]               # flux alpha (g - u) on the right side

The sides of the generator's box are tagged 1 left, 2 right, 3 bottom, 4 top
(:data:`invprior.study.config.SIDES`); sides without a condition get the form's natural
(zero-flux) one, and with no boundary table at all :math:`u = 0` on the whole boundary.
Such a study reports posterior summaries and predictive checks against the data, no
error metrics, and runs the Gaussian baseline only with ``[baseline] simulator``.

Each table is the field of :class:`StudyConfig` named after it. ``[study]``
(:class:`StudySettings`) holds the settings of the study as a whole: ``seed`` and
``parallel_chains`` (chains on MPI rank groups, :mod:`invprior.parallel`). ``[map]`` takes
the fields of :class:`invprior.infer.MapConfig`; ``[mcmc]`` (:class:`SamplerConfig`) those
of :class:`invprior.infer.MCMCConfig` and ``kernel`` (``"nuts"``, ``"hmc"`` or
``"chees"``); ``[output]`` (:class:`OutputConfig`) takes ``folder``; ``[baseline]`` takes
the fields of :class:`BaselineConfig` (the Gaussian-field baseline, on by default),
``[approximation_error]`` those of :class:`ApproximationErrorConfig`.

MPI: every function is collective on the communicator passed; only rank 0 writes the
DataTree, figures and text; the ranks of the mesh that rank 0 holds write the XDMF file.
"""

from .baseline import baseline_seed, gp_baseline, oracle_gaussian, oracle_gaussian_from_fields
from .config import (
    ApproximationErrorConfig,
    BaselineConfig,
    DataConfig,
    MeshConfig,
    NoiseConfig,
    OutputConfig,
    PDEConfig,
    PriorConfig,
    SamplerConfig,
    SensorConfig,
    StudyConfig,
    StudySettings,
    TruthConfig,
)
from .run import run_study
from .setup import (
    StudySetup,
    build_study,
    check_study,
    load_form,
    load_generator,
    synthetic_data,
    synthetic_truth,
)

__all__ = [
    "ApproximationErrorConfig",
    "BaselineConfig",
    "DataConfig",
    "MeshConfig",
    "NoiseConfig",
    "OutputConfig",
    "PDEConfig",
    "PriorConfig",
    "SamplerConfig",
    "SensorConfig",
    "StudyConfig",
    "StudySettings",
    "StudySetup",
    "TruthConfig",
    "baseline_seed",
    "build_study",
    "check_study",
    "gp_baseline",
    "load_form",
    "load_generator",
    "oracle_gaussian",
    "oracle_gaussian_from_fields",
    "run_study",
    "synthetic_data",
    "synthetic_truth",
]
