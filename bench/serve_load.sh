#!/bin/sh
# Load test of `sam2c serve` with wrk (Debian package wrk): POST predict on an image whose
# embedding is cached, and GET of a static panel file; 32 connections, 10 s each, loopback
# only. Prints requests/s, p50/p99 latency and errors per run (wrk's timeout is 30 s: a
# predict queued behind 31 others is slow, not lost).
# usage: bench/serve_load.sh PATH/TO/sam2c [MODEL] [IMAGE]
#   MODEL: default the micro test model ($SAM2C_FIXTURES/micro/model.pt);
#   IMAGE: default $SAM2C_DATA/images/truck.jpg. CONNS / SECS / THREADS override 32 / 10 / 2.
set -eu
bin=${1:?usage: bench/serve_load.sh PATH/TO/sam2c [MODEL] [IMAGE]}
model=${2:-${SAM2C_FIXTURES:-/work/shared/fixtures}/micro/model.pt}
image=${3:-${SAM2C_DATA:-/work/shared/data}/images/truck.jpg}
conns=${CONNS:-32}
secs=${SECS:-10}
threads=${THREADS:-2}
for t in wrk curl; do command -v $t >/dev/null || { echo "serve_load: $t is missing (apt-get install $t)" >&2; exit 1; }; done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sam2c-load.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
"$bin" serve -m "$model" --port 0 --project "$tmp/project" --quiet >"$tmp/out.log" 2>"$tmp/err.log" &
pid=$!
url=
for _ in $(seq 300); do
    url=$(sed -n 's|^sam2c serve: listening on \(http://127\.0\.0\.1:[0-9]*\)/.*|\1|p' "$tmp/out.log")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/err.log" >&2; echo "serve_load: the server did not start" >&2; exit 1; }

id=$(curl -sf -H 'Content-Type: image/jpeg' --data-binary @"$image" "$url/api/images?name=$(basename "$image")" |
     sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
[ -n "$id" ] || { echo "serve_load: upload failed" >&2; exit 1; }
body='{"points": [[500, 375]], "labels": [1], "multimask": true}'
# the first predict encodes the image; every later one hits the cached embedding
curl -sf -H 'Content-Type: application/json' -d "$body" "$url/api/images/$id/predict" >/dev/null
cat >"$tmp/predict.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

# One wrk run: prints "name: N req/s, p50 X, p99 Y, errors E".
run() {
    name=$1
    shift
    wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 30s --latency "$@" >"$tmp/wrk.txt" 2>&1
    rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.txt")
    n=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt")
    sockerr=$(sed -n 's/.*Socket errors: //p' "$tmp/wrk.txt")
    echo "$name: $rps req/s, p50 $p50, p99 $p99, $n requests, non-2xx ${non2xx:-0}, socket errors ${sockerr:-none}"
    [ -z "$non2xx" ] && [ -z "$sockerr" ]
}
echo "sam2c serve load: $conns connections, $threads wrk threads, ${secs} s per run, model $(basename "$model"), image $(basename "$image"), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
ok=0
run "predict (cached embedding)" -s "$tmp/predict.lua" "$url/api/images/$id/predict" || ok=1
run "static /app.js" "$url/app.js" || ok=1
run "GET /api/images" "$url/api/images" || ok=1
exit $ok
