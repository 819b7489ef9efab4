#!/usr/bin/env bash
# `make demo`: synthetic shapes dataset -> PMD-LAMB + SyncBN Faster R-CNN on two local workers
# -> COCO evaluation -> a detections picture and a curves picture. Run from the repository root
# after `make build`; BUILD and DEMO name the build and output directories.
set -euo pipefail
BUILD=${BUILD:-build}
DEMO=${DEMO:-demo}
LARGEDET="$BUILD/bin/largedet"
RECIPE=configs/synthetic/demo.yaml

echo "== 1/4 synthetic dataset in $DEMO/data"
"$LARGEDET" synth --out "$DEMO/data" --images 800 --size 256 --val-fraction 0.1 --max-objects 4 \
  --seed 0 >/dev/null

echo "== 2/4 training on two workers (largedet launch), evaluating at the end"
rm -rf "$DEMO/run"
start=$SECONDS
"$LARGEDET" launch --nproc-per-node 2 -- \
  "$LARGEDET" train --config "$RECIPE" --output "$DEMO/run" \
  DATASETS.TRAIN_ANNOTATIONS="$DEMO/data/annotations/instances_train.json" \
  DATASETS.TRAIN_IMAGES="$DEMO/data/train" \
  DATASETS.TEST_ANNOTATIONS="$DEMO/data/annotations/instances_val.json" \
  DATASETS.TEST_IMAGES="$DEMO/data/val"
elapsed=$((SECONDS - start))

echo "== 3/4 detections on validation images in $DEMO/pictures"
mkdir -p "$DEMO/sample"
cp "$DEMO"/data/val/00072[1-4].jpg "$DEMO/sample/"
"$LARGEDET" infer --config "$RECIPE" --weights "$DEMO/run/model_final.safetensors" \
  --input "$DEMO/sample" --output "$DEMO/pictures" \
  DATASETS.TEST_ANNOTATIONS="$DEMO/data/annotations/instances_val.json" \
  DATASETS.TEST_IMAGES="$DEMO/data/val"

echo "== 4/4 curves in $DEMO/curves.png"
"$LARGEDET" plot "$DEMO/run" --output "$DEMO/curves.png"

ap=$(grep -o '"bbox/AP":[0-9.eE+-]*' "$DEMO/run/metrics.jsonl" | tail -1 | cut -d: -f2 || true)
if [ -z "$ap" ]; then
  echo "no bbox/AP in $DEMO/run/metrics.jsonl: the final evaluation did not run (see the log above)"
  exit 1
fi
printf '\nLargeDet demo: bbox AP %.3f on the synthetic val split (target >= 0.50); training plus evaluation took %d:%02d (target <= 10:00)\n' \
  "$ap" $((elapsed / 60)) $((elapsed % 60))
echo "pictures: $DEMO/pictures/*.png, curves: $DEMO/curves.png, run: $DEMO/run"
