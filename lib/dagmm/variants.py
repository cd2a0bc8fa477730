"""The seeds' DAGMM variants under the paper's protocol (notebooks 04-06).

Each variant is a setting of :class:`dagmm.DAGMM` (see :data:`VARIANTS`),
trained on the same splits and seeds as DAGMM itself (notebook 01), with all
runs of a dataset trained together. Besides the protocol's metrics (top-rho
precision/recall/F1, AUROC, AUPRC) every run is also scored at the seeds'
percentile thresholds (flag the top p% of test scores, p = 10..60).

Labelled anomalies (the modified loss and the PU threshold) come from the
*training* half only: a random ``label_fraction`` of its anomalies, drawn
per run seed; test labels are used for evaluation only.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from .configs import paper_setting
from .datasets import draw_rows, load_base
from .estimator import DAGMM
from .protocol import RunSplit, Trained, dagmm_fit_scores, make_splits, report_line, run_protocol
from .pu import PUClassifier
from .engine.training import compute_scores, embed

__all__ = [
    "VARIANTS",
    "PERCENTILES",
    "training_half",
    "labelled_anomalies",
    "percentile_sweep",
    "run_variant",
    "run_dagmm_heads",
    "pu_head",
    "aggregate_sweep",
    "variant_finding",
]

# method name (as in published_results.csv where the seeds report it) -> DAGMM overrides
VARIANTS = {
    "DAGMM-VAE": dict(compressor="vae"),
    "DAGMM-VQVAE": dict(compressor="vqvae"),
    "DAGMM Laplacian": dict(mixture="laplace"),
    "DAGMM modified loss": dict(anomaly_loss="inverse"),
    "DAGMM modified loss (hinge)": dict(anomaly_loss="hinge"),
}
PERCENTILES = (10, 20, 30, 40, 50, 60)
LABEL_SEED_TAG = 104729  # labelled anomalies of run s use default_rng([s, LABEL_SEED_TAG])
PU_MAX_UNLABELLED = 20_000  # the PU classifier is fitted on at most this many unlabelled rows (a random subset)


def training_half(name: str, y_base: np.ndarray, split: RunSplit) -> np.ndarray:
    """Every row of run ``split.seed``'s training half (normal and anomalous), sorted."""
    rows = draw_rows(name, y_base, split.seed)
    return np.setdiff1d(rows, split.test_idx)


def labelled_anomalies(name: str, y_base: np.ndarray, split: RunSplit, fraction: float) -> np.ndarray:
    """A random ``fraction`` (at least 5 rows) of the training half's anomalies, sorted."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label_fraction must be in (0, 1], got {fraction}")
    half = training_half(name, y_base, split)
    anomalies = half[y_base[half] == 1]
    n = min(len(anomalies), max(5, int(round(fraction * len(anomalies)))))
    rng = np.random.default_rng([split.seed, LABEL_SEED_TAG])
    return np.sort(rng.choice(anomalies, n, replace=False))


def percentile_sweep(y_true: np.ndarray, scores: np.ndarray, percentiles: Sequence[int] = PERCENTILES) -> list[dict]:
    """Precision, recall and F1 when the top ``p`` % of ``scores`` are flagged, for each p."""
    rows = []
    for p in percentiles:
        pred = (scores > np.quantile(scores, 1 - p / 100)).astype(int) if np.isfinite(scores).all() else np.zeros_like(y_true)
        pr, rc, f1, _ = precision_recall_fscore_support(y_true, pred, average="binary", zero_division=0)
        rows.append(dict(percentile=p, precision=float(pr), recall=float(rc), f1=float(f1)))
    return rows


def _sweep(sweep: list, name: str, y: np.ndarray, percentiles: Sequence[int]):
    """An ``on_run`` for :func:`dagmm.protocol.run_protocol`: each run's scores at the
    ``percentiles`` thresholds, appended to ``sweep`` (a failed run's flag nothing, so it counts
    as zeros); ``y`` the dataset's labels."""
    def on_run(method, run, split, scores):
        sweep.extend(dict(dataset=name, method=method, run=run, seed=split.seed, **r)
                     for r in percentile_sweep(y[split.test_idx], scores, percentiles))
    return on_run


def _setup(name, n_runs, data_dir, epochs, device, overrides):
    X, y = load_base(name, data_dir)
    splits = make_splits(name, y, range(n_runs))
    kw = dict(device=device, **overrides)
    if epochs is not None:
        kw["epochs"] = epochs
    return X, y, splits, DAGMM.from_paper(name, **kw), paper_setting(name)["contamination"]


