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
from dataclasses import dataclass, field
from pathlib import Path

from ..infer import SAMPLERS, MapConfig, MCMCConfig
from ..priors import pretrained_names
from ..validation import InputError, check_field_types, check_value, config_from_table

__all__ = [
    "MIN_TOTAL_DRAWS",
    "SIMULATORS",
    "ApproximationErrorConfig",
    "BaselineConfig",
    "DataConfig",
    "MeshConfig",
    "NOISE_PRIORS",
    "SIDES",
    "NoiseConfig",
    "OutputConfig",
    "PDEConfig",
    "PriorConfig",
    "SamplerConfig",
    "SensorConfig",
    "StudyConfig",
    "StudySettings",
    "TruthConfig",
]

#: Simulators ``[truth] simulator`` may name (those of :func:`invprior.priors.simulate.simulate`).
SIMULATORS = ("source", "conductivity")

#: Priors ``[noise] prior`` may name for an unknown noise std, each with one ``scale``.
NOISE_PRIORS = ("halfnormal", "halfcauchy")

#: Facet tags of the generator's box, the keys of ``[pde.dirichlet]``, ``[pde.neumann]``
#: and ``[pde.robin]``: side by tag.
SIDES = {1: "left (x = xmin)", 2: "right (x = xmax)", 3: "bottom (y = ymin)", 4: "top (y = ymax)"}

_SIDE_NAMES = ", ".join(f"{k} {v}" for k, v in SIDES.items())

#: Fewest draws over all chains a study accepts: the block correlation of the posterior
#: (:func:`invprior.block_correlation.block_correlation`) needs this many.
MIN_TOTAL_DRAWS = 10


