#!/usr/bin/env bash
# sam2c's own threading under ThreadSanitizer: builds BUILD (default build-tsan) with
# -DSAM2C_TSAN=ON and runs the tests that start pthreads: test_threads (image and video
# sessions on several threads sharing one model, the oneDNN caches from several threads,
# cancellation from another thread), test_server and test_server_safety (the HTTP server
# in-process: libmicrohttpd thread per connection, per-image locks, the background encode
# worker, video jobs; and the real `sam2c serve` binary, also instrumented, forked).
#
# OMP_NUM_THREADS=1: libgomp is not instrumented, so OpenMP worker threads would give
# false reports; with one OpenMP thread none are created. tests/tsan.supp holds the few
# known-benign third-party reports. Every report of every process (forked children too)
# is written under BUILD/tsan-logs; the script fails when any exists or a test fails.
# Usage: bash scripts/tsan.sh [test_name ...]     (env BUILD=dir, JOBS=n)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD:-build-tsan}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_threads test_server test_server_safety)

echo "== build (ThreadSanitizer) in $build =="
extra=()
grep -q 'cmake/tsan.cmake' CMakeLists.txt || extra=(-DCMAKE_PROJECT_INCLUDE="$root/cmake/tsan.cmake")
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAM2C_WERROR=ON -DSAM2C_TSAN=ON "${extra[@]}" >/dev/null
cmake --build "$build" -j"$jobs" --target sam2c "${tests[@]}"

logs="$root/$build/tsan-logs"
rm -rf "$logs"
mkdir -p "$logs"
export OMP_NUM_THREADS=1
export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp:log_path=$logs/report:halt_on_error=0:second_deadlock_stack=1:history_size=4:exitcode=66"
export SAM2C_BIN="$root/$build/sam2c"

status=0
for t in "${tests[@]}"; do
  echo "== $t under TSan =="
  TIMEFORMAT="   $t: %R s wall, %U s user + %S s system CPU"
  time { (cd "$build" && "./$t") || { echo "tsan.sh: $t failed (exit status above)" >&2; status=1; }; }
done

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo "== ThreadSanitizer reports ==" >&2
  for f in $reports; do echo "--- $f" >&2; cat "$f" >&2; done
  echo "tsan.sh: $(echo "$reports" | wc -l) process(es) reported races or lock problems" >&2
  status=1
fi
[ $status -eq 0 ] && echo "tsan.sh: no ThreadSanitizer reports"
exit $status
