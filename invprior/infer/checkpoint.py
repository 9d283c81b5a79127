# SPDX-License-Identifier: MIT
"""Checkpoints of HMC/NUTS chains, so an interrupted sampling run continues bit for bit.

A checkpoint is a folder (:class:`SamplingCheckpoint`) holding ``run.safetensors`` (the
chains' starts and the warm-up's initial inverse mass matrix) and one
``chain-<c>.safetensors`` per chain begun: the current latent with its potential energy
and gradient, the kernel's adaptation state (step size, dual averaging, Welford
estimates, inverse mass matrix and its square roots, the position in the adaptation
window schedule), the counters, the draws and per-draw statistics so far, and the state of
torch's random number generators. Tensors go into the safetensors payload, every scalar
into one JSON string in its header (``metadata["state"]``); each file is written
atomically (:func:`invprior.fileio.atomic_path`) with SIGINT and SIGTERM held back until
it is in place, so a file is always a consistent snapshot. Nothing is pickled.

The kernels draw only from torch's generators (Pyro samples through
``torch.distributions``); Python's :mod:`random` and NumPy's global generator play no
part in a chain, so they are not stored.

Pyro keeps a kernel's state in private attributes. Every access to them is in this
module, in :func:`kernel_state` and :func:`restore_kernel`, against the names listed in
:data:`PYRO_ATTRIBUTES` (a test checks that they still exist); the list also names the
private NUTS methods and tree fields that :mod:`invprior.infer.mcmc` extends for its
fixed-mass U-turn checks. Pyro's own ``setup`` is
not called on resume: it would spend potential evaluations and random numbers to find a
step size the checkpoint already holds.

A checkpoint belongs to one run: every file carries the identity of the sampler settings,
the data and the caller's settings (:func:`settings_of`), and a checkpoint of another
configuration is refused with an :class:`~invprior.validation.InputError` that names what
differs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pyro.infer.mcmc import NUTS
from pyro.infer.mcmc.adaptation import BlockMassMatrix, WarmupAdapter
from pyro.infer.mcmc.hmc import HMC
from pyro.infer.mcmc.nuts import _TreeInfo
from pyro.ops.dual_averaging import DualAveraging
from pyro.ops.welford import WelfordCovariance
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..fileio import atomic_path, discard
from ..validation import InputError, check_field_types

__all__ = [
    "PYRO_ATTRIBUTES",
    "ChainState",
    "ChainStore",
    "SamplingCheckpoint",
    "SamplingInterrupted",
    "check_resumable",
    "config_hash",
    "kernel_state",
    "prepare_checkpoint",
    "restore_kernel",
    "restore_rng",
    "rng_state",
    "sampling_folder",
    "settings_of",
    "signals_held",
]

#: Format of the files; a checkpoint of another version is refused.
VERSION = 1

#: Pyro's private attributes :func:`kernel_state` reads and :func:`restore_kernel` sets.
PYRO_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    HMC: (
        "_t", "_accept_cnt", "_mean_accept_prob", "_divergences", "_warmup_steps",
        "_initial_params", "_z_last", "_potential_energy_last", "_z_grads_last", "_adapter",
        "_find_reasonable_step_size", "_cache",
    ),
    WarmupAdapter: (
        "step_size", "adapt_step_size", "adapt_mass_matrix", "_adaptation_disabled",
        "_warmup_steps", "_adaptation_schedule", "_build_adaptation_schedule",
        "_current_window", "_step_size_adapt_scheme", "_find_reasonable_step_size",
        "mass_matrix_adapter",
    ),
    DualAveraging: ("prox_center", "_x_avg", "_g_avg", "_t"),
    BlockMassMatrix: (
        "_inverse_mass_matrix", "_mass_matrix_sqrt", "_mass_matrix_sqrt_inverse",
        "_mass_matrix_size", "_adapt_scheme",
    ),
    WelfordCovariance: ("diagonal", "_mean", "_m2", "n_samples"),
    # the extra U-turn checks of NUTS with a fixed mass matrix (invprior.infer.mcmc)
    NUTS: ("_build_tree", "_is_turning", "_sample_r"),
    _TreeInfo: ("r_left_unscaled", "r_right_unscaled", "r_sum"),
}  # fmt: skip

_RUN = "run.safetensors"
_LAYOUT = "layout"  # JSON key: {tensor: permutation of its dimensions} of stored tensors
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class SamplingCheckpoint:
    """Where and how often :func:`~invprior.infer.nuts` and :func:`~invprior.infer.hmc` save.

    A chain is saved every ``every`` iterations or ``every_s`` seconds, whichever comes
    first, when it ends, and when SIGINT or SIGTERM (turned into ``KeyboardInterrupt``)
    stops it; the sampler then raises :class:`SamplingInterrupted`.

    Attributes:
        folder: The checkpoint folder (created when the first file is written).
        every: Iterations (warm-up included) between saves of a chain.
        every_s: Seconds between saves of a chain.
        resume: Continue the chains saved in ``folder``; otherwise start afresh and
            overwrite them.
        settings: The caller's settings that the sampler does not see, as names and
            values (:func:`settings_of` a study's configuration, for example); a
            checkpoint made with other settings is refused, naming the ones that differ.
        write: Whether this process writes the files; None means MPI rank 0 only (all
            ranks hold the same chains). With chains on MPI rank groups, each group's
            root writes its own chains.

    Example:
        >>> SamplingCheckpoint("results/.study.sampling", every=20).every_s
        120.0
    """

    folder: Path
    every: int = 50
    every_s: float = 120.0
    resume: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)
    write: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.folder, str | os.PathLike):
            object.__setattr__(self, "folder", Path(self.folder))
        object.__setattr__(self, "settings", {str(k): str(v) for k, v in self.settings.items()})
        check_field_types(self)
        if self.every < 1:
            raise InputError(f"checkpoint every must be >= 1 iteration, got {self.every}")
        if not self.every_s > 0:
            raise InputError(f"checkpoint every_s must be > 0 seconds, got {self.every_s}")

    @property
    def fingerprint(self) -> str:
        """Digest of ``settings``."""
        return config_hash(sorted(self.settings.items()))


class SamplingInterrupted(KeyboardInterrupt):
    """Sampling stopped by SIGINT or SIGTERM after its progress was saved.

    ``str(err)`` reads ``"N of M iterations saved in FOLDER"``.

    Attributes:
        done: Iterations saved, over the chains this process ran.
        total: Iterations of those chains (warm-up and draws).
        folder: The checkpoint folder.
    """

    def __init__(self, done: int, total: int, folder: Path) -> None:
        super().__init__(f"{done} of {total} iterations saved in {folder}")
        self.done, self.total, self.folder = done, total, folder


@dataclass
class ChainState:
    """One chain's snapshot: tensors (the safetensors payload) and JSON scalars.

    Attributes:
        tensors: Named tensors, CPU, contiguous and sharing no memory.
        scalars: JSON-serialisable values; ``scalars["iteration"]`` is the number of
            iterations (warm-up included) done.
    """

    tensors: dict[str, torch.Tensor] = field(repr=False)
    scalars: dict[str, object]

    @property
    def iteration(self) -> int:
        """Iterations done (warm-up included)."""
        return int(self.scalars["iteration"])


def sampling_folder(output: str | os.PathLike) -> Path:
    """The checkpoint folder of a run writing into ``output``: ``<parent>/.<name>.sampling``.

    A hidden sibling, so the output folder can be replaced as a whole at the end.
    """
    output = Path(output)
    return output.parent / f".{output.name}.sampling"


def config_hash(*parts: object) -> str:
    """A SHA-256 hex digest of the ``repr`` of ``parts`` (dataclasses, numbers, strings)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def settings_of(config: object, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """The fields of a dataclass as ``{name: repr(value)}``, nested ones as ``[table] key``.

    Args:
        config: A dataclass instance whose dataclass fields are TOML tables.
        ignore: Names to leave out (``"folder"``, ``"[mcmc] disable_progbar"``).

    Example:
        >>> from invprior.infer import MCMCConfig
        >>> settings_of(MCMCConfig(), ignore=("disable_progbar",))["num_chains"]
        '2'
    """
    settings = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            for key, text in settings_of(value).items():
                settings[f"[{item.name}] {key}"] = text
        else:
            settings[item.name] = repr(value)
    return {key: text for key, text in settings.items() if key not in ignore}


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Tensors (in their saved memory layout) and the JSON ``state`` of a checkpoint file.

    Raises:
        InputError: If the file cannot be read.
    """
    try:
        with safe_open(str(path), "pt") as f:
            scalars = json.loads(f.metadata()["state"])
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
        layouts = scalars.pop(_LAYOUT, {})
    except (OSError, SafetensorError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise InputError(
            f"checkpoint file {path} cannot be read ({err}); delete the folder "
            f"{path.parent} and run without --resume to start afresh"
        ) from err
    for key, order in layouts.items():  # undo the permutation _write applied
        tensors[key] = tensors[key].permute(*sorted(range(len(order)), key=order.__getitem__))
    return tensors, scalars


def _dense(tensor: torch.Tensor) -> tuple[torch.Tensor, list[int] | None]:
    """``tensor`` as a contiguous tensor, and the permutation of its dimensions (or None).

    A transposed matrix (Pyro keeps the inverse square root of the mass matrix as one)
    is stored as its contiguous transpose and transposed back on reading: a copy in
    another memory layout would take another BLAS path and change the last bits of the
    leapfrog steps.
    """
    tensor = tensor.detach().to("cpu")
    if tensor.is_contiguous() or tensor.dim() < 2:
        return tensor.contiguous(), None
    order = sorted(range(tensor.dim()), key=lambda d: (-tensor.stride(d), d))
    permuted = tensor.permute(*order)
    return (permuted, order) if permuted.is_contiguous() else (tensor.contiguous(), None)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then reach their handlers.

    The handlers are swapped for one that notes the signal (Python runs signal handlers in
    the main thread whichever thread the signal hits, so masking it would not do); the
    first signal noted is raised again once the handlers are back. Outside the main
    thread, where handlers cannot be set, the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {
        number: signal.signal(number, lambda n, _: caught.append(n)) for number in _SIGNALS
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])


def _write(path: Path, tensors: Mapping[str, torch.Tensor], scalars: Mapping) -> None:
    """Write one checkpoint file atomically, signals held back meanwhile."""
    payload, layouts = {}, {}
    for key, value in tensors.items():
        payload[key], order = _dense(value)
        if order is not None:
            layouts[key] = order
    state = json.dumps({**scalars, _LAYOUT: layouts})
    with signals_held(), atomic_path(path) as tmp:
        save_file(payload, str(tmp), metadata={"state": state})


def _mismatch(
    saved: Mapping[str, object],
    identity: Mapping[str, object],
    settings: Mapping[str, str] | None = None,
) -> list[str]:
    """What differs between the ``identity`` of this run and the one ``saved`` in a file.

    A different fingerprint is explained by the ``settings`` that differ, where the file
    holds its settings (the run file does).
    """
    names = {
        "version": "file format",
        "sampler": "sampler settings (kernel, [mcmc] table, seed)",
        "data": "observed data",
    }
    differ = [names[k] for k, v in identity.items() if k in names and saved.get(k) != v]
    if saved.get("fingerprint") != identity["fingerprint"]:
        before = saved.get("settings")
        if settings is None or not isinstance(before, dict):
            differ.append("configuration")
        else:
            keys = sorted(set(before) | set(settings), key=str)
            changes = [
                f"{key} {settings.get(key, '(absent)')} here, {before.get(key, '(absent)')} "
                "in the checkpoint"
                for key in keys
                if before.get(key) != settings.get(key)
            ]
            differ.append(f"configuration ({'; '.join(changes[:5]) or 'settings differ'})")
    return differ


def _refuse(where: str, differ: list[str]) -> InputError:
    return InputError(
        f"cannot resume: the checkpoint {where} was made with another "
        f"{' and another '.join(differ)}; resume with the configuration it was made with, "
        "or run without --resume to start afresh (which discards the checkpoint)"
    )


def _missing(folder: Path) -> InputError:
    return InputError(
        f"cannot resume: no checkpoint of an interrupted run in {folder} (no {_RUN}); "
        "run without --resume to start afresh"
    )


def check_resumable(folder: str | os.PathLike, settings: Mapping[str, str]) -> None:
    """Check that ``folder`` holds a checkpoint made with ``settings``.

    Cheap (reads one file header), so a command can call it before any expensive work.

    Args:
        folder: The checkpoint folder.
        settings: The run's settings (as :attr:`SamplingCheckpoint.settings`).

    Raises:
        InputError: If there is no checkpoint, or it was made with other settings (the
            message names them).
    """
    folder = Path(folder)
    if not (folder / _RUN).is_file():
        raise _missing(folder)
    _, scalars = _read(folder / _RUN)
    checkpoint = SamplingCheckpoint(folder, settings=settings)
    identity = {"version": VERSION, "fingerprint": checkpoint.fingerprint}
    differ = _mismatch(scalars, identity, checkpoint.settings)
    if differ:
        raise _refuse(f"in {folder}", differ)


def prepare_checkpoint(
    output: str | os.PathLike,
    settings: Mapping[str, str],
    *,
    resume: bool,
    comm: object | None = None,
) -> SamplingCheckpoint:
    """The checkpoint of a run writing into ``output``; checked, or cleared for a new run.

    With ``resume``, the checkpoint must exist and have been made with ``settings``
    (:func:`check_resumable`). Without it, a checkpoint left by an earlier interrupted
    run is discarded by rank 0 of ``comm``, with a warning. Collective on ``comm``.

    Args:
        output: The run's output folder; the checkpoint is :func:`sampling_folder` of it.
        settings: The run's configuration (:func:`settings_of`).
        resume: Continue the saved chains.
        comm: MPI communicator (mpi4py) of all ranks, or None for one process.

    Returns:
        The :class:`SamplingCheckpoint` to pass to the sampler.

    Raises:
        InputError: With ``resume``, if there is no checkpoint or it does not fit.
    """
    folder = sampling_folder(output)
    if resume:
        check_resumable(folder, settings)
    elif folder.exists() and (comm is None or comm.rank == 0):
        warnings.warn(
            f"discarding the checkpoint of an earlier interrupted run in {folder} (resume "
            "it instead with --resume)",
            RuntimeWarning,
            stacklevel=2,
        )
        discard(folder)
    if comm is not None:
        comm.Barrier()
    return SamplingCheckpoint(folder, resume=resume, settings=settings)


class ChainStore:
    """The files of one sampling run in a :class:`SamplingCheckpoint` folder.

    Args:
        checkpoint: The checkpoint settings.
        identity: What the files must match: ``sampler`` and ``data`` digests (the
            digest of the checkpoint's ``settings`` and the format version are added).
        writes: Whether this process writes the files.
    """

    def __init__(
        self, checkpoint: SamplingCheckpoint, identity: Mapping[str, str], writes: bool
    ) -> None:
        self.checkpoint = checkpoint
        self.folder = checkpoint.folder
        self.writes = writes
        self.identity = {
            "version": VERSION,
            "fingerprint": checkpoint.fingerprint,
            **identity,
        }

    def _path(self, chain: int | None) -> Path:
        return self.folder / (_RUN if chain is None else f"chain-{chain}.safetensors")

    def _load(self, chain: int | None) -> tuple[dict, dict] | None:
        path = self._path(chain)
        if not path.is_file():
            return None
        tensors, scalars = _read(path)
        differ = _mismatch(scalars, self.identity, self.checkpoint.settings)
        if differ:
            raise _refuse(f"file {path}", differ)
        return tensors, {k: v for k, v in scalars.items() if k not in self.identity}

    def save_run(
        self, starts: torch.Tensor, inverse_mass: torch.Tensor | None, chains: tuple[int, ...]
    ) -> None:
        """Begin a new run: save its starts and initial inverse mass, drop older chains.

        Args:
            starts: Starts of all chains, shape ``(num_chains, dim)``.
            inverse_mass: Initial inverse mass matrix, shape ``(dim, dim)``, or None.
            chains: The chains this process runs; files of earlier runs of them go.
        """
        if not self.writes:
            return
        tensors = {"starts": starts}
        if inverse_mass is not None:
            tensors["inverse_mass"] = inverse_mass
        self.folder.mkdir(parents=True, exist_ok=True)
        scalars = {**self.identity, "settings": self.checkpoint.settings}
        _write(self._path(None), tensors, scalars)
        for chain in chains:
            self._path(chain).unlink(missing_ok=True)

    def load_run(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The saved starts and initial inverse mass (or None).

        Raises:
            InputError: If there is no run file, or it belongs to another configuration.
        """
        loaded = self._load(None)
        if loaded is None:
            raise _missing(self.folder)
        tensors, _ = loaded
        return tensors["starts"], tensors.get("inverse_mass")

    def save_chain(self, chain: int, state: ChainState) -> None:
        """Write chain ``chain``'s snapshot (only where this process writes)."""
        if self.writes:
            _write(self._path(chain), state.tensors, {**self.identity, **state.scalars})

    def load_chain(self, chain: int) -> ChainState | None:
        """Chain ``chain``'s snapshot, or None if the chain was not begun."""
        loaded = self._load(chain)
        if loaded is None:
            return None
        return ChainState(*loaded)


def _clone(values: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().clone() for k, v in values.items()}


def _take(
    tensors: Mapping[str, torch.Tensor], prefix: str, names: list[str], like: torch.Tensor
) -> dict[str, torch.Tensor]:
    return {k: tensors[f"{prefix}/{k}"].to(like.device) for k in names}


def kernel_state(kernel: HMC) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """A copy of an HMC/NUTS kernel's state after a completed iteration.

    Args:
        kernel: A set-up :class:`pyro.infer.mcmc.HMC` or NUTS with a block mass matrix.

    Returns:
        ``(tensors, scalars)``: cloned tensors (latent ``z/*``, gradient ``grad/*``,
        ``potential_energy``, ``initial/*``, per mass block ``mass/<i>/*`` and Welford
        ``welford/<i>/*``) and JSON-serialisable scalars.

    Raises:
        TypeError: If the kernel's mass matrix adapter is not a ``BlockMassMatrix``.
    """
    adapter = kernel._adapter
    mass = adapter.mass_matrix_adapter
    if type(mass) is not BlockMassMatrix:
        raise TypeError(
            f"checkpoints support Pyro's BlockMassMatrix adapter, got {type(mass).__name__}"
        )
    tensors = {
        **_clone(kernel._z_last, "z"),
        **_clone(kernel._z_grads_last, "grad"),
        **_clone(kernel._initial_params, "initial"),
        "potential_energy": kernel._potential_energy_last.detach().clone(),
    }
    blocks, welford = [list(names) for names in mass._inverse_mass_matrix], []
    for i, names in enumerate(mass._inverse_mass_matrix):
        tensors[f"mass/{i}/inverse"] = mass._inverse_mass_matrix[names].clone()
        tensors[f"mass/{i}/sqrt"] = mass._mass_matrix_sqrt[names].clone()
        tensors[f"mass/{i}/sqrt_inverse"] = mass._mass_matrix_sqrt_inverse[names].clone()
        scheme = mass._adapt_scheme.get(names)  # none without mass matrix adaptation
        welford.append(
            None
            if scheme is None
            else {"diagonal": scheme.diagonal, "n_samples": scheme.n_samples}
        )
        if scheme is not None:
            for part, value in (("mean", scheme._mean), ("m2", scheme._m2)):
                if isinstance(value, torch.Tensor):
                    tensors[f"welford/{i}/{part}"] = value.clone()
    scalars = {
        "t": kernel._t,
        "accept_cnt": kernel._accept_cnt,
        "mean_accept_prob": kernel._mean_accept_prob,
        "divergences": list(kernel._divergences),
        "warmup_steps": kernel._warmup_steps,
        "sites": list(kernel._z_last),
        "grad_sites": list(kernel._z_grads_last),
        "initial_sites": list(kernel._initial_params),
        "step_size": adapter.step_size,
        "current_window": adapter._current_window,
        "mass_blocks": blocks,
        "mass_sizes": [mass._mass_matrix_size[tuple(names)] for names in blocks],
        "welford": welford,
    }
    if adapter.adapt_step_size:
        scheme = adapter._step_size_adapt_scheme
        scalars["dual_averaging"] = {
            key: value for key, value in vars(scheme).items() if isinstance(value, int | float)
        }
    return tensors, scalars


def restore_kernel(
    kernel: HMC,
    tensors: Mapping[str, torch.Tensor],
    scalars: Mapping[str, object],
    like: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Put a state from :func:`kernel_state` into a new, not set-up kernel of the same kind.

    Replaces ``kernel.setup``: afterwards ``kernel.sample(params)`` continues the chain.

    Args:
        kernel: A fresh kernel built with the settings of the saved one.
        tensors: The saved tensors.
        scalars: The saved scalars.
        like: A tensor on the device the chain runs on.

    Returns:
        The current latent, the ``params`` to pass to the next ``kernel.sample``.
    """
    adapter = kernel._adapter
    mass = adapter.mass_matrix_adapter
    z = _take(tensors, "z", scalars["sites"], like)
    kernel._warmup_steps = scalars["warmup_steps"]
    kernel._initial_params = _take(tensors, "initial", scalars["initial_sites"], like)
    kernel._cache(
        z,
        tensors["potential_energy"].to(like.device),
        _take(tensors, "grad", scalars["grad_sites"], like),
    )
    kernel._t = scalars["t"]
    kernel._accept_cnt = scalars["accept_cnt"]
    kernel._mean_accept_prob = scalars["mean_accept_prob"]
    kernel._divergences = list(scalars["divergences"])
    adapter._warmup_steps = scalars["warmup_steps"]
    adapter._find_reasonable_step_size = kernel._find_reasonable_step_size
    if not adapter._adaptation_disabled:
        adapter._adaptation_schedule = adapter._build_adaptation_schedule()
    adapter._current_window = scalars["current_window"]
    adapter.step_size = scalars["step_size"]
    if adapter.adapt_step_size:
        vars(adapter._step_size_adapt_scheme).update(scalars["dual_averaging"])
    blocks = [tuple(names) for names in scalars["mass_blocks"]]
    saved = {
        part: {
            names: tensors[f"mass/{i}/{part}"].to(like.device) for i, names in enumerate(blocks)
        }
        for part in ("inverse", "sqrt", "sqrt_inverse")
    }
    mass._inverse_mass_matrix = saved["inverse"]
    mass._mass_matrix_sqrt = saved["sqrt"]
    mass._mass_matrix_sqrt_inverse = saved["sqrt_inverse"]
    mass._mass_matrix_size = dict(zip(blocks, scalars["mass_sizes"], strict=True))
    mass._adapt_scheme = {}
    for i, (names, info) in enumerate(zip(blocks, scalars["welford"], strict=True)):
        if info is None:
            continue
        scheme = WelfordCovariance(diagonal=info["diagonal"])
        scheme.n_samples = info["n_samples"]
        if f"welford/{i}/mean" in tensors:
            scheme._mean = tensors[f"welford/{i}/mean"].to(like.device)
            scheme._m2 = tensors[f"welford/{i}/m2"].to(like.device)
        mass._adapt_scheme[names] = scheme
    return dict(z)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The state of torch's CPU generator and, for a CUDA ``device``, that device's."""
    state = {"rng/cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["rng/cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(tensors: Mapping[str, torch.Tensor], device: torch.device) -> None:
    """Set torch's generators to a state from :func:`rng_state`."""
    torch.set_rng_state(tensors["rng/cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng/cuda"], device)
