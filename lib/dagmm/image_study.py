"""DAGMM on images: the estimator, the protocol and the figures notebooks 02 and 03 call.

Protocol (fixed splits; seeds ``0..n-1`` vary only initialisation, shuffling
and dropout):

* **mvtec_bottle**: train on ``train/good`` (209 images), test on ``test/*``
  (20 good, 63 defective).
* **intel_forest**: train on ``seg_train/forest`` (900), test on ``seg_test/*``
  (317 forest = normal, 400 other scenes = anomalous).

Scores are the sample energy (DAGMM) or the squared reconstruction error
(the plain autoencoder control, same network with ``lambda_energy =
lambda_cov = 0``). Metrics per run: AUROC and AUPRC (no threshold);
precision, recall and F1 of the anomaly class at two thresholds:

* ``top-rho`` (the paper's rule, uses the test anomaly ratio): flag the
  ``rho`` fraction of test images with the highest scores, ``rho`` = the
  test set's anomaly ratio. It needs to know that ratio, a test-label
  statistic, as the paper's rule does.
* ``train95`` (label-free): flag test images whose score exceeds the 95th
  percentile of the scores of the training images (all normal).

and per anomaly type (MVTec defect, Intel scene class): the AUROC of normal
test images against that type alone.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from .engine import training
from .conv import COMPRESSORS
from .estimator import DAGMM, NONNEGATIVE_INT, POSITIVE_INT, WIDTHS, check_device, check_widths, fit_runs
from .images import ImageSet
from .mixture import GaussianMixture
from .engine.module import DAGMMModule
from .engine.layers import EstimationNetwork
from .protocol import METRICS, TABLE_COLUMNS, RunSplit, evaluate_scores, run_protocol

__all__ = [
    "ConvDAGMM",
    "PROFILES",
    "profile_settings",
    "subsample",
    "run_image_method",
    "aggregate_images",
    "by_kind_table",
    "with_seeds",
    "THRESHOLD_METRICS",
    "FRAMEWORKS",
    "run_framework",
]

THRESHOLD_METRICS = ("precision_train95", "recall_train95", "f1_train95")
PROFILES = {
    # "full": every image, n_runs seeds, the notebook's epochs.
    "full": dict(n_runs=None, epochs=None, max_train=None, max_test=None, image_size=None, n_examples=8),
    # "smoke": a fast pass through every code path (a few 32x32 images, one epoch).
    "smoke": dict(n_runs=2, epochs=1, max_train=16, max_test=16, image_size=32, n_examples=4),
}


def profile_settings(profile: str) -> dict:
    """The overrides of a profile (``None`` = keep the notebook's value)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return dict(PROFILES[profile])


class ConvDAGMM(DAGMM):
    """DAGMM with a convolutional compression network, for images (N, 3, S, S) in [0, 1].

    ``z = [z_c, relative Euclidean distance, cosine similarity]`` feeds the
    estimation network as in the paper; only the compressor differs. The
    output convention and the fit contract are :class:`dagmm.DAGMM`'s
    (:class:`dagmm.estimator.AnomalyDetectorMixin`): :meth:`predict` returns -1
    for an anomalous image and +1 for a normal one, ``decision_function`` is
    negative for anomalies, a failed fit leaves the estimator as it was.

    Parameters
    ----------
    architecture : {"conv", "resconv"}, default "conv"
        Framework 1 (plain convolutions) or framework 2 (residual blocks),
        see :mod:`dagmm.conv`.
    channels : tuple of int, default (32, 64, 128, 256)
        Channels of the four stride-2 stages (64x64 -> 4x4).
    latent_dim : int, default 8
        Size of ``z_c``; ``z`` has ``latent_dim + 2`` dimensions.
    n_components : int, default 2
        Mixture components K.
    estimation_hidden, dropout, lambda_energy, lambda_cov, lambda_recon, cov_eps
        As :class:`dagmm.DAGMM` (paper values λ1 = 0.1, λ2 = 0.005).
    lr : float, default 1e-3
        Adam learning rate.
    epochs : int, default 20
    batch_size : int, default 64
    scoring : {"energy", "recon"}, default "energy"
        What :meth:`anomaly_score` (and so :meth:`predict` and :meth:`score_samples`) use: the sample energy
        (DAGMM) or the squared reconstruction error (the autoencoder control,
        with ``lambda_energy = lambda_cov = 0``).
    preprocessing : None
        Images are used as given (already in [0, 1]; the decoder ends in a sigmoid).
    contamination, threshold, device, random_state, verbose
        As :class:`dagmm.DAGMM`.

    Attributes
    ----------
    module_ : DAGMMModule
    input_shape_ : tuple (3, S, S)
    threshold_ : float
        Score threshold of :meth:`predict` (the ``1 - contamination``
        quantile of the training scores unless ``threshold`` is given).
    loss_history_ : ndarray (epochs,)
    """

    _parameter_constraints: dict = {
        **{k: DAGMM._parameter_constraints[k] for k in (
            "estimation_hidden", "n_components", "dropout", "lambda_energy", "lambda_cov", "lambda_recon",
            "lr", "batch_size", "cov_eps", "contamination", "threshold", "device", "random_state", "verbose")},
        "latent_dim": POSITIVE_INT,
        "epochs": NONNEGATIVE_INT,
        "architecture": [StrOptions(set(COMPRESSORS))],
        "channels": WIDTHS,
        "scoring": [StrOptions({"energy", "recon"})],
        "preprocessing": [None],  # images are used as given (already in [0, 1])
    }

    def __init__(
        self,
        *,
        architecture="conv",
        channels=(32, 64, 128, 256),
        latent_dim=8,
        estimation_hidden=10,
        n_components=2,
        dropout=0.5,
        lambda_energy=0.1,
        lambda_cov=0.005,
        lambda_recon=1.0,
        lr=1e-3,
        epochs=20,
        batch_size=64,
        cov_eps=1e-6,
        scoring="energy",
        preprocessing=None,
        contamination=0.05,
        threshold=None,
        device="auto",
        random_state=None,
        verbose=False,
    ):
        self.architecture = architecture
        self.channels = channels
        self.latent_dim = latent_dim
        self.estimation_hidden = estimation_hidden
        self.n_components = n_components
        self.dropout = dropout
        self.lambda_energy = lambda_energy
        self.lambda_cov = lambda_cov
        self.lambda_recon = lambda_recon
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.cov_eps = cov_eps
        self.scoring = scoring
        self.preprocessing = preprocessing
        self.contamination = contamination
        self.threshold = threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_values(self) -> None:
        check_widths(self, "channels", allow_empty=False)
        check_device(self)

    def _build_module(self, n_runs: int, input_shape: tuple[int, ...]) -> DAGMMModule:
        c, h, w = input_shape
        compressor = COMPRESSORS[self.architecture](n_runs, self.latent_dim, tuple(self.channels), h, c)
        estimation = EstimationNetwork(n_runs, self.latent_dim + 2, self.estimation_hidden, self.n_components, self.dropout)
        return DAGMMModule(compressor, estimation, GaussianMixture(self.cov_eps), n_runs, input_shape)

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        try:
            X = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"images must be a numeric array (N, C, H, W): {exc}") from None
        if X.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got an array of shape {X.shape}")
        n, c, h, w = X.shape
        if h != w:
            raise ValueError(f"images must be square, got {h}x{w}")
        stages = 2 ** len(self.channels)
        if h % stages:
            raise ValueError(f"image side {h} is not a multiple of {stages} ({len(self.channels)} stride-2 stages)")
        if not np.isfinite(X).all():
            raise ValueError("images contain NaN or inf")
        if reset:
            if n < 2:
                raise ValueError(f"ConvDAGMM needs at least 2 training images, got {n}")
            self.input_shape_ = (c, h, w)
        elif (c, h, w) != self.input_shape_:
            raise ValueError(f"images have shape {(c, h, w)}, the model was fitted on {self.input_shape_}")
        return X

    def _scores(self, X: np.ndarray) -> np.ndarray:
        Xt = torch.as_tensor(X).to(self.module_.shift.device)
        return training.compute_scores(self.module_, Xt, np.arange(len(X))[None], self.scoring, chunk=256)[0].astype(np.float64)

    def fit(self, X, y=None):
        """Fit on training images X (N, C, S, S); ``y`` is ignored. A failed fit leaves the estimator as it was."""
        return super().fit(X, y)

    def _fit(self, X, y=None) -> None:
        X = self._validate_X(X, reset=True)
        module, history, _ = fit_runs(self, X, np.arange(len(X))[None], [self._seed()])
        if history["failed"][0]:
            raise FloatingPointError("ConvDAGMM training diverged (the loss became NaN or inf); try a smaller lr. "
                                     "Nothing was fitted.")
        self.module_ = module
        self.loss_history_ = history["loss"][:, 0]
        self.threshold_ = self._threshold_from(self._scores(X))
        self._n_features_out = module.estimation.fc1.in_features  # z = [z_c, rel, cos]

    def anomaly_score(self, X) -> np.ndarray:
        """Energy (``scoring="energy"``) or reconstruction error (``"recon"``), higher = more anomalous, (N,)."""
        check_is_fitted(self)
        return self._scores(self._validate_X(X, reset=False))

    def transform(self, X) -> np.ndarray:
        """z = [z_c, rel, cos], shape (N, latent_dim + 2)."""
        check_is_fitted(self)
        Xt = torch.as_tensor(self._validate_X(X, reset=False)).to(self.module_.shift.device)
        z, _ = training.embed(self.module_, Xt, np.arange(len(X))[None], chunk=256)
        return z[0].cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # images (N, C, S, S): scikit-learn's estimator checks, which feed 2-d tables, do not apply
        # (tests/test_sklearn_contract.py checks the rest of the contract on images)
        tags.input_tags.two_d_array = False
        return tags


