#!/usr/bin/env bash
# Wheels for running the notebooks on a machine without network access whose Python already has the numerical
# stack (torch, numpy, pandas, scipy, scikit-learn, matplotlib, seaborn, threadpoolctl), e.g. a GPU image:
# papermill, nbconvert and ipykernel with everything they need, at the versions pinned in requirements.txt.
#
#   scripts/offline_wheels.sh DIR [PYTHON_VERSION]      # e.g. scripts/offline_wheels.sh .whl 3.12
#
# Then, on that machine (DIR copied beside the checkout):
#   python3 -m pip install --no-index --no-deps --target /tmp/site DIR/*.whl
#   export PYTHONPATH=/tmp/site:$PWD/lib JUPYTER_PATH=/tmp/site/share/jupyter DAGMM_DATA_DIR=/path/to/datasets
# (JUPYTER_PATH: where nbconvert finds its HTML templates when installed with --target)
#   python3 -m dagmm.runner --notebooks notebooks/01b_baselines.ipynb ...
# Only wheels are fetched (--only-binary), for manylinux x86_64 and the given CPython version (default: this
# one's; give the micro version too where a package needs it, e.g. 3.11.7: "3.11" means 3.11.0).
set -euo pipefail
DIR=${1:?usage: scripts/offline_wheels.sh DIR [PYTHON_VERSION]}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)  # relative to where the script was called from
PY=${PYTHON:-python3}
PYV=${2:-$("$PY" -c "import platform; print(platform.python_version())")}
cd "$(dirname "$0")/.."
# the numerical stack is left out: the target has it (and torch alone is larger than a carry)
PRESENT='^(torch|torchvision|triton|nvidia-.*|cuda-.*|numpy|pandas|scipy|scikit-learn|matplotlib|seaborn|threadpoolctl|joblib|pillow|contourpy|fonttools|kiwisolver|cycler|pyparsing|python-dateutil|six|tzdata|sympy|mpmath|networkx|filelock|fsspec|setuptools)=='
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
grep -v '^#' requirements.txt | grep -Eiv "$PRESENT" > "$constraints"
want=$(grep -Ei '^(papermill|nbconvert|ipykernel)==' requirements.txt | tr '\n' ' ' || true)
if [ -z "$want" ]; then echo "[offline_wheels] requirements.txt pins none of papermill, nbconvert, ipykernel" >&2; exit 1; fi
plats=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  plats+=(--platform "$p")
done
"$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --implementation cp \
  --python-version "$PYV" "${plats[@]}" -c "$constraints" -d "$DIR" $want
# the dependency resolver may still bring parts of the numerical stack (e.g. as a dependency's dependency):
# the target's own copies are kept
for f in "$DIR"/*.whl; do
  name=$(basename "$f" | cut -d- -f1 | tr '_' '-' | tr 'A-Z' 'a-z')
  if echo "$name==" | grep -Eiq "$PRESENT"; then rm -f "$f"; fi
done
echo "[offline_wheels] $(ls "$DIR"/*.whl | wc -l) wheels for CPython $PYV in $DIR ($(du -sh "$DIR" | cut -f1))"
