"""What every batched baseline shares: the scikit-learn estimator around
``_fit_runs`` / ``_score_runs``, and a protocol runner for methods that share
one training (one fitted model scored several ways).

A *batched* estimator trains R runs at once (leading run axis, as
:class:`dagmm.nn.RunLinear`) through two methods:

* ``_fit_runs(X, train_idx (R, n), seeds) -> (state, history, X_device)``,
  ``history`` with ``loss`` (epochs, R) and ``failed`` (R,);
* ``_score_runs(state, X_device, idx (R, m), score=None) -> ndarray (R, m)``,
  higher = more anomalous.

A single :meth:`BatchedDetector.fit` is the case R = 1, so a run trained beside
nineteen others gives the same result as trained alone.
"""
from __future__ import annotations

import copy
import numbers
import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..protocol import RunSplit, evaluate_scores

__all__ = ["BatchedDetector", "ThresholdMixin", "is_int", "check_positive", "run_shared"]


def is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_positive(est, name: str, *, integer: bool = False, allow_zero: bool = False) -> None:
    """Raise ValueError unless parameter ``name`` of ``est`` is a positive (or >= 0) number."""
    v = getattr(est, name)
    ok = is_int(v) if integer else (isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v))
    if not ok or v < 0 or (v == 0 and not allow_zero):
        what = "an int" if integer else "a float"
        raise ValueError(f"{type(est).__name__} parameter {name}={v!r}: expected {what} {'>= 0' if allow_zero else '> 0'}")


def check_contamination(est) -> None:
    c = est.contamination
    if not (isinstance(c, numbers.Real) and not isinstance(c, bool) and 0 < c <= 0.5):
        raise ValueError(f"{type(est).__name__} parameter contamination={c!r}: expected a float in (0, 0.5]")


def seed_of(random_state) -> int:
    """An int seed from ``random_state`` (an int is used as is)."""
    if is_int(random_state):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class ThresholdMixin:
    """Sign conventions shared by every detector here.

    :meth:`energy` is higher for more anomalous samples; ``score_samples`` is
    ``-energy`` (scikit-learn's convention); ``decision_function`` is
    ``threshold_ - energy`` (negative = anomaly); ``predict`` returns 1 for an
    anomaly and 0 for a normal sample. ``threshold_`` is the ``1 - contamination``
    quantile of the training energies.
    """

    def _set_threshold(self, train_energy: np.ndarray) -> None:
        self.threshold_ = float(np.quantile(train_energy, 1.0 - self.contamination))

    def score_samples(self, X) -> np.ndarray:
        """``-energy(X)``: higher means more normal."""
        return -self.energy(X)

    def decision_function(self, X) -> np.ndarray:
        """``threshold_ - energy(X)``: negative for samples flagged as anomalies."""
        return self.threshold_ - self.energy(X)

    def predict(self, X) -> np.ndarray:
        """1 for anomalies (energy above ``threshold_``), 0 for normal samples, shape (n_samples,)."""
        return (self.energy(X) > self.threshold_).astype(np.int64)


class BatchedDetector(ThresholdMixin, OutlierMixin, BaseEstimator):
    """Base of the torch baselines: ``fit`` / ``energy`` over ``_fit_runs`` / ``_score_runs``.

    Subclasses define ``__init__`` (keyword arguments only, stored as is),
    ``_check_params``, ``_fit_runs`` and ``_score_runs``, and have the
    parameters ``contamination``, ``device`` and ``random_state``.

    Attributes (after fit)
    ----------------------
    module_ : torch.nn.Module     the fitted model of one run
    n_features_in_ : int
    threshold_ : float
    loss_history_ : ndarray (epochs,)
    """

    def _seed(self) -> int:
        return seed_of(self.random_state)

    def fit(self, X, y=None):
        """Fit on X (n_samples, n_features); ``y`` is ignored (unsupervised). Returns self."""
        self._check_params()
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        idx = np.arange(len(X))[None]
        module, history, Xt = self._fit_runs(X, idx, [self._seed()])
        self.module_ = module
        self.loss_history_ = np.asarray(history["loss"])[:, 0]
        if history["failed"][0]:
            raise FloatingPointError(f"{type(self).__name__} training diverged (the loss became NaN or inf)")
        self._set_threshold(self._score_runs(module, Xt, idx)[0])
        return self

    def _device_of(self, module) -> torch.device:
        return next(iter(module.buffers())).device

    def energy(self, X) -> np.ndarray:
        """Anomaly score of each row (higher = more anomalous), shape (n_samples,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        Xt = torch.as_tensor(X).to(self._device_of(self.module_))
        return self._score_runs(self.module_, Xt, np.arange(len(X))[None])[0].astype(np.float64)

    def __getstate__(self):
        state = self.__dict__.copy()
        module = state.get("module_")
        if module is not None and self._device_of(module).type != "cpu":
            state["module_"] = copy.deepcopy(module).to("cpu")
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True  # CUDA kernels; on the CPU a fixed seed is exact
        return tags


def run_shared(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[RunSplit],
    fit_scores: Callable[..., dict],
    *,
    rho: float,
    max_parallel: int | None = None,
) -> pd.DataFrame:
    """All runs of several methods that share training, under the paper's protocol.

    ``fit_scores(X, train_idx (R, n), seeds, test_idx (R, m))`` returns
    ``{method: dict(scores=(R, m), failed=(R,), seconds=float)}``: one
    training scored several ways (DSEBM-r/-e), or one pre-training followed
    by several second stages (PAE, PAE-GMM-EM, PAE-GMM, DAGMM-p).
    ``seconds`` is what that method alone would cost for the R runs (shared
    work counted in full for each method that uses it); per run it is
    divided by R.

    Returns
    -------
    per_run : DataFrame, one row per method and run (columns as
        :func:`dagmm.protocol.run_batched`'s)
    """
    chunk = max_parallel or len(splits)
    rows = []
    for start in range(0, len(splits), chunk):
        part = splits[start : start + chunk]
        out = fit_scores(X, np.stack([s.train_idx for s in part]), [s.seed for s in part], np.stack([s.test_idx for s in part]))
        for method, res in out.items():
            failed = np.asarray(res.get("failed", np.zeros(len(part), bool)))
            for j, s in enumerate(part):
                m = evaluate_scores(y[s.test_idx], res["scores"][j], rho)
                m["failed"] = bool(m["failed"] or failed[j])
                rows.append(dict(dataset=name, method=method, run=start + j, seed=s.seed, **m, seconds=res["seconds"] / len(part)))
    return pd.DataFrame(rows)


class Timer:
    """``with Timer() as t: ...; t.seconds`` (synchronises CUDA at both ends)."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.t0
