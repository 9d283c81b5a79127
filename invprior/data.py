# SPDX-License-Identifier: MIT
"""Measured observations from a file: sensor positions, values and, optionally, noise std.

Two layouts, with the same column names:

- **CSV** (``.csv``): a header line naming the columns, then one line per observation::

      x,y,value,std
      0.25,0.25,0.0132,0.001
      0.50,0.25,0.0217,0.001

  ``x`` and ``y`` are the sensor's coordinates (in the mesh's units), ``value`` the
  measurement; ``std`` (optional) its noise standard deviation. Blank lines and lines
  starting with ``#`` are skipped. Errors name the line of the file (the header is
  line 1).
- **NumPy** (``.npz``): one-dimensional arrays ``x``, ``y``, ``value`` and optionally
  ``std``, all of the same length (written by ``numpy.savez``); errors name the entry
  (0-based).

Any other column or array is refused (a misspelt ``sdt`` would otherwise be dropped
silently), as are missing or non-finite values, a ``std`` that is not positive, and two
observations at the same sensor position. Whether a sensor lies inside the mesh is
checked where the mesh is known (:func:`invprior.study.setup.check_study`).
"""

from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .validation import InputError

__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "Observations", "read_observations"]

#: Columns every observation file has.
COLUMNS = ("x", "y", "value")
#: Columns an observation file may have.
OPTIONAL_COLUMNS = ("std",)


@dataclass(frozen=True)
class Observations:
    """Observations read from a file (:func:`read_observations`).

    Attributes:
        path: The file.
        points: Sensor positions, shape ``(n_obs, 2)``.
        values: Measured values, shape ``(n_obs,)``.
        std: Noise standard deviation per observation, shape ``(n_obs,)``, or None when
            the file has no ``std`` column.
        rows: How an error names observation ``i``: ``rows[i]`` is ``"line 7"`` (CSV) or
            ``"entry 5"`` (``.npz``).
    """

    path: Path
    points: np.ndarray
    values: np.ndarray
    std: np.ndarray | None
    rows: tuple[str, ...]

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return len(self.values)

    def where(self, indices: list[int] | np.ndarray) -> str:
        """``"FILE: line 3, line 9"``: the rows of observations ``indices``, for messages."""
        return f"{self.path}: " + ", ".join(self.rows[int(i)] for i in indices)


def _check_columns(names: list[str], path: Path, what: str) -> None:
    """InputError unless ``names`` holds every required column and no unknown one."""
    if missing := [c for c in COLUMNS if c not in names]:
        raise InputError(
            f"{path}: the {what} lacks {missing}; an observation file has {list(COLUMNS)} "
            f"and optionally {list(OPTIONAL_COLUMNS)}, got {names}"
        )
    if unknown := sorted(set(names) - {*COLUMNS, *OPTIONAL_COLUMNS}):
        raise InputError(
            f"{path}: unknown {what} entries {unknown}; an observation file has "
            f"{list(COLUMNS)} and optionally {list(OPTIONAL_COLUMNS)}"
        )
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{path}: the {what} names {twice} more than once")


def _read_csv(path: Path) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(enumerate(csv.reader(f), start=1))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text, so not a CSV file: {err}") from err
    lines = [(n, row) for n, row in lines if row and not row[0].lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{path}: empty; expected a header line {','.join(COLUMNS)}[,std]")
    _, header = lines[0]
    header = [h.strip() for h in header]
    _check_columns(header, path, "header")
    columns: dict[str, list[float]] = {name: [] for name in header}
    rows = []
    for number, row in lines[1:]:
        if len(row) != len(header):
            raise InputError(
                f"{path}: line {number} has {len(row)} fields, the header {len(header)}"
            )
        for name, text in zip(header, row, strict=True):
            try:
                value = float(text) if text.strip() else math.nan  # an empty field: missing
            except ValueError as err:
                raise InputError(
                    f"{path}: line {number}: {name} = {text.strip()!r} is not a number"
                ) from err
            columns[name].append(value)
        rows.append(f"line {number}")
    return {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}, tuple(rows)


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            _check_columns(list(archive.files), path, "arrays")
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{path}: not a readable .npz archive: {err}") from err
    columns = {}
    for name, array in arrays.items():
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
            raise InputError(
                f"{path}: array {name!r} must be one-dimensional numbers, got shape "
                f"{array.shape} of {array.dtype}"
            )
        columns[name] = array.astype(np.float64)
    lengths = {name: len(a) for name, a in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{path}: the arrays differ in length: {lengths}; one entry per sensor")
    n = lengths["value"]
    return columns, tuple(f"entry {i}" for i in range(n))


def read_observations(path: str | Path) -> Observations:
    """Read and check an observation file (CSV or ``.npz``; see the module docstring).

    Args:
        path: The file; its suffix (``.csv`` or ``.npz``) selects the layout.

    Returns:
        The :class:`Observations`.

    Raises:
        InputError: The file is missing or unreadable, has another suffix, lacks a
            column, has an unknown one, holds no observation, a value that is not a
            finite number, a ``std`` that is not positive, or two observations at one
            position; the message names the file and the lines (or entries).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise InputError(
            f"{path}: observation files are .csv or .npz (see invprior.data), got "
            f"{path.suffix or 'no suffix'!r}"
        )
    try:
        columns, rows = _read_csv(path) if suffix == ".csv" else _read_npz(path)
    except FileNotFoundError as err:
        raise InputError(f"{path}: observation file not found; check the path") from err
    except OSError as err:
        raise InputError(f"{path}: cannot read the observation file: {err.strerror}") from err
    if not rows:
        raise InputError(f"{path}: holds no observation")
    for name, column in columns.items():
        if bad := np.flatnonzero(~np.isfinite(column)).tolist():
            listed = ", ".join(rows[i] for i in bad[:10])
            raise InputError(
                f"{path}: {name} is missing, NaN or infinite at {listed}; remove those "
                "observations or give their values"
            )
    std = columns.get("std")
    if std is not None and (bad := np.flatnonzero(std <= 0).tolist()):
        listed = ", ".join(f"{rows[i]} ({std[i]:g})" for i in bad[:10])
        raise InputError(f"{path}: std must be > 0, got {listed}")
    points = np.stack([columns["x"], columns["y"]], axis=1)
    _, first, counts = np.unique(points, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        at = points[first[counts > 1][0]]
        same = np.flatnonzero((points == at).all(axis=1))
        raise InputError(
            f"{path}: duplicate sensors: {', '.join(rows[i] for i in same)} are all at "
            f"({at[0]:.6g}, {at[1]:.6g}); average them into one observation (with its "
            "std) or remove the repeats"
        )
    return Observations(path, points, columns["value"], std, rows)
