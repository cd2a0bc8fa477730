"""Absolute paths of the project, from one place.

Every module and notebook takes its folders from here, so a notebook run by
papermill from any working directory writes to the same ``reports/``.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # lib/dagmm/paths.py -> repository root
DATA = ROOT / "data"
DATA_RAW = DATA / "raw"  # default data directory (git-ignored)
DATA_PROCESSED = DATA / "processed"  # caches derived from raw files (git-ignored)
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"
TABLES = REPORTS / "tables"
FIGURES = REPORTS / "figures"
BENCHMARKS = REPORTS / "benchmarks"
EXECUTED = REPORTS / "executed"
HTML = REPORTS / "html"
REFERENCE_RESULTS_NAME = "published_results.csv"


def shared_dir() -> Path | None:
    """The ``shared/`` folder beside the checkout, when there is one."""
    cand = ROOT.parent / "shared"
    return cand if cand.is_dir() else None


def published_results_path() -> Path:
    """Where the published numbers we compare against live.

    Resolved as ``$DAGMM_REFERENCE``, then ``../shared/reference/`` (the
    source of truth beside a checkout), then ``data/reference/`` (the copy
    shipped with the repository, kept equal to it by a test).
    """
    env = os.environ.get("DAGMM_REFERENCE")
    if env:
        return Path(env)
    sh = shared_dir()
    if sh is not None and (sh / "reference" / REFERENCE_RESULTS_NAME).exists():
        return sh / "reference" / REFERENCE_RESULTS_NAME
    return DATA / "reference" / REFERENCE_RESULTS_NAME


SCRATCH = REPORTS / "scratch"  # where notebooks run by hand write (git-ignored)


def reports_folder(profile: str, reports_dir: str | os.PathLike | None = None) -> Path:
    """The folder a notebook writes its tables, figures and findings into.

    ``reports_dir`` when given (the runner always gives it: ``reports/`` for
    the full profile, ``reports/smoke/`` for the smoke one); otherwise
    ``reports/scratch/<profile>/``, so that a notebook run by hand (e.g. Run
    All in JupyterLab) never overwrites the committed reports.

    Parameters
    ----------
    profile : str, the notebook's ``profile`` parameter ("full" or "smoke")
    reports_dir : str or path, optional, the notebook's ``reports_dir`` parameter

    Returns
    -------
    Path, absolute
    """
    if reports_dir:
        return Path(reports_dir).resolve()
    return SCRATCH / profile


def shown(path: str | os.PathLike) -> str:
    """``path`` as a reader should see it: relative to the repository when inside it, else
    "…/" and its last part (a report never shows the folders of the machine it ran on)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return f"…/{p.name}" if len(p.parts) > 1 else str(p)
