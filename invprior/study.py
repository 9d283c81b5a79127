# SPDX-License-Identifier: MIT
"""A whole inverse study from one configuration: mesh, PDE, sensors, prior, data, inference.

A study is described by a TOML file (``invprior run CONFIG.toml``); every table maps to a
frozen dataclass checked on construction. Example (``examples/source_identification.toml``)::

    [mesh]
    n = 32                       # squares per side of the generator's domain
    [pde]
    kind = "source"              # "source" (SourceProblem) or "conductivity"
    [sensors]
    per_side = 8                 # 64 sensors on an even interior grid
    [noise]
    relative = 0.01              # noise std = relative * max |F(truth)|
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
    [output]
    folder = "results/source_identification"

Tables ``[map]`` and ``[mcmc]`` take the fields of :class:`invprior.infer.MapConfig` and
:class:`invprior.infer.MCMCConfig`; ``[mcmc]`` also takes ``kernel`` and ``seed``.

MPI: every function is collective on the communicator passed; only rank 0 writes files.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .infer import MapConfig, MCMCConfig

__all__ = [
    "MeshConfig",
    "NoiseConfig",
    "PDEConfig",
    "PriorConfig",
    "StudyConfig",
    "TruthConfig",
    "run_study",
]


@dataclass(frozen=True)
class MeshConfig:
    """Structured triangle mesh of the generator's bounding box, ``n`` squares per side."""

    n: int = 32

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"[mesh] n must be >= 2, got {self.n}")


@dataclass(frozen=True)
class PDEConfig:
    """The forward model: ``kind`` is ``"source"`` or ``"conductivity"``."""

    kind: str = "source"
    kappa: float = 1.0
    source: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("source", "conductivity"):
            raise ValueError(f"[pde] kind must be 'source' or 'conductivity', got {self.kind!r}")


@dataclass(frozen=True)
class SensorConfig:
    """``per_side`` x ``per_side`` sensors evenly inside the domain."""

    per_side: int = 8

    def __post_init__(self) -> None:
        if self.per_side < 1:
            raise ValueError(f"[sensors] per_side must be >= 1, got {self.per_side}")


@dataclass(frozen=True)
class NoiseConfig:
    """Noise std: ``std`` if given, else ``relative * max |F(truth)|``."""

    relative: float = 0.01
    std: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.relative > 0 and (self.std is None or self.std > 0)):
            raise ValueError("[noise] relative and std must be positive")


@dataclass(frozen=True)
class PriorConfig:
    """Generator (shipped name or checkpoint path) and ``tau`` (None: the generator's own)."""

    name: str = "source-auxvae"
    tau: float | None = None


@dataclass(frozen=True)
class TruthConfig:
    """Synthetic truth: draw ``index`` of ``simulate(simulator, index + 1, seed)``."""

    simulator: str = "source"
    seed: int = 777
    index: int = 0

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"[truth] index must be >= 0, got {self.index}")


@dataclass(frozen=True)
class StudyConfig:
    """A whole study; see the module docstring for the TOML layout."""

    mesh: MeshConfig = field(default_factory=MeshConfig)
    pde: PDEConfig = field(default_factory=PDEConfig)
    sensors: SensorConfig = field(default_factory=SensorConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    truth: TruthConfig = field(default_factory=TruthConfig)
    map: MapConfig = field(default_factory=MapConfig)
    mcmc: MCMCConfig = field(default_factory=MCMCConfig)
    kernel: str = "nuts"
    seed: int = 0
    folder: Path = Path("results/study")

    def __post_init__(self) -> None:
        if self.kernel not in ("nuts", "hmc"):
            raise ValueError(f"[mcmc] kernel must be 'nuts' or 'hmc', got {self.kernel!r}")

    @classmethod
    def from_dict(cls, data: dict) -> StudyConfig:
        """Build from the parsed TOML tables; unknown tables or keys raise ValueError."""
        tables = {
            "mesh": MeshConfig, "pde": PDEConfig, "sensors": SensorConfig, "noise": NoiseConfig,
            "prior": PriorConfig, "truth": TruthConfig, "map": MapConfig, "mcmc": MCMCConfig,
        }  # fmt: skip
        unknown = sorted(set(data) - {*tables, "output"})
        if unknown:
            raise ValueError(f"unknown tables {unknown}; known: {sorted({*tables, 'output'})}")
        mcmc = dict(data.get("mcmc", {}))
        extra = {"kernel": mcmc.pop("kernel", "nuts"), "seed": mcmc.pop("seed", 0)}
        output = dict(data.get("output", {}))
        if "folder" in output:
            extra["folder"] = Path(output.pop("folder"))
        if output:
            raise ValueError(f"unknown keys {sorted(output)} in [output]; known: ['folder']")
        built = {}
        for name, kind in tables.items():
            values = mcmc if name == "mcmc" else dict(data.get(name, {}))
            known = {f.name for f in fields(kind)}
            if bad := sorted(set(values) - known):
                raise ValueError(f"unknown keys {bad} in [{name}]; known: {sorted(known)}")
            built[name] = kind(**values)
        return cls(**built, **extra)

    @classmethod
    def from_toml(cls, path: str | Path) -> StudyConfig:
        """Read a TOML file."""
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f))


