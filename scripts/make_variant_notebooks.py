"""Writes notebooks 04-07 (the seeds' variants and the summary) with nbformat.

Edit this script and rerun it; the notebooks are committed without outputs.
"""
import nbformat as nbf
from notebook_file import write_notebook  # scripts/, beside this file

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell

PARAMS = '''profile: str = "full"  # "full": paper settings and n_runs runs; "smoke": 2 runs, a few epochs
n_runs: int = 20  # runs per dataset, seeds 0..n_runs-1 (smoke caps it at 2), the same splits as notebook 01
datasets: str = "kddcup,kddcup_rev,thyroid,arrhythmia"  # comma-separated dataset names
data_dir: str = ""  # data directory; "" means $DAGMM_DATA_DIR, then data/raw/
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
max_parallel: int = 20  # runs trained together as one batched model'''

SETUP = '''import time
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import dagmm
from dagmm import paths, plotting, reporting
from dagmm.protocol import TABLE_COLUMNS, aggregate
from dagmm.study import profile_settings
from dagmm.training import describe_device
from dagmm.variants import VARIANTS, aggregate_sweep, run_dagmm_heads, run_variant

runs, epoch_overrides = profile_settings(profile, n_runs)
names = [d.strip() for d in datasets.split(",") if d.strip()]
out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
plotting.set_style()
published = reporting.load_published()
seeds_reported = published[published.source == "seed_003"]
print(f"profile={profile}  runs={runs}  device={describe_device(device)}  "
      f"data={dagmm.resolve_data_dir(data_dir or None)}  reports={out}")
t_start = time.perf_counter()'''


def dagmm_reference_cell():
    return code('''# DAGMM (paper setting) from notebook 01, same splits and seeds, for context
ref_file = TABLES / "table2_dagmm.csv"
reference = pd.read_csv(ref_file) if ref_file.exists() else pd.DataFrame(columns=TABLE_COLUMNS)
reference = reference[(reference.method == "DAGMM") & reference.dataset.isin(names)]
if reference.empty:
    print(f"no DAGMM rows in {ref_file}: run notebook 01 with the same profile first for the side-by-side")''')


def seeds_note_cell():
    return md("""The `seeds_*` columns are the single-run numbers the seeds report (KDDCUP only, at the percentile threshold
named in `seeds_setting`); ours are means ± std over all runs at the paper's top-ρ rule. The percentile sweep below
is the seeds' way of reporting.""")


def summary_cell(methods_expr, names_var="names"):
    """The generated one-line-per-(dataset, variant) summary, against the ``reference`` DAGMM rows."""
    return code(f'''lines = []
for name in {names_var}:
    d = reference[reference.dataset == name]
    for method in {methods_expr}:
        v = table[(table.dataset == name) & (table.method == method)]
        if v.empty:
            continue
        v = v.iloc[0]
        ref = f"; DAGMM F1 {{d.f1_mean.iloc[0]:.3f}}, AUROC {{d.auroc_mean.iloc[0]:.3f}}" if len(d) else ""
        lines.append(f"* **{{name}} / {{method}}**: F1 {{v.f1_mean:.3f}} ± {{v.f1_std:.3f}}, AUROC {{v.auroc_mean:.3f}} ± "
                     f"{{v.auroc_std:.3f}} over {{int(v.n_runs)}} runs ({{int(v.n_failed)}} failed){{ref}}.")
display(Markdown("**Generated summary** (the paired tests against DAGMM are in notebook 07):\\n\\n" + "\\n".join(lines)))
print(f"notebook wall time: {{time.perf_counter() - t_start:.0f}} s")''')


