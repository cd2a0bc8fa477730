"""The experiment grid gives the same rows locally and on a Dask cluster."""
import pandas as pd
import pytest

from dagmm.grid import Task, make_tasks, run_grid, run_task


def test_unknown_method_and_engine_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown method"):
        run_task(Task("thyroid", "Magic", 0))
    with pytest.raises(ValueError, match="engine"):
        run_grid([], engine="spark")


def test_dask_local_cluster_equals_local_run(real_data_dir):
    tasks = make_tasks(
        ["thyroid"], ["DAGMM", "Isolation Forest"], seeds=[0, 1],
        params={"DAGMM": {"epochs": 3, "device": "cpu"}}, data_dir=str(real_data_dir),
    )
    local = run_grid(tasks, engine="local", n_jobs=1)
    dask = run_grid(tasks, engine="dask", cluster_kwargs={"n_workers": 2})
    cols = ["dataset", "method", "seed", "precision", "recall", "f1", "auroc", "auprc", "failed"]
    assert len(local) == 4 and not local.failed.any()
    pd.testing.assert_frame_equal(local[cols], dask[cols], rtol=1e-9)
