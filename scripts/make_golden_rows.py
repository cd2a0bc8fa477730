"""Write the golden per-run rows of tests/test_golden_rows.py (tests/data/golden/*.csv).

The cases are defined once, in tests/test_golden_rows.py; this script runs them with
the ``dagmm`` that Python imports and writes what they return. Run it on a pristine
checkout of the commit whose results are meant, not on a working tree in flux::

    git worktree add /tmp/golden-src HEAD
    DAGMM_DATA_DIR=/path/to/datasets PYTHONPATH=/tmp/golden-src/lib \\
        nice -n 19 .venv/bin/python scripts/make_golden_rows.py

then put that commit in the comment and ``GOLDEN_COMMIT`` at the top of the test file.
Regenerate only when a change is meant to alter results, and say so in its commit.

Options: case names (default: all), ``--out DIR`` (default tests/data/golden),
``--data-dir DIR`` (default ``$DAGMM_DATA_DIR``, else ../shared/datasets).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_cases():
    spec = importlib.util.spec_from_file_location("golden_rows_cases", ROOT / "tests" / "test_golden_rows.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def source_of(package_file: str) -> str:
    """The git commit (and whether the tree is dirty) of the checkout holding ``package_file``."""
    where = Path(package_file).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--", "."], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (with uncommitted changes in lib/dagmm!)" if dirty else " (clean)")


def main(argv=None) -> int:
    cases_mod = load_cases()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", metavar="CASE", help=f"cases to write (default all): {', '.join(cases_mod.CASES)}")
    ap.add_argument("--out", type=Path, default=cases_mod.GOLDEN_DIR)
    default_data = os.environ.get("DAGMM_DATA_DIR") or str(ROOT.parent / "shared" / "datasets")
    ap.add_argument("--data-dir", type=Path, default=Path(default_data))
    args = ap.parse_args(argv)
    unknown = sorted(set(args.cases) - set(cases_mod.CASES))
    if unknown:
        ap.error(f"unknown cases {unknown}; known: {list(cases_mod.CASES)}")

    import dagmm
    import torch
    from threadpoolctl import threadpool_limits

    print(f"dagmm from {Path(dagmm.__file__).parent}, commit {source_of(dagmm.__file__)}", flush=True)
    torch.set_num_threads(1)  # as in the test (tests/test_golden_rows.py::_one_thread)
    names = args.cases or list(cases_mod.CASES)
    with threadpool_limits(limits=1):
        for name in names:
            case, needs_data = cases_mod.CASES[name]
            if needs_data:
                missing = [p for p in cases_mod.real_data_files(args.data_dir) if not p.exists()]
                if missing:
                    print(f"{name}: skipped, missing {[str(p) for p in missing]}", file=sys.stderr)
                    continue
            frames = case(args.data_dir) if needs_data else case()
            for file_name, df in frames.items():
                path = cases_mod.write_golden(file_name, df, args.out)
                print(f"{name}: {path} ({len(df)} rows, {df.shape[1]} columns)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
