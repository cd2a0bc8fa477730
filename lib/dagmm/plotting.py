"""Figures of the study, with one style."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks run under papermill
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["set_style", "energy_histograms", "latent_scatter", "loss_curves", "image_pairs", "ranked_images", "roc_curves", "threshold_histograms"]

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


def _show(ax, img: np.ndarray, title: str = "", color: str | None = None) -> None:
    ax.imshow(np.clip(np.asarray(img).transpose(1, 2, 0), 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=7, color=color or "k")
    if color:
        for sp in ax.spines.values():
            sp.set_edgecolor(color)
            sp.set_linewidth(2)


def image_pairs(X: np.ndarray, groups: dict[str, dict], kinds: np.ndarray, title: str = ""):
    """Inputs above their reconstructions, one block of two rows per group.

    ``groups[name]`` holds ``rows`` (indices into ``X`` (N, 3, S, S)),
    ``x_hat`` (n, 3, S, S) and ``scores`` (n,); ``kinds`` (N,) labels each image.
    """
    names = list(groups)
    n = max(len(groups[g]["rows"]) for g in names)
    fig, axes = plt.subplots(2 * len(names), n, figsize=(1.25 * n, 2.7 * len(names)), squeeze=False)
    for b, g in enumerate(names):
        rows, xh, sc = groups[g]["rows"], groups[g]["x_hat"], groups[g]["scores"]
        for i in range(n):
            top, bot = axes[2 * b, i], axes[2 * b + 1, i]
            if i >= len(rows):
                top.axis("off")
                bot.axis("off")
                continue
            _show(top, X[rows[i]], f"{kinds[rows[i]]}\n{sc[i]:.3g}")
            _show(bot, xh[i])
        axes[2 * b, 0].set_ylabel(f"{g}\ninput", fontsize=8)
        axes[2 * b + 1, 0].set_ylabel("reconstruction", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ranked_images(X: np.ndarray, groups: dict[str, dict], kinds: np.ndarray, labels: np.ndarray, title: str = ""):
    """The most and least anomalous test images (rows), framed by their true label."""
    names = [g for g in ("most_anomalous", "least_anomalous") if g in groups]
    n = max(len(groups[g]["rows"]) for g in names)
    fig, axes = plt.subplots(len(names), n, figsize=(1.25 * n, 1.55 * len(names)), squeeze=False)
    for b, g in enumerate(names):
        rows, sc = groups[g]["rows"], groups[g]["scores"]
        for i in range(n):
            ax = axes[b, i]
            if i >= len(rows):
                ax.axis("off")
                continue
            _show(ax, X[rows[i]], f"{kinds[rows[i]]}\n{sc[i]:.3g}", LABEL_COLORS[int(labels[rows[i]])])
        axes[b, 0].set_ylabel(g.replace("_", " "), fontsize=8)
    fig.suptitle(f"{title}  (frame: blue normal, orange anomaly; score under each)", fontsize=9)
    fig.tight_layout()
    return fig


def roc_curves(curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]):
    """ROC curves, one panel per dataset, one colour per method, one line per run.

    ``curves[dataset][method]`` is a list of ``(y, scores)`` pairs (one per run).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 4.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        for c, (method, runs) in zip(colors, curves[name].items()):
            aucs = []
            for i, (y, s) in enumerate(runs):
                if not np.isfinite(s).all():
                    continue
                fpr, tpr, _ = roc_curve(y, s)
                aucs.append(roc_auc_score(y, s))
                ax.plot(fpr, tpr, color=c, alpha=0.6, lw=1, label=None if i else method)
            if aucs:
                ax.plot([], [], color=c, lw=0, label=f"  AUROC {np.mean(aucs):.3f} (mean of {len(aucs)})")
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.set_title(name)
        ax.set_xlabel("false positive rate")
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("true positive rate")
    fig.tight_layout()
    return fig


def threshold_histograms(artifacts: dict[str, dict], log: bool = False):
    """Scores of normal vs anomalous test images with both thresholds, one panel per entry.

    ``artifacts[name]`` holds ``scores``, ``y``, ``rho`` and ``threshold`` (the
    95th percentile of the training scores).
    """
    names = list(artifacts)
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        a = artifacts[name]
        e, y = a["scores"], a["y"]
        ok = np.isfinite(e)
        bins = np.histogram_bin_edges(e[ok], bins=40)
        for lab in (0, 1):
            sel = ok & (y == lab)
            ax.hist(e[sel], bins=bins, density=True, alpha=0.6, color=LABEL_COLORS[lab], label=f"{LABEL_NAMES[lab]} (n={sel.sum()})")
        if ok.any():
            ax.axvline(np.quantile(e[ok], 1 - a["rho"]), color="k", ls="--", lw=1, label=f"top-rho ({a['rho']:.0%})")
        if np.isfinite(a["threshold"]):
            ax.axvline(a["threshold"], color="crimson", ls="-.", lw=1, label="train 95th pct")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("density")
    fig.tight_layout()
    return fig
