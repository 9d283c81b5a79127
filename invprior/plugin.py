# SPDX-License-Identifier: MIT
"""Functions a user names as ``"path/to/file.py:name"``: a residual form, a simulator.

One loader for every such plugin (``[pde] form`` of a study, ``invprior simulate
--simulator``): the file is run as a module of its own, not added to ``sys.modules`` and
with no bytecode written beside it, so it may import anything, and every error it raises
while running is reported as bad input naming the file.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path

from .validation import InputError

__all__ = ["load_function"]


def load_function(
    spec: str, where: str, relative_to: str = "the working directory"
) -> tuple[Callable, dict]:
    """The function ``name`` of the file ``path`` named by ``spec = "path.py:name"``.

    Args:
        spec: ``"path/to/file.py:name"``; a relative path is relative to the working
            directory (callers resolve it first where it is relative to something else).
        where: How messages name the setting, for example ``"[pde] form = 'f.py:r'"``.
        relative_to: What a relative path is relative to, for the message of a missing
            file.

    Returns:
        ``(function, namespace)``: the callable and the module namespace it was defined
        in (so a plugin's module-level metadata can be read).

    Raises:
        InputError: ``spec`` has no ``:name``, the file is missing or fails to run, or it
            has no callable ``name``.
    """
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise InputError(f"{where}: expected 'path/to/file.py:function', got {spec!r}")
    if not Path(path).is_file():
        raise InputError(f"{where}: no file {path}; check the path (relative to {relative_to})")
    module = types.ModuleType(f"invprior_user_{Path(path).stem}")
    module.__file__ = path
    try:  # compiled here rather than imported: no bytecode is written beside the file
        exec(compile(Path(path).read_text(encoding="utf-8"), path, "exec"), module.__dict__)
    except Exception as err:  # the user's file: any error it raises is bad input
        raise InputError(f"{where}: running {path} failed: {type(err).__name__}: {err}") from err
    function = module.__dict__.get(name)
    if not callable(function):
        found = sorted(k for k, v in module.__dict__.items() if callable(v) and k[0] != "_")
        raise InputError(
            f"{where}: {path} has no function {name!r}"
            + (f"; it defines {found}" if found else "")
        )
    return function, module.__dict__
