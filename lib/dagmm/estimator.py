"""``dagmm.DAGMM``: the scikit-learn style estimator around the torch module."""
from __future__ import annotations

import copy
import numbers
from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import training
from .configs import paper_setting
from .compressors import VAECompressor, VQCompressor
from .mixture import MIXTURES
from .model import ANOMALY_LOSSES, DAGMMModule
from .nn import EstimationNetwork, MLPCompressor

__all__ = ["DAGMM", "fit_runs", "build_module", "anomaly_scores", "score_stats", "COMPRESSORS", "SCORINGS"]

COMPRESSORS = ("ae", "vae", "vqvae")
SCORINGS = ("energy", "energy+recon", "recon")

INIT_SEED_OFFSET = 0
SHUFFLE_SEED_OFFSET = 2_000_033


def _check_params(est: "DAGMM") -> None:
    def bad(name, what):
        raise ValueError(f"DAGMM parameter {name}={getattr(est, name)!r}: {what}")

    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    hidden = est.hidden
    if not isinstance(hidden, (tuple, list)) or not all(is_int(h) and h > 0 for h in hidden):
        bad("hidden", "expected a tuple of positive ints")
    for name in ("latent_dim", "estimation_hidden", "n_components", "batch_size"):
        v = getattr(est, name)
        if not is_int(v) or v < 1:
            bad(name, "expected a positive int")
    if not is_int(est.epochs) or est.epochs < 0:
        bad("epochs", "expected an int >= 0")
    if not (isinstance(est.dropout, numbers.Real) and 0 <= est.dropout < 1):
        bad("dropout", "expected a float in [0, 1)")
    for name in ("lr", "cov_eps"):
        v = getattr(est, name)
        if not (isinstance(v, numbers.Real) and np.isfinite(v) and v > 0):
            bad(name, "expected a positive float")
    for name in ("lambda_energy", "lambda_cov", "lambda_recon"):
        v = getattr(est, name)
        if not (isinstance(v, numbers.Real) and np.isfinite(v) and v >= 0):
            bad(name, "expected a float >= 0")
    if not (isinstance(est.contamination, numbers.Real) and 0 < est.contamination <= 0.5):
        bad("contamination", "expected a float in (0, 0.5]")
    if est.threshold is not None and not (isinstance(est.threshold, numbers.Real) and np.isfinite(est.threshold)):
        bad("threshold", "expected None or a finite float")
    if est.preprocessing not in ("minmax", "zscore", None):
        bad("preprocessing", "expected 'minmax', 'zscore' or None")
    if est.compressor not in COMPRESSORS:
        bad("compressor", f"expected one of {COMPRESSORS}")
    if est.mixture not in MIXTURES:
        bad("mixture", f"expected one of {tuple(MIXTURES)}")
    if est.anomaly_loss not in ANOMALY_LOSSES:
        bad("anomaly_loss", f"expected one of {ANOMALY_LOSSES}")
    if est.scoring not in SCORINGS:
        bad("scoring", f"expected one of {SCORINGS}")
    if not isinstance(getattr(est, "torch_compile", False), (bool, np.bool_)):
        bad("torch_compile", "expected True or False")
    if not is_int(est.n_codes) or est.n_codes < 1:
        bad("n_codes", "expected a positive int")
    for name in ("kl_weight", "commitment", "anomaly_margin"):
        v = getattr(est, name)
        if not (isinstance(v, numbers.Real) and np.isfinite(v) and v >= 0):
            bad(name, "expected a float >= 0")


def build_module(est: "DAGMM", n_runs: int, n_features: int) -> DAGMMModule:
    """The :class:`DAGMMModule` that ``est``'s parameters describe, for R runs."""
    return est._build_module(n_runs, (n_features,))


