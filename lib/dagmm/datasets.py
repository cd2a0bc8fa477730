"""The paper's four tabular benchmarks, exactly as Zong et al. (2018) define them.

========== ================================ ======== ========= ====================
name       rows                             features anomalies anomaly class
========== ================================ ======== ========= ====================
kddcup     KDDCUP99 10% (all 494,021)       118      19.69%    ``normal.`` traffic
kddcup_rev every ``normal.`` row + attacks  118      20%       attacks
           drawn at random to 4:1
thyroid    ODDS Thyroid (3,772)             6        2.47%     ODDS label 1
arrhythmia ODDS Arrhythmia (452)            274      14.60%    ODDS label 1
========== ================================ ======== ========= ====================

KDDCUP's three symbolic columns (protocol_type, service, flag) are one-hot
encoded (3 + 66 + 11 = 80 columns) after its 38 numeric columns; the paper
reports 120 columns, this file's distinct values give 118. The four binary
"symbolic" columns of ``kddcup.names`` (land, logged_in, is_host_login,
is_guest_login) are already 0/1 and stay numeric.

No scaling happens here: :class:`dagmm.DAGMM` min-max scales its input with
statistics of the rows it is fitted on (training rows only), see
``preprocessing`` there.

Beyond the paper, :func:`load_adbench` loads the 19 ADBench classical tabular
sets of :data:`ADBENCH` (Han et al., NeurIPS 2022), unmodified ``.npz`` files
from ADBench's repository at commit :data:`dagmm.fetch.ADBENCH_COMMIT`,
checked against ``dagmm/checksums/adbench.sha256`` and downloaded into
``<data_dir>/adbench/`` when missing:

================ ============== ========= ================ ============== =========
name             rows x feat.   anomalies name             rows x feat.   anomalies
================ ============== ========= ================ ============== =========
ALOI             49,534 x 27    1,508     magic.gamma      19,020 x 10    6,688
annthyroid       7,200 x 6      534       mammography      11,183 x 6     260
breastw          683 x 9        239       PageBlocks       5,393 x 10     510
campaign         41,188 x 62    4,640     SpamBase         4,207 x 57     1,679
Cardiotocography 2,114 x 21     466       Stamps           340 x 9        31
fault            1,941 x 27     673       Waveform         3,443 x 21     100
Hepatitis        80 x 19        13        Wilt             4,819 x 5      257
InternetAds      1,966 x 1,555  368       wine             129 x 13       10
landsat          6,435 x 36     1,333     WPBC             198 x 33       47
                                          yeast            1,484 x 8      507
================ ============== ========= ================ ============== =========

None of them holds NaN or inf. Rows are returned as stored, duplicates
included: e.g. 3,329 of mammography's 11,183 rows (7 of them anomalies) are one
and the same row, the minimum of every feature (all zeros once min-max scaled).
"""
from __future__ import annotations

import gzip
import io
import os
from functools import lru_cache

import numpy as np

from .fetch import fetch_file, require_data_dir, resolve_data_dir  # noqa: F401 (resolve_data_dir: re-exported)

__all__ = [
    "DATASETS",
    "load_dataset",
    "load_base",
    "draw_rows",
    "kddcup_feature_names",
    "ADBENCH",
    "adbench_name",
    "load_adbench",
]

DATASETS = ("kddcup", "kddcup_rev", "thyroid", "arrhythmia")
KDD_SYMBOLIC = (1, 2, 3)  # protocol_type, service, flag
KDDCUP_REV_RATIO = 4  # normal : attack rows in KDDCUP-Rev

#: The 19 ADBench classical tabular sets: name as ADBench spells it -> file name
#: in ADBench's ``adbench/datasets/Classical/`` (and in ``<data_dir>/adbench/``).
ADBENCH: dict[str, str] = {
    "ALOI": "1_ALOI.npz",
    "annthyroid": "2_annthyroid.npz",
    "breastw": "4_breastw.npz",
    "campaign": "5_campaign.npz",
    "Cardiotocography": "7_Cardiotocography.npz",
    "fault": "12_fault.npz",
    "Hepatitis": "15_Hepatitis.npz",
    "InternetAds": "17_InternetAds.npz",
    "landsat": "19_landsat.npz",
    "magic.gamma": "22_magic.gamma.npz",
    "mammography": "23_mammography.npz",
    "PageBlocks": "27_PageBlocks.npz",
    "SpamBase": "35_SpamBase.npz",
    "Stamps": "37_Stamps.npz",
    "Waveform": "41_Waveform.npz",
    "Wilt": "44_Wilt.npz",
    "wine": "45_wine.npz",
    "WPBC": "46_WPBC.npz",
    "yeast": "47_yeast.npz",
}
_ADBENCH_LOWER = {n.lower(): n for n in ADBENCH}


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {DATASETS}")
    return name


