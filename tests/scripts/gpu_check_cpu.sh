#!/bin/sh
# scripts/gpu_check.sh in its CPU mode against the build under test: steps 3-7 with tiny sizes
# (one bench model, torchvision faked: a stand-in Python that prints bench model's RESULT line;
# step 6's two Gloo ranks: 2 host waits per SyncBN layer and 1 per gradient bucket),
# then the ways it must fail: by default it runs on past a failure but still exits 1; with
# --stop-on-failure a bench error stops it after step 3 with the "stopped at" line, and a missing
# step-4 run stops step 5.
# usage: gpu_check_cpu.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -eu
SRC=$1
BUILD=$2
WORK=$3
rm -rf "$WORK"
mkdir -p "$WORK/device_out"
status=0

fail() {
  echo "FAIL: $*"
  status=1
}

# bench model runs "PYTHON SCRIPT CLASS ..." and reads "RESULT train_ms infer_ms_per_image";
# gpu_check.sh first asks it for its torch and torchvision versions (-c).
cat >"$WORK/fake_python" <<'EOF'
#!/bin/sh
if [ "$1" = -c ]; then echo "torchvision python: fake"; exit 0; fi
echo "RESULT 123.4 5.6"
EOF
chmod +x "$WORK/fake_python"

# run NAME EXPECTED_EXIT MODELS OUT ARGS...: the check (bench MODELS, $OUT set to OUT) with its
# console in $WORK/NAME.out.
run() {
  name=$1
  expected=$2
  models=$3
  out=$4
  shift 4
  code=0
  (cd "$SRC" && OUT="$out" GPU_CHECK_MODELS="$models" GPU_CHECK_PYTHON="$WORK/fake_python" \
    bash scripts/gpu_check.sh --device cpu --build-dir "$BUILD" --out-dir "$WORK/$name" "$@") \
    >"$WORK/$name.out" 2>&1 || code=$?
  if [ "$code" -ne "$expected" ]; then
    fail "$name: exit $code, expected $expected:"
    cat "$WORK/$name.out"
    shown="$shown$name "
  fi
}

# expect NAME TEXT: the console of run NAME holds TEXT (a fixed string); the console is shown
# once, with the first text it lacks.
shown=" "
expect() {
  grep -qF -- "$2" "$WORK/$1.out" && return 0
  fail "$1: no \"$2\" in its output"
  case "$shown" in
    *" $1 "*) ;;
    *) cat "$WORK/$1.out"; shown="$shown$1 " ;;
  esac
}

# The whole CPU mode passes, with the summary table and $OUT filled as the device tool needs it.
run full 0 faster_rcnn_R_50_FPN "$WORK/device_out"
expect full "== step 3/7 bench-model"
expect full "== step 5/7 mask-compare"
expect full "| step | name | status | seconds | key figure |"
expect full "| 3 | faster_rcnn_R_50_FPN, amp none | ok |"
expect full "train step"
expect full "vs torchvision 123.4 ms; inference"
expect full "| 4 | demo-train | ok |"
expect full "bbox AP "
expect full "| 5 | mask-compare | ok |"
expect full "identical:"
expect full "| 6 | collective-waits | ok | "
expect full "gloo: "
expect full " host waits on collectives (61 SyncBN layers, "
expect full "1 host sync per step"
expect full "gpu-check: all steps passed"
grep -q '^| 5 | mask-compare | ok |' "$WORK/full/summary.md" || fail "summary.md lacks step 5"
for f in gpu-check-summary.md gpu-check-console.log gpu-check-logs.tar.gz; do
  [ -s "$WORK/device_out/$f" ] || fail "no $f in \$OUT"
done
tar -tzf "$WORK/device_out/gpu-check-logs.tar.gz" | grep -q 'logs/5-mask-compare.log' \
  || fail "the logs tarball lacks logs/5-mask-compare.log"

# --stop-on-failure: a failing step stops the run: summary first, then the stopped line, exit 1.
# The bench tries every model even so.
run bad_model 1 "no_such_model faster_rcnn_R_50_FPN" "" --steps 3,4,5 --stop-on-failure
expect bad_model "gpu-check stopped at step 3 (bench-model): bench model failed for no_such_model"
expect bad_model "| 3 | bench-model | FAIL |"
expect bad_model "| 3 | no_such_model, amp none | FAIL |"
expect bad_model "| 3 | faster_rcnn_R_50_FPN, amp none | ok |"
expect bad_model "| 4 | demo-train | not run |"
# Step 5 needs step 4's weights; without them it says so.
run no_weights 1 faster_rcnn_R_50_FPN "" --steps 5 --stop-on-failure
expect no_weights "gpu-check stopped at step 5 (mask-compare): no "
expect no_weights "step 4 must run first"
# By default: step 5 still runs after step 3 failed, and the exit is still 1.
run keep_going 1 no_such_model "" --steps 3,5
expect keep_going "gpu-check step 3 (bench-model) failed"
expect keep_going "== step 5/7 mask-compare"
expect keep_going "gpu-check: 2 step(s) failed"
exit $status
