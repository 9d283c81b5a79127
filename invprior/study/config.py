# SPDX-License-Identifier: MIT
"""Configuration of a study: one frozen dataclass per TOML table, checked on construction.

See :mod:`invprior.study` for the TOML layout.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..infer import MapConfig, MCMCConfig

__all__ = [
    "ApproximationErrorConfig",
    "BaselineConfig",
    "MeshConfig",
    "NoiseConfig",
    "PDEConfig",
    "PriorConfig",
    "SensorConfig",
    "StudyConfig",
    "TruthConfig",
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
    """The forward model.

    Attributes:
        kind: ``"source"`` (:class:`invprior.pde.SourceProblem`) or ``"conductivity"``
            (:class:`invprior.pde.ConductivityProblem`).
        kappa: Conductivity of the source problem.
        source: Source term of the conductivity problem.
        dense: Evaluate the source problem through its dense observation map
            :math:`F = B A^{-1} P M T` (``n_obs`` adjoint solves once, then every forward
            and adjoint is a product with an ``n_obs x (ny nx)`` matrix, exact because the
            problem is linear). None means on for the source problem: it made a NUTS
            gradient 1.3x faster on the demo (``bench/nuts_throughput.py``) and its size
            does not grow with the mesh. The conductivity problem is nonlinear and
            refuses it.
        solver: ``"direct"`` (MUMPS Cholesky, the default) or ``"iterative"`` (CG with
            GAMG, tolerances tight enough for a Taylor rate of 2); the iterative solver
            scales better over ranks on big meshes (``docs/scaling.md``).
    """

    kind: str = "source"
    kappa: float = 1.0
    source: float = 1.0
    dense: bool | None = None
    solver: str = "direct"

    def __post_init__(self) -> None:
        if self.kind not in ("source", "conductivity"):
            raise ValueError(f"[pde] kind must be 'source' or 'conductivity', got {self.kind!r}")
        if self.solver not in ("direct", "iterative"):
            raise ValueError(f"[pde] solver must be 'direct' or 'iterative', got {self.solver!r}")
        if self.dense and self.kind != "source":
            raise ValueError(
                "[pde] dense = true needs kind = 'source': the conductivity problem is "
                "nonlinear in the field, so it has no fixed observation matrix"
            )

    @property
    def use_dense(self) -> bool:
        """Whether the forward model uses the dense observation map."""
        return self.kind == "source" if self.dense is None else self.dense


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
    r"""Generator (shipped name or checkpoint path), ``tau`` and the networks' device.

    Attributes:
        name: Shipped name or checkpoint path.
        tau: Scale of the named block's link; None means the generator's own.
        device: Where the generator and the inference state live: ``"auto"`` (CUDA when
            present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. The PDE runs on the CPU; the
            bridge moves the field and the observations across once per evaluation.
        fixed_eps: DL-CFM generators only: decode the conditional mean path
            (:math:`\varepsilon = 0`, no noise site; an approximation, see
            ``DLCFMGenerator.decode``).
        flow_steps: DL-CFM generators only: solver steps of the flow (None keeps the
            checkpoint's); fewer steps make every gradient cheaper and the map coarser.
    """

    name: str = "source-auxvae"
    tau: float | None = None
    device: str = "auto"
    fixed_eps: bool = False
    flow_steps: int | None = None

    def __post_init__(self) -> None:
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(
                f"[prior] device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )
        if self.flow_steps is not None and self.flow_steps < 1:
            raise ValueError(f"[prior] flow_steps must be >= 1, got {self.flow_steps}")


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
class BaselineConfig:
    """The "oracle" Gaussian-field baseline run on the same data (:func:`gp_baseline`).

    Attributes:
        enabled: Run the baseline.
        num_fields: Simulator draws (of the truth's simulator) whose empirical mean and
            covariance define the Gaussian prior.
        seed: Seed of those draws; None means the seed of the generator's training data
            (``data.seed`` in its sidecar) when that data came from the truth's simulator,
            else 0. Either way not the truth's seed, so the truth stays held out.
        variance_fraction: Share of the sample variance the kept principal modes carry.
        num_steps: L-BFGS iterations of the baseline's MAP (the other settings, restarts
            included, are those of ``[map]``); enough to converge on its quadratic
            objective for a linear forward model.
    """

    enabled: bool = True
    num_fields: int = 2000
    seed: int | None = None
    variance_fraction: float = 0.999
    num_steps: int = 500

    def __post_init__(self) -> None:
        if self.num_fields < 2 or self.num_steps < 1:
            raise ValueError(
                f"[baseline] num_fields must be >= 2 and num_steps >= 1, got "
                f"{self.num_fields} and {self.num_steps}"
            )
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"[baseline] seed must be >= 0, got {self.seed}")
        if not 0 < self.variance_fraction <= 1:
            raise ValueError(
                f"[baseline] variance_fraction must lie in (0, 1], got {self.variance_fraction}"
            )


@dataclass(frozen=True)
class ApproximationErrorConfig:
    """The generator's approximation error as extra noise (:mod:`invprior.approximation_error`).

    Attributes:
        enabled: Add the error's moments to the noise model and its conditional draws to
            the posterior fields.
        num_fields: Simulator draws (of the truth's simulator) the moments come from.
        seed: Seed of those draws; must differ from the truth's seed.
        refine_steps: L-BFGS iterations moving each encoder mean towards the least-squares
            projection onto the generator's range before the error is taken (0: encoder
            means, which also count the encoder's amortisation gap as error).
    """

    enabled: bool = False
    num_fields: int = 1000
    seed: int = 1
    refine_steps: int = 0

    def __post_init__(self) -> None:
        if self.num_fields < 2 or self.seed < 0 or self.refine_steps < 0:
            raise ValueError(
                f"[approximation_error] num_fields must be >= 2, seed and refine_steps >= 0, "
                f"got {self.num_fields}, {self.seed} and {self.refine_steps}"
            )


@dataclass(frozen=True)
class StudyConfig:
    """A whole study; see the module docstring for the TOML layout.

    ``[mcmc]`` takes, besides ``kernel`` and ``seed``, ``parallel_chains``: true runs the
    chains on MPI rank groups, each with its own copy of the mesh
    (:func:`invprior.parallel.split_chains`); false (the default) runs them one after
    another with the mesh distributed over all ranks. Both give the same chains up to
    solver tolerance.
    """

    mesh: MeshConfig = field(default_factory=MeshConfig)
    pde: PDEConfig = field(default_factory=PDEConfig)
    sensors: SensorConfig = field(default_factory=SensorConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    truth: TruthConfig = field(default_factory=TruthConfig)
    map: MapConfig = field(default_factory=MapConfig)
    mcmc: MCMCConfig = field(default_factory=MCMCConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    approximation_error: ApproximationErrorConfig = field(default_factory=ApproximationErrorConfig)
    kernel: str = "nuts"
    seed: int = 0
    parallel_chains: bool = False
    folder: Path = Path("results/study")

    def __post_init__(self) -> None:
        if self.kernel not in ("nuts", "hmc"):
            raise ValueError(f"[mcmc] kernel must be 'nuts' or 'hmc', got {self.kernel!r}")
        if not isinstance(self.parallel_chains, bool):
            raise ValueError(
                f"[mcmc] parallel_chains must be true or false, got {self.parallel_chains!r}"
            )
        if self.approximation_error.enabled and self.approximation_error.seed == self.truth.seed:
            raise ValueError(
                "[approximation_error] seed equals [truth] seed: the error moments would be "
                "estimated on the truth itself; pick another seed"
            )

    @classmethod
    def from_dict(cls, data: dict) -> StudyConfig:
        """Build from the parsed TOML tables; unknown tables or keys raise ValueError."""
        tables = {
            "mesh": MeshConfig, "pde": PDEConfig, "sensors": SensorConfig, "noise": NoiseConfig,
            "prior": PriorConfig, "truth": TruthConfig, "map": MapConfig, "mcmc": MCMCConfig,
            "baseline": BaselineConfig, "approximation_error": ApproximationErrorConfig,
        }  # fmt: skip
        unknown = sorted(set(data) - {*tables, "output"})
        if unknown:
            raise ValueError(f"unknown tables {unknown}; known: {sorted({*tables, 'output'})}")
        mcmc = dict(data.get("mcmc", {}))
        extra = {
            "kernel": mcmc.pop("kernel", "nuts"),
            "seed": mcmc.pop("seed", 0),
            "parallel_chains": mcmc.pop("parallel_chains", False),
        }
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