def results_cells(stem, methods_expr):
    return [
        code(f'''per_run = pd.concat(frames, ignore_index=True)
sweep = pd.concat(sweeps, ignore_index=True)
table = aggregate(per_run)
reporting.save_table(per_run, TABLES / "variants_{stem}_runs.csv")
reporting.save_table(table[TABLE_COLUMNS], TABLES / "variants_{stem}.csv")
sweep_agg = aggregate_sweep(sweep)
reporting.save_table(sweep_agg, TABLES / "variants_{stem}_sweep.csv")
shown = pd.concat([reference[TABLE_COLUMNS], table[TABLE_COLUMNS]], ignore_index=True)
shown = shown.sort_values("dataset", kind="stable", key=lambda s: s.map({{n: i for i, n in enumerate(names)}}))
rep = seeds_reported[["dataset", "method", "setting", "precision", "recall", "f1", "auroc"]].rename(
    columns=lambda c: c if c in ("dataset", "method") else f"seeds_{{c}}")
display(reporting.format_mean_std(shown).merge(rep, on=["dataset", "method"], how="left").set_index(["dataset", "method"]))'''),
        seeds_note_cell(),
        code(f'''fig = plotting.metric_bars(shown, reported=rep.rename(columns={{"seeds_f1": "f1", "seeds_auroc": "auroc"}}))
reporting.save_figure(fig, FIGURES / "{stem}_metrics.png")
ref_sweep = TABLES / "variants_dagmm_heads_sweep.csv"
sw = sweep_agg
if ref_sweep.exists() and not (sweep_agg.method == "DAGMM").any():
    r = pd.read_csv(ref_sweep)
    sw = pd.concat([r[(r.method == "DAGMM") & r.dataset.isin(names)], sweep_agg], ignore_index=True)
fig = plotting.sweep_curves(sw)
reporting.save_figure(fig, FIGURES / "{stem}_percentile_sweep.png")
display(sweep_agg.pivot_table(index=["dataset", "method"], columns="percentile", values="f1_mean", sort=False).round(3))'''),
        summary_cell(methods_expr),
    ]




# ---------------------------------------------------------------- 04
write_notebook("04_vae_vqvae.ipynb", [
    md("""# 04 · DAGMM with a VAE or a VQ-VAE as its compression network

The seeds replace DAGMM's autoencoder by a **variational autoencoder** (the encoder gives a mean and a
log-variance; a reparameterised sample is the code in training, the mean at test time; the loss adds the KL term to
DAGMM's objective) and by a **VQ-VAE** (the code is the nearest vector of a learned codebook, with the
straight-through estimator and the codebook and commitment terms). They report one KDDCUP run each, at a
percentile threshold, above the paper's DAGMM (their numbers are in the `seeds_*` columns below). Here each variant
runs on all four datasets, with
the paper's per-dataset settings for everything else, over the same splits and seeds as DAGMM in notebook 01.

Writes `reports/tables/variants_vae_vqvae.csv` (mean ± std), `variants_vae_vqvae_runs.csv` (every run, for the
paired tests of notebook 07), `variants_vae_vqvae_sweep.csv` (percentile thresholds 10..60), and the figures
`vae_vqvae_metrics.png` and `vae_vqvae_percentile_sweep.png` (under `reports/smoke/` in the smoke profile)."""),
    code(PARAMS + '''
kl_weight: float = 1.0  # weight of the VAE's KL term
n_codes: int = 32  # VQ-VAE codebook size
commitment: float = 0.25  # VQ-VAE commitment weight (beta)''', metadata={"tags": ["parameters"]}),
    code(SETUP),
    md("""## Settings

Both variants keep DAGMM's widths (the encoder's last layer doubles for the VAE's mean and log-variance), its
estimation network, λ₁, λ₂, epochs, batch size and learning rate (paper, per dataset). The VAE adds `kl_weight`
times the KL term to DAGMM's squared error (with weight 1, the negative ELBO of a Gaussian decoder of variance ½, up
to a constant); the VQ-VAE has `n_codes` codes and commitment weight `commitment` (defaults 32 and 0.25, van den
Oord et al.'s β). The values used are printed below. No setting was chosen by looking at test labels."""),
    code('''print(f"kl_weight={kl_weight}  n_codes={n_codes}  commitment={commitment}")'''),
    dagmm_reference_cell(),
    code('''methods = {"DAGMM-VAE": dict(compressor="vae", kl_weight=kl_weight),
           "DAGMM-VQVAE": dict(compressor="vqvae", n_codes=n_codes, commitment=commitment)}
frames, sweeps = [], []
for name in names:
    for method, overrides in methods.items():
        df, sw = run_variant(name, runs, method, overrides, epochs=epoch_overrides.get(name), data_dir=data_dir or None,
                             device=device, max_parallel=max_parallel)
        frames.append(df)
        sweeps.append(sw)'''),
    md("## Results: ours beside DAGMM and the seeds' reported numbers"),
    *results_cells("vae_vqvae", "methods"),
])

