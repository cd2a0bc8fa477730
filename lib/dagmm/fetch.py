"""Locate, verify and download the raw data files.

The data directory is resolved as: the ``data_dir`` argument, then the
environment variable ``DAGMM_DATA_DIR``, then ``data/raw/`` in the repository.
Inside it, files keep the layout of their own distribution
(``kddcup99/kddcup.data_10_percent.gz``, ``odds/thyroid.mat``, ...).

A data directory named by the argument or by ``DAGMM_DATA_DIR`` must exist:
when it does not, :func:`require_data_dir` raises :class:`DataDirMissingError`
("data directory ... does not exist (from ...)") and nothing is created at
that path, not even by a download (a mistyped path must not turn into a fresh,
empty data folder). Only the default ``data/raw/``, the project's own download
folder, is created when a download needs it.

Every file is checked against a pinned sha256. A missing file is downloaded
from its canonical URL (or from ``$DAGMM_MIRROR_URL/<relative path>`` when
that variable is set, e.g. a local mirror) and verified before it is moved
into place; when that fails, the error says what to download and where to put
it. A corrupt file is reported with its path and both hashes.

The 19 ADBench classical tabular sets (``adbench/<n>_<name>.npz``) are
registered here too: their checksums ship in ``dagmm/checksums/adbench.sha256``
(relative paths as under the data directory) and their canonical address is
ADBench's repository pinned to commit :data:`ADBENCH_COMMIT`, the commit the
shared copies were taken from.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import paths
from .files import atomic_path

__all__ = [
    "DataFile",
    "DataFileError",
    "DataFileMissingError",
    "DataDirMissingError",
    "DataChecksumError",
    "REGISTRY",
    "ADBENCH_COMMIT",
    "ADBENCH_REPOSITORY",
    "read_checksums",
    "resolve_data_dir",
    "data_dir_source",
    "require_data_dir",
    "sha256sum",
    "fetch_file",
    "source_url",
    "download_url",
]


class DataFileError(RuntimeError):
    """Base class of the data-file errors."""


class DataFileMissingError(DataFileError, FileNotFoundError):
    """A data file is absent and could not be downloaded."""


class DataDirMissingError(DataFileMissingError):
    """The data directory itself does not exist (or is not a folder).

    A subclass of :class:`DataFileMissingError`, so code that handles a
    missing data file handles this too; the message says that the folder,
    not a file in it, is missing, and where its path came from.
    """


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


def read_checksums(name: str) -> dict[str, str]:
    """The checksums shipped in ``dagmm/checksums/<name>.sha256``: relative path -> sha256.

    One ``<sha256>  <relative path>`` line per file, as ``sha256sum`` writes it.

    Raises
    ------
    ValueError
        A line is not a 64-digit hex sha256 followed by a path.
    """
    text = resources.files(__package__).joinpath("checksums", f"{name}.sha256").read_text(encoding="ascii")
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        if len(parts) != 2 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"dagmm/checksums/{name}.sha256 line {number} is not '<sha256>  <path>': {line!r}")
        out[parts[1].strip().lstrip("*")] = digest
    return out


ADBENCH_REPOSITORY = "https://github.com/Minqi824/ADBench"
#: The commit of ADBench's repository that the pinned files were copied from (2026-01-08).
ADBENCH_COMMIT = "3dac8221081e190f157d78e93bfa8867f90d0965"
_ADBENCH_FOLDER = "adbench/datasets/Classical"


def _adbench_files() -> list[DataFile]:
    files = []
    for relpath, digest in read_checksums("adbench").items():
        name = relpath.split("/", 1)[1]
        files.append(DataFile(
            relpath,
            digest,
            f"{ADBENCH_REPOSITORY}/raw/{ADBENCH_COMMIT}/{_ADBENCH_FOLDER}/{name}",
            f"{ADBENCH_REPOSITORY}/tree/{ADBENCH_COMMIT}/{_ADBENCH_FOLDER}",
        ))
    return files


REGISTRY.update((f.relpath, f) for f in _adbench_files())

_CHUNK = 1 << 20
# Files verified in this process, keyed by (path, size, mtime): hashing is
# cheap for these files but loaders are called once per notebook cell.
_VERIFIED: set[tuple[str, int, int]] = set()


def data_dir_source(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data directory and where its path came from.

    Parameters
    ----------
    data_dir : path-like, optional
        The ``data_dir`` argument of a loader; None or ``""`` means "not given".

    Returns
    -------
    path : Path
        Absolute path of the data directory (see :func:`resolve_data_dir`).
    source : str
        ``"the data_dir argument"``, ``"DAGMM_DATA_DIR"`` or ``"the default"``;
        a relative argument or ``DAGMM_DATA_DIR`` also names the value as given
        and the working directory it was resolved against.
    """
    for given, source in ((data_dir, "the data_dir argument"), (os.environ.get("DAGMM_DATA_DIR"), "DAGMM_DATA_DIR")):
        if given is not None and str(given) != "":
            path = Path(given).expanduser().resolve()
            if not Path(given).expanduser().is_absolute():
                source = f"{source} = {str(given)!r}, relative to the working directory {os.getcwd()}"
            return path, source
    return paths.DATA_RAW, "the default"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: argument, then ``$DAGMM_DATA_DIR``, then ``data/raw/``.

    Only resolves the path; it may not exist (see :func:`require_data_dir`).

    Parameters
    ----------
    data_dir : path-like, optional
        A loader's ``data_dir`` argument; None or ``""`` means "not given".

    Returns
    -------
    Path, absolute
    """
    return data_dir_source(data_dir)[0]


def require_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory, which must exist unless it is the default ``data/raw/``.

    Every loader resolves its folder through this function before it reads,
    downloads or creates anything, so a mistyped ``data_dir`` or
    ``DAGMM_DATA_DIR`` is reported as a missing folder and never created.
    The default ``data/raw/`` is the project's own download folder: it may be
    absent and is created by the first download into it.

    Parameters
    ----------
    data_dir : path-like, optional
        A loader's ``data_dir`` argument; None or ``""`` means "not given".

    Returns
    -------
    Path, absolute

    Raises
    ------
    DataDirMissingError
        The directory named by the argument or ``DAGMM_DATA_DIR`` does not
        exist or is not a folder; the message names it and where it came from.
    """
    path, source = data_dir_source(data_dir)
    if path == paths.DATA_RAW or path.is_dir():
        return path
    what = "is not a folder" if path.exists() else "does not exist"
    fix = "pass" if source.startswith("the data_dir argument") else "set it to"
    raise DataDirMissingError(
        f"data directory {path} {what} (from {source}); {fix} the folder that holds the data "
        "files, see data/README.md"
    )


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
        Data directory (see :func:`resolve_data_dir`); it must exist unless it
        is the default ``data/raw/`` (see :func:`require_data_dir`).
    download : bool, default True
        Try to download a missing file.

    Returns
    -------
    Path
        The file, verified against its pinned sha256.

    Raises
    ------
    DataDirMissingError
        The data directory does not exist; nothing was downloaded or created.
    DataFileMissingError
        The file is absent and could not be downloaded; the message names the
        URL and the folder to put it in.
    DataChecksumError
        The file's sha256 differs from the pinned one.
    """
    if relpath not in REGISTRY:
        raise KeyError(f"Unknown data file {relpath!r}; known: {sorted(REGISTRY)}")
    entry = REGISTRY[relpath]
    root = require_data_dir(data_dir)
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
