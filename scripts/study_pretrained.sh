#!/usr/bin/env bash
# The pretrained large-batch study (issue 29; docs/large_batch.md, "The pretrained study"): a
# backbone pretrained on another task, a harder detection proxy, AGVM beside the paper's methods,
# each method's LR searched at its batch. Every grid is a resumable `largedet sweep` of
# configs/study/pretrained/*.yaml into study/pt_runs/{core,long} and the archive
# docs/large_batch_pretrained/{core,long} (committed: a fresh clone skips archived cells); core
# holds every batch (cells ref-*, 64x-*, 256x-*), so that its summary compares them. Rerun the same
# command to resume. Run from the repository root after `make build`, with nothing else running
# (cells record their wall time). The from-scratch study (scripts/study.sh) is left as it was.
#
#   scripts/study_pretrained.sh [PART]       PART: data, pretrain, reference, scaled, long, edges,
#                                              bn, schedule, regularise, figures or all (the
#                                              default)
#   scripts/study_pretrained.sh --smoke PART   4 iterations per cell, tiny data, one thread, two
#                                              families and two methods (both rules, AGVM on and off)
#
# data       the detection set (study/pt_data) and the classification set (study/pt_cls)
# pretrain   `largedet pretrain` of the proxy's ResNet on the classification set
#            (study/pt_pretrain/backbone.safetensors, loaded by every cell through MODEL.WEIGHTS)
# reference  batch 2: SGD, AdamW, LAMB, PMD-LAMB at 3 LRs (seed 1), the best LR on seeds 2 and 3
# scaled     64x (128) then 256x (512): LSR-SGD, SGD+AGVM, AdamW, AdamW+AGVM, LAMB, PMD-LAMB,
#            PMD-LAMB+AGVM, each at 3 LRs around its rule's value from its family's best
#            reference LR (seed 1; 8x lower, twice at most, while every LR diverges), then its
#            best LR on seeds 2 and 3
# edges      the LR search continued beyond the grid (seed 1, up to 3 LRs out) for each method, at
#            the reference and at 64x, whose best LR is its grid's lowest or highest; then the
#            seeds 2 and 3 of a best found there
# long       the three best methods at 64x (mean AP over seeds, edges included) at 1.4x the
#            epochs, 3 seeds
# bn         the BN ablation both ways: the best 64x method with FrozenBN instead of SyncBN (3
#            seeds, paired with its SyncBN cells), its family's reference with SyncBN over the
#            reference's 2 images instead of FrozenBN (seed 1)
# schedule   the best method at 64x and its family at the reference batch, each at its best LR,
#            with every part of the schedule 2x longer (3 seeds): does the gap shrink with length?
#            Then the 64x method 3x and 4x longer (3 seeds each): how many epochs does 64x need
#            to reach the reference's 12-epoch AP?
# regularise the schedule's 2x cells (both batches end at the same training loss there, 64x lower
#            in AP) with a regulariser each: scale jitter (the shorter side uniform in [64, 128]
#            instead of 96), weight decay 0.05 instead of 1e-4, or detectron2's default random
#            crop (relative_range 0.9); the 64x method on 3 seeds, its family's reference on seed
#            1: does any close the large batch's generalization gap? Then weight decay scaled so
#            that it decays as much over the 64x run as 0.05 over the reference's, at 2x and 1x
#            the epochs (and the reference at 1x with 0.05)
# figures    summaries and figures in docs/large_batch_pretrained/
set -euo pipefail
BUILD=${BUILD:-build}
LARGEDET="$BUILD/bin/largedet"
CONFIGS=configs/study/pretrained
STUDY=study  # fixed: the recipes name study/pt_data and study/pt_pretrain
RUNS="$STUDY/pt_runs"
DOCS=docs/large_batch_pretrained
DATA="$STUDY/pt_data"
CLS="$STUDY/pt_cls"
WEIGHTS="$STUDY/pt_pretrain"
DATA_ARGS=(--images 2400 --size 128 --val-fraction 0.125)
CLS_ARGS=(--images 8000 --size 64)
PRETRAIN_ARGS=(--epochs 20)
EXTRA=()
SMOKE_BATCH=()  # the smoke test's batch size; the recipes' otherwise
# Scale jitter: the shorter side (96 in every recipe, images of 128 x 96) uniform in [64, 128],
# the longer side's cap raised with it, as detectron2's range sampling does.
JITTER=("INPUT.MIN_SIZE_TRAIN=[64,128]" INPUT.MIN_SIZE_TRAIN_SAMPLING=range INPUT.MAX_SIZE_TRAIN=171)
SMOKE=
if [ "${1:-}" = "--smoke" ]; then
  shift
  SMOKE=1
  RUNS="$STUDY/smoke_pt/runs"
  DOCS="$STUDY/smoke_pt/docs"
  DATA="$STUDY/smoke_pt/data"
  CLS="$STUDY/smoke_pt/cls"
  WEIGHTS="$STUDY/smoke_pt/pretrain"
  DATA_ARGS=(--images 60 --size 64 --val-fraction 0.2)
  CLS_ARGS=(--images 64 --size 32)
  PRETRAIN_ARGS=(--epochs 1 NUM_THREADS=1)
  # Every cell shortened; the large batches keep their two micro-batches (AGVM's halves).
  EXTRA=(SOLVER.MAX_ITER=4 "SOLVER.STEPS=[2,3]" SOLVER.WARMUP_ITERS=1 SOLVER.LAMB.DECAY_PERIOD=2
    SOLVER.AGVM.START_ITER=1 SOLVER.AGVM.INTERVAL=1 TEST.EVAL_PERIOD=4
    SOLVER.CHECKPOINT_PERIOD=2 SOLVER.LOG_PERIOD=1 NUM_THREADS=1
    "INPUT.MIN_SIZE_TRAIN=[48]" INPUT.MAX_SIZE_TRAIN=64 INPUT.MIN_SIZE_TEST=48
    INPUT.MAX_SIZE_TEST=64 DATALOADER.NUM_WORKERS=0
    MODEL.WEIGHTS="$WEIGHTS/backbone.safetensors"
    DATASETS.TRAIN_ANNOTATIONS="$DATA/annotations/instances_train.json"
    DATASETS.TRAIN_IMAGES="$DATA/train"
    DATASETS.TEST_ANNOTATIONS="$DATA/annotations/instances_val.json"
    DATASETS.TEST_IMAGES="$DATA/val")
  SMOKE_BATCH=(SOLVER.IMS_PER_BATCH=4 SOLVER.IMS_PER_DEVICE=2)
  JITTER=("INPUT.MIN_SIZE_TRAIN=[32,64]" INPUT.MIN_SIZE_TRAIN_SAMPLING=range INPUT.MAX_SIZE_TRAIN=86)