# ---------------------------------------------------------------- 05
write_notebook("05_laplacian.ipynb", [
    md("""# 05 · DAGMM with a Laplacian mixture

The seeds swap the Gaussian mixture for a mixture of products of per-dimension Laplace distributions: φ_k and μ_k
from the memberships as before, the scale b_kj the membership-weighted mean absolute deviation, and the energy the
negative log of that mixture. Everything else (networks, λ₁, λ₂ acting on Σ 1/b_kj, epochs) is DAGMM's. They report
one KDDCUP run, below DAGMM (the `seeds_*` columns below).

Writes `reports/tables/variants_laplacian.csv`, `variants_laplacian_runs.csv`, `variants_laplacian_sweep.csv` and
the figures `laplacian_metrics.png`, `laplacian_percentile_sweep.png` (under `reports/smoke/` in the smoke profile)."""),
    code(PARAMS, metadata={"tags": ["parameters"]}),
    code(SETUP),
    dagmm_reference_cell(),
    code('''methods = {"DAGMM Laplacian": dict(mixture="laplace")}
frames, sweeps = [], []
for name in names:
    for method, overrides in methods.items():
        df, sw = run_variant(name, runs, method, overrides, epochs=epoch_overrides.get(name), data_dir=data_dir or None,
                             device=device, max_parallel=max_parallel)
        frames.append(df)
        sweeps.append(sw)'''),
    md("## Results: ours beside DAGMM and the seeds' reported numbers"),
    *results_cells("laplacian", "methods"),
])

# ---------------------------------------------------------------- 06
LABELLED = """the labelled class is the **anomalies**: a random `label_fraction` of the *training* half's anomalies
(at least 5), redrawn per seed; no test labels are used"""

