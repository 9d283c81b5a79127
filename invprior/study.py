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

Tables ``[map]`` and ``[mcmc]`` take the fields of :class:`invprior.infer.MapConfig` and
:class:`invprior.infer.MCMCConfig`; ``[mcmc]`` also takes ``kernel``, ``seed`` and
``parallel_chains`` (chains on MPI rank groups, :mod:`invprior.parallel`);
``[baseline]`` takes the fields of :class:`BaselineConfig` (the Gaussian-field baseline,
on by default), ``[approximation_error]`` those of :class:`ApproximationErrorConfig`.

MPI: every function is collective on the communicator passed; only rank 0 writes the
DataTree, figures and text; the ranks of the mesh that rank 0 holds write the XDMF file.
"""

from __future__ import annotations

import dataclasses
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .infer import MapConfig, MCMCConfig

__all__ = [
    "ApproximationErrorConfig",
    "BaselineConfig",
    "MeshConfig",
    "NoiseConfig",
    "PDEConfig",
    "PriorConfig",
    "StudyConfig",
    "StudySetup",
    "TruthConfig",
    "build_study",
    "gp_baseline",
    "run_study",
    "synthetic_truth",
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


def _forward_model(config: StudyConfig, grid: object, comm: object) -> object:
    """The PDE forward model on a mesh of the generator's bounding box."""
    from .pde import ConductivityProblem, SourceProblem, grid_sensors, rectangle

    n = config.mesh.n
    mesh = rectangle(comm, grid.bbox, (n, n))
    sensors = grid_sensors(grid.bbox, config.sensors.per_side)
    pde = config.pde
    if pde.kind == "source":
        return SourceProblem(
            mesh, sensors, grid.shape, grid.bbox, kappa=pde.kappa, dense=pde.use_dense,
            solver=pde.solver,
        )  # fmt: skip
    return ConductivityProblem(
        mesh, sensors, grid.shape, grid.bbox, source=pde.source, solver=pde.solver
    )


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


def _baseline_seed(config: StudyConfig, generator: object) -> tuple[int, str]:
    """Seed of the baseline's simulator draws, and where it comes from."""
    if config.baseline.seed is not None:
        return config.baseline.seed, "[baseline] seed"
    data = getattr(generator, "metadata", {}).get("data", {})
    if data.get("simulator") == config.truth.simulator and "seed" in data:
        return int(data["seed"]), "the generator's training data"
    return 0, "default: the generator records no training seed for this simulator"


