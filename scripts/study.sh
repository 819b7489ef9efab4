#!/usr/bin/env bash
# The large-batch study (issue 16; docs/large_batch.md, "The study"): the proxy's dataset, then its
# grids, each a `largedet sweep` of configs/study/*.yaml into one sweep directory and one archive
# per part. Rerun the same command to resume: cells finished here or in the committed archive are
# skipped, a stopped cell resumes from its checkpoint. Run from the repository root, after
# `make build`, with nothing else running on the machine (the cells record their wall time).
#
#   scripts/study.sh [data|reference|scaled|ablations|figures|all]  (default: all, in order)
#   scripts/study.sh --smoke PART   4 iterations per cell on 48 images of 64x48 and one thread,
#                                   into study/smoke (checks the plumbing in a few minutes)
#
# data       the proxy's dataset only (every part makes it first when it is missing)
# reference  each optimizer family at the reference batch (2), BASE_LR from three values
# scaled     16x (32) and 64x (128): LSR-SGD, LSR-SGD at half LR, AdamW, LAMB, PMD-LAMB, each
#            from its family's best reference LR by the linear rule; two seeds at 64x
# ablations  at 64x: the sqrt rule (LAMB, PMD-LAMB, AdamW; two seeds), then one factor at a time
#            from PMD-LAMB's best setting (its better LR rule)
# figures    summaries (Markdown, CSV) and the figures, in docs/large_batch/
set -euo pipefail
BUILD=${BUILD:-build}
LARGEDET="$BUILD/bin/largedet"
CONFIGS=configs/study
STUDY=study  # fixed: the recipes name study/data, and the archived records their overrides
RUNS="$STUDY/runs"
DOCS=docs/large_batch
DATA="$STUDY/data"
DATA_ARGS=(--images 1200 --size 128 --val-fraction 0.1667)
EXTRA=()
if [ "${1:-}" = "--smoke" ]; then
  shift
  RUNS="$STUDY/smoke/runs"
  DOCS="$STUDY/smoke/docs"
  DATA="$STUDY/smoke/data"
  DATA_ARGS=(--images 60 --size 64 --val-fraction 0.2)
  EXTRA=(SOLVER.MAX_ITER=4 "SOLVER.STEPS=[2,3]" SOLVER.WARMUP_ITERS=1 SOLVER.LAMB.DECAY_PERIOD=2
    TEST.EVAL_PERIOD=4 SOLVER.CHECKPOINT_PERIOD=2 SOLVER.LOG_PERIOD=1 NUM_THREADS=1
    "INPUT.MIN_SIZE_TRAIN=[48]" INPUT.MAX_SIZE_TRAIN=64 INPUT.MIN_SIZE_TEST=48
    INPUT.MAX_SIZE_TEST=64 DATALOADER.NUM_WORKERS=0
    DATASETS.TRAIN_ANNOTATIONS="$DATA/annotations/instances_train.json"
    DATASETS.TRAIN_IMAGES="$DATA/train"
    DATASETS.TEST_ANNOTATIONS="$DATA/annotations/instances_val.json"
    DATASETS.TEST_IMAGES="$DATA/val")
fi
# shellcheck source=study_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/study_common.sh"
PART=${1:-all}
case "$PART" in data | reference | scaled | ablations | figures | all) ;; *)
  echo "unknown part '$PART': use data, reference, scaled, ablations, figures or all" >&2
  exit 2
  ;;
esac

data() {
  [ -f "$DATA/annotations/instances_val.json" ] && return
  echo "== the proxy's dataset in $DATA"
  "$LARGEDET" synth --out "$DATA" "${DATA_ARGS[@]}" --max-objects 4 --seed 0 >/dev/null
}

# The reference LRs tried per family.
# shellcheck disable=SC2054  # each value is a comma-separated grid for `largedet sweep`
declare -A LRS=([sgd]=0.005,0.01,0.02 [adamw]=0.0001,0.0003,0.001 [lamb]=0.001,0.003,0.01
  [pmd_lamb]=0.001,0.003,0.01)
FAMILIES=(sgd adamw lamb pmd_lamb)

reference() {
  for family in "${FAMILIES[@]}"; do
    sweep core "ref-$family" proxy.yaml SOLVER.OPTIMIZER="$family" SOLVER.BASE_LR="${LRS[$family]}"
  done
}

# The BASE_LR of the family's reference cell with the highest final bbox AP (diverged cells and
# cells without an evaluation lose); fails when none of them finished.
best_lr() { best_value core "ref-$1_" SOLVER.BASE_LR 3; }

half() { python3 -c "import sys; print(float(sys.argv[1]) / 2)" "$1"; }

scaled() {
  local sgd adamw lamb pmd
  sgd=$(best_lr sgd)
  adamw=$(best_lr adamw)
  lamb=$(best_lr lamb)
  pmd=$(best_lr pmd_lamb)
  echo "reference LRs: sgd $sgd, adamw $adamw, lamb $lamb, pmd_lamb $pmd"
  for scale in 16x 64x; do
    local seeds=SEED=1
    [ "$scale" = 64x ] && seeds=SEED=1,2
    sweep core "$scale-lsr_sgd" "b$scale.yaml" SOLVER.OPTIMIZER=sgd SOLVER.BASE_LR="$sgd" "$seeds"
    sweep core "$scale-lsr_sgd_half" "b$scale.yaml" SOLVER.OPTIMIZER=sgd \
      SOLVER.BASE_LR="$(half "$sgd")" "$seeds"
    sweep core "$scale-adamw" "b$scale.yaml" SOLVER.OPTIMIZER=adamw SOLVER.BASE_LR="$adamw" "$seeds"
    sweep core "$scale-lamb" "b$scale.yaml" SOLVER.OPTIMIZER=lamb SOLVER.BASE_LR="$lamb" "$seeds"
    sweep core "$scale-pmd_lamb" "b$scale.yaml" SOLVER.OPTIMIZER=pmd_lamb SOLVER.BASE_LR="$pmd" \
      "$seeds"
  done
}

