"""Deep SVDD (Ruff et al., ICML 2018), one-class objective, our own small version.

A bias-free network phi maps min-max scaled samples to R^p; the centre c is
the mean of phi over the training rows at initialisation (coordinates with
|c_j| < 0.1 set to +-0.1, as Ruff et al.); training minimises the mean of
||phi(x) - c||^2 with Adam and weight decay. Anomaly score ||phi(x) - c||^2.
Unlike Ruff et al. there is no autoencoder pre-training of phi.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine import training
from ..estimator import NONNEGATIVE_REAL, TORCH_TRAINING, WIDTHS, check_widths
from ..engine.layers import RunLinear
from .base import BatchedDetector
from .loop import ScaledRunModule, chunked, train_runs

__all__ = ["DeepSVDD", "DeepSVDDModule"]

CENTRE_EPS = 0.1


class DeepSVDDModule(ScaledRunModule):
    """R runs of ``phi``: bias-free ``FC(d, h1, leaky_relu) - ... - FC(h_{L-1}, h_L)``; buffer ``center`` (R, 1, h_L).

    Shape
    -----
    x (R, B, n_features) -> phi(x) (R, B, h_L)
    """

    def __init__(self, n_runs: int, n_features: int, hidden: tuple[int, ...]):
        super().__init__(n_runs, n_features)
        dims = (n_features, *hidden)
        self.layers = nn.ModuleList(RunLinear(n_runs, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("center", torch.zeros(n_runs, 1, dims[-1]))

    def reset_parameters(self, generators) -> None:
        for layer in self.layers:
            layer.reset_parameters(generators)
            with torch.no_grad():
                layer.bias.zero_()
            layer.bias.requires_grad_(False)  # no bias terms: a constant phi is not a solution

    def forward(self, xb: torch.Tensor) -> torch.Tensor:
        h = self.scaled(xb)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.leaky_relu(h, 0.1)
        return h

    def loss(self, xb, _gens=None) -> torch.Tensor:
        return self.score(xb).mean(-1)

    def score(self, xb) -> torch.Tensor:
        """``||phi(x) - c||^2``, shape (R, B)."""
        return (self(xb) - self.center).pow(2).sum(-1)


class DeepSVDD(BatchedDetector):
    """One-class Deep SVDD (Ruff et al., 2018), without pre-training.

    Parameters
    ----------
    hidden : tuple of int, default (64, 32)
        Widths of phi; the last is the output dimension.
    epochs, batch_size : int, default 100, 1024
    lr, weight_decay : float, default 1e-3, 1e-6
    preprocessing : {"minmax", None}, default "minmax"
    contamination : float in (0, 0.5], default 0.2
    device : str, default "auto"
    random_state : int, RandomState or None
    verbose : bool, default False

    Attributes
    ----------
    module_ : DeepSVDDModule (one run)
    threshold_ : float
    loss_history_ : ndarray (epochs,)
    """

    _parameter_constraints: dict = {  # the common training parameters (TORCH_TRAINING) and this method's own
        "hidden": WIDTHS,
        "weight_decay": NONNEGATIVE_REAL,
        **TORCH_TRAINING,
    }

    def __init__(self, *, hidden=(64, 32), epochs=100, batch_size=1024, lr=1e-3, weight_decay=1e-6,
                 preprocessing="minmax", contamination=0.2, device="auto", random_state=None, verbose=False):
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.preprocessing = preprocessing
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_values(self) -> None:
        check_widths(self, "hidden", allow_empty=False)
        super()._check_param_values()

    def _fit_runs(self, X, train_idx, seeds, desc: str = "Deep SVDD"):
        self._check_params()
        device = training.prepare_device(self.device)
        Xt = training.table_to_device(X, device)
        idx = training.run_index(train_idx, len(seeds), device)
        module = DeepSVDDModule(len(seeds), Xt.shape[1], tuple(self.hidden))
        module.reset_parameters(training.make_generators(seeds))
        module.to(device)
        if self.preprocessing == "minmax":
            training.fit_minmax(module, Xt, idx)
        with torch.no_grad():
            phi = torch.as_tensor(chunked(module, Xt, idx, len(seeds)), device=device)  # (R, n, p)
            c = phi.mean(1, keepdim=True)
            c = torch.where(c.abs() < CENTRE_EPS, torch.where(c < 0, -CENTRE_EPS, CENTRE_EPS), c)
            module.center.copy_(c)
        history = train_runs(module, Xt, idx, seeds=seeds, loss_fn=module.loss, epochs=self.epochs,
                             batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                             verbose=self.verbose, desc=desc)
        return module, history, Xt

    def _score_runs(self, module, Xt, idx, score=None) -> np.ndarray:
        module.eval()
        with torch.no_grad():
            return chunked(module.score, Xt, idx, module.n_runs)
