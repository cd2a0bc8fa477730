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
    "run_row",
    "run_protocol",
    "estimator_fit_scores",
    "Trained",
    "dagmm_fit_scores",
    "run_dagmm",
    "run_estimator",
    "report_line",
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


def evaluate_scores(y_true: np.ndarray, scores: np.ndarray, rho: float, pred: np.ndarray | None = None) -> dict:
    """Metrics of one run; ``scores`` higher = more anomalous.

    Parameters
    ----------
    y_true : array (m,), 1 = anomaly
    scores : array (m,), higher = more anomalous; AUROC and AUPRC are theirs
    rho : float, the top-rho rule's fraction for precision, recall and F1
    pred : array (m,) of 0/1, optional
        A method's own decisions (e.g. a PU threshold); they replace the top-rho rule for precision, recall and F1.

    Returns
    -------
    dict: precision, recall, f1, auroc, auprc, failed (True where a score is NaN or inf: then
    precision, recall and F1 are 0, AUROC 0.5 and AUPRC the prevalence)
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != y_true.shape:
        raise ValueError(f"scores {scores.shape} and labels {y_true.shape} differ in shape")
    if not np.all(np.isfinite(scores)):
        return dict(precision=0.0, recall=0.0, f1=0.0, auroc=0.5, auprc=float(y_true.mean()), failed=True)
    if pred is None:
        pred = top_rho_predict(scores, rho)
    elif np.shape(pred) != y_true.shape:
        raise ValueError(f"pred {np.shape(pred)} and labels {y_true.shape} differ in shape")
    p, r, f, _ = precision_recall_fscore_support(y_true, pred, average="binary", zero_division=0)
    return dict(
        precision=float(p),
        recall=float(r),
        f1=float(f),
        auroc=float(roc_auc_score(y_true, scores)),
        auprc=float(average_precision_score(y_true, scores)),
        failed=False,
    )


def run_row(dataset: str, method: str, run: int, seed: int, y_true, scores, rho: float, /, *, failed: bool = False,
            pred=None, **columns) -> dict:
    """One per-run row of the protocol: who, the metrics (:func:`evaluate_scores`), then ``columns``.

    The row's columns are ``dataset, method, run, seed, precision, recall, f1, auroc, auprc, failed``
    and then ``columns`` in the order given (``seconds``, a study's own keys; the arguments before
    ``failed`` are positional, so a column may share their names, e.g. ``rho``). ``failed``: the
    training diverged; a run is also failed where a score is NaN or inf.
    """
    m = evaluate_scores(y_true, scores, rho, pred)
    m["failed"] = bool(m["failed"] or failed)
    return dict(dataset=dataset, method=method, run=run, seed=seed, **m, **columns)


def _per_run(value, j: int):
    """Run ``j``'s entry of a per-run ndarray, list or tuple; anything else is a constant."""
    return value[j] if isinstance(value, (np.ndarray, list, tuple)) else value


