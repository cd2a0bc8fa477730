"""Writes notebooks/02_conv_dagmm.ipynb (framework 1). ``build(framework)`` also makes
notebook 03 (framework 2, see make_notebook_03.py): the two differ only in the
compression network, their texts and their output names."""

import nbformat as nbf
from notebook_file import write_notebook  # scripts/, beside this file

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell

FRAMEWORKS = {
    "conv": dict(
        number="02", file="02_conv_dagmm.ipynb", table="images_framework1", title="convolutional DAGMM (framework 1)",
        what="""the seeds' **framework 1**: a plain convolutional compression network (Conv 3→32→64→128→256, 4×4 stride 2,
down to 256×4×4, a linear layer to the code z_c, and the mirrored transposed convolutions back to 3×64×64 with a
sigmoid output)""",
        dagmm="ConvDAGMM", ae="ConvAE (recon. error)", epochs=(16, 4),
    ),
    "resconv": dict(
        number="03", file="03_residual_dagmm.ipynb", table="images_framework2", title="residual convolutional DAGMM (framework 2)",
        what="""the seeds' **framework 2**: a residual compression network (down blocks: 4×4 stride-2 conv – BN – ReLU – 3×3 conv
– BN plus a 1×1 stride-2 conv – BN shortcut; up blocks: 4×4 stride-2 transposed conv – BN – ReLU – 3×3 conv – BN plus an
upsample-2 – 1×1 conv – BN shortcut; 256×4×4 ↔ z_c through linear layers; sigmoid output)""",
        dagmm="ResConvDAGMM", ae="ResConvAE (recon. error)", epochs=(4, 1),
    ),
}


