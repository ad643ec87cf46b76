#!/usr/bin/env bash
# GPU reliability checks, for machines with a GPU:
#   1. the whole suite with CUACT_REQUIRE_GPU=1 (a skip is a failure),
#   2. compute-sanitizer memcheck, racecheck, initcheck and synccheck over the
#      GPU tests at small sizes (CUACT_TEST_SMALL=1),
#   3. the large (> 2^31 elements), graph-replay and multi-thread tests
#      (part of the suite in 1; listed again in the summary),
#   4. cuact-bench at n = 2^28 with every softmax and fused row (JSON, CSV).
# Usage: tests/gpu_checks.sh [RESULT_DIR]   (default bench/results/<gpu name>)
# Writes RESULT_DIR/gpu_checks.txt (the summary) and the full logs beside it.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
[ -n "$gpu" ] || { echo "gpu_checks: no GPU (nvidia-smi found none)"; exit 1; }
dir=${1:-bench/results/$(echo "$gpu" | tr -c 'A-Za-z0-9._-\n' '_')}
mkdir -p "$dir"
summary="$dir/gpu_checks.txt"
{
  echo "cuact GPU checks on $gpu ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null))"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} >"$summary"
status=0
step() {  # step NAME LOG COMMAND...: run, record pass/fail and the tail of the log
  local name=$1 log=$2
  shift 2
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    echo "PASS  $name ($((SECONDS - t0)) s)" >>"$summary"
  else
    echo "FAIL  $name ($((SECONDS - t0)) s): see $log" >>"$summary"
    status=1
  fi
  grep -E "tests passed|ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$log" | tail -n 3 | sed 's/^/      /' >>"$summary"
}

# Built for the device's architecture only (sm_90 unless CUACT_GPU_ARCH says
# otherwise), with every core, in its own build directory.
arch=${CUACT_GPU_ARCH:-90}
build=build-gpu
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null \
  && cmake --build $build -j"$jobs" >/dev/null \
  || { echo "FAIL  build" >>"$summary"; cat "$summary"; exit 1; }

export CUACT_REQUIRE_GPU=1
step "whole suite, CUACT_REQUIRE_GPU=1" "$dir/ctest.log" \
  ctest --test-dir $build --output-on-failure -j4 -E static_model  # (CPU-side; its tools come from PyPI)
step "large, graph replay and multi-thread tests" "$dir/reliability.log" \
  $build/tests/cuact_gpu_tests --gtest_filter='GpuLarge.*:GpuGraphs.*:GpuThreads.*'

# The benchmark at docs/DESIGN.md's largest elementwise size, every softmax and
# fused row (each kernel checked against the reference first).
step "cuact-bench (n = 2^28, 10 runs)" "$dir/bench.log" \
  $build/bench/cuact-bench --size 2^28 --runs 10 --no-progress --json "$dir/bench.json" \
  --csv "$dir/bench.csv"

# The Python package's CUDA half and the PyTorch peers, where this machine has
# torch (python3 or build/python-venv; nothing is downloaded here).
py=$(command -v python3)
[ -x build/python-venv/bin/python ] && py=$PWD/build/python-venv/bin/python
if "$py" -c "import torch" 2>/dev/null; then
  cmake --install $build --prefix $build/install >/dev/null
  step "python package build" "$dir/python_build.log" \
    env CMAKE_PREFIX_PATH="$PWD/$build/install" "$py" -m pip install --no-build-isolation \
    -C build-dir="$PWD/$build/python-build" ./python
  step "python suite (CUDA half), CUACT_REQUIRE_GPU=1" "$dir/python_tests.log" \
    bash -c "cd python/tests && '$py' -m pytest -q -p no:cacheprovider test_cuda.py"
  step "PyTorch peers (eager, torch.compile)" "$dir/torch_peers.log" \
    "$py" bench/torch_peers.py --size 2^26 --json "$dir/torch_peers.json" --csv "$dir/torch_peers.csv"
else
  echo "SKIP  python package and PyTorch peers: no torch on this machine" >>"$summary"
fi

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
export CUACT_TEST_SMALL=1
for tool in memcheck racecheck initcheck synccheck; do
  filter='*'
  # initcheck/synccheck/racecheck are slow: a representative slice of the cases
  [ "$tool" = memcheck ] || filter='*relu*:*gelu*:*silu*:*softsign*:Gpu*:Kernel[GD]*:*Softmax*'
  step "compute-sanitizer $tool" "$dir/sanitizer_$tool.log" \
    "$sanitizer" --tool "$tool" --error-exitcode 1 $build/tests/cuact_gpu_tests --gtest_filter="$filter"
done
unset CUACT_TEST_SMALL

echo "overall: $([ $status = 0 ] && echo PASS || echo FAIL)" >>"$summary"
cat "$summary"
exit $status
