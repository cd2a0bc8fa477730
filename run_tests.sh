#!/usr/bin/env bash
# Create the environment (if needed) and run the test suite.
# Extra arguments go to pytest (e.g. ./run_tests.sh -m "not notebook").
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
VENV=${DAGMM_VENV:-.venv}
exec "$VENV/bin/python" -m pytest "$@"
