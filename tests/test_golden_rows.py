# Goldens generated from commit 82c442a32cca346cce5745f13ebe921bec43a5cc
# ("Move the fast engine into dagmm.engine, beside the reference DAGMM"), from a pristine worktree of it.
"""Golden rows: the per-run rows of every protocol driver, pinned as they are at commit 82c442a.

Each test runs one driver on a tiny, fixed case (synthetic tables or images, or the
smallest real sets: Arrhythmia and ADBench's wine; 2-3 seeds, 1-4 epochs or 20 steps, small
networks, one torch/BLAS/OpenMP thread, CPU) and compares the rows it returns with
``tests/data/golden/<case>.csv``: the same columns in the same order, the same rows in
the same order, strings, integers and booleans exactly and floats to ``rtol=1e-6``.
Wall-clock columns (``seconds``) are dropped before the comparison; nothing else is.

What they catch: most columns are rank metrics (precision, recall, F1 at the top-rho
rule, AUROC, AUPRC), which move when a change reorders test scores: a changed split,
random stream, seed offset, chunking, training step, readout, threshold rule, row or
column. A change of the scores at float-rounding level (e.g. another Adam
implementation) reorders nothing on cases this small; of the columns here only the
image driver's ``threshold`` (a raw score) sees it.

The goldens are a safety net for refactoring the drivers (one protocol driver, one
training loop, a method registry): such a change must leave every number, column and
row where it is, so these files must not change with it.

Regenerating
------------
``scripts/make_golden_rows.py`` writes the CSVs from the cases defined here (they are
the single definition of the cases). Run it on a pristine checkout of the commit whose
results are meant, e.g.::

    git worktree add /tmp/golden-src HEAD
    DAGMM_DATA_DIR=/path/to/datasets PYTHONPATH=/tmp/golden-src/lib \\
        nice -n 19 .venv/bin/python scripts/make_golden_rows.py

Regenerating is legitimate only when a change is *meant* to alter results (a new
default, a fixed bug, a changed random stream), and the commit that carries the new
goldens must say so and why; update the commit named at the top of this file with
them. A refactor that needs new goldens is not a refactor.

Cases that need the real data files (Arrhythmia, wine) are skipped when they are
absent (set ``DAGMM_DATA_DIR``).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
GOLDEN_COMMIT = "82c442a32cca346cce5745f13ebe921bec43a5cc"
WALL_CLOCK_COLUMNS = ("seconds",)  # dropped before comparing: they measure the machine, not the method
FLOAT_FORMAT = "%.17g"  # float64 survives the CSV round trip exactly
RTOL = 1e-6
DEVICE = "cpu"
REAL_SET = "arrhythmia"  # the smallest of the paper's sets (452 rows)
ADBENCH_SET = "wine"  # the smallest ADBench set here (129 rows)


# --------------------------------------------------------------------------- comparison


def golden_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as it is compared and stored: wall-clock columns dropped, through a CSV round trip
    (so the frame in memory and the file on disk are parsed the same way)."""
    df = df.drop(columns=[c for c in WALL_CLOCK_COLUMNS if c in df.columns]).reset_index(drop=True)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    buf.seek(0)
    return pd.read_csv(buf)


def write_golden(name: str, df: pd.DataFrame, folder: Path = GOLDEN_DIR) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    df.drop(columns=[c for c in WALL_CLOCK_COLUMNS if c in df.columns]).to_csv(
        path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return path


def assert_rows_unchanged(frames: dict[str, pd.DataFrame]) -> None:
    for name, df in frames.items():
        got = golden_frame(df)
        want = pd.read_csv(GOLDEN_DIR / f"{name}.csv")
        assert list(got.columns) == list(want.columns), f"{name}: columns changed"
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=RTOL, atol=0, obj=f"golden rows {name}")


# --------------------------------------------------------------------------- tiny inputs


