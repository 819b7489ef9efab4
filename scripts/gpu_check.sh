#!/usr/bin/env bash
# `make gpu-check`: everything LargeDet can only learn on a CUDA host, in one run that fits a short
# device loan (target: 6 minutes on a 16-core H200 host, build included, so that a 15-minute budget
# leaves room for a rerun). Run from the repository root, after `bash ../shared/device/prepare` has
# filled .device/ on a networked machine and .device/ was carried to the CUDA host
# (../shared/device/README.md). Steps, each timed and logged:
#   1 build         configure build-gpu/ (Ninja, the wheel's LibTorch from python3) and build only
#                   what the later steps run: largedet_cli and the test binaries with Cuda* suites
#   2 gpu-tests     ctest -L gpu: the Cuda* suites (all of them skipped fails: the GPU was not seen)
#   3 bench-model   largedet bench model, 8 images, fp32 and fp16 AMP on both sides, against
#                   torchvision (python3),
#                   for Faster R-CNN, Mask R-CNN and RetinaNet R50-FPN
#   4 demo-train    the demo recipe (configs/synthetic/demo.yaml) for 200 iterations on one GPU
#                   with fp16 AMP, evaluated: its bbox AP
#   5 mask-compare  Mask R-CNN fine-tuned briefly from step 4's weights, then `largedet evaluate`
#                   of the same weights on the GPU and on the CPU, detections compared
#                   (scripts/compare_detections.py: boxes, scores, labels, mask IoU)
#   6 collective-waits  a data-parallel step of Faster R-CNN with SyncBN on 2 ranks (bench model
#                   --profile under launch): under NCCL no wait on a collective may block the host
#                   (needs 2 GPUs, else skipped); on the CPU, Gloo's waits are 2 per SyncBN layer
#                   and 1 per gradient bucket
#   7 summary       one table (also OUT_DIR/summary.md)
# A failing step does not stop the run (a failing Cuda* test must not cost the benchmark numbers on
# a one-shot loan): every step runs, the summary table says which failed, and the exit status is 1
# if any did. --stop-on-failure stops at the first failing step instead ("gpu-check stopped at
# step K (NAME): REASON, see LOG", exit 1, the summary table printed first).
#
# Without a GPU: `scripts/gpu_check.sh --device cpu --build-dir build --skip-build` runs steps 3-7
# on the CPU with tiny sizes against an existing build/ (step 5 then compares CPU with CPU and
# demands identical detections); tests/scripts/gpu_check_cpu.sh runs it under ctest.
#
# Logs and runs go to OUT_DIR (default BUILD_DIR/gpu-check). When $OUT is set (the device tool's
# folder that comes back), the summary, the console log and a tarball of the logs are copied there
# after every step, so that a run cut off by its time limit still returns what it did.
#
# Sizes and knobs (environment; CUDA default / CPU default):
#   GPU_CHECK_JOBS (16 / 2)            build jobs
#   GPU_CHECK_CTEST_JOBS (8)           Cuda* tests run at once (each its own process)
#   GPU_CHECK_DEPS (/opt/deps)         where .device/debs are unpacked (as gpu-build.sh does)
#   GPU_CHECK_MODELS (the three)       space-separated bench model names
#   GPU_CHECK_BENCH_BATCH (8 / 1), GPU_CHECK_BENCH_SIZE (512 / 64), GPU_CHECK_BENCH_ITERS (5 / 1)
#   GPU_CHECK_PYTHON (python3 / bench's default, the .venv)  torchvision's Python; none: skip it
#   GPU_CHECK_SYNTH_IMAGES (800 / 40)  demo dataset size (the demo's 800: 720 train, 80 val)
#   GPU_CHECK_DEMO_ITERS (200 / 4)     demo training iterations
#   GPU_CHECK_MIN_AP (0.1 / 0)         step 4 fails below this bbox AP (fp32 on the CPU: 0.268)
#   GPU_CHECK_MASK_ITERS (50 / 2)      Mask R-CNN fine-tuning iterations
#   GPU_CHECK_COMPARE_IMAGES (16 / 4)  images compared in step 5
#   GPU_CHECK_COMPARE_ARGS             tolerances for compare_detections.py (default: its own)
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  cat <<'EOF'
usage: scripts/gpu_check.sh [--device cuda|cpu] [--build-dir DIR] [--out-dir DIR] [--skip-build]
                            [--stop-on-failure] [--steps 1,2,...]
