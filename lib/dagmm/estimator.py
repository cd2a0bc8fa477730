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
from .mixture import GaussianMixture
from .model import DAGMMModule
from .nn import EstimationNetwork, MLPCompressor

__all__ = ["DAGMM", "fit_runs", "build_module"]

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
    if est.preprocessing not in ("minmax", None):
        bad("preprocessing", "expected 'minmax' or None")


def build_module(est: "DAGMM", n_runs: int, n_features: int) -> DAGMMModule:
    """The :class:`DAGMMModule` that ``est``'s parameters describe, for R runs."""
    return est._build_module(n_runs, (n_features,))


def fit_runs(est: "DAGMM", X: np.ndarray, train_idx, seeds: Sequence[int], *, verbose=None, desc="DAGMM", cuda_graph=True):
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

    Returns
    -------
    module : DAGMMModule (R runs), fitted, in eval mode, on the device
    history : dict from :func:`dagmm.training.train`
    X_device : Tensor (N, n_features), the data on the device (for scoring)
    """
    est._check_params()
    device = training.resolve_device(est.device)
    Xt = torch.as_tensor(np.array(X, dtype=np.float32, copy=True)).to(device)
    idx = training._as_index(train_idx, len(seeds), device)
    if idx.shape[1] < 2:
        raise ValueError(f"DAGMM needs at least 2 training samples, got {idx.shape[1]}")
    module = est._build_module(len(seeds), tuple(Xt.shape[1:]))
    module.reset_parameters(training.make_generators(seeds, offset=INIT_SEED_OFFSET))
    module.to(device)
    if est.preprocessing == "minmax":
        training.fit_minmax(module, Xt, idx)
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
        verbose=est.verbose if verbose is None else verbose,
        desc=desc,
        cuda_graph=cuda_graph,
    )
    training.estimate_mixture(module, Xt, idx)
    return module, history, Xt


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
    preprocessing : {"minmax", None}, default "minmax"
        Min-max scale features with statistics of the training data (part of
        the model, so test data are scaled with training statistics).
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
        compressor = MLPCompressor(n_runs, n_features, tuple(self.hidden), self.latent_dim)
        estimation = EstimationNetwork(n_runs, self.latent_dim + 2, self.estimation_hidden, self.n_components, self.dropout)
        return DAGMMModule(compressor, estimation, GaussianMixture(self.cov_eps), n_runs, input_shape)

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
        """Fit on X (n_samples, n_features); ``y`` is ignored (unsupervised)."""
        self._check_params()
        X = self._validate_X(X, reset=True)
        module, history, Xt = fit_runs(self, X, np.arange(len(X))[None], [self._seed()])
        self.module_ = module
        self.loss_history_ = history["loss"][:, 0]
        if history["failed"][0]:
            raise FloatingPointError(
                "DAGMM training diverged (the loss became NaN or inf); try a smaller lr "
                "or a larger cov_eps"
            )
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
        else:
            train_energy = training.compute_energy(module, Xt, np.arange(len(X))[None])[0]
            self.threshold_ = float(np.quantile(train_energy, 1.0 - self.contamination))
        return self

    def energy(self, X) -> np.ndarray:
        """Sample energy of each row (higher = more anomalous), shape (n_samples,)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        device = self.module_.shift.device
        Xt = torch.as_tensor(X).to(device)
        return training.compute_energy(self.module_, Xt, np.arange(len(X))[None])[0].astype(np.float64)

    def score_samples(self, X) -> np.ndarray:
        """``-energy(X)``: higher means more normal (scikit-learn's convention)."""
        return -self.energy(X)

    def decision_function(self, X) -> np.ndarray:
        """``threshold_ - energy(X)``: negative for samples flagged as anomalies."""
        return self.threshold_ - self.energy(X)

    def predict(self, X) -> np.ndarray:
        """1 for anomalies (energy above ``threshold_``), 0 for normal samples."""
        return (self.energy(X) > self.threshold_).astype(np.int64)

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
