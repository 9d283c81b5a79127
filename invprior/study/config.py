# SPDX-License-Identifier: MIT
"""Configuration of a study: one frozen dataclass per TOML table, checked on construction.

See :mod:`invprior.study` for the TOML layout. Every dataclass reads its fields strictly
(:func:`invprior.validation.check_field_types`: a string is not a bool, ``8.5`` is not an
int, ``inf`` and ``nan`` are not numbers) and then checks the physical range of each field,
raising :class:`invprior.validation.InputError`. :meth:`StudyConfig.from_dict` builds every
table with :func:`invprior.validation.config_from_table`, so each message names the TOML
table and key; :meth:`StudyConfig.from_toml` adds the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..infer import MapConfig, MCMCConfig
from ..validation import InputError, check_field_types, config_from_table

__all__ = [
    "MIN_TOTAL_DRAWS",
    "SIMULATORS",
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

#: Simulators ``[truth] simulator`` may name (those of :func:`invprior.priors.simulate.simulate`).
SIMULATORS = ("source", "conductivity")

#: Fewest draws over all chains a study accepts: the block correlation of the posterior
#: (:func:`invprior.block_correlation.block_correlation`) needs this many.
MIN_TOTAL_DRAWS = 10


def _at_least(config: object, minimum: int, *names: str) -> None:
    """InputError unless every field ``names`` of ``config`` is ``>= minimum``."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise InputError(f"{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class MeshConfig:
    """Structured triangle mesh of the generator's bounding box, ``n`` squares per side."""

    n: int = 32

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.n < 2:
            raise InputError(f"n must be >= 2 (squares per side of the mesh), got {self.n}")


@dataclass(frozen=True)
class PDEConfig:
    r"""The forward model.

    Attributes:
        kind: ``"source"`` (:class:`invprior.pde.SourceProblem`) or ``"conductivity"``
            (:class:`invprior.pde.ConductivityProblem`).
        kappa: Conductivity of the source problem; positive (the operator
            :math:`-\nabla\cdot(\kappa\nabla u)` is elliptic only then).
        source: Source term of the conductivity problem (finite, any sign).
        dense: Evaluate the source problem through its dense observation map
            :math:`F = B A^{-1} P M T` (``n_obs`` adjoint solves once, then every forward
            and adjoint is a product with an ``n_obs x (ny nx)`` matrix, exact because the
            problem is linear). None means on for the source problem: it makes each
            gradient cheaper (measured by ``bench/nuts_throughput.py``, see
            ``docs/scaling.md``) and its size does not grow with the mesh. The
            conductivity problem is nonlinear and refuses it.
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
        check_field_types(self)
        if self.kind not in ("source", "conductivity"):
            raise InputError(f"kind must be 'source' or 'conductivity', got {self.kind!r}")
        if self.solver not in ("direct", "iterative"):
            raise InputError(f"solver must be 'direct' or 'iterative', got {self.solver!r}")
        if not self.kappa > 0:
            raise InputError(
                f"kappa must be > 0 (a conductivity; zero or negative values make the "
                f"problem singular or non-physical), got {self.kappa}"
            )
        if self.dense and self.kind != "source":
            raise InputError(
                "dense = true needs kind = 'source': the conductivity problem is "
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
        check_field_types(self)
        _at_least(self, 1, "per_side")


@dataclass(frozen=True)
class NoiseConfig:
    """Noise std: ``std`` if given, else ``relative * max |F(truth)|``; both positive."""

    relative: float = 0.01
    std: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        if not self.relative > 0:
            raise InputError(
                f"relative must be > 0 (noise std / max |F(truth)|), got {self.relative}"
            )
        if self.std is not None and not self.std > 0:
            raise InputError(
                f"std must be > 0 or left out (then relative is used), got {self.std}"
            )
        _at_least(self, 0, "seed")


@dataclass(frozen=True)
class PriorConfig:
    r"""Generator (shipped name or checkpoint path), ``tau`` and the networks' device.

    Attributes:
        name: Shipped name or checkpoint path; checked when the study loads it
            (:func:`invprior.study.setup.load_generator`).
        tau: Scale of the named block's link, positive; None means the generator's own.
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
        check_field_types(self)
        if not self.name.strip():
            raise InputError("name must be a shipped generator name or a checkpoint path, got ''")
        if self.tau is not None and not self.tau > 0:
            raise InputError(f"tau must be > 0 or left out (the generator's own), got {self.tau}")
        device = self.device
        if not (device in ("auto", "cpu", "cuda") or device.removeprefix("cuda:").isdigit()):
            raise InputError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        if self.flow_steps is not None:
            _at_least(self, 1, "flow_steps")


@dataclass(frozen=True)
class TruthConfig:
    """Synthetic truth: draw ``index`` of ``simulate(simulator, index + 1, seed)``."""

    simulator: str = "source"
    seed: int = 777
    index: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.simulator not in SIMULATORS:
            raise InputError(
                f"simulator must be one of {list(SIMULATORS)}, got {self.simulator!r}"
            )
        _at_least(self, 0, "seed", "index")


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
        max_iterations: Optimiser iterations of the baseline's MAP (the other settings,
            restarts included, are those of ``[map]``); enough to converge on its quadratic
            objective for a linear forward model.
    """

    enabled: bool = True
    num_fields: int = 2000
    seed: int | None = None
    variance_fraction: float = 0.999
    max_iterations: int = 500

    def __post_init__(self) -> None:
        check_field_types(self)
        _at_least(self, 2, "num_fields")
        _at_least(self, 1, "max_iterations")
        if self.seed is not None:
            _at_least(self, 0, "seed")
        if not 0 < self.variance_fraction <= 1:
            raise InputError(f"variance_fraction must lie in (0, 1], got {self.variance_fraction}")


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
        check_field_types(self)
        _at_least(self, 2, "num_fields")
        _at_least(self, 0, "seed", "refine_steps")


@dataclass(frozen=True)
class _StudyTable:
    """The ``[study]`` table: the settings of the study as a whole (see :class:`StudyConfig`)."""

    seed: int = 0
    parallel_chains: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)
        _at_least(self, 0, "seed")


@dataclass(frozen=True)
class _Kernel:
    """The key of ``[mcmc]`` besides the fields of :class:`MCMCConfig`: which sampler runs."""

    kernel: str = "nuts"

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.kernel not in ("nuts", "hmc"):
            raise InputError(f"kernel must be 'nuts' or 'hmc', got {self.kernel!r}")


@dataclass(frozen=True)
class _Output:
    """The ``[output]`` table."""

    folder: str = "results/study"

    def __post_init__(self) -> None:
        check_field_types(self)
        if not self.folder.strip():
            raise InputError("folder must be a non-empty path, got ''")


_TABLES = {
    "mesh": MeshConfig, "pde": PDEConfig, "sensors": SensorConfig, "noise": NoiseConfig,
    "prior": PriorConfig, "truth": TruthConfig, "map": MapConfig, "mcmc": MCMCConfig,
    "baseline": BaselineConfig, "approximation_error": ApproximationErrorConfig,
}  # fmt: skip
_STUDY_KEYS = tuple(f.name for f in fields(_StudyTable))

#: Keys that moved, ``(old table, key): (new table, key, why)``; an old file gets an error
#: saying where each went.
_MOVED = {
    ("mcmc", "seed"): (
        "study", "seed", "one seed for the MAP, the sampling, the approximation-error draws "
        "of the posterior fields and the baseline's MAP, not the sampler's alone",
    ),
    ("mcmc", "parallel_chains"): (
        "study", "parallel_chains", "it lays out the whole study over the MPI ranks (one mesh "
        "per chain group), not only the sampling",
    ),
    ("map", "num_steps"): (
        "map", "max_iterations", "optimiser iterations per restart; num_steps is [mcmc]'s "
        "leapfrog steps",
    ),
    ("baseline", "num_steps"): (
        "baseline", "max_iterations", "optimiser iterations of the baseline's MAP, as "
        "[map] max_iterations",
    ),
}  # fmt: skip


def _check_moved(data: dict) -> None:
    """InputError naming the new place of the first moved key ``data`` still uses."""
    for (table, key), (new_table, new_key, why) in _MOVED.items():
        if key in data.get(table, {}):
            value = data[table][key]
            raise InputError(
                f"[{table}] {key} has moved to [{new_table}] {new_key} ({why}); write "
                f"{new_key} = {value!r} under a [{new_table}] header instead"
            )


@dataclass(frozen=True)
class StudyConfig:
    """A whole study; see the module docstring for the TOML layout.

    Each table is one field: ``[mesh]`` is ``mesh`` and so on. ``[study]`` holds this
    class's own settings, ``seed`` and ``parallel_chains``; ``[mcmc]`` is ``mcmc`` plus
    ``kernel``; ``[output]`` is ``folder``.

    A study needs at least :data:`MIN_TOTAL_DRAWS` draws over all chains
    (``num_samples * num_chains``), besides the 4 per chain :class:`MCMCConfig` asks for.
    Fewer are refused here rather than run with the posterior block correlation (and its
    figure) left out: with so few draws no posterior summary of the report means anything,
    a study's outputs are all there or the study does not start, and a refusal before the
    mesh is built costs nothing, while a run that drops part of its report would be found
    out only after the MAP and the sampling.

    ``folder`` may be given as a string; it is stored as a :class:`~pathlib.Path`.

    Attributes:
        kernel: ``"nuts"`` or ``"hmc"`` (``[mcmc] kernel``).
        seed: Seed of the MAP restarts, the chains, the approximation-error draws added to
            the posterior fields and the baseline's MAP (``[study] seed``). The truth, the
            noise and the simulator draws of the error moments and of the baseline have
            their own seeds in their tables.
        parallel_chains: True runs the chains on MPI rank groups, each with its own copy
            of the mesh (:func:`invprior.parallel.split_chains`); false (the default) runs
            them one after another with the mesh distributed over all ranks. Both give the
            same chains up to solver tolerance (``[study] parallel_chains``).
        folder: Output folder (``[output] folder``).
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
        if isinstance(self.folder, str | os.PathLike):
            object.__setattr__(self, "folder", Path(self.folder))
        check_field_types(self)
        study = {name: getattr(self, name) for name in _STUDY_KEYS}
        config_from_table(_StudyTable, study, "study")
        config_from_table(_Kernel, {"kernel": self.kernel}, "mcmc")
        draws = self.mcmc.num_samples * self.mcmc.num_chains
        if draws < MIN_TOTAL_DRAWS:
            raise InputError(
                f"[mcmc] num_samples * num_chains must be >= {MIN_TOTAL_DRAWS} (the posterior "
                f"block correlation needs that many draws), got {self.mcmc.num_samples} * "
                f"{self.mcmc.num_chains} = {draws}; raise num_samples or num_chains"
            )
        if self.approximation_error.enabled and self.approximation_error.seed == self.truth.seed:
            raise InputError(
                "[approximation_error] seed equals [truth] seed: the error moments would be "
                "estimated on the truth itself; pick another seed"
            )
        baseline = self.baseline
        if baseline.enabled and baseline.seed is not None and baseline.seed == self.truth.seed:
            raise InputError(
                "[baseline] seed equals [truth] seed: the baseline's Gaussian would be "
                "estimated from draws that include the truth; pick another seed or leave it out"
            )

    @classmethod
    def from_dict(cls, data: dict) -> StudyConfig:
        """Build from the parsed TOML tables.

        Raises:
            InputError: An unknown table or key, a table given as a plain value, or a
                value of the wrong type or range; the message names the table and key.
        """
        known_tables = sorted({*_TABLES, "study", "output"})
        if unknown := sorted(set(data) - set(known_tables)):
            raise InputError(f"unknown tables {unknown}; known: {known_tables}")
        for name, table in data.items():
            if not isinstance(table, dict):
                raise InputError(
                    f"[{name}] must be a table (a [{name}] header followed by keys), got "
                    f"{name} = {table!r}"
                )
        _check_moved(data)
        mcmc = dict(data.get("mcmc", {}))
        known_mcmc = sorted({f.name for f in fields(MCMCConfig)} | {"kernel"})
        if bad := sorted(set(mcmc) - set(known_mcmc)):
            raise InputError(f"unknown keys {bad} in [mcmc]; known: {known_mcmc}")
        kernel = {"kernel": mcmc.pop("kernel")} if "kernel" in mcmc else {}
        kernel = config_from_table(_Kernel, kernel, "mcmc")
        study = config_from_table(_StudyTable, data.get("study", {}), "study")
        output = config_from_table(_Output, data.get("output", {}), "output")
        built = {
            name: config_from_table(kind, mcmc if name == "mcmc" else data.get(name, {}), name)
            for name, kind in _TABLES.items()
        }
        return cls(
            **built,
            kernel=kernel.kernel,
            seed=study.seed,
            parallel_chains=study.parallel_chains,
            folder=Path(output.folder),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> StudyConfig:
        """Read a TOML file.

        Raises:
            InputError: The file is missing, unreadable or not valid TOML (the message
                gives the line and column), or a value is bad; every message starts with
                the file's path.
        """
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError as err:
            raise InputError(f"{path}: configuration file not found; check the path") from err
        except OSError as err:
            raise InputError(
                f"{path}: cannot read the configuration file: {err.strerror}"
            ) from err
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"{path}: not valid TOML: {err}") from err
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text, so not a TOML file: {err}") from err
        try:
            return cls.from_dict(data)
        except InputError as err:
            raise InputError(f"{path}: {err}") from err