EOF
}

DEVICE=cuda
BUILD_DIR=""
OUT_DIR=""
SKIP_BUILD=0
KEEP_GOING=1
STEPS="1,2,3,4,5,6"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --keep-going) KEEP_GOING=1; shift ;;  # the default; kept for older callers
    --stop-on-failure) KEEP_GOING=0; shift ;;
    --steps) STEPS=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in
  cuda | cpu) ;;
  *) echo "gpu_check.sh: --device is cuda or cpu, not '$DEVICE'" >&2; exit 2 ;;
esac
[ -f configs/synthetic/demo.yaml ] || { echo "gpu_check.sh: run it from the repository root" >&2; exit 2; }

cuda() { [ "$DEVICE" = cuda ]; }
if cuda; then
  BUILD_DIR=${BUILD_DIR:-build-gpu}
  JOBS=${GPU_CHECK_JOBS:-16}
  BENCH_BATCH=${GPU_CHECK_BENCH_BATCH:-8}
  BENCH_SIZE=${GPU_CHECK_BENCH_SIZE:-512}
  BENCH_ITERS=${GPU_CHECK_BENCH_ITERS:-5}
  BENCH_AMPS="none fp16"  # like for like: both fp32, then both under fp16 autocast
  PYTHON_TV=${GPU_CHECK_PYTHON-$(command -v python3 || echo none)}
  SYNTH_IMAGES=${GPU_CHECK_SYNTH_IMAGES:-800}
  DEMO_ITERS=${GPU_CHECK_DEMO_ITERS:-200}
  MIN_AP=${GPU_CHECK_MIN_AP:-0.1}
  MASK_ITERS=${GPU_CHECK_MASK_ITERS:-50}
  COMPARE_IMAGES=${GPU_CHECK_COMPARE_IMAGES:-16}
  AMP_ENABLED=true
  # The recipe's own batch (16 = 2 micro-batches of 8 on one GPU); more loader threads, so that
  # 16 cores keep a GPU step of a tiny model fed.
  TRAIN_ARGS=(DATALOADER.NUM_WORKERS=4)
else
  BUILD_DIR=${BUILD_DIR:-build}
  JOBS=${GPU_CHECK_JOBS:-2}
  BENCH_BATCH=${GPU_CHECK_BENCH_BATCH:-1}
  BENCH_SIZE=${GPU_CHECK_BENCH_SIZE:-64}
  BENCH_ITERS=${GPU_CHECK_BENCH_ITERS:-1}
  BENCH_AMPS=none  # fp16 autocast is CUDA's; bf16 convolutions are ~10x slower on this CPU
  PYTHON_TV=${GPU_CHECK_PYTHON-}
  SYNTH_IMAGES=${GPU_CHECK_SYNTH_IMAGES:-40}
  DEMO_ITERS=${GPU_CHECK_DEMO_ITERS:-4}
  MIN_AP=${GPU_CHECK_MIN_AP:-0}
  MASK_ITERS=${GPU_CHECK_MASK_ITERS:-2}
  COMPARE_IMAGES=${GPU_CHECK_COMPARE_IMAGES:-4}
  # AMP stays off on the CPU, but its keys are still given, so that the schema checks their names.
  AMP_ENABLED=false
  TRAIN_ARGS=(SOLVER.IMS_PER_BATCH=4 SOLVER.IMS_PER_DEVICE=2 SOLVER.REFERENCE_BATCH=4
              SOLVER.WARMUP_ITERS=2)
