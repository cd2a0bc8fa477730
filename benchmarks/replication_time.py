"""Wall time of the full DAGMM replication (4 datasets x 20 runs, paper settings):
runs trained together versus one after another.

For each dataset, all ``--runs`` runs of the protocol (``dagmm.protocol.run_dagmm``:
data on the device, training, the whole-training-set mixture, scoring the test half)
are timed

* **together**: one batched model of ``--runs`` runs (what the notebooks do);
* **one after another**: ``--sequential-runs`` runs one at a time, scaled to ``--runs``.

Each is timed with ``E`` epochs and with ``3E``. Every epoch has the same steps, so the
time is linear in epochs and the full-profile time is estimated as
``t(E) + (t(3E) - t(E)) / (2E) * (E_full - E)`` (empty when the machine was busier during the
shorter measurement, see :func:`dagmm.timing.extrapolate`). With ``--compile`` each mode first runs
once untimed to compile its shapes, and that first run's extra time (``*_compile_s``) is added once
per estimate (runs after the first reuse the compiled code). With ``--full`` the together case is
also measured at the paper's epochs (feasible on a GPU). Writes
``reports/benchmarks/replication_time_<device>.csv`` and ``.md``, naming the machine.

Usage: ``python benchmarks/replication_time.py [--device auto] [--compile] [--full]`` (needs the data files).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from dagmm import DAGMM, paths
from dagmm.engine import allocator
from dagmm.configs import paper_setting
from dagmm.datasets import load_base
from dagmm.protocol import make_splits, run_dagmm
from dagmm.reporting import pipe_table
from dagmm.timing import MEASURE_EPOCHS, extrapolate
from dagmm.engine.training import describe_device, prepare_device

DATASETS = ("kddcup", "kddcup_rev", "thyroid", "arrhythmia")


def timed(name, X, y, splits, epochs, device, max_parallel, compile=False) -> float:
    """Seconds for all ``splits`` runs of DAGMM with ``epochs`` epochs."""
    est = DAGMM.from_paper(name, epochs=epochs, device=device, torch_compile=compile)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    run_dagmm(name, X, y, splits, est, rho=paper_setting(name)["contamination"], max_parallel=max_parallel)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t


def _cache_state() -> str:
    """Whether inductor's on-disk cache held anything when this benchmark started (cold compiles, or not)."""
    return "it was empty when this benchmark started: every compile was cold" if _CACHE_EMPTY_AT_START else (
        "it was not empty when this benchmark started: compiles may have been warm")


def _inductor_cache_empty() -> bool:
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    d = Path(cache_dir())
    return not d.exists() or not any(d.iterdir())


_CACHE_EMPTY_AT_START = _inductor_cache_empty()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sequential-runs", type=int, default=2, help="runs timed one after another (scaled to --runs)")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--full", action="store_true", help="also measure the together case at the paper's epochs")
    ap.add_argument("--compile", action="store_true", help="train with DAGMM(torch_compile=True) (CPU)")
    ap.add_argument("--out", default=str(paths.BENCHMARKS))
    args = ap.parse_args(argv)
    allocator.tune_process()  # what the study's notebooks ask for: the CPU settings long trainings are fast with
    dev = prepare_device(args.device)
    device = str(dev)
    rows = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        X, y = load_base(name)
        splits = make_splits(name, y, range(args.runs))
        e, e_full = MEASURE_EPOCHS[name], paper_setting(name)["epochs"]
        timed(name, X, y, splits[:1], 1, device, 1)  # warm-up (eager): data to the device, kernels, caches
        row = dict(dataset=name, n_runs=args.runs, epochs_full=e_full, epochs_measured=f"{e}, {3 * e}")
        for mode, sub, par in (("together", splits, args.runs), ("sequential", splits[: args.sequential_runs], 1)):
            if args.compile:  # compile this mode's shapes outside the timings; a full run pays that once
                t_first = timed(name, X, y, sub, e, device, par, args.compile)
            t_e = timed(name, X, y, sub, e, device, par, args.compile)
            t_3e = timed(name, X, y, sub, 3 * e, device, par, args.compile)
            scale = args.runs / len(sub)
            compile_s = max(0.0, t_first - t_e) if args.compile else 0.0
            row[f"{mode}_s_estimate"] = round(scale * extrapolate(t_e, t_3e, e, e_full) + compile_s, 1)
            if args.compile:
                row[f"{mode}_compile_s"] = round(compile_s, 1)
        if args.full:
            # the compile was paid before (warm cache): add it, as a fresh process pays it once
            row["together_s_measured"] = round(timed(name, X, y, splits, e_full, device, args.runs, args.compile)
                                               + row.get("together_compile_s", 0.0), 1)
        row["speedup"] = round(row["sequential_s_estimate"] / row["together_s_estimate"], 1)
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"replication_time_{dev.type}" + ("_compiled" if args.compile else "")
    table.insert(0, "device", describe_device(dev))
    table.to_csv(out / f"{stem}.csv", index=False)
    total = table[[c for c in table.columns if c.endswith("_s_estimate") or c.endswith("_s_measured")]].sum() / 60
    cols = [c for c in table.columns if c != "device"]
    md = [
        "# Wall time of the full DAGMM replication (4 datasets x 20 runs, paper settings)",
        "",
        f"Device: {describe_device(dev)}; torch {torch.__version__}; written by `benchmarks/replication_time.py`.",
        f"Memory: {allocator.describe()}. Training step: "
        + ("`torch.compile`d (DAGMM(torch_compile=True)); `*_compile_s`: the extra time of each mode's first, "
           "compiling run, counted once in its estimate and in the measured time; every network compiles anew (KDDCUP-Rev's "
           "mixture has K = 2, KDDCUP's K = 4), from inductor's on-disk cache when it holds that network "
           f"({_cache_state()})." if args.compile else "eager."),
        f"Each run includes the protocol's training, whole-training-set mixture and test scoring. `*_estimate`: "
        f"extrapolated from {', '.join(f'{k} {v}' for k, v in MEASURE_EPOCHS.items())} and three times as many epochs "
        f"(linear in epochs); sequential runs: {args.sequential_runs} timed one after another, scaled to {args.runs}.",
        "",
        *pipe_table(table[cols]),
        "",
        "Totals, minutes: " + ", ".join(f"{k.replace('_s_', ' ')} {v:.1f}" for k, v in total.items()),
        "",
    ]
    (out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