fi
# shellcheck source=study_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/study_common.sh"
PART=${1:-all}
case "$PART" in
data | pretrain | reference | scaled | long | edges | bn | schedule | regularise | figures | all) ;;
*)
  echo "unknown part '$PART': use data, pretrain, reference, scaled, long, edges, bn, schedule," \
    "regularise, figures or all" >&2
  exit 2
  ;;
esac

data() {
  if [ ! -f "$DATA/annotations/instances_val.json" ]; then
    echo "== the detection set in $DATA"
    "$LARGEDET" synth --out "$DATA" "${DATA_ARGS[@]}" --classes 8 --max-objects 8 --clutter 4 \
      --occlusion --min-scale 0.06 --max-scale 0.6 --log-scale --seed 1 >/dev/null
  fi
  if [ ! -d "$CLS/val" ]; then
    echo "== the pretraining set in $CLS"
    "$LARGEDET" synth --task classify --out "$CLS" "${CLS_ARGS[@]}" --seed 2 >/dev/null
  fi
}

# The weights every cell starts from are not committed; their sha256 and the pretraining's
# metrics are (DOCS/pretrain/), so that a fresh clone that pretrains again says whether its
# weights are the ones the archived cells used.
pretrain() {
  if [ ! -f "$WEIGHTS/backbone.safetensors" ]; then
    echo "== pretraining the proxy's backbone into $WEIGHTS"
    "$LARGEDET" pretrain --config "$CONFIGS/proxy.yaml" --data "$CLS" --output "$WEIGHTS" \
      "${PRETRAIN_ARGS[@]}"
  fi
  local record="$DOCS/pretrain" sum
  sum=$(sha256sum "$WEIGHTS/backbone.safetensors" | cut -d' ' -f1)
  if [ -f "$record/backbone.sha256" ]; then
    [ "$(cat "$record/backbone.sha256")" = "$sum" ] ||
      echo "warning: $WEIGHTS/backbone.safetensors differs from the weights the archived cells" \
        "started from (sha256 $(cat "$record/backbone.sha256")): new cells are not comparable"
  else
    mkdir -p "$record"
    echo "$sum" >"$record/backbone.sha256"
    cp "$WEIGHTS/metrics.jsonl" "$record/metrics.jsonl"
  fi
}