def subsample(data: ImageSet, max_train: int | None, max_test: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx) of ``data``, optionally cut to at most ``max_*`` images.

    The test cut is stratified by type (every type keeps images); used only
    by the smoke profile.
    """
    rng = np.random.default_rng(seed)
    train, test = data.train_idx, data.test_idx
    if max_train is not None and len(train) > max_train:
        train = np.sort(rng.choice(train, max_train, replace=False))
    if max_test is not None and len(test) > max_test:
        kinds = np.unique(data.kind[test])
        per = max(1, max_test // len(kinds))
        test = np.sort(np.concatenate([rng.permutation(test[data.kind[test] == k])[:per] for k in kinds]))
    return train, test


def _threshold_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    if not (np.isfinite(scores).all() and np.isfinite(threshold)):
        return dict(precision_train95=0.0, recall_train95=0.0, f1_train95=0.0)
    p, r, f, _ = precision_recall_fscore_support(y, (scores > threshold).astype(int), average="binary", zero_division=0)
    return dict(precision_train95=float(p), recall_train95=float(r), f1_train95=float(f))


def _kind_aurocs(y: np.ndarray, kind: np.ndarray, scores: np.ndarray) -> dict:
    out = {}
    for k in np.unique(kind[y == 1]):
        sel = (y == 0) | (kind == k)
        ok = np.isfinite(scores).all()
        out[f"auroc_{k}"] = float(roc_auc_score(y[sel], scores[sel])) if ok else 0.5
    return out


def run_image_method(
    data: ImageSet,
    estimator: ConvDAGMM,
    seeds: Sequence[int],
    *,
    method: str,
    train_idx: np.ndarray | None = None,
    test_idx: np.ndarray | None = None,
    percentile: float = 95.0,
    max_threshold_images: int | None = 300,
    max_parallel: int = 1,
    keep: Sequence[int] = (0,),
    n_examples: int = 8,
    verbose: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Train ``estimator`` once per seed on the training images and score the test images.

    Parameters
    ----------
    data : ImageSet
    estimator : ConvDAGMM
        Template; its ``scoring`` says what is scored (energy or reconstruction error).
    seeds : sequence of int
        Run r uses seed ``seeds[r]`` (initialisation, shuffling, dropout).
    method : str
        Name in the tables.
    train_idx, test_idx : ndarray, optional
        Default: all of ``data``'s training / test images.
    percentile : float, default 95
        The label-free threshold: this percentile of the training scores.
    max_threshold_images : int or None, default 300
        The threshold uses the scores of at most this many training images
        (drawn once, the same for every run; None: all), which saves a
        forward pass over large training sets.
    max_parallel : int, default 1
        Runs trained together as one batched model (1 on a CPU: faster there).
    keep : run positions whose artifacts are returned
    n_examples : int
        Images per group kept for the figures (normal, anomalous, most and
        least anomalous test images).

    Returns
    -------
    per_run : DataFrame, one row per run: METRICS, ``failed``, the train95
        metrics, ``auroc_<type>`` per anomaly type, ``threshold``, ``seconds``
    artifacts : dict run -> dict(scores, y, kind, test_idx, train_scores, threshold,
        loss, examples: dict of name -> (indices into data, reconstructions))
    """
    train_idx = data.train_idx if train_idx is None else np.asarray(train_idx)
    test_idx = data.test_idx if test_idx is None else np.asarray(test_idx)
    y, kind = data.y[test_idx], data.kind[test_idx]
    if y.min() == y.max():
        raise ValueError("the test images must contain normal and anomalous ones")
    rho = float(y.mean())
    kind_score = estimator.scoring
    thr_idx = train_idx
    if max_threshold_images is not None and len(train_idx) > max_threshold_images:
        thr_idx = np.sort(np.random.default_rng(0).choice(train_idx, max_threshold_images, replace=False))
    score_idx = np.concatenate([test_idx, thr_idx])  # one scoring pass: test images, then threshold images
    splits = [RunSplit(seed, train_idx, test_idx) for seed in seeds]

    def fit_scores(X, train, run_seeds, test, local_keep):
        R = len(run_seeds)
        t0 = time.perf_counter()
        module, history, Xt = fit_runs(estimator, X, train, list(run_seeds), verbose=False, desc=method)
        both = training.compute_scores(module, Xt, np.tile(score_idx, (R, 1)), kind_score, chunk=256)
        test_scores = both[:, : len(test_idx)].astype(np.float64)
        train_scores = both[:, len(test_idx) :].astype(np.float64)
        thr = np.array([float(np.percentile(tr, percentile)) if np.isfinite(tr).all() else float("nan")
                        for tr in train_scores])
        cols = [{**_threshold_metrics(y, sc, t), **_kind_aurocs(y, kind, sc), "threshold": t, "rho": rho, "seconds": None}
                for sc, t in zip(test_scores, thr)]
        artifacts = {j: dict(scores=test_scores[j], kind=kind, test_idx=test_idx, train_scores=train_scores[j],
                             threshold=thr[j], rho=rho, loss=history["loss"][:, j],
                             examples=_examples(module, j, Xt, test_idx, y, test_scores[j], n_examples))
                     for j in local_keep}
        return {method: dict(scores=test_scores, failed=history["failed"] | ~np.isfinite(thr),
                             seconds=time.perf_counter() - t0, artifacts=artifacts,
                             columns={k: [c[k] for c in cols] for k in cols[0]})}

    def progress(method_, run, split, scores):  # each run's line as soon as its chunk is scored
        m = evaluate_scores(y, scores, rho)
        print(f"{data.name:>13} | {method:<26} | seed {split.seed} | AUROC {m['auroc']:.3f} | AUPRC {m['auprc']:.3f} | "
              f"F1 top-rho {m['f1']:.3f}", flush=True)

    per_run, arts = run_protocol(data.name, data.X, data.y, splits, fit_scores, rho=rho, max_parallel=max_parallel,
                                 keep=keep, on_run=progress if verbose else None)
    artifacts = {run: {k: v for k, v in a.items() if k not in ("energy",)} for (_, run), a in arts.items()}
    return per_run, artifacts