def _read_kdd_names(path) -> list[str]:
    lines = open(path, encoding="ascii").read().replace("\r\n", "\n").splitlines()
    names = [ln.split(":")[0].strip() for ln in lines[1:] if ":" in ln]
    if len(names) != 41:
        raise ValueError(f"{path}: expected 41 feature lines, found {len(names)}")
    return names


@lru_cache(maxsize=4)
def _kddcup_raw(root: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(X float32 (494021, 118), is_normal bool, feature names) for a data dir."""
    import pandas as pd

    data_path = fetch_file("kddcup99/kddcup.data_10_percent.gz", root)
    names = _read_kdd_names(fetch_file("kddcup99/kddcup.names", root))
    with gzip.open(data_path, "rb") as fh:
        df = pd.read_csv(io.BytesIO(fh.read()), header=None, names=names + ["label"])
    symbolic = [names[i] for i in KDD_SYMBOLIC]
    numeric = [n for n in names if n not in symbolic]
    onehot = pd.get_dummies(df[symbolic].astype("category"), prefix=symbolic, prefix_sep="=")
    X = np.hstack(
        [df[numeric].to_numpy(np.float32), onehot.to_numpy(np.float32)]
    )
    feature_names = tuple(numeric) + tuple(onehot.columns)
    is_normal = (df["label"] == "normal.").to_numpy()
    X.setflags(write=False)
    is_normal.setflags(write=False)
    return X, is_normal, feature_names


@lru_cache(maxsize=4)
def _odds(root: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(fetch_file(f"odds/{name}.mat", root))
    X = np.asarray(mat["X"], dtype=np.float32)
    y = np.asarray(mat["y"]).ravel().astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def kddcup_feature_names(data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """Names of KDDCUP's 118 columns (numeric first, then ``column=value`` one-hots).

    Parameters
    ----------
    data_dir : path-like, optional
        Data directory (see :func:`dagmm.fetch.require_data_dir`).

    Returns
    -------
    tuple of str
    """
    return _kddcup_raw(str(require_data_dir(data_dir)))[2]


def load_base(name: str, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The full array a dataset's rows are drawn from, with that dataset's labels.

    For every dataset but ``kddcup_rev`` this is the dataset itself. For
    ``kddcup_rev`` it is the whole KDDCUP file labelled the other way round
    (attacks = 1); :func:`draw_rows` picks a run's rows from it.

    Parameters
    ----------
    name : {"kddcup", "kddcup_rev", "thyroid", "arrhythmia"}
    data_dir : path-like, optional
        Data directory: argument, ``$DAGMM_DATA_DIR``, then ``data/raw/``. A
        folder named by the argument or the variable must exist.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features), float32, read-only
    y : ndarray of shape (n_rows,), int64, 1 = anomaly

    Raises
    ------
    dagmm.fetch.DataDirMissingError
        The data directory does not exist (nothing is created there).
    dagmm.fetch.DataFileMissingError, dagmm.fetch.DataChecksumError
        A data file is missing or is not the pinned one.
    """
    _check_name(name)
    root = str(require_data_dir(data_dir))
    if name in ("kddcup", "kddcup_rev"):
        X, is_normal, _ = _kddcup_raw(root)
        y = is_normal if name == "kddcup" else ~is_normal
        return X, y.astype(np.int64)
    return _odds(root, name)


def draw_rows(name: str, y_base: np.ndarray, random_state: int | None = 0) -> np.ndarray:
    """Indices into :func:`load_base`'s arrays that make up one draw of the dataset.

    Only ``kddcup_rev`` is random: every ``normal.`` row (label 0) plus
    ``n_normal // 4`` attack rows drawn without replacement, so that
    normal:attack = 4:1 (97,278 + 24,319 = 121,597 rows). Its draw depends on
    ``random_state`` and is redrawn per run seed by the protocol.
    """
    _check_name(name)
    n = len(y_base)
    if name != "kddcup_rev":
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    normal = np.flatnonzero(y_base == 0)
    attack = np.flatnonzero(y_base == 1)
    k = len(normal) // KDDCUP_REV_RATIO
    chosen = rng.choice(attack, size=k, replace=False)
    return np.sort(np.concatenate([normal, chosen]))


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, *, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Load one of the paper's tabular benchmarks.

    Parameters
    ----------
    name : {"kddcup", "kddcup_rev", "thyroid", "arrhythmia"}
    data_dir : path-like, optional
        Data directory; defaults to ``$DAGMM_DATA_DIR``, then ``data/raw/``. A
        folder named by the argument or the variable must exist
        (:class:`dagmm.fetch.DataDirMissingError` otherwise).
    random_state : int, default 0
        Only for ``kddcup_rev``: which attack rows are drawn.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int64
        1 for the anomaly class, 0 otherwise.
    """
    X, y = load_base(name, data_dir)
    rows = draw_rows(name, y, random_state)
    return np.array(X[rows]), np.array(y[rows])


def adbench_name(name: str) -> str:
    """ADBench's spelling of a set's name, matched without regard to case.

    Raises
    ------
    ValueError
        ``name`` is none of :data:`ADBENCH`; the message lists them.
    """
    canonical = _ADBENCH_LOWER.get(name.lower()) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"Unknown ADBench dataset {name!r}; expected one of {tuple(ADBENCH)} (any case)")
    return canonical


def load_adbench(name: str, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load one of the 19 ADBench classical tabular sets.

    The file ``<data_dir>/adbench/<file>`` (``<file>`` from :data:`ADBENCH`)
    is verified against ``dagmm/checksums/adbench.sha256``; when it is
    missing it is downloaded from ADBench's repository at the pinned commit
    (or from ``$DAGMM_MIRROR_URL/adbench/<file>``) and verified first.

    Parameters
    ----------
    name : str
        A key of :data:`ADBENCH`, in any case (``"aloi"``, ``"MAGIC.GAMMA"``).
    data_dir : path-like, optional
        Data directory: argument, ``$DAGMM_DATA_DIR``, then ``data/raw/``. A
        folder named by the argument or the variable must exist.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features), float32
        The file's ``X`` as stored (no scaling, no rows dropped), a fresh array.
    y : ndarray of shape (n_rows,), int64
        The file's ``y``: 1 = anomaly, 0 = normal.

    Raises
    ------
    ValueError
        Unknown ``name``; or the file does not hold a 2-D ``X`` and a 0/1
        ``y`` of as many rows; or rows of ``X`` hold NaN or inf (the message
        counts them and names the first; nothing is dropped).
    dagmm.fetch.DataDirMissingError
        The data directory does not exist (nothing is created there).
    dagmm.fetch.DataFileMissingError, dagmm.fetch.DataChecksumError
        The file is missing and could not be downloaded, or is not the pinned one.
    """
    canonical = adbench_name(name)
    path = fetch_file(f"adbench/{ADBENCH[canonical]}", data_dir)
    with np.load(path, allow_pickle=False) as npz:
        absent = [k for k in ("X", "y") if k not in npz.files]
        if absent:
            raise ValueError(f"{path}: no array {' or '.join(absent)} (holds {npz.files})")
        X_raw, y_raw = npz["X"], npz["y"]
    if X_raw.ndim != 2 or y_raw.ndim != 1 or len(y_raw) != len(X_raw):
        raise ValueError(f"{path}: expected X of shape (n, d) and y of shape (n,), got {X_raw.shape} and {y_raw.shape}")
    labels = np.unique(y_raw)
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: y must be 0 (normal) or 1 (anomaly), found values {labels[:10].tolist()}")
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf, reported below
        X = np.array(X_raw, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad):
        raise ValueError(
            f"{path}: {len(bad)} of {len(X)} rows of X hold NaN or inf (as float32), "
            f"rows {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}; they are not dropped silently"
        )
    return X, y_raw.astype(np.int64)
