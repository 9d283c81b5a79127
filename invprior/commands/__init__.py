# SPDX-License-Identifier: MIT
"""Sub-commands of ``invprior``; each module defines ``add_parser(subparsers)``.

Modules import their heavy dependencies inside ``func`` so ``invprior --help`` is fast.
"""

__all__: list[str] = []