def _at_least(config: object, minimum: int, *names: str) -> None:
    """InputError unless every field ``names`` of ``config`` is ``>= minimum``."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise InputError(f"{name} must be >= {minimum}, got {value}")


def _check_simulator(simulator: str | None) -> None:
    """InputError unless ``simulator`` is None or one of :data:`SIMULATORS`."""
    if simulator is not None and simulator not in SIMULATORS:
        raise InputError(f"simulator must be one of {list(SIMULATORS)}, got {simulator!r}")


@dataclass(frozen=True)
class MeshConfig:
    """The mesh of the PDE: the generator's bounding box, or a file.

    Attributes:
        n: Squares per side of the structured triangle mesh of the generator's box
            (without ``file``).
        file: An XDMF mesh (:func:`invprior.pde.read_mesh`, its mesh grid named ``"mesh"``)
            in place of the box; a relative path is relative to the TOML file. Its domain
            may have any shape the generator's grid covers (an L-shape inside the box);
            the keys of ``[pde.dirichlet]``, ``[pde.neumann]`` and ``[pde.robin]`` are
            then its facet tags. Excludes ``n``.
        facet_tags: Name of the facet-tag grid in ``file`` (read only when a boundary
            table uses the tags).
    """

    n: int = 32
    file: str | None = None
    facet_tags: str = "facet_tags"

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.n < 2:
            raise InputError(f"n must be >= 2 (squares per side of the mesh), got {self.n}")
        if self.file is not None and not self.file.lower().endswith(".xdmf"):
            raise InputError(f"file must be an XDMF mesh (.xdmf), got {self.file!r}")
        if not self.facet_tags.strip():
            raise InputError("facet_tags must name the facet-tag grid of the file, got ''")


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
        form: A user's residual form instead of ``kind``: ``"path/to/physics.py:name"``,
            the function ``name(u, m, v) -> ufl.Form`` of that file
            (:class:`invprior.pde.VariationalProblem`); a relative path is relative to the
            TOML file. ``kind``, ``kappa`` and ``source`` do not apply then, and ``dense``
            None means dense when the form's map is affine.
        dirichlet: With ``form``, ``{tag: g}``: :math:`u = g` on the side ``tag`` of the
            generator's box (:data:`SIDES`: 1 left, 2 right, 3 bottom, 4 top), or with
            ``[mesh] file`` on the facets the file tags ``tag``. Written
            ``[pde.dirichlet]`` then ``1 = 0.0``. When no boundary table is given,
            :math:`u = 0` on the whole boundary; when some are, sides named by none get
            the form's natural condition (zero conormal flux).
        neumann: With ``form``, ``{tag: g}``: the form's conormal flux equals ``g``.
        robin: With ``form``, ``{tag: [alpha, g]}``: the flux equals
            :math:`\alpha (g - u)`, ``alpha > 0``.
    """

    kind: str = "source"
    kappa: float = 1.0
    source: float = 1.0
    dense: bool | None = None
    solver: str = "direct"
    form: str | None = None
    dirichlet: dict | None = None
    neumann: dict | None = None
    robin: dict | None = None

    def __post_init__(self) -> None:
        check_field_types(self)
        self._check_form()
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

    def _check_form(self) -> None:
        """Check ``form`` and the boundary tables, and store the tags as ints."""
        tables = {"dirichlet": self.dirichlet, "neumann": self.neumann, "robin": self.robin}
        if self.form is None:
            if given := [name for name, table in tables.items() if table is not None]:
                raise InputError(
                    f"{', '.join(given)} (boundary data of a user's form) given, but form is "
                    f"not set; the built-in kinds have u = 0 on the whole boundary"
                )
            return
        path, _, name = self.form.rpartition(":")
        if not (path.strip() and name.strip() and path.endswith(".py")):
            raise InputError(f"form must be 'path/to/physics.py:function', got {self.form!r}")
        if self.kind != "source":
            raise InputError(f"form and kind = {self.kind!r} are both set; keep one of them")
        sides: dict[int, str] = {}
        for table, values in tables.items():
            if values is None:
                continue
            parsed = {}
            for key, value in values.items():
                where = f"{table}.{key}"  # [pde.dirichlet] 1 = g is [pde] dirichlet.1 = g
                tag = int(key) if str(key).strip().isdigit() else None
                if tag is None:
                    raise InputError(
                        f"{where}: the keys are facet tags (positive integers) of the "
                        f"generator's box, {_SIDE_NAMES}, or of [mesh] file; got {key!r}"
                    )
                if tag in sides:
                    raise InputError(
                        f"{where}: side {tag} already has a condition in {sides[tag]}; give "
                        "each side one condition"
                    )
                sides[tag] = table
                kind = tuple[float, ...] if table == "robin" else float
                value = check_value(value, kind, where)
                if table == "robin" and (len(value) != 2 or not value[0] > 0):
                    raise InputError(
                        f"{where} must be [alpha, g] with alpha > 0 (flux alpha (g - u)), "
                        f"got {list(value)}"
                    )
                parsed[tag] = value
            object.__setattr__(self, table, parsed)

    @property
    def use_dense(self) -> bool:
        """Whether a built-in kind's forward model uses the dense observation map.

        With ``form``, ``dense`` None is decided when the problem is built (dense when the
        form's map is affine).
        """
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
    """The measurement noise: a known std, or an unknown one with a prior.

    Attributes:
        relative: With a synthetic truth and no ``std``: the std is
            ``relative * max |F(truth)|``.
        std: Known noise std, one number or one per observation (a list as long as the
            data); positive.
        seed: Seed of the synthetic noise draw (with ``[truth]`` only).
        prior: An unknown noise std, sampled with the rest (the site ``noise_std``):
            ``"halfnormal"`` or ``"halfcauchy"`` (:data:`NOISE_PRIORS`) with ``scale``.
            Excludes ``std``. With ``[truth]`` the data are still drawn with the known std.
        scale: Scale of ``prior``, positive, in the data's units.
    """

    relative: float = 0.01
    std: float | tuple[float, ...] | None = None
    seed: int = 0
    prior: str | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        check_field_types(self)
        if not self.relative > 0:
            raise InputError(
                f"relative must be > 0 (noise std / max |F(truth)|), got {self.relative}"
            )
        stds = self.std if isinstance(self.std, tuple) else (self.std,)
        if self.std == () or any(s is not None and not s > 0 for s in stds):
            raise InputError(
                f"std must be > 0 (a number or a list of one per observation) or left out, "
                f"got {list(self.std) if isinstance(self.std, tuple) else self.std}"
            )
        _at_least(self, 0, "seed")
        if self.prior is None:
            if self.scale is not None:
                raise InputError("scale is the scale of [noise] prior, which is not set")
            return
        if self.prior not in NOISE_PRIORS:
            raise InputError(f"prior must be one of {list(NOISE_PRIORS)}, got {self.prior!r}")
        if self.std is not None:
            raise InputError(
                "prior (an unknown noise std) and std (a known one) are both set; keep one"
            )
        if self.scale is None or not self.scale > 0:
            raise InputError(
                f"prior = {self.prior!r} needs scale > 0 (in the data's units), got {self.scale}"
            )


