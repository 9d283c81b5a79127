# SPDX-License-Identifier: MIT
"""Checks of user input: the bad-input error and strict types for configuration dataclasses.

:class:`InputError` marks a problem with what the user gave (a configuration value, a
file, a folder), as opposed to a failure of the code: the ``invprior`` command prints
``invprior <command>: error: <message>`` and exits with status 2 for it, and with status
1 (and a traceback) for anything else. :func:`check_field_types` gives every configuration
dataclass the same strict reading of TOML values: a string is not a bool, ``8.5`` is not
an int, and ``inf`` or ``nan`` is not a setting. Only the standard library is used, so
:mod:`invprior.pde` and :mod:`invprior.priors` may import it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

__all__ = ["InputError", "check_field_types", "check_value", "config_from_table"]


class InputError(ValueError):
    """Bad input: a configuration value, a file or a folder the user gave.

    The message says what was expected, what was received and where (the TOML table and
    key, or the file and field), and how to fix it.
    """


def _type_name(kind: object) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _check_value(value: object, kind: object, where: str) -> object:
    """``value`` converted to ``kind`` (an int for a float field), or InputError."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        given = [o for o in options if o is not type(None)]
        if len(given) == 1:  # an optional setting: the one type's own message
            return _check_value(value, given[0], where)
        for option in given:
            try:
                return _check_value(value, option, where)
            except InputError:
                pass
        names = " or ".join(_type_name(o) for o in given)
        raise InputError(f"{where} must be {names}, got {value!r}")
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise InputError(f"{where} must be a list, got {value!r}")
        return tuple(_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is typing.Any or kind is object:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false (no quotes), got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{where} must be finite, got {value!r}")
        return float(value)
    if isinstance(kind, type) and not isinstance(value, kind):
        raise InputError(f"{where} must be {_type_name(kind)}, got {value!r}")
    return value


def check_value(value: object, kind: object, where: str) -> object:
    """``value`` read as the annotation ``kind``, as :func:`check_field_types` reads a field.

    For values inside a field, such as the entries of a table-valued one; ``where``
    names the value in messages (``"[pde.robin] 2"``).

    Raises:
        InputError: ``value`` is not of ``kind``, or is a non-finite number.
    """
    return _check_value(value, kind, where)


def check_field_types(config: object, table: str | None = None) -> None:
    """Check every field of the dataclass ``config`` against its annotation, in place.

    Call it first in ``__post_init__``. A bool field takes only ``True``/``False``, an
    int field only an int (not a bool, not ``8.5``), a float field an int or a finite
    float (stored as float), a ``tuple[int, ...]`` field a list or tuple of ints (stored
    as a tuple), an ``X | None`` field None or an ``X``; other annotations are checked
    with ``isinstance`` when they are classes.

    Args:
        config: A (possibly frozen) dataclass instance.
        table: Name to put in messages, as ``[table] key``; None names the field alone.

    Raises:
        InputError: A field holds a value of the wrong type, or a non-finite number.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Mesh:
        ...     n: int = 32
        ...     def __post_init__(self):
        ...         check_field_types(self, "mesh")
        >>> Mesh(n=8.5)
        Traceback (most recent call last):
        ...
        invprior.validation.InputError: [mesh] n must be an integer, got 8.5
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        where = f"[{table}] {f.name}" if table else f.name
        value = _check_value(getattr(config, f.name), hints[f.name], where)
        object.__setattr__(config, f.name, value)


def config_from_table(kind: type, values: dict, table: str) -> object:
    """Build the dataclass ``kind`` from one TOML table, naming the table in every error.

    Args:
        kind: A configuration dataclass whose ``__post_init__`` checks its fields.
        values: The table's keys and values.
        table: The table's name, for messages.

    Returns:
        ``kind(**values)``.

    Raises:
        InputError: An unknown key, or a value the dataclass rejects (its message is
            prefixed with ``[table]`` unless it already names the table).
    """
    known = {f.name for f in dataclasses.fields(kind) if f.init}
    if bad := sorted(set(values) - known):
        raise InputError(f"unknown keys {bad} in [{table}]; known: {sorted(known)}")
    try:
        return kind(**values)
    except (TypeError, ValueError) as err:
        message = str(err)
        if not message.startswith(f"[{table}]"):
            message = f"[{table}] {message}"
        raise InputError(message) from err
