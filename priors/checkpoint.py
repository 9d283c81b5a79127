# SPDX-License-Identifier: MIT
"""Checkpoints: ``NAME.safetensors`` (weights) plus a ``NAME.json`` sidecar.

The sidecar holds the architecture and its constructor arguments (so the network can be
rebuilt without code from the file), the named variables with units and physical
ranges, the normalisation, the grid, the training-data recipe and seed, the metrics
reached, and the SHA-256 of the weights file. Loading verifies the hash, rebuilds the
network from the sidecar and refuses weights whose tensors do not fit it. Nothing is
ever unpickled: safetensors stores raw tensors only.

Shipped generators (``source-auxvae``, ``conductivity-auxvae``, ``source-betavae``) live
in ``invprior/priors/pretrained/`` and are loaded by name.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialise

from .base import Generator, GridSpec
from .dlcfm import DLCFMGenerator
from .gaussian import GaussianFieldPrior
from .hierarchical import HierarchicalVAE
from .semisupervised import SemiSupervisedVAE
from .vae import AuxVAE, BetaVAE

__all__ = ["load", "pretrained_names", "save"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_ARCHITECTURES: dict[str, type[Generator]] = {
    "AuxVAE": AuxVAE,
    "BetaVAE": BetaVAE,
    "DLCFMGenerator": DLCFMGenerator,
    "GaussianFieldPrior": GaussianFieldPrior,
    "HierarchicalVAE": HierarchicalVAE,
    "SemiSupervisedVAE": SemiSupervisedVAE,
}


def _stem(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(generator: Generator, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``generator`` as ``PATH.safetensors`` plus the ``PATH.json`` sidecar.

    Both files are written atomically (temporary file, then rename); the weights are
    stored in their current dtype, contiguous, on the CPU.

    Args:
        generator: An :class:`AuxVAE`, :class:`BetaVAE`, :class:`DLCFMGenerator`,
            :class:`HierarchicalVAE`, :class:`SemiSupervisedVAE` or
            :class:`GaussianFieldPrior`.
        path: Destination; a ``.safetensors`` or ``.json`` suffix is dropped.
        metadata: Extra sidecar entries, e.g. ``{"data": recipe, "training": ...,
            "metrics": ...}``; merged over ``generator.metadata`` when that exists.

    Returns:
        The path of the sidecar.
    """
    arch = type(generator).__name__
    if _ARCHITECTURES.get(arch) is not type(generator):
        raise TypeError(f"cannot save a {arch}; supported: {sorted(_ARCHITECTURES)}")
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    weights = serialise(tensors)
    grid = generator.grid
    sidecar = {
        **getattr(generator, "metadata", {}),
        **(metadata or {}),
        "format_version": FORMAT_VERSION,
        "architecture": arch,
        "config": generator.config(),
        "aux_names": list(generator.aux_names),
        "units": dict(zip(generator.aux_names, generator.aux_units, strict=True)),
        "ranges": {k: list(v) for k, v in generator.aux_ranges.items()},
        "normalisation": {
            "aux_mean": generator.aux_mean.tolist(),
            "aux_std": generator.aux_std.tolist(),
            **{
                k: float(getattr(generator, k))
                for k in ("field_offset", "field_scale")
                if hasattr(generator, k)
            },
        },
        "grid": {"shape": list(grid.shape), "bbox": [list(p) for p in grid.bbox]},
        "dtype": str(next(iter(tensors.values())).dtype).removeprefix("torch."),
        "sha256": hashlib.sha256(weights).hexdigest(),
    }
    _write_atomic(stem.with_suffix(".safetensors"), weights)
    _write_atomic(stem.with_suffix(".json"), (json.dumps(sidecar, indent=2) + "\n").encode())
    logger.info("saved %s to %s.{safetensors,json}", arch, stem)
    return stem.with_suffix(".json")


def pretrained_names() -> list[str]:
    """Names of the generators shipped in ``invprior/priors/pretrained/``."""
    folder = importlib.resources.files(__package__).joinpath("pretrained")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def _resolve(name_or_path: str | os.PathLike) -> Path:
    text = os.fspath(name_or_path)
    if os.sep not in text and "/" not in text and not text.endswith((".json", ".safetensors")):
        res = importlib.resources.files(__package__).joinpath("pretrained", f"{text}.json")
        if res.is_file():
            return Path(str(res)).with_suffix("")
        if not Path(text + ".json").is_file():
            raise FileNotFoundError(
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
        raise FileNotFoundError(f"checkpoint files not found: {missing}")
    return stem


def _read_sidecar(stem: Path) -> dict:
    try:
        sidecar = json.loads(stem.with_suffix(".json").read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{stem}.json is not valid JSON: {err}") from err
    if sidecar.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{stem}.json has format_version {sidecar.get('format_version')!r}; this version "
            f"of invprior reads {FORMAT_VERSION}"
        )
    if sidecar.get("architecture") not in _ARCHITECTURES:
        raise ValueError(
            f"{stem}.json names architecture {sidecar.get('architecture')!r}; known: "
            f"{sorted(_ARCHITECTURES)}"
        )
    return sidecar


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
        raise ValueError(
            f"{stem}.safetensors does not match the architecture its sidecar describes "
            f"({sidecar['architecture']} on grid {tuple(sidecar['grid']['shape'])}): "
            + "; ".join(sorted(problems)[:5])
            + ". The sidecar's grid or config was changed, or the files belong to different "
            "checkpoints."
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
        FileNotFoundError: No such shipped name or checkpoint files.
        ValueError: Hash mismatch (corrupt or altered weights), unknown format or
            architecture, weights that do not fit the sidecar, or the wrong grid.
    """
    stem = _resolve(name_or_path)
    sidecar = _read_sidecar(stem)
    weights_path = stem.with_suffix(".safetensors")
    digest = _sha256(weights_path)
    if digest != sidecar.get("sha256"):
        raise ValueError(
            f"{weights_path} has SHA-256 {digest} but its sidecar records "
            f"{sidecar.get('sha256')}: the weights are corrupt or were altered; restore them "
            "or retrain"
        )
    model = _ARCHITECTURES[sidecar["architecture"]].from_config(sidecar["config"])
    if list(model.grid.shape) != list(sidecar["grid"]["shape"]):
        raise ValueError(
            f"{stem}.json: grid {sidecar['grid']['shape']} disagrees with its config's grid "
            f"{list(model.grid.shape)}"
        )
    if grid is not None and model.grid != grid:
        raise ValueError(
            f"{stem} was trained on grid shape {model.grid.shape}, bbox {model.grid.bbox}, but "
            f"shape {grid.shape}, bbox {grid.bbox} is required; use a generator trained on "
            "that grid"
        )
    try:
        tensors = load_file(weights_path, device=str(torch.device(map_location)))
    except SafetensorError as err:
        raise ValueError(f"{weights_path} is not a readable safetensors file: {err}") from err
    _check_tensors(stem, model, tensors, sidecar)
    model.load_state_dict(tensors)
    model = model.to(map_location).eval().requires_grad_(False)
    model.metadata = sidecar
    return model
