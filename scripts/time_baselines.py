"""Measured cost of every method of notebook 01b/01c under the full profile, by extrapolation.

The full profile (the paper's epochs, 20 runs) does not fit on a 2-core CPU. For each
training group of :mod:`dagmm.baselines.suite` and each dataset this script times all
``--runs`` runs trained together twice, with a few epochs ``E`` and with ``3 E``
(each time including set-up, mixture or k-means fitting and scoring the test half).
Training time is linear in epochs (every epoch has the same steps), so the full-profile
time is estimated as ``t(E) + (t(3E) - t(E)) / (2E) * (E_full - E)``; when ``t(3E) <= t(E)`` (a machine busy
with other work during the first measurement) the two cannot separate set-up from the cost per epoch and the
estimate is left empty rather than extrapolated. The shallow detectors are timed on ``--shallow-runs`` runs and
scaled to ``--runs``. Writes a CSV and a Markdown table.

    PYTHONPATH=lib python scripts/time_baselines.py --datasets thyroid,arrhythmia --device cpu
    PYTHONPATH=lib python scripts/time_baselines.py --rewrite reports/benchmarks/baselines_time_cpu_kddcup.csv
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from dagmm import paths
from dagmm.baselines import suite
from dagmm.configs import paper_setting
from dagmm.datasets import load_base
from dagmm.protocol import make_splits
from dagmm.reporting import pipe_table
from dagmm.timing import MEASURE_EPOCHS, extrapolable, extrapolate
from dagmm.engine.training import describe_device



def full_epochs(method: str, dataset: str) -> int:
    """The number of epochs of the full profile that the training of ``method`` scales with."""
    est = suite.make_estimator(method, dataset)
    return int(est.get_params()["epochs"])


def recompute(table: pd.DataFrame) -> pd.DataFrame:
    """A saved table with the estimates :func:`dagmm.timing.extrapolate` refuses blanked.

    The other estimates are kept as saved: they came from the unrounded measurements.
    """
    table = table.copy()
    for kind in ("wall", "cpu"):
        bad = table[f"{kind}_E"].notna() & ~pd.Series(map(extrapolable, table[f"{kind}_E"], table[f"{kind}_3E"]),
                                                        index=table.index)
        table.loc[bad, f"{kind}_full_estimate"] = float("nan")
    return table


def time_group(name, X, y, splits, methods, epochs, device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of all runs of ``methods`` with ``epochs`` epochs."""
    t0, c0 = time.perf_counter(), time.process_time()
    suite.run_methods(name, X, y, splits, methods, profile="full", device=device, verbose=False,
                      overrides=suite.shortened(methods, epochs))
    return time.perf_counter() - t0, time.process_time() - c0


COLUMNS = ["dataset", "methods", "n_runs", "epochs_measured", "epochs_full", "wall_E", "wall_3E", "cpu_E", "cpu_3E",
           "wall_measured", "cpu_measured", "wall_full_estimate", "cpu_full_estimate"]


