"""The paper's baselines that are ablations of DAGMM (Zong et al., 2018, Sec. 4.2).

One estimator, :class:`DAGMMVariant`, a :class:`dagmm.DAGMM` with four more
parameters; the named configurations are the paper's baselines:

========== =====================================================================
GMM-EN     ``lambda_recon=0``: no reconstruction term in the objective, energy
PAE        ``lambda_energy=lambda_cov=0, scoring="recon"``: the autoencoder alone,
           scored by its reconstruction error
E2E-AE     ``scoring="recon"``: DAGMM trained as usual, scored by reconstruction error
PAE-GMM-EM ``pretrain_epochs=E, second_stage="em"``: pre-trained autoencoder, then
           ``sklearn.mixture.GaussianMixture`` fitted by EM on z, scored by energy
PAE-GMM    ``pretrain_epochs=E, second_stage="frozen"``: pre-trained autoencoder
           frozen (``requires_grad=False``), estimation network trained on its z
DAGMM-p    ``pretrain_epochs=E, second_stage="finetune"``: pre-train, then the
           whole DAGMM fine-tuned end to end
DAGMM-NVI  ``objective="nvi"``: the sample-energy term replaced by a variational
           objective (see :class:`VariantModule`)
========== =====================================================================

Pre-training trains the compression network on reconstruction error alone
(``lambda_energy = lambda_cov = 0``), exactly as PAE is trained, so PAE is the
first stage of the three pre-trained variants.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions

from ..engine import training
from ..defaults import network_sizes
from ..estimator import DAGMM, INIT_SEED_OFFSET, NONNEGATIVE_INT, SHUFFLE_SEED_OFFSET, check_n_samples, fit_runs
from ..mixture import GaussianMixture
from ..engine.module import DAGMMModule
from ..engine.training import SECOND_STAGE_SEED_OFFSET
from ..engine.layers import EstimationNetwork, MLPCompressor
from .base import BatchedDetector

__all__ = ["DAGMMVariant", "VariantModule", "SECOND_STAGE_SEED_OFFSET"]

SCORES = ("energy", "recon")
STAGES = ("finetune", "frozen", "em")
OBJECTIVES = ("energy", "nvi")


class VariantModule(DAGMMModule):
    """:class:`DAGMMModule` whose objective can drop the mixture or use NVI.

    * With ``lambda_energy == lambda_cov == 0`` the loss is the reconstruction
      error alone and the mixture is not estimated (pre-training, PAE).
    * ``objective="nvi"`` (DAGMM-NVI): the paper replaces its eq. (6), the
      sample energy, by the objective of neural variational inference (Mnih &
      Gregor, 2014), with the mixture component c as the latent variable and
      the estimation network as its inference network q(c | z) = gamma. We
      use the negative evidence lower bound

          -ELBO(z) = -sum_k gamma_k [log phi_k + log N(z | mu_k, Sigma_k) - log gamma_k]

      in place of E(z), with phi, mu, Sigma from gamma by eq. (5) as in DAGMM.
      The expectation over the K (<= 4) components is summed exactly rather
      than sampled with NVIL's REINFORCE estimator and learned baselines: the
      same objective with a zero-variance gradient. Scoring uses the sample
      energy E(z) under the mixture fitted on the training set, as DAGMM.
    """

    def __init__(self, *args, objective: str = "energy", **kwargs):
        super().__init__(*args, **kwargs)
        self.objective = objective

    def loss(self, x, dropout_mask=None, noise=None, labels=None, *, lambda_energy, lambda_cov, lambda_recon=1.0):
        if self.objective == "energy" and (lambda_energy or lambda_cov):
            return super().loss(x, dropout_mask, noise, labels, lambda_energy=lambda_energy, lambda_cov=lambda_cov, lambda_recon=lambda_recon)
        out = self(x, dropout_mask, noise)
        loss = torch.zeros(x.shape[0], device=x.device)
        n_retried = torch.zeros((), dtype=torch.long, device=x.device)
        if lambda_recon:
            loss = loss + lambda_recon * out.sq_err.mean(-1)
        if lambda_energy or lambda_cov:  # objective == "nvi"
            params = self.mixture.estimate(out.gamma, out.z)
            logp, n_retried = self.mixture.log_prob_components(out.z, params)  # (R, K, N)
            q = out.gamma.transpose(1, 2)  # (R, K, N)
            log_q = torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))
            neg_elbo = -(q * (logp - log_q)).sum(1).mean(-1)  # (R,)
            loss = loss + lambda_energy * neg_elbo + lambda_cov * self.mixture.penalty(params)
        if out.aux is not None:
            loss = loss + out.aux
        return loss, n_retried


class DAGMMVariant(BatchedDetector, DAGMM):
    """A DAGMM ablation or variant (the paper's baselines, see the module docstring).

    Parameters
    ----------
    (every parameter of :class:`dagmm.DAGMM`), and

    scoring : {"energy", "recon"}, default "energy"
        What :meth:`energy` returns: the sample energy under the fitted
        mixture, or the squared reconstruction error in the scaled space.
        (Named ``score`` before: scikit-learn reserves that name for a method.)
    distance_floor : float, default 0.0
        As :class:`dagmm.DAGMM` (0: the paper's unfloored features).
    pretrain_epochs : int, default 0
        Epochs of pre-training the compression network on reconstruction
        error alone (0: no pre-training; ``epochs`` is the second stage).
    second_stage : {"finetune", "frozen", "em"}, default "finetune"
        After pre-training: train the whole DAGMM end to end for ``epochs``
        (DAGMM-p); freeze the compression network and train the estimation
        network for ``epochs`` (PAE-GMM); or fit a Gaussian mixture to z by EM
        with scikit-learn (PAE-GMM-EM; ``epochs`` unused).
    objective : {"energy", "nvi"}, default "energy"
        The paper's sample-energy term, or the NVI objective (DAGMM-NVI).

    Attributes
    ----------
    module_ : VariantModule (one run)
    threshold_ : float
    loss_history_ : ndarray (pretrain_epochs + epochs,)
    """

    _parameter_constraints: dict = {
        **{k: DAGMM._parameter_constraints[k] for k in (
            "hidden", "latent_dim", "estimation_hidden", "n_components", "dropout", "lambda_energy", "lambda_cov",
            "lambda_recon", "lr", "batch_size", "cov_eps", "preprocessing", "distance_floor", "contamination",
            "threshold", "device", "random_state", "verbose")},
        "epochs": NONNEGATIVE_INT,
        "scoring": [StrOptions(set(SCORES))],
        "pretrain_epochs": NONNEGATIVE_INT,
        "second_stage": [StrOptions(set(STAGES))],
        "objective": [StrOptions(set(OBJECTIVES))],
    }

    def __init__(
        self,
        *,
        hidden=(60, 30, 10),
        latent_dim=1,
        estimation_hidden=10,
        n_components=4,
        dropout=0.5,
        lambda_energy=0.1,
        lambda_cov=0.005,
        lambda_recon=1.0,
        lr=1e-4,
        epochs=200,
        batch_size=1024,
        cov_eps=1e-6,
        preprocessing="minmax",
        distance_floor=0.0,
        contamination=0.2,
        threshold=None,
        device="auto",
        random_state=None,
        verbose=False,
        scoring="energy",
        pretrain_epochs=0,
        second_stage="finetune",
        objective="energy",
    ):
        super().__init__(
            hidden=hidden, latent_dim=latent_dim, estimation_hidden=estimation_hidden, n_components=n_components,
            dropout=dropout, lambda_energy=lambda_energy, lambda_cov=lambda_cov, lambda_recon=lambda_recon, lr=lr,
            epochs=epochs, batch_size=batch_size, cov_eps=cov_eps, preprocessing=preprocessing,
            contamination=contamination, threshold=threshold, device=device, random_state=random_state, verbose=verbose,
        )
        self.distance_floor = distance_floor
        self.scoring = scoring
        self.pretrain_epochs = pretrain_epochs
        self.second_stage = second_stage
        self.objective = objective

    def _check_param_values(self) -> None:
        DAGMM._check_param_values(self)

    def _build_module(self, n_runs: int, input_shape: tuple[int, ...]) -> VariantModule:
        (n_features,) = input_shape
        hidden, latent = network_sizes(self, n_features)
        compressor = MLPCompressor(n_runs, n_features, hidden, latent)
        estimation = EstimationNetwork(n_runs, latent + 2, self.estimation_hidden, self.n_components, self.dropout)
        return VariantModule(compressor, estimation, GaussianMixture(self.cov_eps), n_runs, input_shape, objective=self.objective)

    # -- training ---------------------------------------------------------
    def _train(self, module, Xt, idx, seeds, *, epochs, desc, **lambdas) -> dict:
        kw = dict(lambda_energy=self.lambda_energy, lambda_cov=self.lambda_cov, lambda_recon=self.lambda_recon)
        kw.update(lambdas)
        return training.train(module, Xt, idx, seeds=seeds, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                              verbose=self.verbose, desc=desc, **kw)

    def _pretrain(self, X, train_idx, seeds, desc="pre-training"):
        """Build R runs and train their compression networks on reconstruction alone.

        Returns (module, history, X_device); identical to fitting PAE with
        ``epochs = pretrain_epochs`` (before its mixture is estimated).
        """
        self._check_params()
        device = training.prepare_device(self.device)
        Xt = training.table_to_device(X, device)
        idx = training.run_index(train_idx, len(seeds), device)
        check_n_samples(self, idx.shape[1])
        module = self._build_module(len(seeds), tuple(Xt.shape[1:]))
        module.reset_parameters(training.make_generators(seeds, offset=INIT_SEED_OFFSET))
        module.to(device)
        training.fit_scaling(module, Xt, idx, self.preprocessing)
        if self.distance_floor:
            training.fit_norm_floor(module, Xt, idx, self.distance_floor)
        history = self._train(module, Xt, idx, [s + SHUFFLE_SEED_OFFSET for s in seeds], epochs=self.pretrain_epochs,
                              desc=desc, lambda_energy=0.0, lambda_cov=0.0, lambda_recon=1.0)
        return module, history, Xt

    def _second_stage(self, module, Xt, train_idx, seeds, desc="second stage") -> dict:
        """Train (or fit by EM) the pre-trained ``module`` in place; returns the stage's history."""
        idx = training.run_index(train_idx, len(seeds), Xt.device)
        if self.second_stage == "em":
            fit_em(module, Xt, idx, seeds, self.cov_eps)
            return {"loss": np.zeros((0, len(seeds))), "failed": np.zeros(len(seeds), bool)}
        stage_seeds = [s + SHUFFLE_SEED_OFFSET + SECOND_STAGE_SEED_OFFSET for s in seeds]
        if self.second_stage == "frozen":
            for p in module.compressor.parameters():
                p.requires_grad_(False)
            # the reconstruction term is constant for a frozen compressor: leave it out
            history = self._train(module, Xt, idx, stage_seeds, epochs=self.epochs, desc=desc, lambda_recon=0.0)
        else:
            history = self._train(module, Xt, idx, stage_seeds, epochs=self.epochs, desc=desc)
        training.estimate_mixture(module, Xt, idx)
        return history

    def _fit_runs(self, X, train_idx, seeds, desc: str = "DAGMM variant"):
        if not self.pretrain_epochs:
            return fit_runs(self, X, train_idx, seeds, desc=desc)
        module, h1, Xt = self._pretrain(X, train_idx, seeds, desc=f"{desc} (pre-training)")
        h2 = self._second_stage(module, Xt, train_idx, seeds, desc=desc)
        return module, {"loss": np.concatenate([h1["loss"], h2["loss"]]), "failed": h1["failed"] | h2["failed"]}, Xt

    def _score_runs(self, module, Xt, idx, score: str | None = None) -> np.ndarray:
        return training.compute_scores(module, Xt, idx, score or self.scoring)

    def _fit(self, X, y=None) -> None:
        BatchedDetector._fit(self, X, y)  # threshold_: the ``threshold`` parameter if given
        self._n_features_out = self.module_.estimation.fc1.in_features  # transform: z = [z_c, rel, cos]


@torch.no_grad()
def fit_em(module: DAGMMModule, Xt: torch.Tensor, idx: torch.Tensor, seeds, reg_covar: float) -> None:
    """Fit each run's mixture to its training z by EM (scikit-learn), into the module's buffers.

    ``GaussianMixture(n_components=K, covariance_type="full", reg_covar=cov_eps,
    random_state=seed)`` with scikit-learn's defaults otherwise (k-means
    initialisation, one initialisation, up to 100 EM iterations). The
    covariances are stored without ``reg_covar``, which
    :class:`dagmm.mixture.GaussianMixture` adds back (as ``eps``) when scoring.
    A run whose codes are not finite (its pre-training diverged) gets NaN
    parameters, so its scores are NaN and it counts as failed, while the
    other runs are fitted as usual.
    """
    from sklearn.mixture import GaussianMixture as SkGMM

    from ..mixture import GaussianParams

    z, _ = training.embed(module, Xt, idx)  # (R, n, D)
    k = module.estimation.fc2.out_features
    phis, mus, covs = [], [], []
    for r, seed in enumerate(seeds):
        zr = z[r].double().cpu().numpy()
        if not np.isfinite(zr).all():
            d = zr.shape[1]
            phis.append(np.full(k, np.nan))
            mus.append(np.full((k, d), np.nan))
            covs.append(np.full((k, d, d), np.nan))
            continue
        gm = SkGMM(n_components=k, covariance_type="full", reg_covar=reg_covar, random_state=int(seed)).fit(zr)
        phis.append(gm.weights_)
        mus.append(gm.means_)
        covs.append(gm.covariances_ - reg_covar * np.eye(zr.shape[1]))  # the mixture adds eps back when scoring
    dev = Xt.device
    module.set_params(GaussianParams(*(torch.as_tensor(np.stack(a), device=dev) for a in (phis, mus, covs))))
