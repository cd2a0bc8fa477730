#!/usr/bin/env bash
# Create the environment (if needed) and run the whole study.
#   ./run_all.sh                 # full profile: paper settings, 20 runs; writes reports/
#   ./run_all.sh --profile smoke # fast pass through every notebook; writes reports/smoke/
# Data: set DAGMM_DATA_DIR to a folder holding the data files, or let the
# loaders download them into data/raw/ (see data/README.md).
# Extra arguments go to `python -m dagmm.runner` (see --help), e.g. --jobs 4 to run notebooks side by side.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
VENV=${DAGMM_VENV:-.venv}
exec "$VENV/bin/python" -m dagmm.runner "$@"
