# SPDX-License-Identifier: MIT
"""Atomic writes: a reader never sees a half-written result, and JSON is strict.

Every file the package writes (checkpoints, data sets, DataTrees, figures, reports) goes
through this module, at one of two levels:

- one file: :func:`atomic_path` (and :func:`write_text`, :func:`write_json`,
  :func:`save_figure`) writes to a temporary file in the target's folder and renames it
  onto the target only once complete, so an interrupted write leaves the previous file;
- a whole folder: :func:`check_output_folder` checks, before any expensive work, that a
  folder can be written; :func:`partial_folder` makes the hidden sibling
  ``.<name>.partial-<random>`` in which the folder's new content is built, and
  :func:`swap_folder` puts it in place of the folder (the previous folder is renamed
  aside, the new one renamed in, the previous one deleted), so an interrupted run leaves
  either the previous complete folder or the new one, never a mix; on failure
  :func:`discard` removes the partial folder. Files built together in a partial folder
  can instead be moved one by one onto files outside it (:func:`move_into`), each
  replaced atomically. Files of an earlier run that the new one
  does not write do not survive the swap. The partial folder of a killed run (SIGKILL)
  is removed by the next :func:`partial_folder` for the same folder; two runs into the
  same folder at the same time are not supported.

JSON is written strictly (:func:`json_text`): a non-finite number becomes ``null``, with
the reason in a sibling ``<key>_note`` field, because strict parsers reject the bare
``NaN`` and ``Infinity`` of Python's :mod:`json`.

Only the standard library is used (and :mod:`invprior.validation`, which uses nothing
else), so both :mod:`invprior.pde` and :mod:`invprior.priors` may import it.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .validation import InputError

__all__ = [
    "NOTE_SUFFIX",
    "atomic_path",
    "check_output_folder",
    "check_writable",
    "discard",
    "json_text",
    "move_into",
    "partial_folder",
    "save_figure",
    "swap_folder",
    "write_json",
    "write_text",
]

NOTE_SUFFIX = "_note"
"""Suffix of the key that says why the value of a key is ``null`` (see :func:`json_text`)."""

_PARTIAL = "partial"
_OLD = "old"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path that replaces ``path`` when the ``with`` block succeeds.

    The parent folder is created if needed. On an exception (``KeyboardInterrupt``
    included) the temporary file is removed and ``path`` is untouched. The result gets the
    usual permissions (``0o666 & ~umask``).

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
        tmp.chmod(0o666 & ~_umask())
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


def _non_finite(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, numbers.Integral)
        and not math.isfinite(value)
    )


def _strict(obj: object) -> object:
    """``obj`` with non-finite numbers as ``None`` (and notes beside dict values)."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out[key] = _strict(value)
            note = f"{key}{NOTE_SUFFIX}"
            if _non_finite(value) and isinstance(key, str) and note not in obj:
                out[note] = f"not finite: {float(value)!r}"
        return out
    if isinstance(obj, list | tuple):
        return [_strict(value) for value in obj]
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _number(obj: object) -> float | None:
    """JSON fallback for other number-like objects (a 0-d array, a NumPy bool)."""
    value = float(obj)
    return value if math.isfinite(value) else None


def json_text(obj: object, indent: int | None = None) -> str:
    """``obj`` as strict JSON (RFC 8259): no ``NaN`` or ``Infinity``, whatever ``obj`` holds.

    A non-finite number (NaN, +-inf, also as a NumPy scalar) becomes ``null``; when it is
    the value of a string key ``k`` of a dict, a sibling key ``k_note`` says why, for
    example ``"rhat_max": null, "rhat_max_note": "not finite: nan"`` (unless the dict
    already has a ``k_note``). NumPy integers are written as integers, other NumPy numbers
    as floats. Encoding runs with ``allow_nan=False``, so nothing non-strict can slip out.

    Args:
        obj: Dicts, lists, tuples, strings, numbers, bools and ``None``.
        indent: Indentation as in :func:`json.dumps` (``None``: one line).

    Returns:
        The JSON text.

    Raises:
        TypeError: If ``obj`` holds an object that is neither of these nor convertible
            with ``float``.

    Example:
        >>> json_text({"rhat_max": float("nan"), "ess_min": 12.5})
        '{"rhat_max": null, "rhat_max_note": "not finite: nan", "ess_min": 12.5}'
    """
    return json.dumps(_strict(obj), indent=indent, default=_number, allow_nan=False)


