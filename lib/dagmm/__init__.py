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

# Models pickled before the engine moved to dagmm.engine name its modules by their old paths.
import sys as _sys

from .engine import allocator as _allocator, compressors as _compressors, layers as _layers, module as _module
from .engine import training as _training

for _old, _new in (("model", _module), ("nn", _layers), ("training", _training), ("compressors", _compressors),
                   ("allocator", _allocator)):
    _sys.modules.setdefault(f"{__name__}.{_old}", _new)

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
