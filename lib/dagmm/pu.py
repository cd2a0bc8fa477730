"""Positive-unlabelled (PU) learning: Elkan and Noto's (2008) classifier and threshold.

Setting: every labelled example is positive (here: an anomaly); unlabelled
examples are positive or negative, and the labelled positives are a random
sample of all positives ("selected completely at random"), with an unknown
labelling rate ``c = p(s = 1 | y = 1)``. A classifier ``g(x) = p(s = 1 | x)``
trained to separate labelled from unlabelled examples then satisfies
``p(y = 1 | x) = g(x) / c``, and ``c`` is estimated as the mean of ``g`` over
labelled examples the classifier did not see (their estimator e1). Flagging
``g(x) / c >= 0.5`` is the seeds' "c/2" threshold on ``g``.
"""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["PUClassifier"]


class PUClassifier(ClassifierMixin, BaseEstimator):
    """Elkan-Noto PU classifier.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``, optional
        The non-traditional classifier ``g``. Default: gradient-boosted trees
        (``HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05)``).
        The estimate of ``c`` needs calibrated probabilities, and ``g`` tops
        out at ``c`` (not 1) where positives are certain: a logistic
        regression cannot take that shape and underestimates ``c`` (0.42 for
        a true 0.5 on two Gaussian blobs), trees can (0.46).
    n_folds : int, default 5
        ``c`` is the mean of out-of-fold ``g`` over the labelled examples
        (every labelled example is held out once).
    threshold : float, default 0.5
        Flag ``p(y = 1 | x) = g(x) / c`` at or above this.
    random_state : int or None
        Seeds the folds.

    Attributes
    ----------
    c_ : float
        Estimated labelling rate ``p(s = 1 | y = 1)``.
    oof_proba_ : ndarray (n,)
        Out-of-fold ``g`` of the training examples (use these, not
        ``labelled_proba`` of the same rows, to classify the unlabelled
        examples the classifier was fitted on: in-sample ``g`` is pushed
        towards 0 on them).
    estimator_ : the classifier ``g`` refitted on all examples
    classes_ : ndarray [0, 1]
    """

    def __init__(self, estimator=None, n_folds=5, threshold=0.5, random_state=None):
        self.estimator = estimator
        self.n_folds = n_folds
        self.threshold = threshold
        self.random_state = random_state

    def _make(self):
        if self.estimator is not None:
            return clone(self.estimator)
        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, random_state=self.random_state)

    def fit(self, X, s):
        """Fit on features ``X`` (n, d) and labelled indicator ``s`` (n,) (1 = labelled positive)."""
        if not (isinstance(self.n_folds, numbers.Integral) and self.n_folds >= 2):
            raise ValueError(f"PUClassifier parameter n_folds={self.n_folds!r}: expected an int >= 2")
        if not (isinstance(self.threshold, numbers.Real) and 0 < self.threshold < 1):
            raise ValueError(f"PUClassifier parameter threshold={self.threshold!r}: expected a float in (0, 1)")
        X, s = validate_data(self, X, s, dtype=np.float64)
        s = np.asarray(s)
        if not np.isin(s, (0, 1)).all():
            raise ValueError("s must be 0 (unlabelled) or 1 (labelled positive)")
        n_lab = int(s.sum())
        if n_lab < self.n_folds or n_lab > len(s) - self.n_folds:
            raise ValueError(f"need at least n_folds={self.n_folds} labelled and unlabelled examples, got {n_lab} labelled of {len(s)}")
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        g_oof = cross_val_predict(self._make(), X, s, cv=folds, method="predict_proba")[:, 1]
        self.c_ = float(g_oof[s == 1].mean())
        if not (np.isfinite(self.c_) and self.c_ > 0):
            raise ValueError(f"the estimated labelling rate c = {self.c_} is not positive: the classifier cannot "
                             "tell labelled from unlabelled examples")
        self.oof_proba_ = g_oof
        self.estimator_ = self._make().fit(X, s)
        self.classes_ = np.array([0, 1])
        return self

    def labelled_proba(self, X) -> np.ndarray:
        """``g(x) = p(s = 1 | x)``, shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.estimator_.predict_proba(X)[:, 1]

    def predict_proba(self, X) -> np.ndarray:
        """``[1 - p, p]`` with ``p = min(1, g(x) / c_)``, shape (n, 2)."""
        p = np.clip(self.labelled_proba(X) / self.c_, 0.0, 1.0)
        return np.stack([1 - p, p], 1)

    def predict(self, X) -> np.ndarray:
        """1 where ``g(x) / c_ >= threshold`` (the seeds' ``c/2`` rule at 0.5)."""
        return (self.predict_proba(X)[:, 1] >= self.threshold).astype(np.int64)
