import os
import warnings
from pathlib import Path

import pytest

from dagmm import paths


def _shared_data() -> Path | None:
    env = os.environ.get("DAGMM_DATA_DIR")
    cands = [Path(env)] if env else []
    cands.append(paths.ROOT.parent / "shared" / "datasets")
    for c in cands:
        if (c / "odds" / "thyroid.mat").exists():
            return c
    return None


@pytest.fixture(scope="session")
def real_data_dir():
    d = _shared_data()
    if d is None:
        pytest.skip("real data files not available (set DAGMM_DATA_DIR)")
    return d


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-writable.*")
        yield
