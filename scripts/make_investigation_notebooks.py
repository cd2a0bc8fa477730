"""Writes notebooks/01d_training_length.ipynb and notebooks/01e_energy_vs_reconstruction.ipynb with nbformat.

Both investigate a gap between notebook 01 and the paper with the same cells: one training per variant, scored by
DAGMM's energy and by its autoencoder's reconstruction error after several lengths of training. They differ in the
dataset, the checkpoints and what they write. Edit this script and rerun it; the notebooks are committed without
outputs.
"""
import nbformat as nbf
from notebook_file import write_notebook  # scripts/, beside this file

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell

VARIANTS_TEXT = """* **DAGMM**: the paper's setting;
* **DAGMM (no covariance penalty)**: λ₂ = 0, dropping the penalty λ₂·Σ 1/Σ_kjj, which can dominate the loss when a
  feature of z (the cosine similarity of a well-trained autoencoder) has a tiny variance;
* **DAGMM (z-score)**: the inputs standardised with the mean and standard deviation of the training rows instead of
  min-max scaled with their range."""

METHOD_TEXT = """Each variant is trained once per run for the longest length; after each checkpoint the scoring mixture is refitted
on the training rows and the test half is scored as at the end of a training of that length (on the CPU exactly so,
checked in the test suite; on a GPU the random streams split differently at a checkpoint, so the same in
distribution, not draw for draw). Two scores are read off the same networks: DAGMM's **sample energy** (the paper's score: the
negative log-likelihood of z = [z_c, relative Euclidean distance, cosine similarity] under the learned mixture) and
the autoencoder's **reconstruction error** ‖x − x′‖² (what PAE and E2E-AE score by). Seeds (0..n−1) and splits are
notebook 01's; no test label is used except to score, and nothing here picks a headline number: every checkpoint,
variant and score is shown."""

NOTEBOOKS = {
    "01d_training_length": dict(
        title="01d · KDDCUP: DAGMM against the length of training, the covariance penalty and the scaling",
        why="""Notebook 01 compares DAGMM with the paper's settings (200 epochs) to the paper's F1 on KDDCUP (its result is
printed below, from `table2_dagmm.csv`). Three suspects for a gap are the length of training (F1 under the top-ρ
rule can move along training), the covariance penalty and the input scaling. This notebook measures all three over
20 runs, for three variants trained with the same seeds and splits:""",
        after="""Per-run F1 under the top-ρ rule moves along training, and the same seed can end differently on a CPU and a GPU
(float-level differences grow over tens of thousands of steps), so read the spread, not one point.""",
        dataset="kddcup", checkpoints="10,20,50,100,200", stem="table2_dagmm_training_length", figure="01d_training_length",
        paper_epochs=200),
    "01e_energy_vs_reconstruction": dict(
        title="01e · Arrhythmia: DAGMM's energy against its own reconstruction error",
        why="""Notebook 01 compares DAGMM with the paper's settings to the paper's F1 on Arrhythmia, beside the same networks
untrained and Isolation Forest (its result is printed below, from `table2_dagmm.csv`). This notebook asks where
DAGMM's signal goes on this small, wide dataset, for three variants trained with the same seeds and splits:""",
        after="""Arrhythmia has 274 features (several nearly constant on the ~190 training rows) and the paper trains for 10,000
epochs, so both the scaling and the length of training are suspects.""",
        dataset="arrhythmia", checkpoints="100,300,1000,3000,10000", stem="table2_dagmm_energy_vs_recon",
        figure="01e_energy_vs_recon", paper_epochs=10000),
}


