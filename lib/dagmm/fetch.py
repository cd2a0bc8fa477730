"""Locate, verify and download the raw data files.

The data directory is resolved as: the ``data_dir`` argument, then the
environment variable ``DAGMM_DATA_DIR``, then ``data/raw/`` in the repository.
Inside it, files keep the layout of their own distribution
(``kddcup99/kddcup.data_10_percent.gz``, ``odds/thyroid.mat``, ...).

Every file is checked against a pinned sha256. A missing file is downloaded
from its canonical URL (or from ``$DAGMM_MIRROR_URL/<relative path>`` when
that variable is set, e.g. a local mirror) and verified before it is moved
into place; when that fails, the error says what to download and where to put
it. A corrupt file is reported with its path and both hashes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .files import atomic_path

__all__ = [
    "DataFile",
    "DataFileError",
    "DataFileMissingError",
    "DataChecksumError",
    "REGISTRY",
    "resolve_data_dir",
    "sha256sum",
    "fetch_file",
    "source_url",
    "download_url",
]


class DataFileError(RuntimeError):
    """Base class of the data-file errors."""


class DataFileMissingError(DataFileError, FileNotFoundError):
    """A data file is absent and could not be downloaded."""


class DataChecksumError(DataFileError):
    """A data file exists but its sha256 is not the pinned one."""


@dataclass(frozen=True)
class DataFile:
    """One raw file of a dataset.

    Parameters
    ----------
    relpath : str
        Path inside the data directory, as the dataset's distribution lays it out.
    sha256 : str
        Pinned checksum of the unmodified file.
    url : str or None
        Canonical direct download address, or None when the file sits behind
        a page (then only ``page`` is given to the user).
    page : str
        Human-readable page that describes the dataset.
    """

    relpath: str
    sha256: str
    url: str | None
    page: str


_KDD = "http://kdd.ics.uci.edu/databases/kddcup99/"
REGISTRY: dict[str, DataFile] = {
    f.relpath: f
    for f in [
        DataFile(
            "kddcup99/kddcup.data_10_percent.gz",
            "8045aca0d84e70e622d1148d7df782496f6333bf6eb979a1b0837c42a9fd9561",
            _KDD + "kddcup.data_10_percent.gz",
            _KDD + "kddcup99.html",
        ),
        DataFile(
            "kddcup99/kddcup.names",
            "fab3e5c771a72ae472c9dae56d62138dd95b9f880e36e8ea5a72f6ceb10efeb9",
            _KDD + "kddcup.names",
            _KDD + "kddcup99.html",
        ),
        DataFile(
            "odds/thyroid.mat",
            "49155d7861b977e90808faf68343ff67a67f63090c2744d514dbb67ac68e7e33",
            None,
            "http://odds.cs.stonybrook.edu/thyroid-dataset/",
        ),
        DataFile(
            "odds/arrhythmia.mat",
            "e4d47e499591ae31e5d7f0cd983367092353eac240f48e14c9b36457edb3460d",
            None,
            "http://odds.cs.stonybrook.edu/arrhythmia-dataset/",
        ),
    ]
}

_CHUNK = 1 << 20
# Files verified in this process, keyed by (path, size, mtime): hashing is
# cheap for these files but loaders are called once per notebook cell.
_VERIFIED: set[tuple[str, int, int]] = set()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: argument, then ``$DAGMM_DATA_DIR``, then ``data/raw/``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get("DAGMM_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return paths.DATA_RAW


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, expected: str) -> None:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return
    actual = sha256sum(path)
    if actual != expected:
        raise DataChecksumError(
            f"Corrupt or wrong data file: {path}\n"
            f"  expected sha256 {expected}\n"
            f"  actual   sha256 {actual}\n"
            "Delete it and download it again (or point DAGMM_DATA_DIR at a folder "
            "holding the unmodified file)."
        )
    _VERIFIED.add(key)


def source_url(relpath: str, canonical: str | None) -> str | None:
    """Where to download ``relpath`` from: ``$DAGMM_MIRROR_URL/<relpath>`` when set, else ``canonical``."""
    mirror = os.environ.get("DAGMM_MIRROR_URL")
    if mirror:
        return mirror.rstrip("/") + "/" + relpath
    return canonical


def _source_url(entry: DataFile) -> str | None:
    return source_url(entry.relpath, entry.url)


def download_url(url: str, dest: Path, expected: str | None = None, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest`` through a temporary file, checking its sha256 when ``expected`` is given."""
    _download(url, Path(dest), expected, timeout)


def _download(url: str, dest: Path, expected: str | None, timeout: float = 60.0) -> None:
    with atomic_path(dest, suffix=".part") as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, _CHUNK)
        actual = sha256sum(tmp)
        if expected is not None and actual != expected:
            raise DataChecksumError(
                f"Downloaded file from {url} does not match its pinned checksum\n"
                f"  expected sha256 {expected}\n  actual   sha256 {actual}"
            )


def fetch_file(
    relpath: str, data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> Path:
    """Return the verified path of a registered data file, downloading it if absent.

    Parameters
    ----------
    relpath : str
        Key of :data:`REGISTRY`, e.g. ``"odds/thyroid.mat"``.
    data_dir : path-like, optional
        Data directory (see :func:`resolve_data_dir`).
    download : bool, default True
        Try to download a missing file.

    Raises
    ------
    DataFileMissingError
        The file is absent and could not be downloaded; the message names the
        URL and the folder to put it in.
    DataChecksumError
        The file's sha256 differs from the pinned one.
    """
    if relpath not in REGISTRY:
        raise KeyError(f"Unknown data file {relpath!r}; known: {sorted(REGISTRY)}")
    entry = REGISTRY[relpath]
    root = resolve_data_dir(data_dir)
    path = root / entry.relpath
    if not path.exists():
        url = _source_url(entry)
        reason = "no direct download address is known for it"
        if download and url is not None:
            try:
                _download(url, path, entry.sha256)
            except DataChecksumError:
                raise
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = f"downloading {url} failed: {exc}"
        if not path.exists():
            where = entry.url or entry.page
            raise DataFileMissingError(
                f"Missing data file {path}\n"
                f"  ({reason})\n"
                f"Download it from {where}\n"
                f"and put it at {path} (folder {path.parent}),\n"
                "or set DAGMM_DATA_DIR to a folder that holds "
                f"{entry.relpath} (e.g. ../shared/datasets)."
            )
    _verify(path, entry.sha256)
    return path
