"""DAGMM()'s defaults for new data: a step budget, sizes from the features, bounded reconstruction features."""
import numpy as np
import pytest
import torch

from dagmm import DAGMM, defaults
from dagmm.configs import PAPER_SETTINGS
from dagmm.estimator import build_module
from dagmm.engine.training import fit_minmax, fit_norm_floor, fit_zscore

CPU = dict(device="cpu", random_state=0)


def _data(n=300, d=6, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


@pytest.mark.parametrize("n_train", [40, 300, 3000])
def test_training_length_is_a_step_budget_whatever_the_data_size(n_train):
    steps, batch = 120, 64
    m = DAGMM(steps=steps, batch_size=batch, hidden=(4,), n_components=2, **CPU).fit(_data(n_train))
    per_epoch = -(-n_train // batch)
    done = len(m.loss_history_) * per_epoch
    assert steps <= done < steps + per_epoch  # whole epochs, at least the budget, less than one epoch more


def test_fixed_epochs_override_the_step_budget():
    m = DAGMM(epochs=3, steps=10_000, hidden=(4,), n_components=2, **CPU).fit(_data(100))
    assert len(m.loss_history_) == 3


@pytest.mark.parametrize("d", [1, 5, 8, 27, 62, 274, 1555])
def test_network_and_code_sizes_follow_the_number_of_features(d):
    latent = defaults.auto_latent_dim(d)
    hidden = defaults.auto_hidden(d, latent)
    assert 1 <= latent <= 1 + np.log2(d) / 3
    assert list(hidden) == sorted(hidden, reverse=True) and all(h > latent for h in hidden) and 1 <= len(hidden) <= 3
    assert 8 <= hidden[0] <= 64
    if d >= 8:
        assert latent >= 2  # more features, a larger code
    m = build_module(DAGMM(), 1, d)
    assert m.estimation.fc1.in_features == latent + 2  # z = [z_c, rel, cos]


def test_auto_sizes_are_what_a_fit_uses_and_reports():
    X = _data(200, 27)
    m = DAGMM(steps=20, batch_size=64, **CPU).fit(X)
    assert m.latent_dim_ == defaults.auto_latent_dim(27) and m.hidden_ == defaults.auto_hidden(27, m.latent_dim_)
    assert m.transform(X).shape == (200, m.latent_dim_ + 2)
    assert m.n_epochs_ == len(m.loss_history_) == 5  # 4 batches an epoch, 20 steps


# every parameter of DAGMM.from_paper("kddcup") before DAGMM() got defaults of its own (commit 50bf31a)
PAPER_KDDCUP = dict(hidden=(60, 30, 10), latent_dim=1, estimation_hidden=10, n_components=4, dropout=0.5,
                    lambda_energy=0.1, lambda_cov=0.005, lambda_recon=1.0, lr=1e-4, epochs=200, batch_size=1024,
                    cov_eps=1e-6, preprocessing="minmax", contamination=0.2, threshold=None, device="auto",
                    random_state=None, verbose=False, compressor="ae", kl_weight=1.0, n_codes=32, commitment=0.25,
                    mixture="gaussian", anomaly_loss=None, anomaly_margin=5.0, scoring="energy", torch_compile=False,
                    distance_floor=0.0, engine="fast")


def test_from_paper_keeps_every_paper_setting_whatever_the_defaults():
    p = DAGMM.from_paper("kddcup").get_params()
    assert {k: p[k] for k in PAPER_KDDCUP} == PAPER_KDDCUP
    for name, setting in PAPER_SETTINGS.items():
        p = DAGMM.from_paper(name).get_params()
        for key in ("hidden", "latent_dim", "n_components", "epochs", "batch_size"):
            assert p[key] == setting[key], (name, key)
        assert p["contamination"] == setting["rho"]
        assert {k: p[k] for k in ("lr", "preprocessing", "distance_floor", "scoring")} == \
            {k: PAPER_KDDCUP[k] for k in ("lr", "preprocessing", "distance_floor", "scoring")}


def test_paper_setting_leaves_the_norm_unfloored():
    m = DAGMM.from_paper("thyroid", epochs=1, **CPU).fit(_data(100))
    assert float(m.module_.norm_floor) == pytest.approx(1e-10)


@pytest.mark.parametrize("preprocessing", ["minmax", "zscore"])
def test_norm_floor_is_the_stated_fraction_of_the_rms_training_norm(preprocessing):
    X = _data(500, 7)
    Xt = torch.as_tensor(X)
    module = build_module(DAGMM(hidden=(4,), latent_dim=1, n_components=2), 2, 7)
    idx = torch.stack([torch.arange(0, 250), torch.arange(250, 500)])
    (fit_minmax if preprocessing == "minmax" else fit_zscore)(module, Xt, idx)
    fit_norm_floor(module, Xt, idx, 0.1)
    for r in range(2):
        rows = X[idx[r].numpy()].astype(np.float64)
        if preprocessing == "minmax":
            scaled = (rows - rows.min(0)) / (rows.max(0) - rows.min(0))
        else:
            scaled = (rows - rows.mean(0)) / rows.std(0)
        expected = 0.1 * np.sqrt((scaled**2).sum(1).mean())
        assert float(module.norm_floor[r]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("preprocessing", ["minmax", "zscore"])
def test_a_row_that_scales_to_zero_gets_a_finite_bounded_energy(preprocessing):
    rng = np.random.default_rng(1)
    X = rng.gamma(2.0, 1.0, (400, 6)).astype(np.float32)
    # min-max scales the training minimum to all zeros, z-score the training mean: the paper's relative
    # distance divides by ~0 there (energies of ~1e21)
    low = (X.min(0) if preprocessing == "minmax" else X.astype(np.float64).mean(0).astype(np.float32))[None]
    m = DAGMM(steps=300, preprocessing=preprocessing, distance_floor=0.1, **CPU).fit(X)
    e_train = m.energy(X)
    e = m.energy(np.vstack([low, np.zeros_like(low)]))
    assert np.isfinite(e).all()
    assert np.abs(e).max() < e_train.max() + 1e3 * (e_train.max() - e_train.min() + 1)  # unfloored: ~1e21


@pytest.mark.parametrize("preprocessing", ["minmax", "zscore"])
def test_500_repeated_rows_give_finite_batch_independent_energies(preprocessing):
    rng = np.random.default_rng(2)
    X = rng.gamma(2.0, 1.0, (300, 6)).astype(np.float32)
    train = np.vstack([X, np.tile(X.min(0), (500, 1))])  # 500 identical rows, all at the training minimum
    m = DAGMM(steps=300, preprocessing=preprocessing, **CPU).fit(train)
    test = np.vstack([train[300:310], rng.gamma(2.0, 1.0, (40, 6)).astype(np.float32)])
    e = m.energy(test)
    assert np.isfinite(e).all() and np.isfinite(m.energy(train)).all()
    one_by_one = np.array([m.energy(row[None])[0] for row in test])
    np.testing.assert_allclose(one_by_one, e, rtol=1e-5, atol=1e-5)  # the same row, the same energy, in any batch
    np.testing.assert_allclose(e[:10], e[0], rtol=1e-6)  # identical rows, identical energies


def test_step_budget_and_floor_parameters_are_checked():
    from sklearn.utils._param_validation import InvalidParameterError

    for bad in (dict(steps=0), dict(distance_floor=-1.0), dict(epochs="many"), dict(hidden="big")):
        with pytest.raises(InvalidParameterError):
            DAGMM(**bad, **CPU).fit(_data(50))
