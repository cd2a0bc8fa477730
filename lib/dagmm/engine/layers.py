"""Torch modules of DAGMM: layers with a leading *run* axis, the compression
network, the estimation network and the reconstruction features.

Every module takes inputs of shape (R, B, ...): R independent models (runs
with different seeds) are evaluated in one call with batched matrix products,
so twenty runs of the protocol train together as fast as a few alone. A
single model is simply R = 1. Each run's weights are initialised from its own
``torch.Generator``, so a run's initial weights do not depend on which other
runs it is trained beside.
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
from torch import nn

__all__ = [
    "RunLinear",
    "RunMLP",
    "MLPCompressor",
    "EstimationNetwork",
    "reconstruction_features",
    "pair_sums",
    "ACTIVATIONS",
    "tanh",
    "rational_tanh",
    "FEATURE_MAJOR_MIN_BATCH",
    "prefer_feature_major",
    "feature_major_steps",
    "as_feature_major",
]

def _rational_tanh_values(x: torch.Tensor) -> torch.Tensor:
    """``x P(x^2) / Q(x^2)`` clamped to [-1, 1]; P, Q of degree 4 from ``scripts/fit_tanh.py``.

    The coefficients are literals on purpose: dynamo turns module-level float
    constants into graph inputs (loaded from memory in every kernel).
    """
    c = x.clamp(-9.0, 9.0)  # float32 tanh is +-1 beyond it
    s = c * c
    num = (((1.3353870897958586e-08 * s + 2.0606908947229385e-05) * s + 0.0034954084549099207) * s
           + 0.1338086724281311) * s + 1.0
    den = (((7.775728363412782e-07 * s + 0.0003285369311925024) * s + 0.025876270607113838) * s
           + 0.4671418368816376) * s + 1.0
    return (c * num / den).clamp(-1.0, 1.0)


def rational_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh from multiplies, adds and one division: ``x P(x^2) / Q(x^2)``, P and Q of degree 4.

    Within 3.2e-7 of tanh in float32 (5.3 ulp at worst, 0.7 on average, as
    ``scripts/fit_tanh.py`` measures; ``torch.tanh`` is within 1 ulp), odd,
    and within [-1, 1]; NaN stays NaN. Its gradient is tanh's,
    ``1 - y^2`` at the output ``y``, not the rational's own. On the CPU,
    compiled into a step's elementwise kernels, it is several times cheaper
    than ``torch.tanh``'s vectorised SLEEF tanh, which was a visible share of
    a compiled KDDCUP step (``benchmarks/step_time.py``; docs/speed.md).
    """
    y = _rational_tanh_values(x.detach())
    if not x.requires_grad:
        return y
    # the value is y exactly (x - x.detach() is 0); the gradient is (1 - y^2). An autograd.Function
    # would say the same, but dynamo (torch 2.14, dynamic shapes) fails on a graph applying one twice
    return y + (x - x.detach()) * (1 - y * y)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """The networks' tanh: :func:`rational_tanh` inside a ``torch.compile``d CPU step, else ``torch.tanh``.

    Eager steps (and CUDA's, where tanh is cheap) keep ``torch.tanh``; a
    compiled CPU step's values differ from an eager one's by float rounding
    anyway (fused kernels, feature-major products), and its tanh by at most
    3.2e-7 more.
    """
    if x.device.type == "cpu" and torch.compiler.is_compiling():
        return rational_tanh(x)
    return torch.tanh(x)


ACTIVATIONS = {"tanh": tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, None: None}
_PICKLED_ACTIVATIONS = {**ACTIVATIONS, "tanh": torch.tanh}  # what RunMLP kept as ``act`` before

FEATURE_MAJOR_MIN_BATCH = 512  # compiled CPU steps of batches at least this long are computed feature-major
_feature_major = False  # set by feature_major_steps(), read while a step compiles


@contextlib.contextmanager
def feature_major_steps(enabled: bool = True):
    """Within it, compiled CPU steps compute fully connected layers feature-major (:func:`prefer_feature_major`).

    :class:`dagmm.engine.training.Stepper` decides once per fit, from its first
    (full) batch, and keeps the choice for every later batch: a layout that
    depended on each batch's length would compile a second version of the
    step for an epoch's short last batch.
    """
    global _feature_major
    previous, _feature_major = _feature_major, bool(enabled)
    try:
        yield
    finally:
        _feature_major = previous


