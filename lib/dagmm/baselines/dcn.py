"""DCN: deep clustering network (Yang et al., ICML 2017), as an anomaly detector.

An autoencoder whose code is pulled towards K centroids:

    loss = ||x - x_hat||^2 + (lambda / 2) ||z - c_{s(z)}||^2,  s(z) = argmin_k ||z - c_k||,

trained as in Yang et al.'s Algorithm 1: pre-train the autoencoder, initialise
the centroids by k-means on the training codes, then alternate a network step
(assignments and centroids fixed) with an assignment and centroid update on
the same batch, each centroid moving towards its batch mean with step
``n_k / count_k`` (counts start at 1 and grow with the samples assigned).
Anomaly score: the squared distance of z to the nearest centroid.
"""
from __future__ import annotations

import numpy as np
import torch

from ..engine import training
from ..estimator import (NONNEGATIVE_INT, NONNEGATIVE_REAL, POSITIVE_INT, TORCH_TRAINING, WIDTHS, check_n_samples,
                         check_widths)
from ..engine.module import sq_error
from ..engine.training import SECOND_STAGE_SEED_OFFSET
from ..engine.layers import MLPCompressor
from .base import BatchedDetector
from .loop import ScaledRunModule, chunked, train_runs

__all__ = ["DCN", "DCNModule", "code_diagnosis"]



class DCNModule(ScaledRunModule):
    """R runs of DCN: the paper's fully connected autoencoder plus K centroids.

    Buffers ``centroids`` (R, K, L) and ``counts`` (R, K).

    Shape
    -----
    x (R, B, n_features) -> z (R, B, L), x_hat (R, B, n_features)
    """

    def __init__(self, n_runs: int, n_features: int, hidden, latent_dim: int, n_clusters: int):
        super().__init__(n_runs, n_features)
        self.compressor = MLPCompressor(n_runs, n_features, tuple(hidden), latent_dim)
        self.register_buffer("centroids", torch.zeros(n_runs, n_clusters, latent_dim))
        self.register_buffer("counts", torch.ones(n_runs, n_clusters))

    def reset_parameters(self, generators) -> None:
        self.compressor.reset_parameters(generators)

    def forward(self, xb):
        x = self.scaled(xb)
        z, x_hat = self.compressor(x)
        return x, z, x_hat

    def sq_dist(self, z: torch.Tensor) -> torch.Tensor:
        """Squared distance of every code to every centroid, (R, B, K)."""
        return torch.cdist(z, self.centroids).pow(2)

    def recon_loss(self, xb, _gens=None) -> torch.Tensor:
        x, _, x_hat = self(xb)
        return sq_error(x, x_hat).mean(-1)

    def joint_loss(self, xb, _gens=None, *, weight: float) -> torch.Tensor:
        x, z, x_hat = self(xb)
        with torch.no_grad():
            s = self.sq_dist(z).argmin(-1)  # (R, B)
        c = torch.gather(self.centroids, 1, s[..., None].expand(-1, -1, z.shape[-1]))  # (R, B, L)
        return sq_error(x, x_hat).mean(-1) + 0.5 * weight * (z - c).pow(2).sum(-1).mean(-1)

    @torch.no_grad()
    def update_centroids(self, xb) -> None:
        """Assign the batch to its nearest centroids and move each towards its batch mean."""
        _, z, _ = self(xb)
        onehot = torch.nn.functional.one_hot(self.sq_dist(z).argmin(-1), self.centroids.shape[1]).to(z.dtype)  # (R, B, K)
        n_k = onehot.sum(1)  # (R, K)
        mean_k = (onehot.transpose(1, 2) @ z) / n_k.clamp_min(1)[..., None]  # (R, K, L)
        self.counts += n_k
        step = (n_k / self.counts)[..., None]
        self.centroids -= step * (self.centroids - mean_k)

    def score(self, xb) -> torch.Tensor:
        """Squared distance to the nearest centroid, (R, B)."""
        _, z, _ = self(xb)
        return self.sq_dist(z).amin(-1)


