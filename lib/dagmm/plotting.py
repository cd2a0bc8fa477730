"""Figures of the study, with one style."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks run under papermill
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["set_style", "energy_histograms", "latent_scatter", "loss_curves", "training_length", "metric_bars", "sweep_curves", "verdict_heatmap",
           "image_pairs", "ranked_images", "roc_curves", "threshold_histograms", "critical_difference", "score_readouts"]

LABEL_COLORS = {0: "#4C72B0", 1: "#DD8452"}
LABEL_NAMES = {0: "normal", 1: "anomaly"}
REFERENCE_COLOR, METHOD_COLOR = "#8C8C8C", "#4C72B0"  # metric_bars: the reference method's bars, the others'
SPAN_RATIO = 30.0  # xscale="auto": a signed-log axis when max - min > SPAN_RATIO x the interquartile range


def set_style() -> None:
    """The study's plotting style."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "axes.titleweight": "bold"})


def spans_orders(values: np.ndarray, ratio: float = SPAN_RATIO) -> bool:
    """Whether a few extreme ``values`` would squeeze the rest into one bin of a linear histogram:
    the range (max - min) exceeds ``ratio`` times the interquartile range (always, where that is 0
    and the values are not all equal), or one of 40 equal bins would hold more than a third of the
    values (a spread-out distribution puts about a tenth in its fullest bin). Non-finite values are
    ignored."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or v.max() == v.min():
        return False
    q25, q75 = np.quantile(v, [0.25, 0.75])
    if q75 == q25 or v.max() - v.min() > ratio * (q75 - q25):
        return True
    counts, _ = np.histogram(v, bins=40)
    return counts.max() > len(v) / 3


def _signed_log(values: np.ndarray):
    """``t = asinh((x - m) / s)`` and its inverse, with ``m`` the median of ``values`` and ``s`` half
    their interquartile range (where that is 0: the smallest nonzero ``|x - m|``): linear over the
    bulk, logarithmic (in ``|x - m|``) in both tails."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    q25, m, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    dev = np.abs(v - m)
    s = (q75 - q25) / 2 or (dev[dev > 0].min() if (dev > 0).any() else 1.0)
    m, s = float(m), float(s)

    def fwd(x):
        return np.arcsinh((np.asarray(x, dtype=float) - m) / s)

    def inv(t):
        return m + s * np.sinh(np.clip(np.asarray(t, dtype=float), -700, 700))

    return fwd, inv


class _RoundTicks(matplotlib.ticker.Locator):
    """Major ticks at round numbers (0, then k x 10^j with k = 1, 5, 2, then the other digits), kept
    only where they lie at least 1/``n`` of the axis from every tick already kept: even spacing on
    any monotone axis scale, here the signed-log one."""

    def __init__(self, fwd, n: int = 7):
        self.fwd, self.n = fwd, n

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        t_lo, t_hi = self.fwd(lo), self.fwd(hi)
        gap = abs(t_hi - t_lo) / self.n
        top = int(np.ceil(np.log10(max(abs(lo), abs(hi), 1e-300))))
        exps = range(top - 18, top + 1)
        cands = [0.0] + [sign * k * 10.0**j for k in (1, 5, 2, 3, 4, 6, 7, 8, 9) for j in exps for sign in (1, -1)]
        kept: list[float] = []
        for c in cands:
            if lo <= c <= hi and all(abs(self.fwd(c) - self.fwd(k)) >= gap for k in kept):
                kept.append(c)
        return np.array(sorted(kept))


def _round_label(v, _pos=None) -> str:
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:g}"
    j = int(np.floor(np.log10(abs(v)) + 1e-9))
    k = round(abs(v) / 10.0**j, 6)
    sign = "-" if v < 0 else ""
    return f"${sign}10^{{{j}}}$" if k == 1 else f"${sign}{k:g}\\times10^{{{j}}}$"


