# SPDX-License-Identifier: MIT
r"""Linearised-prior diagnostics: the field covariance a generator induces, and block structure.

Linearise the generator at a latent point :math:`z_0 = (z_{aux,0}, z_{rec,0})`,

.. math::

    x \approx G(z_0) + J (z - z_0), \qquad J = \partial G / \partial z \,\big|_{z_0}
    \in \mathbb{R}^{n \times m}, \quad n = n_y n_x, \; m = d + r,

so that a latent with covariance :math:`\Sigma_z` induces the field covariance
:math:`C = J \Sigma_z J^T`. Its eigenpairs come from the thin SVD
:math:`J \Sigma_z^{1/2} = U S V^T`: :math:`C = U S^2 U^T`, at cost :math:`O(n m^2)`, and the
:math:`n \times n` matrix is never formed. With :math:`J = [J_a, J_r]` split into the named
and the residual block,

.. math::

    \mathrm{diag}\, C = \mathrm{diag}(J_a \Sigma_{aa} J_a^T) + \mathrm{diag}(J_r \Sigma_{rr}
    J_r^T) + 2\, \mathrm{diag}(J_a \Sigma_{ar} J_r^T),

the named, residual and cross parts of the pointwise variance; the cross part vanishes
for the prior, whose blocks are independent.

**Latent coordinates.** We linearise in :math:`z = (z_{aux}, z_{rec})`, the generator's
own input. Under :class:`invprior.model.DisentangledPrior`,
:math:`z_{aux,j} = (u_j - \mu_j)/\sigma_j + \tau e_j` with independent :math:`u_j \sim
p(u_j)` and :math:`e \sim N(0, I)`, so the default is the exact prior second moment

.. math::

    \Sigma_z = \mathrm{diag}\big(\mathrm{Var}(u_1)/\sigma_1^2 + \tau^2, \dots,
    \mathrm{Var}(u_d)/\sigma_d^2 + \tau^2, \; 1, \dots, 1\big).

:math:`C` is then the exact covariance of the linearised field, though not a Gaussian one
when some :math:`p(u_j)` is not Normal (e.g. the default uniform priors). Because
:math:`a(u)` is affine, linearising in the sampler's coordinates :math:`(u, e, z_{rec})`
gives the same :math:`C`. A full :math:`\Sigma_z` may be passed instead, e.g. a Laplace
posterior covariance in these coordinates, to get the linearised posterior field
covariance.

Whether the *posterior* is block-diagonal between the two blocks is measured on its draws
by :func:`invprior.block_correlation.block_correlation`.

References:
    [1] A. Ganguli, E. Constantinescu. "Disentangled Deep Priors for Bayesian Inverse
        Problems." https://arxiv.org/abs/2604.02304
    [2] A. Ganguli, N. Ramachandra, J. Bessac, E. Constantinescu. "Enhancing Interpretability
        in Generative Modeling: Statistically Disentangled Latent Spaces Guided by Generative
        Factors in Scientific Datasets." https://arxiv.org/abs/2507.00298
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .fileio import save_figure
from .model import DisentangledPrior
from .priors.arrays import reference_tensor, to_numpy
from .priors.base import Generator
from .sites import Z_AUX, Z_REC

__all__ = [
    "InducedCovariance",
    "induced_covariance",
    "plot_modes",
    "plot_std_split",
    "write_figures",
]


@dataclass(frozen=True, eq=False)
class InducedCovariance:
    r"""The linearised generator at :math:`z_0` and its induced field covariance.

    Grid nodes are flattened row-major (``field.reshape(-1)``), latent coordinates are
    ordered ``z_aux`` then ``z_rec``; ``k = min(ny * nx, m)``. Arrays are float64.

    Attributes:
        labels: Names of the ``m`` latent coordinates: the named variables, then
            ``z_rec[0]``, ``z_rec[1]``, ...
        aux_dim: Size :math:`d` of the named block.
        latent: The point :math:`z_0`, shape ``(m,)``.
        sigma_z: :math:`\Sigma_z`, shape ``(m, m)``.
        jacobian: :math:`J`, shape ``(ny * nx, m)``.
        mean: :math:`G(z_0)`, shape ``(ny, nx)``.
        eigenvalues: :math:`\lambda_k = s_k^2` of :math:`C`, descending, shape ``(k,)``.
        modes: Unit eigenvectors :math:`u_k` of :math:`C` as images, shape ``(k, ny, nx)``;
            the sign makes the largest-magnitude entry positive.
        loadings: :math:`V^T`, shape ``(k, m)``: mode :math:`k` is
            :math:`J \Sigma_z^{1/2} v_k / s_k` (symmetric square root). For a diagonal
            :math:`\Sigma_z`, ``loadings[k, l] ** 2`` is the share of latent coordinate
            :math:`l` in mode :math:`k`; each row's squares add up to one.
        variance_share: :math:`\lambda_k / \sum_l \lambda_l`, shape ``(k,)``.
        std: :math:`\sqrt{\mathrm{diag}\, C}`, shape ``(ny, nx)``.
        named_var: :math:`\mathrm{diag}(J_a \Sigma_{aa} J_a^T)`, shape ``(ny, nx)``.
        residual_var: :math:`\mathrm{diag}(J_r \Sigma_{rr} J_r^T)`, shape ``(ny, nx)``.
        cross_var: :math:`2\,\mathrm{diag}(J_a \Sigma_{ar} J_r^T)`, shape ``(ny, nx)``; zero
            for a block-diagonal :math:`\Sigma_z`. The three parts add up to ``std ** 2``.
        bbox: The grid's ``((xmin, ymin), (xmax, ymax))``.
    """

    labels: tuple[str, ...]
    aux_dim: int
    latent: np.ndarray
    sigma_z: np.ndarray
    jacobian: np.ndarray
    mean: np.ndarray
    eigenvalues: np.ndarray
    modes: np.ndarray
    loadings: np.ndarray
    variance_share: np.ndarray
    std: np.ndarray
    named_var: np.ndarray
    residual_var: np.ndarray
    cross_var: np.ndarray
    bbox: tuple[tuple[float, float], tuple[float, float]]

    @property
    def block_shares(self) -> dict[str, float]:
        r"""Shares of :math:`\mathrm{tr}\, C` from the ``named``, ``residual`` and ``cross`` parts.

        They add up to one (all zero when :math:`C = 0`).
        """
        parts = {"named": self.named_var, "residual": self.residual_var, "cross": self.cross_var}
        total = float(np.square(self.std).sum())
        return {k: float(v.sum() / total) if total > 0 else 0.0 for k, v in parts.items()}


def _as_prior(prior_or_generator: DisentangledPrior | Generator) -> DisentangledPrior:
    if isinstance(prior_or_generator, DisentangledPrior):
        return prior_or_generator
    if isinstance(prior_or_generator, Generator):
        return DisentangledPrior(prior_or_generator)
    raise TypeError(
        "prior_or_generator must be a DisentangledPrior or an invprior.priors.Generator, got "
        f"{type(prior_or_generator).__name__}"
    )


def _latent_point(
    latent: Mapping[str, torch.Tensor] | torch.Tensor | np.ndarray, d: int, r: int
) -> np.ndarray:
    """:math:`z_0` as a finite float64 vector ``(d + r,)`` from a vector or ``z_aux``/``z_rec``."""
    if isinstance(latent, Mapping):
        missing = [k for k in ((Z_AUX,) if d else ()) + (Z_REC,) if k not in latent]
        if missing:
            raise ValueError(
                f"latent has no {missing}; pass a mapping with 'z_aux' and 'z_rec' (e.g. "
                f"MapResult.sites) or one vector of shape ({d + r},)"
            )
        z_aux = to_numpy(latent[Z_AUX]) if d else np.zeros(0)
        z_rec = to_numpy(latent[Z_REC])
        if z_aux.shape != (d,) or z_rec.shape != (r,):
            raise ValueError(
                f"latent['z_aux'] and latent['z_rec'] have shapes {z_aux.shape} and "
                f"{z_rec.shape}; pass one latent point, shapes ({d},) and ({r},)"
            )
        z0 = np.concatenate([z_aux, z_rec])
    else:
        z0 = to_numpy(latent)
        if z0.shape != (d + r,):
            raise ValueError(
                f"latent has shape {z0.shape} but the generator takes d + r = {d} + {r} = "
                f"{d + r} coordinates; pass one latent point of shape ({d + r},), z_aux first"
            )
    if not np.isfinite(z0).all():
        raise ValueError(f"latent has NaN or infinite values: {z0.tolist()}")
    return z0.astype(np.float64)


def _prior_sigma_z(prior: DisentangledPrior) -> np.ndarray:
    r"""The prior's :math:`\Sigma_z = \mathrm{diag}(\mathrm{Var}(u)/\sigma^2 + \tau^2, 1_r)`."""
    gen = prior.generator
    var_u = []
    for name in prior.aux_names:
        try:
            var = float(prior.aux_distribution(name).variance)
        except NotImplementedError as err:
            raise ValueError(
                f"the prior of {name!r} has no variance; pass sigma_z explicitly"
            ) from err
        if not np.isfinite(var):
            raise ValueError(f"the prior of {name!r} has variance {var}; pass sigma_z explicitly")
        var_u.append(var)
    scale = to_numpy(gen.aux_std).astype(np.float64) if prior.aux_names else np.zeros(0)
    var_aux = np.asarray(var_u, dtype=np.float64) / scale**2 + prior.tau**2
    return np.diag(np.concatenate([var_aux, np.ones(gen.rec_dim)]))


