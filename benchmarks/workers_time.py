"""Notebooks 01b and 01c on a CPU: their training groups one after another, or two side by side.

Both notebooks train with one torch thread (fastest for these small networks) and, by default, one
training group at a time, so on a 2-core CPU one core waits. ``suite.run_methods(workers=2)`` trains
two groups side by side in worker processes, each with the same one thread, so every run's result is
bitwise what it is with one worker (tested in ``tests/test_baselines.py``). This benchmark times every
torch training group of a data set, shortened to ``e`` epochs (as ``study_time.py`` measures them),
with ``--workers 1`` and with more, in one process, and checks that the per-run rows agree.

Writes ``reports/benchmarks/workers_time_cpu.csv`` and ``.md``.

Usage: ``python benchmarks/workers_time.py [--datasets thyroid,kddcup_rev] [--workers 2]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_time import SHORT  # noqa: E402

from dagmm import paths  # noqa: E402
from dagmm.baselines import suite  # noqa: E402
from dagmm.datasets import load_base  # noqa: E402
from dagmm.engine import allocator  # noqa: E402
from dagmm.engine.training import describe_device  # noqa: E402
from dagmm.reporting import git_commit, pipe_table  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="thyroid,arrhythmia,kddcup_rev")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=str(paths.BENCHMARKS))
    args = ap.parse_args(argv)
    allocator.tune_process()
    torch.set_num_threads(1)  # the notebooks' cpu_threads
    groups, _ = suite.training_plan()
    methods = [m for g in groups for m in g]
    rows = []
    for d in [s.strip() for s in args.datasets.split(",") if s.strip()]:
        X, y = load_base(d)
        splits = suite.profile_splits(d, y, args.runs, "full")
        overrides = {}
        for g in groups:
            full = int(suite.make_estimator(g[0], d).get_params()["epochs"])
            overrides.update(suite.shortened(g, max(1, min(SHORT[d], full // 20))))
        got = {}
        for w in (1, args.workers):
            t = time.perf_counter()
            got[w] = suite.run_methods(d, X, y, splits, methods, device="cpu", max_parallel=20, verbose=False,
                                       overrides=overrides, workers=w)
            rows.append(dict(dataset=d, workers=w, groups=len(groups), runs=args.runs, wall_s=time.perf_counter() - t))
            print(rows[-1], flush=True)
        metrics = ["precision", "recall", "f1", "auroc", "auprc", "failed"]
        same = got[1][["method", "run"] + metrics].equals(got[args.workers][["method", "run"] + metrics])
        for r in rows[-2:]:
            r["rows_identical"] = same
        rows[-1]["speedup"] = rows[-2]["wall_s"] / rows[-1]["wall_s"]
    table = pd.DataFrame(rows)
    out = Path(args.out)
    table.assign(device=describe_device(torch.device("cpu")), commit=git_commit()).to_csv(out / "workers_time_cpu.csv",
                                                                                          index=False)
    md = ["# Notebook 01b's training groups with one worker or several (CPU, one torch thread each)", "",
          f"Device: {describe_device(torch.device('cpu'))}; commit {git_commit()[:10]}; torch {torch.__version__}; "
          "written by `benchmarks/workers_time.py`. Every torch training group of a data set, each shortened to the "
          "epochs `study_time.py` measures it with, run by `suite.run_methods` one group at a time (`workers=1`) "
          f"and {args.workers} side by side; `rows_identical`: every run's metrics agree exactly.", "",
          *pipe_table(table.round(2)), ""]
    (out / "workers_time_cpu.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
