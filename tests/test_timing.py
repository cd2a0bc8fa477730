"""The timing benchmarks' arithmetic (scripts/ is not a package: loaded from its file)."""
import importlib.util
import math
import sys

import pandas as pd
import pytest

from dagmm import paths
from dagmm.timing import extrapolate


def load(name, folder="scripts"):
    spec = importlib.util.spec_from_file_location(name, paths.ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tb():
    return load("time_baselines")


def test_extrapolate_recovers_a_linear_cost():
    setup, per_epoch = 7.0, 0.5
    t = lambda e: setup + per_epoch * e  # noqa: E731
    assert extrapolate(t(2), t(6), 2, 400) == pytest.approx(t(400))


def test_extrapolate_refuses_a_longer_run_that_was_not_slower():
    assert math.isnan(extrapolate(423.4, 316.2, 1, 20))
    assert math.isnan(extrapolate(10.0, 10.0, 1, 20))
    assert math.isnan(extrapolate(float("nan"), 10.0, 1, 20))


def test_rewrite_blanks_only_the_estimates_that_cannot_be_made(tb, tmp_path):
    table = pd.DataFrame(dict(
        dataset=["kddcup"] * 3, methods=["A", "B", "OC-SVM"], epochs_measured=["1, 3", "1, 3", None],
        epochs_full=[200.0, 20.0, None], wall_E=[400.0, 423.4, None], wall_3E=[600.0, 316.2, None],
        cpu_E=[100.0, 100.0, None], cpu_3E=[200.0, 200.0, None],
        wall_full_estimate=[0.0, -595.3, 1118.8], cpu_full_estimate=[0.0, 0.0, 1109.4], device="cpu"))
    out = tb.recompute(table)
    assert out.wall_full_estimate[0] == 0.0  # saved from unrounded measurements: kept
    assert math.isnan(out.wall_full_estimate[1])  # never the negative extrapolation
    assert out.cpu_full_estimate[1] == 0.0
    assert out.wall_full_estimate[2] == 1118.8  # measured directly: left alone
    tb.write_markdown(out, tmp_path / "t.md")
    text = (tmp_path / "t.md").read_text()
    assert "-595" not in text and "1 estimate(s) missing" in text


def test_floor_counts_every_row_of_an_epoch_once():
    floor = load("study_floor", "benchmarks")
    assert floor.batches(193, 128) == {128: 1, 65: 1}
    assert floor.batches(2048, 1024) == {1024: 2}
    assert floor.batches(100, 1024) == {100: 1}
    for n, b in ((193, 128), (198_371, 1024), (1_839, 1024)):
        assert sum(k * v for k, v in floor.batches(n, b).items()) == n


def test_the_floor_counts_every_training_of_dagmm_networks_with_the_notebooks_defaults():
    floor = load("study_floor", "benchmarks")
    st = load("study_time", "benchmarks")
    plan = pd.DataFrame(floor.trainings())
    assert set(plan.notebook) == {"01", "01b", "01c", "01d", "01e", "04", "05", "06", "06b"}
    p = st.defaults("01c_contamination")
    c = plan[plan.notebook == "01c"].iloc[0]  # every contamination level is a training of its own
    assert (c["count"], c.dataset, c.epochs) == (len(st.names(p["levels"])), p["dataset"], 200)
    p = st.defaults("01d_training_length")
    d = plan[plan.notebook == "01d"].iloc[0]  # each variant trained once, to the last checkpoint
    assert (d["count"], d.epochs) == (len(st.names(p["variants"])), max(int(e) for e in st.names(p["checkpoints"])))
    assert len(plan[plan.notebook == "06b"]) == 2 * len(st.names(st.defaults("06b_modified_loss")["datasets"]))
    assert set(plan[~plan.estimation].training.str.contains("autoencoder only")) == {True}
    # what the floor assumes of the defaults: no optional investigations in 01, every method in 01b, runs in one batch
    p = st.defaults("01_replication")
    assert p["ablation_datasets"] == p["scaling_datasets"] == "" and st.defaults("01b_baselines")["methods"] == ""
    for nb in set(plan.notebook):
        p = st.defaults(st.NOTEBOOKS[nb])
        assert p["max_parallel"] == 0 or p["max_parallel"] >= p["n_runs"]  # 0: all, or 20 (n_runs) on a CPU


@pytest.fixture(scope="module")
def st():
    return load("study_time", "benchmarks")


def test_the_study_time_benchmark_covers_every_notebook_that_trains(st):
    on_disk = {p.stem for p in paths.NOTEBOOKS.glob("*.ipynb")}
    assert set(st.NOTEBOOKS.values()) == on_disk - {"07_summary"}  # 07 only reads the other notebooks' tables
    assert set(st.ORDER) - {"check"} == set(st.NOTEBOOKS) == set(st.BUILDERS) - {"check"}


def test_study_time_pieces_take_the_notebooks_own_defaults(st):
    nb01b = st.pieces_01b()
    groups, shallow = __import__("dagmm.baselines.suite", fromlist=["x"]).training_plan()
    assert len(nb01b) == 4 * (len(groups) + 1)  # every training group and the shallow detectors, per data set
    dagmm = next(p for p in nb01b if p.piece == "kddcup: DAGMM / E2E-AE")
    assert (dagmm.full, dagmm.scale, dagmm.threads) == (200, 1.0, st.defaults("01b_baselines")["cpu_threads"])
    images = st.pieces_images("02")
    defaults = st.defaults("02_conv_dagmm")
    assert [p.full for p in images] == [defaults["epochs_mvtec_bottle"], defaults["epochs_intel_forest"]]
    assert all(p.scale == defaults["n_runs"] for p in images)  # one run measured, the notebook's runs one after another


def test_the_study_time_page_sums_only_what_was_estimated(st, tmp_path):
    row = dict(threads=1, unit="epochs", e=1, full=10, scale=1.0, rule="", code="abc/def", commit="0" * 40,
               device="cpu: test", finished="")
    table = pd.DataFrame([
        dict(row, notebook="01", piece="a", wall_estimate=3600.0, cpu_estimate=3600.0),
        dict(row, notebook="01", piece="b", wall_estimate=7200.0, cpu_estimate=7200.0),
        dict(row, notebook="02", piece="c", wall_estimate=float("nan"), cpu_estimate=float("nan")),
        dict(row, notebook="01b", piece="d", wall_estimate=600.0, cpu_estimate=600.0),
        dict(row, notebook="check", piece="d", wall_estimate=660.0, cpu_estimate=660.0),
    ]).reindex(columns=st.COLUMNS)
    text = st.write_page(table, tmp_path, "t", floor_path=tmp_path / "none.csv", workers_path=tmp_path / "none.csv")
    assert "**Total: 3.2 hours**" in text and "within the target" in text  # the check is not a notebook's
    assert "No estimate for notebooks 02" in text  # never counted as zero
    assert "Not measured with this code: notebooks 01c" in text
    assert "d: 11.0 min from all runs against 10.0 min scaled from" in text and "(ratio 1.10)" in text


def test_marginal_speedup_leaves_out_what_is_paid_once():
    from dagmm.timing import marginal_speedup

    one = lambda e: 10.0 + 5.0 * e  # noqa: E731  (seconds: set-up, then per epoch)
    two = lambda e: 14.0 + 2.5 * e  # noqa: E731  (two workers: dearer to start, twice as fast per epoch)
    assert marginal_speedup(one(1), one(3), two(1), two(3)) == pytest.approx(2.0)
    assert one(1) / two(1) < 1  # what a short run alone would suggest
    assert math.isnan(marginal_speedup(one(1), one(1), two(1), two(3)))  # a longer run that was not slower


def test_the_page_divides_only_the_trained_pieces_of_notebooks_with_workers(st, tmp_path, monkeypatch):
    from dagmm.baselines import suite

    monkeypatch.setattr(suite, "resolve_workers", lambda workers, device, threads=None: 2)  # as on a 2-core CPU
    t = dict(notebook="01b", dataset="kddcup_rev", rows_identical=True)
    pd.DataFrame([dict(t, epochs="e", workers=1, wall_s=20.0), dict(t, epochs="e", workers=2, wall_s=15.0),
                  dict(t, epochs="3e", workers=1, wall_s=60.0), dict(t, epochs="3e", workers=2, wall_s=35.0)]
                 ).assign(device="cpu: test", commit="1" * 40).to_csv(tmp_path / "w.csv", index=False)
    row = dict(threads=1, unit="epochs", e=1, full=10, scale=1.0, rule="", code="abc/def", commit="0" * 40,
               device="cpu: test", finished="", cpu_estimate=3600.0)
    pieces = pd.DataFrame([
        dict(row, notebook="01b", piece="kddcup_rev: DAGMM / E2E-AE", wall_estimate=3600.0),
        dict(row, notebook="01b", piece="kddcup: DCN", wall_estimate=3600.0),  # no measurement: the notebook's smallest
        dict(row, notebook="01b", piece="kddcup_rev: OC-SVM", e=float("nan"), wall_estimate=3600.0),  # shallow
        dict(row, notebook="01", piece="kddcup_rev: DAGMM", wall_estimate=3600.0),  # no workers
    ]).reindex(columns=st.COLUMNS)
    wall, lines = st.with_workers(pieces, tmp_path / "w.csv")
    assert list(wall) == [1800.0, 1800.0, 3600.0, 3600.0]  # speedup (60 - 20) / (35 - 15) = 2
    faster = pd.read_csv(tmp_path / "w.csv").assign(wall_s=[20.0, 15.0, 60.0, 25.0])  # measured 4 with 2 workers
    faster.to_csv(tmp_path / "w4.csv", index=False)
    wall, lines = st.with_workers(pieces, tmp_path / "w4.csv")
    assert list(wall) == [1800.0, 1800.0, 3600.0, 3600.0] and "measured: kddcup_rev 4.00" in lines[0]  # at most 2
    assert len(lines) == 1 and "Notebook 01b trains with 2 workers" in lines[0]
    text = st.write_page(pieces, tmp_path, "t", floor_path=tmp_path / "none.csv", workers_path=tmp_path / "w.csv")
    assert "**Total: 3.0 hours**" in text  # 0.5 + 0.5 + 1 + 1


def test_a_method_is_shortened_through_the_training_group_it_trains_in(st):
    from dagmm.baselines import suite

    # DSEBM-e reads out DSEBM-r's training: shortening DSEBM-e alone would leave the training at full length
    overrides = suite.shortened(st._group_of("DSEBM-e"), 3)
    group = next(g for g in suite.training_plan()[0] if "DSEBM-e" in g)
    assert overrides[group[0]]["epochs"] == 3
    assert suite.shortened(st._group_of("PAE-GMM"), 2)["DAGMM-p"] == {"epochs": 2, "pretrain_epochs": 2}