def _check_sigma_z(sigma_z: torch.Tensor | np.ndarray, m: int) -> np.ndarray:
    """A symmetric PSD float64 ``(m, m)`` matrix from variances ``(m,)`` or a matrix."""
    cov = to_numpy(sigma_z).astype(np.float64)
    if cov.shape == (m,):
        cov = np.diag(cov)
    if cov.shape != (m, m):
        raise ValueError(
            f"sigma_z has shape {cov.shape}; pass variances of shape ({m},) or a covariance "
            f"of shape ({m}, {m}) in the (z_aux, z_rec) coordinates"
        )
    if not np.isfinite(cov).all():
        raise ValueError("sigma_z has NaN or infinite entries")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * np.abs(cov).max()):
        raise ValueError("sigma_z must be symmetric")
    eig = np.linalg.eigvalsh(cov)
    if eig[0] < -1e-10 * max(eig[-1], 0.0):
        raise ValueError(
            f"sigma_z must be positive semi-definite; its smallest eigenvalue is {eig[0]:.3g}"
        )
    return cov


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    r"""Symmetric square root :math:`\Sigma^{1/2} = Q \Lambda^{1/2} Q^T` of a PSD matrix."""
    lam, q = np.linalg.eigh(cov)
    return (q * np.sqrt(np.clip(lam, 0.0, None))) @ q.T


