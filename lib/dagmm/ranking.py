"""Comparing many methods over many data sets: mean ranks, Friedman and Nemenyi tests, wins.

Demšar (JMLR 2006): rank the methods on each data set by their mean score
(1 = best, ties share the mean rank), average the ranks over the data sets,
test whether any differ with the Friedman test, and, after it, every pair
with the Nemenyi test (scikit-posthocs' ``posthoc_nemenyi_friedman``). Two
methods whose mean ranks differ by less than the critical difference
``q_alpha * sqrt(k (k + 1) / (6 N))`` (k methods, N data sets) are not told
apart; the critical-difference diagram (:func:`dagmm.plotting.critical_difference`)
joins them with a bar.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["score_matrix", "mean_ranks", "friedman_nemenyi", "critical_difference", "wins_against"]


DECIMALS = 4  # scores are compared at this precision: ties there are ties, whatever the float rounding of a table


def score_matrix(table: pd.DataFrame, metric: str = "auroc", decimals: int = DECIMALS) -> pd.DataFrame:
    """Data sets x methods of ``<metric>_mean`` from an aggregated table (``dataset, method, <metric>_mean``),
    rounded to ``decimals`` so that equal means (e.g. F1 of two methods that flag the same rows) rank as ties
    whether computed from the runs in memory or from a CSV copy of them."""
    return table.pivot(index="dataset", columns="method", values=f"{metric}_mean").round(decimals)


def mean_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Per data set ranks (1 = highest score; ties share the mean rank) and their mean, best first.

    Parameters
    ----------
    scores : DataFrame (data sets, methods), higher = better, no NaN

    Returns
    -------
    DataFrame indexed by method: ``mean_rank``, ``mean_score``, ``best_on`` (data sets where it ranks first, ties counted)
    """
    if scores.isna().any().any():
        missing = scores.columns[scores.isna().any()].tolist()
        raise ValueError(f"every method needs a score on every data set; missing for {missing}")
    ranks = scores.rank(axis=1, ascending=False, method="average")
    out = pd.DataFrame({"mean_rank": ranks.mean(), "mean_score": scores.mean(), "best_on": (ranks == ranks.min(axis=1).values[:, None]).sum()})
    return out.sort_values("mean_rank")


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of mean ranks for ``k`` methods over ``n`` data sets."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def friedman_nemenyi(scores: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Friedman test over the data sets, then Nemenyi's pairwise p-values.

    Returns
    -------
    dict with ``statistic`` and ``p_value`` (Friedman), ``significant``
    (``p_value < alpha``: only then do Nemenyi's pairwise tests apply),
    ``pairwise`` (DataFrame methods x methods of Nemenyi p-values), ``cd``
    (critical difference at ``alpha``), ``k`` and ``n``.
    """
    import scikit_posthocs as sp

    k, n = scores.shape[1], scores.shape[0]
    if k < 3 or n < 2:
        raise ValueError(f"the Friedman test needs at least 3 methods and 2 data sets, got {k} and {n}")
    stat, p = stats.friedmanchisquare(*[scores[c].to_numpy() for c in scores.columns])
    pairwise = sp.posthoc_nemenyi_friedman(scores.to_numpy())
    pairwise.index = pairwise.columns = scores.columns
    return dict(statistic=float(stat), p_value=float(p), significant=bool(p < alpha), pairwise=pairwise,
                cd=critical_difference(k, n, alpha), k=k, n=n)


def wins_against(scores: pd.DataFrame, reference: str, margin: float = 0.0) -> pd.DataFrame:
    """Wins, ties and losses of every method against ``reference`` over the data sets, with a test.

    A win is a mean score above the reference's by more than ``margin``; a
    loss below it by more than ``margin``; anything else a tie. ``p_value``:
    the two-sided Wilcoxon signed-rank test of the per-set differences (a
    comparison with a control, as Demšar recommends over Nemenyi's all-pairs
    test); ``p_holm``: Holm-adjusted over the methods.
    """
    from .summary import holm

    if reference not in scores.columns:
        raise ValueError(f"{reference!r} is not one of the methods {list(scores.columns)}")
    diff = scores.sub(scores[reference], axis=0).drop(columns=reference)
    out = pd.DataFrame({"wins": (diff > margin).sum(), "ties": (diff.abs() <= margin).sum(), "losses": (diff < -margin).sum(),
                        "mean_difference": diff.mean()})
    out["p_value"] = [stats.wilcoxon(diff[m]).pvalue if (diff[m] != 0).any() else 1.0 for m in diff.columns]
    out["p_holm"] = holm(out["p_value"].to_numpy())
    return out