fi
MODELS=${GPU_CHECK_MODELS:-faster_rcnn_R_50_FPN mask_rcnn_R_50_FPN retinanet_R_50_FPN}
CTEST_JOBS=${GPU_CHECK_CTEST_JOBS:-8}
DEPS=${GPU_CHECK_DEPS:-/opt/deps}
read -r -a COMPARE_ARGS <<<"${GPU_CHECK_COMPARE_ARGS:-}"
OUT_DIR=${OUT_DIR:-$BUILD_DIR/gpu-check}
LOGS=$OUT_DIR/logs
WORK=$OUT_DIR/work
CLI=$BUILD_DIR/bin/largedet
RECIPE=configs/synthetic/demo.yaml
BUDGET_S=360
N=7
mkdir -p "$LOGS" "$WORK"
rm -f "$LOGS"/*.log "$OUT_DIR/summary.md" "$OUT_DIR/console.log"

# Console lines also go to console.log, which travels back with the logs.
say() { printf '%s\n' "$*" | tee -a "$OUT_DIR/console.log"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Per step k: name, status (ok, FAIL, skipped, not run), seconds, key figure; bench rows apart.
declare -a ST_NAME ST_STATUS ST_SECS ST_FIG
declare -a BENCH_ROWS=()
ST_NAME=([1]=build [2]=gpu-tests [3]=bench-model [4]=demo-train [5]=mask-compare
         [6]=collective-waits [7]=summary)
for k in 1 2 3 4 5 6 7; do ST_STATUS[k]="not run"; ST_SECS[k]=""; ST_FIG[k]=""; done
START=$(now)
FAILED=0

# Copies what must come back into $OUT: at most a few files, two folders deep at most (the device
# tool's limits), so the logs travel as one tarball.
sync_out() {
  [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ] || return 0
  cp -f "$OUT_DIR/console.log" "$OUT/gpu-check-console.log" 2>/dev/null || true
  [ -f "$OUT_DIR/summary.md" ] && cp -f "$OUT_DIR/summary.md" "$OUT/gpu-check-summary.md"
  local files=() f
  for f in summary.md work/*/metrics.jsonl work/*/config.yaml work/compare/*.json; do
    [ -f "$OUT_DIR/$f" ] && files+=("$f")
  done
  tar -czf "$OUT/gpu-check-logs.tar.gz" -C "$OUT_DIR" logs console.log "${files[@]}" 2>/dev/null \
    || true
}
trap 'say "gpu-check interrupted"; sync_out; exit 130' INT TERM

# ---- step 1: configure and build only what the later steps run ------------------------------
# The test binaries that hold Cuda* suites, found in the sources (test_LAYER from tests/LAYER/), so
# that a suite added later is built without editing this script.
cuda_test_targets() {
  grep -lE '^((TEST|TEST_F|TEST_P|TYPED_TEST)\(Cuda|LARGEDET_ON_DEVICES\()' tests/*/*.cpp 2>/dev/null \
    | sed -E 's#^tests/([^/]+)/.*#test_\1#' | sort -u | tr '\n' ' '
}