def two_clusters(n_normal: int, n_anomaly: int, seed: int, box: float = 1.0, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Normal rows: two elongated clusters in 6-D; anomalies: uniform in [-box, box]^6, so some fall among the
    normal rows and no detector is perfect (a perfect one would hide changed scores). Returns X (float32), y (int64)."""
    rng = np.random.default_rng(seed)
    sign = np.where(rng.random((n_normal, 1)) < 0.5, -1.0, 1.0)
    Xn = sign * np.array([[1, -0.5, 0.5, 1, -1, 0.8]]) + rng.uniform(-0.3, 0.3, (n_normal, 1)) * np.array([[1, 1, -1, 0.5, 0.5, 1]])
    Xn += noise * rng.normal(size=Xn.shape)
    Xa = rng.uniform(-box, box, size=(n_anomaly, 6))
    X = np.vstack([Xn, Xa]).astype(np.float32)
    return X, np.r_[np.zeros(n_normal, np.int64), np.ones(n_anomaly, np.int64)]


def blob_images(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth random RGB images (a blob at a random place)."""
    rng = np.random.default_rng(seed)
    g = np.linspace(-1, 1, size)
    cx, cy = rng.uniform(-0.5, 0.5, (2, n, 1, 1))
    base = np.exp(-((g[None, None, :] - cx) ** 2 + (g[None, :, None] - cy) ** 2) * 3)
    X = np.stack([base * c for c in (0.6, 0.4, 0.2)], 1) + rng.normal(0, 0.02, (n, 3, size, size))
    return np.clip(X, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- the cases
# Each returns {golden file name: per-run frame}. scripts/make_golden_rows.py writes them.


def run_dagmm_rows(data_dir=None) -> dict[str, pd.DataFrame]:
    """protocol.run_dagmm: 3 seeds in chunks of 2 (run numbers continue across chunks)."""
    from dagmm import DAGMM
    from dagmm.protocol import make_splits, run_dagmm

    X, y = two_clusters(300, 40, 0)
    splits = make_splits("thyroid", y, range(3))
    est = DAGMM(hidden=(8, 4), latent_dim=1, n_components=2, epochs=3, batch_size=64, lr=1e-3, device=DEVICE)
    df, _ = run_dagmm("synthetic", X, y, splits, est, rho=0.12, method="DAGMM", max_parallel=2)
    return {"run_dagmm": df}


def run_estimator_rows(data_dir=None) -> dict[str, pd.DataFrame]:
    """protocol.run_estimator: the default scoring (-score_samples) and a given score function."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    from dagmm.protocol import make_splits, run_estimator

    X, y = two_clusters(300, 40, 1, noise=0.3)
    splits = make_splits("thyroid", y, range(2))
    a = run_estimator("synthetic", X, y, splits, lambda s: IsolationForest(n_estimators=25, random_state=s),
                      rho=0.12, method="Isolation Forest")
    b = run_estimator("synthetic", X, y, splits, lambda s: LocalOutlierFactor(n_neighbors=10, novelty=True),
                      rho=0.12, method="LOF", score=lambda est, Xt: -est.decision_function(Xt))
    return {"run_estimator": pd.concat([a, b], ignore_index=True)}


def run_methods_rows(data_dir=None) -> dict[str, pd.DataFrame]:
    """baselines.suite.run_methods: every method of the suite (training groups, PAE's shared pre-training, the
    shallow ones), smoke profile, smaller batches (more steps, so training moves the scores)."""
    from dagmm.baselines.suite import ALL_METHODS, SHALLOW, run_methods
    from dagmm.protocol import make_splits

    X, y = two_clusters(255, 45, 2)
    splits = make_splits("arrhythmia", y, range(2))
    methods = list(ALL_METHODS)[::-1]  # not the suite's own order: the rows follow `methods`
    overrides = {m: dict(batch_size=16, lr=1e-3) for m in methods if m not in SHALLOW}
    df = run_methods("arrhythmia", X, y, splits, methods, profile="smoke", device=DEVICE, verbose=False,
                     overrides=overrides)
    return {"run_methods": df}


def run_levels_rows(data_dir=None) -> dict[str, pd.DataFrame]:
    """baselines.suite.run_levels: Table 3's methods at 2 contamination levels, 2 runs each."""
    from dagmm.baselines.suite import CONTAMINATION_METHODS, run_levels

    X, y = two_clusters(255, 45, 3)
    methods = list(CONTAMINATION_METHODS)
    overrides = {m: dict(batch_size=16, lr=1e-3) for m in methods if m != "OC-SVM"}  # more steps, as in run_methods_rows
    df = run_levels("arrhythmia", X, y, (0.02, 0.05), 2, methods, profile="smoke", device=DEVICE, verbose=False,
                    overrides=overrides)
    return {"run_levels": df}


def run_variant_rows(data_dir) -> dict[str, pd.DataFrame]:
    """variants.run_variant: the VAE compressor and the modified loss (labelled training anomalies)."""
    from dagmm.variants import VARIANTS, run_variant

    frames, sweeps = [], []
    for method in ("DAGMM-VAE", "DAGMM modified loss"):
        df, sweep = run_variant(REAL_SET, 2, method, VARIANTS[method], epochs=2, data_dir=data_dir, device=DEVICE,
                                verbose=False)
        frames.append(df)
        sweeps.append(sweep)
    return {"run_variant": pd.concat(frames, ignore_index=True), "run_variant_sweep": pd.concat(sweeps, ignore_index=True)}


def run_dagmm_heads_rows(data_dir) -> dict[str, pd.DataFrame]:
    """variants.run_dagmm_heads: energy, energy+recon and the PU head of one training."""
    from dagmm.variants import run_dagmm_heads

    df, sweep = run_dagmm_heads(REAL_SET, 2, epochs=2, data_dir=data_dir, device=DEVICE, verbose=False)
    return {"run_dagmm_heads": df, "run_dagmm_heads_sweep": sweep}


def epochs_investigation_rows(data_dir) -> dict[str, pd.DataFrame]:
    """study.epochs_investigation: 2 checkpoints, 2 variants, both scores."""
    from dagmm.study import epochs_investigation

    df = epochs_investigation(REAL_SET, 2, (1, 3), variants={"DAGMM": {}, "DAGMM (no covariance penalty)": {"lambda_cov": 0.0}},
                              scores=("energy", "recon"), data_dir=data_dir, device=DEVICE, verbose=False)
    return {"epochs_investigation": df}


def run_image_method_rows(data_dir=None) -> dict[str, pd.DataFrame]:
    """image_study.run_image_method: ConvDAGMM and its autoencoder control on tiny synthetic images
    (two anomaly types; a threshold from a subsample of the training images)."""
    from dagmm.image_study import ConvDAGMM, run_image_method
    from dagmm.images import ImageSet

    test = blob_images(22, 16, 1)
    test[10:16, :, 2:6, 2:6] += 0.05  # anomaly type "square": a faint square in a corner
    test[16:, 0, 6:10, 6:10] += 0.05  # "square2": a faint red square in the middle
    X = np.concatenate([blob_images(40, 16, 0), np.clip(test, 0, 1)])
    kind = np.array(["good"] * 50 + ["square"] * 6 + ["square2"] * 6)
    split = np.array(["train"] * 40 + ["test"] * 22)
    data = ImageSet("toy", X, (kind != "good").astype(np.int64), split, kind, tuple(map(str, range(len(X)))))
    kw = dict(channels=(8, 16), latent_dim=3, epochs=2, batch_size=16, lr=3e-3, device=DEVICE)
    frames = []
    for method, est in (("ConvDAGMM", ConvDAGMM(**kw)),
                        ("CAE", ConvDAGMM(**kw, lambda_energy=0.0, lambda_cov=0.0, scoring="recon"))):
        df, _ = run_image_method(data, est, [0, 1], method=method, max_threshold_images=30, keep=(), n_examples=1,
                                 verbose=False)
        frames.append(df)
    return {"run_image_method": pd.concat(frames, ignore_index=True)}


def beyond_run_dataset_rows(data_dir) -> dict[str, pd.DataFrame]:
    """beyond.run_dataset: every method of notebook 08 on ADBench's wine, and the DAGMM readouts."""
    from dagmm import beyond

    per_run, heads = beyond.run_dataset(ADBENCH_SET, [0, 1], list(beyond.METHODS), data_dir=data_dir, device=DEVICE,
                                        base=dict(steps=20), verbose=False)
    return {"beyond_run_dataset": per_run, "beyond_run_dataset_heads": heads}


def grid_run_task_rows(data_dir) -> dict[str, pd.DataFrame]:
    """grid.run_task: each method of the grid's registry, one task each."""
    from dagmm.grid import Task, run_task

    tasks = [Task(REAL_SET, "DAGMM", 0, {"epochs": 2, "device": DEVICE}, str(data_dir)),
             Task(REAL_SET, "DAGMM (untrained)", 1, {"device": DEVICE}, str(data_dir)),
             Task(REAL_SET, "Isolation Forest", 1, {"n_estimators": 25}, str(data_dir))]
    return {"grid_run_task": pd.DataFrame([run_task(t) for t in tasks])}


# name -> (case, needs the real data files)
CASES = {
    "run_dagmm": (run_dagmm_rows, False),
    "run_estimator": (run_estimator_rows, False),
    "run_methods": (run_methods_rows, False),
    "run_levels": (run_levels_rows, False),
    "run_variant": (run_variant_rows, True),
    "run_dagmm_heads": (run_dagmm_heads_rows, True),
    "epochs_investigation": (epochs_investigation_rows, True),
    "run_image_method": (run_image_method_rows, False),
    "beyond_run_dataset": (beyond_run_dataset_rows, True),
    "grid_run_task": (grid_run_task_rows, True),
}


def real_data_files(data_dir: Path) -> list[Path]:
    return [data_dir / "odds" / f"{REAL_SET}.mat", data_dir / "adbench" / "45_wine.npz"]


# --------------------------------------------------------------------------- tests


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch, BLAS and OpenMP thread, as when the goldens were made (sums in another order round differently)."""
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(n)


@pytest.fixture
def data_dir(real_data_dir):
    missing = [p for p in real_data_files(Path(real_data_dir)) if not p.exists()]
    if missing:
        pytest.skip(f"real data files missing: {[str(p) for p in missing]}")
    return Path(real_data_dir)


def test_run_dagmm_rows_are_unchanged_from_the_golden_file():
    assert_rows_unchanged(run_dagmm_rows())


def test_run_estimator_rows_are_unchanged_from_the_golden_file():
    assert_rows_unchanged(run_estimator_rows())


def test_run_methods_rows_are_unchanged_from_the_golden_file():
    assert_rows_unchanged(run_methods_rows())


def test_run_levels_rows_are_unchanged_from_the_golden_file():
    assert_rows_unchanged(run_levels_rows())


def test_run_variant_rows_and_sweep_are_unchanged_from_the_golden_files(data_dir):
    assert_rows_unchanged(run_variant_rows(data_dir))


def test_run_dagmm_heads_rows_and_sweep_are_unchanged_from_the_golden_files(data_dir):
    assert_rows_unchanged(run_dagmm_heads_rows(data_dir))


def test_epochs_investigation_rows_are_unchanged_from_the_golden_file(data_dir):
    assert_rows_unchanged(epochs_investigation_rows(data_dir))


def test_run_image_method_rows_are_unchanged_from_the_golden_file():
    assert_rows_unchanged(run_image_method_rows())


def test_beyond_run_dataset_rows_and_readouts_are_unchanged_from_the_golden_files(data_dir):
    assert_rows_unchanged(beyond_run_dataset_rows(data_dir))


def test_grid_run_task_rows_are_unchanged_from_the_golden_file(data_dir):
    assert_rows_unchanged(grid_run_task_rows(data_dir))


def test_every_case_has_its_golden_files_and_no_golden_file_is_orphaned():
    """A case without its file, or a file no case writes, means the goldens and the cases were edited apart."""
    stems = {p.stem for p in GOLDEN_DIR.glob("*.csv")}
    expected = {"run_dagmm", "run_estimator", "run_methods", "run_levels", "run_variant", "run_variant_sweep",
                "run_dagmm_heads", "run_dagmm_heads_sweep", "epochs_investigation", "run_image_method",
                "beyond_run_dataset", "beyond_run_dataset_heads", "grid_run_task"}
    assert stems == expected
