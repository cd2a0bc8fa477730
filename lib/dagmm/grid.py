"""Run a grid of (dataset, method, seed) tasks locally or on a cluster.

Each task is one run of the protocol (:mod:`dagmm.protocol`) and returns one
row of metrics; the same task gives the same row wherever it runs (on the
CPU, a fixed seed is exact). The ``engine`` parameter of :func:`run_grid`
picks where the tasks run:

* ``"local"`` (default): joblib's process pool on this machine (``n_jobs``).
* ``"dask"``: a Dask distributed cluster, one future per task. Pass
  ``address`` (a scheduler such as ``"tcp://10.0.0.5:8786"``) or a
  ``distributed.Client``; with neither, a ``LocalCluster`` on 127.0.0.1 is
  started for the call.

What a failure costs
--------------------
A task that raises, or whose Dask worker dies while running it, does not stop
the grid: its row says ``errored=True`` with the error (``"Type: message"``)
and the traceback text, and the other tasks complete. :func:`run_grid` then
warns naming the failed tasks (or, with ``errors="raise"``, raises
:class:`GridError` naming them, once every task has finished).

With ``results_dir``, each task's record is written to that folder as it
finishes (one JSON file per task, written atomically), so an interrupted or
partly failed grid keeps what it computed; running the grid again with the
same folder reuses every task that finished (``reused=True``) and runs only
the others: the failed ones, the missing ones, and those whose settings
changed. A task is identified by its dataset, method, seed and parameter
overrides (not by ``data_dir``, which says where the data are, not what they
are). A change of code is not detected: use a new folder (or delete the old
one) to recompute everything. :func:`load_results` reads such a folder.

Within one machine, the runs of one (dataset, method) are faster trained
together as a batched model (:func:`dagmm.protocol.run_dagmm`); the grid is for
spreading many such cells over several machines.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import traceback as tb
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .files import atomic_path

__all__ = ["Task", "METHODS", "GridError", "run_task", "run_grid", "make_tasks", "task_key", "load_results"]

#: Columns :func:`run_grid` adds to the rows of the tasks.
STATUS_COLUMNS = ("errored", "error", "traceback", "reused")
_FORMAT = 1  # version of the per-task JSON records


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

    def label(self) -> str:
        """The task as a reader names it, e.g. ``"thyroid / DAGMM / seed 3 {'epochs': 3}"``."""
        extra = f" {self.params}" if self.params else ""
        return f"{self.dataset} / {self.method} / seed {self.seed}{extra}"


class GridError(RuntimeError):
    """Some tasks of a grid failed; raised by ``run_grid(..., errors="raise")`` after the others finished.

    Attributes
    ----------
    results : pandas.DataFrame
        The grid's frame, one row per task, the failed ones with ``errored=True``.
    """

    def __init__(self, message: str, results: pd.DataFrame):
        super().__init__(message)
        self.results = results


def make_tasks(datasets, methods, seeds, params: dict | None = None, data_dir=None) -> list[Task]:
    """The full grid; ``params`` maps a method name to its overrides."""
    params = params or {}
    return [Task(d, m, int(s), dict(params.get(m, {})), data_dir) for d in datasets for m in methods for s in seeds]


def run_task(task: Task) -> dict:
    """Run one task of the protocol; returns its row of metrics."""
    from .configs import paper_setting
    from .datasets import load_base
    from .protocol import estimator_fit_scores, make_split, run_protocol

    if task.method not in METHODS:
        raise ValueError(f"Unknown method {task.method!r}; known: {sorted(METHODS)}")
    X, y = load_base(task.dataset, task.data_dir)
    split = make_split(task.dataset, y, task.seed)
    make = lambda seed: METHODS[task.method](task.dataset, seed, **task.params)  # noqa: E731
    def energy(est, X_):  # a task's score is the energy (or -score_samples), whatever a DAGMM's `scoring`
        return est.energy(X_) if hasattr(est, "energy") else -est.score_samples(X_)

    per_run, _ = run_protocol(task.dataset, X, y, [split], estimator_fit_scores(make, method=task.method, score=energy),
                              rho=paper_setting(task.dataset)["contamination"])
    return {**per_run.iloc[0].to_dict(), "run": task.seed}  # a task's run is its seed


# --------------------------------------------------------------------------- task records


def _plain(value):
    """``value`` as JSON can hold it: numpy scalars and arrays as Python numbers and lists, else its repr."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def task_key(task: Task) -> dict:
    """What identifies ``task``'s result: dataset, method, seed and parameter overrides.

    Parameters
    ----------
    task : Task

    Returns
    -------
    dict
        ``{"dataset", "method", "seed", "params"}`` in plain JSON types (a value
        JSON cannot hold is keyed by its ``repr``). ``data_dir`` is left out: it
        says where the data are, not which.
    """
    key = {"dataset": task.dataset, "method": task.method, "seed": int(task.seed), "params": task.params}
    return json.loads(json.dumps(key, sort_keys=True, default=_plain))