step_build() {
  local log=$1 python torch_prefix cap targets=()
  python=$(command -v python3) || { REASON="no python3 (it holds PyTorch on the CUDA host)"; return 1; }
  # As ../shared/device/gpu-build.sh: the .debs the host lacks (simdjson, turbojpeg), unpacked
  # once into $DEPS; a rerun on the same machine keeps them.
  if ls .device/debs/*.deb >/dev/null 2>&1; then
    if [ ! -f "$DEPS/.largedet-debs" ] || ! diff -q <(ls .device/debs) "$DEPS/.largedet-debs" >/dev/null; then
      if ! { rm -rf "$DEPS" && mkdir -p "$DEPS"; }; then
        REASON="cannot write $DEPS (GPU_CHECK_DEPS)"
        return 1
      fi
      for f in .device/debs/*.deb; do dpkg -x "$f" "$DEPS" || { REASON="dpkg -x $f failed"; return 1; }; done
      ls .device/debs >"$DEPS/.largedet-debs"
    fi
  else
    say "  no .device/debs: run \`bash ../shared/device/prepare\` before the device call and carry .device"
    say "  (continuing: the configure fails below unless simdjson and turbojpeg are installed)"
  fi
  torch_prefix=$("$python" -c "import torch;print(torch.utils.cmake_prefix_path)" 2>>"$log") \
    || { REASON="$python cannot import torch"; return 1; }
  # Only the card's architecture (the project's default compiles two: it cannot detect one on a
  # machine without a GPU).
  local arch_args=()
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ' || true)
  if [[ "$cap" =~ ^[0-9]+\.[0-9]+$ ]]; then
    export TORCH_CUDA_ARCH_LIST=$cap
    arch_args=(-DCMAKE_CUDA_ARCHITECTURES="${cap/./}")
  fi
  # gpu-build.sh's arguments, plus LARGEDET_PYTHON: without it CMake looks for .venv/bin/python,
  # which the CUDA host does not have (its torch is the system python3's).
  # Ninja for a fresh build directory (an existing one keeps its generator: CMake refuses a change).
  local gen_args=()
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then gen_args=(-G Ninja); fi
  say "  configure $BUILD_DIR (${gen_args[1]:-existing generator}, torch from $python${cap:+, sm_${cap/./}})"
  # LARGEDET_CUDA=ON: the default (AUTO) also compiles the kernels where a GPU is visible, but here a
  # build without them must stop with CMake's reason rather than test nothing.
  cmake -S . -B "$BUILD_DIR" "${gen_args[@]}" -DCMAKE_BUILD_TYPE=Release -DLARGEDET_PYTHON="$python" \
    -DLARGEDET_CUDA=ON \
    -DCMAKE_PREFIX_PATH="$torch_prefix;/usr;$DEPS/usr" \
    -DCMAKE_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu" -DCMAKE_INCLUDE_PATH="$DEPS/usr/include" \
    "${arch_args[@]}" >>"$log" 2>&1 || {
    REASON="cmake configure failed: $(grep -m1 -A1 'CMake Error' "$log" | tail -1 | cut -c1-160)"
    return 1
  }
  grep -q 'CUDA kernels: ON' "$log" || { REASON="configured without CUDA kernels (no nvcc, or torch without CUDA)"; return 1; }
  read -r -a targets <<<"largedet_cli $(cuda_test_targets)"
  say "  build ${targets[*]} (-j $JOBS)"
  cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}" >>"$log" 2>&1 \
    || { REASON="build failed: $(grep -m1 -E 'error|FAILED' "$log" | cut -c1-160)"; return 1; }
  ST_FIG[1]="built ${targets[*]}"
}

# ---- step 2: the Cuda* suites -----------------------------------------------------------------
step_gpu_tests() {
  local log=$1 rc=0 line total failed skipped
  ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure --no-tests=error -j "$CTEST_JOBS" \
    >>"$log" 2>&1 || rc=$?
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)
  total=$(sed -nE 's/.* out of ([0-9]+).*/\1/p' <<<"$line")
  failed=$(sed -nE 's/.*passed, ([0-9]+) tests? failed.*/\1/p' <<<"$line")
  skipped=$(grep -c '(Skipped)' "$log" || true)
  if [ -z "$total" ]; then REASON="ctest ran no tests (exit $rc)"; return 1; fi
  ST_FIG[2]="$((total - failed - skipped))/$total Cuda* tests passed, $failed failed, $skipped skipped"
  if [ "$skipped" -gt 0 ]; then
    # Every skipped test by name: a parity test skipped for want of torchvision's CUDA kernels
    # must not read as passed.
    ST_FIG[2]+=" (skipped: $(grep '(Skipped)' "$log" | sed -E 's/^[[:space:]]*[0-9]+ - //; s/ \(Skipped\)//' | paste -sd, -))"
  fi
  if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
    REASON="$failed of $total Cuda* tests failed: $(grep -E '\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception)\)' "$log" | head -3 | sed -E 's/^[[:space:]]*[0-9]+ - //' | tr -s ' \t\n' ' ')"
    return 1
  fi
  # A Cuda* test skips itself without a GPU: all skipped means the tests did not see the card.
  # (Some skipped is allowed: a test may need two GPUs, or torchvision's CUDA kernels.)
  if [ "$skipped" -eq "$total" ]; then REASON="all $total Cuda* tests skipped: they saw no GPU"; return 1; fi
}

