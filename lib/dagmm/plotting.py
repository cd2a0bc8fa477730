"""Figures of the study, with one style."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks run under papermill
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["set_style", "energy_histograms", "latent_scatter", "loss_curves"]

LABEL_COLORS = {0: "#4C72B0", 1: "#DD8452"}
LABEL_NAMES = {0: "normal", 1: "anomaly"}


def set_style() -> None:
    """The study's plotting style."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "axes.titleweight": "bold"})


def energy_histograms(artifacts: dict[str, dict], rho: dict[str, float] | None = None):
    """Energy of normal vs anomalous test samples, one panel per dataset.

    ``artifacts[name]`` holds ``energy`` (n,) and ``y`` (n,) of one run; a
    dashed line marks the top-rho threshold when ``rho`` is given.
    """
    names = list(artifacts)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        e, y = artifacts[name]["energy"], artifacts[name]["y"]
        ok = np.isfinite(e)
        bins = np.histogram_bin_edges(e[ok], bins=60)
        for lab in (0, 1):
            sel = ok & (y == lab)
            ax.hist(e[sel], bins=bins, density=True, alpha=0.6, color=LABEL_COLORS[lab], label=f"{LABEL_NAMES[lab]} (n={sel.sum()})")
        if rho is not None:
            ax.axvline(np.quantile(e[ok], 1 - rho[name]), color="k", ls="--", lw=1, label=f"top {rho[name]:.1%}")
        ax.set_title(name)
        ax.set_xlabel("sample energy")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("density (log)")
    fig.tight_layout()
    return fig


def latent_scatter(z: np.ndarray, y: np.ndarray, title: str = "", max_points: int = 20000, seed: int = 0):
    """The learned space z = [z_c, rel. Euclidean, cosine] coloured by label (paper, Fig. 3)."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(z))[:max_points]
    z, y = z[idx], y[idx]
    fig = plt.figure(figsize=(11, 4.2))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax2 = fig.add_subplot(1, 2, 2)
    for lab in (0, 1):
        s = y == lab
        ax3.scatter(z[s, 0], z[s, -2], z[s, -1], s=3, alpha=0.5, color=LABEL_COLORS[lab], label=LABEL_NAMES[lab])
        ax2.scatter(z[s, 0], z[s, -2], s=3, alpha=0.5, color=LABEL_COLORS[lab], label=LABEL_NAMES[lab])
    ax3.set_xlabel("z_c[0]")
    ax3.set_ylabel("rel. Euclidean")
    ax3.set_zlabel("cosine")
    ax2.set_xlabel("z_c[0]")
    ax2.set_ylabel("rel. Euclidean distance")
    ax2.legend(markerscale=4)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(losses: dict[str, np.ndarray]):
    """Training loss per epoch (one run per dataset)."""
    names = list(losses)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(np.arange(1, len(losses[name]) + 1), losses[name])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_xscale("log")
    axes[0, 0].set_ylabel("training loss")
    fig.tight_layout()
    return fig
