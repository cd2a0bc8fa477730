"""Image data sets of the study, in their own distributions' folder layouts.

============== ============================================ ===================================
name           training images (all normal)                 test images
============== ============================================ ===================================
mvtec_bottle   MVTec AD ``bottle/train/good`` (209)          ``bottle/test/*``: 20 good, 63 defective
                                                            (broken_large, broken_small, contamination)
intel_forest   Intel Image ``seg_train/forest`` (900)        ``seg_test/*``: 317 forest (normal),
                                                            400 of the five other classes (anomalous)
============== ============================================ ===================================

Every image is decoded with Pillow, converted to RGB, resized to
``size x size`` (bilinear with Pillow's antialiasing; non-square images are
squashed, not cropped, so nothing is cut away) and returned as float32 in
[0, 1], shape (N, 3, size, size).

Files are verified against the checksum manifests pinned in the package
(``dagmm/checksums/<dataset>.sha256``, copies of the ``FILES.sha256`` that
ship beside the data): a missing folder, a missing file or a checksum
mismatch is an error naming the path. Decoding 900x900 PNGs is slow, so the
resized arrays are cached under ``data/processed/`` in a file keyed by the
size and a hash of the input files' pinned checksums: a rerun with the same
files never decodes again, and changed files (which fail verification first)
can never be served from a stale cache.

Each cache ``images_<name>_<size>px_<key>.npy`` has a sidecar
``images_<name>_<size>px_<key>.json`` holding the array's shape, dtype and
the sha256 of its bytes. On load the array must have the expected shape and
dtype, match that sha256 and lie in [0, 1] (no NaN or inf); a cache that is
truncated, garbage, of the wrong shape or dtype, without a sidecar, or full of
NaN is reported in a :class:`CacheRebuiltWarning` naming its path and rebuilt
from the verified images. Both files are written to a temporary file and
renamed into place, so an interrupted run leaves no half-written cache (and
a cache whose sidecar was not yet written is simply rebuilt). The check costs
one sha256 over the array already read into memory (about 0.1 s for 150 MB),
not a second read of the file, against the minutes a decode takes.

MVTec AD is downloaded from its canonical per-category archive when its
folder is missing (``$DAGMM_MIRROR_URL/mvtec_ad/<category>.tar.xz`` when that
variable is set); Intel Image Classification sits behind a Kaggle login, so a
missing folder is an error that says where to get it and how to lay it out.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import paths
from .files import atomic_path
from .fetch import DataFileMissingError, _verify, download_url, require_data_dir, source_url

__all__ = [
    "IMAGE_DATASETS",
    "ImageSet",
    "load_image_dataset",
    "load_mvtec",
    "load_intel",
    "read_manifest",
    "CacheRebuiltWarning",
    "MVTEC_URLS",
    "INTEL_PAGE",
]

IMAGE_DATASETS = ("mvtec_bottle", "intel_forest")
MVTEC_PAGE = "https://www.mvtec.com/company/research/datasets/mvtec-ad"
MVTEC_URLS = {
    "bottle": "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420937370-1629951468/bottle.tar.xz",
}
INTEL_PAGE = "https://www.kaggle.com/datasets/puneet6060/intel-image-classification"
INTEL_CLASSES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
MIN_SIDE = 8  # an image with a side shorter than this is rejected as not a real photo
_RESIZE_VERSION = "pil-bilinear-rgb-v1"  # part of the cache key: change it when decoding changes
_CACHE_FORMAT = 1  # version of the cache's sidecar record


class CacheRebuiltWarning(UserWarning):
    """A derived cache was damaged or unverifiable and is being rebuilt from its inputs."""


@dataclass(frozen=True)
class ImageSet:
    """Images of one data set with their protocol roles.

    Attributes
    ----------
    name : str
    X : ndarray (N, 3, size, size), float32 in [0, 1], read-only
    y : ndarray (N,), int64, 1 = anomaly
    split : ndarray (N,) of str, ``"train"`` or ``"test"``
    kind : ndarray (N,) of str, the defect type (MVTec: ``good``, ``broken_large``, ...) or
        scene class (Intel: ``forest``, ``buildings``, ...)
    files : tuple of str, each image's path relative to the dataset folder
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    files: tuple[str, ...]

    @property
    def train_idx(self) -> np.ndarray:
        """Rows of the training images (all normal)."""
        return np.flatnonzero(self.split == "train")

    @property
    def test_idx(self) -> np.ndarray:
        """Rows of the test images."""
        return np.flatnonzero(self.split == "test")


