"""The DAGMM torch module: scaling, compression network, estimation network, mixture.

Pure ``nn.Module``: no optimiser and no data loading (see :mod:`dagmm.engine.training`).
The compression network and the mixture family are pluggable: any module
mapping x (R, B, ...) to ``(z_c (R, B, L), x_hat like x)`` or
``(z_c, x_hat, aux)`` where ``aux`` (R,) is an extra loss term (a VAE's KL,
a VQ-VAE's codebook terms) already weighted; a compressor with a positive
``noise_dim`` attribute is also given per-sample standard normal noise
(R, B, noise_dim) during training (drawn by the training loop from each run's
own generator). Any family with ``estimate`` / ``log_prob_components`` /
``energy`` / ``penalty`` / ``Params`` / ``param_shapes`` (see :mod:`dagmm.mixture`).
The fitted mixture parameters are buffers, so ``.to(device)`` and
``state_dict`` carry them.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from .layers import EstimationNetwork, as_feature_major, pair_sums, prefer_feature_major, reconstruction_features

__all__ = ["DAGMMModule", "DAGMMOutput", "sq_error", "ANOMALY_LOSSES"]

ANOMALY_LOSSES = (None, "inverse", "hinge")
NORM_FLOOR = 1e-10  # the unfitted floor of the norms in the reconstruction features (the paper has none)


class DAGMMOutput(NamedTuple):
    """What one forward pass gives.

    Attributes
    ----------
    x : (R, B, ...)        scaled input
    x_hat : (R, B, ...)    reconstruction
    z : (R, B, D)          [z_c, relative Euclidean distance, cosine similarity]
    gamma : (R, B, K)      memberships
    aux : (R,) or None     the compressor's extra loss term
    sq_err : (R, B)        ``||x - x_hat||^2``, the reconstruction term of the loss
    """

    x: torch.Tensor
    x_hat: torch.Tensor
    z: torch.Tensor
    gamma: torch.Tensor
    aux: torch.Tensor | None = None
    sq_err: torch.Tensor | None = None


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
    anomaly_loss : {None, "inverse", "hinge"}
        How labelled anomalies in a training batch enter the loss (see
        :meth:`loss`); None: the paper's unsupervised objective.
    anomaly_margin : float, default 5.0
        Margin (nats) of the ``"hinge"`` anomaly term.
    """

    def __init__(self, compressor: nn.Module, estimation: EstimationNetwork, mixture, n_runs: int, input_shape: Sequence[int],
                 anomaly_loss: str | None = None, anomaly_margin: float = 5.0):
        super().__init__()
        if anomaly_loss not in ANOMALY_LOSSES:
            raise ValueError(f"anomaly_loss must be one of {ANOMALY_LOSSES}, got {anomaly_loss!r}")
        self.anomaly_loss, self.anomaly_margin = anomaly_loss, anomaly_margin
        self.compressor = compressor
        self.estimation = estimation
        self.mixture = mixture
        self.n_runs = n_runs
        self.input_shape = tuple(input_shape)
        # Per-run input scaling x' = (x - shift) / scale, fitted on training rows.
        self.register_buffer("shift", torch.zeros(n_runs, 1, *self.input_shape))
        self.register_buffer("scale", torch.ones(n_runs, 1, *self.input_shape))
        # Per-run floor of the norms in the relative distance and cosine (set by
        # dagmm.engine.training.fit_norm_floor; 1e-10 keeps the paper's unfloored features).
        self.register_buffer("norm_floor", torch.full((n_runs, 1), NORM_FLOOR))
        k = estimation.fc2.out_features
        d = estimation.fc1.in_features
        # The mixture fitted over the whole training set (NaN until fitted).
        for name, shape in mixture.param_shapes(k, d).items():
            self.register_buffer(name, torch.full((n_runs, *shape), float("nan")))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """Initialise every run's weights from that run's generator."""
        if len(generators) != self.n_runs:
            raise ValueError(f"need {self.n_runs} generators, got {len(generators)}")
        self.compressor.reset_parameters(generators)
        self.estimation.reset_parameters(generators)

    @property
    def noise_dim(self) -> int:
        """Width of the per-sample noise the compressor takes in training (0: none)."""
        return int(getattr(self.compressor, "noise_dim", 0))

    @property
    def params(self):
        """The mixture parameters fitted over the whole training set."""
        P = self.mixture.Params
        return P(*(getattr(self, f) for f in P._fields))

    def set_params(self, params) -> None:
        """Store fitted mixture parameters (a ``mixture.Params``) in the buffers."""
        for f, v in zip(params._fields, params):
            getattr(self, f).copy_(v)

    def forward(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> DAGMMOutput:
        """Scale, compress, reconstruct, and compute memberships.

        Parameters
        ----------
        x : Tensor (R, B, ...), raw (unscaled) input
        dropout_mask : Tensor (R, B, hidden), optional
        noise : Tensor (R, B, noise_dim), optional
            Training noise for a stochastic compressor; None at evaluation.
        """
        x = (x - self.shift) / self.scale
        feature_major = prefer_feature_major(x)
        if feature_major:  # stored (R, F, B) for the layers' faster products, with the scaling fused in
            x = as_feature_major(x)
        out = self.compressor(x, noise) if self.noise_dim else self.compressor(x)
        z_c, x_hat = out[0], out[1]
        aux = out[2] if len(out) > 2 else None
        sums = pair_sums(x, x_hat)  # one pass for the features and the loss's reconstruction term
        z = torch.cat([z_c.flatten(2), reconstruction_features(x, x_hat, eps=self.norm_floor, sums=sums)], dim=-1)
        if feature_major:
            z = as_feature_major(z)
        gamma = self.estimation(z, dropout_mask)
        return DAGMMOutput(x, x_hat, z, gamma, aux, sums[2])

    def loss(
        self,
        x: torch.Tensor,
        dropout_mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        lambda_energy: float,
        lambda_cov: float,
        lambda_recon: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The paper's objective (eq. 7) per run, on a mini-batch.

        ``lambda_recon`` times ``||x - x_hat||^2`` summed over features and
        averaged over the batch, plus ``lambda_energy`` times the mean sample
        energy under the batch's own mixture parameters, plus ``lambda_cov``
        times the family's penalty (``sum_kj 1/Sigma_kjj``), plus the
        compressor's ``aux`` term if it has one. ``lambda_recon = 0`` is the
        paper's GMM-EN baseline; ``lambda_energy = lambda_cov = 0`` a plain
        autoencoder (the mixture is then not computed at all).

        With ``labels`` (R, B), 1 marking labelled anomalies (the seeds'
        "modified loss"), the batch's mixture is estimated from the normal
        samples only, the energy term averages ``E(z_i)`` over normal samples
        and, over anomalies, ``1 / E(z_i)`` (``anomaly_loss="inverse"``, the
        seeds' form: unbounded below as E -> 0+ and rewarding negative
        energies) or ``max(0, m + mean_normal(E) - E(z_i))`` (``"hinge"``:
        anomalies are pushed ``anomaly_margin`` nats above the batch's mean
        normal energy, and no further). The reconstruction term covers all
        samples, as in the seeds.

        Returns
        -------
        loss : Tensor (R,)
        n_retried : Tensor ()   covariances that needed extra jitter
        """
        out = self(x, dropout_mask, noise)
        if not (lambda_energy or lambda_cov):  # a plain autoencoder: no mixture (and no 0 * inf from a degenerate batch)
            loss = out.x.new_zeros(out.x.shape[0])
            n_retried = torch.zeros((), dtype=torch.long, device=x.device)
        elif labels is None or self.anomaly_loss is None:
            params = self.mixture.estimate(out.gamma, out.z)
            logp, n_retried = self.mixture.log_prob_components(out.z, params)
            energy = -torch.logsumexp(logp, dim=1).mean(-1)  # (R,)
            loss = lambda_energy * energy + lambda_cov * self.mixture.penalty(params)
        else:
            normal = 1.0 - labels.to(out.z.dtype)  # (R, B)
            params = self.mixture.estimate(out.gamma, out.z, weight=normal)
            logp, n_retried = self.mixture.log_prob_components(out.z, params)
            e = -torch.logsumexp(logp, dim=1)  # (R, B)
            n_norm = normal.sum(-1).clamp_min(1.0)
            e_norm = (e * normal).sum(-1) / n_norm  # (R,)
            is_anom = labels.bool()
            if self.anomaly_loss == "inverse":
                e_anom = 1.0 / torch.where(is_anom, e, torch.ones_like(e))  # 1/E only where labelled
            else:
                e_anom = torch.relu(self.anomaly_margin + e_norm.detach()[:, None] - e)
            energy = torch.where(is_anom, e_anom, e).mean(-1)
            loss = lambda_energy * energy + lambda_cov * self.mixture.penalty(params)
        if lambda_recon:
            loss = loss + lambda_recon * out.sq_err.mean(-1)
        if out.aux is not None:
            loss = loss + out.aux
        return loss, n_retried

    def energy(self, x: torch.Tensor, *, warn: bool = True) -> torch.Tensor:
        """Sample energy (R, B) under the fitted mixture parameters."""
        out = self(x)
        return self.mixture.energy(out.z, self.params, warn=warn)

    def recon_error(self, x: torch.Tensor) -> torch.Tensor:
        """Squared reconstruction error of each sample in the scaled space, (R, B)."""
        return self(x).sq_err


def sq_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """``||x - x_hat||^2`` per sample: (R, B, ...) -> (R, B)."""
    return (x - x_hat).pow(2).flatten(2).sum(-1)
