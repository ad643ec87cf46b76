#!/usr/bin/env bash
# The static throughput model's gate, as CTest runs it (README.md, "Static
# throughput model"):
#   tests/static_model_check.sh SOURCE_DIR BUILD_DIR LIBRARY [check|update]
# Installs cuobjdump/nvdisasm (bench/static_model_requirements.txt) into
# BUILD_DIR/static-model-venv, then runs bench/static_model.py on LIBRARY.
#   check   (default) fails on a finding not listed in
#           bench/results/static/known_shortfalls.json, or when the committed
#           tables or the README summary differ from what the code gives;
#   update  rewrites bench/results/static/ and the README summary.
# Exit 77 (CTest: skipped) when LIBRARY holds no sm_90 code.
set -euo pipefail
src=$1 build=$2 lib=$3 mode=${4:-check}
python=${PYTHON:-python3}
venv=$build/static-model-venv
req=$src/bench/static_model_requirements.txt
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
cuobjdump=$(find "$venv" -name cuobjdump -type f | head -n 1)
[ -n "$cuobjdump" ] || { echo "static_model_check: cuobjdump not found in $venv"; exit 1; }
tools=$(dirname "$cuobjdump")
results=$src/bench/results/static
args=(--library "$lib" --tools "$tools" --known "$results/known_shortfalls.json")
if [ "$mode" = update ]; then
  exec "$python" "$src/bench/static_model.py" "${args[@]}" --out "$results" --readme "$src/README.md"
fi
exec "$python" "$src/bench/static_model.py" "${args[@]}" --out "$build/static_model" --check \
  --compare "$results" --compare-readme "$src/README.md"