write_notebook("06_pu_thresholding.ipynb", [
    md(f"""# 06 · Reading DAGMM out differently: modified inference and a PU-learning threshold

Two of the seeds' changes that keep DAGMM's training and change how its output becomes a decision, on the four
tabular datasets with the same splits and seeds as notebook 01. Both read out the same trained models: this
notebook's DAGMM trainings (paper setting, the seeds and splits of notebook 01; on the CPU identical to notebook 01's,
on a GPU equal up to floating-point non-determinism). Notebook 07 pairs them with notebook 01's DAGMM runs.

* **Modified inference** — the score is the sample energy plus the reconstruction error, each standardised with
  its mean and standard deviation over the training rows (the seeds add the two; standardising makes the sum
  independent of their units). Top-ρ rule.
* **PU-learning threshold** (Elkan and Noto, 2008) — {LABELLED}. A classifier g(x) = p(labelled | x) on DAGMM's
  features [z, energy] separates them from the unlabelled test half (on the large datasets, from a random subset of
  it that keeps the labelling rate); c = mean out-of-fold g over the labelled rows (5 folds), and test rows are
  classified with out-of-fold g; a test row is flagged when g(x)/c ≥ 0.5 (the seeds' c/2 rule). No ρ is used;
  `pu_c_true` (from test labels) is printed only to check the estimate.

The seeds' third change, a loss that uses labelled anomalies, retrains the model and has its own notebook (06b).

Datasets can run separately (one per machine, or one per session) and still make one table: each dataset's runs
join the per-run tables in the reports folder as soon as it is done, each row with the commit, device, profile and
`label_fraction` it ran with. With `keep_other_runs`, the runs of datasets not run here are kept from those tables
and listed below; without it, this execution's datasets replace them.

Writes `reports/tables/variants_pu_inference.csv`, `variants_pu_inference_runs.csv`,
`variants_pu_inference_sweep.csv`, `variants_dagmm_heads_sweep.csv` (DAGMM's own sweep, also used by 04, 05 and 06b),
the per-run tables `variants_dagmm_heads_per_run.csv` (DAGMM's own runs) and `variants_pu_inference_sweep_per_run.csv`
(every run's sweep), and the figures `pu_inference_metrics.png`, `pu_inference_percentile_sweep.png`."""),
    code(PARAMS + '''
label_fraction: float = 0.2  # fraction of the training half's anomalies that are labelled (at least 5 rows)
keep_other_runs: bool = True  # keep the runs of datasets not run now from the per-run tables already in the reports folder''',
         metadata={"tags": ["parameters"]}),
    code(SETUP + '''
commit = reporting.git_commit()  # at the start: the code that runs, even if the checkout moves on meanwhile
print(f"label_fraction={label_fraction}")'''),
    code('''# DAGMM (paper setting) from notebook 01, same splits and seeds, for context
ref_file = TABLES / "table2_dagmm.csv"
reference = pd.read_csv(ref_file) if ref_file.exists() else pd.DataFrame(columns=TABLE_COLUMNS)
reference = reference[reference.method == "DAGMM"]
if reference[reference.dataset.isin(names)].empty:
    print(f"no DAGMM rows in {ref_file}: run notebook 01 with the same profile first for the side-by-side")'''),
    code('''files = {  # per-run tables; only the first matches notebook 07's variants_*_runs.csv
    "variants": TABLES / "variants_pu_inference_runs.csv",
    "dagmm": TABLES / "variants_dagmm_heads_per_run.csv",  # DAGMM's own runs (the reference when notebook 01's is missing)
    "sweep": TABLES / "variants_pu_inference_sweep_per_run.csv",  # every run's percentile sweep, DAGMM's included
}
provenance = dict(commit=commit, device=describe_device(device), profile=profile, label_fraction=label_fraction)
ran = set()  # (dataset, method) pairs run here
for i, name in enumerate(names):
    df, sw = run_dagmm_heads(name, runs, epochs=epoch_overrides.get(name), data_dir=data_dir or None, device=device,
                             max_parallel=max_parallel, label_fraction=label_fraction,
                             pu_max_unlabelled=20_000 if profile == "full" else 2_000)
    # each dataset joins the tables as soon as it is done, so a crash in a later one loses none of it; the
    # first one replaces the runs already there unless keep_other_runs, the later ones keep this execution's
    parts = {"variants": df[df.method != "DAGMM"], "dagmm": df[df.method == "DAGMM"], "sweep": sw}
    for key, new in parts.items():
        merged, _ = reporting.merge_runs(new.assign(**provenance), files[key], keep_other=keep_other_runs or i > 0)
        reporting.save_table(merged, files[key])
    ran |= set(zip(df.dataset, df.method))'''),
    md("""## Results

For *DAGMM PU threshold*, precision/recall/F1 are at the PU rule g(x)/c ≥ 0.5 (not top-ρ); AUROC/AUPRC rank by g."""),
    code('''order = {d: i for i, d in enumerate(dagmm.PAPER_SETTINGS)}  # the paper's order of the datasets
per_run, dagmm_runs, sweep_runs = (
    pd.read_csv(f).sort_values("dataset", kind="stable", key=lambda s: s.map(order)).reset_index(drop=True)
    for f in files.values())
all_names = list(dict.fromkeys(per_run.dataset))
kept = per_run[[pair not in ran for pair in zip(per_run.dataset, per_run.method)]]
if len(kept):
    print("kept from the earlier per-run tables (not rerun here):")
    display(reporting.provenance(kept, ["commit", "device", "profile", "label_fraction"]).set_index(["dataset", "method"]))
    if "label_fraction" in kept and (kept.label_fraction.dropna() != label_fraction).any():
        print(f"WARNING: some kept runs used another label_fraction than {label_fraction} (see above)")
table = aggregate(per_run)
reporting.save_table(table[TABLE_COLUMNS], TABLES / "variants_pu_inference.csv")
sweep_agg = aggregate_sweep(sweep_runs[sweep_runs.method != "DAGMM"])
reporting.save_table(sweep_agg, TABLES / "variants_pu_inference_sweep.csv")
dagmm_sweep = aggregate_sweep(sweep_runs[sweep_runs.method == "DAGMM"])
reporting.save_table(dagmm_sweep, TABLES / "variants_dagmm_heads_sweep.csv")
own = aggregate(dagmm_runs[~dagmm_runs.dataset.isin(reference.dataset)])  # where notebook 01's table has no row
reference = pd.concat([reference[reference.dataset.isin(all_names)], own[own.dataset.isin(all_names)]], ignore_index=True)
shown = pd.concat([reference[TABLE_COLUMNS], table[TABLE_COLUMNS]], ignore_index=True)
shown = shown.sort_values("dataset", kind="stable", key=lambda s: s.map(order))
rep = seeds_reported[["dataset", "method", "setting", "precision", "recall", "f1", "auroc"]].rename(
    columns=lambda c: c if c in ("dataset", "method") else f"seeds_{c}")
display(reporting.format_mean_std(shown).merge(rep, on=["dataset", "method"], how="left").set_index(["dataset", "method"]))'''),
    seeds_note_cell(),
    code('''fig = plotting.metric_bars(shown, reported=rep.rename(columns={"seeds_f1": "f1", "seeds_auroc": "auroc"}))
reporting.save_figure(fig, FIGURES / "pu_inference_metrics.png")
fig = plotting.sweep_curves(pd.concat([dagmm_sweep, sweep_agg], ignore_index=True))
reporting.save_figure(fig, FIGURES / "pu_inference_percentile_sweep.png")
display(sweep_agg.pivot_table(index=["dataset", "method"], columns="percentile", values="f1_mean", sort=False).round(3))'''),
    summary_cell('["DAGMM modified inference", "DAGMM PU threshold"]', names_var="all_names"),
    md("## The PU estimate of c against the labelling rate it estimates"),
    code('''pu = per_run[per_run.method == "DAGMM PU threshold"]
display(pu.groupby("dataset", sort=False)[["n_labelled", "pu_c", "pu_c_true", "precision", "recall", "f1"]].mean().round(3))'''),
])

