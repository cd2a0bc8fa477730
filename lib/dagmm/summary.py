"""Every method against DAGMM: paired tests over the shared run seeds (notebook 07).

Every notebook that runs tabular methods under the protocol writes its
per-run results (``*_runs.csv``: dataset, method, run, seed, metrics). Runs
with the same dataset and seed share the split, so a method and DAGMM can be
compared pairwise: the Wilcoxon signed-rank test on the per-seed differences
(two-sided, zero differences dropped as scipy's default ``zero_method="wilcox"``
does), with the median difference as its effect size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, wilcoxon

from .protocol import METRICS

__all__ = ["load_runs", "paired_tests", "verdict", "summary_table", "holm", "verdict_lines", "scaling_sentence"]

RUN_FILES = ("table2_dagmm_runs.csv", "table2_full_runs.csv", "variants_*_runs.csv")


def load_runs(tables: str | Path, patterns=RUN_FILES, reference: str = "DAGMM") -> pd.DataFrame:
    """Concatenate the per-run tables under ``tables``.

    The ``reference`` method's runs are taken from the first file that has
    them (notebook 01's ``table2_dagmm_runs.csv``) and nowhere else; for any
    other method a later file wins on duplicate (dataset, method, seed) rows.
    """
    tables = Path(tables)
    frames = []
    for pat in patterns:
        for f in sorted(tables.glob(pat)):
            d = pd.read_csv(f)
            d["source_file"] = f.name
            frames.append(d)
    if not frames:
        raise FileNotFoundError(f"no per-run tables ({', '.join(patterns)}) under {tables}")
    runs = pd.concat(frames, ignore_index=True)
    ref = runs[runs.method == reference]
    if len(ref):
        first = ref.source_file.iloc[0]
        runs = runs[(runs.method != reference) | (runs.source_file == first)]
    return runs.drop_duplicates(["dataset", "method", "seed"], keep="last").reset_index(drop=True)


def paired_tests(runs: pd.DataFrame, reference: str = "DAGMM", metrics=("f1", "auroc")) -> pd.DataFrame:
    """Each method vs ``reference`` on every dataset, paired on seeds.

    Returns one row per (dataset, method, metric) with the number of shared
    seeds, the mean of each, the median per-seed difference (method minus
    reference), the direction of the signed-rank statistic (+1 when the
    positive differences outrank the negative ones, -1 when the reverse, 0
    when they balance), the two-sided Wilcoxon signed-rank p-value (NaN with
    fewer than 5 pairs, or when every difference is zero) and that p-value
    Holm-adjusted over all tests of the same metric (``p_holm``): with many
    methods and datasets some raw p < 0.05 are expected by chance.
    """
    rows = []
    for dataset, d in runs.groupby("dataset", sort=False):
        ref = d[d.method == reference].set_index("seed")
        if ref.empty:
            continue
        for method, m in d[d.method != reference].groupby("method", sort=False):
            m = m.set_index("seed")
            seeds = ref.index.intersection(m.index)
            for metric in metrics:
                a, b = m.loc[seeds, metric].to_numpy(float), ref.loc[seeds, metric].to_numpy(float)
                diff = a - b
                p = np.nan
                if len(seeds) >= 5 and np.any(diff != 0):
                    p = float(wilcoxon(a, b).pvalue)
                nz = diff[diff != 0]
                ranks = rankdata(np.abs(nz))
                direction = int(np.sign(ranks[nz > 0].sum() - ranks[nz < 0].sum())) if len(nz) else 0
                rows.append(dict(dataset=dataset, method=method, metric=metric, n_pairs=len(seeds),
                                 mean=a.mean() if len(a) else np.nan, reference_mean=b.mean() if len(b) else np.nan,
                                 median_diff=float(np.median(diff)) if len(diff) else np.nan, direction=direction, p_value=p))
    out = pd.DataFrame(rows, columns=["dataset", "method", "metric", "n_pairs", "mean", "reference_mean", "median_diff",
                                      "direction", "p_value"])  # the columns even with no pairs (no reference runs)
    out["p_holm"] = np.nan
    if len(out):
        for metric, idx in out.groupby("metric").groups.items():
            out.loc[idx, "p_holm"] = holm(out.loc[idx, "p_value"].to_numpy())
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of the p-values ``p`` (NaN stay NaN and are not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    m = len(order)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def verdict(direction: float, p_value: float, alpha: float = 0.05, n_pairs: int = 20) -> str:
    """``better`` / ``worse`` than the reference at ``alpha`` (direction from the signed ranks),
    ``no significant difference``, or ``not tested`` (fewer than 5 pairs)."""
    if n_pairs < 5:
        return "not tested (fewer than 5 paired runs)"
    if not np.isfinite(p_value) or p_value >= alpha:
        return "no significant difference"
    return "better" if direction > 0 else "worse"


def summary_table(runs: pd.DataFrame, tests: pd.DataFrame, published: pd.DataFrame | None = None,
                  alpha: float = 0.05) -> pd.DataFrame:
    """One row per (dataset, method): mean ± std of every metric, the paired
    tests against DAGMM on F1 and AUROC with a verdict each (on the
    Holm-adjusted p-value), and the seeds' / paper's reported F1 and AUROC
    (and the threshold setting they were reported at) where they report that
    method on that dataset."""
    g = runs.groupby(["dataset", "method"], sort=False)
    out = g.agg(n_runs=("run", "size"), n_failed=("failed", "sum"))
    for m in METRICS:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    out = out.reset_index()
    for metric in ("f1", "auroc"):
        t = tests[tests.metric == metric][["dataset", "method", "n_pairs", "median_diff", "direction", "p_value", "p_holm"]]
        t = t.rename(columns={"median_diff": f"diff_{metric}_vs_dagmm", "p_value": f"p_{metric}_vs_dagmm",
                              "p_holm": f"p_holm_{metric}_vs_dagmm", "direction": f"_dir_{metric}", "n_pairs": f"_n_{metric}"})
        out = out.merge(t, on=["dataset", "method"], how="left")
        out[f"verdict_{metric}"] = [
            "" if m == "DAGMM" or pd.isna(n) else verdict(d, p, alpha, int(n))
            for m, n, d, p in zip(out.method, out[f"_n_{metric}"], out[f"_dir_{metric}"], out[f"p_holm_{metric}_vs_dagmm"])
        ]
        out = out.drop(columns=[f"_dir_{metric}", f"_n_{metric}"])
    if published is not None:
        pub = published.drop_duplicates(["dataset", "method"], keep="first")
        pub = pub[["dataset", "method", "source", "setting", "f1", "auroc"]].rename(
            columns={"source": "reported_source", "setting": "reported_setting", "f1": "reported_f1", "auroc": "reported_auroc"})
        out = out.merge(pub, on=["dataset", "method"], how="left")
    return _ordered(out)


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by dataset (the paper's order), then DAGMM, its untrained network, the baselines in Table 2's order,
    and every other method in the order it first appears."""
    from .baselines.suite import ALL_METHODS
    from .configs import PAPER_SETTINGS

    datasets = {d: i for i, d in enumerate(PAPER_SETTINGS)}
    known = ["DAGMM", "DAGMM (untrained)", *[m for m in ALL_METHODS if m != "DAGMM"]]
    rest = [m for m in dict.fromkeys(table.method) if m not in known]
    methods = {m: i for i, m in enumerate(known + rest)}
    key = table.dataset.map(lambda d: datasets.get(d, len(datasets))) * len(methods) + table.method.map(methods)
    return table.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def verdict_lines(summary: pd.DataFrame, alpha: float = 0.05, list_all: bool = False) -> list[str]:
    """One Markdown bullet per dataset of ``summary.csv`` (:func:`summary_table`): DAGMM's F1
    beside the paper's, then which methods are better than, worse than, or not
    significantly different from DAGMM on F1 and on AUROC (Holm-adjusted p < ``alpha``).
    ``list_all``: name the methods with no significant difference and those not tested
    (fewer than 5 paired runs) too, instead of counting the former."""
    lines = []
    for name, d in summary.groupby("dataset", sort=False):
        ref = d[d.method == "DAGMM"]
        head = f"**{name}**"
        if len(ref):
            r = ref.iloc[0]
            head += f": DAGMM F1 {r.f1_mean:.3f} ± {r.f1_std:.3f}, AUROC {r.auroc_mean:.3f} ± {r.auroc_std:.3f}"
            if pd.notna(r.get("reported_f1")):
                head += f" (paper F1 {r.reported_f1:.4f}, difference {r.f1_mean - r.reported_f1:+.3f})"
        parts = []
        for metric, label in (("f1", "F1"), ("auroc", "AUROC")):
            said = []
            for word, v in (("better than DAGMM", "better"), ("worse", "worse")):
                ms = d[d[f"verdict_{metric}"] == v].method.tolist()
                said.append(f"{word}: {', '.join(ms) if ms else 'none'}")
            same = d[d[f"verdict_{metric}"] == "no significant difference"].method.tolist()
            if list_all:
                said.append(f"no significant difference: {', '.join(same) if same else 'none'}")
                untested = d[d[f"verdict_{metric}"].astype(str).str.startswith("not tested")].method.tolist()
                if untested:
                    said.append(f"not tested (fewer than 5 paired runs): {', '.join(untested)}")
            else:
                said.append(f"no significant difference: {len(same)} methods")
            parts.append(f"on {label}, " + "; ".join(said))
        lines.append(f"* {head}. Paired over seeds (Holm-adjusted p < {alpha}), " + ". And ".join(parts) + ".")
    return lines


def scaling_sentence(summary: pd.DataFrame, tolerance: float = 0.02) -> str:
    """Which input scaling reproduces the paper's DAGMM F1 on which dataset, from ``summary.csv``'s
    ``DAGMM`` (min-max) and ``DAGMM (z-score)`` rows: "reproduces" is within ``tolerance`` of the
    paper's F1, or above it. Empty when the table has no z-score rows."""
    said = []
    for name, d in summary.groupby("dataset", sort=False):
        rows = d.set_index("method")
        if not {"DAGMM", "DAGMM (z-score)"} <= set(rows.index) or pd.isna(rows.loc["DAGMM", "reported_f1"]):
            continue
        paper = rows.loc["DAGMM", "reported_f1"]
        ok = [label for m, label in (("DAGMM", "min-max"), ("DAGMM (z-score)", "z-score"))
              if rows.loc[m, "f1_mean"] >= paper - tolerance]
        said.append(f"{name}: {' and '.join(ok) if ok else 'neither'} (paper {paper:.4f}; min-max "
                    f"{rows.loc['DAGMM', 'f1_mean']:.3f}, z-score {rows.loc['DAGMM (z-score)', 'f1_mean']:.3f})")
    if not said:
        return ""
    return ("The paper does not say how it scaled its inputs. Which scaling reproduces its DAGMM F1 (within "
            f"{tolerance} or above), per dataset: " + "; ".join(said) + ". Every comparison with DAGMM uses min-max, "
            "the scaling every other method here uses, a rule fixed before the results.")
