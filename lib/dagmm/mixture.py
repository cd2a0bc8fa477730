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

__all__ = ["GaussianParams", "GaussianMixture", "LaplaceParams", "LaplaceMixture", "MIXTURES", "CovarianceJitterWarning", "stable_cholesky"]

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


def _memberships(gamma: torch.Tensor, weight: torch.Tensor | None):
    """Memberships laid out (R, K, N), optionally weighted, and the (weighted) sample count."""
    w = gamma.transpose(1, 2)  # (R, K, N)
    if weight is None:
        return w, gamma.shape[1]
    return w * weight[:, None, :], weight.sum(-1, keepdim=True).clamp_min(torch.finfo(gamma.dtype).eps)


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
    def estimate(gamma: torch.Tensor, z: torch.Tensor, weight: torch.Tensor | None = None) -> GaussianParams:
        """Mixture parameters from memberships (paper, eq. 5).

        Parameters
        ----------
        gamma : Tensor (R, N, K)  soft memberships, rows sum to 1
        z : Tensor (R, N, D)
        weight : Tensor (R, N), optional
            Per-sample weights (0/1 to estimate from a subset of the batch).

        Returns
        -------
        GaussianParams with phi (R, K), mu (R, K, D), cov (R, K, D, D)
        """
        # Layout: samples N innermost, so elementwise work runs over long
        # contiguous rows rather than over D (often 3) values at a time.
        w, n = _memberships(gamma, weight)
        nk = w.sum(-1) + 10 * torch.finfo(gamma.dtype).eps  # (R, K)
        phi = nk / n
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


class LaplaceParams(NamedTuple):
    """Laplacian mixture parameters.

    Attributes
    ----------
    phi : Tensor (R, K)      mixture weights
    mu : Tensor (R, K, D)    locations
    b : Tensor (R, K, D)     per-dimension scales (without ``eps``)
    """

    phi: torch.Tensor
    mu: torch.Tensor
    b: torch.Tensor


class LaplaceMixture:
    """A mixture of products of per-dimension Laplace distributions.

    Component k has density ``prod_j exp(-|z_j - mu_kj| / b_kj) / (2 b_kj)``.
    Given memberships, ``phi_k`` and ``mu_k`` are those of the Gaussian family
    (membership-weighted mean) and ``b_kj`` is the membership-weighted mean
    absolute deviation from ``mu_kj`` (the seeds' update rule; the exact
    maximum-likelihood location would be a weighted median). The penalty is
    ``sum_kj 1 / b_kj``, the analogue of the Gaussian's ``sum_kj 1/Sigma_kjj``.

    Parameters
    ----------
    eps : float, default 1e-6
        Added to every scale before use.
    """

    name = "laplace"
    Params = LaplaceParams

    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    @staticmethod
    def param_shapes(k: int, d: int) -> dict[str, tuple[int, ...]]:
        return {"phi": (k,), "mu": (k, d), "b": (k, d)}

    @staticmethod
    def estimate(gamma: torch.Tensor, z: torch.Tensor, weight: torch.Tensor | None = None) -> LaplaceParams:
        """Parameters from memberships ``gamma`` (R, N, K) and points ``z`` (R, N, D)."""
        w, n = _memberships(gamma, weight)
        nk = w.sum(-1) + 10 * torch.finfo(gamma.dtype).eps  # (R, K)
        mu = (w @ z) / nk[..., None]  # (R, K, D)
        absdev = (z.transpose(1, 2)[:, None] - mu[..., None]).abs()  # (R, K, D, N)
        b = (absdev * w[:, :, None, :]).sum(-1) / nk[..., None]  # (R, K, D)
        return LaplaceParams(nk / n, mu, b)

    def log_prob_components(self, z: torch.Tensor, params: LaplaceParams) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-component ``log phi_k + log Laplace(z | mu_k, b_k)``, shape (R, K, N)."""
        phi, mu, b = params
        b = b + self.eps
        absdev = (z.transpose(1, 2)[:, None] - mu[..., None]).abs()  # (R, K, D, N)
        log_norm = torch.log(2.0 * b).sum(-1)  # (R, K)
        log_phi = torch.log(phi.clamp_min(torch.finfo(phi.dtype).tiny))
        logp = (log_phi - log_norm)[..., None] - (absdev / b[..., None]).sum(2)
        return logp, torch.zeros((), dtype=torch.long, device=z.device)

    def energy(self, z: torch.Tensor, params: LaplaceParams, *, warn: bool = False) -> torch.Tensor:
        """Sample energy ``-log sum_k phi_k Laplace(z | mu_k, b_k)``, shape (R, N)."""
        logp, _ = self.log_prob_components(z, params)
        return -torch.logsumexp(logp, dim=1)

    def penalty(self, params: LaplaceParams) -> torch.Tensor:
        """``sum_k sum_j 1 / b_kj`` per run, shape (R,)."""
        return (params.b + self.eps).reciprocal().sum((-1, -2))


MIXTURES = {"gaussian": GaussianMixture, "laplace": LaplaceMixture}
