"""Writes notebooks/01_replication.ipynb (source of truth is the .ipynb; this
script only created it and is kept so the cell layout is easy to review)."""
import nbformat as nbf
from notebook_file import write_notebook  # scripts/, beside this file

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell
cells = [
md("""# 01 · Replicating DAGMM on the paper's four tabular benchmarks

This notebook reproduces the DAGMM rows of Table 2 of Zong et al., *Deep Autoencoding Gaussian Mixture Model for
Unsupervised Anomaly Detection* (ICLR 2018) on KDDCUP99 10%, KDDCUP-Rev, ODDS Thyroid and ODDS Arrhythmia, with
the paper's protocol and per-dataset settings, over 20 seeded runs, and sets the paper's own numbers beside ours.
It adds what the paper lacks: AUROC and AUPRC, and two controls that show whether training matters at all
(the same DAGMM **untrained**, and **Isolation Forest**), plus one investigation of the covariance penalty.

It writes `reports/tables/table2_dagmm.csv` (one row per dataset and method, mean and std over runs),
`reports/tables/table2_dagmm_runs.csv` (every run), `reports/tables/table2_dagmm_ablation.csv`, and the figures
`reports/figures/01_energy_histograms.png`, `01_latent_space_<dataset>.png` and `01_loss_curves.png`.
The `smoke` profile writes the same files under `reports/smoke/` instead, so it never overwrites the full results."""),
code("""profile: str = "full"  # "full": paper settings and n_runs runs; "smoke": 2 runs, a few epochs
n_runs: int = 20  # runs per dataset, seeds 0..n_runs-1 (smoke caps it at 2)
datasets: str = "kddcup,kddcup_rev,thyroid,arrhythmia"  # comma-separated dataset names
ablation_datasets: str = ""  # comma-separated datasets where DAGMM is also run without the covariance penalty
scaling_datasets: str = ""  # comma-separated datasets where DAGMM is also run under other input scalings
scaling_runs: int = 5  # runs of the scaling investigation (seeds 0..scaling_runs-1)
scaling_epochs: int = 0  # epochs of the scaling investigation; 0 means the paper's
data_dir: str = ""  # data directory; "" means $DAGMM_DATA_DIR, then data/raw/
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
max_parallel: int = 20  # runs trained together as one batched model
torch_compile: str = "auto"  # "auto": compile the CPU training step (torch.compile) in the full profile only; or "yes", "no\"""", metadata={"tags": ["parameters"]}),
code("""import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import dagmm
from dagmm import paths, plotting, reporting
from dagmm.configs import paper_setting
from dagmm.protocol import TABLE_COLUMNS, aggregate
from dagmm.study import profile_settings, replicate_dataset
from dagmm.training import resolve_device

runs, epoch_overrides = profile_settings(profile, n_runs)
names = [d.strip() for d in datasets.split(",") if d.strip()]
ablation = [d.strip() for d in ablation_datasets.split(",") if d.strip()]
scaling = [d.strip() for d in scaling_datasets.split(",") if d.strip()]
out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
dev = resolve_device(device)
torch_compile = {True: "yes", False: "no"}.get(torch_compile, torch_compile)  # `-p torch_compile=false` arrives as a bool
if torch_compile not in ("auto", "yes", "no"):
    raise ValueError(f"torch_compile must be 'auto', 'yes' or 'no', got {torch_compile!r}")
# compiling costs tens of seconds per network and pays off only over long CPU trainings (CUDA replays graphs instead)
compile_step = torch_compile == "yes" or (torch_compile == "auto" and profile == "full" and dev.type == "cpu")
plotting.set_style()
print(f"profile={profile}  runs={runs}  device={dev}"
      f"{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}  torch_compile={compile_step}  "
      f"data={dagmm.resolve_data_dir(data_dir or None)}  reports={out}")
for name in names:
    s = paper_setting(name)
    print(f"{name:>11}: hidden={s['hidden']} latent={s['latent_dim']} K={s['n_components']} "
          f"epochs={epoch_overrides.get(name, s['epochs'])} batch={s['batch_size']} rho={s['contamination']}")"""),
md("""## Protocol

* **Split.** For run seed *s*, the rows are split 50/50 at random, stratified by label (each half keeps the
  dataset's anomaly ratio and every run has the same sizes). KDDCUP-Rev's attack rows are redrawn per seed.
* **Training.** DAGMM sees only the *normal* rows of the training half. Features are min-max scaled with the
  statistics of those rows (part of the fitted model; test rows are scaled with training statistics).
* **Scoring.** The mixture parameters used for scoring are estimated over the whole training set after training
  (not over the last mini-batch). Test samples are flagged when their energy is among the top ρ of test energies
  (ρ = 20% KDDCUP, 20% KDDCUP-Rev, 2.5% Thyroid, 15% Arrhythmia, as the paper states them). Precision, recall and
  F1 are those of the anomaly class; AUROC and AUPRC need no threshold.
* **Runs.** Seeds 0..N-1 are used, never chosen. A run whose energies contain NaN/inf is counted in `n_failed` and
  scored as a detector that finds nothing (F1 0, AUROC 0.5). All runs of a dataset train together as one batched
  model (each run keeps its own initialisation, shuffling and dropout streams).
* **Controls.** *DAGMM (untrained)*: the same networks with 0 epochs, mixture fitted on the training set. Under this
  protocol an untrained DAGMM already scores well on KDDCUP, so KDDCUP alone cannot show that a model works.
  *Isolation Forest*: scikit-learn defaults, fitted on the same training rows."""),
code("""t_start = time.perf_counter()
frames, artifacts = [], {}
for name in names:
    extra = {"DAGMM (lambda_cov=0)": {"lambda_cov": 0.0}} if name in ablation else None
    df, art = replicate_dataset(name, runs, epochs=epoch_overrides.get(name), data_dir=data_dir or None,
                                device=device, max_parallel=max_parallel, extra=extra, torch_compile=compile_step)
    frames.append(df)
    artifacts[name] = art
per_run = pd.concat(frames, ignore_index=True)
print(f"all runs: {time.perf_counter() - t_start:.0f} s")"""),
md("""## Table 2, DAGMM rows: ours beside the paper's

Mean ± standard deviation over all runs (failed runs included). `paper_*` are the numbers the paper reports
(read from `published_results.csv`); the paper gives no AUROC/AUPRC and has no controls."""),
code("""published = reporting.load_published()
table_all = aggregate(per_run)
main = table_all[~table_all.method.str.contains("lambda_cov")]
abl = table_all[table_all.method.str.contains("lambda_cov") | (table_all.method == "DAGMM")]
abl = abl[abl.dataset.isin(ablation)]
reporting.save_table(per_run, TABLES / "table2_dagmm_runs.csv")
reporting.save_table(main[TABLE_COLUMNS], TABLES / "table2_dagmm.csv")
reporting.save_table(abl[TABLE_COLUMNS], TABLES / "table2_dagmm_ablation.csv")
shown = reporting.with_paper(main, published)
display(reporting.format_mean_std(shown).set_index(["dataset", "method"]))"""),
code("""def verdict(name, f1, paper):
    if name in ("kddcup", "kddcup_rev"):
        ok = f1 >= paper - 0.02
        return f"{'within 0.02 of or above' if ok else 'more than 0.02 below'} the paper"
    return "at or above the paper" if f1 >= paper else f"short of the paper by {paper - f1:.3f}"

lines = []
for name in names:
    t = shown[shown.dataset == name].set_index("method")
    d, u, i = t.loc["DAGMM"], t.loc["DAGMM (untrained)"], t.loc["Isolation Forest"]
    lines.append(
        f"* **{name}**: DAGMM F1 {d.f1_mean:.3f} ± {d.f1_std:.3f} over {int(d.n_runs)} runs ({int(d.n_failed)} failed), "
        f"paper {d.paper_f1:.4f}: {verdict(name, d.f1_mean, d.paper_f1)} (difference {d.f1_mean - d.paper_f1:+.3f}). "
        f"AUROC {d.auroc_mean:.3f}. Untrained control: F1 {u.f1_mean:.3f}, AUROC {u.auroc_mean:.3f} "
        f"(training changes F1 by {d.f1_mean - u.f1_mean:+.3f}). Isolation Forest: F1 {i.f1_mean:.3f}, AUROC {i.auroc_mean:.3f}.")
display(Markdown("**What the table says (generated from the numbers above):**\\n\\n" + "\\n".join(lines)))"""),
md("""**Where DAGMM falls short of the paper, and what was tried.** The sentences above say by how much. Two notebooks
investigate the gaps, with the same seeds and splits, and report every variant they try (none of them feeds this
table): notebook 01d (`01d_training_length`) on KDDCUP (F1 after 10 to 200 epochs of one training, without
the covariance penalty, with z-scored inputs) and notebook 01e (`01e_energy_vs_reconstruction`) on
Arrhythmia (the same variants, and DAGMM's energy against its own autoencoder's reconstruction error). The optional
investigations below (covariance penalty, input scaling) rerun DAGMM inside this notebook when their parameters are set."""),
md("""## Optional investigation: the covariance penalty (λ₂)

The paper's objective adds λ₂·Σ 1/Σ_kjj. The cosine-similarity feature of a well-trained autoencoder has a tiny
variance, so this penalty can dominate the loss on small datasets and trade reconstruction quality for variance.
Setting the parameter `ablation_datasets` reruns DAGMM there with λ₂ = 0 and everything else unchanged, written to
`table2_dagmm_ablation.csv`. It is an ablation reported beside the paper-setting result, never used to choose the
headline numbers. (The full profile leaves it off to keep the run short.)"""),
code("""if len(abl):
    display(reporting.format_mean_std(abl).set_index(["dataset", "method"]))
    lines = []
    for name in abl.dataset.unique():
        t = abl[abl.dataset == name].set_index("method")
        a, b = t.loc["DAGMM"], t.loc["DAGMM (lambda_cov=0)"]
        lines.append(f"* **{name}**: λ₂ = 0.005 (paper) F1 {a.f1_mean:.3f}, AUROC {a.auroc_mean:.3f}; "
                     f"λ₂ = 0: F1 {b.f1_mean:.3f}, AUROC {b.auroc_mean:.3f} (F1 {b.f1_mean - a.f1_mean:+.3f}).")
    display(Markdown("\\n".join(lines)))"""),
md("""## Optional investigation: input scaling

Where DAGMM's training does not beat its untrained control (KDDCUP and Arrhythmia in our full run), one suspect
is the input scaling. The protocol min-max scales with the statistics of the rows DAGMM trains on (KDDCUP: the
attack rows); features whose range differs between classes (byte counts span orders of magnitude) then put test
rows far outside [0, 1]. Setting `scaling_datasets` reruns DAGMM, trained and untrained, with z-scoring on the
same rows and with min-max over all rows (what public implementations do: it sees the test rows' ranges, never
their labels, so it is a diagnostic, not the protocol), on `scaling_runs` seeds. Written to
`table2_dagmm_scaling.csv`; never used to choose the headline numbers."""),
code("""if scaling:
    from dagmm.study import scaling_investigation

    sc = pd.concat([scaling_investigation(n, min(scaling_runs, runs) if profile == "smoke" else scaling_runs,
                                          epochs=(scaling_epochs or None) if profile == "full" else epoch_overrides.get(n),
                                          data_dir=data_dir or None, device=device, max_parallel=max_parallel)
                    for n in scaling], ignore_index=True)
    sc_table = aggregate(sc)
    reporting.save_table(sc_table[TABLE_COLUMNS], TABLES / "table2_dagmm_scaling.csv")
    display(reporting.format_mean_std(sc_table).set_index(["dataset", "method"]))"""),
md("""## Energy of normal and anomalous test samples (run 0)

A detector that works puts the anomalies (orange) to the right of the dashed top-ρ threshold."""),
code("""rho = {n: paper_setting(n)["contamination"] for n in names}
fig = plotting.energy_histograms({n: artifacts[n]["DAGMM"][0] for n in names}, rho)
reporting.save_figure(fig, FIGURES / "01_energy_histograms.png")"""),
md("""## The learned low-dimensional space (as the paper's Figure 3), run 0

Each test sample's z = [z_c, relative Euclidean distance, cosine similarity], coloured by the true label."""),
code("""for n in names:
    a = artifacts[n]["DAGMM"][0]
    fig = plotting.latent_scatter(a["z"], a["y"], title=f"{n}: learned space of DAGMM (run 0, test half)")
    reporting.save_figure(fig, FIGURES / f"01_latent_space_{n}.png")"""),
md("""## Training loss (run 0)"""),
code("""fig = plotting.loss_curves({n: artifacts[n]["DAGMM"][0]["loss"] for n in names if len(artifacts[n]["DAGMM"][0]["loss"])})
reporting.save_figure(fig, FIGURES / "01_loss_curves.png")
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")"""),
]
write_notebook("01_replication.ipynb", cells)