def _class_histograms(ax, e: np.ndarray, y: np.ndarray, bins: int, xscale: str) -> bool:
    """Histograms of ``e`` for y = 0 and y = 1 on shared bins, each summing to 1 (fraction of its
    class per bin). ``xscale``: ``"linear"``, ``"signed-log"`` (:func:`_signed_log`, bins equally
    wide on screen, ticks at round numbers) or ``"auto"`` (signed-log where :func:`spans_orders`).
    Returns whether the axis is signed-log."""
    if xscale not in ("auto", "linear", "signed-log"):
        raise ValueError(f"xscale must be 'auto', 'linear' or 'signed-log', got {xscale!r}")
    ok = np.isfinite(e)
    v = e[ok]
    log = len(v) > 1 and v.max() > v.min() and (xscale == "signed-log" or (xscale == "auto" and spans_orders(v)))
    if log:
        fwd, inv = _signed_log(v)
        edges = inv(np.linspace(fwd(v.min()), fwd(v.max()), bins + 1))
        edges[0], edges[-1] = v.min(), v.max()
        ax.set_xscale("function", functions=(fwd, inv))
        ax.xaxis.set_major_locator(_RoundTicks(fwd))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_round_label))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    else:
        edges = np.histogram_bin_edges(v, bins=bins) if len(v) else bins
    for lab in (0, 1):
        sel = ok & (y == lab)
        n = int(sel.sum())
        ax.hist(e[sel], bins=edges, weights=np.full(n, 1 / max(n, 1)), alpha=0.6, color=LABEL_COLORS[lab],
                label=f"{LABEL_NAMES[lab]} (n={n})")
    return bool(log)


