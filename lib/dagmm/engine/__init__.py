"""The fast engine: DAGMM for R runs at once, tuned for speed.

The paper's model, written plainly, is :mod:`dagmm.reference`. This package
computes the same model (to float rounding, ``tests/test_reference.py``) for
many seeded runs together, which is how the study trains its 20 runs per
setting:

* :mod:`~dagmm.engine.layers`: layers with a leading run axis (R, B, ...),
  the compression and estimation networks, the reconstruction features.
* :mod:`~dagmm.engine.module`: :class:`~dagmm.engine.module.DAGMMModule`,
  scaling, networks and mixture of R runs; the objective (Eq. 7).
* :mod:`~dagmm.engine.compressors`: VAE and VQ-VAE compression networks.
* :mod:`~dagmm.engine.training`: the training loop (per-run generators,
  pre-drawn batches and dropout masks, compiled steps, CUDA graphs), the
  mixture over the training set and the scores.
* :mod:`~dagmm.engine.allocator`: process-wide CPU settings that long
  trainings are faster with, applied only by :func:`tune_process`.

The mixture families themselves (:mod:`dagmm.mixture`) are shared by both
paths. ``dagmm.DAGMM(engine="fast")`` (the default) trains here;
``engine="reference"`` trains :mod:`dagmm.reference` and hands the result to
this engine's module for scoring.
"""
from .allocator import describe, is_tuned, tune_process
from .training import describe_device, resolve_device

__all__ = ["describe", "describe_device", "is_tuned", "resolve_device", "tune_process"]