# The smoke test runs every batch as 4 images in two micro-batches.
# shellcheck disable=SC2054  # each value is a comma-separated grid for `largedet sweep`
declare -A LRS=([sgd]=0.005,0.01,0.02 [adamw]=0.0001,0.0003,0.001 [lamb]=0.001,0.003,0.01
  [pmd_lamb]=0.001,0.003,0.01)
FAMILIES=(sgd adamw lamb pmd_lamb)
SEEDS_LEFT=SEED=2,3

reference() {
  local family best
  for family in "${FAMILIES[@]}"; do
    sweep core "ref-$family" proxy.yaml SOLVER.OPTIMIZER="$family" \
      SOLVER.BASE_LR="${LRS[$family]}" SEED=1 "${SMOKE_BATCH[@]}"
    best=$(best_value core "ref-${family}_" SOLVER.BASE_LR 3)
    sweep core "ref-$family-best" proxy.yaml SOLVER.OPTIMIZER="$family" \
      SOLVER.BASE_LR="$best" "$SEEDS_LEFT" "${SMOKE_BATCH[@]}"
  done
}

# Each method: its optimizer, its family's reference LR, its rule, AGVM on or off.
METHODS=(lsr_sgd sgd_agvm adamw adamw_agvm lamb pmd_lamb pmd_lamb_agvm)
declare -A FAMILY=([lsr_sgd]=sgd [sgd_agvm]=sgd [adamw]=adamw [adamw_agvm]=adamw [lamb]=lamb
  [pmd_lamb]=pmd_lamb [pmd_lamb_agvm]=pmd_lamb)
declare -A RULE=([lsr_sgd]=linear [sgd_agvm]=linear [adamw]=sqrt [adamw_agvm]=sqrt [lamb]=sqrt
  [pmd_lamb]=sqrt [pmd_lamb_agvm]=sqrt)
if [ -n "$SMOKE" ]; then  # every code path (both rules, AGVM on and off) in fewer cells
  FAMILIES=(sgd pmd_lamb)
  METHODS=(lsr_sgd pmd_lamb_agvm)
fi

# set_aside_other_lr PART CELL_PREFIX LR: moves the cells PREFIX* that ran another SOLVER.BASE_LR
# than LR (from RUNS/PART and DOCS/PART) to STUDY/superseded/, saying so. A grid resumed after a
# stop can change a method's best LR after its seeds ran at the old one; the sweep refuses a cell
# directory with other overrides, and the old seeds must not be averaged with the new best.
set_aside_other_lr() {
  local part=$1 prefix=$2 lr=$3 where dir
  for where in "$RUNS/$part" "$DOCS/$part"; do
    for dir in "$where/$prefix"*; do
      [ -f "$dir/sweep.json" ] || continue
      if ! python3 -c 'import json, sys; fixed = json.load(open(sys.argv[1]))["fixed"]
sys.exit(0 if "SOLVER.BASE_LR=" + sys.argv[2] in fixed else 1)' "$dir/sweep.json" "$lr"; then
        mkdir -p "$STUDY/superseded/$where"
        echo "$dir ran another LR than the best, $lr: moved to $STUDY/superseded/$where"
        mv "$dir" "$STUDY/superseded/$where/$(basename "$dir").$(date +%s)"
      fi
    done
  done
}

