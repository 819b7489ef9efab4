#!/bin/sh
# scripts/study_pretrained.sh --smoke: every part of the pretrained study (data, pretraining,
# reference, scaled with AGVM on and off, long, edges, bn, schedule at 2x, 3x and 4x, regularise,
# figures and their PNGs) at 4 iterations per cell on tiny data, in a scratch directory laid out
# like the repository; then a rerun, which must train nothing (every cell is in the archive), and
# a part name it must refuse.
# Usage: study_pretrained_smoke.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -eu
src=$1
build=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
ln -s "$src/configs" "$work/configs"
cd "$work"
BUILD="$build" sh -c "bash '$src/scripts/study_pretrained.sh' --smoke all" >all.log 2>&1 || {
  tail -40 all.log
  echo "FAILED: scripts/study_pretrained.sh --smoke all"
  exit 1
}
smoke=study/smoke_pt
for f in pretrain/backbone.safetensors docs/core/summary.csv docs/long/summary.csv \
  docs/ap_vs_batch.png docs/loss_64x.png docs/loss_256x.png docs/agvm_64x.png \
  docs/schedule_64x.png docs/regularise_64x.png; do
  [ -s "$smoke/$f" ] || { echo "FAILED: $smoke/$f is missing"; exit 1; }
done
# Reference: 2 families x (3 LRs + 2 seeds); 64x and 256x: 2 methods x (3 LRs + 2 seeds), plus 3
# LRs 8x lower per grid whose every LR diverged (twice at most), less the seeds of a method whose
# every LR diverged; long: 2 methods x 3 seeds, and the schedule's cells (2x: 2 x 3 seeds; the
# 64x method at 3x and 4x: 2 x 3 seeds).
core=$(($(wc -l <"$smoke/docs/core/summary.csv") - 1))
long=$(($(wc -l <"$smoke/docs/long/summary.csv") - 1))
[ "$core" -ge 26 ] && [ "$core" -le 54 ] && [ "$long" -eq 18 ] || {
  echo "FAILED: $core core cells (want 26-54) and $long long cells (want 18)"
  exit 1
}
for prefix in ref-sgd_BASE_LR- ref-pmd_lamb-best_SEED- 64x-lsr_sgd_BASE_LR- 64x-pmd_lamb_agvm_BASE_LR- \
  256x-pmd_lamb_agvm_BASE_LR-; do
  grep -q "^$prefix" "$smoke/docs/core/summary.csv" || { echo "FAILED: no $prefix* cell"; exit 1; }
done
[ "$(grep -c "^2x-ref-[a-z_]*_SEED-" "$smoke/docs/long/summary.csv")" -eq 3 ] &&
  [ "$(grep -Ec "^2x-(lsr_sgd|pmd_lamb_agvm)_SEED-" "$smoke/docs/long/summary.csv")" -eq 3 ] ||
  { echo "FAILED: no 2x cells of the schedule part"; exit 1; }
[ "$(grep -Ec "^[34]x-(lsr_sgd|pmd_lamb_agvm)_SEED-" "$smoke/docs/long/summary.csv")" -eq 6 ] ||
  { echo "FAILED: no 3x and 4x cells of the schedule part"; exit 1; }
# Each grid whose best LR is at its edge gets cells beyond it (archive part edges), one per LR
# tried, and two more (seeds 2 and 3) when the best is one of them.
lrs=$(grep -c "^== edges: .*_BASE_LR-" all.log || true)
bests=$(grep -c "^== edges: .*-best " all.log || true)
wanted=$((lrs + 2 * bests))
edges=0
[ ! -f "$smoke/docs/edges/summary.csv" ] || edges=$(($(wc -l <"$smoke/docs/edges/summary.csv") - 1))
[ "$edges" -eq "$wanted" ] && ! grep -v "^cell," "$smoke/docs/edges/summary.csv" 2>/dev/null |
  grep -vEq "^(ref|64x)-[a-z_]+(_BASE_LR-[0-9.e-]+|-best_SEED-[23])," ||
  { echo "FAILED: $edges edge cells where the log says $wanted"; exit 1; }
