"""The common public design of a PyTorch DAGMM, re-implemented for timing only.

This mirrors how the widely used public reimplementations are built, so that
``step_time.py`` can time it beside this project in the same process:

* ``nn.Linear``/``nn.Tanh`` stacks, one model per run;
* a ``TensorDataset`` + ``DataLoader`` that collates each batch from
  individual samples;
* mixture parameters by broadcasting, then the energy with a Python loop over
  the K components, an explicit ``torch.inverse`` per component, the
  determinant from a Cholesky factor computed on the CPU (a device round trip
  on a GPU), and ``exp``/``log`` with a max shift instead of ``logsumexp``.

It is written from the published description of that design, is used only by
the benchmark, and is never used for results.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class CommonDAGMM(nn.Module):
    def __init__(self, n_features=118, hidden=(60, 30, 10), latent=1, n_gmm=4):
        super().__init__()
        dims = (n_features, *hidden, latent)
        enc, dec = [], []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            enc += [nn.Linear(a, b)] + ([nn.Tanh()] if i < len(dims) - 2 else [])
        rdims = dims[::-1]
        for i, (a, b) in enumerate(zip(rdims[:-1], rdims[1:])):
            dec += [nn.Linear(a, b)] + ([nn.Tanh()] if i < len(rdims) - 2 else [])
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.estimation = nn.Sequential(
            nn.Linear(latent + 2, 10), nn.Tanh(), nn.Dropout(0.5), nn.Linear(10, n_gmm), nn.Softmax(dim=1)
        )

    def forward(self, x):
        enc = self.encoder(x)
        dec = self.decoder(enc)
        rec_cosine = nn.functional.cosine_similarity(x, dec, dim=1)
        rec_euclidean = (x - dec).norm(2, dim=1) / x.norm(2, dim=1)
        z = torch.cat([enc, rec_euclidean.unsqueeze(-1), rec_cosine.unsqueeze(-1)], dim=1)
        gamma = self.estimation(z)
        return enc, dec, z, gamma

    @staticmethod
    def gmm_params(z, gamma):
        n = gamma.size(0)
        sum_gamma = gamma.sum(0)
        phi = sum_gamma / n
        mu = (gamma.unsqueeze(-1) * z.unsqueeze(1)).sum(0) / sum_gamma.unsqueeze(-1)
        z_mu = z.unsqueeze(1) - mu.unsqueeze(0)
        z_mu_outer = z_mu.unsqueeze(-1) * z_mu.unsqueeze(-2)
        cov = (gamma.unsqueeze(-1).unsqueeze(-1) * z_mu_outer).sum(0) / sum_gamma.unsqueeze(-1).unsqueeze(-1)
        return phi, mu, cov

    @staticmethod
    def energy(z, phi, mu, cov, eps=1e-12):
        k, d, _ = cov.shape
        z_mu = z.unsqueeze(1) - mu.unsqueeze(0)
        cov_inverse, det_cov, cov_diag = [], [], 0
        for i in range(k):  # per-component loop
            cov_k = cov[i] + torch.eye(d, device=cov.device) * eps
            cov_inverse.append(torch.inverse(cov_k).unsqueeze(0))  # explicit inverse
            chol = torch.linalg.cholesky((cov_k * (2 * math.pi)).cpu())  # host round trip
            det_cov.append(chol.diag().prod().unsqueeze(0))
            cov_diag = cov_diag + torch.sum(1 / cov_k.diag())
        cov_inverse = torch.cat(cov_inverse, dim=0)
        det_cov = torch.cat(det_cov).to(z.device)
        exp_term_tmp = -0.5 * torch.sum(torch.sum(z_mu.unsqueeze(-1) * cov_inverse.unsqueeze(0), dim=-2) * z_mu, dim=-1)
        max_val = torch.max(exp_term_tmp.clamp(min=0), dim=1, keepdim=True)[0]
        exp_term = torch.exp(exp_term_tmp - max_val)
        sample_energy = -max_val.squeeze() - torch.log(
            torch.sum(phi.unsqueeze(0) * exp_term / (torch.sqrt(det_cov)).unsqueeze(0), dim=1) + eps
        )
        return sample_energy, cov_diag

    def loss(self, x, lambda_energy=0.1, lambda_cov=0.005):
        _, dec, z, gamma = self(x)
        phi, mu, cov = self.gmm_params(z, gamma)
        e, cov_diag = self.energy(z, phi, mu, cov)
        recon = torch.mean((x - dec) ** 2)
        return recon + lambda_energy * e.mean() + lambda_cov * cov_diag


def make_loader(X: torch.Tensor, batch_size: int = 1024, seed: int = 0) -> DataLoader:
    """Per-sample dataset: each batch is collated from ``batch_size`` items."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(X), batch_size=batch_size, shuffle=True, generator=g)
