"""Figures of the study, with one style."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks run under papermill
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["set_style", "energy_histograms", "latent_scatter", "loss_curves", "metric_bars", "sweep_curves", "verdict_heatmap"]

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


def metric_bars(table, metrics=("f1", "auroc"), reference: str | None = "DAGMM", reported=None):
    """Mean ± std per method, one panel per (metric, dataset); ``reported``
    (a frame with dataset, method and the metric columns) adds the published
    single numbers as black diamonds."""
    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(len(metrics), len(datasets), figsize=(3.6 * len(datasets), 2.6 * len(metrics) + 0.6),
                             squeeze=False, sharey="row")
    for i, metric in enumerate(metrics):
        for j, ds in enumerate(datasets):
            ax = axes[i, j]
            t = table[table["dataset"] == ds].reset_index(drop=True)
            colors = ["#8C8C8C" if m == reference else "#4C72B0" for m in t["method"]]
            ax.barh(np.arange(len(t)), t[f"{metric}_mean"], xerr=t[f"{metric}_std"].fillna(0), color=colors, capsize=2)
            if reported is not None and metric in reported:
                rp = reported[reported["dataset"] == ds].set_index("method")[metric]
                for k, m in enumerate(t["method"]):
                    if m in rp.index and np.isfinite(rp[m]):
                        ax.plot(rp[m], k, "kD", ms=5, label="reported" if k == 0 else None)
            ax.set_yticks(np.arange(len(t)))
            ax.set_yticklabels(t["method"] if j == 0 else [""] * len(t), fontsize=8)
            ax.set_xlim(0, 1.02)
            ax.set_title(f"{ds}: {metric.upper()}", fontsize=10)
            ax.invert_yaxis()
    fig.tight_layout()
    return fig


def sweep_curves(sweep_agg):
    """F1 (mean ± std over runs) against the percentile threshold, one panel per dataset."""
    datasets = list(dict.fromkeys(sweep_agg["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.2), squeeze=False, sharey=True)
    for ax, ds in zip(axes[0], datasets):
        for method, d in sweep_agg[sweep_agg["dataset"] == ds].groupby("method", sort=False):
            ax.errorbar(d["percentile"], d["f1_mean"], yerr=d["f1_std"].fillna(0), marker="o", ms=3, capsize=2, label=method)
        ax.set_title(ds, fontsize=10)
        ax.set_xlabel("flagged: top p % of test scores")
    axes[0, 0].set_ylabel("F1")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def verdict_heatmap(summary, metric: str = "f1"):
    """Median per-seed difference to DAGMM (method rows, dataset columns); cells marked * where p < 0.05."""
    import pandas as pd
    import seaborn as sns

    s = summary[summary["method"] != "DAGMM"]
    diff = s.pivot_table(index="method", columns="dataset", values=f"diff_{metric}_vs_dagmm", sort=False)
    pval = s.pivot_table(index="method", columns="dataset", values=f"p_{metric}_vs_dagmm", sort=False)
    annot = diff.map(lambda v: "" if pd.isna(v) else f"{v:+.3f}") + pval.reindex_like(diff).map(
        lambda p: "*" if pd.notna(p) and p < 0.05 else "")
    fig, ax = plt.subplots(figsize=(1.6 * diff.shape[1] + 3, 0.42 * diff.shape[0] + 1.4))
    lim = float(np.nanmax(np.abs(diff.to_numpy()))) if diff.size and np.isfinite(diff.to_numpy()).any() else 1.0
    sns.heatmap(diff, annot=annot, fmt="", cmap="RdBu", center=0, vmin=-lim, vmax=lim, ax=ax,
                cbar_kws={"label": f"median {metric.upper()} difference to DAGMM"})
    ax.set_title(f"{metric.upper()} vs DAGMM, paired over seeds (* Wilcoxon p < 0.05)", fontsize=10)
    ax.set_ylabel("")
    fig.tight_layout()
    return fig
