"""Writes notebooks/01c_contamination.ipynb (the paper's Table 3: training data contaminated
with anomalies, KDDCUP). The .ipynb is committed without outputs."""
import nbformat as nbf
from notebook_file import write_notebook  # scripts/, beside this file

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell
cells = [
md("""# 01c · Table 3: anomalies in the training data (KDDCUP)

The paper's Table 3 asks how DAGMM and three baselines (DCN, DSEBM-e, OC-SVM) behave when the training set is not
clean: a fraction c ∈ {1%, …, 5%} of it is anomalous. This notebook reruns that study on KDDCUP with the same
protocol, settings and seeds as notebook 01b (20 runs per method and level) and plots F1 against c.

It writes `reports/tables/table3_contamination.csv` (one row per method and level, mean and std over runs, plus the
paper's precision/recall/F1 where they are confirmed), `reports/tables/table3_contamination_runs.csv` (every run) and
the figure `reports/figures/01c_contamination_f1.png`. The `smoke` profile writes the same files under
`reports/smoke/`."""),
code("""profile: str = "full"  # "full": the settings of notebook 01b and n_runs runs; "smoke": 2 runs, a few epochs, subsampled rows
n_runs: int = 20  # runs per method and level, seeds 0..n_runs-1 (smoke caps it at 2)
runs: str = ""  # only these of the n_runs runs, e.g. "0-9" now and "10-19" in a later session; "" means all of them
dataset: str = "kddcup"  # the paper's Table 3 uses KDDCUP
levels: str = "0.01,0.02,0.03,0.04,0.05"  # comma-separated contamination levels c (fractions of the training set)
methods: str = "DAGMM,DCN,DSEBM-e,OC-SVM"  # comma-separated method names (the paper's Table 3)
data_dir: str = ""  # data directory; "" means $DAGMM_DATA_DIR, then data/raw/
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
max_parallel: int = 0  # runs trained together as one batched model; 0: every run of every level at once on a GPU, 20 at a time on the CPU
n_jobs: int = -1  # threads over which the runs of the shallow detectors are spread, -1 for every core
cpu_threads: int = 1  # torch threads on the CPU, 0 for the torch default (one is fastest for tiny networks on a shared CPU)
workers: int = 1  # training groups run side by side in this many worker processes (each with cpu_threads threads); >1 pays off on a GPU, which one small network leaves mostly idle
keep_other_runs: bool = True  # keep the runs of (method, level) pairs not run now from the runs table already in the reports folder""",
     metadata={"tags": ["parameters"]}),
code("""import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import dagmm
from dagmm import paths, plotting, reporting
from dagmm.baselines import figures, suite
from dagmm.datasets import load_base
from dagmm.protocol import make_splits
from dagmm.training import describe_device, resolve_device

if cpu_threads > 0:
    torch.set_num_threads(cpu_threads)
cs = [float(c) for c in str(levels).split(",") if c.strip()]  # str(): "-p levels=0.03" passes a number
chosen = [m.strip() for m in str(methods).split(",") if m.strip()]
out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
plotting.set_style()
runs_here = suite.select_runs(runs, suite.profile_runs(profile, n_runs))  # None: all of them
print(f"profile={profile}  runs={suite.profile_runs(profile, n_runs) if runs_here is None else runs_here}  dataset={dataset}  levels={cs}  "
      f"device={describe_device(device)}  data={dagmm.resolve_data_dir(data_dir or None)}  reports={out}")"""),
md("""## The contamination rule

For run seed *s* the paper's split is drawn as in Table 2 (50/50, stratified by label). Its training set, the *n*
normal rows of the training half, **keeps its size**: round(c·n) of those rows, drawn at random without replacement,
are **replaced** by as many anomalies drawn at random without replacement from the **anomalies of the same training
half** (never from the test half, which is unchanged, so every level is scored on the same test rows). The draw is
seeded by the run's seed and c (`dagmm.baselines.suite.contaminated_split`). Methods and settings are those of
notebook 01b; each method's `contamination` (the threshold of `predict`) stays the dataset's ρ, and the test rule is
the paper's top-ρ, as in Table 2. The clean case, c = 0, is Table 2 (`table2_full.csv`).

The number of rows replaced at each level (run 0):"""),
code("""X, y = load_base(dataset, data_dir or None)
s0 = make_splits(dataset, y, [0])[0]
display(pd.DataFrame([{"c": c, "training rows": len(s0.train_idx),
                       "anomalies put in": int(round(c * len(s0.train_idx))),
                       "anomalies available in the training half": len(suite.training_half_anomalies(dataset, y, s0))}
                      for c in cs]).set_index("c"))"""),
md("""## All runs

The runs of every level train together, as one batched model per method (on the CPU, 20 runs at a time): one
training instead of one per level.
On the CPU each run then scores exactly as when its level runs alone (a test checks it); on a GPU, batched
arithmetic may round differently.

Each run's row names the commit and the device it ran on. Methods and levels can run separately (the shallow
OC-SVM on a CPU, the networks on a GPU, say) and still make one table: with `keep_other_runs`, the runs of every
(method, level) not run here are kept from the runs table already in the reports folder, with their own commit and
device, and listed below. Each method's runs join that table as soon as they are done, so a kernel that dies in a
later method loses none of them. The runs of one (method, level) can be split too (`runs="0-9"`, then `runs="10-19"`,
where one session is too short for all 20): each run is numbered by its seed, replaces only its own earlier row, and
scores as it would beside the other runs."""),
code("""t_start = time.perf_counter()
commit = reporting.git_commit()  # at the start: the code that runs, even if the checkout moves on meanwhile
runs_file = TABLES / "table3_contamination_runs.csv"
KEYS = ("dataset", "method", "c") + (() if runs_here is None else ("run",))  # a method at one level (or its runs here)

# each method's runs join the runs table as soon as they are done, so a crash later loses none of them
save_progress = lambda df: reporting.save_progress(df, runs_file, commit, describe_device(device), keys=KEYS)  # noqa: E731

# on the CPU, 100 runs at once spill out of the caches (DSEBM on KDDCUP: 1.5x slower per run than 20 at once)
batch = max_parallel or (None if resolve_device(device).type == "cuda" else 20)
new_runs = suite.run_levels(dataset, X, y, cs, n_runs, chosen, profile=profile, device=device,
                            max_parallel=batch, n_jobs=n_jobs, on_result=save_progress,
                            workers=workers, runs=runs_here)
new_runs = new_runs.assign(commit=commit, device=describe_device(device))
print(f"all runs: {time.perf_counter() - t_start:.0f} s")
all_runs, kept = reporting.merge_runs(new_runs, runs_file, keep_other=keep_other_runs, keys=KEYS)
if not keep_other_runs:  # otherwise the runs file already holds exactly all_runs (save_progress wrote it)
    reporting.save_table(all_runs, runs_file)
per_run = all_runs[all_runs.dataset == dataset].reset_index(drop=True)
if len(kept):
    print("kept from the earlier runs table (not rerun here):")
    display(kept.set_index([k for k in KEYS if k != "run"]))"""),
md("""## Table 3: F1 and more against the contamination level

Mean ± standard deviation over all runs. The paper's columns hold its Table 3 values only where we could confirm
them from the paper's text; we could not (the paper says DAGMM's F1 degrades only gently as c grows), so they are
empty and the figure shows ours alone. The line after the table says which of the paper's (method, level) pairs
the table still lacks."""),
code("""published = reporting.load_published()
table = suite.aggregate_levels(per_run, published)
order = {m: i for i, m in enumerate(suite.CONTAMINATION_METHODS)}
table = table.sort_values(["method", "c"], key=lambda v: v.map(order) if v.name == "method" else v, kind="stable")
reporting.save_table(table, TABLES / "table3_contamination.csv")
display(reporting.format_mean_std(table).set_index(["dataset", "method", "c"]))
paper_grid = [(m, c) for m in suite.CONTAMINATION_METHODS for c in (0.01, 0.02, 0.03, 0.04, 0.05)]
need = suite.profile_runs(profile, n_runs)
lacking = [f"{m} at c = {c:.0%}" for m, c in reporting.lacking(table, paper_grid, ("method", "c"), need)]
display(Markdown("**Complete**: every method of the paper's Table 3 at every level, with all its runs." if not lacking else
                 f"**Not yet complete**: {len(lacking)} of the paper's {len(paper_grid)} (method, level) pairs lack "
                 f"runs here: {', '.join(lacking)}. Run this notebook with those `methods` and `levels` (and `runs`, for a pair "
                 "that has some of its runs) to add them."))"""),
code("""lines = []
for m in [m for m in order if m in set(table.method)] + sorted(set(table.method) - set(order)):
    t = table[table.method == m].sort_values("c")
    lo, hi = t.iloc[0], t.iloc[-1]
    lines.append(f"* **{m}**: F1 {lo.f1_mean:.3f} ± {lo.f1_std:.3f} at c = {lo.c:.0%}, {hi.f1_mean:.3f} ± {hi.f1_std:.3f} "
                 f"at c = {hi.c:.0%} (change {hi.f1_mean - lo.f1_mean:+.3f}); AUROC {lo.auroc_mean:.3f} → {hi.auroc_mean:.3f}.")
display(Markdown("**What the table says (generated from the numbers above):**\\n\\n" + "\\n".join(lines)))"""),
md("""## F1 against c"""),
code("""fig = figures.contamination_curves(table, "f1")
fig.axes[0].set_title(f"{dataset}: training set contaminated with anomalies")
reporting.save_figure(fig, FIGURES / "01c_contamination_f1.png")
# the levels share one training per torch method, so only the method's total time is meaningful
display(per_run.groupby("method", sort=False).agg(seconds=("seconds", "sum"), device=("device", reporting.distinct))
        .round(1).rename(columns={"seconds": "seconds, all levels"}))
display(Markdown(f"**Compute of every run in this table**: {per_run.seconds.sum() / 3600:.1f} hours on "
                 f"{reporting.distinct(per_run.device)} ({len(per_run)} runs)."))
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s on {describe_device(device)}")"""),
]
write_notebook("01c_contamination.ipynb", cells)