# all_diverged ARCHIVE_PART CELL_PREFIX LRS: whether the archived cells PREFIX<lr> of the comma-
# separated LRS all diverged (this grid's cells only: a lower grid's, archived by an earlier run,
# must not end the search before this grid's stopped cells resume).
all_diverged() {
  "$LARGEDET" sweep --summary "$DOCS/$1" >/dev/null
  python3 - "$DOCS/$1/summary.csv" "$2" "$3" <<'PY'
import csv, sys
path, prefix, lrs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
rows = {r["cell"]: r for r in csv.DictReader(open(path))}
cells = [rows.get(prefix + lr) for lr in lrs]
sys.exit(0 if all(c is not None and c["diverged"] == "yes" for c in cells) else 1)
PY
}

# lr_values REFERENCE_LR RULE SCALE [DIVISOR]: three LRs around the rule's value at SCALE x the
# reference batch, divided by DIVISOR (default 1): x1/4, x1/2, x1 for the linear rule (the
# from-scratch study saw it overshoot at 64x), x1/2, x1, x2 for the square-root rule.
lr_values() {
  python3 - "$@" <<'PY'
import math, sys
lr, rule, scale = float(sys.argv[1]), sys.argv[2], float(sys.argv[3])
divisor = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
value = lr * (scale if rule == "linear" else math.sqrt(scale)) / divisor
mults = (0.25, 0.5, 1.0) if rule == "linear" else (0.5, 1.0, 2.0)
print(",".join(f"{value * m:.6g}" for m in mults))
PY
}

method_overrides() {  # METHOD: optimizer and AGVM
  local agvm=false
  [[ $1 == *_agvm ]] && agvm=true
  echo SOLVER.OPTIMIZER="${FAMILY[$1]}" SOLVER.AGVM.ENABLED=$agvm
}

scaled() {
  local scale factor method ref best divisor lrs
  for scale in 64x 256x; do
    factor=${scale%x}
    for method in "${METHODS[@]}"; do
      ref=$(best_value core "ref-${FAMILY[$method]}_" SOLVER.BASE_LR 3)
      # When every LR of a grid diverges, the next grid is 8x lower (twice at most): a rule that
      # overshoots is a finding, but the method's best LR at this batch is the one to compare.
      for divisor in 1 8 64; do
        lrs=$(lr_values "$ref" "${RULE[$method]}" "$factor" "$divisor")
        # shellcheck disable=SC2046
        sweep core "$scale-$method" "b$scale.yaml" $(method_overrides "$method") \
          SOLVER.BASE_LR="$lrs" SEED=1 "${SMOKE_BATCH[@]}"
        all_diverged core "$scale-${method}_BASE_LR-" "$lrs" || break
        echo "every LR of $method's grid diverged at $scale: trying LRs 8x lower"
      done
      if best=$(best_value core "$scale-${method}_BASE_LR-" SOLVER.BASE_LR 3); then
        set_aside_other_lr core "$scale-$method-best_" "$best"
        # shellcheck disable=SC2046
        sweep core "$scale-$method-best" "b$scale.yaml" $(method_overrides "$method") \
          SOLVER.BASE_LR="$best" "$SEEDS_LEFT" "${SMOKE_BATCH[@]}"
      elif [ $? -eq 3 ]; then
        echo "every LR of $method diverged at $scale: no more seeds (its result is divergence)"
      else
        exit 1
      fi
    done
  done
}