def build(framework: str) -> None:
    f = FRAMEWORKS[framework]
    n, t = f["number"], f["table"]
    cells = [
md(f"""# {n} · DAGMM for images: the {f['title']}

This notebook runs DAGMM on images with {f['what']}, feeding z = [z_c, relative Euclidean distance, cosine
similarity] to the paper's estimation network and Gaussian-mixture energy. Two data sets: **MVTec AD bottle**
(train on `train/good`, test on `test/*`: good bottles against broken_large, broken_small and contamination) and
**Intel Image Classification, forest vs rest** (train on `seg_train/forest`, test on `seg_test`: forest normal, the
five other scene classes anomalous). Beside DAGMM it runs the **same autoencoder without the estimation network**,
scored by reconstruction error (the control that shows what the mixture adds), and it sets the seeds' single-run
numbers (read from `published_results.csv`) beside ours.

It writes `reports/tables/{t}.csv` (rows dataset × method, mean and std over seeds, with the seeds' numbers),
`{t}_runs.csv` (every run), `{t}_by_type.csv` (AUROC per defect type / scene class), and the figures
`reports/figures/{n}_roc_curves.png`, `{n}_score_histograms.png`, `{n}_reconstructions_<dataset>.png`,
`{n}_ranked_<dataset>.png` and `{n}_loss_curves.png`. The `smoke` profile writes the same files under
`reports/smoke/`."""),
code(f"""profile: str = "full"  # "full": every image and n_runs seeds; "smoke": 2 runs, 1 epoch, 16 train and 16 test images of 32x32
n_runs: int = 5  # seeds 0..n_runs-1 (initialisation, shuffling, dropout); the splits are fixed
datasets: str = "mvtec_bottle,intel_forest"  # comma-separated image data sets
image_size: int = 64  # images are resized to image_size x image_size (the seeds' 64)
latent_dim: int = 8  # size of z_c; z has latent_dim + 2 dimensions
n_components: int = 2  # mixture components K
lambda_energy: float = 0.1  # λ1, the paper's
lambda_cov: float = 0.005  # λ2, the paper's
lr: float = 0.001  # Adam learning rate
batch_size: int = 32  # images per mini-batch
epochs_mvtec_bottle: int = {f['epochs'][0]}  # epochs on the 209 MVTec training images
epochs_intel_forest: int = {f['epochs'][1]}  # epochs on the 900 Intel forest training images
percentile: float = 95.0  # label-free threshold: this percentile of the training scores
data_dir: str = ""  # data directory; "" means $DAGMM_DATA_DIR, then data/raw/
reports_dir: str = ""  # "" means reports/ (full) or reports/smoke/ (smoke)
device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
max_parallel: int = 0  # runs trained together as one batched model; 0 means one on a CPU and all on a GPU
threads: int = 1  # CPU threads for torch; 1 is fastest on a shared 2-core CPU, 0 keeps the default""", metadata={"tags": ["parameters"]}),
code(f"""import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import dagmm
from dagmm import paths, plotting, reporting
from dagmm.image_study import FRAMEWORKS, aggregate_images, by_kind_table, profile_settings, run_framework, with_seeds
from dagmm.training import describe_device, resolve_device

t_start = time.perf_counter()
FRAMEWORK = "{framework}"
names = FRAMEWORKS[FRAMEWORK]
prof = profile_settings(profile)
runs = n_runs if prof["n_runs"] is None else min(n_runs, prof["n_runs"])
sets = [d.strip() for d in datasets.split(",") if d.strip()]
epochs = {{"mvtec_bottle": epochs_mvtec_bottle, "intel_forest": epochs_intel_forest}}
epochs = {{d: (prof["epochs"] or epochs[d]) for d in sets}}
size = prof["image_size"] or image_size
out = Path(reports_dir) if reports_dir else (paths.REPORTS if profile == "full" else paths.REPORTS / "smoke")
TABLES, FIGURES = out / "tables", out / "figures"
dev = resolve_device(device)
if threads:
    torch.set_num_threads(threads)
parallel = max_parallel or (runs if dev.type == "cuda" else 1)
params = dict(latent_dim=latent_dim, n_components=n_components, lambda_energy=lambda_energy, lambda_cov=lambda_cov,
              lr=lr, batch_size=batch_size, device=device)
plotting.set_style()
print(f"profile={{profile}}  runs={{runs}}  device={{describe_device(dev)}}  runs trained together={{parallel}}")
print(f"data={{dagmm.resolve_data_dir(data_dir or None)}}  reports={{out}}  image size={{size}}  epochs={{epochs}}  {{params}}")"""),
md("""## Protocol and settings

* **Splits are fixed** by the data sets' own folders; seeds 0..n−1 vary only the initial weights, the shuffling and
  the estimation network's dropout. Images are resized to 64×64 (squashed, not cropped) and used as given in [0, 1].
* **Scores.** DAGMM: sample energy under the mixture fitted on all training images after training. Control: the
  squared reconstruction error of the same network trained with λ1 = λ2 = 0 (the estimation network then has no
  effect, so it is a plain convolutional autoencoder).
* **Metrics.** AUROC and AUPRC need no threshold. Precision / recall / F1 of the anomaly class are given at two
  thresholds: **top-ρ** (the paper's rule: flag the ρ fraction of test images with the highest scores, ρ = the test
  set's anomaly ratio, column `rho` of the runs table; it uses that ratio, a property of the test labels, as the
  paper does), and **train95** (label-free: flag test images scoring above the 95th percentile of
  up to 300 training images' scores, drawn once). The seeds report one run's precision, recall and AUROC without saying which
  threshold they used. MVTec is also scored per defect type and Intel per scene class (AUROC of the normal test
  images against that type alone).
* **Settings, chosen without test labels.** K = 2 and latent_dim = 8: z has 10 dimensions, so one full-covariance
  component has 65 parameters, and with mini-batches of 32 images split over K components a larger z or K would
  make the per-batch covariances rank-deficient (the mixture is re-estimated on every mini-batch). λ1 = 0.1 and
  λ2 = 0.005 are the paper's. Adam with lr 1e-3 (the usual rate for convolutional autoencoders; the paper's 1e-4 is
  for its small fully connected nets). Epochs are set by the compute budget (the full profile of each notebook must
  run in under 30 minutes on a 2-core CPU, both data sets, two methods, five seeds), about the same number of
  gradient steps on both data sets; the training-loss curves at the end show how far training got. Torch uses one
  CPU thread (`threads`): on a CPU shared with other jobs two threads were 2–15× slower per step than one."""),
code("""per_run, artifacts, data = run_framework(FRAMEWORK, sets, runs, epochs, image_size=size, data_dir=data_dir or None,
                                         max_train=prof["max_train"], max_test=prof["max_test"], max_parallel=parallel,
                                         percentile=percentile, n_examples=prof["n_examples"], **params)
t_runs = time.perf_counter() - t_start
print(f"all runs: {t_runs:.0f} s")"""),
md("""## Results: ours (mean ± std over seeds) beside the seeds' single runs

`precision/recall/f1` use the top-ρ rule and `*_train95` the label-free threshold. `seed_*` are the seeds' numbers
for this framework (one run each; read from `published_results.csv`)."""),
code(f"""published = reporting.load_published()
table = aggregate_images(per_run)
table = with_seeds(table, published, names["seed_table"], names["seed_method"], names["dagmm"])
by_type = by_kind_table(per_run)
reporting.save_table(per_run, TABLES / "{t}_runs.csv")
reporting.save_table(table, TABLES / "{t}.csv")
reporting.save_table(by_type, TABLES / "{t}_by_type.csv")
from dagmm.image_study import THRESHOLD_METRICS
from dagmm.protocol import METRICS
display(reporting.format_mean_std(table, METRICS + THRESHOLD_METRICS).set_index(["dataset", "method"]))"""),
md("""### AUROC per anomaly type (MVTec: defect type; Intel: scene class)"""),
code("""shown = by_type.assign(auroc=[f"{m:.3f} ± {s:.3f}" for m, s in zip(by_type.auroc_mean, by_type.auroc_std)])
display(shown.pivot(index=["dataset", "anomaly_type"], columns="method", values="auroc"))"""),
code("""sota = published[published.table == "image_auroc"]
lines = []
for name in sets:
    t = table[table.dataset == name].set_index("method")
    d, a = t.loc[names["dagmm"]], t.loc[names["ae"]]
    seed = d.seed_auroc
    vs = ("no seed number" if pd.isna(seed) else
          f"{'above' if d.auroc_mean > seed else 'not above'} the seeds' {seed:.3f} (difference {d.auroc_mean - seed:+.3f})")
    lines.append(
        f"* **{name}**: {names['dagmm']} AUROC {d.auroc_mean:.3f} ± {d.auroc_std:.3f} over {int(d.n_runs)} runs "
        f"({int(d.n_failed)} failed): {vs}. AUPRC {d.auprc_mean:.3f}; F1 top-ρ {d.f1_mean:.3f}, F1 train95 {d.f1_train95_mean:.3f}. "
        f"The autoencoder control scores AUROC {a.auroc_mean:.3f} ± {a.auroc_std:.3f} "
        f"(DAGMM − control: {d.auroc_mean - a.auroc_mean:+.3f}).")
    if not pd.isna(seed) and d.auroc_mean <= seed:
        lines.append(
            f"  Not above the seeds here. What was tried: the seeds' architecture with the paper's λ1, λ2, K = {n_components}, "
            f"latent_dim = {latent_dim}, lr {lr:g}, batch {batch_size}, {epochs[name]} epochs (all this CPU budget allows for "
            f"{int(d.n_runs)} seeds and the control); no setting was tuned on test labels. The training-loss curves below show "
            "whether training had converged; longer training (on a GPU) is the first thing to try.")
    for _, r in sota[sota.dataset == name].iterrows():
        lines.append(f"  For context: {r.method} reaches image AUROC {r.auroc:.3f} ({r.note}; source: {r.source}).")
display(Markdown("**What the tables say (generated from the numbers above):**\\n\\n" + "\\n".join(lines)))"""),
md("""## ROC curves (every run) and score distributions (run 0)

In the histograms the dashed line is the top-ρ threshold and the dash-dotted one the label-free train95 threshold."""),
code(f"""curves = {{n: {{m: [(a["y"], a["scores"]) for a in artifacts[n][m].values()] for m in artifacts[n]}} for n in sets}}
reporting.save_figure(plotting.roc_curves(curves), FIGURES / "{n}_roc_curves.png")
hist = {{f"{{d}}: {{m}}": artifacts[d][m][0] for d in sets for m in artifacts[d]}}
reporting.save_figure(plotting.threshold_histograms(hist), FIGURES / "{n}_score_histograms.png")"""),
md("""## Inputs and reconstructions (run 0 of DAGMM)

Test images spread over the normal and the anomalous ones, each above its reconstruction; the title gives the image's
type and its energy."""),
code(f"""for name in sets:
    ex = artifacts[name][names["dagmm"]][0]["examples"]
    groups = {{g: ex[g] for g in ("normal", "anomalous")}}
    fig = plotting.image_pairs(data[name].X, groups, data[name].kind, f"{{name}}: {{names['dagmm']}} run 0 (energy under each)")
    reporting.save_figure(fig, FIGURES / f"{n}_reconstructions_{{name}}.png")"""),
md("""## The most and least anomalous test images (run 0 of DAGMM)"""),
code(f"""for name in sets:
    ex = artifacts[name][names["dagmm"]][0]["examples"]
    fig = plotting.ranked_images(data[name].X, ex, data[name].kind, data[name].y, f"{{name}}: {{names['dagmm']}} run 0")
    reporting.save_figure(fig, FIGURES / f"{n}_ranked_{{name}}.png")"""),
md("""## Training loss (run 0)

The loss of DAGMM includes λ1·energy and λ2·Σ 1/σ², so its scale differs from the control's (reconstruction error
only)."""),
code(f"""losses = {{f"{{d}}: {{m}}": artifacts[d][m][0]["loss"] for d in sets for m in artifacts[d] if len(artifacts[d][m][0]["loss"])}}
fig = plotting.loss_curves(losses)
for ax in fig.axes:
    ax.set_xscale("linear")
    ax.set_yscale("log")
    ax.title.set_fontsize(8)
reporting.save_figure(fig, FIGURES / "{n}_loss_curves.png")
print(f"notebook wall time: {{time.perf_counter() - t_start:.0f}} s (runs {{t_runs:.0f}} s) on {{describe_device(dev)}}")"""),
    ]
    write_notebook(f["file"], cells)


if __name__ == "__main__":
    build("conv")
