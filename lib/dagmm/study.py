"""The replication as functions a notebook calls: profiles and one dataset's runs."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from .configs import paper_setting
from .datasets import load_base
from .estimator import DAGMM
from .protocol import make_splits, report_line, run_dagmm, run_estimator

__all__ = ["PROFILES", "profile_settings", "replicate_dataset", "SCALINGS", "scaling_investigation", "epochs_investigation",
           "VARIANTS", "energy_vs_recon_findings", "training_length_lines"]

# "full": the paper's settings. "smoke": a fast pass through every code path.
PROFILES = {
    "full": dict(n_runs=None, epochs={}),
    "smoke": dict(n_runs=2, epochs={"kddcup": 1, "kddcup_rev": 1, "thyroid": 4, "arrhythmia": 4}),
}


def profile_settings(profile: str, n_runs: int) -> tuple[int, dict]:
    """(number of runs, per-dataset epoch overrides) for a profile."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    p = PROFILES[profile]
    runs = n_runs if p["n_runs"] is None else min(n_runs, p["n_runs"])
    return runs, dict(p["epochs"])


def replicate_dataset(
    name: str,
    n_runs: int,
    *,
    epochs: int | None = None,
    data_dir=None,
    device: str = "auto",
    max_parallel: int | None = None,
    controls: bool = True,
    extra: dict[str, dict] | None = None,
    verbose: bool = True,
    torch_compile: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """DAGMM with the paper's setting on ``name``, seeds ``0..n_runs-1``, and its controls.

    Methods: ``DAGMM`` (paper setting), and with ``controls``:
    ``DAGMM (untrained)`` (same networks, 0 epochs, mixture fitted on the
    training set) and ``Isolation Forest`` (scikit-learn defaults). ``extra``
    maps further method names to overrides of the paper setting.
    ``torch_compile`` is passed to every DAGMM (see :class:`dagmm.DAGMM`).

    Returns
    -------
    per_run : DataFrame (one row per method and run)
    artifacts : dict method -> {run: dict(energy, y, z, loss)} for run 0
    """
    X, y = load_base(name, data_dir)
    splits = make_splits(name, y, range(n_runs))
    setting = paper_setting(name)
    rho = setting["contamination"]
    overrides = dict(device=device, torch_compile=torch_compile)
    if epochs is not None:
        overrides["epochs"] = epochs
    methods = {"DAGMM": overrides}
    if controls:
        methods["DAGMM (untrained)"] = {**overrides, "epochs": 0}
    for m, kw in (extra or {}).items():
        methods[m] = {**overrides, **kw}
    frames, artifacts = [], {}
    for method, kw in methods.items():
        t0 = time.perf_counter()
        df, art = run_dagmm(name, X, y, splits, DAGMM.from_paper(name, **kw), rho=rho, method=method, max_parallel=max_parallel)
        frames.append(df)
        artifacts[method] = art
        if verbose:
            print(report_line(name, method, df, time.perf_counter() - t0), flush=True)
    if controls:
        t0 = time.perf_counter()
        from sklearn.ensemble import IsolationForest

        df = run_estimator(name, X, y, splits, lambda s: IsolationForest(random_state=s, n_jobs=-1), rho=rho, method="Isolation Forest")
        frames.append(df)
        if verbose:
            print(report_line(name, "Isolation Forest", df, time.perf_counter() - t0), flush=True)
    return pd.concat(frames, ignore_index=True), artifacts


SCALINGS = {
    "min-max (training normals)": "minmax",
    "z-score (training normals)": "zscore",
    "min-max (all rows, no labels)": "global",
}


def scaling_investigation(
    name: str,
    n_runs: int,
    *,
    epochs: int | None = None,
    data_dir=None,
    device: str = "auto",
    max_parallel: int | None = None,
    verbose: bool = True,
) -> pd.DataFrame:
    """DAGMM (trained and untrained) under three input scalings, seeds ``0..n_runs-1``.

    * ``min-max (training normals)``: the protocol's scaling (statistics of
      the rows the model is trained on);
    * ``z-score (training normals)``: standardisation with the same rows;
    * ``min-max (all rows, no labels)``: min-max over the whole dataset before
      splitting, as public implementations do; it sees the test rows' feature
      ranges (never their labels), so it is a diagnostic, not the protocol.

    Returns a per-run frame whose ``method`` reads ``"DAGMM, <scaling>"`` or
    ``"DAGMM (untrained), <scaling>"``.
    """
    X, y = load_base(name, data_dir)
    splits = make_splits(name, y, range(n_runs))
    rho = paper_setting(name)["contamination"]
    frames = []
    for label, kind in SCALINGS.items():
        Xs, prep = X, kind
        if kind == "global":
            lo, hi = X.min(0), X.max(0)
            Xs = ((X - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)
            prep = None
        for trained in (True, False):
            kw = dict(device=device, preprocessing=prep)
            if not trained:
                kw["epochs"] = 0
            elif epochs is not None:
                kw["epochs"] = epochs
            method = f"DAGMM{'' if trained else ' (untrained)'}, {label}"
            t0 = time.perf_counter()
            df, _ = run_dagmm(name, Xs, y, splits, DAGMM.from_paper(name, **kw), rho=rho, method=method,
                              max_parallel=max_parallel, keep=())
            frames.append(df)
            if verbose:
                print(report_line(name, method, df, time.perf_counter() - t0), flush=True)
    return pd.concat(frames, ignore_index=True)


def epochs_investigation(
    name: str,
    n_runs: int,
    checkpoints=(10, 20, 50, 100, 200),
    *,
    variants: dict[str, dict] | None = None,
    scores: Sequence[str] = ("energy",),
    data_dir=None,
    device: str = "auto",
    max_parallel: int | None = None,
    verbose: bool = True,
) -> pd.DataFrame:
    """DAGMM evaluated after several numbers of epochs of the same training.

    One training of ``max(checkpoints)`` epochs per run and variant; after
    each checkpoint epoch the scoring mixture is fitted on the training rows
    and the test half is scored as at the end of a training of that length
    (the optimiser state and data order are those of the one long training).
    On the CPU this equals a shorter training exactly (tested); on a GPU the
    random streams of shuffling and dropout split differently at a
    checkpoint, so it is the same in distribution, not draw for draw.

    Parameters
    ----------
    name : str
        Dataset name (:func:`dagmm.datasets.load_base`); its paper setting is used.
    n_runs : int
        Runs, with seeds and splits ``0..n_runs-1`` (notebook 01's).
    checkpoints : sequence of int
        Epochs after which the runs are scored; training lasts the largest.
    variants : dict {label: dict}, default ``{"DAGMM": {}}``
        Overrides of the paper setting (:data:`VARIANTS` holds the study's),
        each trained separately with the same seeds and splits. The keys this
        function sets itself (``epochs``, ``device``, ``contamination``,
        ``scoring``, ``random_state``, ``verbose``) are refused.
    scores : sequence of {"energy", "recon"}, default ("energy",)
        Scores of :func:`dagmm.engine.training.compute_scores` to evaluate: DAGMM's
        energy and/or the autoencoder's squared reconstruction error, read off
        the same networks.
    data_dir, device, max_parallel, verbose
        As in :func:`replicate_dataset`.

    Returns
    -------
    per_run : DataFrame, one row per variant, score, checkpoint and run, with
        columns ``variant``, ``score`` and ``epochs`` besides the metrics;
        ``method`` reads ``"<variant>, <e> epochs"`` for the energy and
        ``"<variant> (reconstruction error), <e> epochs"`` for ``"recon"``.
    """
    from .estimator import fit_runs
    from .engine.training import compute_scores, estimate_mixture
    from .protocol import evaluate_scores, run_protocol

    variants = {"DAGMM": {}} if variants is None else dict(variants)
    if not variants:
        raise ValueError("variants must name at least one variant")
    reserved = {"epochs", "device", "contamination", "scoring", "random_state", "verbose"}
    for label, overrides in variants.items():
        clash = sorted(reserved & set(overrides))
        if clash:
            raise ValueError(f"variant {label!r} overrides {clash}, which epochs_investigation sets itself")
    bad = [k for k in scores if k not in ("energy", "recon")]
    if bad or not scores:
        raise ValueError(f"scores must be a non-empty subset of ('energy', 'recon'), got {tuple(scores)}")
    if not checkpoints or min(checkpoints) < 1:
        raise ValueError(f"checkpoints must be positive epoch counts, got {tuple(checkpoints)}")
    X, y = load_base(name, data_dir)
    splits = make_splits(name, y, range(n_runs))
    rho = paper_setting(name)["contamination"]
    frames = []
    for label, overrides in variants.items():
        est = DAGMM.from_paper(name, **{**overrides, "device": device, "epochs": max(checkpoints)})

        def fit_scores(X_, train_idx, seeds, test_idx, keep, label=label, est=est):
            t0 = time.perf_counter()
            out = {}

            def evaluate(module, epoch, Xt, train_rows):  # after each checkpoint epoch: the runs as if trained that long
                estimate_mixture(module, Xt, train_rows)
                for kind in scores:
                    method = f"{label}{'' if kind == 'energy' else ' (reconstruction error)'}, {epoch} epochs"
                    out[method] = dict(scores=compute_scores(module, Xt, test_idx, kind=kind),
                                       # a row's seconds: the chunk's wall time up to this checkpoint
                                       seconds=(time.perf_counter() - t0) * len(seeds),
                                       columns=dict(variant=label, score=kind, epochs=epoch, seconds=None))
                    if verbose:
                        m = [evaluate_scores(y[te], sc, rho) for te, sc in zip(test_idx, out[method]["scores"])]
                        f1, auc = [r["f1"] for r in m], [r["auroc"] for r in m]
                        print(f"{name:>11} | {label:<16} | {kind:<6} | after {epoch:>5} epochs | F1 {np.mean(f1):.4f} ± "
                              f"{np.std(f1, ddof=1) if len(f1) > 1 else 0:.4f} | AUROC {np.mean(auc):.4f}", flush=True)

            fit_runs(est, X_, train_idx, list(seeds), checkpoints=checkpoints, on_checkpoint=evaluate)
            return out

        frames.append(run_protocol(name, X, y, splits, fit_scores, rho=rho, max_parallel=max_parallel)[0])
    return pd.concat(frames, ignore_index=True)


# Variants of DAGMM's paper setting compared in notebooks 01d and 01e (overrides of the setting).
VARIANTS: dict[str, dict] = {
    "DAGMM": {},
    "DAGMM (no covariance penalty)": {"lambda_cov": 0.0},
    "DAGMM (z-score)": {"preprocessing": "zscore"},
}


def energy_vs_recon_findings(per_run: pd.DataFrame, paper_f1: float | None = None,
                             reference: str = "DAGMM") -> tuple[pd.DataFrame, str]:
    """Energy against reconstruction error at the longest training, paired by seed.

    Two kinds of comparison, each a two-sided Wilcoxon signed-rank test over
    the seeds (:func:`dagmm.summary.paired_tests`), Holm-adjusted over all
    rows of the same metric:

    * within each variant, the reconstruction error against the energy;
    * each other variant's energy against the ``reference`` variant's energy.

    Parameters
    ----------
    per_run : DataFrame
        :func:`epochs_investigation`'s output for one dataset, with both
        scores (``"energy"`` and ``"recon"``).
    paper_f1 : float, optional
        The paper's DAGMM F1 on that dataset, quoted beside ours.
    reference : str, default "DAGMM"
        The variant the others' energies are compared with (skipped when absent).

    Returns
    -------
    table : DataFrame, one row per comparison and metric (``variant``,
        ``compared``, ``against``, the two means, the median per-seed
        difference compared minus against, ``direction``, ``p_value``,
        ``p_holm``, ``verdict`` for ``compared``)
    text : str, Markdown sentences stating it
    """
    need = {"dataset", "variant", "score", "epochs", "seed", "f1", "auroc"}
    if need - set(per_run.columns):
        raise ValueError(f"per_run lacks columns {sorted(need - set(per_run.columns))}; pass epochs_investigation's output")
    if set(per_run.score) != {"energy", "recon"}:
        raise ValueError(f"per_run must hold both scores ('energy', 'recon'), got {sorted(set(per_run.score))}")
    if per_run.dataset.nunique() != 1:
        raise ValueError(f"per_run must hold one dataset, got {sorted(set(per_run.dataset))}")
    from .summary import holm, paired_tests, verdict

    last = per_run[per_run.epochs == per_run.epochs.max()]
    label = {"energy": "energy", "recon": "reconstruction error"}
    parts = []
    for variant, d in last.groupby("variant", sort=False):
        t = paired_tests(d.assign(method=d.score.map(label)), reference="energy")
        parts.append(t.assign(variant=variant, compared="reconstruction error", against="energy"))
    energy = last[last.score == "energy"]
    if reference in set(energy.variant) and energy.variant.nunique() > 1:
        t = paired_tests(energy.assign(method=energy.variant), reference=reference)
        parts.append(t.assign(variant=t.method, compared="energy", against=f"{reference}, energy"))
    tests = pd.concat(parts, ignore_index=True)
    for _, idx in tests.groupby("metric").groups.items():
        tests.loc[idx, "p_holm"] = holm(tests.loc[idx, "p_value"].to_numpy())
    tests["verdict"] = [verdict(r.direction, r.p_holm, n_pairs=r.n_pairs) for r in tests.itertuples()]
    table = tests.rename(columns={"mean": "compared_mean", "reference_mean": "against_mean"})[
        ["dataset", "variant", "compared", "against", "metric", "n_pairs", "compared_mean", "against_mean",
         "median_diff", "direction", "p_value", "p_holm", "verdict"]].reset_index(drop=True)

    def said(r):
        return r.verdict + (f" (Holm p = {r.p_holm:.2g})" if np.isfinite(r.p_holm) else "")

    epochs = int(last.epochs.max())
    lines = []
    for variant, t in table.groupby("variant", sort=False):
        own = t[t.compared == "reconstruction error"].set_index("metric")
        f1, auc = own.loc["f1"], own.loc["auroc"]
        line = (f"* **{variant}**, after {epochs} epochs ({int(f1.n_pairs)} paired runs): energy F1 {f1.against_mean:.3f}, "
                f"AUROC {auc.against_mean:.3f}; reconstruction error F1 {f1.compared_mean:.3f}, AUROC {auc.compared_mean:.3f}. "
                f"The reconstruction error against the energy: F1 {said(f1)}, AUROC {said(auc)}.")
        vs = t[t.compared == "energy"].set_index("metric")
        if len(vs):
            line += f" Its energy against {reference}'s: F1 {said(vs.loc['f1'])}, AUROC {said(vs.loc['auroc'])}."
        if paper_f1 is not None:
            line += (f" The paper's DAGMM F1 is {paper_f1:.3f} (energy {f1.against_mean - paper_f1:+.3f}, "
                     f"reconstruction error {f1.compared_mean - paper_f1:+.3f}).")
        lines.append(line)
    return table, "\n".join(lines)


def training_length_lines(per_run: pd.DataFrame, paper_f1: float | None = None, paper_epochs: int | None = None) -> str:
    """Markdown sentences on F1 along training, one per variant and score.

    Parameters
    ----------
    per_run : DataFrame
        :func:`epochs_investigation`'s output.
    paper_f1, paper_epochs : optional
        The paper's DAGMM F1 and training length, quoted last.

    Returns
    -------
    str : mean ± std F1 after the first and the last checkpoint, and at the
        best checkpoint, which is picked with the test labels and therefore
        an optimistic figure (said so in the text), never a result.
    """
    lines = []
    for (variant, score), d in per_run.groupby(["variant", "score"], sort=False):
        g = d.groupby("epochs").f1
        mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
        first, best, last = mean.index[0], mean.idxmax(), mean.index[-1]
        what = "energy" if score == "energy" else "reconstruction error"
        lines.append(f"* **{variant}, {what}**: F1 {mean[first]:.3f} ± {std[first]:.3f} after {first} epochs, "
                     f"{mean[last]:.3f} ± {std[last]:.3f} after {last} ({d.run.nunique()} runs); best checkpoint "
                     f"{mean[best]:.3f} ± {std[best]:.3f} after {best} (picked with the test labels, so optimistic).")
    if paper_f1 is not None:
        lines.append(f"* The paper reports DAGMM F1 {paper_f1:.3f}" + (f" after {paper_epochs} epochs." if paper_epochs else "."))
    return "\n".join(lines)