def write_markdown(table: pd.DataFrame, path: Path) -> None:
    """The measurements as a Markdown page (columns in a fixed order, totals per dataset)."""
    device = ", ".join(table.device.unique())
    total = table.groupby("dataset", sort=False)[["wall_full_estimate", "cpu_full_estimate"]].sum(min_count=1) / 60
    md = ["# Cost of the baselines under the full profile (measured, extrapolated)", "",
          f"Device: {device}; all runs of a group trained together; torch threads: 1.",
          "Training groups share one training (times are for the whole group); shallow detectors one run after another.",
          "`wall_*`: elapsed seconds on a CPU shared with other jobs; `cpu_*`: CPU seconds of the process (what the",
          "same work costs one core of an otherwise idle machine; Isolation Forest uses every core, so its CPU time sums them).",
          "Estimates are in seconds for all runs under the full profile; an empty estimate means the longer",
          "measurement was no slower than the shorter one (the machine was busy), so nothing could be extrapolated.", "",
          *pipe_table(table[[c for c in COLUMNS if c in table]]), "",
          "Total per dataset over the groups estimated, minutes (wall / CPU): " +
          ", ".join(f"{d} {r.wall_full_estimate:.0f} / {r.cpu_full_estimate:.0f}" for d, r in total.iterrows()) +
          (f" ({missing} estimate(s) missing, not counted)" if (missing := int(table.wall_full_estimate.isna().sum() +
                                                                              table.cpu_full_estimate.isna().sum())) else ""),
          ""]
    path.write_text("\n".join(md))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="thyroid,arrhythmia")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--shallow-runs", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--groups", default="", help="comma-separated methods: time only the groups that hold them")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: the torch default)")
    ap.add_argument("--out", default=str(paths.BENCHMARKS / "baselines_time_{kind}.csv"))
    ap.add_argument("--rewrite", metavar="CSV", help="measure nothing: blank the estimates of a saved table that "
                    "cannot be extrapolated and rewrite it and its Markdown page")
    args = ap.parse_args(argv)
    if args.rewrite:
        out = Path(args.rewrite)
        recompute(pd.read_csv(out)).to_csv(out, index=False)
        write_markdown(pd.read_csv(out), out.with_suffix(".md"))
        print(f"rewrote {out} and {out.with_suffix('.md')}")
        return 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = describe_device(args.device)
    rows = []
    kind = "cuda" if device.startswith("cuda") else "cpu"
    out = Path(args.out.format(kind=kind))
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        pd.DataFrame(rows).to_csv(out, index=False)

    groups, shallow = suite.training_plan()
    for name in [d for d in args.datasets.split(",") if d]:
        X, y = load_base(name)
        splits = make_splits(name, y, range(args.runs))
        E = MEASURE_EPOCHS[name]
        time_group(name, X, y, splits[:2], ["DAGMM", "DSEBM-e"], 1, args.device)  # warm-up, not timed
        for group in groups:
            if args.groups and not set(group) & set(args.groups.split(",")):
                continue
            (w0, c0), (we, ce) = (time_group(name, X, y, splits, list(group), e, args.device) for e in (E, 3 * E))
            e_full = full_epochs(group[0], name)
            est_w, est_c = (extrapolate(a, b, E, e_full) for a, b in ((w0, we), (c0, ce)))
            rows.append(dict(dataset=name, methods=" / ".join(group), n_runs=args.runs, epochs_measured=f"{E}, {3 * E}",
                             epochs_full=e_full, wall_E=round(w0, 2), wall_3E=round(we, 2), cpu_E=round(c0, 2),
                             cpu_3E=round(ce, 2), wall_full_estimate=round(est_w, 1), cpu_full_estimate=round(est_c, 1),
                             device=device))
            save()
            print(f"{name:>11} | {' / '.join(group):<36} | {E} ep {w0:6.1f} s (cpu {c0:6.1f}) | {3 * E} ep {we:6.1f} s (cpu {ce:6.1f}) | "
                  f"full ({e_full} ep) ~ {est_w / 60:6.1f} min (cpu {est_c / 60:6.1f} min)", flush=True)
        sh_splits = splits[: args.shallow_runs]
        for m in shallow if not args.groups else [m for m in shallow if m in args.groups.split(",")]:
            t0, c0 = time.perf_counter(), time.process_time()
            suite.run_methods(name, X, y, sh_splits, [m], profile="full", device=args.device, verbose=False)
            w, c = time.perf_counter() - t0, time.process_time() - c0
            k = args.runs / len(sh_splits)
            rows.append(dict(dataset=name, methods=m, n_runs=args.runs, epochs_measured=None, epochs_full=None,
                             wall_measured=round(w, 2), cpu_measured=round(c, 2), wall_full_estimate=round(w * k, 1),
                             cpu_full_estimate=round(c * k, 1), device=device))
            save()
            print(f"{name:>11} | {m:<36} | {len(sh_splits)} runs {w:6.1f} s (cpu {c:6.1f}) | {args.runs} runs one after another "
                  f"~ {w * k / 60:6.1f} min (cpu {c * k / 60:6.1f} min)", flush=True)
    write_markdown(pd.DataFrame(rows), out.with_suffix(".md"))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