def cells_for(name: str, nb: dict) -> list:
    return [
        md(f"""# {nb['title']}

{nb['why']}

{VARIANTS_TEXT}

{METHOD_TEXT}

{nb['after']}

Writes `reports/tables/{nb['stem']}.csv` (mean ± std per variant, score and checkpoint),
`{nb['stem']}_runs.csv` (every run), `{nb['stem']}_tests.csv` (the paired tests) and
`reports/figures/{nb['figure']}.png` (under `reports/smoke/` in the smoke profile)."""),
        code(f"""profile: str = "full"  # "full": the paper's settings; "smoke": 2 runs, short checkpoints
n_runs: int = 20  # runs, seeds 0..n_runs-1 (smoke caps it at 2)
dataset: str = "{nb['dataset']}"  # the dataset investigated
checkpoints: str = "{nb['checkpoints']}"  # epochs after which the runs are scored (the paper trains {nb['paper_epochs']:,})
variants: str = "DAGMM,DAGMM (no covariance penalty),DAGMM (z-score)"  # comma-separated names from dagmm.study.VARIANTS
data_dir: str = ""  # data directory; "" means $DAGMM_DATA_DIR, then data/raw/
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
max_parallel: int = 20  # runs trained together as one batched model
cpu_threads: int = 0  # torch threads on the CPU, 0 for the torch default""", metadata={"tags": ["parameters"]}),
        code(f"""import time
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from dagmm import paths, plotting, reporting
from dagmm.configs import paper_setting
from dagmm.protocol import TABLE_COLUMNS, aggregate
from dagmm.study import VARIANTS, energy_vs_recon_findings, epochs_investigation, profile_settings, training_length_lines
from dagmm.training import describe_device

if cpu_threads > 0:
    torch.set_num_threads(cpu_threads)
runs, smoke_epochs = profile_settings(profile, n_runs)
if profile == "full":
    stops = tuple(int(c) for c in checkpoints.split(","))
else:
    stops = tuple(sorted({{max(1, smoke_epochs[dataset] // 2), smoke_epochs[dataset]}}))
unknown = [v.strip() for v in variants.split(",") if v.strip() and v.strip() not in VARIANTS]
if unknown:
    raise ValueError(f"unknown variants {{unknown}}; known: {{list(VARIANTS)}}")
chosen = {{v.strip(): VARIANTS[v.strip()] for v in variants.split(",") if v.strip()}}
out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
published = reporting.load_published()
paper = published[(published.source == "zong2018_iclr") & (published["table"] == "table2") & (published.method == "DAGMM")
                  & (published.dataset == dataset)]
paper_f1 = float(paper.f1.iloc[0]) if len(paper) else None
plotting.set_style()
print(f"profile={{profile}}  runs={{runs}}  dataset={{dataset}}  checkpoints={{stops}}  variants={{list(chosen)}}  "
      f"device={{describe_device(device)}}  (paper: {{paper_setting(dataset)['epochs']}} epochs)")
t_start = time.perf_counter()"""),
        md("""## Notebook 01's result on this dataset

Read from notebook 01's `table2_dagmm.csv` in the same reports folder (the profile's), when it has been run."""),
        code("""t2 = TABLES / "table2_dagmm.csv"
if t2.exists():
    rows = pd.read_csv(t2)
    rows = rows[rows.dataset == dataset].set_index("method")
    display(rows[["n_runs", "n_failed", "f1_mean", "f1_std", "auroc_mean", "auroc_std"]].round(4))
    if "DAGMM" in rows.index and paper_f1 is not None:
        print(f"DAGMM F1 {rows.f1_mean['DAGMM']:.3f} against the paper's {paper_f1:.3f} "
              f"({rows.f1_mean['DAGMM'] - paper_f1:+.3f})")
else:
    print(f"{t2} does not exist yet: run notebook 01 with the same profile first for this context")"""),
        md("""## All runs"""),
        code(f"""per_run = epochs_investigation(dataset, runs, stops, variants=chosen, scores=("energy", "recon"),
                               data_dir=data_dir or None, device=device, max_parallel=max_parallel)
table = aggregate(per_run)
reporting.save_table(per_run, TABLES / "{nb['stem']}_runs.csv")
reporting.save_table(table[TABLE_COLUMNS], TABLES / "{nb['stem']}.csv")
print(f"all runs: {{time.perf_counter() - t_start:.0f}} s")"""),
        md("""## Each variant and score after each length of training

Mean ± standard deviation over all runs. Rows marked `(reconstruction error)` score the test rows by the
autoencoder's squared reconstruction error; the others by DAGMM's energy."""),
        code("""display(reporting.format_mean_std(table).set_index(["dataset", "method"]))"""),
        code(f"""fig = plotting.training_length(per_run, paper_f1, title=f"{{dataset}}: energy (solid) and reconstruction error (dashed) along training")
reporting.save_figure(fig, FIGURES / "{nb['figure']}.png")"""),
        md("""## Along training

Generated from the runs above."""),
        code(f"""display(Markdown(training_length_lines(per_run, paper_f1, {nb['paper_epochs']})))"""),
        md("""## Energy against reconstruction error, and each variant against the paper setting

At the longest training, paired by seed: within each variant, the reconstruction error against the energy; and each
variant's energy against the paper setting's (Wilcoxon signed-rank test over the runs, Holm-adjusted within each
metric; *better*/*worse* only where p < 0.05). Generated from the runs above."""),
        code(f"""tests, text = energy_vs_recon_findings(per_run, paper_f1)
reporting.save_table(tests, TABLES / "{nb['stem']}_tests.csv")
display(tests.round(4))
display(Markdown(text))
print(f"notebook wall time: {{time.perf_counter() - t_start:.0f}} s on {{describe_device(device)}}")"""),
    ]


for name, spec in NOTEBOOKS.items():
    write_notebook(f"{name}.ipynb", cells_for(name, spec))