def _legend_room(ax, frac: float = 0.3) -> None:
    """Raise the top of the y axis so its top ``frac`` is free for the legend (linear or log y)."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log" and lo > 0 and hi > lo:
        ax.set_ylim(lo, lo * (hi / lo) ** (1 / (1 - frac)))
    elif hi > lo:
        ax.set_ylim(lo, lo + (hi - lo) / (1 - frac))


def energy_histograms(artifacts: dict[str, dict], rho: dict[str, float] | None = None, xscale: str = "auto",
                      bins: int = 60):
    """Energy of normal vs anomalous test samples, one panel per dataset.

    ``artifacts[name]`` holds ``energy`` (n,) and ``y`` (n,) of one run; a
    dashed line marks the top-rho threshold (the ``1 - rho[name]`` quantile of
    the finite energies) when ``rho`` is given. Each class's histogram sums
    to 1 (log y axis). ``xscale="auto"`` draws a panel on a signed-log x axis
    (``asinh((E - median) / s)``, s half the interquartile range; ticks in
    energy units) when its energies span orders of magnitude
    (:func:`spans_orders`), else linearly; ``"linear"`` or ``"signed-log"``
    force one for every panel.
    """
    names = list(artifacts)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        e, y = np.asarray(artifacts[name]["energy"], dtype=float), np.asarray(artifacts[name]["y"])
        log = _class_histograms(ax, e, y, bins, xscale)
        ok = np.isfinite(e)
        if rho is not None and ok.any():
            ax.axvline(np.quantile(e[ok], 1 - rho[name]), color="k", ls="--", lw=1, label=f"top {rho[name]:.1%}")
        ax.set_title(name)
        ax.set_xlabel("sample energy" + (" (signed-log scale)" if log else ""))
        ax.set_yscale("log")
        _legend_room(ax)
        ax.legend(fontsize=8, loc="upper right")
    axes[0, 0].set_ylabel("fraction of class per bin (log)")
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


def metric_bars(table, metrics=("f1", "auroc"), reference: str | None = "DAGMM", reported=None,
                reported_label: str = "reported", label_width: int = 18):
    """Mean ± std per method, one panel per (metric, dataset), each panel naming its methods.

    Parameters
    ----------
    table : DataFrame
        ``dataset``, ``method`` and ``<metric>_mean`` / ``<metric>_std`` per
        metric; each panel lists its dataset's methods top to bottom in the
        table's order.
    metrics : sequence of str
        One row of panels each.
    reference : str or None
        The method drawn in grey (the baseline the others are compared with).
    reported : DataFrame, optional
        Published single numbers (``dataset``, ``method`` and the metric
        columns), drawn as black diamonds.
    reported_label : str
        The diamonds' legend entry, e.g. where the numbers come from.
    label_width : int
        Method names longer than this many characters wrap onto more lines.

    A legend above the panels explains the bar colours, the whiskers and the
    diamonds (only the entries that appear).
    """
    import textwrap

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    datasets = list(dict.fromkeys(table["dataset"]))
    parts = {ds: table[table["dataset"] == ds].reset_index(drop=True) for ds in datasets}
    names = {ds: [textwrap.fill(str(m), label_width) for m in t["method"]] for ds, t in parts.items()}
    widest = max((len(line) for ns in names.values() for n in ns for line in n.split("\n")), default=0)
    lines = max((n.count("\n") + 1 for ns in names.values() for n in ns), default=1)
    n_bars = max((len(t) for t in parts.values()), default=1)
    panel_w, panel_h = 2.6 + 0.07 * widest, 0.8 + max(n_bars, 1) * max(0.36, 0.18 * lines)
    ncol = max(1, min(4, int(panel_w * len(datasets) // 2.9)))  # legend entries per line
    legend_h = 0.15 + 0.22 * -(-4 // ncol)
    fig, axes = plt.subplots(len(metrics), len(datasets), squeeze=False,
                             figsize=(panel_w * len(datasets), panel_h * len(metrics) + legend_h))
    drew_reported = False
    for i, metric in enumerate(metrics):
        for j, ds in enumerate(datasets):
            ax, t = axes[i, j], parts[ds]
            pos = np.arange(len(t))
            colors = [REFERENCE_COLOR if m == reference else METHOD_COLOR for m in t["method"]]
            ax.barh(pos, t[f"{metric}_mean"], xerr=t[f"{metric}_std"].fillna(0), color=colors, capsize=2,
                    error_kw=dict(ecolor="k", lw=1))
            if reported is not None and metric in reported:
                rp = reported[reported["dataset"] == ds].drop_duplicates("method").set_index("method")[metric]
                for k, m in enumerate(t["method"]):
                    if m in rp.index and np.isfinite(rp[m]):
                        ax.plot(rp[m], k, "D", color="k", ms=5, zorder=3)
                        drew_reported = True
            ax.set_yticks(pos, names[ds], fontsize=8)
            ax.set_ylim(len(t) - 0.5, -0.5)  # first method on top
            ax.set_xlim(0, 1.02)
            ax.set_xticks(np.linspace(0, 1, 6))
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="y", visible=False)
            ax.set_title(f"{ds}: {metric.upper()}", fontsize=10)
    methods = set(table["method"])
    handles = []
    if reference is not None and reference in methods:
        handles.append(Patch(color=REFERENCE_COLOR, label=f"{reference} (reference), mean over runs"))
    if methods - {reference}:
        handles.append(Patch(color=METHOD_COLOR, label="other methods, mean over runs" if reference in methods
                             else "mean over runs"))
    handles.append(Line2D([], [], color="k", lw=1, marker="|", ms=7, label="± 1 std over runs"))
    if drew_reported:
        handles.append(Line2D([], [], color="k", marker="D", ms=5, ls="", label=reported_label))
    fig.legend(handles=handles, loc="upper center", ncol=min(ncol, len(handles)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_h / fig.get_figheight()))
    return fig


def sweep_curves(sweep_agg, reference: str | None = "DAGMM", reference_sweep=None):
    """F1 (mean ± std over runs) against the percentile threshold, one panel per dataset.

    Parameters
    ----------
    sweep_agg : DataFrame
        :func:`dagmm.variants.aggregate_sweep`'s output (``dataset``,
        ``method``, ``percentile``, ``f1_mean``, ``f1_std``).
    reference : str or None
        The method every other is compared with (e.g. ``"DAGMM"``): drawn as a
        black dashed line labelled "<reference> (reference)". A panel whose
        dataset has no such rows says so, so a missing reference is never
        silent.
    reference_sweep : DataFrame, optional
        Another aggregated sweep (e.g. ``variants_dagmm_heads_sweep.csv``) that
        supplies the ``reference`` rows for the datasets ``sweep_agg`` lacks
        them for; its other methods and datasets are ignored.
    """
    import pandas as pd

    datasets = list(dict.fromkeys(sweep_agg["dataset"]))
    data = sweep_agg
    if reference is not None and reference_sweep is not None and len(reference_sweep):
        have = set(data.loc[data["method"] == reference, "dataset"])
        r = reference_sweep
        add = r[(r["method"] == reference) & r["dataset"].isin(datasets) & ~r["dataset"].isin(have)]
        data = pd.concat([data, add], ignore_index=True)
    others = [m for m in dict.fromkeys(data["method"]) if m != reference]
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(others)}
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.4), squeeze=False, sharey=True)
    for ax, ds in zip(axes[0], datasets):
        d_ds = data[data["dataset"] == ds]
        for method in others:
            d = d_ds[d_ds["method"] == method].sort_values("percentile")
            if len(d):
                ax.errorbar(d["percentile"], d["f1_mean"], yerr=d["f1_std"].fillna(0), marker="o", ms=3, capsize=2,
                            color=colors[method], label=method)
        if reference is not None:
            d = d_ds[d_ds["method"] == reference].sort_values("percentile")
            if len(d):
                ax.errorbar(d["percentile"], d["f1_mean"], yerr=d["f1_std"].fillna(0), marker="s", ms=3, capsize=2,
                            color="k", ls="--", lw=1.2, zorder=3, label=f"{reference} (reference)")
            else:
                ax.text(0.5, 0.97, f"no {reference} sweep in the table", transform=ax.transAxes, ha="center",
                        va="top", fontsize=7, color="0.35")
        ax.set_title(ds, fontsize=10)
        ax.set_xlabel("flagged: top p % of test scores")
    axes[0, 0].set_ylabel("F1 (mean ± 1 std over runs)")
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [lab for lab in handles if lab not in others] + [m for m in others if m in handles]  # reference first
    ncol = max(1, min(len(order), int(fig.get_figwidth() // 2.4)))
    if order:
        fig.legend([handles[lab] for lab in order], order, loc="upper center", ncol=ncol, fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
    rows = -(-len(order) // ncol)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.1 + 0.2 * rows) / fig.get_figheight()))
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


def _wrap_name(name, width: int = 16) -> str:
    """``name`` on lines of at most ``width`` characters, broken after ``_``, ``-`` or a space where it can."""
    import re

    lines, cur = [], ""
    for piece in re.split(r"(?<=[_\- ])", str(name)):
        while len(piece) > width:  # a piece too long on its own line: cut it
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if cur and len(cur) + len(piece.rstrip()) > width:
            lines.append(cur)
            cur = ""
        cur += piece
    lines.append(cur)
    return "\n".join(line.rstrip() for line in lines if line)


def ranked_images(X: np.ndarray, groups: dict[str, dict], kinds: np.ndarray, labels: np.ndarray, title: str = "",
                  name_width: int = 16):
    """The most and least anomalous test images (rows), framed by their true label.

    Over each image its kind (wrapped at ``name_width`` characters) and score;
    each row gets the height of its image plus its tallest title, so no title
    reaches into the row above or its neighbours.
    """
    import textwrap

    names = [g for g in ("most_anomalous", "least_anomalous") if g in groups]
    n = max(len(groups[g]["rows"]) for g in names)
    titles = {g: [f"{_wrap_name(kinds[r], name_width)}\n{s:.3g}"
                  for r, s in zip(groups[g]["rows"], groups[g]["scores"])] for g in names}
    lines = max((t.count("\n") + 1 for ts in titles.values() for t in ts), default=2)
    col_w = 1.3
    row_h = col_w + 0.14 * lines + 0.15
    fig_w = max(col_w * n, 4.0)
    head = f"{title}  (frame: blue normal, orange anomaly; kind and score above each)"
    head = textwrap.fill(head, max(30, int(fig_w * 12)))
    fig, axes = plt.subplots(len(names), n, figsize=(fig_w, row_h * len(names) + 0.2 + 0.17 * (head.count("\n") + 1)),
                             squeeze=False)
    for b, g in enumerate(names):
        rows = groups[g]["rows"]
        for i in range(n):
            ax = axes[b, i]
            if i >= len(rows):
                ax.axis("off")
                continue
            _show(ax, X[rows[i]], titles[g][i], LABEL_COLORS[int(labels[rows[i]])])
        axes[b, 0].set_ylabel(g.replace("_", " "), fontsize=8)
    fig.suptitle(head, fontsize=9)
    fig.tight_layout(h_pad=1.2, w_pad=0.4)
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


def threshold_histograms(artifacts: dict[str, dict], log: bool = False, xscale: str = "auto", bins: int = 40):
    """Scores of normal vs anomalous test images with both thresholds, one panel per entry.

    ``artifacts[name]`` holds ``scores``, ``y``, ``rho`` and ``threshold`` (the
    95th percentile of the training scores). Each class's histogram sums to 1;
    ``log`` puts the y axis on a log scale. ``xscale`` as in
    :func:`energy_histograms`: ``"auto"`` (signed-log x axis for the panels whose
    scores span orders of magnitude, e.g. ConvDAGMM's energies), ``"linear"`` or
    ``"signed-log"``.
    """
    names = list(artifacts)
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        a = artifacts[name]
        e, y = np.asarray(a["scores"], dtype=float), np.asarray(a["y"])
        ok = np.isfinite(e)
        signed_log = _class_histograms(ax, e, y, bins, xscale)
        if ok.any():
            ax.axvline(np.quantile(e[ok], 1 - a["rho"]), color="k", ls="--", lw=1, label=f"top-rho ({a['rho']:.0%})")
        if np.isfinite(a["threshold"]):
            ax.axvline(a["threshold"], color="crimson", ls="-.", lw=1, label="train 95th pct")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score" + (" (signed-log scale)" if signed_log else ""))
        if log:
            ax.set_yscale("log")
        _legend_room(ax)
        ax.legend(fontsize=7, loc="upper right")
    axes[0, 0].set_ylabel("fraction of class per bin" + (" (log)" if log else ""))
    fig.tight_layout()
    return fig


def critical_difference(mean_ranks, pairwise, cd: float | None = None, alpha: float = 0.05, title: str = ""):
    """Critical-difference diagram (Demšar, 2006): methods on their mean-rank axis (1 = best, at the
    left), those that the post-hoc test does not tell apart (``pairwise`` p >= ``alpha``) joined by a bar.

    ``mean_ranks``: Series method -> mean rank; ``pairwise``: DataFrame of post-hoc p-values
    (:func:`dagmm.ranking.friedman_nemenyi`); ``cd``: the critical difference, drawn as a scale bar.
    """
    import scikit_posthocs as sp

    fig, ax = plt.subplots(figsize=(10, 0.32 * len(mean_ranks) + 1.6))
    sp.critical_difference_diagram(mean_ranks, pairwise, ax=ax, alpha=alpha, label_fmt_left="{label} ({rank:.1f})",
                                   label_fmt_right="({rank:.1f}) {label}")
    if cd is not None:
        ax.set_title(f"{title}  (Nemenyi CD = {cd:.2f} at α = {alpha})" if title else f"Nemenyi CD = {cd:.2f} at α = {alpha}",
                     fontsize=10)
    elif title:
        ax.set_title(title, fontsize=10)
    return fig


def score_readouts(table, readouts, reference: str | None = None, title: str = ""):
    """Per data set mean AUROC of several readouts of one model (e.g. energy, reconstruction error, codes only).

    ``table``: rows ``dataset, score, auroc_mean`` (and ``auroc_std``); ``readouts``: dict score -> label,
    drawn in that order; ``reference``: a score whose value sorts the data sets. One dot per readout
    and data set, a dashed line at chance (0.5).
    """
    piv = table.pivot(index="dataset", columns="score", values="auroc_mean")[list(readouts)]
    piv = piv.sort_values(reference or list(readouts)[0])
    fig, ax = plt.subplots(figsize=(8, 0.34 * len(piv) + 1.4))
    markers = ["o", "s", "^", "D", "v"]
    for i, (score, label) in enumerate(readouts.items()):
        ax.scatter(piv[score], np.arange(len(piv)), marker=markers[i % len(markers)], label=label, zorder=3, s=28)
    for j, (_, row) in enumerate(piv.iterrows()):
        ax.plot([row.min(), row.max()], [j, j], color=REFERENCE_COLOR, lw=0.8, zorder=1)
    ax.axvline(0.5, ls="--", color=REFERENCE_COLOR, lw=1)
    ax.set_yticks(np.arange(len(piv)), piv.index)
    ax.set_xlabel("AUROC (mean over runs)")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(readouts), frameon=False, fontsize=9)
    if title:
        ax.set_title(title, pad=28)
    return fig
