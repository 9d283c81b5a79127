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

Pyro keeps a kernel's state in private attributes; the kernel's part of a snapshot is
taken and put back by :func:`~invprior.infer.pyro_shim.kernel_state` and
:func:`~invprior.infer.pyro_shim.restore_kernel`, in the module that holds every access to
Pyro's private state. Pyro's own ``setup`` is not called on resume: it would spend
potential evaluations and random numbers to find a step size the checkpoint already holds.

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
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..fileio import atomic_path, discard
from ..validation import InputError, check_field_types

__all__ = [
    "ChainState",
    "ChainStore",
    "SamplingCheckpoint",
    "SamplingInterrupted",
    "check_resumable",
    "config_hash",
    "prepare_checkpoint",
    "restore_rng",
    "rng_state",
    "sampling_folder",
    "settings_of",
    "signals_held",
]

#: Format of the files; a checkpoint of another version is refused.
VERSION = 1

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

    @property
    def holds_a_run(self) -> bool:
        """Whether ``folder`` holds a run's file, so that ``resume`` has a run to continue."""
        return (self.folder / _RUN).is_file()


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

    Every tensor is copied out of the file's buffer into memory of its own: safetensors
    hands out views at the byte offsets of the file, and BLAS kernels take other paths
    (and round differently) for data that is not aligned as torch aligns what it
    allocates, so a resumed chain would drift from the uninterrupted one in the last bits.

    Raises:
        InputError: If the file cannot be read.
    """
    try:
        with safe_open(str(path), "pt") as f:
            scalars = json.loads(f.metadata()["state"])
            tensors = {key: f.get_tensor(key).clone() for key in f.keys()}  # noqa: SIM118
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
