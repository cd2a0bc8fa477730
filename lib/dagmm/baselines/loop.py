"""The training step of the baselines that are not DAGMM (DSEBM, DCN,
Deep SVDD): any per-run loss, Adam on every parameter with ``requires_grad``,
R runs at once, each with its own shuffling and noise generators.

The epochs and mini-batches are the engine's (:func:`dagmm.engine.training.run_epochs`,
the loop DAGMM trains with); DAGMM and its ablations step with the engine's
compiled Stepper instead (:func:`dagmm.engine.training.train`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..engine.training import (NOISE_SEED_OFFSET, SHUFFLE_SEED_OFFSET, iter_chunks, make_generators, run_epochs,
                               run_index, take_rows)

__all__ = ["ScaledRunModule", "train_runs", "chunked", "NOISE_SEED_OFFSET", "SHUFFLE_SEED_OFFSET"]



class ScaledRunModule(nn.Module):
    """Base of the baselines' torch modules: per-run min-max scaling buffers.

    ``x' = (x - shift) / scale`` with ``shift``, ``scale`` (R, 1, n_features)
    set by :func:`dagmm.engine.training.fit_minmax` from each run's training rows.
    """

    def __init__(self, n_runs: int, n_features: int):
        super().__init__()
        self.n_runs = n_runs
        self.register_buffer("shift", torch.zeros(n_runs, 1, n_features))
        self.register_buffer("scale", torch.ones(n_runs, 1, n_features))

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


def train_runs(
    module: nn.Module,
    X: torch.Tensor,
    train_idx,
    *,
    seeds: Sequence[int],
    loss_fn: Callable[[torch.Tensor, list], torch.Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    after_step: Callable[[torch.Tensor], None] | None = None,
    verbose: bool = False,
    desc: str = "",
) -> dict:
    """Train R runs of ``module`` with Adam on mini-batches of their own rows.

    Parameters
    ----------
    module : nn.Module with R runs, on ``X``'s device
    X : Tensor (N, n_features), raw rows on the training device
    train_idx : array (R, n) or (n,)
    seeds : R ints (shuffling and noise generators)
    loss_fn : callable ``(xb (R, B, n_features), noise_generators) -> (R,)``
    epochs, batch_size : int (the last, smaller batch of an epoch is kept)
    lr, weight_decay : float
    after_step : callable ``(xb) -> None``, optional
        Called after every optimiser step (DCN's centroid update).

    Returns
    -------
    dict with ``loss`` (ndarray (epochs, R)) and ``failed`` (bool ndarray (R,)).
    """
    device = X.device
    idx = run_index(train_idx, len(seeds), device)
    shuffle_gens = make_generators([s + SHUFFLE_SEED_OFFSET for s in seeds], device)
    noise_gens = make_generators(seeds, device, NOISE_SEED_OFFSET)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def step(rows, e, s, drawn):
        xb = take_rows(X, rows)  # (R, B, F)
        loss = loss_fn(xb, noise_gens)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if after_step is not None:
            after_step(xb)
        return loss.detach()

    module.train()
    history, failed = run_epochs(idx, epochs=epochs, batch_size=batch_size, shuffle_gens=shuffle_gens, step=step,
                                 verbose=verbose, desc=desc)
    module.eval()
    return {"loss": history, "failed": failed}


def chunked(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, idx, n_runs: int, chunk: int | None = None) -> np.ndarray:
    """``fn(X[idx[:, a:b]])`` over chunks of rows, concatenated: (R, m) ndarray.

    ``chunk``: rows per run at once (default: :func:`dagmm.engine.training.eval_chunk_rows`)."""
    idx = run_index(idx, n_runs, X.device)
    out = [fn(xb).detach() for xb in iter_chunks(X, idx, chunk)]
    return torch.cat(out, 1).cpu().numpy()


def randn_like_runs(shape_per_run: tuple, gens: list, device) -> torch.Tensor:
    """Standard normal noise (R, *shape) with run r drawn from ``gens[r]``."""
    return torch.stack([torch.randn(*shape_per_run, generator=g, device=device) for g in gens])
