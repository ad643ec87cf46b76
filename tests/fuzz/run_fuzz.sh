#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan + UBSan) and fuzzes the
# argument checks and the CPU reference.
#   tests/fuzz/run_fuzz.sh [SECONDS]   (default 20; CI runs the default)
# New inputs go to build-fuzz/corpus; the committed seeds stay untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
# libFuzzer comes with clang's runtime; install both if this machine lacks them.
probe='extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }'
if ! echo "$probe" | clang++ -fsanitize=fuzzer -x c++ - -o /tmp/cuact_fuzz_probe 2>/dev/null; then
  echo "run_fuzz: installing clang and libFuzzer from Debian's packages"
  apt-get update -qq && apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCUACT_FUZZ=ON -DCMAKE_CUDA_ARCHITECTURES=90-real \
  -DCUACT_BUILD_TESTS=OFF -DCUACT_BUILD_BENCH=OFF \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CUDA_HOST_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j2 --target cuact_fuzz_api
mkdir -p build-fuzz/corpus
build-fuzz/tests/fuzz/cuact_fuzz_api -max_total_time="$seconds" -print_final_stats=1 \
  build-fuzz/corpus tests/fuzz/corpus
