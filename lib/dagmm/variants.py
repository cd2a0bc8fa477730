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
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from .configs import paper_setting
from .datasets import draw_rows, load_base
from .estimator import DAGMM, anomaly_scores, fit_runs, score_stats
from .protocol import RunSplit, evaluate_scores, make_splits
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


def _chunks(est, X, train_idx: np.ndarray, seeds: Sequence[int], labels, max_parallel, desc) -> Iterator:
    chunk = max_parallel or len(seeds)
    for start in range(0, len(seeds), chunk):
        sl = slice(start, start + chunk)
        t0 = time.perf_counter()
        module, history, Xt = fit_runs(est, X, train_idx[sl], list(seeds[sl]), labels=labels, desc=desc)
        yield start, module, history, Xt, t0


def _row(name, method, run, seed, y_true, scores, rho, failed, seconds, threshold="top-rho"):
    m = evaluate_scores(y_true, scores, rho)
    m["failed"] = bool(m["failed"] or failed)
    return dict(dataset=name, method=method, run=run, seed=seed, **m, seconds=seconds, threshold=threshold)


def _sweep_rows(name, method, run, seed, y_true, scores, percentiles):
    return [dict(dataset=name, method=method, run=run, seed=seed, **r) for r in percentile_sweep(y_true, scores, percentiles)]


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
    train = [s.train_idx for s in splits]
    if est.anomaly_loss is not None:
        lab = [labelled_anomalies(name, y, s, label_fraction) for s in splits]
        labels = np.zeros(len(y), dtype=np.int64)  # only the labelled training anomalies are marked
        labels[np.concatenate(lab)] = 1
        train = [np.sort(np.concatenate([s.train_idx, a])) for s, a in zip(splits, lab)]
    train_idx = np.stack(train)
    seeds = [s.seed for s in splits]
    rows, sweep = [], []
    for start, module, history, Xt, t0 in _chunks(est, X, train_idx, seeds, labels, max_parallel, f"{method} {name}"):
        part = splits[start : start + module.n_runs]
        test_idx = np.stack([s.test_idx for s in part])
        stats = None
        if est.scoring == "energy+recon":
            stats = score_stats(module, Xt, np.stack([s.train_idx for s in part]))
        scores = anomaly_scores(module, Xt, test_idx, est.scoring, stats)
        sec = (time.perf_counter() - t0) / len(part)
        for j, s in enumerate(part):
            yt = y[s.test_idx]
            rows.append(_row(name, method, start + j, s.seed, yt, scores[j], rho, history["failed"][j], sec))
            sweep += _sweep_rows(name, method, start + j, s.seed, yt, scores[j], percentiles)
    df = pd.DataFrame(rows)
    if verbose:
        _report(name, method, df, time.perf_counter() - t_all)
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
      AUPRC of ``g``. With more than ``pu_max_unlabelled`` test rows, ``g`` is
      fitted on a random subset that keeps labelled and unlabelled rows at
      the same rate (so ``c`` is unchanged) and scores the other rows out of sample. The estimated ``c`` is kept in ``pu_c`` beside the
      labelling rate it estimates (``pu_c_true``, computed from test labels
      for checking only).

    Returns per_run and sweep frames as :func:`run_variant`.
    """
    t_all = time.perf_counter()
    X, y, splits, est, rho = _setup(name, n_runs, data_dir, epochs, device, {})
    train_idx = np.stack([s.train_idx for s in splits])
    seeds = [s.seed for s in splits]
    rows, sweep = [], []
    for start, module, history, Xt, t0 in _chunks(est, X, train_idx, seeds, None, max_parallel, f"DAGMM heads {name}"):
        part = splits[start : start + module.n_runs]
        R = len(part)
        test_idx = np.stack([s.test_idx for s in part])
        lab_idx = np.stack([labelled_anomalies(name, y, s, label_fraction) for s in part])
        stats = score_stats(module, Xt, train_idx[start : start + R])
        energy = anomaly_scores(module, Xt, test_idx, "energy")
        combined = anomaly_scores(module, Xt, test_idx, "energy+recon", stats)
        z_test, _ = embed(module, Xt, test_idx)
        z_lab, _ = embed(module, Xt, lab_idx)
        e_lab = compute_scores(module, Xt, lab_idx, "energy")
        sec = (time.perf_counter() - t0) / R
        for j, s in enumerate(part):
            yt = y[s.test_idx]
            failed = history["failed"][j]
            rows.append(_row(name, "DAGMM", start + j, s.seed, yt, energy[j], rho, failed, sec))
            rows.append(_row(name, "DAGMM modified inference", start + j, s.seed, yt, combined[j], rho, failed, sec))
            sweep += _sweep_rows(name, "DAGMM", start + j, s.seed, yt, energy[j], percentiles)
            sweep += _sweep_rows(name, "DAGMM modified inference", start + j, s.seed, yt, combined[j], percentiles)
            feats = np.concatenate([
                np.column_stack([z_lab[j].cpu().numpy(), e_lab[j]]),
                np.column_stack([z_test[j].cpu().numpy(), energy[j]]),
            ]).astype(np.float64)
            s_lab = np.r_[np.ones(len(lab_idx[j])), np.zeros(len(s.test_idx))].astype(int)
            row = _pu_row(name, start + j, s.seed, yt, feats, s_lab, rho, failed, sec, pu_max_unlabelled)
            rows.append(row)
            if np.isfinite(feats).all():
                pu = row.pop("_g")
                sweep += _sweep_rows(name, "DAGMM PU threshold", start + j, s.seed, yt, pu, percentiles)
            else:
                row.pop("_g")
    df = pd.DataFrame(rows)
    if verbose:
        for method, d in df.groupby("method", sort=False):
            _report(name, method, d, time.perf_counter() - t_all)
    return df, pd.DataFrame(sweep)


def _pu_row(name, run, seed, y_test, feats, s_lab, rho, failed, sec, max_unlabelled=PU_MAX_UNLABELLED) -> dict:
    n_lab = int(s_lab.sum())
    n_unlab = len(feats) - n_lab
    extra = dict(pu_c=np.nan, pu_c_true=n_lab / (n_lab + int(y_test.sum())), n_labelled=n_lab)
    if failed or not np.isfinite(feats).all():
        row = _row(name, "DAGMM PU threshold", run, seed, y_test, np.full(len(y_test), np.nan), rho, True, sec, "PU c/2")
        return {**row, **extra, "_g": None}
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
    row = _row(name, "DAGMM PU threshold", run, seed, y_test, g, rho, failed, sec, "PU c/2")
    pred = (g / pu.c_ >= pu.threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y_test, pred, average="binary", zero_division=0)
    row.update(precision=float(p), recall=float(r), f1=float(f))
    extra["pu_c"] = pu.c_
    return {**row, **extra, "_g": g}


def aggregate_sweep(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over runs of precision, recall and F1 per (dataset, method, percentile)."""
    g = sweep.groupby(["dataset", "method", "percentile"], sort=False)
    out = g.agg(n_runs=("run", "size"))
    for m in ("precision", "recall", "f1"):
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    return out.reset_index()


def _report(name, method, df, seconds):
    print(f"{name:>11} | {method:<28} | F1 {df.f1.mean():.4f} ± {df.f1.std():.4f} | AUROC {df.auroc.mean():.4f} | "
          f"failed {int(df.failed.sum())} | {seconds:.1f} s", flush=True)


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