def fit_runs(est: "DAGMM", X: np.ndarray, train_idx, seeds: Sequence[int], *, labels=None, verbose=None, desc="DAGMM",
             cuda_graph=True, checkpoints=(), on_checkpoint=None):
    """Train ``len(seeds)`` DAGMMs with ``est``'s parameters at once.

    Parameters
    ----------
    est : DAGMM
        Template whose parameters are used (it is not modified).
    X : ndarray (N, n_features), finite
    train_idx : array (R, n)
        Each run's training rows (equal counts).
    seeds : sequence of R ints
        Run r behaves exactly as ``DAGMM(random_state=seeds[r])`` fitted on
        ``X[train_idx[r]]``.
    cuda_graph : bool, default True
        On CUDA, replay training steps from a captured graph.
    labels : array (N,), optional
        1 for rows of ``X`` that are labelled anomalies; needed (and only
        used) when ``est.anomaly_loss`` is set. The scaling and the scoring
        mixture are then fitted on each run's normal rows only.
    checkpoints, on_checkpoint : epochs and ``on_checkpoint(module, epoch, X_device, normal_train_idx)``
        called after each of them (see :func:`dagmm.training.train`).

    Returns
    -------
    module : DAGMMModule (R runs), fitted, in eval mode, on the device
    history : dict from :func:`dagmm.training.train`
    X_device : Tensor (N, n_features), the data on the device (for scoring)
    """
    est._check_params()
    device = training.prepare_device(est.device)
    Xt = training.table_to_device(X, device)
    idx = training._as_index(train_idx, len(seeds), device)
    if idx.shape[1] < 2:
        raise ValueError(f"DAGMM needs at least 2 training samples, got {idx.shape[1]}")
    module = est._build_module(len(seeds), tuple(Xt.shape[1:]))
    module.reset_parameters(training.make_generators(seeds, offset=INIT_SEED_OFFSET))
    module.to(device)
    yt, normal_idx = None, idx
    anomaly_loss = getattr(est, "anomaly_loss", None)  # subclasses without the semi-supervised option
    if anomaly_loss is not None:
        if labels is None:
            raise ValueError(f"anomaly_loss={anomaly_loss!r} needs labels (1 = labelled anomaly) for the training rows")
        yt = torch.as_tensor(np.array(labels, dtype=np.float32)).to(device)
        if yt.shape != (Xt.shape[0],) or not bool(((yt == 0) | (yt == 1)).all()):
            raise ValueError(f"labels must be 0/1 of shape ({Xt.shape[0]},), got {tuple(yt.shape)}")
        keep = yt[idx] == 0  # (R, n)
        counts = keep.sum(1)
        if bool((counts != counts[0]).any()) or int(counts[0]) < 2:
            raise ValueError("every run needs the same number (>= 2) of normal training rows")
        normal_idx = idx[keep].reshape(len(seeds), -1)
    if est.preprocessing == "minmax":
        training.fit_minmax(module, Xt, normal_idx)
    elif est.preprocessing == "zscore":
        training.fit_zscore(module, Xt, normal_idx)
    history = training.train(
        module,
        Xt,
        idx,
        seeds=[s + SHUFFLE_SEED_OFFSET for s in seeds],
        epochs=est.epochs,
        batch_size=est.batch_size,
        lr=est.lr,
        lambda_energy=est.lambda_energy,
        lambda_cov=est.lambda_cov,
        lambda_recon=est.lambda_recon,
        labels=yt,
        checkpoints=checkpoints,
        on_checkpoint=None if on_checkpoint is None else (lambda m, e: on_checkpoint(m, e, Xt, normal_idx)),
        verbose=est.verbose if verbose is None else verbose,
        desc=desc,
        cuda_graph=cuda_graph,
        compile=bool(getattr(est, "torch_compile", False)),
    )
    training.estimate_mixture(module, Xt, normal_idx)
    return module, history, Xt


def score_stats(module: DAGMMModule, Xt: torch.Tensor, train_idx) -> dict:
    """Mean and standard deviation (R, 1) of energy and reconstruction error over each run's rows ``train_idx``."""
    stats = {}
    for kind in ("energy", "recon"):
        tr = training.compute_scores(module, Xt, train_idx, kind).astype(np.float64)
        sd = tr.std(1, keepdims=True)
        stats[kind] = (tr.mean(1, keepdims=True), np.where(sd > 0, sd, 1.0))
    return stats


