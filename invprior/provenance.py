# SPDX-License-Identifier: MIT
"""What made a result: a fingerprint of the package's code, for keys of cached results.

Studies that keep finished parts on disk to resume after an interruption
(``examples/compare_priors.py``, ``examples/compare_disentanglement.py``) key them on
their settings and on :func:`code_fingerprint`, so that results computed by other code
(a changed potential, a changed training loss) are recomputed, not silently reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

__all__ = ["code_fingerprint", "sources_fingerprint"]

#: The packages whose sources make up the fingerprint (``pde`` and ``priors`` live in their
#: own folders of the source tree).
PACKAGES = ("invprior", "invprior.pde", "invprior.priors")


def sources_fingerprint(roots: Iterable[str | Path]) -> str:
    """SHA-1 (16 hex digits) of the ``*.py`` files below ``roots``: paths and contents.

    Args:
        roots: Folders; each one's files enter in sorted order, named relative to it.
    """
    digest = hashlib.sha1()
    for root in roots:
        root = Path(root)
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_fingerprint() -> str:
    """:func:`sources_fingerprint` of the installed :data:`PACKAGES`, subpackages not imported.

    Any edit to the package's Python files changes it; data and weights do not enter.
    """
    roots = []
    for name in PACKAGES:
        roots += importlib.util.find_spec(name).submodule_search_locations
    return sources_fingerprint(dict.fromkeys(roots))