def _forward_model(config: StudyConfig, grid: object, comm: object) -> object:
    """The PDE forward model on a mesh of the generator's bounding box."""
    from .pde import ConductivityProblem, SourceProblem, grid_sensors, rectangle

    n = config.mesh.n
    mesh = rectangle(comm, grid.bbox, (n, n))
    sensors = grid_sensors(grid.bbox, config.sensors.per_side)
    if config.pde.kind == "source":
        return SourceProblem(mesh, sensors, grid.shape, grid.bbox, kappa=config.pde.kappa)
    return ConductivityProblem(mesh, sensors, grid.shape, grid.bbox, source=config.pde.source)


def synthetic_truth(config: StudyConfig, generator: object) -> dict[str, np.ndarray]:
    """The held-out truth: the field and the named variables the generator knows."""
    from .priors.simulate import simulate

    data = simulate(
        config.truth.simulator, config.truth.index + 1, config.truth.seed, generator.grid
    )
    truth = {"field": np.asarray(data.fields[config.truth.index], dtype=np.float64)}
    for name in generator.aux_names:
        if name in data.factors:
            truth[name] = np.float64(data.factors[name][config.truth.index])
    return truth


def run_study(config: StudyConfig, comm: object, *, write: bool = True) -> dict[str, object]:
    """Run a study: truth, data, MAP, MCMC, DataTree and report.

    Collective on ``comm``; rank 0 writes ``posterior.nc`` and the report into
    ``config.folder`` when ``write`` is set.

    Args:
        config: The study.
        comm: MPI communicator of the PDE.
        write: Write the DataTree and the report.

    Returns:
        The metrics of :func:`invprior.report.study_metrics`, where ``wall_s`` and
        ``pde_solves`` cover the whole study (truth, MAP, sampling, predictive checks), plus
        ``map_energy``, ``noise_std`` and, when written, ``folder``.
    """
    from . import infer, priors
    from .bridge import TorchForward
    from .diagnostics import save_datatree, to_arviz
    from .model import DisentangledPrior, InverseProblem
    from .report import study_metrics, write_report

    tic = time.perf_counter()
    generator = priors.load(config.prior.name)
    model = _forward_model(config, generator.grid, comm)
    forward = TorchForward(model)
    truth = synthetic_truth(config, generator)
    clean = model.forward(truth["field"])
    std = config.noise.std or config.noise.relative * float(np.abs(clean).max())
    noise = np.random.default_rng(config.noise.seed).standard_normal(clean.shape)
    problem = InverseProblem(DisentangledPrior(generator, tau=config.prior.tau), forward, std)
    obs = problem.check_obs(torch.as_tensor(clean + std * noise))
    start = infer.map(problem, obs, seed=config.seed, config=config.map)
    sampler = infer.nuts if config.kernel == "nuts" else infer.hmc
    result = sampler(problem, obs, init=start, seed=config.seed, config=config.mcmc)
    tree = to_arviz(
        result,
        problem,
        obs,
        sensor_coords=model.sensors.points[:, :2],
        include_field=True,
        truth=truth,
        seed=config.seed,
    )
    metrics = study_metrics(tree)
    metrics.update(
        map_energy=start.potential_energy, noise_std=std, pde_solves=model.counter.total
    )
    if write and comm.rank == 0:
        save_datatree(tree, Path(config.folder) / "posterior.nc")
        write_report(tree, config.folder)
        metrics["folder"] = str(config.folder)
    metrics["wall_s"] = time.perf_counter() - tic
    return metrics