@dataclass(frozen=True)
class PriorConfig:
    r"""Generator (shipped name or checkpoint path), ``tau`` and the networks' device.

    Attributes:
        name: Shipped name or checkpoint path (a relative path is relative to the TOML
            file); checked when the study loads it
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
        _check_simulator(self.simulator)
        _at_least(self, 0, "seed", "index")


@dataclass(frozen=True)
class DataConfig:
    """Measured observations (``[data]``), in place of a synthetic ``[truth]``.

    Attributes:
        file: The observation file, ``.csv`` or ``.npz`` with columns ``x``, ``y``,
            ``value`` and optionally ``std`` (:mod:`invprior.data`); a relative path is
            relative to the TOML file. The sensors are the file's positions; the noise
            std is its ``std`` column, ``[noise] std`` or ``[noise] prior`` (exactly one).
    """

    file: str = ""

    def __post_init__(self) -> None:
        check_field_types(self)
        if not self.file.strip():
            raise InputError(
                "file must name an observation file (.csv or .npz, see invprior.data), got ''"
            )


@dataclass(frozen=True)
class BaselineConfig:
    """The "oracle" Gaussian-field baseline run on the same data (:func:`gp_baseline`).

    Attributes:
        enabled: Run the baseline (true needs a simulator, the truth's or ``simulator``,
            and a known noise std); None (the default) runs it when it can, that is with
            a simulator and without ``[noise] prior``
            (:attr:`StudyConfig.baseline_simulator`).
        num_fields: Simulator draws (of the truth's simulator) whose empirical mean and
            covariance define the Gaussian prior.
        seed: Seed of those draws; None means the seed of the generator's training data
            (``data.seed`` in its sidecar) when that data came from the truth's simulator,
            else 0. Either way not the truth's seed, so the truth stays held out.
        variance_fraction: Share of the sample variance the kept principal modes carry.
        max_iterations: Optimiser iterations of the baseline's MAP (the other settings,
            restarts included, are those of ``[map]``); enough to converge on its quadratic
            objective for a linear forward model.
        simulator: Simulator of the draws (one of :data:`SIMULATORS`); None means the
            truth's. A study on measured data (``[data]``) has no truth, so its baseline
            runs only with a simulator named here.
    """

    enabled: bool | None = None
    num_fields: int = 2000
    seed: int | None = None
    variance_fraction: float = 0.999
    max_iterations: int = 500
    simulator: str | None = None

    def __post_init__(self) -> None:
        check_field_types(self)
        _check_simulator(self.simulator)
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
        simulator: Simulator of the draws; None means the truth's (required with
            ``[data]``, which has no truth).
    """

    enabled: bool = False
    num_fields: int = 1000
    seed: int = 1
    refine_steps: int = 0
    simulator: str | None = None

    def __post_init__(self) -> None:
        check_field_types(self)
        _check_simulator(self.simulator)
        _at_least(self, 2, "num_fields")
        _at_least(self, 0, "seed", "refine_steps")


@dataclass(frozen=True)
class StudySettings:
    """The ``[study]`` table: settings of the study as a whole.

    Attributes:
        seed: Seed of the MAP restarts, the chains, the approximation-error draws added to
            the posterior fields and the baseline's MAP. The truth, the noise and the
            simulator draws of the error moments and of the baseline have their own seeds
            in their tables.
        parallel_chains: True runs the chains on MPI rank groups, each with its own copy
            of the mesh (:func:`invprior.parallel.split_chains`); false (the default) runs
            them one after another with the mesh distributed over all ranks. Both give the
            same chains up to solver tolerance.
    """

    seed: int = 0
    parallel_chains: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)
        _at_least(self, 0, "seed")


