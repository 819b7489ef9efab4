#!/bin/sh
# scripts/demo.sh's AP verdict on fake runs (--check-only, no training): it must pass at and above
# its target and fail below it or without a final evaluation.
# usage: demo_ap_check.sh SOURCE_DIR WORK_DIR
set -eu
SRC=$1
WORK=$2
rm -rf "$WORK"
status=0

# run NAME EXPECTED_EXIT [METRICS_LINE...]: a fake $DEMO/run/metrics.jsonl, then the check.
run() {
  name=$1
  expected=$2
  shift 2
  mkdir -p "$WORK/$name/run"
  : >"$WORK/$name/run/metrics.jsonl"
  for line in "$@"; do echo "$line" >>"$WORK/$name/run/metrics.jsonl"; done
  code=0
  DEMO="$WORK/$name" bash "$SRC/scripts/demo.sh" --check-only >"$WORK/$name.out" 2>&1 || code=$?
  if [ "$code" -ne "$expected" ]; then
    echo "$name: exit $code, expected $expected:"
    cat "$WORK/$name.out"
    status=1
  fi
}

run above 0 '{"iteration": 500, "total_loss": 0.4}' '{"iteration": 500, "bbox/AP":0.585}'
run at_target 0 '{"iteration": 500, "bbox/AP":0.5}'
# The final evaluation decides, not an earlier better one.
run below 1 '{"iteration": 250, "bbox/AP":0.61}' '{"iteration": 500, "bbox/AP":0.312}'
run tiny_exponent 1 '{"iteration": 500, "bbox/AP":1e-05}'
run no_evaluation 1 '{"iteration": 500, "total_loss": 0.4}'
if ! grep -q "below the target" "$WORK/below.out"; then
  echo "below: no verdict printed:"
  cat "$WORK/below.out"
  status=1
fi
exit $status
