"""Measured cost of every method of notebook 01b/01c under the full profile, by extrapolation.

The full profile (the paper's epochs, 20 runs) does not fit on a 2-core CPU. For each
training group of :mod:`dagmm.baselines.suite` and each dataset this script times all
``--runs`` runs trained together twice: with 0 epochs (the fixed part: set-up, mixture
or k-means fitting, scoring the test half) and with a few epochs ``E``. Training time
is linear in epochs (every epoch has the same steps), so the full-profile time is
estimated as ``t(0) + (t(E) - t(0)) * E_full / E``. The shallow detectors are timed on
``--shallow-runs`` runs and scaled to ``--runs``. Writes a CSV and a Markdown table.

    PYTHONPATH=lib python scripts/time_baselines.py --datasets thyroid,arrhythmia --device cpu
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
from dagmm.training import describe_device

MEASURE_EPOCHS = {"kddcup": 1, "kddcup_rev": 2, "thyroid": 20, "arrhythmia": 20}
EPOCH_PARAMS = ("epochs", "pretrain_epochs")


def full_epochs(method: str, dataset: str) -> int:
    """The number of epochs of the full profile that the training of ``method`` scales with."""
    est = suite.make_estimator(method, dataset)
    return int(est.get_params()["epochs"])


def overrides_for(methods, epochs: int) -> dict:
    out = {}
    for m in methods:
        params = suite.make_estimator(m, "thyroid").get_params()
        out[m] = {k: epochs for k in EPOCH_PARAMS if k in params and (k == "epochs" or params[k])}
    if "PAE" in methods:  # the shared pre-training is set by DAGMM-p's entry
        out["DAGMM-p"] = {"epochs": epochs, "pretrain_epochs": epochs}
    return out


def time_group(name, X, y, splits, methods, epochs, device) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    df = suite.run_methods(name, X, y, splits, methods, profile="full", device=device, verbose=False,
                           overrides=overrides_for(methods, epochs))
    return time.perf_counter() - t0, df


def markdown(df: pd.DataFrame) -> list[str]:
    """A pipe table (no tabulate dependency)."""
    cells = lambda r: "| " + " | ".join("" if pd.isna(v) else str(v) for v in r) + " |"  # noqa: E731
    return [cells(df.columns), "|" + "---|" * len(df.columns), *(cells(r) for r in df.itertuples(index=False))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="thyroid,arrhythmia")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--shallow-runs", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: the torch default)")
    ap.add_argument("--out", default=str(paths.BENCHMARKS / "baselines_time_{kind}.csv"))
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = describe_device(args.device)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    rows = []
    for name in [d for d in args.datasets.split(",") if d]:
        X, y = load_base(name)
        splits = make_splits(name, y, range(args.runs))
        E = MEASURE_EPOCHS[name]
        time_group(name, X, y, splits[:2], ["DAGMM", "DSEBM-e"], 1, args.device)  # warm-up, not timed
        for group in suite.GROUPS:
            t_fixed, _ = time_group(name, X, y, splits, list(group), 0, args.device)
            t_e, df = time_group(name, X, y, splits, list(group), E, args.device)
            e_full = full_epochs(group[0], name)
            est = t_fixed + (t_e - t_fixed) * e_full / E
            rows.append(dict(dataset=name, methods=" / ".join(group), n_runs=args.runs, epochs_measured=E,
                             seconds_0_epochs=round(t_fixed, 2), seconds_measured=round(t_e, 2), epochs_full=e_full,
                             seconds_full_estimate=round(est, 1), device=device))
            print(f"{name:>11} | {' / '.join(group):<36} | 0 ep {t_fixed:7.1f} s | {E} ep {t_e:7.1f} s | "
                  f"full ({e_full} ep) ~ {est / 60:7.1f} min", flush=True)
        sh_splits = splits[: args.shallow_runs]
        for m in suite.SHALLOW:
            t0 = time.perf_counter()
            suite.run_methods(name, X, y, sh_splits, [m], profile="full", device=args.device, verbose=False)
            t = time.perf_counter() - t0
            est = t * args.runs / len(sh_splits)
            rows.append(dict(dataset=name, methods=m, n_runs=args.runs, epochs_measured=None, seconds_0_epochs=None,
                             seconds_measured=round(t, 2), epochs_full=None, seconds_full_estimate=round(est, 1), device=device))
            print(f"{name:>11} | {m:<36} | {len(sh_splits)} runs {t:7.1f} s | {args.runs} runs one after another ~ {est / 60:7.1f} min", flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out.format(kind=kind))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    total = table.groupby("dataset", sort=False).seconds_full_estimate.sum() / 60
    md = ["# Cost of the baselines under the full profile (measured, extrapolated)", "",
          f"Device: {device}; {args.runs} runs trained together per group; torch threads: {torch.get_num_threads()}.",
          "Training groups share one training (times are for the whole group); shallow detectors one run after another.", "",
          *markdown(table.drop(columns="device")), "", "Total per dataset (minutes): " +
          ", ".join(f"{d} {v:.0f}" for d, v in total.items()), ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