def read_manifest(dataset_dir: str) -> dict[str, str]:
    """The pinned checksums of a dataset folder: relative path -> sha256.

    ``dataset_dir`` is ``"mvtec_ad"`` or ``"intel_image"``.
    """
    text = resources.files("dagmm").joinpath("checksums", f"{dataset_dir}.sha256").read_text(encoding="ascii")
    out = {}
    for line in text.splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip().lstrip("*")] = digest
    return out


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIDE <= size <= 1024:
        raise ValueError(f"image size must be an int in [{MIN_SIDE}, 1024], got {size!r}")
    return int(size)


def _decode(path: Path, size: int) -> np.ndarray:
    """One image as float32 (3, size, size) in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if min(w, h) < MIN_SIDE:
                raise ValueError(
                    f"{path}: image is {w}x{h} pixels; sides shorter than {MIN_SIDE} px are not real "
                    "photos of this dataset (truncated or wrong file?)"
                )
            im = im.convert("RGB").resize((size, size), Image.BILINEAR, reducing_gap=3.0)
            arr = np.asarray(im, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: cannot be decoded as an image ({exc})") from exc
    return (arr / 255.0).transpose(2, 0, 1)


def _verify_files(root: Path, rels: list[str], manifest: dict[str, str]) -> None:
    missing = [r for r in rels if not (root / r).is_file()]
    if missing:
        shown = "\n  ".join(str(root / r) for r in missing[:5])
        raise DataFileMissingError(
            f"{len(missing)} of {len(rels)} image files are missing under {root}, e.g.\n  {shown}\n"
            "Restore the unmodified dataset folder (or point DAGMM_DATA_DIR at one)."
        )
    for r in rels:
        _verify(root / r, manifest[r])  # DataChecksumError naming the file and both hashes


def _array_sha256(X: np.ndarray) -> str:
    """Hex sha256 of an array's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(X).reshape(-1).view(np.uint8)).hexdigest()


def _sidecar(cache: Path) -> Path:
    """The JSON record (shape, dtype, sha256) beside a cached array."""
    return cache.with_suffix(".json")


