# SPDX-License-Identifier: MIT
"""Finished parts of a long study kept on disk, so that an interrupted run resumes.

A study that repeats one expensive unit of work (one held-out truth, one training seed)
keeps each finished unit's result as a small JSON file named by a key, together with the
settings that made it and the package's :func:`invprior.provenance.code_fingerprint`. A
record is reused only when both match, so a change of any setting or of the code
recomputes it instead of silently reusing it. Runs that share a folder but work on
different keys (shards of the truths, say) can work side by side; every record is
written atomically (:func:`invprior.fileio.write_json`).

Example:
    >>> import tempfile
    >>> cache = ResultCache(tempfile.mkdtemp(), {"num_draws": 200})
    >>> cache.fetch("truth-000", dict, {"crps": 0.25})
    {'crps': 0.25}
    >>> cache.get("truth-000"), cache.get("truth-001")
    ({'crps': 0.25}, None)
    >>> ResultCache(cache.folder, {"num_draws": 100}).get("truth-000") is None
    True
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from .fileio import json_text, write_json
from .provenance import code_fingerprint

__all__ = ["ResultCache", "parse_shard"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ResultCache:
    """JSON records under ``folder``, each valid only for identical settings and code.

    Args:
        folder: Where the records live (created on the first :meth:`put`).
        settings: Everything other than the key that determines a record (JSON-ready).
        code: Fingerprint of the code that computes the records (default:
            :func:`invprior.provenance.code_fingerprint` of the package).
    """

    def __init__(self, folder: str | os.PathLike, settings: dict, code: str | None = None) -> None:
        self.folder = Path(folder)
        # as read back from disk: tuples become lists, so a stored record compares equal
        self.settings = json.loads(json_text(settings))
        self.code = code if code is not None else code_fingerprint()

    def path(self, key: str) -> Path:
        """The file of ``key``: ``folder / f"{key}.json"``.

        Raises:
            ValueError: If ``key`` is not a plain file name (letters, digits, ``._-``).
        """
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"cache keys are file names of letters, digits, '.', '_' and '-', got {key!r}"
            )
        return self.folder / f"{key}.json"

    def get(self, key: str) -> object | None:
        """The record of ``key``, or None when absent or made with other settings or code."""
        path = self.path(key)
        if not path.is_file():
            return None
        entry = json.loads(path.read_text())
        if entry.get("settings") != self.settings or entry.get("code") != self.code:
            return None
        return entry["record"]

    def put(self, key: str, record: object) -> Path:
        """Store ``record`` (JSON-ready) under ``key``, atomically; returns the file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {"settings": self.settings, "code": self.code, "record": record}
        return write_json(self.path(key), entry, indent=None)

    def fetch(self, key: str, compute: Callable[..., object], *args: object) -> object:
        """The stored record of ``key``, or ``compute(*args)``, stored and returned."""
        record = self.get(key)
        if record is None:
            record = compute(*args)
            self.put(key, record)
        return record


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(k, n)``: the shard that takes every ``n``-th unit of work from the ``k``-th.

    Raises:
        ValueError: Not two integers ``K/N`` with ``0 <= K < N``.

    Example:
        >>> parse_shard("1/2")
        (1, 2)
    """
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"a shard is K/N with integers 0 <= K < N, got {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"a shard is K/N with integers 0 <= K < N, got {text!r}")
    return k, n
