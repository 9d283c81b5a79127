# SPDX-License-Identifier: MIT
"""Names of the fixed Pyro sample sites.

Named physical variables (``x0``, ``amplitude``, ...) are sites of their own, named
after the generator's ``aux_names``; the latent blocks and the data use these names.
"""

AUX_NOISE = "e_aux"
"""Standard-normal noise of the non-centred auxiliary block: z_aux = a(u) + tau * e_aux."""

Z_AUX = "z_aux"
"""Deterministic site holding z_aux."""

Z_REC = "z_rec"
"""Residual latent block, z_rec ~ N(0, I)."""

EPS = "eps"
"""Base noise of a flow-matching generator (DL-CFM), eps ~ N(0, I)."""

FIELD = "field"
"""Deterministic site holding the generated field on the grid."""

OBS = "obs"
"""Observed sensor values."""

NOISE_STD = "noise_std"
"""Noise standard deviation of an inverse problem whose noise scale is unknown (a site)."""

__all__ = ["AUX_NOISE", "EPS", "FIELD", "NOISE_STD", "OBS", "Z_AUX", "Z_REC"]
