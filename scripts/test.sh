#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds with warnings as errors, runs every
# test, then runs the suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: bash scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (Release, -Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSAM2C_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests =="
(cd build && ctest --output-on-failure -j1)

if [ "${1:-}" != "--no-sanitize" ]; then
  echo "== build (ASan + UBSan) =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAM2C_WERROR=ON -DSAM2C_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests under ASan + UBSan =="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure -j1 -LE slow)
  echo "== sam2c threads under ThreadSanitizer =="
  bash scripts/tsan.sh
fi