# searched_summaries: the summary.csv of core and of edges (every grid's LR search), refreshed.
searched_summaries() {
  local part
  for part in core edges; do
    [ -d "$DOCS/$part" ] || continue
    "$LARGEDET" sweep --summary "$DOCS/$part" >/dev/null
    echo "$DOCS/$part/summary.csv"
  done
}

# ranked_methods: the methods at 64x, best first, one line each, "METHOD LR MEAN": LR the best
# seed-1 LR over core's grids and the LRs edges tried beyond them, MEAN the mean final AP of its
# three seeds (seed 1 and the -best seeds of the same archive part). A method whose every LR
# diverged is left out.
ranked_methods() {
  local -a summaries
  mapfile -t summaries < <(searched_summaries)
  python3 - "${#METHODS[@]}" "${METHODS[@]}" "${summaries[@]}" <<'PY'
import csv, statistics, sys
n = int(sys.argv[1])
methods, paths = sys.argv[2:2 + n], sys.argv[2 + n:]
rows = [(p, r) for p in paths for r in csv.DictReader(open(p))]
def ap(r):
    return float(r["bbox/AP"]) if r["diverged"] == "no" and r["bbox/AP"] else 0.0
ranked = []
for m in methods:
    prefix = f"64x-{m}_BASE_LR-"
    seed1 = [(p, r) for p, r in rows if r["cell"].startswith(prefix)]
    if not seed1:
        sys.exit(f"no 64x cells of {m}: run the scaled part first")
    if all(r["diverged"] == "yes" for _, r in seed1):
        continue
    path, best = max(seed1, key=lambda pr: ap(pr[1]))
    rest = [ap(r) for p, r in rows if p == path and r["cell"].startswith(f"64x-{m}-best_")]
    ranked.append((statistics.mean([ap(best)] + rest), m, best["cell"][len(prefix):]))
for mean, m, lr in sorted(ranked, reverse=True):
    print(m, lr, f"{mean:.4f}")
PY
}

# The three best methods at 64x (ranked_methods) at 1.4x the epochs on 3 seeds.
long() {
  local ranked method lr
  ranked=$(ranked_methods | head -3)
  while read -r method lr _; do
    [ -n "$method" ] || continue
    # shellcheck disable=SC2046
    sweep long "1.4x-$method" b64x_1.4x.yaml $(method_overrides "$method") \
      SOLVER.BASE_LR="$lr" SEED=1,2,3 "${SMOKE_BATCH[@]}" </dev/null
  done <<<"$ranked"
}

# edge_lr CELL_PREFIX next|best: over the finished seed-1 cells PREFIX<lr> of core and edges (every
# grid a method ran, and the LRs tried beyond it), `next`: when the best is at the lowest or highest
# LR tried, the next LR out in the ratio of the two nearest (two significant digits); `best`: the
# best LR when its cell is one of edges'; `lr`: the best LR. Nothing otherwise, when every cell
# diverged, or (but for `lr`) when the best AP is 0 or shared by two LRs.
edge_lr() {
  local -a summaries
  mapfile -t summaries < <(searched_summaries)
  python3 - "$1" "$2" "${summaries[@]}" <<'PY'
import csv, sys
prefix, mode, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
cells, where = {}, {}
for path in paths:
    for r in csv.DictReader(open(path)):
        value = r["cell"][len(prefix):]
        if r["cell"].startswith(prefix) and value.replace(".", "").isdigit():
            ok = r["diverged"] == "no" and r["bbox/AP"]
            cells[float(value)] = float(r["bbox/AP"]) if ok else -1.0
            where[float(value)] = (path, value)
lrs = sorted(cells)
if len(lrs) < 2 or max(cells.values()) < 0:
    sys.exit(0)
best = max(lrs, key=cells.get)
if mode == "lr":
    print(where[best][1])
elif cells[best] <= 0 or list(cells.values()).count(cells[best]) > 1:
    pass  # no AP, or a tie for the best: no edge to search beyond
elif mode == "best":
    if "/edges/" in where[best][0]:
        print(where[best][1])
elif best == lrs[-1]:
    print(f"{best * best / lrs[-2]:.2g}")
elif best == lrs[0]:
    print(f"{best * best / lrs[1]:.2g}")
PY
}

