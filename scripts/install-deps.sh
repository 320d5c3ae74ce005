#!/usr/bin/env bash
# Installs what sam2c needs to build, test and run on Debian 12, as root.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail
PKGS="build-essential cmake pkg-config git ca-certificates curl
      libjpeg62-turbo-dev libpng-dev zlib1g-dev
      libdnnl-dev
      libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
      libmicrohttpd-dev libsqlite3-dev
      clang libclang-rt-14-dev
      chromium"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js + npm run the browser test of the panel; machines that already have them (for
# example from another repository) keep their own.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: run as root to install:$missing" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi
