# SPDX-License-Identifier: MIT
"""Training fields of a user's own: a simulator plugin, and the NetCDF file it writes.

**Simulator plugin** (``invprior simulate --simulator path/to/sim.py:simulate``). The file
defines, at module level, the grid and the named factors, and a function that draws
fields::

    GRID = {"shape": (32, 64), "bbox": ((0.0, 0.0), (2.0, 1.0))}  # (ny, nx); corners
    FACTORS = {  # the named factors (the prior's physical sites), in order
        "x0": {"units": "m", "range": (0.2, 1.0)},
        "amplitude": {"units": "kg/s", "range": (0.5, 2.0)},
    }

    def simulate(num, rng):
        '''num: fields to draw; rng: a numpy.random.Generator (the only randomness).'''
        ...
        return fields, factors  # fields (num, ny, nx); factors {name: (num,)}

Row ``j`` of a field holds the nodes at ``y = ymin + j (ymax - ymin) / (ny - 1)``,
column ``i`` those at ``x = xmin + i (xmax - xmin) / (nx - 1)`` (nodes on the box's
boundary included). ``factors`` holds every name of ``FACTORS``, each value inside its
``range`` (the prior's uniform range); further entries are unnamed factors (recorded
with the data, tied to no site). The same seed gives the same data.

**NetCDF layout** (``.nc``, what ``invprior simulate --simulator`` writes and
``invprior train --data`` reads beside our ``.npz``):

- dimensions ``sample``, ``y``, ``x``;
- ``field(sample, y, x)``: the fields;
- one variable ``NAME(sample)`` per factor, with attributes ``units`` (text) and
  ``range`` (two numbers, low and high); both are required for named factors;
- coordinate variables ``x(x)`` and ``y(y)`` (optional; when present they must be the
  grid's nodes);
- global attributes ``bbox = [xmin, ymin, xmax, ymax]``, ``aux_names`` (the named
  factors in order, separated by spaces; empty for none) and optionally ``recipe`` (JSON
  text: how the data were made).

Any other variable is refused, as are missing or non-finite values (NetCDF fill values
count as missing).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import netCDF4
import numpy as np

from .fileio import atomic_path
from .plugin import load_function
from .priors.base import GridSpec
from .priors.simulate import FieldDataset
from .validation import InputError

__all__ = ["FIELD", "read_fields", "run_simulator", "write_fields"]

#: Name of the field variable of the NetCDF layout.
FIELD = "field"
_DIMS = ("sample", "y", "x")


def _plugin_grid(namespace: dict, where: str) -> GridSpec:
    """The module-level ``GRID`` of a simulator plugin, checked."""
    grid = namespace.get("GRID")
    expected = "GRID = {'shape': (ny, nx), 'bbox': ((xmin, ymin), (xmax, ymax))}"
    try:
        shape = tuple(int(s) for s in grid["shape"])
        bbox = tuple((float(p[0]), float(p[1])) for p in grid["bbox"])
        if len(shape) != 2 or len(bbox) != 2 or not all(map(math.isfinite, sum(bbox, ()))):
            raise ValueError("two sizes and two finite corners")
        return GridSpec(shape=shape, bbox=bbox)
    except (TypeError, KeyError, ValueError, IndexError) as err:
        raise InputError(
            f"{where}: the file must define {expected} at module level, got GRID = {grid!r}"
        ) from err


def _plugin_factors(namespace: dict, where: str) -> dict[str, tuple[str, tuple[float, float]]]:
    """The module-level ``FACTORS`` of a simulator plugin: name -> (units, (low, high))."""
    factors = namespace.get("FACTORS")
    expected = "FACTORS = {name: {'units': 'm', 'range': (low, high)}, ...}"
    if not isinstance(factors, dict):
        raise InputError(f"{where}: the file must define {expected} at module level")
    out = {}
    for name, entry in factors.items():
        try:
            units, (low, high) = entry["units"], entry["range"]
            low, high = float(low), float(high)
            if not (isinstance(name, str) and name.isidentifier() and isinstance(units, str)):
                raise ValueError("a name, units text")
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError("finite low < high")
        except (TypeError, KeyError, ValueError) as err:
            raise InputError(
                f"{where}: FACTORS[{name!r}] = {entry!r}; expected {expected} with a "
                f"Python identifier as name and finite low < high ({err})"
            ) from err
        out[name] = (units, (low, high))
    return out


def _check_draw(result: object, n: int, grid: GridSpec, named: dict, where: str) -> tuple:
    """``(fields, factors)`` of a simulator call, checked against the declared metadata."""
    ny, nx = grid.shape
    expected = f"(fields of shape ({n}, {ny}, {nx}), {{name: values of shape ({n},)}})"
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise InputError(f"{where}: simulate must return {expected}, got {type(result).__name__}")
    fields, factors = np.asarray(result[0]), result[1]
    if fields.shape != (n, ny, nx) or fields.dtype.kind not in "iuf":
        raise InputError(
            f"{where}: simulate returned fields of shape {fields.shape} ({fields.dtype}); "
            f"expected real numbers of shape ({n}, {ny}, {nx}) (num, ny, nx of GRID)"
        )
    if missing := [k for k in named if k not in factors]:
        raise InputError(
            f"{where}: simulate returned no values for the FACTORS {missing}; got "
            f"{sorted(map(str, factors))}"
        )
    arrays = {str(k): np.asarray(v) for k, v in factors.items()}
    for name, values in arrays.items():
        if values.shape != (n,) or values.dtype.kind not in "iuf":
            raise InputError(
                f"{where}: factor {name!r} has shape {values.shape} ({values.dtype}); "
                f"expected real numbers of shape ({n},), one per field"
            )
    if not np.isfinite(fields).all() or not all(np.isfinite(v).all() for v in arrays.values()):
        bad = [FIELD] * (not np.isfinite(fields).all())
        bad += [k for k, v in arrays.items() if not np.isfinite(v).all()]
        raise InputError(f"{where}: simulate returned NaN or Inf in {bad}")
    for name, (_, (low, high)) in named.items():
        values = arrays[name]
        if values.min() < low or values.max() > high:
            raise InputError(
                f"{where}: factor {name!r} has values in [{values.min():g}, "
                f"{values.max():g}], outside its FACTORS range ({low:g}, {high:g}); widen "
                "the range or draw inside it"
            )
    return fields.astype(np.float32), arrays


def run_simulator(spec: str, n: int, seed: int) -> FieldDataset:
    """Draw ``n`` fields with the simulator plugin ``spec`` (see the module docstring).

    Args:
        spec: ``"path/to/sim.py:function"``, relative to the working directory.
        n: Number of fields.
        seed: Seed of the ``numpy.random.Generator`` passed to the function.

    Returns:
        The fields, named factors in ``FACTORS`` order with their units and ranges, the
        plugin's grid and the recipe ``{"plugin": spec, "n", "seed", "parameters"}``.

    Raises:
        InputError: The file or function is missing or fails, ``GRID`` or ``FACTORS`` is
            missing or malformed, or the function's result has the wrong type, shape or
            non-finite values, or named values outside their range; the message names the
            file and what was expected.
    """
    where = f"--simulator {spec}"
    function, namespace = load_function(spec, where)
    grid, named = _plugin_grid(namespace, where), _plugin_factors(namespace, where)
    try:
        result = function(n, np.random.default_rng(seed))
    except Exception as err:  # the user's function: any error it raises is bad input
        raise InputError(f"{where}: simulate raised {type(err).__name__}: {err}") from err
    fields, factors = _check_draw(result, n, grid, named, where)
    ranges = {k: bounds for k, (_, bounds) in named.items()}
    recipe = {
        "plugin": spec,
        "n": n,
        "seed": seed,
        "parameters": {k: list(v) for k, v in ranges.items()},
    }
    return FieldDataset(
        fields=fields,
        factors=factors,
        aux_names=tuple(named),
        units={k: units for k, (units, _) in named.items()},
        ranges=ranges,
        grid=grid,
        recipe=recipe,
    )


def write_fields(data: FieldDataset, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` in the NetCDF layout of the module docstring (atomically).

    Returns:
        The path written.
    """
    path = Path(path)
    ny, nx = data.grid.shape
    (x0, y0), (x1, y1) = data.grid.bbox
    with atomic_path(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        for dim, size in zip(_DIMS, (len(data), ny, nx), strict=True):
            nc.createDimension(dim, size)
        for dim, low, high, size in (("x", x0, x1, nx), ("y", y0, y1, ny)):
            nc.createVariable(dim, "f8", (dim,))[:] = np.linspace(low, high, size)
        nc.createVariable(FIELD, data.fields.dtype, _DIMS, zlib=True)[:] = data.fields
        for name, values in data.factors.items():
            var = nc.createVariable(name, values.dtype, ("sample",))
            var[:] = values
            if name in data.units:
                var.units = data.units[name]
            if name in data.ranges:
                var.range = np.asarray(data.ranges[name], dtype=np.float64)
        nc.bbox = np.array([x0, y0, x1, y1], dtype=np.float64)
        nc.aux_names = " ".join(data.aux_names)
        nc.recipe = json.dumps(data.recipe)
    return path


def _read_factor(path: Path, var: object, named: bool) -> tuple[np.ndarray, str | None, tuple]:
    """A factor variable's values, units and range (None where absent and not required)."""
    attrs = {k: var.getncattr(k) for k in var.ncattrs()}
    units, bounds = attrs.get("units"), attrs.get("range")
    if named and (not isinstance(units, str) or bounds is None):
        raise InputError(
            f"{path}: the named factor {var.name!r} needs the attributes 'units' (text) and "
            f"'range' ([low, high]); it has {sorted(attrs)}"
        )
    if bounds is not None:
        bounds = np.atleast_1d(bounds)
        if bounds.shape != (2,) or bounds.dtype.kind not in "iuf" or not bounds[0] < bounds[1]:
            raise InputError(
                f"{path}: variable {var.name!r} has range {bounds.tolist()}; expected two "
                "numbers, low < high"
            )
        bounds = (float(bounds[0]), float(bounds[1]))
    return np.ma.filled(var[:].astype(np.float64), np.nan), units, bounds


def _read_grid(path: Path, nc: object, ny: int, nx: int) -> GridSpec:
    """The grid of a NetCDF data file: ``bbox`` attribute, checked against ``x``, ``y``."""
    bbox = np.atleast_1d(nc.getncattr("bbox")) if "bbox" in nc.ncattrs() else None
    if bbox is None or bbox.shape != (4,) or not np.isfinite(bbox).all():
        raise InputError(
            f"{path}: the global attribute bbox = [xmin, ymin, xmax, ymax] is missing or not "
            f"four finite numbers (got {None if bbox is None else bbox.tolist()})"
        )
    try:
        grid = GridSpec(shape=(ny, nx), bbox=((bbox[0], bbox[1]), (bbox[2], bbox[3])))
    except ValueError as err:
        raise InputError(f"{path}: {err}") from err
    for dim, low, high, size in (("x", bbox[0], bbox[2], nx), ("y", bbox[1], bbox[3], ny)):
        if dim in nc.variables:
            nodes = np.ma.filled(nc.variables[dim][:].astype(np.float64), np.nan)
            want = np.linspace(low, high, size)
            if nodes.shape != want.shape or not np.allclose(nodes, want, rtol=0, atol=1e-9):
                raise InputError(
                    f"{path}: coordinate {dim!r} is not the {size} evenly spaced nodes from "
                    f"{low:g} to {high:g} given by bbox; fix bbox or the coordinate"
                )
    return grid


def _read_netcdf(path: Path) -> FieldDataset:
    """The dataset of a NetCDF file in the layout of the module docstring."""
    try:
        nc = netCDF4.Dataset(path, "r")
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file; check the path") from err
    except OSError as err:
        raise InputError(f"{path} is not a readable NetCDF file ({err})") from err
    with nc:
        if FIELD not in nc.variables or nc.variables[FIELD].dimensions != _DIMS:
            got = nc.variables[FIELD].dimensions if FIELD in nc.variables else "no such variable"
            raise InputError(
                f"{path}: expected a variable {FIELD!r} with dimensions {_DIMS}, got {got} "
                f"(variables: {sorted(nc.variables)})"
            )
        var = nc.variables[FIELD]
        fields = np.ma.filled(var[:].astype(np.float32), np.nan)
        grid = _read_grid(path, nc, *fields.shape[1:])
        aux = str(nc.getncattr("aux_names")).split() if "aux_names" in nc.ncattrs() else []
        other = [k for k in nc.variables if k not in (FIELD, "x", "y")]
        if bad := [k for k in other if nc.variables[k].dimensions != ("sample",)]:
            dims = {k: nc.variables[k].dimensions for k in bad}
            raise InputError(
                f"{path}: variables {dims} are neither {FIELD!r}, a coordinate nor a factor "
                "(dimension ('sample',)); remove them"
            )
        if missing := [k for k in aux if k not in other]:
            raise InputError(
                f"{path}: aux_names lists {missing}, which have no variable (factors: {other})"
            )
        read = {k: _read_factor(path, nc.variables[k], k in aux) for k in other}
        recipe = _read_recipe(path, nc)
    try:
        return FieldDataset(
            fields=fields,
            factors={k: values for k, (values, _, _) in read.items()},
            aux_names=tuple(aux),
            units={k: units for k, (_, units, _) in read.items() if units is not None},
            ranges={k: bounds for k, (_, _, bounds) in read.items() if bounds is not None},
            grid=grid,
            recipe=recipe,
        )
    except InputError as err:
        raise InputError(f"{path}: {err}") from err


def _read_recipe(path: Path, nc: object) -> dict:
    """The global ``recipe`` attribute as a dict (``{}`` when absent)."""
    if "recipe" not in nc.ncattrs():
        return {}
    try:
        recipe = json.loads(str(nc.getncattr("recipe")))
        if not isinstance(recipe, dict):
            raise ValueError(f"JSON {type(recipe).__name__}, not an object")
    except ValueError as err:
        raise InputError(f"{path}: the attribute recipe must be JSON object text ({err})") from err
    return recipe


def read_fields(path: str | os.PathLike) -> FieldDataset:
    """Training fields from ``path``: the NetCDF layout (``.nc``) or our ``.npz``.

    Raises:
        InputError: Another suffix, or a file that is missing, unreadable or not in its
            layout (a missing variable, wrong dimensions, missing or non-finite values);
            the message names the file and what was expected.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return FieldDataset.load(path)
    if suffix != ".nc":
        raise InputError(
            f"{path}: training data are .nc (NetCDF, see invprior.training_data) or .npz "
            f"(`invprior simulate`), got {path.suffix or 'no suffix'!r}"
        )
    return _read_netcdf(path)
