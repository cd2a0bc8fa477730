"""Paired comparison of methods against DAGMM over shared seeds."""
import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from dagmm.summary import load_runs, paired_tests, summary_table, verdict


def _runs(rng, shift, method):
    base = rng.uniform(0.4, 0.6, size=20)
    rows = []
    for s in range(20):
        for m, v in (("DAGMM", base[s]), (method, base[s] + shift + rng.normal(0, 0.01))):
            rows.append(dict(dataset="thyroid", method=m, run=s, seed=s, precision=v, recall=v, f1=v, auroc=v, auprc=v, failed=False))
    return pd.DataFrame(rows)


def test_paired_test_detects_a_consistent_gain_and_matches_scipy():
    rng = np.random.default_rng(0)
    runs = _runs(rng, 0.05, "better one")
    t = paired_tests(runs)
    row = t[t.metric == "f1"].iloc[0]
    d = runs.pivot(index="seed", columns="method", values="f1")
    assert row.n_pairs == 20
    assert np.isclose(row.p_value, wilcoxon(d["better one"], d["DAGMM"]).pvalue)
    assert verdict(row.direction, row.p_value) == "better"
    assert row.p_holm == row.p_value  # a single test: Holm changes nothing
    s = summary_table(runs, t)
    assert s.set_index("method").loc["better one", "verdict_f1"] == "better"


def test_no_difference_and_pairing_by_seed(tmp_path):
    rng = np.random.default_rng(1)
    runs = _runs(rng, 0.0, "same")
    t = paired_tests(runs)
    assert verdict(t.direction.iloc[0], t.p_value.iloc[0]) == "no significant difference"
    assert verdict(1, 0.001, n_pairs=3).startswith("not tested")
    # a method's runs written in another order still pair by seed
    runs[runs.method == "DAGMM"].to_csv(tmp_path / "table2_dagmm_runs.csv", index=False)
    runs[runs.method == "same"].iloc[::-1].to_csv(tmp_path / "variants_x_runs.csv", index=False)
    t2 = paired_tests(load_runs(tmp_path))
    np.testing.assert_allclose(t2.p_value.to_numpy(), t.p_value.to_numpy())


def test_holm_matches_the_step_down_rule():
    from dagmm.summary import holm

    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    # sorted finite: 0.01*4, 0.03*3, 0.04*2, 0.2*1 -> 0.04, 0.09, 0.09 (monotone), 0.2
    np.testing.assert_allclose(holm(p), [0.04, 0.09, np.nan, 0.09, 0.2])


def test_reference_runs_come_from_notebook_01_only(tmp_path):
    rng = np.random.default_rng(2)
    runs = _runs(rng, 0.0, "x")
    runs[runs.method == "DAGMM"].to_csv(tmp_path / "table2_dagmm_runs.csv", index=False)
    other = runs.copy()
    other["f1"] = 0.0
    other.to_csv(tmp_path / "table2_full_runs.csv", index=False)
    loaded = load_runs(tmp_path)
    assert (loaded[loaded.method == "DAGMM"].source_file == "table2_dagmm_runs.csv").all()
    assert (loaded[loaded.method == "x"].f1 == 0.0).all()


def test_without_reference_runs_the_summary_has_no_verdicts_instead_of_failing():
    runs = _runs(np.random.default_rng(2), 0.05, "variant")
    runs = runs[runs.method != "DAGMM"]  # e.g. notebook 01 has not run yet
    t = paired_tests(runs)
    assert t.empty and {"metric", "p_holm", "median_diff"} <= set(t.columns)
    s = summary_table(runs, t).set_index("method")
    assert s.loc["variant", "f1_mean"] > 0 and pd.isna(s.loc["variant", "diff_f1_vs_dagmm"])


def test_summary_rows_follow_the_papers_datasets_then_dagmm_then_table2():
    rng = np.random.default_rng(0)
    rows = []
    for d in ("arrhythmia", "kddcup"):
        for m in ("DAGMM-VAE", "LOF", "DAGMM", "OC-SVM", "DAGMM (untrained)"):
            for s in range(3):
                f = rng.random()
                rows.append(dict(dataset=d, method=m, run=s, seed=s, failed=False, precision=f, recall=f, f1=f,
                                 auroc=rng.random(), auprc=rng.random()))
    runs = pd.DataFrame(rows)
    s = summary_table(runs, paired_tests(runs))
    assert list(zip(s.dataset, s.method))[:5] == [("kddcup", "DAGMM"), ("kddcup", "DAGMM (untrained)"), ("kddcup", "OC-SVM"),
                                                  ("kddcup", "LOF"), ("kddcup", "DAGMM-VAE")]
    assert list(s.dataset[5:]) == ["arrhythmia"] * 5


def test_scaling_sentence_names_the_scaling_that_reproduces_the_paper_per_dataset():
    import pandas as pd

    from dagmm.summary import scaling_sentence

    rows = [("kddcup", "DAGMM", 0.873, 0.9369), ("kddcup", "DAGMM (z-score)", 0.937, None),
            ("thyroid", "DAGMM", 0.539, 0.4782), ("thyroid", "DAGMM (z-score)", 0.300, None),
            ("arrhythmia", "DAGMM", 0.416, 0.4983), ("arrhythmia", "DAGMM (z-score)", 0.40, None)]
    summary = pd.DataFrame(rows, columns=["dataset", "method", "f1_mean", "reported_f1"])
    text = scaling_sentence(summary)
    assert "kddcup: z-score (" in text and "thyroid: min-max (" in text and "arrhythmia: neither (" in text
    assert scaling_sentence(summary[summary.method == "DAGMM"]) == ""  # no z-score rows: nothing to say


def test_verdict_lines_name_what_is_better_worse_or_the_same():
    from dagmm.summary import verdict_lines

    rows = [dict(dataset="thyroid", method="DAGMM", f1_mean=0.5, f1_std=0.1, auroc_mean=0.8, auroc_std=0.05,
                 reported_f1=0.4783, verdict_f1=None, verdict_auroc=None)]
    for m, v in (("up", "better"), ("down", "worse"), ("flat", "no significant difference"),
                 ("few", "not tested (fewer than 5 paired runs)")):
        rows.append(dict(dataset="thyroid", method=m, f1_mean=0.5, f1_std=0.1, auroc_mean=0.8, auroc_std=0.05,
                         reported_f1=np.nan, verdict_f1=v, verdict_auroc=v))
    summary = pd.DataFrame(rows)
    short, = verdict_lines(summary)
    assert "DAGMM F1 0.500 ± 0.100" in short and "difference +0.022" in short
    assert "better than DAGMM: up" in short and "worse: down" in short and "no significant difference: 1 methods" in short
    full, = verdict_lines(summary, list_all=True)
    assert "no significant difference: flat" in full and "not tested (fewer than 5 paired runs): few" in full
