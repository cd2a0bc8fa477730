"""The paper's evaluation protocol.

For each run seed ``s`` in ``0..n_runs-1``:

1. draw the dataset's rows (only KDDCUP-Rev is random: :func:`dagmm.datasets.draw_rows`);
2. split them 50/50 at random, stratified by label, so both halves keep the
   dataset's anomaly ratio and every run has the same number of rows;
3. train on the *normal* rows of the training half only;
4. score the test half; flag the ``rho`` fraction of test samples with the
   highest energy (the paper's rule; ``rho`` is the dataset's anomaly ratio as
   the paper states it), and compute precision, recall and F1 of the anomaly
   class, plus the threshold-free AUROC and AUPRC.

A run whose scores contain NaN or inf is *failed*: it is kept, counted in
``n_failed``, and scored as a detector that finds nothing (precision, recall
and F1 0, AUROC 0.5, AUPRC the test prevalence), so means are over all runs.

Conventions: the protocol works with anomaly scores that are higher for more
anomalous samples and with 0/1 labels where 1 is an anomaly (the labels of
:func:`dagmm.load_dataset`). The estimators follow scikit-learn's
``OutlierMixin`` instead (``predict``: -1 anomaly, +1 normal;
``score_samples`` and ``decision_function``: higher = more normal), so both
are derived here, explicitly: :func:`estimator_scores` and :func:`anomaly_labels`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from .datasets import ADBENCH, draw_rows

__all__ = [
    "RunSplit",
    "make_split",
    "make_splits",
    "top_rho_predict",
    "estimator_scores",
    "anomaly_labels",
    "evaluate_scores",
    "random_f1",
    "run_batched",
    "dagmm_fit_score",
    "run_dagmm",
    "run_estimator",
    "aggregate",
    "METRICS",
    "TABLE_COLUMNS",
]

METRICS = ("precision", "recall", "f1", "auroc", "auprc")
TABLE_COLUMNS = ["dataset", "method", "n_runs", "n_failed"] + [
    f"{m}_{s}" for m in METRICS for s in ("mean", "std")
]
SPLIT_SEED_TAG = 7919  # split of run s uses default_rng([s, SPLIT_SEED_TAG])


@dataclass(frozen=True)
class RunSplit:
    """One run's rows, as indices into the dataset's base arrays.

    Attributes
    ----------
    seed : int
    train_idx : ndarray (n_train,)   normal rows of the training half
    test_idx : ndarray (n_test,)     the whole test half
    """

    seed: int
    train_idx: np.ndarray
    test_idx: np.ndarray


def make_split(name: str, y_base: np.ndarray, seed: int) -> RunSplit:
    """Draw run ``seed``'s rows and split them 50/50, stratified by label.

    The paper's data sets draw their rows with :func:`dagmm.datasets.draw_rows`
    (only ``kddcup_rev`` is random); an ADBench set (:data:`dagmm.datasets.ADBENCH`)
    uses every row of ``y_base``. Other names raise ValueError.
    """
    rows = np.arange(len(y_base)) if name in ADBENCH else draw_rows(name, y_base, seed)
    rng = np.random.default_rng([seed, SPLIT_SEED_TAG])
    train, test = [], []
    for label in (0, 1):
        r = rows[y_base[rows] == label]
        r = r[rng.permutation(len(r))]
        half = len(r) // 2
        train.append(r[:half])
        test.append(r[half:])
    train_all = np.concatenate(train)
    train_normal = np.sort(train_all[y_base[train_all] == 0])
    return RunSplit(seed, train_normal, np.sort(np.concatenate(test)))


def make_splits(name: str, y_base: np.ndarray, seeds: Sequence[int]) -> list[RunSplit]:
    return [make_split(name, y_base, s) for s in seeds]


def top_rho_predict(scores: np.ndarray, rho: float) -> np.ndarray:
    """Flag (1) the ``rho`` fraction of samples with the highest scores."""
    if not 0 < rho < 1:
        raise ValueError(f"rho must be in (0, 1), got {rho}")
    thr = np.quantile(scores, 1.0 - rho)
    return (scores > thr).astype(np.int64)


def estimator_scores(estimator, X) -> np.ndarray:
    """A fitted estimator's anomaly scores of the rows ``X``, higher = more anomalous (float64).

    ``estimator.anomaly_score(X)`` for the estimators of this package (DAGMM:
    the score of its ``scoring``, the sample energy by default; the
    baselines: their ``energy``), else ``estimator.energy(X)``, else
    ``-estimator.score_samples(X)`` (scikit-learn's detectors, whose
    ``score_samples`` is higher for more normal samples).
    """
    for name in ("anomaly_score", "energy"):
        if hasattr(estimator, name):
            return np.asarray(getattr(estimator, name)(X), dtype=np.float64)
    return -np.asarray(estimator.score_samples(X), dtype=np.float64)


def anomaly_labels(predicted) -> np.ndarray:
    """The protocol's 0/1 labels (1 = anomaly) from ``predict`` / ``fit_predict`` output
    (scikit-learn's outlier convention: -1 = anomaly, +1 = normal)."""
    predicted = np.asarray(predicted)
    if not np.isin(predicted, (-1, 1)).all():
        raise ValueError(f"expected predictions of -1 (anomaly) and +1 (normal), got values {np.unique(predicted)[:5]}")
    return (predicted == -1).astype(np.int64)


def evaluate_scores(y_true: np.ndarray, scores: np.ndarray, rho: float) -> dict:
    """Metrics of one run; ``scores`` higher = more anomalous."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != y_true.shape:
        raise ValueError(f"scores {scores.shape} and labels {y_true.shape} differ in shape")
    if not np.all(np.isfinite(scores)):
        return dict(precision=0.0, recall=0.0, f1=0.0, auroc=0.5, auprc=float(y_true.mean()), failed=True)
    pred = top_rho_predict(scores, rho)
    p, r, f, _ = precision_recall_fscore_support(y_true, pred, average="binary", zero_division=0)
    return dict(
        precision=float(p),
        recall=float(r),
        f1=float(f),
        auroc=float(roc_auc_score(y_true, scores)),
        auprc=float(average_precision_score(y_true, scores)),
        failed=False,
    )


def random_f1(anomaly_fraction: float, rho: float) -> float:
    """Expected F1 of a detector that ranks at random, under the top-``rho`` rule.

    Flagging a random ``rho`` fraction of a test set whose anomaly fraction is
    ``anomaly_fraction`` gives expected precision ``anomaly_fraction`` and
    expected recall ``rho``; their harmonic mean is the chance level an F1 must
    beat (about ``rho`` when ``rho`` is the anomaly fraction, as in the paper).
    """
    for name, v in (("anomaly_fraction", anomaly_fraction), ("rho", rho)):
        if not 0 < v < 1:
            raise ValueError(f"{name} must be in (0, 1), got {v}")
    return 2 * anomaly_fraction * rho / (anomaly_fraction + rho)


def run_batched(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[RunSplit],
    fit_score: Callable[..., dict],
    *,
    rho: float,
    method: str,
    max_parallel: int | None = None,
    keep: Sequence[int] = (0,),
) -> tuple[pd.DataFrame, dict]:
    """All runs of a method that trains several runs at once.

    ``fit_score(X, train_idx, seeds, test_idx, keep)`` trains one model per
    run on ``X[train_idx[r]]`` (``train_idx`` (R, n), ``seeds`` R ints) and
    returns a dict with ``scores`` (ndarray (R, m), higher = more anomalous,
    for the rows ``test_idx`` (R, m)), ``failed`` (bool ndarray (R,): training
    diverged) and optionally ``artifacts`` (dict position-in-chunk -> dict
    for the positions in ``keep``).

    Returns
    -------
    per_run : DataFrame, one row per run (``seconds`` is the chunk's time / runs)
    artifacts : dict run position -> dict (``energy``, ``y`` and what
        ``fit_score`` returned) for the runs in ``keep``
    """
    chunk = max_parallel or len(splits)
    rows, artifacts = [], {}
    for start in range(0, len(splits), chunk):
        part = splits[start : start + chunk]
        t0 = time.perf_counter()
        test_idx = np.stack([s.test_idx for s in part])
        local_keep = [k - start for k in keep if start <= k < start + len(part)]
        out = fit_score(X, np.stack([s.train_idx for s in part]), [s.seed for s in part], test_idx, local_keep)
        seconds = (time.perf_counter() - t0) / len(part)
        failed = np.asarray(out.get("failed", np.zeros(len(part), bool)))
        for j, s in enumerate(part):
            m = evaluate_scores(y[s.test_idx], out["scores"][j], rho)
            m["failed"] = bool(m["failed"] or failed[j])
            rows.append(dict(dataset=name, method=method, run=start + j, seed=s.seed, **m, seconds=seconds))
            if j in local_keep:
                artifacts[start + j] = dict(energy=out["scores"][j], y=y[s.test_idx], **out.get("artifacts", {}).get(j, {}))
    return pd.DataFrame(rows), artifacts


def dagmm_fit_score(estimator, *, score=None, labels=None, desc: str = "DAGMM") -> Callable[..., dict]:
    """A ``fit_score`` for :func:`run_batched` that trains ``estimator``'s runs together.

    ``score``: None (the estimator's ``scoring``), ``"energy"``, ``"recon"``,
    ``"energy+recon"`` (see :func:`dagmm.estimator.anomaly_scores`) or a
    callable ``score(module, X_device, train_idx, test_idx) -> (R, m)``.
    ``labels`` (N,): passed to :func:`dagmm.estimator.fit_runs` (semi-supervised training).
    Artifacts of kept runs: ``z`` (test embeddings) and ``loss`` (per epoch).
    """
    from .estimator import anomaly_scores, fit_runs, score_stats
    from .engine.training import embed

    kind = estimator.scoring if score is None else score

    def fit_score(X, train_idx, seeds, test_idx, keep):
        module, history, Xt = fit_runs(estimator, X, train_idx, seeds, labels=labels, desc=desc)
        if callable(kind):
            scores = np.asarray(kind(module, Xt, train_idx, test_idx))
        else:
            normal_idx = train_idx
            if labels is not None:
                normal_idx = np.stack([r[labels[r] == 0] for r in train_idx])
            stats = score_stats(module, Xt, normal_idx) if kind == "energy+recon" else None
            scores = anomaly_scores(module, Xt, test_idx, kind, stats)
        artifacts = {}
        if keep:
            z, _ = embed(module, Xt, test_idx)
            for j in keep:
                artifacts[j] = dict(z=z[j].cpu().numpy(), loss=history["loss"][:, j])
        return dict(scores=scores, failed=history["failed"], artifacts=artifacts)

    return fit_score


def run_dagmm(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[RunSplit],
    estimator,
    *,
    rho: float,
    method: str = "DAGMM",
    max_parallel: int | None = None,
    keep: Sequence[int] = (0,),
    score=None,
    labels=None,
) -> tuple[pd.DataFrame, dict]:
    """All runs of DAGMM (trained together, ``max_parallel`` at a time).

    Parameters
    ----------
    X, y : base arrays of the dataset (:func:`dagmm.datasets.load_base`)
    splits : one :class:`RunSplit` per run
    estimator : DAGMM (or a subclass)
        Template; run r behaves as ``clone(estimator).set_params(random_state=seed_r)``
        (to float rounding: runs batched together round differently in the last bits).
    keep : run positions whose test energies and embeddings are returned
    score : None (the estimator's ``scoring``), a scoring name or a callable, see :func:`dagmm_fit_score`
    labels : array (N,), optional; 1 = labelled anomaly (only with ``anomaly_loss``)

    Returns
    -------
    per_run : DataFrame, one row per run
    artifacts : dict run position -> dict(energy, y, z, loss) for the runs in ``keep``
    """
    fs = dagmm_fit_score(estimator, score=score, labels=labels, desc=f"{method} {name}")
    return run_batched(name, X, y, splits, fs, rho=rho, method=method, max_parallel=max_parallel, keep=keep)


def run_estimator(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[RunSplit],
    make_estimator: Callable[[int], object],
    *,
    rho: float,
    method: str,
    score: Callable[[object, np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """All runs of any estimator, one after another.

    ``make_estimator(seed)`` returns an unfitted estimator; ``score(est, X)``
    returns anomaly scores (higher = more anomalous), by default
    :func:`estimator_scores` (``anomaly_score``, ``energy`` or ``-score_samples``).
    """
    rows = []
    for i, s in enumerate(splits):
        t0 = time.perf_counter()
        est = make_estimator(s.seed).fit(X[s.train_idx])
        sc = score(est, X[s.test_idx]) if score is not None else estimator_scores(est, X[s.test_idx])
        m = evaluate_scores(y[s.test_idx], sc, rho)
        rows.append(dict(dataset=name, method=method, run=i, seed=s.seed, **m, seconds=time.perf_counter() - t0))
    return pd.DataFrame(rows)


def aggregate(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) over runs, failed runs included."""
    g = per_run.groupby(["dataset", "method"], sort=False)
    out = g.agg(n_runs=("run", "size"), n_failed=("failed", "sum"))
    for m in METRICS:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    return out.reset_index()[TABLE_COLUMNS]
