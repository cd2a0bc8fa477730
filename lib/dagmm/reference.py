"""A reference DAGMM in plain PyTorch, to be read beside the paper.

Zong et al., "Deep Autoencoding Gaussian Mixture Model for Unsupervised
Anomaly Detection", ICLR 2018. The equation numbers in the comments are the
paper's.

The fast engine (:mod:`dagmm.engine.module`, :mod:`dagmm.engine.layers`, :mod:`dagmm.mixture`,
:mod:`dagmm.engine.training`) computes the same model for R runs at once, with a
leading run axis in every layer and every tensor and a training loop tuned
for speed. This file is the same model written plainly: one model, samples
in rows (B, D), ``nn.Linear`` / ``nn.Tanh`` / ``nn.Dropout`` / ``nn.Softmax``,
a Cholesky factor for the Gaussians, and an ordinary ``torch.optim.Adam``
loop. Given the same weights, the same mini-batch and the same dropout mask,
both compute the same loss and the same gradients, to float rounding
(``tests/test_reference.py``).

Contents, in the paper's order:

1. the compression network and the reconstruction features (Eq. 1-3),
2. the estimation network (Eq. 4),
3. the Gaussian mixture: parameters from memberships (Eq. 5), sample
   energy (Eq. 6) and the covariance penalty of the objective,
4. the model and its objective (Eq. 7),
5. fitting: input scaling, training loop, the mixture over the whole
   training set,
6. the hand-over to the fast engine's module (weights both ways), and the
   fit behind ``dagmm.DAGMM(engine="reference")``.

Where the study departs from the paper, the fast engine's choices are
reproduced and said so: inputs scaled ``(x - shift) / scale``; the norms in
the reconstruction features floored (``norm_floor``, the paper's features
with 1e-10); a diagonal jitter ``eps`` on every covariance, raised where a
Cholesky factorisation fails; and the mixture used for scoring estimated over
the whole training set after training.

The compression network and the mixture family are plug-ins, as in the fast
engine: any module mapping scaled ``x`` (B, D) to ``(z_c, x_hat)`` or
``(z_c, x_hat, aux)`` (``aux``: an extra, already weighted loss term; a
module with a positive ``noise_dim`` is given standard normal noise
(B, noise_dim) in training), and any mixture object with ``Params``,
``param_shapes``, ``estimate``, ``log_prob_components`` and ``penalty``
(:class:`GaussianMixture` below; :class:`OneRunMixture` runs any family of
:mod:`dagmm.mixture` with a run axis of 1).
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from .mixture import CovarianceJitterWarning, LaplaceMixture
from .engine.module import NORM_FLOOR
from .engine.layers import RunLinear
from .engine.training import DROPOUT_SEED_OFFSET, NOISE_SEED_OFFSET

__all__ = [
    "mlp", "Autoencoder", "VAE", "VQVAE", "reconstruction_features", "EstimationNetwork",
    "GaussianParams", "GaussianMixture", "OneRunMixture", "MIXTURES", "cholesky_with_jitter",
    "DAGMMOutput", "ReferenceDAGMM",
    "fit_scaling", "fit_norm_floor", "train", "fit_mixture",
    "parameter_pairs", "from_engine_module", "to_engine_module", "build_from_estimator", "fit_estimator",
]

LOG_2PI = math.log(2.0 * math.pi)
JITTER_LADDER = (1.0, 1e2, 1e4, 1e6)  # multiples of eps tried in turn (as dagmm.mixture.stable_cholesky)


# ---------------------------------------------------------------------------
# 1. Compression network (Eq. 1-3)
# ---------------------------------------------------------------------------

def mlp(widths: Sequence[int]) -> nn.Sequential:
    """``FC(w0, w1) - tanh - FC(w1, w2) - tanh - ... - FC(w_{n-1}, w_n)``: a linear last layer.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first, e.g. ``(118, 60, 30, 10, 1)``.
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i > 0:
            layers.append(nn.Tanh())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """The paper's compression network (Eq. 1).

    ``z_c = h(x; θe)`` with the encoder ``FC(D, h1, tanh) - ... - FC(h_last, L)``,
    ``x' = g(z_c; θd)`` with the mirrored decoder ``FC(L, h_last, tanh) - ... - FC(h1, D)``.

    Parameters
    ----------
    n_features, latent_dim : int
    hidden : sequence of int
        Encoder widths between input and code, e.g. ``(60, 30, 10)``.

    Shape
    -----
    x (B, D) -> z_c (B, L), x_hat (B, D)
    """

    def __init__(self, n_features: int, hidden: Sequence[int], latent_dim: int):
        super().__init__()
        self.encoder = mlp((n_features, *hidden, latent_dim))
        self.decoder = mlp((latent_dim, *hidden[::-1], n_features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_c = self.encoder(x)  # Eq. 1: z_c = h(x; θe)
        x_hat = self.decoder(z_c)  # Eq. 1: x' = g(z_c; θd)
        return z_c, x_hat


class VAE(nn.Module):
    """A variational autoencoder as the compression network (not in the paper).

    The encoder gives a mean and a log-variance (clamped to [-30, 20]); in
    training the code is ``mean + exp(logvar / 2) * noise`` for the standard
    normal ``noise`` the training loop passes, at evaluation (``noise=None``)
    the mean. ``aux`` is ``kl_weight`` times ``KL(q(z|x) || N(0, I))``,
    averaged over the batch (:class:`dagmm.engine.compressors.VAECompressor`).

    Shape
    -----
    x (B, D), noise (B, L) or None -> z_c (B, L), x_hat (B, D), aux ()
    """

    def __init__(self, n_features: int, hidden: Sequence[int], latent_dim: int, kl_weight: float = 1.0):
        super().__init__()
        self.noise_dim = latent_dim
        self.kl_weight = kl_weight
        self.encoder = mlp((n_features, *hidden, 2 * latent_dim))
        self.decoder = mlp((latent_dim, *hidden[::-1], n_features))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        z_c = mean if noise is None else mean + torch.exp(0.5 * logvar) * noise  # reparameterisation
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)  # (B,)
        return z_c, self.decoder(z_c), self.kl_weight * kl.mean()


class VQVAE(nn.Module):
    """A vector-quantised autoencoder as the compression network (not in the paper).

    The encoder output ``z_e`` is replaced by its nearest code ``e`` of the
    codebook, with the straight-through gradient ``z_q = z_e + sg(e - z_e)``;
    ``aux = ||sg(z_e) - e||^2 + commitment ||z_e - sg(e)||^2``, averaged over
    the batch (:class:`dagmm.engine.compressors.VQCompressor`).

    Shape
    -----
    x (B, D) -> z_c (B, L), x_hat (B, D), aux ()
    """

    def __init__(self, n_features: int, hidden: Sequence[int], latent_dim: int, n_codes: int = 32,
                 commitment: float = 0.25):
        super().__init__()
        self.commitment = commitment
        self.encoder = mlp((n_features, *hidden, latent_dim))
        self.decoder = mlp((latent_dim, *hidden[::-1], n_features))
        self.codebook = nn.Parameter(torch.empty(n_codes, latent_dim).uniform_(-1.0 / n_codes, 1.0 / n_codes))

    def forward(self, x: torch.Tensor):
        z_e = self.encoder(x)
        e = self.codebook[torch.cdist(z_e, self.codebook).argmin(-1)]  # nearest code, (B, L)
        codebook_term = (z_e.detach() - e).pow(2).sum(-1).mean()
        commitment_term = (z_e - e.detach()).pow(2).sum(-1).mean()
        z_q = z_e + (e - z_e).detach()  # straight-through
        return z_q, self.decoder(z_q), codebook_term + self.commitment * commitment_term


def reconstruction_features(x: torch.Tensor, x_hat: torch.Tensor, floor: float | torch.Tensor = NORM_FLOOR) -> torch.Tensor:
    """``z_r`` of Eq. 2: relative Euclidean distance and cosine similarity of ``x`` and ``x'``.

    ``||x - x'|| / ||x||`` and ``<x, x'> / (||x|| ||x'||)``, with each norm
    floored at ``floor`` (``max(||x||, floor)``); the paper's features are
    ``floor = 1e-10``, a larger floor keeps the features of a row near zero
    bounded (``DAGMM(distance_floor=...)``).

    Shape
    -----
    x, x_hat (B, D) -> (B, 2)
    """
    x, x_hat = x.flatten(1), x_hat.flatten(1)
    norm_x = torch.linalg.vector_norm(x, dim=-1).clamp_min(floor)
    norm_x_hat = torch.linalg.vector_norm(x_hat, dim=-1).clamp_min(floor)
    relative_distance = torch.linalg.vector_norm(x - x_hat, dim=-1) / norm_x
    cosine_similarity = (x * x_hat).sum(-1) / (norm_x * norm_x_hat)
    return torch.stack([relative_distance, cosine_similarity], dim=-1)


# ---------------------------------------------------------------------------
# 2. Estimation network (Eq. 4)
# ---------------------------------------------------------------------------

class EstimationNetwork(nn.Module):
    """``p = MLN(z; θm)``, ``γ̂ = softmax(p)`` (Eq. 4).

    ``FC(D, hidden, tanh) - Dropout(dropout) - FC(hidden, K) - softmax``.
    In training mode ``nn.Dropout`` draws its own mask, unless the caller
    passes ``dropout_mask`` (zeros and ``1 / (1 - dropout)``, e.g. the fast
    engine's, to replay its draws); in evaluation mode there is no dropout
    unless a mask is passed.

    Shape
    -----
    z (B, D), dropout_mask (B, hidden) or None -> γ̂ (B, K)
    """

    def __init__(self, in_dim: int, hidden: int, n_components: int, dropout: float = 0.5):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.tanh = nn.Tanh()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, n_components)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, z: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.tanh(self.fc1(z))
        h = self.dropout(h) if dropout_mask is None else h * dropout_mask
        return self.softmax(self.fc2(h))  # Eq. 4: γ̂ = softmax(p)