def _record_path(results_dir: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    slug = "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", part).strip("_") for part in (key["dataset"], key["method"]))
    return results_dir / f"{slug}-seed{key['seed']}-{digest}.json"


def _read_record(path: Path) -> dict | None:
    """The record stored at ``path``, or None when there is none or it cannot be read."""
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.warn(f"run_grid: ignoring the unreadable task record {path} ({type(exc).__name__}: {exc}); "
                      "the task is run again", RuntimeWarning, stacklevel=3)
        return None
    return rec if isinstance(rec, dict) and rec.get("format") == _FORMAT else None


def _write_record(path: Path, rec: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(rec, indent=1, default=_plain))


def _attempt(runner, task: Task) -> dict:
    """Run ``runner(task)`` and return its record; an exception becomes a failure record.

    This runs where the task runs (a pool process or a Dask worker), so the
    traceback text is taken there.
    """
    t0 = time.perf_counter()
    try:
        row = runner(task)
        if not isinstance(row, dict):
            raise TypeError(f"a task must return a dict of metrics, got {type(row).__name__}")
    except Exception as exc:
        return _failure(task, f"{type(exc).__name__}: {exc}", tb.format_exc(), time.perf_counter() - t0)
    return {"row": dict(row), "errored": False, "error": None, "traceback": None}


def _failure(task: Task, error: str, trace: str | None, seconds: float = math.nan) -> dict:
    row = dict(dataset=task.dataset, method=task.method, run=task.seed, seed=task.seed, seconds=seconds)
    return {"row": row, "errored": True, "error": error, "traceback": trace}


def _exception_record(task: Task, exc: BaseException, trace=None, context: str = "") -> dict:
    text = "".join(tb.format_exception(type(exc), exc, trace)) if trace is not None else None
    return _failure(task, f"{type(exc).__name__}: {context}{exc}", text)


# --------------------------------------------------------------------------- engines


def _run_local(todo, runner, n_jobs, finish):
    from joblib import Parallel, delayed

    def one(i, task):
        return i, _attempt(runner, task)

    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(one)(i, t) for i, t in todo)
    done = set()
    while True:
        try:
            i, rec = next(results)
        except StopIteration:
            return
        except Exception as exc:  # the pool itself broke (e.g. a worker process died): no more results
            for i, task in todo:
                if i not in done:
                    finish(i, _exception_record(
                        task, exc, context="the local worker pool failed before this task finished "
                                           "(a task that kills its process takes the unfinished ones with it): "))
            return
        done.add(i)
        finish(i, rec)


def _run_dask(todo, runner, address, cluster_kwargs, finish):
    from distributed import Client, LocalCluster, as_completed

    cluster = client = None
    if isinstance(address, Client):
        client = address
    elif address is not None:
        client = Client(address)
    else:
        kw = dict(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True)
        cluster = LocalCluster(**{**kw, **(cluster_kwargs or {})})
        client = Client(cluster)
    pending = {}
    try:
        # One future per task, in one task group ("dagmm-grid"), earlier tasks first.
        for n, (i, task) in enumerate(todo):
            fut = client.submit(_attempt, runner, task, key=f"dagmm-grid-{uuid.uuid4().hex}", priority=-n, pure=False)
            pending[fut] = (i, task)
        for fut in as_completed(list(pending)):
            i, task = pending.pop(fut)  # and release it, so a worker lost later does not recompute it
            if fut.status == "finished":
                rec = fut.result()
            elif fut.status == "cancelled":
                rec = _failure(task, "CancelledError: the task was cancelled on the Dask cluster", None)
            else:  # erred outside the task's own code: its worker died (KilledWorker), or (de)serialising failed
                exc = fut.exception()
                rec = _exception_record(task, exc, fut.traceback())
            finish(i, rec)
    finally:
        if pending and client.status == "running":
            client.cancel(list(pending))
        if not isinstance(address, Client):  # we made it, so we close it
            client.close()
        if cluster is not None:
            cluster.close()