#: The samplers of ``[mcmc] kernel``: NUTS and HMC run chain by chain, ChEES-HMC runs all
#: chains as one batch (:mod:`invprior.infer.chees`).
KERNELS = tuple(SAMPLERS)


@dataclass(frozen=True)
class SamplerConfig(MCMCConfig):
    """The ``[mcmc]`` table: the settings of :class:`invprior.infer.MCMCConfig` and the sampler.

    It is an :class:`~invprior.infer.MCMCConfig`, so it is passed as it is as the
    ``config`` of :func:`invprior.infer.nuts`, :func:`~invprior.infer.hmc` and
    :func:`~invprior.infer.chees`.

    Attributes:
        kernel: ``"nuts"``, ``"hmc"`` or ``"chees"`` (:data:`KERNELS`), the sampler that
            :func:`invprior.study.run_study` runs.
    """

    kernel: str = "nuts"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kernel not in KERNELS:
            raise InputError(f"kernel must be one of {list(KERNELS)}, got {self.kernel!r}")


@dataclass(frozen=True)
class OutputConfig:
    """The ``[output]`` table.

    Attributes:
        folder: Output folder, written as one unit (a relative path in a TOML file is
            relative to the file's folder, ``invprior run --out`` to the working
            directory). A string is stored as a :class:`~pathlib.Path`.
    """

    folder: Path = Path("results/study")

    def __post_init__(self) -> None:
        if not isinstance(self.folder, str | os.PathLike):
            raise InputError(f"folder must be a string (a path), got {self.folder!r}")
        if not str(self.folder).strip():
            raise InputError("folder must be a non-empty path, got ''")
        object.__setattr__(self, "folder", Path(self.folder))
        check_field_types(self)


_TABLES = {
    "study": StudySettings, "mesh": MeshConfig, "pde": PDEConfig, "sensors": SensorConfig,
    "noise": NoiseConfig, "prior": PriorConfig, "truth": TruthConfig, "map": MapConfig,
    "mcmc": SamplerConfig, "baseline": BaselineConfig,
    "approximation_error": ApproximationErrorConfig, "data": DataConfig,
    "output": OutputConfig,
}  # fmt: skip
#: Keys that apply to a synthetic truth only, refused next to ``[data]``: table, keys, why.
_TRUTH_ONLY = {
    "truth": (None, "the data are measured, so there is no synthetic truth"),
    "sensors": (None, "the sensors are the positions in the [data] file"),
    "noise": (("relative", "seed"), "they set the synthetic noise draw; give the noise "
              "std as a std column of the file, [noise] std or [noise] prior"),
}  # fmt: skip
#: Keys of ``[pde]`` that describe a built-in kind, refused next to ``[pde] form``.
_KIND_KEYS = ("kind", "kappa", "source")
#: Keys whose values are paths, resolved against the TOML's folder: ``(table, key)``.
_PATHS = (("data", "file"), ("mesh", "file"), ("pde", "form"), ("prior", "name"),
          ("output", "folder"))  # fmt: skip

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


def _check_data_tables(data: dict) -> None:
    """InputError for a synthetic-truth key next to ``[data]``, or a kind's next to a form."""
    if "data" in data:
        for table, (keys, why) in _TRUTH_ONLY.items():
            given = sorted(
                data.get(table, {}) if keys is None else set(keys) & set(data.get(table, {}))
            )
            if table in data and (keys is None or given):
                what = f"[{table}]" if keys is None else f"[{table}] {', '.join(given)}"
                raise InputError(f"{what} and [data] are both given: {why}; remove {what}")
    if "file" in data.get("mesh", {}) and "n" in data["mesh"]:
        raise InputError(
            "[mesh] file and [mesh] n are both given: n sets the mesh of the generator's box, "
            "which the file replaces; remove n"
        )
    pde = data.get("pde", {})
    if "form" in pde and (given := [k for k in _KIND_KEYS if k in pde]):
        raise InputError(
            f"[pde] form and [pde] {', '.join(given)} are both given: the user's form "
            f"replaces the built-in kinds and their settings; remove {', '.join(given)}"
        )


def _under(base: Path, path: str) -> str:
    """``path`` under ``base`` when it is relative, else ``path`` unchanged."""
    return path if Path(path).is_absolute() else str(base / path)


