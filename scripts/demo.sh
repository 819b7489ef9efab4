#!/usr/bin/env bash
# `make demo`: synthetic shapes dataset -> PMD-LAMB + SyncBN Faster R-CNN on two local workers
# -> COCO evaluation -> a detections picture and a curves picture. Run from the repository root
# after `make build`; BUILD and DEMO name the build and output directories.
# Exits non-zero when the final bbox AP misses TARGET_AP (not when it misses the time target:
# timings depend on the machine and its load). `scripts/demo.sh --check-only` re-checks the AP of
# an existing $DEMO/run without training again.
set -euo pipefail
BUILD=${BUILD:-build}
DEMO=${DEMO:-demo}
LARGEDET="$BUILD/bin/largedet"
RECIPE=configs/synthetic/demo.yaml
# README quotes the recorded run (bbox AP 0.587, docs/benchmarks.md); the same machine, thread
# count and build give the same numbers every time, while another CPU, thread count, LibTorch
# build or commit sums in another order and drifts (recorded runs: 0.557-0.587), so the target
# leaves a margin. Below it, the recipe or the code has stopped learning as it should.
TARGET_AP=0.50

# The last bbox/AP in $DEMO/run/metrics.jsonl (the final evaluation's), or nothing.
final_ap() {
  grep -o '"bbox/AP":[0-9.eE+-]*' "$DEMO/run/metrics.jsonl" 2>/dev/null | tail -1 | cut -d: -f2 \
    || true
}

# Prints the verdict line (with the time when given) and fails when the AP is under the target.
check_ap() {
  local ap elapsed=${1:-}
  ap=$(final_ap)
  if [ -z "$ap" ]; then
    echo "no bbox/AP in $DEMO/run/metrics.jsonl: the final evaluation did not run (see the log above)"
    return 1
  fi
  local time=""
  if [ -n "$elapsed" ]; then
    time=$(printf '; training plus evaluation took %d:%02d (target <= 10:00)' \
      $((elapsed / 60)) $((elapsed % 60)))
  fi
  printf '\nLargeDet demo: bbox AP %.3f on the synthetic val split (target >= %s)%s\n' \
    "$ap" "$TARGET_AP" "$time"
  if ! awk -v ap="$ap" -v target="$TARGET_AP" 'BEGIN { exit !(ap >= target) }'; then
    echo "FAILED: bbox AP $ap is below the target $TARGET_AP"
    return 1
  fi
}

if [ "${1:-}" = "--check-only" ]; then
  check_ap
  exit
fi

echo "== 1/4 synthetic dataset in $DEMO/data"
# A set from before synth.json existed is this script's own: synth would refuse it.
if [ -d "$DEMO/data" ] && [ ! -f "$DEMO/data/synth.json" ]; then rm -rf "$DEMO/data"; fi
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

echo "pictures: $DEMO/pictures/*.png, curves: $DEMO/curves.png, run: $DEMO/run"
check_ap "$elapsed"
