"""``dagmm.DAGMM``: the scikit-learn style estimator around the torch module."""
from __future__ import annotations

import copy
import numbers
import re
from numbers import Integral, Real
from typing import Sequence

import numpy as np
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, OutlierMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import defaults

from .engine import training
from .engine.training import INIT_SEED_OFFSET, SHUFFLE_SEED_OFFSET
from .configs import paper_setting
from .engine.compressors import VAECompressor, VQCompressor
from .mixture import MIXTURES
from .engine.module import DAGMMModule
from .engine.layers import EstimationNetwork, MLPCompressor

__all__ = ["DAGMM", "AnomalyDetectorMixin", "fit_runs", "build_module", "anomaly_scores", "score_stats", "COMPRESSORS",
           "SCORINGS", "DEVICES", "check_device", "check_widths", "check_n_samples", "uses_cuda"]

COMPRESSORS = ("ae", "vae", "vqvae")
SCORINGS = ("energy", "energy+recon", "recon")
DEVICES = ("auto", "cpu", "cuda")  # and "cuda:<index>", or a torch.device of type "cpu" or "cuda"

# scikit-learn parameter constraints (sklearn.utils._param_validation) shared by the estimators here
POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
NONNEGATIVE_INT = [Interval(Integral, 0, None, closed="left")]
POSITIVE_REAL = [Interval(Real, 0, None, closed="neither")]  # finite: an open-ended interval excludes inf
NONNEGATIVE_REAL = [Interval(Real, 0, None, closed="left")]
CONTAMINATION = [Interval(Real, 0, 0.5, closed="right")]
DEVICE = [str, torch.device]  # the value is checked by check_device
WIDTHS = [tuple, list]  # the values are checked by check_widths
# what every torch baseline trains with: mini-batch Adam on min-max scaled rows, a threshold, a device, a seed
TORCH_TRAINING = {
    "epochs": NONNEGATIVE_INT,
    "batch_size": POSITIVE_INT,
    "lr": POSITIVE_REAL,
    "preprocessing": [StrOptions({"minmax"}), None],
    "contamination": CONTAMINATION,
    "device": DEVICE,
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def _invalid(est, name: str, expected: str):
    """scikit-learn's error for a parameter value that its constraints cannot describe."""
    raise InvalidParameterError(
        f"The {name!r} parameter of {type(est).__name__} must be {expected}. Got {getattr(est, name)!r} instead."
    )


def check_device(est) -> None:
    """Raise ``InvalidParameterError`` (a ValueError) unless ``est.device`` is one of
    :data:`DEVICES`, ``"cuda:<index>"`` or a ``torch.device`` of type cpu or cuda: checked
    before torch parses it. (CUDA asked for where there is none fails at fit, see
    :func:`dagmm.engine.training.resolve_device`.)"""
    d = est.device
    if isinstance(d, torch.device):
        ok = d.type in ("cpu", "cuda")
    else:
        ok = isinstance(d, str) and (d in DEVICES or re.fullmatch(r"cuda:\d+", d) is not None)
    if not ok:
        _invalid(est, "device", "one of 'auto', 'cpu', 'cuda' or 'cuda:<index>', or a torch.device of type 'cpu' or 'cuda'")


def check_widths(est, name: str = "hidden", *, allow_empty: bool = True) -> None:
    """Raise ``InvalidParameterError`` unless ``est.<name>`` is a tuple (or list) of positive ints."""
    v = getattr(est, name)
    ok = isinstance(v, (tuple, list)) and (allow_empty or len(v) > 0) and all(
        isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in v)
    if not ok:
        _invalid(est, name, "a tuple of positive ints" if allow_empty else "a non-empty tuple of positive ints")


def check_n_samples(est, n_samples: int, name: str = "n_components", what: str = "mixture components") -> None:
    """Raise ValueError, naming both numbers, if parameter ``name`` of ``est`` exceeds the training sample count."""
    k = getattr(est, name)
    if k > n_samples:
        raise ValueError(f"{name}={k} is larger than the number of training samples ({n_samples}): "
                         f"{type(est).__name__} needs at least as many training samples as {what}")


def uses_cuda(device) -> bool:
    """Whether an estimator with this ``device`` parameter trains on CUDA (False for an invalid one)."""
    try:
        return training.resolve_device(device).type == "cuda"
    except Exception:  # an invalid device: fit will say so
        return False


class AnomalyDetectorMixin(OutlierMixin):
    """The output convention and the fit contract of every detector in this package.

    Output (scikit-learn's :class:`~sklearn.base.OutlierMixin`):

    * ``anomaly_score(X)``: higher = more anomalous (DAGMM: the sample energy
      by default); the score the study ranks;
    * ``score_samples(X) = -anomaly_score(X)``: higher = more normal;
    * ``decision_function(X) = threshold_ - anomaly_score(X)
      = score_samples(X) - offset_``: negative for rows flagged as anomalies;
    * ``predict(X)``: **-1 for an anomaly** (``decision_function < 0``), **+1
      for a normal row**; ``fit_predict(X)`` the same for the training rows.

    ``threshold_`` is the ``1 - contamination`` quantile of the training rows'
    anomaly scores (or the ``threshold`` parameter where there is one), so a
    fraction ``contamination`` of the training rows is flagged. Scorers agree
    with ``predict``: the ``roc_auc`` scorer ranks by ``decision_function``, so
    its positive class is +1 (normal), the label ``predict`` gives to the
    higher values. The study's 0/1 labels (1 = anomaly, as
    :func:`dagmm.load_dataset`) and its scores (higher = more anomalous) are
    derived explicitly: :func:`dagmm.protocol.anomaly_labels` and
    :func:`dagmm.protocol.estimator_scores`.

    Fit: the parameters are checked first (``_parameter_constraints``, with
    scikit-learn's ``InvalidParameterError``, a ValueError), then the data. A
    fit is transactional: if it fails (bad input, an exception or an
    interrupt during training, a loss or training scores that became NaN or
    inf), the estimator is left exactly as it was: unfitted, or with its
    previous fit. Before a fit every scoring method raises ``NotFittedError``.

    Subclasses define ``_fit(X, y)`` (which sets the fitted attributes,
    ``threshold_`` among them), ``anomaly_score(X)`` (which checks that the
    estimator is fitted), ``_parameter_constraints`` and, for what those cannot
    express, ``_check_param_values()``.
    """

    _parameter_constraints: dict = {}

    def _check_params(self) -> None:
        """Raise ``InvalidParameterError`` (a ValueError) naming the first invalid parameter."""
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        self._check_param_values()

    def _check_param_values(self) -> None:
        """Checks that the constraints cannot express (subclasses extend)."""

    def fit(self, X, y=None):
        """Fit on the training rows ``X``; returns self.

        ``y`` is ignored (unsupervised), except by ``DAGMM(anomaly_loss=...)``,
        where 1 marks labelled anomalies. A failed fit leaves the estimator as it was.
        """
        before = self.__dict__.copy()
        try:
            self._check_params()
            self._fit(X, y)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return self

    def fit_predict(self, X, y=None):
        """``fit(X, y).predict(X)``: -1 for the training rows flagged as anomalies, +1 for the others."""
        return self.fit(X, y).predict(X)

    def score_samples(self, X) -> np.ndarray:
        """``-anomaly_score(X)``: higher means more normal (scikit-learn's convention), shape (n_samples,)."""
        return -self.anomaly_score(X)

    def decision_function(self, X) -> np.ndarray:
        """``threshold_ - anomaly_score(X)``: negative for rows flagged as anomalies, shape (n_samples,)."""
        score = self.anomaly_score(X)  # raises NotFittedError before fit
        return self.threshold_ - score

    def predict(self, X) -> np.ndarray:
        """-1 for anomalies (``decision_function(X) < 0``), +1 for normal rows, shape (n_samples,)."""
        return np.where(self.decision_function(X) < 0, -1, 1).astype(np.int64)

    @property
    def offset_(self) -> float:
        """``-threshold_``: ``decision_function = score_samples - offset_``, as for scikit-learn's detectors."""
        return -self.threshold_

    def _threshold_from(self, train_scores) -> float:
        """``threshold_`` from the training rows' anomaly scores; FloatingPointError if any is NaN or inf."""
        scores = np.asarray(train_scores, dtype=np.float64)
        if not np.isfinite(scores).all():
            raise FloatingPointError(f"{type(self).__name__}: the anomaly scores of the training rows are NaN or inf "
                                     "(training diverged); nothing was fitted")
        fixed = getattr(self, "threshold", None)
        if fixed is not None:
            return float(fixed)
        return float(np.quantile(scores, 1.0 - self.contamination))


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
        Run r behaves as ``DAGMM(random_state=seeds[r])`` fitted on
        ``X[train_idx[r]]``, to float rounding (batched kernels round differently
        in the last bits; about 1e-5 relative), not bitwise.
    cuda_graph : bool, default True
        On CUDA, replay training steps from a captured graph.
    labels : array (N,), optional
        1 for rows of ``X`` that are labelled anomalies; needed (and only
        used) when ``est.anomaly_loss`` is set. The scaling and the scoring
        mixture are then fitted on each run's normal rows only.
    checkpoints, on_checkpoint : epochs and ``on_checkpoint(module, epoch, X_device, normal_train_idx)``
        called after each of them (see :func:`dagmm.engine.training.train`).

    Returns
    -------
    module : DAGMMModule (R runs), fitted, in eval mode, on the device
    history : dict from :func:`dagmm.engine.training.train`
    X_device : Tensor (N, n_features), the data on the device (for scoring)
    """
    est._check_params()
    device = training.prepare_device(est.device)
    Xt = training.table_to_device(X, device)
    idx = training.run_index(train_idx, len(seeds), device)
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
    check_n_samples(est, normal_idx.shape[1])
    training.fit_scaling(module, Xt, normal_idx, est.preprocessing)
    floor = getattr(est, "distance_floor", 0.0)  # subclasses without the parameter keep the paper's features
    if floor:
        training.fit_norm_floor(module, Xt, normal_idx, floor)
    history = training.train(
        module,
        Xt,
        idx,
        seeds=[s + SHUFFLE_SEED_OFFSET for s in seeds],
        epochs=defaults.training_epochs(est, idx.shape[1]),
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


class DAGMM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, AnomalyDetectorMixin, BaseEstimator):
    """Deep Autoencoding Gaussian Mixture Model (Zong et al., ICLR 2018).

    A compression network (autoencoder) maps each sample to a low-dimensional
    code ``z_c``; with the relative Euclidean distance and the cosine
    similarity between the sample and its reconstruction it forms
    ``z = [z_c, rel, cos]``. An estimation network predicts each sample's
    mixture memberships, from which a Gaussian mixture is estimated, and the
    whole model is trained end to end on reconstruction error plus
    ``lambda_energy`` times the sample energy (negative log-likelihood under
    the mixture) plus ``lambda_cov`` times a penalty on small variances.

    Output convention (scikit-learn's ``OutlierMixin``, see
    :class:`AnomalyDetectorMixin`): :meth:`energy` and :meth:`anomaly_score`
    are higher for more anomalous samples; :meth:`score_samples` is
    ``-anomaly_score`` (higher = more normal); :meth:`decision_function` is
    ``threshold_ - anomaly_score`` (negative = anomaly); :meth:`predict`
    returns **-1 for an anomaly and +1 for a normal sample**. The 0/1 labels
    of :func:`dagmm.load_dataset` (1 = anomaly) are
    ``dagmm.protocol.anomaly_labels(model.predict(X))``. :meth:`transform`
    gives the representation ``z`` (``fit_transform`` and ``set_output`` work
    as for scikit-learn's transformers).

    A fit changes nothing in the process (no malloc, dynamo or logging
    settings; :func:`dagmm.engine.allocator.tune_process` applies the study's CPU
    tuning where asked for), and a failed fit leaves the estimator as it was.

    ``DAGMM()`` is set up for a data set nobody tuned it for
    (:mod:`dagmm.defaults`, chosen in notebook 08 on ADBench sets only): a
    budget of optimizer steps, network and code sizes from the number of
    features, z-scored inputs, a floored relative distance, and the energy
    plus the reconstruction error as the anomaly score.
    ``DAGMM.from_paper(name)`` gives the paper's per-data-set settings instead.

    Parameters
    ----------
    hidden : tuple of int or "auto", default "auto"
        Encoder widths between input and code (decoder mirrors them);
        "auto": :func:`dagmm.defaults.auto_hidden` of the number of features.
    latent_dim : int or "auto", default "auto"
        Size of ``z_c``; "auto": :func:`dagmm.defaults.auto_latent_dim`.
    estimation_hidden : int, default 10
    n_components : int, default 4
        Mixture components K; at most the number of training samples.
    dropout : float, default 0.5
        Dropout in the estimation network.
    lambda_energy, lambda_cov : float, default 0.1, 0.005
    lambda_recon : float, default 1.0
        Weight of the reconstruction error in the objective (the paper's is
        1; 0 gives its GMM-EN baseline).
    lr : float, default 1e-3
        Adam learning rate.
    epochs : int or "auto", default "auto"
        Passes over the training rows; 0 gives an untrained model (a
        control); "auto": as many as make ``steps`` optimizer steps.
    steps : int, default 5000
        The training budget in optimizer steps when ``epochs="auto"``
        (whole epochs, so up to one epoch more), whatever the data size.
    batch_size : int, default 256
    cov_eps : float, default 1e-6
        Diagonal jitter of every covariance.
    preprocessing : {"minmax", "zscore", None}, default "zscore"
        Standardise (or min-max scale) features with statistics of the
        training data (part of the model, so test data are scaled with
        training statistics); None leaves them as given.
    distance_floor : float, default 1.0
        The norms in the relative distance ``||x - x'|| / max(||x||, floor)``
        and the cosine are floored at this fraction of the root mean square
        norm of the scaled training rows, so a row near zero (e.g. at the
        training minimum of every feature) gets bounded features; 0 keeps
        the paper's features (floor 1e-10). At 1, a row no larger than the
        typical training row has its error measured against the typical
        row's norm, so a z-scored row near the mean (the origin) is not
        singled out and one far from it keeps its error undiscounted.
    contamination : float in (0, 0.5], default 0.2
        Fraction of training samples above the threshold of :meth:`predict`.
    threshold : float, optional
        Threshold on :meth:`anomaly_score` of :meth:`predict`; overrides ``contamination``.
    device : str or torch.device, default "auto"
        "auto" (CUDA when available), "cpu", "cuda" or "cuda:<index>".
    random_state : int, RandomState or None
        Seeds initialisation, shuffling and dropout.
    verbose : bool, default False
        Show a tqdm progress bar over epochs.
    compressor : {"ae", "vae", "vqvae"}, default "ae"
        The compression network: the paper's autoencoder, a VAE
        (:class:`dagmm.engine.compressors.VAECompressor`, KL weighted by
        ``kl_weight``) or a VQ-VAE (:class:`dagmm.engine.compressors.VQCompressor`
        with ``n_codes`` codes and commitment weight ``commitment``).
    kl_weight : float, default 1.0
    n_codes : int, default 32
    commitment : float, default 0.25
    mixture : {"gaussian", "laplace"}, default "gaussian"
        The mixture family (:mod:`dagmm.mixture`).
    anomaly_loss : {None, "inverse", "hinge"}, default None
        Semi-supervised training with labelled anomalies (``fit(X, y)`` with
        ``y == 1`` marking them), see :meth:`dagmm.engine.module.DAGMMModule.loss`.
    anomaly_margin : float, default 5.0
        Margin (nats) of ``anomaly_loss="hinge"``.
    scoring : {"energy", "energy+recon", "recon"}, default "energy+recon"
        The anomaly score of :meth:`anomaly_score` / :meth:`predict`: the
        paper's sample energy ("energy", what ``from_paper`` uses), the
        seeds' modified inference (energy plus reconstruction error, each
        standardised on the training data), or the reconstruction error alone.
    torch_compile : bool, default False
        On the CPU, train through ``torch.compile`` (fused kernels; needs a
        C++ compiler; a network compiles once per process, tens of seconds,
        see :class:`dagmm.engine.training.Stepper`): worth it for long trainings.
        Results agree with the eager ones to float rounding, not bitwise, and
        then depend slightly on how many runs train together. Not used where
        CUDA graphs replay the step (CUDA, the default there).
    engine : {"fast", "reference"}, default "fast"
        The training code. "fast": :mod:`dagmm.engine.training` (the study's engine:
        runs batched, fused or graph-captured steps). "reference":
        :mod:`dagmm.reference`, DAGMM in plain PyTorch written to be read
        beside the paper (``nn.Linear`` layers, ``torch.optim.Adam``), trained
        from the same initial weights and, on the CPU, the same shuffles and
        dropout masks, so the two agree to float rounding; the trained model
        is then scored by the fast engine's module (``module_``). Not tuned
        for speed; not with ``anomaly_loss``; ``torch_compile`` does not apply.

    Attributes
    ----------
    module_ : DAGMMModule
        The fitted torch module (one run), mixture parameters as buffers.
    n_features_in_ : int
    threshold_ : float
        Threshold on :meth:`anomaly_score` used by :meth:`predict`.
    offset_ : float
        ``-threshold_`` (``decision_function = score_samples - offset_``).
    loss_history_ : ndarray of shape (n_epochs_,)
    n_epochs_ : int
        Epochs trained (``epochs``, or those ``steps`` gave when "auto").
    hidden_ : tuple of int
        Encoder widths used (``hidden`` with "auto" resolved).
    latent_dim_ : int
        Size of ``z_c`` used (``latent_dim`` with "auto" resolved).
    score_stats_ : dict or None
        Training statistics of ``scoring="energy+recon"``.
    """

    _parameter_constraints: dict = {
        "hidden": [*WIDTHS, StrOptions({"auto"})],
        "latent_dim": [*POSITIVE_INT, StrOptions({"auto"})],
        "estimation_hidden": POSITIVE_INT,
        "n_components": POSITIVE_INT,
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "lambda_energy": NONNEGATIVE_REAL,
        "lambda_cov": NONNEGATIVE_REAL,
        "lambda_recon": NONNEGATIVE_REAL,
        "lr": POSITIVE_REAL,
        "epochs": [*NONNEGATIVE_INT, StrOptions({"auto"})],
        "steps": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "cov_eps": POSITIVE_REAL,
        "preprocessing": [StrOptions({"minmax", "zscore"}), None],
        "distance_floor": NONNEGATIVE_REAL,
        "contamination": CONTAMINATION,
        "threshold": [Interval(Real, None, None, closed="neither"), None],
        "device": DEVICE,
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "compressor": [StrOptions(set(COMPRESSORS))],
        "kl_weight": NONNEGATIVE_REAL,
        "n_codes": POSITIVE_INT,
        "commitment": NONNEGATIVE_REAL,
        "mixture": [StrOptions(set(MIXTURES))],
        "anomaly_loss": [StrOptions({"inverse", "hinge"}), None],
        "anomaly_margin": NONNEGATIVE_REAL,
        "scoring": [StrOptions(set(SCORINGS))],
        "torch_compile": ["boolean"],
        "engine": [StrOptions({"fast", "reference"})],
    }

    def __init__(
        self,
        *,
        hidden="auto",
        latent_dim="auto",
        estimation_hidden=10,
        n_components=4,
        dropout=0.5,
        lambda_energy=0.1,
        lambda_cov=0.005,
        lambda_recon=1.0,
        lr=1e-3,
        epochs="auto",
        steps=5000,
        batch_size=256,
        cov_eps=1e-6,
        preprocessing="zscore",
        distance_floor=1.0,
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
        scoring="energy+recon",
        torch_compile=False,
        engine="fast",
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
        self.steps = steps
        self.batch_size = batch_size
        self.cov_eps = cov_eps
        self.preprocessing = preprocessing
        self.distance_floor = distance_floor
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
        self.engine = engine

    @classmethod
    def from_paper(cls, dataset: str, **overrides) -> "DAGMM":
        """The paper's setting for ``dataset`` ("kddcup", "kddcup_rev", "thyroid", "arrhythmia").

        Every parameter the paper fixes is set (network, mixture, optimiser,
        epochs, batch size, unfloored reconstruction features, energy
        scoring), and the study's min-max scaling (the paper does not state
        its scaling), whatever the defaults of ``DAGMM()`` are.
        """
        return cls(**{**paper_setting(dataset), **overrides})

    def _check_param_values(self) -> None:
        if not isinstance(self.hidden, str):
            check_widths(self, "hidden")
        check_device(self)

    def _build_module(self, n_runs: int, input_shape: tuple[int, ...]) -> DAGMMModule:
        """The torch module for ``n_runs`` runs on samples of ``input_shape`` (subclasses override)."""
        (n_features,) = input_shape
        hidden, latent = defaults.network_sizes(self, n_features)
        if self.compressor == "vae":
            compressor = VAECompressor(n_runs, n_features, hidden, latent, self.kl_weight)
        elif self.compressor == "vqvae":
            compressor = VQCompressor(n_runs, n_features, hidden, latent, self.n_codes, self.commitment)
        else:
            compressor = MLPCompressor(n_runs, n_features, hidden, latent)
        estimation = EstimationNetwork(n_runs, latent + 2, self.estimation_hidden, self.n_components, self.dropout)
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
        """Fit on X (n_samples, n_features); returns self.

        ``y`` is ignored (unsupervised) unless ``anomaly_loss`` is set; then
        it is required, with 1 marking labelled anomalies among the rows.
        A failed fit (bad input, divergence, an exception) leaves the
        estimator as it was.
        """
        return super().fit(X, y)

    def _fit(self, X, y=None) -> None:
        X = self._validate_X(X, reset=True)
        labels = None
        if self.anomaly_loss is not None:
            if y is None:
                raise ValueError(f"anomaly_loss={self.anomaly_loss!r} needs y (1 = labelled anomaly)")
            labels = np.asarray(y)
            if labels.shape != (len(X),) or not np.isin(labels, (0, 1)).all():
                raise ValueError(f"y must be 0/1 with shape ({len(X)},)")
        all_rows = np.arange(len(X))[None]
        if getattr(self, "engine", "fast") == "reference":  # plain PyTorch (dagmm.reference), scored by the fast module
            from .reference import fit_estimator

            module, history, Xt = fit_estimator(self, X, self._seed())
        else:
            module, history, Xt = fit_runs(self, X, all_rows, [self._seed()], labels=labels)
        if history["failed"][0]:
            raise FloatingPointError(
                "DAGMM training diverged (the loss became NaN or inf); try a smaller lr "
                "or a larger cov_eps. Nothing was fitted."
            )
        normal_rows = all_rows if labels is None else np.flatnonzero(labels == 0)[None]
        stats = score_stats(module, Xt, normal_rows) if self.scoring == "energy+recon" else None
        train_score = anomaly_scores(module, Xt, normal_rows, self.scoring, stats)[0]
        self.threshold_ = self._threshold_from(train_score)
        self.module_ = module
        self.loss_history_ = history["loss"][:, 0]
        self.n_epochs_ = len(self.loss_history_)
        self.hidden_, self.latent_dim_ = defaults.network_sizes(self, X.shape[1])
        self.score_stats_ = stats
        self._n_features_out = module.estimation.fc1.in_features  # z = [z_c, rel, cos]

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
        tags.non_deterministic = uses_cuda(self.device)  # CUDA kernels; on the CPU a fixed seed is exact
        tags.transformer_tags.preserves_dtype = ["float32"]  # z is float32 whatever the input's dtype
        return tags