# ---------------------------------------------------------------------------
# 3. Gaussian mixture (Eq. 5, 6 and the penalty P of Eq. 7)
# ---------------------------------------------------------------------------

class GaussianParams(NamedTuple):
    """φ̂ (K,) mixture weights, μ̂ (K, D) means, Σ̂ (K, D, D) covariances (without jitter)."""

    phi: torch.Tensor
    mu: torch.Tensor
    cov: torch.Tensor


def cholesky_with_jitter(cov: torch.Tensor, eps: float) -> tuple[torch.Tensor, int]:
    """Lower Cholesky factor ``L`` of ``Σ + jitter I`` for each covariance (K, D, D).

    ``jitter = eps``; a matrix that cannot be factorised is retried with
    ``eps`` times 1e2, 1e4, 1e6 (the last is kept whatever happens): the fast
    engine's rule (:func:`dagmm.mixture.stable_cholesky`). Returns ``L``
    (K, D, D) and how many matrices needed more than ``eps``.
    """
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    factors, n_retried = [], 0
    for sigma in cov:
        for mult in JITTER_LADDER:
            L, info = torch.linalg.cholesky_ex(sigma + eps * mult * eye)
            if info == 0:
                break
        n_retried += mult > 1.0
        factors.append(L)
    return torch.stack(factors), n_retried