def run_variant(
    name: str,
    n_runs: int,
    method: str,
    overrides: dict,
    *,
    epochs: int | None = None,
    data_dir=None,
    device: str = "auto",
    max_parallel: int | None = None,
    label_fraction: float = 0.2,
    percentiles: Sequence[int] = PERCENTILES,
    verbose: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All runs of one variant (DAGMM with ``overrides``) on ``name``, scored by its ``scoring``.

    With an ``anomaly_loss`` the training set of run s is its normal training
    rows plus :func:`labelled_anomalies` (``label_fraction`` of the training
    half's anomalies), labelled as such.

    Returns
    -------
    per_run : DataFrame (dataset, method, run, seed, metrics, failed, seconds, threshold)
    sweep : DataFrame (dataset, method, run, seed, percentile, precision, recall, f1)
    """
    t_all = time.perf_counter()
    X, y, splits, est, rho = _setup(name, n_runs, data_dir, epochs, device, overrides)
    labels = None
    if est.anomaly_loss is not None:
        lab = [labelled_anomalies(name, y, s, label_fraction) for s in splits]
        labels = np.zeros(len(y), dtype=np.int64)  # only the labelled training anomalies are marked
        labels[np.concatenate(lab)] = 1
        splits = [RunSplit(s.seed, np.sort(np.concatenate([s.train_idx, a])), s.test_idx) for s, a in zip(splits, lab)]
    sweep = []
    on_run = _sweep(sweep, name, y, percentiles)
    fit_scores = dagmm_fit_scores(est, {method: est.scoring}, labels=labels, desc=f"{method} {name}")

    def with_threshold(*args):
        return {m: {**r, "columns": {"threshold": "top-rho"}} for m, r in fit_scores(*args).items()}

    df, _ = run_protocol(name, X, y, splits, with_threshold, rho=rho, max_parallel=max_parallel, on_run=on_run)
    if verbose:
        print(report_line(name, method, df, time.perf_counter() - t_all), flush=True)
    return df, pd.DataFrame(sweep)


def run_dagmm_heads(
    name: str,
    n_runs: int,
    *,
    epochs: int | None = None,
    data_dir=None,
    device: str = "auto",
    max_parallel: int | None = None,
    label_fraction: float = 0.2,
    percentiles: Sequence[int] = PERCENTILES,
    pu_max_unlabelled: int = PU_MAX_UNLABELLED,
    verbose: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DAGMM (paper setting) once per run, read out three ways on the same trained models.

    * ``DAGMM``: the sample energy, top-rho rule (the reference);
    * ``DAGMM modified inference``: energy plus reconstruction error, each
      standardised over the run's training rows, top-rho rule;
    * ``DAGMM PU threshold``: an Elkan-Noto classifier (:class:`dagmm.pu.PUClassifier`)
      on the features ``[z, energy]`` that separates the labelled anomalies
      (``label_fraction`` of the *training* half's anomalies) from the
      unlabelled *test* half (transductive PU: the labelled rows are a
      random sample of the pooled anomalies); test rows are classified with
      out-of-fold ``g`` (5 folds); precision/recall/F1 at
      ``g(x) / c >= 0.5`` (``threshold = "PU c/2"``, no rho needed), AUROC and
      AUPRC of ``g`` (:func:`pu_head`).

    Returns per_run and sweep frames as :func:`run_variant`, the three rows of a run together.
    """
    t_all = time.perf_counter()
    X, y, splits, est, rho = _setup(name, n_runs, data_dir, epochs, device, {})
    sweep = []
    on_run = _sweep(sweep, name, y, percentiles)
    lab_of = {s.seed: labelled_anomalies(name, y, s, label_fraction) for s in splits}

    def pu_threshold(t: Trained) -> dict:  # reads the trained runs and the energy head's test energies
        energy = t.readouts["DAGMM"]["scores"]
        lab_idx = np.stack([lab_of[s] for s in t.seeds])
        z_test, _ = embed(t.module, t.X, t.test_idx)
        z_lab, _ = embed(t.module, t.X, lab_idx)
        e_lab = compute_scores(t.module, t.X, lab_idx, "energy")
        failed = t.history["failed"]
        g, pred, cols = [], [], []
        for j, seed in enumerate(t.seeds):
            feats = np.concatenate([
                np.column_stack([z_lab[j].cpu().numpy(), e_lab[j]]),
                np.column_stack([z_test[j].cpu().numpy(), energy[j]]),
            ]).astype(np.float64)
            s_lab = np.r_[np.ones(len(lab_idx[j])), np.zeros(len(t.test_idx[j]))].astype(int)
            g_j, pred_j, c_j = pu_head(seed, y[t.test_idx[j]], feats, s_lab, failed=bool(failed[j]),
                                        max_unlabelled=pu_max_unlabelled)
            g.append(g_j)
            pred.append(pred_j)
            cols.append(c_j)
        columns = {"threshold": "PU c/2", **{k: np.array([c[k] for c in cols]) for k in cols[0]}}
        return dict(scores=np.stack(g), pred=np.stack(pred), columns=columns)

    fit_scores = dagmm_fit_scores(est, {"DAGMM": "energy", "DAGMM modified inference": "energy+recon",
                                        "DAGMM PU threshold": pu_threshold},
                                  columns={"threshold": "top-rho"}, desc=f"DAGMM heads {name}")

    df, _ = run_protocol(name, X, y, splits, fit_scores, rho=rho, max_parallel=max_parallel, on_run=on_run)
    # a run's three readouts side by side
    df = df.sort_values("run", kind="stable").reset_index(drop=True)
    sweep = pd.DataFrame(sweep)
    if len(sweep):
        sweep = sweep.sort_values("run", kind="stable").reset_index(drop=True)
    if verbose:
        for method, d in df.groupby("method", sort=False):
            print(report_line(name, method, d, time.perf_counter() - t_all), flush=True)
    return df, sweep


def pu_head(seed: int, y_test: np.ndarray, feats: np.ndarray, s_lab: np.ndarray, *, failed: bool = False,
            max_unlabelled: int = PU_MAX_UNLABELLED) -> tuple[np.ndarray, np.ndarray, dict]:
    """The PU threshold of one run: an Elkan-Noto classifier of labelled against unlabelled rows.

    Parameters
    ----------
    seed : the run's seed (the classifier's folds and the subsample of a large pool)
    y_test : array (m,), the test rows' labels: only for ``pu_c_true``, the labelling rate ``c`` estimates
    feats : array (n_lab + m, F), the labelled anomalies' features, then the test rows'
    s_lab : array (n_lab + m,), 1 for a labelled row, 0 for a test row
    failed : the training diverged (no classifier is fitted)
    max_unlabelled : with more test rows, the classifier is fitted on a random subset that keeps
        labelled and unlabelled rows at the same rate (so ``c`` is unchanged) and scores the other
        rows out of sample

    Returns
    -------
    g : array (m,), the classifier's probability that a test row is labelled (out of fold
        inside the fitted pool); NaN where the training failed or a feature is not finite
    pred : array (m,) of 0/1, ``g / c >= 0.5``
    columns : dict ``pu_c`` (the estimated ``c``), ``pu_c_true``, ``n_labelled``
    """
    n_lab = int(s_lab.sum())
    n_unlab = len(feats) - n_lab
    columns = dict(pu_c=np.nan, pu_c_true=n_lab / (n_lab + int(y_test.sum())), n_labelled=n_lab)
    if failed or not np.isfinite(feats).all():
        return np.full(n_unlab, np.nan), np.zeros(n_unlab, dtype=int), columns
    lab_rows, unlab_rows = np.arange(n_lab), np.arange(n_unlab)
    if n_unlab > max_unlabelled:
        # Fit on a random subset of the pool, labelled and unlabelled rows kept at the same rate, so the
        # labelling rate c (and the class prior) of the fitted pool are those of the whole pool.
        rng = np.random.default_rng([seed, LABEL_SEED_TAG, 1])
        frac = max_unlabelled / n_unlab
        lab_rows = np.sort(rng.choice(n_lab, max(10, int(round(frac * n_lab))), replace=False))
        unlab_rows = np.sort(rng.choice(n_unlab, max_unlabelled, replace=False))
    fit_rows = np.r_[lab_rows, n_lab + unlab_rows]
    pu = PUClassifier(random_state=seed).fit(feats[fit_rows], s_lab[fit_rows])
    g = pu.labelled_proba(feats[n_lab:])  # out of sample for test rows outside the fitted pool
    g[unlab_rows] = pu.oof_proba_[len(lab_rows):]  # out-of-fold g for those inside it
    columns["pu_c"] = pu.c_
    return g, (g / pu.c_ >= pu.threshold).astype(int), columns


def aggregate_sweep(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over runs of precision, recall and F1 per (dataset, method, percentile)."""
    g = sweep.groupby(["dataset", "method", "percentile"], sort=False)
    out = g.agg(n_runs=("run", "size"))
    for m in ("precision", "recall", "f1"):
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    return out.reset_index()


def variant_finding(table: pd.DataFrame, reference: pd.DataFrame, methods) -> str:
    """One paragraph on how each variant in ``methods`` compares with DAGMM, for the landing page.

    Parameters
    ----------
    table : DataFrame, the variants' aggregated rows (``dataset, method, n_runs, f1_mean, auroc_mean, ...``)
    reference : DataFrame, DAGMM's rows from notebook 01's ``table2_dagmm.csv``
    methods : iterable of str, the variants to describe

    Returns
    -------
    str, Markdown: per variant, on how many datasets its mean F1 and AUROC are above DAGMM's,
    and the numbers per dataset. The paired tests are notebook 07's.
    """
    ref = reference.set_index("dataset")
    parts = []
    for m in methods:
        t = table[(table.method == m) & table.dataset.isin(ref.index)].set_index("dataset")
        if t.empty:
            continue
        f1_up = int((t.f1_mean > ref.loc[t.index, "f1_mean"]).sum())
        au_up = int((t.auroc_mean > ref.loc[t.index, "auroc_mean"]).sum())
        each = ", ".join(f"{d} {r.f1_mean:.3f} vs {ref.loc[d, 'f1_mean']:.3f}" for d, r in t.iterrows())
        parts.append(f"**{m}** has a higher mean F1 than DAGMM on {f1_up} of {len(t)} datasets and a higher mean "
                     f"AUROC on {au_up} (F1: {each})")
    if not parts:
        return "No variant ran on a dataset that notebook 01's DAGMM table covers."
    return ("; ".join(parts) + f", over {int(table.n_runs.max())} runs each. Whether a difference is more than seed "
            "noise is decided by the paired tests of notebook 07.")