# The LR rule the ablations start from: `sqrt` when the sqrt-pmd_lamb cells end with a higher mean
# final bbox AP than the core grid's 64x-pmd_lamb cells (a diverged cell or one without an
# evaluation counts 0), else `linear`: a one-factor ablation around a setting that collapses
# shows nothing.
best_rule() {
  "$LARGEDET" sweep --summary "$DOCS/core" >/dev/null
  "$LARGEDET" sweep --summary "$DOCS/ablations" >/dev/null
  python3 - "$DOCS/core/summary.csv" "$DOCS/ablations/summary.csv" <<'EOF'
import csv, sys
rows = [r for path in sys.argv[1:] for r in csv.DictReader(open(path))]
def mean_ap(prefix):
    cells = [r for r in rows if r["cell"].startswith(prefix)]
    if not cells:
        sys.exit(f"no cell {prefix}*: run the core grid and the sqrt ablation first")
    ap = [float(r["bbox/AP"]) if r["diverged"] == "no" and r["bbox/AP"] else 0.0 for r in cells]
    return sum(ap) / len(ap)
print("sqrt" if mean_ap("sqrt-pmd_lamb_SEED-") > mean_ap("64x-pmd_lamb_SEED-") else "linear")
EOF
}

ablations() {
  local lamb pmd adamw rule
  lamb=$(best_lr lamb)
  pmd=$(best_lr pmd_lamb)
  adamw=$(best_lr adamw)
  # The square-root rule (LR x sqrt(64) = 8x the reference's instead of 64x), two seeds each like
  # the core grid's 64x cells; AdamW too, for AGVM's finding that AdamW beats PMD-LAMB at 1.5K.
  sweep ablations sqrt-lamb b64x.yaml SOLVER.OPTIMIZER=lamb SOLVER.BASE_LR="$lamb" \
    SOLVER.SCALING_RULE=sqrt SEED=1,2
  sweep ablations sqrt-pmd_lamb b64x.yaml SOLVER.OPTIMIZER=pmd_lamb SOLVER.BASE_LR="$pmd" \
    SOLVER.SCALING_RULE=sqrt SEED=1,2
  sweep ablations sqrt-adamw b64x.yaml SOLVER.OPTIMIZER=adamw SOLVER.BASE_LR="$adamw" \
    SOLVER.SCALING_RULE=sqrt SEED=1,2
  rule=$(best_rule)
  echo "the ablations start from PMD-LAMB, BASE_LR $pmd, SCALING_RULE $rule"
  local base=(SOLVER.OPTIMIZER=pmd_lamb SOLVER.BASE_LR="$pmd" SOLVER.SCALING_RULE="$rule" SEED=1)
  sweep ablations cosine-pmd_lamb b64x.yaml "${base[@]}" SOLVER.LAMB.DECAY_SHAPE=cosine
  sweep ablations m_only-pmd_lamb b64x.yaml "${base[@]}" SOLVER.LAMB.DECAY_SECOND_MOMENT=false
  sweep ablations pmd_lamb b64x.yaml "${base[@]}" SOLVER.LAMB.BIAS_CORRECTION=global,none
  # T at 1/14 and 1/3.5 of the 200-iteration run (the base is 1/7: 29).
  sweep ablations pmd_lamb b64x.yaml "${base[@]}" SOLVER.LAMB.DECAY_PERIOD=14,57
  # BN over 2 images per forward (64 micro-batches: per-device BN on a GPU holding 2) and 16,
  # against the base's 128 (SyncBN over the whole step).
  sweep ablations pmd_lamb b64x.yaml "${base[@]}" SOLVER.IMS_PER_DEVICE=2,16
  # The paper's remark on BN statistics: 1.4x the iterations against precise BN.
  sweep ablations 1.4x-pmd_lamb b64x_1.4x.yaml "${base[@]}"
  sweep ablations precise_bn-pmd_lamb b64x.yaml "${base[@]}" TEST.PRECISE_BN.ENABLED=true \
    TEST.PRECISE_BN.NUM_ITER=20
}

figures() {
  mkdir -p "$DOCS"
  for part in core ablations; do
    [ -d "$DOCS/$part" ] && "$LARGEDET" sweep --summary "$DOCS/$part"
  done
  "$LARGEDET" plot --ap-vs-batch "$DOCS/core" --series SOLVER.OPTIMIZER,SOLVER.BASE_LR \
    -o "$DOCS/ap_vs_batch.png"
  loss_figure "$DOCS/loss_64x.png" "$DOCS"/core/64x-{lsr_sgd,adamw,lamb,pmd_lamb}_SEED-1
  loss_figure "$DOCS/loss_64x_sqrt.png" "$DOCS"/ablations/sqrt-{lamb,pmd_lamb,adamw}_SEED-1
  echo "summaries and figures in $DOCS"
}

data
case "$PART" in
  data) ;;
  reference) reference ;;
  scaled) scaled ;;
  ablations) ablations ;;
  figures) figures ;;
  all)
    reference
    scaled
    ablations
    figures
    ;;
esac
