"""Execute a notebook into a private copy of the reports folder, and publish what it wrote when it finishes.

A notebook writes its tables, figures and findings as it goes, and reads
what other notebooks wrote. Run into the committed ``reports/`` directly, an
interrupt or a crash would leave it half written. So the runner gives each
execution a *stage*: a hidden folder inside the reports folder (same file
system, so files move by atomic renames) that starts as a copy of the
folders notebooks read and write. When the execution finishes, ok or
failed, the files it wrote move into the reports folder together
(:func:`publish`); when it is interrupted, the stage is deleted and the
reports folder is left byte for byte as it was.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["STAGED_FOLDERS", "staged", "written", "publish"]

STAGED_FOLDERS = ("tables", "figures", "benchmarks", "findings")  # what notebooks read and write
PREFIX = ".staging-"


@contextmanager
def staged(out: Path, name: str):
    """A stage for one execution of notebook ``name`` (a file stem) into ``out``; deleted on exit.

    Yields
    ------
    Path, the stage: a copy of ``out``'s :data:`STAGED_FOLDERS` (modification times kept,
    so :func:`written` can tell what the execution wrote)
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-", dir=out))
    try:
        for folder in STAGED_FOLDERS:
            if (out / folder).is_dir():
                shutil.copytree(out / folder, stage / folder, copy_function=shutil.copy2)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def written(stage: Path, out: Path) -> list[str]:
    """The files of ``stage``'s :data:`STAGED_FOLDERS` that the execution wrote (new, or a
    modification time other than their copy's), as paths relative to the stage, sorted."""
    found = []
    for folder in STAGED_FOLDERS:
        for f in sorted((stage / folder).rglob("*")) if (stage / folder).is_dir() else []:
            if not f.is_file():
                continue
            rel = f.relative_to(stage)
            old = out / rel
            if not old.exists() or old.stat().st_mtime_ns != f.stat().st_mtime_ns:
                found.append(str(rel))
    return sorted(found)


def publish(stage: Path, out: Path, files) -> None:
    """Move ``files`` (paths relative to ``stage``) into ``out``, each by one atomic rename."""
    for rel in files:
        src, dest = Path(stage) / rel, Path(out) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