# ---- step 3: bench model against torchvision --------------------------------------------------
step_bench() {
  local log=$1 m mlog t0 ours tv ours_i tv_i syncs cuda_syncs row status python_args=() bad=""
  if [ -n "$PYTHON_TV" ]; then
    python_args=(--python "$PYTHON_TV")
    if [ "$PYTHON_TV" != none ]; then
      # bench model drops torchvision's stderr: say here what that Python has.
      "$PYTHON_TV" -c "import torch, torchvision; print('torchvision python:', torch.__version__, torchvision.__version__, 'cuda', torch.cuda.is_available())" \
        >>"$log" 2>&1 || say "  $PYTHON_TV cannot import torch and torchvision (see $log)"
    fi
  fi
  # Every model is tried even when one fails (out of memory, say): the others' numbers still count.
  # Each precision is a row: both sides fp32, then both under the same autocast.
  local amp
  for m in $MODELS; do
    for amp in $BENCH_AMPS; do
      mlog=$LOGS/3-bench-$m-$amp.log
      t0=$(now)
      if ! "$CLI" bench model --model "$m" --device "$DEVICE" --amp "$amp" \
        --batch "$BENCH_BATCH" --size "$BENCH_SIZE" --iterations "$BENCH_ITERS" --profile \
        "${python_args[@]}" >"$mlog" 2>&1; then
        BENCH_ROWS+=("$m, amp $amp|$(elapsed "$t0")|FAIL|$(tail -1 "$mlog" | cut -c1-160)")
        bad="$bad $m/$amp"
        say "  $m, amp $amp: FAILED, see $mlog"
        continue
      fi
      ours=$(sed -nE 's/.*train step: +largedet +([0-9.]+) ms.*/\1/p' "$mlog")
      tv=$(sed -nE 's/.*train step:.*torchvision +([0-9.]+) ms.*/\1/p' "$mlog")
      ours_i=$(sed -nE 's/.*inference: +largedet +([0-9.]+) ms.*/\1/p' "$mlog")
      tv_i=$(sed -nE 's/.*inference:.*torchvision +([0-9.]+) ms.*/\1/p' "$mlog")
      syncs=$(sed -nE 's/^host syncs per training step: ([0-9]+)/\1/p' "$mlog")
      infer_syncs=$(sed -nE 's/^host syncs per inference batch: ([0-9]+)/\1/p' "$mlog")
      cuda_syncs=$(sed -nE 's/^CUDA sync debug mode, synchronising calls per training step: ([0-9]+)/\1/p' "$mlog")
      status=ok
      if [ -z "$ours" ] || [ -z "$ours_i" ]; then
        row="no timings in its output"
        status=FAIL
        bad="$bad $m/$amp"
      elif [ -n "$tv" ]; then
        row="train step $ours ms vs torchvision $tv ms; inference $ours_i vs $tv_i ms/image"
      else
        row="train step $ours ms, inference $ours_i ms/image (torchvision did not run)"
        # On the CUDA host the comparison is the point; on the CPU torchvision is optional.
        if [ "$PYTHON_TV" != none ] && cuda; then status=FAIL bad="$bad $m/$amp"; fi
      fi
      [ -z "$syncs" ] || row="$row; host syncs per step $syncs${cuda_syncs:+ (CUDA sync debug: $cuda_syncs)}"
      [ -z "$infer_syncs" ] || row="$row, per inference batch $infer_syncs"
      BENCH_ROWS+=("$m, amp $amp|$(elapsed "$t0")|$status|$row")
      say "  $m, amp $amp: $row"
    done
  done
  ST_FIG[3]="batch $BENCH_BATCH, ${BENCH_SIZE}x$BENCH_SIZE, amp $BENCH_AMPS (both sides alike), median of $BENCH_ITERS"
  if [ -n "$bad" ]; then
    REASON="bench model failed for$bad"
    [ "$(wc -w <<<"$bad")" -gt 1 ] || LOG=$LOGS/3-bench-$(tr / - <<<"${bad# }").log
    return 1
  fi
}

# ---- step 4: the demo recipe on one device -----------------------------------------------------
DATA=$WORK/data
data_args() {  # $1: the dataset whose val split is the test set
  echo "DATASETS.TRAIN_ANNOTATIONS=$DATA/annotations/instances_train.json" \
    "DATASETS.TRAIN_IMAGES=$DATA/train" \
    "DATASETS.TEST_ANNOTATIONS=$1/annotations/instances_val.json" "DATASETS.TEST_IMAGES=$1/val"
}

