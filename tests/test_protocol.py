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


def _separated(seed: int, n: int, d: int, epochs: int):
    """Normal rows around 0 and n/10 anomalies far from them; two runs' splits; a small DAGMM."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n, d)), rng.normal(size=(n // 10, d)) * 4 + 3]).astype(np.float32)
    y = np.r_[np.zeros(n), np.ones(n // 10)].astype(int)
    splits = [make_split("thyroid", y, s) for s in range(2)]
    return X, y, splits, DAGMM(hidden=(8, 4), n_components=2, epochs=epochs, batch_size=64, lr=1e-3, device="cpu")


def test_dagmm_and_estimator_runs_on_a_synthetic_dataset():
    X, y, splits, est = _separated(0, 400, 5, epochs=20)
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


# --------------------------------------------------------------------------- the one driver


def _toy():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(200), np.ones(20)].astype(int)
    X = rng.normal(size=(220, 3)).astype(np.float32)
    X[y == 1] += 5
    return X, y, [make_split("thyroid", y, s) for s in range(5)]


def test_run_protocol_reads_one_training_out_as_several_methods_in_chunks():
    from dagmm.protocol import run_protocol

    X, y, splits = _toy()
    calls = []

    def fit_scores(X_, train_idx, seeds, test_idx, keep):
        calls.append(list(seeds))
        dist = np.linalg.norm(X_[test_idx], axis=-1)  # (R, m), higher = more anomalous
        failed = np.array([s == 3 for s in seeds])  # run seed 3 "diverged"
        return {"norm": dict(scores=dist, failed=failed, seconds=2.0 * len(seeds),
                             columns={"threshold": "top-rho", "rank": np.arange(len(seeds))}),
                "minus norm": dict(scores=-dist, artifacts={j: dict(tag=j) for j in keep})}

    seen = []
    df, art = run_protocol("toy", X, y, splits, fit_scores, rho=0.1, max_parallel=2, keep=(0, 3),
                           on_run=lambda m, run, split, scores: seen.append((m, run, split.seed, len(scores))))
    assert calls == [[0, 1], [2, 3], [4]]  # chunks of max_parallel runs
    assert list(df.columns[:11]) == ["dataset", "method", "run", "seed", "precision", "recall", "f1", "auroc",
                                     "auprc", "failed", "seconds"]
    assert list(df.columns[11:]) == ["threshold", "rank"]  # a readout's columns follow seconds
    norm, minus = df[df.method == "norm"], df[df.method == "minus norm"]
    assert norm.run.tolist() == [0, 1, 2, 3, 4] and norm.seed.tolist() == [0, 1, 2, 3, 4]
    assert (norm.auroc > 0.95).all() and (minus.auroc < 0.05).all()  # the readouts are scored as given
    assert norm.failed.tolist() == [False, False, False, True, False]  # a diverged training fails the run
    assert norm.seconds.tolist() == [2.0] * 5  # a readout's seconds are shared over its R runs
    assert norm["rank"].tolist() == [0, 1, 0, 1, 0]  # per-run columns, per chunk
    assert sorted(art) == [("minus norm", 0), ("minus norm", 3), ("norm", 0), ("norm", 3)]
    assert art["minus norm", 3]["tag"] == 1 and set(art["norm", 0]) == {"energy", "y"}  # position in its chunk
    assert seen[:2] == [("norm", 0, 0, len(splits[0].test_idx)), ("norm", 1, 1, len(splits[1].test_idx))]
    assert len(seen) == len(df)


def test_a_readouts_own_decisions_replace_the_top_rho_rule():
    from dagmm.protocol import run_protocol

    X, y, splits = _toy()

    def fit_scores(X_, train_idx, seeds, test_idx, keep):
        scores = np.linalg.norm(X_[test_idx], axis=-1)
        return {"flag all": dict(scores=scores, pred=np.ones(scores.shape, dtype=int))}

    df, _ = run_protocol("toy", X, y, splits[:2], fit_scores, rho=0.1)
    prevalence = y[splits[0].test_idx].mean()
    assert df.recall.tolist() == [1.0, 1.0] and df.precision.iloc[0] == pytest.approx(prevalence)
    assert (df.auroc > 0.95).all()  # AUROC is the scores', whatever the decisions
    with pytest.raises(ValueError, match="pred"):
        evaluate_scores(y[:10], np.arange(10.0), 0.1, pred=np.ones(3))


def test_run_estimator_is_the_driver_one_run_at_a_time():
    from dagmm.protocol import estimator_fit_scores, run_protocol

    X, y, splits = _toy()
    make = lambda s: IsolationForest(random_state=s, n_estimators=20)  # noqa: E731
    a = run_estimator("toy", X, y, splits[:3], make, rho=0.1, method="IF")
    b, _ = run_protocol("toy", X, y, splits[:3], estimator_fit_scores(make, method="IF"), rho=0.1)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_a_callable_head_reads_the_trained_runs_and_the_readouts_before_it():
    from dagmm.protocol import Trained, dagmm_fit_scores, run_protocol

    X, y, splits, est = _separated(1, 300, 4, epochs=5)
    seen = {}

    def flag_all(t: Trained) -> dict:  # a whole readout: scores, its own decisions and columns
        seen.update(seeds=t.seeds, before=list(t.readouts), loss=t.history["loss"].shape,
                    shapes=(t.train_idx.shape, t.test_idx.shape))
        energy = t.readouts["energy"]["scores"]
        return dict(scores=-energy, pred=np.ones(energy.shape, dtype=int), columns={"threshold": "all"})

    fs = dagmm_fit_scores(est, {"energy": "energy", "negated": flag_all, "plain": lambda t: t.readouts["energy"]["scores"]},
                          columns={"threshold": "top-rho"})
    df, _ = run_protocol("toy", X, y, splits, fs, rho=0.09)
    assert seen["seeds"] == [0, 1] and seen["before"] == ["energy"]  # the heads before it, in order
    assert seen["loss"] == (5, 2) and seen["shapes"][1][0] == 2
    by = {m: d.set_index("run") for m, d in df.groupby("method")}
    assert np.allclose(by["negated"].auroc, 1 - by["energy"].auroc)  # its scores, as it gave them
    assert np.allclose(by["plain"].auroc, by["energy"].auroc)  # a bare array is the readout's scores
    assert by["negated"].recall.eq(1.0).all()  # its own decisions (every row flagged), not top-rho's
    assert by["negated"].threshold.eq("all").all() and by["energy"].threshold.eq("top-rho").all()
    assert not df.failed.any()  # the training's flag, where a head gives none
