#!/usr/bin/env bash
# Rewrites tests/ctest_costs.txt, the test times a new build directory starts from (CTest runs the
# longest first: tests/CMakeLists.txt), from one run of the whole suite, and prints the longest
# tests as the table of docs/benchmarks.md, "The longest tests". Run it with nothing else running.
#
#   scripts/record_test_costs.sh [BUILD]          runs `ctest -j 2` in BUILD (default build)
#   scripts/record_test_costs.sh --log FILE       reads the output of such a run instead
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = "--log" ]; then
  LOG=$2
else
  BUILD=${1:-build}
  LOG="$BUILD/Testing/ctest_output.txt"
  mkdir -p "$(dirname "$LOG")"
  # No pipefail here: a failed test still records its time (and the run's status is reported).
  (cd "$BUILD" && ctest -j 2) | tee "$LOG" || true
fi
[ -s "$LOG" ] || { echo "record_test_costs.sh: no ctest output in $LOG" >&2; exit 1; }
# CTest's output line: "  7/512 Test  #45: Name ......   Passed   52.13 sec"
sed -n 's/^ *[0-9]*\/[0-9]* Test *#[0-9]*: \([^ ]*\) \.*[^0-9]*\([0-9.]*\) sec$/\1 \2/p' "$LOG" \
  | sort -k2 -g -r > "$LOG.times"
count=$(wc -l < "$LOG.times")
[ "$count" -gt 0 ] || { echo "record_test_costs.sh: no test times in $LOG" >&2; exit 1; }
# CTestCostData.txt's format: "name runs seconds", then a line "---" and the failed tests (none).
{ awk '{ print $1, 1, $2 }' "$LOG.times"; echo "---"; } > "$REPO/tests/ctest_costs.txt"
echo "tests/ctest_costs.txt: $count tests, $(awk '{ s += $2 } END { printf "%.0f", s }' \
  "$LOG.times") s in all"
echo
echo "| test | seconds |"
echo "|---|---|"
head -15 "$LOG.times" | awk '{ printf "| %s | %.0f |\n", $1, $2 }'
