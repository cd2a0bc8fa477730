#!/usr/bin/env bash
# Create (or check) the project's virtual environment in .venv/ and install
# the pinned packages and the project itself. Safe to rerun: pip verifies
# every pinned package is present at its version and installs only what is not.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${DAGMM_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import dagmm, torch, papermill, sklearn; print('[setup] ok: dagmm', dagmm.__version__, '| torch', torch.__version__)"
