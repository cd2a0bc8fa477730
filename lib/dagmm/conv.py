"""Convolutional compression networks for DAGMM on images, with a leading run axis.

Two designs from the seeds' slides (64x64 RGB input, channels 32-64-128-256):

* :class:`ConvCompressor` (framework 1): four 4x4 stride-2 convolutions down
  to 256x4x4, a linear layer to the code ``z_c``, and the mirrored 4x4
  stride-2 transposed convolutions back to 3x64x64 with a sigmoid output.
* :class:`ResConvCompressor` (framework 2): the same path made of residual
  blocks. Down: 4x4 stride-2 conv - BN - ReLU - 3x3 conv - BN, plus a 1x1
  stride-2 conv - BN shortcut. Up: 4x4 stride-2 transposed conv - BN - ReLU -
  3x3 conv - BN, plus an upsample-2 - 1x1 conv - BN shortcut; the last block
  ends in a sigmoid instead of a ReLU.

Runs: a DAGMM module trains R independent runs at once. Here the runs are
folded into the channel axis, ``(R, B, C, H, W) -> (B, R*C, H, W)``, and every
convolution is grouped with ``groups=R`` (batch norm is per channel, hence
per run), so run r only ever sees its own weights and its own images. With
R = 1 these are ordinary convolutions. On a CPU grouped convolutions were
slower per image than R separate ones (at R = 5), so the image study trains runs one after another
(``max_parallel=1``) on a CPU and may batch them on a GPU.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .engine.layers import RunLinear

__all__ = ["RunConv2d", "RunBatchNorm2d", "ConvCompressor", "ResConvCompressor", "fold_runs", "unfold_runs"]


def fold_runs(x: torch.Tensor) -> torch.Tensor:
    """(R, B, C, H, W) -> (B, R*C, H, W): runs folded into channels."""
    R, B, C, H, W = x.shape
    return x.transpose(0, 1).reshape(B, R * C, H, W)


def unfold_runs(x: torch.Tensor, n_runs: int) -> torch.Tensor:
    """(B, R*C, H, W) -> (R, B, C, H, W)."""
    B, RC, H, W = x.shape
    return x.reshape(B, n_runs, RC // n_runs, H, W).transpose(0, 1)


class RunConv2d(nn.Module):
    """A 2-d (transposed) convolution per run, on run-folded tensors.

    Parameters
    ----------
    n_runs, in_channels, out_channels, kernel_size : int
    stride, padding : int
    transposed : bool, default False
        ``ConvTranspose2d`` instead of ``Conv2d``.

    Shape
    -----
    (B, R*in_channels, H, W) -> (B, R*out_channels, H', W')
    """

    def __init__(self, n_runs: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, transposed: bool = False):
        super().__init__()
        self.n_runs, self.transposed = n_runs, transposed
        cls = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = cls(n_runs * in_channels, n_runs * out_channels, kernel_size, stride, padding, groups=n_runs)
        k = kernel_size * kernel_size
        # PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, with
        # fan_in computed from the weight's second axis (out_channels for a transposed conv).
        self.fan_in = (out_channels if transposed else in_channels) * k

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        if len(generators) != self.n_runs:
            raise ValueError(f"need {self.n_runs} generators, got {len(generators)}")
        bound = 1.0 / math.sqrt(self.fan_in)
        w, b = self.conv.weight, self.conv.bias
        wr, br = w.shape[0] // self.n_runs, b.shape[0] // self.n_runs
        with torch.no_grad():
            for r, g in enumerate(generators):
                w[r * wr : (r + 1) * wr].copy_(torch.rand(wr, *w.shape[1:], generator=g).mul_(2 * bound).sub_(bound))
                b[r * br : (r + 1) * br].copy_(torch.rand(br, generator=g).mul_(2 * bound).sub_(bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class RunBatchNorm2d(nn.BatchNorm2d):
    """Batch norm on run-folded tensors: channel statistics are per run by construction."""

    def __init__(self, n_runs: int, channels: int):
        super().__init__(n_runs * channels)

    def reset_parameters(self, generators: Sequence[torch.Generator] | None = None) -> None:  # noqa: D102
        super().reset_parameters()  # weight 1, bias 0, running statistics reset


def _check_shape(image_size: int, channels: Sequence[int]) -> int:
    side = image_size // 2 ** len(channels)
    if image_size % 2 ** len(channels) or side < 1:
        raise ValueError(f"image_size={image_size} must be a multiple of {2 ** len(channels)} "
                         f"({len(channels)} stride-2 stages)")
    return side


class _Compressor(nn.Module):
    """Shared latent bottleneck: flatten - linear - z_c - linear - reshape."""

    def _init_bottleneck(self, n_runs, latent_dim, channels, image_size, in_channels):
        self.n_runs, self.latent_dim = n_runs, latent_dim
        self.in_channels, self.channels = in_channels, tuple(channels)
        self.side = _check_shape(image_size, channels)
        flat = channels[-1] * self.side * self.side
        self.fc_latent = RunLinear(n_runs, flat, latent_dim)
        self.fc_expand = RunLinear(n_runs, latent_dim, flat)

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters") and isinstance(m, (RunConv2d, RunLinear, RunBatchNorm2d)):
                m.reset_parameters(generators)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (R, B, C, H, W) in [0, 1] -> z_c (R, B, latent_dim), x_hat (R, B, C, H, W) in (0, 1)."""
        R, B = x.shape[:2]
        h = self.encoder(fold_runs(x))  # (B, R*C_last, s, s)
        z_c = self.fc_latent(unfold_runs(h, R).reshape(R, B, -1))  # (R, B, L)
        h = self.fc_expand(z_c).reshape(R, B, self.channels[-1], self.side, self.side)
        x_hat = self.decoder(fold_runs(torch.relu(h)))  # (B, R*C, H, W)
        return z_c, unfold_runs(x_hat, R)


