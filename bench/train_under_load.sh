#!/usr/bin/env bash
# Issue 33's threading check: `largedet train` on the learning test's recipe (a narrow ResNet-18
# Faster R-CNN on 128 px synthetic shapes, 8 images per step, NUM_THREADS 2), timed alone and
# beside one CPU-bound process and one per core, with OpenMP's threads spin-waiting (libgomp's
# default) and sleeping (OMP_WAIT_POLICY=PASSIVE). Prints one line per case; docs/benchmarks.md has the figures.
# Usage: bench/train_under_load.sh [BUILD_DIR] [ITERATIONS] [WORK_DIR]
set -euo pipefail
BUILD=${1:-build}
ITERS=${2:-30}
WORK=${3:-/tmp/largedet_train_under_load}
# The torch binary itself: the front would choose the wait policy for us.
LARGEDET="$BUILD/libexec/largedet-torch"
mkdir -p "$WORK"
if [ ! -f "$WORK/data/annotations/instances_train.json" ]; then
  "$LARGEDET" synth --out "$WORK/data" --images 160 --size 128 --seed 7 --val-fraction 0.2 \
    --max-objects 2 > /dev/null
fi
cat > "$WORK/learn.yaml" <<YAML
SEED: 1
MODEL:
  BACKBONE: {FREEZE_AT: 0}
  RESNETS: {DEPTH: 18, NORM: BN, STEM_OUT_CHANNELS: 16, WIDTH_PER_GROUP: 16, RES2_OUT_CHANNELS: 16}
  FPN: {OUT_CHANNELS: 64}
  ANCHOR_GENERATOR: {SIZES: [[8], [16], [32], [64], [128]]}
  RPN: {PRE_NMS_TOPK_TRAIN: 200, POST_NMS_TOPK_TRAIN: 100, PRE_NMS_TOPK_TEST: 100, POST_NMS_TOPK_TEST: 50, BATCH_SIZE_PER_IMAGE: 32}
  ROI_HEADS: {NUM_CLASSES: 4, BATCH_SIZE_PER_IMAGE: 64}
  ROI_BOX_HEAD: {FC_DIM: 256}
INPUT: {MIN_SIZE_TRAIN: [96], MAX_SIZE_TRAIN: 128, MIN_SIZE_TEST: 96, MAX_SIZE_TEST: 128}
DATASETS:
  TRAIN_ANNOTATIONS: $WORK/data/annotations/instances_train.json
  TRAIN_IMAGES: $WORK/data/train
  TEST_ANNOTATIONS: $WORK/data/annotations/instances_val.json
  TEST_IMAGES: $WORK/data/val
DATALOADER: {NUM_WORKERS: 1}
NUM_THREADS: 2
SOLVER:
  OPTIMIZER: pmd_lamb
  IMS_PER_BATCH: 8
  IMS_PER_DEVICE: 8
  BASE_LR: 0.01
  MAX_ITER: $ITERS
  WARMUP_ITERS: 20
  WARMUP_FACTOR: 0.01
  CHECKPOINT_PERIOD: 0
  LOG_PERIOD: 1000
TEST: {EVAL_PERIOD: 0}
YAML
cores=$(nproc)
run() {  # $1: label, $2: wait policy ("" = libgomp's default), $3: hogs
  local hogs=() seconds
  for _ in $(seq 1 "$3"); do (while :; do :; done) & hogs+=($!); done
  local start=$(date +%s%N)
  rm -rf "$WORK/run"
  if [ -n "$2" ]; then
    OMP_WAIT_POLICY=$2 "$LARGEDET" train --config "$WORK/learn.yaml" --output "$WORK/run" > "$WORK/log" 2>&1
  else
    env -u OMP_WAIT_POLICY "$LARGEDET" train --config "$WORK/learn.yaml" --output "$WORK/run" > "$WORK/log" 2>&1
  fi
  seconds=$((($(date +%s%N) - start) / 1000000))
  [ ${#hogs[@]} -gt 0 ] && kill "${hogs[@]}" 2> /dev/null && wait "${hogs[@]}" 2> /dev/null || true
  printf '%-40s %6d.%03d s for %d iterations\n' "$1" $((seconds / 1000)) $((seconds % 1000)) "$ITERS"
}
run "alone, spin-waiting (default)" "" 0
run "alone, OMP_WAIT_POLICY=PASSIVE" PASSIVE 0
run "beside 1 busy loop, spin-waiting" "" 1
run "beside 1 busy loop, PASSIVE" PASSIVE 1
run "beside $cores busy loops, spin-waiting" "" "$cores"
run "beside $cores busy loops, PASSIVE" PASSIVE "$cores"
