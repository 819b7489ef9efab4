#!/bin/sh
# scripts/study.sh --smoke: every part of the study (reference, scaled, ablations, figures) at 4
# iterations per cell on a tiny dataset, in a scratch directory laid out like the repository; then a rerun, which
# must train nothing (every cell is in the archive), and a part name it must refuse.
# Usage: study_smoke.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -eu
src=$1
build=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
ln -s "$src/configs" "$work/configs"
cd "$work"
BUILD="$build" sh -c "bash '$src/scripts/study.sh' --smoke all" >all.log 2>&1 || {
  tail -40 all.log
  echo "FAILED: scripts/study.sh --smoke all"
  exit 1
}
docs=study/smoke/docs
for f in core/summary.csv ablations/summary.csv ap_vs_batch.png loss_64x.png loss_64x_sqrt.png; do
  [ -s "$docs/$f" ] || { echo "FAILED: $docs/$f is missing"; exit 1; }
done
# 12 reference cells, 5 at 16x, 10 at 64x (two seeds); 16 ablation cells (6 of the sqrt rule).
core=$(($(wc -l <"$docs/core/summary.csv") - 1))
ablations=$(($(wc -l <"$docs/ablations/summary.csv") - 1))
[ "$core" -eq 27 ] && [ "$ablations" -eq 16 ] || {
  echo "FAILED: $core core cells (want 27) and $ablations ablation cells (want 16)"
  exit 1
}
grep -q "reference LRs: sgd" all.log || { echo "FAILED: no reference LRs picked"; exit 1; }
grep -Eq "the ablations start from PMD-LAMB, BASE_LR [0-9.e-]+, SCALING_RULE (linear|sqrt)$" all.log ||
  { echo "FAILED: no LR rule picked for the ablations"; exit 1; }
rm -rf study/smoke/runs  # only the archive is left, as in a fresh clone of the repository
BUILD="$build" bash "$src/scripts/study.sh" --smoke all >again.log 2>&1
if grep -q ": starting" again.log; then
  echo "FAILED: the rerun trained cells the archive holds"
  grep ": starting" again.log
  exit 1
fi
if BUILD="$build" bash "$src/scripts/study.sh" nonsense >bad.log 2>&1; then
  echo "FAILED: an unknown part was accepted"
  exit 1
fi
grep -q "unknown part 'nonsense'" bad.log
echo "study smoke test passed"
