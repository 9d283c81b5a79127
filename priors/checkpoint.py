# SPDX-License-Identifier: MIT
"""Checkpoints: ``NAME.safetensors`` (weights) plus a ``NAME.json`` sidecar.

The sidecar holds the architecture and its constructor arguments (so the network can be
rebuilt without code from the file), the named variables with units and physical
ranges, the normalisation, the grid, the training-data recipe and seed, the metrics
reached, the SHA-256 of the weights file (``sha256``) and the SHA-256 of the sidecar
itself (``sidecar_sha256``). Nothing is ever unpickled: safetensors stores raw tensors
only.

Integrity (format 2). ``sidecar_sha256`` is the SHA-256 of the canonical JSON of the
whole sidecar without the ``sidecar_sha256`` entry: ``json.dumps(sidecar,
sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` encoded as ASCII. Since that
content includes ``sha256``, one digest covers the weights and every entry of the
sidecar. The whole sidecar is covered, not a chosen list of fields, because nearly every
entry changes results (names, units, ranges, grid, ``tau``, normalisation, architecture)
or records where they came from (data recipe, training settings, metrics), and a list
would have to follow every new field. The digest is computed from the parsed content,
so re-indenting the file keeps it valid while any change of a name, a number or a key
does not. It detects corruption and unnoticed edits; it is not a signature (anyone can
recompute it), so a deliberate edit is accepted by re-signing the file with
:func:`sign`, which checks the result like :func:`load` does.

:func:`load` checks, before building anything, that the sidecar is a JSON object of a
known format whose digest matches and whose weights match ``sha256``; then that the
configuration has exactly the keys the architecture takes (no defaults fill in for a
missing key); then that the weights are finite and fit the network; and last that the
names, units, ranges, normalisation, grid and config recorded in the sidecar are those
of the network built from it (numbers up to float32 rounding). Every problem raises
:class:`~invprior.validation.InputError` naming the file, and the field where there is
one. Top-level entries other than those :func:`save` writes are the caller's metadata:
free-form, but covered by the digest.
:func:`save` refuses weights with NaN or Inf values, and checks that the metadata can be
written as JSON, before it writes anything.

Shipped generators (``source-auxvae``, ``conductivity-auxvae``, ``source-betavae``,
``source-dlcfm``) live in ``invprior/priors/pretrained/`` and are loaded by name.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import math
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialise

from ..fileio import atomic_path
from ..validation import InputError
from .base import Generator, GridSpec
from .dlcfm import DLCFMGenerator
from .gaussian import GaussianFieldGenerator
from .hierarchical import HierarchicalVAE
from .semisupervised import SemiSupervisedVAE
from .simulator_generator import SimulatorGenerator
from .vae import AuxVAE, BetaVAE

__all__ = ["CheckpointNotFoundError", "digest", "load", "pretrained_names", "save", "sign"]

logger = logging.getLogger(__name__)

#: Version of the checkpoint format; 2 added ``sidecar_sha256``.
FORMAT_VERSION = 2
#: The sidecar entry holding the digest of the rest of the sidecar.
DIGEST_KEY = "sidecar_sha256"

_ARCHITECTURES: dict[str, type[Generator]] = {
    "AuxVAE": AuxVAE,
    "BetaVAE": BetaVAE,
    "DLCFMGenerator": DLCFMGenerator,
    "GaussianFieldGenerator": GaussianFieldGenerator,
    "HierarchicalVAE": HierarchicalVAE,
    "SemiSupervisedVAE": SemiSupervisedVAE,
    "SimulatorGenerator": SimulatorGenerator,
}
# The keys of each architecture's ``config()``: a sidecar must hold exactly these. A new
# constructor argument goes here too (the round-trip tests fail until it does).
_GRID_KEYS = ("shape", "bbox")
_NET_KEYS = ("grid", "channels", "hidden", "field_offset", "field_scale", "positive")
_AUX_KEYS = ("aux_names", "aux_units", "aux_ranges", "aux_mean", "aux_std", "rec_dim", "tau")
_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "AuxVAE": (*_AUX_KEYS, *_NET_KEYS),
    "BetaVAE": ("latent_dim", *_NET_KEYS),
    "DLCFMGenerator": ("base", "channels", "embed", "residual_scale", "steps", "method"),
    "GaussianFieldGenerator": ("grid", "rank"),
    "HierarchicalVAE": ("latent_dim", "hyper_dim", "hyper_hidden", *_NET_KEYS),
    "SemiSupervisedVAE": (*_AUX_KEYS, *_NET_KEYS),
    "SimulatorGenerator": ("grid",),
}
# Objects nested in a config, by key: their own keys.
_NESTED_KEYS = {"grid": _GRID_KEYS, "base": _CONFIG_KEYS["AuxVAE"]}
# What :func:`save` writes besides the caller's metadata; a sidecar must hold all of it.
_DESCRIPTION = ("config", "aux_names", "units", "ranges", "normalisation", "grid")
_REQUIRED = ("format_version", "architecture", *_DESCRIPTION, "dtype", "sha256", DIGEST_KEY)
_RESAVE = "restore the original file, or save the generator again with invprior.priors.save"


class CheckpointNotFoundError(InputError, FileNotFoundError):
    """No shipped generator of that name, or a checkpoint file is missing."""


def _stem(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sidecar_digest(sidecar: dict) -> str:
    """SHA-256 of the canonical JSON of ``sidecar`` without its ``DIGEST_KEY`` entry."""
    content = {k: v for k, v in sidecar.items() if k != DIGEST_KEY}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _signed_text(sidecar: dict) -> str:
    """The sidecar file's text: ``sidecar`` as parsed back from JSON, digest last."""
    content = json.loads(json.dumps({k: v for k, v in sidecar.items() if k != DIGEST_KEY}))
    content[DIGEST_KEY] = _sidecar_digest(content)
    return json.dumps(content, indent=2) + "\n"


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through :func:`invprior.fileio.atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or Inf, sorted."""
    return sorted(
        k
        for k, v in tensors.items()
        if (v.is_floating_point() or v.is_complex()) and not torch.isfinite(v).all()
    )


def _listed(names: list[str], at_most: int = 5) -> str:
    more = f" and {len(names) - at_most} more" if len(names) > at_most else ""
    return ", ".join(names[:at_most]) + more


def _describe(generator: Generator) -> dict:
    """The sidecar entries that describe ``generator``'s network, in file order."""
    grid = generator.grid
    return {
        "architecture": type(generator).__name__,
        "config": generator.config(),
        "aux_names": list(generator.aux_names),
        "units": dict(zip(generator.aux_names, generator.aux_units, strict=True)),
        "ranges": {k: list(v) for k, v in generator.aux_ranges.items()},
        "normalisation": {
            "aux_mean": generator.aux_mean.tolist(),
            "aux_std": generator.aux_std.tolist(),
            **(
                {
                    "field_offset": float(generator.field_offset),
                    "field_scale": float(generator.field_scale),
                }
                if isinstance(generator, AuxVAE | BetaVAE | HierarchicalVAE)
                else {}
            ),
        },
        "grid": {"shape": list(grid.shape), "bbox": [list(p) for p in grid.bbox]},
    }


def save(generator: Generator, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``generator`` as ``PATH.safetensors`` plus the ``PATH.json`` sidecar.

    Both files are written atomically (temporary file, then rename), and only after
    everything was checked and serialised; the weights are stored in their current dtype,
    contiguous, on the CPU.

    Args:
        generator: An :class:`AuxVAE`, :class:`BetaVAE`, :class:`DLCFMGenerator`,
            :class:`HierarchicalVAE`, :class:`SemiSupervisedVAE`,
            :class:`GaussianFieldGenerator` or :class:`SimulatorGenerator`.
        path: Destination; a ``.safetensors`` or ``.json`` suffix is dropped.
        metadata: Extra sidecar entries (JSON-ready), e.g. ``{"data": recipe,
            "training": ..., "metrics": ...}``; merged over ``generator.metadata`` (the
            sidecar it was loaded with, if any).

    Returns:
        The path of the sidecar.

    Raises:
        TypeError: An unsupported generator, or metadata that JSON cannot hold.
        InputError: Weights with NaN or Inf values; nothing is written.
    """
    arch = type(generator).__name__
    if _ARCHITECTURES.get(arch) is not type(generator):
        raise TypeError(f"cannot save a {arch}; supported: {sorted(_ARCHITECTURES)}")
    stem = _stem(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    if bad := _non_finite(tensors):
        raise InputError(
            f"cannot save the {arch} to {stem}: its tensors {_listed(bad)} hold NaN or Inf "
            "values, so the checkpoint would be unusable; nothing was written. Check the "
            "training run that produced them (a lower learning rate often helps)"
        )
    weights = serialise(tensors)
    sidecar = {
        **generator.metadata,
        **(metadata or {}),
        "format_version": FORMAT_VERSION,
        **_describe(generator),
        "dtype": str(next(iter(tensors.values())).dtype).removeprefix("torch."),
        "sha256": hashlib.sha256(weights).hexdigest(),
    }
    text = _signed_text(sidecar)
    stem.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(stem.with_suffix(".safetensors"), weights)
    _write_atomic(stem.with_suffix(".json"), text.encode())
    logger.info("saved %s to %s.{safetensors,json}", arch, stem)
    return stem.with_suffix(".json")


def pretrained_names() -> list[str]:
    """Names of the generators shipped in ``invprior/priors/pretrained/``."""
    folder = importlib.resources.files(__package__).joinpath("pretrained")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def digest(name_or_path: str | os.PathLike) -> str:
    """The recorded ``sidecar_sha256`` of a shipped name or checkpoint path.

    One digest covers the weights (through ``sha256``) and every entry of the sidecar, so
    a study's cached records can name the generator they were computed with. It is read,
    not verified: :func:`load` checks it against the files.

    Raises:
        CheckpointNotFoundError: No such shipped generator or checkpoint files.
        InputError: A sidecar that is not a checkpoint sidecar of this format.
    """
    stem = _resolve(name_or_path)
    sidecar = _parse_sidecar(stem)
    if DIGEST_KEY not in sidecar:
        raise InputError(f"{stem.with_suffix('.json')} lacks the key {DIGEST_KEY!r}; {_RESAVE}")
    return str(sidecar[DIGEST_KEY])


def _resolve(name_or_path: str | os.PathLike) -> Path:
    text = os.fspath(name_or_path)
    if os.sep not in text and "/" not in text and not text.endswith((".json", ".safetensors")):
        res = importlib.resources.files(__package__).joinpath("pretrained", f"{text}.json")
        if res.is_file():
            return Path(str(res)).with_suffix("")
        if not Path(text + ".json").is_file():
            raise CheckpointNotFoundError(
                f"no shipped generator named {text!r}; shipped: {pretrained_names()}, or pass "
                "the path of a NAME.json/NAME.safetensors checkpoint"
            )
    stem = _stem(text)
    missing = [
        str(p)
        for p in (stem.with_suffix(".json"), stem.with_suffix(".safetensors"))
        if not p.is_file()
    ]
    if missing:
        raise CheckpointNotFoundError(
            f"checkpoint files not found: {missing}; a checkpoint is the pair NAME.json and "
            "NAME.safetensors written by invprior.priors.save"
        )
    return stem


def _parse_sidecar(stem: Path, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> dict:
    """The sidecar's JSON object, of a format in ``versions``, with every key but the digest.

    Raises:
        InputError: Not a JSON object, another format, or a key missing.
    """
    path = stem.with_suffix(".json")
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not a readable JSON file: {err}; {_RESAVE}") from err
    if not isinstance(sidecar, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(sidecar).__name__}")
    version = sidecar.get("format_version")
    known = type(version) is int and version in versions
    if type(version) is int and version == 1 and not known:
        raise InputError(
            f"{path} is in checkpoint format 1, which has no digest of the sidecar's own "
            f"content ({DIGEST_KEY}); if you trust its content, convert it with "
            f'`python -c "from invprior.priors.checkpoint import sign; sign({str(path)!r})"`'
        )
    if not known:
        raise InputError(
            f"{path} has format_version {version!r}; this version of invprior reads "
            f"{FORMAT_VERSION}; use the invprior version that wrote it"
        )
    if missing := [k for k in _REQUIRED if k != DIGEST_KEY and k not in sidecar]:
        raise InputError(
            f"{path} lacks the key(s) {missing} that every checkpoint sidecar has; {_RESAVE}"
        )
    return sidecar


def _check_digests(stem: Path, sidecar: dict, check_sidecar: bool = True) -> None:
    path = stem.with_suffix(".json")
    if check_sidecar:
        if DIGEST_KEY not in sidecar:
            raise InputError(f"{path} lacks the key {DIGEST_KEY!r}; {_RESAVE}")
        if sidecar[DIGEST_KEY] != _sidecar_digest(sidecar):
            raise InputError(
                f"{path} was changed after it was written: its content does not match its "
                f"{DIGEST_KEY}, so the names, ranges, grid or settings it records cannot be "
                f"trusted; {_RESAVE}, or, if the edit was deliberate, re-sign the file with "
                "invprior.priors.checkpoint.sign"
            )
    weights_path = stem.with_suffix(".safetensors")
    try:
        digest = _sha256(weights_path)
    except OSError as err:
        raise InputError(f"{weights_path} cannot be read: {err}") from err
    if digest != sidecar["sha256"]:
        raise InputError(
            f"{weights_path} has SHA-256 {digest} but its sidecar {path.name} records "
            f"{sidecar['sha256']}: the weights are corrupt or were altered, or the two files "
            "belong to different checkpoints; restore them or retrain"
        )


def _check_keys(path: Path, values: object, expected: tuple[str, ...], where: str) -> None:
    """``values`` is an object with exactly the keys ``expected``, recursively."""
    if not isinstance(values, dict):
        raise InputError(f"{path}: {where} must be a JSON object, got {values!r}")
    if missing := [k for k in expected if k not in values]:
        raise InputError(
            f"{path}: {where} lacks the key(s) {[f'{where}.{k}' for k in missing]}; no "
            f"default is assumed for a checkpoint; {_RESAVE}"
        )
    if unknown := sorted(set(values) - set(expected)):
        raise InputError(
            f"{path}: unknown key(s) {[f'{where}.{k}' for k in unknown]}; {where} takes "
            f"{list(expected)}; {_RESAVE}"
        )
    for key in expected:
        if key in _NESTED_KEYS:
            _check_keys(path, values[key], _NESTED_KEYS[key], f"{where}.{key}")


def _build(
    stem: Path, sidecar: dict, map_location: str | torch.device, grid: GridSpec | None
) -> Generator:
    """The generator a sidecar with checked digests describes, with its weights loaded."""
    path, weights_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    arch = sidecar["architecture"]
    if arch not in _ARCHITECTURES:
        raise InputError(f"{path} names architecture {arch!r}; known: {sorted(_ARCHITECTURES)}")
    _check_keys(path, sidecar["config"], _CONFIG_KEYS[arch], "config")
    _check_keys(path, sidecar["grid"], _GRID_KEYS, "grid")
    try:
        model = _ARCHITECTURES[arch].from_config(sidecar["config"])
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: config does not build a {arch}: {err}; {_RESAVE}") from err
    if list(model.grid.shape) != list(sidecar["grid"]["shape"]):
        raise InputError(
            f"{path}: grid {sidecar['grid']['shape']} disagrees with its config's grid "
            f"{list(model.grid.shape)}; {_RESAVE}"
        )
    if grid is not None and model.grid != grid:
        raise InputError(
            f"{stem} was trained on grid shape {model.grid.shape}, bbox {model.grid.bbox}, but "
            f"shape {grid.shape}, bbox {grid.bbox} is required; use a generator trained on "
            "that grid"
        )
    try:
        tensors = load_file(weights_path, device=str(torch.device(map_location)))
    except SafetensorError as err:
        raise InputError(f"{weights_path} is not a readable safetensors file: {err}") from err
    if bad := _non_finite(tensors):
        raise InputError(
            f"{weights_path}: the tensors {_listed(bad)} hold NaN or Inf values; the "
            "checkpoint is unusable: retrain the generator"
        )
    _check_tensors(stem, model, tensors, sidecar)
    model.load_state_dict(tensors)
    _check_description(path, model, sidecar)
    return model


def _check_tensors(stem: Path, model: Generator, tensors: dict, sidecar: dict) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [f"{k}: missing from the weights" for k in expected.keys() - found.keys()]
    problems += [f"{k}: not part of the architecture" for k in found.keys() - expected.keys()]
    problems += [
        f"{k}: shape {found[k]} in the weights, {expected[k]} expected"
        for k in expected.keys() & found.keys()
        if found[k] != expected[k]
    ]
    if problems:
        raise InputError(
            f"{stem}.safetensors does not match the architecture its sidecar describes "
            f"({sidecar['architecture']} on grid {tuple(sidecar['grid']['shape'])}): "
            + "; ".join(sorted(problems)[:5])
            + ". The files belong to different checkpoints, or the sidecar was re-signed "
            "after its grid or config was changed; restore the matching pair"
        )


def _differs(recorded: object, actual: object) -> bool:
    """Whether two JSON values differ, numbers beyond float32 rounding.

    A checkpoint saved in float64 is loaded into a float32 network, whose statistics then
    differ from the recorded ones by rounding only.
    """
    if isinstance(recorded, dict) and isinstance(actual, dict):
        return recorded.keys() != actual.keys() or any(
            _differs(recorded[k], actual[k]) for k in recorded
        )
    if isinstance(recorded, list) and isinstance(actual, list):
        return len(recorded) != len(actual) or any(map(_differs, recorded, actual))
    if isinstance(actual, float) and type(recorded) in (int, float):
        return not math.isclose(recorded, actual, rel_tol=1e-6)
    return type(recorded) is not type(actual) or recorded != actual


def _check_description(path: Path, model: Generator, sidecar: dict) -> None:
    """The sidecar's names, units, ranges, normalisation, grid and config are the model's."""
    actual = _describe(model)
    for key in _DESCRIPTION:
        if _differs(sidecar[key], actual[key]):
            raise InputError(
                f"{path}: {key} records {sidecar[key]!r} but the network built from the "
                f"sidecar's config and weights has {actual[key]!r}; the sidecar contradicts "
                f"itself; {_RESAVE}"
            )


def load(
    name_or_path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    grid: GridSpec | None = None,
) -> Generator:
    """Load a generator, frozen (``eval()``, no gradients for its parameters).

    Args:
        name_or_path: A shipped name (see :func:`pretrained_names`) or the path of a
            checkpoint (with or without the ``.json``/``.safetensors`` suffix).
        map_location: Device to put the weights on.
        grid: If given, the grid the caller needs; a checkpoint on another grid is refused.

    Returns:
        The generator; its sidecar is available as ``generator.metadata``.

    Raises:
        CheckpointNotFoundError: No such shipped name or checkpoint files (an
            :class:`~invprior.validation.InputError` and a :class:`FileNotFoundError`).
        InputError: A sidecar that is not JSON, of an unknown format, changed after it
            was written (digest mismatch) or missing a key; corrupt or altered weights;
            config keys missing or unknown; weights with NaN or Inf values or that do not
            fit the sidecar; or the wrong grid. The message names the file.
    """
    stem = _resolve(name_or_path)
    sidecar = _parse_sidecar(stem)
    _check_digests(stem, sidecar)
    model = _build(stem, sidecar, map_location, grid)
    model = model.to(map_location).eval().requires_grad_(False)
    model.metadata = sidecar
    return model


def sign(path: str | os.PathLike) -> Path:
    """Re-sign a checkpoint's sidecar after a deliberate edit, or convert format 1.

    The weights must still match the sidecar's ``sha256`` (they are never re-signed), and
    the edited sidecar must pass every check of :func:`load`; otherwise nothing is
    written. Only the ``format_version`` and the digest change.

    Args:
        path: The checkpoint (with or without the ``.json``/``.safetensors`` suffix).

    Returns:
        The path of the sidecar.

    Raises:
        CheckpointNotFoundError: A checkpoint file is missing.
        InputError: As for :func:`load`, except for the sidecar's own digest.
    """
    stem = _resolve(path)
    sidecar = _parse_sidecar(stem, versions=(1, FORMAT_VERSION))
    _check_digests(stem, sidecar, check_sidecar=False)
    sidecar["format_version"] = FORMAT_VERSION
    text = _signed_text(sidecar)
    _build(stem, json.loads(text), "cpu", None)
    _write_atomic(stem.with_suffix(".json"), text.encode())
    logger.info("signed %s", stem.with_suffix(".json"))
    return stem.with_suffix(".json")