class GaussianMixture:
    """The paper's mixture of K full-covariance Gaussians.

    Parameters
    ----------
    eps : float, default 1e-6
        Diagonal jitter of every covariance (``cov_eps``).
    """

    name = "gaussian"
    Params = GaussianParams

    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    @staticmethod
    def param_shapes(k: int, d: int) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter (the model keeps them as buffers once fitted)."""
        return {"phi": (k,), "mu": (k, d), "cov": (k, d, d)}

    @staticmethod
    def estimate(gamma: torch.Tensor, z: torch.Tensor) -> GaussianParams:
        """The mixture parameters of Eq. 5 from memberships ``γ̂`` (N, K) and points ``z`` (N, D).

        ``φ̂_k = Σ_i γ̂_ik / N``, ``μ̂_k = Σ_i γ̂_ik z_i / Σ_i γ̂_ik``,
        ``Σ̂_k = Σ_i γ̂_ik (z_i - μ̂_k)(z_i - μ̂_k)^T / Σ_i γ̂_ik``.
        (``Σ_i γ̂_ik`` gets ``10 * machine epsilon`` added, as in the fast
        engine, so an empty component stays finite.)
        """
        n = z.shape[0]
        nk = gamma.sum(0) + 10 * torch.finfo(gamma.dtype).eps  # Σ_i γ̂_ik, (K,)
        phi = nk / n
        mu = gamma.T @ z / nk[:, None]  # (K, D)
        diff = z[None] - mu[:, None]  # z_i - μ̂_k, (K, N, D)
        cov = torch.einsum("nk,knd,kne->kde", gamma, diff, diff) / nk[:, None, None]  # (K, D, D)
        return GaussianParams(phi, mu, cov)

    def log_prob_components(self, z: torch.Tensor, params: GaussianParams) -> tuple[torch.Tensor, int]:
        """``log φ̂_k + log N(z_i | μ̂_k, Σ̂_k)`` for every sample and component: (N, K).

        With ``Σ̂_k + jitter I = L_k L_k^T``: the Mahalanobis term is
        ``||L_k^{-1} (z - μ̂_k)||^2`` and ``log |2π Σ̂_k| = D log 2π + 2 Σ_j log L_kjj``.
        Also returns how many covariances needed more jitter than ``eps``.
        """
        phi, mu, cov = params
        d = z.shape[-1]
        L, n_retried = cholesky_with_jitter(cov, self.eps)  # (K, D, D)
        diff = (z[None] - mu[:, None]).transpose(1, 2)  # (K, D, N)
        y = torch.linalg.solve_triangular(L, diff, upper=False)  # L_k^{-1} (z_i - μ̂_k)
        mahalanobis = y.pow(2).sum(1)  # (z_i - μ̂_k)^T Σ̂_k^{-1} (z_i - μ̂_k), (K, N)
        log_det = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # log |Σ̂_k|, (K,)
        log_phi = torch.log(phi.clamp_min(torch.finfo(phi.dtype).tiny))
        logp = (log_phi - 0.5 * (log_det + d * LOG_2PI))[:, None] - 0.5 * mahalanobis  # (K, N)
        return logp.T, n_retried

    def penalty(self, params: GaussianParams) -> torch.Tensor:
        """``P(Σ̂) = Σ_k Σ_j 1 / Σ̂_kjj`` (Eq. 7), with the jitter ``eps`` on the diagonal: a scalar."""
        return (torch.diagonal(params.cov, dim1=-2, dim2=-1) + self.eps).reciprocal().sum()


class OneRunMixture:
    """A mixture family of :mod:`dagmm.mixture` (run axis R) used for one model, R = 1.

    Parameters
    ----------
    family : e.g. ``dagmm.mixture.LaplaceMixture(eps)``
    """

    def __init__(self, family):
        self.family = family
        self.name, self.eps, self.Params = family.name, family.eps, family.Params

    def param_shapes(self, k: int, d: int) -> dict[str, tuple[int, ...]]:
        return self.family.param_shapes(k, d)

    def estimate(self, gamma: torch.Tensor, z: torch.Tensor):
        """Parameters from ``γ̂`` (N, K) and ``z`` (N, D), without the run axis."""
        return self.Params(*(t[0] for t in self.family.estimate(gamma[None], z[None])))

    def log_prob_components(self, z: torch.Tensor, params) -> tuple[torch.Tensor, int]:
        """``log φ̂_k + log p_k(z_i)``, (N, K), and how many components needed extra jitter."""
        logp, n_retried = self.family.log_prob_components(z[None], self.Params(*(t[None] for t in params)))
        return logp[0].T, int(n_retried)

    def penalty(self, params) -> torch.Tensor:
        return self.family.penalty(self.Params(*(t[None] for t in params)))[0]


MIXTURES = {"gaussian": GaussianMixture, "laplace": lambda eps: OneRunMixture(LaplaceMixture(eps))}


# ---------------------------------------------------------------------------
# 4. The model and its objective (Eq. 7)
# ---------------------------------------------------------------------------

class DAGMMOutput(NamedTuple):
    """One forward pass.

    Attributes
    ----------
    x : (B, D)          scaled input
    x_hat : (B, D)      reconstruction x'
    z : (B, L + 2)      [z_c, relative Euclidean distance, cosine similarity] (Eq. 3)
    gamma : (B, K)      memberships γ̂ (Eq. 4)
    aux : () or None    the compressor's extra loss term
    sq_err : (B,)       L(x, x') = ||x - x'||^2
    """

    x: torch.Tensor
    x_hat: torch.Tensor
    z: torch.Tensor
    gamma: torch.Tensor
    aux: torch.Tensor | None
    sq_err: torch.Tensor


class ReferenceDAGMM(nn.Module):
    """DAGMM: compression network, estimation network and mixture, for one model.

    Parameters
    ----------
    compressor : nn.Module
        Scaled x (B, D) to ``(z_c (B, L), x_hat (B, D)[, aux ()])``
        (:class:`Autoencoder`, :class:`VAE`, :class:`VQVAE`).
    estimation : EstimationNetwork
    mixture : GaussianMixture or another family (see the module docstring)
    n_features : int

    Buffers
    -------
    shift, scale : (D,)
        Input scaling ``(x - shift) / scale`` (:func:`fit_scaling`).
    norm_floor : ()
        Floor of the norms in :func:`reconstruction_features` (:func:`fit_norm_floor`).
    phi, mu, cov (or the family's names)
        The mixture over the whole training set (:func:`fit_mixture`), NaN until fitted.
    """

    def __init__(self, compressor: nn.Module, estimation: EstimationNetwork, mixture, n_features: int):
        super().__init__()
        self.compressor = compressor
        self.estimation = estimation
        self.mixture = mixture
        self.register_buffer("shift", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("norm_floor", torch.tensor(NORM_FLOOR))
        k, d = estimation.fc2.out_features, estimation.fc1.in_features
        for name, shape in mixture.param_shapes(k, d).items():
            self.register_buffer(name, torch.full(shape, float("nan")))

    @property
    def noise_dim(self) -> int:
        """Width of the noise the compressor takes in training (0: none)."""
        return int(getattr(self.compressor, "noise_dim", 0))

    @property
    def params(self):
        """The fitted mixture parameters (a ``mixture.Params``)."""
        return self.mixture.Params(*(getattr(self, f) for f in self.mixture.Params._fields))

    def forward(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> DAGMMOutput:
        """Scale, compress, reconstruct, estimate memberships.

        Parameters
        ----------
        x : Tensor (B, D), raw (unscaled) rows
        dropout_mask : Tensor (B, hidden), optional (see :class:`EstimationNetwork`)
        noise : Tensor (B, noise_dim), optional; the training noise of a stochastic compressor
        """
        x = (x - self.shift) / self.scale
        out = self.compressor(x, noise) if self.noise_dim else self.compressor(x)
        z_c, x_hat = out[0], out[1]  # Eq. 1
        aux = out[2] if len(out) > 2 else None
        z_r = reconstruction_features(x, x_hat, self.norm_floor)  # Eq. 2
        z = torch.cat([z_c, z_r], dim=-1)  # Eq. 3: z = [z_c, z_r]
        gamma = self.estimation(z, dropout_mask)  # Eq. 4
        sq_err = (x - x_hat).pow(2).flatten(1).sum(-1)  # L(x, x') = ||x - x'||_2^2
        return DAGMMOutput(x, x_hat, z, gamma, aux, sq_err)

    def loss(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None, noise: torch.Tensor | None = None, *,
             lambda_energy: float, lambda_cov: float, lambda_recon: float = 1.0) -> tuple[torch.Tensor, int]:
        """The objective of Eq. 7 on a mini-batch of N rows.

        ``J = λ_r (1/N) Σ_i L(x_i, x'_i) + λ1 (1/N) Σ_i E(z_i) + λ2 P(Σ̂)``,
        with the mixture estimated from the mini-batch itself (Eq. 5), plus
        the compressor's ``aux`` term if it has one. The paper's ``λ_r`` is 1;
        ``lambda_recon = 0`` is its GMM-EN baseline, and with
        ``lambda_energy = lambda_cov = 0`` no mixture is estimated (a plain
        autoencoder).

        Returns
        -------
        J : Tensor ()
        n_retried : int     covariances that needed more jitter than ``eps``
        """
        out = self(x, dropout_mask, noise)
        J = out.x.new_zeros(())
        n_retried = 0
        if lambda_recon:
            J = J + lambda_recon * out.sq_err.mean()  # (1/N) Σ_i L(x_i, x'_i)
        if lambda_energy or lambda_cov:
            params = self.mixture.estimate(out.gamma, out.z)  # Eq. 5 on the mini-batch
            logp, n_retried = self.mixture.log_prob_components(out.z, params)
            energy = -torch.logsumexp(logp, dim=-1)  # Eq. 6: E(z_i), (N,)
            J = J + lambda_energy * energy.mean() + lambda_cov * self.mixture.penalty(params)
        if out.aux is not None:
            J = J + out.aux
        return J, n_retried

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Sample energy ``E(z)`` (Eq. 6) of each row under the fitted mixture, (B,); higher = more anomalous."""
        logp, _ = self.mixture.log_prob_components(self(x).z, self.params)
        return -torch.logsumexp(logp, dim=-1)

    def recon_error(self, x: torch.Tensor) -> torch.Tensor:
        """``||x - x'||^2`` of each row in the scaled space, (B,)."""
        return self(x).sq_err


# ---------------------------------------------------------------------------
# 5. Fitting: scaling, training, the mixture over the training set
# ---------------------------------------------------------------------------

@torch.no_grad()
def fit_scaling(model: ReferenceDAGMM, X: torch.Tensor, preprocessing: str | None) -> None:
    """Fit the input scaling on the training rows ``X`` (N, D).

    ``"minmax"``: ``shift = min``, ``scale = max - min``; ``"zscore"``:
    ``shift = mean``, ``scale = standard deviation`` (computed in float64);
    a constant feature gets scale 1; None: left as it is (no scaling).
    """
    if preprocessing == "minmax":
        lo, hi = X.amin(0), X.amax(0)
        shift, scale = lo, hi - lo
    elif preprocessing == "zscore":
        shift, scale = X.double().mean(0), X.double().std(0, correction=0)
    elif preprocessing is None:
        return
    else:
        raise ValueError(f"preprocessing must be 'minmax', 'zscore' or None, got {preprocessing!r}")
    model.shift.copy_(shift.to(X.dtype))
    model.scale.copy_(torch.where(scale > 0, scale, torch.ones_like(scale)).to(X.dtype))


@torch.no_grad()
def fit_norm_floor(model: ReferenceDAGMM, X: torch.Tensor, fraction: float) -> None:
    """Floor the norms of :func:`reconstruction_features` at ``fraction`` of the typical scaled row.

    ``floor = fraction * sqrt(mean_i ||(x_i - shift) / scale||^2)`` over the
    training rows ``X`` (float64), at least 1e-10; ``fraction = 0`` keeps
    the paper's features.
    """
    if fraction < 0:
        raise ValueError(f"the norm floor fraction must be >= 0, got {fraction}")
    scaled = (X.double() - model.shift.double()) / model.scale.double()
    rms_norm = scaled.flatten(1).pow(2).sum(1).mean().sqrt()
    model.norm_floor.copy_((fraction * rms_norm).clamp_min(NORM_FLOOR).float())


def train(model: ReferenceDAGMM, X: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
          lambda_energy: float, lambda_cov: float, lambda_recon: float = 1.0, seed: int | None = None,
          verbose: bool = False) -> dict:
    """Train ``model`` on the rows ``X`` (N, D) with Adam and mini-batches.

    Every epoch the rows are shuffled and cut into batches of
    ``batch_size`` (the last, smaller one kept); each batch gives the loss
    of Eq. 7, its gradient and one Adam step.

    Parameters
    ----------
    model : ReferenceDAGMM, on ``X``'s device, with its scaling fitted
    X : Tensor (N, D)
    epochs, batch_size : int
    lr, lambda_energy, lambda_cov, lambda_recon : float
    seed : int, optional
        None: shuffles, dropout (``nn.Dropout``) and the compressor's noise
        from torch's global generator. An int: from generators seeded with
        ``seed``, ``seed + DROPOUT_SEED_OFFSET`` and ``seed + NOISE_SEED_OFFSET``,
        drawn as :func:`dagmm.engine.training.train` draws them for a run with
        that seed: on the CPU the very same permutations, dropout masks and
        noise.
    verbose : bool
        A progress bar over epochs.

    Returns
    -------
    dict with ``loss`` (ndarray (epochs,), the mean loss per epoch) and
    ``failed`` (bool: the loss became NaN or inf).
    """
    n, device = X.shape[0], X.device
    p = model.estimation.dropout.p
    width = model.estimation.fc1.out_features
    if seed is None:
        shuffle_gen = dropout_gen = noise_gen = None
    else:
        shuffle_gen = torch.Generator().manual_seed(seed)
        dropout_gen = torch.Generator().manual_seed(seed + DROPOUT_SEED_OFFSET)
        noise_gen = torch.Generator().manual_seed(seed + NOISE_SEED_OFFSET)
    optimizer = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=lr)
    history, n_retried = np.zeros(epochs), 0
    epoch_range = range(epochs)
    if verbose and epochs > 0:
        from tqdm.auto import tqdm

        epoch_range = tqdm(epoch_range, desc="DAGMM (reference)", leave=False)
    model.train()
    for epoch in epoch_range:
        order = torch.randperm(n, generator=shuffle_gen).to(device)
        masks = noise = None
        if dropout_gen is not None and p > 0:  # inverted dropout: 1 / (1 - p) with probability 1 - p, else 0
            masks = ((torch.rand(n, width, generator=dropout_gen) < 1 - p).float() / (1 - p)).to(device)
        if model.noise_dim:
            noise = torch.randn(n, model.noise_dim, generator=noise_gen).to(device)
        total, n_batches = 0.0, 0
        for start in range(0, n, batch_size):
            batch = slice(start, start + batch_size)  # positions in this epoch's order
            loss, retried = model.loss(
                X[order[batch]],
                None if masks is None else masks[batch],
                None if noise is None else noise[batch],
                lambda_energy=lambda_energy, lambda_cov=lambda_cov, lambda_recon=lambda_recon,
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            n_batches += 1
            n_retried += retried
        history[epoch] = total / n_batches
    model.eval()
    if n_retried:
        warnings.warn(f"{n_retried} mini-batch covariances needed more diagonal jitter than "
                      f"eps={model.mixture.eps:g} during training", CovarianceJitterWarning, stacklevel=2)
    return {"loss": history, "failed": not np.isfinite(history).all()}


@torch.no_grad()
def fit_mixture(model: ReferenceDAGMM, X: torch.Tensor, chunk: int = 8192) -> None:
    """Estimate the scoring mixture (Eq. 5) over the whole training set ``X`` (N, D).

    ``z`` and ``γ̂`` of every training row in evaluation mode (no dropout),
    then the parameters in float64, stored in the model's buffers. ``chunk``:
    rows evaluated at once.
    """
    model.eval()
    outs = [model(X[s : s + chunk]) for s in range(0, X.shape[0], chunk)]
    z = torch.cat([o.z for o in outs]).double()
    gamma = torch.cat([o.gamma for o in outs]).double()
    for name, value in zip(model.mixture.Params._fields, model.mixture.estimate(gamma, z)):
        getattr(model, name).copy_(value)


# ---------------------------------------------------------------------------
# 6. Hand-over to the fast engine, and the estimator's reference fit
# ---------------------------------------------------------------------------

def parameter_pairs(model: ReferenceDAGMM, engine_module, run: int = 0) -> list:
    """Each parameter of ``model`` with its counterpart in the fast engine's ``DAGMMModule``.

    ``nn.Linear`` layers pair with the engine's ``RunLinear`` layers in
    order (compressor, then estimation network): ``nn.Linear.weight`` (out,
    in) is ``RunLinear.weight[run]`` (in, out) transposed and its bias
    (out,) is ``RunLinear.bias[run, 0]``. Other parameters (a codebook) pair
    by name, ``engine[run]``.

    Returns
    -------
    list of ``(param, engine_param, as_ref)``, where ``as_ref(t)`` maps a
    tensor shaped like ``engine_param`` (it, or its gradient) to ``param``'s
    layout.
    """
    ours = [m for m in model.modules() if isinstance(m, nn.Linear)]
    theirs = [m for m in engine_module.modules() if isinstance(m, RunLinear)]
    if [(m.in_features, m.out_features) for m in ours] != [(m.in_features, m.out_features) for m in theirs]:
        raise ValueError("the reference model's layers do not match the engine module's")
    pairs = []
    for a, b in zip(ours, theirs):
        pairs.append((a.weight, b.weight, lambda t: t[run].T))
        pairs.append((a.bias, b.bias, lambda t: t[run, 0]))
    linear = {id(q) for m in ours + theirs for q in m.parameters()}
    engine_named = {k: q for k, q in engine_module.named_parameters() if id(q) not in linear}
    for name, q in model.named_parameters():
        if id(q) in linear:
            continue
        if name not in engine_named or engine_named[name].shape[1:] != q.shape:
            raise ValueError(f"the engine module has no parameter {name!r} of shape {tuple(q.shape)}")
        pairs.append((q, engine_named.pop(name), lambda t: t[run]))
    if engine_named:
        raise ValueError(f"the reference model has no counterpart of {sorted(engine_named)}")
    return pairs


def _buffer_names(model: ReferenceDAGMM, engine_module) -> list[str]:
    """The buffers both models have: scaling, norm floor, mixture parameters (one per run in the engine's)."""
    if tuple(engine_module.mixture.Params._fields) != tuple(model.mixture.Params._fields):
        raise ValueError("the reference model's mixture family is not the engine module's")
    return ["shift", "scale", "norm_floor", *model.mixture.Params._fields]


@torch.no_grad()
def from_engine_module(engine_module, model: ReferenceDAGMM, run: int = 0) -> ReferenceDAGMM:
    """Copy run ``run`` of a fast-engine ``DAGMMModule`` into ``model``: weights, scaling, floor, mixture.

    Used to start the reference training from the fast engine's initial
    weights. Returns ``model``.
    """
    for ours, theirs, as_ref in parameter_pairs(model, engine_module, run):
        ours.copy_(as_ref(theirs))
    for name in _buffer_names(model, engine_module):
        getattr(model, name).copy_(getattr(engine_module, name)[run].reshape(getattr(model, name).shape))
    return model


@torch.no_grad()
def to_engine_module(model: ReferenceDAGMM, engine_module, run: int = 0):
    """Copy ``model`` into run ``run`` of a fast-engine ``DAGMMModule``: weights, scaling, floor, mixture.

    The engine module's scoring (``energy``, ``recon_error``, and so the
    estimator's ``anomaly_score``, ``predict``, ``transform``) then computes
    ``model``'s. Returns ``engine_module``.
    """
    for ours, theirs, as_ref in parameter_pairs(model, engine_module, run):
        as_ref(theirs).copy_(ours)
    for name in _buffer_names(model, engine_module):
        target = getattr(engine_module, name)[run]
        target.copy_(getattr(model, name).reshape(target.shape))
    return engine_module


def build_from_estimator(est, n_features: int) -> ReferenceDAGMM:
    """The reference model that a ``dagmm.DAGMM``'s parameters describe ("auto" sizes resolved)."""
    from . import defaults

    hidden, latent = defaults.network_sizes(est, n_features)
    if est.compressor == "vae":
        compressor = VAE(n_features, hidden, latent, est.kl_weight)
    elif est.compressor == "vqvae":
        compressor = VQVAE(n_features, hidden, latent, est.n_codes, est.commitment)
    else:
        compressor = Autoencoder(n_features, hidden, latent)
    estimation = EstimationNetwork(latent + 2, est.estimation_hidden, est.n_components, est.dropout)
    return ReferenceDAGMM(compressor, estimation, MIXTURES[est.mixture](est.cov_eps), n_features)


def fit_estimator(est, X: np.ndarray, seed: int):
    """What ``DAGMM(engine="reference").fit(X)`` trains: one model, handed to a fast-engine module.

    The initial weights are those the fast engine draws for ``seed``; the
    scaling, the norm floor and the training length are the estimator's;
    the shuffles, dropout masks and noise are those the fast engine would
    draw (:func:`train` with ``seed + SHUFFLE_SEED_OFFSET``); the scoring
    mixture is estimated over all of ``X``. The trained model is copied into
    a fresh ``DAGMMModule`` (:func:`to_engine_module`), so scoring is the
    fast engine's code.

    Parameters
    ----------
    est : dagmm.DAGMM (its parameters already checked)
    X : ndarray (N, D), float32, finite
    seed : int

    Returns
    -------
    module : DAGMMModule (one run), fitted, in eval mode, on the estimator's device
    history : dict, ``loss`` (epochs, 1) and ``failed`` (1,), as :func:`dagmm.estimator.fit_runs`
    X_device : Tensor (N, D), the data on the device
    """
    from . import defaults
    from .engine import training
    from .engine.training import INIT_SEED_OFFSET, SHUFFLE_SEED_OFFSET
    from .estimator import build_module, check_n_samples

    if getattr(est, "anomaly_loss", None) is not None:
        raise ValueError("engine='reference' trains the paper's unsupervised objective; "
                         f"anomaly_loss={est.anomaly_loss!r} needs engine='fast'")
    device = training.prepare_device(est.device)
    Xt = training.table_to_device(X, device)
    n, d = Xt.shape
    check_n_samples(est, n)
    engine_module = build_module(est, 1, d)
    engine_module.reset_parameters(training.make_generators([seed], offset=INIT_SEED_OFFSET))
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own initialisation (overwritten) leaves torch's global generator as it was
        model = from_engine_module(engine_module, build_from_estimator(est, d)).to(device)
    fit_scaling(model, Xt, est.preprocessing)
    if est.distance_floor:
        fit_norm_floor(model, Xt, est.distance_floor)
    history = train(model, Xt, epochs=defaults.training_epochs(est, n), batch_size=est.batch_size, lr=est.lr,
                    lambda_energy=est.lambda_energy, lambda_cov=est.lambda_cov, lambda_recon=est.lambda_recon,
                    seed=seed + SHUFFLE_SEED_OFFSET, verbose=est.verbose)
    fit_mixture(model, Xt)
    engine_module = to_engine_module(model, engine_module.to(device)).eval()
    return engine_module, {"loss": history["loss"][:, None], "failed": np.array([history["failed"]])}, Xt
