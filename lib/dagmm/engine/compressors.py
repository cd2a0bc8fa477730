"""Variational compression networks for DAGMM: a VAE and a VQ-VAE.

Both follow :class:`dagmm.engine.layers.MLPCompressor`'s shapes (a leading run axis R,
the encoder widths ``hidden``, a mirrored decoder) and return
``(z_c, x_hat, aux)``, where ``aux`` (R,) is the extra loss term the
variational model adds to DAGMM's objective (already weighted), averaged over
the mini-batch. The reconstruction features and the estimation network are
DAGMM's (see :class:`dagmm.engine.module.DAGMMModule`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .layers import RunMLP

__all__ = ["VAECompressor", "VQCompressor", "gaussian_kl"]


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(logvar)) || N(0, I))`` per sample, summed over the last axis.

    Shape
    -----
    mean, logvar (..., L) -> (...)
    """
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


class VAECompressor(nn.Module):
    """A variational autoencoder as DAGMM's compression network.

    The encoder gives a mean and a log-variance per latent dimension. In
    training (when the caller passes standard normal ``noise``) the code is
    the reparameterised sample ``mean + exp(logvar / 2) * noise``; at
    evaluation (``noise=None``) it is the mean. ``aux`` is ``kl_weight``
    times the KL divergence to the standard normal prior, averaged over the
    batch; with ``kl_weight = 1``, DAGMM's squared reconstruction error plus
    the KL is the negative ELBO of a Gaussian decoder with variance 1/2 (up to
    a constant).

    Parameters
    ----------
    n_runs, n_features, latent_dim : int
    hidden : sequence of int
    kl_weight : float, default 1.0
    activation : str, default "tanh"

    Shape
    -----
    x (R, B, n_features), noise (R, B, latent_dim) or None ->
    z_c (R, B, latent_dim), x_hat (R, B, n_features), aux (R,)
    """

    def __init__(self, n_runs: int, n_features: int, hidden: Sequence[int], latent_dim: int,
                 kl_weight: float = 1.0, activation: str = "tanh"):
        super().__init__()
        self.latent_dim = self.noise_dim = latent_dim
        self.kl_weight = kl_weight
        self.encoder = RunMLP(n_runs, (n_features, *hidden, 2 * latent_dim), activation)
        self.decoder = RunMLP(n_runs, (latent_dim, *hidden[::-1], n_features), activation)

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        self.encoder.reset_parameters(generators)
        self.decoder.reset_parameters(generators)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (R, B, latent_dim)."""
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return mean, logvar.clamp(-30.0, 20.0)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        mean, logvar = self.encode(x)
        z = mean if noise is None else mean + torch.exp(0.5 * logvar) * noise
        aux = self.kl_weight * gaussian_kl(mean, logvar).mean(-1)  # (R,)
        return z, self.decoder(z), aux


class VQCompressor(nn.Module):
    """A vector-quantised autoencoder (VQ-VAE) as DAGMM's compression network.

    The encoder output ``z_e`` is replaced by its nearest codebook vector
    ``e_k`` (Euclidean); gradients pass to the encoder with the
    straight-through estimator (``z_q = z_e + sg(e_k - z_e)``). ``aux`` is the
    codebook term ``||sg(z_e) - e_k||^2`` plus ``commitment`` times
    ``||z_e - sg(e_k)||^2``, averaged over the batch (van den Oord et al., 2017).
    The code ``z_c`` given to the estimation network is ``z_q``.

    Parameters
    ----------
    n_runs, n_features, latent_dim : int
    hidden : sequence of int
    n_codes : int, default 32
        Codebook size.
    commitment : float, default 0.25
        The commitment weight beta.

    Attributes
    ----------
    codebook : Parameter (R, n_codes, latent_dim)

    Shape
    -----
    x (R, B, n_features) -> z_c (R, B, latent_dim), x_hat (R, B, n_features), aux (R,)
    """

    def __init__(self, n_runs: int, n_features: int, hidden: Sequence[int], latent_dim: int,
                 n_codes: int = 32, commitment: float = 0.25, activation: str = "tanh"):
        super().__init__()
        self.latent_dim, self.n_codes, self.commitment = latent_dim, n_codes, commitment
        self.encoder = RunMLP(n_runs, (n_features, *hidden, latent_dim), activation)
        self.decoder = RunMLP(n_runs, (latent_dim, *hidden[::-1], n_features), activation)
        self.codebook = nn.Parameter(torch.empty(n_runs, n_codes, latent_dim))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """Networks as ``nn.Linear``; codes U(-1/n_codes, 1/n_codes) as in the VQ-VAE reference code."""
        self.encoder.reset_parameters(generators)
        self.decoder.reset_parameters(generators)
        with torch.no_grad():
            for r, g in enumerate(generators):
                u = torch.rand(self.n_codes, self.latent_dim, generator=g)
                self.codebook[r].copy_(u.mul_(2.0 / self.n_codes).sub_(1.0 / self.n_codes))

    def quantise(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code index (R, B) and code vectors (R, B, latent_dim) of ``z_e``."""
        d = torch.cdist(z_e, self.codebook)  # (R, B, n_codes)
        idx = d.argmin(-1)
        e = torch.gather(self.codebook, 1, idx[..., None].expand(-1, -1, self.latent_dim))
        return idx, e

    def forward(self, x: torch.Tensor):
        z_e = self.encoder(x)
        _, e = self.quantise(z_e)
        codebook_term = (z_e.detach() - e).pow(2).sum(-1).mean(-1)
        commit_term = (z_e - e.detach()).pow(2).sum(-1).mean(-1)
        z_q = z_e + (e - z_e).detach()  # straight-through
        return z_q, self.decoder(z_q), codebook_term + self.commitment * commit_term
