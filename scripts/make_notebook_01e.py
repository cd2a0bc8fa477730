"""Writes notebooks/01e_energy_vs_reconstruction.ipynb with nbformat (edit this script, rerun it)."""
import nbformat as nbf
from pathlib import Path

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell
cells = [
md("""# 01e · Arrhythmia: DAGMM's energy against its own reconstruction error

In notebook 01, DAGMM with the paper's settings falls short of the paper on Arrhythmia (paper F1 0.498): it scores
no better than the same networks untrained, and below Isolation Forest. This notebook asks where the signal goes.
A trained DAGMM holds two anomaly scores: its **sample energy** (the paper's score: the negative log-likelihood of
z = [z_c, relative Euclidean distance, cosine similarity] under the learned mixture) and its autoencoder's
**reconstruction error** (the squared error ‖x − x′‖², what PAE and E2E-AE score by). Both are read off the same
trained networks, after several lengths of the same training, for three variants trained with the same seeds and
splits:

* **DAGMM**: the paper's setting;
* **DAGMM (no covariance penalty)**: λ₂ = 0, without the penalty λ₂·Σ 1/Σ_kjj, which can dominate the loss when a
  feature of z (the cosine similarity of a well-trained autoencoder) has a tiny variance;
* **DAGMM (z-score)**: the inputs standardised (mean and standard deviation of the training rows) instead of
  min-max scaled; Arrhythmia has 274 features, several nearly constant on the ~190 training rows.

Nothing here picks a headline number: every checkpoint, variant and score is shown, the seeds are notebook 01's
(0..n−1) and no test label is used except to score. Each checkpoint is evaluated exactly as a training of that
length would be (the scoring mixture refitted on the training rows; checked in the test suite).

Writes `reports/tables/table2_dagmm_energy_vs_recon.csv` (mean ± std per variant, score and checkpoint),
`table2_dagmm_energy_vs_recon_runs.csv` and `reports/figures/01e_energy_vs_recon.png` (under `reports/smoke/` in
the smoke profile)."""),
code("""profile: str = "full"  # "full": the paper's settings; "smoke": 2 runs, short checkpoints
n_runs: int = 20  # runs, seeds 0..n_runs-1 (smoke caps it at 2)
dataset: str = "arrhythmia"  # the dataset investigated
checkpoints: str = "100,300,1000,3000,10000"  # epochs after which the runs are scored (the paper trains 10,000)
variants: str = "DAGMM,DAGMM (no covariance penalty),DAGMM (z-score)"  # comma-separated names from dagmm.study.VARIANTS
data_dir: str = ""  # data directory; "" means $DAGMM_DATA_DIR, then data/raw/
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
max_parallel: int = 20  # runs trained together as one batched model
cpu_threads: int = 0  # torch threads on the CPU, 0 for the torch default""", metadata={"tags": ["parameters"]}),
code("""import time
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from dagmm import paths, plotting, reporting
from dagmm.protocol import TABLE_COLUMNS, aggregate
from dagmm.study import VARIANTS, energy_vs_recon_findings, epochs_investigation, profile_settings
from dagmm.training import describe_device

if cpu_threads > 0:
    torch.set_num_threads(cpu_threads)
runs, smoke_epochs = profile_settings(profile, n_runs)
stops = tuple(int(c) for c in checkpoints.split(",")) if profile == "full" else (smoke_epochs[dataset] // 2, smoke_epochs[dataset])
chosen = {v.strip(): VARIANTS[v.strip()] for v in variants.split(",") if v.strip()}
out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
plotting.set_style()
print(f"profile={profile}  runs={runs}  dataset={dataset}  checkpoints={stops}  variants={list(chosen)}  "
      f"device={describe_device(device)}")
t_start = time.perf_counter()"""),
md("""## All runs"""),
code("""per_run = epochs_investigation(dataset, runs, stops, variants=chosen, scores=("energy", "recon"),
                               data_dir=data_dir or None, device=device, max_parallel=max_parallel)
table = aggregate(per_run)
reporting.save_table(per_run, TABLES / "table2_dagmm_energy_vs_recon_runs.csv")
reporting.save_table(table[TABLE_COLUMNS], TABLES / "table2_dagmm_energy_vs_recon.csv")
print(f"all runs: {time.perf_counter() - t_start:.0f} s")"""),
md("""## Energy and reconstruction error after each length of training

Mean ± standard deviation over all runs. `(reconstruction error)` rows score the test rows by the autoencoder's
squared reconstruction error; the others by DAGMM's energy."""),
code("""display(reporting.format_mean_std(table).set_index(["dataset", "method"]))"""),
code("""import matplotlib.pyplot as plt

published = reporting.load_published()
paper = published[(published.source == "zong2018_iclr") & (published.method == "DAGMM") & (published.dataset == dataset)]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
colors = dict(zip(chosen, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
for ax, metric in zip(axes, ("f1", "auroc")):
    for (variant, score), d in per_run.groupby(["variant", "score"], sort=False):
        g = d.groupby("epochs")[metric]
        ax.errorbar(g.mean().index, g.mean(), yerr=g.std(ddof=1).fillna(0), marker="o" if score == "energy" else "s",
                    ls="-" if score == "energy" else "--", color=colors[variant], capsize=3,
                    label=f"{variant}, {'energy' if score == 'energy' else 'reconstruction error'}")
    if metric == "f1" and len(paper):
        ax.axhline(paper.f1.iloc[0], ls=":", color="k", lw=1, label=f"paper, DAGMM ({paper.f1.iloc[0]:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("epochs of training")
    ax.set_ylabel("F1 (top-ρ rule)" if metric == "f1" else "AUROC")
axes[1].legend(fontsize=7, loc="lower right")
fig.suptitle(f"{dataset}: DAGMM's energy (solid) against its reconstruction error (dashed)")
fig.tight_layout()
reporting.save_figure(fig, FIGURES / "01e_energy_vs_recon.png")"""),
md("""## What the runs say

For each variant, at the longest training: the energy against the reconstruction error of the same runs, paired by
seed (Wilcoxon signed-rank test over the runs), and against the paper's F1. Generated from the runs above."""),
code("""findings, text = energy_vs_recon_findings(per_run, paper.f1.iloc[0] if len(paper) else None)
display(findings.round(4))
display(Markdown(text))
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s on {describe_device(device)}")"""),
]
for i, c in enumerate(cells):  # stable ids: regenerating an unchanged notebook changes nothing
    c["id"] = f"01e-{i:02d}"
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
Path(__file__).resolve().parents[1].joinpath("notebooks", "01e_energy_vs_reconstruction.ipynb").write_text(nbf.writes(nb))
