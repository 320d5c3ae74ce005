#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt, clang) and runs them one at a time.
#
#   fuzz/run.sh TARGET SECONDS   build, seed and run one target for SECONDS
#   fuzz/run.sh all SECONDS      each target in turn, SECONDS each
#   fuzz/run.sh build | seeds | list
#   fuzz/run.sh repro TARGET FILE...   run inputs once (a crash prints its stack)
#
# Targets: zip pickle torchzip safetensors json coco rle image.
# Environment: FUZZ_BUILD (build folder, default build-fuzz), FUZZ_WORK (corpora, logs,
# artifacts; default fuzz/corpus-run), FUZZ_CC (clang), FUZZ_RSS_MB (2048),
# FUZZ_TIMEOUT (10 s per input), SAM2C_FIXTURES / SAM2C_DATA (seed sources).
# Runs are nice'd, one job, one worker: the machine is shared.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
WORK=${FUZZ_WORK:-$HERE/corpus-run}
FIXTURES=${SAM2C_FIXTURES:-$ROOT/../shared/fixtures}
DATA=${SAM2C_DATA:-$ROOT/../shared/data}
CC=${FUZZ_CC:-$(command -v clang-14 || command -v clang || echo clang)}
RSS=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
TARGETS="zip pickle torchzip safetensors json coco rle image"

die() { echo "fuzz/run.sh: $*" >&2; exit 2; }

# Incremental build of every target.
build() {
    cmake -S "$HERE" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" >/dev/null
    nice -n 10 cmake --build "$BUILD" -j2 2>&1 | grep -E "error|warning: |Error" || true
    for t in $TARGETS; do [ -x "$BUILD/fuzz_$t" ] || die "build failed (fuzz_$t missing)"; done
}

# Seed folders under $WORK/seeds (made once; delete the folder to regenerate): generated
# seeds, fuzz/seeds/<target>/ (committed, optional) and the bad-input catalogue files.
seeds() {
    local s="$WORK/seeds"
    [ -f "$s/.done" ] && return 0
    rm -rf "$s"
    mkdir -p "$s/image"
    python3 "$HERE/gen_seeds.py" "$s" "$FIXTURES" "$DATA" || echo "gen_seeds.py failed: fixture seeds skipped" >&2
    if cc -std=c11 -D_GNU_SOURCE "$HERE/gen_images.c" -ljpeg -lpng -o "$s/gen_images" 2>/dev/null; then
        "$s/gen_images" "$s/image"
        rm -f "$s/gen_images"
    fi
    # fixture images: video frames (JPEG) and label PNGs (palette), each under 64 KiB
    find "$FIXTURES/micro/video/frames" -name '*.jpg' -size -64k 2>/dev/null | head -3 |
        while read -r f; do cp "$f" "$s/image/frame_$(basename "$f")"; done || true
    find "$FIXTURES/eval" -name '*.png' -size -64k 2>/dev/null | head -8 |
        while read -r f; do cp "$f" "$s/image/label_$(echo "$f" | md5sum | cut -c1-8).png"; done || true
    for t in $TARGETS; do
        mkdir -p "$s/$t"
        [ -d "$HERE/seeds/$t" ] && cp "$HERE/seeds/$t"/* "$s/$t/" 2>/dev/null || true
    done
    # the bad-input catalogue and the fuzz regressions (named <target>_*) seed too
    local bad="$ROOT/tests/bad_inputs"
    cp "$bad"/*.pt "$s/torchzip/" 2>/dev/null || true
    cp "$bad"/*.pt "$s/zip/" 2>/dev/null || true
    cp "$bad"/*.safetensors "$s/safetensors/" 2>/dev/null || true
    cp "$bad"/*.json "$s/json/" 2>/dev/null || true
    for f in "$bad"/fuzz/*; do
        [ -f "$f" ] || continue
        t=$(basename "$f"); t=${t%%_*}
        [ -d "$s/$t" ] && cp "$f" "$s/$t/"
    done
    touch "$s/.done"
}

# Longest input each target is given.
max_len() {
    case "$1" in
        rle) echo 4096 ;;
        *) echo 65536 ;;
    esac
}

# Dictionary of each target (grammar tokens, keys, signatures).
dict_for() {
    case "$1" in
        json|safetensors|coco) echo "$HERE/dict/json.dict" ;;
        zip|pickle|torchzip) echo "$HERE/dict/$1.dict" ;;
        *) echo "" ;;
    esac
}

# One target for $2 seconds; the log keeps libFuzzer's final statistics.
run_one() {
    local t=$1 secs=$2
    [ -x "$BUILD/fuzz_$t" ] || die "unknown target '$t' (targets: $TARGETS)"
    local corpus="$WORK/corpus/$t" art="$WORK/artifacts/$t" logs="$WORK/logs"
    mkdir -p "$corpus" "$art" "$logs/$t"
    local d; d=$(dict_for "$t")
    local args=(-jobs=1 -workers=1 -rss_limit_mb="$RSS" -timeout="$TIMEOUT" -max_len="$(max_len "$t")"
                -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/")
    [ -n "$d" ] && args+=(-dict="$d")
    echo "fuzz_$t: ${secs}s, corpus $corpus, log $logs/$t.log"
    # -jobs=1 runs the fuzzer as a child writing fuzz-0.log in the current folder
    (cd "$logs/$t" && nice -n 10 "$BUILD/fuzz_$t" "${args[@]}" "$corpus" "$WORK/seeds/$t" \
        >/dev/null 2>&1 || true)
    mv -f "$logs/$t/fuzz-0.log" "$logs/$t.log" 2>/dev/null || true
    cp -f "$logs/$t.log" "$logs/$t-$(date +%Y%m%d-%H%M%S).log" 2>/dev/null || true # history
    summary "$t"
}

# Executions, coverage and findings of the last run of target $1.
summary() {
    local t=$1 log="$WORK/logs/$1.log"
    [ -f "$log" ] || { echo "  no log"; return; }
    local execs cov
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1)
    echo "  $t: executions ${execs:-?}, ${cov:-no coverage line}, corpus $(ls "$WORK/corpus/$t" | wc -l) inputs"
    local found; found=$(ls "$WORK/artifacts/$t" 2>/dev/null | wc -l)
    if [ "$found" != 0 ]; then
        echo "  FINDINGS in $WORK/artifacts/$t:"
        ls "$WORK/artifacts/$t" | sed 's/^/    /'
        grep -m3 -E 'ERROR: |runtime error|invariant failed' "$log" | sed 's/^/    /' || true
    fi
}

cmd=${1:-}
case "$cmd" in
    build) build ;;
    seeds) seeds ;;
    list) echo "$TARGETS" ;;
    repro)
        [ $# -ge 3 ] || die "usage: fuzz/run.sh repro TARGET FILE..."
        build
        t=$2; shift 2
        "$BUILD/fuzz_$t" -rss_limit_mb="$RSS" -timeout="$TIMEOUT" "$@" ;;
    all)
        [ $# -eq 2 ] || die "usage: fuzz/run.sh all SECONDS"
        build; seeds
        for t in $TARGETS; do run_one "$t" "$2"; done ;;
    "") die "usage: fuzz/run.sh TARGET SECONDS | all SECONDS | build | seeds | list | repro TARGET FILE..." ;;
    *)
        [ $# -eq 2 ] || die "usage: fuzz/run.sh TARGET SECONDS"
        build; seeds
        run_one "$cmd" "$2" ;;
esac
