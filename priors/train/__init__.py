# SPDX-License-Identifier: MIT
"""Training loops for the generative priors."""

__all__: list[str] = []
