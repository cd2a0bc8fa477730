"""Notebooks 01b and 01c on a CPU: their training groups in one process, or side by side in workers.

Both notebooks train with one torch thread (fastest for these small networks) and, with
``workers > 1``, hand each training group's runs, ``max_parallel`` at a time, to worker processes
(``suite.run_methods``), each with that one thread, so every run's result is bitwise what it is
with one worker (tested in ``tests/test_baselines.py``). This benchmark makes a notebook's call
(``run_methods`` on one data set for 01b, ``run_levels`` for 01c's DAGMM, most of its time, at two
contamination levels, so that its group has two chunks of runs) with every torch training group
shortened to one fraction of its full epochs, ``e`` (the longest group to the epochs
``study_time.py`` measures it with, longer on the small sets), and then to ``3 e``, with one
worker and with ``--workers``, and checks that the per-run rows agree. The shallow detectors are
left out: they run in the notebook's own process either way.

The full profile is made of what grows with the epochs, so the figure to read is the *marginal
speedup* ``(t1(3e) - t1(e)) / (tN(3e) - tN(e))``: the time one worker adds for ``2 e`` more
epochs over what ``N`` workers add. The rest (starting the workers, loading the data into each,
scoring) is paid once per call. ``study_time.py`` divides its one-process estimates of these
notebooks' torch trainings by this speedup.

Writes ``reports/benchmarks/workers_time_cpu.csv`` and ``.md``.

Usage: ``python benchmarks/workers_time.py [--datasets thyroid,arrhythmia,kddcup_rev] [--workers 2]``
(about 30 minutes on a 2-core CPU; run it alone on the machine).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_time import NOTEBOOKS, data, defaults, names, short_epochs, speedups  # noqa: E402

from dagmm import paths  # noqa: E402
from dagmm.baselines import suite  # noqa: E402
from dagmm.engine import allocator  # noqa: E402
from dagmm.engine.training import describe_device  # noqa: E402
from dagmm.reporting import git_commit, pipe_table  # noqa: E402

METRICS = ["method", "run", "seed", "precision", "recall", "f1", "auroc", "auprc", "failed"]
LEVELS_01C = 2  # of notebook 01c's levels: enough that a group has two chunks of max_parallel runs
# e is this many times study_time.py's: there the small sets' groups take about a second, less than it takes
# to start a worker, and 01c's two epochs of KDDCUP measured 1.87 and 1.49 in two runs
LONGER = {"thyroid": 10, "arrhythmia": 10, "kddcup": 3}


def shortened(dataset: str, groups, k: int) -> dict:
    """Overrides that train every group ``k`` times its ``e``, one fraction of its full epochs for
    all groups (to the nearest epoch, at least one), so that the groups weigh what they weigh in the
    full profile: the longest group gets the ``e`` ``study_time.py`` measures it with (times
    :data:`LONGER` on the small sets)."""
    full = {g: int(suite.make_estimator(g[0], dataset).get_params()["epochs"]) for g in groups}
    longest = max(full.values())
    fraction = LONGER.get(dataset, 1) * short_epochs(dataset, longest) / longest
    out = {}
    for g in groups:
        out.update(suite.shortened(g, k * max(1, round(full[g] * fraction))))
    return out


def cases(datasets: list[str]) -> list[tuple]:
    """(notebook, dataset, what it runs, call(workers, k) -> per-run rows) for each measured call."""
    groups, _ = suite.training_plan()
    out = []
    p = defaults(NOTEBOOKS["01b"])
    for d in datasets:
        X, y, splits = (data(d, p["n_runs"])[k] for k in ("X", "y", "splits"))
        methods = [m for g in groups for m in g]
        out.append(("01b", d, f"every torch training group, {len(splits)} runs, {p['max_parallel']} at a time",
                    lambda w, k, d=d, X=X, y=y, splits=splits, methods=methods, mp=p["max_parallel"]: suite.run_methods(
                        d, X, y, splits, methods, device="cpu", max_parallel=mp, verbose=False,
                        overrides=shortened(d, groups, k), workers=w)))
    p = defaults(NOTEBOOKS["01c"])
    d, mp = p["dataset"], p["max_parallel"] or 20  # 0: 20 at a time on the CPU
    X, y = data(d)["X"], data(d)["y"]
    levels = [float(c) for c in names(p["levels"])][:LEVELS_01C]
    mine = [g for g in groups if "DAGMM" in g]  # most of 01c's time (study_time_cpu.md)
    out.append(("01c", d, f"DAGMM at {len(levels)} of its levels, {len(levels) * p['n_runs']} runs, {mp} at a time",
                lambda w, k: suite.run_levels(d, X, y, levels, p["n_runs"], ["DAGMM"], device="cpu", max_parallel=mp,
                                              verbose=False, overrides=shortened(d, mine, k), workers=w)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="thyroid,arrhythmia,kddcup_rev", help="notebook 01b's data sets to measure")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--notebooks", default="01b,01c", help="the notebooks whose calls to measure")
    ap.add_argument("--keep", action="store_true", help="keep the CSV's rows of the calls not measured now")
    ap.add_argument("--out", default=str(paths.BENCHMARKS))
    args = ap.parse_args(argv)
    allocator.tune_process()
    torch.set_num_threads(defaults(NOTEBOOKS["01b"])["cpu_threads"])  # 1, as in both notebooks
    rows = []
    every = cases(names(args.datasets))
    measured = [c for c in every if c[0] in names(args.notebooks)]
    for nb, d, what, call in measured:
        got = {}
        for k in (1, 3):
            for w in (1, args.workers):
                t = time.perf_counter()
                got[w, k] = call(w, k)[METRICS]
                rows.append(dict(notebook=nb, dataset=d, trains=what, epochs="e" if k == 1 else f"{k}e", workers=w,
                                 wall_s=time.perf_counter() - t, rows_identical=got[w, k].equals(got[1, k])))
                print(rows[-1], flush=True)
    out = Path(args.out)
    device = describe_device(torch.device("cpu"))
    table = pd.DataFrame(rows).assign(device=device, commit=git_commit())
    csv = out / "workers_time_cpu.csv"
    if args.keep and csv.exists():  # the calls not measured now, as an earlier run measured them (its commit)
        old = pd.read_csv(csv, dtype={"notebook": str, "commit": str})
        now = set(zip(table.notebook, table.dataset))
        old = old[[k not in now for k in zip(old.notebook, old.dataset)]]
        what = {(nb, d): w for nb, d, w, _ in every}  # rows written before the column was
        old["trains"] = [t if isinstance(t, str) else what.get(k, "") for t, k in
                         zip(old.get("trains", [None] * len(old)), zip(old.notebook, old.dataset))]
        table = pd.concat([old, table], ignore_index=True)
    table.to_csv(csv, index=False)
    summary = speedups(table)
    calls = table.drop_duplicates(["notebook", "dataset"])
    md = ["# Notebooks 01b and 01c: training groups in one process or side by side in workers (CPU)", "",
          f"Device: {device}; commits {', '.join(c[:10] for c in table.commit.unique())}; torch {torch.__version__}; "
          "one torch thread per process; written by `benchmarks/workers_time.py`. Each notebook's call (01b: "
          "`suite.run_methods` on one data set; 01c: `suite.run_levels`), with what it trains here: "
          + "; ".join(f"{r.notebook} on {r.dataset}: {r.trains}" for r in calls.itertuples()) + ". "
          "Every group is shortened to the same fraction of its full epochs, `e`, and then to `3e`, with one worker "
          f"and with {int(table.workers.max())}. `rows_identical`: every run's metrics are exactly those of one worker. "
          "`marginal_speedup`: what one worker's time grows by from `e` to `3e`, over what the workers' grows by: "
          "the speedup of the part that scales with the epochs, i.e. of the full profile's trainings.", "",
          *pipe_table(table.drop(columns=["trains", "device"]).round(2)), "", *pipe_table(summary.round(2)), ""]
    (out / "workers_time_cpu.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
