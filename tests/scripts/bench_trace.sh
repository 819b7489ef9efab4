#!/bin/sh
# `largedet bench model --trace DIR`: one training step of ours and of torchvision's (the .venv's
# Python) as Chrome traces, each valid JSON holding the step's backward convolutions.
# usage: bench_trace.sh BUILD_DIR WORK_DIR
set -eu
BUILD=$1
WORK=$2
rm -rf "$WORK"
"$BUILD/bin/largedet" bench model --batch 1 --size 64 -n 1 --threads 1 --trace "$WORK" \
  >"$WORK.out" 2>&1 || { cat "$WORK.out"; exit 1; }
status=0
for side in largedet torchvision; do
  python3 - "$WORK/${side}_train_step.json" <<'PY' || status=1
import json, sys
try:
    events = json.load(open(sys.argv[1]))["traceEvents"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"FAIL: {sys.argv[1]}: {e}")
names = {e.get("name") for e in events}
if "aten::convolution_backward" not in names:
    sys.exit(f"FAIL: {sys.argv[1]} has no aten::convolution_backward ({len(events)} events)")
print(f"ok: {sys.argv[1]}: {len(events)} events")
PY
done
exit $status