def anomaly_scores(module: DAGMMModule, Xt: torch.Tensor, idx, scoring: str = "energy", stats: dict | None = None) -> np.ndarray:
    """Anomaly scores (R, m) of rows ``idx`` (R, m), higher = more anomalous.

    ``"energy"``: the sample energy (the paper's rule). ``"recon"``: the
    squared reconstruction error. ``"energy+recon"`` (the seeds' modified
    inference): energy and reconstruction error, each standardised with its
    mean and standard deviation over the training rows (``stats`` from
    :func:`score_stats`), then added.
    """
    if scoring in ("energy", "recon"):
        return training.compute_scores(module, Xt, idx, scoring)
    if scoring != "energy+recon":
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    if stats is None:
        raise ValueError("scoring='energy+recon' needs the training statistics (score_stats)")
    total = 0.0
    for kind in ("energy", "recon"):
        mu, sd = stats[kind]
        total = total + (training.compute_scores(module, Xt, idx, kind).astype(np.float64) - mu) / sd
    return total


class DAGMM(OutlierMixin, BaseEstimator):
    """Deep Autoencoding Gaussian Mixture Model (Zong et al., ICLR 2018).

    A compression network (autoencoder) maps each sample to a low-dimensional
    code ``z_c``; with the relative Euclidean distance and the cosine
    similarity between the sample and its reconstruction it forms
    ``z = [z_c, rel, cos]``. An estimation network predicts each sample's
    mixture memberships, from which a Gaussian mixture is estimated, and the
    whole model is trained end to end on reconstruction error plus
    ``lambda_energy`` times the sample energy (negative log-likelihood under
    the mixture) plus ``lambda_cov`` times a penalty on small variances.

    Sign conventions: :meth:`energy` is higher for more anomalous samples;
    :meth:`score_samples` is ``-energy`` (higher = more normal, as in
    scikit-learn); :meth:`decision_function` is ``threshold_ - energy``
    (negative = anomaly); :meth:`predict` returns **1 for an anomaly and 0
    for a normal sample**, the labels of :func:`dagmm.load_dataset`.

    Parameters
    ----------
    hidden : tuple of int, default (60, 30, 10)
        Encoder widths between input and code (decoder mirrors them).
    latent_dim : int, default 1
        Size of ``z_c``.
    estimation_hidden : int, default 10
    n_components : int, default 4
        Mixture components K.
    dropout : float, default 0.5
        Dropout in the estimation network.
    lambda_energy, lambda_cov : float, default 0.1, 0.005
    lambda_recon : float, default 1.0
        Weight of the reconstruction error in the objective (the paper's is
        1; 0 gives its GMM-EN baseline).
    lr : float, default 1e-4
        Adam learning rate.
    epochs : int, default 200
        0 gives an untrained model (a control).
    batch_size : int, default 1024
    cov_eps : float, default 1e-6
        Diagonal jitter of every covariance.
    preprocessing : {"minmax", "zscore", None}, default "minmax"
        Min-max scale (or standardise) features with statistics of the
        training data (part of the model, so test data are scaled with
        training statistics); None leaves them as given.
    contamination : float in (0, 0.5], default 0.2
        Fraction of training samples above the threshold of :meth:`predict`.
    threshold : float, optional
        Energy threshold of :meth:`predict`; overrides ``contamination``.
    device : str, default "auto"
        "auto" uses CUDA when available.
    random_state : int, RandomState or None
        Seeds initialisation, shuffling and dropout.
    verbose : bool, default False
        Show a tqdm progress bar over epochs.
    compressor : {"ae", "vae", "vqvae"}, default "ae"
        The compression network: the paper's autoencoder, a VAE
        (:class:`dagmm.compressors.VAECompressor`, KL weighted by
        ``kl_weight``) or a VQ-VAE (:class:`dagmm.compressors.VQCompressor`
        with ``n_codes`` codes and commitment weight ``commitment``).
    kl_weight : float, default 1.0
    n_codes : int, default 32
    commitment : float, default 0.25
    mixture : {"gaussian", "laplace"}, default "gaussian"
        The mixture family (:mod:`dagmm.mixture`).
    anomaly_loss : {None, "inverse", "hinge"}, default None
        Semi-supervised training with labelled anomalies (``fit(X, y)`` with
        ``y == 1`` marking them), see :meth:`dagmm.model.DAGMMModule.loss`.
    anomaly_margin : float, default 5.0
        Margin (nats) of ``anomaly_loss="hinge"``.
    scoring : {"energy", "energy+recon", "recon"}, default "energy"
        The anomaly score of :meth:`anomaly_score` / :meth:`predict`: the
        paper's sample energy, the seeds' modified inference (energy plus
        reconstruction error, each standardised on the training data), or
        the reconstruction error alone.
    torch_compile : bool, default False
        On the CPU, train through ``torch.compile`` (fused kernels; needs a
        C++ compiler; a network compiles once per process, tens of seconds,
        see :class:`dagmm.training.Stepper`): worth it for long trainings.
        Results agree with the eager ones to float rounding, not bitwise, and
        then depend slightly on how many runs train together. Not used where
        CUDA graphs replay the step (CUDA, the default there).

    Attributes
    ----------
    module_ : DAGMMModule
        The fitted torch module (one run), mixture parameters as buffers.
    n_features_in_ : int
    threshold_ : float
        Energy threshold used by :meth:`predict`.
    loss_history_ : ndarray of shape (epochs,)
    """

    def __init__(
        self,
        *,
        hidden=(60, 30, 10),
        latent_dim=1,
        estimation_hidden=10,
        n_components=4,
        dropout=0.5,
        lambda_energy=0.1,
        lambda_cov=0.005,
        lambda_recon=1.0,
        lr=1e-4,
        epochs=200,
        batch_size=1024,
        cov_eps=1e-6,
        preprocessing="minmax",
        contamination=0.2,
        threshold=None,
        device="auto",
        random_state=None,
        verbose=False,
        compressor="ae",
        kl_weight=1.0,
        n_codes=32,
        commitment=0.25,
        mixture="gaussian",
        anomaly_loss=None,
        anomaly_margin=5.0,
        scoring="energy",
        torch_compile=False,
    ):
        self.hidden = hidden
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
        self.preprocessing = preprocessing
        self.contamination = contamination
        self.threshold = threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.compressor = compressor
        self.kl_weight = kl_weight
        self.n_codes = n_codes
        self.commitment = commitment
        self.mixture = mixture
        self.anomaly_loss = anomaly_loss
        self.anomaly_margin = anomaly_margin
        self.scoring = scoring
        self.torch_compile = torch_compile

    @classmethod
    def from_paper(cls, dataset: str, **overrides) -> "DAGMM":
        """The paper's setting for ``dataset`` ("kddcup", "kddcup_rev", "thyroid", "arrhythmia")."""
        return cls(**{**paper_setting(dataset), **overrides})

    def _check_params(self) -> None:
        """Raise ValueError naming the first invalid parameter (subclasses extend)."""
        _check_params(self)

    def _build_module(self, n_runs: int, input_shape: tuple[int, ...]) -> DAGMMModule:
        """The torch module for ``n_runs`` runs on samples of ``input_shape`` (subclasses override)."""
        (n_features,) = input_shape
        hidden = tuple(self.hidden)
        if self.compressor == "vae":
            compressor = VAECompressor(n_runs, n_features, hidden, self.latent_dim, self.kl_weight)
        elif self.compressor == "vqvae":
            compressor = VQCompressor(n_runs, n_features, hidden, self.latent_dim, self.n_codes, self.commitment)
        else:
            compressor = MLPCompressor(n_runs, n_features, hidden, self.latent_dim)
        estimation = EstimationNetwork(n_runs, self.latent_dim + 2, self.estimation_hidden, self.n_components, self.dropout)
        return DAGMMModule(compressor, estimation, MIXTURES[self.mixture](self.cov_eps), n_runs, input_shape,
                           anomaly_loss=self.anomaly_loss, anomaly_margin=self.anomaly_margin)

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Checked float32 array of samples; ``reset`` at fit time (subclasses with other inputs override)."""
        if reset:
            return validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        return validate_data(self, X, dtype=np.float32, reset=False)

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def fit(self, X, y=None):
        """Fit on X (n_samples, n_features).

        ``y`` is ignored (unsupervised) unless ``anomaly_loss`` is set; then
        it is required, with 1 marking labelled anomalies among the rows.
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        labels = None
        if self.anomaly_loss is not None:
            if y is None:
                raise ValueError(f"anomaly_loss={self.anomaly_loss!r} needs y (1 = labelled anomaly)")
            labels = np.asarray(y)
            if labels.shape != (len(X),) or not np.isin(labels, (0, 1)).all():
                raise ValueError(f"y must be 0/1 with shape ({len(X)},)")
        all_rows = np.arange(len(X))[None]
        module, history, Xt = fit_runs(self, X, all_rows, [self._seed()], labels=labels)
        self.module_ = module
        self.loss_history_ = history["loss"][:, 0]
        if history["failed"][0]:
            raise FloatingPointError(
                "DAGMM training diverged (the loss became NaN or inf); try a smaller lr "
                "or a larger cov_eps"
            )
        normal_rows = all_rows if labels is None else np.flatnonzero(labels == 0)[None]
        self.score_stats_ = score_stats(module, Xt, normal_rows) if self.scoring == "energy+recon" else None
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
        else:
            train_score = anomaly_scores(module, Xt, normal_rows, self.scoring, self.score_stats_)[0]
            self.threshold_ = float(np.quantile(train_score, 1.0 - self.contamination))
        return self

    def energy(self, X) -> np.ndarray:
        """Sample energy of each row (higher = more anomalous), shape (n_samples,)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        device = self.module_.shift.device
        Xt = torch.as_tensor(X).to(device)
        return training.compute_energy(self.module_, Xt, np.arange(len(X))[None])[0].astype(np.float64)

    def anomaly_score(self, X) -> np.ndarray:
        """The score of ``scoring`` (the energy by default), higher = more anomalous, (n_samples,)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        Xt = torch.as_tensor(X).to(self.module_.shift.device)
        rows = np.arange(len(X))[None]
        return anomaly_scores(self.module_, Xt, rows, self.scoring, self.score_stats_)[0].astype(np.float64)

    def score_samples(self, X) -> np.ndarray:
        """``-anomaly_score(X)``: higher means more normal (scikit-learn's convention)."""
        return -self.anomaly_score(X)

    def decision_function(self, X) -> np.ndarray:
        """``threshold_ - anomaly_score(X)``: negative for samples flagged as anomalies."""
        return self.threshold_ - self.anomaly_score(X)

    def predict(self, X) -> np.ndarray:
        """1 for anomalies (score above ``threshold_``), 0 for normal samples."""
        return (self.anomaly_score(X) > self.threshold_).astype(np.int64)

    def transform(self, X) -> np.ndarray:
        """The low-dimensional representation z = [z_c, rel, cos], shape (n_samples, latent_dim + 2)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        Xt = torch.as_tensor(X).to(self.module_.shift.device)
        z, _ = training.embed(self.module_, Xt, np.arange(len(X))[None])
        return z[0].cpu().numpy()

    def __getstate__(self):
        state = self.__dict__.copy()
        module = state.get("module_")
        if module is not None and module.shift.device.type != "cpu":
            state["module_"] = copy.deepcopy(module).to("cpu")
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True  # CUDA kernels; on the CPU a fixed seed is exact
        return tags