def run_grid(tasks, *, engine: str = "local", n_jobs: int = 1, address=None, cluster_kwargs: dict | None = None,
             results_dir: str | os.PathLike | None = None, errors: str = "record") -> pd.DataFrame:
    """Run every task and return one row per task (in the order given).

    A task that fails does not stop the others: its row has ``errored=True``,
    and a warning (or :class:`GridError`) names it once every task is done.

    Parameters
    ----------
    tasks : sequence of Task
    engine : {"local", "dask"}
    n_jobs : int
        Parallel tasks for the local engine (-1: all cores). With 1 the tasks
        run in this process. For Dask, the cluster's workers decide.
    address : str or distributed.Client, optional
        Dask scheduler to use; without it a LocalCluster on 127.0.0.1 is started.
    cluster_kwargs : dict, optional
        Extra arguments of that LocalCluster (e.g. ``n_workers``).
    results_dir : str or path-like, optional
        Folder keeping one JSON record per task (see :func:`task_key`), written
        atomically as each task finishes, on this machine (a remote cluster
        needs no shared disk). A task that finished there before is reused,
        not run; failed, missing and changed tasks are run. Without it nothing
        is kept between calls.
    errors : {"record", "raise"}
        With ``"record"`` failed tasks are rows with ``errored=True`` and a
        ``RuntimeWarning`` names them; with ``"raise"`` a :class:`GridError`
        naming them is raised instead (after all tasks finished and were
        recorded), holding the frame as its ``results``.

    Returns
    -------
    pandas.DataFrame
        One row per task: the task's metrics (``dataset, method, run, seed,
        precision, recall, f1, auroc, auprc, failed, seconds``), then

        * ``errored`` (bool): the task raised, or its worker died; its
          metrics are missing and its ``failed`` (the run diverged) is ``<NA>``.
          Summaries of runs should drop these rows (``df[~df.errored]``).
        * ``error`` (str or None): ``"ExceptionType: message"``.
        * ``traceback`` (str or None): the traceback text, taken where the
          task ran (None where there was none, e.g. a dead worker).
        * ``reused`` (bool): the row was read from ``results_dir``, not computed.

    Raises
    ------
    ValueError
        An unknown ``engine`` or ``errors``.
    GridError
        Some tasks failed and ``errors="raise"``.
    """
    if engine not in ("local", "dask"):
        raise ValueError(f"engine must be 'local' or 'dask', got {engine!r}")
    if errors not in ("record", "raise"):
        raise ValueError(f"errors must be 'record' or 'raise', got {errors!r}")
    tasks = list(tasks)
    runner = run_task  # looked up now, so a replaced dagmm.grid.run_task is the one shipped to the workers
    folder = Path(results_dir) if results_dir is not None else None
    records: list[dict | None] = [None] * len(tasks)
    todo = []
    for i, task in enumerate(tasks):
        if folder is not None:
            key = task_key(task)
            rec = _read_record(_record_path(folder, key))
            if rec is not None and rec.get("task") == key and not rec.get("errored", True):
                records[i] = {**rec, "reused": True}
                continue
        todo.append((i, task))

    def finish(i, rec):
        rec = {**rec, "reused": False}
        records[i] = rec
        if folder is not None:
            key = task_key(tasks[i])
            stored = {"format": _FORMAT, "task": key, "finished": datetime.now(timezone.utc).isoformat(), **rec}
            _write_record(_record_path(folder, key), stored)

    if todo:
        if engine == "local":
            _run_local(todo, runner, n_jobs, finish)
        else:
            _run_dask(todo, runner, address, cluster_kwargs, finish)

    frame = _frame(records)
    bad = [(t, r) for t, r in zip(tasks, records) if r["errored"]]
    if bad:
        lines = "\n".join(f"  {t.label()}: {r['error']}" for t, r in bad)
        kept = (f"; the finished ones are kept in {folder}, and a rerun with it retries only the failed"
                if folder is not None else "")
        msg = f"{len(bad)} of {len(tasks)} grid tasks failed (rows with errored=True{kept}):\n{lines}"
        if errors == "raise":
            raise GridError(msg, frame)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return frame


def _frame(records) -> pd.DataFrame:
    rows = [{**r["row"], **{c: r.get(c) for c in STATUS_COLUMNS}} for r in records]
    cols = [c for r in records if not r["errored"] for c in r["row"]]
    cols += [c for r in records for c in r["row"]] + list(STATUS_COLUMNS)
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(cols)))
    if not len(frame):
        return frame
    for c in ("errored", "reused"):
        frame[c] = frame[c].astype(bool)
    if "failed" in frame and frame["errored"].any():
        frame["failed"] = frame["failed"].astype("boolean")
    return frame


def load_results(results_dir: str | os.PathLike) -> pd.DataFrame:
    """Every task record kept in ``results_dir`` by :func:`run_grid`, one row each.

    Parameters
    ----------
    results_dir : str or path-like

    Returns
    -------
    pandas.DataFrame
        The rows :func:`run_grid` returned for those tasks (``reused`` is
        True), plus ``params`` (the task's overrides, as JSON text) and
        ``finished`` (when the record was written, UTC ISO 8601), in file
        name order. Empty when the folder has no records.
    """
    recs = [r for p in sorted(Path(results_dir).glob("*.json")) if (r := _read_record(p)) is not None]
    if not recs:
        return pd.DataFrame()
    frame = _frame([{**r, "reused": True} for r in recs])
    frame["params"] = [json.dumps(r["task"]["params"], sort_keys=True) for r in recs]
    frame["finished"] = [r.get("finished") for r in recs]
    return frame