@torch.no_grad()
def _examples(module: DAGMMModule, j: int, Xt: torch.Tensor, test_idx, y, scores, n: int) -> dict:
    """Reconstructions by run ``j`` of a few normal, anomalous, most and least anomalous test images."""
    def spread(pos):
        return pos[np.linspace(0, len(pos) - 1, min(n, len(pos))).astype(int)] if len(pos) else pos

    order = np.argsort(scores, kind="stable") if np.isfinite(scores).all() else np.arange(len(scores))
    groups = {
        "normal": spread(np.flatnonzero(y == 0)),
        "anomalous": spread(np.flatnonzero(y == 1)),
        "most_anomalous": order[::-1][:n],
        "least_anomalous": order[:n],
    }
    module.eval()
    allpos = np.concatenate(list(groups.values()))
    x = Xt[torch.as_tensor(test_idx[allpos], device=Xt.device)]
    x_hat = module(x[None].expand(module.n_runs, *x.shape)).x_hat[j].cpu().numpy()  # every run sees them; keep run j
    out, start = {}, 0
    for name, pos in groups.items():
        out[name] = dict(rows=test_idx[pos], positions=pos, x_hat=x_hat[start : start + len(pos)], scores=scores[pos], y=y[pos])
        start += len(pos)
    return out


