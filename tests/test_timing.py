"""The timing benchmarks' arithmetic (scripts/ is not a package: loaded from its file)."""
import importlib.util
import math

import pandas as pd
import pytest

from dagmm import paths
from dagmm.timing import extrapolate


def load(name, folder="scripts"):
    spec = importlib.util.spec_from_file_location(name, paths.ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
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