def prefer_feature_major(x: torch.Tensor) -> bool:
    """Whether fully connected layers should compute on ``x`` (R, B, F) feature-major.

    Feature-major: activations stored (R, F, B), each layer ``W^T @ h`` with
    the batch as the long matrix dimension. On the CPU those products are
    faster than ``h @ W`` for DAGMM's narrow layers at batch 1024 (the GEMM
    rows of ``benchmarks/step_time.py``), but the transposed copy of the input only pays when it is
    fused into the step's other work and the batch is long: so only inside a
    ``torch.compile``d CPU step (see :class:`dagmm.engine.training.Stepper`) of a
    fit whose batches have at least :data:`FEATURE_MAJOR_MIN_BATCH` rows
    (Arrhythmia's 128-row batches are slower that way), inside
    :func:`feature_major_steps`. The values are the same either way, to
    float rounding.
    """
    return x.dim() == 3 and x.device.type == "cpu" and _feature_major and torch.compiler.is_compiling()


def as_feature_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` (R, B, F), the same values, stored feature-major: a (R, B, F) view of a (R, F, B) array."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


class RunLinear(nn.Module):
    """A fully connected layer per run: ``y[r] = x[r] @ W[r] + b[r]``.

    Parameters
    ----------
    n_runs, in_features, out_features : int

    Shape
    -----
    input (R, B, in_features) -> output (R, B, out_features)
    """

    def __init__(self, n_runs: int, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_runs, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_runs, 1, out_features))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """PyTorch's ``nn.Linear`` default: U(-1/sqrt(in), 1/sqrt(in)) for W and b."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            for r, g in enumerate(generators):
                w = torch.rand(self.in_features, self.out_features, generator=g)
                b = torch.rand(1, self.out_features, generator=g)
                self.weight[r].copy_(w.mul_(2 * bound).sub_(bound))
                self.bias[r].copy_(b.mul_(2 * bound).sub_(bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_t(self, h: torch.Tensor) -> torch.Tensor:
        """The same layer feature-major: ``h`` (R, in, B) -> (R, out, B)."""
        return torch.baddbmm(self.bias.transpose(1, 2), self.weight.transpose(1, 2), h)

    def extra_repr(self) -> str:
        return f"runs={self.weight.shape[0]}, in={self.in_features}, out={self.out_features}"


class RunMLP(nn.Module):
    """Stack of :class:`RunLinear` layers with one activation between them.

    Parameters
    ----------
    n_runs : int
    dims : sequence of int
        Layer widths, input first: ``(118, 60, 30, 10, 1)``.
    activation : {"tanh", "relu", "sigmoid"}
        Applied after every layer but the last.
    """

    def __init__(self, n_runs: int, dims: Sequence[int], activation: str = "tanh"):
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"an MLP needs at least two widths, got {tuple(dims)}")
        self.layers = nn.ModuleList(RunLinear(n_runs, a, b) for a, b in zip(dims[:-1], dims[1:]))
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(k for k in ACTIVATIONS if k)} or None, got {activation!r}")
        self.activation = activation

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        for layer in self.layers:
            layer.reset_parameters(generators)

    def __setstate__(self, state: dict) -> None:
        # modules pickled before the activation was kept by name held its function as ``act``
        if "act" in state and "activation" not in state:
            fn = state.pop("act")
            state["activation"] = next(k for k, v in _PICKLED_ACTIVATIONS.items() if v is fn)
        super().__setstate__(state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last, act = len(self.layers) - 1, ACTIVATIONS[self.activation]
        fm = prefer_feature_major(x)
        h = x.transpose(1, 2) if fm else x  # (R, F, B), contiguous when x was stored feature-major
        for i, layer in enumerate(self.layers):
            h = layer.forward_t(h) if fm else layer(h)
            if i < last and act is not None:
                h = act(h)
        return h.transpose(1, 2) if fm else h


class MLPCompressor(nn.Module):
    """The paper's fully connected compression network (an autoencoder).

    Encoder ``FC(d, h1, tanh) - ... - FC(h_last, latent)``, decoder the mirror
    ``FC(latent, h_last, tanh) - ... - FC(h1, d)`` with a linear output.

    Parameters
    ----------
    n_runs, n_features, latent_dim : int
    hidden : sequence of int
        Encoder widths between input and code, e.g. ``(60, 30, 10)``.

    Shape
    -----
    x (R, B, n_features) -> z_c (R, B, latent_dim), x_hat (R, B, n_features)
    """

    def __init__(self, n_runs: int, n_features: int, hidden: Sequence[int], latent_dim: int, activation: str = "tanh"):
        super().__init__()
        dims = (n_features, *hidden, latent_dim)
        self.latent_dim = latent_dim
        self.encoder = RunMLP(n_runs, dims, activation)
        self.decoder = RunMLP(n_runs, dims[::-1], activation)

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        self.encoder.reset_parameters(generators)
        self.decoder.reset_parameters(generators)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_c = self.encoder(x)
        return z_c, self.decoder(z_c)


class EstimationNetwork(nn.Module):
    """``FC(D, hidden, tanh) - Dropout(p) - FC(hidden, K) - softmax``.

    Dropout takes its mask from the caller (``dropout_mask``, zeros and
    ``1/(1-p)``), so each run draws it from its own generator; without a mask
    (evaluation) no dropout is applied.

    Shape
    -----
    z (R, B, D) -> gamma (R, B, K)
    """

    def __init__(self, n_runs: int, in_dim: int, hidden: int, n_components: int, dropout: float = 0.5):
        super().__init__()
        self.hidden, self.dropout = hidden, dropout
        self.fc1 = RunLinear(n_runs, in_dim, hidden)
        self.fc2 = RunLinear(n_runs, hidden, n_components)

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        self.fc1.reset_parameters(generators)
        self.fc2.reset_parameters(generators)

    def forward(self, z: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> torch.Tensor:
        fm = prefer_feature_major(z)
        if fm:  # (R, D, B) and (R, hidden, B)
            z = z.transpose(1, 2)
            dropout_mask = None if dropout_mask is None else dropout_mask.transpose(1, 2)
        h = tanh(self.fc1.forward_t(z) if fm else self.fc1(z))
        if dropout_mask is not None:
            h = h * dropout_mask
        gamma = torch.softmax(self.fc2.forward_t(h) if fm else self.fc2(h), dim=1 if fm else -1)
        return gamma.transpose(1, 2) if fm else gamma


class _PairSums(torch.autograd.Function):
    """``sum x^2``, ``sum x_hat^2``, ``sum (x - x_hat)^2`` and ``sum x * x_hat`` over the last axis.

    Its backward is one elementwise pass over ``x`` and ``x_hat`` that needs
    no ``x - x_hat`` array: compiled, the forward's four sums are one pass
    too, and nothing but ``x`` and ``x_hat`` is kept for the backward
    (autograd's own graph of the norms stores ``x - x_hat`` and reads the
    inputs twice more).
    """

    @staticmethod
    def forward(x, x_hat):
        d = x - x_hat
        return (x * x).sum(-1), (x_hat * x_hat).sum(-1), (d * d).sum(-1), (x * x_hat).sum(-1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g_xx, g_hh, g_dd, g_xh):
        # d/dx_hat = 2 g_hh x_hat - 2 g_dd (x - x_hat) + g_xh x, grouped per sample as a x_hat + b x so
        # that no (x - x_hat) array is needed (compiled, the partitioner would otherwise store one)
        x, x_hat = ctx.saved_tensors
        g_xx, g_hh, g_dd, g_xh = (g.unsqueeze(-1) for g in (g_xx, g_hh, g_dd, g_xh))
        cross = g_xh - 2 * g_dd
        grad_x = grad_x_hat = None
        if ctx.needs_input_grad[0]:
            grad_x = 2 * (g_xx + g_dd) * x + cross * x_hat
        if ctx.needs_input_grad[1]:
            grad_x_hat = 2 * (g_hh + g_dd) * x_hat + cross * x
        return grad_x, grad_x_hat


def pair_sums(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``||x||^2``, ``||x_hat||^2``, ``||x - x_hat||^2`` and ``<x, x_hat>`` per sample.

    One pass over the inputs forward and one backward (see ``_PairSums``).

    Shape
    -----
    x, x_hat (R, B, ...) -> four (R, B)
    """
    return _PairSums.apply(x.flatten(2), x_hat.flatten(2))


def _norm(sq: torch.Tensor) -> torch.Tensor:
    """``sqrt(sq)`` whose gradient at 0 is 0 (as ``torch.linalg.vector_norm`` gives), not inf."""
    pos = sq > 0
    return torch.where(pos, torch.where(pos, sq, 1.0).sqrt(), 0.0)


def reconstruction_features(x: torch.Tensor, x_hat: torch.Tensor, eps: float | torch.Tensor = 1e-10,
                            sums: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """Relative Euclidean distance and cosine similarity of x and its reconstruction.

    ``||x - x_hat|| / max(||x||, eps)`` and ``<x, x_hat> / (max(||x||, eps) max(||x_hat||, eps))``
    (the paper's Eq. 2 features, with the norms floored so that a row near
    zero gives finite, bounded features). ``eps``: a float, or a tensor
    (R, 1) with each run's floor (see :func:`dagmm.engine.training.fit_norm_floor`).
    ``sums``: :func:`pair_sums` of ``x`` and ``x_hat`` when already computed.

    Shape
    -----
    x, x_hat (R, B, ...) -> (R, B, 2)
    """
    sq_x, sq_xh, sq_d, dot = pair_sums(x, x_hat) if sums is None else sums
    nx, nxh = _norm(sq_x).clamp_min(eps), _norm(sq_xh).clamp_min(eps)
    return torch.stack([_norm(sq_d) / nx, dot / (nx * nxh)], dim=-1)
