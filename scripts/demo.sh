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
DEMO_MODEL=assets/demo_model/sam2c_demo.safetensors

# Offline fallback: the embedded demo model on generated inspection images, each part
# prompted with its box (from the generator's annotations), scored against the exact masks.
run_demo_model() {
  cat >&2 <<MSG
sam2c demo: no official checkpoint at $MODEL and it could not be downloaded (no network?).
  Running the embedded DEMO model instead: $DEMO_MODEL, a 2.5 M-parameter SAM 2-architecture
  model trained by sam2c itself on generated images of industrial parts. It segments simple
  parts on such images; it is NOT SAM 2 and not meant for real photos. For real use:
    curl -LO $URL   (on a machine with internet access) and copy it to $(pwd)/$MODEL
MSG
  local data=out/demo/generated pred=out/demo/pred
  rm -rf out/demo && mkdir -p "$pred"
  ./build/sam2c synth -o "$data" -n 20 --size 256 --seed 2026 --quiet
  ./build/sam2c info "$DEMO_MODEL"
  for img in "$data"/images/*.jpg; do
    stem=$(basename "$img" .jpg)
    k=0
    # one COCO bbox [x, y, w, h] per part of this image, in annotation order
    for bb in $(tr -d '\n ' < "$data/annotations.json" | grep -o "\"image_id\":$(image_id "$data" "$stem"),[^}]*}[^}]*\"bbox\":\[[^]]*\]" | grep -o '"bbox":\[[^]]*\]' | tr -d '"bbox:[]'); do
      IFS=, read -r x y w h <<<"$bb"
      box=$(awk -v x="$x" -v y="$y" -v w="$w" -v h="$h" 'BEGIN{printf "%.1f,%.1f,%.1f,%.1f", x, y, x+w, y+h}')
      ./build/sam2c segment -m "$DEMO_MODEL" -i "$img" --box "$box" --overlay -o "out/demo/$stem/$k" >/dev/null
      mkdir -p "$pred/$stem" && cp "out/demo/$stem/$k/mask_0.png" "$pred/$stem/$k.png"
      k=$((k + 1))
    done
  done
  ./build/sam2c eval images --gt "$data/masks" --pred "$pred" --quiet --json out/demo/eval.json
  echo "DEMO model masks: out/demo/<image>/<part>/mask_0.png, overlays: out/demo/<image>/<part>/overlay.png"
  echo "scores against the generator's exact masks: out/demo/eval.json (table above)"
}

# The COCO id of the image named stem in the generator's annotations.
image_id() {
  tr -d '\n ' < "$1/annotations.json" | grep -o "{\"id\":[0-9]*,[^}]*\"file_name\":\"[^\"]*$2\.jpg\"" | head -1 | grep -o '^{"id":[0-9]*' | grep -o '[0-9]*$'
}

if [ ! -f "$MODEL" ]; then
  echo "downloading $URL ..."
  if curl -fL --retry 2 --connect-timeout 15 -o "$MODEL.part" "$URL"; then
    mv "$MODEL.part" "$MODEL"
  else
    rm -f "$MODEL.part"
    if [ -f "$DEMO_MODEL" ] && [ $# -eq 0 ]; then
      run_demo_model
      exit 0
    fi
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