# extend PREFIX RECIPE OVERRIDES...: while the best of the seed-1 cells PREFIX_BASE_LR-<lr> is at
# the edge of the LRs tried, one more LR out (three at most), into archive part edges; then, when
# the best is one of those, its seeds 2 and 3 (cells PREFIX-best_SEED-2, -3 in edges).
extend() {
  local prefix=$1 recipe=$2 lr
  shift 2
  for _ in 1 2 3; do
    lr=$(edge_lr "${prefix}_BASE_LR-" next)
    [ -n "$lr" ] || break
    sweep edges "${prefix}_BASE_LR-$lr" "$recipe" "$@" SOLVER.BASE_LR="$lr" SEED=1 "${SMOKE_BATCH[@]}"
  done
  lr=$(edge_lr "${prefix}_BASE_LR-" best)
  [ -z "$lr" ] || sweep edges "$prefix-best" "$recipe" "$@" SOLVER.BASE_LR="$lr" "$SEEDS_LEFT" "${SMOKE_BATCH[@]}"
}

# Archive part edges: the LR search continued past the grid's edge for each family at the reference
# and each method at 64x whose best LR is its grid's lowest or highest (cells named as in core).
# Core's grids and seeds are left as they are; the verdicts read both (docs/large_batch.md).
edges() {
  local family method
  for family in "${FAMILIES[@]}"; do
    extend "ref-$family" proxy.yaml SOLVER.OPTIMIZER="$family"
  done
  for method in "${METHODS[@]}"; do
    # shellcheck disable=SC2046
    extend "64x-$method" b64x.yaml $(method_overrides "$method")
  done
}

# best_pair: sets BEST_METHOD (the best method at 64x), BEST_LR (its best LR there) and REF_LR
# (its family's best LR at the reference batch); fails, saying so, when every method diverged.
best_pair() {
  read -r BEST_METHOD BEST_LR _ <<<"$(ranked_methods | head -1)"
  if [ -z "$BEST_METHOD" ]; then
    echo "every method diverged at 64x: nothing to compare with the reference"
    return 1
  fi
  REF_LR=$(edge_lr "ref-${FAMILY[$BEST_METHOD]}_BASE_LR-" lr)
}

# Archive part bn: the best 64x method at its best LR with FrozenBN in the backbone (cells
# 64x-METHOD-frozen_bn_SEED-1..3, against core's SyncBN cells of the same seeds), and its family's
# reference at its best LR with SyncBN over its 2 images (cell ref-FAMILY-sync_bn).
bn() {
  best_pair || return 0
  local method=$BEST_METHOD ref=$REF_LR large=$BEST_LR
  # shellcheck disable=SC2046
  sweep bn "64x-$method-frozen_bn" b64x.yaml $(method_overrides "$method") \
    SOLVER.BASE_LR="$large" MODEL.RESNETS.NORM=FrozenBN SEED=1,2,3 "${SMOKE_BATCH[@]}"
  sweep bn "ref-${FAMILY[$method]}-sync_bn" proxy.yaml SOLVER.OPTIMIZER="${FAMILY[$method]}" \
    SOLVER.BASE_LR="$ref" MODEL.RESNETS.NORM=SyncBN SEED=1 "${SMOKE_BATCH[@]}"
}

