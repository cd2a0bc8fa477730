"""The evaluation protocol: splits, the top-rho rule, metrics, failed runs."""
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from dagmm import DAGMM
from dagmm.protocol import TABLE_COLUMNS, aggregate, evaluate_scores, make_split, run_dagmm, run_estimator, top_rho_predict


def test_split_is_disjoint_stratified_normal_only_and_seeded():
    y = np.r_[np.zeros(900), np.ones(101)].astype(int)
    s = make_split("thyroid", y, 0)
    assert set(s.train_idx).isdisjoint(s.test_idx)
    assert (y[s.train_idx] == 0).all()  # train on normal rows only
    assert len(s.train_idx) == 450
    assert (y[s.test_idx] == 1).sum() == 51 and (y[s.test_idx] == 0).sum() == 450
    s2 = make_split("thyroid", y, 1)
    assert len(s2.train_idx) == len(s.train_idx) and not np.array_equal(s.train_idx, s2.train_idx)
    np.testing.assert_array_equal(make_split("thyroid", y, 0).test_idx, s.test_idx)


def test_top_rho_flags_the_highest_scores():
    scores = np.arange(100, dtype=float)
    pred = top_rho_predict(scores, 0.2)
    assert pred.sum() == 20 and pred[80:].all()
    with pytest.raises(ValueError, match="rho"):
        top_rho_predict(scores, 1.5)


def test_metrics_of_a_perfect_and_a_failed_run():
    y = np.r_[np.zeros(80), np.ones(20)].astype(int)
    perfect = evaluate_scores(y, y + np.linspace(0, 0.1, 100), 0.2)
    assert perfect["f1"] == 1.0 and perfect["auroc"] == 1.0 and not perfect["failed"]
    bad = evaluate_scores(y, np.where(y == 1, np.nan, 0.0), 0.2)
    assert bad["failed"] and bad["f1"] == 0.0 and bad["auroc"] == 0.5
    with pytest.raises(ValueError, match="shape"):
        evaluate_scores(y, np.zeros(5), 0.2)


def test_aggregate_counts_failed_runs_in_the_mean():
    df = pd.DataFrame(
        dict(dataset="d", method="m", run=[0, 1], seed=[0, 1], precision=[1.0, 0.0], recall=[1.0, 0.0],
             f1=[1.0, 0.0], auroc=[1.0, 0.5], auprc=[1.0, 0.1], failed=[False, True])
    )
    t = aggregate(df)
    assert list(t.columns) == TABLE_COLUMNS
    assert t.n_failed.iloc[0] == 1 and t.f1_mean.iloc[0] == 0.5 and t.n_runs.iloc[0] == 2


def test_dagmm_and_estimator_runs_on_a_synthetic_dataset():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(400, 5)), rng.normal(size=(40, 5)) * 4 + 3]).astype(np.float32)
    y = np.r_[np.zeros(400), np.ones(40)].astype(int)
    splits = [make_split("thyroid", y, s) for s in range(2)]
    est = DAGMM(hidden=(8, 4), n_components=2, epochs=20, batch_size=64, lr=1e-3, device="cpu")
    df, art = run_dagmm("synthetic", X, y, splits, est, rho=0.09, method="DAGMM")
    assert len(df) == 2 and not df.failed.any()
    assert df.auroc.mean() > 0.8  # well-separated anomalies
    assert set(art[0]) == {"energy", "y", "z", "loss"}
    df2 = run_estimator("synthetic", X, y, splits, lambda s: IsolationForest(random_state=s), rho=0.09, method="IF")
    assert df2.auroc.mean() > 0.9


def test_random_f1_is_the_mean_f1_of_random_rankings():
    from dagmm.protocol import random_f1

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(66), np.zeros(386)].astype(int)  # Arrhythmia's test half, roughly
    for rho in (0.15, 0.3):
        flagged = np.stack([top_rho_predict(s, rho) for s in rng.random((4000, len(y)))])  # the protocol's rule
        tp = (flagged * y).sum(1)
        f1 = 2 * tp / (flagged.sum(1) + y.sum())
        assert f1.mean() == pytest.approx(random_f1(y.mean(), rho), abs=0.004)
        assert evaluate_scores(y, rng.random(len(y)), rho)["f1"] == pytest.approx(f1.mean(), abs=0.15)  # same metric
    with pytest.raises(ValueError, match="rho"):
        random_f1(0.2, 1.5)