class DCN(BatchedDetector):
    """Deep clustering network (Yang et al., 2017) scored by distance to the nearest centroid.

    Parameters
    ----------
    hidden : tuple of int, default (60, 30, 10)
        Encoder widths (the DAGMM compression network's; decoder mirrors them).
    latent_dim : int, default 1
    n_clusters : int, default 4
    kmeans_weight : float, default 1.0
        lambda, the weight of the k-means term.
    pretrain_epochs, epochs : int, default 100, 100
        Autoencoder pre-training, then joint training.
    batch_size : int, default 1024
    lr : float, default 1e-3
    preprocessing : {"minmax", None}, default "minmax"
    contamination : float in (0, 0.5], default 0.2
    device : str, default "auto"
    random_state : int, RandomState or None
    verbose : bool, default False

    Attributes
    ----------
    module_ : DCNModule (one run)
    threshold_ : float
    loss_history_ : ndarray (pretrain_epochs + epochs,)
    """

    _parameter_constraints: dict = {  # the common training parameters (TORCH_TRAINING) and this method's own
        "hidden": WIDTHS,
        "latent_dim": POSITIVE_INT,
        "n_clusters": POSITIVE_INT,
        "kmeans_weight": NONNEGATIVE_REAL,
        "pretrain_epochs": NONNEGATIVE_INT,
        **TORCH_TRAINING,
    }

    def __init__(self, *, hidden=(60, 30, 10), latent_dim=1, n_clusters=4, kmeans_weight=1.0, pretrain_epochs=100,
                 epochs=100, batch_size=1024, lr=1e-3, preprocessing="minmax", contamination=0.2, device="auto",
                 random_state=None, verbose=False):
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.n_clusters = n_clusters
        self.kmeans_weight = kmeans_weight
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.preprocessing = preprocessing
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_values(self) -> None:
        check_widths(self, "hidden")
        super()._check_param_values()

    def _fit_runs(self, X, train_idx, seeds, desc: str = "DCN"):
        from sklearn.cluster import KMeans

        self._check_params()
        device = training.prepare_device(self.device)
        Xt = training.table_to_device(X, device)
        idx = training.run_index(train_idx, len(seeds), device)
        check_n_samples(self, idx.shape[1], "n_clusters", "clusters")
        module = DCNModule(len(seeds), Xt.shape[1], self.hidden, self.latent_dim, self.n_clusters)
        module.reset_parameters(training.make_generators(seeds))
        module.to(device)
        if self.preprocessing == "minmax":
            training.fit_minmax(module, Xt, idx)
        common = dict(seeds=seeds, batch_size=self.batch_size, lr=self.lr, verbose=self.verbose)
        h1 = train_runs(module, Xt, idx, loss_fn=module.recon_loss, epochs=self.pretrain_epochs, desc=f"{desc} (pre-training)", **common)
        z = _codes(module, Xt, idx)  # (R, n, L)
        cents = []
        for r, seed in enumerate(seeds):
            zr = np.nan_to_num(z[r].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            cents.append(KMeans(self.n_clusters, n_init=10, random_state=int(seed)).fit(zr).cluster_centers_)
        with torch.no_grad():
            module.centroids.copy_(torch.as_tensor(np.stack(cents), dtype=torch.float32))
            module.counts.fill_(1.0)
        h2 = train_runs(module, Xt, idx, loss_fn=lambda xb, g: module.joint_loss(xb, g, weight=self.kmeans_weight),
                        after_step=module.update_centroids, epochs=self.epochs, desc=desc,
                        **{**common, "seeds": [s + SECOND_STAGE_SEED_OFFSET for s in seeds]})  # the joint stage
        return module, {"loss": np.concatenate([h1["loss"], h2["loss"]]), "failed": h1["failed"] | h2["failed"]}, Xt

    def _score_runs(self, module, Xt, idx, score=None) -> np.ndarray:
        module.eval()
        with torch.no_grad():
            return chunked(module.score, Xt, idx, module.n_runs)


@torch.no_grad()
def _codes(module: DCNModule, Xt, idx) -> np.ndarray:
    """Codes z (R, n, L) of the rows idx."""
    module.eval()
    return chunked(lambda xb: module(xb)[1], Xt, idx, module.n_runs)


def code_diagnosis(estimator: DCN, X: np.ndarray, y: np.ndarray, splits) -> "pd.DataFrame":
    """Why DCN's score ranks as it does: its networks read three ways, per run.

    Trains ``estimator``'s runs together on each split's training rows (the
    normal rows of the training half, as the protocol does) and, on the test half, computes the AUROC of

    * ``auroc_dcn``: DCN's score, the squared distance of z to the nearest centroid;
    * ``auroc_recon``: the same networks' squared reconstruction error;
    * ``auroc_kmeans``: the distance of z to the nearest centre of an
      independent ``sklearn.cluster.KMeans`` (DCN's K, 10 inits) fitted to the
      training codes (checks DCN's own centroid updates);

    and ``anomalies_inside``, the fraction of test anomalies whose code lies
    inside the training codes' range in every dimension (a low-dimensional
    code that maps anomalies among the normal codes leaves nothing for a
    distance to a centroid to find).

    Parameters
    ----------
    estimator : DCN (unfitted; its parameters are used)
    X : ndarray (n_samples, n_features)
    y : ndarray (n_samples,) 1 = anomaly
    splits : sequence of :class:`dagmm.protocol.RunSplit`

    Returns
    -------
    DataFrame, one row per run: run, seed, auroc_dcn, auroc_recon, auroc_kmeans, anomalies_inside, failed
        (a run whose codes or scores are not finite is ``failed``, its values NaN)
    """
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import roc_auc_score

    if len({len(s.train_idx) for s in splits}) > 1:
        raise ValueError("code_diagnosis trains the runs together: every split needs as many training rows")
    train_idx = np.stack([s.train_idx for s in splits])  # the normal rows of each training half
    test_idx = np.stack([s.test_idx for s in splits])
    seeds = [s.seed for s in splits]
    module, _, Xt = estimator._fit_runs(X, train_idx, seeds, desc="DCN diagnosis")
    module.eval()
    dev = Xt.device
    te = training.run_index(test_idx, len(seeds), dev)
    score = estimator._score_runs(module, Xt, te)
    with torch.no_grad():
        recon = chunked(lambda xb: sq_error(*module(xb)[::2]), Xt, te, module.n_runs)
    z_tr = _codes(module, Xt, training.run_index(train_idx, len(seeds), dev))
    z_te = _codes(module, Xt, te)
    rows = []
    for r, s in enumerate(splits):
        yt = y[s.test_idx]
        if not all(np.isfinite(a).all() for a in (score[r], recon[r], z_tr[r], z_te[r])):  # a diverged run
            rows.append(dict(run=r, seed=s.seed, auroc_dcn=np.nan, auroc_recon=np.nan, auroc_kmeans=np.nan,
                             anomalies_inside=np.nan, failed=True))
            continue
        km = KMeans(estimator.n_clusters, n_init=10, random_state=int(s.seed)).fit(z_tr[r].astype(np.float64))
        d_km = km.transform(z_te[r].astype(np.float64)).min(1)
        lo, hi = z_tr[r].min(0), z_tr[r].max(0)
        inside = ((z_te[r][yt == 1] >= lo) & (z_te[r][yt == 1] <= hi)).all(1).mean()
        rows.append(dict(run=r, seed=s.seed, auroc_dcn=roc_auc_score(yt, score[r]), auroc_recon=roc_auc_score(yt, recon[r]),
                         auroc_kmeans=roc_auc_score(yt, d_km), anomalies_inside=float(inside), failed=False))
    return pd.DataFrame(rows)
