"""Notebook 08's machinery: ranks, Friedman/Nemenyi, wins, and the per-set runs on an ADBench set."""
import numpy as np
import pandas as pd
import pytest

from dagmm import beyond, ranking
from dagmm.protocol import make_split


def test_critical_difference_matches_demsar():
    # Demšar (2006), Table 5: q_0.05 = 2.569 for k = 4 classifiers; N = 14 data sets
    assert ranking.critical_difference(4, 14) == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * 14)), rel=1e-3)


def test_mean_ranks_share_ties_and_put_the_best_first():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.9, 0.6, 0.6], "c": [0.5, 0.7, 0.8]}, index=["s1", "s2", "s3"])
    r = ranking.mean_ranks(scores)
    assert r.loc["a", "mean_rank"] == pytest.approx((1.5 + 1 + 2) / 3)
    assert r.loc["b", "mean_rank"] == pytest.approx((1.5 + 3 + 3) / 3)
    assert r.index[0] == "a" and r.loc["a", "best_on"] == 2  # ties for first count for both
    with pytest.raises(ValueError, match="missing"):
        ranking.mean_ranks(scores.assign(c=[0.5, np.nan, 0.8]))


def test_friedman_nemenyi_separates_a_method_that_always_wins():
    rng = np.random.default_rng(0)
    base = rng.random((12, 1))
    scores = pd.DataFrame(np.hstack([base + 0.3, base + rng.normal(0, 0.01, (12, 1)), base + rng.normal(0, 0.01, (12, 1))]),
                          columns=["best", "x", "y"])
    t = ranking.friedman_nemenyi(scores)
    assert t["p_value"] < 0.01 and t["significant"]
    p = t["pairwise"]
    assert list(p.index) == list(p.columns) == ["best", "x", "y"]
    np.testing.assert_allclose(p.values, p.values.T)
    assert p.loc["best", "x"] < 0.05 and p.loc["x", "y"] > 0.05


def test_wins_against_a_reference_with_a_margin():
    scores = pd.DataFrame({"ref": [0.8, 0.8, 0.8], "m": [0.9, 0.803, 0.5]})
    w = ranking.wins_against(scores, "ref", margin=0.005)
    assert (w.loc["m"].wins, w.loc["m"].ties, w.loc["m"].losses) == (1, 1, 1) and "ref" not in w.index
    assert w.loc["m"].mean_difference == pytest.approx((0.1 + 0.003 - 0.3) / 3)


def test_wins_test_finds_a_method_better_on_every_set():
    rng = np.random.default_rng(1)
    ref = rng.random(15)
    scores = pd.DataFrame({"ref": ref, "better": ref + 0.05 + rng.random(15) * 0.01, "same": ref + rng.normal(0, 0.01, 15)})
    w = ranking.wins_against(scores, "ref")
    assert w.loc["better", "p_holm"] < 0.01 and w.loc["same", "p_holm"] > 0.05


def test_an_adbench_set_is_split_over_all_its_rows_and_a_misspelt_paper_set_is_refused():
    y = np.r_[np.zeros(90), np.ones(11)].astype(int)
    s = make_split("wine", y, 3)
    assert len(s.test_idx) + len(s.train_idx) + 5 == len(y)  # the training half's 5 anomalies are left out
    assert (y[s.train_idx] == 0).all() and (y[s.test_idx] == 1).sum() == 6
    with pytest.raises(ValueError):
        make_split("kddcup-rev", y, 3)


def test_every_method_runs_on_an_adbench_set_and_dagmm_is_what_a_user_gets(real_data_dir):
    from sklearn.metrics import roc_auc_score

    from dagmm import DAGMM
    from dagmm.datasets import load_adbench

    methods = list(beyond.METHODS)
    base = dict(steps=30)
    per_run, heads = beyond.run_dataset("wine", [0, 1], methods, data_dir=real_data_dir, device="cpu", base=base,
                                        verbose=False)
    assert sorted(per_run.method.unique()) == sorted(methods)
    assert (per_run.groupby("method").size() == 2).all()
    assert per_run.auroc.between(0, 1).all()
    assert sorted(heads.score.unique()) == sorted(beyond.READOUTS)
    # "DAGMM" is DAGMM(**base) fitted alone on each run's training rows, scored by its own rule
    X, y = load_adbench("wine", real_data_dir)
    for seed in (0, 1):
        split = make_split("wine", y, seed)
        est = DAGMM(**base, contamination=float(y.mean()), device="cpu", random_state=seed).fit(X[split.train_idx])
        alone = roc_auc_score(y[split.test_idx], est.anomaly_score(X[split.test_idx]))
        row = per_run[(per_run.method == "DAGMM") & (per_run.seed == seed)].auroc.item()
        assert row == pytest.approx(alone, abs=2e-3)


def test_targets_are_reported_met_or_not():
    targets = pd.DataFrame({"DAGMM": [0.9, 0.4], "DAGMM (untrained)": [0.8, 0.6], "Isolation Forest": [0.7, 0.7]},
                           index=["a", "b"])
    targets["beats untrained"] = targets["DAGMM"] > targets["DAGMM (untrained)"]
    text = beyond.target_lines(targets)
    assert "**1 of 2**" in text and "b (target: none): not met" in text and "not met, 0.050 short" in text