step_demo() {
  local log=$1 run=$WORK/demo-run stats ap
  # The demo's dataset (scripts/demo.sh), kept between runs: same seed, same bytes.
  if [ ! -f "$DATA/.images-$SYNTH_IMAGES" ]; then
    rm -rf "$DATA"
    "$CLI" synth --out "$DATA" --images "$SYNTH_IMAGES" --size 256 --val-fraction 0.1 \
      --max-objects 4 --seed 0 >>"$log" 2>&1 || { REASON="largedet synth failed"; return 1; }
    touch "$DATA/.images-$SYNTH_IMAGES"
  fi
  rm -rf "$run"
  # shellcheck disable=SC2046  # data_args' words are KEY=VALUE overrides without spaces
  "$CLI" train --config "$RECIPE" --output "$run" MODEL.DEVICE="$DEVICE" \
    SOLVER.AMP.ENABLED=$AMP_ENABLED SOLVER.AMP.DTYPE=fp16 SOLVER.MAX_ITER="$DEMO_ITERS" \
    TEST.EVAL_PERIOD="$DEMO_ITERS" SOLVER.CHECKPOINT_PERIOD="$DEMO_ITERS" "${TRAIN_ARGS[@]}" \
    $(data_args "$DATA") >>"$log" 2>&1 || { REASON="largedet train failed: $(grep -m1 -iE 'error' "$log" | cut -c1-160)"; return 1; }
  # The final evaluation's bbox AP, the median seconds per iteration and images/s of the logs.
  stats=$(python3 - "$run/metrics.jsonl" <<'EOF'
import json, sys
ap, times, ips = None, [], []
for line in open(sys.argv[1]):
    m = json.loads(line)
    if "bbox/AP" in m:
        ap = m["bbox/AP"]
    if "time" in m:
        times.append(m["time"])
        ips.append(m.get("images_per_second", 0))
med = lambda v: sorted(v)[len(v) // 2] if v else float("nan")
print("none" if ap is None else ap, "%.3f" % med(times), "%.1f" % med(ips))
EOF
  ) || { REASON="cannot read $run/metrics.jsonl"; return 1; }
  read -r ap DEMO_SPI DEMO_IPS <<<"$stats"
  if ! awk -v ap="$ap" 'BEGIN { exit !(ap == ap + 0 && ap >= 0) }'; then
    REASON="no finite bbox/AP in $run/metrics.jsonl (the final evaluation did not run or diverged)"
    return 1
  fi
  ST_FIG[4]=$(printf 'bbox AP %.3f after %s iterations (AMP %s), %s s/it, %s images/s' "$ap" \
    "$DEMO_ITERS" "$([ $AMP_ENABLED = true ] && echo fp16 || echo off)" "$DEMO_SPI" "$DEMO_IPS")
  say "  ${ST_FIG[4]}"
  if ! awk -v ap="$ap" -v min="$MIN_AP" 'BEGIN { exit !(ap >= min) }'; then
    REASON="bbox AP $ap is below $MIN_AP (GPU_CHECK_MIN_AP): training did not learn"
    return 1
  fi
}

# ---- step 5: Mask R-CNN on the device against the CPU on the same weights ----------------------
step_mask() {
  local log=$1 compare_data=$WORK/compare-data run=$WORK/mask-run out=$WORK/compare
  local first second exact=() figure
  [ -f "$WORK/demo-run/model_final.safetensors" ] \
    || { REASON="no $WORK/demo-run/model_final.safetensors: step 4 must run first"; return 1; }
  if [ ! -f "$compare_data/.images-$COMPARE_IMAGES" ]; then
    rm -rf "$compare_data"
    "$CLI" synth --out "$compare_data" --images $((2 * COMPARE_IMAGES)) --size 256 \
      --val-fraction 0.5 --max-objects 4 --seed 1 >>"$log" 2>&1 || { REASON="largedet synth failed"; return 1; }
    touch "$compare_data/.images-$COMPARE_IMAGES"
  fi
  # Step 4's boxes are trained: the few fine-tuning iterations give the mask head something to
  # say, so that the comparison is of confident detections, not of near-ties at the threshold.
  rm -rf "$run" "$out"
  mkdir -p "$out"
  # shellcheck disable=SC2046
  "$CLI" train --config "$RECIPE" --output "$run" MODEL.MASK_ON=true \
    MODEL.WEIGHTS="$WORK/demo-run/model_final.safetensors" MODEL.DEVICE="$DEVICE" \
    SOLVER.AMP.ENABLED=$AMP_ENABLED SOLVER.AMP.DTYPE=fp16 SOLVER.MAX_ITER="$MASK_ITERS" \
    TEST.EVAL_PERIOD=0 SOLVER.CHECKPOINT_PERIOD="$MASK_ITERS" "${TRAIN_ARGS[@]}" \
    SOLVER.WARMUP_ITERS=$((MASK_ITERS / 5 + 1)) $(data_args "$compare_data") >>"$log" 2>&1 \
    || { REASON="Mask R-CNN fine-tuning failed: $(grep -m1 -iE 'error' "$log" | cut -c1-160)"; return 1; }
  if cuda; then first=cpu second=cuda; else first=cpu second=cpu-again exact=(--exact); fi
  for name in "$first" "$second"; do
    # Inference in fp32 on both (evaluate does not autocast); only the device differs.
    # shellcheck disable=SC2046
    "$CLI" evaluate --config "$RECIPE" --weights "$run/model_final.safetensors" \
      --output "$out/$name.json" --detections "$out/$name.detections.json" MODEL.MASK_ON=true \
      MODEL.DEVICE="${name%-again}" \
      $(data_args "$compare_data") >>"$log" 2>&1 \
      || { REASON="largedet evaluate on ${name%-again} failed: $(grep -m1 -iE 'error' "$log" | cut -c1-160)"; return 1; }
  done
  python3 scripts/compare_detections.py "$out/$first.detections.json" \
    "$out/$second.detections.json" "${exact[@]}" "${COMPARE_ARGS[@]}" >>"$log" 2>&1 \
    || { figure=$(sed -n 's/^figure: //p' "$log" | tail -1)
         REASON="$second detections differ from the CPU's: ${figure:-see the log} ($(grep -m1 '^FAIL:' "$log" | cut -c7-200))"
         return 1; }
  figure=$(sed -n 's/^figure: //p' "$log" | tail -1)
  # Both evaluations' AP too (first / second): what the tolerances let through shows here.
  local aps
  aps=$(python3 - "$out/$first.json" "$out/$second.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
num = lambda s, t: s.get(t, {}).get("AP") if isinstance(s.get(t, {}).get("AP"), (int, float)) else float("nan")
print(", ".join(f"{t}/AP {num(a, t):.3f} / {num(b, t):.3f}" for t in ("bbox", "segm")))
EOF
  ) || aps="AP unreadable"
  ST_FIG[5]="$second vs $first, $COMPARE_IMAGES images: $figure; $aps"
  say "  ${ST_FIG[5]}"
}

# ---- step 6: a data-parallel SyncBN step's host waits on two ranks --------------------------------
# docs/distributed.md, "Counting the host waits": under NCCL wait() only orders streams, so the
# step counts no wait on a collective however many SyncBN layers it has; under Gloo every wait
# blocks: two per SyncBN layer (statistics, backward sums) and one per gradient bucket.
gpus() { nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true; }

step_waits() {
  local log=$1 figure
  "$CLI" launch --nproc-per-node 2 --master-port 0 -- "$CLI" bench model --norm SyncBN \
    --device "$DEVICE" --batch "$BENCH_BATCH" --size "$BENCH_SIZE" --iterations 1 --profile \
    --python none >>"$log" 2>&1 \
    || { REASON="bench model on 2 ranks failed: $(grep -m1 -iE 'error' "$log" | cut -c1-160)"; return 1; }
  figure=$(python3 - "$log" 2>&1 <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
syncs = re.search(r"host syncs per training step: (\d+)", text)
waits = re.search(r"host waits on collectives per training step \((\w+)\): (\d+) "
                  r"\((\d+) SyncBN layers, (\d+) gradient buckets\)", text)
if not syncs or not waits:
    sys.exit("no host-sync or host-wait count in its output")
backend = waits.group(1)
n, layers, buckets = (int(g) for g in waits.groups()[1:])
syncs = int(syncs.group(1))
figure = (f"{backend}: {n} host waits on collectives ({layers} SyncBN layers, {buckets} gradient "
          f"buckets), {syncs} host sync{'' if syncs == 1 else 's'} per step")
# R50: the stem, 16 bottlenecks of 3 norms and 4 shortcut projections; FPN: 4 lateral, 4 output.
if layers != 1 + 16 * 3 + 4 + 8 or buckets < 1:
    sys.exit(f"{figure}; expected 61 SyncBN layers and a bucket or more")
expected = 2 * layers + buckets if backend == "gloo" else 0
if n != expected:
    sys.exit(f"{figure}; expected {expected} host waits")
if syncs > 2:  # issue 30's target for Faster R-CNN's training step
    sys.exit(f"{figure}; expected at most 2 host syncs")
print(figure)
EOF
  ) || { REASON=$(tail -1 <<<"$figure"); return 1; }
  ST_FIG[6]=$figure
  say "  $figure"
}

# ---- the table -----------------------------------------------------------------------------------
write_summary() {
  local s=$OUT_DIR/summary.md k total status=ok host
  if cuda; then
    host=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)
    host="${host:-no nvidia-smi}, $(nproc) cores"
  else
    host="CPU only, $(nproc) cores"
  fi
  [ "$FAILED" -eq 0 ] || status=FAIL
  total=$(elapsed "$START")
  {
    echo "gpu-check, device $DEVICE ($host), $BUILD_DIR, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| step | name | status | seconds | key figure |"
    echo "|---|---|---|---|---|"
    for k in 1 2 3 4 5 6; do
      echo "| $k | ${ST_NAME[k]} | ${ST_STATUS[k]} | ${ST_SECS[k]} | ${ST_FIG[k]} |"
      if [ "$k" = 3 ]; then
        local row
        for row in "${BENCH_ROWS[@]}"; do
          IFS='|' read -r m secs st fig <<<"$row"
          echo "| 3 | $m | $st | $secs | $fig |"
        done
      fi
    done
    local budget=""
    if cuda; then
      budget="target <= $BUDGET_S s"
      awk -v t="$total" -v b="$BUDGET_S" 'BEGIN { exit !(t > b) }' && budget="OVER the $BUDGET_S s target"
    fi
    echo "| | total | $status | $total | $budget |"
  } >"$s"
  ST_STATUS[7]=ok
  tee -a "$OUT_DIR/console.log" <"$s"
}