def run_protocol(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[RunSplit],
    fit_scores: Callable[..., dict],
    *,
    rho: float,
    max_parallel: int | None = None,
    keep: Sequence[int] = (),
    on_run: Callable[[str, int, RunSplit, np.ndarray], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Every run of one or more methods under the paper's protocol: the one driver of the study.

    The runs are trained ``max_parallel`` at a time (all at once by default).
    For each chunk of runs, ``fit_scores(X, train_idx, seeds, test_idx, keep)``
    fits one model per run on ``X[train_idx[r]]`` and scores the rows
    ``test_idx[r]``; the driver turns the scores into per-run rows
    (:func:`run_row`).

    Parameters
    ----------
    name : the dataset's name (the rows' ``dataset``)
    X, y : base arrays of the dataset, shape (N, D) and (N,), 1 = anomaly
    splits : one :class:`RunSplit` per run
    fit_scores : callable
        ``fit_scores(X, train_idx (R, n), seeds (R,), test_idx (R, m), keep) -> {method: readout}``,
        ``keep`` the positions in the chunk whose artifacts are wanted. A readout is a dict:

        * ``scores`` (R, m): higher = more anomalous;
        * ``failed`` (R,) bool, optional: the training diverged;
        * ``seconds`` float, optional: what the R runs of this method cost
          (shared work counted in full for each method that uses it; for the
          study's readouts: the training plus that readout's own scoring); by
          default the time of the ``fit_scores`` call; per run it is divided by R;
        * ``pred`` (R, m) 0/1, optional: decisions replacing the top-rho rule;
        * ``columns`` dict, optional: further row columns after ``seconds``,
          each a per-run array (R,) or a constant (a ``"seconds"`` key, value None,
          puts ``seconds`` at its place among them instead);
        * ``artifacts`` dict position -> dict, optional, for the positions in ``keep``.

        One training read out several ways is several methods of one readout dict.
    rho : the top-rho rule's fraction
    keep : run positions whose artifacts are returned
    on_run : callable, optional
        ``on_run(method, run, split, scores)`` after each row, in the rows' order (e.g. to score
        a run at other thresholds too).

    Returns
    -------
    per_run : DataFrame, one row per method and run, method by method within a chunk
        (``dataset, method, run, seed``, metrics, ``failed``, ``seconds``, then ``columns``)
    artifacts : dict (method, run position) -> dict(energy (m,), y (m,), and the readout's artifacts)
    """
    chunk = max_parallel or len(splits)
    rows, artifacts = [], {}
    for start in range(0, len(splits), chunk):
        part = splits[start : start + chunk]
        local_keep = [k - start for k in keep if start <= k < start + len(part)]
        t0 = time.perf_counter()
        out = fit_scores(X, np.stack([s.train_idx for s in part]), [s.seed for s in part],
                         np.stack([s.test_idx for s in part]), local_keep)
        elapsed = time.perf_counter() - t0
        for method, res in out.items():
            failed = np.asarray(res.get("failed", np.zeros(len(part), bool)))
            seconds = res.get("seconds", elapsed) / len(part)
            pred, columns = res.get("pred"), res.get("columns", {})
            for j, s in enumerate(part):
                yt = y[s.test_idx]
                cols = {k: _per_run(v, j) for k, v in columns.items()}
                cols = {"seconds": seconds, **cols} if "seconds" not in cols else {**cols, "seconds": seconds}
                rows.append(run_row(name, method, start + j, s.seed, yt, res["scores"][j], rho, failed=failed[j],
                                    pred=None if pred is None else pred[j], **cols))
                if on_run is not None:
                    on_run(method, start + j, s, res["scores"][j])
                if j in local_keep:
                    artifacts[method, start + j] = dict(energy=res["scores"][j], y=yt, **res.get("artifacts", {}).get(j, {}))
    return pd.DataFrame(rows), artifacts


def estimator_fit_scores(make_estimator: Callable[[int], object], *, method: str,
                         score: Callable[[object, np.ndarray], np.ndarray] | None = None) -> Callable[..., dict]:
    """A ``fit_scores`` for :func:`run_protocol` that fits ``make_estimator(seed)`` run after run.

    ``score(est, X)`` returns anomaly scores (higher = more anomalous), by
    default :func:`estimator_scores` (``anomaly_score``, ``energy`` or ``-score_samples``).
    """

    def fit_scores(X, train_idx, seeds, test_idx, keep):
        scores = []
        for tr, seed, te in zip(train_idx, seeds, test_idx):
            est = make_estimator(seed).fit(X[tr])
            scores.append(score(est, X[te]) if score is not None else estimator_scores(est, X[te]))
        return {method: dict(scores=np.stack(scores))}

    return fit_scores


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


@dataclass(frozen=True)
class Trained:
    """What a callable head of :func:`dagmm_fit_scores` reads: R runs trained together.

    Attributes
    ----------
    module : the trained DAGMM module of the R runs
    history : dict, the training's history (``loss`` (epochs, R), ``failed`` (R,) bool)
    X : Tensor (N, D), the dataset's base rows on the training device
    train_idx : ndarray (R, n), each run's training rows
    test_idx : ndarray (R, m), each run's test rows
    seeds : list of R ints
    readouts : dict method -> readout, those of the heads before this one (in ``heads``' order)
    """

    module: object
    history: dict
    X: object
    train_idx: np.ndarray
    test_idx: np.ndarray
    seeds: list
    readouts: dict


def dagmm_fit_scores(estimator, heads: dict | None = None, *, labels=None, columns: dict | None = None,
                     desc: str = "DAGMM") -> Callable[..., dict]:
    """A ``fit_scores`` for :func:`run_protocol` that trains ``estimator``'s runs together
    and reads each trained model out as every head of ``heads``.

    Parameters
    ----------
    estimator : DAGMM (or a subclass), the template of every run
    heads : dict method -> head, optional
        A head is ``"energy"``, ``"recon"``, ``"energy+recon"`` (see
        :func:`dagmm.estimator.anomaly_scores`) or a callable ``head(trained)`` of a
        :class:`Trained`, returning the scores (R, m) or a whole readout (a dict with
        ``scores`` and any of ``pred``, ``columns``, ``failed``; see :func:`run_protocol`).
        Heads run in order, and a callable one can use the readouts before it.
        Default ``{desc: estimator.scoring}``.
    labels : array (N,), optional
        1 = labelled anomaly, passed to :func:`dagmm.estimator.fit_runs`
        (semi-supervised training); the mixture statistics of ``energy+recon``
        then use the runs' unlabelled training rows only.
    columns : dict, optional
        Row columns (see :func:`run_protocol`) of every readout whose head gives none.

    Every readout's ``seconds`` is the training plus that head's own work; a readout's
    ``failed`` is the training's unless its head says otherwise. The artifacts of kept
    runs: ``z`` (test embeddings) and ``loss`` (per epoch).
    """
    from .engine.training import embed
    from .estimator import anomaly_scores, fit_runs, score_stats

    heads = {desc: estimator.scoring} if heads is None else heads

    def fit_scores(X, train_idx, seeds, test_idx, keep):
        t0 = time.perf_counter()
        module, history, Xt = fit_runs(estimator, X, train_idx, seeds, labels=labels, desc=desc)
        fit_seconds = time.perf_counter() - t0
        stats = None
        if "energy+recon" in heads.values():
            normal_idx = train_idx if labels is None else np.stack([r[labels[r] == 0] for r in train_idx])
            stats = score_stats(module, Xt, normal_idx)
        artifacts = {}
        if keep:
            z, _ = embed(module, Xt, test_idx)
            artifacts = {j: dict(z=z[j].cpu().numpy(), loss=history["loss"][:, j]) for j in keep}
        out = {}
        for method, head in heads.items():
            t1 = time.perf_counter()
            if callable(head):
                got = head(Trained(module, history, Xt, train_idx, test_idx, list(seeds), dict(out)))
                readout = dict(got) if isinstance(got, dict) else dict(scores=got)
            else:
                readout = dict(scores=anomaly_scores(module, Xt, test_idx, head, stats))
            readout["scores"] = np.asarray(readout["scores"])
            readout.setdefault("failed", history["failed"])
            if columns is not None:
                readout.setdefault("columns", columns)
            out[method] = dict(readout, seconds=fit_seconds + time.perf_counter() - t1, artifacts=artifacts)
        return out

    return fit_scores


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
    """All runs of DAGMM (trained together, ``max_parallel`` at a time): :func:`run_protocol`
    with :func:`dagmm_fit_scores`.

    Parameters
    ----------
    X, y : base arrays of the dataset (:func:`dagmm.datasets.load_base`)
    splits : one :class:`RunSplit` per run
    estimator : DAGMM (or a subclass)
        Template; run r behaves as ``clone(estimator).set_params(random_state=seed_r)``
        (to float rounding: runs batched together round differently in the last bits).
    keep : run positions whose test energies and embeddings are returned
    score : None (the estimator's ``scoring``), a scoring name or a callable, see :func:`dagmm_fit_scores`
    labels : array (N,), optional; 1 = labelled anomaly (only with ``anomaly_loss``)

    Returns
    -------
    per_run : DataFrame, one row per run
    artifacts : dict run position -> dict(energy, y, z, loss) for the runs in ``keep``
    """
    fs = dagmm_fit_scores(estimator, {method: estimator.scoring if score is None else score}, labels=labels,
                          desc=f"{method} {name}")
    per_run, artifacts = run_protocol(name, X, y, splits, fs, rho=rho, max_parallel=max_parallel, keep=keep)
    return per_run, {run: a for (_, run), a in artifacts.items()}


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
    """All runs of any estimator, one after another: :func:`run_protocol` with
    :func:`estimator_fit_scores`, one run per chunk.

    ``make_estimator(seed)`` returns an unfitted estimator; ``score(est, X)``
    returns anomaly scores (higher = more anomalous), by default
    :func:`estimator_scores` (``anomaly_score``, ``energy`` or ``-score_samples``).
    """
    fs = estimator_fit_scores(make_estimator, method=method, score=score)
    return run_protocol(name, X, y, splits, fs, rho=rho, max_parallel=1)[0]


def report_line(name: str, method: str, per_run: pd.DataFrame, seconds: float) -> str:
    """One line of progress: a method's mean F1 and AUROC on ``name`` over its runs, failures and time."""
    return (f"{name:>11} | {method:<28} | F1 {per_run.f1.mean():.4f} ± {per_run.f1.std():.4f} | "
            f"AUROC {per_run.auroc.mean():.4f} | failed {int(per_run.failed.sum())} | {seconds:.1f} s")


def aggregate(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) over runs, failed runs included."""
    g = per_run.groupby(["dataset", "method"], sort=False)
    out = g.agg(n_runs=("run", "size"), n_failed=("failed", "sum"))
    for m in METRICS:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    return out.reset_index()[TABLE_COLUMNS]
