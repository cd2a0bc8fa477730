"""Figures of Table 2 (every method, every dataset) and Table 3 (contamination)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import plotting  # noqa: F401  (sets the Agg backend)
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["methods_by_datasets", "contamination_curves"]

OURS, PAPER = "#4C72B0", "#C44E52"


def methods_by_datasets(table: pd.DataFrame, methods: Sequence[str], datasets: Sequence[str]):
    """F1 (top row) and AUROC (bottom row) of every method on every dataset.

    Ours: mean with a bar of one standard deviation over runs; the paper's F1:
    an open diamond where it reports one (it reports no AUROC); AUROC 0.5
    (chance): a dotted line. The legend names every marker of any panel.
    ``table`` has the columns of ``table2_full.csv``.
    """
    methods = [m for m in methods if m in set(table.method)]
    ypos = {m: i for i, m in enumerate(methods)}
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.3 * len(datasets), 0.32 * len(methods) * 2 + 1.6),
                             sharey=True, squeeze=False)
    for col, name in enumerate(datasets):
        t = table[table.dataset == name]
        for row, metric in enumerate(("f1", "auroc")):
            ax = axes[row, col]
            y = np.array([ypos[m] for m in t.method])
            ax.errorbar(t[f"{metric}_mean"], y, xerr=t[f"{metric}_std"], fmt="o", color=OURS, ms=4, capsize=2, label="ours")
            if metric == "f1" and "paper_f1" in t:
                p = t[t.paper_f1.notna()]
                ax.plot(p.paper_f1, [ypos[m] for m in p.method], "D", mfc="none", color=PAPER, ms=6, label="paper")
            if metric == "auroc":
                ax.axvline(0.5, color="grey", lw=0.8, ls=":", label="chance (AUROC 0.5)")
            ax.set_xlim(-0.03, 1.03)
            ax.set_title(f"{name}: {'F1' if metric == 'f1' else 'AUROC'}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_yticks(range(len(methods)))
    axes[0, 0].set_yticklabels(methods)
    axes[0, 0].invert_yaxis()
    legend = {}  # every marker and line of every panel, once
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    fig.legend(list(legend.values()), list(legend), loc="upper center", ncol=len(legend), frameon=False,
               bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout()
    return fig


def contamination_curves(table: pd.DataFrame, metric: str = "f1"):
    """Mean ``metric`` (bars: one standard deviation) against the contamination level c, one line per method.

    ``table`` has the columns of ``table3_contamination.csv`` (``c`` in [0, 1]);
    the paper's values, where present, are open diamonds.
    """
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for i, (method, t) in enumerate(table.groupby("method", sort=False)):
        t = t.sort_values("c")
        color = f"C{i}"
        ax.errorbar(100 * t.c, t[f"{metric}_mean"], yerr=t[f"{metric}_std"], fmt="-o", color=color, ms=4, capsize=3, label=method)
        col = f"paper_{metric}"
        if col in t and t[col].notna().any():
            p = t[t[col].notna()]
            ax.plot(100 * p.c, p[col], "D", mfc="none", color=color, ms=7, label=f"{method} (paper)")
    ax.set_xlabel("contamination of the training set, c (%)")
    ax.set_ylabel(metric.upper() if metric != "f1" else "F1")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