finish() {
  say "== step 7/$N summary"
  write_summary
  sync_out
}

# skip_step K WHY: a step this run leaves out on purpose.
skip_step() {
  ST_STATUS[$1]=skipped
  ST_FIG[$1]=$2
  say "== step $1/$N ${ST_NAME[$1]}: skipped ($2)"
}

# run_step K FUNCTION: times it, records its status, stops the run (with --stop-on-failure) when it
# fails. The step functions check each command themselves and set REASON (errexit does not apply
# inside a function called from a condition).
run_step() {
  local k=$1 fn=$2 t0 name=${ST_NAME[$1]}
  if [[ ",$STEPS," != *",$k,"* ]]; then
    skip_step "$k" "not in --steps $STEPS"
    return 0
  fi
  say "== step $k/$N $name"
  LOG=$LOGS/$k-$name.log
  REASON=""
  : >"$LOG"
  t0=$(now)
  if "$fn" "$LOG"; then
    ST_STATUS[k]=ok
    ST_SECS[k]=$(elapsed "$t0")
    say "  ok in ${ST_SECS[k]} s"
  else
    ST_STATUS[k]=FAIL
    ST_SECS[k]=$(elapsed "$t0")
    FAILED=$((FAILED + 1))
    [ -n "${ST_FIG[k]}" ] || ST_FIG[k]=$REASON
    say "  FAILED after ${ST_SECS[k]} s: $REASON"
    say "  --- last lines of $LOG:"
    tail -n 25 "$LOG" | sed 's/^/  | /' | tee -a "$OUT_DIR/console.log"
    if [ "$KEEP_GOING" -eq 0 ]; then
      finish
      say "gpu-check stopped at step $k ($name): $REASON, see $LOG"
      exit 1
    fi
    say "gpu-check step $k ($name) failed: $REASON, see $LOG (going on; --stop-on-failure stops here)"
  fi
  sync_out
}

