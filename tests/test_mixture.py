"""Energies and mixture parameters against independent float64 references."""
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from dagmm.mixture import CovarianceJitterWarning, GaussianMixture, GaussianParams, stable_cholesky


def _random_params(rng, R, K, D):
    phi = rng.dirichlet(np.ones(K), size=R)
    mu = rng.normal(size=(R, K, D))
    A = rng.normal(size=(R, K, D, D))
    cov = A @ np.swapaxes(A, -1, -2) + 0.1 * np.eye(D)
    return phi, mu, cov


def test_energy_matches_scipy_mixture():
    rng = np.random.default_rng(0)
    R, K, D, N = 2, 3, 4, 50
    phi, mu, cov = _random_params(rng, R, K, D)
    z = rng.normal(size=(R, N, D)) * 2
    eps = 1e-6
    fam = GaussianMixture(eps=eps)
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    ours = fam.energy(t(z), GaussianParams(t(phi), t(mu), t(cov))).numpy()
    for r in range(R):
        logp = np.stack(
            [np.log(phi[r, k]) + multivariate_normal(mu[r, k], cov[r, k] + eps * np.eye(D)).logpdf(z[r]) for k in range(K)],
            axis=1,
        )
        ref = -logsumexp(logp, axis=1)
        np.testing.assert_allclose(ours[r], ref, rtol=1e-6, atol=0)


def test_estimate_matches_weighted_formulas():
    rng = np.random.default_rng(1)
    R, N, K, D = 2, 40, 3, 3
    gamma = rng.dirichlet(np.ones(K), size=(R, N))
    z = rng.normal(size=(R, N, D))
    p = GaussianMixture.estimate(torch.tensor(gamma), torch.tensor(z))
    for r in range(R):
        for k in range(K):
            g = gamma[r, :, k]
            mu = (g[:, None] * z[r]).sum(0) / g.sum()
            diff = z[r] - mu
            cov = (g[:, None, None] * diff[:, :, None] * diff[:, None, :]).sum(0) / g.sum()
            np.testing.assert_allclose(p.phi[r, k].item(), g.mean(), rtol=1e-9)
            np.testing.assert_allclose(p.mu[r, k].numpy(), mu, rtol=1e-9)
            np.testing.assert_allclose(p.cov[r, k].numpy(), cov, rtol=1e-9, atol=1e-12)


def test_penalty_is_sum_of_inverse_diagonals():
    rng = np.random.default_rng(2)
    phi, mu, cov = _random_params(rng, 2, 3, 4)
    fam = GaussianMixture(eps=1e-6)
    pen = fam.penalty(GaussianParams(*(torch.tensor(a) for a in (phi, mu, cov)))).numpy()
    ref = (1.0 / (np.diagonal(cov, axis1=-2, axis2=-1) + 1e-6)).sum((-1, -2))
    np.testing.assert_allclose(pen, ref, rtol=1e-12)


def test_near_singular_covariance_gets_more_jitter_and_a_warning():
    # eigenvalues 2 - 1e-5 and -1e-5: not PSD, eps = 1e-6 is not enough
    cov = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]], dtype=torch.float64) - 1e-5 * torch.eye(2, dtype=torch.float64)
    L, jitter, n = stable_cholesky(cov, 1e-6)
    assert int(n) == 1 and jitter.item() == pytest.approx(1e-4)
    assert torch.isfinite(L).all()
    fam = GaussianMixture(eps=1e-6)
    params = GaussianParams(torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, 2, dtype=torch.float64), cov)
    z = torch.randn(1, 10, 2, dtype=torch.float64)
    with pytest.warns(CovarianceJitterWarning):
        e = fam.energy(z, params, warn=True)
    assert torch.isfinite(e).all()


def test_zero_covariance_and_empty_component_stay_finite_with_gradients():
    # all samples identical -> zero covariance; one component gets no weight at all
    z = torch.ones(1, 16, 3, requires_grad=True)
    logits = torch.zeros(1, 16, 2)
    logits[..., 1] = -1e4
    gamma = torch.softmax(logits.requires_grad_(), -1)
    fam = GaussianMixture(eps=1e-6)
    p = fam.estimate(gamma, z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # eps alone suffices for a zero matrix
        e = fam.energy(z, p)
    loss = e.mean() + fam.penalty(p).sum()
    loss.backward()
    assert torch.isfinite(e).all() and torch.isfinite(loss)
    assert torch.isfinite(z.grad).all()


def test_energy_is_computed_for_all_components_without_python_loop_over_k():
    # same result with K components in one call as K separate single-component mixtures combined
    rng = np.random.default_rng(3)
    phi, mu, cov = _random_params(rng, 1, 4, 3)
    z = torch.tensor(rng.normal(size=(1, 30, 3)))
    fam = GaussianMixture(eps=1e-6)
    full, _ = fam.log_prob_components(z, GaussianParams(*(torch.tensor(a) for a in (phi, mu, cov))))
    for k in range(4):
        single, _ = fam.log_prob_components(
            z, GaussianParams(torch.ones(1, 1, dtype=torch.float64), torch.tensor(mu[:, k : k + 1]), torch.tensor(cov[:, k : k + 1]))
        )
        np.testing.assert_allclose(full[:, k].numpy(), single[:, 0].numpy() + np.log(phi[0, k]), rtol=1e-10)
