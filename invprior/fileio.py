# SPDX-License-Identifier: MIT
"""Atomic file writes: a reader never sees a half-written result.

Every file the package writes (checkpoints, data sets, DataTrees, figures, reports) goes
through :func:`atomic_path`: the content is written to a temporary file in the target's
folder and renamed onto the target only once complete, so an interrupted run leaves the
previous file in place. Only the standard library is used, so both :mod:`invprior.pde`
and :mod:`invprior.priors` may import it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "save_figure", "write_json", "write_text"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path that replaces ``path`` when the ``with`` block succeeds.

    The parent folder is created if needed. On an exception the temporary file is removed
    and ``path`` is untouched. The result gets the usual permissions (``0o666 & ~umask``).

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to (same folder, same suffix).

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_figure(fig: object, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a matplotlib figure atomically; the format follows the suffix of ``path``.

    Args:
        fig: A :class:`matplotlib.figure.Figure`.
        path: Target file, for example ``fields.png``.
        dpi: Resolution of raster formats.

    Returns:
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_json(path: str | os.PathLike, obj: object, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically; returns ``path``.

    NumPy scalars and other numbers JSON does not know are written as floats.
    """
    return write_text(path, json.dumps(obj, indent=indent, default=float))
