"""A small batched training loop for the baselines that are not DAGMM
(DSEBM, DCN, Deep SVDD): R runs at once, each with its own shuffling and
noise generators, Adam on every parameter with ``requires_grad``.

DAGMM and its ablations use :func:`dagmm.engine.training.train` instead (CUDA graphs,
the DAGMM objective); this loop takes any per-run loss.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..engine.training import run_index, epoch_permutations, iter_chunks, make_generators, take_rows

__all__ = ["ScaledRunModule", "train_runs", "chunked", "NOISE_SEED_OFFSET", "SHUFFLE_SEED_OFFSET"]

SHUFFLE_SEED_OFFSET = 2_000_033  # shuffling generator of run `seed` (as dagmm.estimator)
NOISE_SEED_OFFSET = 3_000_017  # its noise generator (DSEBM's denoising noise)


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
    R, n = idx.shape
    shuffle_gens = make_generators([s + SHUFFLE_SEED_OFFSET for s in seeds], device)
    noise_gens = make_generators(seeds, device, NOISE_SEED_OFFSET)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    history = torch.zeros(epochs, R, device=device)
    failed = np.zeros(R, dtype=bool)
    chunk = max(1, min(epochs, -(-(1 << 16) // n)))  # epochs whose shuffles are drawn at once
    steps = -(-n // batch_size)
    bar = None
    if verbose and epochs > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=desc, leave=False)
    module.train()
    for e0 in range(0, epochs, chunk):
        E = min(chunk, epochs - e0)
        perms = epoch_permutations(shuffle_gens, E, n, device)  # (E, R, n)
        for e in range(E):
            rows = idx.gather(1, perms[e])
            total = torch.zeros(R, device=device)
            for s in range(0, n, batch_size):
                xb = take_rows(X, rows[:, s : s + batch_size])  # (R, B, F)
                loss = loss_fn(xb, noise_gens)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
                if after_step is not None:
                    after_step(xb)
                total += loss.detach()
            history[e0 + e] = total / steps
        chunk_loss = history[e0 : e0 + E].cpu().numpy()
        failed |= ~np.isfinite(chunk_loss).all(0)
        if bar is not None:
            bar.update(E)
    if bar is not None:
        bar.close()
    module.eval()
    return {"loss": history.cpu().numpy().astype(np.float64), "failed": failed}


def chunked(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, idx, n_runs: int, chunk: int | None = None) -> np.ndarray:
    """``fn(X[idx[:, a:b]])`` over chunks of rows, concatenated: (R, m) ndarray.

    ``chunk``: rows per run at once (default: :func:`dagmm.engine.training.eval_chunk_rows`)."""
    idx = run_index(idx, n_runs, X.device)
    out = [fn(xb).detach() for xb in iter_chunks(X, idx, chunk)]
    return torch.cat(out, 1).cpu().numpy()


def randn_like_runs(shape_per_run: tuple, gens: list, device) -> torch.Tensor:
    """Standard normal noise (R, *shape) with run r drawn from ``gens[r]``."""
    return torch.stack([torch.randn(*shape_per_run, generator=g, device=device) for g in gens])
