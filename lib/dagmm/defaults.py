"""What ``DAGMM()`` does on a data set nobody tuned it for: sizes from the data, a fixed step budget.

The paper tunes DAGMM per data set (:mod:`dagmm.configs`; ``DAGMM.from_paper``
keeps those settings exactly). A new user calls ``DAGMM()``; its parameters
``hidden="auto"``, ``latent_dim="auto"`` and ``epochs="auto"`` are resolved at
fit time from the number of features and training rows by the rules here:

* **Training length** is a number of optimizer steps, ``steps``, not of
  epochs: ``epochs = ceil(steps / batches_per_epoch)``. (With epochs fixed,
  200 epochs of 1,024-row batches are 200 steps on a 500-row training set and
  4,600 on a 23,000-row one.)
* **Compression network**: widths halve from the power of two nearest the
  number of features D, clipped to [8, 64], for at most three layers, each
  wider than the code; the code has ``1 + floor(log2(D) / 3)`` units (1 for
  D < 8, 2 up to 63, 3 up to 511, ...). (The paper's codes have 1 or 2 units
  for its data sets of 6 to 274 features; this rule gives 1 for Thyroid and 3
  for KDDCUP and Arrhythmia.)
* **Inputs** are z-scored with the training rows' statistics; the norms in
  the relative distance and the cosine are floored at the root mean square
  norm of the scaled training rows (``distance_floor=1``); the anomaly score
  is the energy plus the reconstruction error, each standardised over the
  training rows (``scoring="energy+recon"``).

These were the best of seven candidates by mean AUROC over the 19 ADBench
sets on development seeds (notebook 08, ``dagmm.beyond.CANDIDATES``).

:data:`PREVIOUS_DEFAULTS` are the defaults ``DAGMM()`` had before (KDDCUP's
setting), kept to report what the new ones change.
"""
from __future__ import annotations

import math

__all__ = ["PREVIOUS_DEFAULTS", "auto_hidden", "auto_latent_dim", "epochs_for_steps", "network_sizes", "training_epochs"]

PREVIOUS_DEFAULTS = dict(hidden=(60, 30, 10), latent_dim=1, estimation_hidden=10, n_components=4, dropout=0.5,
                         lambda_energy=0.1, lambda_cov=0.005, lambda_recon=1.0, lr=1e-4, epochs=200, batch_size=1024,
                         cov_eps=1e-6, preprocessing="minmax", distance_floor=0.0, scoring="energy")


def auto_latent_dim(n_features: int) -> int:
    """Size of the code ``z_c`` for ``n_features`` inputs: ``1 + floor(log2(D) / 3)``."""
    if n_features < 1:
        raise ValueError(f"n_features must be at least 1, got {n_features}")
    return 1 + int(math.log2(n_features) // 3)


def auto_hidden(n_features: int, latent_dim: int) -> tuple[int, ...]:
    """Encoder widths for ``n_features`` inputs and a code of ``latent_dim`` units.

    Halving from ``2 ** round(log2(D))`` clipped to [8, 64]; at most three
    layers, each wider than the code (e.g. D = 6: (8, 4, 2); D = 27: (32, 16, 8);
    D = 1555: (64, 32, 16)).
    """
    first = int(min(64, max(8, 2 ** round(math.log2(max(n_features, 1))))))
    widths = [first >> i for i in range(3)]
    return tuple(w for w in widths if w > latent_dim) or (first,)


def network_sizes(est, n_features: int) -> tuple[tuple[int, ...], int]:
    """``(hidden, latent_dim)`` of estimator ``est`` for ``n_features`` inputs, "auto" resolved."""
    latent = auto_latent_dim(n_features) if est.latent_dim == "auto" else int(est.latent_dim)
    hidden = auto_hidden(n_features, latent) if isinstance(est.hidden, str) else tuple(est.hidden)
    return hidden, latent


def epochs_for_steps(steps: int, n_train: int, batch_size: int) -> int:
    """Epochs that give at least ``steps`` optimizer steps on ``n_train`` rows in batches of ``batch_size``."""
    if n_train < 1:
        raise ValueError(f"n_train must be at least 1, got {n_train}")
    per_epoch = -(-n_train // batch_size)
    return max(1, -(-steps // per_epoch))


def training_epochs(est, n_train: int) -> int:
    """The epochs estimator ``est`` trains for on ``n_train`` rows (``epochs``, or from ``steps`` when "auto")."""
    if est.epochs == "auto":
        return epochs_for_steps(est.steps, n_train, est.batch_size)
    return int(est.epochs)
