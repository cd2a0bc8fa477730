"""What the whole study's full profile costs on this machine, notebook by notebook, at one commit.

The full profile (20 runs at the paper's epochs, and so on) takes tens of CPU hours, so it is not
run here: each notebook's work is cut into *pieces* (one training group on one data set, say), and
each piece is run through the very library call its notebook makes, with the notebook's own
parameter defaults (read from its parameters cell with papermill) and its thread settings, but a
shorter training. The full-profile time is then extrapolated by one rule, stated here and in the
page this writes:

* A piece is run with ``e`` epochs (or optimizer steps) and then with ``3 e``. Every epoch has
  the same steps, so a run costs ``t(e) = setup + e * per_epoch`` and the full length ``E`` costs
  ``t(e) + (t(3e) - t(e)) / (2 e) * (E - e)`` (:func:`dagmm.timing.extrapolate`). A piece whose
  step is compiled (notebook 01's) runs with ``e`` once more before: the notebook pays the cold
  compile once, so that first run's extra time over the second is added once.
* Runs that a notebook trains one after another (the image models on a CPU, the shallow
  detectors) are measured on fewer runs and scaled by the ratio of runs; the contamination levels
  of notebook 01c are measured at one level and scaled by the number of levels (each level trains
  the same number of runs on a training set of the same size, to within 5 %).
* Pieces with nothing to shorten are measured once, as they are.
* Where ``t(3e)`` is not above ``t(e)`` (set-up, e.g. notebook 06's PU classifier, swamps a few
  epochs of a small data set), the piece is measured again with ``10 e`` (at most a third of ``E``).

Each notebook's estimate is the sum of its pieces, except that notebooks 01b and 01c train their
groups in worker processes (their default on a CPU): their torch pieces' wall time is divided by
the marginal speedup ``benchmarks/workers_time.py`` measured (:func:`with_workers`). The page sets
the total beside the 8-hour target for the whole study on a 2-core CPU and beside the lower bound
of ``reports/benchmarks/study_floor_cpu.csv`` (the matrix multiplies of every training of DAGMM's
networks). Every row records the commit of ``lib/`` and ``notebooks/`` it was measured with
(``code``: their git tree hashes); rows measured with other code are not summed with these.

Writes ``reports/benchmarks/study_time_<device>.csv`` after every piece (so an interrupted run
keeps what it measured, and ``--resume`` skips those pieces) and the Markdown page at the end.

Usage: ``python benchmarks/study_time.py [--notebooks 01,01b] [--resume]`` with the data files in
``$DAGMM_DATA_DIR`` (takes about an hour and a half on a 2-core CPU; run it alone on the machine).
"""
from __future__ import annotations

import argparse
import ast
import functools
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import papermill
import torch

from dagmm import paths
from dagmm.configs import paper_setting
from dagmm.engine import allocator
from dagmm.engine.training import describe_device
from dagmm.reporting import pipe_table
from dagmm.timing import MEASURE_EPOCHS, extrapolate, marginal_speedup

# scripts/time_baselines.py run with the code from before issue 27's changes, on this machine, if it was
BEFORE = "study_time_cpu_01b_before.csv"
TARGET_HOURS = 8.0  # issue 27: the whole study's full profile on the 2-core CPU
FEW_RUNS = 4  # runs of DSEBM, DCN and Deep SVDD measured on KDDCUP and KDDCUP-Rev (scaled to the notebook's)
LARGE = ("kddcup", "kddcup_rev")
NOTEBOOKS = {"01": "01_replication", "01b": "01b_baselines", "01c": "01c_contamination",
             "01d": "01d_training_length", "01e": "01e_energy_vs_reconstruction", "02": "02_conv_dagmm",
             "03": "03_residual_dagmm", "04": "04_vae_vqvae", "05": "05_laplacian", "06": "06_pu_thresholding",
             "06b": "06b_modified_loss", "08": "08_beyond_the_paper"}
# 07 trains nothing (it reads the other notebooks' tables).


@dataclass
class Piece:
    """One measured part of a notebook's work.

    ``run(e)`` does the part with ``e`` epochs (or steps); ``e=None`` for a part with nothing to
    shorten. ``full`` is the full profile's epochs; ``scale`` multiplies the measured times (runs
    or levels measured on a fraction of the notebook's), and ``rule`` says why.
    """

    notebook: str
    piece: str
    run: Callable[[int | None], object]
    e: int | None = None
    full: int | None = None
    unit: str = "epochs"
    threads: int = 0
    scale: float = 1.0
    rule: str = ""
    compiles: bool = False