write_notebook("06b_modified_loss.ipynb", [
    md(f"""# 06b · Training with a few labelled anomalies: the modified loss

The seeds' semi-supervised change to DAGMM's objective, on the four tabular datasets with the same splits and seeds
as notebook 01. {LABELLED[0].upper() + LABELLED[1:]}; the labelled anomalies are the same rows as notebook 06's.

They join DAGMM's training set. Each batch's mixture is estimated from its normal rows; normal rows contribute E(z)
to the loss as in DAGMM, and labelled anomalies either

* **1/E(z)** (the seeds' form: unbounded, and rewarding negative energies), or
* a **hinge** max(0, m + Ē_normal − E(z)) with m = `anomaly_margin` nats (bounded; it pushes anomalies a fixed margin
  above the batch's normal energy and no further).

Scored by energy under the mixture fitted on the training half's normal rows, top-ρ rule. The parameter values used
are printed below.

Writes `reports/tables/variants_modified_loss.csv`, `variants_modified_loss_runs.csv`,
`variants_modified_loss_sweep.csv` and the figures `modified_loss_metrics.png`,
`modified_loss_percentile_sweep.png`."""),
    code(PARAMS + '''
label_fraction: float = 0.2  # fraction of the training half's anomalies that are labelled (at least 5 rows)
anomaly_margin: float = 5.0  # margin (nats) of the hinge form of the modified loss''', metadata={"tags": ["parameters"]}),
    code(SETUP + '''
print(f"label_fraction={label_fraction}  anomaly_margin={anomaly_margin}")'''),
    dagmm_reference_cell(),
    code('''methods = ["DAGMM modified loss", "DAGMM modified loss (hinge)"]
frames, sweeps = [], []
for name in names:
    for method in methods:
        df, sw = run_variant(name, runs, method, {**VARIANTS[method], "anomaly_margin": anomaly_margin},
                             epochs=epoch_overrides.get(name), data_dir=data_dir or None, device=device,
                             max_parallel=max_parallel, label_fraction=label_fraction)
        frames.append(df)
        sweeps.append(sw)'''),
    md("## Results: ours beside DAGMM and the seeds' reported numbers"),
    *results_cells("modified_loss", "methods"),
])