# The best 64x method and its family's reference, each at its best LR, 2x the epochs on 3 seeds
# (archive part long: cells 2x-ref-FAMILY_SEED-n and 2x-METHOD_SEED-n). With the equal-epoch cells
# of core and the 1.4x cells: AP at 1x, 1.4x and 2x the epochs at both batches.
schedule() {
  best_pair || return 0
  local method=$BEST_METHOD ref=$REF_LR large=$BEST_LR
  sweep long "2x-ref-${FAMILY[$method]}" proxy_2x.yaml SOLVER.OPTIMIZER="${FAMILY[$method]}" \
    SOLVER.BASE_LR="$ref" SEED=1,2,3 "${SMOKE_BATCH[@]}"
  # shellcheck disable=SC2046
  sweep long "2x-$method" b64x_2x.yaml $(method_overrides "$method") SOLVER.BASE_LR="$large" \
    SEED=1,2,3 "${SMOKE_BATCH[@]}"
  local times
  for times in 3x 4x; do
    # shellcheck disable=SC2046
    sweep long "$times-$method" "b64x_$times.yaml" $(method_overrides "$method") \
      SOLVER.BASE_LR="$large" SEED=1,2,3 "${SMOKE_BATCH[@]}"
  done
}

# Archive part regularise: the schedule's 2x cells with scale jitter (cells 2x-jitter-METHOD_SEED-n
# and 2x-ref-jitter-FAMILY), with weight decay 0.05 (2x-wd-..., 2x-ref-wd-...) and with a
# random crop (2x-crop-..., 2x-ref-crop-...).
regularise() {
  best_pair || return 0
  local method=$BEST_METHOD ref=$REF_LR large=$BEST_LR
  local name at
  local -a with
  for at in 64x ref; do  # the 64x cells of both first: they answer the question
    for name in jitter wd crop; do
      case $name in
        jitter) with=("${JITTER[@]}") ;;
        wd) with=(SOLVER.WEIGHT_DECAY=0.05) ;;
        crop) with=(INPUT.CROP.ENABLED=true) ;;  # TYPE relative_range, SIZE [0.9, 0.9]
      esac
      if [ $at = 64x ]; then
        # shellcheck disable=SC2046
        sweep regularise "2x-$name-$method" b64x_2x.yaml $(method_overrides "$method") \
          SOLVER.BASE_LR="$large" "${with[@]}" SEED=1,2,3 "${SMOKE_BATCH[@]}"
      else
        sweep regularise "2x-ref-$name-${FAMILY[$method]}" proxy_2x.yaml \
          SOLVER.OPTIMIZER="${FAMILY[$method]}" SOLVER.BASE_LR="$ref" "${with[@]}" SEED=1 "${SMOKE_BATCH[@]}"
      fi
    done
  done
  # Decoupled weight decay (AdamW's) shrinks the weights by LR x WEIGHT_DECAY each step: in the
  # same epochs the 64x run makes 1/64 the steps at its own LR, so the same WEIGHT_DECAY decays
  # far less over the run (1/8 for AdamW's square-root rule). Scaled by 64 x reference LR / 64x
  # LR, the decay over the run is the reference's (the weights' averaging timescale the same
  # fraction of the run: Wang and Aitchison, 2024), at 2x the epochs and at the reference's.
  local decay
  decay=$(python3 -c "print(f'{0.05 * 64 * $ref / $large:.4g}')")
  # shellcheck disable=SC2046
  sweep regularise "2x-wd_scaled-$method" b64x_2x.yaml $(method_overrides "$method") \
    SOLVER.BASE_LR="$large" SOLVER.WEIGHT_DECAY="$decay" SEED=1,2,3 "${SMOKE_BATCH[@]}"
  # shellcheck disable=SC2046
  sweep regularise "64x-wd_scaled-$method" b64x.yaml $(method_overrides "$method") \
    SOLVER.BASE_LR="$large" SOLVER.WEIGHT_DECAY="$decay" SEED=1,2,3 "${SMOKE_BATCH[@]}"
  sweep regularise "ref-wd-${FAMILY[$method]}" proxy.yaml SOLVER.OPTIMIZER="${FAMILY[$method]}" \
    SOLVER.BASE_LR="$ref" SOLVER.WEIGHT_DECAY=0.05 SEED=1 "${SMOKE_BATCH[@]}"
}

