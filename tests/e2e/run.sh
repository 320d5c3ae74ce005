#!/bin/sh
# End-to-end test of the `sam2c serve` panel in a real browser (Debian's chromium driven
# by playwright-core): starts the server on a free loopback port with a token and a
# temporary project, runs panel_e2e.mjs, stops the server.
# usage: tests/e2e/run.sh PATH/TO/sam2c
# Exit 0: passed; 77: skipped (no chromium, node, fixtures or npm package); else failed.
# Screenshots go to $E2E_ARTIFACTS (default: e2e-artifacts next to the sam2c binary).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-}
skip() { echo "e2e: SKIP: $*"; exit 77; }
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "usage: $0 PATH/TO/sam2c" >&2; exit 2; fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -x /usr/bin/chromium ] || skip "/usr/bin/chromium is missing (apt-get install chromium)"
command -v node >/dev/null 2>&1 || skip "node is missing (apt-get install nodejs npm)"
model=${SAM2C_FIXTURES:-/work/shared/fixtures}/micro/model.pt
image=${SAM2C_DATA:-/work/shared/data}/images/truck.jpg
[ -f "$model" ] || skip "micro model not found at $model (set SAM2C_FIXTURES)"
[ -f "$image" ] || skip "sample image not found at $image (set SAM2C_DATA)"
if [ ! -d "$here/node_modules/playwright-core" ]; then
    command -v npm >/dev/null 2>&1 || skip "npm is missing (apt-get install npm)"
    echo "e2e: installing playwright-core (npm ci in $here)"
    (cd "$here" && npm ci --no-audit --no-fund >/dev/null) || skip "npm ci failed (offline?)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sam2c-e2e.XXXXXX")
token=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SAM2C_TOKEN=$token "$bin" serve -m "$model" --host 127.0.0.1 --port 0 --project "$tmp/project" \
    >"$tmp/stdout.log" 2>"$tmp/server.log" &
pid=$!
url=
i=0
while [ $i -lt 600 ]; do
    url=$(sed -n 's|^sam2c serve: listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$tmp/stdout.log")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$url" ]; then
    echo "e2e: FAIL: the server did not start" >&2
    cat "$tmp/stdout.log" "$tmp/server.log" >&2
    exit 1
fi

art=${E2E_ARTIFACTS:-$(dirname "$bin")/e2e-artifacts}
mkdir -p "$art"
SAM2C_URL=$url SAM2C_TOKEN=$token E2E_IMAGE=$image E2E_ARTIFACTS=$art E2E_PROFILE=$tmp/profile \
    node "$here/panel_e2e.mjs"
rc=$?
if [ $rc -ne 0 ]; then
    echo "e2e: server log (last 40 lines):" >&2
    tail -n 40 "$tmp/server.log" >&2
fi
exit $rc
