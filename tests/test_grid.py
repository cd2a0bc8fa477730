"""The experiment grid gives the same rows locally and on a Dask cluster, and a failing task costs only itself.

The failure tests replace ``dagmm.grid.run_task`` with tiny synthetic tasks
(no data, no training); every call is logged to a file, so calls are counted
wherever the task ran.
"""
import json
from pathlib import Path

import pandas as pd
import pytest

from dagmm import grid
from dagmm.grid import GridError, Task, load_results, make_tasks, run_grid, run_task

TASKS = make_tasks(["thyroid", "arrhythmia"], ["Isolation Forest"], seeds=[0, 1, 2])  # 6 tasks
BAD = ("thyroid", 1)  # the (dataset, seed) that raises


def fake_task(log: Path, bad=(), kill=()):
    """A stand-in for ``run_task``: logs the call, raises for ``bad``, kills its process for ``kill``.

    Self-contained (it is shipped by value to worker processes).
    """
    def fake(task):
        import os as _os
        import time as _time

        who = (task.dataset, task.seed)
        with open(log, "a") as f:
            f.write(f"{task.dataset}/{task.method}/{task.seed}\n")
        if who in bad:
            raise ValueError(f"boom in a deep helper ({task.dataset})")
        if who in kill:
            _time.sleep(0.2)
            _os._exit(1)
        return dict(dataset=task.dataset, method=task.method, run=task.seed, seed=task.seed,
                    f1=task.seed / 10, auroc=0.5 + task.seed / 100 + task.params.get("shift", 0), failed=False,
                    seconds=0.0)

    return fake


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def dask_client():
    """An in-process LocalCluster (threads, no worker processes): fast, closed after the module."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _run(engine, client, tasks, **kw):
    if engine == "local":
        return run_grid(tasks, engine="local", n_jobs=1, **kw)
    return run_grid(tasks, engine="dask", address=client, **kw)


def test_unknown_method_and_engine_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown method"):
        run_task(Task("thyroid", "Magic", 0))
    with pytest.raises(ValueError, match="engine"):
        run_grid([], engine="spark")
    with pytest.raises(ValueError, match="errors"):
        run_grid([], errors="ignore")


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_failing_task_is_recorded_and_the_rest_complete(engine, dask_client, tmp_path, monkeypatch):
    log = tmp_path / "calls.txt"
    monkeypatch.setattr(grid, "run_task", fake_task(log, bad={BAD}))
    with pytest.warns(RuntimeWarning, match=r"1 of 6 grid tasks failed[\s\S]*thyroid / Isolation Forest / seed 1: "
                                            r"ValueError: boom"):
        df = _run(engine, dask_client, TASKS)

    assert list(zip(df.dataset, df.seed)) == [(t.dataset, t.seed) for t in TASKS]  # one row per task, in order
    bad = (df.dataset == "thyroid") & (df.seed == 1)
    assert df.errored.tolist() == bad.tolist()
    row = df[bad].iloc[0]
    assert row.error == "ValueError: boom in a deep helper (thyroid)"
    assert "Traceback" in row.traceback and "in fake" in row.traceback
    assert pd.isna(row.f1) and pd.isna(row.failed)  # no metrics, and no verdict on divergence
    ok = df[~bad]
    assert ok.f1.tolist() == [s / 10 for s in ok.seed] and ok.error.isna().all() and not ok.failed.any()
    assert not df.reused.any() and len(calls(log)) == 6


def test_errors_raise_names_the_task_after_the_others_finished(tmp_path, monkeypatch):
    log = tmp_path / "calls.txt"
    monkeypatch.setattr(grid, "run_task", fake_task(log, bad={BAD}))
    with pytest.raises(GridError, match=r"thyroid / Isolation Forest / seed 1: ValueError: boom") as info:
        run_grid(TASKS, results_dir=tmp_path / "grid", errors="raise")
    assert len(calls(log)) == 6 and info.value.results.errored.sum() == 1
    assert "a rerun with it retries only the failed" in str(info.value)
    assert len(list((tmp_path / "grid").glob("*.json"))) == 6  # the failed one is recorded too


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_rerun_reuses_finished_tasks_and_retries_the_failed_one(engine, dask_client, tmp_path, monkeypatch):
    store, log = tmp_path / "grid", tmp_path / "calls.txt"
    monkeypatch.setattr(grid, "run_task", fake_task(log, bad={BAD}))
    with pytest.warns(RuntimeWarning, match="1 of 6"):
        first = _run(engine, dask_client, TASKS, results_dir=store)
    assert len(calls(log)) == 6 and first.errored.sum() == 1

    log.unlink()
    monkeypatch.setattr(grid, "run_task", fake_task(log))  # the bug is fixed
    second = _run(engine, dask_client, TASKS, results_dir=store)
    assert calls(log) == ["thyroid/Isolation Forest/1"]  # only the failed task ran again
    assert not second.errored.any()
    assert second.reused.tolist() == [(t.dataset, t.seed) != BAD for t in TASKS]
    fresh = run_grid(TASKS)  # computed from scratch, no folder
    cols = ["dataset", "method", "run", "seed", "f1", "auroc", "failed", "seconds", "errored"]
    pd.testing.assert_frame_equal(second[cols], fresh[cols])

    # a task whose settings changed is recomputed; so is one whose record is damaged
    log.unlink()
    changed = [Task(t.dataset, t.method, t.seed, {"shift": 0.25}) if (t.dataset, t.seed) == ("arrhythmia", 2) else t
               for t in TASKS]
    damaged = grid._record_path(store, grid.task_key(TASKS[0]))
    damaged.write_text(damaged.read_text()[:40])
    with pytest.warns(RuntimeWarning, match="unreadable task record"):
        third = _run(engine, dask_client, changed, results_dir=store)
    assert sorted(calls(log)) == ["arrhythmia/Isolation Forest/2", "thyroid/Isolation Forest/0"]
    assert third.auroc.iloc[-1] == pytest.approx(0.77) and not third.errored.any()

    kept = load_results(store)  # both settings of arrhythmia seed 2 are kept, each under its own key
    assert len(kept) == 7 and not kept.errored.any()
    assert sorted(kept.params) == ["{" + '"shift": 0.25' + "}"] + ["{}"] * 6


def test_records_are_json_named_by_task(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "run_task", fake_task(tmp_path / "calls.txt"))
    run_grid(TASKS[:1], results_dir=tmp_path)
    (path,) = tmp_path.glob("*.json")
    assert path.name.startswith("thyroid-Isolation_Forest-seed0-")
    rec = json.loads(path.read_text())
    assert rec["task"] == {"dataset": "thyroid", "method": "Isolation Forest", "seed": 0, "params": {}}
    assert rec["errored"] is False and rec["row"]["f1"] == 0.0 and not list(tmp_path.glob("*.tmp"))


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_a_task_whose_dask_worker_dies_is_failed_and_the_rest_complete(tmp_path, monkeypatch):
    """A task that kills its worker process (``os._exit``) is a failed row; the others have their metrics.

    One worker process keeps this fast (most of its time is the worker importing ``dagmm``): the killer is
    the last task, so it runs after the others (the grid submits earlier tasks at higher priority), and
    with ``allowed-failures=0`` its first death marks it failed instead of retrying it on a new worker.
    """
    import dask
    from distributed import LocalCluster

    log = tmp_path / "calls.txt"
    tasks = TASKS[:3]  # thyroid seeds 0, 1, 2; seed 2 kills its worker process
    monkeypatch.setattr(grid, "run_task", fake_task(log, kill={("thyroid", 2)}))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None) as cluster:
        with pytest.warns(RuntimeWarning, match=r"thyroid / Isolation Forest / seed 2: KilledWorker"):
            df = run_grid(tasks, engine="dask", address=cluster.scheduler_address, results_dir=tmp_path / "grid")
    assert df.errored.tolist() == [False, False, True]
    assert df.error.iloc[2].startswith("KilledWorker: ") and df.f1.iloc[:2].tolist() == [0.0, 0.1]
    assert len(list((tmp_path / "grid").glob("*.json"))) == 3  # the failure is recorded too (and retried on a rerun)


def test_dask_local_cluster_equals_local_run(real_data_dir):
    tasks = make_tasks(
        ["thyroid"], ["DAGMM", "Isolation Forest"], seeds=[0, 1],
        params={"DAGMM": {"epochs": 3, "device": "cpu"}}, data_dir=str(real_data_dir),
    )
    local = run_grid(tasks, engine="local", n_jobs=1)
    dask = run_grid(tasks, engine="dask", cluster_kwargs={"n_workers": 2})
    cols = ["dataset", "method", "seed", "precision", "recall", "f1", "auroc", "auprc", "failed", "errored"]
    assert len(local) == 4 and not local.failed.any() and not local.errored.any()
    pd.testing.assert_frame_equal(local[cols], dask[cols], rtol=1e-9)
