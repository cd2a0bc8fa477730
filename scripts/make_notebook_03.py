"""Writes notebooks/03_residual_dagmm.ipynb (framework 2); the cells are notebook 02's
(scripts/make_notebook_02.py) with the residual compression network."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_notebook_02 import build  # noqa: E402

if __name__ == "__main__":
    build("resconv")