def _read_cache(cache: Path, shape: tuple[int, ...]) -> tuple[np.ndarray | None, str]:
    """A cached float32 array of ``shape`` with values in [0, 1], or why it cannot be used.

    Parameters
    ----------
    cache : Path
        The ``.npy`` file; its sidecar is :func:`_sidecar` of it.
    shape : tuple of int
        The shape the array must have.

    Returns
    -------
    X : ndarray or None
        The array when it passed every check, else None.
    problem : str
        ``""`` when ``X`` is returned; otherwise what is wrong with the cache,
        phrased to follow its path.
    """
    side = _sidecar(cache)
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
        expected_sha = record["sha256"]
        if record.get("format") != _CACHE_FORMAT or not isinstance(expected_sha, str):
            raise ValueError(f"unknown format {record.get('format')!r}")
    except FileNotFoundError:
        return None, f"has no checksum record {side.name} (written by an older version or an interrupted run)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"has an unreadable checksum record {side.name} ({exc})"
    try:
        X = np.load(cache, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        return None, f"cannot be read: truncated or not an .npy file ({exc})"
    if not isinstance(X, np.ndarray) or X.shape != shape or X.dtype != np.float32:
        return None, f"holds {getattr(X, 'dtype', type(X).__name__)} {getattr(X, 'shape', '')}, expected float32 {shape}"
    if _array_sha256(X) != expected_sha:
        return None, f"does not match the sha256 in {side.name} (damaged or overwritten)"
    if X.size and not (X.min() >= 0.0 and X.max() <= 1.0):  # NaN fails both comparisons
        return None, "holds NaN, inf or values outside [0, 1]"
    return X, ""


def _write_cache(cache: Path, X: np.ndarray) -> None:
    """Write ``X`` and its sidecar record, each through a temporary file renamed into place.

    The array goes first: an interrupt between the two leaves an array
    without a record (or with the old record, whose sha256 no longer
    matches), which the next load rebuilds.
    """
    with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
        np.save(fh, X)
    record = {"format": _CACHE_FORMAT, "shape": list(X.shape), "dtype": str(X.dtype), "sha256": _array_sha256(X)}
    with atomic_path(_sidecar(cache)) as tmp:
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")


def _load_cached(name: str, root: Path, rels: list[str], manifest: dict[str, str], size: int, cache_dir) -> np.ndarray:
    """Verified, decoded and resized images (N, 3, size, size), from the cache when it is sound.

    Parameters
    ----------
    name : str
        Data set name, part of the cache file's name.
    root : Path
        Data set folder the relative paths ``rels`` are under.
    rels : list of str
        The images, in row order.
    manifest : dict
        Pinned sha256 of each relative path.
    size : int
        Side of the resized images.
    cache_dir : path-like or None
        Cache folder; None means ``data/processed/``.

    Returns
    -------
    ndarray (N, 3, size, size), float32 in [0, 1]

    Warns
    -----
    CacheRebuiltWarning
        The cache exists but failed a check (see :func:`_read_cache`); the
        message names its path and the reason, and the cache is rebuilt.
    """
    _verify_files(root, rels, manifest)
    key = hashlib.sha256("\n".join([_RESIZE_VERSION, str(size)] + [f"{manifest[r]} {r}" for r in rels]).encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir) if cache_dir is not None else paths.DATA_PROCESSED
    cache = cache_dir / f"images_{name}_{size}px_{key}.npy"
    if cache.exists():
        X, problem = _read_cache(cache, (len(rels), 3, size, size))
        if X is not None:
            return X
        warnings.warn(
            f"image cache {cache} {problem}; rebuilding it from the {len(rels)} verified image files",
            CacheRebuiltWarning,
            stacklevel=3,
        )
    X = np.stack([_decode(root / r, size) for r in rels]) if rels else np.zeros((0, 3, size, size), np.float32)
    _write_cache(cache, X)
    return X


def _download_mvtec(root: Path, category: str) -> str:
    """Download and unpack ``<category>.tar.xz`` into ``root`` (the ``mvtec_ad`` folder).

    Returns "" on success or the reason it failed. The archive itself has no
    pinned checksum; every file it unpacks is verified against the manifest.
    ``root``'s parent, the data directory, has been checked to exist (or is
    the default ``data/raw/``) by :func:`dagmm.fetch.require_data_dir`.

    Parameters
    ----------
    root : Path
        The ``mvtec_ad`` folder inside the data directory.
    category : str
        MVTec AD category, e.g. ``"bottle"``.

    Returns
    -------
    str
        ``""`` on success, else the reason.
    """
    rel = f"mvtec_ad/{category}.tar.xz"
    url = source_url(rel, MVTEC_URLS.get(category))
    if url is None:
        return f"no download address is known for category {category!r}"
    try:  # only the default data/raw/ may be created on the way; any other data directory exists
        root.mkdir(parents=root.parent == paths.DATA_RAW, exist_ok=True)
    except FileNotFoundError:
        return f"the data directory {root.parent} does not exist"
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{category}.") as tmp:
        archive = Path(tmp) / f"{category}.tar.xz"
        try:
            download_url(url, archive, timeout=600.0)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return f"downloading {url} failed: {exc}"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(Path(tmp) / "x", filter="data")
        except (tarfile.TarError, OSError) as exc:
            return f"unpacking {url} failed: {exc}"
        found = Path(tmp) / "x" / category
        if not found.is_dir():
            return f"the archive from {url} has no folder {category}/"
        shutil.move(str(found), str(root / category))
    return ""


def load_mvtec(
    category: str = "bottle",
    size: int = 64,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """One MVTec AD category: ``train/good`` for training, ``test/*`` for testing.

    Parameters
    ----------
    category : str, default "bottle"
        Folder ``<data_dir>/mvtec_ad/<category>``; only categories in the pinned
        manifest can be verified (bottle).
    size : int, default 64
        Side of the resized square images.
    data_dir : path-like, optional
        Data directory (argument, ``$DAGMM_DATA_DIR``, then ``data/raw/``); a
        folder named by the argument or the variable must exist.
    download : bool, default True
        Download ``<category>.tar.xz`` when the category folder is missing.
    cache_dir : path-like, optional
        Where resized arrays are cached (default ``data/processed/``).

    Returns
    -------
    ImageSet with ``kind`` the test folder (``good`` or the defect type).

    Raises
    ------
    dagmm.fetch.DataDirMissingError
        The data directory does not exist; nothing is downloaded or created.
    dagmm.fetch.DataFileMissingError, dagmm.fetch.DataChecksumError
        The category folder or an image is missing, or an image is not the pinned one.

    Warns
    -----
    CacheRebuiltWarning
        The resized-image cache was damaged and is rebuilt (the message names it).
    """
    size = _check_size(size)
    manifest = read_manifest("mvtec_ad")
    prefix = f"{category}/"
    if not any(r.startswith(prefix) for r in manifest):
        raise ValueError(f"no pinned checksums for MVTec AD category {category!r}; known: "
                         f"{sorted({r.split('/')[0] for r in manifest})}")
    base = require_data_dir(data_dir) / "mvtec_ad"
    folder = base / category
    if not folder.is_dir():
        reason = "download=False"
        if download:
            reason = _download_mvtec(base, category)
        if not folder.is_dir() or reason:
            raise DataFileMissingError(
                f"Missing MVTec AD folder {folder}\n  ({reason})\n"
                f"Download {category}.tar.xz from {MVTEC_URLS.get(category, MVTEC_PAGE)}\n"
                f"(page: {MVTEC_PAGE}), unpack it into {base} so that {folder}/train/good exists,\n"
                "or set DAGMM_DATA_DIR to a folder that holds mvtec_ad/ (e.g. ../shared/datasets)."
            )
    rels, split, kind = [], [], []
    for r in sorted(manifest):
        parts = r.split("/")
        if len(parts) == 4 and parts[0] == category and parts[1] in ("train", "test") and r.endswith(".png"):
            if parts[1] == "train" and parts[2] != "good":
                continue
            rels.append(r)
            split.append(parts[1])
            kind.append(parts[2])
    X = _load_cached(f"mvtec_{category}", base, rels, manifest, size, cache_dir)
    kind = np.array(kind)
    return _make_set(f"mvtec_{category}", X, (kind != "good").astype(np.int64), np.array(split), kind, rels)


def load_intel(
    normal_class: str = "forest",
    size: int = 64,
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """Intel Image Classification as one-class-vs-rest.

    Training: ``seg_train/<normal_class>``; test: every ``seg_test/<class>``,
    ``normal_class`` normal and every other class anomalous.

    Parameters
    ----------
    normal_class : str, default "forest"
    size : int, default 64
    data_dir : path-like, optional
        Folder holding ``intel_image/seg_train/<class>/*.jpg`` (Kaggle's
        ``seg_train/seg_train`` flattened to ``seg_train``).
    cache_dir : path-like, optional
        Where resized arrays are cached (default ``data/processed/``).

    Returns
    -------
    ImageSet with ``kind`` the scene class.

    Raises
    ------
    dagmm.fetch.DataDirMissingError
        The data directory does not exist (nothing is created there).
    dagmm.fetch.DataFileMissingError, dagmm.fetch.DataChecksumError
        The dataset folder or an image is missing, or an image is not the pinned one.

    Warns
    -----
    CacheRebuiltWarning
        The resized-image cache was damaged and is rebuilt (the message names it).
    """
    size = _check_size(size)
    if normal_class not in INTEL_CLASSES:
        raise ValueError(f"normal_class must be one of {INTEL_CLASSES}, got {normal_class!r}")
    manifest = read_manifest("intel_image")
    base = require_data_dir(data_dir) / "intel_image"
    if not (base / "seg_train").is_dir() or not (base / "seg_test").is_dir():
        raise DataFileMissingError(
            f"Missing Intel Image Classification folder {base} (seg_train/ and seg_test/)\n"
            f"It cannot be downloaded automatically: Kaggle needs a login. Download it from\n{INTEL_PAGE}\n"
            f"unzip it and move seg_train/seg_train/<class> to {base}/seg_train/<class> and\n"
            f"seg_test/seg_test/<class> to {base}/seg_test/<class> (only the files pinned in\n"
            "dagmm/checksums/intel_image.sha256 are used), or set DAGMM_DATA_DIR to a folder holding intel_image/."
        )
    rels, split, kind = [], [], []
    for r in sorted(manifest):
        parts = r.split("/")
        if len(parts) != 3 or not r.endswith(".jpg"):
            continue
        if parts[0] == "seg_train" and parts[1] == normal_class:
            rels.append(r), split.append("train"), kind.append(parts[1])
        elif parts[0] == "seg_test":
            rels.append(r), split.append("test"), kind.append(parts[1])
    X = _load_cached(f"intel_{normal_class}", base, rels, manifest, size, cache_dir)
    kind = np.array(kind)
    return _make_set(f"intel_{normal_class}", X, (kind != normal_class).astype(np.int64), np.array(split), kind, rels)


def _make_set(name, X, y, split, kind, rels) -> ImageSet:
    for a in (X, y, split, kind):
        a.setflags(write=False)
    return ImageSet(name, X, y, split, kind, tuple(rels))


def load_image_dataset(
    name: str,
    size: int = 64,
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """``"mvtec_bottle"`` or ``"intel_forest"`` (see the module docstring).

    Parameters
    ----------
    name : {"mvtec_bottle", "intel_forest"}
    size : int, default 64
        Side of the resized square images.
    data_dir : path-like, optional
        Data directory (argument, ``$DAGMM_DATA_DIR``, then ``data/raw/``).
    cache_dir : path-like, optional
        Where resized arrays are cached (default ``data/processed/``).

    Returns
    -------
    ImageSet
    """
    if name == "mvtec_bottle":
        return load_mvtec("bottle", size, data_dir, cache_dir=cache_dir)
    if name == "intel_forest":
        return load_intel("forest", size, data_dir, cache_dir=cache_dir)
    raise ValueError(f"Unknown image dataset {name!r}; expected one of {IMAGE_DATASETS}")