# The BN ablation: the best 64x method with FrozenBN on 3 seeds, its reference with SyncBN.
# Regularise: 3 regularisers x (3 seeds at 64x + 1 reference), then the scaled weight decay at 2x
# and 1x (3 seeds each) and the reference at 1x with 0.05.
regularise=$(($(wc -l <"$smoke/docs/regularise/summary.csv") - 1))
[ "$regularise" -eq 19 ] && [ "$(grep -c "^\(2x-\)\?ref-\(jitter\|wd\|crop\)-[a-z_]*," \
  "$smoke/docs/regularise/summary.csv")" -eq 4 ] &&
  [ "$(grep -c "^\(2x\|64x\)-wd_scaled-[a-z_]*_SEED-" "$smoke/docs/regularise/summary.csv")" -eq 6 ] ||
  { echo "FAILED: $regularise regularise cells (want 19, 4 of them references)"; exit 1; }
grep -q "MIN_SIZE_TRAIN_SAMPLING=range" "$smoke"/docs/regularise/2x-jitter-*_SEED-1/sweep.json &&
  grep -q "CROP.ENABLED=true" "$smoke"/docs/regularise/2x-crop-*_SEED-1/sweep.json ||
  { echo "FAILED: the regularise cells did not run with their regularisers"; exit 1; }
bn=$(($(wc -l <"$smoke/docs/bn/summary.csv") - 1))
[ "$bn" -eq 4 ] && grep -q "^ref-[a-z_]*-sync_bn," "$smoke/docs/bn/summary.csv" ||
  { echo "FAILED: $bn BN ablation cells (want 4)"; exit 1; }
grep -q "AGVM over backbone" "$smoke"/runs/core/64x-pmd_lamb_agvm_BASE_LR-*/log.txt ||
  { echo "FAILED: the AGVM cells did not run AGVM"; exit 1; }
grep -q "initial weights from $smoke/pretrain/backbone.safetensors" \
  "$smoke"/runs/core/ref-sgd_BASE_LR-0.01/log.txt ||
  { echo "FAILED: the cells did not load the pretrained backbone"; exit 1; }
rm -rf "$smoke/runs"  # only the archive is left, as in a fresh clone of the repository
BUILD="$build" bash "$src/scripts/study_pretrained.sh" --smoke all >again.log 2>&1
if grep -q ": starting" again.log; then
  echo "FAILED: the rerun trained cells the archive holds"
  grep ": starting" again.log
  exit 1
fi
# A seed cell archived with another LR than its method's best (a grid resumed after a stop changed
# the best) is set aside and trained again at the best.
stale=$(ls -d "$smoke"/docs/core/64x-lsr_sgd-best_SEED-2)
sed -i 's/"SOLVER.BASE_LR=[^"]*"/"SOLVER.BASE_LR=9.99"/' "$stale/sweep.json"
BUILD="$build" bash "$src/scripts/study_pretrained.sh" --smoke all >stale.log 2>&1 || {
  tail -20 stale.log
  echo "FAILED: the rerun with a stale seed cell"
  exit 1
}
grep -q "64x-lsr_sgd-best_SEED-2 ran another LR than the best" stale.log &&
  grep -q "64x-lsr_sgd-best_SEED-2: starting" stale.log &&
  ls -d study/superseded/"$smoke"/docs/core/64x-lsr_sgd-best_SEED-2.* >/dev/null || {
  echo "FAILED: the stale seed cell was not set aside and trained again"
  grep -n "lsr_sgd-best" stale.log
  exit 1
}
if BUILD="$build" bash "$src/scripts/study_pretrained.sh" nonsense >bad.log 2>&1; then
  echo "FAILED: an unknown part was accepted"
  exit 1
fi
grep -q "unknown part 'nonsense'" bad.log
echo "pretrained study smoke test passed"