def gp_baseline(
    problem: object,
    obs: torch.Tensor,
    simulator: str,
    config: BaselineConfig | None = None,
    *,
    map_config: MapConfig | None = None,
    seed: int = 0,
    linear: bool = False,
) -> xr.Dataset:
    r"""Posterior field summaries of the "oracle" Gaussian prior on the same data.

    The prior is :meth:`invprior.priors.GaussianFieldPrior.from_samples` of
    ``config.num_fields`` draws of ``simulator`` (seed ``config.seed``, None meaning 0) on
    the generator's grid, :math:`x = \bar x + L z`, :math:`z \sim N(0, I_r)`. It runs
    through the forward model and the noise model of ``problem``: MAP (``map_config`` with
    ``config.num_steps``), then :func:`invprior.infer.laplace`,
    :math:`z \mid y \approx N(\hat z, H^{-1})`. The field is linear in :math:`z`, so the
    summaries are the Gaussian's own (no sampling): mean :math:`\bar x + L \hat z`, std
    :math:`\sqrt{\mathrm{diag}(L H^{-1} L^T)}`, 5%/95% quantiles mean :math:`\mp 1.645`
    std. For a linear forward model (the source problem) this is the exact posterior, up
    to the optimiser's tolerance; for a nonlinear one (the conductivity problem) it is the
    Laplace approximation at the MAP.

    Collective on the forward model's communicator (one forward and one adjoint solve per
    MAP step, then ``n_obs`` adjoint solves for the Jacobian).

    Args:
        problem: An :class:`invprior.model.InverseProblem`; its forward model, likelihood
            and generator grid are reused.
        obs: The data, shape ``(n_obs,)``.
        simulator: Simulator of the draws (``"source"`` or ``"conductivity"``).
        config: The baseline's settings (default :class:`BaselineConfig`).
        map_config: MAP settings (default :class:`invprior.infer.MapConfig`).
        seed: Seed of the MAP restarts.
        linear: Whether the forward model is linear (only labels the method as exact).

    Returns:
        ``mean``, ``std``, ``q05`` and ``q95`` on the grid nodes (dimensions ``(y, x)``, as
        the posterior's ``field``), with attributes describing the baseline: method,
        prior, rank, simulator, number of draws, seed. Stored as the group
        :data:`invprior.report.BASELINE` of a posterior DataTree, the report adds the
        ``gp_*`` metrics and panels.

    Example:
        >>> tree["baseline"] = gp_baseline(problem, obs, "source", linear=True)  # doctest: +SKIP
        >>> study_metrics(tree)["gp_rel_l2_error"]  # doctest: +SKIP
        0.31
    """
    from statistics import NormalDist

    from . import infer
    from .model import DisentangledPrior, InverseProblem
    from .priors import GaussianFieldPrior
    from .priors.simulate import simulate
    from .sites import FIELD

    config = config if config is not None else BaselineConfig()
    map_config = dataclasses.replace(map_config or MapConfig(), num_steps=config.num_steps)
    grid = problem.prior.generator.grid
    draws = simulate(simulator, config.num_fields, config.seed or 0, grid)
    fields = torch.as_tensor(draws.fields, dtype=torch.float64)
    gp = GaussianFieldPrior.from_samples(fields, config.variance_fraction, grid)
    gp_problem = InverseProblem(DisentangledPrior(gp), problem.forward, problem.likelihood)
    start = infer.map(gp_problem, obs, seed=seed, config=map_config)
    gauss = infer.laplace(gp_problem, obs, start)
    spread = gp.basis @ torch.linalg.cholesky(gauss.cov)  # (ny * nx, r)
    std = spread.square().sum(-1).sqrt().reshape(grid.shape).numpy()
    mean = start.sites[FIELD].numpy()
    z95 = NormalDist().inv_cdf(0.95)
    summary = {"mean": mean, "std": std, "q05": mean - z95 * std, "q95": mean + z95 * std}
    (x0, y0), (x1, y1) = grid.bbox
    coords = {"y": np.linspace(y0, y1, grid.shape[0]), "x": np.linspace(x0, x1, grid.shape[1])}
    attrs = {
        "method": "MAP + Laplace (exact: linear forward model, Gaussian prior)"
        if linear
        else "MAP + Laplace (Gauss-Newton approximation: nonlinear forward model)",
        "prior": "oracle Gaussian: empirical mean and covariance of simulator draws",
        "rank": int(gp.rec_dim),
        "variance_fraction": config.variance_fraction,
        "simulator": simulator,
        "num_fields": config.num_fields,
        "seed": config.seed or 0,
        "map_energy": start.potential_energy,
    }
    data = {name: (("y", "x"), value) for name, value in summary.items()}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _approximation_error(config: StudyConfig, generator: object, forward: object) -> object | None:
    """The generator's approximation-error moments, or None when the study does not use them."""
    if not config.approximation_error.enabled:
        return None
    from .approximation_error import ApproximationError
    from .priors.simulate import simulate

    cfg = config.approximation_error
    draws = simulate(config.truth.simulator, cfg.num_fields, cfg.seed, generator.grid)
    return ApproximationError.estimate(
        generator, draws.fields, forward, refine_steps=cfg.refine_steps
    )


@dataclass(frozen=True)
class StudySetup:
    """Everything a study builds before inference (:func:`build_study`).

    Attributes:
        model: The PDE forward model (:class:`invprior.pde.SourceProblem` or
            :class:`invprior.pde.ConductivityProblem`) on the study's mesh.
        forward: ``model`` as a torch callable (:class:`invprior.bridge.TorchForward`).
        truth: The held-out truth (:func:`synthetic_truth`).
        noise_std: Measurement noise std.
        measured: The inverse problem with measurement noise only.
        approximation_error: The generator's error moments, or None when not enabled.
        problem: The problem inference runs on: ``measured``, or with the enhanced noise
            model when the approximation error is enabled.
        data: The noisy data, shape ``(n_obs,)``, float64 on the CPU.
        obs: ``data`` on the generator's dtype and device.
    """

    model: object
    forward: object
    truth: dict[str, np.ndarray]
    noise_std: float
    measured: object
    approximation_error: object | None
    problem: object
    data: torch.Tensor
    obs: torch.Tensor


