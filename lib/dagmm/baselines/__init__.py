"""The paper's baselines (Zong et al., 2018, Table 2) and modern detectors beside them.

Every estimator follows :class:`dagmm.DAGMM`'s API: ``fit(X)``, ``energy(X)``
(higher = more anomalous), ``score_samples = -energy``, ``decision_function``
(negative = anomaly), ``predict`` (-1 = anomaly, +1 = normal, scikit-learn's
``OutlierMixin``; :class:`dagmm.estimator.AnomalyDetectorMixin`). The torch
ones train many runs at once (leading run axis).

=================== ================================================ ===========================
method              estimator                                        module
=================== ================================================ ===========================
OC-SVM              SklearnDetector(OneClassSVM(...))                classic
DSEBM-r, DSEBM-e    DSEBM(scoring="recon" / "energy")                dsebm
DCN                 DCN                                              dcn
GMM-EN ... DAGMM-NVI DAGMMVariant (ablations of DAGMM)                ablations
Isolation Forest    SklearnDetector(IsolationForest())               classic
LOF                 SklearnDetector(LocalOutlierFactor(novelty=True)) classic
ECOD                ECOD                                             classic
Deep SVDD           DeepSVDD                                         deep_svdd
=================== ================================================ ===========================

:mod:`dagmm.baselines.suite` holds the per-dataset settings and the runs of
Table 2 and Table 3.
"""
from .ablations import DAGMMVariant
from .base import BatchedDetector
from .classic import ECOD, SklearnDetector
from .dcn import DCN
from .deep_svdd import DeepSVDD
from .dsebm import DSEBM

__all__ = ["BatchedDetector", "DAGMMVariant", "DSEBM", "DCN", "DeepSVDD", "ECOD", "SklearnDetector"]
