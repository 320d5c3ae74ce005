#!/usr/bin/env bash
# The main job: build sam2c and segment a sample image with a click.
# Uses models/sam2.1_hiera_tiny.pt (downloaded from Meta's public checkpoint address when
# missing and the network allows). Usage: bash scripts/demo.sh [IMAGE] [X,Y]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target sam2c >/dev/null

MODEL=models/sam2.1_hiera_tiny.pt
URL=https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt
IMAGE=${1:-../shared/data/images/truck.jpg}
POINT=${2:-500,375}
mkdir -p models
if [ ! -f "$MODEL" ]; then
  echo "downloading $URL ..."
  if curl -fL --retry 2 --connect-timeout 15 -o "$MODEL.part" "$URL"; then
    mv "$MODEL.part" "$MODEL"
  else
    rm -f "$MODEL.part"
    cat >&2 <<MSG
sam2c demo: could not download the SAM 2.1 tiny checkpoint (no network?).
  Fetch it on a machine with internet access:
    curl -LO $URL
  and copy it to $(pwd)/$MODEL, then run this command again.
  Any official checkpoint works too: ./build/sam2c segment -m sam2.1_hiera_large.pt -i IMAGE --point X,Y -o out
MSG
    exit 1
  fi
fi
# SHA-256: checked against scripts/checkpoints.sha256 (recorded on first use when the
# file is not listed there yet; the loader also checks every tensor's name and shape).
sum=$(sha256sum "$MODEL" | cut -d' ' -f1)
known=$(grep " $(basename "$MODEL")\$" scripts/checkpoints.sha256 2>/dev/null | cut -d' ' -f1 || true)
if [ -n "$known" ] && [ "$known" != "$sum" ]; then
  echo "sam2c demo: $MODEL has SHA-256 $sum, expected $known: the file is corrupt or not the official one; delete it and run again" >&2
  exit 1
fi
[ -n "$known" ] || echo "$sum $(basename "$MODEL")" >> scripts/checkpoints.sha256.local
[ -f "$IMAGE" ] || { echo "sam2c demo: image $IMAGE not found; give one: bash scripts/demo.sh IMAGE X,Y" >&2; exit 1; }
./build/sam2c info "$MODEL"
./build/sam2c segment -m "$MODEL" -i "$IMAGE" --point "$POINT" --multimask --overlay -o out/demo
echo "masks: out/demo/masks.json, out/demo/mask_*.png, overlay: out/demo/overlay.png"