def _jacobian(generator: Generator, z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:math:`G(z_0)` ``(ny, nx)`` and :math:`J` ``(ny * nx, m)`` by forward-mode AD."""
    d = generator.aux_dim
    w0 = torch.as_tensor(z0).to(reference_tensor(generator))

    def flat(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        field = generator.decode(w[:d], w[d:])
        return field.reshape(-1), field

    with warnings.catch_warnings():
        # The first forward-mode call loads torch's own JVP decompositions through
        # torch.jit.script, which warns about its deprecation; nothing here uses TorchScript.
        warnings.filterwarnings("ignore", "`torch.jit.script`", FutureWarning)
        jac, field = torch.func.jacfwd(flat, has_aux=True)(w0)
    return to_numpy(field).astype(np.float64), to_numpy(jac).astype(np.float64)


def induced_covariance(
    prior_or_generator: DisentangledPrior | Generator,
    latent: Mapping[str, torch.Tensor] | torch.Tensor | np.ndarray,
    sigma_z: torch.Tensor | np.ndarray | None = None,
) -> InducedCovariance:
    r"""The field covariance :math:`C = J \Sigma_z J^T` induced by the linearised generator.

    :math:`J` comes from one forward-mode pass (``torch.func.jacfwd``, :math:`m = d + r`
    tangents) on the generator's dtype and device; everything after it is float64 NumPy.
    Eigenpairs come from the thin SVD of :math:`J \Sigma_z^{1/2}` (see the module
    docstring); the ``(ny nx)^2`` matrix :math:`C` is never formed.

    Args:
        prior_or_generator: A :class:`invprior.model.DisentangledPrior`, or a bare
            generator (wrapped with its default priors: uniform on the training ranges).
        latent: The point :math:`z_0`: a vector of shape ``(d + r,)``, ``z_aux`` first, or
            a mapping with ``z_aux`` ``(d,)`` and ``z_rec`` ``(r,)`` such as
            ``MapResult.sites``.
        sigma_z: :math:`\Sigma_z` in the ``(z_aux, z_rec)`` coordinates, variances of shape
            ``(m,)`` or a covariance ``(m, m)``; None means the prior's (module docstring).

    Returns:
        The :class:`InducedCovariance`.

    Raises:
        TypeError: If ``prior_or_generator`` is neither a prior nor a generator.
        ValueError: On a latent of the wrong shape or with NaN, a missing ``z_aux`` or
            ``z_rec``, a ``sigma_z`` that is not a symmetric PSD matrix of the right size,
            or a named prior without a finite variance (then pass ``sigma_z``).

    Example:
        >>> from invprior.priors import load
        >>> gen = load("source-auxvae")  # doctest: +SKIP
        >>> lin = induced_covariance(gen, torch.zeros(gen.aux_dim + gen.rec_dim))  # doctest: +SKIP
        >>> lin.jacobian.shape  # doctest: +SKIP
        (4096, 10)
    """
    prior = _as_prior(prior_or_generator)
    gen = prior.generator
    d, r = gen.aux_dim, gen.rec_dim
    z0 = _latent_point(latent, d, r)
    cov = _prior_sigma_z(prior) if sigma_z is None else _check_sigma_z(sigma_z, d + r)
    field, jac = _jacobian(gen, z0)
    u, s, vt = np.linalg.svd(jac @ _sqrt_psd(cov), full_matrices=False)
    flip = np.sign(u[np.abs(u).argmax(0), np.arange(u.shape[1])])
    flip[flip == 0] = 1.0
    u, vt = u * flip, vt * flip[:, None]
    lam = s**2
    total = lam.sum()
    j_a, j_r = jac[:, :d], jac[:, d:]
    cov_aa, cov_ar, cov_rr = cov[:d, :d], cov[:d, d:], cov[d:, d:]
    shape = field.shape
    return InducedCovariance(
        labels=(*gen.aux_names, *(f"{Z_REC}[{k}]" for k in range(r))),
        aux_dim=d,
        latent=z0,
        sigma_z=cov,
        jacobian=jac,
        mean=field,
        eigenvalues=lam,
        modes=u.T.reshape(-1, *shape),
        loadings=vt,
        variance_share=lam / total if total > 0 else np.zeros_like(lam),
        std=np.sqrt(((jac @ cov) * jac).sum(1).clip(0.0)).reshape(shape),
        named_var=((j_a @ cov_aa) * j_a).sum(1).reshape(shape),
        residual_var=((j_r @ cov_rr) * j_r).sum(1).reshape(shape),
        cross_var=2.0 * ((j_a @ cov_ar) * j_r).sum(1).reshape(shape),
        bbox=gen.grid.bbox,
    )


def _extent(bbox: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, ...]:
    (x0, y0), (x1, y1) = bbox
    return (x0, x1, y0, y1)


def _image(fig: Figure, ax: object, values: np.ndarray, extent: tuple, **kwargs: object) -> None:
    im = ax.imshow(values, origin="lower", extent=extent, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8)


def plot_modes(induced: InducedCovariance, num_modes: int = 7) -> Figure:
    r"""The field :math:`G(z_0)` and the leading modes :math:`\sqrt{\lambda_k}\, u_k` of :math:`C`.

    Each mode is drawn in field units (one standard deviation along it) on a symmetric
    colour scale; its title gives the share of :math:`\mathrm{tr}\, C` and the latent
    coordinate with the largest loading (with its squared loading).

    Args:
        induced: The result of :func:`induced_covariance`.
        num_modes: How many modes to draw, at least 1; at most all ``k`` are drawn.

    Returns:
        A figure with ``min(num_modes, k) + 1`` images.

    Raises:
        ValueError: If ``num_modes < 1``.
    """
    if num_modes < 1:
        raise ValueError(f"num_modes must be at least 1, got {num_modes}")
    k = min(num_modes, induced.eigenvalues.size)
    ncols = min(4, k + 1)
    nrows = -(-(k + 1) // ncols)
    fig = Figure(figsize=(3.3 * ncols, 3.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    extent = _extent(induced.bbox)
    _image(fig, axes[0], induced.mean, extent, cmap="viridis")
    axes[0].set_title("G(z0)")
    for i, ax in enumerate(axes[1 : k + 1]):
        mode = math.sqrt(induced.eigenvalues[i]) * induced.modes[i]
        top = int(np.abs(induced.loadings[i]).argmax())
        vmax = float(np.abs(mode).max()) or 1.0
        _image(fig, ax, mode, extent, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(
            f"mode {i + 1}: {induced.variance_share[i]:.1%}\n"
            f"top: {induced.labels[top]} ({induced.loadings[i, top] ** 2:.0%})",
            fontsize=9,
        )
    for ax in axes[k + 1 :]:
        ax.set_axis_off()
    fig.suptitle(
        "leading modes of the induced covariance J Sigma_z J^T (scaled by sqrt(eigenvalue))"
    )
    return fig


def plot_std_split(induced: InducedCovariance) -> Figure:
    """Pointwise standard deviation of the linearised field: total, named part, residual part.

    The three maps share one colour scale; the title gives the shares of
    :attr:`InducedCovariance.block_shares` (the cross part only when it is not zero).

    Args:
        induced: The result of :func:`induced_covariance`.

    Returns:
        A figure with three images.
    """
    panels = {
        "total std": induced.std,
        "named std (z_aux)": np.sqrt(induced.named_var.clip(0.0)),
        "residual std (z_rec)": np.sqrt(induced.residual_var.clip(0.0)),
    }
    vmax = max(float(v.max()) for v in panels.values()) or 1.0
    fig = Figure(figsize=(12.0, 3.6), layout="constrained")
    extent = _extent(induced.bbox)
    for ax, (title, values) in zip(fig.subplots(1, 3), panels.items(), strict=True):
        _image(fig, ax, values, extent, cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set_title(title)
    shares = {k: v for k, v in induced.block_shares.items() if k != "cross" or v != 0.0}
    fig.suptitle(
        "share of the total variance: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items())
    )
    return fig


def write_figures(
    out: str | os.PathLike, induced: InducedCovariance, num_modes: int = 7
) -> dict[str, Path]:
    """Write the figures of the linearised prior into ``out`` as PNG, each atomically.

    Files: ``linearised_modes.png`` (:func:`plot_modes`) and ``linearised_std.png``
    (:func:`plot_std_split`).

    Args:
        out: Output folder (created if needed).
        induced: The result of :func:`induced_covariance`.
        num_modes: Modes drawn by :func:`plot_modes`.

    Returns:
        ``{kind: path}`` of the files written.
    """
    figures = {
        "linearised_modes": plot_modes(induced, num_modes),
        "linearised_std": plot_std_split(induced),
    }
    out = Path(out)
    return {name: save_figure(fig, out / f"{name}.png") for name, fig in figures.items()}
