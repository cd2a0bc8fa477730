"""The replication as functions a notebook calls: profiles and one dataset's runs."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .configs import paper_setting
from .datasets import load_base
from .estimator import DAGMM
from .protocol import make_splits, run_dagmm, run_estimator

__all__ = ["PROFILES", "profile_settings", "replicate_dataset", "SCALINGS", "scaling_investigation", "epochs_investigation"]

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
) -> tuple[pd.DataFrame, dict]:
    """DAGMM with the paper's setting on ``name``, seeds ``0..n_runs-1``, and its controls.

    Methods: ``DAGMM`` (paper setting), and with ``controls``:
    ``DAGMM (untrained)`` (same networks, 0 epochs, mixture fitted on the
    training set) and ``Isolation Forest`` (scikit-learn defaults). ``extra``
    maps further method names to overrides of the paper setting.

    Returns
    -------
    per_run : DataFrame (one row per method and run)
    artifacts : dict method -> {run: dict(energy, y, z, loss)} for run 0
    """
    X, y = load_base(name, data_dir)
    splits = make_splits(name, y, range(n_runs))
    setting = paper_setting(name)
    rho = setting["contamination"]
    overrides = dict(device=device)
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
            print(f"{name:>11} | {method:<22} | F1 {df.f1.mean():.4f} ± {df.f1.std():.4f} | "
                  f"AUROC {df.auroc.mean():.4f} | failed {int(df.failed.sum())} | {time.perf_counter() - t0:.1f} s", flush=True)
    if controls:
        t0 = time.perf_counter()
        from sklearn.ensemble import IsolationForest

        df = run_estimator(name, X, y, splits, lambda s: IsolationForest(random_state=s, n_jobs=-1), rho=rho, method="Isolation Forest")
        frames.append(df)
        if verbose:
            print(f"{name:>11} | {'Isolation Forest':<22} | F1 {df.f1.mean():.4f} ± {df.f1.std():.4f} | "
                  f"AUROC {df.auroc.mean():.4f} | failed {int(df.failed.sum())} | {time.perf_counter() - t0:.1f} s", flush=True)
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
                print(f"{name:>11} | {method:<48} | F1 {df.f1.mean():.4f} ± {df.f1.std():.4f} | "
                      f"AUROC {df.auroc.mean():.4f} | {time.perf_counter() - t0:.1f} s", flush=True)
    return pd.concat(frames, ignore_index=True)


def epochs_investigation(
    name: str,
    n_runs: int,
    checkpoints=(10, 20, 50, 100, 200),
    *,
    data_dir=None,
    device: str = "auto",
    max_parallel: int | None = None,
    verbose: bool = True,
) -> pd.DataFrame:
    """DAGMM (paper setting) evaluated after several numbers of epochs of the same training.

    One training of ``max(checkpoints)`` epochs per run; after each
    checkpoint epoch the scoring mixture is fitted on the training rows and
    the test half is scored, exactly as at the end of a training of that
    length (the optimiser state and data order are those of the one long
    training). Returns a per-run frame whose ``method`` is ``"DAGMM, <e> epochs"``.
    """
    from .estimator import fit_runs
    from .protocol import evaluate_scores
    from .training import compute_energy, estimate_mixture

    X, y = load_base(name, data_dir)
    splits = make_splits(name, y, range(n_runs))
    rho = paper_setting(name)["contamination"]
    est = DAGMM.from_paper(name, device=device, epochs=max(checkpoints))
    rows = []
    chunk = max_parallel or n_runs
    for start in range(0, n_runs, chunk):
        part = splits[start : start + chunk]
        test_idx = np.stack([s.test_idx for s in part])
        t0 = time.perf_counter()

        def evaluate(module, epoch, Xt, train_idx):
            estimate_mixture(module, Xt, train_idx)
            energy = compute_energy(module, Xt, test_idx)
            for j, s in enumerate(part):
                m = evaluate_scores(y[s.test_idx], energy[j], rho)
                rows.append(dict(dataset=name, method=f"DAGMM, {epoch} epochs", run=start + j, seed=s.seed, **m,
                                 epochs=epoch, seconds=time.perf_counter() - t0))
            if verbose:
                f1 = [r["f1"] for r in rows[-len(part):]]
                print(f"{name:>11} | after {epoch:>5} epochs | F1 {np.mean(f1):.4f} ± {np.std(f1, ddof=1) if len(f1) > 1 else 0:.4f}", flush=True)

        fit_runs(est, X, np.stack([s.train_idx for s in part]), [s.seed for s in part],
                 checkpoints=checkpoints, on_checkpoint=evaluate)
    return pd.DataFrame(rows)