class ConvCompressor(_Compressor):
    """Framework 1: plain convolutional autoencoder.

    ``Conv(4x4, s2) - LeakyReLU(0.2)`` per stage down, a linear code, and
    ``ConvTranspose(4x4, s2) - LeakyReLU(0.2)`` per stage up, the last one
    followed by a sigmoid.

    Parameters
    ----------
    n_runs : int
    latent_dim : int
        Size of ``z_c``.
    channels : sequence of int, default (32, 64, 128, 256)
    image_size : int, default 64
        Side of the square input; a multiple of ``2 ** len(channels)``.
    in_channels : int, default 3

    Shape
    -----
    x (R, B, in_channels, S, S) -> z_c (R, B, latent_dim), x_hat (R, B, in_channels, S, S)
    """

    def __init__(self, n_runs: int, latent_dim: int, channels: Sequence[int] = (32, 64, 128, 256), image_size: int = 64, in_channels: int = 3):
        super().__init__()
        self._init_bottleneck(n_runs, latent_dim, channels, image_size, in_channels)
        down = (in_channels, *channels)
        enc = []
        for a, b in zip(down[:-1], down[1:]):
            enc += [RunConv2d(n_runs, a, b, 4, 2, 1), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc)
        up = down[::-1]
        dec = []
        for i, (a, b) in enumerate(zip(up[:-1], up[1:])):
            dec.append(RunConv2d(n_runs, a, b, 4, 2, 1, transposed=True))
            dec.append(nn.Sigmoid() if i == len(up) - 2 else nn.LeakyReLU(0.2))
        self.decoder = nn.Sequential(*dec)


class ResConvBlock(nn.Module):
    """Residual down block: ``conv4x4 s2 - BN - ReLU - conv3x3 - BN`` + ``conv1x1 s2 - BN``, then ReLU."""

    def __init__(self, n_runs: int, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(
            RunConv2d(n_runs, cin, cout, 4, 2, 1), RunBatchNorm2d(n_runs, cout), nn.ReLU(),
            RunConv2d(n_runs, cout, cout, 3, 1, 1), RunBatchNorm2d(n_runs, cout),
        )
        self.shortcut = nn.Sequential(RunConv2d(n_runs, cin, cout, 1, 2, 0), RunBatchNorm2d(n_runs, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.main(x) + self.shortcut(x))


class ResDeconvBlock(nn.Module):
    """Residual up block: ``deconv4x4 s2 - BN - ReLU - conv3x3 - BN`` + ``upsample2 - conv1x1 - BN``.

    Ends in a ReLU, or a sigmoid for the output block (``last=True``).
    """

    def __init__(self, n_runs: int, cin: int, cout: int, last: bool = False):
        super().__init__()
        self.main = nn.Sequential(
            RunConv2d(n_runs, cin, cout, 4, 2, 1, transposed=True), RunBatchNorm2d(n_runs, cout), nn.ReLU(),
            RunConv2d(n_runs, cout, cout, 3, 1, 1), RunBatchNorm2d(n_runs, cout),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), RunConv2d(n_runs, cin, cout, 1), RunBatchNorm2d(n_runs, cout))
        self.out = torch.sigmoid if last else torch.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.main(x) + self.shortcut(x))


class ResConvCompressor(_Compressor):
    """Framework 2: residual convolutional autoencoder (see the module docstring).

    Parameters and shapes as :class:`ConvCompressor`.
    """

    def __init__(self, n_runs: int, latent_dim: int, channels: Sequence[int] = (32, 64, 128, 256), image_size: int = 64, in_channels: int = 3):
        super().__init__()
        self._init_bottleneck(n_runs, latent_dim, channels, image_size, in_channels)
        down = (in_channels, *channels)
        self.encoder = nn.Sequential(*(ResConvBlock(n_runs, a, b) for a, b in zip(down[:-1], down[1:])))
        up = down[::-1]
        self.decoder = nn.Sequential(
            *(ResDeconvBlock(n_runs, a, b, last=i == len(up) - 2) for i, (a, b) in enumerate(zip(up[:-1], up[1:])))
        )


COMPRESSORS = {"conv": ConvCompressor, "resconv": ResConvCompressor}
