# SPDX-License-Identifier: MIT
"""What made a result: a fingerprint of the package's code, for keys of cached results.

Studies that keep finished parts on disk to resume after an interruption
(``examples/compare_priors.py``, ``examples/compare_disentanglement.py``) key them on
their settings and on :func:`code_fingerprint`, so that results computed by other code
(a changed potential, a changed training loss) are recomputed, not silently reused.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

__all__ = ["code_fingerprint", "sources_fingerprint"]

#: The packages whose sources make up the fingerprint (``pde`` and ``priors`` live in their
#: own folders of the source tree).
PACKAGES = ("invprior", "invprior.pde", "invprior.priors")


def sources_fingerprint(roots: Iterable[tuple[str, str | Path]]) -> str:
    """SHA-1 (16 hex digits) of the ``*.py`` files below the folders: names and contents.

    Args:
        roots: ``(prefix, folder)`` pairs; a file is named ``prefix/`` plus its path below
            the folder. A file reached from two pairs under the same name (a subpackage's
            folder inside its parent's, as in an installed wheel, and its own pair) counts
            once, so a wheel and an editable install of the same sources agree.
    """
    files: dict[str, Path] = {}
    for prefix, root in roots:
        root = Path(root)
        for path in root.rglob("*.py"):
            files[f"{prefix}/{path.relative_to(root).as_posix()}"] = path
    digest = hashlib.sha1()
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(files[name].read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def code_fingerprint() -> str:
    """:func:`sources_fingerprint` of the installed :data:`PACKAGES`, subpackages not imported.

    Any edit to the package's Python files changes it; data and weights do not enter. It is
    read once per process, on first use: a long run whose source files are edited while it
    runs still labels every record with the code it runs, not with the edited files.
    """
    roots = []
    for name in PACKAGES:
        prefix = name.replace(".", "/")
        roots += [
            (prefix, folder)
            for folder in importlib.util.find_spec(name).submodule_search_locations
        ]
    return sources_fingerprint(roots)
