"""DSEBM: deep structured energy-based model (Zhai et al., ICML 2016), fully connected.

The energy of a (min-max scaled) sample is

    E(x) = 1/2 ||x - b||^2 - sum_j softplus(f_j(x)),

with ``f`` an MLP (softplus between layers). The model is trained by
denoising score matching: the reconstruction of a noisy sample is
``x~ - dE/dx(x~)`` and the loss is its squared distance to the clean ``x``.
Two scores (Zhai et al., Sec. 4): **DSEBM-e**, the energy E(x), and
**DSEBM-r**, the reconstruction error ``||x - (x - dE/dx(x))||^2 = ||dE/dx(x)||^2``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import StrOptions
from torch import nn

from ..engine import training
from ..estimator import POSITIVE_REAL, TORCH_TRAINING, WIDTHS, check_widths
from ..engine.layers import RunLinear
from .base import BatchedDetector
from .loop import ScaledRunModule, chunked, randn_like_runs, train_runs

__all__ = ["DSEBM", "DSEBMModule"]


class DSEBMModule(ScaledRunModule):
    """R runs of a fully connected DSEBM.

    Parameters
    ----------
    n_runs, n_features : int
    hidden : tuple of int
        Widths of ``f``: ``FC(d, h1, softplus) - ... - FC(h_{L-1}, h_L)``.

    Shape
    -----
    x (R, B, n_features) -> energy (R, B)
    """

    def __init__(self, n_runs: int, n_features: int, hidden: tuple[int, ...]):
        super().__init__(n_runs, n_features)
        dims = (n_features, *hidden)
        self.layers = nn.ModuleList(RunLinear(n_runs, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.b = nn.Parameter(torch.zeros(n_runs, 1, n_features))

    def reset_parameters(self, generators) -> None:
        for layer in self.layers:
            layer.reset_parameters(generators)
        with torch.no_grad():
            self.b.zero_()

    def energy_scaled(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) of already scaled x (R, B, F) -> (R, B)."""
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.softplus(h)
        return 0.5 * (x - self.b).pow(2).sum(-1) - F.softplus(h).sum(-1)

    def energy_grad(self, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(E(x) (R, B), dE/dx (R, B, F)) of scaled x."""
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            e = self.energy_scaled(x)
            (g,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
        return e, g

    def loss(self, xb: torch.Tensor, noise_gens, noise_std: float) -> torch.Tensor:
        """Denoising score-matching loss per run (R,) on raw batch xb (R, B, F)."""
        x = self.scaled(xb)
        noise = randn_like_runs(tuple(x.shape[1:]), noise_gens, x.device)
        x_noisy = (x + noise_std * noise).requires_grad_(True)
        _, g = self.energy_grad(x_noisy, create_graph=True)
        x_rec = x_noisy - g
        return (x - x_rec).pow(2).sum(-1).mean(-1)

    def score(self, xb: torch.Tensor, kind: str) -> torch.Tensor:
        """``"energy"``: E(x); ``"recon"``: ||dE/dx||^2, shape (R, B)."""
        x = self.scaled(xb)
        if kind == "energy":
            return self.energy_scaled(x)
        _, g = self.energy_grad(x, create_graph=False)
        return g.pow(2).sum(-1)


class DSEBM(BatchedDetector):
    """Deep structured energy-based model for anomaly detection (Zhai et al., 2016).

    Parameters
    ----------
    hidden : tuple of int, default (64, 32)
        Widths of the energy network (see :class:`DSEBMModule`).
    scoring : {"energy", "recon"}, default "energy"
        DSEBM-e (energy) or DSEBM-r (reconstruction error). (Named ``score``
        before: scikit-learn reserves that name for a method.)
    noise_std : float, default 0.1
        Standard deviation of the denoising noise, in min-max scaled units.
    epochs, batch_size : int, default 100, 1024
    lr : float, default 1e-3
        Adam learning rate.
    preprocessing : {"minmax", None}, default "minmax"
    contamination : float in (0, 0.5], default 0.2
        Fraction of training samples above ``threshold_``.
    device : str, default "auto"
    random_state : int, RandomState or None
    verbose : bool, default False

    Attributes
    ----------
    module_ : DSEBMModule (one run)
    threshold_ : float
    loss_history_ : ndarray (epochs,)
    """

    _parameter_constraints: dict = {  # the common training parameters (TORCH_TRAINING) and this method's own
        "hidden": WIDTHS,
        "scoring": [StrOptions({"energy", "recon"})],
        "noise_std": POSITIVE_REAL,
        **TORCH_TRAINING,
    }

    def __init__(self, *, hidden=(64, 32), scoring="energy", noise_std=0.1, epochs=100, batch_size=1024, lr=1e-3,
                 preprocessing="minmax", contamination=0.2, device="auto", random_state=None, verbose=False):
        self.hidden = hidden
        self.scoring = scoring
        self.noise_std = noise_std
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.preprocessing = preprocessing
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_values(self) -> None:
        check_widths(self, "hidden", allow_empty=False)
        super()._check_param_values()

    def _fit_runs(self, X, train_idx, seeds, desc: str = "DSEBM"):
        self._check_params()
        device = training.prepare_device(self.device)
        Xt = training.table_to_device(X, device)
        idx = training.run_index(train_idx, len(seeds), device)
        module = DSEBMModule(len(seeds), Xt.shape[1], tuple(self.hidden))
        module.reset_parameters(training.make_generators(seeds))
        module.to(device)
        if self.preprocessing == "minmax":
            training.fit_minmax(module, Xt, idx)
        history = train_runs(module, Xt, idx, seeds=seeds, loss_fn=lambda xb, g: module.loss(xb, g, self.noise_std),
                             epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, verbose=self.verbose, desc=desc)
        return module, history, Xt

    def _score_runs(self, module, Xt, idx, score: str | None = None) -> np.ndarray:
        kind = score or self.scoring
        module.eval()
        return chunked(lambda xb: module.score(xb, kind), Xt, idx, module.n_runs)
