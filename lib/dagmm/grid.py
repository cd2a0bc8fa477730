"""Run a grid of (dataset, method, seed) tasks locally or on a cluster.

Each task is one run of the protocol (:mod:`dagmm.protocol`) and returns one
row of metrics; the same task gives the same row wherever it runs (on the
CPU, a fixed seed is exact). Tasks are dispatched through joblib, whose
backend is the ``engine`` parameter:

* ``"local"`` (default): joblib's process pool on this machine (``n_jobs``).
* ``"dask"``: a Dask distributed cluster. Pass ``address`` (a scheduler such as
  ``"tcp://10.0.0.5:8786"``) or a ``distributed.Client``; with neither, a
  ``LocalCluster`` on 127.0.0.1 is started for the call.

Within one machine, the runs of one (dataset, method) are faster trained
together as a batched model (:func:`dagmm.protocol.run_dagmm`); the grid is for
spreading many such cells over several machines.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Task", "METHODS", "run_task", "run_grid", "make_tasks"]


def _dagmm(name, seed, **kw):
    from .estimator import DAGMM

    return DAGMM.from_paper(name, random_state=seed, **kw)


def _isolation_forest(name, seed, **kw):
    from sklearn.ensemble import IsolationForest

    return IsolationForest(random_state=seed, **kw)


# method name -> factory(dataset, seed, **params) returning an unfitted estimator
METHODS = {
    "DAGMM": _dagmm,
    "DAGMM (untrained)": lambda name, seed, **kw: _dagmm(name, seed, **{**kw, "epochs": 0}),
    "Isolation Forest": _isolation_forest,
}


@dataclass(frozen=True)
class Task:
    """One run: a method with parameter overrides, on a dataset, with a seed."""

    dataset: str
    method: str
    seed: int
    params: dict = field(default_factory=dict)
    data_dir: str | None = None

    def __hash__(self):
        return hash((self.dataset, self.method, self.seed, tuple(sorted(self.params.items())), self.data_dir))


def make_tasks(datasets, methods, seeds, params: dict | None = None, data_dir=None) -> list[Task]:
    """The full grid; ``params`` maps a method name to its overrides."""
    params = params or {}
    return [Task(d, m, int(s), dict(params.get(m, {})), data_dir) for d in datasets for m in methods for s in seeds]


def run_task(task: Task) -> dict:
    """Run one task of the protocol; returns its row of metrics."""
    from .configs import paper_setting
    from .datasets import load_base
    from .protocol import evaluate_scores, make_split

    if task.method not in METHODS:
        raise ValueError(f"Unknown method {task.method!r}; known: {sorted(METHODS)}")
    t0 = time.perf_counter()
    X, y = load_base(task.dataset, task.data_dir)
    split = make_split(task.dataset, y, task.seed)
    est = METHODS[task.method](task.dataset, task.seed, **task.params).fit(X[split.train_idx])
    Xt = X[split.test_idx]
    scores = est.energy(Xt) if hasattr(est, "energy") else -est.score_samples(Xt)
    m = evaluate_scores(y[split.test_idx], scores, paper_setting(task.dataset)["contamination"])
    return dict(dataset=task.dataset, method=task.method, run=task.seed, seed=task.seed, **m,
                seconds=time.perf_counter() - t0)


def run_grid(tasks, *, engine: str = "local", n_jobs: int = 1, address=None, cluster_kwargs: dict | None = None) -> pd.DataFrame:
    """Run every task and return one row per task (in the order given).

    Parameters
    ----------
    tasks : sequence of Task
    engine : {"local", "dask"}
    n_jobs : int
        Parallel tasks for the local engine (-1: all cores). For Dask, the
        cluster's workers decide.
    address : str or distributed.Client, optional
        Dask scheduler to use; without it a LocalCluster on 127.0.0.1 is started.
    cluster_kwargs : dict, optional
        Extra arguments of that LocalCluster (e.g. ``n_workers``).
    """
    from joblib import Parallel, delayed, parallel_backend

    tasks = list(tasks)
    if engine == "local":
        rows = Parallel(n_jobs=n_jobs)(delayed(run_task)(t) for t in tasks)
    elif engine == "dask":
        from distributed import Client, LocalCluster

        cluster = client = None
        if isinstance(address, Client):
            client = address
        elif address is not None:
            client = Client(address)
        else:
            kw = dict(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True)
            cluster = LocalCluster(**{**kw, **(cluster_kwargs or {})})
            client = Client(cluster)
        try:
            with parallel_backend("dask", client=client):
                rows = Parallel()(delayed(run_task)(t) for t in tasks)
        finally:
            if not isinstance(address, Client):  # we made it, so we close it
                client.close()
            if cluster is not None:
                cluster.close()
    else:
        raise ValueError(f"engine must be 'local' or 'dask', got {engine!r}")
    return pd.DataFrame(rows)
