"""What every batched baseline shares: the scikit-learn estimator around
``_fit_runs`` / ``_score_runs``.

A *batched* estimator trains R runs at once (leading run axis, as
:class:`dagmm.engine.layers.RunLinear`) through two methods:

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

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..estimator import AnomalyDetectorMixin, check_device, uses_cuda

__all__ = ["BatchedDetector", "ThresholdMixin", "Timer", "is_int", "seed_of"]


def is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def seed_of(random_state) -> int:
    """An int seed from ``random_state`` (an int is used as is)."""
    if is_int(random_state):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class ThresholdMixin(AnomalyDetectorMixin):
    """The output convention of every detector here (:class:`dagmm.estimator.AnomalyDetectorMixin`,
    scikit-learn's ``OutlierMixin``), for detectors whose anomaly score is :meth:`energy`.

    ``energy(X)`` and ``anomaly_score(X)`` are higher for more anomalous
    samples; ``score_samples`` is ``-energy`` (higher = more normal);
    ``decision_function`` is ``threshold_ - energy`` (negative = anomaly);
    ``predict`` returns -1 for an anomaly and +1 for a normal sample.
    ``threshold_`` is the ``1 - contamination`` quantile of the training
    energies. A failed fit leaves the estimator as it was.
    """

    def anomaly_score(self, X) -> np.ndarray:
        """``energy(X)``: higher = more anomalous, shape (n_samples,)."""
        return self.energy(X)


class BatchedDetector(ThresholdMixin, BaseEstimator):
    """Base of the torch baselines: ``fit`` / ``energy`` over ``_fit_runs`` / ``_score_runs``.

    Subclasses define ``__init__`` (keyword arguments only, stored as is),
    ``_parameter_constraints``, ``_fit_runs`` and ``_score_runs``, and have
    the parameters ``contamination``, ``device`` and ``random_state``.

    Attributes (after fit)
    ----------------------
    module_ : torch.nn.Module     the fitted model of one run
    n_features_in_ : int
    threshold_ : float
    loss_history_ : ndarray (epochs,)
    """

    def _seed(self) -> int:
        return seed_of(self.random_state)

    def _check_param_values(self) -> None:
        check_device(self)

    def _fit(self, X, y=None) -> None:
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        idx = np.arange(len(X))[None]
        module, history, Xt = self._fit_runs(X, idx, [self._seed()])
        if history["failed"][0]:
            raise FloatingPointError(f"{type(self).__name__} training diverged (the loss became NaN or inf); "
                                     "nothing was fitted")
        self.threshold_ = self._threshold_from(self._score_runs(module, Xt, idx)[0])
        self.module_ = module
        self.loss_history_ = np.asarray(history["loss"])[:, 0]

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
        tags.non_deterministic = uses_cuda(self.device)  # CUDA kernels; on the CPU a fixed seed is exact
        return tags


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