def _generator(config: StudyConfig) -> torch.nn.Module:
    """The ``[prior]`` generator on its device, with the DL-CFM settings applied.

    Raises:
        ValueError: DL-CFM settings for a generator without a flow, or an approximation
            error model on top of a DL-CFM noise site (the flow's noise already models
            what the decoder's mean misses).
    """
    from . import priors

    settings = config.prior
    generator = priors.load(settings.name, map_location=priors.resolve_device(settings.device))
    flow = getattr(generator, "eps_shape", None) is not None
    if not flow and (settings.fixed_eps or settings.flow_steps is not None):
        raise ValueError(
            f"[prior] fixed_eps and flow_steps apply to DL-CFM generators only, and "
            f"{settings.name!r} is a {type(generator).__name__}"
        )
    if flow and not settings.fixed_eps and config.approximation_error.enabled:
        raise ValueError(
            "[approximation_error] is enabled with the noise site of a DL-CFM prior, which "
            "already models the residual the approximation error stands for; set [prior] "
            "fixed_eps = true or disable [approximation_error]"
        )
    if settings.flow_steps is not None:
        generator.steps = settings.flow_steps
    return generator


def build_study(config: StudyConfig, comm: object) -> StudySetup:
    """Mesh, forward model, truth, noisy data and the inverse problem of a study.

    Collective on ``comm`` (the mesh's communicator). The noise std is ``[noise] std`` or
    ``relative * max |F(truth)|``; the noise draw is seeded by ``[noise] seed``.

    Args:
        config: The study.
        comm: MPI communicator of the mesh.

    Returns:
        The :class:`StudySetup`.
    """
    from .bridge import TorchForward
    from .model import DisentangledPrior, InverseProblem

    generator = _generator(config)
    model = _forward_model(config, generator.grid, comm)
    forward = TorchForward(model)
    truth = synthetic_truth(config, generator)
    clean = model.forward(truth["field"])
    std = config.noise.std or config.noise.relative * float(np.abs(clean).max())
    noise = np.random.default_rng(config.noise.seed).standard_normal(clean.shape)
    prior = DisentangledPrior(generator, tau=config.prior.tau, fixed_eps=config.prior.fixed_eps)
    measured = InverseProblem(prior, forward, std)
    approx = _approximation_error(config, generator, forward)
    problem = InverseProblem(prior, forward, approx.likelihood(std)) if approx else measured
    data = torch.as_tensor(clean + std * noise)
    return StudySetup(
        model=model,
        forward=forward,
        truth=truth,
        noise_std=std,
        measured=measured,
        approximation_error=approx,
        problem=problem,
        data=data,
        obs=problem.check_obs(data),
    )


