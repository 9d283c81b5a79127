# SPDX-License-Identifier: MIT
r"""Training-data simulators: source fields and log-conductivity fields on a grid.

Each simulator draws every generative factor independently, builds the fields with
vectorised numpy and returns a :class:`FieldDataset` that carries the full ground
truth: the *named* factors (the auxiliary variables :math:`u` a disentangled prior is
tied to) and the *unnamed* residual factors (which the residual latent block has to
absorb). Everything is deterministic given the seed.

Source fields (for source identification), with
:math:`R_\theta` the rotation by the orientation :math:`\theta` and
:math:`\rho` the anisotropy,

.. math::

    f(\mathbf{x}) = \Big[A \exp\big(-\tfrac12 \mathbf{d}^T \Sigma^{-1} \mathbf{d}\big)
        + s A \exp\big(-\tfrac{|\mathbf{x} - \mathbf{x}_2|^2}{2 w_2^2}\big)\Big]
        \big(1 + \textstyle\sum_k c_k \phi_k(\mathbf{x})\big),
    \quad \mathbf{d} = \mathbf{x} - (x_0, y_0),
    \quad \Sigma = R_\theta \operatorname{diag}(w^2 \rho, w^2 / \rho) R_\theta^T,

named ``x0, y0, amplitude`` (:math:`A`) and ``width`` (:math:`w`, the geometric mean of
the two axes); unnamed :math:`\rho, \theta`, the weaker secondary source
:math:`(x_2, y_2, s, w_2)` and the smooth modulation coefficients :math:`c_k`.

Log-conductivity fields (for conductivity identification),

.. math::

    m(\mathbf{x}) = \kappa\, \sigma\big((r - |\mathbf{x} - \mathbf{c}|) / \delta\big)
        + \sum_{k=1}^{K} \sqrt{\lambda_k}\, \xi_k\, \psi_k(\mathbf{x}),
    \quad \xi_k \sim N(0, 1),

named ``cx, cy, radius, contrast`` (:math:`\mathbf{c}, r, \kappa`) of a smooth circular
inclusion (:math:`\sigma` the logistic function, edge width :math:`\delta`); unnamed the
Karhunen-Loeve coefficients :math:`\xi_k` of a squared-exponential random field,
truncated to its :math:`K` leading modes, as in the Darcy-flow study of [1].

References:
    [1] A. Ganguli et al., "Enhancing Interpretability in Generative Modeling:
        Statistically Disentangled Latent Spaces Guided by Generative Factors in
        Scientific Datasets", arXiv:2507.00298 (2025).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..fileio import atomic_path
from ..validation import InputError
from .base import GridSpec

__all__ = [
    "CONDUCTIVITY_PARAMETERS",
    "SOURCE_PARAMETERS",
    "SHARP_WIDTH",
    "FieldDataset",
    "physical_ranges",
    "simulate",
    "simulate_conductivity",
    "simulate_misspecified_sources",
    "simulate_sources",
    "source_fields",
]

_FORMAT_VERSION = 1

#: Source simulator factors: name -> (low, high, unit, named). Positions and widths are
#: fractions of the bounding box's side lengths; the secondary source and modulation
#: are the unnamed residual variability.
SOURCE_PARAMETERS: dict[str, tuple[float, float, str, bool]] = {
    "x0": (0.2, 0.8, "m", True),
    "y0": (0.2, 0.8, "m", True),
    "amplitude": (0.5, 2.0, "1", True),
    "width": (0.05, 0.12, "m", True),
    "log_anisotropy": (-0.4, 0.4, "1", False),
    "orientation": (0.0, np.pi, "rad", False),
    "x2": (0.1, 0.9, "m", False),
    "y2": (0.1, 0.9, "m", False),
    "secondary_ratio": (0.05, 0.25, "1", False),
    "secondary_width": (0.04, 0.08, "m", False),
    "modulation_0": (-0.05, 0.05, "1", False),
    "modulation_1": (-0.05, 0.05, "1", False),
    "modulation_2": (-0.05, 0.05, "1", False),
    "modulation_3": (-0.05, 0.05, "1", False),
}

#: Conductivity simulator: named inclusion factors (uniform ranges) and the settings of
#: the unnamed Karhunen-Loeve field (its coefficients are standard normal).
CONDUCTIVITY_PARAMETERS: dict[str, tuple[float, float, str, bool]] = {
    "cx": (0.25, 0.75, "m", True),
    "cy": (0.25, 0.75, "m", True),
    "radius": (0.08, 0.2, "m", True),
    "contrast": (0.5, 2.0, "1", True),
}
#: Width range (fraction of the box side) of :func:`simulate_misspecified_sources`'s
#: ``"sharp"`` kind: entirely below the training range of ``width``.
SHARP_WIDTH = (0.02, 0.04)
_KL_MODES = 8
_KL_STD = 0.35
_KL_LENGTH = 0.2
_EDGE_WIDTH = 0.015
_CHUNK = 2048


@dataclass
class FieldDataset:
    """Simulated fields with their ground-truth generative factors.

    Construction checks the data: ``fields`` a real array of shape ``(n, ny, nx)`` on
    ``grid``, every factor a real array of shape ``(n,)``, every named factor with a unit
    and a range, and no NaN or Inf anywhere (:meth:`check_finite`).

    Attributes:
        fields: Fields, float32, shape ``(n, ny, nx)``.
        factors: Every ground-truth factor (named and unnamed), name -> shape ``(n,)``.
        aux_names: The named factors (auxiliary variables), in order.
        units: Unit of each factor.
        ranges: Sampling range ``(low, high)`` of each factor (physical units).
        grid: The grid the fields live on.
        recipe: How the data were made: ``simulator``, ``n``, ``seed``, ``parameters``.

    Raises:
        InputError: Arrays of the wrong type or shape, a named factor without its array,
            unit or range, or non-finite values.
    """

    fields: np.ndarray
    factors: dict[str, np.ndarray]
    aux_names: tuple[str, ...]
    units: dict[str, str]
    ranges: dict[str, tuple[float, float]]
    grid: GridSpec = field(default_factory=GridSpec)
    recipe: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.grid, GridSpec):
            raise TypeError(f"grid must be a GridSpec, got {type(self.grid).__name__}")
        ny, nx = self.grid.shape
        if not _is_real_array(self.fields):
            raise InputError(
                f"fields must be a real numpy array of shape (n, {ny}, {nx}), got "
                f"{_describe(self.fields)}"
            )
        if self.fields.ndim != 3 or self.fields.shape[1:] != (ny, nx):
            raise InputError(
                f"fields must have shape (n, {ny}, {nx}) for grid {self.grid.shape}, got "
                f"{self.fields.shape}"
            )
        n = len(self.fields)
        if not isinstance(self.factors, dict):
            raise TypeError(
                f"factors must be a dict name -> array, got {type(self.factors).__name__}"
            )
        bad = {k: _describe(v) for k, v in self.factors.items() if not _is_real_array(v, (n,))}
        if bad:
            raise InputError(
                f"factors {sorted(bad)} must be real numpy arrays of shape ({n},), one value "
                f"per field, got {bad}"
            )
        missing = [k for k in self.aux_names if k not in self.factors]
        if missing:
            raise InputError(
                f"aux_names {missing} are not among the factors {sorted(self.factors)}"
            )
        missing = [k for k in self.aux_names if k not in self.units or k not in self.ranges]
        if missing:
            raise InputError(f"the named factors {missing} need an entry in units and ranges")
        self.check_finite()

    def __len__(self) -> int:
        return len(self.fields)

    def check_finite(self) -> None:
        """Check that no field or factor holds NaN or Inf.

        Raises:
            InputError: Naming the array, how many samples are affected and the first rows.
        """
        n = len(self.fields)
        flat = self.fields.reshape(n, int(np.prod(self.fields.shape[1:])))
        rows = np.concatenate(
            [
                np.flatnonzero(~np.isfinite(flat[i : i + _CHUNK]).all(axis=1)) + i
                for i in range(0, n, _CHUNK)
            ]
            or [np.zeros(0, dtype=np.int64)]
        )
        problems = [f"fields in {_rows(rows, n)}"] if len(rows) else []
        for name, values in self.factors.items():
            rows = np.flatnonzero(~np.isfinite(values))
            if len(rows):
                problems.append(f"factors[{name!r}] in {_rows(rows, n)}")
        if problems:
            raise InputError(
                f"NaN or Inf values: {'; '.join(problems)}; drop those samples "
                "(FieldDataset.subset) or simulate the data again"
            )

    @property
    def aux(self) -> np.ndarray:
        """Named factors in ``aux_names`` order, shape ``(n, aux_dim)``."""
        cols = [self.factors[k] for k in self.aux_names]
        return np.stack(cols, axis=-1) if cols else np.zeros((len(self), 0), np.float32)

    def subset(self, index: np.ndarray | slice) -> FieldDataset:
        """The samples at ``index`` (same names, units, grid and recipe)."""
        return FieldDataset(
            fields=self.fields[index],
            factors={k: v[index] for k, v in self.factors.items()},
            aux_names=self.aux_names,
            units=dict(self.units),
            ranges=dict(self.ranges),
            grid=self.grid,
            recipe=dict(self.recipe),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the dataset to ``path`` as ``.npz`` (atomically, no pickled objects).

        Names, units, ranges, grid and recipe are stored as one JSON string. The folder
        is created if needed.

        Returns:
            The path written.

        Raises:
            InputError: The data hold NaN or Inf (changed since construction).
        """
        self.check_finite()
        path = Path(path)
        meta = {
            "format_version": _FORMAT_VERSION,
            "factor_names": list(self.factors),
            "aux_names": list(self.aux_names),
            "units": self.units,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "grid": {"shape": list(self.grid.shape), "bbox": [list(p) for p in self.grid.bbox]},
            "recipe": self.recipe,
        }
        arrays = {f"factor__{k}": v for k, v in self.factors.items()}
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            np.savez(fh, fields=self.fields, meta=np.array(json.dumps(meta)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FieldDataset:
        """Read a dataset written by :meth:`save`, checking everything it reads.

        Args:
            path: The ``.npz`` file.

        Returns:
            The dataset.

        Raises:
            InputError: The file is missing or is not an ``.npz`` archive; it lacks an
                array (``meta``, ``fields`` or a ``factor__NAME``), or an array or ``meta``
                entry has the wrong type or shape; or the data hold NaN or Inf. The
                message names the file and the array or entry.
        """
        path = Path(path)
        with _open_archive(path) as data:
            meta = _read_meta(path, data)
            names = ["fields", *(f"factor__{k}" for k in meta["factor_names"])]
            missing = [a for a in names if a not in data.files]
            if missing:
                raise InputError(
                    f"{path} lacks the arrays {missing}; the file is damaged or was "
                    "edited: simulate the data again with `invprior simulate`"
                )
            fields = _read_array(path, data, "fields")
            factors = {k: _read_array(path, data, f"factor__{k}") for k in meta["factor_names"]}
        try:
            return cls(
                fields=fields,
                factors=factors,
                aux_names=tuple(meta["aux_names"]),
                units=meta["units"],
                ranges={k: tuple(v) for k, v in meta["ranges"].items()},
                grid=meta["grid"],
                recipe=meta["recipe"],
            )
        except InputError as err:
            raise InputError(f"{path}: {err}") from err


def _is_real_array(value: object, shape: tuple[int, ...] | None = None) -> bool:
    """Whether ``value`` is a numpy array of ints or floats (of ``shape`` if given)."""
    return (
        isinstance(value, np.ndarray)
        and value.dtype.kind in "iuf"
        and (shape is None or value.shape == shape)
    )


def _describe(value: object) -> str:
    """``ndarray float32 (3, 4)`` or the type name, for messages."""
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype} {value.shape}"
    return type(value).__name__


def _rows(rows: np.ndarray, n: int) -> str:
    """``2 of 64 samples (rows [3, 17])``, at most 5 rows listed."""
    shown = ", ".join(str(int(r)) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    return f"{len(rows)} of {n} samples (rows [{shown}])"


@contextmanager
def _open_archive(path: Path) -> Iterator[np.lib.npyio.NpzFile]:
    """The ``.npz`` archive at ``path``, open for reading, or InputError naming the file."""
    try:
        fh = open(path, "rb")  # closed by the with block below
    except FileNotFoundError as err:
        raise InputError(
            f"{path}: no such file; write a data set with `invprior simulate`"
        ) from err
    except IsADirectoryError as err:
        raise InputError(f"{path} is a folder, not a data set (.npz file)") from err
    except OSError as err:
        raise InputError(f"{path} cannot be read ({err.strerror or err})") from err
    with fh:
        try:
            data = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise InputError(
                f"{path} is not an .npz archive (a data set written by `invprior simulate` "
                f"or FieldDataset.save); numpy cannot read this file of {_size(path)} as one"
            ) from err
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(
                f"{path} holds a single array (.npy format), not an .npz archive of a data "
                "set; write data sets with `invprior simulate` or FieldDataset.save"
            )
        with data:
            yield data


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size} bytes"
    except OSError:
        return "unknown size"


def _read_array(path: Path, data: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    """The array ``name`` of the archive, or InputError naming the file and array."""
    try:
        return data[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(
            f"{path}: array {name!r} cannot be read ({err}); the file is damaged or was not "
            "written by FieldDataset.save; simulate the data again"
        ) from err


_META_KEYS = {
    "factor_names": list,
    "aux_names": list,
    "units": dict,
    "ranges": dict,
    "grid": dict,
    "recipe": dict,
}


def _read_meta(path: Path, data: np.lib.npyio.NpzFile) -> dict:
    """The archive's ``meta`` entry, checked; ``meta["grid"]`` becomes a GridSpec."""
    if "meta" not in data.files:
        raise InputError(
            f"{path} has no 'meta' array (arrays: {sorted(data.files)}), so it is not a data "
            "set written by `invprior simulate` or FieldDataset.save"
        )
    raw = _read_array(path, data, "meta")
    try:
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise ValueError(f"a {raw.dtype} array of shape {raw.shape}, not one string")
        meta = json.loads(str(raw))
        if not isinstance(meta, dict):
            raise ValueError(f"JSON {type(meta).__name__}, not an object")
    except ValueError as err:
        raise InputError(f"{path}: 'meta' must be one JSON object string, got {err}") from err
    if meta.get("format_version") != _FORMAT_VERSION:
        raise InputError(
            f"{path}: dataset format version {meta.get('format_version')!r} is not "
            f"supported (expected {_FORMAT_VERSION}); simulate it again"
        )
    bad = {
        k: type(meta.get(k)).__name__
        for k, kind in _META_KEYS.items()
        if not isinstance(meta.get(k), kind)
    }
    if bad:
        expected = {k: kind.__name__ for k, kind in _META_KEYS.items()}
        raise InputError(f"{path}: meta entries {bad} must be of types {expected}")
    for key in ("factor_names", "aux_names"):
        if not all(isinstance(k, str) for k in meta[key]):
            raise InputError(f"{path}: meta[{key!r}] must be a list of strings, got {meta[key]}")
    if not all(isinstance(v, list) and len(v) == 2 for v in meta["ranges"].values()):
        raise InputError(
            f"{path}: meta['ranges'] must map each factor to [low, high], got {meta['ranges']}"
        )
    meta["grid"] = _read_grid(path, meta["grid"])
    return meta


def _read_grid(path: Path, grid: dict) -> GridSpec:
    """The GridSpec of ``meta["grid"]``, or InputError."""
    shape, bbox = grid.get("shape"), grid.get("bbox")
    try:
        if not (
            isinstance(shape, list)
            and len(shape) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        ):
            raise ValueError("shape is not two integers")
        box = tuple((float(p[0]), float(p[1])) for p in bbox)
        if len(box) != 2:
            raise ValueError("bbox is not two points")
        return GridSpec(shape=tuple(shape), bbox=box)
    except (TypeError, ValueError, IndexError) as err:
        raise InputError(
            f"{path}: meta['grid'] must be {{'shape': [ny, nx], 'bbox': [[xmin, ymin], "
            f"[xmax, ymax]]}}, got {grid} ({err})"
        ) from err


def _coordinates(grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """Node coordinates ``(X, Y)``, each shape ``(ny, nx)`` (convention of ``base``)."""
    (x0, y0), (x1, y1) = grid.bbox
    ny, nx = grid.shape
    return np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))


def physical_ranges(
    table: dict[str, tuple[float, float, str, bool]], grid: GridSpec
) -> dict[str, tuple[float, float]]:
    """Factor ranges in physical units on ``grid``: positions shift with its box, lengths scale.

    Args:
        table: A factor table such as :data:`SOURCE_PARAMETERS`, ``name -> (low, high,
            unit, named)`` with positions and lengths as fractions of the box.
        grid: The grid whose bounding box the ranges follow.

    Returns:
        ``name -> (low, high)``.
    """
    (xmin, ymin), (xmax, ymax) = grid.bbox
    lx, ly = xmax - xmin, ymax - ymin
    out = {}
    for name, (lo, hi, unit, _) in table.items():
        if name in ("x0", "x2", "cx"):
            lo, hi = xmin + lo * lx, xmin + hi * lx
        elif name in ("y0", "y2", "cy"):
            lo, hi = ymin + lo * ly, ymin + hi * ly
        elif unit == "m":
            lo, hi = lo * np.sqrt(lx * ly), hi * np.sqrt(lx * ly)
        out[name] = (float(lo), float(hi))
    return out


def _draw_uniform(
    rng: np.random.Generator, ranges: dict[str, tuple[float, float]], n: int
) -> dict[str, np.ndarray]:
    return {k: rng.uniform(lo, hi, size=n) for k, (lo, hi) in ranges.items()}


def source_fields(factors: dict, grid: GridSpec) -> np.ndarray:
    """The source model of the module docstring at given factors, on the grid.

    Args:
        factors: One array of shape ``(n,)`` per factor of :data:`SOURCE_PARAMETERS`, in
            physical units; all numpy arrays, or all torch tensors (then the fields are a
            differentiable tensor of their dtype).
        grid: The grid.

    Returns:
        Fields, shape ``(n, ny, nx)``.
    """
    X, Y = _coordinates(grid)
    xp = np
    if not isinstance(factors["x0"], np.ndarray):
        xp = torch
        X, Y = (torch.as_tensor(c).to(factors["x0"]) for c in (X, Y))
    (xmin, ymin), (xmax, ymax) = grid.bbox
    col = {k: v[:, None, None] for k, v in factors.items()}
    dx, dy = X - col["x0"], Y - col["y0"]
    c, s = xp.cos(col["orientation"]), xp.sin(col["orientation"])
    along, across = c * dx + s * dy, -s * dx + c * dy
    rho = xp.exp(col["log_anisotropy"])
    w2 = col["width"] ** 2
    main = xp.exp(-0.5 * (along**2 / (w2 * rho) + across**2 * rho / w2))
    r2 = (X - col["x2"]) ** 2 + (Y - col["y2"]) ** 2
    second = col["secondary_ratio"] * xp.exp(-0.5 * r2 / col["secondary_width"] ** 2)
    xi = (X - xmin) / (xmax - xmin)
    eta = (Y - ymin) / (ymax - ymin)
    modes = (
        xp.cos(np.pi * xi),
        xp.cos(np.pi * eta),
        xp.cos(np.pi * xi) * xp.cos(np.pi * eta),
        xp.sin(2 * np.pi * xi) * xp.sin(np.pi * eta),
    )
    modulation = 1.0 + sum(col[f"modulation_{k}"] * phi for k, phi in enumerate(modes))
    return col["amplitude"] * (main + second) * modulation


def _kl_modes(grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    r"""Leading Karhunen-Loeve modes of a squared-exponential field on the grid.

    The kernel :math:`k(\mathbf{x}, \mathbf{x}') = \sigma^2 \exp(-|\mathbf{x} -
    \mathbf{x}'|^2 / (2 \ell^2))` is separable on a tensor grid, so its eigenpairs are
    products of the 1-D ones. Modes are orthonormal in the discrete :math:`\ell^2` sense
    scaled so that :math:`\sum_k \lambda_k \psi_k(\mathbf{x})^2` is the pointwise variance.

    Returns:
        Standard deviations :math:`\sqrt{\lambda_k}`, shape ``(K,)``, and modes
        :math:`\psi_k`, shape ``(K, ny, nx)``.
    """
    (xmin, ymin), (xmax, ymax) = grid.bbox
    ny, nx = grid.shape
    ell = _KL_LENGTH * np.sqrt((xmax - xmin) * (ymax - ymin))
    pairs = []
    for lo, hi, n in ((xmin, xmax, nx), (ymin, ymax, ny)):
        t = np.linspace(lo, hi, n)
        lam, vec = np.linalg.eigh(np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / ell**2))
        pairs.append((lam[::-1], _fix_signs(vec[:, ::-1])))
    (lx, vx), (ly, vy) = pairs
    lam2 = np.outer(ly, lx)
    # a stable sort: on a square grid the modes (i, j) and (j, i) tie exactly, and the
    # order of ties of the default sort depends on the CPU's vector instructions
    order = np.argsort(lam2, axis=None, kind="stable")[::-1][:_KL_MODES]
    iy, ix = np.unravel_index(order, lam2.shape)
    modes = vy[:, iy].T[:, :, None] * vx[:, ix].T[:, None, :]
    modes *= np.sqrt(nx * ny)
    lam = lam2[iy, ix] / (nx * ny)
    return _KL_STD * np.sqrt(lam / lam.sum()), modes


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Eigenvectors (columns) signed so that their first clearly nonzero entry is positive.

    The sign LAPACK returns is arbitrary and depends on its rounding (the CPU, the BLAS
    build). Tying it to the largest entry is no cure: a symmetric or antisymmetric vector
    has two entries of equal magnitude, and which one rounds larger flips the sign of an
    antisymmetric one. The first entry above a tenth of the largest is unambiguous.
    """
    magnitude = np.abs(vectors)
    first = np.argmax(magnitude > 0.1 * magnitude.max(axis=0), axis=0)
    return vectors * np.sign(vectors[first, np.arange(vectors.shape[1])])


def _conductivity_fields(
    f: dict[str, np.ndarray], grid: GridSpec, kl: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Evaluate the log-conductivity model; returns shape ``(n, ny, nx)``."""
    X, Y = _coordinates(grid)
    (xmin, ymin), (xmax, ymax) = grid.bbox
    col = {k: v[:, None, None] for k, v in f.items()}
    dist = np.hypot(X - col["cx"], Y - col["cy"])
    edge = _EDGE_WIDTH * np.sqrt((xmax - xmin) * (ymax - ymin))
    inclusion = col["contrast"] / (1.0 + np.exp(-(col["radius"] - dist) / edge))
    std, modes = kl
    xi = np.stack([f[f"kl_{k}"] for k in range(len(std))], axis=1)
    return inclusion + np.einsum("nk,kij->nij", xi * std, modes)


def _check(n: int, seed: int, grid: GridSpec) -> None:
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(grid, GridSpec):
        raise TypeError(f"grid must be a GridSpec, got {type(grid).__name__}")


def _in_chunks(n: int, build) -> np.ndarray:  # noqa: ANN001
    out = [build(slice(i, min(i + _CHUNK, n))) for i in range(0, n, _CHUNK)]
    return np.concatenate(out).astype(np.float32)


def simulate_sources(n: int, seed: int, grid: GridSpec = GridSpec()) -> FieldDataset:  # noqa: B008
    """Draw ``n`` source fields with a dominant anisotropic Gaussian source.

    Args:
        n: Number of samples.
        seed: Seed of the random stream; the same seed gives identical data.
        grid: Grid of the fields.

    Returns:
        The dataset, named factors ``("x0", "y0", "amplitude", "width")``.
    """
    _check(n, seed, grid)
    ranges = physical_ranges(SOURCE_PARAMETERS, grid)
    factors = _draw_uniform(np.random.default_rng(seed), ranges, n)
    fields = _in_chunks(n, lambda s: source_fields({k: v[s] for k, v in factors.items()}, grid))
    names = tuple(k for k, v in SOURCE_PARAMETERS.items() if v[3])
    return FieldDataset(
        fields=fields,
        factors=factors,
        aux_names=names,
        units={k: v[2] for k, v in SOURCE_PARAMETERS.items()},
        ranges=ranges,
        grid=grid,
        recipe={"simulator": "source", "n": int(n), "seed": int(seed), "parameters": ranges},
    )


def simulate_misspecified_sources(
    n: int,
    seed: int,
    grid: GridSpec = GridSpec(),  # noqa: B008
    kind: str = "two_sources",
) -> FieldDataset:
    r"""Draw ``n`` source fields outside the training distribution of :func:`simulate_sources`.

    The same source model and factor ranges, with one part changed:

    - ``"two_sources"``: the secondary source is as strong and as wide as the primary,
      :math:`s = 1`, :math:`w_2 = w`, and its centre :math:`(x_2, y_2)` is drawn from the
      primary's position range, so the field has two equally strong sources (they may
      overlap); the training data have :math:`s \le 0.25`;
    - ``"sharp"``: the width :math:`w` is drawn from :data:`SHARP_WIDTH` (fractions of the
      box side), entirely below the training range of ``width``.

    Args:
        n: Number of samples.
        seed: Seed of the random stream; the same seed gives identical data.
        grid: Grid of the fields.
        kind: ``"two_sources"`` or ``"sharp"``.

    Returns:
        The dataset, with the factors actually used (named ``x0, y0, amplitude, width``
        describe the primary source) and ``recipe["simulator"] = "source_" + kind``.

    Raises:
        ValueError: On an unknown ``kind``.
    """
    _check(n, seed, grid)
    if kind not in ("two_sources", "sharp"):
        raise ValueError(f"kind must be 'two_sources' or 'sharp', got {kind!r}")
    ranges = physical_ranges(SOURCE_PARAMETERS, grid)
    if kind == "two_sources":
        ranges.update(x2=ranges["x0"], y2=ranges["y0"], secondary_ratio=(1.0, 1.0))
    else:
        (xmin, ymin), (xmax, ymax) = grid.bbox
        side = np.sqrt((xmax - xmin) * (ymax - ymin))
        ranges["width"] = (SHARP_WIDTH[0] * side, SHARP_WIDTH[1] * side)
    factors = _draw_uniform(np.random.default_rng(seed), ranges, n)
    if kind == "two_sources":
        factors["secondary_width"] = factors["width"].copy()
        ranges["secondary_width"] = ranges["width"]
    fields = _in_chunks(n, lambda s: source_fields({k: v[s] for k, v in factors.items()}, grid))
    recipe = {"simulator": f"source_{kind}", "n": int(n), "seed": int(seed), "parameters": ranges}
    return FieldDataset(
        fields=fields,
        factors=factors,
        aux_names=tuple(k for k, v in SOURCE_PARAMETERS.items() if v[3]),
        units={k: v[2] for k, v in SOURCE_PARAMETERS.items()},
        ranges=ranges,
        grid=grid,
        recipe=recipe,
    )


def simulate_conductivity(n: int, seed: int, grid: GridSpec = GridSpec()) -> FieldDataset:  # noqa: B008
    """Draw ``n`` log-conductivity fields: a smooth inclusion over a random background.

    Args:
        n: Number of samples.
        seed: Seed of the random stream; the same seed gives identical data.
        grid: Grid of the fields.

    Returns:
        The dataset, named factors ``("cx", "cy", "radius", "contrast")`` and unnamed
        Karhunen-Loeve coefficients ``kl_0 ... kl_7`` (standard normal).
    """
    _check(n, seed, grid)
    rng = np.random.default_rng(seed)
    ranges = physical_ranges(CONDUCTIVITY_PARAMETERS, grid)
    factors = _draw_uniform(rng, ranges, n)
    kl = _kl_modes(grid)
    coeff = rng.standard_normal((n, _KL_MODES))
    for k in range(_KL_MODES):
        factors[f"kl_{k}"] = coeff[:, k]
    fields = _in_chunks(
        n, lambda s: _conductivity_fields({k: v[s] for k, v in factors.items()}, grid, kl)
    )
    units = {k: v[2] for k, v in CONDUCTIVITY_PARAMETERS.items()}
    units.update({f"kl_{k}": "1" for k in range(_KL_MODES)})
    all_ranges = dict(ranges)
    all_ranges.update({f"kl_{k}": (-np.inf, np.inf) for k in range(_KL_MODES)})
    parameters = {
        **ranges,
        "kl_modes": _KL_MODES,
        "kl_std": _KL_STD,
        "kl_length_scale": _KL_LENGTH,
        "edge_width": _EDGE_WIDTH,
    }
    return FieldDataset(
        fields=fields,
        factors=factors,
        aux_names=tuple(CONDUCTIVITY_PARAMETERS),
        units=units,
        ranges=all_ranges,
        grid=grid,
        recipe={
            "simulator": "conductivity",
            "n": int(n),
            "seed": int(seed),
            "parameters": parameters,
        },
    )


_SIMULATORS = {"source": simulate_sources, "conductivity": simulate_conductivity}


def simulate(name: str, n: int, seed: int, grid: GridSpec = GridSpec()) -> FieldDataset:  # noqa: B008
    """Run the simulator called ``name`` (``"source"`` or ``"conductivity"``)."""
    if name not in _SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}; choose one of {sorted(_SIMULATORS)}")
    return _SIMULATORS[name](n, seed, grid)
