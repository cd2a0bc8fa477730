"""Figures of the study, with one style."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks run under papermill
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["set_style", "energy_histograms", "latent_scatter", "loss_curves", "training_length", "metric_bars", "sweep_curves", "verdict_heatmap",
           "image_pairs", "ranked_images", "roc_curves", "threshold_histograms"]

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


def training_length(per_run, paper_f1: float | None = None, title: str = ""):
    """F1 and AUROC against the epochs of training (mean ± std over runs, log x axis).

    Parameters
    ----------
    per_run : DataFrame
        :func:`dagmm.study.epochs_investigation`'s output: one colour per
        variant, solid lines for the energy, dashed for the reconstruction
        error, each run of the energy as a faint dot of its variant's colour;
        variants are shifted slightly along x so their error bars do not hide
        each other.
    paper_f1 : float, optional
        The paper's F1, drawn as a dotted line.
    title : str

    Returns
    -------
    matplotlib Figure
    """
    variants = list(dict.fromkeys(per_run["variant"]))
    colors = dict(zip(variants, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    shift = {v: 1.04 ** (i - (len(variants) - 1) / 2) for i, v in enumerate(variants)}  # multiplicative: log axis
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("f1", "auroc")):
        for (variant, score), d in per_run.groupby(["variant", "score"], sort=False):
            energy = score == "energy"
            g = d.groupby("epochs")[metric]
            if energy:
                ax.plot(d["epochs"] * shift[variant], d[metric], ".", color=colors[variant], alpha=0.3, ms=3, zorder=1)
            ax.errorbar(g.mean().index * shift[variant], g.mean(), yerr=g.std(ddof=1).fillna(0),
                        marker="o" if energy else "s", ls="-" if energy else "--", color=colors[variant], capsize=3,
                        zorder=2, label=f"{variant}, {'energy' if energy else 'reconstruction error'}")
        if metric == "f1" and paper_f1 is not None:
            ax.axhline(paper_f1, ls=":", color="k", lw=1, label=f"paper, DAGMM ({paper_f1:.3f})")
        ax.set_xscale("log")
        ticks = sorted(per_run["epochs"].unique())
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("epochs of training")
        ax.set_ylabel("F1 (top-ρ rule)" if metric == "f1" else "AUROC")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(labels) - 1) // 3), 1, 1))
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


def verdict_heatmap(summary, metric: str = "f1", alpha: float = 0.05):
    """Median per-seed difference to DAGMM (method rows, dataset columns); cells marked * where the
    Holm-adjusted p < ``alpha``."""
    import pandas as pd
    import seaborn as sns

    s = summary[summary["method"] != "DAGMM"]
    diff = s.pivot_table(index="method", columns="dataset", values=f"diff_{metric}_vs_dagmm", sort=False)
    pval = s.pivot_table(index="method", columns="dataset", values=f"p_holm_{metric}_vs_dagmm", sort=False)
    annot = diff.map(lambda v: "" if pd.isna(v) else f"{v:+.3f}") + pval.reindex_like(diff).map(
        lambda p: "*" if pd.notna(p) and p < alpha else "")
    fig, ax = plt.subplots(figsize=(1.6 * diff.shape[1] + 3, 0.42 * diff.shape[0] + 1.4))
    lim = float(np.nanmax(np.abs(diff.to_numpy()))) if diff.size and np.isfinite(diff.to_numpy()).any() else 1.0
    sns.heatmap(diff, annot=annot, fmt="", cmap="RdBu", center=0, vmin=-lim, vmax=lim, ax=ax,
                cbar_kws={"label": f"median {metric.upper()} difference to DAGMM"})
    ax.set_title(f"{metric.upper()} vs DAGMM, paired over seeds (* Wilcoxon, Holm-adjusted p < {alpha:g})", fontsize=10)
    ax.set_ylabel("")
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