# best_cells SCALE [SUFFIX]: the seed-1 cell at the best LR of each method at SCALE (among the
# methods whose name ends with SUFFIX; core's grids and the LRs edges tried beyond them), as
# archive paths, one per line; none for a method whose every LR diverged.
best_cells() {
  local method lr part
  for method in "${METHODS[@]}"; do
    [[ $method == *"${2:-}" ]] || continue
    lr=$(edge_lr "$1-${method}_BASE_LR-" lr)
    for part in core edges; do
      [ -z "$lr" ] || [ ! -d "$DOCS/$part/$1-${method}_BASE_LR-$lr" ] ||
        echo "$DOCS/$part/$1-${method}_BASE_LR-$lr"
    done
  done
}

# The summaries; AP against batch (each method at its best LR over its seeds), the losses of each
# method's best cell at 64x and 256x, and AGVM's estimates in the AGVM methods' best cells at 64x.
figures() {
  local part scale
  local -a cells
  for part in core long edges bn regularise; do
    [ -d "$DOCS/$part" ] && "$LARGEDET" sweep --summary "$DOCS/$part"
  done
  local -a pooled=(--ap-vs-batch "$DOCS/core")
  [ ! -d "$DOCS/edges" ] || pooled+=(--ap-vs-batch "$DOCS/edges")
  "$LARGEDET" plot "${pooled[@]}" --series SOLVER.OPTIMIZER,SOLVER.AGVM.ENABLED \
    --best SOLVER.BASE_LR -o "$DOCS/ap_vs_batch.png"
  for scale in 64x 256x; do
    mapfile -t cells < <(best_cells "$scale")
    loss_figure "$DOCS/loss_$scale.png" ${cells[@]+"${cells[@]}"}
  done
  mapfile -t cells < <(best_cells 64x _agvm)
  [ ${#cells[@]} -eq 0 ] || "$LARGEDET" plot --scalars 'agvm/*/variance' --scalars 'agvm/*/factor' \
    "${cells[@]}" -o "$DOCS/agvm_64x.png"
  # The schedule's 64x cells (seed 1): loss and AP against iteration at 2x, 3x and 4x the epochs.
  cells=()
  local times
  if best_pair >/dev/null; then
    for times in 2x 3x 4x; do
      [ ! -d "$DOCS/long/$times-${BEST_METHOD}_SEED-1" ] || cells+=("$DOCS/long/$times-${BEST_METHOD}_SEED-1")
    done
  fi
  [ ${#cells[@]} -eq 0 ] || "$LARGEDET" plot --scalars total_loss --scalars bbox/AP "${cells[@]}" \
    -o "$DOCS/schedule_64x.png"
  # The regularisers' 64x cells at 2x the epochs (seed 1) beside the plain one.
  cells=()
  local name
  if best_pair >/dev/null; then
    for name in long/2x regularise/2x-jitter regularise/2x-crop regularise/2x-wd \
      regularise/2x-wd_scaled; do
      [ ! -d "$DOCS/$name-${BEST_METHOD}_SEED-1" ] || cells+=("$DOCS/$name-${BEST_METHOD}_SEED-1")
    done
  fi
  [ ${#cells[@]} -le 1 ] || "$LARGEDET" plot --scalars total_loss --scalars bbox/AP "${cells[@]}" \
    -o "$DOCS/regularise_64x.png"
  echo "summaries and figures in $DOCS"
}

data
case "$PART" in
  data) ;;
  pretrain) pretrain ;;
  reference) pretrain && reference ;;
  scaled) pretrain && scaled ;;
  edges) pretrain && edges ;;
  long) pretrain && long ;;
  bn) pretrain && bn ;;
  schedule) pretrain && schedule ;;
  regularise) pretrain && regularise ;;
  figures) figures ;;
  all)
    pretrain
    reference
    scaled
    edges
    long
    bn
    schedule
    regularise
    figures
    ;;
esac