say "gpu-check: device $DEVICE, build $BUILD_DIR, output $OUT_DIR"
if cuda; then
  # The carried .debs' libraries (gpu-build.sh exports the same), for everything run from here
  # on: the build runs the test binaries to list their tests.
  export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if [ "$SKIP_BUILD" -eq 1 ]; then
    skip_step 1 "--skip-build: uses the existing $BUILD_DIR"
  else
    run_step 1 step_build
  fi
  run_step 2 step_gpu_tests
else
  skip_step 1 "cpu mode: uses the existing $BUILD_DIR"
  skip_step 2 "cpu mode: the Cuda* tests need a GPU"
fi
[ -x "$CLI" ] || { say "gpu-check stopped: no $CLI (build it, or drop --skip-build)"; finish; exit 1; }
run_step 3 step_bench
run_step 4 step_demo
run_step 5 step_mask
if ! cuda || [ "$(gpus)" -ge 2 ]; then
  run_step 6 step_waits
else
  skip_step 6 "needs 2 GPUs (NCCL), this host has $(gpus)"
fi
finish
if [ "$FAILED" -gt 0 ]; then
  say "gpu-check: $FAILED step(s) failed (see the table and $LOGS)"
  exit 1
fi
say "gpu-check: all steps passed in $(elapsed "$START") s"
