"""The DAGMM torch module: scaling, compression network, estimation network, mixture.

Pure ``nn.Module``: no optimiser and no data loading (see :mod:`dagmm.training`).
The compression network and the mixture family are pluggable: any module
mapping x (R, B, ...) to (z_c (R, B, L), x_hat like x), and any family with
``estimate`` / ``energy`` / ``penalty`` (see :mod:`dagmm.mixture`).
The fitted mixture parameters are buffers, so ``.to(device)`` and
``state_dict`` carry them.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from .mixture import GaussianMixture, GaussianParams
from .nn import EstimationNetwork, reconstruction_features

__all__ = ["DAGMMModule", "DAGMMOutput"]


class DAGMMOutput(NamedTuple):
    """What one forward pass gives.

    Attributes
    ----------
    x : (R, B, ...)        scaled input
    x_hat : (R, B, ...)    reconstruction
    z : (R, B, D)          [z_c, relative Euclidean distance, cosine similarity]
    gamma : (R, B, K)      memberships
    """

    x: torch.Tensor
    x_hat: torch.Tensor
    z: torch.Tensor
    gamma: torch.Tensor


class DAGMMModule(nn.Module):
    """DAGMM for R runs at once.

    Parameters
    ----------
    compressor : nn.Module
        Maps scaled x (R, B, ...) to (z_c (R, B, L), x_hat).
    estimation : EstimationNetwork
    mixture : GaussianMixture or another family
    n_runs : int
    input_shape : tuple of int
        Shape of one sample (``(n_features,)`` for tabular data).
    """

    def __init__(self, compressor: nn.Module, estimation: EstimationNetwork, mixture, n_runs: int, input_shape: Sequence[int]):
        super().__init__()
        self.compressor = compressor
        self.estimation = estimation
        self.mixture = mixture
        self.n_runs = n_runs
        self.input_shape = tuple(input_shape)
        # Per-run input scaling x' = (x - shift) / scale, fitted on training rows.
        self.register_buffer("shift", torch.zeros(n_runs, 1, *self.input_shape))
        self.register_buffer("scale", torch.ones(n_runs, 1, *self.input_shape))
        k = estimation.fc2.out_features
        d = estimation.fc1.in_features
        self.register_buffer("phi", torch.full((n_runs, k), float("nan")))
        self.register_buffer("mu", torch.full((n_runs, k, d), float("nan")))
        self.register_buffer("cov", torch.full((n_runs, k, d, d), float("nan")))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """Initialise every run's weights from that run's generator."""
        if len(generators) != self.n_runs:
            raise ValueError(f"need {self.n_runs} generators, got {len(generators)}")
        self.compressor.reset_parameters(generators)
        self.estimation.reset_parameters(generators)

    @property
    def params(self) -> GaussianParams:
        """The mixture parameters fitted over the whole training set."""
        return GaussianParams(self.phi, self.mu, self.cov)

    def forward(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> DAGMMOutput:
        """Scale, compress, reconstruct, and compute memberships.

        Parameters
        ----------
        x : Tensor (R, B, ...), raw (unscaled) input
        dropout_mask : Tensor (R, B, hidden), optional
        """
        x = (x - self.shift) / self.scale
        z_c, x_hat = self.compressor(x)
        z = torch.cat([z_c.flatten(2), reconstruction_features(x, x_hat)], dim=-1)
        gamma = self.estimation(z, dropout_mask)
        return DAGMMOutput(x, x_hat, z, gamma)

    def loss(
        self,
        x: torch.Tensor,
        dropout_mask: torch.Tensor | None,
        lambda_energy: float,
        lambda_cov: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The paper's objective (eq. 7) per run, on a mini-batch.

        ``||x - x_hat||^2`` summed over features and averaged over the batch,
        plus ``lambda_energy`` times the mean sample energy under the batch's
        own mixture parameters, plus ``lambda_cov`` times ``sum_kj 1/Sigma_kjj``.

        Returns
        -------
        loss : Tensor (R,)
        n_retried : Tensor ()   covariances that needed extra jitter
        """
        out = self(x, dropout_mask)
        recon = (out.x - out.x_hat).pow(2).flatten(2).sum(-1).mean(-1)  # (R,)
        params = self.mixture.estimate(out.gamma, out.z)
        logp, n_retried = self.mixture.log_prob_components(out.z, params)
        energy = -torch.logsumexp(logp, dim=1).mean(-1)  # (R,)
        return recon + lambda_energy * energy + lambda_cov * self.mixture.penalty(params), n_retried

    def energy(self, x: torch.Tensor, *, warn: bool = True) -> torch.Tensor:
        """Sample energy (R, B) under the fitted mixture parameters."""
        out = self(x)
        return self.mixture.energy(out.z, self.params, warn=warn)
