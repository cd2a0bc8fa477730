"""DAGMM: a reproducible study of the Deep Autoencoding Gaussian Mixture Model.

Main entry points::

    from dagmm import DAGMM, load_dataset
    X, y = load_dataset("thyroid")
    model = DAGMM.from_paper("thyroid", epochs=200).fit(X[y == 0])
    energy = model.energy(X)          # higher = more anomalous
"""
from .configs import PAPER_SETTINGS, paper_setting
from .datasets import DATASETS, load_dataset
from .estimator import DAGMM
from .fetch import DataChecksumError, DataFileMissingError, resolve_data_dir
from .mixture import CovarianceJitterWarning, GaussianMixture

__version__ = "0.1.0"
__all__ = [
    "DAGMM",
    "DATASETS",
    "PAPER_SETTINGS",
    "paper_setting",
    "load_dataset",
    "resolve_data_dir",
    "DataChecksumError",
    "DataFileMissingError",
    "GaussianMixture",
    "CovarianceJitterWarning",
]