def run_study(config: StudyConfig, comm: object, *, write: bool = True) -> dict[str, object]:
    """Run a study: truth, data, MAP, MCMC, the Gaussian baseline, DataTree and report.

    Collective on ``comm``. With ``config.parallel_chains`` off, the mesh is distributed
    over all ranks of ``comm`` and the chains run one after another. With it on, ``comm``
    is split into rank groups (:func:`invprior.parallel.split_chains`), each with its own
    mesh; every group computes the MAP, rank 0's MAP is broadcast as the chains' start,
    each group runs its chains, and the chains are gathered on every rank; the rest
    (predictive checks, baseline) is repeated on every group, so every rank returns the
    same metrics. When ``write`` is set, rank 0 writes ``posterior.nc`` (with the baseline
    as the group ``baseline``), the report and the linearised-prior figures
    (:mod:`invprior.linearised`, at the MAP) into ``config.folder``, and the ranks of the
    mesh that holds rank 0 write ``fields.xdmf`` (+ ``fields.h5``): the posterior mean,
    std, 5%/95% quantiles, the truth and the baseline's summaries as P1 functions for
    ParaView.

    Args:
        config: The study.
        comm: MPI communicator of all ranks (of the PDE, unless the chains run on groups).
        write: Write the DataTree, the report and the XDMF fields.

    Returns:
        The metrics of :func:`invprior.report.study_metrics` (with ``gp_rel_l2_error`` and
        ``gp_coverage_90`` when the baseline runs), plus ``wall_s`` and ``pde_solves`` of
        the whole study (truth, MAP, sampling, predictive checks, baseline; solves summed
        over the rank groups; ``sampling_*`` are the sampling's alone), ``map_energy``,
        ``noise_std``, ``approximation_error`` (whether it was used),
        ``block_correlation_max`` (largest posterior correlation between a named and a
        residual coordinate) and, when written, ``folder``.

    Raises:
        ValueError: With ``config.parallel_chains``, if the ranks cannot be split into
            groups (see :func:`invprior.parallel.chain_group`).
    """
    from . import infer, linearised
    from .diagnostics import save_datatree, to_arviz
    from .parallel import gather_chains, split_chains
    from .pde import write_grid_functions
    from .report import BASELINE, field_maps, study_metrics, write_report
    from .sites import FIELD

    tic = time.perf_counter()
    mesh_comm, chains = comm, None  # chains None: all of them, on this one mesh
    if config.parallel_chains:
        mesh_comm, chains = split_chains(comm, config.mcmc.num_chains)
    setup = build_study(config, mesh_comm)
    model, forward, truth, std = setup.model, setup.forward, setup.truth, setup.noise_std
    problem, obs, approx = setup.problem, setup.obs, setup.approximation_error
    start = infer.map(problem, obs, seed=config.seed, config=config.map)
    if chains is not None:
        start = comm.bcast(start, root=0)  # one start for all groups, as in one run
    sampler = infer.nuts if config.kernel == "nuts" else infer.hmc
    result = sampler(problem, obs, init=start, seed=config.seed, config=config.mcmc, chains=chains)
    if chains is not None:
        result = gather_chains(result, comm, mesh_comm)
    tree = to_arviz(
        result,
        problem,
        obs,
        sensor_coords=model.sensors.points[:, :2],
        include_field=True,
        truth=truth,
        seed=config.seed,
    )
    if approx:
        fields = approx.posterior_fields(result.samples[FIELD], obs, forward, std, config.seed)
        tree["posterior"][FIELD] = tree["posterior"][FIELD].copy(data=fields.cpu().numpy())
        tree["posterior"].attrs["field"] = (
            "generator field plus a conditional draw of its approximation error"
        )
    if config.baseline.enabled:
        seed, seed_source = _baseline_seed(config, problem.prior.generator)
        baseline = gp_baseline(
            setup.measured,
            setup.data,
            config.truth.simulator,
            dataclasses.replace(config.baseline, seed=seed),
            map_config=config.map,
            seed=config.seed,
            linear=config.pde.kind == "source",
        )
        baseline.attrs["seed_source"] = seed_source
        tree[BASELINE] = baseline
    metrics = study_metrics(tree)
    correlation = linearised.block_correlation(tree) if problem.prior.aux_names else None
    if correlation is not None:
        metrics["block_correlation_max"] = correlation.max_abs
    metrics.update(
        map_energy=start.potential_energy,
        noise_std=std,
        approximation_error=approx is not None,
        # each rank counts its mesh's solves: sum over ranks / ranks per mesh = sum over meshes
        pde_solves=comm.allreduce(model.counter.total) // mesh_comm.size,
    )
    if write:
        folder = Path(config.folder)
        if chains is None or 0 in chains:  # the mesh that holds rank 0
            write_grid_functions(model.Q, model.transfer, field_maps(tree), folder / "fields.xdmf")
        if comm.rank == 0:
            save_datatree(tree, folder / "posterior.nc")
            write_report(tree, folder)
            if correlation is not None:  # the linearised prior at the MAP, block structure
                induced = linearised.induced_covariance(problem.prior, start.sites)
                linearised.write_figures(folder, induced, correlation)
        metrics["folder"] = str(folder)
    metrics["wall_s"] = time.perf_counter() - tic
    return metrics
