"""scikit-learn conventions and clear errors for bad input."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_estimators_fit_returns_self,
    check_get_params_invariance,
    check_parameters_default_constructible,
    check_no_attributes_set_in_init,
    check_fit_idempotent,
)

from dagmm import DAGMM
from dagmm.configs import PAPER_SETTINGS

FAST = dict(hidden=(8, 4), latent_dim=1, n_components=2, epochs=2, batch_size=64, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 6)).astype(np.float32)


@pytest.mark.parametrize(
    "check",
    [
        check_estimators_fit_returns_self,
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_fit_idempotent,
    ],
)
def test_sklearn_checks(check):
    check(type(DAGMM()).__name__, DAGMM(**FAST))


def test_clone_pickle_and_pipeline(data):
    est = DAGMM(**FAST)
    c = clone(est)
    assert c.get_params() == est.get_params() and c is not est
    m = est.fit(data)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m.energy(data), m2.energy(data))
    pipe = make_pipeline(StandardScaler(), DAGMM(**{**FAST, "preprocessing": None})).fit(data)
    assert pipe.predict(data).shape == (len(data),)


def test_sign_conventions_and_predict(data):
    m = DAGMM(**FAST, contamination=0.1).fit(data)
    e = m.anomaly_score(data)  # the score of its `scoring` (energy plus reconstruction error by default)
    np.testing.assert_allclose(m.score_samples(data), -e)
    np.testing.assert_allclose(m.decision_function(data), m.threshold_ - e)
    pred = m.predict(data)  # scikit-learn's OutlierMixin: -1 = anomaly, +1 = normal
    assert set(np.unique(pred)) == {-1, 1}
    assert (pred == -1).mean() == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(pred, np.where(m.decision_function(data) < 0, -1, 1))
    np.testing.assert_array_equal(pred == -1, e > m.threshold_)
    m2 = DAGMM(**FAST, threshold=float(np.median(e))).fit(data)
    assert m2.threshold_ == float(np.median(e))
    assert m.transform(data).shape == (len(data), 3)


def test_second_fit_forgets_the_first(data):
    m = DAGMM(**FAST).fit(data)
    m.fit(data[:, :4])
    assert m.n_features_in_ == 4


def test_from_paper_settings():
    for name, s in PAPER_SETTINGS.items():
        m = DAGMM.from_paper(name, epochs=1)
        assert m.hidden == s["hidden"] and m.n_components == s["n_components"] and m.epochs == 1
        assert m.contamination == s["rho"] and m.lr == 1e-4 and m.lambda_energy == 0.1 and m.lambda_cov == 0.005
    with pytest.raises(ValueError, match="No paper setting"):
        DAGMM.from_paper("mnist")


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), "NaN"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), "infinity"),
        (lambda X: X[:, 0], "2D array"),
        (lambda X: X[:1], "minimum of 2"),
        (lambda X: np.array([["a"] * 6] * 5), "(could not convert|dtype)"),
    ],
)
def test_bad_training_input_is_a_clear_error(data, bad, match):
    with pytest.raises(ValueError, match=match):
        DAGMM(**FAST).fit(bad(data))


def test_bad_input_after_fit(data):
    m = DAGMM(**FAST).fit(data)
    with pytest.raises(ValueError, match="features"):
        m.energy(data[:, :5])
    X = data.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.predict(X)
    with pytest.raises(NotFittedError):
        DAGMM(**FAST).energy(data)


@pytest.mark.parametrize(
    "param, value",
    [
        ("n_components", 0),
        ("epochs", -1),
        ("dropout", 1.0),
        ("contamination", 0.9),
        ("lr", 0.0),
        ("hidden", (8, -1)),
        ("batch_size", 2.5),
        ("lambda_cov", -1.0),
        ("preprocessing", "robust"),
        ("compressor", "gan"),
        ("mixture", "student"),
        ("anomaly_loss", "square"),
        ("scoring", "density"),
        ("n_codes", 0),
        ("kl_weight", -1.0),
        ("threshold", float("nan")),
        ("torch_compile", "yes"),
    ],
)
def test_bad_parameter_is_a_clear_error(data, param, value):
    with pytest.raises(ValueError, match=f"The '{param}' parameter of DAGMM must be .* Got .* instead"):
        DAGMM(**{**FAST, param: value}).fit(data)


def test_unavailable_device_is_a_clear_error(data, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        DAGMM(**{**FAST, "device": "cuda"}).fit(data)


def test_models_pickled_before_the_engine_moved_still_load():
    import importlib
    import pickle

    import dagmm.engine.module

    # a pickle of a fitted DAGMM made before dagmm.engine existed names the module dagmm.model
    assert importlib.import_module("dagmm.model") is dagmm.engine.module
    blob = pickle.dumps(dagmm.engine.module.DAGMMModule, protocol=0).replace(b"dagmm.engine.module", b"dagmm.model")
    assert pickle.loads(blob) is dagmm.engine.module.DAGMMModule
