#!/usr/bin/env bash
# The project's test command (README.md; .ci/run runs exactly this):
#   1. a bounded fuzz run of the argument checks and the CPU reference
#      (libFuzzer, clang, ASan + UBSan; tests/fuzz/run_fuzz.sh),
#   2. the host code and CPU tests built with ASan + UBSan, run,
#   3. the normal build and every test (GPU suites skip with their reason
#      without a GPU; CUACT_REQUIRE_GPU=1 makes them fail instead),
#   4. the Python package (python/): a virtual environment under build/ with
#      torch from PyPI, the package built against it and the library of 3,
#      and its pytest suite (the CUDA half skips without a GPU, likewise).
# Any failure stops it with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${CUACT_JOBS:-2}

echo "== 1/4 fuzzing the entry points (20 s) =="
mkdir -p build-fuzz
if ! tests/fuzz/run_fuzz.sh 20 >build-fuzz/run.log 2>&1; then
  tail -n 60 build-fuzz/run.log
  echo "fuzzing failed (full log: build-fuzz/run.log)"
  exit 1
fi
grep -E "^Done|^stat::number_of_executed_units" build-fuzz/run.log

echo "== 2/4 host code and CPU tests under AddressSanitizer + UBSan =="
# (its tests run no kernel: one real architecture keeps the build short)
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCUACT_SANITIZE=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90-real >/dev/null
cmake --build build-sanitize -j"$jobs" >/dev/null
ctest --test-dir build-sanitize -L cpu -j"$jobs" --output-on-failure | grep -E "tests passed|tests failed|Failed|\*\*\*"

echo "== 3/4 build and every test =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== 4/4 the Python package (torch operators) and its tests =="
venv=build/python-venv
[ -x $venv/bin/python ] || python3 -m venv $venv
$venv/bin/pip install -q -r python/requirements-test.txt
cmake --install build --prefix build/install >/dev/null
CMAKE_PREFIX_PATH="$PWD/build/install" $venv/bin/pip install -q --no-build-isolation \
  -C build-dir="$PWD/build/python-build" ./python
(cd python/tests && "../../$venv/bin/python" -m pytest -q -p no:cacheprovider)
# The parity tests again under each set of PyTorch's CPU kernels this CPU runs
# (they round differently; docs/PYTORCH_PARITY.md's table and the torchao
# parity counts hold for all)
caps=default
grep -qw avx2 /proc/cpuinfo && caps="$caps avx2"
grep -qw avx512f /proc/cpuinfo && caps="$caps avx512"
for cap in $caps; do
  echo "-- test_parity.py test_torchao_parity.py, ATEN_CPU_CAPABILITY=$cap"
  (cd python/tests && ATEN_CPU_CAPABILITY=$cap "../../$venv/bin/python" -m pytest -q \
    -p no:cacheprovider test_parity.py test_torchao_parity.py)
done