def defaults(stem: str) -> dict:
    """The parameter defaults of ``notebooks/<stem>.ipynb`` (its parameters cell), as Python values."""
    found = papermill.inspect_notebook(str(paths.NOTEBOOKS / f"{stem}.ipynb"))
    return {k: ast.literal_eval(v["default"]) for k, v in found.items()}


def names(spec: str) -> list[str]:
    return [s.strip() for s in str(spec).split(",") if s.strip()]


def code_version() -> str:
    """Git tree hashes of ``lib/`` and ``notebooks/`` (the code a measurement ran), ``+dirty`` if changed."""
    root = paths.ROOT
    trees = [subprocess.run(["git", "rev-parse", f"HEAD:{d}"], cwd=root, capture_output=True, text=True).stdout.strip()[:10]
             for d in ("lib", "notebooks")]
    dirty = subprocess.run(["git", "status", "--porcelain", "lib", "notebooks"], cwd=root, capture_output=True,
                           text=True).stdout.strip()
    return "/".join(trees) + ("+dirty" if dirty else "")


# --------------------------------------------------------------------------------------------------
# the pieces of each notebook: the calls it makes, shortened


def short_epochs(dataset: str, full: int) -> int:
    """``e`` of a training of ``full`` epochs: the data set's :data:`dagmm.timing.MEASURE_EPOCHS`, at most
    a twentieth of ``full``."""
    return max(1, min(MEASURE_EPOCHS[dataset], full // 20))


@functools.cache
def data(dataset: str, n_runs: int | None = None) -> dict:
    """``X``, ``y`` of a data set (and with ``n_runs``, the full profile's ``splits``), loaded on a piece's
    first run and once for all the pieces that use them (pieces are built long before they run)."""
    from dagmm.baselines import suite
    from dagmm.datasets import load_base
    X, y = load_base(dataset)
    return dict(X=X, y=y, **({} if n_runs is None else {"splits": suite.profile_splits(dataset, y, n_runs, "full")}))


def pieces_01() -> list[Piece]:
    from dagmm.study import replicate_dataset
    p = defaults(NOTEBOOKS["01"])
    compile_step = p["torch_compile"] in ("yes", "auto")  # "auto": compiled under the full profile on a CPU
    extra = ({"DAGMM (z-score)": {"preprocessing": "zscore"},
              "DAGMM (untrained, z-score)": {"preprocessing": "zscore", "epochs": 0}} if p["zscore"] else {})
    out = []
    for d in names(p["datasets"]):
        out.append(Piece("01", f"{d}: DAGMM{' and DAGMM (z-score)' if extra else ''}, controls", e=MEASURE_EPOCHS[d],
                         full=paper_setting(d)["epochs"], compiles=compile_step,
                         run=lambda e, d=d: replicate_dataset(d, p["n_runs"], epochs=e, device="cpu",
                                                              max_parallel=p["max_parallel"], extra=extra,
                                                              verbose=False, torch_compile=compile_step)))
    return out


def _is_dagmm(method: str) -> bool:
    """Whether ``method`` trains DAGMM's networks (DAGMM and its ablations)."""
    from dagmm.baselines import suite
    from dagmm.baselines.ablations import DAGMMVariant
    return isinstance(suite.make_estimator(method, "thyroid"), DAGMMVariant)


def _group_of(method: str) -> tuple[str, ...]:
    """The training group ``method`` trains in (its first method's estimator trains it)."""
    from dagmm.baselines import suite
    return next(g for g in suite.training_plan()[0] if method in g)


def pieces_01b(few_runs: int = FEW_RUNS) -> list[Piece]:
    """``few_runs``: the runs of DSEBM, DCN and Deep SVDD measured on the large sets (:data:`FEW_RUNS`)."""
    from dagmm.baselines import suite
    p = defaults(NOTEBOOKS["01b"])
    groups, shallow = suite.training_plan()
    out = []
    for d in names(p["datasets"]):
        setup = lambda d=d: data(d, p["n_runs"])  # noqa: E731
        for g in groups:
            full = int(suite.make_estimator(g[0], d).get_params()["epochs"])
            k = min(few_runs, p["n_runs"]) if d in LARGE and not _is_dagmm(g[0]) else p["n_runs"]
            out.append(Piece("01b", f"{d}: {' / '.join(g)}", e=short_epochs(d, full), full=full,
                             threads=p["cpu_threads"], scale=p["n_runs"] / k,
                             rule="" if k == p["n_runs"] else f"{k} of {p['n_runs']} runs, trained together",
                             run=lambda e, d=d, g=g, k=k, setup=setup: suite.run_methods(
                                 d, setup()["X"], setup()["y"], setup()["splits"][:k], g, device="cpu",
                                 max_parallel=p["max_parallel"], n_jobs=p["n_jobs"], verbose=False,
                                 overrides=suite.shortened(g, e))))
        k = 2
        out.append(Piece("01b", f"{d}: {', '.join(shallow)}", threads=p["cpu_threads"], scale=p["n_runs"] / k,
                         rule=f"{k} of {p['n_runs']} runs, one after another",
                         run=lambda e, d=d, setup=setup: suite.run_methods(
                             d, setup()["X"], setup()["y"], setup()["splits"][:k], shallow, device="cpu",
                             n_jobs=p["n_jobs"], verbose=False)))
    return out


def pieces_01c() -> list[Piece]:
    from dagmm.baselines import suite
    p = defaults(NOTEBOOKS["01c"])
    d, levels = p["dataset"], [float(c) for c in names(p["levels"])]
    setup = lambda: data(d)  # noqa: E731

    out = []
    for m in names(p["methods"]):
        trains = hasattr(suite.make_estimator(m, d), "_fit_runs")
        k = (p["n_runs"] if _is_dagmm(m) or d not in LARGE else FEW_RUNS) if trains else 2
        full = int(suite.make_estimator(m, d).get_params()["epochs"]) if trains else None
        out.append(Piece("01c", f"{d}: {m}", e=short_epochs(d, full) if trains else None, full=full,
                         threads=p["cpu_threads"], scale=len(levels) * p["n_runs"] / k,
                         rule=f"one level of {len(levels)}" + ("" if k == p["n_runs"] else f", {k} of {p['n_runs']} runs"),
                         run=lambda e, m=m, k=k, trains=trains: suite.run_levels(
                             d, setup()["X"], setup()["y"], levels[:1], k, [m], device="cpu", max_parallel=20,
                             n_jobs=p["n_jobs"], verbose=False,
                             **({"overrides": suite.shortened(_group_of(m), e)} if trains else {}))))
    return out


def pieces_checkpoints(nb: str, e: int) -> list[Piece]:
    """01d and 01e: one long training per variant, scored at five checkpoints; measured with the
    same number of checkpoints spread evenly over ``e`` and ``3 e`` epochs."""
    from dagmm.study import VARIANTS, epochs_investigation
    p = defaults(NOTEBOOKS[nb])
    stops = [int(c) for c in names(p["checkpoints"])]
    chosen = {v: VARIANTS[v] for v in names(p["variants"])}
    k = len(stops)

    def run(n):
        epochs_investigation(p["dataset"], p["n_runs"], tuple(sorted({max(1, n * (i + 1) // k) for i in range(k)})),
                             variants=chosen,
                             scores=("energy", "recon"), device="cpu", max_parallel=p["max_parallel"], verbose=False)

    return [Piece(nb, f"{p['dataset']}: {', '.join(chosen)} ({k} checkpoints)", e=e, full=max(stops),
                  threads=p["cpu_threads"], run=run, rule=f"{k} checkpoints at e/{k}, 2e/{k}, ...")]


def pieces_images(nb: str) -> list[Piece]:
    from dagmm.image_study import run_framework
    p = defaults(NOTEBOOKS[nb])
    framework = "conv" if nb == "02" else "resconv"  # the FRAMEWORK of each notebook
    params = dict(latent_dim=p["latent_dim"], n_components=p["n_components"], lambda_energy=p["lambda_energy"],
                  lambda_cov=p["lambda_cov"], lr=p["lr"], batch_size=p["batch_size"], device="cpu")
    out = []
    for d in names(p["datasets"]):
        out.append(Piece(nb, f"{d}: {framework} DAGMM and its autoencoder", e=1, full=p[f"epochs_{d}"],
                         threads=p["threads"], scale=p["n_runs"], rule=f"1 of {p['n_runs']} runs, one after another",
                         run=lambda e, d=d: run_framework(framework, [d], 1, {d: e}, image_size=p["image_size"],
                                                          max_parallel=1, percentile=p["percentile"],
                                                          verbose=False, **params)))
    return out


VARIANT_NOTEBOOKS = ("04", "05", "06", "06b")


def variant_methods(nb: str) -> dict[str, dict] | None:
    """The DAGMM variants notebook ``nb`` (04, 05 or 06b) trains on each data set, with the keywords of
    :func:`dagmm.variants.run_variant` from its defaults; None for 06 (DAGMM once, read out three ways)."""
    from dagmm import variants
    p = defaults(NOTEBOOKS[nb])
    if nb == "04":
        return {"DAGMM-VAE": dict(compressor="vae", kl_weight=p["kl_weight"]),
                "DAGMM-VQVAE": dict(compressor="vqvae", n_codes=p["n_codes"], commitment=p["commitment"])}
    if nb == "05":
        return {"DAGMM Laplacian": dict(mixture="laplace")}
    if nb == "06b":
        return {m: {**variants.VARIANTS[m], "anomaly_margin": p["anomaly_margin"]}
                for m in ("DAGMM modified loss", "DAGMM modified loss (hinge)")}
    return None


def pieces_variants(nb: str) -> list[Piece]:
    from dagmm import variants
    p = defaults(NOTEBOOKS[nb])
    methods = variant_methods(nb)
    out = []
    for d in names(p["datasets"]):
        if methods is None:
            out.append(Piece(nb, f"{d}: DAGMM read out three ways (PU threshold included)", e=MEASURE_EPOCHS[d],
                             full=paper_setting(d)["epochs"],
                             run=lambda e, d=d: variants.run_dagmm_heads(
                                 d, p["n_runs"], epochs=e, device="cpu", max_parallel=p["max_parallel"],
                                 label_fraction=p["label_fraction"], pu_max_unlabelled=20_000, verbose=False)))
            continue
        for m, kw in methods.items():
            extra = {"label_fraction": p["label_fraction"]} if "label_fraction" in p else {}
            out.append(Piece(nb, f"{d}: {m}", e=MEASURE_EPOCHS[d], full=paper_setting(d)["epochs"],
                             run=lambda e, d=d, m=m, kw=kw: variants.run_variant(
                                 d, p["n_runs"], m, kw, epochs=e, device="cpu", max_parallel=p["max_parallel"],
                                 verbose=False, **extra)))
    return out


def pieces_08() -> list[Piece]:
    from dagmm import DAGMM, beyond, defaults as dflt
    p = defaults(NOTEBOOKS["08"])
    sets = names(p["datasets"]) or list(beyond.DATASETS)
    methods = names(p["methods"]) or list(beyond.METHODS)
    seeds = list(range(p["n_runs"]))
    full_steps = DAGMM().steps
    prev = "DAGMM (previous defaults)"
    out = [Piece("08", f"{len(sets)} ADBench sets: every method but {prev}", e=full_steps // 50, full=full_steps,
                 unit="steps", threads=p["cpu_threads"],
                 run=lambda e: beyond.run_datasets(sets, seeds, [m for m in methods if m != prev], base=dict(steps=e),
                                                   device="cpu", verbose=False))]
    if prev in methods:
        def run_prev(e):
            saved = dict(beyond.DAGMM_METHODS[prev])
            beyond.DAGMM_METHODS[prev]["epochs"] = e  # only here: the notebook trains the previous defaults' 200 epochs
            try:
                beyond.run_datasets(sets, seeds, [prev], device="cpu", scores=False, verbose=False)
            finally:
                beyond.DAGMM_METHODS[prev].clear()
                beyond.DAGMM_METHODS[prev].update(saved)

        full = dflt.PREVIOUS_DEFAULTS["epochs"]
        out.append(Piece("08", f"{len(sets)} ADBench sets: {prev}", e=max(1, full // 40), full=full,
                         threads=p["cpu_threads"], run=run_prev))
    return out


def runs_rule_checks() -> list[Piece]:
    """The pieces of 01b measured on :data:`FEW_RUNS` runs, measured again on all of the notebook's
    runs: whether scaling by the ratio of runs holds (the page sets the two estimates side by side)."""
    few = {p.piece for p in pieces_01b() if p.scale > 1 and p.e is not None}
    checks = [p for p in pieces_01b(few_runs=10**6) if p.piece in few]
    for p in checks:
        p.notebook, p.rule = "check", "all runs, to check the rule of the piece of the same name"
    return checks


BUILDERS = {"check": runs_rule_checks, "01": pieces_01, "01b": pieces_01b, "01c": pieces_01c,
            "01d": lambda: pieces_checkpoints("01d", 5), "01e": lambda: pieces_checkpoints("01e", 100),
            "02": lambda: pieces_images("02"), "03": lambda: pieces_images("03"),
            "04": lambda: pieces_variants("04"), "05": lambda: pieces_variants("05"),
            "06": lambda: pieces_variants("06"), "06b": lambda: pieces_variants("06b"), "08": pieces_08}
# measured in this order: the notebooks that cost most first, so a run cut short has measured those
ORDER = ("01b", "01", "01c", "06", "08", "01d", "01e", "04", "06b", "05", "02", "03", "check")


# --------------------------------------------------------------------------------------------------
# measuring


def timed(fn, arg) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn(arg)``."""
    t, c = time.perf_counter(), time.process_time()
    fn(arg)
    return time.perf_counter() - t, time.process_time() - c


def measure(piece: Piece) -> dict:
    """The piece's times and its full-profile estimate (see the module docstring for the rule); a piece
    whose longer run was not slower (set-up swamped the epochs) is measured again with ten times ``e``
    (at most a third of the full length)."""
    row = _measure(piece)
    longer = None if piece.e is None else min(10 * piece.e, piece.full // 3)
    if longer and longer > piece.e and not math.isfinite(row["wall_estimate"]):
        piece.e = longer
        row = _measure(piece)
    return row


def _measure(piece: Piece) -> dict:
    torch.set_num_threads(piece.threads or DEFAULT_THREADS)
    row = dict(notebook=piece.notebook, piece=piece.piece, threads=torch.get_num_threads(), unit=piece.unit if piece.e else "",
               e=piece.e, full=piece.full, scale=piece.scale, rule=piece.rule)
    if piece.e is None:
        wall, cpu = timed(piece.run, None)
        row.update(wall_e=wall, cpu_e=cpu, wall_estimate=wall * piece.scale, cpu_estimate=cpu * piece.scale)
        return row
    one = timed(piece.run, piece.e)
    first = (float("nan"), float("nan"))
    if piece.compiles:  # the first run compiled; the notebook pays that once, the runs after it a cache lookup
        first, one = one, timed(piece.run, piece.e)
    three = timed(piece.run, 3 * piece.e)
    for i, kind in enumerate(("wall", "cpu")):
        once = max(0.0, first[i] - one[i]) if piece.compiles else 0.0
        est = extrapolate(one[i], three[i], piece.e, piece.full)
        row.update({f"{kind}_first": first[i], f"{kind}_e": one[i], f"{kind}_3e": three[i],
                    f"{kind}_estimate": (est + once) * piece.scale if math.isfinite(est) else float("nan")})
    return row


COLUMNS = ["notebook", "piece", "threads", "unit", "e", "full", "scale", "rule", "wall_first", "wall_e", "wall_3e",
           "wall_estimate", "cpu_first", "cpu_e", "cpu_3e", "cpu_estimate", "code", "commit", "device", "finished"]


def _check_lines(checks: pd.DataFrame, pieces: pd.DataFrame) -> list[str]:
    """The runs rule's checks: the estimate from all runs against the one scaled from a few."""
    out = []
    for _, c in checks.iterrows():
        scaled = pieces[(pieces.notebook == "01b") & (pieces.piece == c.piece)]
        if len(scaled):
            ratio = c.wall_estimate / scaled.wall_estimate.iloc[0]
            out.append(f"- Check of the runs rule, {c.piece}: {c.wall_estimate / 60:.1f} min from all runs against "
                       f"{scaled.wall_estimate.iloc[0] / 60:.1f} min scaled from {FEW_RUNS} (ratio {ratio:.2f}).")
    return out


def before_after(pieces: pd.DataFrame, folder: Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Notebook 01b's trainings as ``scripts/time_baselines.py`` estimated them before issue 27's changes
    (``baselines_time_cpu*.csv``, with the commits that wrote them) beside this measurement: CPU minutes,
    for the (data set, training) pairs both measured."""
    folder = paths.BENCHMARKS if folder is None else folder
    frames, commits = [], []
    files = [folder / BEFORE] if (folder / BEFORE).exists() else sorted(folder.glob("baselines_time_cpu*.csv"))
    for f in files:
        old = pd.read_csv(f)
        frames.append(old.assign(piece=old.dataset + ": " + old.methods))
        if "commit" in old:  # measured here with the code of that commit
            commit = f"measured with the code of {', '.join(old.commit.astype(str).str[:7].unique())}"
        else:  # measured with the code of the commit that wrote it
            commit = subprocess.run(["git", "log", "-1", "--format=%h %ad", "--date=short", "--", str(f)],
                                    cwd=paths.ROOT, capture_output=True, text=True).stdout.strip() or "not committed"
        commits.append(f"`{f.name}` ({commit}; {', '.join(old.device.astype(str).unique())})")
    if not frames:
        return pd.DataFrame(), []
    old = pd.concat(frames, ignore_index=True)[["piece", "cpu_full_estimate"]].dropna()
    now = pieces[pieces.notebook == "01b"][["piece", "cpu_estimate"]].dropna()
    both = old.merge(now, on="piece")
    both = pd.DataFrame(dict(training=both.piece, cpu_minutes_before=both.cpu_full_estimate / 60,
                             cpu_minutes_now=both.cpu_estimate / 60))
    both["ratio"] = both.cpu_minutes_before / both.cpu_minutes_now
    if not len(both):
        return both, []
    lines = [f"- Over these {len(both)} trainings: {both.cpu_minutes_before.sum() / 60:.1f} CPU hours before, "
             f"{both.cpu_minutes_now.sum() / 60:.1f} now. Before: {', '.join(commits)}, one torch thread (CPU time: "
             "the process's own, what counts on a machine shared with other jobs); now: this page's commit."]
    return both, lines


def _before_after_section(pieces: pd.DataFrame) -> list[str]:
    both, lines = before_after(pieces)
    if not len(both):
        return []
    return ["", "## Notebook 01b before and after", "",
            "The trainings that `scripts/time_baselines.py` estimated before issue 27's changes (the same rule: "
            "`E` and `3E` epochs, extrapolated), beside this page's estimates, in CPU minutes:", "",
            *pipe_table(both.round(2)), "", *lines]


WORKERS = "workers_time_cpu.csv"  # benchmarks/workers_time.py: notebooks 01b and 01c with their workers


def speedups(measured: pd.DataFrame) -> pd.DataFrame:
    """Per (notebook, dataset) of ``workers_time.py``'s rows: what one worker's and the most workers'
    wall time grow by from ``e`` to ``3e`` epochs, their ratio (the marginal speedup,
    :func:`dagmm.timing.marginal_speedup`) and whether every run's rows were identical."""
    out = []
    for (nb, d), g in measured.groupby(["notebook", "dataset"], sort=False):
        t, n = g.set_index(["workers", "epochs"]).wall_s, int(g.workers.max())
        out.append(dict(notebook=nb, dataset=d, workers=n, added_s_one=t[1, "3e"] - t[1, "e"],
                        added_s_workers=t[n, "3e"] - t[n, "e"],
                        marginal_speedup=marginal_speedup(t[1, "e"], t[1, "3e"], t[n, "e"], t[n, "3e"]),
                        rows_identical=bool(g.rows_identical.all())))
    return pd.DataFrame(out)


def with_workers(pieces: pd.DataFrame, path: Path | None = None) -> tuple[pd.Series, list[str]]:
    """Each piece's wall estimate as its notebook runs it by default on this CPU.

    The pieces of notebooks 01b and 01c are measured in one process, one training group after
    another. With ``workers`` (their default: one per ``cpu_threads`` cores) the groups' runs are
    trained side by side, so the wall time of their torch pieces is divided by the marginal speedup
    ``benchmarks/workers_time.py`` measured for that notebook and data set (where it measured none,
    the notebook's smallest; at most the number of workers, since a measured speedup above it is
    noise); the shallow detectors run in the notebook's process either way. For
    01c it measures DAGMM, most of the notebook's time, and its speedup serves DCN and DSEBM-e too.
    ``path``: the workers benchmark's CSV (default ``reports/benchmarks/workers_time_cpu.csv``).
    Returns the wall estimates and the lines that say so.
    """
    from dagmm.baselines import suite

    path = paths.BENCHMARKS / WORKERS if path is None else path
    wall = pieces.wall_estimate.copy()
    if not path.exists():
        return wall, []
    measured = pd.read_csv(path, dtype={"commit": str})
    lines = []
    for nb, m in speedups(measured).groupby("notebook", sort=False):
        p = defaults(NOTEBOOKS[nb])
        n = suite.resolve_workers(p["workers"], "cpu", threads=p["cpu_threads"] or DEFAULT_THREADS)
        if n < 2 or n != int(m.workers.iloc[0]) or m.marginal_speedup.isna().all():
            continue
        measured_speedup = m.set_index("dataset").marginal_speedup.dropna()
        speedup = measured_speedup.clip(upper=n)  # more than n workers can give is noise, not a saving
        trained = (pieces.notebook == nb) & pieces.e.notna()
        for i in pieces.index[trained]:
            wall[i] = pieces.wall_estimate[i] / speedup.get(pieces.piece[i].split(":")[0], speedup.min())
        capped = [f"{d} {v:.2f}" for d, v in measured_speedup.items() if v > n]
        commits = measured[measured.notebook == nb].commit.unique()
        lines.append(f"- Notebook {nb} trains with {n} workers here (its default `workers`): its torch pieces' wall "
                     f"time is divided by the marginal speedup `workers_time_cpu.md` measured at commit "
                     f"{', '.join(c[:10] for c in commits)} ({', '.join(f'{d} {v:.2f}' for d, v in speedup.items())}; "
                     f"elsewhere {speedup.min():.2f})"
                     + (f", at most {n}, the number of workers (measured: {', '.join(capped)})" if capped else "")
                     + ". Its one-process estimate is in `wall_hours_one_process`; the workers change nothing that "
                     "one process runs, only which process runs it.")
    return wall, lines


def write_page(table: pd.DataFrame, out: Path, stem: str, floor_path: Path | None = None,
               workers_path: Path | None = None) -> str:
    """The Markdown page: per-notebook totals against the target and the floor, then every piece."""
    code = table.code.iloc[0]
    same = table[table.code == code]
    checks = same[same.notebook == "check"]
    same = same[same.notebook != "check"]
    wall, workers_lines = with_workers(same, workers_path)
    hours = lambda s: s.sum(min_count=len(s)) / 3600  # noqa: E731  (NaN if a piece has no estimate)
    per_nb = (same.assign(wall_with_workers=wall)
              .groupby("notebook", sort=False).agg(pieces=("piece", "size"), wall_hours=("wall_with_workers", hours),
                                                   wall_hours_one_process=("wall_estimate", hours),
                                                   cpu_hours=("cpu_estimate", hours)))
    missing = [nb for nb in ORDER if nb not in per_nb.index and nb in NOTEBOOKS]
    unestimated = list(per_nb.index[per_nb.wall_hours.isna()])
    per_nb = per_nb.reindex([nb for nb in NOTEBOOKS if nb in per_nb.index])
    total = per_nb.wall_hours.sum(min_count=1)
    floor_path = paths.BENCHMARKS / "study_floor_cpu.csv" if floor_path is None else floor_path
    floor_lines = []
    if floor_path.exists():
        fl = pd.read_csv(floor_path).groupby("notebook")[["peak_minutes", "gemm_minutes"]].sum()
        per_nb = per_nb.join((fl / 60).rename(columns={"peak_minutes": "floor_peak_hours", "gemm_minutes": "floor_gemm_hours"}))
        floor_lines = [f"- The floor (`study_floor_cpu.md`: the matrix multiplies of the trainings that use DAGMM's "
                       f"networks, at this CPU's best rate / as GEMMs at their shapes) is "
                       f"{fl.peak_minutes.sum() / 60:.1f} / {fl.gemm_minutes.sum() / 60:.1f} hours for notebooks "
                       f"{', '.join(fl.index)}."]
    verdict = "within" if total <= TARGET_HOURS else f"{total / TARGET_HOURS:.1f} times"
    lines = [
        "# The whole study's full profile on this CPU, notebook by notebook (measured short, extrapolated)", "",
        f"Device: {table.device.iloc[0]}; code: commit {table.commit.iloc[0][:10]} (`lib/` and `notebooks/` trees "
        f"{code}); torch {torch.__version__}; written by `benchmarks/study_time.py`. Each notebook's work is cut into "
        "pieces, each run through the library call its notebook makes, with the notebook's parameter defaults and "
        "threads but a shorter training, and extrapolated: the rule is in the script's docstring and, in short, "
        "`t(e) + (t(3e) - t(e)) / (2e) * (E - e)` plus the first run's one-time extra, times `scale` for runs or "
        "levels measured on a fraction. Wall hours are what a run alone on this machine takes; CPU hours the "
        "process's CPU time (summing every thread it used).", "",
        *pipe_table(per_nb.round(2).reset_index()), "",
        f"- **Total: {total:.1f} hours** of wall time for the full profile of every notebook measured here, "
        f"against the target of {TARGET_HOURS:.0f} hours: "
        + ("within the target." if verdict == "within" else f"{verdict} the target."),
        *workers_lines,
        *floor_lines,
        *([f"- Not measured with this code: notebooks {', '.join(missing)} (so the total leaves them out)."]
          if missing else []),
        *([f"- No estimate for notebooks {', '.join(unestimated)}: a piece's longer measurement was not slower than "
           "its shorter one (the machine was busier then; see the pieces), so the total leaves them out."]
          if unestimated else []),
        *_check_lines(checks, same),
        *_before_after_section(same),
        "", "## Every piece", "",
        *pipe_table(same[[c for c in COLUMNS if c not in ("code", "commit", "device")]].round(2)), "",
    ]
    text = "\n".join(lines)
    (out / f"{stem}.md").write_text(text)
    return text


DEFAULT_THREADS = torch.get_num_threads()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notebooks", default=",".join(ORDER), help="comma-separated notebook numbers")
    ap.add_argument("--out", default=str(paths.BENCHMARKS))
    ap.add_argument("--resume", action="store_true", help="skip pieces measured with this code in the CSV")
    ap.add_argument("--page-only", action="store_true", help="rewrite the Markdown page from the CSV")
    ap.add_argument("--check", action="store_true", help="run every piece once with 1 epoch (or step), measure nothing")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "study_time_cpu"
    csv = out / f"{stem}.csv"
    if args.page_only:
        print(write_page(pd.read_csv(csv), out, stem))
        return 0
    allocator.tune_process()  # what the notebooks ask for (engine.tune_process)
    code, commit = code_version(), subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True,
                                                  text=True).stdout.strip()
    device = describe_device(torch.device("cpu"))
    done = pd.read_csv(csv) if args.resume and csv.exists() else pd.DataFrame(columns=COLUMNS)
    done = done[done.code == code]
    rows = done.to_dict("records")
    chosen = [nb for nb in ORDER if nb in names(args.notebooks)]
    for nb in chosen:
        for piece in BUILDERS[nb]():
            if ((done.notebook == nb) & (done.piece == piece.piece)).any():
                continue
            t0 = time.perf_counter()
            if args.check and nb not in ("01c", "01d") and piece.piece.startswith("kddcup"):
                continue  # the same calls as on the smaller sets
            if args.check:  # each call once, as short as it goes: that the pieces run, not what they cost
                torch.set_num_threads(piece.threads or DEFAULT_THREADS)
                piece.run(None if piece.e is None else 1)
                print(f"{nb:>4} {piece.piece:<70} ran in {time.perf_counter() - t0:.0f} s", flush=True)
                continue
            try:
                row = measure(piece)
            except Exception as exc:  # noqa: BLE001  (one piece's failure must not lose the others)
                print(f"{nb:>4} {piece.piece}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            row.update(code=code, commit=commit, device=device, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
            rows.append(row)
            pd.DataFrame(rows)[COLUMNS].to_csv(csv, index=False)
            print(f"{nb:>4} {piece.piece:<70} estimate {row['wall_estimate'] / 60:8.1f} min "
                  f"(measured in {time.perf_counter() - t0:.0f} s)", flush=True)
    if not args.check and rows:
        print(write_page(pd.DataFrame(rows)[COLUMNS], out, stem))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