def _shipped_or_unknown(name: str, base: Path) -> bool:
    """Whether ``[prior] name`` is a bare name that is shipped or not a checkpoint in ``base``.

    Such a name is left as it is, so a misspelt shipped name gets the list of shipped ones.
    """
    bare = "/" not in name and os.sep not in name and not name.endswith((".json", ".safetensors"))
    return bare and (name in pretrained_names() or not (base / f"{name}.json").is_file())


def _resolve(data: dict, base: Path) -> dict:
    """``data`` with every relative path of the TOML under ``base`` (the TOML's folder).

    The paths are ``[data] file``, ``[mesh] file``, the file of ``[pde] form``,
    ``[prior] name`` unless it is a shipped name (:func:`invprior.priors.pretrained_names`)
    or a bare name with no checkpoint in ``base``, and ``[output] folder``. Values that are
    not non-empty strings are left for the dataclasses to refuse.
    """
    data = {
        name: dict(table) if isinstance(table, dict) else table for name, table in data.items()
    }
    for table, key in _PATHS:
        value = data.get(table, {}).get(key)
        if not (isinstance(value, str) and value.strip()):
            continue
        if table == "prior" and _shipped_or_unknown(value, base):
            continue
        if table == "pde":
            path, colon, name = value.rpartition(":")
            if colon and path.strip():
                data[table][key] = f"{_under(base, path)}:{name}"
            continue
        data[table][key] = _under(base, value)
    return data


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

    Each table is one field named after it: ``[mesh]`` is ``mesh``, ``[study]`` is
    ``study`` (:class:`StudySettings`: ``seed`` and ``parallel_chains``), ``[mcmc]`` is
    ``mcmc`` (:class:`SamplerConfig`: the :class:`~invprior.infer.MCMCConfig` settings and
    ``kernel``), ``[output]`` is ``output`` (:class:`OutputConfig`: ``folder``), and so on.

    A study needs at least :data:`MIN_TOTAL_DRAWS` draws over all chains
    (``num_samples * num_chains``), besides the 4 per chain :class:`MCMCConfig` asks for.
    Fewer are refused here rather than run with the posterior block correlation (and its
    figure) left out: with so few draws no posterior summary of the report means anything,
    a study's outputs are all there or the study does not start, and a refusal before the
    mesh is built costs nothing, while a run that drops part of its report would be found
    out only after the MAP and the sampling.
    """

    mesh: MeshConfig = field(default_factory=MeshConfig)
    pde: PDEConfig = field(default_factory=PDEConfig)
    sensors: SensorConfig = field(default_factory=SensorConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    truth: TruthConfig | None = field(default_factory=TruthConfig)
    map: MapConfig = field(default_factory=MapConfig)
    mcmc: SamplerConfig = field(default_factory=SamplerConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    approximation_error: ApproximationErrorConfig = field(default_factory=ApproximationErrorConfig)
    data: DataConfig | None = None
    study: StudySettings = field(default_factory=StudySettings)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        check_field_types(self)
        draws = self.mcmc.num_samples * self.mcmc.num_chains
        if draws < MIN_TOTAL_DRAWS:
            raise InputError(
                f"[mcmc] num_samples * num_chains must be >= {MIN_TOTAL_DRAWS} (the posterior "
                f"block correlation needs that many draws), got {self.mcmc.num_samples} * "
                f"{self.mcmc.num_chains} = {draws}; raise num_samples or num_chains"
            )
        if (self.data is None) == (self.truth is None):
            raise InputError(
                "a study has either [truth] (synthetic data) or [data] (measured data), got "
                f"{'both' if self.data is not None else 'neither'}"
            )
        self._check_sides()
        truth_seed = self.truth.seed if self.truth is not None else None
        approx = self.approximation_error
        if approx.enabled and approx.seed == truth_seed:
            raise InputError(
                "[approximation_error] seed equals [truth] seed: the error moments would be "
                "estimated on the truth itself; pick another seed"
            )
        if approx.enabled and self.approximation_simulator is None:
            raise InputError(
                "[approximation_error] needs the simulator of its draws: a study on [data] "
                "has no truth to take it from; set [approximation_error] simulator"
            )
        if approx.enabled and self.noise.prior is not None:
            raise InputError(
                "[approximation_error] is enabled with [noise] prior: the enhanced noise "
                "model needs a known noise std; give [noise] std or disable it"
            )
        baseline = self.baseline
        if baseline.enabled and self._baseline_blocker():
            raise InputError(f"[baseline] enabled = true, but {self._baseline_blocker()}")
        if self.baseline_simulator and baseline.seed is not None and baseline.seed == truth_seed:
            raise InputError(
                "[baseline] seed equals [truth] seed: the baseline's Gaussian would be "
                "estimated from draws that include the truth; pick another seed or leave it out"
            )

    def _check_sides(self) -> None:
        """InputError for a boundary tag that is no side of the box, without ``[mesh] file``."""
        if self.mesh.file is not None:
            return  # the file's tags are checked when it is read (check_study)
        for table in ("dirichlet", "neumann", "robin"):
            for tag in getattr(self.pde, table) or {}:
                if tag not in SIDES:
                    raise InputError(
                        f"[pde] {table}.{tag}: the keys are facet tags of the generator's "
                        f"box, {_SIDE_NAMES}; got {tag}; or give [mesh] file with facet tags"
                    )

    def _baseline_blocker(self) -> str | None:
        """Why the baseline cannot run, or None."""
        if self.baseline.simulator is None and self.truth is None:
            return (
                "a study on [data] has no truth whose simulator the baseline could draw "
                "from; set [baseline] simulator or disable the baseline"
            )
        if self.noise.prior is not None:
            return (
                "the baseline needs a known noise std and [noise] prior makes it unknown; "
                "give [noise] std or set [baseline] enabled = false"
            )
        return None

    @property
    def baseline_simulator(self) -> str | None:
        """Simulator of the Gaussian baseline's draws, or None when the baseline does not run.

        ``[baseline] simulator``, else the truth's. ``[baseline] enabled`` None runs the
        baseline whenever it can (a simulator and a known noise std).
        """
        if self.baseline.enabled is False or self._baseline_blocker():
            return None
        return self.baseline.simulator or self.truth.simulator

    @property
    def approximation_simulator(self) -> str | None:
        """Simulator of the approximation error's draws: its own, else the truth's."""
        if self.approximation_error.simulator is not None:
            return self.approximation_error.simulator
        return self.truth.simulator if self.truth is not None else None

    @classmethod
    def from_dict(cls, data: dict, base: str | Path | None = None) -> StudyConfig:
        """Build from the parsed TOML tables.

        Args:
            data: The tables.
            base: Folder that every relative path of the tables is relative to (the TOML
                file's): ``[data] file``, ``[mesh] file``, the file of ``[pde] form``,
                ``[prior] name`` when it is not a shipped name, ``[output] folder``. None
                leaves them relative to the working directory.

        Raises:
            InputError: An unknown table or key, a table given as a plain value, or a
                value of the wrong type or range; the message names the table and key.
        """
        known_tables = sorted(_TABLES)
        if unknown := sorted(set(data) - set(known_tables)):
            raise InputError(f"unknown tables {unknown}; known: {known_tables}")
        for name, table in data.items():
            if not isinstance(table, dict):
                raise InputError(
                    f"[{name}] must be a table (a [{name}] header followed by keys), got "
                    f"{name} = {table!r}"
                )
        _check_moved(data)
        _check_data_tables(data)
        if base is not None:
            data = _resolve(data, Path(base))
        built = {
            name: config_from_table(kind, data.get(name, {}), name)
            for name, kind in _TABLES.items()
            if name not in ("data", "truth") or name in data
        }
        if "data" not in data:
            built["truth"] = built.get("truth", TruthConfig())
        else:
            built["truth"] = None
        return cls(**built)

    @classmethod
    def from_toml(cls, path: str | Path) -> StudyConfig:
        """Read a TOML file.

        Raises:
            InputError: The file is missing, unreadable or not valid TOML (the message
                gives the line and column), or a value is bad; every message starts with
                the file's path. Every relative path in the file (``[data] file``,
                ``[mesh] file``, ``[pde] form``, a ``[prior] name`` that is not a shipped
                name, ``[output] folder``) is relative to the file's folder.
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
            return cls.from_dict(data, base=Path(path).parent)
        except InputError as err:
            raise InputError(f"{path}: {err}") from err
