"""The seeds' variants: VAE / VQ-VAE compressors, Laplacian mixture, modified
loss and inference, PU threshold, each against an independent reference or
a behaviour a broken implementation would fail."""
import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import laplace
from sklearn.metrics import roc_auc_score

from dagmm import DAGMM
from dagmm.engine.compressors import VAECompressor, VQCompressor, gaussian_kl
from dagmm.mixture import GaussianMixture, LaplaceMixture, LaplaceParams
from dagmm.pu import PUClassifier
from dagmm.engine.training import make_generators
from dagmm.variants import percentile_sweep

FAST = dict(hidden=(8, 4), latent_dim=1, n_components=2, epochs=30, batch_size=64, lr=1e-3, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def blobs():
    """Normal points on a 2-D plane inside 6-D; anomalies off it."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 6))
    normal = (rng.normal(size=(400, 2)) @ basis).astype(np.float32)
    anomal = (rng.normal(size=(40, 2)) @ basis + rng.normal(scale=2.0, size=(40, 6))).astype(np.float32)
    return normal, anomal


# ---- VAE -------------------------------------------------------------------

def test_kl_is_zero_when_posterior_is_prior_and_matches_torch():
    assert gaussian_kl(torch.zeros(3, 5, 2), torch.zeros(3, 5, 2)).abs().max() == 0
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    ref = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, logvar), ref)


def test_vae_samples_in_training_and_uses_the_mean_at_evaluation():
    m = VAECompressor(2, 6, (5,), 2)
    m.reset_parameters(make_generators([0, 1]))
    x = torch.randn(2, 7, 6)
    z_eval, _, kl = m(x)
    mean, _ = m.encode(x)
    torch.testing.assert_close(z_eval, mean)
    z_train, _, _ = m(x, torch.randn(2, 7, 2))
    assert not torch.allclose(z_train, mean)
    assert kl.shape == (2,) and bool((kl >= 0).all())
    kl.sum().backward()
    assert m.encoder.layers[0].weight.grad.abs().sum() > 0


# ---- VQ-VAE ----------------------------------------------------------------

def test_vq_codes_are_valid_and_codebook_and_encoder_get_gradients():
    m = VQCompressor(2, 6, (5,), 3, n_codes=8)
    m.reset_parameters(make_generators([0, 1]))
    x = torch.randn(2, 50, 6)
    z_e = m.encoder(x)
    idx, e = m.quantise(z_e)
    assert idx.dtype == torch.long and int(idx.min()) >= 0 and int(idx.max()) < 8
    for r in range(2):  # nearest code, against a brute-force reference
        d = ((z_e[r, :, None, :] - m.codebook[r][None]) ** 2).sum(-1)
        assert torch.equal(idx[r], d.argmin(-1))
        torch.testing.assert_close(e[r], m.codebook[r][idx[r]])
    z_q, x_hat, aux = m(x)
    torch.testing.assert_close(z_q, e)  # forward value is the code
    (x_hat.pow(2).sum() + aux.sum()).backward()
    assert m.codebook.grad is not None and m.codebook.grad.abs().sum() > 0
    assert m.encoder.layers[0].weight.grad.abs().sum() > 0  # straight-through


# ---- Laplacian mixture -----------------------------------------------------

def test_laplace_energy_matches_scipy():
    rng = np.random.default_rng(0)
    R, K, D, N = 2, 3, 4, 40
    phi = rng.dirichlet(np.ones(K), size=R)
    mu = rng.normal(size=(R, K, D))
    b = rng.uniform(0.2, 2.0, size=(R, K, D))
    z = rng.normal(size=(R, N, D)) * 2
    eps = 1e-6
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    ours = LaplaceMixture(eps).energy(t(z), LaplaceParams(t(phi), t(mu), t(b))).numpy()
    for r in range(R):
        logp = np.stack([np.log(phi[r, k]) + laplace(mu[r, k], b[r, k] + eps).logpdf(z[r]).sum(-1) for k in range(K)], 1)
        np.testing.assert_allclose(ours[r], -logsumexp(logp, axis=1), rtol=1e-10)


def test_laplace_estimate_with_hard_memberships_is_mean_and_mean_absolute_deviation():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1, 60, 3))
    lab = rng.integers(0, 2, size=60)
    gamma = np.eye(2)[lab][None]
    p = LaplaceMixture().estimate(torch.tensor(gamma), torch.tensor(z))
    for k in range(2):
        zk = z[0, lab == k]
        np.testing.assert_allclose(p.mu[0, k].numpy(), zk.mean(0), rtol=1e-9)
        np.testing.assert_allclose(p.b[0, k].numpy(), np.abs(zk - zk.mean(0)).mean(0), rtol=1e-9)
        np.testing.assert_allclose(p.phi[0, k].item(), (lab == k).mean(), rtol=1e-9)


@pytest.mark.parametrize("family", [GaussianMixture, LaplaceMixture])
def test_weighted_estimate_equals_estimate_on_the_subset(family):
    rng = np.random.default_rng(2)
    z = torch.tensor(rng.normal(size=(1, 50, 3)))
    gamma = torch.softmax(torch.tensor(rng.normal(size=(1, 50, 2))), -1)
    keep = torch.tensor(rng.random(50) < 0.6)
    full = family.estimate(gamma, z, weight=keep[None].double())
    sub = family.estimate(gamma[:, keep], z[:, keep])
    for a, b in zip(full, sub):
        torch.testing.assert_close(a, b)


# ---- the variants as estimators --------------------------------------------

@pytest.mark.parametrize("overrides", [dict(compressor="vae"), dict(compressor="vqvae", n_codes=8), dict(mixture="laplace"),
                                       dict(scoring="energy+recon")])
def test_variant_trains_and_beats_chance(blobs, overrides):
    normal, anomal = blobs
    m = DAGMM(**FAST, **overrides).fit(normal)
    X = np.vstack([normal[:200], anomal])
    y = np.r_[np.zeros(200), np.ones(len(anomal))]
    s = m.anomaly_score(X)
    assert np.isfinite(s).all()
    assert roc_auc_score(y, s) > 0.8
    assert np.isfinite(m.loss_history_).all() and m.loss_history_[-1] < m.loss_history_[0]


def test_modified_inference_is_the_sum_of_standardised_energy_and_recon(blobs):
    normal, anomal = blobs
    m = DAGMM(**{**FAST, "epochs": 2}, scoring="energy+recon").fit(normal)
    from dagmm.engine.training import compute_scores

    Xt = torch.as_tensor(normal)
    rows = np.arange(len(normal))[None]
    e_tr, r_tr = (compute_scores(m.module_, Xt, rows, k)[0].astype(np.float64) for k in ("energy", "recon"))
    Xa = torch.as_tensor(anomal)
    e, r = (compute_scores(m.module_, Xa, np.arange(len(anomal))[None], k)[0] for k in ("energy", "recon"))
    ref = (e - e_tr.mean()) / e_tr.std() + (r - r_tr.mean()) / r_tr.std()
    np.testing.assert_allclose(m.anomaly_score(anomal), ref, rtol=1e-5, atol=1e-5)
    assert abs(np.quantile(m.anomaly_score(normal), 0.8) - m.threshold_) < 1e-6


@pytest.mark.parametrize("form", ["inverse", "hinge"])
def test_modified_loss_needs_labels_and_pushes_labelled_anomalies_up(blobs, form):
    normal, anomal = blobs
    X = np.vstack([normal, anomal[:20]])
    y = np.r_[np.zeros(len(normal)), np.ones(20)].astype(int)
    with pytest.raises(ValueError, match="needs y"):
        DAGMM(**FAST, anomaly_loss=form).fit(X)
    m = DAGMM(**FAST, anomaly_loss=form).fit(X, y)
    e = m.energy(X)
    assert np.isfinite(e).all()
    assert e[y == 1].mean() > e[y == 0].mean()


def test_hinge_term_is_bounded_and_zero_beyond_the_margin():
    est = DAGMM(**FAST, anomaly_loss="hinge", anomaly_margin=2.0)
    mod = est._build_module(1, (6,))
    mod.reset_parameters(make_generators([0]))
    x = torch.randn(1, 32, 6)
    labels = torch.zeros(1, 32)
    labels[0, :4] = 1
    loss, _ = mod.loss(x, None, None, labels, lambda_energy=1.0, lambda_cov=0.0, lambda_recon=0.0)
    out = mod(x)
    normal = 1 - labels
    p = mod.mixture.estimate(out.gamma, out.z, weight=normal)
    e = mod.mixture.energy(out.z, p)
    e_norm = (e * normal).sum() / normal.sum()
    hinge = torch.relu(2.0 + e_norm - e)
    ref = ((e * normal + hinge * labels).mean())
    torch.testing.assert_close(loss[0], ref)
    assert bool((hinge >= 0).all())


# ---- PU threshold ----------------------------------------------------------

def test_pu_estimate_of_c_recovers_the_labelling_rate():
    rng = np.random.default_rng(0)
    pos = rng.normal(2.0, 1.0, size=(1500, 2))
    neg = rng.normal(-2.0, 1.0, size=(4500, 2))
    X = np.vstack([pos, neg])
    y = np.r_[np.ones(1500), np.zeros(4500)]
    for c in (0.2, 0.5):  # default classifier (trees); see PUClassifier on why not logistic
        s = ((y == 1) & (rng.random(len(y)) < c)).astype(int)
        pu = PUClassifier(random_state=0).fit(X, s)
        assert abs(pu.c_ - c) < 0.05
        pred = pu.predict(X)
        assert (pred == y).mean() > 0.9  # classifies y, not s (the labelled indicator)


def test_pu_bad_input():
    with pytest.raises(ValueError, match="labelled"):
        PUClassifier().fit(np.zeros((20, 2)), np.zeros(20))
    with pytest.raises(ValueError, match="0 \\(unlabelled\\) or 1"):
        PUClassifier().fit(np.zeros((20, 2)), np.full(20, 2))


def test_percentile_sweep_flags_the_top_p_percent():
    scores = np.arange(100.0)
    y = (scores >= 80).astype(int)
    rows = {r["percentile"]: r for r in percentile_sweep(y, scores, (10, 20, 40))}
    assert rows[20]["f1"] == 1.0
    assert rows[10]["precision"] == 1.0 and rows[10]["recall"] == 0.5
    assert rows[40]["recall"] == 1.0 and rows[40]["precision"] == 0.5


def test_pu_head_on_a_subsampled_pool_estimates_the_whole_pools_labelling_rate():
    from dagmm.protocol import evaluate_scores
    from dagmm.variants import pu_head

    rng = np.random.default_rng(5)
    n_test, n_lab = 6000, 300
    y_test = (rng.random(n_test) < 0.2).astype(int)
    feats_test = rng.normal(size=(n_test, 2)) + 3.0 * y_test[:, None]
    feats_lab = rng.normal(size=(n_lab, 2)) + 3.0
    feats = np.vstack([feats_lab, feats_test])
    s = np.r_[np.ones(n_lab), np.zeros(n_test)].astype(int)
    g, pred, columns = pu_head(0, y_test, feats, s, max_unlabelled=2000)
    assert abs(columns["pu_c"] - columns["pu_c_true"]) < 0.05
    m = evaluate_scores(y_test, g, 0.2, pred)
    assert m["f1"] > 0.6 and m["auroc"] > 0.9
