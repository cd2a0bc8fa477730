"""Mixture families: parameters from soft memberships, sample energy, penalty.

A family is a stateless object with three methods, all vectorised over a
leading *run* axis ``R`` (independent models trained together) and over the
``K`` components at once:

* ``estimate(gamma, z) -> params``: the mixture parameters that the paper's
  equation (5) gives for memberships ``gamma`` (R, N, K) and points ``z`` (R, N, D).
* ``energy(z, params) -> (R, N)``: sample energy ``-log p(z)``.
* ``penalty(params) -> (R,)``: the term multiplied by lambda_2 in the loss.
* ``Params`` (a NamedTuple class) and ``param_shapes(k, d)``: the fitted
  parameters' names and per-run shapes, kept by the module as buffers.
* ``log_prob_components(z, params) -> ((R, K, N), n_retried)``.

:class:`GaussianMixture` is the paper's. The Laplacian family (a later
extension) plugs in through the same three methods.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch

__all__ = ["GaussianParams", "GaussianMixture", "CovarianceJitterWarning", "stable_cholesky"]

_LOG_2PI = math.log(2.0 * math.pi)
JITTER_LADDER = (1.0, 1e2, 1e4, 1e6)  # multiples of ``eps`` tried in turn


class CovarianceJitterWarning(RuntimeWarning):
    """A covariance needed more diagonal jitter than ``eps`` to be factorised."""


class GaussianParams(NamedTuple):
    """Gaussian mixture parameters.

    Attributes
    ----------
    phi : Tensor (R, K)      mixture weights
    mu : Tensor (R, K, D)    means
    cov : Tensor (R, K, D, D) covariances (without jitter)
    """

    phi: torch.Tensor
    mu: torch.Tensor
    cov: torch.Tensor


def stable_cholesky(cov: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cholesky factor of ``cov + jitter * I`` with the smallest jitter that works.

    Every matrix gets ``eps`` on its diagonal; one whose factorisation fails
    is retried with ``eps`` times 1e2, 1e4, 1e6 (chosen per matrix, without a
    host synchronisation and without a Python loop over components). Only the
    final factorisation is differentiated.

    Parameters
    ----------
    cov : Tensor (..., D, D)
    eps : float
        Base diagonal jitter.

    Returns
    -------
    L : Tensor (..., D, D)       lower Cholesky factor of ``cov + jitter I``
    jitter : Tensor (...)        the jitter used per matrix
    n_retried : Tensor ()        how many matrices needed more than ``eps``
    """
    d = cov.shape[-1]
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    jitter = torch.full(cov.shape[:-2], eps, dtype=cov.dtype, device=cov.device)
    with torch.no_grad():
        c = cov.detach()
        for mult in JITTER_LADDER[1:]:
            _, info = torch.linalg.cholesky_ex(c + jitter[..., None, None] * eye)
            jitter = torch.where(info > 0, eps * mult, jitter)  # scalar: no host-to-device copy
    L, _ = torch.linalg.cholesky_ex(cov + jitter[..., None, None] * eye)
    n_retried = (jitter > eps).sum()
    return L, jitter, n_retried


class GaussianMixture:
    """The paper's Gaussian mixture with full covariances.

    Parameters
    ----------
    eps : float, default 1e-6
        Diagonal jitter added to every covariance before factorising it
        (raised automatically, with a :class:`CovarianceJitterWarning` at
        scoring time, when the factorisation fails).
    """

    name = "gaussian"
    Params = GaussianParams

    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    @staticmethod
    def param_shapes(k: int, d: int) -> dict[str, tuple[int, ...]]:
        """Shape of each fitted parameter of one run (the module keeps them as buffers)."""
        return {"phi": (k,), "mu": (k, d), "cov": (k, d, d)}

    @staticmethod
    def estimate(gamma: torch.Tensor, z: torch.Tensor) -> GaussianParams:
        """Mixture parameters from memberships (paper, eq. 5).

        Parameters
        ----------
        gamma : Tensor (R, N, K)  soft memberships, rows sum to 1
        z : Tensor (R, N, D)

        Returns
        -------
        GaussianParams with phi (R, K), mu (R, K, D), cov (R, K, D, D)
        """
        # Layout: samples N innermost, so elementwise work runs over long
        # contiguous rows rather than over D (often 3) values at a time.
        w = gamma.transpose(1, 2)  # (R, K, N)
        nk = w.sum(-1) + 10 * torch.finfo(gamma.dtype).eps  # (R, K)
        phi = nk / gamma.shape[1]
        mu = (w @ z) / nk[..., None]  # (R, K, D)
        diff = z.transpose(1, 2)[:, None] - mu[..., None]  # (R, K, D, N), centred first
        cov = (diff * w[:, :, None, :]) @ diff.transpose(-1, -2) / nk[..., None, None]  # (R, K, D, D)
        return GaussianParams(phi, mu, cov)

    def log_prob_components(self, z: torch.Tensor, params: GaussianParams) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-component ``log phi_k + log N(z | mu_k, Sigma_k)``, shape (R, K, N).

        Also returns the number of covariances whose jitter had to be raised.
        """
        phi, mu, cov = params
        d = z.shape[-1]
        L, _, n_retried = stable_cholesky(cov, self.eps)  # (R, K, D, D)
        eye = torch.eye(d, dtype=L.dtype, device=L.device).expand_as(L)
        # One triangular solve per component gives L^-1; then y = L^-1 (z - mu)
        # for all samples is a batched matrix product (as scikit-learn does).
        L_inv = torch.linalg.solve_triangular(L, eye, upper=False)  # (R, K, D, D)
        diff = z.transpose(1, 2)[:, None] - mu[..., None]  # (R, K, D, N), centred first
        maha = (L_inv @ diff).pow(2).sum(2)  # (R, K, N)
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (R, K)
        log_phi = torch.log(phi.clamp_min(torch.finfo(phi.dtype).tiny))
        logp = (log_phi - 0.5 * (logdet + d * _LOG_2PI))[..., None] - 0.5 * maha
        return logp, n_retried

    def energy(self, z: torch.Tensor, params: GaussianParams, *, warn: bool = False) -> torch.Tensor:
        """Sample energy ``-log sum_k phi_k N(z | mu_k, Sigma_k)``, shape (R, N).

        With ``warn=True`` (used at scoring time, where a host sync is cheap)
        a :class:`CovarianceJitterWarning` is issued if any covariance needed
        more than ``eps`` of jitter.
        """
        logp, n_retried = self.log_prob_components(z, params)
        if warn and int(n_retried) > 0:
            warnings.warn(
                f"{int(n_retried)} covariance matrices were near-singular and needed "
                f"more diagonal jitter than eps={self.eps:g} to be factorised",
                CovarianceJitterWarning,
                stacklevel=2,
            )
        return -torch.logsumexp(logp, dim=1)

    def penalty(self, params: GaussianParams) -> torch.Tensor:
        """``sum_k sum_j 1 / Sigma_kjj`` per run (paper, eq. 7), shape (R,)."""
        diag = torch.diagonal(params.cov, dim1=-2, dim2=-1) + self.eps
        return diag.reciprocal().sum((-1, -2))