def write_json(path: str | os.PathLike, obj: object, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (:func:`json_text`) to ``path`` atomically.

    Args:
        path: Target file.
        obj: What to write; non-finite numbers become ``null`` with a note.
        indent: Indentation (``None``: one line).

    Returns:
        ``path``.
    """
    return write_text(path, json_text(obj, indent=indent))


def _real(folder: str | os.PathLike) -> Path:
    """``folder`` as an absolute path; a symbolic link is replaced by its target (kept)."""
    folder = Path(os.path.abspath(folder))
    return folder.resolve() if folder.is_symlink() else folder


def _probe(folder: Path) -> None:
    """Create and remove a hidden file in ``folder``: raises OSError if it cannot."""
    fd, name = tempfile.mkstemp(prefix=".probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def check_writable(path: str | os.PathLike, option: str, *, folder: bool = False) -> None:
    """Check, before any expensive work, that the output ``path`` can be written.

    The folder that will hold ``path`` (``path`` itself when ``folder``) may not exist
    yet; then its nearest existing ancestor must be a folder. That folder is probed by
    creating and removing a temporary file, so nothing is left behind.

    Args:
        path: The file (or, with ``folder``, the folder) the command will write.
        option: The command-line option that gave ``path``, for messages.
        folder: Whether ``path`` is a folder to write files into.

    Raises:
        InputError: ``path`` is a folder where a file is expected (or a file where a
            folder is), a parent is a file, or the folder cannot be written.
    """
    path = Path(path)
    where = path if folder else path.parent
    try:
        if folder and path.exists() and not path.is_dir():
            raise InputError(f"{option} {path} is a file; give a folder for the output")
        if not folder and path.is_dir():
            raise InputError(f"{option} {path} is a folder; give a file path for the output")
        existing = where
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as err:
        raise InputError(
            f"{option} {path}: cannot inspect {where} ({err.strerror or err}); choose "
            "another output path"
        ) from err
    if not existing.is_dir():
        raise InputError(
            f"{option} {path}: {existing} is a file, so the folder {where} cannot be made; "
            "choose another output path"
        )
    try:
        _probe(existing)
    except OSError as err:
        raise InputError(
            f"{option} {path}: cannot write in {existing} ({err.strerror or err}); choose a "
            "folder you can write to"
        ) from err


def check_output_folder(folder: str | os.PathLike, where: str, marker: str | None = None) -> None:
    """Check, before any work, that ``folder`` can be (re)written by :func:`swap_folder`.

    The folder must not be a file nor lie under one; its parent (or the nearest existing
    ancestor, where the parents will be created) must take a new file, checked by creating
    and removing a hidden probe file there; an existing folder must take one too (its
    files are deleted after the swap). With ``marker``, an existing folder that holds
    files but not ``marker`` is refused: it is not the result of an earlier run, and the
    swap would delete what it holds. Nothing is left behind.

    Args:
        folder: The output folder.
        where: Where the user gave it, for the message, e.g. ``"[output] folder or --out"``.
        marker: A file that every complete result in ``folder`` holds, or ``None``.

    Raises:
        InputError: If the folder cannot be written or replaced; the message names the
            folder and ``where`` and says how to fix it.
    """
    given = Path(folder)
    name = f"output folder {str(given)!r} ({where})"
    target = _real(given)
    try:
        if target.exists() and not target.is_dir():
            raise InputError(f"{name} is a file, not a folder; give the path of a folder")
        if target == Path.cwd() or target in Path.cwd().parents:
            raise InputError(
                f"{name} is or holds the working folder, which a run would replace; give "
                "a folder of its own, for example results/study"
            )
        ancestor = (target if given.is_symlink() else given).parent  # as given, if possible
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise InputError(
                f"{name} lies under {str(ancestor)!r}, which is a file, not a folder; "
                "give the path of a folder"
            )
        _probe(ancestor)
        if target.is_dir():
            _probe(target)
            held = [p.name for p in target.iterdir()]
            if marker is not None and held and marker not in held:
                raise InputError(
                    f"{name} exists and holds {len(held)} entries but no {marker} of an "
                    "earlier run, so it is not replaced (the run replaces the whole "
                    "folder); give a new or empty folder, or empty this one"
                )
    except OSError as err:
        raise InputError(
            f"{name} cannot be written: {err}; give a folder you can write to, or fix the "
            "permissions"
        ) from err


def _siblings(folder: Path, kind: str) -> list[Path]:
    prefix = f".{folder.name}.{kind}-"
    if not folder.parent.is_dir():
        return []
    return sorted(p for p in folder.parent.iterdir() if p.name.startswith(prefix))


def discard(path: str | os.PathLike) -> None:
    """Remove a folder (or file) and everything in it; no error if it is absent."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _clear_leftovers(folder: Path) -> None:
    """Remove the partial folders of killed runs; restore a folder a killed swap set aside."""
    for partial in _siblings(folder, _PARTIAL):
        discard(partial)
    old = _siblings(folder, _OLD)
    if old and not folder.exists():  # killed between the two renames of a swap
        newest = max(old, key=lambda p: p.stat().st_mtime)
        os.rename(newest, folder)
        old.remove(newest)
    for path in old:
        discard(path)


def partial_folder(folder: str | os.PathLike) -> Path:
    """A new empty folder beside ``folder`` in which to build its content.

    Named ``.<name>.partial-<random>`` (hidden, on the same file system, so
    :func:`swap_folder` is a rename). The parents of ``folder`` are created if needed;
    partial folders of killed runs into ``folder`` are removed first. The folder gets the
    usual permissions (``0o777 & ~umask``).

    Args:
        folder: The folder whose content will be replaced (need not exist).

    Returns:
        The partial folder.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "results"
        >>> partial = partial_folder(out)
        >>> _ = (partial / "a.txt").write_text("new")
        >>> swap_folder(partial, out) == out, sorted(p.name for p in out.iterdir())
        (True, ['a.txt'])
    """
    folder = _real(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{_PARTIAL}-", dir=folder.parent))
    partial.chmod(0o777 & ~_umask())
    return partial


def move_into(partial: str | os.PathLike, targets: Mapping[str, str | os.PathLike]) -> list[Path]:
    """Move files of a partial folder onto their targets, one rename each, in order.

    Each ``partial / name`` replaces its target atomically (:func:`os.replace`), so a
    reader of one target sees either its previous content or the new one. The files are
    not replaced together: order ``targets`` so that a file others refer to comes first
    (an XDMF file's ``.h5`` data before the ``.xdmf``). If a rename fails, the targets
    renamed before it keep their new content and the others their previous one.

    Args:
        partial: A folder from :func:`partial_folder` (on the targets' file system).
        targets: ``{name: target}``: the file ``name`` of ``partial`` and where it goes.

    Returns:
        The targets, in order.

    Raises:
        OSError: A file is missing or cannot be renamed onto its target.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp())
        >>> partial = partial_folder(out / "pair")
        >>> _ = (partial / "a.h5").write_text("data")
        >>> _ = (partial / "a.xdmf").write_text("refers to a.h5")
        >>> moved = move_into(partial, {"a.h5": out / "a.h5", "a.xdmf": out / "a.xdmf"})
        >>> [p.name for p in moved], (out / "a.h5").read_text()
        (['a.h5', 'a.xdmf'], 'data')
    """
    partial = Path(partial)
    moved = []
    for name, target in targets.items():
        os.replace(partial / name, target)
        moved.append(Path(target))
    return moved


def swap_folder(partial: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Put ``partial`` (from :func:`partial_folder`) in place of ``folder``.

    The previous ``folder`` is renamed aside (``.<name>.old-<random>``), ``partial`` is
    renamed to ``folder`` and the previous one deleted. If the second rename fails or is
    interrupted, the previous folder is renamed back, so ``folder`` holds either its
    previous content or the new one.

    Args:
        partial: The complete new content.
        folder: The folder to replace (need not exist; a symbolic link's target is
            replaced, the link kept).

    Returns:
        ``folder`` as given.
    """
    given, folder, partial = Path(folder), _real(folder), Path(partial)
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{_OLD}-", dir=folder.parent))
    try:
        if old is not None:
            os.replace(folder, old)  # old is an empty folder: replaced by the rename
        os.rename(partial, folder)
    except BaseException:
        if old is not None and old.exists() and not folder.exists():
            os.rename(old, folder)
        raise
    finally:
        if old is not None and folder.exists():
            discard(old)
    return given