def aggregate_images(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (ddof=1) over runs: ``TABLE_COLUMNS`` plus the train95 threshold's P/R/F1."""
    g = per_run.groupby(["dataset", "method"], sort=False)
    out = g.agg(n_runs=("run", "size"), n_failed=("failed", "sum"))
    for m in METRICS + THRESHOLD_METRICS:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    cols = TABLE_COLUMNS + [f"{m}_{s}" for m in THRESHOLD_METRICS for s in ("mean", "std")]
    return out.reset_index()[cols]


def by_kind_table(per_run: pd.DataFrame) -> pd.DataFrame:
    """AUROC of normal test images against each anomaly type: dataset, method, type, mean, std, runs."""
    kinds = [c for c in per_run.columns if c.startswith("auroc_")]
    long = per_run[["dataset", "method", "run", *kinds]].melt(
        id_vars=["dataset", "method", "run"], value_vars=kinds, var_name="anomaly_type", value_name="type_auroc").dropna()
    long["anomaly_type"] = long["anomaly_type"].str.removeprefix("auroc_")
    g = long.groupby(["dataset", "method", "anomaly_type"], sort=False)["type_auroc"]
    return g.agg(n_runs="size", auroc_mean="mean", auroc_std=lambda s: s.std(ddof=1)).reset_index()


def with_seeds(table: pd.DataFrame, published: pd.DataFrame, seed_table: str, seed_method: str, our_method: str) -> pd.DataFrame:
    """Add the seeds' single-run ``seed_precision, seed_recall, seed_auroc`` to ``our_method``'s rows.

    Read from ``published_results.csv`` rows with ``table == seed_table`` and
    ``method == seed_method``, matched on the dataset.
    """
    pub = published[(published["table"] == seed_table) & (published["method"] == seed_method)]
    pub = pub[["dataset", "precision", "recall", "auroc"]].rename(columns=lambda c: c if c == "dataset" else f"seed_{c}")
    pub["method"] = our_method
    return table.merge(pub, on=["dataset", "method"], how="left")


# Names of the two frameworks' methods, tables and the seeds' rows in published_results.csv.
FRAMEWORKS = {
    "conv": dict(dagmm="ConvDAGMM", ae="ConvAE (recon. error)", seed_table="framework1_conv", seed_method="ConvDAGMM",
                 table="images_framework1", prefix="02"),
    "resconv": dict(dagmm="ResConvDAGMM", ae="ResConvAE (recon. error)", seed_table="framework2_residual",
                    seed_method="ResConvDAGMM", table="images_framework2", prefix="03"),
}


def run_framework(
    architecture: str,
    datasets: Sequence[str],
    n_runs: int,
    epochs: dict[str, int],
    *,
    image_size: int = 64,
    data_dir=None,
    max_train: int | None = None,
    max_test: int | None = None,
    max_parallel: int = 1,
    percentile: float = 95.0,
    n_examples: int = 8,
    verbose: bool = True,
    **params,
) -> tuple[pd.DataFrame, dict, dict]:
    """Both methods of one framework (DAGMM and its autoencoder control) on every dataset.

    Parameters
    ----------
    architecture : {"conv", "resconv"}
    datasets : names from :data:`dagmm.images.IMAGE_DATASETS`
    n_runs : int
        Seeds ``0..n_runs-1``.
    epochs : dict dataset -> int
    image_size, data_dir : passed to :func:`dagmm.images.load_image_dataset`
    max_train, max_test : int, optional
        Cut the data (smoke profile only).
    **params : ConvDAGMM parameters shared by both methods (latent_dim, lr, ...)

    Returns
    -------
    per_run : DataFrame, one row per dataset, method and run
    artifacts : dict dataset -> method -> run -> dict (see :func:`run_image_method`)
    data : dict dataset -> ImageSet
    """
    from .images import load_image_dataset

    names = FRAMEWORKS[architecture]
    frames, artifacts, data = [], {}, {}
    for name in datasets:
        d = load_image_dataset(name, image_size, data_dir)
        data[name] = d
        train_idx, test_idx = subsample(d, max_train, max_test)
        base = ConvDAGMM(architecture=architecture, epochs=epochs[name], **params)
        methods = {
            names["dagmm"]: base,
            # the control: the same network without the estimation network's terms, scored by
            # reconstruction error
            names["ae"]: ConvDAGMM(**{**base.get_params(), "lambda_energy": 0.0, "lambda_cov": 0.0, "scoring": "recon"}),
        }
        artifacts[name] = {}
        for method, est in methods.items():
            t0 = time.perf_counter()
            df, art = run_image_method(d, est, range(n_runs), method=method, train_idx=train_idx, test_idx=test_idx,
                                       percentile=percentile, max_parallel=max_parallel, keep=tuple(range(n_runs)),
                                       n_examples=n_examples, verbose=verbose)
            for run, a in art.items():  # examples only for run 0: the figures show one run
                if run:
                    a.pop("examples")
            frames.append(df)
            artifacts[name][method] = art
            if verbose:
                print(f"{name:>13} | {method:<26} | AUROC {df.auroc.mean():.3f} ± {df.auroc.std():.3f} | "
                      f"{time.perf_counter() - t0:.0f} s for {n_runs} runs", flush=True)
    return pd.concat(frames, ignore_index=True), artifacts, data