# ---------------------------------------------------------------- 07
write_notebook("07_summary.ipynb", [
    md("""# 07 · Summary: every method and variant against DAGMM, paired over seeds

Reads the per-run tables the other notebooks wrote (`table2_dagmm_runs.csv`, `table2_full_runs.csv` when the
baselines notebook has run, `variants_*_runs.csv`). Runs with the same dataset and seed share their split, so each
method is compared with DAGMM pairwise: a two-sided Wilcoxon signed-rank test on the per-seed F1 and AUROC, with the
median per-seed difference as the effect size. With a few dozen tests per metric some raw p < 0.05 are expected by
chance, so the verdicts use Holm-adjusted p-values (the raw ones are in the table too). Fewer than 5 paired runs
(the smoke profile) are reported as not tested. The seeds' reported single-run numbers sit beside ours, with the
threshold setting they were reported at.

Writes `reports/tables/summary.csv`, `reports/tables/summary_tests.csv` and `reports/figures/07_summary_f1.png`,
`07_summary_auroc.png` (under `reports/smoke/` in the smoke profile)."""),
    code('''profile: str = "full"  # which reports to summarise: "full" (reports/) or "smoke" (reports/smoke/)
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
alpha: float = 0.05  # significance level of the paired tests''', metadata={"tags": ["parameters"]}),
    code('''from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from dagmm import paths, plotting, reporting
from dagmm.summary import load_runs, paired_tests, summary_table

out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
plotting.set_style()
runs = load_runs(TABLES)
print(runs.groupby("source_file").method.unique().to_string())'''),
    code('''tests = paired_tests(runs, reference="DAGMM")
summary = summary_table(runs, tests, reporting.load_published(), alpha=alpha)
reporting.save_table(tests, TABLES / "summary_tests.csv")
reporting.save_table(summary, TABLES / "summary.csv")
cols = ["dataset", "method", "n_runs", "n_failed", "f1", "auroc", "diff_f1_vs_dagmm", "p_f1_vs_dagmm", "p_holm_f1_vs_dagmm",
        "verdict_f1", "diff_auroc_vs_dagmm", "p_holm_auroc_vs_dagmm", "verdict_auroc", "reported_source", "reported_setting",
        "reported_f1", "reported_auroc"]
display(reporting.format_mean_std(summary)[cols].set_index(["dataset", "method"]))'''),
    code('''for metric in ("f1", "auroc"):
    if summary[f"diff_{metric}_vs_dagmm"].notna().any():
        fig = plotting.verdict_heatmap(summary, metric, alpha)
        reporting.save_figure(fig, FIGURES / f"07_summary_{metric}.png")'''),
    md("## Which variants beat DAGMM (generated from the tests above)"),
    code('''lines = []
for name, d in summary.groupby("dataset", sort=False):
    for metric, label in (("f1", "F1"), ("auroc", "AUROC")):
        parts = []
        for word, verdict in (("better than DAGMM", "better"), ("worse than DAGMM", "worse"),
                              ("no significant difference from DAGMM", "no significant difference"),
                              ("not tested", "not tested (fewer than 5 paired runs)")):
            ms = d[d[f"verdict_{metric}"] == verdict].method.tolist()
            if ms:
                parts.append(f"{word}: " + ", ".join(ms))
        lines.append(f"* **{name}**, {label} (Holm-adjusted p < {alpha}): "
                     + ("; ".join(parts) or "not compared (no DAGMM runs from notebook 01 for this dataset)"))
pub = reporting.load_published()
paper_dagmm = pub[(pub.source == "zong2018_iclr") & (pub.method == "DAGMM")].set_index("dataset").f1
contra = summary[summary.reported_f1.notna() & (summary.method != "DAGMM") & summary.reported_source.str.startswith("seed")]
for _, r in contra.iterrows():
    p = paper_dagmm.get(r.dataset)
    claim = "" if p is None else f" ({'above' if r.reported_f1 > p else 'below'} DAGMM's {p:.3f} in the paper)"
    setting = f" at the {r.reported_setting}" if isinstance(r.reported_setting, str) else ""
    lines.append(f"* The seeds report {r.method} on {r.dataset} at F1 {r.reported_f1:.3f}{setting}{claim}, one run; here "
                 f"(top-ρ rule, paired over seeds): F1 {r.verdict_f1 or 'not compared'} vs DAGMM "
                 f"(F1 {r.f1_mean:.3f} ± {r.f1_std:.3f}; AUROC: {r.verdict_auroc or 'not compared'}).")
display(Markdown("\\n".join(lines)))'''),
])
print("wrote notebooks 04-07")
